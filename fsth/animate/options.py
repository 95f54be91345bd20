"""What ``fsth animate``'s options ask of the pipeline: ``AnimateOptions``, read by every module of the package."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from fsth.config import option
from fsth.errors import InputError

REFERENCES = ("auto", "first", "closest")  # or a frame index
MOUTHS = ("auto", "own", "driver", "generator")  # where an open mouth's interior comes from (``fsth.animate.mouth``)


def parse_reference(text: str) -> str | int:
    """``--reference``: auto | first | closest, or a frame index (an int). ``InputError`` for anything else."""
    if text in REFERENCES:
        return text
    if text.isdigit():
        return int(text)
    raise InputError(f"--reference must be auto, first, closest or a frame index, not {text!r}")


def batch_size_for(device) -> int:
    """Frames per generator call when none is asked for: 8 on a GPU, 2 on a CPU (more only adds latency there)."""
    return 8 if getattr(device, "type", str(device)) == "cuda" else 2


_MOTION, _VIDEO = "Motion", "Output video"


@dataclass(frozen=True)
class AnimateOptions:
    """How ``fsth animate`` renders; every field is also its command-line option (``fsth.config.option``)."""

    model: str = option(
        "checkpoint",
        "checkpoint: the generator of --checkpoint ($FSTH_CHECKPOINT, else the default location, else the model "
        "shipped with fsth); warp: the source's pixels moved to the driver's landmarks alone, no network (fast).",
        choices=("checkpoint", "warp"),
        panel=_MOTION,
    )
    mouth: str = option(
        "auto",
        "Where an opening mouth's interior comes from: own (the person's shot with the nearest mouth shape), driver "
        "(the driver's, colour-matched), generator (as the model draws it); auto: own when a shot shows an open "
        "mouth (the driver's where the mouth opens far wider, unless its teeth are together), else driver.",
        choices=MOUTHS,
        panel=_MOTION,
    )
    side_by_side: bool = option(False, "Write driver | landmark image | result.", panel=_VIDEO)
    paste_back: bool = option(
        False, "Paste the generated face back into the source photo (the frame is the photo's size).", panel=_VIDEO
    )
    audio: bool = option(True, "Keep the driver's audio track.", panel=_VIDEO)
    crf: int | None = option(
        None,
        "The video's quality: x264's constant rate factor, 0 (best, largest) to 51 (worst, smallest).",
        low=0,
        high=51,
        shown="12 up to 512x512 pixels, 18 above",
        panel=_VIDEO,
    )
    absolute: bool = option(
        False,
        "Drive with the driver's landmarks as they are (its face shape too) instead of retargeting its motion onto "
        "the source face.",
        panel=_MOTION,
    )
    head_motion: bool = option(
        True,
        "Retargeting carries the driver's head motion (position, tilt, size); off: expression only, the head stays "
        "where it is in the source (good with --paste-back).",
        panel=_MOTION,
    )
    reference: str | int = option(
        "auto",
        "The driver's reference frame, whose face counts as the source's: auto (closest for a file, first for a "
        "camera), closest (the frame whose expression is closest to the source's), first (the first frame with a "
        "face) or a frame index.",
        parse=parse_reference,
        kind=str,
        panel=_MOTION,
    )
    live: bool = option(
        False,
        "Treat a driver file like a camera: one causal pass, reference = first face (for trying the live path).",
        panel=_MOTION,
    )
    preview: bool | None = option(
        None,
        "Show driver | result in a window (q quits, r takes a new reference).",
        shown="on for a camera",
        flags=("--preview/--no-preview",),
        panel=_VIDEO,
    )
    finetune_steps: int = option(0, "Fine-tune this many steps on the source photos first.", low=0, panel="Fine-tuning")
    batch_size: int | None = option(
        None, "Frames per generator call, 1 to 64.", low=1, high=64, shown="2 on a CPU, 8 on a GPU"
    )

    @property
    def warp_only(self) -> bool:
        """The warp alone, no network (``--model warp``)."""
        return self.model == "warp"

    def for_driver(self, camera: bool, device) -> "AnimateOptions":
        """These options with what depends on the driver and the device settled: the preview (on for a camera) and
        the batch size (``batch_size_for``)."""
        return dataclasses.replace(
            self,
            preview=camera if self.preview is None else self.preview,
            batch_size=self.batch_size or batch_size_for(device),
        )
