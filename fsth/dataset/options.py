"""What ``fsth dataset`` (and ``fsth landmarks --dataset``) asks of a build: ``BuildOptions`` (each field also a
command-line option: ``fsth.config.option``). The landmarks' own options are ``fsth.landmarks.options``."""

from __future__ import annotations

from dataclasses import dataclass

from fsth.config import option

_DATA = "Dataset"


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` (0-based i) -> (i, n)."""
    from fsth.errors import InputError

    try:
        i, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise InputError(f"--shard must look like i/n (e.g. 0/4), not {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise InputError(f"--shard {text}: need 0 <= i < n (shards are numbered from 0)")
    return i, n


@dataclass(frozen=True)
class BuildOptions:
    frames_per_video: int = option(32, "Frames kept per video, spread over its length.", low=2, panel=_DATA)
    size: int = option(
        256, "Side of the stored face crops (training resizes them to the model's size).", low=16, high=2048,
        panel=_DATA,
    )  # fmt: skip
    workers: int | None = option(
        None,
        "Worker processes, each with its own landmark detector.",
        low=1,
        shown="one per CPU core (dlib), 1 (fan)",
        panel=_DATA,
    )
    shard: tuple[int, int] = option(
        (0, 1),
        "Build only shard i of n (i from 0), for n machines; the shards' manifests are read together.",
        parse=parse_shard,
        kind=str,
        shown="0/1: all",
        metavar="i/n",
        panel=_DATA,
    )
    jpeg_quality: int = option(90, "JPEG quality of the stored crops.", low=1, high=100, panel=_DATA)
    min_frames: int = option(
        9, "Skip (and report) a video with a face in fewer of its kept frames.", low=1, panel=_DATA
    )
    track_every_frame: bool = option(
        False,
        "Track landmarks through every frame (the crops animate makes; 1.5-2.6x the CPU time) instead of a face "
        "search on the kept frames only.",
        panel=_DATA,
    )
    retry_failed: bool = option(False, "Try again the videos an earlier run reported as bad.", panel=_DATA)
