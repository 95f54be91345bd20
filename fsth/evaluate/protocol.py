"""The protocols' settings and test videos: ``EvalOptions``, and each video tracked once and split into a shot
part and a target part (the package docstring has the protocol)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from fsth.animate import AnimateOptions
from fsth.errors import InputError, NoFaceError
from fsth.landmarks.detectors import LandmarkDetector
from fsth.landmarks.track import LandmarkTrack
from fsth.landmarks.tracker import track_video
from fsth.metrics import DEFAULT_METRICS, parse_metric_names
from fsth.shots import Shots, crop_track_frames, shots_from_pairs, spread
from fsth.video import is_video

MODES = ("FF", "FT")  # feed-forward from e_hat; fine-tuned G' from the same e_hat


BASELINES = ("copy", "warp")  # no network: the nearest shot as it is; the nearest shot warped to the target


CROSS_FIELDS = ("generated", "landmarks", "identity")  # what cross-reenactment gives the metrics: no real frame


MIN_FACE_FRAMES = 2  # one shot and one target


def metric_options(
    metrics: Sequence[str],
    *,
    fid_weights: str | Path | None = None,
    csim_network: str = "dlib",
    arcface_weights: str | Path | None = None,
) -> dict:
    """Per-metric options of an evaluation (``evaluate(metric_options=...)``) from the command's: FID's weights file
    if given, CSIM's network (ArcFace needs its backbone file). ``InputError`` naming the option for a missing file,
    or ArcFace without weights."""
    from fsth.files import given_file

    options: dict[str, dict] = {}
    if "fid" in metrics and fid_weights is not None:
        options["fid"] = {"weights": given_file(fid_weights, "--fid-weights")}
    if csim_network == "arcface":
        if arcface_weights is None:
            raise InputError("--csim-network arcface needs --arcface-weights backbone.pth")
        if "csim" in metrics:
            options["csim"] = {"network": "arcface", "weights": given_file(arcface_weights, "--arcface-weights")}
    return options


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


# --------------------------------------------------------------------------------------------------- test videos


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
    """Track ``path``, split it (the package docstring) and crop the shots of every K and the targets."""
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


def load_video(path: Path, detector, size: int, policy, options: EvalOptions) -> TestVideo:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not is_video(path):
        raise InputError(f"{path}: not a video (by its extension)")
    return load_test_video(path, detector, size, policy, options.shots, options.targets)
