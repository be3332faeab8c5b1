"""`auto` on a CPU: the fastest installed engine, by measurement on this computer, kept, shown, and
forced the same on every machine for the tests."""

import json
import re

import pytest
import torch

from fetal_iqa_gui.engine import choice, measured
from fetal_iqa_gui.engine.choice import EngineSettings
from fetal_iqa_gui.engine.doctor import report
from fetal_iqa_gui.engine.scoring import make_engine
from fetal_iqa_gui.model.loading import ModelSpec, load_model


@pytest.fixture
def unforced(monkeypatch, tmp_path):
    """`auto` as a user gets it: nothing forced, an empty cache of measurements of its own."""
    monkeypatch.delenv(measured.FORCE_VARIABLE, raising=False)
    monkeypatch.setattr(measured, "measured_engines_file", lambda: tmp_path / "cache" / "engines.json")
    monkeypatch.setattr("fetal_iqa_gui.engine.measured.installed", lambda name: name in ("torch", "openvino"))


def fake_rates(monkeypatch, rates):
    """Measurements that give `rates` ("backend precision" -> frames/s), and the list of those taken."""
    taken = []

    def measure(candidate, shape, threads, **_):
        taken.append(" ".join(candidate))
        return rates[" ".join(candidate)]
    monkeypatch.setattr(measured, "measure", measure)
    return taken


CPU_KINDS = {  # what each kind of CPU measured (frames/s of ViT-L/14, 2 threads), and what auto must take there
    "Intel AVX-512 VNNI, bf16 no faster": ({"torch fp32": 0.65, "torch bf16": 0.7, "torch int8": 0.9,
                                            "openvino int8": 3.6}, ("openvino", "int8")),
    "AMD Zen 5, fast bf16": ({"torch fp32": 0.86, "torch bf16": 4.06, "torch int8": 1.2, "openvino int8": 8.4},
                             ("openvino", "int8")),
    "AVX2 only, bf16 emulated": ({"torch fp32": 0.5, "torch bf16": 0.07, "torch int8": 0.9, "openvino int8": 2.1},
                                 ("openvino", "int8")),
    "where OpenVINO were slow": ({"torch fp32": 1.0, "torch bf16": 4.0, "torch int8": 1.2, "openvino int8": 3.0},
                                 ("torch", "bf16")),
    "all alike": ({"torch fp32": 1.0, "torch bf16": 1.05, "torch int8": 1.08, "openvino int8": 1.09},
                  ("torch", "fp32")),  # the paper's precision unless another is clearly faster
}


@pytest.mark.parametrize("kind", CPU_KINDS)
def test_auto_takes_what_measured_fastest_not_what_the_flags_say(kind, tiny_cls_path, unforced, monkeypatch):
    rates, expected = CPU_KINDS[kind]
    taken = fake_rates(monkeypatch, rates)
    module = load_model(ModelSpec(adapter=tiny_cls_path)).module
    chosen = measured.choose(module, threads=2)
    assert (chosen.backend, chosen.precision) == expected
    assert sorted(taken) == sorted(rates) and chosen.reason == "measured now"
    again = measured.choose(module, threads=2)  # kept: the next start chooses at once
    assert (again.backend, again.precision) == expected and len(taken) == len(rates)
    assert again.reason.startswith("measured on ")
    assert measured.choose(module, threads=1).reason == "measured now"  # another thread count is another measurement


def test_what_the_user_fixed_narrows_the_candidates(tiny_cls_path, unforced, monkeypatch):
    taken = fake_rates(monkeypatch, CPU_KINDS["AMD Zen 5, fast bf16"][0])
    module = load_model(ModelSpec(adapter=tiny_cls_path)).module
    chosen = measured.choose(module, 2, backend="torch")
    assert (chosen.backend, chosen.precision) == ("torch", "bf16") and "openvino int8" not in taken
    chosen = measured.choose(module, 2, precision="int8")
    assert (chosen.backend, chosen.precision) == ("openvino", "int8")
    assert measured.choose(module, 2, backend="openvino").reason == "the only engine for this choice"
    assert (measured.choose(module, 2, precision="fp16").backend) == "torch"


def test_without_openvino_auto_chooses_among_torchs_own(tiny_cls_path, unforced, monkeypatch):
    monkeypatch.setattr("fetal_iqa_gui.engine.measured.installed", lambda name: name == "torch")
    taken = fake_rates(monkeypatch, CPU_KINDS["AVX2 only, bf16 emulated"][0])
    chosen = measured.choose(load_model(ModelSpec(adapter=tiny_cls_path)).module, 2)
    assert (chosen.backend, chosen.precision) == ("torch", "int8") and "openvino int8" not in taken


def test_a_damaged_record_is_measured_again(tiny_cls_path, unforced, monkeypatch):
    taken = fake_rates(monkeypatch, CPU_KINDS["all alike"][0])
    measured.measured_engines_file().parent.mkdir(parents=True)
    measured.measured_engines_file().write_text("{not json")
    module = load_model(ModelSpec(adapter=tiny_cls_path)).module
    assert measured.choose(module, 2).reason == "measured now" and taken
    assert json.loads(measured.measured_engines_file().read_text())  # and written whole
    assert measured.measured_engines_file().stat().st_mode & 0o777 == 0o600


def test_the_engine_runs_what_auto_measured_and_doctor_says_so(tiny_cls_path, unforced, monkeypatch):
    fake_rates(monkeypatch, CPU_KINDS["where OpenVINO were slow"][0])
    monkeypatch.setattr("fetal_iqa_gui.engine.agreement.needs_check", lambda *a: False)  # the choice, not the check
    engine = make_engine(load_model(ModelSpec(adapter=tiny_cls_path)), EngineSettings("cpu", "auto", 4))
    assert (engine.backend, engine.precision) == ("torch", "bf16") and engine.variant == "cpu-bf16-torch"
    assert "torch bf16" in engine.chosen.describe() and "measured now" in engine.chosen.describe()
    assert engine.description == "CPU bf16 (auto: fastest here)"  # the status line and the CLI say why
    text = report("6.11", None)
    assert re.search(r"Auto engine: +torch bf16 for 4 blocks", text), text
    assert "OpenVINO" in text and "NNCF" in text  # every runtime's version


@pytest.mark.parametrize("forced", ["torch:fp32", "torch:bf16", "torch:int8", "openvino:int8"])
def test_each_choice_of_auto_can_be_forced(forced, tiny_cls_path, monkeypatch):
    if forced.startswith("openvino") and not choice.installed("openvino"):
        pytest.skip("openvino is not installed")
    monkeypatch.setenv(measured.FORCE_VARIABLE, forced)
    monkeypatch.setattr(measured, "measure", lambda *a, **k: pytest.fail("a forced choice measures nothing"))
    chosen = measured.choose(load_model(ModelSpec(adapter=tiny_cls_path)).module, 2)
    assert f"{chosen.backend}:{chosen.precision}" == forced and "forced" in chosen.reason
    assert "forced by FETAL_IQA_AUTO" in report("6.11", None)


def test_a_real_measurement_times_each_installed_candidate_in_seconds():
    """The real code, on a small block (the full model's block takes a few seconds each)."""
    shape = measured.Shape(width=64, heads=4, mlp=256, tokens=50, layers=2)
    for candidate in measured.CANDIDATES:
        if choice.installed(candidate[0]):
            rate = measured.measure(candidate, shape, threads=1)
            assert rate > 0 and rate != float("inf"), candidate


def test_the_shape_is_read_from_the_model(tiny_cls_path):
    module = load_model(ModelSpec(adapter=tiny_cls_path)).module
    shape = measured.Shape.of(module)
    tower = module.encoder.get_base_model() if hasattr(module.encoder, "get_base_model") else module.encoder
    assert shape.layers == len(tower.transformer.resblocks) and shape.width == tower.transformer.width
    assert shape.tokens == tower.grid_size[0] * tower.grid_size[1] + 1
    assert torch.get_num_threads() >= 1
