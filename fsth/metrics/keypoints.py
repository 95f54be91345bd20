"""AKD, the average keypoint distance: does the generated face move like the target?

In: generated frames and their targets (uint8 RGB crops, (H, W, 3) or batches). Landmarks are detected on both
with the same detector (``fsth.landmarks.make_detector``: dlib by default, FAN for the paper's detector), the
largest face of each frame. Out per pair: the mean over the 68 points of the Euclidean distance between the
two sets, in pixels of a 256x256 image (each frame's coordinates scaled by 256 / its width and height), or
None when either frame has no detectable face. The result's ``value`` is the mean over scored pairs; failures
on either side are left out of it and counted (``failed``, ``failure_rate``; ``details`` splits them into
generated-side and real-side failures). Lower is better.
"""

from __future__ import annotations

import numpy as np

from fsth.landmarks.parts import LEFT_EYE, RIGHT_EYE
from fsth.metrics.registry import PairMetric, register_metric
from fsth.models.images import as_image_batch

AKD_SIZE = 256  # the resolution distances are measured at


def detect_landmarks(detector, image: np.ndarray) -> np.ndarray | None:
    """(68, 2) landmarks of the largest face in ``image``, or None when there is none."""
    faces = detector.detect(np.ascontiguousarray(image))
    return faces[0] if faces else None


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

    def _at_size(self, points: np.ndarray, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        return np.asarray(points, np.float64) * (self.size / w, self.size / h)

    def score(self, generated, real, real_landmarks=None) -> list[float | None]:
        """``real_landmarks``: the targets' landmarks from the same detector, where already known."""
        generated, real = as_image_batch(generated), as_image_batch(real)
        if len(generated) != len(real):
            raise ValueError(f"{len(generated)} generated frames but {len(real)} real ones")
        values = []
        for gen, tgt, known in zip(generated, real, landmarks_list(real_landmarks, len(real))):
            p_gen = detect_landmarks(self.detector, gen)
            p_tgt = known if known is not None else detect_landmarks(self.detector, tgt)
            self.generated_failures += p_gen is None
            self.real_failures += p_tgt is None
            if p_gen is None or p_tgt is None:
                values.append(None)
            else:
                values.append(keypoint_distance(self._at_size(p_gen, gen), self._at_size(p_tgt, tgt)))
        return values

    def details(self) -> dict:
        return {
            "detector": self.detector.name,
            "size": self.size,
            "generated_failures": self.generated_failures,
            "real_failures": self.real_failures,
        }
