"""What ``fsth landmarks`` does with one input: image or video -> ``LandmarkTrack``; sketch and overlay outputs.

``extract_landmarks(path, detector, ...)`` decides by extension whether ``path`` is a photo (one-frame track)
or a video (tracked), trying both for an unknown extension. ``write_sketch(track, path, ...)`` renders the
landmark images (the crop the networks see, ``size`` x ``size``) or, with ``overlay=True``, the landmarks and
crop box over the source frames; as an mp4 (with the source's audio) or, for a photo, an image file.
``plan_jobs`` names the outputs of a batch of inputs (and refuses clashes and overwrites before any work);
``run_job`` does one input, ``run_jobs`` a batch of them.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from fsth import console
from fsth.errors import FsthError, InputError
from fsth.landmarks.crop import BoxFollower, CropPolicy
from fsth.landmarks.detectors import LandmarkDetector
from fsth.landmarks.record import LandmarkTrack, jsonl_row
from fsth.landmarks.sketch import draw_overlay, draw_sketch
from fsth.landmarks.smoothing import Smoothing
from fsth.landmarks.tracker import track_image, track_video
from fsth.video import (
    VideoReader,
    VideoWriter,
    expand_inputs,
    is_image,
    is_video,
    probe_video,
    read_image,
    write_image,
)


def extract_landmarks(
    path: str | os.PathLike,
    detector: LandmarkDetector,
    *,
    face_index: int = 0,
    redetect_every: int = 10,
    smoothing: Smoothing | None = Smoothing(),
    crop_policy: CropPolicy = CropPolicy(),
    on_frame=None,
) -> LandmarkTrack:
    """The landmark track of one image or video file (``InputError``/``NoFaceError`` naming it on failure);
    ``on_frame``: ``track_video``'s, for a video."""
    path = Path(path)
    image = _image_or_none(path)
    if image is not None:
        return track_image(path, detector, face_index=face_index, crop_policy=crop_policy, image=image)
    return track_video(
        path, detector, face_index=face_index, redetect_every=redetect_every, smoothing=smoothing,
        crop_policy=crop_policy, on_frame=on_frame,
    )  # fmt: skip


def _image_or_none(path: Path) -> np.ndarray | None:
    """The pixels if ``path`` is a photo, None if it is a video; by extension, else by trying to read it."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if is_video(path):
        return None
    if is_image(path):
        return read_image(path)
    try:
        return read_image(path)
    except InputError:
        pass
    try:
        probe_video(path)
    except InputError:
        raise InputError(f"{path}: not an image or video file") from None
    return None


def sketch_frames(track: LandmarkTrack, size: int):
    """The landmark image of every frame of ``track``: (size, size, 3) uint8 RGB, black where no face."""
    points = CropPolicy.to_crop(track.landmarks, track.boxes, size)  # (N, 68, 2), NaN where not valid
    for i in range(len(track)):
        yield draw_sketch(points[i], size)


def overlay_frames(track: LandmarkTrack, frames):
    """Source frames with the track's landmarks and crop box drawn over them."""
    for i, frame in enumerate(frames):
        if i >= len(track):
            break
        yield draw_overlay(frame, track.landmarks[i] if track.valid[i] else None, track.boxes[i])


def write_sketch(track: LandmarkTrack, path: str | os.PathLike, *, size: int = 256, overlay: bool = False) -> Path:
    """Write ``track``'s landmark images (or, with ``overlay``, the source frames with landmarks drawn) to ``path``.

    An image suffix (.png, .jpg) writes the first frame as an image; anything else an mp4 at the source's
    frame rate with the source's audio track, if it has one.
    """
    path = Path(path)
    source = Path(track.source)
    if not overlay:
        return _write_frames(track, path, sketch_frames(track, size), "sketch")
    if track.fps == 0:  # a photo
        return _write_frames(track, path, overlay_frames(track, [read_image(source)]), "overlay")
    with VideoReader(source) as reader:
        return _write_frames(track, path, overlay_frames(track, reader), "overlay")


def _write_frames(track: LandmarkTrack, path: Path, frames, what: str) -> Path:
    source = Path(track.source)
    if is_image(path):
        return write_image(path, next(iter(frames)))
    audio = source if track.fps > 0 and source.is_file() else None
    with console.progress() as bar, VideoWriter(path, track.fps or 25.0, audio_from=audio) as out:
        task = bar.add_task(f"{what} {path.name}", total=len(track))
        for frame in frames:
            out.write(frame)
            bar.advance(task)
    return path


# ---------------------------------------------------------------------------------------------- a batch

FORMATS = ("npz", "jsonl")
# a landmarks file's format by its suffix (``fsth animate`` refuses such a file as its driver)
SUFFIX_FORMATS = {".npz": "npz", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}


@dataclass
class Job:
    """One input of ``fsth landmarks`` and where its results go."""

    input: Path
    output: Path | None  # None: JSONL rows on stdout
    sketch: Path | None


def _is_dir_target(p: str | os.PathLike) -> bool:
    """An existing directory, or a name written as one (``out/``; give it as a str: Path drops the slash)."""
    return Path(p).is_dir() or (isinstance(p, str) and p.endswith(("/", os.sep)))


def plan_jobs(
    inputs: list[str | os.PathLike],
    output: str | os.PathLike | None,
    fmt: str | None,
    sketch: str | os.PathLike | None,
    *,
    force: bool = False,
    skip_existing: bool = False,
) -> tuple[list[Job], str]:
    """Expand ``inputs`` and name every output; (jobs, format). Refuses bad combinations before any work.

    One input file: ``output``/``sketch`` are file names (or existing directories). Several inputs or a
    directory: they are directories (created), with one ``<name>.<format>`` and ``<name>.mp4|.png`` per input;
    inputs found in a directory keep their path below it, so ``id/video/00001.mp4`` -> ``id/video/00001.npz``
    (below the directory's own name when several inputs are given: ``videos/ images/`` -> ``videos/...``,
    ``images/...``). Two inputs that would write the same file, and existing outputs unless ``force``, are
    errors before any work. ``skip_existing`` drops the inputs whose files all exist already (outputs are
    written atomically, so an existing one is complete) and writes all outputs of the others again (an .npz
    without its --sketch): an interrupted batch run resumes where it stopped.
    """
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    named: list[tuple[Path, Path]] = []  # (input file, relative output name without suffix)
    for arg in map(Path, inputs):
        if arg.is_dir():
            # one directory: its tree; several arguments: each directory's tree under its own name
            top = Path(arg.resolve().name) if len(inputs) > 1 else Path()
            named += [(f, top / f.relative_to(arg).with_suffix("")) for f in expand_inputs([arg])]
        else:
            named.append((arg, Path(arg.stem)))
    if not named:
        raise InputError("no inputs given")
    many = len(named) > 1 or any(Path(a).is_dir() for a in inputs)
    from fsth.files import check_name_length

    out = check_name_length(output, "-o") if output is not None else None
    out_is_dir = out is not None and (many or _is_dir_target(output))
    sk = check_name_length(sketch, "--sketch") if sketch is not None else None
    sketch_is_dir = sk is not None and (many or _is_dir_target(sketch))
    # several inputs write one file each into a directory: a new one named like a file is a mistake, not a name
    for flag, path, suffixes in (("-o", out, SUFFIX_FORMATS), ("--sketch", sk, (".mp4", ".png"))):
        if many and path is not None and not path.is_dir() and path.suffix.lower() in suffixes:
            raise InputError(f"{flag} {path}: several inputs write one file each into a directory; give {flag} DIR/")
    if out is None:
        if fmt == "npz":
            raise InputError("--format npz writes files: give -o FILE.npz (or -o DIR for several inputs)")
        fmt = "jsonl"
    elif not out_is_dir:
        by_suffix = SUFFIX_FORMATS.get(out.suffix.lower())
        if fmt is None and by_suffix is None:
            raise InputError(f"-o {out}: cannot tell the format from the suffix; use .npz or .jsonl, or --format")
        if fmt is not None and by_suffix is not None and by_suffix != fmt:
            raise InputError(f"-o {out} does not match --format {fmt}")
        fmt = fmt or by_suffix
    else:
        fmt = fmt or "npz"

    jobs = []
    for path, rel in named:
        target = (out / rel.with_suffix("." + fmt) if out_is_dir else out) if out is not None else None
        sketch_target = None
        if sk is not None:
            sketch_target = sk / rel.with_suffix(".png" if is_image(path) else ".mp4") if sketch_is_dir else sk
        jobs.append(Job(path, target, sketch_target))
    if skip_existing:
        jobs = [j for j in jobs if not _done(j)]
    _check_targets(jobs, force, resuming=skip_existing)
    return jobs, fmt


def _done(job: Job) -> bool:
    targets = [t for t in (job.output, job.sketch) if t is not None]
    return job.output is not None and all(t.exists() for t in targets)


def _check_targets(jobs: list[Job], force: bool, resuming: bool = False) -> None:
    """Refuse outputs that are inputs, that two inputs would both write, that cannot be written (checked before
    any work: under /sys, a file where a directory should be) and, unless ``force``, that exist. ``resuming``
    (--skip-existing): an unfinished input's own outputs that exist are written again, not refused."""
    from fsth.files import check_name_length, check_writable, claim

    inputs = {j.input.resolve() for j in jobs}
    seen: dict[Path, Path] = {}
    existing = []
    probed: set[Path] = set()
    for job in jobs:
        if job.output is not None and job.sketch is not None and job.output.resolve() == job.sketch.resolve():
            raise InputError(f"-o and --sketch name the same file {job.sketch}; give the sketch its own name")
        for target, option in ((job.output, "-o"), (job.sketch, "--sketch")):
            if target is None:
                continue
            key = check_name_length(target, option).resolve()
            if key in inputs:
                raise InputError(f"{target}: would overwrite an input")
            if key in seen:
                raise InputError(f"{seen[key]} and {job.input} would both write {target}")
            seen[key] = job.input
            if key.parent not in probed:
                check_writable(target, option)
                probed.add(key.parent)
            elif target.is_dir():
                raise InputError(f"{option} {target}: is a directory; name the file to write")
            if target.exists() and not force and not resuming:
                existing.append(target)
            claim(target, force or resuming)
    if existing:
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise InputError(f"{existing[0]} already exists{more}; use --force to overwrite (or --skip-existing)")


class _Stream:
    """``track_video``'s ``on_frame`` that writes each frame's JSONL row to ``stdout`` as it is tracked, with the
    causal box of the frames so far (``BoxFollower``)."""

    def __init__(self, path: Path, detector: LandmarkDetector, stdout: IO[str], policy: CropPolicy):
        self.source, self.stdout, self.crop_policy, self.rows = str(path), stdout, policy, 0
        self.backend = detector.name
        self.mesh = True if detector.num_points > 68 else None  # rows carry "mesh" (null where no face)
        self.follow = None

    def __call__(self, video: VideoReader, index: int, points, mesh, frame=None) -> None:
        if self.follow is None:  # the reader's clock and frame size, as the track's
            self.fps, self.frame_size = video.fps, (video.width, video.height)
            self.follow = BoxFollower(self.crop_policy, self.fps)
        box = self.follow(points) if points is not None else np.full(4, np.nan)
        self.stdout.write(json.dumps(jsonl_row(self, index, points, box, mesh), separators=(",", ":")) + "\n")
        self.stdout.flush()
        self.rows += 1


def run_job(
    job: Job,
    detector: LandmarkDetector,
    fmt: str,
    stdout: IO[str],
    *,
    sketch_size: int = 256,
    overlay: bool = False,
    **track_options,
) -> LandmarkTrack:
    """Landmarks of ``job.input``, written to ``job.output`` (or JSONL on ``stdout``) and ``job.sketch``.

    On stdout a video's rows stream as its frames are tracked (``fsth landmarks talk.mp4 | head -1`` answers at
    once), with each frame's causal box (``BoxFollower``: the policy's box smoothed over the frames before it); a
    file's boxes are smoothed over the whole video, as every later stage crops."""
    stream = _Stream(job.input, detector, stdout, track_options.get("crop_policy", CropPolicy()))
    track = extract_landmarks(job.input, detector, on_frame=stream if job.output is None else None, **track_options)
    for target in (job.output, job.sketch):
        if target is not None:
            target.parent.mkdir(parents=True, exist_ok=True)
    if job.output is None:
        if stream.rows == 0:  # a photo: its one row
            track.write_jsonl(stdout)
            stdout.flush()
    elif fmt == "npz":
        track.save(job.output)
    else:
        track.save_jsonl(job.output)
    if job.sketch is not None:
        write_sketch(track, job.sketch, size=sketch_size, overlay=overlay)
    where = f" -> {job.output}" if job.output else ""
    also = f", {'overlay' if overlay else 'sketch'} -> {job.sketch}" if job.sketch else ""
    console.log(f"{job.input}: {track.num_valid}/{len(track)} frames with a face ({track.backend}){where}{also}")
    return track


def run_jobs(jobs: list[Job], detector: LandmarkDetector, fmt: str, stdout: IO[str], **options) -> list[str]:
    """``run_job`` for each of ``jobs``. The error of a single job propagates; of several, one that fails is
    reported on stderr and the others still run, then the failures are listed again together. Returns their
    messages (empty: all done)."""
    if len(jobs) == 1:
        run_job(jobs[0], detector, fmt, stdout, **options)
        return []
    failures = []
    for job in jobs:
        try:
            run_job(job, detector, fmt, stdout, **options)
        except FsthError as exc:
            console.error(str(exc))
            failures.append(str(exc))
    if failures:
        console.error(f"{len(failures)} of {len(jobs)} inputs failed:")
        for message in failures:
            console.err.print(f"  {message}", soft_wrap=True, highlight=False, markup=False)
    return failures
