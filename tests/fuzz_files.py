"""Damaged image files for fuzzing the readers (tests/core/case/test_fuzzed_readers.py and
scripts/fuzz_readers.py): hypothesis strategies that start from a small good MHA, NRRD, NIfTI or
DICOM file and change what its header declares (sizes, frame counts, element types, data offsets,
transfer syntaxes), then cut, flip or insert bytes.

`check_reader` is the property: `load_case` (what `fetal-iqa info` opens a file with) either opens
the file or refuses it with a `FetalIqaError` that gives a reason; nothing else escapes, no file
takes long, and the memory it takes stays within the reader's memory budget.
"""

from __future__ import annotations

import gzip
import io
import resource
import shutil
import struct
import tempfile
import time
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hypothesis import assume, strategies as st

BUDGET = 32 * 2**20  # the reader's memory budget while fuzzing (load_case's memory_budget)
MEMORY_SLACK = 96 * 2**20  # what the libraries may take beyond the budget (ITK, GDCM and pydicom's buffers)
SLOW_SECONDS = 10.0  # a file of at most BUDGET bytes opens in well under a second: longer is a hang
FRAMES = (np.arange(3 * 8 * 8, dtype=np.uint32).reshape(3, 8, 8) * 7 % 250 + 1).astype(np.uint8)


@dataclass(frozen=True)
class FuzzedFile:
    name: str
    content: bytes

    def __repr__(self) -> str:  # hypothesis prints it for a failing example: enough to write it again
        return f"FuzzedFile({self.name!r}, {self.content!r})"


# --- what headers declare -------------------------------------------------------------------------

# small, edge and overflowing counts: 0, one, a few, powers of two around 16, 32 and 64 bits, negative
COUNTS = st.one_of(st.integers(0, 20), st.sampled_from(
    [64, 255, 256, 4096, 8193, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**32 + 8, 2**53, 2**63 - 1,
     2**63, 2**64 + 3, -1, -2, -2**31]))
GARBAGE = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=6)
FLOATS = st.one_of(st.sampled_from(["1", "0.5", "0", "-1", "nan", "inf", "-inf", "1e308", "1e-320", "1e400"]),
                   st.floats(allow_nan=True, allow_infinity=True).map(repr))


def _counts_text(dimensions: int) -> st.SearchStrategy[str]:
    return st.lists(COUNTS, min_size=0, max_size=dimensions + 2).map(lambda values: " ".join(map(str, values)))


def _maybe(good, *others: st.SearchStrategy) -> st.SearchStrategy:
    """Mostly the good value (so that the other fields are reached), else one of `others`."""
    return st.one_of(st.just(good), st.just(good), st.just(good), *others)


# --- damage to the bytes ---------------------------------------------------------------------------

def _damaged(content: bytes, operations: list[tuple[str, float, bytes]]) -> bytes:
    for kind, where, value in operations:
        at = int(where * len(content))
        if kind == "cut":
            content = content[:at]
        elif kind == "flip":
            content = content[:at] + value[:1] + content[at + 1:]
        else:
            content = content[:at] + value + content[at:]
    return content


DAMAGE = st.lists(st.tuples(st.sampled_from(["cut", "flip", "insert"]), st.floats(0, 1),
                            st.binary(min_size=1, max_size=8)), max_size=2)


def _pixel_bytes(declared: int | None, good: bytes) -> st.SearchStrategy[bytes]:
    """The good pixels, as many bytes as the header declares (when it is small), none, or some."""
    choices = [st.just(good), st.just(good), st.just(b""), st.binary(max_size=64)]
    if declared is not None and 0 <= declared <= 2**20:
        choices.append(st.just((good * (declared // max(len(good), 1) + 1))[:declared]))
    return st.one_of(*choices)


_TYPE_BYTES = {"MET_UCHAR": 1, "MET_CHAR": 1, "MET_USHORT": 2, "MET_SHORT": 2, "MET_UINT": 4, "MET_INT": 4,
               "MET_ULONG": 8, "MET_LONG": 8, "MET_ULONG_LONG": 8, "MET_LONG_LONG": 8, "MET_FLOAT": 4,
               "MET_DOUBLE": 8, "uint8": 1, "int8": 1, "uint16": 2, "int16": 2, "uint32": 4, "int32": 4,
               "uint64": 8, "int64": 8, "float": 4, "double": 8}


def _declared_bytes(sizes: str, element: str, channels: str = "1") -> int | None:
    try:
        values = [int(value) for value in sizes.split()] + [int(channels)]
    except ValueError:
        return None
    return int(np.prod(values, dtype=object)) * _TYPE_BYTES.get(element, 1)


# --- MetaImage -------------------------------------------------------------------------------------

@st.composite
def mha_files(draw) -> FuzzedFile:
    """A MetaImage (.mha) of FRAMES, its header fields and pixel bytes changed."""
    element = draw(_maybe("MET_UCHAR", st.sampled_from(list(_TYPE_BYTES)[:12] + ["MET_OTHER", "MET_UCHAR_ARRAY"]),
                          GARBAGE))
    dimensions = draw(_maybe("3", st.sampled_from(["0", "1", "2", "4", "5", "-1", "99", "2147483648"]), GARBAGE))
    sizes = draw(_maybe("8 8 3", _counts_text(3)))
    channels = draw(_maybe(None, st.sampled_from(["0", "1", "2", "3", "4", "5", "-1", "65536"]), GARBAGE))
    fields = {"ObjectType": draw(_maybe("Image", st.sampled_from(["Tube", "Mesh", ""]))),
              "NDims": dimensions, "DimSize": sizes, "ElementType": element,
              "ElementNumberOfChannels": channels,
              "ElementSpacing": draw(_maybe("0.28 0.28 1", st.lists(FLOATS, max_size=4).map(" ".join))),
              "Offset": draw(_maybe(None, st.lists(FLOATS, max_size=4).map(" ".join))),
              "HeaderSize": draw(_maybe(None, COUNTS.map(str))),
              "ElementByteOrderMSB": draw(_maybe("False", st.sampled_from(["True", "1", "maybe"]))),
              "CompressedData": draw(_maybe(None, st.sampled_from(["True", "False", "1"]))),
              "CompressedDataSize": draw(_maybe(None, COUNTS.map(str)))}
    good = FRAMES.tobytes()
    pixels = draw(_pixel_bytes(_declared_bytes(sizes, element, channels or "1"), good))
    if fields["CompressedData"] == "True" and draw(st.booleans()):
        pixels = zlib.compress(pixels)
    fields["ElementDataFile"] = "LOCAL"
    header = "".join(f"{key} = {value}\n" for key, value in fields.items() if value is not None)
    return FuzzedFile("case.mha", _damaged(header.encode() + pixels, draw(DAMAGE)))


# --- NRRD ------------------------------------------------------------------------------------------

@st.composite
def nrrd_files(draw) -> FuzzedFile:
    """An NRRD (.nrrd) with attached pixels of FRAMES, its header fields and pixel bytes changed."""
    element = draw(_maybe("uint8", st.sampled_from(list(_TYPE_BYTES)[12:] + ["block", "signed char", "long double"]),
                          GARBAGE))
    sizes = draw(_maybe("8 8 3", _counts_text(3)))
    encoding = draw(_maybe("raw", st.sampled_from(["gzip", "bzip2", "ascii", "hex", "txt", "zrl"]), GARBAGE))
    fields = {"type": element,
              "dimension": draw(_maybe("3", st.sampled_from(["0", "1", "2", "4", "17", "-1", "2147483648"]), GARBAGE)),
              "space": draw(_maybe(None, st.sampled_from(["left-posterior-superior", "3D-right-handed", "x"]))),
              "sizes": sizes,
              "spacings": draw(_maybe("0.28 0.28 1", st.lists(FLOATS, max_size=4).map(" ".join))),
              "space directions": draw(_maybe(None, st.sampled_from(["(1,0,0) (0,1,0) (0,0,1)", "none (1,0) (0,1)",
                                                                    "(nan,0,0) (0,0,0) (0,0,0)"]))),
              "kinds": draw(_maybe(None, st.sampled_from(["domain domain domain", "RGB-color domain domain",
                                                          "vector"]))),
              "block size": draw(_maybe(None, COUNTS.map(str))),
              "endian": draw(_maybe("little", st.sampled_from(["big", "middle"]))),
              "encoding": encoding,
              "byte skip": draw(_maybe(None, COUNTS.map(str))),
              "line skip": draw(_maybe(None, COUNTS.map(str)))}
    good = FRAMES.tobytes()
    pixels = draw(_pixel_bytes(_declared_bytes(sizes, element), good))
    if encoding in ("gzip", "gz"):
        pixels = gzip.compress(pixels, mtime=0)
    elif encoding in ("ascii", "txt", "text"):
        pixels = " ".join(str(value) for value in pixels).encode()
    elif encoding == "hex":
        pixels = pixels.hex().encode()
    header = "NRRD0004\n" + "".join(f"{key}: {value}\n" for key, value in fields.items() if value is not None)
    return FuzzedFile("case.nrrd", _damaged(header.encode() + b"\n" + pixels, draw(DAMAGE)))


# --- NIfTI -----------------------------------------------------------------------------------------

_NIFTI_BASE: list[bytes] = []


def _nifti_base() -> bytes:
    """FRAMES as SimpleITK writes a .nii (written once)."""
    if not _NIFTI_BASE:
        import SimpleITK as sitk
        folder = Path(tempfile.mkdtemp(prefix="fuzz-nifti-"))
        try:
            sitk.WriteImage(sitk.GetImageFromArray(FRAMES), str(folder / "base.nii"))
            _NIFTI_BASE.append((folder / "base.nii").read_bytes())
        finally:
            shutil.rmtree(folder)
    return _NIFTI_BASE[0]


# (offset, struct format) of the NIfTI-1 header fields that say how to read the pixels
_NIFTI_FIELDS = {"sizeof_hdr": (0, "<i"), "dim": (40, "<8h"), "datatype": (70, "<h"), "bitpix": (72, "<h"),
                 "pixdim": (76, "<8f"), "vox_offset": (108, "<f"), "scl_slope": (112, "<f"),
                 "scl_inter": (116, "<f"), "qform_code": (252, "<h"), "sform_code": (254, "<h"),
                 "quatern": (256, "<6f"), "srow": (280, "<12f"), "magic": (344, "4s")}
_SHORTS = st.one_of(st.integers(-3, 20), st.sampled_from([255, 256, 1024, 8193, 32767, -32768]))
_NIFTI_FLOATS = st.floats(width=32, allow_nan=True, allow_infinity=True)


def _nifti_values(name: str, count: int, fmt: str) -> st.SearchStrategy[tuple]:
    if fmt == "4s":
        return st.sampled_from([b"n+1\0", b"ni1\0", b"n+2\0", b"\0\0\0\0"]).map(lambda magic: (magic,))
    if fmt == "<i":
        return st.sampled_from([348, 540, 0, -1, 2**31 - 1]).map(lambda size: (size,))
    if name == "datatype":  # NIfTI's codes: uint8 2, int16 4, int32 8, float32 16, complex 32, float64 64, RGB 128 ...
        values = st.one_of(st.sampled_from([0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 768, 1024, 1280, 1536,
                                            1792, 2048, 2304]), _SHORTS)
        return values.map(lambda code: (code,))
    element = _NIFTI_FLOATS if fmt.endswith("f") else _SHORTS
    return st.lists(element, min_size=count, max_size=count).map(tuple)


@st.composite
def nifti_files(draw) -> FuzzedFile:
    """A NIfTI-1 (.nii or .nii.gz) of FRAMES, its header fields changed, then its bytes."""
    content = bytearray(_nifti_base())
    for name in draw(st.sets(st.sampled_from(sorted(_NIFTI_FIELDS)), max_size=3)):
        offset, fmt = _NIFTI_FIELDS[name]
        count = struct.calcsize(fmt) // struct.calcsize(fmt[-1]) if fmt != "4s" else 1
        values = list(struct.unpack_from(fmt, content, offset))
        changed = draw(_nifti_values(name, count, fmt))
        if name == "dim" and draw(st.booleans()):  # one size or the number of dimensions, not all eight
            index = draw(st.integers(0, 7))
            values[index] = changed[index]
            changed = tuple(values)
        struct.pack_into(fmt, content, offset, *changed)
    content = _damaged(bytes(content), draw(DAMAGE))
    if draw(st.booleans()):
        return FuzzedFile("case.nii.gz", gzip.compress(content, mtime=0))
    return FuzzedFile("case.nii", content)


# --- DICOM -----------------------------------------------------------------------------------------

TRANSFER_SYNTAXES = ["1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.2",
                     "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80",
                     "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.5", "1.2.3.4", ""]
_DICOM_BASES: dict[str, bytes] = {}


def _dicom_base(kind: str) -> bytes:
    """A small Ultrasound multi-frame DICOM: grey, RGB, or grey RLE-compressed (written once each)."""
    if kind not in _DICOM_BASES:
        import pydicom
        from pydicom.uid import RLELossless

        from tests.support import write_us_dicom
        folder = Path(tempfile.mkdtemp(prefix="fuzz-dicom-"))
        try:
            frames = np.stack([FRAMES] * 3, axis=-1) if kind == "rgb" else FRAMES
            path = write_us_dicom(folder / "base.dcm", frames, regions=[{"PhysicalDeltaX": 0.028,
                                                                        "PhysicalDeltaY": 0.028}])
            if kind == "rle":
                header = pydicom.dcmread(path)
                header.compress(RLELossless, encoding_plugin="pydicom")
                header.save_as(path)
            _DICOM_BASES[kind] = path.read_bytes()
        finally:
            shutil.rmtree(folder)
    return _DICOM_BASES[kind]


_US = st.one_of(st.integers(0, 20), st.sampled_from([255, 256, 8193, 65535]))
_DICOM_CHANGES = {
    "Rows": _US, "Columns": _US,
    "NumberOfFrames": st.one_of(COUNTS.map(str), st.sampled_from(["1.5", "1e9", "", "abc"])),
    "BitsAllocated": st.sampled_from([0, 1, 7, 8, 12, 16, 24, 32, 64, 65535]),
    "BitsStored": st.sampled_from([0, 1, 7, 8, 12, 16, 32, 65535]),
    "HighBit": st.sampled_from([0, 7, 11, 15, 31, 65535]),
    "SamplesPerPixel": st.sampled_from([0, 1, 2, 3, 4, 65535]),
    "PhotometricInterpretation": st.sampled_from(["MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422",
                                                  "PALETTE COLOR", "ARGB", "XYZ", ""]),
    "PixelRepresentation": st.sampled_from([0, 1, 2]),
    "PlanarConfiguration": st.sampled_from([0, 1, 5]),
    "RescaleSlope": FLOATS, "RescaleIntercept": FLOATS,
    "PixelSpacing": st.lists(FLOATS, max_size=3),
    "PhysicalDeltaX": st.floats(allow_nan=True, allow_infinity=True),
    "PhysicalDeltaY": st.floats(allow_nan=True, allow_infinity=True),
    "PhysicalUnitsXDirection": st.sampled_from([0, 3, 4, 65535]),
}
_REGION_KEYWORDS = {"PhysicalDeltaX", "PhysicalDeltaY", "PhysicalUnitsXDirection"}


def _edited_dicom(content: bytes, changes: dict, drop: set[str], pixel_cut: float | None) -> bytes:
    """The DICOM `content` with attributes changed or removed, and its pixel data cut to a fraction."""
    import pydicom
    header = pydicom.dcmread(io.BytesIO(content))
    for keyword in drop:
        if keyword in header:
            delattr(header, keyword)
    for keyword, value in changes.items():
        target = header.SequenceOfUltrasoundRegions[0] if keyword in _REGION_KEYWORDS else header
        setattr(target, keyword, value)
    if pixel_cut is not None:
        header.PixelData = header.PixelData[:int(pixel_cut * len(header.PixelData))]
    out = io.BytesIO()
    header.save_as(out, enforce_file_format=False)
    return out.getvalue()


def _with_transfer_syntax(content: bytes, uid: str) -> bytes:
    """The file meta's Transfer Syntax UID replaced, the dataset left as it was encoded (a mislabelled file)."""
    import pydicom
    from pydicom.filewriter import write_file_meta_info
    from pydicom.filebase import DicomBytesIO
    meta_end = 132 + 12 + int.from_bytes(content[140:144], "little")  # after (0002,0000) Group Length's value
    meta = pydicom.dcmread(io.BytesIO(content), stop_before_pixels=True).file_meta
    meta.TransferSyntaxUID = uid
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, False
    write_file_meta_info(out, meta, enforce_standard=False)
    return content[:132] + out.getvalue() + content[meta_end:]


@st.composite
def dicom_files(draw) -> FuzzedFile:
    """A multi-frame Ultrasound DICOM of FRAMES: attributes changed or removed, its pixel data cut, its
    transfer syntax relabelled, then its bytes damaged."""
    content = _dicom_base(draw(st.sampled_from(["grey", "grey", "rgb", "rle"])))
    changes = {}
    for keyword in draw(st.sets(st.sampled_from(sorted(_DICOM_CHANGES)), max_size=3)):
        changes[keyword] = draw(_DICOM_CHANGES[keyword])
    drop = draw(st.sets(st.sampled_from(["Rows", "Columns", "NumberOfFrames", "BitsAllocated", "SamplesPerPixel",
                                         "PhotometricInterpretation", "PixelData", "SequenceOfUltrasoundRegions"]),
                        max_size=1))
    if "SequenceOfUltrasoundRegions" in drop:
        changes = {key: value for key, value in changes.items() if key not in _REGION_KEYWORDS}
    pixel_cut = draw(_maybe(None, st.floats(0, 1)))
    if "PixelData" in drop:
        pixel_cut = None
    if changes or drop or pixel_cut is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                content = _edited_dicom(content, changes, drop, pixel_cut)
        except (ValueError, TypeError, OverflowError, struct.error):  # pydicom will not write such a value
            assume(False)
    uid = draw(_maybe(None, st.sampled_from(TRANSFER_SYNTAXES)))
    if uid is not None:
        content = _with_transfer_syntax(content, uid)
    return FuzzedFile("case.dcm", _damaged(content, draw(DAMAGE)))


FORMATS = {"mha": mha_files(), "nrrd": nrrd_files(), "nifti": nifti_files(), "dicom": dicom_files()}


# --- the property ----------------------------------------------------------------------------------

def _peak_rss() -> int:
    """This process's peak resident memory since the last `_reset_peak_rss` (Linux: VmHWM)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB; never lowered


def _reset_peak_rss() -> None:
    """Lower the peak to the present use, so that each file is measured alone (Linux 4.0 and later)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear_refs:
            clear_refs.write("5")
    except OSError:
        pass


def check_reader(folder: Path, fuzzed: FuzzedFile) -> str:
    """Open `fuzzed` as `fetal-iqa info` does; fail unless it opens or is refused with a reason, quickly and
    within the memory budget. Returns "opened" or "refused"."""
    from fetal_iqa_gui.base.errors import FetalIqaError
    from fetal_iqa_gui.case.loading import load_case
    place = Path(tempfile.mkdtemp(dir=folder))
    path = place / fuzzed.name
    path.write_bytes(fuzzed.content)
    _reset_peak_rss()
    peak_before, started = _peak_rss(), time.monotonic()
    try:
        case = load_case(path, memory_budget=BUDGET)
    except FetalIqaError as error:
        assert error.problem.strip() and str(error).startswith(f"Cannot open '{fuzzed.name}': "), repr(error)
        outcome = "refused"
    else:
        assert case.frames.dtype == np.uint8 and case.frames.ndim == 3 and case.n_frames >= 1
        assert case.frames.nbytes <= BUDGET
        case.spacing.describe(), case.layout.sweeps  # what `info` prints
        outcome = "opened"
    finally:
        shutil.rmtree(place)
    seconds = time.monotonic() - started
    assert seconds < SLOW_SECONDS, f"took {seconds:.1f} s"
    grown = _peak_rss() - peak_before
    assert grown <= BUDGET + MEMORY_SLACK, f"the peak memory grew by {grown / 2**20:.0f} MiB"
    return outcome
