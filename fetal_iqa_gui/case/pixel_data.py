"""A DICOM file's pixel data checked against what its header declares, before GDCM decodes it.

GDCM allocates the frames the header declares and fills what the Pixel Data element holds: a file
declaring 50 frames that carries 5 opens as 50, the last 45 whatever was in that memory (different
on every open, and scored, picked and exported as if they were images). So the element's length
(native transfer syntaxes) or its fragments (encapsulated ones) must account for every declared
frame. The header is read with pydicom, the pixel data deferred: its length and offset, not its bytes.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import TYPE_CHECKING, cast

from ..base.text import counted
from .headers import DAMAGED, RefusedHeader

if TYPE_CHECKING:
    from pydicom.dataelem import RawDataElement

PIXEL_DATA = 0x7FE00010
_UNDEFINED_LENGTH = 0xFFFFFFFF
_DEFER_BYTES = 1024  # larger values are left in the file (only the pixel data is that large)


def check_pixel_data(path: Path) -> None:
    """Raise RefusedHeader unless the DICOM file `path` holds pixel data for every frame it declares."""
    import pydicom  # imported here: only DICOM needs it
    try:
        header = pydicom.dcmread(path, defer_size=_DEFER_BYTES, force=True)
        # a freshly read dataset holds raw elements: the pixel data's length and offset, its value not read
        element = cast("RawDataElement | None", header.get_item(PIXEL_DATA, keep_deferred=True))
        frames = int(header.get("NumberOfFrames") or 1)
        rows, columns = int(header.Rows), int(header.Columns)
        expected = _expected_bytes(header, frames)
    except Exception as error:  # noqa: BLE001 - pydicom raises many kinds for a damaged header
        raise RefusedHeader(f"its DICOM header could not be read ({_first_line(error)})", DAMAGED) from None
    if element is None:
        raise RefusedHeader("it holds no pixel data (it is not an image)", "Choose the file of the recording itself.")
    _check_after_pixel_data(path, header)
    declared = f"it declares {counted(frames, 'frame')} of {columns} x {rows} px"
    if element.length == _UNDEFINED_LENGTH:
        _check_fragments(path, element, frames, declared)
        return
    held = min(element.length, max(path.stat().st_size - element.value_tell, 0))  # a truncated file holds less
    if not expected <= held <= expected + 1:  # native pixel data is padded to an even length
        raise RefusedHeader(f"{declared} ({expected} bytes) but holds {held} bytes of pixel data", DAMAGED)


def _expected_bytes(header, frames: int) -> int:
    """Bytes of native pixel data for `frames` frames (ceil for 1-bit data; YBR_FULL_422 holds 2 samples a pixel)."""
    pixels = int(header.Rows) * int(header.Columns) * frames
    samples = int(header.get("SamplesPerPixel") or 1)
    if str(header.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422":
        samples = 2
    bits = int(header.BitsAllocated)
    return (pixels * samples * bits + 7) // 8


def _check_fragments(path: Path, element, frames: int, declared: str) -> None:
    """Encapsulated (compressed) pixel data: each frame is one fragment or more, and an offset table lists each frame;
    the fragments end inside the file, with the sequence's delimiter."""
    from pydicom.encaps import parse_basic_offsets, parse_fragments
    endianness = "<" if element.is_little_endian else ">"
    try:
        with open(path, "rb") as file:
            file.seek(element.value_tell)
            offsets = parse_basic_offsets(file, endianness=endianness)
            fragments, fragment_offsets = parse_fragments(file, endianness=endianness)
        whole = _ends_with_delimiter(path, element, fragment_offsets, endianness)
    except (OSError, ValueError, EOFError) as error:
        raise RefusedHeader(f"its compressed pixel data is damaged ({_first_line(error)})", DAMAGED) from None
    if not whole:
        raise RefusedHeader("its compressed pixel data is cut short (the file ends inside it)", DAMAGED)
    if fragments < frames or (offsets and len(offsets) != frames):
        tables = f" and an offset table of {len(offsets)}" if offsets else ""
        raise RefusedHeader(f"{declared} but its compressed pixel data holds {fragments} fragments{tables}", DAMAGED)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _ends_with_delimiter(path: Path, element, fragment_offsets: list[int], endianness: str) -> bool:
    """Whether the last item (a fragment, or the offset table) ends inside the file, followed by the Sequence
    Delimitation Item.

    pydicom stops counting fragments at the end of the file; GDCM reads on (taking gigabytes and
    seconds for a file cut a few bytes short), so a cut is refused here.
    """
    item = struct.Struct(f"{endianness}HHL")  # an item's tag (group, element) and length
    with open(path, "rb") as file:
        file.seek(fragment_offsets[-1] if fragment_offsets else element.value_tell)
        last = file.read(item.size)
        if len(last) < item.size:
            return False
        file.seek(item.unpack(last)[2], 1)
        end = file.read(item.size)
    return len(end) == item.size and item.unpack(end)[:2] == (0xFFFE, 0xE0DD)


def _check_after_pixel_data(path: Path, header) -> None:
    """What follows the pixel data must be elements of later tags (a signature, padding) that end inside the file.

    GDCM reads garbage after the pixel data as an element and allocates the length it finds
    there (hundreds of megabytes for a file of 1 kB).
    """
    tags = list(header.keys())  # in the file's order
    size = path.stat().st_size
    for tag in tags[tags.index(PIXEL_DATA) + 1:]:
        raw = header.get_item(tag, keep_deferred=True)
        length = getattr(raw, "length", 0)
        ends_inside = length == _UNDEFINED_LENGTH or getattr(raw, "value_tell", 0) + length <= size
        if tag <= PIXEL_DATA or not ends_inside:
            raise RefusedHeader("its pixel data is followed by bytes that are not DICOM (the file is damaged)", DAMAGED)
