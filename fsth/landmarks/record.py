"""``LandmarkTrack``: the landmarks of one video (or image) and how they were made; saved as .npz or JSONL.

The .npz layout (``np.load(path, allow_pickle=False)`` reads it; no pickled objects):

==============  ==================  ==============================================================
key             shape, dtype        meaning
==============  ==================  ==============================================================
landmarks       (N, 68, 2) float32  x, y of the 68 points per frame, source pixels; NaN where not valid
valid           (N,) bool           a face was found (and tracked) in that frame
boxes           (N, 4) float32      crop box [x0, y0, x1, y1] per frame, source pixels, from the crop
                                    policy, smoothed over time; frames without a face get their
                                    neighbours' box; NaN only when no frame has a face
fps             () float64          frames per second of the source (0 for a still image)
frame_size      (2,) int32          source width, height
backend         () str              landmark backend used: "mesh", "dlib" or "fan"
source          () str              the input path as given
crop_policy     () str              JSON of ``CropPolicy.to_dict()``
tracking        () str              JSON of the tracker settings (face_index, redetect_every, smoothing)
format_version  () int32            1
fsth_version    () str              the fsth version that wrote it
mesh            (N, 478, 2) float32 only from the mesh backend: its 468 mesh points and 10 iris points
                                    (``parts.MESH_*``), source pixels, NaN where not valid; ``landmarks``
                                    are their iBUG 68 (``parts.MESH_TO_68``). Files without it still load.
==============  ==================  ==============================================================

A JSONL row per frame (``jsonl_rows``): ``{"source", "frame", "time", "valid", "landmarks": [[x, y] x 68] or
null, "box": [x0, y0, x1, y1] or null, "backend", "frame_size", "crop_policy"}`` and, from the mesh backend,
``"mesh": [[x, y] x 478] or null``; coordinates rounded to 0.01 px.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Iterator

import numpy as np

from fsth import __version__
from fsth.errors import InputError
from fsth.files import atomic_write
from fsth.landmarks.crop import CropPolicy

FORMAT_VERSION = 1
_ARRAYS = ("landmarks", "valid", "boxes", "fps", "frame_size", "backend", "source", "crop_policy")


@dataclass
class LandmarkTrack:
    landmarks: np.ndarray  # (N, 68, 2) float32, source pixels, NaN where not valid
    valid: np.ndarray  # (N,) bool
    boxes: np.ndarray  # (N, 4) float32 [x0, y0, x1, y1], source pixels
    fps: float  # 0 for a still image
    frame_size: tuple[int, int]  # (width, height)
    backend: str
    source: str
    crop_policy: CropPolicy = field(default_factory=CropPolicy)
    tracking: dict = field(default_factory=dict)
    mesh: np.ndarray | None = None  # (N, 478, 2) float32, source pixels, NaN where not valid (mesh backend only)

    def __post_init__(self):
        self.landmarks = np.asarray(self.landmarks, np.float32).reshape(-1, 68, 2)
        self.valid = np.asarray(self.valid, bool).reshape(-1)
        self.boxes = np.asarray(self.boxes, np.float32).reshape(-1, 4)
        if not (len(self.landmarks) == len(self.valid) == len(self.boxes)):
            raise ValueError(
                f"landmarks, valid and boxes disagree on the frame count: "
                f"{len(self.landmarks)}, {len(self.valid)}, {len(self.boxes)}"
            )
        self.landmarks[~self.valid] = np.nan
        if self.mesh is not None:
            self.mesh = np.array(self.mesh, np.float32).reshape(len(self.valid), -1, 2)
            self.mesh[~self.valid] = np.nan
        self.frame_size = (int(self.frame_size[0]), int(self.frame_size[1]))

    def __len__(self) -> int:
        return len(self.valid)

    @property
    def num_valid(self) -> int:
        return int(self.valid.sum())

    # -- .npz

    def save(self, path: str | os.PathLike) -> None:
        """Write the .npz (layout in the module docstring), atomically: a temp file renamed into place."""
        path = Path(path)
        arrays = {
            "landmarks": self.landmarks,
            "valid": self.valid,
            "boxes": self.boxes,
            "fps": np.float64(self.fps),
            "frame_size": np.array(self.frame_size, np.int32),
            "backend": np.array(self.backend),
            "source": np.array(str(self.source)),
            "crop_policy": np.array(json.dumps(self.crop_policy.to_dict())),
            "tracking": np.array(json.dumps(self.tracking)),
            "format_version": np.int32(FORMAT_VERSION),
            "fsth_version": np.array(__version__),
        }
        if self.mesh is not None:
            arrays["mesh"] = self.mesh
        atomic_write(path, lambda f: np.savez_compressed(f, **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "LandmarkTrack":
        """Read a .npz written by ``save``; ``InputError`` naming the file if it is not one."""
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such file")
        try:
            with np.load(path, allow_pickle=False) as z:
                data = {k: z[k] for k in z.files}
        except Exception as exc:
            raise InputError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from None
        missing = [k for k in (*_ARRAYS, "format_version") if k not in data]
        if missing:
            raise InputError(f"{path}: not an fsth landmark file (missing {', '.join(missing)})")
        version = int(data["format_version"])
        if version != FORMAT_VERSION:
            raise InputError(f"{path}: landmark file format {version}; this fsth reads format {FORMAT_VERSION}")
        return cls(
            landmarks=data["landmarks"],
            valid=data["valid"],
            boxes=data["boxes"],
            fps=float(data["fps"]),
            frame_size=tuple(int(v) for v in data["frame_size"]),
            backend=str(data["backend"]),
            source=str(data["source"]),
            crop_policy=CropPolicy.from_dict(json.loads(str(data["crop_policy"]))),
            tracking=json.loads(str(data["tracking"])) if "tracking" in data else {},
            mesh=data.get("mesh"),
        )

    # -- JSONL

    def jsonl_rows(self) -> Iterator[dict]:
        """One dict per frame (see the module docstring), ready for ``json.dumps``."""
        for i in range(len(self)):
            ok = bool(self.valid[i])
            mesh = self.mesh[i] if self.mesh is not None and ok else None
            yield jsonl_row(self, i, self.landmarks[i] if ok else None, self.boxes[i], mesh)

    def write_jsonl(self, stream: IO[str]) -> None:
        """Write one JSON object per line to a text stream."""
        for row in self.jsonl_rows():
            stream.write(json.dumps(row, separators=(",", ":")) + "\n")

    def save_jsonl(self, path: str | os.PathLike) -> None:
        """Write the JSONL rows to a file, atomically."""

        def write(f):
            text = io.TextIOWrapper(f, encoding="utf-8")
            self.write_jsonl(text)
            text.flush()
            text.detach()

        atomic_write(Path(path), write)


def jsonl_row(about, frame: int, points, box, mesh=None) -> dict:
    """The JSONL row of one frame: ``about`` gives the source, fps, backend, frame size, crop policy and whether
    rows carry a mesh (a ``LandmarkTrack``, or what stands for one while a video is streamed); ``points`` (68, 2)
    or None where no face, ``box`` (4,) (NaN: none), ``mesh`` (478, 2) or None."""
    box = np.asarray(box, np.float64)
    row = {
        "source": str(about.source),
        "frame": frame,
        "time": round(frame / about.fps, 6) if about.fps else 0.0,
        "valid": points is not None,
        "landmarks": None if points is None else np.round(np.asarray(points, np.float64), 2).tolist(),
        "box": np.round(box, 2).tolist() if np.isfinite(box).all() else None,
        "backend": about.backend,
        "frame_size": list(about.frame_size),
        "crop_policy": about.crop_policy.to_dict(),
    }
    if about.mesh is not None:
        row["mesh"] = None if mesh is None else np.round(np.asarray(mesh, np.float64), 2).tolist()
    return row
