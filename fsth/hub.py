"""Other projects' weights files (torch hub's cache): where they are cached, how they are found, fetched and read.

Used by the content loss's VGG19 and VGGFace (``fsth.models.perceptual``), FID's Inception-v3
(``fsth.metrics.inception``), ArcFace (``fsth.metrics.arcface``) and face-alignment's FAN and S3FD
(``fsth.landmarks.detectors``). Not the shipped model (that is the package ``fsth.weights``).

* ``hub_checkpoint_dir()``: the torch hub cache, ``$TORCH_HOME/hub/checkpoints`` (default
  ``$XDG_CACHE_HOME/torch/...``, then ``~/.cache/torch/...``), found without importing torch (``fsth landmarks``
  with dlib never loads it);
* ``download_file(url, dest, sha256_prefix)``: a first-use download through ``torch.hub.download_url_to_file`` (a temp
  file beside ``dest``, renamed when complete and, given a prefix, when its sha256 matches);
* ``find_weights(file, path, download)``: a given path, else the cache, else a first-use download into it
  (``FSTH_OFFLINE=1`` forbids it); ``MissingWeightsError`` names the file, where it was looked for and how to
  get it;
* ``read_state_dict(path, name)``, ``check_layout(state, wanted, ...)``, ``not_a_weights_file(path)``: a .pth or
  .safetensors file read as a dict of tensors and checked against the network that will take it, with one line
  saying what is wrong with a file that is not one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Protocol

from fsth import console
from fsth.errors import MissingWeightsError

DOWNLOAD_TIMEOUT_S = 30  # a stalled connection fails instead of hanging the command


def hub_checkpoint_dir() -> Path:
    """torch.hub's checkpoint cache, located as ``torch.hub.get_dir()`` does by default (an empty variable is
    taken as unset)."""
    if os.environ.get("TORCH_HOME"):
        home = Path(os.environ["TORCH_HOME"])
    else:
        home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "torch"
    return home.expanduser() / "hub" / "checkpoints"


def download_file(url: str, dest: Path, sha256_prefix: str = "") -> None:
    """Fetch ``url`` to ``dest`` (its folder made if missing), checking the sha256 prefix if one is given.

    ``dest`` appears only when the whole file has arrived (and matched); nothing is left behind otherwise. Any
    failure is an ``OSError`` (a network error as it came; a checksum mismatch or another error wrapped in one).
    """
    import socket

    import torch.hub

    dest.parent.mkdir(parents=True, exist_ok=True)
    console.log(f"downloading {url} -> {dest}")
    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        torch.hub.download_url_to_file(
            url, str(dest), hash_prefix=sha256_prefix or None, progress=console.verbosity >= 1
        )
    except OSError:
        raise
    except RuntimeError as exc:
        if "hash" in str(exc):
            raise OSError(f"checksum mismatch: {exc}") from None
        raise OSError(f"{type(exc).__name__}: {exc}") from None
    except Exception as exc:  # an HTTP protocol error, a bad URL ...: all mean "not available here"
        raise OSError(f"{type(exc).__name__}: {exc}") from None
    finally:
        socket.setdefaulttimeout(old)


class WeightsFile(Protocol):
    """What ``find_weights`` needs to know about a standard weights file (the VGG classes, FID's Inception ...)."""

    name: str  # the network, as messages name it
    filename: str  # the file's standard name, in the torch hub cache
    url: str  # where it is downloaded from on first use
    sha256_prefix: str  # the start of its sha256 ("" = not checked)


def find_weights(cls: WeightsFile, path: str | os.PathLike | None = None, download: bool = True) -> Path:
    """The weights file of ``cls``: ``path`` if given, else the hub cache, else a first-use download."""
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise MissingWeightsError(
                f"{cls.name} weights file {path} does not exist; get {cls.filename} from {cls.url}"
            )
        return path
    cached = hub_checkpoint_dir() / cls.filename
    if cached.is_file():
        return cached
    how = f"download {cls.url} on a machine with internet and put it at {cached}, or pass its path"
    if not download or os.environ.get("FSTH_OFFLINE"):
        raise MissingWeightsError(f"{cls.name} weights {cls.filename} not found at {cached}: {how}")
    try:
        download_file(cls.url, cached, cls.sha256_prefix)
    except OSError as exc:
        raise MissingWeightsError(
            f"{cls.name} weights {cls.filename} not found at {cached} and the download failed ({exc}): {how}"
        ) from None
    return cached


def not_a_weights_file(path: str | os.PathLike) -> str | None:
    """Why ``path`` cannot be a weights file, from its first bytes (None when it looks like one): a torch .pth is a
    zip archive or a pickle, a .safetensors file starts with its header's length and a JSON object. torch.load of a
    text file says only ``KeyError: '101'`` (the pickle opcode of its first letter)."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if not head:
        return "is empty (0 bytes), not a weights file"
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80" or (len(head) > 8 and head[8:9] == b"{"):
        return None
    try:
        first = head.decode("utf-8").splitlines()[0] if head.strip() else ""
        what = f"text ({first[:12]!r}...)" if first.isprintable() else "other data"
    except UnicodeDecodeError:
        what = "other data"
    return f"holds {what}, not weights (a .pth is a zip archive or a pickle; or give a .safetensors file)"


def read_state_dict(path: Path, name: str) -> dict:
    """The tensors of a ``.pth`` (weights-only loader; a ``state_dict`` entry is unwrapped) or ``.safetensors``
    file; ``MissingWeightsError`` naming ``name`` and the file if it is unreadable or not a dict of tensors."""
    import torch

    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)  # no arbitrary code from the file
    except Exception as exc:  # corrupt, truncated or not a weights file at all
        why = not_a_weights_file(path)
        if why is not None:
            raise MissingWeightsError(f"cannot read {name} weights from {path}: it {why}") from None
        raise MissingWeightsError(f"cannot read {name} weights from {path}: {exc}".splitlines()[0]) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise MissingWeightsError(f"{path} does not hold a {name} state dict (a dict of tensors)")
    return state


def check_layout(state: dict, wanted: dict, path, what: str, allowed=()) -> None:
    """Raise ``MissingWeightsError`` naming the first problems if ``state`` lacks a ``wanted`` key (key -> shape),
    has one of another shape, or has a key that is neither wanted nor ``allowed``."""
    problems = [f"unexpected key {k}" for k in sorted(set(state) - set(wanted) - set(allowed))]
    for key, shape in wanted.items():
        if key not in state:
            problems.append(f"missing key {key}")
        elif tuple(state[key].shape) != tuple(shape):
            problems.append(f"{key}: shape {tuple(state[key].shape)} in file, {tuple(shape)} expected")
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise MissingWeightsError(f"{path} is not {what}: {'; '.join(problems[:3])}{more}")
