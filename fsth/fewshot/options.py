"""What the few-shot commands ask of this layer, as option dataclasses (each field also a command-line option:
``fsth.config.option``, built into the commands by ``fsth.cli``).

* ``SourceOptions``: how a SOURCE is read (``fsth embed``, ``finetune``, ``animate``, ``evaluate``): the meta
  checkpoint, the number of shots, the landmark backend;
* ``ContentLoss``: fine-tuning's content loss and its networks' weights (``finetune``, ``animate``, ``evaluate``);
  ``train_config(model)`` is fine-tuning's configuration for a model (its defaults, ``TrainConfig.for_model``, with
  these);
* ``FinetuneOptions``: the length and order of ``fsth finetune``'s run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from fsth.config import ModelConfig, TrainConfig, option
from fsth.errors import InputError
from fsth.landmarks.backends import BACKENDS

_TUNE = "Fine-tuning"


@dataclass(frozen=True)
class SourceOptions:
    checkpoint: Path | None = option(
        None,
        "The meta checkpoint (from `fsth train`; for `fsth finetune` also a person file to fine-tune further). "
        "Default: $FSTH_CHECKPOINT, else ~/.local/share/fsth/meta.safetensors ($XDG_DATA_HOME/fsth/), else the "
        "model shipped with fsth.",
        flags=("--checkpoint", "-c"),
        metavar="META",
    )
    k: int | None = option(
        None,
        "Number of shots: K frames spread over a video (default 8), or K of the photos (default: all).",
        low=1,
        flags=("--k", "-k"),
    )
    face_index: int = option(
        0, "Which face, in photos or a video that show several: 0 = the largest, 1 = the next, ...", low=0
    )
    backend: str | None = option(
        None,
        "Landmark detector (default: the one the checkpoint was trained with; dlib when that is FAN and its weights "
        "are not on disk).",
        choices=BACKENDS,
    )
    fan_weights: Path | None = option(None, "Local FAN weights for --backend fan.")


@dataclass(frozen=True)
class ContentLoss:
    content_loss: bool | None = option(
        None,
        "Use the content loss L_CNT (needs VGG19 and VGGFace weights); without it fine-tuning still runs, with "
        "worse likeness.",
        shown="the model's: on for the paper's, off for the warp-guided models, which train on pixel terms",
        panel=_TUNE,
    )
    vgg19_weights: Path | None = option(None, "vgg19-dcbb9e9d.pth.", shown="the torch hub cache", panel=_TUNE)
    vggface_weights: Path | None = option(None, "vgg_face_dag.pth.", shown="the torch hub cache", panel=_TUNE)

    def changes(self) -> dict:
        """The fields given, as changes to a ``TrainConfig``."""
        given = {k: str(v) for k, v in (("vgg19_weights", self.vgg19_weights),
                                        ("vggface_weights", self.vggface_weights)) if v is not None}  # fmt: skip
        if self.content_loss is not None:
            given["content_loss"] = self.content_loss
        return given

    def train_config(self, model: ModelConfig) -> TrainConfig:
        """Fine-tuning's configuration for ``model``: its defaults (``TrainConfig.for_model``) with these."""
        return TrainConfig.for_model(model, **self.changes())

    @property
    def files(self) -> tuple:
        return (self.vgg19_weights, self.vggface_weights)


@dataclass(frozen=True)
class FinetuneOptions:
    steps: int | None = option(None, "Number of steps (instead of --epochs).", low=1, panel=_TUNE)
    epochs: float | None = option(
        None,
        "Passes over the shots, 0.01 to 100000.",
        low=0.01,
        high=100_000,
        shown=f"{TrainConfig.finetune_epochs:g}, the paper's",
        panel=_TUNE,
    )
    batch_size: int = option(1, "Shots per step.", low=1, panel=_TUNE)
    seed: int = option(0, "Seed of the shot order.", panel=_TUNE)

    def __post_init__(self):
        check_length(self.steps, self.epochs)


def check_length(steps: int | None, epochs: float | None) -> None:
    """``InputError`` unless fine-tuning's length is given at most one way, and ``epochs`` is positive and finite."""
    if steps is not None and epochs is not None:
        raise InputError("give --steps or --epochs, not both")
    if epochs is not None and not (math.isfinite(epochs) and epochs > 0):
        raise InputError(f"--epochs must be a positive finite number, not {epochs}")
