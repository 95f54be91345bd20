"""The few-shot layer: from a checkpoint and a SOURCE to something that renders landmarks into frames.

Stage: few-shot use (``fsth embed``, ``fsth finetune``, ``fsth animate``) and evaluation. Everything between the
checkpoint, the landmark detector and the networks below it and the commands above it (``fsth.animate`` and
``fsth.evaluate`` only stream frames through it). Nothing below it imports it.

The modules, in the order the data goes through them:

* ``shots``: photos or a video of a new person -> ``Shots`` (crops, landmark images and landmarks at the model's
  size, with ``person_crop_policy``: the one crop of a new person's shots, for every command);
* ``model``: ``FewShotModel``, the one way to open a meta checkpoint (``--checkpoint``, ``$FSTH_CHECKPOINT``, the
  default place, the shipped model) or a person file to fine-tune further; its crop policy (``crop_policy_of``), the
  detector for its landmarks (``detector_for``), and the paper's chain: ``shots -> embed -> finetune -> renderer``;
* ``embed``: K shots -> e_hat (``embed.embed``: the mean of E), ``save_embedding`` (kind ``embedding``);
* ``finetune``: G' and D' trained on the shots (``finetune.finetune``), ``save_person`` (kind ``person``);
* ``source``: SOURCE (photos, a video, an embedding or a person file) -> ``Person`` (``load_person``), with the one
  landmark detector that reads the shots and the driver;
* ``render``: ``Renderer``, target landmarks -> generated face crops (``Rendered``; ``FaceLayers`` per frame);
* ``options``: what the commands ask of the layer (``SourceOptions``, ``ContentLoss``, ``FinetuneOptions``).

Typical use::

    person = load_person("portrait.jpg")                     # the shipped model, its landmark detector
    frames = Renderer.of(person).render(points)              # (B, 68, 2) landmarks in crop pixels -> (B, S, S, 3)

The names below are importable from ``fsth.fewshot``; each loads its module (and torch) when first used, so that
the option dataclasses can be read without loading the networks (``fsth --help``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fsth import lazy_exports

_MODULES = {
    "embed": ("fingerprint", "save_embedding"),
    "finetune": ("FinetuneResult", "save_person"),
    "model": ("FewShotModel", "crop_policy_of", "detector_for"),
    "render": ("FaceLayers", "Rendered", "Renderer"),
    "shots": ("Shots", "crop_track_frames", "load_shots", "person_crop_policy", "shots_from_pairs"),
    "source": ("Person", "is_checkpoint", "load_person"),
    "options": ("ContentLoss", "FinetuneOptions", "SourceOptions"),
}
__all__ = [
    "ContentLoss",
    "FaceLayers",
    "FewShotModel",
    "FinetuneOptions",
    "FinetuneResult",
    "Person",
    "Rendered",
    "Renderer",
    "Shots",
    "SourceOptions",
    "crop_policy_of",
    "crop_track_frames",
    "detector_for",
    "fingerprint",
    "is_checkpoint",
    "load_person",
    "load_shots",
    "person_crop_policy",
    "save_embedding",
    "save_person",
    "shots_from_pairs",
]


__getattr__ = lazy_exports(__name__, _MODULES)

if TYPE_CHECKING:
    from fsth.fewshot.embed import fingerprint, save_embedding
    from fsth.fewshot.finetune import FinetuneResult, save_person
    from fsth.fewshot.model import FewShotModel, crop_policy_of, detector_for
    from fsth.fewshot.options import ContentLoss, FinetuneOptions, SourceOptions
    from fsth.fewshot.render import FaceLayers, Rendered, Renderer
    from fsth.fewshot.shots import Shots, crop_track_frames, load_shots, person_crop_policy, shots_from_pairs
    from fsth.fewshot.source import Person, is_checkpoint, load_person
