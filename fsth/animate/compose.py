"""Composing: a generated face crop and its layers -> the output frame (``Compositor``).

The layers, bottom to top: the face (the warp, corrected by a warp-guided G), the mouth interior in the opening
between the inner lips (``fsth.animate.mouth``), drawn upper lids where the target's eyes close (``fsth.animate.eyes``);
then the crop as it is, or pasted back into the source photo
(``paste_back`` through ``face_mask``; with a warp model the photo warped at its own resolution, the layers laid over
it there), and with ``--side-by-side`` the panels driver | landmark image | result.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from fsth.animate.eyes import EyeLids
from fsth.animate.layers import Layer
from fsth.animate.mouth import MouthInterior
from fsth.animate.options import AnimateOptions
from fsth.errors import InputError
from fsth.fewshot import FaceLayers, Person
from fsth.landmarks.crop import CropPolicy, soft_pad
from fsth.landmarks.parts import BROWS, JAW
from fsth.landmarks.sketch import draw_landmarks, sketch_thickness
from fsth.video import read_image

PAD_MARGIN = 2  # pixels more than the crop box runs off the photo, padded for the warp's bilinear reads


def face_mask(points: Iterable[np.ndarray], size: int) -> np.ndarray:
    """Soft mask (size, size) float32 in [0, 1] over the face of each landmark set (68, 2) in crop pixels: the
    union of their outlines (jaw, and the brows raised by a fifth of the face height to take in the forehead),
    feathered by a Gaussian of 3% of the crop."""
    import cv2

    mask = np.zeros((size, size), np.uint8)
    for p in points:
        p = np.asarray(p, np.float32)
        height = float(np.linalg.norm(p[8] - 0.5 * (p[19] + p[24])))
        up = 0.5 * (p[19] + p[24]) - p[8]
        up /= max(float(np.linalg.norm(up)), 1e-6)
        outline = np.concatenate([p[JAW], p[BROWS] + up * 0.2 * height])
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(outline * 16).astype(np.int32)), 255, cv2.LINE_AA, 4)
    sigma = 0.03 * size
    return cv2.GaussianBlur(mask, (0, 0), sigma).astype(np.float32) / 255.0


def _photo_region(box: np.ndarray, shape, pad: int) -> tuple[int, int, int, int]:
    """The photo pixels (ix0, iy0, ix1, iy1) that crop box ``box`` covers (``pad`` more on the far sides), clipped
    to a photo of ``shape``."""
    h, w = shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    return (
        max(int(np.floor(x0)), 0),
        max(int(np.floor(y0)), 0),
        min(int(np.ceil(x1)) + pad, w),
        min(int(np.ceil(y1)) + pad, h),
    )


def _into_region(image: np.ndarray, box: np.ndarray, region, border: int, value: float = 0.0) -> np.ndarray:
    """A crop-sized image (S, S[, C]) that shows ``box`` of a photo, resampled to that photo's pixels ``region``
    (photo pixel p <-> crop pixel q = (p - x0) * S / side, CropPolicy's convention); outside the crop ``border``
    (an OpenCV border mode) with ``value``."""
    import cv2

    size = image.shape[0]
    x0, y0, x1, y1 = (float(v) for v in box)
    ix0, iy0, ix1, iy1 = region
    s, t = size / (x1 - x0), size / (y1 - y0)
    M = np.array([[s, 0.0, (ix0 - x0) * s], [0.0, t, (iy0 - y0) * t]])
    return cv2.warpAffine(
        image,
        M,
        (ix1 - ix0, iy1 - iy0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=border,
        borderValue=value,
    )


def paste_back(photo: np.ndarray, face: np.ndarray, box: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``photo`` (H, W, 3) with the crop ``face`` (S, S, 3), which shows ``box`` of it, blended in through ``mask``
    (S, S) in [0, 1]. Only the box's part of the photo is touched; returns a new image."""
    import cv2

    out = photo.copy()
    ix0, iy0, ix1, iy1 = region = _photo_region(box, photo.shape, pad=1)
    if ix1 <= ix0 or iy1 <= iy0:
        return out
    face_roi = _into_region(face, box, region, cv2.BORDER_REPLICATE)
    alpha = _into_region(mask, box, region, cv2.BORDER_CONSTANT, 0.0)
    out[iy0:iy1, ix0:ix1] = cv2.blendLinear(face_roi, photo[iy0:iy1, ix0:ix1], alpha, 1.0 - alpha)
    return out


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    if h == height:
        return image
    width = max(1, int(round(w * height / h)))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if h > height else cv2.INTER_LINEAR)


class Compositor:
    """Generated crop -> output frame per the options: the crop, or pasted back into the source photo, and in
    side-by-side mode the panels driver | landmark image | result at the result's height (with paste-back, the
    landmarks are drawn where they are in the photo, so the panels line up).

    With a warp model (``warps``), paste-back warps the photo itself at its own resolution (``warp_region``, the
    spline of its crop) instead of enlarging the 256x256 crop: the warp alone keeps every pixel of the photo's
    detail; a warp-guided G's drawn picture is blended in through its mask, enlarged from the crop.

    With a warp model the mouth interior is its own layer (``MouthInterior``, ``options.mouth``); a generator that
    draws the whole face (the paper's) draws the mouth too. ``needs_driver_frames()``: whether the driver's frames
    must be given (``__call__``'s ``frame.driver``) for it."""

    def __init__(self, person: Person, options: AnimateOptions, warps: bool = False):
        self.side_by_side = options.side_by_side
        self.size = person.size
        self.warps = warps
        self.photo = self.box = None
        mode = options.mouth if warps else "generator"
        self.mouth = MouthInterior(person.crops, person.points, person.size, mode) if mode != "generator" else None
        if self.mouth is not None and self.mouth.mode == "generator":
            self.mouth = None
        # drawn eyelids (fsth.animate.eyes): a warp cannot close an eye the photo shows open
        self.eyes = None
        if warps and person.crops is not None:
            mesh = person.mesh[0] if person.mesh is not None else None  # the lids between its eye corners
            self.eyes = EyeLids(person.crops[0], person.points[0], mesh)
        if options.paste_back:
            if person.photo is None or person.box is None:
                raise InputError(
                    f"{person.name}: --paste-back needs a photo as SOURCE (a file or a directory of "
                    "photos: the face goes back into the first one)"
                )
            self.photo = person.image if person.image is not None else read_image(person.photo)
            self.box = person.box
            self.source_points = person.points[0]
            if warps:
                import torch

                from fsth.models import images_to_tensor

                # the photo with the box's parts off it filled as a new person's crop fills them (softly:
                # its edge pixels blurred along the edge), where the warp moves them into view
                h, w = self.photo.shape[:2]
                x0, y0, x1, y1 = (float(v) for v in self.box)
                pads = [int(np.ceil(v)) + PAD_MARGIN if v > 0 else 0 for v in (-x0, -y0, x1 - w, y1 - h)]
                self._pad = pads[0], pads[1]
                padded = soft_pad(self.photo, tuple(pads), x1 - x0)
                self._photo_tensor = images_to_tensor(padded[None])  # (1, 3, H', W')
                self._torch = torch

    def needs_driver_frames(self, targets: np.ndarray | None = None) -> bool:
        """Whether the mouth layer uses the driver's frames; given a driver file's target landmarks (N, 68, 2),
        whether it uses them for those (``MouthInterior.needs_driver_for``)."""
        if self.mouth is None:
            return False
        return self.mouth.needs_driver if targets is None else self.mouth.needs_driver_for(targets)

    def describe(self) -> str | None:
        """Where the mouth interior comes from (one line for stderr), None without a mouth layer."""
        return self.mouth.describe() if self.mouth is not None else None

    def result(
        self,
        face: FaceLayers | np.ndarray,
        points: np.ndarray,
        driver: np.ndarray | None = None,
        driver_points: np.ndarray | None = None,
    ) -> np.ndarray:
        """The output frame (without side-by-side panels) for target landmarks ``points`` (68, 2) in crop pixels;
        ``driver`` / ``driver_points``: the driver's frame and its landmarks, for a mouth interior taken from it."""
        layers = face if isinstance(face, FaceLayers) else FaceLayers(face)
        mouth = self.mouth.layer(points, driver, driver_points) if self.mouth is not None else None
        lids = self.eyes.layer(points, layers.face) if self.eyes is not None else None
        over = [layer for layer in (mouth, lids) if layer is not None]  # bottom to top
        if self.photo is not None and self.warps:
            return self._warped_photo(layers, points, over, lids)
        crop = layers.face
        for layer in over:
            if layer is lids:  # the skin's fine detail on the drawn lids, from below the eyes
                full = layer.full(self.size)
                detail = self.eyes.skin_detail(points, crop, full.alpha, (1.0, 0.0, 0.0))
                layer = Layer(np.clip(full.image + np.rint(detail), 0, 255).astype(np.uint8), full.alpha)
            crop = layer.over(crop)
        if self.photo is None:
            return crop
        mask = face_mask([self.source_points, points], crop.shape[0])
        return paste_back(self.photo, crop, self.box, mask)

    def _warped_photo(
        self, layers: FaceLayers, points: np.ndarray, over: list[Layer], lids: Layer | None = None
    ) -> np.ndarray:
        """The photo warped at its resolution inside the crop box (the border anchors keep the box's edge in
        place), a warp-guided G's drawn picture blended in through its mask, the layers ``over`` (the mouth
        interior, the drawn eyelids ``lids``) on top, each resampled to the photo's pixels; the lids given the
        skin's fine detail there (``EyeLids.skin_detail``): enlarged from the crop, they were smooth patches on a
        large photo's skin."""
        import cv2

        from fsth.models import tensor_to_images
        from fsth.models.warp import warp_region

        torch = self._torch
        ix0, iy0, ix1, iy1 = region = _photo_region(self.box, self.photo.shape, pad=0)
        out = self.photo.copy()
        if ix1 <= ix0 or iy1 <= iy0:
            return out
        src = torch.as_tensor(np.asarray(self.source_points, np.float32))[None]
        dst = torch.as_tensor(np.asarray(points, np.float32))[None]
        left, top = self._pad  # the padded photo's coordinates
        box = np.asarray(self.box, np.float64) + [left, top, left, top]
        shifted = (ix0 + left, iy0 + top, ix1 + left, iy1 + top)
        with torch.inference_mode():
            warped = tensor_to_images(warp_region(self._photo_tensor, box, src, dst, self.size, shifted))[0]
        if layers.mask is not None:
            drawn = _into_region(layers.drawn, self.box, region, cv2.BORDER_REPLICATE)
            alpha = _into_region(layers.mask, self.box, region, cv2.BORDER_CONSTANT, 1.0)
            warped = cv2.blendLinear(warped, drawn, alpha, 1.0 - alpha)
        for layer in over:
            drawn_lids = layer is lids
            layer = layer.full(self.size)
            image = _into_region(layer.image, self.box, region, cv2.BORDER_REPLICATE)
            alpha = _into_region(layer.alpha, self.box, region, cv2.BORDER_CONSTANT, 0.0)
            if drawn_lids:
                s = self.size / float(self.box[2] - self.box[0])
                to_crop = (s, (ix0 - float(self.box[0])) * s, (iy0 - float(self.box[1])) * s)
                detail = self.eyes.skin_detail(points, warped, alpha, to_crop)
                image = np.clip(image + np.rint(detail), 0, 255).astype(np.uint8)
            warped = cv2.blendLinear(image, warped, alpha, 1.0 - alpha)
        out[iy0:iy1, ix0:ix1] = warped
        return out

    def panels(
        self, driver: np.ndarray | None, sketch: np.ndarray, result: np.ndarray, points: np.ndarray | None = None
    ) -> np.ndarray:
        if not self.side_by_side:
            return result
        h = result.shape[0]
        if self.photo is not None and points is not None:  # landmarks where the face is in the pasted-back photo
            sketch = np.zeros_like(self.photo)
            side = float(self.box[2] - self.box[0])
            draw_landmarks(sketch, CropPolicy.from_crop(points, self.box, self.size), sketch_thickness(int(side)))
        return np.concatenate([_fit_height(driver, h), _fit_height(sketch, h), result], axis=1)

    def __call__(self, frame, face) -> np.ndarray:
        """The output frame for a driver ``frame`` (``_Frame``: the driver's frame, its landmarks, the target
        landmarks and their landmark image) and its generated ``face``."""
        result = self.result(face, frame.points, frame.driver, frame.driver_points)
        return self.panels(frame.driver, frame.sketch, result, frame.points)
