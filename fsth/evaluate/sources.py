"""Cross-reenactment sources: photos, a video, or an embedding / person file, with the photo identity is
measured on."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fsth.animate.mouth import rest_mouth
from fsth.errors import FsthError, InputError
from fsth.evaluate.options import EvalOptions
from fsth.evaluate.renderers import EVAL_DTYPE, person_renderers
from fsth.fewshot import FewShotModel, Renderer, Shots, is_checkpoint, load_person, load_shots, person_crop_policy
from fsth.landmarks.detectors import LandmarkDetector


@dataclass
class CrossSource:
    """A cross-reenactment source: its renderers, the face that is driven and the photo identity is measured on."""

    name: str  # for the report and the table
    given: str  # the path as given
    renderers: dict[str, Renderer]  # mode -> renderer
    points: np.ndarray  # (68, 2) the source face retargeting keeps, in crop pixels
    num_shots: int
    identity: Shots | None  # one shot: the crop and landmarks CSIM compares with; None when not on disk
    identity_reason: str | None = None  # why ``identity`` is None
    sources: list[str] = field(default_factory=list)  # where the shots came from
    rest_mouth: float = 0.0  # the face's inner-lip gap with its jaw shut (``fsth.animate.mouth.teeth_together``)


def load_cross_source(
    source: str | os.PathLike, model: FewShotModel, detector: LandmarkDetector, options: EvalOptions, **renderer_options
) -> CrossSource:
    """A source as ``fsth animate`` takes it: photos, a directory of them or a video (shots, embedded here and
    fine-tuned with the evaluation's steps), or an ``embedding`` / ``person`` file (``load_person``). Shots are
    cropped as ``fsth animate`` crops them (``FewShotModel.shots``: ``person_crop_policy``)."""
    path = Path(source)
    name = path.name or str(path)
    if is_checkpoint(path):
        return _cross_source_file(path, model, detector)
    shots = model.shots([path], detector)
    renderers = dict(person_renderers(model, shots, options, label=f"fine-tune on {name}", **renderer_options))
    return CrossSource(
        name,
        str(source),
        renderers,
        shots.points[0],
        len(shots),
        shots.select([0]),
        sources=list(shots.sources),
        rest_mouth=rest_mouth(shots.crops, shots.points),
    )


def _cross_source_file(path: Path, model: FewShotModel, detector) -> CrossSource:
    """An embedding (FF, with the meta generator) or person file (its fine-tuned G': FT); its identity photo is
    the first shot it records, read again when it is still on disk (cropped as the file's shots were)."""
    from fsth.checkpoint import load_checkpoint

    header = load_checkpoint(path, only=())
    person = load_person(path, model.path if header.kind == "embedding" else None, detector=detector)
    if person.config != model.config or person.crop_policy != model.crop_policy:
        raise InputError(f"{path}: made for another model configuration or crop policy than {model.path}")
    recorded = [str(s) for s in header.meta.get("shots") or []]
    mode = "FF" if person.e_hat is not None else "FT"
    renderer = model.renderer(
        G=person.generator,
        e_hat=person.e_hat,
        source=(person.crops, person.points),
        dtype=EVAL_DTYPE,
    )
    identity, reason = None, None
    try:
        identity = recorded_shot(recorded, detector, model.size, person_crop_policy(model.crop_policy))
    except FsthError as exc:
        reason = f"CSIM not computed: the source's first shot cannot be read again ({exc})"
    return CrossSource(
        path.name,
        str(path),
        {mode: renderer},
        person.points[0],
        len(person.points),
        identity,
        reason,
        recorded,
        rest_mouth(person.crops, person.points),
    )


def recorded_shot(recorded: list[str], detector, size: int, policy) -> Shots:
    """The first of the shots a file records ("photo.jpg" or "video.mp4#frame"), cropped again as it was: a photo
    by itself, a video frame by tracking the video and taking the same K frames (``load_shots`` is deterministic)."""
    if not recorded:
        raise InputError("the file records no shots")
    first = recorded[0]
    frame = re.fullmatch(r"(.*)#(\d+)", first)
    if frame is None:
        return load_shots([first], detector, size, policy)
    shots = load_shots([frame.group(1)], detector, size, policy, k=len(recorded))
    if first not in shots.sources:
        raise InputError(f"{first}: that frame is no longer among the video's shots")
    return shots.select([shots.sources.index(first)])


def unique_names(sources: list[CrossSource]) -> None:
    """Sources with the same file name get their position appended (a/photo.jpg, b/photo.jpg)."""
    names = [s.name for s in sources]
    for i, s in enumerate(sources):
        if names.count(s.name) > 1:
            s.name = f"{s.name}#{i + 1}"
