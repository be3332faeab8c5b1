"""The review file as a shared record: two sessions keep each other's reviews, a review belongs to a
sweep's content, and a file that cannot be read is set aside and said, never overwritten."""

import logging
import json
import os
import threading

import numpy as np
import pytest

from fetal_iqa_gui.base.errors import WriteError
from fetal_iqa_gui.review.export import ModelInfo
from fetal_iqa_gui.runs import review_record
from fetal_iqa_gui.runs import worklist as worklist_module
from tests.support import linearly_scored
from fetal_iqa_gui.runs.worklist import NOT_SCORED, REVIEW_FILE, REVIEWED, SCORED, Worklist

MODEL = ModelInfo("tiny", "id-1", 0.5, is_demo=True)


def write_sweep(path, frames):
    import SimpleITK as sitk
    image = sitk.GetImageFromArray(frames)
    image.SetSpacing((0.28, 0.28, 1.0))
    sitk.WriteImage(image, str(path))


@pytest.fixture
def folder(tmp_path, small_case):
    for shift, name in enumerate(("a.mha", "b.mha", "c.mha")):  # three sweeps, each its own content
        write_sweep(tmp_path / name, np.roll(small_case.frames, shift, axis=2))
    return tmp_path


@pytest.fixture
def as_user(monkeypatch):
    def become(name):
        monkeypatch.setattr(worklist_module, "user_name", lambda: name)
    return become


def scored_case(path):
    return linearly_scored(path, MODEL)


def states(folder):
    return [case.state for case in Worklist(folder).cases]


def saved_document(folder):
    return json.loads((folder / REVIEW_FILE).read_text())


def test_two_sessions_on_one_folder_keep_each_others_reviews(folder, as_user):
    ann, ben = Worklist(folder), Worklist(folder)  # both open before either saves
    as_user("ann")
    ann.mark_reviewed(folder / "a.mha", scored_case(folder / "a.mha"))
    as_user("ben")
    ben.scored(folder / "b.mha", scored_case(folder / "b.mha"))  # scoring alone must not erase ann's review
    ben.mark_reviewed(folder / "c.mha", scored_case(folder / "c.mha"))
    assert states(folder) == [REVIEWED, SCORED, REVIEWED]
    assert [case.state for case in ben.cases] == [REVIEWED, SCORED, REVIEWED]  # ben's window shows ann's too


def test_the_newest_review_of_a_case_wins_and_both_reviewers_are_in_its_history(folder, as_user):
    ann, ben = Worklist(folder), Worklist(folder)
    first, second = scored_case(folder / "a.mha"), scored_case(folder / "a.mha")
    second.threshold = 0.8
    as_user("ann")
    ann.mark_reviewed(folder / "a.mha", first)
    as_user("ben")
    ben.mark_reviewed(folder / "a.mha", second)
    ann.scored(folder / "b.mha", scored_case(folder / "b.mha"))  # ann's next save: her old review stays old
    [record] = saved_document(folder)["sweeps"]["a.mha"].values()
    assert record["decided_by"] == "ben" and record["review"]["threshold"] == 0.8
    assert [event["by"] for event in record["history"]] == ["ann", "ben"]
    assert ann.cases[0].review["threshold"] == 0.8  # what her window shows now


def test_another_sweep_saved_under_a_reviewed_name_is_not_reviewed(folder, small_case):
    Worklist(folder).mark_reviewed(folder / "a.mha", scored_case(folder / "a.mha"))
    before = os.stat(folder / "a.mha")
    write_sweep(folder / "a.mha", np.flip(small_case.frames, axis=2))  # another patient's sweep, same name
    assert states(folder)[0] == NOT_SCORED
    os.utime(folder / "a.mha", ns=(before.st_atime_ns, before.st_mtime_ns))  # even if its size and time match
    worklist = Worklist(folder)
    assert worklist.cases[0].state == REVIEWED  # until its content is known...
    other = scored_case(folder / "a.mha")
    worklist.opened(folder / "a.mha", other.case.content_hash)
    assert worklist.cases[0].state == NOT_SCORED and worklist.cases[0].review == {}  # ...which it is when opened
    worklist.scored(folder / "a.mha", other)
    assert len(saved_document(folder)["sweeps"]["a.mha"]) == 2  # the first sweep's review is kept


@pytest.mark.parametrize("content, problem", [
    ("{ not json", "damaged"),
    (json.dumps({"version": 3, "sweeps": {}}), "newer version of fetal-iqa (version 3)"),
    (json.dumps(["a list"]), "not a review file"),
    (json.dumps({"version": 2, "sweeps": ["a list"]}), "damaged"),
], ids=["not json", "a newer version", "not an object", "sweeps not an object"])
def test_a_review_file_that_cannot_be_read_is_set_aside_and_said_never_overwritten(folder, content, problem, caplog):
    caplog.set_level(logging.INFO, logger="fetal_iqa_gui")  # whatever an earlier test left the levels at
    (folder / REVIEW_FILE).write_text(content)
    worklist = Worklist(folder)
    [aside] = folder.glob(f"{REVIEW_FILE}.damaged-*")
    assert aside.read_text() == content
    [notice] = worklist.take_notices()
    assert problem in notice and aside.name in notice and problem in caplog.text
    worklist.mark_reviewed(folder / "a.mha", scored_case(folder / "a.mha"))
    assert aside.read_text() == content and states(folder)[0] == REVIEWED


def test_entries_of_the_wrong_types_are_left_out_with_a_warning_and_the_rest_loads(folder, caplog):
    caplog.set_level(logging.INFO, logger="fetal_iqa_gui")  # whatever an earlier test left the levels at
    Worklist(folder).mark_reviewed(folder / "a.mha", scored_case(folder / "a.mha"))
    document = saved_document(folder)
    [(content_hash, good)] = document["sweeps"]["a.mha"].items()
    broken_caliper = json.loads(json.dumps(good))
    broken_caliper["review"]["sweeps"][0]["calipers"] = [{"kind": "ellipse", "center_px": "middle"}]
    document["sweeps"].update({"b.mha": {"x": {**good, "best_score": "high"}}, "c.mha": {"y": broken_caliper},
                               "d.mha": "reviewed", "e.mha": {"z": {**good, "state": 5}},
                               "f.mha": {"w": {**good, "best_score": 10 ** 400}}})
    (folder / REVIEW_FILE).write_text(json.dumps(document))
    worklist = Worklist(folder)
    assert [case.state for case in worklist.cases] == [REVIEWED, NOT_SCORED, NOT_SCORED]
    [notice] = worklist.take_notices()
    assert notice.startswith("5 entries of the review file could not be read") and "b.mha" in notice
    assert "ignoring the entry" in caplog.text and "the best score 'high'" in caplog.text
    worklist.scored(folder / "b.mha", scored_case(folder / "b.mha"))
    assert "e.mha" in saved_document(folder)["sweeps"]  # left out of this session, not out of the file


def test_a_version_1_review_is_shown_for_the_file_it_reviewed_and_kept_by_content_from_then(folder):
    review = {"reviewed_at": "2999-01-01T00:00:00+00:00", "threshold": 0.5, "sweeps": []}
    stale = {"reviewed_at": "2000-01-01T00:00:00+00:00", "threshold": 0.5, "sweeps": []}  # b.mha changed since
    (folder / REVIEW_FILE).write_text(json.dumps({"version": 1, "cases": {
        "a": {"state": REVIEWED, "best_score": 0.9, "review": review},
        "b": {"state": REVIEWED, "best_score": 0.8, "review": stale}}}))
    worklist = Worklist(folder)
    assert [case.state for case in worklist.cases] == [REVIEWED, NOT_SCORED, NOT_SCORED]
    worklist.scored(folder / "a.mha", scored_case(folder / "a.mha"))
    document = saved_document(folder)
    assert document["version"] == 2 and list(document["unmatched_version_1"]) == ["b"]  # nothing lost
    [record] = document["sweeps"]["a.mha"].values()
    assert record["state"] == REVIEWED and record["review"] == review


def test_a_new_review_file_is_private_and_an_existing_one_keeps_its_mode(folder):
    worklist = Worklist(folder)
    worklist.scored(folder / "a.mha", scored_case(folder / "a.mha"))
    assert (folder / REVIEW_FILE).stat().st_mode & 0o777 == 0o600
    os.chmod(folder / REVIEW_FILE, 0o664)  # shared with the team's group on purpose
    worklist.mark_reviewed(folder / "a.mha", scored_case(folder / "a.mha"))
    assert (folder / REVIEW_FILE).stat().st_mode & 0o777 == 0o664


def test_a_save_while_another_session_holds_the_file_waits_then_says_so(folder, monkeypatch):
    from filelock import FileLock
    monkeypatch.setattr(review_record, "LOCK_TIMEOUT_S", 0.2)
    worklist = Worklist(folder)
    held, release = threading.Event(), threading.Event()

    def other_session():
        with FileLock(f"{folder / REVIEW_FILE}.lock"):
            held.set()
            release.wait(10)
    thread = threading.Thread(target=other_session)
    thread.start()
    held.wait(10)
    try:
        worklist.record = review_record.ReviewFile(folder)  # with the short timeout
        with pytest.raises(WriteError, match="another session has kept it locked"):
            worklist.mark_reviewed(folder / "a.mha", scored_case(folder / "a.mha"))
    finally:
        release.set()
        thread.join()
    assert worklist.cases[0].state == REVIEWED and not worklist.saved
    worklist.scored(folder / "b.mha", scored_case(folder / "b.mha"))  # the next save writes both
    assert states(folder) == [REVIEWED, SCORED, NOT_SCORED]


def test_a_save_after_the_folder_went_says_so_and_makes_no_folder(folder, tmp_path):
    """Another program moved or deleted the exam's folder (a stick pulled out: its mount point goes) while the
    worklist was open: the save fails, said; the folder is not made again to hold a review no one will find."""
    import shutil
    worklist = Worklist(folder)
    scored = scored_case(folder / "a.mha")
    shutil.rmtree(folder)
    with pytest.raises(WriteError, match="its folder is gone"):
        worklist.mark_reviewed(folder / "a.mha", scored)
    assert worklist.rescan() == [] and not folder.exists()
    Worklist(folder)  # opened where nothing is: nothing made there either
    assert not folder.exists()


@pytest.mark.parametrize("planted", ["link", "fifo"])
def test_a_lock_file_that_is_a_link_or_a_pipe_is_not_opened_and_the_save_says_so(folder, tmp_path_factory, planted):
    """Anyone with write access to a shared folder can put a link where the review file's lock goes: the lock
    library opened its target (filelock 3.12, the floor, truncated it and made it 0666), a pipe or device too."""
    lock = folder / f"{REVIEW_FILE}.lock"
    victim = tmp_path_factory.mktemp("elsewhere") / "notes.txt"
    victim.write_text("someone's notes")
    victim.chmod(0o600)
    if planted == "link":
        lock.symlink_to(victim)
    else:
        os.mkfifo(lock)
    worklist = Worklist(folder)  # read without the lock
    with pytest.raises(WriteError, match="lock file .* not a regular file"):
        worklist.mark_reviewed(folder / "a.mha", scored_case(folder / "a.mha"))
    assert victim.read_text() == "someone's notes" and victim.stat().st_mode & 0o777 == 0o600
    assert lock.is_symlink() if planted == "link" else lock.is_fifo()
