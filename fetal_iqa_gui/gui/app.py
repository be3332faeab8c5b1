"""`fetal-iqa-gui`: start the application, with logging to a file and errors shown, not dumped."""

from __future__ import annotations

import argparse
import contextlib
import logging
import logging.handlers
import os
import signal
import stat
import sys
import traceback
from typing import cast
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from .theme import apply_dark_theme
from ..base.fileio import NotRegularFile, private_folder, special_file_kind
from ..base.resources import log_file

log = logging.getLogger(__name__)

QUIT_AFTER_ENV = "FETAL_IQA_QUIT_AFTER_S"  # for smoke tests: quit this many seconds after the window shows


class PrivateLogHandler(logging.handlers.RotatingFileHandler):
    """A rotating log whose files only the user can read: it names files, which may name patients."""

    def _open(self):
        # a pipe where the log goes would block the start for good, a link be written (and chmod-ed) through
        handle = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_NONBLOCK", 0)
                         | getattr(os, "O_NOFOLLOW", 0), 0o600)
        mode = os.fstat(handle).st_mode
        if not stat.S_ISREG(mode):
            os.close(handle)
            raise NotRegularFile(self.baseFilename, mode)
        os.chmod(self.baseFilename, 0o600)  # a log an earlier version made readable by all
        return open(handle, self.mode, encoding=self.encoding, errors=self.errors)


def log_path() -> Path:
    path = log_file()
    private_folder(path.parent)
    return path


def setup_logging() -> Path | None:
    """The log file the app writes, or None when it cannot be used (said on stderr; the app still starts)."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    try:
        path = log_path()
        handler = PrivateLogHandler(path, maxBytes=2_000_000, backupCount=3)
    except OSError as error:  # a pipe, a folder or a link where the log goes, a full or read-only disk
        reason = error.strerror or str(error)
        with contextlib.suppress(OSError):
            mode = os.lstat(log_file()).st_mode
            if not stat.S_ISREG(mode):  # said as what it is (a pipe's open says "No such device or address")
                reason = f"it is {special_file_kind(mode)}"
        log.warning("the log %s cannot be written (%s); nothing is logged to a file", log_file(), reason)
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    return path


def install_excepthook(path: Path | None) -> None:
    def show(kind, value, tb):
        log.error("unexpected error", exc_info=(kind, value, tb))
        traceback.print_exception(kind, value, tb)
        if QApplication.instance() is not None:
            where = f"in the log:\n{path}" if path else f"on the terminal (the log {log_file()} could not be written)"
            QMessageBox.critical(None, "Unexpected error", f"Something went wrong: {value}\n\nThe details are {where}")
    sys.excepthook = show


def run(case: Path | None = None, demo: bool = False, demo_task: str = "classification") -> int:
    from .main_window import MainWindow
    path = setup_logging()
    # instance() is typed QCoreApplication; the one running the window is a QApplication
    app = cast(QApplication, QApplication.instance() or QApplication(sys.argv[:1]))
    app.setApplicationName("fetal-iqa")
    app.setOrganizationName("fetal-iqa")
    apply_dark_theme(app)
    install_excepthook(path)
    window = MainWindow()
    window.show()
    close_on_signals(window)
    if os.environ.get(QUIT_AFTER_ENV):
        QTimer.singleShot(int(float(os.environ[QUIT_AFTER_ENV]) * 1000), window.close)
    if demo:
        window.session.open(None, demo_task=demo_task)
    elif case is not None:
        window.open_path(Path(case))
    return app.exec()


def close_on_signals(window) -> None:
    """SIGTERM (a logout, `kill`) and Ctrl+C in the terminal close the window as its close button
    does: work stopped, the window's place kept, never an error. Python runs its signal handlers
    only between its own steps, so a timer wakes it while Qt waits for events."""
    def close(_number, _frame):
        QTimer.singleShot(0, window.close)
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, close)
    wake = QTimer(window, interval=250)
    wake.timeout.connect(lambda: None)
    wake.start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fetal-iqa-gui", description="Open the fetal-iqa desktop app.")
    parser.add_argument("sweep", nargs="?", type=Path, help="a sweep file to open")
    parser.add_argument("--demo", action="store_true", help="open the built-in synthetic demo sweep")
    args = parser.parse_args(argv)
    return run(args.sweep, args.demo)


if __name__ == "__main__":
    sys.exit(main())
