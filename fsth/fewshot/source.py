"""A person ready to render: whatever SOURCE names, turned into a generator for that person and their face shape.

In: SOURCE, one of

* photos (a file, several, a directory) or a video: shots at the meta checkpoint's crop and size, embedded on the
  fly (``embed``: feed-forward), optionally fine-tuned first (``finetune``);
* an ``embedding`` file (``fsth embed``): its e_hat with the meta checkpoint's generator;
* a ``person`` file (``fsth finetune``): its own G';

and how to read it: the meta checkpoint (``FewShotModel.load``, the one way to open one), the landmark backend (by
default the one the model was trained on: ``detector_for``), ``--model warp`` (the warp alone: no network).

Out: ``Person``: the generator (training form; ``Renderer.of`` makes the fast form), the person's landmarks in crop
pixels (the face that retargeting keeps), the crop policy and model config every later step must use (a model must
see the crop it was trained on), the landmark detector that read the shots (the driver is read with the same one),
and for a photo source the photo and its crop box (for pasting the face back).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from fsth import console
from fsth.checkpoint import load_checkpoint, read_header
from fsth.config import ModelConfig, TrainConfig
from fsth.errors import CheckpointError, FsthError, InputError
from fsth.fewshot.embed import check_provenance
from fsth.fewshot.model import FewShotModel, crop_policy_of, detector_for
from fsth.fewshot.shots import Shots
from fsth.landmarks.crop import CropPolicy
from fsth.landmarks.detectors import LandmarkDetector
from fsth.video import is_image

CHECKPOINT_SUFFIX = ".safetensors"


@dataclass
class Person:
    generator: torch.nn.Module | None  # a meta Generator (with e_hat), a fine-tuned PersonGenerator; None: warp alone
    e_hat: torch.Tensor | None  # (D,) for a meta Generator; None for a PersonGenerator
    config: ModelConfig
    crop_policy: CropPolicy
    landmark_backend: str | None  # the backend the meta model was trained on
    points: np.ndarray  # (K, 68, 2) float32: the shots' landmarks in crop pixels; points[0] is the face to drive
    name: str  # for messages
    photo: Path | None = None  # the source photo (the first one), for --paste-back
    box: np.ndarray | None = None  # its crop box [x0, y0, x1, y1] in photo pixels
    crops: np.ndarray | None = None  # (K, S, S, 3) uint8: the shots, what a warp-guided generator (or the warp) moves
    mesh: np.ndarray | None = None  # (K, 478, 2) float32: the shots' face mesh in crop pixels (mesh backend), else None
    detector: LandmarkDetector | None = None  # what read the shots; the driver is read with it too
    image: np.ndarray | None = None  # (H, W, 3) uint8: ``photo``'s pixels, as read for the shots (not read again)

    @property
    def size(self) -> int:
        return self.config.image_size


def is_checkpoint(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() == CHECKPOINT_SUFFIX


def _kind(path: str | os.PathLike) -> str | None:
    """The kind a safetensors file says it is (None when its header cannot be read: loading it says why)."""
    try:
        return read_header(path)[0].get("kind")
    except FsthError:
        return None


def load_person(
    source: Sequence[str | os.PathLike] | str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    *,
    warp_only: bool = False,
    backend: str | None = None,
    fan_weights: str | os.PathLike | None = None,
    detector: LandmarkDetector | None = None,
    k: int | None = None,
    face_index: int = 0,
    finetune_steps: int = 0,
    train_cfg: TrainConfig | dict | None = None,
    batch_size: int = 1,
    device=None,
) -> Person:
    """A person from SOURCE (module docstring) and the meta ``checkpoint`` (``FewShotModel.load``'s default place
    when None).

    ``detector``: the landmark detector for the shots (and the driver: ``Person.detector``); by default built here
    from ``backend`` / ``fan_weights`` for the landmarks the rendering model was trained on (``detector_for``).
    ``k``: the number of shots; ``face_index``: which face of a photo or video that shows several (0: the largest).
    ``finetune_steps``: fine-tune on the shots first; ``train_cfg`` is then its
    configuration, or a dict of changes to the model's defaults (``TrainConfig.for_model``). ``warp_only``: for the
    warp alone (``--model warp``): photos are cropped at the meta checkpoint's crop policy and size (its header
    only), a person or embedding file gives its stored shots and needs no meta checkpoint."""
    paths = [source] if isinstance(source, (str, os.PathLike)) else list(source)
    file = paths[0] if len(paths) == 1 and is_checkpoint(paths[0]) else None
    if warp_only and finetune_steps:
        raise InputError("--model warp has no network to fine-tune: drop --finetune-steps")
    if file is not None and finetune_steps:
        raise InputError(
            f"{file}: --finetune-steps fine-tunes on photos; give the photos as SOURCE "
            "(or fine-tune with `fsth finetune`)"
        )
    if file is not None and checkpoint is not None and warp_only:  # with photos it gives the crop policy and size
        raise InputError(f"--model warp with {file} uses no checkpoint: drop --checkpoint {checkpoint}")
    if file is not None and checkpoint is not None and _kind(file) == "person":
        raise InputError(f"{file}: a person file carries its own generator; drop --checkpoint {checkpoint}")
    if file is not None:
        person = _person_from_file(file, checkpoint, warp_only)
        trained_with = None if warp_only else person.landmark_backend
        person.detector = detector or detector_for(trained_with, backend, fan_weights)
        return person
    networks = () if warp_only else None if finetune_steps else ("E", "G")
    model = FewShotModel.load(checkpoint, only=networks, device=device)
    detector = detector or detector_for(None if warp_only else model.landmark_backend, backend, fan_weights)
    shots = model.shots(paths, detector, k, face_index)
    if warp_only:
        return _person(shots, model.config, model.crop_policy, None, detector)
    e_hat = model.embed(shots)
    console.debug(f"e_hat of {len(shots)} shot(s): norm {float(e_hat.norm()):.3g}")
    generator, person_e_hat = model.G, e_hat
    if finetune_steps:
        if not isinstance(train_cfg, TrainConfig):
            train_cfg = model.train_config(**(train_cfg or {}))
        result = model.finetune(shots, finetune_steps, train_cfg, e_hat=e_hat, batch_size=batch_size)
        generator, person_e_hat = result.G.cpu().eval(), None
    return _person(shots, model.config, model.crop_policy, model.landmark_backend, detector, generator, person_e_hat)


def _person(shots: Shots, config, policy, backend, detector, generator=None, e_hat=None) -> Person:
    """A person from its shots: the first shot's file names it and, when it is a photo, is what --paste-back
    pastes into (with its crop box)."""
    first = Path(shots.sources[0])
    photo = first if is_image(first) else None
    return Person(
        generator,
        e_hat,
        config,
        policy,
        backend,
        shots.points,
        first.name,
        photo,
        shots.boxes[0] if photo else None,
        crops=shots.crops,
        mesh=shots.mesh,
        detector=detector,
        image=shots.photo if photo else None,
    )


def _person_from_file(path, checkpoint, warp_only: bool) -> Person:
    """A person from an ``embedding`` file (with the meta checkpoint's generator) or a ``person`` file;
    ``warp_only``: its shots alone, at its own crop policy and size, no network (no meta checkpoint is read)."""
    ckpt = load_checkpoint(path, ("embedding", "person"), only=("landmarks", "crops") if warp_only else None)
    points = ckpt.landmarks.numpy().astype(np.float32)
    crops = ckpt.tensors["crops"].numpy() if "crops" in ckpt.tensors else None
    if warp_only and crops is None:
        raise InputError(f"{path}: holds no shots to warp (made for the paper's model); give the photos")
    generator, e_hat, config, policy, backend = None, None, ckpt.config, crop_policy_of(ckpt), ckpt.landmark_backend
    if ckpt.kind == "person" and not warp_only:
        generator = ckpt.generator()
    elif not warp_only:
        meta = FewShotModel.load(checkpoint, only=("G",))
        if meta.config != ckpt.config:
            raise CheckpointError(f"{path}: made for another model configuration than meta checkpoint {meta.path}")
        if meta.crop_policy != policy:
            raise CheckpointError(f"{path}: made with another crop policy than meta checkpoint {meta.path}")
        check_provenance(ckpt, meta.checkpoint)
        generator, e_hat, backend = meta.G, ckpt.e_hat.float(), meta.landmark_backend
    return Person(generator, e_hat, config, policy, backend, points, Path(path).name, crops=crops)
