"""`fetal-iqa-gui`: start the application, with logging to a file and errors shown, not dumped."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import sys
import traceback
from pathlib import Path

import platformdirs
from PySide6.QtWidgets import QApplication, QMessageBox

from .theme import apply_dark_theme

log = logging.getLogger(__name__)


def log_path() -> Path:
    folder = Path(platformdirs.user_log_dir("fetal-iqa"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "fetal-iqa.log"


def setup_logging() -> Path:
    path = log_path()
    handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=3)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    return path


def install_excepthook(path: Path) -> None:
    def show(kind, value, tb):
        log.error("unexpected error", exc_info=(kind, value, tb))
        traceback.print_exception(kind, value, tb)
        if QApplication.instance() is not None:
            QMessageBox.critical(None, "Unexpected error",
                                 f"Something went wrong: {value}\n\nThe details are in the log:\n{path}")
    sys.excepthook = show


def run(sweep: Path | None = None, demo: bool = False) -> int:
    from .main_window import MainWindow
    path = setup_logging()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("fetal-iqa")
    app.setOrganizationName("fetal-iqa")
    apply_dark_theme(app)
    install_excepthook(path)
    window = MainWindow()
    window.show()
    if demo:
        window.open_demo()
    elif sweep is not None:
        window.open_path(Path(sweep))
    return app.exec()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fetal-iqa-gui", description="Open the fetal-iqa desktop app.")
    parser.add_argument("sweep", nargs="?", type=Path, help="a sweep file to open")
    parser.add_argument("--demo", action="store_true", help="open the built-in synthetic demo sweep")
    args = parser.parse_args(argv)
    return run(args.sweep, args.demo)


if __name__ == "__main__":
    sys.exit(main())
