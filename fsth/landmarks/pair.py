"""Frame + landmarks -> the pair the networks see: the face crop x and its landmark image y, at model size.

This is the one place where the crop policy (``crop.py``) and the sketch renderer (``sketch.py``) meet; every
stage that feeds the networks goes through it: dataset building and training (frames stored already cropped:
pass ``box=full_box(image)``), embed and finetune (the shots), animate (the driver's landmarks, retargeted into
the source's crop), evaluate.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fsth.landmarks.crop import CropPolicy
from fsth.landmarks.sketch import draw_sketch


@dataclass
class FacePair:
    crop: np.ndarray  # (size, size, 3) uint8 RGB: the frame x(t) as the networks see it
    sketch: np.ndarray  # (size, size, 3) uint8 RGB: its landmark image y(t)
    points: np.ndarray  # (68, 2) float32: the landmarks in crop pixels
    box: np.ndarray  # (4,) float32: the crop box [x0, y0, x1, y1] in source pixels


def full_box(image: np.ndarray) -> np.ndarray:
    """The box covering all of ``image`` (H, W, ...): for frames that are already face crops."""
    h, w = image.shape[:2]
    return np.array([0.0, 0.0, float(w), float(h)], np.float32)


def face_pair(
    image: np.ndarray,
    landmarks: np.ndarray,
    size: int,
    policy: CropPolicy | None = None,
    box: np.ndarray | None = None,
) -> FacePair:
    """Crop ``image`` (H, W, 3) uint8 to the face and draw its landmark image, both ``size`` x ``size``.

    ``landmarks`` (68, 2) are in ``image``'s pixels. ``box`` defaults to ``policy.box(landmarks)`` for this one
    frame; pass a video's smoothed box (``LandmarkTrack.boxes[t]``) to keep the crop steady over time, or
    ``full_box(image)`` when ``image`` is already a crop (it is then only resized).
    """
    policy = policy or CropPolicy()
    box = policy.box(landmarks) if box is None else np.asarray(box, np.float32)
    points = policy.to_crop(landmarks, box, size)
    return FacePair(policy.crop(image, box, size), draw_sketch(points, size), points, box)
