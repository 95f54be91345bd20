"""Building the dataset: a tree of videos -> face crops + landmarks of frames spread over each video.

What ``fsth landmarks VIDEO_TREE --dataset DIR`` runs (layout of DIR in ``fsth.dataset.store``).

Videos and persons, from the tree's shape (``find_videos``):

* ``person/video/clip.mp4`` (VoxCeleb2: ``id00012/21Uxsk56VDQ/00001.mp4``) and anything deeper: a *video* is a
  folder of clips (its id is the folder's path, ``id00012/21Uxsk56VDQ``), its person is the folder above it
  (``id00012``). As in the paper, W has one row per video, and a video's frames come from all of its clips.
* ``person/clip.mp4``: each file is a video (id ``person/clip``), the folder is its person.
* ``clip.mp4`` directly in the tree: each file is a video and its own person.

For each video, ``frames_per_video`` frames spread evenly over its length (over its clips in proportion to
their lengths) are kept; each is cropped by the one crop policy through ``face_pair`` at ``size`` x ``size``
and stored as JPEG with its landmarks in crop pixels. Landmarks come from one of two modes:

* default: a face search on each kept frame only, taking after the first frame the face of the same person
  (``same_face``: the nearest face, of a similar size, within a face width of the last one kept; in a clip
  with several people another person is not taken instead). The kept frames' boxes are then smoothed over
  time by the crop policy's own smoother (``CropPolicy.smooth_boxes``, at the kept frames' rate). Decoding stops after
  the
  last kept frame and only ``frames_per_video`` searches run per video. Each frame's landmarks are the
  detector's own for that frame (no temporal filter, so no lag between the sketch and the pixels), as the
  paper's per-frame landmarks were.
* ``track_every_frame``: the ``LandmarkTracker`` runs over every frame and the boxes are the crop policy's
  smoothed boxes of the whole video: exactly the crops ``fsth animate`` makes of a driving video.

Measured by ``benchmarks/dataset.py`` (dlib, 32 frames at 256): tracking every frame takes 2.6x the CPU time on
the VoxCeleb-style 224-256 px clips of the shared media (where a face search is cheap: 142 vs 54 videos per
CPU-minute) and 1.5x over all 28 shared videos (60 vs 41); the two modes' crops of the same frames differ by a
median 0.2-0.3% of the box side (90th percentile 1-2%) and their landmarks by 0.9 px at 256. So the default is
the face search on the kept frames.

A video is skipped and reported (``report.jsonl``), never stopping the run, when it cannot be read, is
truncated, or has a face in fewer than ``min_frames`` of its kept frames. Each record is written atomically,
so a re-run skips what is done (and what failed before, unless ``retry_failed``). ``shard=(i, n)`` takes the
videos whose id hashes to i modulo n: n machines build disjoint parts of the same tree into one directory
(or into several that are then copied together); every reader takes the union of the shards' manifests.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
import time
import traceback
import zlib
from collections import defaultdict
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fsth import console
from fsth.dataset.options import BuildOptions
from fsth.dataset.store import (
    DatasetSettings,
    VideoEntry,
    encode_jpeg,
    manifest_path,
    open_record,
    read_entries,
    read_jsonl,
    record_path,
    report_path,
    write_info,
    write_jsonl,
    write_record,
)
from fsth.errors import FsthError, InputError, NoFaceError, os_error_line, signals_as_interrupts
from fsth.landmarks.backends import make_detector
from fsth.landmarks.crop import CropPolicy
from fsth.landmarks.detectors import LandmarkDetector, landmark_extent
from fsth.landmarks.options import LandmarkOptions
from fsth.landmarks.pair import face_pair
from fsth.landmarks.smoothing import Smoothing
from fsth.landmarks.tracker import LandmarkTracker
from fsth.video import VideoReader, is_video, probe_video, spread


@dataclass
class VideoSpec:
    """One video of the tree: its id, its person and its clips."""

    video_id: str
    person_id: str
    clips: list[Path]  # files to read
    sources: list[str]  # the same, as paths below the tree (what the manifest records)


def find_videos(tree: str | os.PathLike) -> list[VideoSpec]:
    """The videos of a tree, sorted by id (see the module docstring for how ids and persons are derived)."""
    tree = Path(tree)
    if not tree.is_dir():
        raise InputError(f"{tree}: the dataset's VIDEO_TREE must be a directory of videos")
    groups: dict[str, list[Path]] = defaultdict(list)
    persons: dict[str, str] = {}
    for f in sorted(p for p in tree.rglob("*") if p.is_file() and is_video(p)):
        rel = f.relative_to(tree)
        parts = rel.parts
        if len(parts) >= 3:  # person/.../video/clip: the clip's folder is the video
            video, person = rel.parent.as_posix(), rel.parent.parent.as_posix()
        else:  # person/clip or clip: the file is the video
            video, person = rel.with_suffix("").as_posix(), parts[0] if len(parts) == 2 else rel.stem
            if video in groups and len(rel.parent.parts) < 2:  # a.mp4 beside a.mov, or beside folder a/
                video = rel.as_posix()
        groups[video].append(f)
        persons[video] = person
    if not groups:
        raise InputError(f"{tree}: no video files in the tree")
    return [
        VideoSpec(v, persons[v], groups[v], [c.relative_to(tree).as_posix() for c in groups[v]]) for v in sorted(groups)
    ]


def shard_of(video_id: str, num_shards: int) -> int:
    """The shard of a video: a stable hash of its id (the same on every machine, whatever else is in the tree)."""
    return zlib.crc32(video_id.encode()) % num_shards


# ---------------------------------------------------------------------------------------------- one video


def allocate(lengths: list[int], k: int) -> list[int]:
    """Split ``k`` frames over clips in proportion to their ``lengths`` (largest remainder), at most each length."""
    total = sum(lengths)
    if total <= k:
        return list(lengths)
    share = [k * n / total for n in lengths]
    counts = [int(s) for s in share]
    for i in sorted(range(len(lengths)), key=lambda i: share[i] - counts[i], reverse=True)[: k - sum(counts)]:
        counts[i] += 1
    return [min(c, n) for c, n in zip(counts, lengths)]


@dataclass
class _Kept:
    """A kept frame of one clip, before cropping."""

    frame: np.ndarray  # (H, W, 3) uint8, the source frame
    index: int  # frame number in the clip
    landmarks: np.ndarray | None  # (68, 2) source pixels, None: no face


def _read_clip(path: Path, count: int, detector, settings: DatasetSettings, policy: CropPolicy):
    """Decode one clip, keep ``count`` frames spread over it with their landmarks and crop boxes.

    Returns (kept frames, their boxes (n, 4), fps, the clip's frame count as decoded or estimated).
    """
    face_index = settings.tracking.get("face_index", 0)
    kept: list[_Kept] = []
    with VideoReader(path) as video:
        fps = video.fps
        targets = spread(video.num_frames or _count_frames(path), count)
        if not targets:
            return [], np.zeros((0, 4), np.float32), fps, 0
        wanted = set(targets)
        if settings.track_every_frame:
            tracker = LandmarkTracker(
                detector, face_index=face_index, fps=fps,
                redetect_every=settings.tracking.get("redetect_every", 10),
                smoothing=Smoothing(**settings.tracking.get("smoothing", {})),
            )  # fmt: skip
            track = [tracker.update(frame) for frame in _keep(video, wanted, kept)]
            valid = np.array([p is not None for p in track], bool)
            lms = np.full((len(track), 68, 2), np.nan, np.float32)
            if valid.any():
                lms[valid] = np.stack([p for p in track if p is not None])
            boxes = policy.boxes(lms, valid, fps)
            for k in kept:
                k.landmarks = lms[k.index] if valid[k.index] else None
            return kept, boxes[[k.index for k in kept]], fps, len(track)
        for _ in _keep(video, wanted, kept, stop_after=targets[-1]):
            pass  # decoding stops after the last kept frame
        previous = None
        for k in kept:
            faces = [detector.to_68(f) for f in detector.detect(k.frame, min_faces=face_index + 1)]
            if previous is None:
                k.landmarks = faces[face_index] if len(faces) > face_index else None
            else:
                k.landmarks = same_face(faces, previous)
            previous = k.landmarks if k.landmarks is not None else previous
        valid = np.array([k.landmarks is not None for k in kept], bool)
        raw = np.full((len(kept), 4), np.nan, np.float32)
        if valid.any():
            raw[valid] = policy.box(np.stack([k.landmarks for k in kept if k.landmarks is not None]))
        spacing = (targets[-1] - targets[0]) / (len(targets) - 1) if len(targets) > 1 else 1.0
        boxes = policy.smooth_boxes(raw, valid, fps / max(spacing, 1.0))  # smoothed at the kept frames' rate
        return kept, boxes, fps, video.num_frames or video.frames_read


def same_face(faces: list[np.ndarray], previous: np.ndarray) -> np.ndarray | None:
    """The face among ``faces`` (each (68, 2)) that is the person of ``previous``, a kept frame earlier in the
    clip: the nearest one within a face width of it and of a similar size; None if there is none (another
    person, e.g. on a stage, is not taken instead)."""
    size = landmark_extent(previous)
    centre = previous.mean(axis=0)
    best, best_distance = None, size  # at most one face width away
    for face in faces:
        distance = float(np.linalg.norm(face.mean(axis=0) - centre))
        if distance < best_distance and 0.6 < landmark_extent(face) / size < 1.67:
            best, best_distance = face, distance
    return best


def _keep(video: VideoReader, wanted: set[int], kept: list[_Kept], stop_after: int | None = None):
    """Yield every frame of ``video``; copy the ``wanted`` ones into ``kept``; stop after ``stop_after``."""
    for t, frame in enumerate(video):
        if t in wanted:
            kept.append(_Kept(frame, t, None))
        yield frame
        if stop_after is not None and t >= stop_after:
            return


def _count_frames(path: Path) -> int:
    """Frame count of a clip whose container gives no duration: decode it once."""
    with VideoReader(path) as video:
        return sum(1 for _ in video)


def process_video(spec: VideoSpec, root: Path, settings: DatasetSettings, detector: LandmarkDetector) -> VideoEntry:
    """Build one video's record in ``root``; ``InputError``/``NoFaceError`` if the video is unusable."""
    policy = CropPolicy.from_dict(settings.crop_policy)
    counts = [settings.frames_per_video]
    if len(spec.clips) > 1:  # spread the frames over the clips in proportion to their lengths
        counts = allocate([probe_video(c).num_frames or 1 for c in spec.clips], settings.frames_per_video)
    jpegs, points, boxes, clips, frames, fps_list, source_frames = [], [], [], [], [], [], 0
    for c, (path, count) in enumerate(zip(spec.clips, counts)):
        if count == 0:
            fps_list.append(0.0)
            continue
        kept, kept_boxes, fps, n = _read_clip(path, count, detector, settings, policy)
        fps_list.append(fps)
        source_frames += n
        for k, box in zip(kept, kept_boxes):
            if k.landmarks is None:
                continue
            pair = face_pair(k.frame, k.landmarks, settings.size, policy, box)
            jpegs.append(encode_jpeg(pair.crop, settings.jpeg_quality))
            points.append(pair.points)
            boxes.append(pair.box)
            clips.append(c)
            frames.append(k.index)
    if len(jpegs) < settings.min_frames:
        raise NoFaceError(
            f"{spec.video_id}: a face (of the same person) in only {len(jpegs)} of its {sum(counts)} kept frames "
            f"(fewer than --min-frames {settings.min_frames})"
        )
    entry = VideoEntry(spec.video_id, spec.person_id, len(jpegs), spec.sources, int(source_frames))
    write_record(
        record_path(root, spec.video_id), video_id=spec.video_id, person_id=spec.person_id, sources=spec.sources,
        fps=fps_list, size=settings.size, jpegs=jpegs, points=np.stack(points), boxes=np.stack(boxes),
        clip=np.array(clips), frame=np.array(frames), entry=entry.to_json(),
    )  # fmt: skip
    return entry


def entry_from_record(root: Path, video_id: str) -> VideoEntry | None:
    """The manifest row stored inside a finished record (None if the record is not readable)."""
    try:
        meta = open_record(root, video_id).meta
        return VideoEntry(**json.loads(meta["entry"]))
    except (FsthError, KeyError, TypeError, json.JSONDecodeError):
        return None


# ---------------------------------------------------------------------------------------------- a whole tree


@dataclass
class BuildSummary:
    total: int  # videos of the tree in this shard
    stored: int  # videos stored by this run
    before: int  # videos stored by earlier runs (skipped)
    failed: dict[str, str]  # video id -> reason, this run
    failed_before: int  # videos that failed in an earlier run (skipped; retry_failed tries them again)
    frames: int  # frames stored by this run
    jpeg_bytes: int  # their JPEG bytes
    seconds: float


_worker_detector: LandmarkDetector | None = None


def _init_worker(backend: str, fan_weights: str | None) -> None:
    """In each worker process: ignore Ctrl-C (the main process stops the pool) and load the detector once."""
    global _worker_detector
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    console.set_verbosity(0)
    import cv2

    cv2.setNumThreads(1)
    _worker_detector = make_detector(backend, fan_weights)


def _run_one(spec: VideoSpec, root: Path, settings: DatasetSettings, detector=None) -> tuple[str, object]:
    """Process one video, turning every failure into ("failed", reason): one bad video never stops a run (a full
    disk does: the machine's fault, not the video's)."""
    try:
        return "ok", process_video(spec, root, settings, detector or _worker_detector)
    except FsthError as exc:
        return "failed", str(exc)
    except OSError as exc:
        if os_error_line(exc) is not None:  # a full disk is the machine's fault: stop the build, the video stays to do
            raise
        console.debug(traceback.format_exc())
        return "failed", f"{spec.video_id}: unexpected {type(exc).__name__}: {exc}"
    except Exception as exc:  # a bug or a library error on a strange file: report it, keep going
        console.debug(traceback.format_exc())
        return "failed", f"{spec.video_id}: unexpected {type(exc).__name__}: {exc}"


def default_workers(detector: LandmarkDetector) -> int:
    """Worker processes, each with its own detector, for a build with ``detector``: one per CPU core for dlib,
    one for FAN."""
    return 1 if detector.name == "fan" else os.cpu_count() or 1


def build_dataset(
    tree: str | os.PathLike,
    root: str | os.PathLike,
    settings: DatasetSettings,
    detector: LandmarkDetector,
    *,
    workers: int | None = 1,
    shard: tuple[int, int] = (0, 1),
    retry_failed: bool = False,
    force: bool = False,
    fan_weights: str | None = None,
) -> BuildSummary:
    """Build (or continue building) the dataset in ``root`` from the videos of ``tree``; see the module docstring.

    ``detector`` runs the work when ``workers`` is 1; with more, each worker process makes its own detector of
    the same backend; None: ``default_workers(detector)``. The manifest and report of this shard are rewritten
    atomically as videos finish (every 30 s) and at the end, also on Ctrl-C. Ctrl-C or SIGTERM (any number of
    them) ends the worker processes at once and keeps the videos finished so far; a re-run continues from them.
    """
    start = time.monotonic()
    root = Path(root)
    workers = default_workers(detector) if workers is None else workers
    specs = [s for s in find_videos(tree) if shard_of(s.video_id, shard[1]) == shard[0]]
    root.mkdir(parents=True, exist_ok=True)
    write_info(root, settings)
    manifest_file, report_file = manifest_path(root, shard), report_path(root, shard)
    done: dict[str, VideoEntry] = {}
    failed_before: dict[str, dict] = {}
    if not force:
        old = {e.video_id: e for e in read_entries(manifest_file)} if manifest_file.exists() else {}
        for spec in specs:
            if record_path(root, spec.video_id).exists():
                entry = old.get(spec.video_id) or entry_from_record(root, spec.video_id)
                if entry is not None:
                    done[spec.video_id] = entry
        if report_file.exists() and not retry_failed:
            failed_before = {r["video_id"]: r for r in read_jsonl(report_file) if r["video_id"] not in done}
    todo = [s for s in specs if s.video_id not in done and s.video_id not in failed_before]
    summary = BuildSummary(len(specs), 0, len(done), {}, len(failed_before), 0, 0, 0.0)
    failures = dict(failed_before)

    def save_lists() -> None:
        write_jsonl(manifest_file, [done[k].to_json() for k in sorted(done)])
        if failures or report_file.exists():
            write_jsonl(report_file, [failures[k] for k in sorted(failures)])

    def finished(spec: VideoSpec, status: str, value) -> None:
        if status == "ok":
            done[spec.video_id] = value
            summary.stored += 1
            summary.frames += value.num_frames
            summary.jpeg_bytes += int(open_record(root, spec.video_id).offsets[-1])
            failures.pop(spec.video_id, None)
        else:
            summary.failed[spec.video_id] = value
            failures[spec.video_id] = {"video_id": spec.video_id, "sources": spec.sources, "reason": value}
            console.warn(f"skipped {value}")

    with console.progress() as bar, signals_as_interrupts():
        task = bar.add_task(f"dataset {root.name}", total=len(todo), visible=bool(todo))
        last_save = time.monotonic()
        try:
            for spec, status, value in _results(todo, root, settings, detector, workers, fan_weights):
                finished(spec, status, value)
                bar.advance(task)
                if time.monotonic() - last_save > 30:
                    save_lists()
                    last_save = time.monotonic()
        finally:
            with _signals_held():
                save_lists()
    summary.seconds = time.monotonic() - start
    return summary


def _results(todo: list[VideoSpec], root: Path, settings, detector, workers: int, fan_weights):
    """(spec, status, entry or reason) for every video of ``todo``, in this process or in ``workers`` processes."""
    if workers <= 1 or len(todo) <= 1:
        for spec in todo:
            yield (spec, *_run_one(spec, root, settings, detector))
        return
    import multiprocessing

    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_worker, initargs=(detector.name, fan_weights),
    )  # fmt: skip
    pending: dict[Future, VideoSpec] = {}
    queue = iter(todo)
    try:
        while True:
            while len(pending) < 2 * workers:  # a bounded window: 145k futures are not created up front
                spec = next(queue, None)
                if spec is None:
                    break
                pending[pool.submit(_run_one, spec, root, settings)] = spec
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                yield (pending.pop(future), *future.result())
    except BaseException:  # Ctrl-C, SIGTERM, an error, or the consumer stopped (GeneratorExit)
        _stop_workers(pool, root)
        raise
    pool.shutdown(wait=True)


@contextlib.contextmanager
def _signals_held():
    """Ctrl-C and SIGTERM ignored for a moment: while the workers are ended and the lists written (seconds at
    most), so that a second Ctrl-C cannot cut that short."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _stop_workers(pool: ProcessPoolExecutor, root: Path) -> None:
    """End the worker processes now and remove what the videos they were on had half-written. Further Ctrl-Cs and
    SIGTERMs are ignored meanwhile (a second Ctrl-C during ``shutdown(wait=True)`` used to leave the workers
    waiting for work and this process joining them at exit, forever); this takes at most a few seconds."""
    with _signals_held():
        # ProcessPoolExecutor has no public way to end its workers before Python 3.14 (terminate_workers)
        processes = list((getattr(pool, "_processes", None) or {}).values())
        manager = getattr(pool, "_executor_manager_thread", None)  # shutdown() forgets it
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        deadline = time.monotonic() + 5
        for process in processes:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join(timeout=1)
        # and the pool's manager thread, which closes its wake-up pipe as it ends. The interpreter's exit wakes every
        # pool's manager through that pipe (concurrent.futures.process._python_exit): racing the closing, it wrote
        # to a closed pipe ("Exception ignored in threading ... Bad file descriptor" on stderr, in about 1 of 20
        # runs of a Ctrl-C followed by a SIGTERM). Ended, the manager needs no waking: it is left out of that.
        if manager is not None:
            manager.join(timeout=5)
            if not manager.is_alive():
                import concurrent.futures.process as futures_process

                getattr(futures_process, "_threads_wakeups", {}).pop(manager, None)
        for partial in (root / "videos").rglob(".*.partial") if (root / "videos").is_dir() else ():
            partial.unlink(missing_ok=True)


def log_summary(summary: BuildSummary, root: Path, shard: tuple[int, int]) -> None:
    """What a build did, on stderr: stored, skipped before, failed with reasons, speed."""
    where = f"shard {shard[0]}/{shard[1]} of " if shard[1] > 1 else ""
    line = f"dataset {root}: "
    if summary.stored:
        per_frame = summary.jpeg_bytes / summary.frames / 1024
        rate = 60 * summary.stored / summary.seconds
        line += (
            f"{summary.stored} videos stored ({summary.frames} frames, {per_frame:.1f} KB per frame, "
            f"{rate:.1f} videos/min), "
        )
    else:
        line += "nothing new stored, "
    stored = summary.stored + summary.before
    line += f"{summary.before} done before; {stored} of the {summary.total} videos of {where}the tree are in it"
    console.log(line)
    if summary.failed_before:
        console.log(
            f"  {summary.failed_before} videos that failed before were not tried again (--retry-failed tries them)"
        )
    if summary.failed:
        console.warn(f"{len(summary.failed)} videos skipped as bad; reasons in {report_path(root, shard)}:")
        for reason in list(summary.failed.values())[:10]:
            console.err.print(f"  {reason}", soft_wrap=True, highlight=False, markup=False)
        if len(summary.failed) > 10:
            console.err.print(f"  ... and {len(summary.failed) - 10} more", highlight=False, markup=False)


def run_build(tree: Path, root: Path, build: BuildOptions, marks: LandmarkOptions, force=False) -> BuildSummary:
    """``fsth dataset TREE -o ROOT``: check the output before any tracking, build (or continue), report on stderr.
    ``InputError`` when no video of ``tree`` could be stored (nothing now and nothing before)."""
    from fsth.files import check_writable, refuse_inputs

    refuse_inputs(root, (tree, marks.fan_weights), "--dataset")
    check_writable(root, "--dataset", directory=True)
    check_writable(root / "videos", "--dataset", directory=True)  # D/videos a file: before any tracking
    detector = marks.detector(dataset=True)
    tracking = {"face_index": marks.face_index}
    if build.track_every_frame:
        tracking.update(redetect_every=marks.redetect_every, smoothing=marks.tracking()["smoothing"].to_dict())
    settings = DatasetSettings(
        size=build.size, frames_per_video=build.frames_per_video, min_frames=build.min_frames,
        jpeg_quality=build.jpeg_quality, landmark_backend=detector.name, track_every_frame=build.track_every_frame,
        crop_policy=marks.crop_policy.to_dict(), tracking=tracking,
    )  # fmt: skip
    summary = build_dataset(
        tree, root, settings, detector, workers=build.workers, shard=build.shard, retry_failed=build.retry_failed,
        force=force, fan_weights=str(marks.fan_weights) if marks.fan_weights else None,
    )  # fmt: skip
    log_summary(summary, root, build.shard)
    if summary.stored + summary.before == 0:
        raise InputError(f"{root}: no video of {tree} could be stored")
    return summary
