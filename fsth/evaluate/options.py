"""What ``fsth evaluate`` asks of the protocols: ``EvalOptions`` (each field with ``option`` metadata is also a
command-line option, ``fsth.config.option``) and ``MetricOptions`` (the metrics' networks and weights files)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fsth.animate.options import AnimateOptions
from fsth.config import DEFAULT_METRICS, option
from fsth.errors import InputError

MODES = ("FF", "FT")  # feed-forward from e_hat; fine-tuned G' from the same e_hat


BASELINES = ("copy", "warp")  # no network: the nearest shot as it is; the nearest shot warped to the target


CROSS_FIELDS = ("generated", "landmarks", "identity")  # what cross-reenactment gives the metrics: no real frame


_PROTOCOL, _METRICS = "Protocol", "Metrics"


def parse_shots(text: str) -> tuple[int, ...]:
    """ "1,8,32" -> (1, 8, 32): positive numbers, in the order given, without repeats."""
    out: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if not part.isdigit() or int(part) < 1:
            raise InputError(f"--shots must be a comma-separated list of positive numbers such as 1,8,32, not {text!r}")
        if int(part) not in out:
            out.append(int(part))
    return tuple(out)


def _names(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if not names:
        raise InputError(f"--metrics {text!r} names no metric; give one or more, such as ssim,l1")
    return names


@dataclass
class EvalOptions:
    shots: tuple[int, ...] = option(
        (1, 8, 32),
        "Self-reenactment: K, the shots per setting, taken from the first half of each video's frames with a face.",
        parse=parse_shots,
        kind=str,
        shown="1,8,32",
        metavar="K,K,...",
        panel=_PROTOCOL,
    )
    targets: int = option(
        32,
        "Target frames per video, spread over the second half (the same for every K); for --cross, driver frames "
        "per video.",
        low=1,
        panel=_PROTOCOL,
    )
    finetune_steps: int = option(
        0,
        "Also fine-tune (FT rows) from the same e_hat for this many steps; 0: feed-forward (FF) only.",
        low=0,
        panel=_PROTOCOL,
    )
    finetune_batch_size: int = 1  # shots per fine-tuning step
    metrics: tuple[str, ...] = option(
        DEFAULT_METRICS,
        "Metrics to compute (ssim, psnr, l1, csim, akd, fid).",
        parse=_names,
        kind=str,
        shown=",".join(DEFAULT_METRICS),
        metavar="NAMES",
        panel=_METRICS,
    )
    seed: int = option(0, "Seed of the fine-tuning shot order.", panel=_PROTOCOL)
    motion: AnimateOptions = field(default_factory=AnimateOptions)  # cross-reenactment's retargeting, as animate's
    baselines: bool = option(
        True,
        "Also score two baselines in every setting: copy (the nearest shot as it is) and warp (the nearest shot "
        "warped to the target's landmarks, no network).",
        panel=_PROTOCOL,
    )

    def __post_init__(self):
        from fsth.metrics import parse_metric_names

        if not self.shots or min(self.shots) < 1:
            raise InputError(f"shots must be numbers of at least 1, not {list(self.shots)}")
        if self.targets < 1:
            raise InputError(f"targets must be at least 1, not {self.targets}")
        if self.finetune_steps < 0:
            raise InputError(f"finetune steps must be at least 0, not {self.finetune_steps}")
        self.metrics = tuple(parse_metric_names(self.metrics))

    @property
    def modes(self) -> tuple[str, ...]:
        return (MODES if self.finetune_steps else MODES[:1]) + (BASELINES if self.baselines else ())


@dataclass(frozen=True)
class MetricOptions:
    fid_weights: Path | None = option(
        None,
        "FID's Inception weights pt_inception-2015-12-05-6726825d.pth (default: the torch hub cache; without them "
        "FID is reported as not computed, with the reason).",
        panel=_METRICS,
    )
    csim_network: str = option(
        "dlib",
        "CSIM's face-recognition network: dlib (128-d, offline) or arcface (--arcface-weights).",
        choices=("dlib", "arcface"),
        panel=_METRICS,
    )
    arcface_weights: Path | None = option(
        None, "An insightface arcface_torch backbone.pth, for --csim-network arcface.", panel=_METRICS
    )

    def for_metrics(self, metrics) -> dict:
        """Per-metric options of an evaluation (``evaluate(metric_options=...)``): FID's weights file if given,
        CSIM's network (ArcFace needs its backbone file). ``InputError`` naming the option for a missing file, or
        ArcFace without weights."""
        from fsth.files import given_file

        options: dict[str, dict] = {}
        if "fid" in metrics and self.fid_weights is not None:
            options["fid"] = {"weights": given_file(self.fid_weights, "--fid-weights")}
        if self.csim_network == "arcface":
            if self.arcface_weights is None:
                raise InputError("--csim-network arcface needs --arcface-weights backbone.pth")
            if "csim" in metrics:
                weights = given_file(self.arcface_weights, "--arcface-weights")
                options["csim"] = {"network": "arcface", "weights": weights}
        return options

    @property
    def files(self) -> tuple:
        return (self.fid_weights, self.arcface_weights)
