"""fetal-iqa: image-quality assessment of fetal ultrasound blind sweeps with FetalCLIP_CLS.

Everything in this package except `gui` is the Qt-free core that the GUI and the CLI share.
"""

__version__ = "0.2.0"  # the only place the version is written (pyproject.toml reads it)
