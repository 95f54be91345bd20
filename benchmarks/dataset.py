"""Dataset building speed: videos per minute per core, KB per stored frame, and what tracking every frame costs.

    python benchmarks/dataset.py                       # the shared media videos, dlib, 32 frames at 256
    python benchmarks/dataset.py --limit 8 --workers 2 # fewer videos; also the wall-clock speed of 2 workers

Builds the same videos twice in one process with one worker: with the default face search on the kept frames
only, and with --track-every-frame (the tracker over every frame, the crops fsth animate makes). Prints for
each: videos/min of wall time, videos per CPU-minute (this process plus its ffmpeg decoders: the per-core
figure), KB per stored frame; their ratio; and how far apart the two modes' crops of the same frames are
(box centre and side, in % of the side) and their landmarks (px at the stored size).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from fsth import console
from fsth.dataset import Dataset, DatasetSettings, build_dataset, find_videos
from fsth.landmarks import CropPolicy, make_detector

SHARED = Path(__file__).resolve().parents[2] / "shared" / "media" / "videos"


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the ffmpeg decoders)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def timed_build(tree: Path, out: Path, settings: DatasetSettings, detector, workers: int = 1):
    wall, cpu = time.perf_counter(), cpu_seconds()
    summary = build_dataset(tree, out, settings, detector, workers=workers)
    return summary, time.perf_counter() - wall, cpu_seconds() - cpu


def crop_difference(a: Dataset, b: Dataset) -> tuple[list[float], list[float], list[float]]:
    """Per common frame: box centre distance and side difference (% of side), mean landmark distance (px)."""
    centre, side, points = [], [], []
    for entry in a.videos:
        if entry.video_id not in {v.video_id for v in b.videos}:
            continue
        ra = a.record(a.videos.index(entry))
        rb = b.record([v.video_id for v in b.videos].index(entry.video_id))
        key_a = list(zip(ra.tensor("clip").tolist(), ra.tensor("frame").tolist()))
        key_b = {k: i for i, k in enumerate(zip(rb.tensor("clip").tolist(), rb.tensor("frame").tolist()))}
        boxes_a, boxes_b = ra.tensor("boxes"), rb.tensor("boxes")
        for i, k in enumerate(key_a):
            if k not in key_b:
                continue
            j = key_b[k]
            ba, bb = boxes_a[i], boxes_b[j]
            s = bb[2] - bb[0]
            centre.append(100 * float(np.linalg.norm((ba[:2] + ba[2:]) / 2 - (bb[:2] + bb[2:]) / 2)) / s)
            side.append(100 * abs(float((ba[2] - ba[0]) - s)) / s)
            # landmarks of both in source pixels, compared in the stored crop's scale
            pa = CropPolicy.from_crop(ra.points[i], ba, a.settings.size)
            pb = CropPolicy.from_crop(rb.points[j], bb, b.settings.size)
            points.append(float(np.linalg.norm(pa - pb, axis=1).mean()) * a.settings.size / s)
    return centre, side, points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--videos", type=Path, default=SHARED, help=f"a folder (tree) of videos (default: {SHARED})")
    parser.add_argument("--limit", type=int, default=0, help="use only the first N videos (default: all)")
    parser.add_argument("--frames-per-video", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=1, help="also time a build with this many workers (wall)")
    args = parser.parse_args()
    console.set_verbosity(0)
    work = Path(tempfile.mkdtemp(prefix="fsth-bench-dataset-"))
    tree = work / "tree"
    tree.mkdir()
    videos = find_videos(args.videos)
    if args.limit:
        videos = videos[: args.limit]
    for spec in videos:  # a flat tree of links: each video is its own person
        for clip, source in zip(spec.clips, spec.sources):
            (tree / source).parent.mkdir(parents=True, exist_ok=True)
            os.symlink(clip.resolve(), tree / source)
    detector = make_detector("dlib")
    common = dict(
        size=args.size,
        frames_per_video=args.frames_per_video,
        min_frames=1,
        landmark_backend="dlib",
        crop_policy=CropPolicy().to_dict(),
    )
    kept = DatasetSettings(**common, tracking={"face_index": 0})
    tracked = DatasetSettings(
        **common,
        track_every_frame=True,
        tracking={
            "face_index": 0,
            "redetect_every": 10,
            "smoothing": {"strength": 1.0, "min_cutoff": 0.5, "beta": 10.0, "d_cutoff": 5.0},
        },
    )
    n = len(videos)
    print(
        f"{n} videos from {args.videos}, {args.frames_per_video} frames per video at {args.size}x{args.size}, "
        f"dlib, 1 worker"
    )
    results = {}
    for name, settings in (("kept frames (default)", kept), ("track every frame", tracked)):
        summary, wall, cpu = timed_build(tree, work / name.split()[0], settings, detector)
        results[name] = (summary, wall, cpu)
        kb = summary.jpeg_bytes / max(summary.frames, 1) / 1024
        print(
            f"  {name:22s} {60 * summary.stored / wall:6.1f} videos/min wall, {60 * summary.stored / cpu:6.1f} "
            f"videos per CPU-minute, {kb:5.1f} KB/frame, {summary.stored} stored, {len(summary.failed)} skipped"
        )
        for reason in summary.failed.values():
            print(f"      skipped: {reason}")
    (_, wall_k, cpu_k), (_, wall_t, cpu_t) = results.values()
    print(f"tracking every frame costs {cpu_t / cpu_k:.1f}x the CPU time ({wall_t / wall_k:.1f}x the wall time)")
    centre, side, points = crop_difference(Dataset(work / "kept"), Dataset(work / "track"))
    if centre:

        def q(v, p):
            return float(np.percentile(v, p))

        print(
            f"same frames, kept-frame vs tracked crops ({len(centre)} frames): "
            f"box centre {statistics.median(centre):.1f}% "
            f"of the side (90th pct {q(centre, 90):.1f}%), side {statistics.median(side):.1f}% (90th pct "
            f"{q(side, 90):.1f}%), landmarks {statistics.median(points):.2f} px at {args.size} (90th pct "
            f"{q(points, 90):.2f} px)"
        )
    if args.workers > 1:
        summary, wall, _ = timed_build(tree, work / "parallel", kept, detector, workers=args.workers)
        print(
            f"  {args.workers} workers, kept frames: {60 * summary.stored / wall:6.1f} videos/min wall "
            f"({wall_k / wall:.2f}x one worker)"
        )
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
