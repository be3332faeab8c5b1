"""This computer's facts the engine's defaults depend on: physical cores and native bf16."""

import pytest
import torch

from fetal_iqa_gui.engine import choice
from fetal_iqa_gui.engine import cpu as runtime


def cpuinfo(cpus):
    """/proc/cpuinfo text for (processor, physical id, core id) triples."""
    return "\n\n".join(f"processor\t: {cpu}\nmodel name\t: Test CPU\nphysical id\t: {package}\ncore id\t\t: {core}"
                       for cpu, package, core in cpus)


def test_hyperthreads_count_once_and_only_the_allowed_cpus_count():
    # 2 sockets x 2 cores x 2 threads, numbered as Linux does: siblings are n and n + 4
    cpus = [(n, n // 2 % 2, n % 2) for n in range(4)] + [(n + 4, n // 2 % 2, n % 2) for n in range(4)]
    text = cpuinfo(cpus)
    assert runtime.count_cores(text, set(range(8))) == 4
    assert runtime.count_cores(text, {0, 4}) == 1  # two threads of one core
    assert runtime.count_cores(text, {0, 1}) == 2
    assert runtime.count_cores("processor\t: 0\nFeatures\t: fp asimd\n", {0}) is None  # ARM: no core ids


def test_physical_cores_is_a_usable_count():
    assert 1 <= runtime.physical_cores() <= runtime.usable_cpus()


def test_bf16_is_asked_of_torch_and_of_proc_cpuinfo_only_when_torch_cannot_tell(monkeypatch):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    monkeypatch.setattr(runtime, "linux_cpu_flags", lambda: set())
    assert choice.cpu_has_bf16()  # AMX, as torch tells it
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    monkeypatch.setattr(runtime, "linux_cpu_flags", lambda: {"avx512_bf16"})
    assert not choice.cpu_has_bf16()  # torch's answer wins over the flags
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported")
    assert choice.cpu_has_bf16()  # an older torch: the flags tell
    monkeypatch.setattr(runtime, "linux_cpu_flags", lambda: {"avx2"})
    assert not choice.cpu_has_bf16()


@pytest.mark.parametrize("field, value", [("device", "tpu"), ("precision", "fp8")])
def test_engine_settings_refuse_unknown_choices(field, value):
    with pytest.raises(ValueError, match=value):
        choice.EngineSettings(**{field: value})
