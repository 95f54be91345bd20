"""The one crop policy: 68 landmarks -> a square face box -> a crop at any model resolution, and back.

Every command that turns frames into network inputs (dataset building, embed, finetune, animate, evaluate) uses
this policy, and its parameters travel with the outputs (landmark files, checkpoints): a model trained on one
crop must be fed the same crop.

The box, from one frame's landmarks ``L`` (68, 2) in source pixels:

* face extent ``E`` = the jaw width ``|L[16] - L[0]|``, or ``2.5 x`` the distance from the eyes' centre to the
  nose base when that is larger (a head turned sideways narrows the jaw but not the eyes-to-nose distance).
  Both are rigid: opening the mouth, smiling or raising the brows does not change ``E`` (the bounding box of
  all 68 points would grow by ~8% each time the jaw drops, and the crop would breathe with speech).
* anchor = midway between the eyes' centre and the nose base's centre.
* the box is a square of side ``scale x E`` centred ``y_offset x E`` from the anchor along the face's own
  down direction (perpendicular to the line through the eyes; negative = towards the forehead).

Defaults ``scale=2.2, y_offset=-0.15`` frame the whole head with some margin, like VoxCeleb's face-centred
crops. Measured with dlib on the VoxCeleb-style clips of the shared test media (lia_vox_*, tpsmm_driving,
rnthm_test_video), their frame side is 1.3-2.3x this extent (mean ~1.8x, several of them cut the top of the
head) and their centre lies within about 0.25 E of the anchor. Contact sheets of 14 shared photos and videos
(frontal, tilted, looking up, long hair, curly hair, a child) at 2.0/-0.1, 2.2/-0.15 and 2.3/-0.25: 2.2/-0.15
keeps hair and chin inside with a margin in all of them, with the neck and collar below, as VoxCeleb does.

Over a video, ``smooth_boxes`` replaces each frame's box by a Gaussian-weighted local straight-line fit over
time (``smooth_seconds`` sigma) and bridges frames without a face, so the crop does not shake with landmark
jitter but follows real head motion without lag. A live driver, whose later frames are not there yet, has the
causal ``BoxFollower`` instead: an exponential moving average of time constant ``smooth_seconds``.

Coordinates: pixel centres at integers, x right, y down; a box is ``[x0, y0, x1, y1]`` and maps onto the
crop's ``[0, size]`` so that ``to_crop`` / ``from_crop`` agree exactly with the pixels ``crop`` produces.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from fsth.errors import FsthError, InputError
from fsth.landmarks.parts import LEFT_EYE, NOSE_BASE, RIGHT_EYE

PADDINGS = ("constant", "replicate", "soft")
# "soft": the edge pixels, blurred along the edge more the farther they lie outside the photo; reached SOFT_REACH x
# size out, a Gaussian of SOFT_SPREAD x the distance out (SOFT_SIGMA to SOFT_MAX_SIGMA x size). Repeated edge
# pixels alone draw streaks (a strand of hair cut by the photo's top edge runs on to the crop's); a fixed blur left
# wider things as columns (hair cut by the top edge stood as a dark block up to the crop's edge); blurred by how
# far out, they fan out into the colours beside them, as out of focus.
SOFT_REACH = 0.02
SOFT_SIGMA = 0.03
SOFT_SPREAD = 2.0
SOFT_MAX_SIGMA = 0.25


@dataclass(frozen=True)
class CropPolicy:
    scale: float = 2.2  # box side / face extent E
    y_offset: float = -0.15  # box centre from the anchor, along the face's down axis, in units of E (- = up)
    smooth_seconds: float = 0.5  # sigma of the Gaussian that smooths boxes over time (0 = no smoothing)
    padding: str = "constant"  # box parts outside the image: "constant" (black), "replicate" (edge pixels), "soft"

    def __post_init__(self):
        if not (self.scale > 0 and math.isfinite(self.scale)):
            raise InputError(f"crop scale must be a positive finite number, not {self.scale}")
        if not math.isfinite(self.y_offset):
            raise InputError(f"crop y_offset must be a finite number, not {self.y_offset}")
        if not self.smooth_seconds >= 0:
            raise InputError(f"crop smooth_seconds must be >= 0, not {self.smooth_seconds}")
        if self.padding not in PADDINGS:
            raise InputError(f"crop padding must be one of {', '.join(PADDINGS)}, not {self.padding!r}")

    # -- storage

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CropPolicy":
        """Rebuild from ``to_dict()`` output; unknown keys are an error (they mean a newer, different policy)."""
        from fsth.config import check_types, field_types

        known = field_types(cls)
        try:
            check_types(d, known, "crop policy")  # "big", or a number stored as a string
        except FsthError as exc:
            raise InputError(str(exc)) from None
        unknown = set(d) - set(known)
        if unknown:
            raise InputError(f"unknown crop policy parameters: {', '.join(sorted(unknown))}")
        return cls(**d)

    # -- one frame

    @staticmethod
    def face_frame(landmarks: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """(anchor (..., 2), extent E (...), unit down vector (..., 2)) of landmarks (..., 68, 2)."""
        L = np.asarray(landmarks, dtype=np.float64)
        eyes = 0.5 * (L[..., RIGHT_EYE, :].mean(-2) + L[..., LEFT_EYE, :].mean(-2))
        right_eye, left_eye = L[..., RIGHT_EYE, :].mean(-2), L[..., LEFT_EYE, :].mean(-2)
        nose_base = L[..., NOSE_BASE, :].mean(-2)
        jaw_width = np.linalg.norm(L[..., 16, :] - L[..., 0, :], axis=-1)
        eye_nose = np.linalg.norm(nose_base - eyes, axis=-1)
        extent = np.maximum(jaw_width, 2.5 * eye_nose)
        across = left_eye - right_eye  # subject's right eye -> left eye: image x direction for a frontal face
        norm = np.linalg.norm(across, axis=-1, keepdims=True)
        across = np.where(norm > 1e-6, across / np.maximum(norm, 1e-6), np.array([1.0, 0.0]))
        down = np.stack([-across[..., 1], across[..., 0]], axis=-1)  # x right, y down: rotate +90 degrees
        return 0.5 * (eyes + nose_base), extent, down

    def box(self, landmarks: np.ndarray) -> np.ndarray:
        """The square crop box ``[x0, y0, x1, y1]`` (float32) for landmarks (68, 2); also works on (N, 68, 2)."""
        anchor, extent, down = self.face_frame(landmarks)
        center = anchor + down * (self.y_offset * extent)[..., None]
        half = (0.5 * self.scale * extent)[..., None]
        return np.concatenate([center - half, center + half], axis=-1).astype(np.float32)

    # -- a video

    def boxes(self, landmarks: np.ndarray, valid: np.ndarray, fps: float) -> np.ndarray:
        """Smoothed boxes (N, 4) for a video's landmarks (N, 68, 2) with validity mask (N,)."""
        valid = np.asarray(valid, bool)
        raw = np.full((len(valid), 4), np.nan, np.float32)
        if valid.any():
            raw[valid] = self.box(np.asarray(landmarks)[valid])
        return self.smooth_boxes(raw, valid, fps)

    def smooth_boxes(self, boxes: np.ndarray, valid: np.ndarray, fps: float) -> np.ndarray:
        """Low-pass per-frame boxes (N, 4) over time; frames that are not ``valid`` get their neighbours' box.

        At each valid frame, box centre and side are a local straight-line fit over the valid frames, weighted
        by a Gaussian of ``smooth_seconds`` sigma: jitter is averaged away, steady motion passes without lag
        (also at the ends of the video). Frames without a face get the straight line between the boxes of the
        nearest valid frames (the nearest box at the ends). Returns NaN boxes only if no frame is valid.
        """
        boxes = np.asarray(boxes, np.float64)
        valid = np.asarray(valid, bool) & np.isfinite(boxes).all(axis=1)
        n = len(boxes)
        if not valid.any():
            return np.full((n, 4), np.nan, np.float32)
        ccs = center_side(boxes)
        ccs[~valid] = 0.0
        sigma = self.smooth_seconds * float(fps)
        out = _local_linear_fit(ccs, valid, sigma) if sigma > 0 and n > 1 else ccs.copy()
        if not valid.all():  # frames without a face: straight line between the neighbours' boxes, held at the ends
            idx = np.arange(n)
            for k in range(3):
                out[~valid, k] = np.interp(idx[~valid], idx[valid], out[valid, k])
        return box_of(out)

    # -- pixels and coordinates

    def crop(self, image: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
        """The (size, size, C) crop of ``image`` (H, W, C) inside ``box``, resampled; same dtype as ``image``.

        Parts of the box outside the image are filled per ``padding``: black, the nearest edge pixel, or (soft)
        the nearest edge pixel blurred by how far out it lies.
        Shrinking averages pixels (area interpolation) before the sub-pixel warp, so large boxes do not alias.
        """
        import cv2

        x0, y0, x1, y1 = (float(v) for v in box)
        if not (np.isfinite([x0, y0, x1, y1]).all() and x1 > x0 and y1 > y0):
            raise InputError(f"crop box {list(box)} is empty or not finite")
        sx, sy = size / (x1 - x0), size / (y1 - y0)
        src, ox, oy, kx, ky = image, 0.0, 0.0, 1.0, 1.0
        if min(sx, sy) < 1.0:
            # Area-shrink just the part of the image under the box, then warp the small version.
            h, w = image.shape[:2]
            ix0, iy0 = max(int(math.floor(x0)) - 1, 0), max(int(math.floor(y0)) - 1, 0)
            ix1, iy1 = min(int(math.ceil(x1)) + 2, w), min(int(math.ceil(y1)) + 2, h)
            if ix1 - ix0 >= 2 and iy1 - iy0 >= 2:
                roi = image[iy0:iy1, ix0:ix1]
                nw = max(2, int(round(roi.shape[1] * min(sx, 1.0))))
                nh = max(2, int(round(roi.shape[0] * min(sy, 1.0))))
                src = cv2.resize(roi, (nw, nh), interpolation=cv2.INTER_AREA)
                ox, oy, kx, ky = ix0, iy0, nw / roi.shape[1], nh / roi.shape[0]
        # src pixel u <-> source pixel p:  p = (u + 0.5) / k - 0.5 + o   (cv2.resize's pixel-centre convention)
        # crop pixel q = (p - x0) * s  =>  q = u * s / k + s * (0.5 / k - 0.5 + o - x0)
        M = np.array(
            [
                [sx / kx, 0.0, sx * (0.5 / kx - 0.5 + ox - x0)],
                [0.0, sy / ky, sy * (0.5 / ky - 0.5 + oy - y0)],
            ]
        )
        border = cv2.BORDER_CONSTANT if self.padding == "constant" else cv2.BORDER_REPLICATE
        out = cv2.warpAffine(src, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=border, borderValue=0)
        if self.padding == "soft":
            out = _soften_outside(out, M, src.shape[:2], size)
        return out.reshape(size, size, *image.shape[2:])

    @staticmethod
    def to_crop(landmarks: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
        """Source-pixel landmarks (..., 68, 2) -> pixels of the ``size`` crop of ``box`` (..., 4)."""
        box = np.asarray(box, np.float32)
        origin = box[..., None, :2]
        scale = size / (box[..., None, 2:] - box[..., None, :2])
        return ((np.asarray(landmarks, np.float32) - origin) * scale).astype(np.float32)

    @staticmethod
    def from_crop(points: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
        """Pixels of the ``size`` crop of ``box`` -> source pixels; the inverse of ``to_crop``."""
        box = np.asarray(box, np.float32)
        origin = box[..., None, :2]
        scale = (box[..., None, 2:] - box[..., None, :2]) / size
        return (np.asarray(points, np.float32) * scale + origin).astype(np.float32)


def _soften_outside(out: np.ndarray, M: np.ndarray, src_hw: tuple[int, int], scale: float) -> np.ndarray:
    """``out`` (an image's resampling by ``M``, of an image ``src_hw`` with its edge pixels repeated) with the
    pixels outside the image blended towards their edge pixels blurred along the edge, by their distance d from it:
    none at the edge, all of it SOFT_REACH x ``scale`` out (the pixels of a crop's side); the blur's sigma
    SOFT_SPREAD x d, from SOFT_SIGMA to SOFT_MAX_SIGMA x ``scale`` (padding "soft")."""
    h, w = src_hw
    corners = M @ np.array([[-0.5, -0.5, 1.0], [w - 0.5, h - 0.5, 1.0]]).T  # the image's outer pixel edges
    (cx0, cx1), (cy0, cy1) = corners
    rows, cols = out.shape[:2]
    qx, qy = np.arange(cols) + 0.5, np.arange(rows) + 0.5  # pixel centres
    dx = np.maximum(np.maximum(cx0 - qx, qx - cx1), 0.0)
    dy = np.maximum(np.maximum(cy0 - qy, qy - cy1), 0.0)
    above_below, beside = dy > 0, dx > 0
    if not (above_below.any() or beside.any()):
        return out
    src = out.astype(np.float32)
    mixed = src.copy()
    # The repeated pixels are constant across the edge, so the blur runs along it: along the rows above and below
    # the image (corners included), along the columns beside it; on those rows and columns alone.
    if above_below.any():
        d = np.hypot(dx[None, :], dy[above_below, None])
        mixed[above_below] = _blur_along(src[above_below], d, 1, scale)
    if beside.any():
        d = np.hypot(dx[None, beside], dy[:, None])
        side = _blur_along(src[:, beside], d, 0, scale)
        mixed[np.ix_(~above_below, beside)] = side[~above_below]
    return (np.rint(mixed) if np.issubdtype(out.dtype, np.integer) else mixed).astype(out.dtype)


def _blur_along(src: np.ndarray, d: np.ndarray, axis: int, scale: float) -> np.ndarray:
    """``src`` (r, c[, C]) float32 blended towards itself blurred along ``axis`` (1: rows), per pixel by its
    distance ``d`` (r, c) out of the image (``_soften_outside``): blurs at sigmas doubling from SOFT_SIGMA x
    ``scale``, interpolated between neighbouring ones."""
    import cv2

    def per_pixel(a: np.ndarray) -> np.ndarray:  # (r, c) -> broadcastable against the channels
        return a[..., None] if src.ndim == 3 else a

    base = SOFT_SIGMA * scale
    level = np.log2(np.clip(SOFT_SPREAD * d, base, SOFT_MAX_SIGMA * scale) / base)
    blurred = np.zeros_like(src)
    for k in range(int(np.ceil(level.max())) + 1):
        sigma = (base * 2.0**k, 1e-3) if axis == 1 else (1e-3, base * 2.0**k)
        share = np.clip(1.0 - np.abs(level - k), 0.0, 1.0)
        blur = cv2.GaussianBlur(src, (0, 0), sigmaX=sigma[0], sigmaY=sigma[1], borderType=cv2.BORDER_REFLECT_101)
        blurred += blur.reshape(src.shape) * per_pixel(share)
    weight = per_pixel(np.clip(d / (SOFT_REACH * scale), 0.0, 1.0).astype(np.float32))
    return src * (1.0 - weight) + blurred * weight


SOFT_PAD_SCALE = 512  # soft_pad works at most at this many pixels per crop side (the fill is a blur)


def soft_pad(image: np.ndarray, pads: tuple[int, int, int, int], scale: float) -> np.ndarray:
    """``image`` (H, W, C) uint8 with ``pads`` (left, top, right, bottom) pixels more on its sides, filled as
    padding "soft" fills a crop's parts off a photo, ``scale`` the pixels of that crop's side: the photo at its own
    resolution under a crop box that runs off it. A large photo's fill is worked out at SOFT_PAD_SCALE pixels per
    crop side and enlarged (it is a blur); the photo's own pixels are kept."""
    import cv2

    left, top, right, bottom = (max(int(p), 0) for p in pads)
    h, w = image.shape[:2]
    padded = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_REPLICATE)
    if not (left or top or right or bottom):
        return padded
    f = min(1.0, SOFT_PAD_SCALE / scale)
    small_hw = (max(2, round(h * f)), max(2, round(w * f)))
    small = image if f == 1.0 else cv2.resize(image, small_hw[::-1], interpolation=cv2.INTER_AREA)
    sp = [round(p * f) for p in (left, top, right, bottom)]
    fill = cv2.copyMakeBorder(small, sp[1], sp[3], sp[0], sp[2], cv2.BORDER_REPLICATE)
    M = np.array([[1.0, 0.0, sp[0]], [0.0, 1.0, sp[1]]])
    fill = _soften_outside(fill, M, small_hw, scale * f)
    if f != 1.0:
        fill = cv2.resize(fill, padded.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    keep = np.zeros(padded.shape[:2], bool)
    keep[top : top + h, left : left + w] = True
    return np.where(keep[..., None], padded, fill)


class BoxFollower:
    """The causal twin of ``smooth_boxes``, for a live driver (a camera) in absolute mode: ``follower(points)`` is
    the policy's box of this frame's landmarks, its centre and side smoothed by an exponential moving average of
    time constant ``policy.smooth_seconds`` (no smoothing at 0). ``smooth_boxes`` needs the frames to come."""

    def __init__(self, policy: CropPolicy, fps: float):
        self.policy = policy
        self.alpha = 1.0 if policy.smooth_seconds <= 0 else 1.0 - np.exp(-1.0 / (policy.smooth_seconds * fps))
        self.state: np.ndarray | None = None  # centre x, centre y, side

    def __call__(self, points: np.ndarray) -> np.ndarray:
        ccs = center_side(self.policy.box(points).astype(np.float64))
        self.state = ccs if self.state is None else self.state + self.alpha * (ccs - self.state)
        return box_of(self.state)


def center_side(boxes: np.ndarray) -> np.ndarray:
    """Boxes (..., 4) ``[x0, y0, x1, y1]`` -> (..., 3) float64 (centre x, centre y, side): what the smoothers
    smooth."""
    b = np.asarray(boxes, np.float64)
    return np.stack([(b[..., 0] + b[..., 2]) / 2, (b[..., 1] + b[..., 3]) / 2, b[..., 2] - b[..., 0]], axis=-1)


def box_of(ccs: np.ndarray) -> np.ndarray:
    """(..., 3) (centre x, centre y, side) -> square boxes (..., 4) float32; the inverse of ``center_side``."""
    cx, cy, half = ccs[..., 0], ccs[..., 1], ccs[..., 2] / 2
    return np.stack([cx - half, cy - half, cx + half, cy + half], axis=-1).astype(np.float32)


def _local_linear_fit(x: np.ndarray, valid: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian-weighted local linear regression of each column of ``x`` (N, C), evaluated at the valid frames.

    At a valid frame t, fits ``a + b (s - t)`` to the valid frames s with weights exp(-(s - t)^2 / 2 sigma^2)
    and returns ``a`` (the fit's value at t); the sums are convolutions. Other rows are left as they were.
    """
    n = len(x)
    radius = int(math.ceil(3 * sigma))
    d = -np.arange(-radius, radius + 1, dtype=np.float64)  # np.convolve flips the kernel: index i <-> s - t = -d
    k0 = np.exp(-0.5 * (d / sigma) ** 2)

    def conv(values, kernel):  # sum over s of values[s] * kernel(s - t), aligned with the frames
        return np.convolve(values, kernel, mode="full")[radius : radius + n]

    w = valid.astype(np.float64)
    s0, s1, s2 = conv(w, k0), conv(w, -d * k0), conv(w, d * d * k0)
    det = s0 * s2 - s1 * s1
    line = valid & (det > 1e-6 * s0 * s0)  # else a lone valid frame: only a mean (itself) is defined
    mean = valid & ~line
    out = x.copy()
    for c in range(x.shape[1]):
        xv = np.where(valid, x[:, c], 0.0)
        t0, t1 = conv(xv, k0), conv(xv, -d * k0)
        out[mean, c] = t0[mean] / s0[mean]
        out[line, c] = (s2[line] * t0[line] - s1[line] * t1[line]) / det[line]
    return out
