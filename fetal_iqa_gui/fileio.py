"""Atomic writes: a file appears whole or not at all, and is never silently overwritten."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


class ExportError(Exception):
    """A file that could not be written; the message is written for the user."""


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], None], overwrite: bool = False) -> Path:
    """Write through `write(file)` into a temporary file beside `path`, then rename it into place.

    Without `overwrite`, an existing file raises `ExportError` instead of being replaced. A full
    disk or a failed writer leaves nothing behind.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise ExportError(f"'{path}' already exists; it was not overwritten.")
    temp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
        temp = Path(name)
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        if overwrite:
            os.replace(temp, path)
        else:
            os.link(temp, path)  # fails if the name was taken meanwhile, unlike rename
            temp.unlink()
        temp = None
    except FileExistsError:
        raise ExportError(f"'{path}' already exists; it was not overwritten.") from None
    except OSError as error:
        reason = "the disk is full" if error.errno == 28 else error.strerror or str(error)
        raise ExportError(f"Could not write '{path}': {reason}.") from None
    finally:
        if temp is not None:
            temp.unlink(missing_ok=True)
    return path
