"""Metrics by name: the registry a protocol uses, the result it reads, and the summary helper."""

import json
import math

import numpy as np
import pytest

from fsth.errors import InputError
from fsth.metrics import (
    DEFAULT_METRICS,
    Frames,
    MetricResult,
    PairMetric,
    available_metrics,
    make_metric,
    make_metrics,
    parse_metric_names,
    register_metric,
    registry,
    summarize,
)


def test_every_default_metric_is_registered_with_its_conventions():
    assert set(DEFAULT_METRICS) <= set(available_metrics())
    higher = {name: registry.metric_class(name).higher_is_better for name in DEFAULT_METRICS}
    assert higher == {"ssim": True, "psnr": True, "l1": False, "csim": True, "akd": False, "fid": False}
    assert registry.metric_class("fid").kind == "set" and registry.metric_class("akd").kind == "pair"


def test_names_and_options_are_checked():
    assert parse_metric_names("ssim, psnr,ssim") == ["ssim", "psnr"]
    with pytest.raises(InputError, match="unknown metric 'lpips'; available: ssim, psnr"):
        make_metric("lpips")
    with pytest.raises(InputError, match="options given for metrics not asked for: fid"):
        make_metrics(["ssim"], options={"fid": {"weights": "x.pth"}})
    with pytest.raises(InputError, match="CSIM network must be one of dlib, arcface"):
        make_metric("csim", network="facenet")
    metrics = make_metrics("ssim,l1", options={"ssim": {"channels": "luma"}})
    assert list(metrics) == ["ssim", "l1"] and metrics["ssim"].channels == "luma"


def test_a_new_metric_registers_by_name(monkeypatch):
    monkeypatch.setattr(registry, "_METRICS", dict(registry._METRICS))

    @register_metric
    class MeanBrightnessGap(PairMetric):
        name = "brightness"

        def score(self, frames):
            return [float(abs(g.mean() - r.mean())) for g, r in zip(frames.generated, frames.real)]

    m = make_metric("brightness")
    m.update(Frames(np.zeros((2, 4, 4, 3)), np.ones((2, 4, 4, 3))))
    assert m.result().value == 1.0 and m.result().count == 2
    with pytest.raises(ValueError, match="already registered"):
        register_metric(MeanBrightnessGap)


def test_metrics_say_which_records_they_can_score():
    """Pixel metrics and FID need real frames; CSIM can use an identity photo instead, AKD the landmarks the
    generated frames were drawn from: those two run in cross-reenactment."""
    cross = ("generated", "landmarks", "identity")
    assert [n for n in DEFAULT_METRICS if registry.metric_class(n).runs_on(cross)] == ["csim", "akd"]
    frames = Frames(np.zeros((2, 16, 16, 3), np.uint8), np.zeros((2, 16, 16, 3), np.uint8))
    assert frames.given == ("generated", "real")
    assert all(registry.metric_class(n).runs_on(frames.given) for n in DEFAULT_METRICS)
    l1 = make_metric("l1")
    assert l1.update(Frames(frames.generated, identity=frames.real[0])) is None  # nothing to compare with
    assert l1.result().count == 0 and l1.update(frames) == [0.0, 0.0]
    real_side = Frames(None, frames.real)  # what is worked out from it once serves every record made from it
    assert real_side.with_generated(frames.generated).memo is real_side.memo
    assert real_side.once("k", lambda: 1) == 1 and real_side.with_generated(frames.generated).once("k", lambda: 2) == 1


def test_summaries_leave_out_and_count_missing_values():
    s = summarize([0.8, None, 0.6, float("nan"), 0.7])
    assert (s.count, s.missing) == (3, 2)
    assert s.mean == pytest.approx(0.7) and s.std == pytest.approx(0.1)  # sample std (n - 1)
    assert summarize([]).mean is None and summarize([2.0]).std is None
    assert summarize([30.0, math.inf]).mean == math.inf
    assert summarize([30.0, math.inf]).to_dict() == {"mean": "inf", "std": None, "count": 2, "missing": 0}


def test_results_are_strict_json():
    r = MetricResult("psnr", math.inf, std=None, count=3, failed=1, unit="dB", notes=["n"], details={"a": 1})
    d = r.to_dict()
    assert d["value"] == "inf" and d["failure_rate"] == 0.25 and r.computed
    assert json.loads(json.dumps(d, allow_nan=False))["details"] == {"a": 1}
    assert not MetricResult("fid", None, reason="no weights").computed
