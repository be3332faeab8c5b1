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
from tests.support import linearly_scored
from fetal_iqa_gui.runs.worklist import NOT_SCORED, REVIEW_FILE, REVIEWED, SCORED, Worklist, restore_calipers

MODEL = ModelInfo("tiny", "id-1", 0.5, is_demo=True)


@pytest.fixture
def folder(tmp_path, small_case):
    import SimpleITK as sitk
    image = sitk.GetImageFromArray(small_case.frames)
    image.SetSpacing((0.28, 0.28, 1.0))  # calibrated, as the challenge's files are
    for name in ("a.mha", "b.mha", "c.nii.gz"):
        sitk.WriteImage(image, str(tmp_path / name))
    return tmp_path


def scored_case(path):
    return linearly_scored(path, MODEL)


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
    import fetal_iqa_gui.runs.review_record as module
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
    sweeps_table = text[text.index("<h2>Chosen frame of each sweep"):]
    assert sweeps_table.count("<tr>") == 1 + 6 and text.count("data:image/png;base64,") == 6
    assert f"AC 1: {caliper.value_text()}" in text
    assert "pixel spacing 0.280 x 0.280 mm (the MetaImage&#x27;s header)" in text
    assert len(exported.frames) == 6 and frame in exported.frames  # the measured frame is sweep 1's choice
    sidecar = json.loads((tmp_path / "report" / f"a_frame{frame:03d}_sweep1_below-threshold.json").read_text())
    assert sidecar["calipers"][0]["kind"] == "ellipse"
    with pytest.raises(Exception, match="already exists"):  # a report is never overwritten
        write_report(scored, tmp_path / "report")


def _pictures(text):
    import base64
    import cv2
    return [cv2.imdecode(np.frombuffer(base64.b64decode(chunk.split('"')[0]), np.uint8), cv2.IMREAD_COLOR)
            for chunk in text.split("data:image/png;base64,")[1:]]


def test_the_report_draws_the_caliper_and_gives_the_models_ac_only_for_good_frames(folder, tmp_path, tiny_seg_path):
    from fetal_iqa_gui.review.report import CALIPER_BGR, render_html
    scored = scored_case(folder / "a.mha")
    scored.model = ModelInfo("tiny seg", "id-2", 0.01, task="segmentation")
    masks = np.zeros((scored.case.n_frames, 224, 224), bool)
    masks[:, 1:3, 1:3] = True  # a speck on every frame: 4 pixels, 0.008 % of the frame
    scored.masks, scored.threshold = masks, 0.9  # only the best frames of the last sweeps are good
    frame = int(scored.case.layout.image_frames(scored.case.layout.sweeps[0])[3])
    scored.set_calipers(frame, [EllipseCaliper(Ellipse((370.0, 280.0), (100.0, 80.0), 0.0), scored.case.spacing_mm)])
    chosen = {1: frame}
    text = render_html(scored, chosen, None)
    assert "— (the frame is below the threshold)" in text  # never the speck's "AC 3 mm"
    [picture] = _pictures(text)
    yellow = np.all(np.abs(picture.astype(int) - CALIPER_BGR) < 40, axis=2)
    assert yellow.sum() > 500  # the ellipse and its label, drawn on the measured frame
    assert "Patient and exam" in text and "fill them in by hand" in text


def test_the_report_fills_the_patient_and_exam_from_the_dicom(tmp_path, small_case):
    from fetal_iqa_gui.review.report import render_html
    from tests.support import write_us_dicom
    pytest.importorskip("pydicom")
    path = write_us_dicom(tmp_path / "us.dcm", small_case.frames[:40], regions=[dict(PhysicalDeltaX=0.028,
                                                                                      PhysicalDeltaY=0.028)],
                          PatientName="Doe^Jane", PatientID="MRN-0042", PatientBirthDate="19950214",
                          StudyDate="20261203", AccessionNumber="ACC-9", OperatorsName="Smith^Ann",
                          Manufacturer="Acme", ManufacturerModelName="Sono 5")
    case = load_case(path)
    assert case.study.patient_name == "Doe, Jane" and case.study.birth_date == "1995-02-14"
    scored = ScoredCase(case, MODEL, np.where(case.layout.padding, np.nan, 0.7).astype(np.float32))
    text = render_html(scored, {1: int(case.layout.image_frames()[0])}, None)
    for value in ("Doe, Jane", "MRN-0042", "2026-12-03", "ACC-9", "Smith, Ann", "Acme Sono 5", "From the DICOM header"):
        assert value in text
    assert "ultrasound region (0018,6011)" in text
