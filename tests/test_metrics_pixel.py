"""SSIM, PSNR and mean L1 on real face crops: known values, the expected direction, the reference SSIM."""

import math

import cv2
import numpy as np
import pytest
from conftest import PORTRAIT

from fsth.metrics import Frames, make_metric, mean_l1, psnr, ssim
from fsth.video import read_image


@pytest.fixture(scope="module")
def crop() -> np.ndarray:
    """portrait.jpg as a 252x252 face crop (252 x 252 x 3 values: a multiple of 7 and of 9)."""
    return cv2.resize(read_image(PORTRAIT), (252, 252), interpolation=cv2.INTER_AREA)


def uniform_noise(shape, k: int, seed: int = 0) -> np.ndarray:
    """Integer noise with each of -k..k exactly equally often: MSE k(k+1)/3, mean |n| k(k+1)/(2k+1)."""
    n = np.prod(shape)
    assert n % (2 * k + 1) == 0
    values = np.repeat(np.arange(-k, k + 1), n // (2 * k + 1))
    return np.random.default_rng(seed).permutation(values).reshape(shape)


def test_an_image_against_itself():
    image = read_image(PORTRAIT)
    assert ssim(image, image) == pytest.approx(1.0, abs=1e-12)
    assert ssim(image, image, channels="luma") == pytest.approx(1.0, abs=1e-12)
    assert psnr(image, image) == math.inf
    assert mean_l1(image, image) == 0.0


@pytest.mark.parametrize("k", [3, 4])
def test_psnr_and_l1_of_known_uniform_noise(crop, k):
    base = np.clip(crop, k, 255 - k).astype(np.int64)  # no clipping once the noise is added
    noisy = (base + uniform_noise(crop.shape, k)).astype(np.uint8)
    base = base.astype(np.uint8)
    mse = k * (k + 1) / 3
    assert psnr(noisy, base) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-9)  # k=3: 42.11 dB
    assert mean_l1(noisy, base) == pytest.approx(k * (k + 1) / (2 * k + 1) / 255, abs=1e-12)
    # the same images in [0, 1] floats give the same figures
    assert psnr(noisy / 255.0, base / 255.0) == pytest.approx(psnr(noisy, base), abs=1e-9)


def test_ssim_matches_the_reference_implementation(crop):
    from skimage import metrics as skimage_metrics  # the library fsth's ssim calls, asked directly

    blurred = cv2.GaussianBlur(crop, (0, 0), 2)
    reference = skimage_metrics.structural_similarity(
        crop, blurred, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert ssim(crop, blurred) == pytest.approx(reference, abs=1e-10)
    luma = np.array([0.299, 0.587, 0.114])
    reference_y = skimage_metrics.structural_similarity(
        crop @ luma, blurred @ luma, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert ssim(crop, blurred, channels="luma") == pytest.approx(reference_y, abs=1e-10)


def test_more_damage_scores_worse(crop):
    def jpeg(q):
        ok, buf = cv2.imencode(".jpg", crop, [cv2.IMWRITE_JPEG_QUALITY, q])
        return cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)

    blur = [cv2.GaussianBlur(crop, (0, 0), sigma) for sigma in (1, 3)]
    batch = np.stack([jpeg(90), jpeg(30), jpeg(10), *blur])
    reals = np.stack([crop] * 5)
    s, p, l1 = ssim(batch, reals), psnr(batch, reals), mean_l1(batch, reals)
    assert s.shape == p.shape == l1.shape == (5,)
    for values in (s[:3], p[:3], s[3:], p[3:]):  # JPEG quality 90 > 30 > 10; blur sigma 1 > 3
        assert np.all(np.diff(values) < 0)
    assert np.all(np.diff(l1[:3]) > 0) and l1[3] < l1[4]
    assert 0.9 < s[0] < 1 and s[4] < 0.85


def test_metric_objects_accumulate_pairs(crop):
    m = make_metric("psnr")
    noisy = np.clip(crop.astype(int) + 2, 0, 255).astype(np.uint8)
    assert m.update(Frames(np.stack([crop, noisy]), np.stack([crop, crop]))) == [
        math.inf,
        pytest.approx(psnr(noisy, crop)),
    ]
    result = m.result()
    assert (result.metric, result.unit, result.count, result.failed, result.value) == ("psnr", "dB", 2, 0, math.inf)
    assert result.to_dict()["value"] == "inf"
    s = make_metric("ssim", channels="luma")
    s.update(Frames(crop, noisy))
    assert s.result().details["channels"] == "luma" and s.result().higher_is_better
    assert not make_metric("l1").higher_is_better


def test_bad_arguments_are_named(crop):
    with pytest.raises(ValueError, match="differ in shape"):
        ssim(crop, crop[:100])
    with pytest.raises(ValueError, match="taken to be in \\[0, 1\\]"):
        psnr(crop.astype(np.float32), crop.astype(np.float32))
    assert psnr(crop.astype(np.float32), crop.astype(np.float32) + 1, data_range=255) == pytest.approx(48.13, abs=0.01)
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(crop[:8, :8], crop[:8, :8])
    with pytest.raises(ValueError, match="channels must be"):
        ssim(crop, crop, channels="hsv")
