"""Pixel spacing as ultrasound machines write it: every calibration kind gives the AC of a known
ellipse, unknown stays unknown (never a default presented as a measurement), and the spacing's
source is named wherever the spacing is shown."""

import math

import cv2
import numpy as np
import pytest
import SimpleITK as sitk

from fetal_iqa_gui.case.loading import load_case
from fetal_iqa_gui.case.measure import MeasurementError, measure_abdomen, ramanujan_circumference
from fetal_iqa_gui.review.calipers import check_spacing

from ...support import write_us_dicom

pytest.importorskip("pydicom")

ROWS, COLUMNS = 400, 520


def ellipse_frames(axes_px, count=2):
    """Frames holding one filled ellipse (a mask, or a bright abdomen): centred, unrotated."""
    frame = np.zeros((ROWS, COLUMNS), np.uint8)
    cv2.ellipse(frame, (COLUMNS // 2, ROWS // 2), tuple(int(a) for a in axes_px), 0, 0, 360, 255, -1)
    return np.stack([frame] * count)


CIRCLE_MM = 30.0  # a circle of radius 30 mm in the patient: AC 2 pi 30 = 188.5 mm, whatever the pixels


def circle_frames(sx, sy):
    return ellipse_frames((CIRCLE_MM / sx, CIRCLE_MM / sy))


# (tags, (sx, sy) in mm, words the source must hold)
CALIBRATIONS = {
    "Pixel Spacing only": (dict(PixelSpacing=[0.25, 0.25]), (0.25, 0.25), "Pixel Spacing"),
    "Imager Pixel Spacing only": (dict(ImagerPixelSpacing=[0.3, 0.3]), (0.3, 0.3), "Imager Pixel Spacing"),
    "one US region in cm": (dict(regions=[dict(PhysicalDeltaX=0.028, PhysicalDeltaY=0.028)]), (0.28, 0.28),
                            "ultrasound region"),
    "one US region, non-square pixels": (dict(regions=[dict(PhysicalDeltaX=0.03, PhysicalDeltaY=0.02)]), (0.3, 0.2),
                                         "ultrasound region"),
    "two US regions: the image and a Doppler strip": (
        dict(regions=[dict(RegionDataType=3, PhysicalDeltaX=0.05, PhysicalDeltaY=0.1,  # spectral: another calibration
                           RegionLocationMinY0=ROWS - 60),
                      dict(PhysicalDeltaX=0.022, PhysicalDeltaY=0.022, RegionLocationMaxY1=ROWS - 61)]),
        (0.22, 0.22), "ultrasound region 2 of 2"),
    "a negative delta (the axis flipped)": (dict(regions=[dict(PhysicalDeltaX=0.025, PhysicalDeltaY=-0.025)]),
                                            (0.25, 0.25), "ultrasound region"),
}


@pytest.mark.parametrize("kind", CALIBRATIONS)
def test_every_dicom_calibration_gives_the_known_ac(tmp_path, kind):
    tags, (sx, sy), words = CALIBRATIONS[kind]
    path = write_us_dicom(tmp_path / "us.dcm", circle_frames(sx, sy), **tags)
    case = load_case(path)
    assert case.spacing_mm == pytest.approx((sx, sy))
    assert words in case.spacing.source
    ac = measure_abdomen(case.frames[0], case.spacing_mm).ac_mm
    assert ac == pytest.approx(2 * math.pi * CIRCLE_MM, rel=0.005)


def test_the_ultrasound_region_is_what_was_690_mm(tmp_path):
    """The issue's file: calibrated only in its region, it opened at 1 mm and gave AC 690 mm."""
    axes = (250, 180)
    path = write_us_dicom(tmp_path / "us.dcm", ellipse_frames(axes), regions=[dict(PhysicalDeltaX=0.028,
                                                                                     PhysicalDeltaY=0.028)])
    ac = measure_abdomen(load_case(path).frames[0], load_case(path).spacing_mm).ac_mm
    assert ac == pytest.approx(ramanujan_circumference(*axes) * 0.28, rel=0.005)
    assert 50 < ac < 450


def test_a_dicom_without_calibration_has_no_spacing_and_no_ac(tmp_path):
    case = load_case(write_us_dicom(tmp_path / "us.dcm", ellipse_frames((150, 120))))
    assert case.spacing_mm is None
    assert "no calibration" in case.spacing.describe()
    assert measure_abdomen(case.frames[0], case.spacing_mm).ac_mm is None
    with pytest.raises(MeasurementError, match="unknown"):
        check_spacing(case.spacing_mm)


def test_regions_in_other_units_are_not_a_calibration(tmp_path):
    regions = [dict(PhysicalUnitsXDirection=4, PhysicalUnitsYDirection=7, PhysicalDeltaX=0.01, PhysicalDeltaY=0.5)]
    case = load_case(write_us_dicom(tmp_path / "doppler.dcm", ellipse_frames((150, 120)), regions=regions))
    assert case.spacing_mm is None
    assert "not calibrated in cm" in case.spacing.source and "seconds" in case.spacing.source


def test_calibrations_that_disagree_are_named(tmp_path):
    path = write_us_dicom(tmp_path / "us.dcm", ellipse_frames((150, 120)), PixelSpacing=[0.3, 0.3],
                          regions=[dict(PhysicalDeltaX=0.02, PhysicalDeltaY=0.02)])
    spacing = load_case(path).spacing
    assert spacing.mm == (0.3, 0.3) and "Pixel Spacing" in spacing.source
    assert "ultrasound region" in spacing.note and "0.200" in spacing.note


def test_a_dicom_series_takes_its_first_files_calibration(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    frames = circle_frames(0.25, 0.25)
    for index in range(3):
        write_us_dicom(folder / f"f{index}.dcm", frames[:1], regions=[dict(PhysicalDeltaX=0.025, PhysicalDeltaY=0.025)],
                       SOPClassUID="1.2.840.10008.5.1.4.1.1.6.1", InstanceNumber=index + 1,
                       SeriesInstanceUID="1.2.826.0.1.3680043.2.1125.7", ImagePositionPatient=[0, 0, index])
    case = load_case(folder)
    assert case.spacing_mm == pytest.approx((0.25, 0.25)) and "ultrasound region" in case.spacing.source


def test_pictures_and_uncalibrated_volumes_have_unknown_spacing(tmp_path):
    frame = ellipse_frames((150, 120), 1)[0]
    cv2.imwrite(str(tmp_path / "frame.png"), frame)
    assert load_case(tmp_path / "frame.png").spacing_mm is None  # was the probe's 0.28: a guess
    volume = sitk.GetImageFromArray(ellipse_frames((150, 120)))
    sitk.WriteImage(volume, str(tmp_path / "plain.mha"))  # ITK writes 1 x 1: no calibration
    assert load_case(tmp_path / "plain.mha").spacing.describe().startswith("unknown")
    volume.SetSpacing((0.28, 0.28, 1.0))
    sitk.WriteImage(volume, str(tmp_path / "calibrated.nrrd"))
    calibrated = load_case(tmp_path / "calibrated.nrrd").spacing
    assert calibrated.mm == pytest.approx((0.28, 0.28)) and calibrated.source == "the NRRD's header"


def test_measure_on_the_command_line_names_the_spacing_and_flags_the_implausible(tmp_path, capsys):
    from fetal_iqa_gui.cli import main
    path = write_us_dicom(tmp_path / "us.dcm", ellipse_frames((150, 120), 1),
                          regions=[dict(PhysicalDeltaX=0.028, PhysicalDeltaY=0.028)])
    assert main(["measure", str(path)]) == 0
    out = capsys.readouterr().out
    assert float(out.split()[1]) == pytest.approx(ramanujan_circumference(150, 120) * 0.28, rel=0.005)
    assert "ultrasound region (0018,6011)" in out
    assert main(["measure", str(path), "--spacing", "1.5"]) == 0  # the user's spacing, a wrong one
    assert "implausible AC" in capsys.readouterr().err
    bare = write_us_dicom(tmp_path / "bare.dcm", ellipse_frames((150, 120), 1))
    assert main(["measure", str(bare)]) == 2
    err = capsys.readouterr().err
    assert "unknown" in err and "--spacing" in err and "Traceback" not in err
    assert main(["info", str(bare)]) == 0
    assert "spacing: unknown (the DICOM file carries no calibration" in capsys.readouterr().out


def test_an_ac_no_fetus_can_have_is_flagged():
    from fetal_iqa_gui.case.measure import implausible_ac
    mask = ellipse_frames((150, 120), 1)[0]
    assert measure_abdomen(mask, 0.28).warning is None
    huge = measure_abdomen(mask, 1.0)
    assert "outside what a fetus can have" in huge.warning and "implausible" in huge.describe_ac()
    assert "far from round" in measure_abdomen(ellipse_frames((200, 40), 1)[0], 0.28).warning
    assert implausible_ac(30.0) and implausible_ac(None) is None
    assert "not in mm" in measure_abdomen(mask, None).describe_ac()


def _usb_export(tmp_path, recordings):
    """A DICOMDIR file-set as an ultrasound machine writes an exam to a USB stick."""
    from pydicom import dcmread
    from pydicom.fileset import FileSet
    fileset = FileSet()
    for index, frames in enumerate(recordings):
        path = write_us_dicom(tmp_path / f"made{index}.dcm", frames, InstanceNumber=index + 1,
                              regions=[dict(PhysicalDeltaX=0.025, PhysicalDeltaY=0.025)])
        fileset.add(dcmread(path))
    fileset.write(tmp_path / "usb")
    return tmp_path / "usb"


def test_a_usb_export_opens_by_its_dicomdir_or_its_folder_with_the_calibration(tmp_path, caplog):
    first, second = circle_frames(0.25, 0.25), np.zeros((3, ROWS, COLUMNS), np.uint8) + 9
    usb = _usb_export(tmp_path, [first, second])
    for opened in (usb / "DICOMDIR", usb):
        case = load_case(opened)
        assert np.array_equal(case.frames, first)  # the first recording; the image files are in subfolders
        assert case.spacing_mm == pytest.approx((0.25, 0.25)) and "ultrasound region" in case.spacing.source
        assert case.study.patient_id == "SYN-1"
    assert "lists 2 recordings" in caplog.text


def test_a_damaged_dicomdir_is_refused_in_words(tmp_path):
    from fetal_iqa_gui.base.errors import CaseLoadError
    (tmp_path / "DICOMDIR").write_bytes(b"\0" * 128 + b"DICM" + b"garbage" * 20)
    with pytest.raises(CaseLoadError, match="DICOMDIR"):
        load_case(tmp_path / "DICOMDIR")


@pytest.mark.skipif(not __import__("shutil").which("dciodvfy"), reason="dicom3tools' dciodvfy is not installed")
@pytest.mark.parametrize("kind", CALIBRATIONS)
def test_the_test_files_are_valid_ultrasound_dicom_by_dciodvfy(tmp_path, kind):
    """What these tests open is what a scanner writes: the DICOM validator finds no error in it."""
    import subprocess
    tags, (sx, sy), _ = CALIBRATIONS[kind]
    path = write_us_dicom(tmp_path / "us.dcm", circle_frames(sx, sy)[:1], **tags)
    checked = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    said = checked.stdout + checked.stderr
    assert "USMultiFrameImage" in said and "Error" not in said, said


def test_an_export_of_an_uncalibrated_frame_says_so_and_claims_no_size(tmp_path):
    import json
    from fetal_iqa_gui.review.export import ModelInfo
    from fetal_iqa_gui.review.scored_case import ScoredCase
    case = load_case(write_us_dicom(tmp_path / "bare.dcm", ellipse_frames((150, 120))))
    scored = ScoredCase(case, ModelInfo("m", "id", 0.5), np.full(case.n_frames, 0.9, np.float32))
    report = scored.export([0], tmp_path / "out")
    assert not report.problems
    sidecar = json.loads(next((tmp_path / "out").glob("*.json")).read_text())
    assert sidecar["pixel_spacing_mm"] is None and "no calibration" in sidecar["pixel_spacing_source"]
    png = next((tmp_path / "out").glob("*.png")).read_bytes()
    assert b"pHYs" not in png  # no physical size claimed for a pixel nobody calibrated


def test_a_corrected_spacing_measures_the_kept_calipers_again():
    from fetal_iqa_gui.case.case import Case
    from fetal_iqa_gui.case.measure import Ellipse
    from fetal_iqa_gui.case.spacing import entered_by_user
    from fetal_iqa_gui.review.calipers import EllipseCaliper
    from fetal_iqa_gui.review.export import ModelInfo
    from fetal_iqa_gui.review.scored_case import ScoredCase
    case = Case.from_array(ellipse_frames((150, 120)), "bare.png", spacing_mm=(2.0, 2.0))
    scored = ScoredCase(case, ModelInfo("m", "id", 0.5), np.full(case.n_frames, 0.9, np.float32))
    scored.set_calipers(0, [EllipseCaliper(Ellipse((260.0, 200.0), (150.0, 120.0), 0.0), case.spacing_mm)])
    assert scored.calipers[0][0].warning  # 2 mm per pixel: an AC no fetus has
    assert scored.set_spacing(entered_by_user((0.28, 0.28))) == 1
    kept = scored.calipers[0][0]
    assert kept.ac_mm == pytest.approx(ramanujan_circumference(150, 120) * 0.28) and kept.warning is None


def test_the_live_and_kept_labels_say_implausible():
    from fetal_iqa_gui.case.measure import Ellipse
    from fetal_iqa_gui.gui.caliper_graphics import live_text
    from fetal_iqa_gui.review.calipers import EllipseCaliper
    caliper = EllipseCaliper(Ellipse((260.0, 200.0), (150.0, 120.0), 0.0), (2.0, 2.0))
    assert "implausible" in live_text(caliper) and "implausible" in caliper.value_text()
