"""The test videos: each video tracked once and split into a shot part and a target part (the package docstring
has the protocol; its settings are ``fsth.evaluate.options.EvalOptions``)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from fsth.animate.mouth import DriverTeeth
from fsth.errors import InputError, NoFaceError
from fsth.evaluate.options import EvalOptions
from fsth.fewshot import Shots, crop_track_frames, shots_from_pairs
from fsth.landmarks.detectors import LandmarkDetector
from fsth.landmarks.record import LandmarkTrack
from fsth.landmarks.tracker import track_video
from fsth.video import is_video, spread

MIN_FACE_FRAMES = 2  # one shot and one target


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
    together: np.ndarray | None = None  # (N,) how surely each frame's teeth are together (``DriverTeeth``), or None


def split_parts(valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frames with a face (``valid`` (N,) bool) -> (shot part, target part): their first floor(n / 2), the rest."""
    frames = np.flatnonzero(valid)
    half = len(frames) // 2
    return frames[:half], frames[half:]


def load_test_video(
    path: Path,
    detector: LandmarkDetector,
    size: int,
    meta_policy,
    shots: Sequence[int],
    targets: int,
    read_teeth: bool = False,
) -> TestVideo:
    """Track ``path``, split it (the package docstring) and crop the shots of every K and the targets. ``read_teeth``:
    also read its teeth as a driver of cross-reenactment (``DriverTeeth``; its grin, ``retarget.grin_gaps``)."""
    start = time.perf_counter()
    teeth = DriverTeeth() if read_teeth else None
    track = track_video(path, detector, crop_policy=meta_policy, label=f"track {path.name}", on_frame=teeth)
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
        None if teeth is None else teeth.together(len(track)),
    )


def load_video(path: Path, detector, size: int, policy, options: EvalOptions, read_teeth: bool = False) -> TestVideo:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not is_video(path):
        raise InputError(f"{path}: not a video (by its extension)")
    return load_test_video(path, detector, size, policy, options.shots, options.targets, read_teeth)
