"""`fetal-iqa live`: a line per scored frame and a bell on the good ones, the recording written and said;
a source that stops delivering, or SIGTERM, ends it with the recording kept."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

import fetal_iqa_gui
from fetal_iqa_gui.case.loading import load_case
from fetal_iqa_gui.cli import EXIT_TERMINATED, main
from fetal_iqa_gui.live import source as live_source
from fetal_iqa_gui.live.source import write_lossless_video

from .test_live import Unplugged

REPO = Path(fetal_iqa_gui.__file__).parents[1]


@pytest.fixture(scope="module")
def clip(small_case):
    return small_case.frames[60:90]


@pytest.fixture(scope="module")
def video(clip, tmp_path_factory):
    return write_lossless_video(tmp_path_factory.mktemp("live-cli") / "sweep.mkv", clip)


def test_live_scores_cues_and_records(video, clip, tmp_path, capsys):
    record = tmp_path / "live.mha"
    assert main(["live", str(video), "--model", "demo", "--device", "cpu", "--record", str(record)]) == 0
    out, err = capsys.readouterr()
    assert "score" in out and "\aGOOD: frame" in out
    assert "30 frames" in err and "Ended: end of file" in err and f"Recorded: {record}" in err
    assert np.array_equal(load_case(record).frames, clip)
    assert main(["live", str(video), "--model", "demo", "--record", str(record)]) == 1  # not replaced (an output refused)
    assert "exists" in capsys.readouterr().err


def test_an_unplugged_source_keeps_the_recording_and_says_so(video, clip, tmp_path, capsys, monkeypatch):
    opened = live_source.open_source

    def unplugged_after_ten(*args):
        source = opened(*args)
        source.capture = Unplugged(source, 10)
        return source
    monkeypatch.setattr(live_source, "open_source", unplugged_after_ten)
    record = tmp_path / "cut.mha"
    assert main(["live", str(video), "--model", "demo", "--record", str(record)]) == 1
    err = capsys.readouterr().err
    assert "stopped delivering frames after 10 of 30" in err and f"recorded in {record}" in err
    assert np.array_equal(load_case(record).frames, clip[:10])


def test_a_bad_source_is_one_clear_line(tmp_path, capsys):
    assert main(["live", str(tmp_path / "none.mkv"), "--model", "demo"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Cannot play 'none.mkv': there is no such file") and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigterm_ends_the_session_with_the_recording_finished(clip, tmp_path):
    folder = tmp_path / "pictures"
    folder.mkdir()
    for index, frame in enumerate(clip):
        cv2.imwrite(str(folder / f"{index:03d}.png"), frame)
    record = tmp_path / "term.mha"
    process = subprocess.Popen([sys.executable, "-m", "fetal_iqa_gui.cli", "live", str(folder), "--rate", "5",
                                "--model", "demo", "--device", "cpu", "--record", str(record)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    assert "score" in process.stdout.readline()  # playing (30 pictures at 5 frames/s: 6 s)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    assert process.returncode == EXIT_TERMINATED and "Terminated." in err and "Traceback" not in err, err
    kept = load_case(record).frames
    assert 1 <= len(kept) < len(clip) and np.array_equal(kept, clip[:len(kept)])


def test_live_finds_the_image_region_by_itself(clip, tmp_path, capsys):
    from .test_live import screen_video
    video, _ = screen_video(clip, tmp_path)
    record = tmp_path / "live.mha"
    assert main(["live", str(video), "--region", "auto", "--model", "demo", "--device", "cpu",
                 "--record", str(record)]) == 0
    err = capsys.readouterr().err
    assert "the image region found: " in err
    found = err.split("the image region found: ")[1].split(" ")[0]
    width, height = map(int, found.split(",")[2:])
    recorded = load_case(record)
    assert recorded.n_frames == len(clip) and recorded.frames.shape[1:] == (height, width)
