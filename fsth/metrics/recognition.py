"""Face-recognition networks behind one interface (``FaceEmbedder``: faces located by 68 landmarks -> unit identity
embeddings), and dlib's (``DlibFaceEmbedder``, offline) with its face distance. ArcFace's is in
``fsth.metrics.arcface``; CSIM (``fsth.metrics.identity``) picks one by name."""

from __future__ import annotations

import functools
import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from fsth.errors import MissingWeightsError

DLIB_RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"


class FaceEmbedder(ABC):
    """A face-recognition network: faces located by 68 landmarks -> unit identity embeddings."""

    name: str  # "dlib-resnet-128", "arcface-iresnet100" ...
    weights: Path  # the file its weights came from
    dim: int  # embedding size

    @abstractmethod
    def embed(self, images: list[np.ndarray], landmarks: list[np.ndarray]) -> np.ndarray:
        """(H, W, 3) uint8 RGB images and their (68, 2) landmarks -> (N, dim) float64 rows of unit length."""


@functools.lru_cache(maxsize=2)
def _dlib_recognizer(path: str):
    import dlib

    return dlib.face_recognition_model_v1(path)  # ~0.1 s, 22 MB: once per process


def _full_object_detection(points: np.ndarray):
    """dlib's face description (box + 68 parts) from our (68, 2) landmarks in pixels."""
    import dlib

    p = np.rint(np.asarray(points, np.float64)).astype(int)
    (x0, y0), (x1, y1) = p.min(axis=0), p.max(axis=0)
    parts = dlib.points([dlib.point(int(x), int(y)) for x, y in p])
    return dlib.full_object_detection(dlib.rectangle(int(x0), int(y0), int(x1), int(y1)), parts)


class DlibFaceEmbedder(FaceEmbedder):
    """dlib's 128-d face-recognition ResNet, run on a chip aligned from the 68 landmarks (CPU)."""

    name = "dlib-resnet-128"
    dim = 128

    def __init__(self, weights: str | os.PathLike | None = None):
        if weights is None:
            from fsth.landmarks.detectors import dlib_models_dir

            weights = dlib_models_dir() / DLIB_RECOGNITION_FILE
        self.weights = Path(weights)
        if not self.weights.is_file():
            raise MissingWeightsError(
                f"dlib's face-recognition network {self.weights} is missing: it comes with the "
                f"face-recognition-models package (pip install face-recognition-models)"
            )
        self._model = _dlib_recognizer(str(self.weights))

    def descriptors(self, images, landmarks) -> np.ndarray:
        """dlib's raw 128-d descriptors (N, 128): their Euclidean distance is dlib's face distance (same person
        below 0.6, dlib's threshold)."""
        rows = [
            np.asarray(
                self._model.compute_face_descriptor(np.ascontiguousarray(image), _full_object_detection(points)),
                np.float64,
            )
            for image, points in zip(images, landmarks)
        ]
        return np.stack(rows) if rows else np.zeros((0, self.dim))

    def embed(self, images, landmarks) -> np.ndarray:
        d = self.descriptors(images, landmarks)
        return d / np.linalg.norm(d, axis=1, keepdims=True) if len(d) else d


SAME_PERSON_DISTANCE = 0.6  # dlib's threshold on the Euclidean distance of its raw descriptors


def face_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """dlib's face distance between raw descriptors (..., 128) (``DlibFaceEmbedder.descriptors``)."""
    return np.linalg.norm(np.asarray(a, np.float64) - np.asarray(b, np.float64), axis=-1)
