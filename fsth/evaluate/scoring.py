"""Scoring: each setting's metric accumulators (sharing networks and FID's real set), one ``Frames`` record
per video and setting scored by all of them alike."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Sequence

from fsth.landmarks.detectors import LandmarkDetector
from fsth.metrics import Frames, Metric, MetricResult, make_metrics, summarize
from fsth.metrics.registry import metric_class


def file_name(text: str) -> str:
    """``text`` with anything but letters, digits, ``.``, ``-`` and ``_`` replaced by ``_``."""
    return re.sub(r"[^\w.-]+", "_", text)


@dataclass
class Setting:
    """One row of the summary: self-reenactment with K shots or cross-reenactment from a source, FF or FT; its
    metric accumulators run over every video."""

    protocol: str  # "self" | "cross"
    mode: str  # "FF" | "FT"
    shots: int  # K asked for (self), or the source's number of shots (cross)
    metrics: dict[str, Metric]
    source: str | None = None  # cross: the source's name
    not_computed: dict[str, str] = field(default_factory=dict)  # metric -> why it has no value (not a failure)
    videos: int = 0
    seconds: float = 0.0

    @property
    def name(self) -> str:
        return f"self K={self.shots} {self.mode}" if self.protocol == "self" else f"cross {self.source} {self.mode}"

    @property
    def slug(self) -> str:
        """The name as a file name: self_K8_FF, cross_portrait.jpg_FT."""
        what = f"K{self.shots}" if self.protocol == "self" else file_name(str(self.source))
        return f"{self.protocol}_{what}_{self.mode}"

    def update(self, values: dict[str, list | None], seconds: float) -> dict:
        """Count one video; its per-metric summaries (pair metrics) for the video's row."""
        self.videos += 1
        self.seconds += seconds
        return {
            "metrics": {name: summarize(v).to_dict() for name, v in values.items() if v is not None},
            "seconds": round(seconds, 3),
        }

    def results(self) -> dict[str, MetricResult]:
        out = {}
        for name, metric in self.metrics.items():
            result = metric.result()
            if name in self.not_computed and not result.computed:
                result.reason = self.not_computed[name]
            out[name] = result
        return out

    def summary(self) -> dict:
        return {
            "name": self.name,
            "protocol": self.protocol,
            "mode": self.mode,
            "shots": self.shots,
            "source": self.source,
            "videos": self.videos,
            "seconds": round(self.seconds, 2),
            "metrics": {name: r.to_dict() for name, r in self.results().items()},
        }


def score(metrics: dict[str, Metric], frames: Frames) -> dict[str, list | None]:
    """Every metric's per-pair values of one record (None: a set metric, or one the record has not what it needs)."""
    return {name: m.update(frames) for name, m in metrics.items()}


class SettingMetrics:
    """Makes each setting's accumulators, sharing one landmark detector and what each metric makes once for all
    the settings (``Metric.shared_options``: CSIM's face-recognition network, FID's network and real set, the
    self-reenactment targets that every setting shares)."""

    def __init__(self, names: Sequence[str], detector: LandmarkDetector, device, options: dict | None):
        self.names, self.detector, self.device = list(names), detector, device
        options = options or {}
        self.options = {n: metric_class(n).shared_options(dict(options.get(n, {})), device) for n in self.names}

    def make(self, names: Sequence[str]) -> dict[str, Metric]:
        return make_metrics(
            names,
            detector=self.detector,
            device=self.device,
            options={n: o for n, o in self.options.items() if n in names},
        )
