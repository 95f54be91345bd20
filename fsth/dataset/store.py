"""The on-disk dataset of meta-learning: face crops as JPEG bytes with their landmarks, one file per video.

Layout of a dataset directory (what ``fsth landmarks VIDEO_TREE --dataset DIR`` writes, ``fsth train`` reads)::

    DIR/dataset.json                          how it was built (crop policy, landmark backend, size, ...)
    DIR/videos/<video_id>.safetensors         one record per video (below)
    DIR/manifest.jsonl                        one JSON row per finished video (a sharded build writes
    DIR/manifest-00001-of-00004.jsonl         one manifest per shard; readers take the union of all)
    DIR/report.jsonl (report-...-of-...)      one JSON row per video that was skipped, with the reason

A video record is a safetensors file (no pickle; any safetensors reader opens it) with the tensors

==============  ==================  ==================================================================
``jpeg``        (total,) uint8      the N stored frames' JPEG files, one after the other
``offsets``     (N + 1,) int64      frame i is ``jpeg[offsets[i]:offsets[i + 1]]``
``points``      (N, 68, 2) float32  the landmarks of each frame in crop pixels (``size`` x ``size``)
``boxes``       (N, 4) float32      the crop box [x0, y0, x1, y1] of each frame in its clip's pixels
``clip``        (N,) int32          which of the video's clips (``sources``) the frame comes from
``frame``       (N,) int32          the frame's number within its clip
==============  ==================  ==================================================================

and string metadata ``format`` ("fsth-video"), ``format_version``, ``video_id``, ``person_id``, ``size``,
``sources`` (JSON list of the clips' paths below the tree), ``fps`` (JSON list, one per clip) and ``entry`` (the
video's manifest row, so a manifest can be rebuilt from the records alone).

A reader needs only the frames of one episode: ``VideoRecord.frames(indices)`` reads just those bytes
(safetensors slices), so DataLoader workers read records at random without loading whole files. One file per
video keeps every write small and atomic (a build resumes by skipping the videos whose record exists) and
scales to VoxCeleb2's ~145k videos (6k person folders of ~25 files each).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from fsth import __version__
from fsth.config import check_types, field_types
from fsth.errors import ConfigError, InputError
from fsth.files import atomic_write

DATASET_FORMAT = "fsth-dataset"
VIDEO_FORMAT = "fsth-video"
FORMAT_VERSION = 1
INFO_FILE = "dataset.json"
VIDEO_DIR = "videos"


@dataclass(frozen=True)
class DatasetSettings:
    """How a dataset is built; every shard and every re-run of a build must use the same settings."""

    size: int = 256  # side of the stored crops (models of another size resize them)
    frames_per_video: int = 32  # frames kept per video, spread over its length
    min_frames: int = 9  # a video with a face in fewer of its kept frames is skipped (K + 1 for K = 8)
    jpeg_quality: int = 90  # JPEG quality of the stored crops
    landmark_backend: str = "dlib"  # the detector that found the landmarks (resolved: dlib or fan)
    crop_policy: dict = field(default_factory=dict)  # CropPolicy.to_dict()
    track_every_frame: bool = False  # False: detect on the kept frames only; True: track every frame
    tracking: dict = field(default_factory=dict)  # face_index (and the tracker's settings when tracking)

    def __post_init__(self):
        problems = []
        if not 16 <= self.size <= 2048:
            problems.append(f"--size must be between 16 and 2048, not {self.size}")
        if self.frames_per_video < 2:
            problems.append(f"--frames-per-video must be at least 2, not {self.frames_per_video}")
        if not 1 <= self.min_frames <= self.frames_per_video:
            problems.append(f"--min-frames must be between 1 and --frames-per-video, not {self.min_frames}")
        if not 1 <= self.jpeg_quality <= 100:
            problems.append(f"--jpeg-quality must be between 1 and 100, not {self.jpeg_quality}")
        if problems:
            raise InputError("; ".join(problems))

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "DatasetSettings":
        types = field_types(cls)
        check_types(data, types, "dataset settings")
        return cls(**{k: v for k, v in data.items() if k in types})


# ---------------------------------------------------------------------------------------------- dataset.json


def write_info(root: Path, settings: DatasetSettings) -> None:
    """Write ``dataset.json`` for a new dataset, or check that an existing one has the same settings."""
    path = root / INFO_FILE
    if path.exists():
        old = read_info(root)
        if old != settings:
            mine, theirs = settings.to_dict(), old.to_dict()
            diff = [f"{k} {theirs[k]!r} (now {mine[k]!r})" for k in mine if mine[k] != theirs[k]]
            raise InputError(
                f"{root} was built with other settings: {'; '.join(diff)}. Build with the same settings to "
                "continue it, or use another --dataset directory"
            )
        return
    info = {
        "format": DATASET_FORMAT,
        "format_version": FORMAT_VERSION,
        "fsth_version": __version__,
        **settings.to_dict(),
    }
    atomic_write(path, lambda f: f.write((json.dumps(info, indent=2) + "\n").encode()))


def read_info(root: Path) -> DatasetSettings:
    path = Path(root) / INFO_FILE
    if not path.is_file():
        raise InputError(
            f"{root}: not an fsth dataset (no {INFO_FILE}); build one with: fsth landmarks VIDEO_TREE --dataset {root}"
        )
    try:
        info = check_types(json.loads(path.read_text()), {"format_version": "int", **field_types(DatasetSettings)}, "")
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable ({exc})") from None
    except ConfigError as exc:
        raise InputError(f"{path}{exc}") from None
    if info.get("format") != DATASET_FORMAT:
        raise InputError(f"{path}: not an fsth dataset description (format {info.get('format')!r})")
    if int(info.get("format_version", 0)) > FORMAT_VERSION:
        raise InputError(f"{path}: dataset format {info['format_version']} is newer than this fsth reads; upgrade fsth")
    return DatasetSettings.from_dict(info)


# ---------------------------------------------------------------------------------------------- video records


def record_path(root: Path, video_id: str) -> Path:
    return Path(root) / VIDEO_DIR / f"{video_id}.safetensors"


def encode_jpeg(rgb: np.ndarray, quality: int) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise InputError("JPEG encoding failed")
    return data.tobytes()


def decode_jpeg(data: np.ndarray) -> np.ndarray:
    """JPEG bytes (uint8 array) -> (H, W, 3) uint8 RGB."""
    import cv2

    bgr = cv2.imdecode(np.asarray(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError("a stored frame is not a readable JPEG")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_record(
    path: Path,
    *,
    video_id: str,
    person_id: str,
    sources: list[str],
    fps: list[float],
    size: int,
    jpegs: list[bytes],
    points: np.ndarray,
    boxes: np.ndarray,
    clip: np.ndarray,
    frame: np.ndarray,
    entry: str,
) -> None:
    """Write one video's record (layout in the module docstring), atomically. ``entry``: its manifest row."""
    from safetensors.numpy import save

    offsets = np.zeros(len(jpegs) + 1, np.int64)
    offsets[1:] = np.cumsum([len(j) for j in jpegs])
    tensors = {
        "jpeg": np.frombuffer(b"".join(jpegs), np.uint8).copy(),
        "offsets": offsets,
        "points": np.asarray(points, np.float32).reshape(-1, 68, 2),
        "boxes": np.asarray(boxes, np.float32).reshape(-1, 4),
        "clip": np.asarray(clip, np.int32),
        "frame": np.asarray(frame, np.int32),
    }
    metadata = {
        "format": VIDEO_FORMAT, "format_version": str(FORMAT_VERSION), "video_id": video_id,
        "person_id": person_id, "size": str(size), "sources": json.dumps(sources), "fps": json.dumps(fps),
        "entry": entry,
    }  # fmt: skip
    data = save(tensors, metadata=metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda f: f.write(data))


class VideoRecord:
    """One video's stored frames, read lazily: ``len(record)``, ``record.points`` (N, 68, 2), and
    ``record.frames(indices)`` -> (n, size, size, 3) uint8 RGB. ``InputError`` naming the file if it is not
    a readable record."""

    def __init__(self, path: str | os.PathLike):
        from safetensors import safe_open

        self.path = Path(path)
        try:
            self._file = safe_open(str(self.path), framework="numpy")
            self.meta = self._file.metadata() or {}
            self.offsets = self._file.get_tensor("offsets")
            self.points = self._file.get_tensor("points")
        except Exception as exc:  # missing, truncated, not safetensors, a tensor missing
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise InputError(f"{self.path}: not a readable fsth video record ({reason})") from None
        if self.meta.get("format") != VIDEO_FORMAT or len(self.offsets) != len(self.points) + 1:
            raise InputError(f"{self.path}: not an fsth video record")
        if self.points.ndim != 3 or self.points.shape[1:] != (68, 2):
            raise InputError(f"{self.path}: points of shape {self.points.shape}, (N, 68, 2) expected")

    def __len__(self) -> int:
        return len(self.points)

    @property
    def video_id(self) -> str:
        return self.meta.get("video_id", "")

    def jpeg(self, i: int) -> np.ndarray:
        return self._file.get_slice("jpeg")[int(self.offsets[i]) : int(self.offsets[i + 1])]

    def frames(self, indices: Iterable[int]) -> np.ndarray:
        """The frames at ``indices`` as (n, size, size, 3) uint8 RGB."""
        try:
            return np.stack([decode_jpeg(self.jpeg(i)) for i in indices])
        except InputError as exc:
            raise InputError(f"{self.path}: {exc}") from None
        except Exception as exc:  # a file cut short after its header
            raise InputError(f"{self.path}: cannot read its frames ({type(exc).__name__}: {exc})") from None

    def tensor(self, name: str) -> np.ndarray:
        return self._file.get_tensor(name)


def open_record(root: str | os.PathLike, video_id: str) -> VideoRecord:
    """The stored record of video ``video_id`` in the dataset directory ``root`` (``InputError`` if unreadable)."""
    return VideoRecord(record_path(Path(root), video_id))


# ---------------------------------------------------------------------------------------------- manifests


@dataclass(frozen=True)
class VideoEntry:
    """One manifest row: a video that was stored."""

    video_id: str
    person_id: str
    num_frames: int  # frames stored
    sources: list  # its clips, paths below the video tree
    source_frames: int = 0  # frames its clips hold (decoded or estimated)

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


def shard_suffix(shard: tuple[int, int]) -> str:
    i, n = shard
    return "" if n == 1 else f"-{i:05d}-of-{n:05d}"


def manifest_path(root: Path, shard: tuple[int, int] = (0, 1)) -> Path:
    return Path(root) / f"manifest{shard_suffix(shard)}.jsonl"


def report_path(root: Path, shard: tuple[int, int] = (0, 1)) -> Path:
    return Path(root) / f"report{shard_suffix(shard)}.jsonl"


def write_jsonl(path: Path, rows: Iterable[dict | str]) -> None:
    """Write JSON rows (dicts, or lines already serialised), atomically."""
    text = "".join((r if isinstance(r, str) else json.dumps(r, separators=(",", ":"))) + "\n" for r in rows)
    atomic_write(path, lambda f: f.write(text.encode()))


def read_jsonl(path: Path) -> list[dict]:
    rows = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise InputError(f"{path}: line {n} is not JSON") from None
    return rows


_MANIFEST = re.compile(r"manifest(-\d+-of-\d+)?\.jsonl$")


def read_entries(path: Path) -> list[VideoEntry]:
    """The rows of one manifest, each checked by type (``InputError`` naming the file, the row and the field)."""
    entries = []
    for n, row in enumerate(read_jsonl(path), 1):
        try:
            entries.append(VideoEntry(**check_types(row, field_types(VideoEntry), f"row {n}")))
        except ConfigError as exc:
            raise InputError(f"{path}: {exc}") from None
        except TypeError:
            raise InputError(f"{path}: row {n} is not a manifest entry: {row}") from None
    return entries


def read_manifests(root: Path) -> list[VideoEntry]:
    """The union of every manifest in ``root`` (all shards), sorted by video id."""
    entries: dict[str, VideoEntry] = {}
    for path in sorted(Path(root).glob("manifest*.jsonl")):
        if not _MANIFEST.match(path.name):
            continue
        for entry in read_entries(path):
            entries.setdefault(entry.video_id, entry)
    return [entries[k] for k in sorted(entries)]


# ---------------------------------------------------------------------------------------------- reading


class Dataset:
    """A built dataset: its settings and its videos, each with a fixed index (the row of W it trains).

    Videos are sorted by id, so the index of a video does not depend on which shard or run stored it.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"{self.root}: no such dataset directory")
        self.settings = read_info(self.root)
        self.videos = read_manifests(self.root)
        if not self.videos:
            raise InputError(f"{self.root}: the dataset holds no videos yet (no manifest rows)")

    def __len__(self) -> int:
        return len(self.videos)

    def record(self, index: int) -> VideoRecord:
        """The record of video ``index``."""
        return open_record(self.root, self.videos[index].video_id)

    @property
    def num_persons(self) -> int:
        return len({v.person_id for v in self.videos})

    def fingerprint(self) -> str:
        """A short hash of the ordered video ids: two datasets with equal fingerprints index W alike."""
        import hashlib

        h = hashlib.sha256("\n".join(v.video_id for v in self.videos).encode())
        return h.hexdigest()[:16]
