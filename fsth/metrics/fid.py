"""FID: the Frechet distance between Inception-feature Gaussians of generated and real frames (lower is better).

In: ``Frames`` records (their generated and real frames, uint8 RGB (N, H, W, 3); the real ones of records that
share their real side enter the real set once), or frames for either set (``add``); any number per call, and the
two sets need not pair up. Each frame goes through FID's Inception-v3 (``fsth.metrics.inception``) to a 2048-d
feature; the features of each set are summarised on the fly by ``FeatureStats`` (count, mean, centred scatter
matrix, merged batch by batch in float64 with Chan's parallel update), so thousands of frames never need to be
held at once. Out: one figure,

    FID = |mu_g - mu_r|^2 + tr(S_g) + tr(S_r) - 2 tr((S_g^1/2 S_r S_g^1/2)^1/2)

computed by ``frechet_distance`` from symmetric eigendecompositions in float64 (S_g = V diag(w) V^T, then the
eigenvalues of the symmetric diag(w)^1/2 V^T S_r V diag(w)^1/2 on the range of S_g): real-valued, and exact for
the singular covariances of fewer frames than feature dimensions, where a general matrix square root needs an
offset to converge (and with few frames the second eigenproblem is only frames x frames).

Small samples: FID is biased upward when computed from few frames, and with fewer than 2048 frames per set the
covariances are rank-deficient; values are comparable only between runs with the same frame counts. The
result carries a note when either set is that small. The paper's protocol scores thousands of frames.

Weights: see ``fsth.metrics.inception``. When they are absent (not in the hub cache, no download), the
metric still accepts frames and its result says FID was not computed and why; every other metric runs as usual.
"""

from __future__ import annotations

import os

import numpy as np
import torch

from fsth import console
from fsth.errors import MissingWeightsError
from fsth.metrics.inception import FID_FEATURES, load_fid_inception
from fsth.metrics.registry import Frames, Metric, register_metric
from fsth.models.images import as_image_batch, images_to_tensor


class FeatureStats:
    """Running count, mean (D,) and centred scatter matrix (D, D) of feature vectors, in float64."""

    def __init__(self, dim: int = FID_FEATURES):
        self.dim = dim
        self.frames = 0  # frames given to this set (FID counts them even when it has no network to embed them)
        self.count = 0  # feature vectors added
        self.mean = np.zeros(dim)
        self.scatter = np.zeros((dim, dim))  # sum of (f - mean)(f - mean)^T

    def add(self, features) -> None:
        """Add a batch (B, D) of feature vectors."""
        f = np.asarray(features, np.float64).reshape(-1, self.dim)
        if len(f):
            centred = f - f.mean(axis=0)
            self.merge_moments(len(f), f.mean(axis=0), centred.T @ centred)

    def merge_moments(self, n: int, mean: np.ndarray, scatter: np.ndarray) -> None:
        """Merge the moments of another set (Chan, Golub and LeVeque's pairwise update)."""
        total = self.count + n
        delta = mean - self.mean
        self.scatter += scatter + np.outer(delta, delta) * (self.count * n / total)
        self.mean = self.mean + delta * (n / total)
        self.count = total

    def merge(self, other: "FeatureStats") -> None:
        self.merge_moments(other.count, other.mean, other.scatter)
        self.frames += other.frames

    @property
    def cov(self) -> np.ndarray:
        """Sample covariance (n - 1); needs at least two vectors."""
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 feature vectors, not {self.count}")
        return self.scatter / (self.count - 1)


def _rounding_level(eigenvalues: np.ndarray) -> float:
    """Eigenvalues at or below this are zero up to rounding (numpy's matrix_rank tolerance); their square roots
    (~1e-8 relative each) would otherwise add noise to FID."""
    return max(eigenvalues.max(), 0.0) * len(eigenvalues) * np.finfo(np.float64).eps


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """Squared Frechet (2-Wasserstein) distance between N(mu1, sigma1) and N(mu2, sigma2); see the docstring.

    tr((S1^1/2 S2 S1^1/2)^1/2) from S1 = V diag(w) V^T: S1^1/2 S2 S1^1/2 is similar to
    diag(w)^1/2 V^T S2 V diag(w)^1/2, which is zero outside the range of S1; so only its block on the r
    eigenvectors of S1 above rounding level (r <= frames - 1 for FID from few frames) is decomposed, and
    its eigenvalues at rounding level count as 0.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"mismatched shapes: mu {mu1.shape}, {mu2.shape}; sigma {sigma1.shape}, {sigma2.shape}")
    for a in (mu1, mu2, sigma1, sigma2):
        if not np.isfinite(a).all():
            raise ValueError("feature statistics contain NaN or inf")
    w, v = np.linalg.eigh((sigma1 + sigma1.T) / 2)
    keep = w > _rounding_level(w)  # the numerical range of sigma1
    tr_covmean = 0.0
    if keep.any():
        root_w, v = np.sqrt(w[keep]), v[:, keep]
        middle = (v.T @ sigma2 @ v) * root_w[:, None] * root_w[None, :]  # (r, r), symmetric PSD
        lam = np.linalg.eigvalsh((middle + middle.T) / 2)
        tr_covmean = np.sqrt(lam[lam > _rounding_level(lam)]).sum()
    diff = mu1 - mu2
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean
    return float(max(value, 0.0))  # >= 0 in exact arithmetic; rounding can leave -1e-12


@register_metric
class FID(Metric):
    """Frechet Inception distance between all generated and all real frames given."""

    name = "fid"
    kind = "set"
    higher_is_better = False
    shared = ("device",)

    @classmethod
    def shared_options(cls, options: dict, device=None) -> dict:
        """One Inception network (or one warning that it is missing) and one real set for all the settings."""
        return {"share": cls(device=device, **options)}

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        *,
        download: bool = True,
        device=None,
        batch_size: int = 32,
        real_stats: FeatureStats | None = None,  # another FID's ``real``: the same real frames, scored once
        share: "FID | None" = None,  # another setting's FID: its network (or why there is none) and its real set
    ):
        from fsth.device import get_device

        self.batch_size = batch_size
        if share is not None:  # one network load (or one warning) for all the settings of a protocol
            self.device, self.inception, self.reason = share.device, share.inception, share.reason
            self.network, self.weights = share.network, share.weights
            real_stats = share.real
        else:
            self.device = get_device() if device is None else torch.device(device)
            self.reason = None
            try:
                self.inception = load_fid_inception(weights, download=download, device=self.device)
                self.network, self.weights = "inception-v3-fid", str(self.inception.weights_file)
            except MissingWeightsError as exc:
                self.inception = None
                self.network = "inception-v3-fid"
                self.reason = f"FID not computed: {exc}"
                console.warn(self.reason)
        self.generated = FeatureStats()
        self.real = real_stats if real_stats is not None else FeatureStats()
        self._last = None  # (frame counts, result): result() is not recomputed while the sets are unchanged

    def features(self, images) -> np.ndarray:
        """(N, 2048) FID features of uint8 RGB images (N, H, W, 3), in batches of ``batch_size``."""
        x_all = images_to_tensor(images)  # (N, 3, H, W) in [-1, 1], on the CPU
        out = []
        with torch.no_grad():
            for i in range(0, len(x_all), self.batch_size):
                out.append(self.inception(x_all[i : i + self.batch_size].to(self.device)).double().cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, FID_FEATURES))

    def add(self, generated=None, real=None) -> None:
        """Add generated and/or real frames to their sets."""
        for images, stats in ((generated, self.generated), (real, self.real)):
            if images is None or len(images) == 0:
                continue
            batch = as_image_batch(images)
            stats.frames += len(batch)
            if self.inception is not None:
                stats.add(self.features(batch))

    def _add_real(self, frames: Frames) -> None:
        """The record's real frames into the real set, once for all records that share their real side (and for
        all FIDs that share the real set: the settings of a protocol scored against the same targets)."""
        if frames.real is not None:
            frames.once(("fid", id(self.real)), lambda: self.add(real=frames.real))

    def prepare(self, frames: Frames) -> None:
        self._add_real(frames)

    def update(self, frames: Frames) -> None:
        """Add the record's generated frames, and its real ones (where given, once: ``_add_real``)."""
        self._add_real(frames)
        self.add(generated=frames.generated)

    @property
    def frames(self) -> dict[str, int]:
        """Frames given to each set, whether or not their features were computed."""
        return {"generated": self.generated.frames, "real": self.real.frames}

    def result(self):
        """The FID of the sets so far (O(2048^3): seconds on a CPU; kept until more frames come)."""
        key = (self.generated.count, self.real.count, self.generated.frames, self.real.frames)
        if self._last is None or self._last[0] != key:
            self._last = (key, self._compute())
        return self._last[1]

    def _compute(self):
        n_gen, n_real = self.generated.count, self.real.count
        details = {"generated_frames": self.frames["generated"], "real_frames": self.frames["real"]}
        if self.inception is None:
            return self._result(value=None, count=self.frames["generated"], reason=self.reason, details=details)
        if min(n_gen, n_real) < 2:
            reason = f"FID needs at least 2 frames per set (got {n_gen} generated, {n_real} real)"
            return self._result(value=None, count=n_gen, reason=reason, details=details)
        notes = []
        if min(n_gen, n_real) < FID_FEATURES:
            notes.append(
                f"FID from {n_gen} generated and {n_real} real frames: with fewer than {FID_FEATURES} frames per set "
                "it is biased upward (rank-deficient covariances); compare only values from equal frame counts"
            )
        value = frechet_distance(self.generated.mean, self.generated.cov, self.real.mean, self.real.cov)
        return self._result(value=value, count=n_gen, notes=notes, details=details)
