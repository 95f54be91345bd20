"""Episodes of meta-learning from a built dataset (``fsth.dataset``): K shots + 1 target of one video.

Stage: train. In: a dataset directory. Out, per episode: the K + 1 frames x and their landmark images y at the
model's size, uint8 RGB (K + 1, S, S, 3) each (the first K are the shots for the embedder, the last is the
target), and the video's index i (its row of W). The training loop turns them into tensors in [-1, 1] on its
device (``images_to_tensor``), so DataLoader workers hand over 4x fewer bytes.

Each stored crop goes through ``face_pair`` with ``box=full_box(crop)``: resized to the model's size with its
landmarks, and the landmark image drawn by the one sketch renderer at that size.

An episode is a pure function of (seed, step, slot): ``slot = rank * batch_size + position`` numbers the
episodes of one step across all processes. Which video, which frames: ``numpy.random.default_rng([seed, step,
slot])``. So a resumed run reads exactly the episodes the uninterrupted one would have, whatever the number of
DataLoader workers, and a run on 2 processes with batch B sees the episodes of a 1-process run with batch 2B.

A video whose record cannot be read is reported once and replaced by another (drawn from the same generator,
so still deterministic): a long run does not die on one damaged file.
"""

from __future__ import annotations

import os
from typing import Iterator, NamedTuple

import numpy as np
import torch

from fsth import console
from fsth.dataset.store import Dataset, VideoRecord
from fsth.errors import InputError
from fsth.landmarks.pair import face_pair, full_box

SAMPLE_TAG = 0x5A4D  # seeds the fixed episodes of the sample grids apart from the training episodes
_MAX_TRIES = 16
_OPEN_RECORDS = 64


def check_shots(dataset: Dataset, shots: int) -> None:
    """An episode takes K + 1 frames of one video: refuse a K that no video of ``dataset`` has frames for (every
    episode would repeat frames, its target among its shots), warn when some videos are too short for it (their
    episodes repeat frames)."""
    counts = [v.num_frames for v in dataset.videos]
    if shots + 1 > max(counts):
        raise InputError(
            f"--shots {shots}: an episode takes K + 1 = {shots + 1} frames of one video, and the videos of "
            f"{dataset.root} have at most {max(counts)} (--frames-per-video {dataset.settings.frames_per_video}); "
            f"give --shots {max(counts) - 1} or fewer, or build the dataset with more frames per video"
        )
    short = sum(1 for n in counts if n < shots + 1)
    if short:
        console.warn(
            f"--shots {shots}: {short} of the {len(counts)} videos have fewer than K + 1 = {shots + 1} "
            "frames; their episodes repeat frames"
        )


class EpisodeDataset(torch.utils.data.Dataset):
    """Map-style dataset whose items are addressed by ``(step, slot)``; see the module docstring."""

    def __init__(self, dataset: Dataset | str | os.PathLike, image_size: int, shots: int, seed: int = 0):
        self.dataset = dataset if isinstance(dataset, Dataset) else Dataset(dataset)
        self.image_size = image_size
        self.shots = shots
        self.seed = seed
        self._bad: set[int] = set()
        self._open: dict[int, VideoRecord] = {}

    def __len__(self) -> int:
        return len(self.dataset)  # videos; items are addressed by (step, slot), see EpisodeSampler

    def __getitem__(self, key: tuple[int, int]) -> dict[str, np.ndarray]:
        step, slot = key
        return self.episode(np.random.default_rng([self.seed, step, slot]))

    def fixed_episode(self, i: int, n: int) -> dict[str, np.ndarray]:
        """Episode ``i`` of ``n`` fixed ones (for sample grids): videos spread over the dataset, fixed frames."""
        return self.episode(np.random.default_rng([self.seed, SAMPLE_TAG, i]), video=(i * len(self.dataset)) // n)

    def episode(self, rng: np.random.Generator, video: int | None = None) -> dict[str, np.ndarray]:
        """K + 1 frames of one video (random unless given): x, y (K + 1, S, S, 3) uint8 and its index."""
        for _ in range(_MAX_TRIES):
            index = int(rng.integers(len(self.dataset))) if video is None else video
            try:
                record = self._record(index)
                picks = rng.choice(len(record), self.shots + 1, replace=len(record) < self.shots + 1)
                crops = record.frames(picks)
            except InputError as exc:
                if index not in self._bad:
                    self._bad.add(index)
                    console.warn(f"{exc}; training uses other videos instead")
                video = None
                continue
            pairs = [
                face_pair(crop, record.points[j], self.image_size, box=full_box(crop)) for crop, j in zip(crops, picks)
            ]
            return {
                "x": np.stack([p.crop for p in pairs]),  # (K + 1, S, S, 3) uint8
                "y": np.stack([p.sketch for p in pairs]),  # (K + 1, S, S, 3) uint8
                "points": np.stack([p.points for p in pairs]).astype(np.float32),  # (K + 1, 68, 2) in crop pixels
                "video": np.int64(index),
            }
        raise InputError(
            f"{self.dataset.root}: {len(self._bad)} of its {len(self.dataset)} videos could not be read (the last "
            f"{_MAX_TRIES} tries all failed); is the dataset damaged?"
        )

    def _record(self, index: int) -> VideoRecord:
        """The record of video ``index``, from a small cache of open files (per process)."""
        record = self._open.pop(index, None) or self.dataset.record(index)
        self._open[index] = record  # most recently used last
        if len(self._open) > _OPEN_RECORDS:
            self._open.pop(next(iter(self._open)))
        return record

    def __getstate__(self):  # DataLoader workers open their own files
        return {**self.__dict__, "_open": {}}


class EpisodeSampler(torch.utils.data.Sampler):
    """Batches of ``(step, slot)`` keys for one process: steps ``start`` .. ``stop - 1``, slots
    ``rank * batch_size`` .. ``(rank + 1) * batch_size - 1``."""

    def __init__(self, start: int, stop: int, batch_size: int, rank: int = 0):
        self.start, self.stop, self.batch_size, self.rank = start, stop, batch_size, rank

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        first = self.rank * self.batch_size
        for step in range(self.start, self.stop):
            yield [(step, first + b) for b in range(self.batch_size)]

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)


def episode_loader(
    episodes: EpisodeDataset,
    start: int,
    stop: int,
    batch_size: int,
    rank: int = 0,
    workers: int = 0,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:
    """Batches for steps ``start`` .. ``stop - 1``: x, y (B, K + 1, S, S, 3) uint8 tensors and video (B,)."""
    return torch.utils.data.DataLoader(
        episodes, batch_sampler=EpisodeSampler(start, stop, batch_size, rank), num_workers=workers,
        pin_memory=pin_memory, prefetch_factor=4 if workers else None, worker_init_fn=_ignore_ctrl_c,
    )  # fmt: skip


def _ignore_ctrl_c(worker_id: int) -> None:
    """DataLoader workers leave Ctrl-C to the training process, which finishes its step and saves; a worker
    that died of the terminal's SIGINT would make the next batch fail instead."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


class ModelInput(NamedTuple):
    """A batch of episodes as the networks take it. Frames and landmark images in [-1, 1]; points in crop pixels."""

    shots_x: torch.Tensor  # (B, K, 3, S, S)
    shots_y: torch.Tensor  # (B, K, 3, S, S)
    x: torch.Tensor  # (B, 3, S, S): the target frame
    y: torch.Tensor  # (B, 3, S, S): its landmark image
    video: torch.Tensor  # (B,): the video's row of W
    shots_points: torch.Tensor  # (B, K, 68, 2)
    points: torch.Tensor  # (B, 68, 2): the target's landmarks


def to_model_input(batch: dict, device) -> ModelInput:
    """A batch of episodes -> ``ModelInput`` on ``device``."""
    from fsth.models import images_to_tensor

    x, y = batch["x"], batch["y"]  # (B, K + 1, S, S, 3) uint8
    b, k1, s = x.shape[0], x.shape[1], x.shape[2]
    x = images_to_tensor(x.reshape(-1, s, s, 3).numpy(), device).view(b, k1, 3, s, s)
    y = images_to_tensor(y.reshape(-1, s, s, 3).numpy(), device).view(b, k1, 3, s, s)
    points = torch.as_tensor(batch["points"]).to(device, torch.float32)
    return ModelInput(
        x[:, :-1], y[:, :-1], x[:, -1], y[:, -1], batch["video"].to(device), points[:, :-1], points[:, -1]
    )
