"""The pipeline: ``animate()`` joins the package's pieces, for a driver file (two passes) or a live one.

A producer thread (``_Background``) yields the driver's ``_Frame`` records; this thread batches them through the
``Renderer``; a writer thread (``_Sink``) composes each frame (``Compositor``) and encodes it (``VideoWriter``).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from fsth import console
from fsth.animate.compose import Compositor, _fit_height
from fsth.animate.drivers import _file_frames, _Frame, _LiveDriver, parse_driver, plan_targets
from fsth.animate.mouth import DriverTeeth, rest_mouth
from fsth.animate.options import AnimateOptions
from fsth.animate.preview import Preview
from fsth.animate.streams import _Background, _batches, _Sink, _streams
from fsth.errors import InputError, NoFaceError
from fsth.fewshot import Person, Renderer, detector_for
from fsth.landmarks.tracker import track_video
from fsth.video import VideoReader, VideoWriter

OUTPUT_SUFFIXES = (".mp4", ".m4v")


@dataclass
class AnimateStats:
    frames: int  # frames rendered (= driver frames for a file)
    written: int  # frames written to the output (a camera recording repeats frames to keep real time)
    seconds: float  # wall time of the frame loop (pass 2 for a file; includes pass 1's tracking too)
    faces: int  # driver frames with a face
    reference: int | None  # the driver's reference frame (None: absolute mode)
    fps: float  # the driver's (and output's) frame rate
    size: tuple[int, int] | None  # output frame (width, height)
    tracking: float = 0.0  # seconds of a driver file's tracking pass (part of ``seconds``)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


def check_output(path: str | os.PathLike, force: bool = False, inputs: Iterable = ()) -> Path:
    """An output video path that may be written (``fsth.files.check_output_file``): an .mp4 in an existing
    directory where a file can be created, never an input, not an existing file unless ``force``."""
    from fsth.files import check_output_file

    return check_output_file(path, force, suffixes=OUTPUT_SUFFIXES, kind="the output is an mp4 video", inputs=inputs)


def animate(
    person: Person,
    driver: str | os.PathLike | int,
    output: str | os.PathLike | None,
    options: AnimateOptions = AnimateOptions(),
    *,
    device=None,
) -> AnimateStats:
    """Render ``person`` driven by ``driver`` (a video path or a camera index) into ``output`` (an mp4; may be
    None when previewing a live driver). See ``fsth.animate``. The driver's landmarks come from the detector that
    read the person's shots (``Person.detector``; for a person made by hand, the one for its model's landmarks).
    The output is written atomically: on an error or Ctrl-C nothing is left under its name."""
    driver = parse_driver(driver)
    options = options.for_driver(isinstance(driver, int), device)
    live = options.live or isinstance(driver, int)
    if output is None and not options.preview:
        raise InputError("nothing to do: give -o OUT.mp4 to write a video, or show the preview window")
    if live and options.reference not in ("auto", "first"):
        raise InputError(
            "a live driver takes its first frame with a face as the reference; "
            f"--reference {options.reference} needs a driver file (without --live)"
        )
    detector = person.detector or detector_for(person.landmark_backend)
    renderer = Renderer.of(person, device=device, warp_only=options.warp_only)
    compose = Compositor(person, options, warps=renderer.warps)
    if (line := compose.describe()) is not None:
        console.log(line)
    preview = Preview() if options.preview else None
    try:
        if live:
            return _run_live(person, driver, output, detector, options, renderer, compose, preview)
        return _run_file(person, Path(driver), output, detector, options, renderer, compose, preview)
    finally:
        if preview is not None:
            preview.close()


ENCODER_PRESET = "veryfast"  # x264: ~40% of "medium"'s CPU time (the generator needs the cores); larger files


def _writer(output, fps: float, audio_from, crf: int | None) -> VideoWriter | None:
    if output is None:
        return None
    return VideoWriter(output, fps, audio_from=audio_from, crf=crf, preset=ENCODER_PRESET)


def _run_file(person, driver: Path, output, detector, options, renderer, compose, preview) -> AnimateStats:
    start = time.perf_counter()
    rest = rest_mouth(person.crops, person.points)
    teeth = DriverTeeth() if DriverTeeth.needed(rest, options.absolute) else None
    track = track_video(driver, detector, crop_policy=person.crop_policy, label=f"driver {driver.name}", on_frame=teeth)
    tracked = time.perf_counter() - start
    together = None if teeth is None else teeth.together(len(track))
    targets, reference = plan_targets(track, person.points[0], person.size, options, rest, together)
    if reference is not None:
        console.debug(f"driver reference frame: {reference}")
    with_frames = options.side_by_side or preview is not None or compose.needs_driver_frames(targets)
    sketches = renderer.needs_sketches or options.side_by_side
    frames = _Background(_file_frames(driver, targets, person.size, track.fps, with_frames, track, sketches))
    writer = _writer(output, track.fps, driver if options.audio else None, options.crf)
    stats = AnimateStats(0, 0, 0.0, track.num_valid, reference, track.fps, None, tracked)
    with _streams(frames, writer):
        _render_loop(frames, renderer, compose, writer, preview, options.batch_size, stats, len(track))
    stats.seconds = time.perf_counter() - start
    return stats


def _run_live(person, driver, output, detector, options, renderer, compose, preview) -> AnimateStats:
    start = time.perf_counter()
    with VideoReader(driver) as reader:
        live = _LiveDriver(reader, person, detector, options, renderer.needs_sketches or options.side_by_side)
        frames = _Background(live, depth=1 if isinstance(driver, int) else 4)
        audio = driver if options.audio and not isinstance(driver, int) else None
        writer = _writer(output, reader.fps, audio, options.crf)
        stats = AnimateStats(0, 0, 0.0, 0, None, reader.fps, None)
        with _streams(frames, writer):
            _render_loop(
                frames,
                renderer,
                compose,
                writer,
                preview,
                1,
                stats,
                reader.num_frames,
                on_key=lambda key: live.motion.reset() if key == "r" else None,
                check=lambda: _found_a_face(live, driver, stats),
            )
            stats.faces, stats.reference = live.faces, live.reference
    stats.seconds = time.perf_counter() - start
    return stats


def _found_a_face(live: "_LiveDriver", driver, stats: AnimateStats) -> None:
    if live.faces == 0:
        name = f"camera {driver}" if isinstance(driver, int) else str(driver)
        raise NoFaceError(f"{name}: no face found in any of its {stats.frames} frames")


def _render_loop(
    frames,
    renderer: Renderer,
    compose: Compositor,
    writer: VideoWriter | None,
    preview: Preview | None,
    batch_size: int,
    stats: AnimateStats,
    total: int | None,
    on_key: Callable[[str], None] = lambda key: None,
    check: Callable[[], None] = lambda: None,
) -> None:
    """The generator runs in this thread; compositing and encoding in a writer thread (compositing here when
    the preview shows the result, since the window belongs to this thread)."""

    def write(item: tuple[_Frame, np.ndarray, np.ndarray | None]) -> None:
        frame, face, out = item
        out = compose(frame, face) if out is None else out
        stats.size = (out.shape[1], out.shape[0])
        if writer is None:
            return
        # one frame per driver frame; a camera's dropped frames are filled by repeating, to keep real time
        due = int(round(frame.time * stats.fps)) + 1
        while stats.written < due:
            writer.write(out)
            stats.written += 1

    sink = _Sink(write)
    quit_ = False
    with console.progress() as bar:
        task = bar.add_task("animate", total=total)
        try:
            for batch in _batches(frames, batch_size):
                sketches = np.stack([f.sketch for f in batch]) if renderer.needs_sketches else None
                rendered = renderer.generate(sketches, np.stack([f.points for f in batch]))
                for j, frame in enumerate(batch):
                    face = rendered.frame(j)
                    out = None
                    if preview is not None:
                        result = compose.result(face, frame.points, frame.driver, frame.driver_points)
                        out = compose.panels(frame.driver, frame.sketch, result, frame.points)
                        key = preview.show(np.concatenate([_fit_height(frame.driver, result.shape[0]), result], 1))
                        quit_ = quit_ or key == "q"
                        on_key(key)
                    sink.put((frame, face, out))
                    stats.frames += 1
                bar.update(task, advance=len(batch))
                if quit_:
                    break
        finally:
            sink.close()
        bar.update(task, total=stats.frames, completed=stats.frames)
    check()  # before the output is moved into place
    if writer is not None:
        writer.close()
