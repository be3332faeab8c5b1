"""fetal-iqa: image-quality assessment of fetal ultrasound blind sweeps with FetalCLIP_CLS.

Everything in this package except `gui` is the Qt-free core that the GUI and the CLI share.
"""

__version__ = "0.1.0"
