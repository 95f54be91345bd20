"""AKD, the average keypoint distance: does the generated face move like the target?

In: a ``Frames`` record. Generated frames (uint8 RGB crops) are resized to 256x256 (``at_akd_size``) and their
landmarks detected there (``fsth.landmarks.make_detector``: dlib by default, FAN for the paper's detector), the
largest face of each frame. The target: the landmarks detected the same way on the real frames (self-
reenactment; once for all records sharing their real side), or, without real frames, the landmarks the
generated frames were drawn from (cross-reenactment: the retargeted driver's), scaled to 256x256. Out per pair:
the mean over the 68 points of the Euclidean distance between the two sets, in pixels of the 256x256 image, or
None when a face or its landmarks are missing on either side. The result's ``value`` is the mean over scored
pairs; failures on either side are left out of it and counted (``failed``, ``failure_rate``; ``details`` splits
them into generated-side and real-side failures). Lower is better.
"""

from __future__ import annotations

import numpy as np

from fsth.landmarks.parts import LEFT_EYE, RIGHT_EYE
from fsth.metrics.registry import Frames, PairMetric, register_metric
from fsth.models.images import as_image_batch

AKD_SIZE = 256  # the resolution distances are measured at


def at_akd_size(images: np.ndarray, size: int = AKD_SIZE) -> np.ndarray:
    """Frames (N, H, W, 3) at size x size (AKD's 256x256): landmarks are detected at one resolution, whatever the
    model's (bicubic to enlarge, area averaging to shrink)."""
    import cv2

    images = as_image_batch(images)
    if images.shape[1:3] == (size, size):
        return images
    interpolation = cv2.INTER_CUBIC if max(images.shape[1:3]) < size else cv2.INTER_AREA
    return np.stack([cv2.resize(np.ascontiguousarray(im), (size, size), interpolation=interpolation) for im in images])


def detect_landmarks(detector, image: np.ndarray) -> np.ndarray | None:
    """(68, 2) landmarks of the largest face in ``image``, or None when there is none; a detector with more points
    (the face mesh, ``mesh+dlib``: what ``fsth evaluate`` shares with its metrics for the shipped model) gives its
    iBUG 68 (``to_68``)."""
    faces = detector.detect(np.ascontiguousarray(image))
    return detector.to_68(faces[0]) if faces else None


def mouth_opening(points: np.ndarray) -> np.ndarray:
    """How open the mouth is, free of position and scale: the mean gap between the inner lips (points 61-63
    against 67-65) over the distance between the eyes' centres. points (..., 68, 2) -> (...)."""
    p = np.asarray(points, np.float64)
    gap = np.linalg.norm(p[..., [61, 62, 63], :] - p[..., [67, 66, 65], :], axis=-1).mean(-1)
    eyes = np.linalg.norm(p[..., RIGHT_EYE, :].mean(-2) - p[..., LEFT_EYE, :].mean(-2), axis=-1)
    return gap / np.maximum(eyes, 1e-6)


def keypoint_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean Euclidean distance between corresponding points of two (K, 2) arrays."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape or a.ndim != 2 or a.shape[1] != 2:
        raise ValueError(f"expected two (K, 2) point sets of one shape, got {a.shape} and {b.shape}")
    return float(np.linalg.norm(a - b, axis=1).mean())


def landmarks_list(landmarks, n: int) -> list:
    """None, an (N, 68, 2) array or a list of N (68, 2) arrays / None -> a list of N entries."""
    if landmarks is None:
        return [None] * n
    if isinstance(landmarks, np.ndarray) and landmarks.ndim == 2:
        landmarks = [landmarks]
    landmarks = list(landmarks)
    if len(landmarks) != n:
        raise ValueError(f"{len(landmarks)} landmark sets given for {n} images")
    return landmarks


@register_metric
class AKD(PairMetric):
    """Average keypoint distance (px at 256x256) between generated and target frames, with the failure rate."""

    name = "akd"
    unit = "px"
    higher_is_better = False
    shared = ("detector",)
    needs = (("real", "landmarks"),)  # the motion to compare with: real frames, or what the generator was given

    def __init__(self, detector=None, size: int = AKD_SIZE):
        super().__init__()
        if detector is None:
            from fsth.landmarks import make_detector

            detector = make_detector("dlib")
        self.detector = detector
        self.network = f"{detector.name} landmarks"
        self.size = size
        self.generated_failures = 0
        self.real_failures = 0

    def _detect(self, images) -> list[np.ndarray | None]:
        """Landmarks of each frame at size x size (None where no face was found)."""
        return [detect_landmarks(self.detector, im) for im in at_akd_size(images, self.size)]

    def _real_landmarks(self, frames: Frames) -> list[np.ndarray | None]:
        real = frames.real
        return frames.once(("akd", id(self.detector), self.size), lambda: self._detect(real))

    def prepare(self, frames: Frames) -> None:
        if frames.real is not None:
            self._real_landmarks(frames)

    def score(self, frames: Frames) -> list[float | None]:
        generated = as_image_batch(frames.generated)
        if frames.real is not None:
            if len(as_image_batch(frames.real)) != len(generated):
                raise ValueError(f"{len(generated)} generated frames but {len(frames.real)} real ones")
            targets = self._real_landmarks(frames)
        else:  # the landmarks the generator was given, from its frames' pixels to size x size
            h, w = generated.shape[1:3]
            scale = (self.size / w, self.size / h)
            given = landmarks_list(frames.landmarks, len(generated))
            targets = [None if p is None else np.asarray(p, np.float64) * scale for p in given]
        values = []
        for p_gen, p_tgt in zip(self._detect(generated), targets):
            self.generated_failures += p_gen is None
            self.real_failures += p_tgt is None
            values.append(None if p_gen is None or p_tgt is None else keypoint_distance(p_gen, p_tgt))
        return values

    def details(self) -> dict:
        return {
            "detector": self.detector.name,
            "size": self.size,
            "generated_failures": self.generated_failures,
            "real_failures": self.real_failures,
        }
