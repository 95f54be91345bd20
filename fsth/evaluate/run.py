"""Evaluation: a meta checkpoint and held-out videos -> the paper's figures, per setting (``fsth evaluate``).

In: a meta checkpoint (``Checkpoint``), test videos of people it was not trained on, the landmark detector, the
metrics (``fsth.metrics``, by name) and ``EvalOptions``; optionally cross-reenactment sources. Out: a report, a
JSON-safe dict (layout in ``evaluate``'s docstring), one row per video and one summary per setting;
``report_table`` shows the summary.

**Self-reenactment** (the paper's protocol), for each test video:

1. it is tracked once (``track_video`` with the checkpoint's crop policy: landmarks and smoothed crop boxes);
2. its n frames with a face, in order, are split in two parts: the first floor(n / 2) are the *shot part*, the
   others the *target part*. The targets are ``targets`` frames spread evenly over the target part (``spread``:
   the centres of equal parts; all of it when it is shorter), the same ones for every setting;
3. for each K of ``shots``, the shots are K frames spread evenly over the shot part (all of it when it is shorter;
   the report gives the frames used) and e_hat is the embedder's mean over them (``embed``). Feed-forward (FF): the
   meta generator with e_hat renders every target from the target's own landmarks, drawn in the target's own
   smoothed crop box (``face_pair`` made both the real crop and the landmarks, ``Renderer`` draws and renders), so
   the generated and the real crop line up pixel for pixel. Fine-tuned (FT, with ``finetune_steps``): G' and D'
   start from the same e_hat (``person_networks``), are fine-tuned on the K shots (``finetune``), and G' renders
   the same targets;
4. every (generated, real) pair of crops at model size is scored: ``ssim``, ``psnr``, ``l1``; ``csim`` with both
   faces located by the target's landmarks (identity where the face was asked to be; pose is AKD's business);
   ``akd`` with landmarks detected on both crops resized to 256x256 (the same detector as the tracking);
   ``fid`` over all generated against all real target frames of a setting, over every video.

**Cross-reenactment**, for each source (photos, a directory of them or a video: its shots, embedded; or an
``embedding`` / ``person`` file) and each test video as the driver: the driver's motion is retargeted onto the
source's face exactly as ``fsth animate`` does (``plan_targets``: reference frame, head motion and expression), and
``targets`` frames spread over the driver's frames with a face are rendered. There is no ground truth: identity
is ``csim`` of each generated frame against the source's first shot (its photo), both faces located by their
landmarks (the generated one by the landmarks the generator was given); motion is ``akd`` between landmarks
detected on the generated frame (at 256x256) and the retargeted landmarks the generator was given, with the
detection-failure rate beside it. The other metrics need a real frame and are not computed.

A video that cannot be evaluated (missing, unreadable, no face, fewer than 2 frames with a face) is a row with its
reason, and the run goes on.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import torch

from fsth import __version__, console
from fsth.animate import AnimateOptions, Renderer, plan_targets
from fsth.checkpoint import Checkpoint
from fsth.config import TrainConfig
from fsth.errors import FsthError, InputError, NoFaceError
from fsth.fewshot import FewShotModel
from fsth.landmarks.detectors import LandmarkDetector
from fsth.landmarks.sketch import draw_sketch
from fsth.landmarks.track import LandmarkTrack
from fsth.landmarks.tracker import track_video
from fsth.metrics import DEFAULT_METRICS, FID, Frames, Metric, MetricResult, make_metrics, parse_metric_names, summarize
from fsth.metrics.keypoints import at_akd_size  # noqa: F401 (part of this module's interface)
from fsth.metrics.registry import metric_class
from fsth.shots import Shots, crop_track_frames, shots_from_pairs, spread
from fsth.video import expand_inputs, is_video

MODES = ("FF", "FT")  # feed-forward from e_hat; fine-tuned G' from the same e_hat
BASELINES = ("copy", "warp")  # no network: the nearest shot as it is; the nearest shot warped to the target
CROSS_FIELDS = ("generated", "landmarks", "identity")  # what cross-reenactment gives the metrics: no real frame
MIN_FACE_FRAMES = 2  # one shot and one target
SAMPLE_ROWS = 8  # targets shown in a sample grid
SAMPLE_MIN_SIDE = 128  # crops smaller than this are enlarged (pixel repetition) in sample grids
EVAL_DTYPE = torch.float32  # the generator's precision: figures that do not depend on a CPU's bf16 support


@dataclass
class EvalOptions:
    shots: tuple[int, ...] = (1, 8, 32)  # the K of each self-reenactment setting
    targets: int = 32  # target frames per video (self-reenactment) / driver frames per video (cross)
    finetune_steps: int = 0  # > 0: also an FT setting for each FF one, fine-tuned this many steps
    finetune_batch_size: int = 1  # shots per fine-tuning step
    metrics: tuple[str, ...] = DEFAULT_METRICS
    seed: int = 0  # the fine-tuning shot order (the only random choice of the protocols)
    motion: AnimateOptions = field(default_factory=AnimateOptions)  # cross-reenactment's retargeting, as animate's
    baselines: bool = True  # also score the BASELINES in every setting, to read the model against

    def __post_init__(self):
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


# ---------------------------------------------------------------------------------------------- test videos


@dataclass
class TestVideo:
    """One test video, tracked and split: the shots of every K and the targets, cropped at model size."""

    path: Path
    track: LandmarkTrack
    shot_part: np.ndarray  # frame indices of the shot part (frames with a face)
    target_part: np.ndarray  # frame indices of the target part
    shots: dict[int, Shots]  # K -> its shots (fewer than K when the shot part is shorter)
    shot_frames: dict[int, list[int]]  # K -> the frame indices of its shots
    targets: Shots  # the real targets: crops x, landmark images y, landmarks in crop pixels, boxes
    target_frames: list[int]
    seconds: float  # tracking and cropping


def split_parts(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frames with a face (``valid`` (N,) bool) -> (shot part, target part): their first floor(n / 2), the rest."""
    frames = np.flatnonzero(valid)
    half = len(frames) // 2
    return frames[:half], frames[half:]


def load_test_video(
    path: Path, detector: LandmarkDetector, size: int, meta_policy, shots: Sequence[int], targets: int
) -> TestVideo:
    """Track ``path``, split it (module docstring) and crop the shots of every K and the targets."""
    start = time.perf_counter()
    track = track_video(path, detector, crop_policy=meta_policy, label=f"track {path.name}")
    shot_part, target_part = split_parts(track.valid)
    if len(shot_part) + len(target_part) < MIN_FACE_FRAMES:
        raise NoFaceError(
            f"{path}: a face in only {track.num_valid} of {len(track)} frames; self-reenactment needs "
            f"at least {MIN_FACE_FRAMES} (a shot and a target)"
        )
    shot_frames = {k: shot_part[spread(len(shot_part), k)].tolist() for k in shots}
    target_frames = target_part[spread(len(target_part), targets)].tolist()
    wanted = set(target_frames).union(*shot_frames.values())
    pairs = crop_track_frames(path, track, wanted, size)
    if len(pairs) < len(wanted):
        raise InputError(f"{path}: fewer frames on the second read than on the first ({len(track)})")

    def take(frames: list[int]) -> Shots:
        return shots_from_pairs([pairs[i] for i in frames], [f"{path}#{i}" for i in frames])

    return TestVideo(
        path,
        track,
        shot_part,
        target_part,
        {k: take(f) for k, f in shot_frames.items()},
        shot_frames,
        take(target_frames),
        target_frames,
        time.perf_counter() - start,
    )


# ---------------------------------------------------------------------------------------------- generators


MakeRenderer = Callable[..., Renderer]  # Renderer(G, e_hat, device=, dtype=) or a stand-in with its signature


class CopyRenderer:
    """The ``copy`` baseline: for each target, the shot whose landmark shape is nearest the target's, unchanged."""

    def __init__(self, crops: np.ndarray, points: np.ndarray):
        self.crops, self.points = np.asarray(crops), torch.as_tensor(np.asarray(points, np.float32))

    def render(self, points: np.ndarray) -> np.ndarray:
        from fsth.models.warp import nearest_shot

        target = torch.as_tensor(np.asarray(points, np.float32)).reshape(-1, 68, 2)
        pick = nearest_shot(self.points[None].expand(len(target), -1, -1, -1), target)
        return self.crops[pick.numpy()]


def baseline_renderers(crops: np.ndarray, points: np.ndarray, device=None) -> Iterator[tuple[str, object]]:
    """(mode, renderer) of the BASELINES for shots (K, S, S, 3) with landmarks (K, 68, 2)."""
    yield "copy", CopyRenderer(crops, points)
    yield "warp", Renderer(None, source=(crops, points), device=device)


def person_renderers(
    model: FewShotModel,
    shots: Shots,
    options: EvalOptions,
    *,
    train_cfg: TrainConfig,
    content_nets=None,
    make_renderer: MakeRenderer = Renderer,
    label: str = "fine-tuning",
) -> Iterator[tuple[str, Renderer]]:
    """(mode, renderer) for one person from their shots, made as they are asked for: FF (G with e_hat) and, with
    fine-tuning steps, FT (G' and D' from the same e_hat, fine-tuned on the shots). Ctrl-C during fine-tuning
    stops the evaluation."""
    e_hat = model.embed(shots)
    yield "FF", model.renderer(shots, e_hat=e_hat, make_renderer=make_renderer, dtype=EVAL_DTYPE)
    if options.finetune_steps:
        result = model.finetune(
            shots,
            options.finetune_steps,
            train_cfg,
            e_hat=e_hat,
            content_nets=content_nets,
            batch_size=options.finetune_batch_size,
            seed=options.seed,
            label=label,
        )
        if result.interrupted:
            raise KeyboardInterrupt
        yield "FT", model.renderer(shots, G=result.G.eval(), make_renderer=make_renderer, dtype=EVAL_DTYPE)
    if options.baselines:
        yield from baseline_renderers(shots.crops, shots.points, model.device)


# ---------------------------------------------------------------------------------------------- cross sources


@dataclass
class CrossSource:
    """A cross-reenactment source: its renderers, the face that is driven and the photo identity is measured on."""

    name: str  # for the report and the table
    given: str  # the path as given
    renderers: dict[str, Renderer]  # mode -> renderer
    points: np.ndarray  # (68, 2) the source face retargeting keeps, in crop pixels
    num_shots: int
    identity: Shots | None  # one shot: the crop and landmarks CSIM compares with; None when not on disk
    identity_reason: str | None = None  # why ``identity`` is None
    sources: list[str] = field(default_factory=list)  # where the shots came from


def load_cross_source(
    source: str | os.PathLike, model: FewShotModel, detector: LandmarkDetector, options: EvalOptions, **renderer_options
) -> CrossSource:
    """A source as ``fsth animate`` takes it: photos, a directory of them or a video (shots, embedded here and
    fine-tuned with the evaluation's steps), or an ``embedding`` / ``person`` file (``load_person``)."""
    from fsth.person import crop_policy_of, is_checkpoint
    from fsth.shots import load_shots

    path = Path(source)
    name = path.name or str(path)
    policy = crop_policy_of(model.checkpoint)
    if is_checkpoint(path):
        return _cross_source_file(path, model, detector, policy, renderer_options.get("make_renderer", Renderer))
    shots = load_shots([path], detector, model.size, policy)
    renderers = dict(person_renderers(model, shots, options, label=f"fine-tune on {name}", **renderer_options))
    return CrossSource(
        name, str(source), renderers, shots.points[0], len(shots), shots.select([0]), sources=list(shots.sources)
    )


def _cross_source_file(path: Path, model: FewShotModel, detector, policy, make_renderer) -> CrossSource:
    """An embedding (FF, with the meta generator) or person file (its fine-tuned G': FT); its identity photo is
    the first shot it records, read again when it is still on disk."""
    from fsth.checkpoint import load_checkpoint
    from fsth.person import load_person

    person = load_person(path, model.checkpoint.path)
    if person.config != model.checkpoint.config or person.crop_policy != policy:
        raise InputError(f"{path}: made for another model configuration or crop policy than {model.checkpoint.path}")
    recorded = [str(s) for s in load_checkpoint(path, only=()).meta.get("shots") or []]
    mode = "FF" if person.e_hat is not None else "FT"
    renderer = model.renderer(
        G=person.generator,
        e_hat=person.e_hat,
        source=(person.crops, person.points),
        make_renderer=make_renderer,
        dtype=EVAL_DTYPE,
    )
    identity, reason = None, None
    try:
        identity = recorded_shot(recorded, detector, model.size, policy)
    except FsthError as exc:
        reason = f"CSIM not computed: the source's first shot cannot be read again ({exc})"
    return CrossSource(
        path.name, str(path), {mode: renderer}, person.points[0], len(person.points), identity, reason, recorded
    )


def recorded_shot(recorded: list[str], detector, size: int, policy) -> Shots:
    """The first of the shots a file records ("photo.jpg" or "video.mp4#frame"), cropped again as it was: a photo
    by itself, a video frame by tracking the video and taking the same K frames (``load_shots`` is deterministic)."""
    from fsth.shots import load_shots

    if not recorded:
        raise InputError("the file records no shots")
    first = recorded[0]
    frame = re.fullmatch(r"(.*)#(\d+)", first)
    if frame is None:
        return load_shots([first], detector, size, policy)
    shots = load_shots([frame.group(1)], detector, size, policy, k=len(recorded))
    if first not in shots.sources:
        raise InputError(f"{first}: that frame is no longer among the video's shots")
    return shots.select([shots.sources.index(first)])


# ---------------------------------------------------------------------------------------------- scoring


def file_name(text: str) -> str:
    """``text`` with anything but letters, digits, ``.``, ``-`` and ``_`` replaced by ``_``."""
    return re.sub(r"[^\w.-]+", "_", text)


RENDER_BATCH = 8  # frames per generator call: bounded memory at 256x256 and beyond


def render_all(renderer: Renderer, points: np.ndarray) -> np.ndarray:
    """Landmarks (N, 68, 2) in crop pixels -> generated frames (N, S, S, 3) uint8, in batches."""
    return np.concatenate([renderer.render(points[i : i + RENDER_BATCH]) for i in range(0, len(points), RENDER_BATCH)])


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


# ---------------------------------------------------------------------------------------------- samples


def write_sample(
    samples: Path | None, video_index: int, video: Path, setting: Setting, rows: list[list[np.ndarray]]
) -> None:
    """A PNG grid of rows of equally sized images: samples/NNN_video/setting.png."""
    if samples is None:
        return
    from fsth.rundir import image_grid
    from fsth.video import write_image

    folder = samples / f"{video_index:03d}_{file_name(video.stem)}"
    folder.mkdir(parents=True, exist_ok=True)
    grid = image_grid(rows)
    factor = -(-SAMPLE_MIN_SIDE // rows[0][0].shape[0])  # small models' crops, enlarged to look at
    if factor > 1:
        grid = np.repeat(np.repeat(grid, factor, axis=0), factor, axis=1)
    write_image(folder / f"{setting.slug}.png", grid)


def sample_rows(count: int) -> np.ndarray:
    return spread(count, SAMPLE_ROWS)


# ---------------------------------------------------------------------------------------------- the protocols


class _Metrics:
    """Makes each setting's accumulators, sharing one landmark detector, one face-recognition network and one FID
    network and real set (the self-reenactment targets, the same for every setting)."""

    def __init__(self, names: Sequence[str], detector: LandmarkDetector, device, options: dict | None):
        from fsth.metrics import make_face_embedder

        self.names, self.detector, self.device = list(names), detector, device
        options = dict(options or {})
        if "csim" in self.names:
            options["csim"] = {"embedder": make_face_embedder(device=device, **options.get("csim", {}))}
        self.real_fid = None
        if "fid" in self.names:
            self.real_fid = FID(device=device, **options.get("fid", {}))
            options["fid"] = {"share": self.real_fid}
        self.options = options

    def make(self, names: Sequence[str]) -> dict[str, Metric]:
        return make_metrics(
            names,
            detector=self.detector,
            device=self.device,
            options={n: o for n, o in self.options.items() if n in names},
        )


def evaluate(
    meta: Checkpoint,
    videos: Sequence[str | os.PathLike],
    detector: LandmarkDetector,
    options: EvalOptions = EvalOptions(),
    *,
    cross: Sequence[str | os.PathLike] = (),
    train_cfg: TrainConfig = TrainConfig(),
    content_nets=None,
    metric_options: dict | None = None,
    device=None,
    samples: str | os.PathLike | None = None,
    make_renderer: MakeRenderer = Renderer,
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

    ``metric_options``: per metric name, e.g. ``{"csim": {"network": "arcface", "weights": PATH}, "fid":
    {"weights": PATH}}``. ``make_renderer``: what turns a generator (and e_hat) into frames (``Renderer``).
    ``InputError`` when no video could be evaluated.
    """
    from fsth.device import get_device

    start = time.perf_counter()
    device = get_device() if device is None else torch.device(device)
    torch.manual_seed(options.seed)
    model = FewShotModel(meta, device)
    model.E, model.G  # noqa: B018 (read now: no setting's seconds include reading the networks)
    run = _Evaluation(
        model,
        detector,
        options,
        _Metrics(options.metrics, detector, device, metric_options),
        Path(samples) if samples is not None else None,
        dict(train_cfg=train_cfg, content_nets=content_nets, make_renderer=make_renderer),
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
        "checkpoint": _checkpoint_info(meta),
        "landmark_detector": detector.name,
        "protocols": _protocols(options, run.sources, train_cfg),
        "metrics": _networks(run.settings),
        "settings": [s.summary() for s in run.settings],
        "videos": rows,
        "cross_sources": [_source_info(s) for s in run.sources],
        "summary": {
            "videos": len(rows),
            "evaluated": len(evaluated),
            "skipped": len(rows) - len(evaluated),
            "seconds": round(time.perf_counter() - start, 1),
        },
    }


class _Evaluation:
    """The settings of one run and what they share; ``video`` evaluates one test video in all of them."""

    def __init__(
        self,
        model: FewShotModel,
        detector: LandmarkDetector,
        options: EvalOptions,
        metrics: _Metrics,
        samples: Path | None,
        renderer_options: dict,
        cross: Sequence[str | os.PathLike],
    ):
        from fsth.person import crop_policy_of

        self.model, self.detector, self.options, self.metrics = model, detector, options, metrics
        self.samples, self.renderer_options = samples, renderer_options
        self.policy = crop_policy_of(model.checkpoint)
        self.sources = [load_cross_source(s, model, detector, options, **renderer_options) for s in cross]
        _unique_names(self.sources)
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
            video = _load(path, self.detector, self.model.size, self.policy, self.options)
        except FsthError as exc:
            console.warn(f"skipping {exc}")
            advance(self.units_per_video)
            return {"video": str(path), "status": "skipped", "reason": str(exc)}
        row = _video_row(video)
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
        planned, reference = plan_targets(track, source.points, size, self.options.motion)
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


def _load(path: Path, detector, size: int, policy, options: EvalOptions) -> TestVideo:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not is_video(path):
        raise InputError(f"{path}: not a video (by its extension)")
    return load_test_video(path, detector, size, policy, options.shots, options.targets)


def _video_row(video: TestVideo) -> dict:
    track = video.track
    return {
        "video": str(video.path), "status": "evaluated", "frames": len(track), "frames_with_face": track.num_valid,
        "fps": track.fps, "shot_part": [int(video.shot_part[0]), int(video.shot_part[-1])] if len(video.shot_part)
        else [], "target_part": [int(video.target_part[0]), int(video.target_part[-1])],
        "shot_frames": {str(k): f for k, f in video.shot_frames.items()}, "target_frames": video.target_frames,
        "track_seconds": round(video.seconds, 3), "settings": {},
    }  # fmt: skip


def _unique_names(sources: list[CrossSource]) -> None:
    """Sources with the same file name get their position appended (a/photo.jpg, b/photo.jpg)."""
    names = [s.name for s in sources]
    for i, s in enumerate(sources):
        if names.count(s.name) > 1:
            s.name = f"{s.name}#{i + 1}"


def _checkpoint_info(meta: Checkpoint) -> dict:
    from fsth.embed import fingerprint

    return {
        "path": str(meta.path),
        "fingerprint": fingerprint(meta.path),
        "kind": meta.kind,
        "step": meta.step,
        "config": meta.config.to_dict() if meta.config else None,
        "crop_policy": meta.crop_policy,
        "landmark_backend": meta.landmark_backend,
    }


def _protocols(options: EvalOptions, sources: list[CrossSource], train_cfg: TrainConfig) -> dict:
    finetune = None
    if options.finetune_steps:
        finetune = {
            "steps": options.finetune_steps,
            "batch_size": options.finetune_batch_size,
            "content_loss": train_cfg.content_loss,
            "lr_G": train_cfg.lr_EG,
            "lr_D": train_cfg.lr_D,
            "seed": options.seed,
        }
    self_protocol = {
        "shots": list(options.shots), "targets": options.targets, "modes": list(options.modes),
        "finetune": finetune, "generator_dtype": str(EVAL_DTYPE).removeprefix("torch."),
        "split": "the frames with a face, in order: the first floor(n/2) are the shot part, the rest the target "
                 "part; K shots spread evenly over the shot part, the targets spread evenly over the target part, "
                 "the same targets for every setting",
    }  # fmt: skip
    cross_protocol = None
    if sources:
        motion = options.motion
        cross_protocol = {
            "sources": [s.given for s in sources], "frames_per_driver": options.targets,
            "frames": "spread evenly over the driver's frames with a face",
            "retarget": {"absolute": motion.absolute, "head_motion": motion.head_motion,
                         "reference": motion.reference},
            "identity": "CSIM against the source's first shot",
        }  # fmt: skip
    return {"self": self_protocol, "cross": cross_protocol}


def _networks(settings: list[Setting]) -> dict:
    """Metric name -> what measured it (from the first setting that has it)."""
    out = {}
    for setting in settings:
        for name, m in setting.metrics.items():
            if name not in out:
                r = m.result()
                out[name] = {
                    "network": r.network,
                    "weights": r.weights,
                    "unit": r.unit,
                    "higher_is_better": r.higher_is_better,
                }
    return out


def _source_info(source: CrossSource) -> dict:
    return {
        "name": source.name,
        "path": source.given,
        "shots": source.num_shots,
        "sources": source.sources,
        "modes": list(source.renderers),
        "identity": source.identity.sources[0] if source.identity is not None else None,
        "identity_reason": source.identity_reason,
    }


# ---------------------------------------------------------------------------------------------- the table

_HEADERS = {"ssim": "SSIM", "psnr": "PSNR dB", "l1": "L1", "csim": "CSIM", "akd": "AKD px", "fid": "FID"}


def format_result(result: dict) -> str:
    """``MetricResult.to_dict()`` as a table cell: "0.812 ± 0.031", "31.4", "n/a"."""
    value, std = result["value"], result["std"]
    if value is None:
        return "n/a"
    if isinstance(value, str):  # "inf": identical crops
        return value
    digits = 3 if result["unit"] == "" and result["metric"] != "fid" else 2
    return f"{value:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def report_table(report: dict):
    """The summary as a rich Table: one row per setting (self K=8 FF, cross photo.jpg FT ...) with its videos, mean ±
    std of each metric and the failures (pairs a metric could not score); the caption says why a value is missing."""
    from rich.table import Table

    names = list(report["metrics"])
    checkpoint = report["checkpoint"]
    table = Table(
        title=f"fsth evaluate: {checkpoint['path']} (step {checkpoint['step']})",
        title_justify="left",
        caption_justify="left",
    )
    table.add_column("setting", no_wrap=True)
    table.add_column("videos", justify="right")
    for name in names:
        arrow = "↑" if report["metrics"][name]["higher_is_better"] else "↓"
        table.add_column(f"{_HEADERS.get(name, name)} {arrow}", justify="right", no_wrap=True)
    table.add_column("failures")
    reasons: list[str] = []
    for s in report["settings"]:
        cells = []
        for name in names:
            r = s["metrics"].get(name)
            cells.append("–" if r is None else format_result(r))
            if r is not None and r["reason"] and f"{name}: {r['reason']}" not in reasons:
                reasons.append(f"{name}: {r['reason']}")
        failures = [f"{n} {r['failed']}/{r['count'] + r['failed']}" for n, r in s["metrics"].items() if r["failed"]]
        table.add_row(s["name"], str(s["videos"]), *cells, ", ".join(failures) or "none")
    done = report["summary"]
    caption = [f"{done['evaluated']} of {done['videos']} videos evaluated in {done['seconds']:.0f} s"]
    caption += [f"skipped {r['reason']}" for r in report["videos"] if r["status"] == "skipped"]
    table.caption = "\n".join(caption + reasons)
    return table


def print_table(report: dict) -> None:
    """``report_table`` on stderr (unless quiet); not squeezed into 80 columns when stderr is not a terminal."""
    if console.verbosity < 1:
        return
    out = console.err
    if not out.is_terminal:  # a log file or a pipe: rich would assume 80 columns
        from rich.console import Console

        out = Console(stderr=True, highlight=False, width=160)
    out.print(report_table(report))
