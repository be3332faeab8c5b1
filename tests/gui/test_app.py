"""The app's log: private to the user, since it names files and folders that may name patients."""

import logging
import os

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
