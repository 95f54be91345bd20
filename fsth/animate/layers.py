"""A layer over the face crop (``Layer``): what the mouth interior (``fsth.animate.mouth``) and the drawn eyelids
(``fsth.animate.eyes``) each give the compositor (``fsth.animate.compose``) per frame.

Stage: animate, inside the compositor. A layer is an image and its alpha within a box of the crop (alpha 0 outside
it), in crop pixels; ``over`` lays it on a crop, ``full`` spreads it over the whole crop (for resampling into the
photo with ``--paste-back``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Layer:
    """One frame's layer, in crop pixels: what to show and where, within a box of the crop."""

    image: np.ndarray  # (h, w, 3) uint8 RGB
    alpha: np.ndarray  # (h, w) float32 in [0, 1]
    origin: tuple[int, int] = (0, 0)  # (x, y) of the box's top-left pixel in the crop

    def over(self, face: np.ndarray) -> np.ndarray:
        """``face`` (S, S, 3) uint8 with this layer on top (a new image)."""
        import cv2

        x, y = self.origin
        h, w = self.alpha.shape
        out = face.copy()
        out[y : y + h, x : x + w] = cv2.blendLinear(self.image, face[y : y + h, x : x + w], self.alpha, 1 - self.alpha)
        return out

    def full(self, size: int) -> Layer:
        """The layer over the whole (size, size) crop."""
        x, y = self.origin
        h, w = self.alpha.shape
        image = np.zeros((size, size, 3), np.uint8)
        alpha = np.zeros((size, size), np.float32)
        image[y : y + h, x : x + w] = self.image
        alpha[y : y + h, x : x + w] = self.alpha
        return Layer(image, alpha)
