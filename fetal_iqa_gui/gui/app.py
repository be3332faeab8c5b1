"""`fetal-iqa-gui`: start the application, with logging to a file and errors shown, not dumped."""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import shutil
import sys
import traceback
from pathlib import Path

import platformdirs
from PySide6.QtWidgets import QApplication, QMessageBox

log = logging.getLogger(__name__)

DEMO_SWEEP_MB = 200  # its compressed image and mask, with room to spare


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


def demo_sweep_path() -> Path:
    """The built-in demo sweep: a synthetic case, made once and kept in the user cache."""
    from ..fileio import ExportError
    from ..synthetic import IMAGES_DIR, write_dataset
    folder = Path(platformdirs.user_cache_dir("fetal-iqa")) / "demo"
    images = sorted((folder / IMAGES_DIR).glob("*.mha"))
    if not images:
        folder.mkdir(parents=True, exist_ok=True)
        free_mb = shutil.disk_usage(folder).free // 2**20
        if free_mb < DEMO_SWEEP_MB:  # say so now, not after the synthesis
            raise ExportError(f"The demo sweep needs about {DEMO_SWEEP_MB} MB of free disk space in '{folder}'; "
                              f"there are {free_mb} MB.")
        write_dataset(folder, cases=1, seed=7)
        images = sorted((folder / IMAGES_DIR).glob("*.mha"))
    return images[0]


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
