"""A DICOMDIR: how an ultrasound machine writes an exam to a USB stick or a CD. The images sit in
subfolders (PT000000/ST000000/SE000000/IM000000, no extension) that only the DICOMDIR indexes.

Each multi-frame image is one recording (a cine: a sweep); single-frame images of one series
together are one. Every file it names must lie inside the DICOMDIR's own folder."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

from ..base.errors import CaseLoadError
from ..base.text import counted
from .headers import why_not_inside

log = logging.getLogger(__name__)

NAME = "DICOMDIR"


def is_dicomdir(path: Path) -> bool:
    return path.name.upper() == NAME


def recordings(dicomdir: Path) -> list[list[Path]]:
    """The recordings the DICOMDIR lists, in its order: each a list of files (one for a cine)."""
    from pydicom import dcmread
    from pydicom.errors import InvalidDicomError
    from pydicom.fileset import FileSet
    try:
        with warnings.catch_warnings(record=True) as said:  # pydicom also logs them (our log escapes them)
            warnings.simplefilter("always")
            fileset = FileSet(dicomdir)
    except Exception as error:  # noqa: BLE001 - pydicom raises many kinds for a damaged DICOMDIR
        log.debug("pydicom could not read %s: %s", dicomdir, error)
        raise CaseLoadError(dicomdir, "its DICOMDIR index could not be read",
                            "The export may be incomplete; open the image files themselves.") from None
    missing = [warning for warning in said if "does not exist" in str(warning.message)]
    if missing:  # pydicom leaves them out: a series would lose frames, or another recording open as the first
        raise CaseLoadError(dicomdir, f"{counted(len(missing), 'file')} it lists "
                            f"{'is' if len(missing) == 1 else 'are'} missing",
                            "The copy may be incomplete; copy the whole export again.")
    root = dicomdir.parent.resolve()
    order: list[Path | str] = []  # a cine's file, or a series' UID, in the DICOMDIR's order
    series: dict[str, list[tuple[int, Path]]] = {}
    for instance in fileset:
        if instance.node.record_type != "IMAGE":
            continue
        # pydicom names it under the resolved folder: named again under the folder as opened (a link to the stick)
        name = os.path.relpath(instance.path, root)
        reason = why_not_inside(root, name)  # a link out, a FIFO (which would block the read below), a folder
        if reason:
            raise CaseLoadError(dicomdir, f"it names the file {Path(name).as_posix()}, which {reason}",
                                "Open the image files themselves.")
        path = dicomdir.parent / name
        try:
            header = dcmread(path, stop_before_pixels=True, specific_tags=["NumberOfFrames", "InstanceNumber"])
            frames, number = int(header.get("NumberOfFrames") or 1), int(header.get("InstanceNumber") or 0)
        except (InvalidDicomError, ValueError) as error:  # not DICOM; a number that is not one
            which = "is not a DICOM file" if isinstance(error, InvalidDicomError) else f"has a damaged header ({error})"
            raise CaseLoadError(dicomdir, f"it names the file {Path(name).as_posix()}, which {which}",
                                "The copy may be damaged; copy the whole export again.") from None
        if frames > 1:
            order.append(path)  # a cine: a recording of its own
            continue
        uid = str(getattr(instance, "SeriesInstanceUID", "") or path.parent)
        if uid not in series:
            series[uid] = []
            order.append(uid)
        series[uid].append((number, path))
    return [[key] if isinstance(key, Path) else [path for _, path in sorted(series[key])] for key in order]


def case_paths(dicomdir: Path) -> tuple[list[Path], list[Path]]:
    """What to open for each recording the DICOMDIR lists: a cine's file, or the folder of a series
    of single frames (an export keeps each series in a folder of its own); and the folders where
    a series shares its folder with another recording, which opens as the folder's first series only."""
    found = recordings(dicomdir)
    paths: list[Path] = []
    shared: list[Path] = []
    for files in found:
        path = files[0] if len(files) == 1 else files[0].parent
        if len(files) > 1 and path not in shared and any(
                file.parent == path for other in found if other is not files for file in other):
            shared.append(path)
        if path not in paths:
            paths.append(path)
    return paths, shared
