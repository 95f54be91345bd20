"""The few-shot model: one object over a checkpoint for everything few-shot use does with it.

Stage: few-shot use (``fsth embed``, ``fsth finetune``, ``fsth animate``) and evaluation. In: a ``meta`` checkpoint
(``--checkpoint``, ``$FSTH_CHECKPOINT``, the default location or the shipped model), or a ``person`` file to
fine-tune further. The chain the paper describes, one method each:

    model = FewShotModel.load(path)
    shots = model.shots(["photo.jpg"], detector)       # crops and landmarks at the model's crop policy and size
    e_hat = model.embed(shots)                         # feed-forward: the mean of E over the shots
    result = model.finetune(shots, steps, e_hat=e_hat)  # G' and D' trained on the shots
    renderer = model.renderer(shots, e_hat=e_hat)       # or model.renderer(shots, G=result.G): frames from landmarks

The networks are read from the file once, when first needed, and kept on the model's device.
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np
import torch

from fsth.checkpoint import Checkpoint, load_checkpoint, load_meta_checkpoint, read_header
from fsth.config import ModelConfig, TrainConfig
from fsth.landmarks.crop import CropPolicy


class FewShotModel:
    """A ``meta`` (or ``person``) checkpoint and its networks, loaded once (module docstring)."""

    def __init__(self, checkpoint: Checkpoint, device=None):
        from fsth.person import crop_policy_of

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

    def detector(self, backend: str | None = None, fan_weights=None):
        """The landmark detector for this model (``fsth.person.detector_for``; ``backend`` overrides)."""
        from fsth.person import detector_for

        return detector_for(self.landmark_backend, backend, fan_weights)

    # -- the chain

    def shots(self, paths: Sequence[str | os.PathLike], detector=None, k: int | None = None):
        """``Shots`` from photos, a directory or a video, at this model's crop policy (``person_crop_policy``: edge
        pixels where the box runs off the photo) and size."""
        from fsth.shots import load_shots, person_crop_policy

        return load_shots(paths, detector or self.detector(), self.size, person_crop_policy(self.crop_policy), k)

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
        from fsth.embed import embed

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
        ``finetune_epochs``): a ``fsth.finetune.FinetuneResult``. ``train_cfg``: by default this model's
        (``train_config``). ``content_nets``: L_CNT's networks when ``train_cfg`` has it on (loaded here when not
        given)."""
        from fsth.finetune import finetune, person_networks, plan_steps
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
        """The fast renderer (``fsth.animate.Renderer``) of G' (``G``), or of the meta G with ``e_hat``; a
        warp-guided G also gets the shots it warps (``source`` = (crops, points), by default ``shots``'s).
        ``options`` go to ``Renderer``."""
        from fsth.animate import Renderer

        G = G if G is not None else self.G
        if G.cfg.warp:
            options["source"] = source if source is not None else (shots.crops, shots.points)
        return Renderer(G, e_hat, device=options.pop("device", self.device), **options)
