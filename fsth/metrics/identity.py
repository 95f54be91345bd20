"""CSIM: does the generated face look like the same person? Cosine similarity of face-recognition embeddings.

In: a ``Frames`` record: generated frames and the real frames (self-reenactment) or, without them, one identity
photo for all of them (cross-reenactment: the source's), uint8 RGB. Each face is located by its 68 landmarks,
given in the record (``landmarks``, ``real_landmarks``, ``identity_landmarks``) or detected (the largest face,
with the metric's landmark detector; dlib's by default), and embedded by a face-recognition network:

- ``dlib`` (default, offline): dlib's 128-d face-recognition ResNet (``dlib_face_recognition_resnet_model_v1.dat``,
  shipped by face-recognition-models). The face is given to it as a ``dlib.full_object_detection`` built from
  the 68 landmarks; dlib aligns its own 150x150 chip from them (padding 0.25). Network name "dlib-resnet-128".
- ``arcface``: an insightface ``arcface_torch`` iresnet (512-d) from a model file the user provides
  (``fsth.metrics.arcface``); the face is aligned to 112x112 by the standard 5-point similarity transform.
  Network name "arcface-iresnet50" / "arcface-iresnet100" / ... after the file's depth.

Out per pair: cos(e_generated, e_real) in [-1, 1] (1 = same direction), or None when no face was found on either
side (counted, never a crash). Values from different networks are not comparable: every result names its
network. With dlib's network, on 25 real faces of the shared test media, pairs of photos of one person scored
0.95-0.99 and pairs of different people 0.72-0.92 (mean 0.83).
"""

from __future__ import annotations

import os

import numpy as np

from fsth.errors import InputError
from fsth.metrics.arcface import load_arcface
from fsth.metrics.keypoints import detect_landmarks, landmarks_list
from fsth.metrics.recognition import DlibFaceEmbedder, FaceEmbedder
from fsth.metrics.registry import Frames, PairMetric, register_metric
from fsth.models.images import as_image_batch

NETWORKS = ("dlib", "arcface")


def make_face_embedder(network: str = "dlib", weights: str | os.PathLike | None = None, device=None) -> FaceEmbedder:
    """The face-recognition network ``network`` ("dlib" | "arcface"); ArcFace needs ``weights``."""
    if network == "dlib":
        return DlibFaceEmbedder(weights)
    if network == "arcface":
        return load_arcface(weights, device=device)
    raise InputError(f"CSIM network must be one of {', '.join(NETWORKS)}, not {network!r}")


def cosine_similarity(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) arrays (or (D,) vectors, broadcast)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return (a * b).sum(axis=-1)


@register_metric
class CSIM(PairMetric):
    """Identity similarity of each generated face with the real (or source) face (higher is better)."""

    name = "csim"
    shared = ("detector", "device")
    needs = (("real", "identity"),)  # whom the generated face should be: the real frames, or one photo

    @classmethod
    def shared_options(cls, options: dict, device=None) -> dict:
        """One face-recognition network for all the settings."""
        return {"embedder": make_face_embedder(device=device, **options)}

    def __init__(
        self,
        network: str = "dlib",
        weights: str | os.PathLike | None = None,
        *,
        detector=None,
        device=None,
        embedder: FaceEmbedder | None = None,
    ):
        super().__init__()
        self.embedder = embedder or make_face_embedder(network, weights, device)
        self.network, self.weights = self.embedder.name, str(self.embedder.weights)
        self._detector = detector
        self.counts = {"generated_failures": 0, "real_failures": 0, "landmarks_given": 0, "landmarks_detected": 0}

    @property
    def detector(self):
        if self._detector is None:  # only needed when landmarks are not given
            from fsth.landmarks import make_detector

            self._detector = make_detector("dlib")
        return self._detector

    def _embed(self, images: np.ndarray, landmarks: list, side: str) -> list[np.ndarray | None]:
        """Embeddings of ``images`` (None where no face was found), locating faces where ``landmarks`` is None."""
        points = []
        for image, known in zip(images, landmarks):
            if known is None:
                known = detect_landmarks(self.detector, image)
                self.counts["landmarks_detected"] += known is not None
            else:
                self.counts["landmarks_given"] += 1
            self.counts[f"{side}_failures"] += known is None
            points.append(known)
        found = [i for i, p in enumerate(points) if p is not None]
        rows = self.embedder.embed([images[i] for i in found], [points[i] for i in found])
        out: list[np.ndarray | None] = [None] * len(images)
        for i, row in zip(found, rows):
            out[i] = row
        return out

    def score(self, frames: Frames) -> list[float | None]:
        """Each generated face against its real one or, without real frames, against the identity photo (embedded
        once for the batch); faces are located by the record's landmarks, detected where not given."""
        generated = as_image_batch(frames.generated)
        e_gen = self._embed(generated, landmarks_list(frames.landmarks, len(generated)), "generated")
        if frames.real is not None:
            real = as_image_batch(frames.real)
            if len(generated) != len(real):
                raise ValueError(f"{len(generated)} generated frames but {len(real)} real ones")
            e_real = self._embed(real, landmarks_list(frames.real_landmarks, len(real)), "real")
        else:
            photo = as_image_batch(frames.identity)
            if len(photo) != 1:
                raise ValueError(f"the identity is one photo, not {len(photo)}")
            e_real = self._embed(photo, landmarks_list(frames.identity_landmarks, 1), "real") * len(generated)
        return [None if g is None or r is None else float(cosine_similarity(g, r)) for g, r in zip(e_gen, e_real)]

    def details(self) -> dict:
        detector = self._detector.name if self._detector is not None else None
        return {"embedding_dim": self.embedder.dim, "detector": detector, **self.counts}
