"""Opening case files: every supported format becomes one `Case`.

Conversion rules, stated once:
- RGB (or any multi-component pixel) -> grey by ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B);
- 16-bit, 32-bit or float pixels -> uint8 by the volume's own min..max range;
- a 2-D image -> a one-frame case.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from ..base.errors import CaseLoadError
from ..base.fileio import special_file_kind
from . import dicomdir, headers
from .pixel_data import check_pixel_data
from .spacing import from_itk
from .study import Study, read_dicom
from .case import IMAGE_2D_SUFFIXES, VOLUME_SUFFIXES, Case, CaseLayout, find_padding, hash_frames

log = logging.getLogger(__name__)

# ITK prints its own warnings to stderr; ours are clearer and go through logging.
sitk.ProcessObject.SetGlobalWarningDisplay(False)


SWEEP_PATTERNS = " ".join("*" + suffix for suffix in VOLUME_SUFFIXES + IMAGE_2D_SUFFIXES)  # for file dialogs
SUPPORTED_DESCRIPTION = "MetaImage (.mha/.mhd), NIfTI (.nii/.nii.gz), NRRD, DICOM (file or folder), PNG or JPEG"

# ITK's readers for the formats above; any other reader could follow references to files we never check
_IMAGE_IOS = ("MetaImageIO", "NrrdImageIO", "NiftiImageIO", "GDCMImageIO", "PNGImageIO", "JPEGImageIO", "BMPImageIO",
              "TIFFImageIO")

_LUMA = np.array([0.299, 0.587, 0.114])
_CHUNK_FRAMES = 32  # bounds the float temporaries of conversions to a few frames' worth


def load_case(path: str | os.PathLike, sweeps: int | None = None, memory_budget: int | None = None) -> Case:
    """Open any supported file or DICOM folder as a `Case`; raise `CaseLoadError` otherwise.

    `sweeps` forces the number of equal sweep slots (e.g. 6 for an ACOUSLIC-style folder); by
    default the sweeps are the challenge's slots or the runs of images (`CaseLayout.detect`). The
    spacing is what the file states, with its source (`spacing`), or unknown. A file whose pixels (plus our
    uint8 copy) would need more than `memory_budget` bytes (default: `headers.default_memory_budget()`)
    is refused before anything is decoded.
    """
    path = Path(path)
    budget = headers.default_memory_budget() if memory_budget is None else memory_budget
    try:
        image, dicom_file = _read_image(path, budget)
        spacing, study, regions = (read_dicom(dicom_file) if dicom_file
                                   else (from_itk(image.GetSpacing(), _format_name(path)), Study(), ()))
        frames = _to_uint8_frames(image)
    except OSError as error:
        raise _unreadable(path, error) from None
    except MemoryError:
        raise _no_memory(path) from None
    del image  # keep at most one extra copy of a case alive
    padding = find_padding(frames)
    if padding.all():
        raise CaseLoadError(path, "every frame is blank (all pixels are zero)",
                             "The recording holds no ultrasound image; choose another file.")
    try:
        layout = CaseLayout.detect(padding) if sweeps is None else CaseLayout.equal_sweeps(padding, sweeps)
    except ValueError as error:
        raise CaseLoadError(path, str(error)) from None
    log.info("loaded %s: %d frames of %dx%d, spacing %s", path, len(frames),
             frames.shape[2], frames.shape[1], spacing.describe())
    return Case(frames, spacing, path, hash_frames(frames), layout, study, regions, dicom_file)


def _read_image(path: Path, budget: int) -> tuple[sitk.Image, Path | None]:
    """The image, and the DICOM file whose header holds its calibration (None for other formats)."""
    info = _probe(path)
    if not _itk_can_name(path):
        raise CaseLoadError(path, "its name is not valid text (UTF-8), which the image readers cannot open",
                             "Rename the file (or its folder) with plain letters.")
    mode = info.st_mode
    if not os.access(path, os.R_OK):
        raise CaseLoadError(path, "you do not have permission to read it",
                             "Copy it somewhere you can read, or ask your administrator.")
    if stat.S_ISDIR(mode):
        return _read_dicom_folder(path, budget)
    if not stat.S_ISREG(mode):
        raise CaseLoadError(path, f"it is not a regular file (it is {special_file_kind(mode)})",
                             "Open the sweep file itself.")
    if info.st_size == 0:
        raise CaseLoadError(path, "the file is empty (0 bytes)", "The copy may have failed; copy it again.")
    if dicomdir.is_dicomdir(path):
        return _read_dicomdir(path, budget)
    reader = _read_header(path, budget)
    try:
        return reader.Execute(), (path if reader.GetImageIO() == "GDCMImageIO" else None)
    except RuntimeError as error:
        log.debug("ITK could not read %s: %s", path, error)
        raise _explain_itk_error(path, str(error)) from None


def _itk_can_name(path: Path) -> bool:
    """ITK takes names as UTF-8: an undecodable byte in one (kept by Python as a surrogate) would abort the process."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _probe(path: Path) -> os.stat_result:
    try:
        return path.stat()
    except OSError as error:
        raise _unreadable(path, error) from None


def _unreadable(path: Path, error: OSError) -> CaseLoadError:
    """An OS error while looking at a file, in words (never a traceback)."""
    if isinstance(error, (FileNotFoundError, NotADirectoryError)):
        return CaseLoadError(path, "the file does not exist", "Check the path and the file name.")
    if isinstance(error, PermissionError):  # stat() needs no permission on the file, only on its folders
        return CaseLoadError(path, "you do not have permission to open the folder it is in",
                              "Copy it somewhere you can read, or ask your administrator.")
    return CaseLoadError(path, f"it could not be read ({error.strerror or error})", "Check the path and the disk.")


def _read_header(path: Path, budget: int, slices: int = 1, refused_as: Path | None = None) -> sitk.ImageFileReader:
    """A reader for `path` that has read its header, after checking every file the header names,
    then checked the size the header declares (`slices` files of it, a DICOM series).

    Nothing but the header is opened here; pixels are decoded only by `Execute()`. A refusal
    names `refused_as` (a DICOM folder) if given.
    """
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        marked_dicom = _has_dicom_marker(path)
        if marked_dicom:  # before GDCM looks at it: on compressed pixel data cut short it spends gigabytes, seconds
            check_pixel_data(path)
        io_name = reader.GetImageIOFromFileName(str(path))
        if io_name not in _IMAGE_IOS:
            raise _unknown_format(path)
        reader.SetImageIO(io_name)
        headers.check_data_files(path, io_name)
        if io_name == "NiftiImageIO":
            headers.check_nifti_geometry(path)
        if io_name == "GDCMImageIO" and not marked_dicom:
            check_pixel_data(path)
        reader.ReadImageInformation()
        headers.check_declared_size(reader, budget, slices)
        if io_name == "MetaImageIO":
            headers.check_metaimage_length(path)
        if io_name == "NiftiImageIO":
            headers.check_nifti_length(path)
    except headers.RefusedHeader as error:
        raise CaseLoadError(refused_as or path, error.problem, error.advice) from None
    except RuntimeError as error:
        log.debug("ITK could not read the header of %s: %s", path, error)
        raise _explain_itk_error(path, str(error)) from None
    return reader


def _read_dicom_folder(path: Path, budget: int) -> tuple[sitk.Image, Path | None]:
    files = _folder_files(path)
    reader = sitk.ImageSeriesReader()
    try:
        series = reader.GetGDCMSeriesIDs(str(path))
    except RuntimeError:
        series = ()
    if not series and (path / dicomdir.NAME).is_file():
        return _read_dicomdir(path / dicomdir.NAME, budget)  # a USB export: the images are in subfolders
    if not series:
        # a folder may hold one multi-frame DICOM file instead of a series of slices
        candidates = [file for file in files if _is_dicom_file(file)]
        if len(candidates) == 1:
            return _read_image(candidates[0], budget)
        raise CaseLoadError(path, "the folder contains no DICOM series",
                             "Choose a folder of DICOM files, or open a single sweep file.")
    if len(series) > 1:
        log.warning("%s holds %d DICOM series; opening the first", path, len(series))
    names = [reader.GetGDCMSeriesFileNames(str(path), uid) for uid in series]
    _check_every_file_read(path, files, names)
    if len(names[0]) == 1:
        return _read_image(Path(names[0][0]), budget)
    _read_header(Path(names[0][0]), budget, slices=len(names[0]), refused_as=path)
    for name in names[0][1:]:  # the first was checked with the header
        try:
            check_pixel_data(Path(name))
        except headers.RefusedHeader as error:
            raise CaseLoadError(path, f"its file '{Path(name).name}': {error.problem}", error.advice) from None
    reader.SetFileNames(names[0])
    try:
        return reader.Execute(), Path(names[0][0])  # the series shares one calibration
    except RuntimeError as error:
        log.debug("ITK could not read the series in %s: %s", path, error)
        raise CaseLoadError(path, "its DICOM files could not be read as one series (one may be damaged)",
                             "Check that the export from the scanner completed.") from None


def _read_dicomdir(path: Path, budget: int) -> tuple[sitk.Image, Path | None]:
    """The first recording a DICOMDIR lists (the others are named in the log)."""
    found = dicomdir.recordings(path)
    if not found:
        raise CaseLoadError(path, "its DICOMDIR lists no images", "Open the image files themselves.")
    if len(found) > 1:
        log.warning("%s lists %d recordings; opening the first (%s); the others: %s", path, len(found),
                    found[0][0], ", ".join(str(files[0]) for files in found[1:]))
    files = found[0]
    if len(files) == 1:
        return _read_image(files[0], budget)
    _read_header(files[0], budget, slices=len(files), refused_as=path)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames([str(f) for f in files])
    try:
        return reader.Execute(), files[0]
    except RuntimeError as error:
        log.debug("ITK could not read the series of %s: %s", path, error)
        raise CaseLoadError(path, "the DICOM files it lists could not be read as one series (one may be damaged)",
                            "Check that the export from the scanner completed.") from None


def _folder_files(path: Path) -> list[Path]:
    """The files of a DICOM folder, which GDCM will open: each must be a regular file inside the folder."""
    files = []
    for entry in sorted(os.scandir(path), key=lambda entry: entry.name):
        if entry.is_dir():
            continue  # GDCM does not look into subfolders
        reason = headers.why_not_inside(path, entry.name)
        if reason:
            raise CaseLoadError(path, f"the folder holds '{entry.name}', which {reason}",
                                 "Move it out of the folder, or copy the DICOM files into a folder of their own.")
        files.append(Path(entry.path))
    return files


def _has_dicom_marker(file: Path) -> bool:
    """'DICM' at byte 128, as a DICOM file written to the standard begins."""
    with open(file, "rb") as opened:
        return opened.read(132)[128:] == b"DICM"


def _is_dicom_file(file: Path) -> bool:
    """Named .dcm/.dicom or marked 'DICM' (at byte 128), and not hidden (macOS leaves '._name' files) or DICOMDIR."""
    if file.name.startswith(".") or file.name.upper() == "DICOMDIR":
        return False
    return file.suffix.lower() in (".dcm", ".dicom") or _has_dicom_marker(file)


def _check_every_file_read(path: Path, files: list[Path], series: list[tuple[str, ...]]) -> None:
    """GDCM leaves a damaged file out of its series: refuse, since every later frame number would shift."""
    read = {Path(name).name for names in series for name in names}
    unread = [file.name for file in files if file.name not in read and _is_dicom_file(file)]
    if unread:
        shown = ", ".join(unread[:3]) + (", ..." if len(unread) > 3 else "")
        raise CaseLoadError(path, f"{len(unread)} of its {len(read) + len(unread)} DICOM files could not be read "
                             f"({shown}), so every later frame number would be wrong",
                             "A file may be damaged or incomplete; export the series again.")


def _unknown_format(path: Path) -> CaseLoadError:
    if not path.name.lower().endswith(VOLUME_SUFFIXES + IMAGE_2D_SUFFIXES):
        return CaseLoadError(path, "it is not an image format fetal-iqa can read", f"Supported: {SUPPORTED_DESCRIPTION}.")
    return CaseLoadError(path, "its header is not valid for its format",
                          "The file may be damaged or mislabelled; export it again.")


def _no_memory(path: Path) -> CaseLoadError:
    return CaseLoadError(path, "there is not enough free memory to open it", "Close other programs and try again.")


def _explain_itk_error(path: Path, detail: str) -> CaseLoadError:
    lowered = detail.lower()
    if "unable to determine imageio reader" in lowered or "could not create io object" in lowered:
        return _unknown_format(path)
    if "failed to allocate memory" in lowered:
        return _no_memory(path)
    if any(word in lowered for word in ("header", "dimsize", "ndims", "objecttype")):
        return CaseLoadError(path, "its header is not valid for its format",
                              "The file may be damaged or mislabelled; export it again.")
    return CaseLoadError(path, "the file is truncated or corrupt (its image data could not be read)",
                          "The copy may be incomplete; copy or export it again.")


def _format_name(path: Path) -> str:
    """A file's format in words, for where its spacing came from."""
    name = path.name.lower()
    for suffixes, words in (((".mha", ".mhd"), "MetaImage"), ((".nii", ".nii.gz"), "NIfTI"),
                            ((".nrrd", ".nhdr"), "NRRD")):
        if name.endswith(suffixes):
            return words
    return f"{path.suffix.lstrip('.').upper() or 'image'} file"


def _to_uint8_frames(image: sitk.Image) -> np.ndarray:
    """(frames, height, width) uint8 of an image whose shape `headers.check_declared_size` accepted."""
    if image.GetDimension() == 4:
        image = image[:, :, :, 0]
    components = image.GetNumberOfComponentsPerPixel()
    view = sitk.GetArrayViewFromImage(image)  # no copy: (z, y, x[, c]) or (y, x[, c])
    if image.GetDimension() == 2:
        view = view[np.newaxis]
    if components == 1 and view.dtype == np.uint8:
        return np.array(view)  # the one extra copy; the ITK image is released by the caller
    out = np.empty(view.shape[:3], dtype=np.uint8)
    low, high = (0.0, 255.0) if view.dtype == np.uint8 else _value_range(view)
    scale = 255.0 / (high - low) if high > low else 0.0
    for start in range(0, len(view), _CHUNK_FRAMES):
        chunk = view[start:start + _CHUNK_FRAMES].astype(np.float32)
        if components > 1:
            chunk = chunk[..., :3] @ _LUMA.astype(np.float32)
        out[start:start + _CHUNK_FRAMES] = np.clip(np.rint((chunk - low) * scale), 0, 255)
    return out


def _value_range(view: np.ndarray) -> tuple[float, float]:
    finite_min, finite_max = np.inf, -np.inf
    for start in range(0, len(view), _CHUNK_FRAMES):
        chunk = view[start:start + _CHUNK_FRAMES]
        if chunk.dtype.kind == "f":
            chunk = chunk[np.isfinite(chunk)]
        if chunk.size:
            finite_min = min(finite_min, float(chunk.min()))
            finite_max = max(finite_max, float(chunk.max()))
    if not np.isfinite(finite_min):
        return 0.0, 0.0
    return finite_min, finite_max
