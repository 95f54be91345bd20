"""The ``mesh`` landmark backend: MediaPipe's 468-point face mesh and its iris model (``fsth.landmarks.mesh_runtime``:
LiteRT on a CPU, their torch port on CUDA).

Stage: landmarks. In: an RGB uint8 frame and, per face, a region: from dlib's face detector and 68 points when a
face is first found, from the previous frame's mesh while tracking. Out: (478, 2) float32 points per face in source
pixels: the 468 mesh vertices, then the subject's right iris (468-472: centre, then four points on its edge) and
left iris (473-477); ``MESH_TO_68`` gives the iBUG 68 points every 68-point consumer uses.

Per face (``MeshDetector.landmarks``, batched over faces):

1. the face region is a rotated square (MediaPipe's tracking convention): centred on the axis-aligned bounding box
   of the 468 points, side 1.5 x its longer side, turned so that the right eye's corners (33 -> 133) are level;
   ``FaceMeshNet`` sees it resampled to 192x192 (bilinear, edge pixels repeated outside the frame);
2. each eye region: a square centred between the eye's corners (33, 133 and 362, 263), side 2.3 x the longer side
   of their bounding box, turned like the eye; the left eye is mirrored (the model knows only one eye); ``IrisNet``
   sees both eyes of every face in one 64x64 batch;
3. (``finish``; ``finish=False`` leaves it out, for a tracker that runs it on another thread) the iris model's
   eyelid points (its first 16 eye-contour points, less the two corners) replace the mesh's, as
   MediaPipe's iris tracking does: they follow blinks more closely than the mesh's. The eye corners stay the
   mesh's: they set the next frame's crop angle, and the iris model's corners, a few pixels off, turned it by
   up to 6 degrees, which under-read a wide-open mouth by 15%.

A crop pixel (u, v) covers [u, u+1) x [v, v+1) of the crop; the crop's point q (model output, crop pixels) lies at
``centre + R(angle) @ (q / size - 0.5) * side`` in the source, where pixel centres sit at integer coordinates.

A face counts as present when the face-presence logit is > 0 (probability 0.5, MediaPipe's tracking threshold).
Weights: ``fsth/weights/face_landmark.tflite`` and ``iris_landmark.tflite`` (Apache-2.0, from the ``mediapipe``
0.10.21 wheel, unchanged: LiteRT's) and ``face_mesh.safetensors`` (the torch port's, converted from them by
``fsth.landmarks.mesh_convert``); see ``fsth/weights/FACE_MESH.md``.
"""

from __future__ import annotations

import math

import numpy as np

from fsth.landmarks.detectors import DlibDetector, LandmarkDetector, agrees, plausible_step
from fsth.landmarks.mesh_nets import IRIS_INPUT, MESH_INPUT
from fsth.landmarks.parts import (
    MESH_LEFT_EYE_CORNERS,
    MESH_LEFT_EYELIDS,
    MESH_LIPS_INNER,
    MESH_LIPS_OUTER,
    MESH_RIGHT_EYE_CORNERS,
    MESH_RIGHT_EYELIDS,
    MESH_TO_68,
    NUM_MESH_POINTS,
)

_LIDS = [i for i in range(16) if i not in (0, 8)]  # the iris model's lid points, less the eye corners
_RIGHT_LIDS = [MESH_RIGHT_EYELIDS[i] for i in _LIDS]
_LEFT_LIDS = [MESH_LEFT_EYELIDS[i] for i in _LIDS]
# The tracker smooths the lids (the iris model's, less the eye corners) and the lips at this share of its strength: at
# full strength they lagged a blink or a mouth snapping open by a frame or two and never reached a short blink's
# bottom. Tracked on three held-out drivers (lia_vox_driving2, retalking_face4, dpe_s), the eye opening measured on
# them correlates with another face mesh's (MediaPipe's refined one) at 0.84 / 0.94 / 0.95 at full strength and
# 0.84 / 0.97 / 0.98 at this one, the mouth's at 0.82 / 0.86 / 0.91 and 0.85 / 0.89 / 0.93; their shut eyes read
# 0.062 / 0.087 eye widths on the last two instead of 0.082 / 0.099. Their frame-to-frame change on open eyes
# rises 0.009 -> 0.011 eye widths (a fifth of a pixel on a 200 px face).
EXPRESSION_SMOOTHING = 0.25
FACE_SCALE = 1.5  # face region side / longer side of the mesh's bounding box
EYE_SCALE = 2.3  # eye region side / longer side of the eye corners' bounding box


def mesh_to_68(points: np.ndarray) -> np.ndarray:
    """(..., 478 or 468, 2) mesh points -> (..., 68, 2) iBUG points (``parts.MESH_TO_68``)."""
    return np.asarray(points)[..., MESH_TO_68, :].astype(np.float32)


# ---------------------------------------------------------------------------------------------- regions


def _angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle (radians, image axes: y down) of the vector a -> b."""
    return math.atan2(float(b[1] - a[1]), float(b[0] - a[0]))


def face_region(points: np.ndarray) -> np.ndarray:
    """[cx, cy, side, angle] of the face crop for mesh points (>= 468, 2), MediaPipe's tracking region."""
    lo, hi = points[:468].min(axis=0), points[:468].max(axis=0)
    side = FACE_SCALE * float(max(hi - lo))
    angle = _angle(points[MESH_RIGHT_EYE_CORNERS[0]], points[MESH_RIGHT_EYE_CORNERS[1]])
    return np.array([*(lo + hi) / 2, side, angle], np.float64)


# The mesh's bounding box relates to dlib's 68 points as: centre = their box centre - 0.14 h (up: the mesh reaches
# the forehead), longer side = 1.2 x their longer side (h: their box height). A first estimate only: detect() runs
# the mesh again on the region of its own points.
def face_region_68(points: np.ndarray) -> np.ndarray:
    """[cx, cy, side, angle] of a first face crop from iBUG 68 points (dlib's)."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    cx, cy = (lo + hi) / 2
    cy -= 0.14 * (hi[1] - lo[1])
    side = FACE_SCALE * 1.2 * float(max(hi - lo))
    return np.array([cx, cy, side, _angle(points[36], points[39])], np.float64)


def eye_region(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[cx, cy, side, angle] of the crop of the eye with corners a -> b (the order sets which way is up)."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    return np.array([*(lo + hi) / 2, EYE_SCALE * float(max(hi - lo)), _angle(a, b)], np.float64)


def eye_regions(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The right and left eye's crop regions for mesh points (>= 468, 2)."""
    r0, r1 = MESH_RIGHT_EYE_CORNERS
    l0, l1 = MESH_LEFT_EYE_CORNERS
    return eye_region(points[r0], points[r1]), eye_region(points[l0], points[l1])


def crop_eyes(image: np.ndarray, regions: list[np.ndarray]) -> np.ndarray:
    """(2F, 64, 64, 3) uint8 eye crops for regions [right, left, right, left, ...], the left eyes mirrored."""
    crops = np.stack([crop_region(image, r, IRIS_INPUT) for r in regions])
    crops[1::2] = crops[1::2, :, ::-1]  # the iris model sees right eyes only
    return crops


def _crop_to_source(region: np.ndarray, size: int) -> np.ndarray:
    """The 2x3 affine map of crop coordinates (pixel centres at u + 0.5) to source coordinates."""
    cx, cy, side, angle = region
    c, s = math.cos(angle), math.sin(angle)
    k = side / size
    rot = np.array([[c, -s], [s, c]]) * k
    origin = np.array([cx, cy]) - rot @ np.array([size / 2, size / 2])
    return np.concatenate([rot, origin[:, None]], axis=1)


def crop_region(image: np.ndarray, region: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 3) uint8: ``image`` resampled over the rotated square ``region`` (edge pixels repeated)."""
    import cv2

    m = _crop_to_source(region, size)
    # cv2 samples crop pixel centre (u, v) at M @ (u, v, 1): shift our map by half a crop pixel.
    m[:, 2] += m[:, :2] @ np.array([0.5, 0.5])
    return cv2.warpAffine(
        image, m, (size, size), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE
    )


def to_source(points: np.ndarray, region: np.ndarray, size: int) -> np.ndarray:
    """(..., 2) crop points -> source pixels (pixel centres at integer coordinates)."""
    m = _crop_to_source(region, size)
    return points @ m[:, :2].T + m[:, 2]


class MeshDetector(LandmarkDetector):
    """MediaPipe's face mesh + iris model on faces found by dlib's detector; see the module docstring. ``runtime``:
    where the networks run (``mesh_runtime.load_runtime``: auto|litert|torch).

    ``detect``, ``refine`` and ``redetect`` return (478, 2) points; ``to_68`` turns them into iBUG's 68.

    ``dlib_68=True`` (backend name ``mesh+dlib``, for models trained on dlib's points): the iBUG 68 are dlib's own,
    tracked exactly as the dlib backend tracks them, with the mesh beside them: (478 + 68, 2) points per face.
    """

    name = "mesh"
    num_points = NUM_MESH_POINTS

    def __init__(self, device=None, dlib_68: bool = False, runtime: str = "auto"):
        import torch

        from fsth.device import get_device
        from fsth.landmarks.mesh_runtime import load_runtime

        self.device = get_device() if device is None else torch.device(device)
        self.runtime = load_runtime(self.device, runtime)
        self._finder = DlibDetector()
        self.dlib_68 = dlib_68
        if dlib_68:
            self.name, self.num_points = "mesh+dlib", NUM_MESH_POINTS + 68

    def to_68(self, points: np.ndarray) -> np.ndarray:
        if self.dlib_68:
            return np.asarray(points)[..., NUM_MESH_POINTS:, :]
        return mesh_to_68(points)

    def to_mesh(self, points: np.ndarray) -> np.ndarray:
        return np.asarray(points)[..., :NUM_MESH_POINTS, :]

    def smoothing_weights(self) -> np.ndarray:
        weights = np.ones(self.num_points)
        weights[[*_RIGHT_LIDS, *_LEFT_LIDS, *MESH_LIPS_INNER, *MESH_LIPS_OUTER]] = EXPRESSION_SMOOTHING
        return weights

    def _with_68(self, mesh: np.ndarray, points68: np.ndarray) -> np.ndarray:
        return np.concatenate([mesh, points68]) if self.dlib_68 else mesh

    def _mesh_pass(self, image: np.ndarray, regions: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """(F, 468, 2) mesh points in source pixels and (F,) face-presence logits for F >= 1 face regions."""
        crops = np.stack([crop_region(image, r, MESH_INPUT) for r in regions])  # (F, 192, 192, 3)
        raw, logits = self.runtime.mesh(crops)  # (F, 468, 3), (F,)
        mesh = np.stack([to_source(raw[i, :, :2], r, MESH_INPUT) for i, r in enumerate(regions)])
        return mesh.astype(np.float32), logits

    def landmarks(
        self, image: np.ndarray, regions: list[np.ndarray], irises: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """(F, 478, 2) points in source pixels and (F,) face-presence logits for F face regions (one batch).
        ``irises=False``: the mesh's own lids, and each iris's five points at its eye's centre (``finish`` adds
        the iris model's)."""
        n = len(regions)
        if n == 0:
            return np.zeros((0, NUM_MESH_POINTS, 2), np.float32), np.zeros(0, np.float32)
        mesh, logits = self._mesh_pass(image, regions)
        out = np.empty((n, NUM_MESH_POINTS, 2), np.float32)
        out[:, :468] = mesh
        for (a, b), first in ((MESH_RIGHT_EYE_CORNERS, 468), (MESH_LEFT_EYE_CORNERS, 473)):
            out[:, first : first + 5] = ((mesh[:, a] + mesh[:, b]) * 0.5)[:, None]
        return (self._irises(image, out) if irises else out), logits

    def _irises(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        """(F, 478, 2) points with the iris model's lids and irises (in place) for each face's mesh."""
        eyes = [r for face in points for r in eye_regions(face)]  # right, left eye of each face
        contour, iris = self.runtime.iris(crop_eyes(image, eyes))  # (2F, 71, 3), (2F, 5, 3)
        contour, iris = contour[:, _LIDS, :2], iris[:, :, :2]
        contour[1::2, :, 0] = IRIS_INPUT - contour[1::2, :, 0]
        iris[1::2, :, 0] = IRIS_INPUT - iris[1::2, :, 0]
        for i in range(len(points)):
            r, le = eyes[2 * i], eyes[2 * i + 1]
            points[i, _RIGHT_LIDS] = to_source(contour[2 * i], r, IRIS_INPUT)
            points[i, _LEFT_LIDS] = to_source(contour[2 * i + 1], le, IRIS_INPUT)
            points[i, 468:473] = to_source(iris[2 * i], r, IRIS_INPUT)
            points[i, 473:478] = to_source(iris[2 * i + 1], le, IRIS_INPUT)
        return points

    def finish(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        """A face's points from ``finish=False`` with the iris model's lids and irises (a new array)."""
        out = np.array(points, np.float32)
        self._irises(image, out[None, :NUM_MESH_POINTS])  # a view: filled in place
        return out

    def _from_68(self, image: np.ndarray, faces68: list[np.ndarray], finish: bool = True) -> list[np.ndarray]:
        """Points for faces given by 68 points: the mesh from a first pass on their region and a second on the mesh's
        own (with ``dlib_68``, those 68 points after it)."""
        if not faces68:
            return []
        first, _ = self._mesh_pass(image, [face_region_68(p) for p in faces68])  # no irises: only its region counts
        second, _ = self.landmarks(image, [face_region(p) for p in first], irises=finish)
        return [self._with_68(m, p) for m, p in zip(second, faces68)]

    def detect(
        self, image: np.ndarray, min_faces: int = 1, lenient: bool = False, finish: bool = True
    ) -> list[np.ndarray]:
        # in the finder's order (largest first by its 68 points): the same face as dlib's for a face index
        return self._from_68(image, self._finder.detect(image, min_faces, lenient), finish)

    def refine(self, image: np.ndarray, previous: np.ndarray, finish: bool = True) -> np.ndarray | None:
        points, logits = self.landmarks(image, [face_region(previous)], irises=finish)
        new = points[0]
        if logits[0] <= 0.0 or not plausible_step(new[:468], previous[:468], image.shape):
            return None
        if not self.dlib_68:
            return new
        points68 = self._finder.refine(image, self.to_68(previous))
        return None if points68 is None else self._with_68(new, points68)

    def redetect(
        self, image: np.ndarray, previous: np.ndarray, finish: bool = True, tracked: np.ndarray | None = None
    ) -> np.ndarray | None:
        found = self._finder.redetect(image, self.to_68(previous))
        if found is None:
            return None
        if tracked is not None and agrees(found, self.to_68(tracked)):
            return tracked  # dlib's face is the tracked one: no new region to run the mesh on
        return self._from_68(image, [found], finish)[0]
