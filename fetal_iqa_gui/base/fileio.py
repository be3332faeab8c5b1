"""Atomic writes: a file appears whole or not at all, and is never silently overwritten.

Each file is written to a temporary file beside its target, then moved into place. Without
`overwrite`, the target's name is first claimed by creating it exclusively (an empty placeholder,
which the finished file then replaces): unlike a hard link, this works on FAT/exFAT (USB sticks)
and SMB shares too.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Callable, Iterable

from .errors import NameTaken, WriteError

Writer = Callable[[BinaryIO], object]  # what it returns (a byte count) is not used

STAGING_PREFIX = ".part-"  # write_image's hidden staging folders
_TEMP_FILE = re.compile(r"\..+\.[0-9a-f]{8}\.part")  # atomic_write's hidden temporary files

# errno -> (what happened, what to do), for the messages
_REASONS = {
    errno.ENOSPC: ("the disk is full", "free some space or choose another folder"),
    errno.EDQUOT: ("your disk quota is used up", "free some space or choose another folder"),
    errno.EACCES: ("permission denied", "choose a folder you can write to"),
    errno.EPERM: ("permission denied", "choose a folder you can write to"),
    errno.EROFS: ("the disk is read-only", "choose a folder you can write to"),
}


class NotRegularFile(OSError):
    """A path that is a pipe, a device, a socket, a folder or a link where one of our files should be:
    it is neither read (a FIFO blocks forever, a device never ends) nor replaced."""

    def __init__(self, path: str | os.PathLike, mode: int):
        super().__init__(errno.EINVAL, f"it is not a regular file (it is {special_file_kind(mode)})", str(path))

    def __str__(self) -> str:  # said inside our messages, which name the file themselves
        return self.strerror or ""  # always set by __init__


def special_file_kind(mode: int) -> str:
    """What a file that is not a regular file is, in words."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a pipe (FIFO), which could block forever"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    return "a device or socket"


def check_regular(path: str | os.PathLike) -> None:
    """Raise `NotRegularFile` unless `path` (links followed) is a regular file, before anything opens
    it: a pipe would block the open for good, a device act on it."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise NotRegularFile(path, mode)


def read_regular(path: str | os.PathLike) -> bytes:
    """The bytes of the regular file `path` (links followed); `NotRegularFile` for anything else,
    which is not even opened (opening some devices acts), and never a read that blocks."""
    check_regular(path)
    handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # swapped for a FIFO since the stat: the open still returns
    with os.fdopen(handle, "rb") as file:
        mode = os.fstat(handle).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(path, mode)
        return file.read()


def check_replaceable(path: str | os.PathLike) -> None:
    """Raise `NotRegularFile` when `path` exists and is not a regular file: a device node, a pipe or a
    link is never replaced by a file of ours, even when replacing was asked for."""
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):  # not there, or its folder is a file: writing it will say so
        return
    if not stat.S_ISREG(mode):
        raise NotRegularFile(path, mode)


def private_folder(path: str | os.PathLike) -> Path:
    """The folder `path`, with each missing folder on the way made so that only the user may open it
    (logs and caches name files, which may name patients). A folder that exists keeps its mode: it
    may be the user's own, shared with a group on purpose (a 2775 team folder)."""
    path = Path(path)
    missing = [folder for folder in [path, *path.parents] if not folder.exists()]
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made meanwhile by another process: theirs
            folder.mkdir(mode=0o700)
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "not a folder", str(path))
    return path


def atomic_write(path: str | os.PathLike, write: Writer, overwrite: bool = False, mode: int | None = None) -> Path:
    """Write through `write(file)` into a temporary file beside `path`, then move it into place.

    Without `overwrite`, an existing file raises `WriteError` instead of being replaced. A full
    disk or a failed writer leaves nothing behind. `mode`: the file's permissions exactly (0o600
    for one that may name a patient); None gives the user's usual ones.
    """
    return write_together([(path, write)], overwrite, mode)[0]


def write_together(files: Iterable[tuple[str | os.PathLike, Writer]], overwrite: bool = False,
                   mode: int | None = None) -> list[Path]:
    """Write several files as one, such as a PNG and its sidecar: all of them appear, or none.

    Every file is written to its temporary file first, then every name is claimed, then each is
    moved into place; on any failure the files this call created are removed. (What `overwrite`
    replaced before a later file failed stays replaced: only new names can be taken back.)
    """
    writes = [(Path(name), write) for name, write in files]
    temps: list[Path] = []
    path = writes[0][0]
    try:
        for path, _ in writes:  # before writing anything: a refused export costs no work
            _refuse_existing(path, overwrite)
        for path, write in writes:
            path.parent.mkdir(parents=True, exist_ok=True)
            # not mkstemp: its files are private (0600); an export must get the user's usual permissions
            temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
            handle = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 if mode is None else mode & 0o600)
            temps.append(temp)
            if mode is not None and hasattr(os, "fchmod"):  # exactly: the umask may not take a group's bits
                with contextlib.suppress(OSError):  # FAT, SMB: no permissions to set
                    os.fchmod(handle, mode)
            with os.fdopen(handle, "wb") as file:
                write(file)
                file.flush()
                os.fsync(file.fileno())
        _place(temps, [path for path, _ in writes], overwrite)
        temps.clear()
    except OSError as error:
        raise _write_error(path, error) from None
    finally:
        for temp in temps:
            _remove(temp)
    return [path for path, _ in writes]


def write_image(image, path: str | os.PathLike, overwrite: bool = False, compress: bool = True) -> Path:
    """Write a SimpleITK image as `atomic_write` writes bytes: whole or not at all.

    ITK writes to paths only and picks the format by the extension, so the image is written under
    its own name in a hidden folder beside `path` (which a folder listing of `*.mha` does not see),
    then moved into place.
    """
    import SimpleITK as sitk
    path = Path(path)
    staging = None
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:  # ITK would abort the process on it
        raise WriteError(path, "its name is not valid text (UTF-8), which ITK cannot write",
                         "Choose a folder and a name of plain letters.") from None
    try:
        _refuse_existing(path, overwrite)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=STAGING_PREFIX))
        try:
            sitk.WriteImage(image, str(staging / path.name), compress)
        except RuntimeError as error:  # ITK reports its I/O failures in the message only
            raise WriteError(path, _itk_reason(str(error))) from None
        _place([staging / path.name], [path], overwrite)
    except OSError as error:
        raise _write_error(path, error) from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
    return path


def remove_stale_parts(folder: str | os.PathLike, older_than_minutes: float = 60) -> list[Path]:
    """Remove the temporary files and staging folders that writes killed midway (`kill -9`, a
    power cut) left in `folder`. Only those untouched for `older_than_minutes` go, so that the
    writes of another process still running are safe. Returns what was removed."""
    cutoff = time.time() - older_than_minutes * 60
    removed: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:  # no folder, no leftovers
        return removed
    for entry in entries:
        try:
            if entry.name.startswith(STAGING_PREFIX) and entry.is_dir():
                if max(p.stat().st_mtime for p in [entry, *entry.iterdir()]) < cutoff:
                    shutil.rmtree(entry)
                    removed.append(entry)
            elif _TEMP_FILE.fullmatch(entry.name) and entry.is_file() and entry.stat().st_mtime < cutoff:
                entry.unlink()
                removed.append(entry)
        except OSError:  # removed meanwhile by another process, or not ours to remove
            continue
    return removed


def safe_name(name: str) -> str:
    """`name` as a plain file name inside its folder: no folder separators, no leading dots (a hidden
    file, or '..' leaving the folder), never empty."""
    return re.sub(r"[/\\]", "_", name).lstrip(".") or "unnamed"


def check_writable(folder: str | os.PathLike) -> None:
    """Create `folder` if needed and raise `WriteError` unless a file can be created in it: said at
    the start, not after an hour of work. The probe is removed (or, if killed, cleaned by
    `remove_stale_parts`)."""
    folder = Path(folder)
    probe = folder / f".write-test.{secrets.token_hex(4)}.part"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        probe.unlink()
    except OSError as error:
        raise _write_error(folder, error) from None


def _place(temps: list[Path], paths: list[Path], overwrite: bool) -> None:
    """Claim every name, then move each finished temporary file onto its name; on failure remove
    the names this call claimed."""
    created = []
    path = paths[0]
    try:
        for path in paths:
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                created.append(path)
            except FileExistsError:
                if not overwrite:
                    raise
                check_replaceable(path)  # made a pipe or a device since the first look
        for temp, path in zip(temps, paths):
            os.replace(temp, path)
    except BaseException as error:  # Ctrl+C or SIGTERM too: no empty placeholder, no group placed in part
        for name in created:
            _remove(name)
        if not isinstance(error, OSError):
            raise
        raise _write_error(path, error) from None


def _refuse_existing(path: Path, overwrite: bool) -> None:
    check_replaceable(path)
    if not overwrite and path.exists():
        raise _exists_error(path)


def _remove(path: Path) -> None:
    """Clean-up that never hides the error being reported (on a read-only disk even removing a
    file that is not there fails)."""
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _exists_error(path: Path) -> WriteError:
    return NameTaken(path, "a file of that name already exists; it was not overwritten")


def _write_error(path: Path, error: OSError) -> WriteError:
    if isinstance(error, FileExistsError):
        return _exists_error(path)
    if isinstance(error, NotRegularFile):
        return WriteError(path, str(error), "Choose the name of a regular file, or remove what is there.")
    if error.errno in _REASONS:
        reason, advice = _REASONS[error.errno]
        return WriteError(path, reason, advice[0].upper() + advice[1:] + ".")
    return WriteError(path, error.strerror or str(error))


def _itk_reason(message: str) -> str:
    if "No space left" in message:
        return "the disk is full"
    reason = re.search(r"Reason: (.+)", message)
    return reason.group(1).strip() if reason else message.strip().splitlines()[-1]
