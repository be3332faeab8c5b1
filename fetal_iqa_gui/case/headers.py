"""What a header says, checked before ITK reads anything else: the files it names, the size it declares.

A MetaImage (.mhd/.mha) or NRRD (.nhdr/.nrrd) header may keep its pixels in another file that it
names, and an Analyze/NIfTI .hdr keeps them in the .img beside it. ITK opens whatever is named:
`/etc/passwd` (whose bytes would then be scored and exported), a FIFO (which blocks forever),
`/dev/urandom` (which never ends). So the header is read here first, at most HEADER_LIMIT bytes,
and every file it names must be a regular file inside the header's own folder; a header that
could be read in two ways is refused rather than guessed at. Then the size the header declares
must fit a memory budget, so that a small compressed file cannot make us allocate gigabytes.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import stat
import struct
import zlib
from pathlib import Path

import SimpleITK as sitk

from ..base.fileio import special_file_kind

HEADER_LIMIT = 64 * 1024  # real headers are well under 1 kB
# Refused before decoding: no ultrasound frame is larger or narrower (and pad_to_square would square it)
MAX_FRAME_SIDE = 8192
MAX_ASPECT_RATIO = 20
MEMORY_BUDGET_CAP = 4 * 2**30  # bytes: ten times an ACOUSLIC-AI case (351 MB); a 3 MB file declaring 6 GB is refused anywhere


def unlike_ultrasound(width: int, height: int) -> bool:
    """A frame size no ultrasound picture has (refused before anything is decoded): larger than
    MAX_FRAME_SIDE a side, or narrower than MAX_ASPECT_RATIO:1."""
    return max(width, height) > MAX_FRAME_SIDE or max(width, height) > MAX_ASPECT_RATIO * min(width, height)


DAMAGED = "The file may be damaged or mislabelled; export it again."
KEEP_TOGETHER = "Save the sweep as one .mha or .nrrd file, or keep its data file in the header's folder."

_MET_TYPES = {b"MET_UCHAR", b"MET_CHAR", b"MET_USHORT", b"MET_SHORT", b"MET_UINT", b"MET_INT", b"MET_ULONG",
              b"MET_LONG", b"MET_ULONG_LONG", b"MET_LONG_LONG", b"MET_FLOAT", b"MET_DOUBLE"}
_METAIO_LINE = 500  # MetaIO reads each header line into a buffer of this size
_METAIO_LOCAL = {b"LOCAL", b"Local", b"local"}  # the pixels follow the header in the same file
_ANALYZE_PAIRS = {".hdr": (".img", ".img.gz"), ".hdr.gz": (".img", ".img.gz"),
                  ".img": (".hdr", ".hdr.gz"), ".img.gz": (".hdr", ".hdr.gz")}


class RefusedHeader(ValueError):
    """A header that is refused; `problem` and `advice` complete "Cannot open 'name': ..."."""

    def __init__(self, problem: str, advice: str = KEEP_TOGETHER):
        super().__init__(problem)
        self.problem = problem
        self.advice = advice


def check_data_files(path: Path, io_name: str) -> None:
    """Raise RefusedHeader unless every file that ITK's `io_name` reader would open for `path` is safe."""
    if io_name == "MetaImageIO":
        names = _metaimage_data_files(*_head(path))
    elif io_name == "NrrdImageIO":
        names = _nrrd_data_files(*_head(path))
    elif io_name == "NiftiImageIO":
        names = _analyze_companions(path)
    else:
        return
    for name in names:
        reason = why_not_inside(path.parent, name)
        if reason:
            raise RefusedHeader(f"its header names the data file '{_shown(name)}', which {reason}")


def why_not_inside(folder: Path, name: str) -> str | None:
    """Why `name` is not a regular file inside `folder` (links and '..' resolved), or None when it is."""
    if not name:
        return "is empty"
    if os.path.isabs(name):
        return "is an absolute path (only files in the same folder are read)"
    try:
        base = folder.resolve()
        target = (base / name).resolve()
        if not target.is_relative_to(base):
            return "leads out of the folder (only files in the same folder are read)"
        mode = target.stat().st_mode
    except FileNotFoundError:
        return "does not exist"
    except (OSError, RuntimeError, ValueError) as error:  # a link loop (Python < 3.13), a NUL in the name
        return f"cannot be checked ({getattr(error, 'strerror', None) or error})"
    if not stat.S_ISREG(mode):
        return f"is not a regular file (it is {special_file_kind(mode)})"
    return None


# Where NIfTI-1 and NIfTI-2 (by their header's size) keep the magic, and the fields ITK builds the geometry from:
# the number of dimensions (which tells the byte order), the spacing (pixdim[1:4]), and the qform and sform
# codes with what each code enables, each as (offset, struct format)
_NIFTI_MAGIC_AT = {348: 344, 540: 4}
_NIFTI_LAYOUTS: dict[int, dict[str, tuple[int, str]]] = {
    348: {"dimensions": (40, "h"), "spacing": (80, "3f"), "qform_code": (252, "h"), "qform": (256, "6f"),
          "sform_code": (254, "h"), "sform": (280, "12f")},
    540: {"dimensions": (16, "q"), "spacing": (112, "3d"), "qform_code": (344, "i"), "qform": (352, "6d"),
          "sform_code": (348, "i"), "sform": (400, "12d")}}


def check_nifti_geometry(path: Path) -> None:
    """Refuse a NIfTI header whose spacing or orientation is not finite.

    ITK turns them into a direction matrix by iterating to convergence, which an infinity among
    large values never reaches: the file would hang whoever opens it.
    """
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as file:
            head = file.read(max(_NIFTI_LAYOUTS))
    except (OSError, EOFError, zlib.error):  # damaged compression: ITK's own reading says so
        return
    for size, magic_at in _NIFTI_MAGIC_AT.items():  # told apart by the magic, as ITK does (not by the size field)
        if len(head) >= size and head[magic_at:magic_at + 3] in (b"n+1", b"ni1", b"n+2", b"ni2"):
            break
    else:
        return  # not NIfTI (Analyze, or damaged): ITK decides
    layout = _NIFTI_LAYOUTS[size]
    dimensions_at, dimensions_kind = layout["dimensions"]
    # the byte order is the one in which the number of dimensions is 1 to 7 (as niftilib decides)
    order = "<" if 1 <= struct.unpack_from("<" + dimensions_kind, head, dimensions_at)[0] <= 7 else ">"

    def field(name: str) -> tuple:
        offset, kind = layout[name]
        return struct.unpack_from(order + kind, head, offset)
    values = [*field("spacing"), *(field("qform") if field("qform_code")[0] > 0 else ()),
              *(field("sform") if field("sform_code")[0] > 0 else ())]
    if not all(math.isfinite(value) for value in values):
        raise RefusedHeader("its header gives a spacing or orientation that is not a finite number", DAMAGED)


# Where the pixel type's size, the sizes and the pixels' start are (NIfTI-1, NIfTI-2 by the header's size)
_NIFTI_DATA = {348: {"bits": (72, "h"), "sizes": (40, "8h"), "start": (108, "f")},
               540: {"bits": (14, "h"), "sizes": (16, "8q"), "start": (168, "q")}}


def check_nifti_length(path: Path) -> None:
    """Refuse a single-file NIfTI (.nii, .nii.gz) whose pixels end before the header's sizes say (after
    `check_declared_size`): ITK opens it with the missing frames blank, and a .nii.gz cut short as well.
    A .nii.gz is inflated once here to count it."""
    compressed = path.name.lower().endswith(".gz")
    opener = gzip.open if compressed else open
    try:
        with opener(path, "rb") as file:
            head = file.read(max(_NIFTI_LAYOUTS))
    except (OSError, EOFError, zlib.error):  # damaged compression: ITK's own reading says so
        return
    for size, magic_at in _NIFTI_MAGIC_AT.items():
        if len(head) >= size and head[magic_at:magic_at + 3] in (b"n+1", b"n+2"):
            break
    else:
        return  # a header and image pair, or not NIfTI: ITK decides
    layout = _NIFTI_LAYOUTS[size]
    dimensions_at, dimensions_kind = layout["dimensions"]
    order = "<" if 1 <= struct.unpack_from("<" + dimensions_kind, head, dimensions_at)[0] <= 7 else ">"
    data = _NIFTI_DATA[size]
    bits = struct.unpack_from(order + data["bits"][1], head, data["bits"][0])[0]
    sizes = struct.unpack_from(order + data["sizes"][1], head, data["sizes"][0])
    start = struct.unpack_from(order + data["start"][1], head, data["start"][0])[0]
    if not 1 <= sizes[0] <= 7 or bits <= 0 or not math.isfinite(start):
        return  # ITK refuses it with its own message
    needed = max(int(start), size) + math.prod(max(n, 1) for n in sizes[1:sizes[0] + 1]) * bits // 8
    held = (_inflated_size(path, 0, path.stat().st_size, needed, window_bits=31) if compressed
            else path.stat().st_size)
    if held < needed:
        raise RefusedHeader(f"the file is truncated or corrupt: its header declares {_bytes_text(needed)} "
                            f"(header and pixels), the file holds {_bytes_text(held)}", DAMAGED)


def default_memory_budget() -> int:
    """Half the physical memory, and half of any address-space limit on this process, at most MEMORY_BUDGET_CAP."""
    limits = [MEMORY_BUDGET_CAP]
    try:
        limits.append(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2)
    except (AttributeError, ValueError, OSError):  # no sysconf on Windows
        pass
    try:
        import resource
        soft_limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        if soft_limit != resource.RLIM_INFINITY:
            limits.append(soft_limit // 2)
    except ImportError:  # Windows
        pass
    return min(limits)


def check_declared_size(reader: sitk.ImageFileReader, budget: int, slices: int = 1) -> None:
    """Refuse, from the header alone, a shape fetal-iqa does not open or a size beyond the memory budget.

    `slices` is the number of files of a DICOM series whose first file `reader` read.
    """
    size = reader.GetSize()
    volume = size[:3] if len(size) == 4 and size[3] == 1 else size  # one time point of 4-D is a volume
    if len(volume) not in (2, 3):
        raise RefusedHeader(f"it is a {len(size)}-D image with size {size}",
                            "fetal-iqa opens 2-D frames over time (a 3-D volume) or a single 2-D frame.")
    components = reader.GetNumberOfComponents()
    if components not in (1, 3, 4):
        raise RefusedHeader(f"its pixels have {components} components",
                            "Only greyscale, RGB and RGBA images can be converted to grey.")
    width, height = volume[0], volume[1]
    frames = slices * (volume[2] if len(volume) == 3 else 1)
    if 0 in (width, height, frames):
        raise RefusedHeader("the image is empty (it has no pixels)", "Choose another file.")
    if unlike_ultrasound(width, height):
        raise RefusedHeader(f"its frames are {width} x {height} px, not an ultrasound picture (fetal-iqa opens "
                            f"frames of at most {MAX_FRAME_SIDE} px a side and {MAX_ASPECT_RATIO}:1 in shape)",
                            "The header may be damaged; export the file again.")
    # bytes per pixel of this pixel type, from ITK itself (a one-pixel image)
    pixel_bytes = sitk.GetArrayViewFromImage(sitk.Image([1, 1], reader.GetPixelID(), components)).nbytes
    needed = frames * height * width * (pixel_bytes + 1)  # ITK's image and our uint8 copy of it
    if needed > budget:
        raise RefusedHeader(f"it would need {_bytes_text(needed)} of memory to open ({frames} frames of "
                            f"{width} x {height} px), more than the {_bytes_text(budget)} allowed",
                            "Open it on a computer with more memory, or export a shorter recording.")


def _bytes_text(n: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} bytes"


def _head(path: Path) -> tuple[list[bytes], bool]:
    """The complete lines among the first HEADER_LIMIT bytes, and whether they are the whole file."""
    with open(path, "rb") as file:
        head = file.read(HEADER_LIMIT + 1)
    whole = len(head) <= HEADER_LIMIT
    lines = head.split(b"\n")
    return (lines if whole else lines[:-1]), whole


def _too_long() -> RefusedHeader:
    return RefusedHeader(f"its header is longer than {HEADER_LIMIT // 1024} kB", DAMAGED)


def _list_or_pattern(value: bytes) -> RefusedHeader:
    return RefusedHeader(f"its header names a list or pattern of data files ('{_shown(os.fsdecode(value))}'), "
                        "which fetal-iqa does not follow")


def _shown(name: str) -> str:
    """A file name for a message (undecodable bytes, kept by os.fsdecode for the check, shown as '?')."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _metaimage_data_files(lines: list[bytes], whole: bool) -> list[str]:
    """The file named by a MetaImage header's ElementDataFile; none when the pixels follow the header.

    Read line by line as MetaIO reads it. MetaIO would join a line without '=' to the next one,
    so such a line (no MetaImage writer makes one) makes the header ambiguous: refused.
    """
    fields = {}
    for line in lines:
        if not line.strip():
            continue
        separator = re.search(rb"[=:\r]", line)
        key = line[:separator.start()].split(b"\0")[0].lstrip().rstrip(b" \t") if separator else b""  # C strings
        if (separator is None or separator.group() == b"\r" or len(line) >= _METAIO_LINE
                or (b"ElementDataFile" in line and key != b"ElementDataFile")):
            raise RefusedHeader("its header is not valid for its format", DAMAGED)
        value = line[separator.start():].lstrip(b"=: \t").split(b"\0")[0]
        value = re.sub(rb"[^\x21-\x7e]+$", b"", value)  # trimmed as MetaIO trims it
        fields[key] = value
        if key == b"ElementDataFile":
            _check_metaimage_fields(fields)
            if value in _METAIO_LOCAL:
                return []
            if b"LIST" in value.upper() or b"%" in value:  # MetaIO's forms for one file per slice
                raise _list_or_pattern(value)
            return [os.fsdecode(value)]  # the very bytes MetaIO will open
    if whole:
        raise RefusedHeader("its header does not say where its pixels are (no ElementDataFile)", DAMAGED)
    raise _too_long()


_MET_BYTES = {b"MET_UCHAR": 1, b"MET_CHAR": 1, b"MET_USHORT": 2, b"MET_SHORT": 2, b"MET_UINT": 4, b"MET_INT": 4,
              b"MET_ULONG": 4, b"MET_LONG": 4, b"MET_ULONG_LONG": 8, b"MET_LONG_LONG": 8, b"MET_FLOAT": 4,
              b"MET_DOUBLE": 8}  # MetaIO's sizes (its "long" is 4 bytes)


def check_metaimage_length(path: Path) -> None:
    """Refuse pixels shorter than the header declares (after `check_data_files` and `check_declared_size`):
    some ITK versions (2.3) read such an uncompressed file with only a warning on stderr, and every version
    a compressed one that inflates short or fails its checksum, leaving the missing frames as whatever
    memory held. A compressed stream is inflated once here to count it (about 1 s for 350 MB)."""
    lines, whole = _head(path)
    names = _metaimage_data_files(lines, whole)
    fields, header_bytes = {}, 0
    for line in lines:
        header_bytes += len(line) + 1
        key, _, value = line.partition(b"=")
        fields[key.strip()] = value.strip()
        if key.strip() == b"ElementDataFile":
            break
    if b"HeaderSize" in fields:
        return  # an explicit HeaderSize moves the pixels' start
    try:
        sizes = [int(n) for n in fields[b"DimSize"].split()]
        channels = int(fields.get(b"ElementNumberOfChannels", b"1"))
        needed = _MET_BYTES[fields[b"ElementType"]] * channels * math.prod(sizes)
    except (KeyError, ValueError):
        return  # ITK refuses it with its own message
    data = path.parent / names[0] if names else path
    start = 0 if names else header_bytes
    if fields.get(b"CompressedData", b"False").lower() == b"true":
        # MetaIO leaves what a short or damaged stream lacks as whatever memory held, saying only "Uncompress failed"
        try:
            stated = int(fields[b"CompressedDataSize"]) if b"CompressedDataSize" in fields else None
        except ValueError:
            stated = None
        if stated is None and not names:  # MetaIO then inflates nothing right (its writers always state it)
            raise RefusedHeader("its header does not give the size of its compressed pixels (CompressedDataSize)",
                                DAMAGED)
        held = _inflated_size(data, start, stated if stated is not None else data.stat().st_size - start, needed)
        if held < needed:
            raise RefusedHeader(f"the file is truncated or corrupt: the header declares {_bytes_text(needed)} of "
                                f"pixels, its compressed data holds {_bytes_text(held)}", DAMAGED)
        return
    held = data.stat().st_size - start
    if held < needed:
        raise RefusedHeader(f"the file is truncated or corrupt: the header declares {_bytes_text(needed)} of pixels, "
                            f"the file holds {_bytes_text(max(held, 0))}", DAMAGED)


_INFLATE_CHUNK = 2**20  # bytes inflated at a time: the count keeps no more than this (larger is slower)


def _inflated_size(path: Path, start: int, length: int, needed: int, window_bits: int = zlib.MAX_WBITS) -> int:
    """Bytes the zlib stream (gzip with `window_bits` 31) of `length` bytes at `start` in `path` inflates to (its
    checksum checked), counted without keeping them and no further than just past `needed`; RefusedHeader if it is
    damaged or cut short."""
    inflater = zlib.decompressobj(window_bits)
    count = 0
    with open(path, "rb") as file:
        file.seek(start)
        while not inflater.eof:
            if count > needed:
                return count  # more than declared: MetaIO takes what it needs
            chunk = inflater.unconsumed_tail or file.read(max(min(_INFLATE_CHUNK, length - file.tell() + start), 0))
            if not chunk:
                raise RefusedHeader("the file is truncated or corrupt: its compressed pixels are cut short", DAMAGED)
            try:
                count += len(inflater.decompress(chunk, _INFLATE_CHUNK))
            except zlib.error:
                raise RefusedHeader("the file is truncated or corrupt: its compressed pixels are damaged",
                                    DAMAGED) from None
    return count


def _check_metaimage_fields(fields: dict[bytes, bytes]) -> None:
    """A known pixel type and one size per dimension, or ITK's message would be cryptic."""
    try:
        dimensions = int(fields.get(b"NDims", b"0"))
    except ValueError:
        dimensions = 0
    if (fields.get(b"ElementType") not in _MET_TYPES or dimensions < 1
            or len(fields.get(b"DimSize", b"").split()) != dimensions):
        raise RefusedHeader("its header is not valid for its format", DAMAGED)


def _nrrd_data_files(lines: list[bytes], whole: bool) -> list[str]:
    """The files an NRRD header's "data file" fields name; none when the pixels follow the header.

    Field names are matched more loosely than teem matches them (any case, any spacing), so that
    whatever teem takes for a data file is checked.
    """
    names: list[str] = []
    for line in lines[1:]:  # the first line is the magic "NRRD000x"
        line = line.split(b"\0")[0].removesuffix(b"\r")  # teem reads C strings
        if not line:  # the end of the header; attached pixels follow
            return names
        key, _, value = line.partition(b":")
        if not line.startswith(b"#") and re.sub(rb"\s", b"", key).lower() == b"datafile":
            value = value.lstrip()  # teem keeps trailing spaces in the name: so does the check
            if value.upper().startswith(b"LIST") or b"%" in value:  # teem's forms for one file per slice
                raise _list_or_pattern(value)
            names.append(os.fsdecode(value))  # the very bytes teem will open
    if whole:  # a detached header ends with the file
        return names
    raise _too_long()


def _analyze_companions(path: Path) -> list[str]:
    """The other half of an Analyze/NIfTI pair (.hdr + .img, in any case) that ITK opens by the same stem."""
    for ending, others in _ANALYZE_PAIRS.items():
        if path.name.lower().endswith(ending):
            stem = path.name[:-len(ending)]
            return [name for name in os.listdir(path.parent)
                    if name.startswith(stem) and name[len(stem):].lower() in others]
    return []
