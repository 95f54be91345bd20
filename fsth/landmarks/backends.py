"""The choice of landmark backend: ``make_detector(backend, fan_weights)`` -> a ``LandmarkDetector`` (the backends
are described in ``fsth.landmarks.detectors``; the mesh's in ``fsth.landmarks.mesh``)."""

from __future__ import annotations

import os

from fsth import console
from fsth.errors import InputError, MissingWeightsError
from fsth.landmarks.detectors import (
    FAN_URL,
    SFD_URL,
    DlibDetector,
    FanDetector,
    LandmarkDetector,
    download_weights,
    find_fan_weights,
)

BACKENDS = ("auto", "mesh", "dlib", "fan")  # and "mesh+dlib", which fsth evaluate takes for dlib-trained models


def make_detector(
    backend: str = "auto", fan_weights: str | os.PathLike | None = None, device=None, runtime: str = "auto"
) -> LandmarkDetector:
    """The detector for ``backend`` (auto|mesh|dlib|fan); see the module docstring for where weights come from.
    ``runtime``: the mesh's (``fsth.landmarks.mesh_runtime``: auto|litert|torch)."""
    if backend not in BACKENDS and backend != "mesh+dlib":
        raise InputError(f"--backend must be one of {', '.join(BACKENDS)}, not {backend!r}")
    if backend == "dlib":
        return DlibDetector()
    from fsth.landmarks.mesh import MeshDetector  # torch: loaded only for the mesh

    if backend == "mesh+dlib":
        return MeshDetector(device=device, dlib_68=True, runtime=runtime)
    if backend in ("auto", "mesh"):
        if backend == "mesh":
            return MeshDetector(device=device, runtime=runtime)
        try:
            detector = MeshDetector(device=device, runtime=runtime)
        except MissingWeightsError as exc:
            console.warn(f"{exc}; using the dlib backend")
            return DlibDetector()
        console.log("landmarks: mesh backend (MediaPipe's face mesh + iris; --backend dlib|fan for the others)")
        return detector
    fan, sfd = find_fan_weights(fan_weights)
    if fan is None:
        fan = download_weights(FAN_URL)
        if sfd is None:
            try:
                sfd = download_weights(SFD_URL)
            except MissingWeightsError as exc:
                console.warn(str(exc))
    return FanDetector(fan, sfd, device=device)
