"""The run directory of ``fsth train``: everything one training run writes, and what ``--resume`` reads back.

::

    RUN/config.json               the resolved configuration: model, training, options, dataset (JSON)
    RUN/log.txt                   what the run said: start, resumes, a line per logging step, checkpoints, end
    RUN/stats.jsonl               one JSON row per logging step: step, losses, learning rates, samples/s, ...
    RUN/videos.txt                the dataset's video ids in W's row order (row i = line i + 1)
    RUN/samples/step_00001000.png sample grids: per fixed episode, landmark image | generated | target
    RUN/meta.safetensors          the latest meta checkpoint (kind "meta": E, G, D, crop policy, landmark
                                  backend): what embed, finetune, animate and evaluate take
    RUN/train_state.safetensors   the latest training state (kind "train_state", below): what --resume reads
    RUN/snapshots/meta_00010000.safetensors   the meta checkpoint every --snapshot-every steps (the latest
                                  --keep of them; all by default), to pick or compare steps afterwards
    RUN/tensorboard/              with --tensorboard: the stats rows as scalars and the sample grids as images

Checkpoints and samples are written atomically (temp file + rename); log.txt and stats.jsonl are appended
line by line, and on resume stats.jsonl is cut back to the resumed step (atomically).

The training state is one fsth checkpoint (safetensors, no pickle) of kind ``train_state``: the networks
under ``E.*``, ``G.*``, ``D.*`` like a meta checkpoint, every optimizer's tensors under ``opt.<name>.<param
index>.<key>`` (Adam's ``exp_avg``, ``exp_avg_sq``, ``step``; SparseAdam's moments of all of W), and in its
JSON metadata the step, the seed, the optimizers' non-tensor state (SparseAdam's integer step), the dataset's
fingerprint and the resolved configuration. Random numbers need no stored state: every episode and the torch
generator at each step are functions of (seed, step, rank) (see ``fsth.episodes`` and ``fsth.train``).
"""

from __future__ import annotations

import json
import math
import os
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from fsth import console
from fsth.checkpoint import KINDS, load_checkpoint, save_checkpoint
from fsth.dataset.store import read_jsonl, write_jsonl
from fsth.errors import InputError
from fsth.files import atomic_write
from fsth.video import write_image

STATE_KIND = KINDS["train_state"]  # declared in fsth.checkpoint with the other kinds


def optimizer_content(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's state as (tensors ``"<param index>.<key>"``, JSON-safe rest)."""
    tensors, scalars = {}, {}
    for index, state in opt.state_dict()["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{key}"] = value
            else:
                scalars[f"{index}.{key}"] = value
    return tensors, scalars


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], scalars: dict) -> None:
    """The inverse of ``optimizer_content`` for an optimizer built over the same parameters, in the same order."""
    state: dict[int, dict] = defaultdict(dict)
    for name, value in [*tensors.items(), *scalars.items()]:
        index, key = name.split(".", 1)
        state[int(index)][key] = value
    sd = opt.state_dict()
    sd["state"] = dict(state)
    opt.load_state_dict(sd)


class RunDir:
    """The files of one training run (see the module docstring). Only the writer (rank 0) writes."""

    def __init__(self, path: str | os.PathLike, writer: bool = True):
        self.path = Path(path)
        self.writer = writer
        self.config = self.path / "config.json"
        self.log_file = self.path / "log.txt"
        self.stats = self.path / "stats.jsonl"
        self.videos = self.path / "videos.txt"
        self.samples = self.path / "samples"
        self.meta = self.path / "meta.safetensors"
        self.state = self.path / "train_state.safetensors"
        self.snapshots = self.path / "snapshots"
        self.tensorboard = self.path / "tensorboard"
        self._events = None  # the TensorBoard SummaryWriter, with --tensorboard
        self._lock: int | None = None  # a file descriptor of the directory, locked while this run uses it

    # -- starting and resuming

    def lock(self) -> None:
        """Hold the directory (a ``flock`` on it, released when the process ends or ``close``): a second ``fsth
        train`` on it (two ``--resume``) is refused with one line instead of writing the same files."""
        if self._lock is not None or not self.writer or not self.path.is_dir():
            return
        import fcntl

        fd = os.open(self.path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise InputError(f"--run-dir {self.path}: another fsth train is using it; wait for it to end") from None
        self._lock = fd

    def remove_unstarted(self, existed: bool) -> None:
        """A new run that failed before its first checkpoint: remove what ``start`` wrote, so that the same command
        can simply be run again (the directory too unless it ``existed`` before, empty)."""
        if not self.writer or self.state.exists() or self.meta.exists():
            return
        import shutil

        for item in (self.config, self.videos, self.log_file, self.stats, self.samples, self.tensorboard):
            shutil.rmtree(item) if item.is_dir() else item.unlink(missing_ok=True)
        if not existed and self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()

    def check(self, resume: bool) -> None:
        """A new run needs a new (or empty) directory; a resumed one needs a training state in it. The directory,
        where it exists, is locked (``lock``)."""
        self.lock()
        if resume:
            if not self.state.is_file():
                raise InputError(
                    f"--resume: {self.path} holds no training state ({self.state.name}); nothing to resume"
                )
        elif self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise InputError(
                f"{self.path} already holds a training run; --resume continues it, or choose a new --run-dir"
                if self.state.is_file()
                else f"--run-dir {self.path} exists and is not an empty directory"
            )

    def start(self, resolved: dict, video_ids: list[str], step: int, *, tensorboard: bool = False) -> None:
        """Create the directory and write the config and W's video order (new run), or cut stats back (resume).
        ``tensorboard``: also write the stats rows and sample grids as TensorBoard events in RUN/tensorboard/ (a
        resumed run's events past ``step`` are dropped, as its stats rows are)."""
        if not self.writer:
            return
        summary_writer = _summary_writer() if tensorboard else None  # before writing anything: it may be missing
        self.path.mkdir(parents=True, exist_ok=True)
        self.lock()
        self.samples.mkdir(exist_ok=True)
        atomic_write(self.config, lambda f: f.write((json.dumps(resolved, indent=2) + "\n").encode()))
        atomic_write(self.videos, lambda f: f.write("".join(v + "\n" for v in video_ids).encode()))
        if step and self.stats.exists():
            write_jsonl(self.stats, [r for r in read_jsonl(self.stats) if r.get("step", 0) <= step])
        if summary_writer is not None:
            self._events = summary_writer(str(self.tensorboard), purge_step=step + 1 if step else None)

    def close(self) -> None:
        """Flush and close the TensorBoard event file, if one is open; release the directory's lock."""
        if self._events is not None:
            self._events.close()
            self._events = None
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    def read_config(self) -> dict:
        try:
            return json.loads(self.config.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"{self.config}: cannot read the run's configuration ({exc})") from None

    # -- what a run says

    def log(self, line: str, echo: bool = True) -> None:
        """A line in log.txt (and on stderr unless ``echo`` is off)."""
        if not self.writer:
            return
        if echo:
            console.log(line)
        with open(self.log_file, "a", encoding="utf-8") as f:
            f.write(line + "\n")

    def append_stats(self, row: dict) -> None:
        """One row of stats.jsonl: strict JSON, a value that is not finite written as null (JSON has no NaN)."""
        if self.writer:
            row = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
            with open(self.stats, "a", encoding="utf-8") as f:
                f.write(json.dumps(row, separators=(",", ":"), allow_nan=False) + "\n")
            if self._events is not None and "step" in row:
                for name, value in row.items():
                    if name not in ("step", "time") and isinstance(value, (int, float)):  # None: not finite
                        self._events.add_scalar(name, value, row["step"])

    def write_samples(self, step: int, rows: list[list[np.ndarray]]) -> Path | None:
        """A grid PNG: one row per episode, its images (H, W, 3) uint8 side by side, 2 px grey between cells."""
        if not self.writer:
            return None
        path = self.samples / f"step_{step:08d}.png"
        grid = image_grid(rows)
        write_image(path, grid)
        if self._events is not None:
            self._events.add_image("samples", grid, step, dataformats="HWC")
        return path

    # -- checkpoints

    def save(self, nets: dict, optimizers: dict, cfg, *, step: int, meta: dict, state_meta: dict) -> None:
        """Write the training state, then the meta checkpoint (both atomic)."""
        if not self.writer:
            return
        content, scalars = dict(nets), {}
        for name, opt in optimizers.items():
            tensors, scalars[name] = optimizer_content(opt)
            content[f"opt.{name}"] = tensors
        save_checkpoint(
            self.state, STATE_KIND.name, content, cfg, step=step, optimizer_scalars=scalars, **meta, **state_meta
        )
        save_checkpoint(self.meta, "meta", nets, cfg, step=step, **meta)

    def snapshot(self, step: int, keep: int = 0) -> Path | None:
        """Copy the meta checkpoint just saved to snapshots/meta_<step>.safetensors (atomically), then delete the
        oldest snapshots beyond the latest ``keep`` (0 keeps all)."""
        if not self.writer:
            return None
        self.snapshots.mkdir(exist_ok=True)
        path = self.snapshots / f"meta_{step:08d}.safetensors"
        data = self.meta.read_bytes()
        atomic_write(path, lambda f: f.write(data))
        if keep:
            for old in sorted(self.snapshots.glob("meta_*.safetensors"))[:-keep]:
                old.unlink()
        return path

    def load(self, nets: dict, optimizers: dict, cfg) -> dict:
        """Load the training state into ``nets`` and ``optimizers``; returns its JSON metadata (with ``step``)."""
        ckpt = load_checkpoint(self.state, kind=STATE_KIND.name)
        if ckpt.config != cfg:
            raise InputError(f"{self.state}: holds a model of another configuration than this run's config.json")
        for name, net in nets.items():
            net.load_state_dict(ckpt.state_dict(name))
        scalars = ckpt.meta.get("optimizer_scalars", {})
        for name, opt in optimizers.items():
            load_optimizer(opt, ckpt.state_dict(f"opt.{name}"), scalars.get(name, {}))
        return ckpt.meta


def _summary_writer():
    """torch's TensorBoard ``SummaryWriter`` class; ``InputError`` if the tensorboard package is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise InputError(
            "--tensorboard needs the tensorboard package: pip install 'fsth[tensorboard]' (or: pip install tensorboard)"
        ) from None
    return SummaryWriter


def image_grid(rows: list[list[np.ndarray]], gap: int = 2) -> np.ndarray:
    """Images (H, W, 3) uint8 in rows and columns, ``gap`` px of grey between them."""
    h, w = rows[0][0].shape[:2]
    cols = max(len(r) for r in rows)
    out = np.full((len(rows) * (h + gap) - gap, cols * (w + gap) - gap, 3), 128, np.uint8)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            out[i * (h + gap) : i * (h + gap) + h, j * (w + gap) : j * (w + gap) + w] = image
    return out
