"""The few-shot model: the one way to open a meta checkpoint, and everything few-shot use does with it.

In: a ``meta`` checkpoint (``--checkpoint``, ``$FSTH_CHECKPOINT``, the default location or the shipped model), or a
``person`` file to fine-tune further. The chain the paper describes, one method each:

    model = FewShotModel.load(path)
    shots = model.shots(["photo.jpg"], detector)       # crops and landmarks at the model's crop policy and size
    e_hat = model.embed(shots)                         # feed-forward: the mean of E over the shots
    result = model.finetune(shots, steps, e_hat=e_hat)  # G' and D' trained on the shots
    renderer = model.renderer(shots, e_hat=e_hat)       # or model.renderer(shots, G=result.G): frames from landmarks

The networks are read from the file once, when first needed, and kept on the model's device. ``crop_policy_of``
reads a checkpoint's crop policy; ``detector_for`` picks the landmark detector for the landmarks a model was trained
on (one detector, for a person's shots and the driver alike).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch

from fsth import console
from fsth.checkpoint import Checkpoint, load_checkpoint, load_meta_checkpoint, read_header
from fsth.config import ModelConfig, TrainConfig
from fsth.errors import CheckpointError, FsthError
from fsth.fewshot.embed import embed
from fsth.fewshot.finetune import finetune, person_networks, plan_steps
from fsth.fewshot.render import Renderer
from fsth.fewshot.shots import load_shots, person_crop_policy
from fsth.landmarks.backends import make_detector
from fsth.landmarks.crop import CropPolicy
from fsth.landmarks.detectors import LandmarkDetector, find_fan_weights


def crop_policy_of(ckpt: Checkpoint) -> CropPolicy:
    """The crop policy stored in a checkpoint (the default one, said on stderr, when it stores none)."""
    if not ckpt.crop_policy:
        console.debug(f"{ckpt.path}: no crop policy stored; using the default {CropPolicy()}")
        return CropPolicy()
    try:
        return CropPolicy.from_dict(ckpt.crop_policy)
    except FsthError as exc:  # a crafted or damaged file: name it
        raise CheckpointError(f"{ckpt.path}: bad metadata: {exc}") from None


def detector_for(
    trained_with: str | None, backend: str | None = None, fan_weights=None, *, as_trained: bool = False
) -> LandmarkDetector:
    """The landmark detector to use with a model trained on ``trained_with``'s landmarks ("fan", "dlib", "mesh" or
    None).

    ``backend`` overrides. A FAN model gets FAN (dlib with a warning when FAN's weights are not on disk: its points
    differ slightly from FAN's, which the model may show). Every other model gets the mesh (``auto``), a model
    trained on dlib's points (the shipped one until its fine-tuning on the mesh's) included: what ``animate``,
    ``embed`` and ``finetune`` do with the points is measure the person's and retarget the driver's expression onto
    them (the lids, the mouth's hole and interior), and there dlib's quirks showed. On a smile that shows the teeth
    dlib lays both inner lips across them (Audrey Hepburn's photo: 0.04 mouth widths open where the mesh reads
    0.10), so an opening mouth split her teeth and the generator drew lips over the gap: the face mesh read 0.67x
    the driver's opening where the warp alone, on the mesh's points, gave 0.93x.

    ``as_trained``: exactly the points the model was trained on, for ``fsth evaluate``, whose protocol draws each
    target frame's own landmarks as the model's input: a dlib model gets ``mesh+dlib`` there, dlib's own 68 points
    tracked as the dlib backend tracks them, with the mesh beside them.
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
    if trained_with == "dlib" and as_trained:
        return make_detector("mesh+dlib")
    return make_detector("auto", fan_weights)


class FewShotModel:
    """A ``meta`` (or ``person``) checkpoint and its networks, loaded once (module docstring)."""

    def __init__(self, checkpoint: Checkpoint, device=None):
        self.checkpoint = checkpoint
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.crop_policy: CropPolicy = crop_policy_of(checkpoint)
        self._E = self._G = None

    @classmethod
    def load(
        cls,
        path: str | os.PathLike | None = None,
        *,
        only: Sequence[str] | None = None,
        device=None,
        person: bool = False,
    ) -> "FewShotModel":
        """The meta checkpoint at ``path`` (or where ``find_meta_checkpoint`` finds one); with ``person``, a
        ``person`` file at ``path`` is taken too (to fine-tune further). ``only``: the networks to read."""
        if person and path is not None and read_header(path)[0].get("kind") == "person":
            return cls(load_checkpoint(path, "person", only=only), device)
        return cls(load_meta_checkpoint(path, only=only), device)

    # -- what the checkpoint says

    @property
    def config(self) -> ModelConfig:
        return self.checkpoint.config

    @property
    def size(self) -> int:
        return self.config.image_size

    @property
    def landmark_backend(self) -> str | None:
        return self.checkpoint.landmark_backend

    @property
    def path(self):
        return self.checkpoint.path

    def train_config(self, **given) -> TrainConfig:
        """Fine-tuning's configuration: this model's defaults (``TrainConfig.for_model``) with ``given`` changes."""
        return TrainConfig.for_model(self.config, **given)

    def detector(self, backend: str | None = None, fan_weights=None, *, as_trained: bool = False):
        """The landmark detector for this model (``detector_for``; ``backend`` overrides)."""
        return detector_for(self.landmark_backend, backend, fan_weights, as_trained=as_trained)

    # -- the chain

    def shots(self, paths: Sequence[str | os.PathLike], detector=None, k: int | None = None, face_index: int = 0):
        """``Shots`` from photos, a directory or a video, at this model's crop policy (``person_crop_policy``: edge
        pixels, blurred farther out, where the box runs off the photo) and size."""
        policy = person_crop_policy(self.crop_policy)
        return load_shots(paths, detector or self.detector(), self.size, policy, k, face_index)

    @property
    def E(self) -> torch.nn.Module:
        if self._E is None:
            self._E = self.checkpoint.embedder(self.device).eval()
        return self._E

    @property
    def G(self) -> torch.nn.Module:
        """The meta generator (eval mode), or a person file's G'."""
        if self._G is None:
            self._G = self.checkpoint.generator(self.device).eval()
        return self._G

    def embed(self, shots) -> torch.Tensor:
        """e_hat (D,) float32 on the CPU of ``shots``: the mean of E over them; a person file's own e_hat."""
        if self.checkpoint.kind == "person":
            return self.checkpoint.e_hat.float()
        return embed(self.E, shots, self.device)

    def finetune(
        self,
        shots,
        steps: int | None = None,
        train_cfg: TrainConfig | None = None,
        *,
        epochs: float | None = None,
        e_hat: torch.Tensor | None = None,
        content_nets=None,
        batch_size: int = 1,
        seed: int = 0,
        label: str = "fine-tuning",
    ):
        """G' and D' from this checkpoint (psi' = P e_hat, w' = w0 + e_hat; a person file's own), trained on
        ``shots`` for ``steps`` steps, or ``epochs`` passes over them (default: the paper's, ``train_cfg``'s
        ``finetune_epochs``): a ``fsth.fewshot.finetune.FinetuneResult``. ``train_cfg``: by default this model's
        (``train_config``). ``content_nets``: L_CNT's networks when ``train_cfg`` has it on (loaded here when not
        given)."""
        from fsth.models import load_content_networks

        train_cfg = train_cfg if train_cfg is not None else self.train_config()
        steps = plan_steps(len(shots), batch_size, steps=steps, epochs=epochs, cfg=train_cfg)
        if content_nets is None and train_cfg.content_loss:
            content_nets = load_content_networks(train_cfg, self.device)
        if e_hat is None and self.checkpoint.kind != "person":
            e_hat = self.embed(shots)
        G, D = person_networks(self.checkpoint, e_hat, self.device)
        return finetune(
            G,
            D,
            shots,
            steps,
            train_cfg,
            content_nets=content_nets,
            batch_size=batch_size,
            device=self.device,
            seed=seed,
            label=label,
        )

    def renderer(
        self,
        shots=None,
        *,
        e_hat: torch.Tensor | None = None,
        G: torch.nn.Module | None = None,
        source: tuple[np.ndarray, np.ndarray] | None = None,
        **options,
    ):
        """The fast renderer (``Renderer``) of G' (``G``), or of the meta G with ``e_hat``; a
        warp-guided G also gets the shots it warps (``source`` = (crops, points), by default ``shots``'s).
        ``options`` go to ``Renderer``."""
        G = G if G is not None else self.G
        if G.cfg.warp:
            options["source"] = source if source is not None else (shots.crops, shots.points)
        return Renderer(G, e_hat, device=options.pop("device", self.device), **options)
