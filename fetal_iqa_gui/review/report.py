"""A case report a clinician can print: for each sweep its chosen frame (PNG + sidecar beside the
report), the measurements, the scores' timeline, the model, and the "not a medical device" note,
in one self-contained HTML page (the images are inside it). Asked to blank what the scanner burns
in around the image (privacy.py), the page's pictures are blanked as the exported frames are. Asked
for heat maps (an explainer), each chosen frame's is a second picture, labelled with its method and
as an explanation aid, not a measurement, and exported beside the frame."""

from __future__ import annotations

import base64
import html
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np

from .. import __version__
from ..base.fileio import atomic_write
from ..case.study import ORIGIN_WORDS
from .calipers import Caliper, EllipseCaliper, labels_of
from .export import frame_pixels, heat_map_caption, png_bytes
from .privacy import ImageArea, image_area
from .scored_case import ExportReport, ScoredCase

REPORT_NAME = "report.html"
FIGURE_PX = 480  # the longer side of each sweep's picture: large enough to see the caliper
CALIPER_BGR = (0, 220, 255)  # the window's caliper yellow
NOT_A_DEVICE = ("fetal-iqa is not a medical device. The scores and measurements support, and do not replace, "
                "the judgement of a trained clinician.")


def chosen_frames(scored: ScoredCase) -> dict[int, int]:
    """Sweep number -> the frame the report shows: the one measured on, else the sweep's best."""
    chosen = {best.sweep: scored.chosen_frame(best) for best in scored.best_per_sweep()}
    return {case: frame for case, frame in chosen.items() if frame is not None}


def write_report(scored: ScoredCase, folder: str | Path, timeline_png: bytes | None = None,
                 overwrite: bool = False, blank: bool = False, explainer=None) -> tuple[Path, ExportReport]:
    """The chosen frames' exports and the HTML page, in `folder`; returns the page and the exports.
    `blank`: the frames and the page's pictures are 0 outside the image (`BlankingRefused` when
    nothing says where it is; nothing is written then). `explainer` (engine/explain.py's): the heat maps too."""
    folder = Path(folder)
    area = image_area(scored.case) if blank else None
    chosen = chosen_frames(scored)
    exported = scored.export(list(chosen.values()), folder, overwrite=overwrite, blank=blank, explainer=explainer)
    if exported.problems:
        raise exported.problems[0]
    heat_maps = ({frame: (scored.heat_map_image(explainer, frame, area),
                          heat_map_caption(explainer.heat_map(scored.case.content_hash, frame, scored.case.frames[frame])))
                  for frame in chosen.values()} if explainer else None)
    page = render_html(scored, chosen, timeline_png, area, heat_maps)
    path = atomic_write(folder / f"{scored.case.case_id}_{REPORT_NAME}", lambda f: f.write(page.encode()), overwrite)
    return path, exported


def _img(data: bytes, alt: str, width: int | None = None) -> str:
    size = f' width="{width}"' if width else ""
    return f'<img alt="{html.escape(alt)}"{size} src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def calipers_drawn(frame: np.ndarray, calipers: list) -> np.ndarray:
    """A colour copy of the frame with the kept calipers drawn as the window draws them, each
    labelled as the table names it (AC 1, distance 1, ...)."""
    image = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    for label, caliper in labelled(calipers):
        if isinstance(caliper, EllipseCaliper):
            (cx, cy), axes = caliper.ellipse.center, caliper.ellipse.axes
            cv2.ellipse(image, (round(cx), round(cy)), tuple(round(a) for a in axes), caliper.ellipse.angle_deg,
                        0, 360, CALIPER_BGR, 2, cv2.LINE_AA)
            anchor = (round(cx + 8), round(cy - max(axes) - 8))
        else:
            start, end = (tuple(round(v) for v in point) for point in (caliper.start, caliper.end))
            cv2.line(image, start, end, CALIPER_BGR, 2, cv2.LINE_AA)
            for point in (start, end):
                cv2.drawMarker(image, point, CALIPER_BGR, cv2.MARKER_CROSS, 14, 2)
            anchor = (max(start[0], end[0]) + 8, min(start[1], end[1]))
        cv2.putText(image, label, (max(4, anchor[0]), max(18, anchor[1])), cv2.FONT_HERSHEY_SIMPLEX, 0.7,
                    CALIPER_BGR, 2, cv2.LINE_AA)
    return image


def labelled(calipers: list) -> list[tuple[str, Caliper]]:
    """('AC 1', caliper), ('distance 1', caliper), ...: the names the window, page and picture share."""
    return list(zip(labels_of(calipers), calipers))


def _figure(image: np.ndarray, caption: str) -> str:
    height, width = image.shape[:2]
    scale = FIGURE_PX / max(height, width)
    small = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    return f"<figure>{_img(png_bytes(small), caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _study_block(case) -> str:
    study = case.study
    rows = "".join(f"<tr><th>{html.escape(label)}</th><td class=fill>{html.escape(value)}</td></tr>"
                   for label, value in study.rows())
    source = (ORIGIN_WORDS.get(study.origin, "") if study.known
              else "The file carries no patient or exam details: fill them in by hand.")
    return f"<h2>Patient and exam</h2><table class=study>{rows}</table><p><small>{source}</small></p>"


def _blanked_note(area: ImageArea | None) -> str:
    """What the page says of blanked pictures (none: it says nothing)."""
    if area is None:
        return ""
    return f" Every pixel {html.escape(area.blanked)} is blanked here and in the exported frames (burned-in text)."


def _model_ac(scored: ScoredCase, frame: int, good: bool | None) -> str:
    """The model's AC only where the model calls the frame good: below the threshold its mask is
    a speck or a guess, not an abdomen to measure."""
    if scored.masks is None:
        return "—"
    if not good:
        return "— (the frame is below the threshold)"
    measurement = scored.measurement_of(frame)
    return html.escape(measurement.describe_ac()) if measurement else "— (no abdomen to measure)"


def render_html(scored: ScoredCase, chosen: dict[int, int], timeline_png: bytes | None,
                area: ImageArea | None = None, heat_maps: dict[int, tuple[np.ndarray, str]] | None = None) -> str:
    """`heat_maps`: frame -> (its heat map picture, BGR, and the picture's caption), shown beside it."""
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
        measured = "<br>".join(html.escape(f"{label}: {c.value_text()}" + (" (the model's)" if c.by == "model" else ""))
                               for label, c in labelled(calipers)) or "—"
        rows.append(f"<tr><td>{best.sweep}</td><td>{frame}</td><td>{float(scored.scores[frame]):.3f}</td>"
                    f"<td>{'✔ good' if good else '✘ below the threshold'}{partly}</td><td>{measured}</td>"
                    f"<td>{_model_ac(scored, frame, good)}</td></tr>")
        picture = calipers_drawn(frame_pixels(case, frame, area), calipers)
        figures.append(_figure(picture, f"Sweep {best.sweep}, frame {frame}" + (", measured" if calipers else "")))
        if heat_maps and frame in heat_maps:
            heat_picture, caption = heat_maps[frame]
            figures.append(_figure(heat_picture, f"Sweep {best.sweep}, frame {frame}: {caption}"))
    demo = (" (a demo model trained on synthetic sweeps: not for clinical use)"
            if model and model.is_demo and "demo" not in model.name.lower() else "")
    timeline = f"<h2>Scores of every frame</h2>{_img(timeline_png, 'quality timeline', 900)}" if timeline_png else ""
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>fetal-iqa report: {html.escape(case.case_id)}</title>
<style>
body {{ font-family: sans-serif; margin: 2em; color: #111; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #999; padding: 4px 8px; }}
figure {{ display: inline-block; margin: 0 1em 1em 0; }} .note {{ border: 2px solid #b00; padding: 8px; }}
table.study th {{ text-align: left; background: #eee; }} table.study td {{ min-width: 20em; }}
</style></head><body>
<h1>Case {html.escape(case.case_id)}</h1>
{_study_block(case)}
<p>Source: {html.escape(case.source.name)} (pixels sha256 {case.content_hash[:16]}…), {case.n_frames} frames,
pixel spacing {html.escape(case.spacing.describe())}.{_blanked_note(area)}</p>
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
