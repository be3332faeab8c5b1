"""Preprocessing matches the paper's pipeline: pad, OpenCV bicubic to 224, open_clip's eval transform."""

import numpy as np
import open_clip
import torch
from PIL import Image

from fetal_iqa_gui.engine.preprocess import CLIP_MEAN, CLIP_STD, frames_to_tensor, pad_to_square, square_resize, unsquare_mask


def paper_pipeline(frame: np.ndarray) -> torch.Tensor:
    """The paper's code path, step by step: numpy pad, OpenCV resize, then open_clip's own transform."""
    import cv2
    h, w = frame.shape
    size = max(h, w)
    top, left = (size - h) // 2, (size - w) // 2
    padded = np.pad(frame, ((top, size - h - top), (left, size - w - left)))
    resized = cv2.resize(padded, (224, 224), interpolation=cv2.INTER_CUBIC)
    transform = open_clip.image_transform(224, is_train=False, mean=CLIP_MEAN, std=CLIP_STD)
    return transform(Image.fromarray(resized))


def test_batched_grey_pipeline_equals_open_clips_transform(small_case):
    frames = small_case.frames[[3, 10, 40]]
    ours = frames_to_tensor(frames)
    reference = torch.stack([paper_pipeline(f) for f in frames])
    assert ours.shape == (3, 3, 224, 224)
    assert torch.allclose(ours, reference, atol=1e-5)


def test_padding_centres_the_frame_with_the_odd_row_at_the_bottom():
    frame = np.ones((3, 6), np.uint8)
    padded = pad_to_square(frame)
    assert padded.shape == (6, 6)
    assert padded[:, 0].tolist() == [0, 1, 1, 1, 0, 0]


def test_mask_round_trip_returns_to_frame_geometry():
    mask = np.zeros((562, 744), np.uint8)
    mask[200:300, 300:450] = 1
    small = square_resize(mask, interpolation=0)
    back = unsquare_mask(small, mask.shape)
    assert back.shape == mask.shape
    assert abs(int(back.sum()) - int(mask.sum())) / mask.sum() < 0.05
