"""The shipped default model: a warp-guided ``warp256`` meta checkpoint (E and G, bfloat16), trained with fsth.

``fsth animate``, ``embed``, ``finetune`` and ``evaluate`` use it when no checkpoint is given (``--checkpoint``),
none is configured (``$FSTH_CHECKPOINT``) and none sits at the default location. How it was trained, on what, and
what it measures: ``MODEL_CARD.md`` beside this file.
"""

from __future__ import annotations

from pathlib import Path

SHIPPED_NAME = "warp256.safetensors"


def shipped_model() -> Path:
    """The path of the shipped meta checkpoint (inside the installed package)."""
    return Path(__file__).resolve().parent / SHIPPED_NAME
