"""Landmark detector backends behind one small interface: ``mesh`` and ``dlib`` (offline), ``fan`` (the paper's FAN).

``make_detector(backend="auto"|"mesh"|"dlib"|"fan", fan_weights=None)`` (``fsth.landmarks.backends``) returns a
``LandmarkDetector``. Its points
per face are ``num_points`` x 2: 68 (iBUG) for dlib and FAN, 478 for the mesh; ``to_68(points)`` gives the iBUG 68
of any of them (the identity for dlib and FAN, ``parts.MESH_TO_68`` for the mesh) and ``to_mesh(points)`` the
(478, 2) mesh (None for dlib and FAN). Below, "points" are those:

* ``detect(image, min_faces=1, lenient=False) -> list[(num_points, 2) float32]``: every face in the (H, W, 3) uint8
  RGB image, largest first (by the area of the landmarks' bounding box), in source pixels. Searches coarse to
  fine (a downscaled frame first, then full size, then 2x for small faces) and stops at the first scale that
  finds at least ``min_faces`` faces. ``lenient`` accepts less certain faces (for a photo that should show one).
* ``refine(image, previous) -> points | None``: the landmarks of the face whose previous-frame landmarks are
  ``previous``, from a box derived from them (no face search: this is what makes tracking cheap). None when
  the result is implausible (the face left the frame, its size jumped, FAN is not confident).
* ``redetect(image, previous) -> points | None``: a fresh face search in the neighbourhood of ``previous``;
  None if no face is found there. The tracker calls it at a fixed interval to confirm the track.
* ``finish=False`` (any of the three) and ``finish(image, points)``: the points in two stages, the second being the
  detector's last refinement (the mesh's iris model: its lids and irises; nothing for dlib and FAN). The tracker
  follows the face with the first stage and finishes each frame's points on another thread, overlapping the next
  frame's first stage (``fsth.landmarks.tracker.track_video``).

Backends
    mesh  MediaPipe's face mesh (468 points) and iris model (5 points per eye), run by LiteRT on a CPU or by their
          torch port, on faces found by dlib's detector (``fsth.landmarks.mesh``). Weights ship with fsth.
    dlib  dlib's HOG face detector + the iBUG 68-point shape predictor shipped by face-recognition-models.
          Always available (no download).
    fan   face-alignment's 2D FAN (the landmark network the paper used) on boxes from its S3FD face detector.
          Weights come from ``--fan-weights PATH`` (the FAN file, or a directory holding it and S3FD's), from
          the torch hub cache (``$TORCH_HOME/hub/checkpoints``) or, when neither has them, from a first-use
          download into that cache. Without S3FD weights, faces are found with dlib's detector instead.
    auto  ``mesh`` (its weights ship; ``dlib`` if they are missing from the installation); says which on stderr.
"""

from __future__ import annotations

import functools
import importlib.util
import math
import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from fsth import console
from fsth.errors import InputError, MissingWeightsError
from fsth.hub import download_file, hub_checkpoint_dir
from fsth.landmarks.crop import CropPolicy

# face-alignment 1.5's weight files (its models_urls); tests check these against the installed package.
FAN_URL = "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar"
SFD_URL = "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth"


class LandmarkDetector(ABC):
    """Finds faces and their 68 landmarks in RGB uint8 images; see the module docstring."""

    name: str
    num_points = 68  # points per face that detect / refine / redetect return

    def to_68(self, points: np.ndarray) -> np.ndarray:
        """(..., num_points, 2) points of this detector -> (..., 68, 2) iBUG points (identity for 68-point ones)."""
        return points

    def to_mesh(self, points: np.ndarray) -> np.ndarray | None:
        """(..., num_points, 2) points -> (..., 478, 2) face mesh, or None for a detector without one."""
        return None

    def smoothing_weights(self) -> np.ndarray | None:
        """(num_points,) factors on the tracker's smoothing strength per point (``fsth.landmarks.smoothing``), or
        None: all alike."""
        return None

    @abstractmethod
    def detect(
        self, image: np.ndarray, min_faces: int = 1, lenient: bool = False, finish: bool = True
    ) -> list[np.ndarray]: ...

    @abstractmethod
    def refine(self, image: np.ndarray, previous: np.ndarray, finish: bool = True) -> np.ndarray | None: ...

    @abstractmethod
    def redetect(
        self, image: np.ndarray, previous: np.ndarray, finish: bool = True, tracked: np.ndarray | None = None
    ) -> np.ndarray | None:
        """The face near ``previous`` found afresh, as the tracker's periodic check. ``tracked``: the points
        ``refine`` found from ``previous`` in this image, when at hand; a detector whose new face costs more than
        finding it (the mesh's two passes on a new region) returns ``tracked`` itself where the face it finds
        agrees with it (``agrees``), as the tracker would keep the track then."""

    def finish(self, image: np.ndarray, points: np.ndarray) -> np.ndarray:
        """A face's points from ``finish=False`` with the detector's last refinement (the identity by default)."""
        return points


# ---------------------------------------------------------------------------------------------- helpers


def landmark_extent(points: np.ndarray) -> float:
    """sqrt(width x height) of the landmarks' bounding box: the face size used for tracking (px)."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    return float(math.sqrt(max(hi[0] - lo[0], 1.0) * max(hi[1] - lo[1], 1.0)))


def _largest_first(faces: list[np.ndarray]) -> list[np.ndarray]:
    """Faces ordered by the area of their landmarks' bounding box, largest first."""
    return sorted(faces, key=landmark_extent, reverse=True)


def points_box(points: np.ndarray) -> np.ndarray:
    """[x0, y0, x1, y1]: the bounding box of points (N, 2)."""
    return np.concatenate([points.min(axis=0), points.max(axis=0)])


AGREE_IOU = 0.5  # a face found afresh is the tracked one where their points' boxes overlap by this much


def agrees(found: np.ndarray, tracked: np.ndarray) -> bool:
    """Whether a face found afresh (points (N, 2)) is the tracked face (points (M, 2)): their boxes' IoU."""
    return box_iou(points_box(found), points_box(tracked)) >= AGREE_IOU


def box_iou(a, b) -> float:
    """Intersection over union of two [x0, y0, x1, y1] boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def plausible_step(new: np.ndarray, previous: np.ndarray, image_shape) -> bool:
    """Is ``new`` a believable next position of the face at ``previous``? (finite, in frame, no size jump)"""
    if not np.isfinite(new).all():
        return False
    h, w = image_shape[:2]
    center = new.mean(axis=0)
    if not (0 <= center[0] < w and 0 <= center[1] < h):
        return False
    ratio = landmark_extent(new) / landmark_extent(previous)
    return 0.7 < ratio < 1.4


# ---------------------------------------------------------------------------------------------- dlib


def dlib_models_dir() -> Path:
    """The ``models/`` folder of face-recognition-models, found without importing it (it needs pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(
            "the dlib backend needs the face-recognition-models package: pip install face-recognition-models"
        )
    return Path(list(spec.submodule_search_locations)[0]) / "models"


@functools.lru_cache(maxsize=1)
def _dlib_models():
    """dlib's HOG face detector and 68-point shape predictor, loaded once per process (~0.3 s, 95 MB)."""
    import dlib

    path = dlib_models_dir() / "shape_predictor_68_face_landmarks.dat"
    if not path.is_file():
        raise MissingWeightsError(f"dlib's 68-point shape predictor is missing: {path}")
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(path))


class DlibDetector(LandmarkDetector):
    """dlib's HOG face detector + 68-point shape predictor (offline; ~1 ms per tracked frame)."""

    name = "dlib"

    # A detector box relates to the landmarks it produces as: centre = landmark mean - 0.049 E (up),
    # side = 1.05 E, E = sqrt(w x h) of their bounding box (fitted on 384 faces of the shared media videos).
    # refine() builds its box this way, so tracking sees the boxes the predictor was trained on.
    _BOX_SIDE = 1.05
    _BOX_UP = 0.049

    def __init__(self, search_size: int = 320, redetect_face_px: int = 90):
        import dlib

        self._dlib = dlib
        self._hog, self._predictor = _dlib_models()
        self.search_size = search_size  # longest side of the first, coarse detection pass
        self.redetect_face_px = redetect_face_px  # face size the local re-detection works at (HOG window: 80)

    def _predict(self, image: np.ndarray, box) -> np.ndarray:
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        shape = self._predictor(image, self._dlib.rectangle(x0, y0, x1, y1))
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def _hog_boxes(self, image: np.ndarray, scale: float, threshold: float = 0.0) -> list[np.ndarray]:
        """Face boxes found by HOG on ``image`` resized by ``scale``, in ``image`` pixels."""
        import cv2

        if scale == 1.0:
            work = image
        else:
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            work = cv2.resize(image, None, fx=scale, fy=scale, interpolation=interp)
        rects, _, _ = self._hog.run(work, 0, threshold)
        return [np.array([r.left(), r.top(), r.right() + 1, r.bottom() + 1], np.float64) / scale for r in rects]

    def _search_scales(self, image: np.ndarray) -> list[float]:
        longest = max(image.shape[:2])
        scales = [self.search_size / longest] if longest > self.search_size * 1.25 else []
        scales.append(1.0)
        if longest <= 1000:
            scales.append(2.0)  # faces under ~80 px need an upsampled search
        return scales

    # HOG score threshold of a lenient search: finds frontal faces the default (0) misses, such as a pout behind
    # glasses (liveportrait_d8.jpg scores -0.36), while background stays below it in the shared photos.
    LENIENT_THRESHOLD = -0.4

    def detect(
        self, image: np.ndarray, min_faces: int = 1, lenient: bool = False, finish: bool = True
    ) -> list[np.ndarray]:
        boxes: list[np.ndarray] = []
        threshold = self.LENIENT_THRESHOLD if lenient else 0.0
        for scale in self._search_scales(image):
            boxes = self._hog_boxes(image, scale, threshold)
            if len(boxes) >= min_faces:
                break
        return _largest_first([self._predict(image, b) for b in boxes])

    def _box_from(self, points: np.ndarray) -> np.ndarray:
        e = landmark_extent(points)
        cx, cy = points.mean(axis=0)
        cy -= self._BOX_UP * e
        half = 0.5 * self._BOX_SIDE * e
        return np.array([cx - half, cy - half, cx + half, cy + half])

    def refine(self, image: np.ndarray, previous: np.ndarray, finish: bool = True) -> np.ndarray | None:
        new = self._predict(image, self._box_from(previous))
        return new if plausible_step(new, previous, image.shape) else None

    def redetect(
        self, image: np.ndarray, previous: np.ndarray, finish: bool = True, tracked: np.ndarray | None = None
    ) -> np.ndarray | None:
        # Search a region of twice the face box, resized so that the face is ~redetect_face_px wide.
        box = self._box_from(previous)
        side = box[2] - box[0]
        h, w = image.shape[:2]
        x0, y0 = max(int(box[0] - side / 2), 0), max(int(box[1] - side / 2), 0)
        x1, y1 = min(int(box[2] + side / 2), w), min(int(box[3] + side / 2), h)
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        scale = self.redetect_face_px / side
        found = self._hog_boxes(image[y0:y1, x0:x1], scale, threshold=-0.3)
        best, best_iou = None, 0.2
        for b in found:
            b = b + np.array([x0, y0, x0, y0])
            iou = box_iou(b, box)
            if iou > best_iou:
                best, best_iou = b, iou
        return None if best is None else self._predict(image, best)


# ---------------------------------------------------------------------------------------------- fan


def _url_name(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def find_fan_weights(fan_weights: str | os.PathLike | None = None) -> tuple[Path | None, Path | None]:
    """(FAN weights, S3FD weights) on disk, each None if not found. Never downloads.

    ``fan_weights`` is the FAN file itself, or a directory holding face-alignment's files; without it the torch
    hub cache is searched. S3FD is looked for beside the FAN file, then in the cache.
    """
    cache = hub_checkpoint_dir()
    fan = sfd = None
    if fan_weights is not None:
        p = Path(fan_weights).expanduser()
        if not p.exists():
            raise InputError(f"--fan-weights {p}: no such file or directory")
        if p.is_dir():
            fan = p / _url_name(FAN_URL)
            if not fan.is_file():
                found = sorted(p.glob("2DFAN4*.pth*"))
                fan = found[0] if found else None
            if fan is None:
                raise MissingWeightsError(f"--fan-weights {p}: no 2DFAN4 weights file ({_url_name(FAN_URL)}) there")
        else:
            fan = p
        for d in (fan.parent, cache):
            candidates = [d / _url_name(SFD_URL), *sorted(d.glob("s3fd*.pth"))]
            sfd = next((c for c in candidates if c.is_file()), None)
            if sfd is not None:
                break
    else:
        fan = cache / _url_name(FAN_URL)
        fan = fan if fan.is_file() else None
        sfd = cache / _url_name(SFD_URL)
        sfd = sfd if sfd.is_file() else None
    return fan, sfd


def download_weights(url: str) -> Path:
    """Download ``url`` into the torch hub cache (first use); ``MissingWeightsError`` if that fails."""
    dest = hub_checkpoint_dir() / _url_name(url)
    try:
        download_file(url, dest)
    except OSError as exc:  # no network, proxy, HTTP error: all mean "not available here"
        raise MissingWeightsError(
            f"the fan backend needs {dest.name}, which is not in {dest.parent} and could not be downloaded "
            f"from {url} ({exc}); download it on a machine with internet and pass "
            f"--fan-weights PATH (or copy it into {dest.parent}), or use --backend dlib"
        ) from None
    return dest


class FanDetector(LandmarkDetector):
    """face-alignment's 2D FAN on face boxes from S3FD (or dlib's HOG detector when S3FD is not available)."""

    name = "fan"
    _MIN_SCORE = 0.25  # mean heatmap peak below which FAN is taken to see no face (refine/redetect return None)

    def __init__(self, fan_path: Path, sfd_path: Path | None = None, device=None):
        import torch
        from face_alignment.models import FAN

        from fsth.device import get_device

        self._torch = torch
        self.device = get_device() if device is None else torch.device(device)
        try:
            state = torch.load(str(fan_path), map_location="cpu", weights_only=True)
            if isinstance(state, dict) and "state_dict" in state:
                state = state["state_dict"]
            net = FAN(4)
            net.load_state_dict(state)
        except Exception as exc:
            from fsth.hub import not_a_weights_file

            why = not_a_weights_file(fan_path)
            if why is not None:
                raise MissingWeightsError(f"{fan_path}: not usable 2DFAN4 weights: it {why}") from None
            raise MissingWeightsError(f"{fan_path}: not usable 2DFAN4 weights ({type(exc).__name__}: {exc})") from None
        self._net = net.to(self.device).eval()
        self._sfd = None
        self._hog: DlibDetector | None = None
        if sfd_path is not None:
            from face_alignment.detection.sfd.sfd_detector import SFDDetector

            try:
                self._sfd = SFDDetector(device=str(self.device), path_to_detector=str(sfd_path))
            except Exception as exc:
                from fsth.hub import not_a_weights_file

                why = not_a_weights_file(sfd_path)
                if why is not None:
                    raise MissingWeightsError(f"{sfd_path}: not usable S3FD weights: it {why}") from None
                raise MissingWeightsError(
                    f"{sfd_path}: not usable S3FD weights ({type(exc).__name__}: {exc})"
                ) from None
        else:
            console.log("fan: no S3FD face-detector weights on disk; finding faces with dlib's detector")
            self._hog = DlibDetector()

    # FAN's input convention (face-alignment): the box centre moved up by 12% of its height, a square region of
    # side 200 x scale with scale = (w + h) / 195, resampled to 256x256; the 64x64 heatmaps cover the same region.
    # Not face-alignment's FaceAlignment.get_landmarks_from_image(image, detected_faces=[box]): in 1.5 it returns
    # every point truncated to whole pixels (transform_np's astype(int32)), crops at whole-pixel corners with a
    # plain bilinear resize (no area averaging for large faces), and its constructor loads the weights from its own
    # URL cache (no --fan-weights file) and compiles the network. On the test photos its points differ from these
    # by a median 0.8 px; tracking and the crop's smoothing want the sub-pixel points.
    def _landmarks(self, image: np.ndarray, box) -> tuple[np.ndarray, float]:
        """FAN's 68 points (source pixels) for a face box, and their mean heatmap peak (confidence, 0-1)."""
        torch = self._torch
        x0, y0, x1, y1 = (float(v) for v in box)
        side = 200.0 * (x1 - x0 + y1 - y0) / 195.0
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - (y1 - y0) * 0.12
        region = np.array([cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2])
        patch = _FAN_CROP.crop(image, region, 256)  # (256, 256, 3) uint8, black outside the image
        x = torch.from_numpy(patch).permute(2, 0, 1)[None].float().div(255.0).to(self.device)
        with torch.no_grad():
            heat = self._net(x)
            if isinstance(heat, (list, tuple)):
                heat = heat[-1]
        heat = heat[0].float().cpu().numpy()  # (68, 64, 64)
        return _decode_heatmaps(heat, region), float(heat.reshape(68, -1).max(axis=1).mean())

    def _boxes(self, image: np.ndarray, min_faces: int, lenient: bool) -> list[np.ndarray]:
        if self._sfd is not None:
            found = self._sfd.detect_from_image(image.copy())
            return [np.asarray(b[:4], np.float64) for b in found]
        return [self._hog._box_from(p) for p in self._hog.detect(image, min_faces, lenient)]

    def detect(
        self, image: np.ndarray, min_faces: int = 1, lenient: bool = False, finish: bool = True
    ) -> list[np.ndarray]:
        boxes = self._boxes(image, min_faces, lenient)
        return _largest_first([self._landmarks(image, b)[0] for b in boxes])

    @staticmethod
    def _box_from(points: np.ndarray) -> np.ndarray:
        # S3FD boxes are close to the landmarks' bounding box.
        lo, hi = points.min(axis=0), points.max(axis=0)
        return np.concatenate([lo, hi]).astype(np.float64)

    def refine(self, image: np.ndarray, previous: np.ndarray, finish: bool = True) -> np.ndarray | None:
        new, score = self._landmarks(image, self._box_from(previous))
        if score < self._MIN_SCORE or not plausible_step(new, previous, image.shape):
            return None
        return new

    def redetect(
        self, image: np.ndarray, previous: np.ndarray, finish: bool = True, tracked: np.ndarray | None = None
    ) -> np.ndarray | None:
        # FAN's heatmap confidence already says whether a face is there; a new search would cost a full
        # S3FD pass on the CPU. So the periodic check is a confident refine: the tracked one, when given.
        return tracked if tracked is not None else self.refine(image, previous)


_FAN_CROP = CropPolicy(padding="constant")


def _decode_heatmaps(heat: np.ndarray, region: np.ndarray) -> np.ndarray:
    """(68, R, R) heatmaps over the square ``region`` [x0, y0, x1, y1] -> (68, 2) points in source pixels.

    Each point is its heatmap's peak cell, moved a quarter cell towards the larger neighbour (face-alignment's
    sub-cell refinement), the cell centre mapped onto the region.
    """
    n, res, _ = heat.shape
    flat = heat.reshape(n, -1).argmax(axis=1)
    jy, jx = np.divmod(flat, res)
    pts = np.stack([jx, jy], axis=1).astype(np.float64)
    inner = (jx > 0) & (jx < res - 1) & (jy > 0) & (jy < res - 1)
    k = np.nonzero(inner)[0]
    pts[k, 0] += 0.25 * np.sign(heat[k, jy[k], jx[k] + 1] - heat[k, jy[k], jx[k] - 1])
    pts[k, 1] += 0.25 * np.sign(heat[k, jy[k] + 1, jx[k]] - heat[k, jy[k] - 1, jx[k]])
    cell = (region[2] - region[0]) / res
    return (region[:2] + (pts + 0.5) * cell).astype(np.float32)
