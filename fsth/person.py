"""A person ready to render: whatever SOURCE names, turned into a generator for that person and their face shape.

Stage: few-shot use (``fsth animate``) and evaluation; the thin layer between the networks (``fsth.models``) and
the pipeline (``fsth.animate``). In: SOURCE, one of

* photos (a file, several, a directory) or a video: shots at the meta checkpoint's crop and size, embedded on the
  fly (``fsth.embed``: feed-forward), optionally fine-tuned first (``fsth.finetune``);
* an ``embedding`` file (``fsth embed``): its e_hat with the meta checkpoint's generator;
* a ``person`` file (``fsth finetune``): its own G'.

Out: ``Person``: the generator (training form; ``fsth.animate.Renderer`` makes the fast form), the person's
landmarks in crop pixels (the face that retargeting keeps), the crop policy and model config every later step must
use (a model must see the crop it was trained on), and for a photo source the photo and its crop box (for pasting the
face back).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from fsth import console
from fsth.checkpoint import Checkpoint, load_checkpoint, load_meta_checkpoint
from fsth.config import ModelConfig, TrainConfig
from fsth.errors import CheckpointError, FsthError, InputError
from fsth.landmarks.crop import CropPolicy
from fsth.landmarks.detectors import LandmarkDetector, find_fan_weights, make_detector
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

    @property
    def size(self) -> int:
        return self.config.image_size


def crop_policy_of(ckpt: Checkpoint) -> CropPolicy:
    """The crop policy stored in a checkpoint (the default one, said on stderr, when it stores none)."""
    if not ckpt.crop_policy:
        console.debug(f"{ckpt.path}: no crop policy stored; using the default {CropPolicy()}")
        return CropPolicy()
    try:
        return CropPolicy.from_dict(ckpt.crop_policy)
    except FsthError as exc:  # a crafted or damaged file: name it
        raise CheckpointError(f"{ckpt.path}: bad metadata: {exc}") from None


def detector_for(trained_with: str | None, backend: str | None = None, fan_weights=None) -> LandmarkDetector:
    """The landmark detector to use with a model trained on ``trained_with``'s landmarks ("fan", "dlib", "mesh" or
    None).

    ``backend`` overrides. A FAN model gets FAN (dlib with a warning when FAN's weights are not on disk: its points
    differ slightly from FAN's, which the model may show). A dlib model gets ``mesh+dlib``: dlib's own 68 points,
    tracked as the dlib backend tracks them, with the mesh beside them (for lids, lips and irises): the shipped
    model, given the mesh's 68 instead, opened its mouth a quarter as wide on the test driver (its sketches differ
    from dlib's). Every other model gets the mesh (``auto``).
    """
    if backend is not None and backend != "auto":
        return make_detector(backend, fan_weights)
    if trained_with == "fan" and find_fan_weights(fan_weights)[0] is None:
        console.warn(
            "the model was trained on FAN landmarks, but FAN's weights are not on disk: using dlib's landmarks, "
            "which differ slightly (--backend fan downloads FAN's weights, --fan-weights uses a local copy)"
        )
        return make_detector("dlib")
    if trained_with == "fan":
        return make_detector(trained_with, fan_weights)
    if trained_with == "dlib":
        return make_detector("mesh+dlib")
    return make_detector("auto", fan_weights)


def landmark_backend_of(source: Sequence[str | os.PathLike] | str | os.PathLike, checkpoint=None) -> str | None:
    """The landmarks the model that will render SOURCE was trained on (``load_person(source, checkpoint)``'s
    ``landmark_backend``), from checkpoint headers alone: a person file's own, else the meta checkpoint's. For the
    one detector of SOURCE's shots and the driver (``detector_for``), built before the person is loaded."""
    paths = _paths(source)
    if len(paths) == 1 and is_checkpoint(paths[0]):
        ckpt = load_checkpoint(paths[0], ("embedding", "person"), only=())
        if ckpt.kind == "person":
            return ckpt.landmark_backend
    return load_meta(checkpoint, only=()).landmark_backend


def _paths(source: Sequence[str | os.PathLike] | str | os.PathLike) -> list:
    return [source] if isinstance(source, (str, os.PathLike)) else list(source)


def is_checkpoint(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() == CHECKPOINT_SUFFIX


def load_meta(checkpoint: str | os.PathLike | None, only: Sequence[str] | None = None) -> Checkpoint:
    """The meta checkpoint (``--checkpoint``, ``$FSTH_CHECKPOINT`` or the default location)."""
    return load_meta_checkpoint(checkpoint, only=only)


def person_from_file(
    path: str | os.PathLike, checkpoint: str | os.PathLike | None = None, *, warp_only: bool = False
) -> Person:
    """A person from an ``embedding`` file (with the meta checkpoint's generator) or a ``person`` file.
    ``warp_only``: its shots alone, at its own crop policy and size, no network (no meta checkpoint is read)."""
    ckpt = load_checkpoint(path, ("embedding", "person"), only=("landmarks", "crops") if warp_only else None)
    points = ckpt.landmarks.numpy().astype(np.float32)
    crops = ckpt.tensors["crops"].numpy() if "crops" in ckpt.tensors else None
    if ckpt.kind == "person" or warp_only:
        return Person(
            None if warp_only else ckpt.generator(),
            None,
            ckpt.config,
            crop_policy_of(ckpt),
            ckpt.landmark_backend,
            points,
            Path(path).name,
            crops=crops,
        )
    from fsth.embed import check_provenance

    meta = load_meta(checkpoint, only=("G",))
    if meta.config != ckpt.config:
        raise CheckpointError(f"{path}: made for another model configuration than meta checkpoint {meta.path}")
    if crop_policy_of(meta) != crop_policy_of(ckpt):
        raise CheckpointError(f"{path}: made with another crop policy than meta checkpoint {meta.path}")
    check_provenance(ckpt, meta)
    return Person(
        meta.generator(),
        ckpt.e_hat.float(),
        meta.config,
        crop_policy_of(meta),
        meta.landmark_backend,
        points,
        Path(path).name,
        crops=crops,
    )


def person_from_shots(
    paths: Sequence[str | os.PathLike],
    checkpoint: str | os.PathLike | None = None,
    *,
    detector: LandmarkDetector | None = None,
    k: int | None = None,
    finetune_steps: int = 0,
    train_cfg: TrainConfig | dict | None = None,
    batch_size: int = 1,
    device=None,
) -> Person:
    """A person from photos or a video: shots -> e_hat (feed-forward), then ``finetune_steps`` of fine-tuning.

    ``train_cfg``: fine-tuning's configuration, or a dict of changes to the model's defaults
    (``TrainConfig.for_model``), or None for those defaults."""
    from fsth.fewshot import FewShotModel

    model = FewShotModel.load(checkpoint, only=None if finetune_steps else ("E", "G"), device=device)
    shots = model.shots(paths, detector, k)
    e_hat = model.embed(shots)
    console.debug(f"e_hat of {len(shots)} shot(s): norm {float(e_hat.norm()):.3g}")
    if not isinstance(train_cfg, TrainConfig):
        train_cfg = model.train_config(**(train_cfg or {}))
    generator, person_e_hat = model.G, e_hat
    if finetune_steps:
        result = model.finetune(shots, finetune_steps, train_cfg, e_hat=e_hat, batch_size=batch_size)
        generator, person_e_hat = result.G.cpu().eval(), None
    return Person(
        generator,
        person_e_hat,
        model.config,
        model.crop_policy,
        model.landmark_backend,
        shots.points,
        *_source_photo(shots),
        crops=shots.crops,
        mesh=shots.mesh,
    )


def _source_photo(shots) -> tuple[str, Path | None, np.ndarray | None]:
    """A person's name, photo and crop box in it (for --paste-back), from its shots: the first shot's file; no
    photo or box when that is a video."""
    first = Path(shots.sources[0])
    photo = first if is_image(first) else None
    return first.name, photo, shots.boxes[0] if photo else None


def person_for_warp(
    paths: Sequence[str | os.PathLike],
    *,
    detector: LandmarkDetector | None = None,
    k: int | None = None,
    config: ModelConfig | None = None,
    crop_policy: CropPolicy | None = None,
) -> Person:
    """A person for the warp alone (``fsth animate --model warp``): the shots, no network. Crop and size are the
    shipped model's (``warp256``, the default crop policy) unless given."""
    from fsth.shots import load_shots, person_crop_policy

    config = config or ModelConfig.preset("warp256")
    policy = crop_policy or CropPolicy()
    shots = load_shots(paths, detector or make_detector("auto"), config.image_size, person_crop_policy(policy), k)
    return Person(
        None, None, config, policy, None, shots.points, *_source_photo(shots), crops=shots.crops, mesh=shots.mesh
    )


def load_person(
    source: Sequence[str | os.PathLike] | str | os.PathLike,
    checkpoint: str | os.PathLike | None = None,
    *,
    warp_only: bool = False,
    **options,
) -> Person:
    """A person from SOURCE: an ``embedding`` or ``person`` file, or photos / a directory / a video (``options``
    go to ``person_from_shots``). ``warp_only``: for the warp alone (``person_for_warp``, at the meta checkpoint's
    crop policy and size; a person or embedding file gives its stored shots, and no meta checkpoint is needed)."""
    paths = _paths(source)
    if warp_only:
        if options.get("finetune_steps"):
            raise InputError("--model warp has no network to fine-tune: drop --finetune-steps")
        if len(paths) == 1 and is_checkpoint(paths[0]):
            if checkpoint is not None:  # with photos it gives the crop policy and size; a file has its own
                raise InputError(f"--model warp with {paths[0]} uses no checkpoint: drop --checkpoint {checkpoint}")
            person = person_from_file(paths[0], warp_only=True)
            if person.crops is None:
                raise InputError(f"{paths[0]}: holds no shots to warp (made for the paper's model); give the photos")
            return person
        meta = load_meta(checkpoint, only=())  # its header: the crop policy and size of the shots
        return person_for_warp(
            paths,
            detector=options.get("detector"),
            k=options.get("k"),
            config=meta.config,
            crop_policy=crop_policy_of(meta),
        )
    if len(paths) == 1 and is_checkpoint(paths[0]):
        if options.get("finetune_steps"):
            raise InputError(
                f"{paths[0]}: --finetune-steps fine-tunes on photos; give the photos as SOURCE "
                "(or fine-tune with `fsth finetune`)"
            )
        return person_from_file(paths[0], checkpoint)
    return person_from_shots(paths, checkpoint, **options)
