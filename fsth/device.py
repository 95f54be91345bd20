"""The global ``--device`` choice (auto|cpu|cuda), resolved to a ``torch.device`` when first needed."""

from __future__ import annotations

from fsth.errors import FsthError

DEVICE_CHOICES = ("auto", "cpu", "cuda")
_requested = "auto"


def set_device(name: str) -> None:
    if name not in DEVICE_CHOICES:
        raise FsthError(f"--device must be one of {', '.join(DEVICE_CHOICES)}, not {name!r}")
    global _requested
    _requested = name


def get_device(name: str | None = None):
    """Resolve ``name`` (default: the global choice) to a torch.device; 'auto' prefers CUDA."""
    import torch

    name = name or _requested
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise FsthError("--device cuda was asked for, but torch sees no CUDA GPU on this machine")
    return torch.device(name)
