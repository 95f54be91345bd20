"""What ``fsth animate``'s options ask of the pipeline: ``AnimateOptions``, read by every module of the package."""

from __future__ import annotations

from dataclasses import dataclass

from fsth.errors import InputError

REFERENCES = ("auto", "first", "closest")  # or a frame index


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


@dataclass
class AnimateOptions:
    absolute: bool = False  # drive with the driver's landmarks as they are (in its own crop), no retargeting
    head_motion: bool = True  # retargeting carries the head's motion too (off: expression only)
    reference: str | int = "auto"  # the driver's reference frame: auto | first | closest | a frame index
    side_by_side: bool = False  # write driver | landmark image | result
    paste_back: bool = False  # paste the generated face back into the source photo
    audio: bool = True  # mux the driver's audio track
    batch_size: int = 2  # frames per generator call (file drivers; live drivers use 1)
    live: bool = False  # one causal pass (cameras always)
    preview: bool = False  # show driver | result in a window as frames are made
    warp_only: bool = False  # the warp alone, no network (``--model warp``)
    mouth: str = "auto"  # where an open mouth's interior comes from: auto | own | driver | generator (``mouth``)
