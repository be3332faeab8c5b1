"""Hostile and damaged inputs (issue 12): each is refused with one clear line naming the file,
before anything outside the input is read, before the memory is spent, and without hanging.

The fault corpus is generated here, small: headers whose data file is elsewhere, a pipe, a
folder, a list; a 3 MB compressed file declaring 3 GB of pixels; a frame 300000 px wide; a DICOM
series with a damaged slice; a file in a folder we may not open. Cases that would hang or eat
memory if the checks broke run in a subprocess with a timeout and an address-space limit.
"""

import os
import resource
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

import fetal_iqa_gui
from fetal_iqa_gui.case import headers
from fetal_iqa_gui.cli import main
from fetal_iqa_gui.case.loading import CaseLoadError, load_case
from fetal_iqa_gui.runs.worklist import Worklist
from tests.support import write_dicom_series, write_us_dicom

REPO = Path(fetal_iqa_gui.__file__).parents[1]
ADDRESS_SPACE = 3 * 2**30  # the subprocesses' limit: far below what a hostile file could make us allocate
PIXELS = np.arange(32, dtype=np.uint8).reshape(2, 4, 4) + 1  # what a good 4 x 4 x 2 header's data file holds


def metaimage(path, data_file, size=(4, 4, 2), extra=""):
    path.write_text(f"ObjectType = Image\nNDims = {len(size)}\nDimSize = {' '.join(map(str, size))}\n"
                    f"ElementType = MET_UCHAR\n{extra}ElementDataFile = {data_file}\n")
    return path


def nrrd(path, data_file, size=(4, 4, 2)):
    path.write_text(f"NRRD0004\ntype: uint8\ndimension: {len(size)}\nsizes: {' '.join(map(str, size))}\n"
                    f"encoding: raw\ndata file: {data_file}\n")
    return path


HEADERS = {"mhd": metaimage, "nhdr": nrrd}


def zlib_zeros(n_bytes, piece):
    """A valid zlib stream of `n_bytes` zeros, one compressed `piece` repeated (zlib itself takes ~30 s for 3 GB).

    After a full flush deflate starts afresh, so each piece compresses to the same bytes; an empty
    final block and the Adler-32 of zeros (a = 1, b = n mod 65521) close the stream.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = compressor.compress(bytes(piece)) + compressor.flush(zlib.Z_FULL_FLUSH)
    adler = (n_bytes % 65521) << 16 | 1
    return b"\x78\xda" + block * (n_bytes // piece) + b"\x03\x00" + adler.to_bytes(4, "big")


def compressed_bomb(path, size=(1500, 1000, 2000)):
    """A MetaImage of about 3 MB whose zeros decompress to size[0] * size[1] * size[2] bytes (3 GB)."""
    frame = size[0] * size[1]
    data = zlib_zeros(frame * size[2], frame)
    header = (f"ObjectType = Image\nNDims = 3\nDimSize = {size[0]} {size[1]} {size[2]}\nElementType = MET_UCHAR\n"
              f"CompressedData = True\nCompressedDataSize = {len(data)}\nElementDataFile = LOCAL\n")
    path.write_bytes(header.encode() + data)
    return path


def dicom_series(folder, slices=6):
    """A DICOM series of `slices` 16 x 16 slices."""
    volume = np.arange(slices * 16 * 16, dtype=np.uint32).reshape(slices, 16, 16) % 250 + 1
    return write_dicom_series(folder, volume.astype(np.uint8))


def damage(path):
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


def assert_refused(path, expected, **kwargs):
    with pytest.raises(CaseLoadError) as error:
        load_case(path, **kwargs)
    message = str(error.value)
    assert f"Cannot open '{path.name}'" in message and expected in message
    return message


def assert_cli_refuses(path, expected, capsys):
    assert main(["info", str(path)]) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and len(lines) == 1, err
    assert lines[0].startswith("error: ") and path.name in lines[0] and expected in lines[0]
    assert "Traceback" not in err


def run_cli_bounded(*args, timeout=60):
    """`fetal-iqa ARGS` in a subprocess limited to ADDRESS_SPACE bytes; a hang fails by the timeout."""
    def limit_memory():
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    return subprocess.run([sys.executable, "-m", "fetal_iqa_gui.cli", *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, preexec_fn=limit_memory,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


def assert_bounded_refusal(path, expected):
    result = run_cli_bounded("info", path)
    lines = result.stderr.splitlines()
    assert result.returncode == 2 and len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: Cannot open '{path.name}'") and expected in lines[0]


# --- detached headers: the data file must be a regular file in the header's folder -----------------

@pytest.fixture
def folder(tmp_path):
    """A case folder with a secret next to it (outside it) that must never be read."""
    (tmp_path / "secret.raw").write_bytes(PIXELS.tobytes())
    case = tmp_path / "case"
    case.mkdir()
    return case


def _outside_link(folder):
    (folder / "link.raw").symlink_to(folder.parent / "secret.raw")
    return "link.raw"


def _device_link(folder):
    (folder / "zero.raw").symlink_to("/dev/zero")
    return "zero.raw"


def _subfolder(folder):
    (folder / "data").mkdir()
    return "data"


DATA_FILE_CASES = {
    "absolute path": (lambda folder: "/etc/passwd", "which is an absolute path"),
    "device, large declared size": (lambda folder: "/dev/urandom", "which is an absolute path"),
    "parent folder": (lambda folder: "../secret.raw", "which leads out of the folder"),
    "link out of the folder": (_outside_link, "which leads out of the folder"),
    "link to a device": (_device_link, "which leads out of the folder"),
    "folder": (_subfolder, "which is not a regular file (it is a folder)"),
    "missing": (lambda folder: "nowhere.raw", "which does not exist"),
    "list": (lambda folder: "LIST", "a list or pattern of data files"),
}


@pytest.mark.parametrize("kind", HEADERS)
@pytest.mark.parametrize("case", DATA_FILE_CASES)
def test_a_data_file_outside_the_folder_is_never_read(folder, kind, case, capsys):
    make_name, expected = DATA_FILE_CASES[case]
    size = (1500, 1000, 2000) if "large" in case else (4, 4, 2)
    header = HEADERS[kind](folder / f"case.{kind}", make_name(folder), size)
    message = assert_refused(header, expected)
    assert "Save the sweep as one .mha or .nrrd file" in message
    assert_cli_refuses(header, expected, capsys)


@pytest.mark.parametrize("kind,pattern", [("mhd", "slice_%03d.raw 1 2 1"), ("nhdr", "slice%d.raw 1 2 1")])
def test_a_pattern_of_data_files_is_refused(folder, kind, pattern):
    for index in (1, 2):  # even when every file it names is there
        (folder / (pattern.split()[0] % index)).write_bytes(PIXELS[index - 1].tobytes())
    assert_refused(HEADERS[kind](folder / f"case.{kind}", pattern), "a list or pattern of data files")


@pytest.mark.parametrize("kind", HEADERS)
@pytest.mark.parametrize("where", ["case.raw", "data/case.raw"])
def test_a_data_file_in_the_folder_or_below_still_opens(folder, kind, where):
    (folder / where).parent.mkdir(exist_ok=True)
    (folder / where).write_bytes(PIXELS.tobytes())
    sweep = load_case(HEADERS[kind](folder / f"case.{kind}", where))
    assert np.array_equal(sweep.frames, PIXELS)


def test_an_ambiguous_metaimage_header_is_refused(folder):
    # MetaIO reads a line without '=' together with the next: the data file would be a guess
    header = metaimage(folder / "case.mhd", "LOCAL", extra="Comment\n")
    assert_refused(header, "its header is not valid")


def test_a_header_longer_than_the_limit_is_refused(folder):
    header = metaimage(folder / "case.mhd", "/etc/passwd", extra="Comment = padding\n" * 5000)
    assert_refused(header, "its header is longer than 64 kB")


def test_an_analyze_pair_whose_image_is_a_link_out_is_refused(folder):
    header = folder / "case.hdr"
    sitk.WriteImage(sitk.GetImageFromArray(PIXELS), str(header))
    (folder / "case.img").unlink()
    (folder / "case.img").symlink_to(folder.parent / "secret.raw")
    assert_refused(header, "its header names the data file 'case.img', which leads out of the folder")


@pytest.mark.parametrize("kind", HEADERS)
def test_a_fifo_as_data_file_does_not_hang(folder, kind):
    os.mkfifo(folder / "case.raw")
    header = HEADERS[kind](folder / f"case.{kind}", "case.raw")
    assert_bounded_refusal(header, "which is not a regular file (it is a pipe (FIFO)")


def test_a_fifo_named_directly_does_not_hang(folder):
    os.mkfifo(folder / "case.mha")
    assert_bounded_refusal(folder / "case.mha", "it is not a regular file (it is a pipe (FIFO)")


# --- declared sizes: refused before decoding --------------------------------------------------------

def test_a_small_compressed_file_declaring_gigabytes_is_refused_with_bounded_memory(tmp_path):
    bomb = compressed_bomb(tmp_path / "bomb.mha")
    assert bomb.stat().st_size < 4e6
    # the budget is at most half the subprocess's address space: 6 GB (3 GB of pixels and our copy) is refused
    assert_bounded_refusal(bomb, "it would need 6.0 GB of memory to open (2000 frames of 1500 x 1000 px), "
                                 "more than the ")


def test_the_default_budget_is_half_the_physical_memory(tmp_path, monkeypatch):
    pages = {"SC_PHYS_PAGES": 2 * 2**20, "SC_PAGE_SIZE": 4096}  # a computer with 8 GiB
    monkeypatch.setattr(os, "sysconf", lambda name: pages[name])
    monkeypatch.setattr(resource, "getrlimit", lambda which: (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    assert headers.default_memory_budget() == 4 * 2**30  # checked first: the bomb must not be decoded here
    assert_refused(compressed_bomb(tmp_path / "bomb.mha"), "it would need 6.0 GB of memory to open "
                   "(2000 frames of 1500 x 1000 px), more than the 4.3 GB allowed")


def test_a_good_file_still_opens_within_the_address_space_limit(folder):
    (folder / "case.raw").write_bytes(PIXELS.tobytes())
    result = run_cli_bounded("info", nrrd(folder / "case.nhdr", "case.raw"))
    assert result.returncode == 0 and "frames: 2" in result.stdout, result.stderr


def test_the_memory_budget_is_a_parameter(folder, capsys):
    (folder / "case.raw").write_bytes(b"\0" * 16)  # declared 3 GB, never read
    header = nrrd(folder / "case.nhdr", "case.raw", (1500, 1000, 2000))
    assert_refused(header, "it would need 6.0 GB of memory to open (2000 frames of 1500 x 1000 px), "
                           "more than the 1.1 GB allowed", memory_budget=1_100_000_000)


@pytest.mark.parametrize("size,shape", [((300000, 1), "300000 x 1 px"), ((2000, 50), "2000 x 50 px"),
                                        ((9000, 9000), "9000 x 9000 px")])
def test_absurd_frame_shapes_are_refused_before_decoding(tmp_path, size, shape, capsys):
    path = metaimage(tmp_path / "frame.mha", "LOCAL", size)
    with open(path, "ab") as file:
        file.write(b"\1" * min(size[0] * size[1], 300000))  # the pixels (truncated if large): never read
    assert_refused(path, f"its frames are {shape}, not an ultrasound picture")
    assert_cli_refuses(path, "not an ultrasound picture", capsys)


# --- DICOM series: a damaged slice is not dropped silently --------------------------------------------

def test_a_series_with_a_damaged_slice_is_refused(tmp_path, capsys):
    folder = dicom_series(tmp_path / "series")
    damage(folder / "slice003.dcm")
    assert_refused(folder, "1 of its 6 DICOM files could not be read (slice003.dcm), "
                           "so every later frame number would be wrong")
    assert_cli_refuses(folder, "could not be read", capsys)


def test_a_two_slice_series_with_a_damaged_slice_is_not_opened_as_one_frame(tmp_path):
    folder = dicom_series(tmp_path / "series", slices=2)
    damage(folder / "slice001.dcm")
    assert_refused(folder, "1 of its 2 DICOM files could not be read")


def test_a_series_opens_beside_hidden_and_non_dicom_files(tmp_path):
    folder = dicom_series(tmp_path / "series", slices=3)
    (folder / "._slice000.dcm").write_bytes(b"\0" * 4096)  # macOS leaves these on USB sticks
    (folder / "README.txt").write_text("exported by the scanner")
    assert load_case(folder).n_frames == 3


def test_a_series_beyond_the_memory_budget_is_refused_naming_the_folder(tmp_path):
    folder = dicom_series(tmp_path / "series", slices=3)  # 3 x 16 x 16 uint8 and our copy: 1536 bytes
    assert_refused(folder, "it would need 1536 bytes of memory to open (3 frames of 16 x 16 px), "
                           "more than the 1000 bytes allowed", memory_budget=1000)


def test_a_dicom_folder_holding_a_fifo_does_not_hang(tmp_path):
    folder = dicom_series(tmp_path / "series", slices=3)
    os.mkfifo(folder / "slice999.dcm")
    assert_bounded_refusal(folder, "the folder holds 'slice999.dcm', which is not a regular file")


def test_a_dicom_folder_with_a_link_out_is_refused(tmp_path):
    folder = dicom_series(tmp_path / "series", slices=3)
    dicom_series(tmp_path / "other", slices=1)
    (folder / "extra.dcm").symlink_to(tmp_path / "other" / "slice000.dcm")
    assert_refused(folder, "the folder holds 'extra.dcm', which leads out of the folder")


def _usb_export(folder):
    """A DICOMDIR file-set of one recording (as a scanner writes an exam to a USB stick), and its image file."""
    from pydicom.fileset import FileSet
    fileset = FileSet()
    fileset.add(write_us_dicom(folder.parent / "made.dcm", np.full((2, 16, 16), 9, np.uint8)))
    fileset.write(folder)
    return folder / "DICOMDIR", next(path for path in folder.rglob("IM*") if path.is_file())


def test_a_dicomdir_naming_a_fifo_does_not_hang(tmp_path):
    dicomdir, image = _usb_export(tmp_path / "usb")
    image.unlink()
    os.mkfifo(image)
    assert_bounded_refusal(dicomdir, "it names the file PT000000/ST000000/SE000000/IM000000, which is not a "
                                     "regular file (it is a pipe (FIFO)")


def test_a_dicomdir_naming_a_missing_file_says_so(tmp_path, capsys):
    dicomdir, image = _usb_export(tmp_path / "usb")
    image.unlink()  # a copy of the stick that stopped short
    assert_cli_refuses(dicomdir, "1 file it lists is missing. The copy may be incomplete", capsys)



def test_a_dicomdir_naming_a_file_that_is_not_dicom_says_which(tmp_path, capsys):
    dicomdir, image = _usb_export(tmp_path / "usb")
    image.write_bytes(b"not an image" * 10)  # a stick's file damaged, or another program's file put in its place
    assert_refused(dicomdir, "it names the file PT000000/ST000000/SE000000/IM000000, which is not a DICOM file")
    assert_cli_refuses(dicomdir, "which is not a DICOM file", capsys)
    _usb_export(tmp_path / "usb2")
    image = next(path for path in (tmp_path / "usb2").rglob("IM*") if path.is_file())
    image.write_bytes(image.read_bytes().replace(b"(\x00\x08\x00IS\x02\x002 ", b"(\x00\x08\x00IS\x02\x00xx", 1))  # Number of Frames 'xx'
    assert_refused(tmp_path / "usb2" / "DICOMDIR", "IM000000, which has a damaged header (invalid literal")


def test_a_dicomdir_opened_through_a_link_to_its_folder_opens(tmp_path):
    dicomdir, _ = _usb_export(tmp_path / "usb")
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "exam").symlink_to(tmp_path / "usb")  # ~/exam -> the stick's mount point
    assert load_case(tmp_path / "home" / "exam" / "DICOMDIR").n_frames == 2
    worklist = Worklist(tmp_path / "home" / "exam")
    assert [case.name for case in worklist.cases] == ["IM000000"] and not worklist.take_notices()
    assert load_case(worklist.cases[0].path).n_frames == 2


# --- probing: OS errors become messages -------------------------------------------------------------

def test_a_file_in_a_folder_that_cannot_be_opened_says_so(tmp_path, monkeypatch, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    path = locked / "case.mha"
    original_stat = Path.stat

    def stat_without_search_permission(self, *args, **kwargs):  # what stat() does in a folder without 'x'
        if locked in self.parents:
            raise PermissionError(13, "Permission denied", str(self))
        return original_stat(self, *args, **kwargs)
    monkeypatch.setattr(Path, "stat", stat_without_search_permission)
    assert_refused(path, "you do not have permission to open the folder it is in")
    assert_cli_refuses(path, "permission to open the folder", capsys)


@pytest.mark.skipif(os.geteuid() == 0, reason="root opens any folder")
def test_a_file_in_a_really_unreadable_folder_says_so(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    metaimage(locked / "case.mha", "LOCAL")
    locked.chmod(0)
    try:
        assert_cli_refuses(locked / "case.mha", "permission", capsys)
    finally:
        locked.chmod(0o700)


def test_a_symbolic_link_loop_says_so(tmp_path, capsys):
    loop = tmp_path / "loop.mha"
    loop.symlink_to(loop)
    assert_refused(loop, "it could not be read (Too many levels of symbolic links)")
    assert_cli_refuses(loop, "symbolic links", capsys)


def test_scoring_a_file_in_a_folder_that_cannot_be_opened_says_so(tmp_path, tiny_cls_path, monkeypatch, capsys):
    locked = tmp_path / "locked"
    original_stat = Path.stat

    def stat_without_search_permission(self, *args, **kwargs):
        if locked in self.parents:
            raise PermissionError(13, "Permission denied", str(self))
        return original_stat(self, *args, **kwargs)
    monkeypatch.setattr(Path, "stat", stat_without_search_permission)
    assert main(["score", str(locked / "case.mha"), "--adapter", str(tiny_cls_path), "--device", "cpu",
                 "--out-dir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "error: Cannot open 'case.mha': you do not have permission to open the folder it is in" in err
    assert "Traceback" not in err
