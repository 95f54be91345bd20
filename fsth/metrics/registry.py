"""Metrics by name: the record every metric scores, the accumulator interface, its result object, the registry.

A protocol asks for metrics by name, gives each one record (``Frames``) per batch as it makes them, and reads
one ``MetricResult`` per metric at the end::

    metrics = make_metrics(["ssim", "psnr", "l1", "csim", "akd", "fid"])   # one shared landmark detector
    for video in videos:
        frames = Frames(generated, real)              # (N, H, W, 3) uint8 each; landmarks where known
        for name, m in metrics.items():
            per_pair = m.update(frames)               # a list for pair metrics
    results = {name: m.result() for name, m in metrics.items()}               # .to_dict() is JSON-safe

Each metric reads the fields of the record it needs and says which (``Metric.needs``): pixel metrics and FID
need the real frames; CSIM needs them or an identity photo (cross-reenactment); AKD needs them or the landmarks
the generated frames were drawn from. ``update`` with a record that lacks them counts nothing and returns None.

Two kinds of metric:

- **pair** metrics (ssim, psnr, l1, csim, akd) score each generated frame against its real counterpart;
  ``update`` returns the batch's per-pair values (None where a face or its landmarks were not found: counted,
  never a crash), and ``result()`` gives their mean, standard deviation, count and failures.
- **set** metrics (fid) compare the set of all generated frames with the set of all real ones; ``update``
  accumulates (and returns None), ``result()`` gives one figure.

Every result names what measured it (``network``: "dlib-resnet-128", "arcface-iresnet100",
"inception-v3-fid", the landmark detector ...; ``weights``: the file), since values differ between networks.
New metrics register with ``@register_metric`` on a ``Metric`` subclass with a unique ``name``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from fsth.config import DEFAULT_METRICS
from fsth.errors import InputError
from fsth.metrics.summary import json_float, summarize

# -- the record ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Frames:
    """One batch of generated frames and what they are measured against: what every metric's ``update`` takes.

    Images are uint8 RGB, (N, H, W, 3) (or one (H, W, 3) frame); landmarks (68, 2) per image in its own pixels,
    as an (N, 68, 2) array or a list with None where unknown (detected then, by the metrics that need them).
    """

    generated: np.ndarray | None  # the frames to score; None only in a record of the real side, for ``prepare``
    real: np.ndarray | None = None  # each generated frame's ground truth; None without one (cross-reenactment)
    landmarks: Any = None  # the landmarks each generated frame was drawn from: where its face is, the motion asked
    real_landmarks: Any = None  # the real frames' landmarks, where known (where their faces are)
    identity: np.ndarray | None = None  # one photo (H, W, 3) of whom the generated face should be, without real ones
    identity_landmarks: np.ndarray | None = None  # (68, 2) of ``identity``, where known
    memo: dict = field(default_factory=dict, repr=False, compare=False)  # see ``once``

    @property
    def given(self) -> tuple[str, ...]:
        """The names of the fields that are not None."""
        return tuple(f.name for f in dataclasses.fields(self) if f.name != "memo" and getattr(self, f.name) is not None)

    def with_generated(self, generated: np.ndarray) -> "Frames":
        """This record with ``generated`` frames, sharing its ``memo``."""
        return dataclasses.replace(self, generated=generated)

    def once(self, key, make: Callable[[], Any]) -> Any:
        """``make()`` the first time ``key`` is asked for among the records that share ``memo`` (one video's real
        targets, scored in every setting: the real side is worked on once), its value afterwards."""
        if key not in self.memo:
            self.memo[key] = make()
        return self.memo[key]


# -- results ---------------------------------------------------------------------------------------------


@dataclass
class MetricResult:
    """One metric over everything it was given."""

    metric: str  # registry name: "ssim", "csim", "fid" ...
    value: float | None  # mean over pairs (pair metrics) or the set's figure (FID); None = not computed
    std: float | None = None  # sample standard deviation over pairs; None for set metrics and n < 2
    count: int = 0  # pairs (pair metrics) or generated frames (set metrics) that entered ``value``
    failed: int = 0  # pairs left out of ``value`` (no face / landmarks found on either side)
    unit: str = ""  # "dB", "px" or "" (dimensionless)
    higher_is_better: bool = True
    network: str | None = None  # what measured it: "dlib-resnet-128", "inception-v3-fid", "dlib" detector ...
    weights: str | None = None  # the weights file it was loaded from
    reason: str | None = None  # why ``value`` is None
    notes: list[str] = field(default_factory=list)  # caveats worth printing beside the value
    details: dict = field(default_factory=dict)  # metric-specific extras (JSON-safe)

    @property
    def computed(self) -> bool:
        return self.value is not None

    @property
    def failure_rate(self) -> float:
        """Failed pairs / all pairs (0 when there were none)."""
        total = self.count + self.failed
        return self.failed / total if total else 0.0

    def to_dict(self) -> dict:
        """JSON-safe (strict JSON: +inf as "inf", NaN as None)."""
        return {
            "metric": self.metric,
            "value": json_float(self.value),
            "std": json_float(self.std),
            "count": self.count,
            "failed": self.failed,
            "failure_rate": self.failure_rate,
            "unit": self.unit,
            "higher_is_better": self.higher_is_better,
            "network": self.network,
            "weights": self.weights,
            "reason": self.reason,
            "notes": list(self.notes),
            "details": dict(self.details),
        }


# -- the metric interface ------------------------------------------------------------------------------


class Metric:
    """An accumulator: ``update`` with batches as they come, ``result`` at the end."""

    name: str = ""  # registry name
    kind: str = "pair"  # "pair" or "set"
    unit: str = ""
    higher_is_better: bool = True
    shared: tuple[str, ...] = ()  # resources make_metrics passes in: "detector", "device"
    # the record fields it cannot do without; a tuple in it: one of those fields. Most compare with real frames.
    needs: tuple[str | tuple[str, ...], ...] = ("real",)

    network: str | None = None  # what measures it (set by subclasses that use a network)
    weights: str | None = None

    @classmethod
    def runs_on(cls, given: Iterable[str]) -> bool:
        """Whether records with the fields ``given`` (``Frames.given``) have what this metric ``needs``."""
        given = set(given)
        return "generated" in given and all(
            any(f in given for f in ((need,) if isinstance(need, str) else need)) for need in cls.needs
        )

    @classmethod
    def shared_options(cls, options: dict, device=None) -> dict:
        """The keyword options of every accumulator of this metric in one evaluation (one per setting), from the
        user's ``options``: what can be made once (a network, a shared set) is made here. Default: as given."""
        return options

    def prepare(self, frames: Frames) -> None:
        """Do now the work on the record's real side that later updates with records sharing its ``memo`` would
        do (once for all of them), so that it is not timed with the first. Default: nothing."""

    def update(self, frames: Frames) -> list[float | None] | None:
        raise NotImplementedError

    def result(self) -> MetricResult:
        raise NotImplementedError

    def _result(self, **fields) -> MetricResult:
        return MetricResult(
            metric=self.name,
            unit=self.unit,
            higher_is_better=self.higher_is_better,
            network=self.network,
            weights=self.weights,
            **fields,
        )


class PairMetric(Metric):
    """A metric scored per (generated, real) pair; subclasses implement ``score``."""

    kind = "pair"

    def __init__(self):
        self.values: list[float | None] = []  # every pair seen, None where it could not be scored

    def score(self, frames: Frames) -> list[float | None]:
        """Per-pair values of one batch (None where a pair could not be scored)."""
        raise NotImplementedError

    def update(self, frames: Frames) -> list[float | None] | None:
        """The batch's per-pair values, kept for ``result``; None (nothing counted) when ``frames`` lacks what the
        metric needs."""
        if not self.runs_on(frames.given):
            return None
        values = self.score(frames)
        self.values.extend(values)
        return values

    def details(self) -> dict:
        return {}

    def result(self) -> MetricResult:
        s = summarize(self.values)
        reason = None if s.count else ("no pairs were given" if not s.missing else "no pair could be scored")
        return self._result(
            value=s.mean, std=s.std, count=s.count, failed=s.missing, reason=reason, details=self.details()
        )


# -- the registry --------------------------------------------------------------------------------------

_METRICS: dict[str, type[Metric]] = {}


def register_metric(cls: type[Metric]) -> type[Metric]:
    """Class decorator: make ``cls`` available to ``make_metric(cls.name)``."""
    if not cls.name or cls.name in _METRICS:
        raise ValueError(f"metric name {cls.name!r} is empty or already registered")
    _METRICS[cls.name] = cls
    return cls


def available_metrics() -> list[str]:
    return list(_METRICS)


def metric_class(name: str) -> type[Metric]:
    try:
        return _METRICS[name]
    except KeyError:
        raise InputError(f"unknown metric {name!r}; available: {', '.join(_METRICS)}") from None


def make_metric(name: str, **options) -> Metric:
    """A fresh accumulator for metric ``name`` (see each metric's class for its options)."""
    return metric_class(name)(**options)


def parse_metric_names(names) -> list[str]:
    """ "ssim,csim" or ["ssim", "csim"] -> checked, de-duplicated names in order."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    out = []
    for n in names:
        metric_class(n)
        if n not in out:
            out.append(n)
    return out


def make_metrics(
    names=DEFAULT_METRICS, *, detector=None, device=None, options: dict | None = None
) -> dict[str, Metric]:
    """Accumulators for ``names`` that share one landmark detector (made once, dlib by default) and device.

    ``options`` maps a metric name to its own keyword options, e.g. ``{"csim": {"network": "arcface",
    "weights": "backbone.pth"}, "fid": {"weights": "pt_inception-2015-12-05-6726825d.pth"}}``.
    """
    names = parse_metric_names(names)
    options = dict(options or {})
    stray = set(options) - set(names)
    if stray:
        raise InputError(f"options given for metrics not asked for: {', '.join(sorted(stray))}")
    if detector is None and any("detector" in metric_class(n).shared for n in names):
        from fsth.landmarks import make_detector

        detector = make_detector("dlib")
    metrics = {}
    for n in names:
        cls, kw = metric_class(n), dict(options.get(n, {}))
        if "detector" in cls.shared:
            kw.setdefault("detector", detector)
        if "device" in cls.shared:
            kw.setdefault("device", device)
        metrics[n] = cls(**kw)
    return metrics
