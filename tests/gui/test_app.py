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
