"""DICOM outputs: what a PACS receives of a scored case reads back as the app showed it (patient,
study, frame, AC, ellipse, model), its references resolve, and the DICOM validator finds no error."""

import errno
import os
import shutil
import subprocess

import cv2
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk

from fetal_iqa_gui.base.errors import ExportRefused, WriteError
from fetal_iqa_gui.case.loading import load_case
from fetal_iqa_gui.case.measure import Ellipse
from fetal_iqa_gui.case.spacing import entered_by_user
from fetal_iqa_gui.engine.preprocess import INPUT_SIZE
from fetal_iqa_gui.review.calipers import EllipseCaliper
from fetal_iqa_gui.review.dicom_out import write_dicom
from fetal_iqa_gui.case.study import pseudonym, typed_study
from fetal_iqa_gui.review.dicom_sr import DEMO_WARNING
from fetal_iqa_gui.review.export import ModelInfo
from fetal_iqa_gui.review.report import NOT_A_DEVICE
from fetal_iqa_gui.review.scored_case import ScoredCase
from tests.support import (BURNED_IN_REGION, burned_in_frames, inside_burned_in_region, write_dicom_series,
                           write_us_dicom)

DEMO = ModelInfo("demo model (synthetic data, not for clinical use)", "demo-id", 0.5, is_demo=True)
SEG = ModelInfo("tiny seg", "seg-id", 0.5, task="segmentation")
ULTRASOUND_IMAGE, SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.6.1", "1.2.840.10008.5.1.4.1.1.7"
AC_CODE = ("11979-2", "LN")


def validated(path) -> str:
    """dciodvfy's report of a file, which must hold no error (its warnings are allowed)."""
    if not shutil.which("dciodvfy"):
        pytest.skip("dicom3tools' dciodvfy is not installed")
    checked = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    said = checked.stdout + checked.stderr
    assert "Error" not in said, said
    return said


def items(dataset):
    """Every content item of an SR, depth first."""
    for item in dataset.get("ContentSequence", []):
        yield item
        yield from items(item)


def named(item) -> tuple[str, str]:
    code = item.ConceptNameCodeSequence[0]
    return code.CodeValue, code.CodingSchemeDesignator


def texts(sr) -> list[str]:
    return [item.TextValue for item in items(sr) if item.ValueType == "TEXT"]


def ac_values(sr) -> list[float]:
    return [float(item.MeasuredValueSequence[0].NumericValue) for item in items(sr)
            if item.ValueType == "NUM" and named(item) == AC_CODE]


def read_back(export):
    images = [pydicom.dcmread(path) for path in export.images]
    return images, pydicom.dcmread(export.report)


@pytest.fixture
def scanner_case(tmp_path):
    """A scanner's cine (text burned in around its calibrated region), scored, with the
    sonographer's ellipse kept on the best frame."""
    source = write_us_dicom(tmp_path / "ge.dcm", burned_in_frames(4), regions=[BURNED_IN_REGION],
                            PatientName="Doe^Jane", PatientID="P-17", PatientSex="F", AccessionNumber="ACC9")
    case = load_case(source)
    scored = ScoredCase(case, DEMO, np.array([0.2, 0.4, 0.9, 0.3], np.float32))
    scored.set_calipers(2, [EllipseCaliper(Ellipse((120.0, 90.0), (50.0, 40.0), 20.0), case.spacing_mm, "user")])
    return source, scored


def test_a_scanners_cine_gives_an_ultrasound_image_and_a_report_in_its_study(scanner_case, tmp_path):
    source, scored = scanner_case
    export = write_dicom(scored, tmp_path / "pacs", variant="cpu-fp32-torch", blank=True)
    (image,), sr = read_back(export)
    header = pydicom.dcmread(source)
    assert export.image_kind == "Ultrasound Image" and image.SOPClassUID == ULTRASOUND_IMAGE
    for dataset in (image, sr):  # the patient's record: the same patient and study, a new series
        assert dataset.StudyInstanceUID == header.StudyInstanceUID
        assert (dataset.PatientName, dataset.PatientID, dataset.PatientSex) == ("Doe^Jane", "P-17", "F")
        assert dataset.AccessionNumber == "ACC9" and dataset.SeriesInstanceUID != header.SeriesInstanceUID
    assert image.SeriesInstanceUID != sr.SeriesInstanceUID
    assert len({image.SOPInstanceUID, sr.SOPInstanceUID, header.SOPInstanceUID}) == 3
    # the frame's own pixels, blanked outside the scanner's region, which calibrates it as the cine's did
    region = image.SequenceOfUltrasoundRegions[0]
    assert (region.PhysicalDeltaX, region.PhysicalUnitsXDirection) == (0.03, 3)
    pixels, keep = image.pixel_array, inside_burned_in_region()
    assert pixels.shape == (180, 240) and (pixels[~keep] == 0).all()
    assert np.array_equal(pixels[keep], scored.case.frames[2][keep])
    assert image.BurnedInAnnotation == "NO" and image.SourceImageSequence[0].ReferencedFrameNumber == 3
    # the sonographer's AC, in mm, on an ellipse that references the image written
    assert ac_values(sr) == [pytest.approx(scored.calipers[2][0].ac_mm, abs=0.005)]
    (scoord,) = [item for item in items(sr) if item.ValueType == "SCOORD"]
    assert scoord.GraphicType == "ELLIPSE" and len(scoord.GraphicData) == 8
    assert scoord.ContentSequence[0].ReferencedSOPSequence[0].ReferencedSOPInstanceUID == image.SOPInstanceUID
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence[0]
    assert evidence.SeriesInstanceUID == image.SeriesInstanceUID
    assert evidence.ReferencedSOPSequence[0].ReferencedSOPInstanceUID == image.SOPInstanceUID
    observers = [item.ConceptCodeSequence[0].CodeMeaning for item in items(sr)
                 if item.ValueType == "CODE" and named(item) == ("121005", "DCM") and item.RelationshipType == "CONTAINS"]
    assert observers == ["Person"]  # the sonographer measured, not the model
    said = texts(sr)
    assert NOT_A_DEVICE in said and DEMO_WARNING in said and "DEMO MODEL" in sr.SeriesDescription
    assert any("cpu-fp32-torch" in text and "demo-id" in text for text in said)
    for path in export.written:
        validated(path)


def test_a_metaimage_without_a_patient_gets_a_stable_pseudonym_and_a_secondary_capture(tmp_path):
    frames = np.full((6, 200, 260), 60, np.uint8)
    sitk.WriteImage(sitk.GetImageFromArray(frames), str(tmp_path / "sweep.mha"))
    case = load_case(tmp_path / "sweep.mha")
    masks = np.zeros((6, INPUT_SIZE, INPUT_SIZE), np.uint8)
    for mask in masks:
        cv2.ellipse(mask, (112, 112), (60, 45), 15, 0, 360, 1, -1)
    scored = ScoredCase(case, SEG, np.linspace(0.2, 0.9, 6).astype(np.float32), masks.astype(bool))
    first = write_dicom(scored, tmp_path / "one")
    (image,), sr = read_back(first)
    assert image.SOPClassUID == SECONDARY_CAPTURE and "PixelSpacing" not in image  # nobody calibrated it
    assert image.PatientID == pseudonym(case.content_hash) == "ANON-" + case.content_hash[:8].upper()
    assert image.BurnedInAnnotation == "YES" and image.pixel_array.shape == (200, 260)
    # no spacing: the model's ellipse in pixels, no AC in mm, and the report says why
    assert ac_values(sr) == [] and [item.GraphicType for item in items(sr) if item.ValueType == "SCOORD"] == ["ELLIPSE"]
    assert any("without an abdominal circumference in mm: the pixel spacing is unknown" in text for text in texts(sr))
    assert not any("DEMO" in text for text in texts(sr))
    for path in first.written:
        validated(path)
    # the spacing entered: the model's AC, in mm, and Pixel Spacing; the same study as the first export
    scored.set_spacing(entered_by_user((0.2, 0.25)))
    (image2,), sr2 = read_back(write_dicom(scored, tmp_path / "two"))
    assert [float(v) for v in image2.PixelSpacing] == [0.25, 0.2]  # row, then column
    assert ac_values(sr2) == [pytest.approx(scored.measurement_of(5).ac_mm, abs=0.005)]
    assert image2.StudyInstanceUID == image.StudyInstanceUID == sr2.StudyInstanceUID
    assert image2.SeriesInstanceUID != image.SeriesInstanceUID
    # what the user typed in Edit > Patient details replaces the pseudonym, in DICOM's own forms
    case.study = typed_study("Roe, Mary", "MRN-7", "1990-05-01", "2026-11-30")
    (image3,), sr3 = read_back(write_dicom(scored, tmp_path / "three"))
    for dataset in (image3, sr3):
        assert (str(dataset.PatientName), dataset.PatientID, dataset.PatientBirthDate, dataset.StudyDate) == (
            "Roe^Mary", "MRN-7", "19900501", "20261130")
    assert image3.StudyInstanceUID == image.StudyInstanceUID  # the same case: the same study


def test_a_frame_without_an_ac_is_still_reported_with_its_score(tmp_path):
    source = write_us_dicom(tmp_path / "bare.dcm", burned_in_frames(3))
    case = load_case(source)
    scored = ScoredCase(case, ModelInfo("cls", "cls-id", 0.5), np.array([0.1, 0.3, 0.2], np.float32))
    export = write_dicom(scored, tmp_path / "out")
    (image,), sr = read_back(export)
    assert image.SOPClassUID == SECONDARY_CAPTURE  # a cine without regions: nothing to carry as an ultrasound image
    assert image.StudyInstanceUID == pydicom.dcmread(source).StudyInstanceUID
    assert "_below-threshold" in export.images[0].name and ac_values(sr) == []
    assert any("no abdominal circumference: the model does not segment" in text for text in texts(sr))
    scores = [float(item.MeasuredValueSequence[0].NumericValue) for item in items(sr)
              if item.ValueType == "NUM" and named(item) == ("FIQA001", "99FIQA")]
    assert scores == [pytest.approx(0.3)]
    for path in export.written:
        validated(path)


def test_a_series_whose_ultrasound_region_is_empty_gives_a_valid_secondary_capture(tmp_path):
    """ITK writes a US series with an empty region: copied, it would make an invalid ultrasound image."""
    folder = write_dicom_series(tmp_path / "series", np.random.default_rng(2).integers(1, 255, (4, 24, 32), np.uint8))
    scored = ScoredCase(load_case(folder), ModelInfo("cls", "cls-id", 0.5), np.linspace(0.3, 0.9, 4).astype(np.float32))
    export = write_dicom(scored, tmp_path / "out")
    (image,), sr = read_back(export)
    assert image.SOPClassUID == SECONDARY_CAPTURE and "SequenceOfUltrasoundRegions" not in image
    assert image.StudyInstanceUID == pydicom.dcmread(next(folder.iterdir())).StudyInstanceUID == sr.StudyInstanceUID
    for path in export.written:
        validated(path)


def test_a_full_disk_leaves_no_dicom_file_and_an_unscored_case_writes_none(scanner_case, tmp_path, monkeypatch):
    _, scored = scanner_case
    real_fsync, flushed = os.fsync, []

    def disk_fills_at_the_report(fd):
        flushed.append(fd)
        if len(flushed) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)
    with monkeypatch.context() as patch:
        patch.setattr(os, "fsync", disk_fills_at_the_report)
        with pytest.raises(WriteError, match="the disk is full"):
            write_dicom(scored, tmp_path / "out")
    assert not any((tmp_path / "out").iterdir())  # not the image without its report
    with pytest.raises(ExportRefused, match="not scored"):
        write_dicom(ScoredCase(scored.case), tmp_path / "out")
    assert len(write_dicom(scored, tmp_path / "out").written) == 2
