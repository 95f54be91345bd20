"""Pixel metrics of a generated face crop against the real one (self-reenactment): SSIM, PSNR, mean L1.

In: two images of the same size, uint8 RGB (H, W, 3) in [0, 255], or float in [0, 1] (other ranges: pass
``data_range``); or batches (N, H, W, 3) / lists of them. Out: a float per pair (a float for one pair, an
array (N,) for a batch).

- ``ssim``: the SSIM of Wang, Bovik, Sheikh and Simoncelli (IEEE TIP 2004), computed by scikit-image's
  ``structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)``: an 11x11 Gaussian
  window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = the data range; local statistics over the window positions
  that lie inside the image (no padding), SSIM averaged over them. Colour: ``channels="rgb"`` (default)
  averages the SSIM of R, G and B computed separately (``channel_axis=-1``); ``channels="luma"`` computes it
  once on the BT.601 luma Y = 0.299 R + 0.587 G + 0.114 B, as the paper's grey-level definition does for colour
  images. (Wang's later ``ssim.m`` also downsamples images larger than 256 px by round(min(H, W) / 256); this
  does not: at the model's 256x256 the two agree.) Identical images give 1.
- ``psnr``: 10 log10(L^2 / MSE) in dB, the MSE over all pixels and channels (scikit-image's
  ``peak_signal_noise_ratio``); identical images give +inf (``MetricResult.to_dict`` writes it as "inf").
- ``mean_l1``: mean absolute difference over all pixels and channels, as a fraction of the data range
  (0 = identical, 1 = black against white).
"""

from __future__ import annotations

import numpy as np
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from fsth.metrics.registry import Frames, PairMetric, register_metric
from fsth.models.images import as_image_batch

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5  # scikit-image makes the window 2 * int(3.5 * sigma + 0.5) + 1 = 11 wide
SSIM_K1, SSIM_K2 = 0.01, 0.03
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601


def _pair_batches(a, b, data_range: float | None) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """Two image arguments -> two float64 (N, H, W, 3) arrays, their data range, and whether one pair was given."""
    single = np.ndim(a) == 3 and np.ndim(b) == 3
    a, b = as_image_batch(a, allow_float=True), as_image_batch(b, allow_float=True)
    if a.shape != b.shape:
        raise ValueError(f"images to compare differ in shape: {a.shape} and {b.shape}")
    if data_range is None:
        if a.dtype != b.dtype:
            raise ValueError(f"images to compare differ in type ({a.dtype}, {b.dtype}): pass data_range")
        data_range = 255.0 if a.dtype == np.uint8 else 1.0
        if a.dtype != np.uint8 and max(np.abs(a).max(), np.abs(b).max()) > 1.0 + 1e-6:
            raise ValueError("float images are taken to be in [0, 1]; pass data_range for another range")
    return a.astype(np.float64), b.astype(np.float64), float(data_range), single


def _out(values: np.ndarray, single: bool):
    return float(values[0]) if single else values


def ssim(a, b, *, data_range: float | None = None, channels: str = "rgb"):
    """SSIM of ``a`` against ``b`` (see the module docstring): a float for one pair, (N,) for batches."""
    if channels not in ("rgb", "luma"):
        raise ValueError(f"channels must be 'rgb' or 'luma', not {channels!r}")
    a, b, data_range, single = _pair_batches(a, b, data_range)
    if min(a.shape[1:3]) < SSIM_WINDOW:
        raise ValueError(f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got {a.shape[1:3]}")
    if channels == "luma":
        a, b = a @ np.array(LUMA_WEIGHTS), b @ np.array(LUMA_WEIGHTS)  # (N, H, W)
    channel_axis = -1 if channels == "rgb" else None
    values = [
        structural_similarity(
            x,
            y,
            data_range=data_range,
            channel_axis=channel_axis,
            gaussian_weights=True,
            sigma=SSIM_SIGMA,
            use_sample_covariance=False,
            K1=SSIM_K1,
            K2=SSIM_K2,
        )
        for x, y in zip(a, b)
    ]
    return _out(np.array(values, np.float64), single)


def psnr(a, b, *, data_range: float | None = None):
    """PSNR in dB of ``a`` against ``b``; +inf for identical images. A float for one pair, (N,) for batches."""
    a, b, data_range, single = _pair_batches(a, b, data_range)
    with np.errstate(divide="ignore"):  # identical images: MSE 0, +inf dB
        values = [peak_signal_noise_ratio(y, x, data_range=data_range) for x, y in zip(a, b)]
    return _out(np.array(values, np.float64), single)


def mean_l1(a, b, *, data_range: float | None = None):
    """Mean |a - b| as a fraction of the data range. A float for one pair, (N,) for batches."""
    a, b, data_range, single = _pair_batches(a, b, data_range)
    return _out(np.abs(a - b).mean(axis=(1, 2, 3)) / data_range, single)


# -- as metrics ----------------------------------------------------------------------------------------


class _PixelMetric(PairMetric):
    def __init__(self, data_range: float | None = None):
        super().__init__()
        self.data_range = data_range  # None: 255 for uint8 images, 1 for float ones

    def compute(self, generated, real):
        raise NotImplementedError

    def score(self, frames: Frames) -> list[float | None]:
        return [float(v) for v in np.atleast_1d(self.compute(frames.generated, frames.real))]


@register_metric
class SSIM(_PixelMetric):
    """Structural similarity of each generated crop with its real one (higher is better, 1 = identical)."""

    name = "ssim"

    def __init__(self, data_range: float | None = None, channels: str = "rgb"):
        super().__init__(data_range)
        self.channels = channels  # "rgb": mean of the three channels' SSIM; "luma": SSIM of BT.601 luma

    def compute(self, generated, real):
        return ssim(generated, real, data_range=self.data_range, channels=self.channels)

    def details(self) -> dict:
        return {"channels": self.channels, "window": SSIM_WINDOW, "sigma": SSIM_SIGMA}


@register_metric
class PSNR(_PixelMetric):
    """Peak signal-to-noise ratio in dB (higher is better; +inf for identical crops)."""

    name = "psnr"
    unit = "dB"

    def compute(self, generated, real):
        return psnr(generated, real, data_range=self.data_range)


@register_metric
class L1(_PixelMetric):
    """Mean absolute pixel difference as a fraction of the range (lower is better)."""

    name = "l1"
    higher_is_better = False

    def compute(self, generated, real):
        return mean_l1(generated, real, data_range=self.data_range)
