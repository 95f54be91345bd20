"""The run: every test video in every setting, self- and cross-reenactment, and the report (``evaluate``)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from fsth import __version__, console
from fsth.animate import plan_targets
from fsth.animate.mouth import DriverTeeth
from fsth.config import TrainConfig
from fsth.errors import FsthError, InputError
from fsth.evaluate.options import CROSS_FIELDS, EvalOptions
from fsth.evaluate.protocol import TestVideo, load_video
from fsth.evaluate.renderers import person_renderers, render_all
from fsth.evaluate.report import (
    checkpoint_info,
    networks_info,
    protocols_info,
    sample_rows,
    source_info,
    video_row,
    write_sample,
)
from fsth.evaluate.scoring import Setting, SettingMetrics, score
from fsth.evaluate.sources import CrossSource, load_cross_source, unique_names
from fsth.fewshot import FewShotModel, crop_policy_of
from fsth.landmarks.detectors import LandmarkDetector
from fsth.landmarks.sketch import draw_sketch
from fsth.metrics import Frames
from fsth.metrics.registry import metric_class
from fsth.video import expand_inputs, spread


class _Evaluation:
    """The settings of one run and what they share; ``video`` evaluates one test video in all of them."""

    def __init__(
        self,
        model: FewShotModel,
        detector: LandmarkDetector,
        options: EvalOptions,
        metrics: SettingMetrics,
        samples: Path | None,
        renderer_options: dict,
        cross: Sequence[str | os.PathLike],
    ):
        self.model, self.detector, self.options, self.metrics = model, detector, options, metrics
        self.samples, self.renderer_options = samples, renderer_options
        self.policy = crop_policy_of(model.checkpoint)
        self.sources = [load_cross_source(s, model, detector, options, **renderer_options) for s in cross]
        # the test videos' teeth, as drivers, matter only to a source with a grin of its own
        self.read_teeth = any(DriverTeeth.needed(s.rest_mouth, options.motion.absolute) for s in self.sources)
        unique_names(self.sources)
        self.self_settings = {
            (k, mode): Setting("self", mode, k, metrics.make(options.metrics))
            for k in options.shots
            for mode in options.modes
        }
        cross_names = [n for n in options.metrics if metric_class(n).runs_on(CROSS_FIELDS)]
        self.cross_settings = {
            (s.name, mode): Setting("cross", mode, s.num_shots, metrics.make(cross_names), s.name,
                                    {"csim": s.identity_reason} if s.identity_reason else {})
            for s in self.sources for mode in s.renderers
        }  # fmt: skip

    @property
    def settings(self) -> list[Setting]:
        return [*self.self_settings.values(), *self.cross_settings.values()]

    @property
    def units_per_video(self) -> int:
        return len(self.self_settings) + len(self.cross_settings)

    def video(self, index: int, path: Path, advance: Callable[[int], None]) -> dict:
        """The video's row of the report (skipped with its reason when it cannot be evaluated)."""
        try:
            video = load_video(path, self.detector, self.model.size, self.policy, self.options, self.read_teeth)
        except FsthError as exc:
            console.warn(f"skipping {exc}")
            advance(self.units_per_video)
            return {"video": str(path), "status": "skipped", "reason": str(exc)}
        row = video_row(video)
        self.self_reenactment(index, video, row, advance)
        for source in self.sources:
            self.cross_reenactment(index, video, source, row)
            advance(len(source.renderers))
        return row

    def self_reenactment(self, index: int, video: TestVideo, row: dict, advance: Callable[[int], None]) -> None:
        """Every K, FF (and FT): render the video's targets from their own landmarks and score them."""
        targets = video.targets
        # the generated crops line up with the real ones: the targets' landmarks locate both faces
        real = Frames(None, targets.crops, landmarks=targets.points, real_landmarks=targets.points)
        for setting in self.self_settings.values():  # the work on the real targets, once, timed with no setting
            for m in setting.metrics.values():
                m.prepare(real)
        for k in self.options.shots:
            shots = video.shots[k]
            clock = time.perf_counter()
            made = person_renderers(
                self.model, shots, self.options, label=f"fine-tune K={k} on {video.path.name}", **self.renderer_options
            )
            for mode, renderer in made:  # FT is fine-tuned here, after FF is scored: its time counts for FT
                setting = self.self_settings[(k, mode)]
                generated = render_all(renderer, targets.points)
                values = score(setting.metrics, real.with_generated(generated))
                row["settings"][setting.name] = {
                    **setting.update(values, time.perf_counter() - clock),
                    "shots_used": len(shots),
                }
                write_sample(
                    self.samples,
                    index,
                    video.path,
                    setting,
                    [[targets.sketches[j], targets.crops[j], generated[j]] for j in sample_rows(len(generated))],
                )
                advance(1)
                clock = time.perf_counter()

    def cross_reenactment(self, index: int, video: TestVideo, source: CrossSource, row: dict) -> None:
        """``source`` driven by ``video``: retargeted as ``fsth animate`` does, ``targets`` driver frames scored."""
        track, size = video.track, self.model.size
        planned, reference = plan_targets(
            track, source.points, size, self.options.motion, source.rest_mouth, video.together
        )
        with_face = np.flatnonzero(track.valid)
        frames = with_face[spread(len(with_face), self.options.targets)]
        points = planned[frames]  # (T, 68, 2) in the source crop's pixels
        identity = {}  # the source's photo and its landmarks: whom CSIM compares with
        if source.identity is not None:
            identity = {"identity": source.identity.crops[0], "identity_landmarks": source.identity.points[0]}
        for mode, renderer in source.renderers.items():
            clock = time.perf_counter()
            setting = self.cross_settings[(source.name, mode)]
            generated = render_all(renderer, points)
            values = score(setting.metrics, Frames(generated, landmarks=points, **identity))
            row["settings"][setting.name] = {
                **setting.update(values, time.perf_counter() - clock),
                "reference_frame": reference,
                "driver_frames": frames.tolist(),
            }
            shown = source.identity.crops[0] if source.identity is not None else np.zeros_like(generated[0])
            write_sample(
                self.samples,
                index,
                video.path,
                setting,
                [[shown, draw_sketch(points[j], size), generated[j]] for j in sample_rows(len(generated))],
            )


def evaluate(
    model: FewShotModel,
    videos: Sequence[str | os.PathLike],
    detector: LandmarkDetector | None = None,
    options: EvalOptions = EvalOptions(),
    *,
    cross: Sequence[str | os.PathLike] = (),
    train_cfg: TrainConfig | None = None,
    content_nets=None,
    metric_options: dict | None = None,
    samples: str | os.PathLike | None = None,
) -> dict:
    """Run self-reenactment (and cross-reenactment from ``cross`` sources) on ``videos`` (files or directories of
    them); return the report, a JSON-safe dict:

    - ``fsth_version``; ``checkpoint``: path, fingerprint, step, config, crop policy, landmark backend;
      ``landmark_detector``: the detector that tracked the videos and found the landmarks for AKD;
    - ``protocols``: ``self`` (shots, targets, the split, fine-tuning steps / batch size / content loss / seed, the
      generator's precision) and ``cross`` (sources, driver frames, retargeting) or None;
    - ``metrics``: per metric name its network, weights file, unit and direction;
    - ``settings``: one summary per setting (name, protocol, mode, shots, source, videos, seconds and per metric
      ``MetricResult.to_dict()``: value, std, count, failed, failure rate, network, reason, notes, details);
    - ``videos``: one row per video: status "evaluated" (frames, frames with a face, the shot and target parts,
      the frames used as shots for every K and as targets, and per setting the metrics' mean, std, count and
      missing over that video, seconds, and for cross settings the driver's reference and frames) or "skipped"
      with its reason;
    - ``cross_sources``: name, path, shots, where they came from, the identity photo or why there is none;
    - ``summary``: videos given, evaluated, skipped, total seconds.

    ``model``: the meta checkpoint (``FewShotModel.load``), on the device to run on. ``detector``: what tracks the
    videos and finds AKD's landmarks (default: the one for the landmarks the model was trained on,
    ``FewShotModel.detector(as_trained=True)``).
    ``metric_options``: per metric name, e.g. ``{"csim": {"network": "arcface", "weights": PATH}, "fid":
    {"weights": PATH}}``. ``train_cfg``: fine-tuning's configuration (default: the model's,
    ``TrainConfig.for_model``). ``InputError`` when no video could be evaluated.
    """
    start = time.perf_counter()
    torch.manual_seed(options.seed)
    detector = detector if detector is not None else model.detector(as_trained=True)
    train_cfg = train_cfg if train_cfg is not None else model.train_config()
    model.E, model.G  # noqa: B018 (read now: no setting's seconds include reading the networks)
    run = _Evaluation(
        model,
        detector,
        options,
        SettingMetrics(options.metrics, detector, model.device, metric_options),
        Path(samples) if samples is not None else None,
        dict(train_cfg=train_cfg, content_nets=content_nets),
        cross,
    )
    files = expand_inputs(videos)
    rows = []
    with console.progress() as bar:
        task = bar.add_task("evaluate", total=len(files) * run.units_per_video)
        for index, path in enumerate(files):
            bar.update(task, description=f"evaluate {path.name}")
            rows.append(run.video(index, path, advance=lambda n=1: bar.advance(task, n)))
        bar.update(task, description=f"evaluated {len(files)} video(s)")
    evaluated = [r for r in rows if r["status"] == "evaluated"]
    if not evaluated:
        reasons = "; ".join(r["reason"] for r in rows[:3]) or "no video given"
        raise InputError(f"no video could be evaluated ({len(rows)} given): {reasons}")
    return {
        "fsth_version": __version__,
        "checkpoint": checkpoint_info(model.checkpoint),
        "landmark_detector": detector.name,
        "protocols": protocols_info(options, run.sources, train_cfg),
        "metrics": networks_info(run.settings),
        "settings": [s.summary() for s in run.settings],
        "videos": rows,
        "cross_sources": [source_info(s) for s in run.sources],
        "summary": {
            "videos": len(rows),
            "evaluated": len(evaluated),
            "skipped": len(rows) - len(evaluated),
            "seconds": round(time.perf_counter() - start, 1),
        },
    }
