"""fetal-iqa: image-quality assessment of fetal ultrasound blind sweeps with FetalCLIP_CLS.

The package keeps the project's name; its rooms, bottom up: `base` (errors, safe writes, where
files live), `case` (a file's frames and sweeps), `model` (FetalCLIP and its CLS/SEG heads),
`engine` (how and where the model runs, scoring), `review` (a scored case: best frames, calipers,
exports), `runs` (one case job; batches, Ray, the worklist), `training`; then the two front doors,
`cli` and `gui`. Everything except `gui` is the Qt-free core that both share.
"""

from .base.privacy import no_telemetry

no_telemetry()  # before any dependency that would report usage is imported

__version__ = "0.2.0"  # the only place the version is written (pyproject.toml reads it)
