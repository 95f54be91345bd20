"""Standard weights files of other projects' networks: where they are cached, how they are found and fetched.

Used by the content loss's VGG19 and VGGFace (``fsth.models.perceptual``), FID's Inception-v3
(``fsth.metrics.inception``) and face-alignment's FAN and S3FD (``fsth.landmarks.detectors``). Not the shipped
model (that is the package ``fsth.weights``).

* ``hub_checkpoint_dir()``: the torch hub cache, ``$TORCH_HOME/hub/checkpoints`` (default
  ``$XDG_CACHE_HOME/torch/...``, then ``~/.cache/torch/...``), found without importing torch (``fsth landmarks``
  with dlib never loads it);
* ``download_file(url, dest, sha256_prefix)``: a first-use download through ``torch.hub.download_url_to_file`` (a temp
  file beside ``dest``, renamed when complete and, given a prefix, when its sha256 matches);
* ``find_weights(file, path, download)``: a given path, else the cache, else a first-use download into it
  (``FSTH_OFFLINE=1`` forbids it); ``MissingWeightsError`` names the file, where it was looked for and how to
  get it.
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
