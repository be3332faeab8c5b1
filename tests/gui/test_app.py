"""The app's log: private to the user, since it names files and folders that may name patients."""

import logging
import os

import pytest

from fetal_iqa_gui.gui.app import PrivateLogHandler, log_path


def mode(path):
    return os.stat(path).st_mode & 0o777


def test_log_files_and_their_folder_are_private_also_after_rotation(tmp_path):
    path = tmp_path / "fetal-iqa.log"
    path.touch(mode=0o644)  # as an earlier version left it
    handler = PrivateLogHandler(path, maxBytes=200, backupCount=2)
    record = logging.LogRecord("test", logging.INFO, __file__, 1, "opened /data/Doe_Jane/case.mha", None, None)
    for _ in range(30):  # about 1 kB: two rotations
        handler.emit(record)
    handler.close()
    files = sorted(tmp_path.glob("fetal-iqa.log*"))
    assert len(files) == 3 and all(mode(p) == 0o600 for p in files)


@pytest.mark.timeout(20)  # before the fix, a pipe blocked the start for good
@pytest.mark.parametrize("planted", ["pipe", "folder", "link"])
def test_a_pipe_a_folder_or_a_link_where_the_log_goes_is_not_written_and_the_app_still_starts(
        tmp_path, monkeypatch, caplog, planted):
    from fetal_iqa_gui.gui import app
    path = tmp_path / "log" / "fetal-iqa.log"
    path.parent.mkdir()
    someone_elses = tmp_path / "notes.txt"
    someone_elses.write_text("notes")
    someone_elses.chmod(0o644)
    {"pipe": lambda: os.mkfifo(path), "folder": path.mkdir, "link": lambda: path.symlink_to(someone_elses)}[planted]()
    monkeypatch.setattr(app, "log_file", lambda: path)
    before = list(logging.getLogger().handlers)
    try:
        assert app.setup_logging() is None
    finally:
        for handler in set(logging.getLogger().handlers) - set(before):
            logging.getLogger().removeHandler(handler)
    assert "cannot be written" in caplog.text
    assert someone_elses.read_text() == "notes" and mode(someone_elses) == 0o644


def test_the_log_folder_is_private():
    assert mode(log_path().parent) == 0o700


def test_sigterm_closes_the_window_as_its_close_button_does(tmp_path):
    """A logout or `kill` ends the app cleanly: no "Unexpected error", no traceback, exit 0."""
    import os
    import signal
    import subprocess
    import sys
    import time
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "XDG_CONFIG_HOME": str(tmp_path / "config"),
           "XDG_STATE_HOME": str(tmp_path / "state"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "XDG_DATA_HOME": str(tmp_path / "data")}
    app = subprocess.Popen([sys.executable, "-m", "fetal_iqa_gui", "gui"], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    log = tmp_path / "state"
    while time.monotonic() < deadline and not list(log.rglob("*.log")):  # the window is up once it logs
        time.sleep(0.2)
    time.sleep(1.0)
    app.send_signal(signal.SIGTERM)
    try:
        out, err = app.communicate(timeout=30)
    finally:
        app.kill()  # one that ignored it is not left behind
    assert app.returncode == 0, err
    assert "Traceback" not in err and "Unexpected error" not in err
