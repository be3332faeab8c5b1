"""Blanking the text scanners burn in around the image: exported frames, overlays and reports keep
only the image region (the DICOM's ultrasound regions, else the probe's field of view), say so in
their sidecars, and a frame whose image region nothing states is refused, not exported as if blanked."""

import base64
import json
import re

import cv2
import numpy as np
import pytest
import SimpleITK as sitk

from fetal_iqa_gui.case.acouslic import load_fov_mask
from fetal_iqa_gui.case.case import Case
from fetal_iqa_gui.case.loading import load_case
from fetal_iqa_gui.review.export import ModelInfo
from fetal_iqa_gui.review.privacy import BY_PROBE_FOV, BY_US_REGIONS, BlankingRefused, burned_in_annotation
from fetal_iqa_gui.review.report import write_report
from fetal_iqa_gui.review.scored_case import ScoredCase

from ...support import BURNED_IN_REGION as REGION
from ...support import BURNED_IN_TEXT as TEXT
from ...support import burned_in_frames, inside_burned_in_region, write_us_dicom

MODEL = ModelInfo("tiny", "classification:abc", 0.5)


def scored(case):
    return ScoredCase(case, MODEL, np.linspace(0.2, 0.9, case.n_frames).astype(np.float32))


def exported(report, ending):
    return next(path for path in report.written if path.name.endswith(ending))


def read_png(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


@pytest.fixture
def us_dicom(tmp_path):
    return write_us_dicom(tmp_path / "ge.dcm", burned_in_frames(), regions=[REGION])


def test_outside_the_dicoms_ultrasound_region_the_export_is_black_and_inside_it_unchanged(us_dicom, tmp_path):
    case = load_case(us_dicom)
    assert case.us_regions == ((40, 30, 199, 149),)
    report = scored(case).export([1], tmp_path / "blanked", overlay=True, blank=True)
    assert not report.problems and report.blanked == BY_US_REGIONS
    png, keep = read_png(exported(report, "1.png")), inside_burned_in_region()
    assert (png[~keep] == 0).all()  # the text is gone, and everything else outside the image with it
    assert np.array_equal(png[keep], case.frames[1][keep])
    overlay = read_png(exported(report, "_overlay.png"))
    assert (overlay[160:175, 150:230] == 0).all()  # the overlay copy too (its caption is ours, at the top)
    sidecar = json.loads(exported(report, ".json").read_text(encoding="utf-8"))
    assert sidecar["pixels_blanked"] == "outside the ultrasound region (DICOM US regions)"
    assert sidecar["burned_in_annotation"] == "NO"
    assert "blanked outside the ultrasound region" in report.message(tmp_path / "blanked")


def test_without_the_option_the_frame_is_exported_as_recorded_and_says_text_may_be_there(us_dicom, tmp_path):
    case = load_case(us_dicom)
    report = scored(case).export([1], tmp_path)
    png = read_png(exported(report, "1.png"))
    assert np.array_equal(png, case.frames[1]) and (png[5:20, 10:120] == TEXT).all()
    sidecar = json.loads(exported(report, ".json").read_text(encoding="utf-8"))
    assert sidecar["pixels_blanked"] is None and sidecar["burned_in_annotation"] == "YES"
    assert "blanked" not in report.message(tmp_path)


def test_a_volume_of_the_probes_size_is_blanked_outside_its_field_of_view(small_case, tmp_path):
    fov = load_fov_mask() > 0
    frames = small_case.frames[small_case.frames.reshape(len(small_case.frames), -1).any(1)][:2].copy()
    frames[:, ~fov] = TEXT  # the corners beside the fan: where a scanner writes its text
    path = tmp_path / "probe.mha"
    sitk.WriteImage(sitk.GetImageFromArray(frames), str(path))
    case = load_case(path)
    assert case.us_regions == () and case.frame_size == (744, 562)
    report = scored(case).export([0], tmp_path / "out", blank=True)
    png = read_png(exported(report, ".png"))
    assert (png[~fov] == 0).all() and np.array_equal(png[fov], case.frames[0][fov])
    sidecar = json.loads(exported(report, ".json").read_text(encoding="utf-8"))
    assert sidecar["pixels_blanked"] == "outside the probe's field of view" == BY_PROBE_FOV
    assert sidecar["burned_in_annotation"] == "NO"


def test_a_frame_with_no_region_and_another_size_than_the_probes_is_refused_and_nothing_is_written(tmp_path):
    case = Case.from_array(burned_in_frames(), "/data/aloka.png")
    report = scored(case).export([0, 1], tmp_path / "out", blank=True)
    assert report.frames == [] and report.written == [] and not (tmp_path / "out").exists()
    (error,) = report.problems
    assert isinstance(error, BlankingRefused) and error.exit_code == 2
    message = str(error)
    assert "cannot be blanked" in message and "240 x 180 px" in message and "no ultrasound regions" in message
    assert "744 x 562" in message and "nothing was exported" in message
    assert "blanking outside the image" in message  # the choice to turn off, in plain words here


def test_regions_that_lie_off_the_frame_do_not_count_as_an_image_region(tmp_path):
    off = dict(REGION, RegionLocationMinX0=400, RegionLocationMaxX1=500)
    case = load_case(write_us_dicom(tmp_path / "odd.dcm", burned_in_frames(), regions=[off]))
    (error,) = scored(case).export([0], tmp_path / "out", blank=True).problems
    assert "ultrasound regions lie outside the frame" in str(error)


def test_the_reports_pictures_and_frames_are_blanked_when_asked(us_dicom, tmp_path):
    one = scored(load_case(us_dicom))
    page, exported_frames = write_report(one, tmp_path / "report", blank=True)
    assert exported_frames.blanked == BY_US_REGIONS
    text = page.read_text(encoding="utf-8")
    assert "Every pixel outside the ultrasound region (DICOM US regions) is blanked" in text
    figure = picture_of(text)
    scale = figure.shape[1] / 240
    top_text = figure[round(8 * scale):round(17 * scale), round(14 * scale):round(115 * scale)]
    assert top_text.max() == 0  # where the banner was
    plain, _ = write_report(one, tmp_path / "plain")
    assert "is blanked" not in plain.read_text(encoding="utf-8")
    assert (picture_of(plain.read_text(encoding="utf-8"))[round(8 * scale):round(17 * scale), round(14 * scale):round(115 * scale)]
            > 200).all()


def picture_of(page: str) -> np.ndarray:
    """The first sweep's picture of a report page, decoded."""
    data = re.search(r'alt="Sweep 1[^"]*" src="data:image/png;base64,([^"]+)"', page).group(1)
    return cv2.imdecode(np.frombuffer(base64.b64decode(data), np.uint8), cv2.IMREAD_COLOR)


def test_a_report_that_cannot_be_blanked_writes_nothing(tmp_path):
    case = Case.from_array(burned_in_frames(), "/data/aloka.png")
    with pytest.raises(BlankingRefused):
        write_report(scored(case), tmp_path / "report", blank=True)
    assert not (tmp_path / "report").exists()


def test_burned_in_annotation_is_no_only_for_blanked_pixels():
    assert burned_in_annotation(True) == "NO" and burned_in_annotation(False) == "YES"
