"""Drivers: where the frames and their target landmarks come from, as ``_Frame`` records.

``parse_driver`` tells a camera index from a path. A driver file is tracked whole first (``track_video``, in
``fsth.animate.pipeline``); ``plan_targets`` retargets its landmarks onto the source and picks the reference frame, and
``_file_frames`` is the second pass. ``_LiveDriver`` is the one causal pass of a camera (or ``--live``): track,
retarget, draw, frame by frame, a camera's stale frames dropped (``_newest``).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from fsth.animate.mouth import DriverTeeth, rest_mouth
from fsth.animate.options import AnimateOptions
from fsth.errors import InputError
from fsth.fewshot import Person
from fsth.landmarks.crop import BoxFollower, CropPolicy
from fsth.landmarks.detectors import LandmarkDetector
from fsth.landmarks.extract import SUFFIX_FORMATS
from fsth.landmarks.retarget import MotionTransfer, choose_reference, hold_last, retarget
from fsth.landmarks.sketch import draw_sketch
from fsth.landmarks.tracker import LandmarkTracker
from fsth.video import VideoReader


@dataclass
class _Frame:
    index: int
    time: float  # seconds since the start (capture time for a camera)
    driver: np.ndarray | None  # the driver frame, when it is shown
    points: np.ndarray  # (68, 2) landmarks to render, in the source crop's pixels
    sketch: np.ndarray | None  # (S, S, 3) their landmark image (None: nothing uses it, as with the warp alone)
    driver_points: np.ndarray | None = None  # (68, 2) the driver's landmarks in its frame's pixels (None: no face)


def parse_driver(driver: str | os.PathLike | int) -> str | int:
    """A camera index (``0``; a string of digits that is not an existing file) or a path."""
    if isinstance(driver, int):
        return driver
    text = str(driver)
    return int(text) if text.isdigit() and not Path(text).exists() else text


def checked_driver(driver: str | os.PathLike | int) -> str | int:
    """``parse_driver``, refusing a driver that cannot drive (``InputError``): a missing file, a photo, a landmarks
    file, a file ffmpeg reads no video from (probed before the person is loaded; the probe is kept for the run)."""
    from fsth.video import check_file, is_image, probe_video

    parsed = parse_driver(driver)
    if isinstance(parsed, int):
        return parsed
    check_file(parsed)  # missing, a directory, a FIFO, /dev/zero
    if is_image(parsed):
        raise InputError(f"{driver}: the driver is a video (or a camera index), not a photo")
    if Path(parsed).suffix.lower() in SUFFIX_FORMATS:  # what ``fsth landmarks`` writes
        raise InputError(
            f"{driver}: a landmarks file; give the driver's video (or a camera index), which animate tracks"
        )
    probe_video(parsed)
    return parsed


def plan_targets(
    track,
    source: np.ndarray,
    size: int,
    options: AnimateOptions,
    rest_mouth: float = 0.0,
    driver_together: np.ndarray | None = None,
) -> tuple[np.ndarray, int | None]:
    """Landmarks to render for every frame of a tracked driver (N, 68, 2) in crop pixels, and the reference frame.

    Retargeted onto ``source`` (68, 2) relative to the reference frame (options.reference: auto/closest = the
    frame with the expression closest to the source's, first = the first frame with a face, or an index), its eyes
    and mouth measured on the track's face mesh where it has one (``track.mesh``), its eyes' open level over the
    frames around each (``eye_levels``), or with ``absolute`` the driver's own landmarks in its (smoothed) crop
    boxes. ``rest_mouth``: the source's inner-lip gap with its jaw shut (``fsth.animate.mouth.rest_mouth``: a smile
    whose teeth meet), which the driver's closed mouth gives; ``driver_together`` (N,): how surely each driver
    frame's teeth are together (``fsth.animate.mouth.DriverTeeth``), whose grin is not added to it.
    """
    valid = track.valid
    if options.absolute:
        crop = CropPolicy.to_crop(track.landmarks, track.boxes, size)
        return hold_last(crop, valid, crop[np.argmax(valid)]), None
    ref = options.reference
    if ref in ("auto", "closest"):
        ref = choose_reference(track.landmarks, valid, source, rest_mouth)
    elif ref == "first":
        ref = int(np.argmax(valid))
    else:
        ref = int(ref)
        if not 0 <= ref < len(track) or not valid[ref]:
            raise InputError(f"--reference {ref}: the driver has no face in frame {ref} (it has {len(track)} frames)")
    out = np.empty_like(track.landmarks)
    dense = {} if track.mesh is None else {"driver_dense": track.mesh[valid], "reference_dense": track.mesh[ref]}
    out[valid] = retarget(
        source,
        track.landmarks[valid],
        track.landmarks[ref],
        head_motion=options.head_motion,
        fps=track.fps,
        reference_index=int(valid[:ref].sum()),  # among the valid frames
        rest_mouth=rest_mouth,
        driver_together=None if driver_together is None else np.asarray(driver_together)[valid],
        **dense,
    )
    return hold_last(out, valid, source), ref


def _file_frames(
    driver: Path, targets: np.ndarray, size: int, fps: float, with_frames: bool, track=None, sketches: bool = True
) -> Iterator[_Frame]:
    """Pass 2 over a tracked driver file: the landmark image of every frame (``sketches``: when the generator or
    the side-by-side panels use it), and the frame with its landmarks from ``track`` when shown or when the mouth
    interior is taken from it."""
    frames = VideoReader(driver) if with_frames else None
    try:
        source = iter(frames) if frames is not None else iter(lambda: None, 0)
        for i in range(len(targets)):
            frame = next(source, None)
            if with_frames and frame is None:
                raise InputError(f"{driver}: fewer frames on the second read ({i}) than on the first ({len(targets)})")
            own = track.landmarks[i] if track is not None and track.valid[i] else None
            sketch = draw_sketch(targets[i], size) if sketches else None
            yield _Frame(i, i / fps, frame, targets[i], sketch, own)
    finally:
        if frames is not None:
            frames.close()


def _newest(frames: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, float]]:
    """(frame, capture time) from a camera, dropping frames that came while the consumer was busy."""
    slot: queue.Queue = queue.Queue(maxsize=1)
    done = object()
    start = time.perf_counter()

    def grab():
        try:
            for frame in frames:
                item = (frame, time.perf_counter() - start)
                try:
                    slot.get_nowait()  # drop the stale one
                except queue.Empty:
                    pass
                slot.put(item)
        finally:
            try:
                slot.get_nowait()
            except queue.Empty:
                pass
            slot.put(done)

    threading.Thread(target=grab, daemon=True).start()
    while (item := slot.get()) is not done:
        yield item


class _LiveDriver:
    """One causal pass: track, retarget (reference: the first frame with a face) and draw (``sketches``: when used),
    frame by frame."""

    def __init__(
        self,
        reader: VideoReader,
        person: Person,
        detector: LandmarkDetector,
        options: AnimateOptions,
        sketches: bool = True,
    ):
        self.reader, self.size, self.options, self.sketches = reader, person.size, options, sketches
        self.tracker = LandmarkTracker(detector, fps=reader.fps)
        rest = rest_mouth(person.crops, person.points)
        self.motion = MotionTransfer(
            person.points[0],
            absolute=options.absolute,
            head_motion=options.head_motion,
            fps=reader.fps,
            rest_mouth=rest,
        )
        self.read_teeth = DriverTeeth.needed(rest, options.absolute)
        self.boxes = BoxFollower(person.crop_policy, reader.fps)
        self.faces = 0
        self.reference: int | None = None

    def __iter__(self) -> Iterator[_Frame]:
        camera = isinstance(self.reader.source, int)
        timed = _newest(self.reader) if camera else ((f, i / self.reader.fps) for i, f in enumerate(self.reader))
        for i, (frame, t) in enumerate(timed):
            found = self.tracker.update(frame, t)
            seen = found
            if found is not None:
                self.faces += 1
                if self.options.absolute:
                    found = CropPolicy.to_crop(found, self.boxes(found), self.size)
                elif self.motion.reference is None:
                    self.reference = i
            mesh = self.tracker.mesh if seen is not None else None
            together = DriverTeeth.of(frame, seen, mesh) if self.read_teeth and seen is not None else None
            points = self.motion.update(found, mesh, together)
            sketch = draw_sketch(points, self.size) if self.sketches else None
            yield _Frame(i, t, frame, points, sketch, seen)
