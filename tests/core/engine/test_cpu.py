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


def test_other_systems_count_their_cores_as_they_tell_them(monkeypatch):
    import sys

    import psutil
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(runtime, "_sysctl", lambda name: {"hw.physicalcpu": "6"}.get(name, ""))
    assert runtime.physical_cores() == 6  # no performance-core count: all physical cores
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setattr(runtime, "usable_cpus", lambda: 8)
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: 8 if logical else 4)
    assert runtime.physical_cores() == 4  # the system's count: 8 threads, two a core
    monkeypatch.setattr(runtime, "usable_cpus", lambda: 2)
    assert runtime.physical_cores() == 2  # never more than this process may use
    monkeypatch.setattr(runtime, "usable_cpus", lambda: 8)
    monkeypatch.setattr(psutil, "cpu_count", lambda logical=True: None)  # the system cannot tell
    assert runtime.physical_cores() == 8
    assert runtime.default_threads(for_window=True) == 7  # the window keeps a core for itself


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="reads /proc/cpuinfo")
def test_the_cpu_summary_names_the_cpu_and_the_flags_that_decide_the_engine():
    flags = runtime.linux_cpu_flags()
    assert flags and all(isinstance(flag, str) and " " not in flag for flag in flags)
    summary = runtime.cpu_summary()
    assert summary.startswith(runtime.cpu_model()) and torch.backends.cpu.get_cpu_capability() in summary
    assert all(flag in summary for flag in runtime.CPU_FEATURES if flag in flags)
