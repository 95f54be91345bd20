"""Speed of the landmark stage: `fsth landmarks` frames/s end to end, and sketch images/s.

    python benchmarks/landmarks.py [--video PATH] [--repeats 3]

1. End to end, as `fsth landmarks VIDEO -o out.npz` does it (decode + face search/tracking + 68 points +
   smoothing + crop boxes + writing the .npz), dlib backend, in this process; then, as the baseline, the same
   decode with dlib's textbook loop (HOG face search upsampled once + 68 points on every frame), and fsth's
   own face search on every frame without tracking; and the whole command as a user runs it (a fresh
   process, imports and model loading included).
   Target: >= 60 frames/s on a 25-30 fps ~500x500 talking-head video on a 2-core CPU.
2. The sketch renderer at 256x256 on the video's real landmarks. Target: >= 1000 images/s. Baseline: the
   same lines drawn with Pillow's ImageDraw, one segment at a time, if Pillow is installed.

The default video is ../shared/media/videos/liveportrait_d10.mp4 (512x512, 30 fps, 448 frames, talking);
without ../shared it falls back to tests/assets/talk.mp4. Timings are the best of --repeats runs; the load
average is printed because another busy process on a 2-core machine halves every figure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fsth.landmarks import CropPolicy, Smoothing, draw_sketch, make_detector  # noqa: E402
from fsth.landmarks.extract import Job, run_job  # noqa: E402
from fsth.landmarks.parts import PARTS  # noqa: E402
from fsth.landmarks.sketch import SKETCH_COLORS, sketch_thickness  # noqa: E402
from fsth.video import VideoReader  # noqa: E402

SHARED_VIDEO = ROOT.parent / "shared" / "media" / "videos" / "liveportrait_d10.mp4"


def best_of(repeats: int, fn):
    """(best seconds, last result) of ``repeats`` calls."""
    best, result = float("inf"), None
    for _ in range(repeats):
        t = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - t)
    return best, result


def end_to_end(video: Path, detector, out_dir: Path):
    """What `fsth landmarks VIDEO -o out.npz` does, minus process start-up: returns the track."""
    job = Job(video, out_dir / "bench.npz", None)
    return run_job(job, detector, "npz", sys.stdout, smoothing=Smoothing(), crop_policy=CropPolicy())


def detect_every_frame(video: Path, detector) -> int:
    """Baseline: the textbook dlib loop: HOG face search (upsampled once) + 68 points on every decoded frame."""
    import dlib

    from fsth.landmarks.detectors import _dlib_models

    hog, predictor = _dlib_models()
    n = 0
    with VideoReader(video) as frames:
        for frame in frames:
            for rect in hog(frame, 1):
                predictor(frame, rect)
            n += 1
    assert isinstance(hog, dlib.fhog_object_detector)
    return n


def search_every_frame(video: Path, detector) -> int:
    """Second baseline: fsth's own coarse-to-fine face search + 68 points on every frame (no tracking)."""
    n = 0
    with VideoReader(video) as frames:
        for frame in frames:
            detector.detect(frame)
            n += 1
    return n


def sketch_rate(points: np.ndarray, n: int) -> float:
    buf = np.empty((256, 256, 3), np.uint8)
    t = time.perf_counter()
    for i in range(n):
        draw_sketch(points[i % len(points)], 256, out=buf)
    return n / (time.perf_counter() - t)


def pillow_sketch_rate(points: np.ndarray, n: int) -> float | None:
    try:
        from PIL import Image, ImageDraw
    except ImportError:
        return None
    width = sketch_thickness(256)
    t = time.perf_counter()
    for i in range(n):
        img = Image.new("RGB", (256, 256))
        draw = ImageDraw.Draw(img)
        p = points[i % len(points)]
        for part in PARTS:
            idx = list(range(part.start, part.stop)) + ([part.start] if part.closed else [])
            for a, b in zip(idx[:-1], idx[1:]):
                draw.line([tuple(p[a]), tuple(p[b])], fill=SKETCH_COLORS[part.name], width=width)
        np.asarray(img)
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--video", type=Path, default=SHARED_VIDEO if SHARED_VIDEO.exists() else ROOT / "tests/assets/talk.mp4"
    )
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    from fsth import console

    console.set_verbosity(0)  # no progress bars inside the timings

    with VideoReader(args.video) as v:
        info = f"{v.width}x{v.height}, {v.fps:g} fps, ~{v.num_frames} frames, codec {v.codec}"
    print(f"video: {args.video} ({info})")
    print(f"cpu: {os.cpu_count()} cores, load average before: {os.getloadavg()[0]:.2f}")
    detector = make_detector("dlib")

    with tempfile.TemporaryDirectory() as tmp:
        t_e2e, track = best_of(args.repeats, lambda: end_to_end(args.video, detector, Path(tmp)))
        n = len(track)
        t_base, _ = best_of(1, lambda: detect_every_frame(args.video, detector))
        t_search, _ = best_of(1, lambda: search_every_frame(args.video, detector))
        cmd = [sys.executable, "-m", "fsth", "-q", "landmarks", str(args.video), "-o", str(Path(tmp) / "cli.npz"), "-f"]
        t_cli, _ = best_of(args.repeats, lambda: subprocess.run(cmd, check=True))
    fps, base_fps = n / t_e2e, n / t_base
    print("\nfsth landmarks, dlib, end to end (decode + search/track + 68 points + smoothing + boxes + .npz):")
    print(f"  {fps:8.1f} frames/s  ({n} frames in {t_e2e:.2f} s; {track.num_valid} with a face)   target >= 60")
    print(
        "  baseline, dlib's textbook loop (HOG search upsampled once + 68 points, every frame): "
        f"{base_fps:6.1f} frames/s"
    )
    print(f"  speed-up over the baseline: {fps / base_fps:.1f}x")
    print(f"  (fsth's downscaled face search + 68 points on every frame, no tracking: {n / t_search:.1f} frames/s)")
    print(
        f"  the command in a fresh process (imports, model loading included): {t_cli:.2f} s = {n / t_cli:.1f} frames/s"
    )

    points = CropPolicy.to_crop(track.landmarks[track.valid], track.boxes[track.valid], 256)
    rate = sketch_rate(points, 5000)
    print(f"\nsketch renderer, 256x256: {rate:8.0f} images/s   target >= 1000")
    base = pillow_sketch_rate(points, 500)
    if base is not None:
        print(f"  baseline, Pillow ImageDraw one segment at a time: {base:8.0f} images/s  ({rate / base:.1f}x)")
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
