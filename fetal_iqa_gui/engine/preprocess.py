"""Frame -> model input, exactly as the paper's pipeline prepares it.

The paper's code pads each frame to a centred square with zeros (the extra row or column, when
odd, goes to the bottom/right), resizes it to 224 x 224 with OpenCV's bicubic interpolation
(albumentations' Resize), then applies open_clip's eval transform: resize shortest side (a no-op
at 224), centre crop (a no-op), convert to RGB, scale to [0, 1], normalise with the OpenAI CLIP
mean and std. A grey frame's three RGB channels are equal, so the resize runs once on the grey
frame and the channels differ only by their normalisation: the same numbers at a third of the cost.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

INPUT_SIZE = 224
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

_SCALE = (1.0 / (255.0 * np.array(CLIP_STD, dtype=np.float32)))[:, None, None]
_OFFSET = (np.array(CLIP_MEAN, dtype=np.float32) / np.array(CLIP_STD, dtype=np.float32))[:, None, None]


def pad_to_square(frame: np.ndarray) -> np.ndarray:
    """Zero-pad a (height, width[, channels]) frame to a centred square, as the paper's code does."""
    height, width = frame.shape[:2]
    size = max(height, width)
    top, left = (size - height) // 2, (size - width) // 2
    return cv2.copyMakeBorder(frame, top, size - height - top, left, size - width - left,
                              cv2.BORDER_CONSTANT, value=0)


def square_resize(frame: np.ndarray, size: int = INPUT_SIZE, interpolation: int = cv2.INTER_CUBIC) -> np.ndarray:
    """Pad to a centred square, then resize to size x size (uint8 in, uint8 out)."""
    return cv2.resize(pad_to_square(frame), (size, size), interpolation=interpolation)


def normalise(grey: np.ndarray) -> np.ndarray:
    """(n, 224, 224) uint8 grey -> (n, 3, 224, 224) float32, CLIP-normalised RGB."""
    grey = grey.astype(np.float32)[:, None]
    return grey * _SCALE - _OFFSET


def resize_frames(frames: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """A batch of grey uint8 frames (n, height, width) -> (n, size, size) uint8, padded and resized."""
    return np.stack([square_resize(frame, size) for frame in frames])


def frames_to_tensor(frames: np.ndarray, size: int = INPUT_SIZE):
    """A batch of grey uint8 frames (n, height, width) -> model input (n, 3, size, size) float32 tensor."""
    import torch  # here, not at import: the window and the CLI's file commands start without torch
    return torch.from_numpy(normalise(resize_frames(frames, size)))


def normalise_tensor(grey):
    """`normalise` on a torch uint8 tensor where it lies: on a GPU, frames cross the bus as uint8
    grey (1/12 of the float RGB bytes) and the GPU, not the CPU, does the arithmetic."""
    scale, offset = _constants_on(grey.device)
    return grey[:, None].float() * scale - offset


@functools.cache
def _constants_on(device):
    """Copied to a device once: a copy from pageable memory makes the CPU wait for the GPU."""
    import torch
    return torch.from_numpy(_SCALE).to(device), torch.from_numpy(_OFFSET).to(device)


def unsquare_mask(mask: np.ndarray, frame_shape: tuple[int, int]) -> np.ndarray:
    """A (224, 224) model-space mask -> the frame's own (height, width), undoing pad and resize."""
    height, width = frame_shape
    size = max(height, width)
    top, left = (size - height) // 2, (size - width) // 2
    full = cv2.resize(mask.astype(np.uint8), (size, size), interpolation=cv2.INTER_NEAREST)
    return full[top:top + height, left:left + width]
