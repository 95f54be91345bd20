"""FID: the Frechet distance against closed forms, streaming statistics, FID's Inception in its file layout,
and a clear 'not computed' when its weights are absent while every other metric still runs."""

import dataclasses
import hashlib
import json

import numpy as np
import pytest
import torch
from conftest import PORTRAIT, serve_downloads

from fsth.errors import MissingWeightsError
from fsth.metrics import FID, FeatureStats, Frames, frechet_distance, inception, make_metrics
from fsth.metrics.inception import FIDInceptionV3, load_fid_inception
from fsth.video import read_image


def random_spd(d: int, rank: int | None = None, seed: int = 0) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(d, rank or d))
    return a @ a.T / d


# -- the Frechet distance ------------------------------------------------------------------------------


def test_identical_statistics_are_at_distance_zero():
    mu, sigma = np.random.default_rng(1).normal(size=64), random_spd(64)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)
    low_rank = random_spd(64, rank=10)  # 11 samples in 64 dimensions: singular, like FID from few frames
    assert frechet_distance(mu, low_rank, mu, low_rank) == pytest.approx(0.0, abs=1e-9)


def test_known_gaussians_match_the_closed_form():
    # 1-D: (m1 - m2)^2 + (s1 - s2)^2
    assert frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4 + 1)
    # diagonal covariances: |mu1 - mu2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2
    rng = np.random.default_rng(2)
    mu1, mu2, a, b = rng.normal(size=8), rng.normal(size=8), rng.uniform(0.1, 3, 8), rng.uniform(0.1, 3, 8)
    expected = ((mu1 - mu2) ** 2).sum() + ((np.sqrt(a) - np.sqrt(b)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)
    # covariances that do not commute: S2 = R S1 R^T with R a rotation -> tr((S1^1/2 S2 S1^1/2)^1/2) by hand
    s1 = np.diag([4.0, 1.0])
    c, s = np.cos(0.7), np.sin(0.7)
    r = np.array([[c, -s], [s, c]])
    s2 = r @ s1 @ r.T
    m = np.diag([2.0, 1.0]) @ s2 @ np.diag([2.0, 1.0])  # S1^1/2 S2 S1^1/2, symmetric 2x2
    tr_sqrt = np.sqrt(np.trace(m) + 2 * np.sqrt(np.linalg.det(m)))  # trace of the square root of a 2x2 SPD
    assert frechet_distance([0, 0], s1, [0, 0], s2) == pytest.approx(10 - 2 * tr_sqrt, rel=1e-10)
    # and the distance is symmetric although the formula is not written symmetrically
    s3, s4 = random_spd(32, seed=3), random_spd(32, rank=5, seed=4)
    assert frechet_distance(np.zeros(32), s3, np.ones(32), s4) == pytest.approx(
        frechet_distance(np.ones(32), s4, np.zeros(32), s3), rel=1e-10
    )
    # a zero covariance (all frames alike) on either side
    assert frechet_distance([0, 0], np.zeros((2, 2)), [0, 0], s1) == pytest.approx(5.0)
    assert frechet_distance([0, 0], s1, [0, 0], np.zeros((2, 2))) == pytest.approx(5.0)


def test_bad_statistics_are_refused():
    with pytest.raises(ValueError, match="mismatched shapes"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.zeros(2), np.eye(2) * np.nan, np.zeros(2), np.eye(2))


def test_streaming_statistics_equal_the_whole_set_at_once():
    features = np.random.default_rng(5).normal(3.0, 2.0, size=(300, 16))
    stats = FeatureStats(16)
    for chunk in np.array_split(features, [1, 2, 50, 51, 200]):  # uneven batches, one of a single vector
        stats.add(chunk)
    assert stats.count == 300
    np.testing.assert_allclose(stats.mean, features.mean(0), rtol=1e-12)
    np.testing.assert_allclose(stats.cov, np.cov(features, rowvar=False), rtol=1e-10, atol=1e-12)
    other = FeatureStats(16)
    other.add(features[:100])
    rest = FeatureStats(16)
    rest.add(features[100:])
    other.merge(rest)
    np.testing.assert_allclose(other.cov, stats.cov, rtol=1e-10)


# -- FID's Inception ------------------------------------------------------------------------------------


def test_the_network_has_the_fid_file_layout():
    net = FIDInceptionV3()
    state = net.state_dict()
    # torchvision's Inception-v3 has 27,161,264 parameters (its documentation); FID's file lacks the auxiliary
    # classifier (3,326,696) and its fc (2048 -> 1008) is not used: 27,161,264 - 3,326,696 - 2,049,000.
    assert sum(p.numel() for p in net.parameters()) == 21_785_568
    facts = {  # key -> shape in pt_inception-2015-12-05-6726825d.pth (torchvision's Inception3 names)
        "Conv2d_1a_3x3.conv.weight": (32, 3, 3, 3),
        "Conv2d_1a_3x3.bn.running_var": (32,),
        "Conv2d_4a_3x3.conv.weight": (192, 80, 3, 3),
        "Mixed_5b.branch_pool.conv.weight": (32, 192, 1, 1),
        "Mixed_5d.branch5x5_2.conv.weight": (64, 48, 5, 5),
        "Mixed_6a.branch3x3.conv.weight": (384, 288, 3, 3),
        "Mixed_6e.branch7x7dbl_5.conv.weight": (192, 192, 1, 7),
        "Mixed_7a.branch7x7x3_4.conv.weight": (192, 192, 3, 3),
        "Mixed_7b.branch3x3dbl_1.conv.weight": (448, 1280, 1, 1),
        "Mixed_7c.branch3x3dbl_3b.conv.weight": (384, 384, 3, 1),
        "Mixed_7c.branch_pool.conv.weight": (192, 2048, 1, 1),
    }
    assert {k: tuple(state[k].shape) for k in facts} == facts
    assert not any(k.startswith("AuxLogits") or ".conv.bias" in k for k in state)
    assert all(m.eps == 0.001 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_fid_from_a_weights_file_in_the_standard_layout(fid_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    net = load_fid_inception(fid_weights, device="cpu")
    in_file = torch.load(fid_weights)["Mixed_7c.branch_pool.conv.weight"]
    assert torch.equal(net.Mixed_7c.branch_pool.conv.weight, in_file)
    photo = read_image(PORTRAIT)  # halves of a 720x720 photo: resized to 299x299 inside the network
    halves = np.stack([photo[:360], photo[360:]])
    fid = FID(fid_weights, device="cpu", batch_size=2)
    fid.update(Frames(halves, real=halves))
    features = fid.generated  # the 2048-d features of the two halves, summarised
    assert features.count == 2 and features.mean.shape == (2048,) and (features.mean >= 0).all()
    assert np.isfinite(features.cov).all() and np.trace(features.cov) > 0  # two different images
    result = fid.result()
    assert result.value == pytest.approx(0.0, abs=1e-6) and result.count == 2
    assert (result.network, result.weights) == ("inception-v3-fid", str(fid_weights))
    assert "biased upward" in result.notes[0]
    assert fid.result() is result  # not recomputed (a 2048-d Frechet distance costs seconds on a CPU)
    # a second setting scored against the same real frames shares their statistics: no second pass over them
    again = FID(fid_weights, device="cpu", real_stats=fid.real)
    again.update(Frames(halves[:1]))
    assert again.real is fid.real and again.frames == {"generated": 1, "real": 2}
    # settings made before any real frame share the network and the real set of the first (``share=``)
    first = FID(fid_weights, device="cpu", batch_size=2)
    later = FID(share=first)
    assert later.inception is first.inception and later.weights == str(fid_weights)
    first.add(real=halves)  # the real frames, given once
    later.update(Frames(halves))
    assert later.frames == {"generated": 2, "real": 2} and later.result().value == pytest.approx(0.0, abs=1e-6)


def test_without_weights_fid_says_why_and_the_rest_still_runs(tmp_path, monkeypatch, dlib_detector):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("FSTH_OFFLINE", "1")
    metrics = make_metrics(detector=dlib_detector)  # all of them
    assert list(metrics) == ["ssim", "psnr", "l1", "csim", "akd", "fid"]
    photo = read_image(PORTRAIT)
    for m in metrics.values():
        m.update(Frames(np.stack([photo, photo]), np.stack([photo, photo])))
    results = {name: m.result() for name, m in metrics.items()}
    fid = results["fid"]
    assert fid.value is None and not fid.computed and fid.details["generated_frames"] == 2
    assert "pt_inception-2015-12-05-6726825d.pth" in fid.reason and str(tmp_path / "hub" / "checkpoints") in fid.reason
    assert inception.FID_WEIGHTS_URL in fid.reason
    assert all(r.value == pytest.approx(1.0) for name, r in results.items() if name in ("ssim", "csim"))
    json.dumps({name: r.to_dict() for name, r in results.items()}, allow_nan=False)


def test_first_use_downloads_into_the_hub_cache_and_checks_the_file(fid_weights, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    data = fid_weights.read_bytes()

    def serve(url):
        assert url == inception.FID_WEIGHTS_URL
        return data

    serve_downloads(monkeypatch, serve)
    with pytest.raises(MissingWeightsError, match="checksum mismatch"):  # the real file's sha256 starts 6726825d
        load_fid_inception()
    cached = tmp_path / "hub" / "checkpoints" / "pt_inception-2015-12-05-6726825d.pth"
    assert not cached.exists()
    ours = dataclasses.replace(inception.FID_WEIGHTS, sha256_prefix=hashlib.sha256(data).hexdigest()[:8])
    monkeypatch.setattr(inception, "FID_WEIGHTS", ours)
    assert load_fid_inception().weights_file == cached and cached.read_bytes() == data


def test_a_file_of_another_inception_is_named(fid_weights, tmp_path):
    state = torch.load(fid_weights)
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 2048), torch.zeros(1000)  # torchvision's classes
    state["AuxLogits.fc.weight"] = torch.zeros(1000, 768)
    torch.save(state, tmp_path / "inception_v3_google.pth")
    with pytest.raises(MissingWeightsError) as err:
        load_fid_inception(tmp_path / "inception_v3_google.pth")
    message = str(err.value)
    assert "is not the FID Inception weights" in message and "unexpected key AuxLogits.fc.weight" in message
    assert "fc.weight: shape (1000, 2048) in file, (1008, 2048) expected" in message
    with pytest.raises(MissingWeightsError, match="does not exist; get pt_inception-2015-12-05-6726825d.pth from"):
        load_fid_inception(tmp_path / "nowhere.pth")
