"""What ``fsth landmarks`` and ``fsth dataset`` ask of the landmark stage: ``LandmarkOptions`` (each field also a
command-line option: ``fsth.config.option``): the backend, which face, tracking and the crop box."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fsth.config import option
from fsth.landmarks.backends import BACKENDS
from fsth.landmarks.crop import CropPolicy

_LM, _CROP = "Landmarks", "Crop"


@dataclass(frozen=True)
class LandmarkOptions:
    backend: str = option(
        "auto",
        "Landmark detector: mesh (MediaPipe's 478-point face mesh with irises, offline; writes the mesh as well as "
        "the 68 points), dlib (offline), fan (face-alignment's FAN, the paper's; downloads weights on first use), "
        "or auto: mesh (dlib for a dataset).",
        choices=BACKENDS,
        panel=_LM,
    )
    fan_weights: Path | None = option(
        None, "Local FAN weights (2DFAN4-*.pth.tar), or a directory with them and S3FD's s3fd-*.pth.", panel=_LM
    )
    face_index: int = option(
        0, "Which face when there are several: 0 = the largest, 1 = the next, ...", low=0, panel=_LM
    )
    smoothing: float = option(
        1.0,
        "Temporal smoothing strength of video landmarks (One-Euro filter): 0 = off, 1 = default, higher = smoother "
        "(up to 100). Adaptive: fast mouth motion is not delayed.",
        low=0,
        high=100,
        panel=_LM,
    )
    redetect_every: int = option(
        10, "Confirm the tracked face with the face detector every N frames.", low=1, panel=_LM
    )
    crop_scale: float = option(
        CropPolicy.scale, "Crop box side as a multiple of the face size (jaw width), 0.5 to 10.", low=0.5, high=10,
        panel=_CROP,
    )  # fmt: skip
    crop_y_offset: float = option(
        CropPolicy.y_offset,
        "Crop box centre below the eyes-nose midpoint, in face sizes (negative: towards the forehead), -2 to 2.",
        low=-2,
        high=2,
        panel=_CROP,
    )

    @property
    def crop_policy(self) -> CropPolicy:
        return CropPolicy(scale=self.crop_scale, y_offset=self.crop_y_offset)

    def detector(self, dataset: bool = False):
        """The detector for ``backend``; ``auto`` is dlib for a dataset (68 points; the mesh is ~4x slower on a CPU
        and adds nothing a dataset stores)."""
        from fsth.landmarks.backends import make_detector

        return make_detector("dlib" if dataset and self.backend == "auto" else self.backend, self.fan_weights)

    def tracking(self) -> dict:
        """What ``run_jobs`` and a tracked dataset take: which face, how often it is confirmed, the smoothing."""
        from fsth.landmarks.smoothing import Smoothing

        return {"face_index": self.face_index, "redetect_every": self.redetect_every,
                "smoothing": Smoothing(strength=self.smoothing)}  # fmt: skip
