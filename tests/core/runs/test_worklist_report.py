"""The worklist's states and the review kept beside the sweeps; the printable case report."""

import json

import numpy as np
import pytest

from fetal_iqa_gui.review.calipers import EllipseCaliper
from fetal_iqa_gui.review.export import ModelInfo
from fetal_iqa_gui.case.measure import Ellipse
from fetal_iqa_gui.review.report import NOT_A_DEVICE, write_report
from fetal_iqa_gui.review.scored_case import ScoredCase
from fetal_iqa_gui.case.loading import load_case
from fetal_iqa_gui.runs.worklist import NOT_SCORED, REVIEW_FILE, REVIEWED, SCORED, Worklist, restore_calipers

MODEL = ModelInfo("tiny", "id-1", 0.5, is_demo=True)


@pytest.fixture
def folder(tmp_path, small_case):
    import SimpleITK as sitk
    for name in ("a.mha", "b.mha", "c.nii.gz"):
        sitk.WriteImage(sitk.GetImageFromArray(small_case.frames), str(tmp_path / name))
    return tmp_path


def scored_case(path):
    sweep = load_case(path, sweeps=6)
    scores = np.where(sweep.layout.padding, np.nan, np.linspace(0, 1, sweep.n_frames)).astype(np.float32)
    return ScoredCase(sweep, MODEL, scores)


def test_a_review_is_kept_beside_the_sweeps_and_restored(folder):
    worklist = Worklist(folder)
    assert [c.path.name for c in worklist.cases] == ["a.mha", "b.mha", "c.nii.gz"]
    assert all(c.state == NOT_SCORED for c in worklist.cases)
    scored = scored_case(folder / "a.mha")
    frame = int(scored.case.layout.image_frames(scored.case.layout.sweeps[2])[5])
    caliper = EllipseCaliper(Ellipse((370.0, 280.0), (100.0, 80.0), 10.0), scored.case.spacing_mm)
    scored.set_calipers(frame, [caliper])
    worklist.scored(folder / "b.mha", scored_case(folder / "b.mha"))
    worklist.mark_reviewed(folder / "a.mha", scored)
    assert worklist.next_to_score(0).path.name == "c.nii.gz"

    again = Worklist(folder)  # the folder reopened
    assert [c.state for c in again.cases] == [REVIEWED, SCORED, NOT_SCORED]
    review = again.cases[0].review
    sweep_3 = review["sweeps"][2]
    assert sweep_3["frame"] == frame and sweep_3["ac_mm"] == round(caliper.ac_mm, 2)
    assert review["model_identity"] == "id-1" and len(review["sweeps"]) == 6
    reopened = scored_case(folder / "a.mha")
    restore_calipers(reopened, review)
    assert reopened.calipers[frame][0].ac_mm == pytest.approx(caliper.ac_mm, abs=0.01)


def test_a_damaged_review_file_is_ignored_and_a_failed_save_is_said_kept_and_retried(folder, monkeypatch):
    (folder / REVIEW_FILE).write_text("{ not json")
    worklist = Worklist(folder)
    assert all(c.state == NOT_SCORED for c in worklist.cases)
    import fetal_iqa_gui.runs.worklist as module
    from fetal_iqa_gui.base.errors import WriteError
    real = module.atomic_write

    def refuse(*args, **kwargs):
        raise WriteError(folder / REVIEW_FILE, "the disk is read-only")
    monkeypatch.setattr(module, "atomic_write", refuse)
    with pytest.raises(WriteError, match="read-only"):
        worklist.mark_reviewed(folder / "a.mha", scored_case(folder / "a.mha"))
    assert worklist.cases[0].state == REVIEWED and not worklist.saved  # this session still knows
    monkeypatch.setattr(module, "atomic_write", real)
    worklist.scored(folder / "b.mha", scored_case(folder / "b.mha"))  # the next save writes both
    assert worklist.saved and [c.state for c in Worklist(folder).cases] == [REVIEWED, SCORED, NOT_SCORED]


def test_the_case_report_holds_every_sweep_the_measurements_and_the_note(folder, tmp_path):
    scored = scored_case(folder / "a.mha")
    frame = int(scored.case.layout.image_frames(scored.case.layout.sweeps[0])[3])
    caliper = EllipseCaliper(Ellipse((370.0, 280.0), (100.0, 80.0), 0.0), scored.case.spacing_mm)
    scored.set_calipers(frame, [caliper])
    page, exported = write_report(scored, tmp_path / "report", timeline_png=None)
    text = page.read_text(encoding="utf-8")
    assert page.name == "a_report.html" and NOT_A_DEVICE in text and "demo model" in text
    assert text.count("<tr>") == 1 + 6 and text.count("data:image/png;base64,") == 6
    assert f"AC {caliper.ac_mm:.1f} mm (caliper)" in text
    assert len(exported.frames) == 6 and frame in exported.frames  # the measured frame is sweep 1's choice
    sidecar = json.loads((tmp_path / "report" / f"a_frame{frame:03d}_sweep1_below-threshold.json").read_text())
    assert sidecar["calipers"][0]["kind"] == "ellipse"
    with pytest.raises(Exception, match="already exists"):  # a report is never overwritten
        write_report(scored, tmp_path / "report")
