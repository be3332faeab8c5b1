"""The two kinds of model and what their scores mean, torch-free.

A classification (CLS) model scores a frame with the probability that it is good enough to
measure; a segmentation (SEG) model with the share of the frame its abdomen mask covers. The two
are different quantities, so each kind has its own default threshold, and a threshold chosen for
one never applies to the other. Whether a frame is good is decided here, once, for every place.
"""

from __future__ import annotations

import numpy as np

TASKS = ("classification", "segmentation")
DEFAULT_THRESHOLDS = {"classification": 0.5,  # a probability
                      "segmentation": 0.01}  # good when >= 1 % of its 224 x 224 pixels are abdomen
SCORE_MEANING = {"classification": "probability that the frame is good",
                 "segmentation": "share of the frame the abdomen mask covers"}


def is_good(scores, threshold: float):
    """Whether scores reach the threshold: a bool for one score, a bool array for several. A score
    that is not a number (unscored, or padding) is never good."""
    values = np.asarray(scores)
    if not np.issubdtype(values.dtype, np.floating):
        values = values.astype(float)
    # compared in the scores' own precision: a float32 score shown as 0.700 reaches a threshold of 0.7
    good = np.nan_to_num(values, nan=-np.inf) >= values.dtype.type(threshold)
    return bool(good) if good.ndim == 0 else good
