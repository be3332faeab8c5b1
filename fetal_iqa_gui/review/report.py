"""A case report a clinician can print: for each sweep its chosen frame (PNG + sidecar beside the
report), the measurements, the scores' timeline, the model, and the "not a medical device" note,
in one self-contained HTML page (the images are inside it)."""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path

from .. import __version__
from .export import png_bytes
from ..base.fileio import atomic_write
from ..engine.preprocess import square_resize
from .scored_case import ExportReport, ScoredCase

REPORT_NAME = "report.html"
THUMB_PX = 320
NOT_A_DEVICE = ("fetal-iqa is not a medical device. The scores and measurements support, and do not replace, "
                "the judgement of a trained clinician.")


def chosen_frames(scored: ScoredCase) -> dict[int, int]:
    """Sweep number -> the frame the report shows: the one measured on, else the sweep's best."""
    chosen = {best.sweep: scored.chosen_frame(best) for best in scored.best_per_sweep()}
    return {case: frame for case, frame in chosen.items() if frame is not None}


def write_report(scored: ScoredCase, folder: str | Path, timeline_png: bytes | None = None,
                 overwrite: bool = False) -> tuple[Path, ExportReport]:
    """The chosen frames' exports and the HTML page, in `folder`; returns the page and the exports."""
    folder = Path(folder)
    chosen = chosen_frames(scored)
    exported = scored.export(list(chosen.values()), folder, overwrite=overwrite)
    if exported.problems:
        raise exported.problems[0]
    page = render_html(scored, chosen, timeline_png)
    path = atomic_write(folder / f"{scored.case.case_id}_{REPORT_NAME}", lambda f: f.write(page.encode()), overwrite)
    return path, exported


def _img(data: bytes, alt: str, width: int | None = None) -> str:
    size = f' width="{width}"' if width else ""
    return f'<img alt="{html.escape(alt)}"{size} src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def render_html(scored: ScoredCase, chosen: dict[int, int], timeline_png: bytes | None) -> str:
    case, model = scored.case, scored.model
    rows, figures = [], []
    for best in scored.best_per_sweep():
        frame = chosen.get(best.sweep)
        if frame is None:
            rows.append(f"<tr><td>{best.sweep}</td><td colspan=5>{best.verdict}</td></tr>")
            continue
        good = scored.is_good(frame)
        partly = "" if best.complete else f" (sweep {best.percent_scored} % scored)"
        calipers = scored.calipers.get(frame, [])
        measured = "; ".join(html.escape(c.describe()) for c in calipers) or "—"
        model_ac = scored.measurement_of(frame)
        rows.append(f"<tr><td>{best.sweep}</td><td>{frame}</td><td>{float(scored.scores[frame]):.3f}</td>"
                    f"<td>{'✔ good' if good else '✘ below the threshold'}{partly}</td><td>{measured}</td>"
                    f"<td>{f'{model_ac.ac_mm:.1f} mm' if model_ac else '—'}</td></tr>")
        thumb = png_bytes(square_resize(case.frames[frame], THUMB_PX))
        figures.append(f"<figure>{_img(thumb, f'sweep {best.sweep}, frame {frame}')}"
                       f"<figcaption>Sweep {best.sweep}, frame {frame}</figcaption></figure>")
    demo = " (a demo model trained on synthetic sweeps: not for clinical use)" if model and model.is_demo else ""
    timeline = f"<h2>Scores of every frame</h2>{_img(timeline_png, 'quality timeline', 900)}" if timeline_png else ""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fetal-iqa report: {html.escape(case.case_id)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #111; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #999; padding: 4px 8px; }}
figure {{ display: inline-block; margin: 0 1em 1em 0; }} .note {{ border: 2px solid #b00; padding: 8px; }}
</style></head><body>
<h1>Case {html.escape(case.case_id)}</h1>
<p>Source: {html.escape(case.source.name)} (pixels sha256 {case.content_hash[:16]}…), {case.n_frames} frames,
pixel spacing {case.spacing_mm[0]:.3f} x {case.spacing_mm[1]:.3f} mm.</p>
<p>Model: {html.escape(model.name if model else 'none')}{demo}; identity {html.escape(model.identity if model else '—')};
threshold {scored.threshold:.3f}. Frame numbers count from 0.</p>
<h2>Chosen frame of each sweep</h2>
<table><tr><th>Sweep</th><th>Frame</th><th>Score</th><th>Quality</th><th>Measured</th><th>Model's AC</th></tr>
{chr(10).join(rows)}</table>
<div>{''.join(figures)}</div>
{timeline}
<p class="note">{NOT_A_DEVICE}</p>
<p><small>fetal-iqa {__version__}, {now}</small></p>
</body></html>
"""
