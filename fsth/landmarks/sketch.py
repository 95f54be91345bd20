"""The one sketch renderer: 68 landmarks -> the 3-channel landmark image y(t) the networks see (the paper's section 3).

``draw_sketch(points, size)`` draws each facial part as an anti-aliased polyline in its own fixed colour
(``SKETCH_COLORS``) on a black square: jaw, both brows, nose ridge, nose base, both eyes (closed), outer and inner
lips (closed). Lines are 2 px thick at 256x256 and scale with the size. ``points`` must already be in the
target image's pixels (``CropPolicy.to_crop`` maps source-frame landmarks there). ``draw_overlay`` draws the
same lines, and optionally the crop box, over a copy of a video frame for looking at results.

OpenCV's anti-aliased polylines with sub-pixel coordinates: well under a millisecond per 256x256 image.
"""

from __future__ import annotations

import numpy as np

from fsth.landmarks.parts import PARTS

# RGB colour of each part; fixed, since the networks learn them.
SKETCH_COLORS: dict[str, tuple[int, int, int]] = {
    "jaw": (255, 170, 0),
    "right_brow": (170, 255, 0),
    "left_brow": (0, 255, 0),
    "nose_ridge": (0, 170, 255),
    "nose_base": (0, 0, 255),
    "right_eye": (0, 255, 170),
    "left_eye": (170, 0, 255),
    "outer_lips": (255, 0, 0),
    "inner_lips": (255, 0, 170),
}
BOX_COLOR = (255, 255, 255)

_SHIFT = 4  # sub-pixel bits for cv2 drawing: coordinates are passed x16
_COLORED_PARTS = tuple((p, SKETCH_COLORS[p.name]) for p in PARTS)


def sketch_thickness(size: int) -> int:
    """Line thickness in pixels for a ``size`` x ``size`` landmark image: 2 at 256, proportional, at least 1."""
    return max(1, int(round(2.0 * size / 256.0)))


def draw_landmarks(canvas: np.ndarray, points: np.ndarray, thickness: int) -> np.ndarray:
    """Draw the 68 ``points`` (in ``canvas`` pixels) as coloured part polylines onto ``canvas``, in place.

    ``canvas`` is (H, W, 3) uint8 RGB. Non-finite points (an invalid frame) draw nothing.
    """
    import cv2

    pts = np.asarray(points, dtype=np.float64).reshape(68, 2)
    if not np.isfinite(pts).all():
        return canvas
    fixed = np.round(pts * (1 << _SHIFT)).astype(np.int32)
    for part, color in _COLORED_PARTS:
        cv2.polylines(canvas, [fixed[part.start : part.stop]], part.closed, color, thickness, cv2.LINE_AA, _SHIFT)
    return canvas


def draw_sketch(
    points: np.ndarray,
    size: int,
    *,
    thickness: int | None = None,
    background: tuple[int, int, int] = (0, 0, 0),
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The landmark image: (size, size, 3) uint8 RGB with the parts of ``points`` (68, 2) drawn on ``background``.

    ``points`` are in the output's pixels (x right, y down, pixel centres at integers). ``out``, if given, is a
    (size, size, 3) uint8 buffer to draw into (it is cleared first), to avoid allocating one per frame.
    """
    if out is None:
        out = np.empty((size, size, 3), np.uint8)
    if background[0] == background[1] == background[2]:
        out.fill(background[0])  # ~100x faster than broadcasting a colour tuple
    else:
        out[:] = np.asarray(background, np.uint8)
    return draw_landmarks(out, points, sketch_thickness(size) if thickness is None else thickness)


def draw_overlay(
    frame: np.ndarray,
    points: np.ndarray | None,
    box: np.ndarray | None = None,
    *,
    thickness: int | None = None,
) -> np.ndarray:
    """A copy of ``frame`` (H, W, 3) uint8 RGB with the landmark parts (source pixels) and the crop ``box`` drawn.

    The line thickness follows the face size (the box side) unless given. ``points`` None or non-finite
    draws no landmarks (the frame had no face); ``box`` None or non-finite draws no box.
    """
    import cv2

    canvas = np.array(frame, dtype=np.uint8, copy=True)
    has_box = box is not None and np.isfinite(box).all()
    if thickness is None:
        side = float(box[2] - box[0]) if has_box else float(min(frame.shape[:2]))
        thickness = sketch_thickness(int(side / 2))
    if has_box:
        corners = np.round(np.asarray(box, np.float64) * (1 << _SHIFT)).astype(np.int32)
        cv2.rectangle(canvas, tuple(corners[:2]), tuple(corners[2:]), BOX_COLOR, thickness, cv2.LINE_AA, _SHIFT)
    if points is not None:
        draw_landmarks(canvas, points, thickness)
    return canvas
