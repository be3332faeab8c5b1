"""Screenshots of the main window's main states, for the README and for looking at the GUI.

    xvfb-run -a -s "-screen 0 1600x1000x24" python scripts/screenshots.py OUT_DIR

Opens the demo sweep with the demo model in a real window, and saves: the empty window, scoring
under way, the best frame, the best frame zoomed in (the readout stays), an ellipse caliper kept
on it, a padding frame, the demo's folder as a worklist, and the demo segmentation model's mask
with its ellipse proposed as the caliper.
"""

import sys
import time
from pathlib import Path

from PySide6.QtWidgets import QApplication


def wait(app, seconds=0.0, until=None, limit=300.0):
    started = time.monotonic()
    while time.monotonic() - started < limit:
        app.processEvents()
        time.sleep(0.02)
        if until is not None and until():
            return
        if until is None and time.monotonic() - started >= seconds:
            return


def main(out: Path) -> int:
    import numpy as np

    from fetal_iqa_gui.gui import settings as stored
    from fetal_iqa_gui.gui.main_window import MainWindow
    from fetal_iqa_gui.gui.theme import apply_dark_theme
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    apply_dark_theme(app)
    window = MainWindow(stored.AppSettings(batch_size=4))
    window.resize(1500, 920)
    window.show()
    wait(app, 0.5)
    window.grab().save(str(out / "empty.png"))
    window.open_demo()
    wait(app, until=lambda: window.state.scored_count >= 60)
    window.grab().save(str(out / "scoring.png"))
    wait(app, until=lambda: window.session.scorer is not None and window.session.scorer.isFinished())
    window.best_frame()
    wait(app, 0.5)
    window.grab().save(str(out / "best-frame.png"))
    window.frame_view.view.scaleBy((0.4, 0.4))
    wait(app, 0.3)
    window.grab().save(str(out / "zoomed.png"))
    window.fit_view()
    from fetal_iqa_gui.review.calipers import EllipseCaliper
    from fetal_iqa_gui.case.measure import Ellipse
    from fetal_iqa_gui.case.acouslic import IMAGES_DIR, MASKS_DIR
    from fetal_iqa_gui.case.measure import measure_abdomen
    from fetal_iqa_gui.case.loading import load_case
    pick = window.state.scored.best_frame()
    source = window.state.case.source  # the synthetic case's own mask: the ellipse a sonographer would place
    mask = load_case(Path(str(source).replace(str(IMAGES_DIR), str(MASKS_DIR))), sweeps=6).frames[pick.frame]
    ellipse = measure_abdomen(mask).ellipse if mask.any() else Ellipse((372.0, 250.0), (95.0, 80.0), 0.0)
    window.state.set_calipers(pick.frame, [EllipseCaliper(ellipse, window.state.case.spacing_mm)])
    wait(app, 0.3)
    window.grab().save(str(out / "caliper.png"))
    window.state.set_frame(int(np.flatnonzero(window.state.case.layout.padding)[0]))
    wait(app, 0.3)
    window.grab().save(str(out / "padding.png"))
    window.best_frame()
    window.worklist.load(window.state.case.source.parent)
    wait(app, until=lambda: window.session.scorer is not None and window.session.scorer.isFinished(), limit=60)
    wait(app, 0.5)
    window.grab().save(str(out / "worklist.png"))
    window.worklist.hide()
    window.open_demo_segmented()  # the demo segmentation model: its mask, and its ellipse proposed as the caliper
    wait(app, until=lambda: window.session.demo_task == "segmentation" and window.session.scorer is not None
         and window.session.scorer.isFinished() and window.progress.isHidden())
    window.state.set_frame(window.state.scored.challenge_choice())
    window.calipers.start_ellipse()
    wait(app, 0.5)
    window.grab().save(str(out / "segmentation-proposed.png"))
    window.close()
    print(f"screenshots in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "screenshots")))
