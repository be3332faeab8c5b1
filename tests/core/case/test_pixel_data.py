"""Pixel data that does not cover what the header declares (issue 29): refused before decoding, with
the numbers, instead of opening the missing frames as whatever was in memory."""

import zlib

import numpy as np
import pydicom
import pytest
from pydicom.uid import RLELossless

from fetal_iqa_gui.case.loading import CaseLoadError, load_case
from fetal_iqa_gui.cli import main
from tests.support import write_dicom_series, write_us_dicom

FRAMES = (np.arange(5 * 64 * 64, dtype=np.uint32).reshape(5, 64, 64) % 200 + 1).astype(np.uint8)


def edited(path, **attributes):
    """The DICOM file at `path` with its header's attributes changed (its pixel data kept as it is)."""
    header = pydicom.dcmread(path)
    for keyword, value in attributes.items():
        setattr(header, keyword, value)
    header.save_as(path)
    return path


def compressed(path):
    header = pydicom.dcmread(path)
    header.compress(RLELossless, encoding_plugin="pydicom")
    header.save_as(path)
    return path


def refusal(path) -> str:
    with pytest.raises(CaseLoadError) as error:
        load_case(path)
    return str(error.value)


def test_a_dicom_declaring_more_frames_than_it_holds_is_refused_with_the_numbers(tmp_path, capsys):
    path = edited(write_us_dicom(tmp_path / "short.dcm", FRAMES), NumberOfFrames=50)
    assert refusal(path).startswith("Cannot open 'short.dcm': it declares 50 frames of 64 x 64 px (204800 bytes) "
                                    "but holds 20480 bytes of pixel data.")
    assert main(["info", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "holds 20480 bytes of pixel data" in err


def test_a_dicom_cut_short_inside_its_pixel_data_is_refused(tmp_path):
    path = write_us_dicom(tmp_path / "cut.dcm", FRAMES)
    path.write_bytes(path.read_bytes()[:-4096])  # the last frame lost in the copy
    assert "Cannot open 'cut.dcm'" in refusal(path)


def test_a_dicom_holding_more_pixel_data_than_declared_is_refused(tmp_path):
    path = edited(write_us_dicom(tmp_path / "long.dcm", FRAMES), NumberOfFrames=2)
    assert "it declares 2 frames of 64 x 64 px (8192 bytes) but holds 20480 bytes of pixel data" in refusal(path)


def test_a_compressed_dicom_declaring_more_frames_than_fragments_is_refused(tmp_path):
    path = edited(compressed(write_us_dicom(tmp_path / "rle.dcm", FRAMES)), NumberOfFrames=50)
    assert "it declares 50 frames of 64 x 64 px but its compressed pixel data holds 5 fragments" in refusal(path)


def test_whole_dicom_files_still_open_frame_for_frame(tmp_path):
    native = load_case(write_us_dicom(tmp_path / "native.dcm", FRAMES))
    rle = load_case(compressed(write_us_dicom(tmp_path / "rle.dcm", FRAMES)))
    assert np.array_equal(native.frames, FRAMES) and np.array_equal(rle.frames, FRAMES)


def test_a_series_with_one_slice_short_of_pixels_is_refused_naming_the_slice(tmp_path):
    folder = write_dicom_series(tmp_path / "series", FRAMES)
    slice_file = folder / "slice002.dcm"
    header = pydicom.dcmread(slice_file)
    header.PixelData = header.PixelData[:1024]
    header.save_as(slice_file)
    assert refusal(folder).startswith("Cannot open 'series': its file 'slice002.dcm': it declares 1 frame of "
                                      "64 x 64 px (4096 bytes) but holds 1024 bytes of pixel data.")


@pytest.mark.parametrize("name,header", [
    ("short.mha", b"ObjectType = Image\nNDims = 3\nDimSize = 64 64 50\nElementType = MET_UCHAR\nElementDataFile = LOCAL\n"),
    ("short.nrrd", b"NRRD0004\ntype: uint8\ndimension: 3\nsizes: 64 64 50\nencoding: raw\n\n")])
def test_raw_volumes_shorter_than_declared_are_refused(tmp_path, name, header):
    """NRRD: ITK reads the declared bytes and fails short of them. MetaImage: checked from the sizes
    before ITK, whose 2.3 (the floor) read the short file with a warning and garbage frames."""
    path = tmp_path / name
    path.write_bytes(header + FRAMES.tobytes())
    assert "the file is truncated or corrupt" in refusal(path)


def compressed_metaimage(path, pixels, frames_declared=5, data_file=None):
    """A compressed MetaImage of 64 x 64 px frames whose header declares `frames_declared`, its zlib stream `pixels`
    (after the header, or in `data_file` beside it)."""
    header = (f"ObjectType = Image\nNDims = 3\nDimSize = 64 64 {frames_declared}\nElementType = MET_UCHAR\n"
              f"CompressedData = True\nCompressedDataSize = {len(pixels)}\n"
              f"ElementDataFile = {data_file.name if data_file else 'LOCAL'}\n").encode()
    if data_file:
        data_file.write_bytes(pixels)
        path.write_bytes(header)
    else:
        path.write_bytes(header + pixels)
    return path


@pytest.mark.parametrize("where", ["local", "data file"])
def test_compressed_metaimages_that_inflate_short_or_damaged_are_refused(tmp_path, where):
    """MetaIO fills what a compressed stream lacks with whatever memory held (different on every open) and says
    only 'Uncompress failed' on stderr; a stream whose checksum fails is read as if whole."""
    data_file = tmp_path / "case.zraw" if where == "data file" else None
    short = compressed_metaimage(tmp_path / "short.mha", zlib.compress(FRAMES.tobytes()), 50, data_file)
    assert ("the file is truncated or corrupt: the header declares 204800 bytes of pixels, its compressed data "
            "holds 20480 bytes") in refusal(short)
    damaged = bytearray(zlib.compress(FRAMES.tobytes()))
    damaged[-2] ^= 0xFF  # the checksum
    assert "its compressed pixels are damaged" in refusal(compressed_metaimage(tmp_path / "damaged.mha",
                                                                             bytes(damaged), data_file=data_file))
    cut = compressed_metaimage(tmp_path / "cut.mha", zlib.compress(FRAMES.tobytes())[:-100], data_file=data_file)
    assert "its compressed pixels are cut short" in refusal(cut)
    whole = compressed_metaimage(tmp_path / "whole.mha", zlib.compress(FRAMES.tobytes()), data_file=data_file)
    assert np.array_equal(load_case(whole).frames, FRAMES)
    if where == "local":  # MetaIO inflates garbage from a stream whose size is not stated (writers always state it)
        whole.write_bytes(whole.read_bytes().replace(b"CompressedDataSize", b"Comment"))
        assert "does not give the size of its compressed pixels" in refusal(whole)


@pytest.mark.parametrize("name,cut", [("short.nii", "pixels"), ("short.nii.gz", "pixels"), ("cut.nii.gz", "stream")])
def test_nifti_files_shorter_than_declared_are_refused(tmp_path, name, cut):
    """ITK opened them whole, the missing frames blank (and padding, unscored, as if the recording held them)."""
    import gzip
    import SimpleITK as sitk
    sitk.WriteImage(sitk.GetImageFromArray(FRAMES), str(tmp_path / "whole.nii"))
    written = (tmp_path / "whole.nii").read_bytes()
    if cut == "pixels":  # the last frame lost
        data = written[:-4096]
        data = gzip.compress(data) if name.endswith(".gz") else data
    else:  # the copy stopped inside the compressed stream
        data = gzip.compress(written)[:-30]
    (tmp_path / name).write_bytes(data)
    expected = ("its header declares 20832 bytes (header and pixels), the file holds 16736 bytes" if cut == "pixels"
                else "its compressed pixels are cut short")
    assert f"the file is truncated or corrupt: {expected}" in refusal(tmp_path / name)
    (tmp_path / "whole.nii.gz").write_bytes(gzip.compress(written))
    assert np.array_equal(load_case(tmp_path / "whole.nii").frames, load_case(tmp_path / "whole.nii.gz").frames)
