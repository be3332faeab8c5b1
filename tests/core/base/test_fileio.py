"""Atomic writes where hard links are refused, on read-only disks, in groups, and their leftovers."""

import errno
import os
import time

import numpy as np
import pytest
import SimpleITK as sitk

from fetal_iqa_gui.base.errors import WriteError
from fetal_iqa_gui.base.fileio import (NotRegularFile, atomic_write, read_regular, remove_stale_parts, write_image,
                                       write_together)


def contents(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else None for p in folder.rglob("*")}


def writes(data):
    return lambda file: file.write(data)


@pytest.fixture
def no_hard_links(monkeypatch):
    """A filesystem like FAT/exFAT (USB sticks) or many SMB shares, which refuse hard links."""
    def refuse(*args, **kwargs):
        raise PermissionError(errno.EPERM, "Operation not permitted")
    monkeypatch.setattr(os, "link", refuse)


def test_files_are_written_without_hard_links_and_never_over_another(no_hard_links, tmp_path):
    path = atomic_write(tmp_path / "scores.csv", writes(b"first"))
    with pytest.raises(WriteError, match="already exists"):
        atomic_write(path, writes(b"second"))
    assert contents(tmp_path) == {"scores.csv": b"first"}
    atomic_write(path, writes(b"third"), overwrite=True)
    assert contents(tmp_path) == {"scores.csv": b"third"}


def test_images_are_written_without_hard_links_and_never_over_another(no_hard_links, tmp_path):
    image = sitk.GetImageFromArray(np.arange(24, dtype=np.uint8).reshape(2, 3, 4))
    path = write_image(image, tmp_path / "case.mha")
    with pytest.raises(WriteError, match="already exists"):
        write_image(sitk.Image(4, 4, sitk.sitkUInt8), path)
    assert [p.name for p in tmp_path.iterdir()] == ["case.mha"]
    assert np.array_equal(sitk.GetArrayFromImage(sitk.ReadImage(str(path))), np.arange(24).reshape(2, 3, 4))


def test_a_name_taken_while_writing_is_not_overwritten(tmp_path):
    path = tmp_path / "best.png"

    def slow_writer(file):  # another program creates the same name meanwhile
        path.write_bytes(b"theirs")
        file.write(b"ours")
    with pytest.raises(WriteError, match="already exists"):
        atomic_write(path, slow_writer)
    assert contents(tmp_path) == {"best.png": b"theirs"}


@pytest.fixture(params=[(errno.EROFS, "the disk is read-only"), (errno.EACCES, "permission denied")])
def unwritable_disk(request, monkeypatch, tmp_path):
    """Every change to the disk refused: a read-only mount, or a folder the user may not write to
    (tests run as root, where chmod does not stop writes). On a read-only mount even removing a
    file that is not there fails. Returns the expected message; `tmp_path` exists before."""
    code, message = request.param
    real_open = os.open

    def refuse(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    def open_for_reading_only(path, flags, *args, **kwargs):
        return refuse() if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) else real_open(path, flags, *args, **kwargs)
    for name in ("mkdir", "unlink", "replace", "rename", "rmdir"):
        monkeypatch.setattr(os, name, refuse)
    monkeypatch.setattr(os, "open", open_for_reading_only)
    return message


@pytest.mark.parametrize("target", ["out.csv", "new-folder/out.csv"])
def test_an_unwritable_folder_gets_a_message_not_a_traceback(unwritable_disk, tmp_path, target):
    with pytest.raises(WriteError, match=rf"^Could not write '.*out.csv': {unwritable_disk}\. Choose a folder"):
        atomic_write(tmp_path / target, writes(b"data"))


def test_an_unwritable_folder_refuses_images_with_a_message(unwritable_disk, tmp_path):
    with pytest.raises(WriteError, match=f"Could not write '.*case.mha': {unwritable_disk}"):
        write_image(sitk.Image(4, 4, sitk.sitkUInt8), tmp_path / "case.mha")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_gets_a_message(tmp_path):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(WriteError, match="permission denied"):
            atomic_write(folder / "out.csv", writes(b"data"))
    finally:
        folder.chmod(0o755)
    assert not any(folder.iterdir())


def disk_full_on_call(number, monkeypatch):
    """The disk fills up when the `number`-th file is flushed."""
    real_fsync, calls = os.fsync, []

    def fsync(fd):
        calls.append(fd)
        if len(calls) == number:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)
    monkeypatch.setattr(os, "fsync", fsync)


def test_files_written_together_appear_together_or_not_at_all(tmp_path, monkeypatch):
    group = [(tmp_path / "frame.png", writes(b"png")), (tmp_path / "frame.json", writes(b"{}"))]
    with monkeypatch.context() as patch:
        disk_full_on_call(2, patch)
        with pytest.raises(WriteError, match="frame.json': the disk is full"):
            write_together(group)
    assert contents(tmp_path) == {}
    assert write_together(group) == [tmp_path / "frame.png", tmp_path / "frame.json"]  # a retry is not refused
    assert contents(tmp_path) == {"frame.png": b"png", "frame.json": b"{}"}


def test_a_group_is_taken_back_when_its_last_file_cannot_be_moved_into_place(tmp_path, monkeypatch):
    group = [(tmp_path / "frame.png", writes(b"png")), (tmp_path / "frame.json", writes(b"{}"))]
    real_replace = os.replace

    def replace(source, target):
        if str(target).endswith(".json"):
            raise OSError(errno.EIO, "Input/output error")
        real_replace(source, target)
    with monkeypatch.context() as patch:
        patch.setattr(os, "replace", replace)
        with pytest.raises(WriteError, match="frame.json': Input/output error"):
            write_together(group)
    assert contents(tmp_path) == {}



@pytest.mark.parametrize("when", ["claiming", "placing"])
def test_a_group_interrupted_while_placed_leaves_nothing_and_the_rerun_writes_it(tmp_path, monkeypatch, when):
    """Ctrl+C or SIGTERM (raised as KeyboardInterrupt) while the names are claimed or the files moved: no empty
    placeholder is left under an output's name (the rerun would refuse it as taken, a PACS get a 0-byte file)."""
    group = [(tmp_path / "frame.dcm", writes(b"image")), (tmp_path / "frame_SR.dcm", writes(b"report"))]
    real_open, real_replace = os.open, os.replace

    def interrupted_open(path, *args, **kwargs):
        if str(path).endswith("_SR.dcm"):
            raise KeyboardInterrupt
        return real_open(path, *args, **kwargs)

    def interrupted_replace(source, target):
        if str(target).endswith("_SR.dcm"):
            raise KeyboardInterrupt
        real_replace(source, target)
    with monkeypatch.context() as patch:
        patch.setattr(os, "open", interrupted_open) if when == "claiming" else patch.setattr(os, "replace",
                                                                                             interrupted_replace)
        with pytest.raises(KeyboardInterrupt):
            write_together(group)
    assert contents(tmp_path) == {}
    write_together(group)
    assert contents(tmp_path) == {"frame.dcm": b"image", "frame_SR.dcm": b"report"}


def test_a_group_with_one_name_taken_writes_nothing(tmp_path):
    (tmp_path / "frame.json").write_bytes(b"earlier")
    with pytest.raises(WriteError, match="frame.json': a file of that name already exists"):
        write_together([(tmp_path / "frame.png", writes(b"png")), (tmp_path / "frame.json", writes(b"{}"))])
    assert contents(tmp_path) == {"frame.json": b"earlier"}


def test_stale_leftovers_of_killed_writes_are_removed_and_nothing_else(tmp_path):
    old = time.time() - 2 * 3600
    stale_file = tmp_path / ".case_scores.csv.0badc0de.part"
    stale_folder = tmp_path / ".part-k3j2h1g0"
    stale_folder.mkdir()
    (stale_folder / "case.mha").write_bytes(b"half")
    fresh_file = tmp_path / ".other.csv.12345678.part"  # another process writing right now
    kept = [fresh_file, tmp_path / "notes.part", tmp_path / ".notes.part", tmp_path / "case.mha"]
    for path in [stale_file, *kept]:
        path.write_bytes(b"x")
    for path in [stale_file, stale_folder / "case.mha", stale_folder, *kept[1:]]:
        os.utime(path, (old, old))
    assert sorted(remove_stale_parts(tmp_path, older_than_minutes=30)) == sorted([stale_file, stale_folder])
    assert sorted(tmp_path.iterdir()) == sorted(kept)
    assert remove_stale_parts(tmp_path / "missing") == []


# -- special files (issue 29): only regular files are read or replaced --------------------------

@pytest.mark.parametrize("make", [os.mkfifo, lambda path: os.symlink(os.devnull, path)])
def test_replacing_is_refused_for_anything_but_a_regular_file(tmp_path, make):
    target = tmp_path / "scores.csv"
    make(target)
    for write in (lambda: atomic_write(target, writes(b"x"), overwrite=True),
                  lambda: write_image(sitk.Image([2, 2], sitk.sitkUInt8), tmp_path / "scores.csv", overwrite=True)):
        with pytest.raises(WriteError, match="it is not a regular file"):
            write()
    assert not target.is_file() or target.is_symlink()  # still the pipe or the link
    assert sorted(os.listdir(tmp_path)) == ["scores.csv"]  # no temporary file left


def test_a_pipe_is_refused_unread_instead_of_blocking(tmp_path):
    os.mkfifo(tmp_path / "marker.json")
    with pytest.raises(NotRegularFile, match=r"a pipe \(FIFO\)"):
        read_regular(tmp_path / "marker.json")  # a plain read would wait for a writer forever
    (tmp_path / "file").write_bytes(b"kept")
    assert read_regular(tmp_path / "file") == b"kept"


def test_the_review_file_as_a_pipe_neither_blocks_the_worklist_nor_is_replaced(tmp_path):
    import numpy as np
    import SimpleITK as sitk
    from fetal_iqa_gui.case.loading import load_case
    from fetal_iqa_gui.review.export import ModelInfo
    from fetal_iqa_gui.review.scored_case import ScoredCase
    from fetal_iqa_gui.runs.worklist import REVIEW_FILE, Worklist
    sitk.WriteImage(sitk.GetImageFromArray(np.full((3, 8, 8), 9, np.uint8)), str(tmp_path / "a.mha"))
    os.mkfifo(tmp_path / REVIEW_FILE)
    worklist = Worklist(tmp_path)  # read as no review (a FIFO would block the read)
    case = load_case(tmp_path / "a.mha")
    with pytest.raises(WriteError):
        worklist.mark_reviewed(tmp_path / "a.mha", ScoredCase(case, ModelInfo("m", "id", 0.5), np.full(3, 0.9, np.float32)))
    assert (tmp_path / REVIEW_FILE).is_fifo()
