"""Opening sweeps: every format, the conversion rules, the layout, and every kind of bad input."""

import os

import numpy as np
import pytest
import SimpleITK as sitk

from fetal_iqa_gui.base.errors import CaseLoadError
from fetal_iqa_gui.case.case import Case, CaseLayout
from fetal_iqa_gui.case.loading import load_case
from tests.support import write_dicom_series, write_us_dicom


def write(volume, path, spacing=(0.28, 0.28, 1.0)):
    image = sitk.GetImageFromArray(volume, isVector=volume.ndim == 4 or (volume.ndim == 3 and volume.shape[-1] == 3 and volume.dtype == np.uint8 and len(spacing) == 2))
    image.SetSpacing(spacing[:image.GetDimension()])
    sitk.WriteImage(image, str(path))
    return path


@pytest.fixture
def volume(rng):
    frames = rng.integers(1, 255, size=(12, 40, 50), dtype=np.uint8)
    frames[9:] = 0  # padding at the end
    return frames


@pytest.mark.parametrize("suffix", [".mha", ".mhd", ".nii", ".nii.gz", ".nrrd"])
def test_volume_formats_open_with_pixels_spacing_and_padding(tmp_path, volume, suffix):
    sweep = load_case(write(volume, tmp_path / f"case{suffix}"))
    assert np.array_equal(sweep.frames, volume)
    assert sweep.spacing_mm == pytest.approx((0.28, 0.28))
    assert sweep.layout.padding.tolist() == [False] * 9 + [True] * 3
    assert len(sweep.layout.sweeps) == 1


def test_same_pixels_in_two_formats_hash_alike(tmp_path, volume):
    a = load_case(write(volume, tmp_path / "a.mha"))
    b = load_case(write(volume, tmp_path / "b.nrrd"))
    assert a.content_hash == b.content_hash


def test_acouslic_case_has_six_sweeps_and_padding_per_sweep(tmp_path):
    frames = np.zeros((840, 8, 8), np.uint8)
    for sweep in range(6):
        frames[sweep * 140:sweep * 140 + 100 + sweep] = 7
    sweep = load_case(write(frames, tmp_path / "case.mha"))
    assert [len(s) for s in sweep.layout.sweeps] == [140] * 6
    assert [len(sweep.layout.padding_frames(s)) for s in sweep.layout.sweeps] == [40, 39, 38, 37, 36, 35]
    assert sweep.layout.sweep_of(141).number == 2


def test_rgb_png_becomes_one_grey_frame_by_luma(tmp_path):
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 100, 200, 50
    image = sitk.GetImageFromArray(rgb, isVector=True)
    sitk.WriteImage(image, str(tmp_path / "frame.png"))
    sweep = load_case(tmp_path / "frame.png")
    assert sweep.frames.shape == (1, 20, 30)
    assert np.all(sweep.frames == round(0.299 * 100 + 0.587 * 200 + 0.114 * 50))


def test_16_bit_and_float_volumes_are_scaled_by_their_own_range(tmp_path):
    values = np.linspace(1000, 3000, 2 * 4 * 5).reshape(2, 4, 5)
    for dtype in (np.uint16, np.float32):
        sweep = load_case(write(values.astype(dtype), tmp_path / f"v-{np.dtype(dtype).name}.mha"))
        assert sweep.frames.min() == 0 and sweep.frames.max() == 255
        assert np.all(np.diff(sweep.frames.ravel().astype(int)) >= 0)


@pytest.mark.parametrize("photometric", ["RGB", "YBR_FULL"])
def test_multiframe_colour_dicom_opens_as_grey_frames(tmp_path, photometric):
    frames = np.zeros((3, 16, 20, 3), np.uint8)
    frames[1] = 128 if photometric == "YBR_FULL" else 90  # YBR grey: Y=128, Cb=Cr=128
    if photometric == "YBR_FULL":
        frames[..., 1:] = 128
        frames[1, ..., 0] = 128
        frames[0, ..., 0] = 0
        frames[2, ..., 0] = 200
    else:
        frames[2] = 200
        frames[0] = 1
    sweep = load_case(write_us_dicom(tmp_path / "us.dcm", frames, PhotometricInterpretation=photometric))
    assert sweep.frames.shape == (3, 16, 20)
    expected = [0, 128, 200] if photometric == "YBR_FULL" else [1, 90, 200]
    assert [int(np.median(f)) for f in sweep.frames] == pytest.approx(expected, abs=2)


def test_dicom_series_folder_opens_in_slice_order(tmp_path, rng):
    volume = rng.integers(1, 255, size=(4, 16, 16), dtype=np.uint8)
    sweep = load_case(write_dicom_series(tmp_path, volume))
    assert np.array_equal(sweep.frames, volume)


@pytest.mark.parametrize("case,expected", [
    ("missing", "does not exist"),
    ("empty_file", "empty"),
    ("text_file", "not an image format"),
    ("truncated", "truncated or corrupt"),
    ("bad_header", "header is not valid"),
    ("no_dicom_folder", "no DICOM series"),
    ("all_blank", "every frame is blank"),
    ("four_d", "4-D image"),
])
def test_bad_input_gives_one_clear_message_naming_the_file(tmp_path, volume, case, expected):
    path = tmp_path / "input.mha"
    if case == "empty_file":
        path.write_bytes(b"")
    elif case == "text_file":
        path = tmp_path / "notes.txt"
        path.write_text("not an image")
    elif case == "truncated":
        write(np.full((40, 64, 64), 9, np.uint8), path)
        path.write_bytes(path.read_bytes()[:-5000])
    elif case == "bad_header":
        path.write_bytes(b"ObjectType = Image\nNDims = 3\nDimSize = 5 5\nElementType = MET_NONSENSE\nElementDataFile = LOCAL\n")
    elif case == "no_dicom_folder":
        path = tmp_path / "folder"
        path.mkdir()
        (path / "readme.txt").write_text("nothing here")
    elif case == "all_blank":
        write(np.zeros((3, 8, 8), np.uint8), path)
    elif case == "four_d":
        sitk.WriteImage(sitk.Image([4, 4, 3, 2], sitk.sitkUInt8), str(path))
    with pytest.raises(CaseLoadError) as error:
        load_case(path)
    message = str(error.value)
    assert path.name in message and expected in message
    assert "Traceback" not in message and "itk::" not in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_says_permission(tmp_path, volume):
    path = write(volume, tmp_path / "locked.mha")
    path.chmod(0)
    with pytest.raises(CaseLoadError, match="permission"):
        load_case(path)


def test_unreadable_file_message_when_access_is_denied(tmp_path, volume, monkeypatch):
    path = write(volume, tmp_path / "locked.mha")
    monkeypatch.setattr(os, "access", lambda p, mode: False)
    with pytest.raises(CaseLoadError, match="permission to read"):
        load_case(path)


def test_layout_lists_image_frames_per_sweep():
    padding = np.array([False, False, True, False, True, True])
    layout = CaseLayout.equal_sweeps(padding, 2)
    assert layout.image_frames().tolist() == [0, 1, 3]
    assert layout.image_frames(layout.sweeps[1]).tolist() == [3]


def test_sweep_from_array_detects_padding():
    frames = np.ones((5, 4, 4), np.uint8)
    frames[3] = 0
    assert Case.from_array(frames).layout.padding.tolist() == [False, False, False, True, False]


def test_jpeg_opens_as_one_frame(tmp_path):
    import cv2
    picture = np.full((24, 32, 3), (40, 120, 200), np.uint8)  # BGR on disk
    cv2.imwrite(str(tmp_path / "frame.jpg"), picture)
    sweep = load_case(tmp_path / "frame.jpg")
    assert sweep.frames.shape == (1, 24, 32)
    assert abs(int(np.median(sweep.frames)) - round(0.299 * 200 + 0.587 * 120 + 0.114 * 40)) <= 3


def _layout_of(runs):
    """A layout from (images, padding) runs: [(3, 2), (4, 0)] is 3 images, 2 blank, 4 images."""
    padding = np.concatenate([np.r_[np.zeros(images, bool), np.ones(blank, bool)] for images, blank in runs])
    return CaseLayout.detect(padding)


@pytest.mark.parametrize("runs, expected", [
    ([(25, 5)] * 6, [(0, 30), (30, 60), (60, 90), (90, 120), (120, 150), (150, 180)]),  # synth --frames-per-sweep 30
    ([(100, 0)], [(0, 100)]),  # one sweep, no padding
    ([(0, 4), (10, 2), (8, 0)], [(0, 16), (16, 24)]),  # leading padding joins the first sweep
    ([(7, 1), (7, 1), (7, 1)], [(0, 8), (8, 16), (16, 24)]),  # any length, even one blank frame
    ([(130, 10)] * 5 + [(0, 140)], [(i * 140, (i + 1) * 140) for i in range(6)]),  # the challenge's, a sweep missing
])
def test_sweeps_are_the_runs_of_images_or_the_challenges_slots(runs, expected):
    layout = _layout_of(runs)
    assert [(s.start, s.stop) for s in layout.sweeps] == expected
    assert [s.number for s in layout.sweeps] == list(range(1, len(expected) + 1))


def test_padding_is_one_band_per_run():
    layout = _layout_of([(0, 4), (10, 2), (8, 3)])
    assert layout.padding_runs() == [(0, 4), (14, 16), (24, 27)]
    assert _layout_of([(5, 0)]).padding_runs() == []


def test_a_synthetic_case_of_any_length_opens_with_its_sweeps(tmp_path):
    from fetal_iqa_gui.case import synthetic
    [made] = synthetic.write_dataset(tmp_path, cases=1, seed=5, frames_per_sweep=30)
    case = load_case(tmp_path / synthetic.IMAGES_DIR / f"{made.uuid}.mha")
    assert len(case.layout.sweeps) == 6 and all(len(s) == 30 for s in case.layout.sweeps)


def test_a_data_file_shorter_than_its_header_declares_is_refused_before_itk_reads_it(tmp_path, capfd):
    """SimpleITK 2.3 (the floor) reads a short data file with only a warning on stderr and leaves
    the missing frames as whatever memory held: refused from the sizes alone, whatever the version."""
    path = tmp_path / "sweep.mhd"
    write(np.full((12, 32, 32), 9, np.uint8), path)
    raw = tmp_path / "sweep.raw"
    raw.write_bytes(raw.read_bytes()[:-1024])
    with pytest.raises(CaseLoadError, match="the header declares 12288 bytes of pixels, the file holds 11264 bytes"):
        load_case(path)
    assert "MetaImage" not in capfd.readouterr().err  # ITK was never asked
