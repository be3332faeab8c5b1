"""Atomic writes: a file appears whole or not at all, and is never silently overwritten."""

from __future__ import annotations

import errno
import os
import re
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from .errors import WriteError


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None], overwrite: bool = False) -> Path:
    """Write through `write(file)` into a temporary file beside `path`, then rename it into place.

    Without `overwrite`, an existing file raises `WriteError` instead of being replaced. A full
    disk or a failed writer leaves nothing behind.
    """
    path = Path(path)
    _refuse_existing(path, overwrite)
    temp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # not mkstemp: its files are private (0600); an export must get the user's usual permissions
        temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
        handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        _move_into_place(temp, path, overwrite)
        temp = None
    except OSError as error:
        raise _write_error(path, error) from None
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)
    return path


def write_image(image, path: str | os.PathLike, overwrite: bool = False, compress: bool = True) -> Path:
    """Write a SimpleITK image as `atomic_write` writes bytes: whole or not at all.

    ITK writes to paths only and picks the format by the extension, so the image is written under
    its own name in a hidden folder beside `path` (which a folder listing of `*.mha` does not see),
    then moved into place.
    """
    import SimpleITK as sitk
    path = Path(path)
    _refuse_existing(path, overwrite)
    staging = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=".part-"))
        try:
            sitk.WriteImage(image, str(staging / path.name), compress)
        except RuntimeError as error:  # ITK reports its I/O failures in the message only
            raise WriteError(path, _itk_reason(str(error))) from None
        _move_into_place(staging / path.name, path, overwrite)
    except OSError as error:
        raise _write_error(path, error) from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return path


def _refuse_existing(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise _exists_error(path)


def _exists_error(path: Path) -> WriteError:
    return WriteError(path, "a file of that name already exists; it was not overwritten")


def _move_into_place(temp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(temp, path)
    else:
        os.link(temp, path)  # fails if the name was taken meanwhile, unlike rename
        temp.unlink()


def _write_error(path: Path, error: OSError) -> WriteError:
    if isinstance(error, FileExistsError):
        return _exists_error(path)
    reason = "the disk is full" if error.errno == errno.ENOSPC else error.strerror or str(error)
    return WriteError(path, reason)


def _itk_reason(message: str) -> str:
    if "No space left" in message:
        return "the disk is full"
    reason = re.search(r"Reason: (.+)", message)
    return reason.group(1).strip() if reason else message.strip().splitlines()[-1]
