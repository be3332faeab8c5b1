"""The score cache: keyed by what computed the scores, damaged entries ignored, size bounded."""

import os
import time

import numpy as np
import pytest

from fetal_iqa_gui.engine import cache

N = 10
SCORES = np.linspace(0, 1, N, dtype=np.float32)
MASKS = np.zeros((N, cache.PACKED_MASK_BYTES), np.uint8)


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("FETAL_IQA_CACHE_DIR", str(tmp_path / "score-cache"))
    monkeypatch.delenv("FETAL_IQA_CACHE_MB", raising=False)


def entries():
    return sorted(p.name for p in cache.cache_dir().iterdir())


def test_scores_of_another_precision_are_not_returned():
    cache.save_scores("sweep", "model", SCORES, variant="cuda-bf16")
    assert cache.load_scores("sweep", "model", N, variant="cpu-fp32") is None
    scores, masks = cache.load_scores("sweep", "model", N, variant="cuda-bf16")
    assert np.array_equal(scores, SCORES) and masks is None
    cache.save_scores("sweep", "model", SCORES[::-1].copy())  # callers that name no variant still work
    assert np.array_equal(cache.load_scores("sweep", "model", N)[0], SCORES[::-1])


@pytest.mark.parametrize("scores, masks", [
    (SCORES, MASKS[:, 0]),  # 1-D masks
    (SCORES, MASKS[:, :100]),  # rows of the wrong width
    (SCORES, MASKS[:N - 1]),  # a row short
    (SCORES, MASKS.astype(np.float32)),
    (SCORES * 2, MASKS),  # no NaN, but out of range
    (SCORES - 0.5, None),
    (np.where(SCORES > 0.5, np.inf, SCORES), None),
    (SCORES[:N - 1], None),
    (SCORES.reshape(2, -1), None),
], ids=["1-D masks", "narrow masks", "masks a row short", "float masks", "scores above 1", "scores below 0",
        "infinite scores", "scores a frame short", "2-D scores"])
def test_an_entry_that_does_not_fit_is_ignored_and_removed(scores, masks):
    cache.save_scores("sweep", "model", scores, masks)
    assert len(entries()) == 1
    assert cache.load_scores("sweep", "model", N) is None
    assert entries() == []


def test_an_unreadable_entry_is_ignored_and_removed():
    cache.save_scores("sweep", "model", SCORES)
    (entry,) = cache.cache_dir().iterdir()
    entry.write_bytes(b"garbage")
    assert cache.load_scores("sweep", "model", N) is None
    assert entries() == []


def test_a_folder_in_place_of_an_entry_is_ignored_and_left_alone():
    cache.save_scores("sweep", "model", SCORES)
    (entry,) = cache.cache_dir().iterdir()
    entry.unlink()
    (entry / "something").mkdir(parents=True)
    assert cache.load_scores("sweep", "model", N) is None
    cache.save_scores("sweep", "model", SCORES)  # only costs the cache
    assert (entry / "something").is_dir()


def test_the_least_recently_used_entries_go_when_the_cache_is_full():
    size = 2.5 * MASKS.nbytes / 1e6  # room for two entries
    past = time.time() - 60
    for age, name in enumerate(["a", "b"]):
        cache.save_scores(name, "model", SCORES, MASKS, limit_mb=size)
        os.utime(cache._entry(name, "model", ""), (past + age, past + age))
    assert cache.load_scores("a", "model", N) is not None  # a is used again; b is now the oldest
    cache.save_scores("c", "model", SCORES, MASKS, limit_mb=size)
    assert [cache.load_scores(name, "model", N) is not None for name in "abc"] == [True, False, True]
    assert len(entries()) == 2


def test_the_size_limit_is_a_setting(monkeypatch):
    assert cache.cache_limit_mb() == 500
    monkeypatch.setenv("FETAL_IQA_CACHE_MB", "0")
    cache.save_scores("sweep", "model", SCORES)
    assert entries() == []
    for nonsense in ("lots", "-1", "nan", "inf"):
        monkeypatch.setenv("FETAL_IQA_CACHE_MB", nonsense)
        assert cache.cache_limit_mb() == 500


def test_saving_removes_temporary_files_of_killed_writes():
    cache.cache_dir().mkdir(parents=True)
    stale = cache.cache_dir() / ".0123456789abcdef.npz.0badc0de.part"
    stale.write_bytes(b"half")
    old = time.time() - 3 * 3600
    os.utime(stale, (old, old))
    cache.save_scores("sweep", "model", SCORES)
    assert not stale.exists() and len(entries()) == 1


def test_the_cache_folder_the_app_makes_and_its_entries_are_private_to_the_user():
    cache.save_scores("sweep", "model", SCORES)
    assert os.stat(cache.cache_dir()).st_mode & 0o777 == 0o700
    assert os.stat(cache.cache_dir().parent).st_mode & 0o777 == 0o700  # FETAL_IQA_CACHE_DIR, made now
    (entry,) = cache.cache_dir().iterdir()
    assert entry.stat().st_mode & 0o777 == 0o600


def test_a_shared_cache_folder_keeps_its_mode_and_the_users_files(tmp_path, monkeypatch):
    shared = tmp_path / "team"
    shared.mkdir()
    os.chmod(shared, 0o2775)  # a group's folder, set up so on purpose
    monkeypatch.setenv("FETAL_IQA_CACHE_DIR", str(shared))
    own = [shared / "holiday.npz", shared / "0123456789abcdef0123456789abcdef.npz"]
    for path in own:
        np.savez(path, data=np.arange(3))
    cache.save_scores("sweep", "model", SCORES)
    cache.save_scores("other", "model", SCORES, limit_mb=0)  # the size limit removes the cache's entries only
    assert os.stat(shared).st_mode & 0o7777 == 0o2775
    assert all(path.is_file() for path in own)
    assert cache.cache_dir().parent == shared and entries() == []
    (cache.cache_dir() / "notes.npz").write_bytes(b"mine")  # even inside the cache's folder
    cache.save_scores("sweep", "model", SCORES, limit_mb=0)
    assert entries() == ["notes.npz"]


def test_an_entry_an_earlier_version_left_readable_by_others_is_closed():
    cache.save_scores("sweep", "model", SCORES)
    (entry,) = cache.cache_dir().iterdir()
    os.chmod(entry, 0o644)
    cache.save_scores("other", "model", SCORES)
    assert {path.stat().st_mode & 0o777 for path in cache.cache_dir().iterdir()} == {0o600}
