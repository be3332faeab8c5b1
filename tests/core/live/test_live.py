"""Live mode (issue 27): a synthetic case written as a lossless video and played as a live source at
30 frames/s: its good frames are flagged as a case's would be, the recording holds every frame unchanged
with its time and reopens as the same case, the frames never wait for the scorer, and a source that
stops delivering keeps what it sent."""

import errno
import json
import os
import time

import numpy as np
import pytest

from fetal_iqa_gui.case.loading import load_case
from fetal_iqa_gui.engine.choice import EngineSettings
from fetal_iqa_gui.engine.scoring import make_engine
from fetal_iqa_gui.live.recording import Recording, sidecar_path, working_folder
from fetal_iqa_gui.live.session import LiveSession
from fetal_iqa_gui.live.source import Region, open_source, write_lossless_video
from fetal_iqa_gui.model.loading import load_model
from fetal_iqa_gui.model.spec import ModelSpec

RATE = 30.0


@pytest.fixture(scope="module")
def clip(small_case):
    """Sweep 3 of the small case (frames 60-89): the demo model finds its abdomen in a few frames."""
    return small_case.frames[60:90]


@pytest.fixture(scope="module")
def video(clip, tmp_path_factory):
    return write_lossless_video(tmp_path_factory.mktemp("live") / "sweep.mkv", clip, RATE)


@pytest.fixture(scope="module")
def demo_engine():
    return make_engine(load_model(ModelSpec.demo_model()), EngineSettings("cpu", "fp32", 1))


def play(source, predict, threshold=0.5, recording=None, mark_after=None):
    session = LiveSession(source, predict, threshold, recording)
    for frame in session.frames():
        if frame.index == mark_after:
            session.mark_sweep()
    return session


def test_good_frames_are_flagged_with_the_scores_a_case_gets(video, clip, demo_engine):
    threshold = demo_engine.model.threshold
    session = play(open_source(video), lambda frames: demo_engine.predict(frames)[0], threshold)
    as_case = demo_engine.predict(clip)[0]
    scored = {result.frame: result for result in session.scores}
    assert len(scored) >= 10  # the demo model keeps up with most of 30 frames/s
    for frame, result in scored.items():
        assert result.score == pytest.approx(float(as_case[frame]), abs=1e-4)  # preprocessed as a case frame
        assert result.good == (as_case[frame] >= threshold)
    assert any(result.good for result in scored.values())
    assert session.summary.frames == len(clip) and not session.summary.unplugged
    assert session.best_frames()[0][0] == max(result.score for result in scored.values())


def test_the_recording_holds_every_frame_unchanged_with_its_time(video, clip, tmp_path):
    path = tmp_path / "live.mha"
    source = open_source(video)
    recording = Recording(path, source.name, source.frame_rate)
    assert working_folder(path).is_dir()  # frames go to disk as they come
    session = play(source, lambda frames: np.zeros(len(frames)), recording=recording, mark_after=14)
    assert session.summary.recording == path and not working_folder(path).exists()
    case = load_case(path)
    assert case.n_frames == len(clip) + 1  # one blank frame marks the second sweep
    assert np.array_equal(np.delete(case.frames, 15, axis=0), clip)  # lossless
    assert [sweep.start for sweep in case.layout.sweeps] == [0, 16]
    sidecar = json.loads(sidecar_path(path).read_text())
    times = [t for t in sidecar["frame_times_s"] if t is not None]
    assert sidecar["sweep_starts"] == [0, 16] and sidecar["frame_times_s"][15] is None
    assert len(times) == len(clip) and np.all(np.diff(times) > 0)
    assert times[-1] == pytest.approx((len(clip) - 1) / RATE, abs=0.15)  # played at its own rate


def test_the_frames_never_wait_for_a_slow_scorer(video, clip, tmp_path):
    def slow(frames):
        time.sleep(0.25)
        return np.ones(len(frames))
    source = open_source(video)
    started = time.monotonic()
    session = play(source, slow, recording=Recording(tmp_path / "slow.mha", source.name, source.frame_rate))
    summary = session.summary
    assert summary.frames == len(clip) and load_case(summary.recording).n_frames == len(clip)
    assert summary.frame_rate == pytest.approx(RATE, rel=0.1)
    assert summary.scored_fraction < 0.3  # the newest frame each time, not a queue that falls behind
    assert max(summary.delays_s) < 0.6
    assert time.monotonic() - started < len(clip) / RATE + 1.0  # ended with the source, not with a backlog


class Unplugged:
    """A capture that delivers `count` frames of a video, then nothing, as an unplugged grabber."""

    def __init__(self, source, count):
        self.capture, self.left = source.capture, count

    def read(self):
        self.left -= 1
        return self.capture.read() if self.left >= 0 else (False, None)

    def release(self):
        self.capture.release()


def test_a_source_that_stops_mid_sweep_keeps_the_recording_and_says_so(video, clip, tmp_path):
    source = open_source(video)
    source.capture = Unplugged(source, 12)
    session = play(source, lambda frames: np.zeros(len(frames)),
                   recording=Recording(tmp_path / "cut.mha", source.name, source.frame_rate))
    assert session.summary.unplugged and "stopped delivering frames after 12 of 30" in session.summary.ended
    assert np.array_equal(load_case(session.summary.recording).frames, clip[:12])


def test_the_region_is_cut_from_every_frame(video, clip):
    region = Region.parse("100,50,400,300")
    session = LiveSession(open_source(video, region), lambda frames: np.zeros(len(frames)), 0.5)
    frames = session.frames()
    first = next(frames)
    frames.close()
    assert np.array_equal(first.image, clip[0, 50:350, 100:500])
    with pytest.raises(ValueError):
        Region.parse("1,2,3")


def screen_video(clip, tmp_path, at=(80, 60)):
    """The scanner's screen as a capture device sends it: the image at `at` on a larger frame, with
    menus and a scale (static text) around it that do not change."""
    x, y = at
    height, width = clip.shape[1:]
    screen = np.zeros((len(clip), height + 2 * y, width + 2 * x), np.uint8)
    screen[:, 10:30, 10:200] = np.random.default_rng(0).integers(0, 255, (20, 190), dtype=np.uint8)  # "text"
    screen[:, :, -12:] = 200  # a scale bar
    screen[:, y:y + height, x:x + width] = clip
    return write_lossless_video(tmp_path / "screen.mkv", screen, RATE), screen


def test_the_image_region_is_found_as_what_changes_and_no_frame_is_lost(clip, tmp_path):
    video, screen = screen_video(clip, tmp_path)
    source = open_source(video)
    region = source.find_region()
    moving = np.argwhere(clip.max(axis=0).astype(int) - clip.min(axis=0) > 12)  # the fan's pixels that change
    (top, left), (bottom, right) = moving.min(axis=0), moving.max(axis=0)
    assert abs(region.x - (80 + left)) <= 4 and abs(region.y - (60 + top)) <= 4
    assert abs(region.x + region.width - (80 + right + 1)) <= 4 and abs(region.y + region.height - (60 + bottom + 1)) <= 4
    delivered = [frame.image for frame in source.frames()]
    assert len(delivered) == len(clip)  # the frames read to find it are delivered too, in order
    assert all(np.array_equal(image, region.cut(frame)) for image, frame in zip(delivered, screen))


def test_a_screen_where_nothing_changes_asks_for_the_region(clip, tmp_path):
    from fetal_iqa_gui.live.source import LiveSourceError
    still = write_lossless_video(tmp_path / "still.mkv", np.repeat(clip[:1], 10, axis=0), RATE)
    with pytest.raises(LiveSourceError, match="nothing changes in its first 10 frames"):
        open_source(still).find_region()


class FillingDisk:
    """The recording's frame file on a disk that fills up once `full` is set: the next frame is written in
    part, then nothing (nor a new file, such as the header's replacement) fits."""

    def __init__(self, raw):
        self.raw, self.full = raw, False

    def write(self, data):
        if self.full:
            self.raw.write(data[:len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.raw.write(data)

    def __getattr__(self, name):  # flush, truncate, close, closed
        return getattr(self.raw, name)


def test_a_disk_that_fills_up_keeps_every_whole_frame_recorded_in_a_folder_that_opens_as_them(
        clip, tmp_path, monkeypatch):
    """It kept a header a second old (a second's frames unseen) and the part of a frame, and said nothing
    of what it kept."""
    from fetal_iqa_gui.base.errors import WriteError
    from fetal_iqa_gui.live import recording as recording_module
    from fetal_iqa_gui.live.source import LiveFrame
    path = tmp_path / "full.mha"
    recording = Recording(path, "test", RATE)
    disk = recording._raw = FillingDisk(recording._raw)
    real_atomic_write = recording_module.atomic_write

    def atomic_write(target, *args, **kwargs):
        if disk.full:
            raise WriteError(target, "the disk is full", "Free some space.")
        return real_atomic_write(target, *args, **kwargs)
    monkeypatch.setattr(recording_module, "atomic_write", atomic_write)
    for index, image in enumerate(clip[:10]):
        recording.append(LiveFrame(index, image, time.monotonic()))  # a header with the first frame, then none
    disk.full = True
    with pytest.raises(WriteError, match="recording stopped"):
        recording.append(LiveFrame(10, clip[10], time.monotonic()))
    with pytest.raises(WriteError, match=r"the 10 frames recorded are kept in .*full\.mha\.recording"):
        recording.finish()
    with pytest.raises(WriteError, match="the 10 frames recorded are kept"):  # asked again: said again, not redone
        recording.finish()
    assert not path.exists()
    kept = load_case(working_folder(path) / "recording.mhd")
    assert np.array_equal(kept.frames, clip[:10])


def test_another_recordings_times_are_not_replaced_unless_asked(tmp_path):
    """The .mha moved into a worklist, its .live.json left: a new recording of the name replaced it unasked."""
    from fetal_iqa_gui.base.errors import WriteError
    path = tmp_path / "exam.mha"
    sidecar_path(path).write_text('{"frame_times_s": [0.0]}')
    with pytest.raises(WriteError, match="exam.live.json.*exists"):
        Recording(path, "test", RATE)
    assert sidecar_path(path).read_text() == '{"frame_times_s": [0.0]}' and not working_folder(path).exists()
    Recording(path, "test", RATE, overwrite=True).finish()  # --force: replaced when the recording is


def declared_png(path, width, height):
    """A PNG of `width` x `height` blank grey pixels: a small file whatever size it declares."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = zlib.compress(b"\0" * ((width + 1) * height), 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", rows) + chunk(b"IEND", b""))
    return path


def test_frames_of_a_size_no_ultrasound_picture_has_are_refused_before_they_are_decoded(clip, tmp_path):
    """A 450 kB PNG declaring 12000 x 12000 RGB took 3.6 GB to play (its float conversion 12 bytes a pixel);
    larger ones, all of the memory. Refused from the header as a case's frames are (8192 px, 20:1)."""
    from fetal_iqa_gui.live.source import LiveSourceError
    folder = tmp_path / "pictures"
    folder.mkdir()
    declared_png(folder / "0001.png", 8200, 8200)
    session = LiveSession(open_source(folder), lambda frames: np.zeros(len(frames)), 0.5)
    assert list(session.frames()) == []
    assert "8200 x 8200 px, not an ultrasound picture" in session.summary.ended
    narrow = write_lossless_video(tmp_path / "narrow.mkv", np.ones((2, 40, 1000), np.uint8), RATE)  # 25:1
    with pytest.raises(LiveSourceError, match="1000 x 40 px, not an ultrasound picture"):
        open_source(narrow)


@pytest.mark.parametrize("planted", ["folder", "pipe", "link"])
def test_a_recording_named_where_a_folder_a_pipe_or_a_link_is_is_refused_in_words(tmp_path, planted):
    """It ended `live --record` (and the window's live view) in a NotRegularFile traceback."""
    from fetal_iqa_gui.base.errors import WriteError
    path = tmp_path / "exam.mha"
    {"folder": path.mkdir, "pipe": lambda: os.mkfifo(path), "link": lambda: path.symlink_to(tmp_path / "x")}[planted]()
    with pytest.raises(WriteError, match="exam.mha.*not a regular file"):
        Recording(path, "test", RATE, overwrite=True)
    assert not working_folder(path).exists()
