"""Landmarks over time: an online tracker (frame in, 68 points out) and the whole-video / image drivers.

The tracker follows the detector's own points (``detector.num_points``: 478 for the mesh backend), smooths them and
returns their iBUG 68 (``detector.to_68``); a mesh detector's smoothed mesh is ``tracker.mesh`` (``to_mesh``).

``LandmarkTracker.update(frame)`` is causal and keeps no frames, so ``fsth animate`` can drive it from a
webcam one frame at a time:

1. no face yet (or lost): search the whole frame (``detector.detect``), take face ``face_index`` by size;
2. otherwise track: landmarks from a box derived from the previous frame's landmarks (``detector.refine``,
   ~1 ms with dlib instead of a ~20 ms face search); an implausible result (face left the frame, size jump)
   counts as lost and goes back to 1;
3. every ``redetect_every`` frames a local face search around the track confirms it (``detector.redetect``);
   if the detector's face disagrees with the track, the track restarts from it; after ``max_misses``
   confirmations in a row find nothing, the face is lost. The same check runs at once, and a failure
   loses the face at once, when the face's region stops looking like it did in the previous frame (a
   16x16 thumbnail of it correlates below ``cut_threshold``: a scene cut, the face gone, a sudden occlusion);
4. the output is smoothed by a One-Euro filter (``smoothing``), reset whenever the face is lost.

Steps 1-3 follow the face with the detector's points before their last refinement (``locate``); the refinement
(``detector.finish``: the mesh's iris model) and step 4 make the frame's output (``finish``). ``update`` runs both;
``track_video`` runs ``finish`` on a second thread, a few frames behind (``FINISH_AHEAD``), so a video's frames use
both cores.

With several faces, ``face_index`` picks by size (0 = largest) each time a search starts a track; between
searches the tracker follows that same face.

``track_video(source, detector, ...)`` runs a tracker over a video with a progress bar and returns a
``LandmarkTrack`` (one row per decoded frame; frames without a face are invalid, never an error, unless no
frame has one). ``track_image(path, detector, ...)`` is the one-frame version for photos.
"""

from __future__ import annotations

import math
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from fsth import console
from fsth.errors import NoFaceError
from fsth.landmarks.crop import CropPolicy
from fsth.landmarks.detectors import LandmarkDetector, agrees, landmark_extent
from fsth.landmarks.parts import NUM_MESH_POINTS
from fsth.landmarks.record import LandmarkTrack
from fsth.landmarks.smoothing import OneEuroFilter, Smoothing
from fsth.video import VideoReader, read_image


class LandmarkTracker:
    """Online 68-point landmark tracker; see the module docstring."""

    def __init__(
        self,
        detector: LandmarkDetector,
        *,
        face_index: int = 0,
        redetect_every: int = 10,
        smoothing: Smoothing | None = Smoothing(),
        max_misses: int = 2,
        cut_threshold: float = 0.5,
        fps: float = 30.0,
    ):
        if face_index < 0:
            raise ValueError("face_index must be >= 0")
        if redetect_every < 1:
            raise ValueError("redetect_every must be >= 1")
        self.detector = detector
        self.face_index = face_index
        self.most_faces = 0  # the most faces one search found (says why --face-index found nothing)
        self.redetect_every = redetect_every
        self.smoothing = smoothing or Smoothing(strength=0.0)
        self.max_misses = max_misses
        self.cut_threshold = cut_threshold
        self.fps = fps
        self._filter = OneEuroFilter(self.smoothing, detector.smoothing_weights())
        self.reset()

    def reset(self) -> None:
        """Forget the face (e.g. at a scene cut)."""
        self._raw: np.ndarray | None = None  # last unsmoothed points: what tracking continues from
        self.mesh: np.ndarray | None = None  # (478, 2) smoothed mesh points of the last frame (a mesh detector)
        self._look: np.ndarray | None = None  # thumbnail of the face region in the last frame
        self._since_check = 0
        self._misses = 0
        self._frame = 0
        self._filter.reset()
        self.searches = 0  # full-frame face searches so far (for benchmarks and tests)

    def settings(self) -> dict:
        return {
            "face_index": self.face_index,
            "redetect_every": self.redetect_every,
            "max_misses": self.max_misses,
            "cut_threshold": self.cut_threshold,
            "smoothing": self.smoothing.to_dict(),
        }

    def _track(self, frame: np.ndarray) -> np.ndarray | None:
        prev = self._raw
        look = _thumbnail(frame, prev)
        cut = float(np.dot(look, self._look)) < self.cut_threshold
        if self._since_check < self.redetect_every and not cut:
            return self.detector.refine(frame, prev, finish=False)
        self._since_check = 0
        tracked = self.detector.refine(frame, prev, finish=False)
        found = self.detector.redetect(frame, prev, finish=False, tracked=tracked)
        if found is None:
            self._misses += 1
            return tracked if self._misses <= self.max_misses and not cut else None
        self._misses = 0
        if tracked is None or not agrees(found, tracked):
            return found  # the detector disagrees with the track: restart from the detector's face
        return tracked

    def _search(self, frame: np.ndarray) -> np.ndarray | None:
        self.searches += 1
        faces = self.detector.detect(frame, min_faces=self.face_index + 1, finish=False)
        self.most_faces = max(self.most_faces, len(faces))
        return faces[self.face_index] if len(faces) > self.face_index else None

    def update(self, frame: np.ndarray, t: float | None = None) -> np.ndarray | None:
        """Landmarks (68, 2) float32 of the tracked face in ``frame`` (RGB uint8), or None if there is none; the
        smoothed mesh in ``self.mesh``. ``t`` is the frame's time in seconds (for the smoothing); default: frame
        count / ``fps``. The same as ``finish(frame, locate(frame, t))``."""
        points, self.mesh = self.finish(frame, self.locate(frame, t))
        return points

    def locate(self, frame: np.ndarray, t: float | None = None) -> Located:
        """The first stage of ``update``: follow the face into ``frame`` (the detector's points before their last
        refinement, ``finish=False``). Frames must be located in order; ``finish`` may run on another thread."""
        t = self._frame / self.fps if t is None else t
        self._frame += 1
        raw = self._track(frame) if self._raw is not None else None
        restart = raw is None
        if restart:
            self._since_check = 0
            self._misses = 0
            raw = self._search(frame)
        self._raw = raw
        if raw is None:
            return Located(None, t, restart)
        self._look = _thumbnail(frame, raw)
        self._since_check += 1
        return Located(raw, t, restart)

    def finish(self, frame: np.ndarray, located: Located) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The second stage of ``update``, in the order the frames were located: the detector's last refinement
        (``detector.finish``: the mesh's irises) and the smoothing -> (68, 2) points and the (478, 2) mesh of a mesh
        detector (None, None without a face)."""
        if located.restart:
            self._filter.reset()
        if located.raw is None:
            return None, None
        raw = self.detector.finish(frame, located.raw)
        points = self._filter(raw, located.t, landmark_extent(raw))
        return self.detector.to_68(points), self.detector.to_mesh(points)


@dataclass(frozen=True)
class Located:
    """One frame's face as ``LandmarkTracker.locate`` found it: points before the detector's last refinement (None:
    no face), the frame's time, and whether the track (re)starts here (the smoothing starts afresh)."""

    raw: np.ndarray | None
    t: float
    restart: bool


def _thumbnail(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """The face region's look: a 16x16 gray thumbnail of the landmarks' box, zero-mean, unit-norm (256,). Twice a
    tracked frame, so kept to a few calls into OpenCV (numpy's small reductions cost more than the arithmetic)."""
    import cv2

    h, w = frame.shape[:2]
    x, y, bw, bh = cv2.boundingRect(np.ascontiguousarray(points, np.float32))
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + bw + 1, w), min(y + bh + 1, h)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return np.zeros(256, np.float32)
    step = max(1, min(x1 - x0, y1 - y0) // 64)  # every step-th pixel: at most ~64x64 averaged into the 16x16
    region = frame[y0:y1:step, x0:x1:step]
    v = cv2.resize(region, (16, 16), interpolation=cv2.INTER_AREA).reshape(256, -1).sum(axis=1, dtype=np.float32)
    v -= v.sum() / 256
    n = math.sqrt(float(v @ v))
    return v / n if n > 1e-3 else np.zeros(256, np.float32)


MIN_FACE_FRAME = 16  # frames smaller than this on a side cannot show a face a detector finds


# How many frames the first stage may run ahead of the second. One frame (lockstep) left the second stage idle
# while the first searched for the face (every ``redetect_every`` frames: ~8 ms against ~3 ms for a frame's
# irises), and the first idle behind a slow frame of the second; a few frames of slack take up both. The mesh
# backend on talk.mp4 looped to 1800 frames, 2-core AMD EPYC, alternated 3 times: 10.3 s -> 8.9 s (3 or 8 ahead
# alike), the same points.
FINISH_AHEAD = 4


def track_video(
    source: str | os.PathLike | int,
    detector: LandmarkDetector,
    *,
    face_index: int = 0,
    redetect_every: int = 10,
    smoothing: Smoothing | None = Smoothing(),
    crop_policy: CropPolicy = CropPolicy(),
    label: str | None = None,
    on_frame: Callable[[VideoReader, int, np.ndarray | None, np.ndarray | None, np.ndarray], None] | None = None,
) -> LandmarkTrack:
    """Landmarks of every frame of a video, with smoothed crop boxes. ``NoFaceError`` if no frame has a face.
    ``on_frame(video, index, points or None, mesh or None, frame)`` is called as each frame is tracked (before the
    boxes, which are smoothed over the whole video, exist: ``fsth landmarks VIDEO`` streams its rows to stdout with
    it; ``fsth animate`` reads the driver's teeth on its frames, ``fsth.animate.mouth.DriverTeeth``)."""
    with VideoReader(source) as video:
        if min(video.width, video.height) < MIN_FACE_FRAME:
            raise NoFaceError(f"{source}: its frames are {video.width}x{video.height} pixels, too small to hold a face")
        tracker = LandmarkTracker(
            detector, face_index=face_index, redetect_every=redetect_every, smoothing=smoothing, fps=video.fps
        )
        rows: list[np.ndarray | None] = []
        meshes: list[np.ndarray | None] = []
        name = label or (Path(source).name if not isinstance(source, int) else f"camera {source}")

        def keep(pending) -> None:
            frame, finished = pending
            points, mesh = finished.result()
            rows.append(points)
            meshes.append(mesh)
            if on_frame is not None:
                on_frame(video, len(rows) - 1, points, mesh, frame)
            bar.advance(task)

        # Two stages: this thread follows the face into the next frames while a second one finishes the earlier
        # ones' points (the mesh's irises; the smoothing), in order, so that the two share the machine's cores.
        with console.progress() as bar, ThreadPoolExecutor(1, thread_name_prefix="fsth-finish") as finisher:
            task = bar.add_task(name, total=video.num_frames)
            pending: deque = deque()
            for frame in video:
                located = tracker.locate(frame)
                pending.append((frame, finisher.submit(tracker.finish, frame, located)))
                if len(pending) > FINISH_AHEAD:
                    keep(pending.popleft())
            while pending:
                keep(pending.popleft())
            bar.update(task, total=len(rows), completed=len(rows))
        fps, frame_size = video.fps, (video.width, video.height)
    n = len(rows)
    valid = np.array([r is not None for r in rows], bool)
    if not valid.any():
        if face_index > 0 and tracker.most_faces > 0:
            raise NoFaceError(
                f"{source}: --face-index {face_index} asks for face {face_index + 1}, found at most "
                f"{tracker.most_faces} in any of its {n} frames"
            )
        raise NoFaceError(f"{source}: no face found in any of its {n} frames")
    landmarks = np.full((n, 68, 2), np.nan, np.float32)
    landmarks[valid] = np.stack([r for r in rows if r is not None])
    mesh = None
    if any(m is not None for m in meshes):
        mesh = np.full((n, NUM_MESH_POINTS, 2), np.nan, np.float32)
        mesh[valid] = np.stack([m for m in meshes if m is not None])
    return LandmarkTrack(
        landmarks=landmarks,
        mesh=mesh,
        valid=valid,
        boxes=crop_policy.boxes(landmarks, valid, fps),
        fps=fps,
        frame_size=frame_size,
        backend=detector.name,
        source=str(source),
        crop_policy=crop_policy,
        tracking=tracker.settings(),
    )


def track_image(
    path: str | os.PathLike,
    detector: LandmarkDetector,
    *,
    face_index: int = 0,
    crop_policy: CropPolicy = CropPolicy(),
    image: np.ndarray | None = None,
) -> LandmarkTrack:
    """Landmarks of one photo as a one-frame track. ``NoFaceError`` if it has no face (or too few faces)."""
    image = read_image(path) if image is None else image
    faces = detector.detect(image, min_faces=face_index + 1)
    if len(faces) <= face_index:  # a photo is meant to show a face: look again, accepting less certain ones
        faces = detector.detect(image, min_faces=face_index + 1, lenient=True)
    if len(faces) <= face_index:
        if not faces:
            raise NoFaceError(
                f"{path}: no face found in the image (faces less than about 50 px across are not found: "
                "a larger or closer photo helps)"
            )
        raise NoFaceError(f"{path}: --face-index {face_index} asks for face {face_index + 1}, found {len(faces)}")
    if len(faces) > 1:  # say which one, rather than use one silently
        (x0, y0), x1 = faces[face_index].min(0), faces[face_index][:, 0].max()
        console.warn(
            f"{path}: more than one face ({len(faces)} found); using face {face_index + 1} by size ({x1 - x0:.0f} px "
            f"wide at x {x0:.0f}, y {y0:.0f}); --face-index N takes another (or crop the photo)"
        )
    points = detector.to_68(faces[face_index])[None]
    mesh = detector.to_mesh(faces[face_index])
    h, w = image.shape[:2]
    return LandmarkTrack(
        landmarks=points,
        mesh=None if mesh is None else mesh[None],
        valid=np.ones(1, bool),
        boxes=crop_policy.box(points),
        fps=0.0,
        frame_size=(w, h),
        backend=detector.name,
        source=str(path),
        crop_policy=crop_policy,
        tracking={"face_index": face_index},
    )
