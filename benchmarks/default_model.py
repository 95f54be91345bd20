"""The shipped default model against its baselines, on media it never saw: quality, identity, motion, speed.

    python benchmarks/default_model.py                       # everything; ../shared/media beside the repository
    python benchmarks/default_model.py --only self,cross     # skip the speed part
    python benchmarks/default_model.py --checkpoint runs/warp256/meta.safetensors --out out/bench_step2000

Needs the shared media (``--media``, default ``../shared/media``): the four held-out videos of
``examples/warp256/make_tree.py``'s ``HELD_OUT`` and three portraits of ``images2/``, none of them trained on.

1. **Self-reenactment at 256** (``self``): per held-out video, the source is its first frame with a face and every 5th
   later frame with a face is a target, each in its own smoothed crop box (as ``fsth evaluate`` crops), rendered
   from its own landmarks (those the model was trained on: ``detector_for(..., as_trained=True)``) by: ``model``
   (the checkpoint's E and G, K = 1), ``copy`` (the source unchanged) and ``warp`` (the source warped to the
   target's landmarks, no network). Scored inside the face box (the box of the target's 68 points): L1 (mean
   absolute difference / 255) and SSIM; and L1 over the mouth region (the box of points 48-67 grown by half its size
   each way). Targets: model L1 <= 0.85 x copy's; model mouth L1 <= 0.85 x warp's.
2. **Cross-reenactment** (``cross``): 3 portraits x 3 held-out drivers through ``fsth.animate.animate`` (read and
   retargeted as the command does). Per result frame: a face found by dlib; dlib's face distance to the portrait
   (same person below 0.6); the mouth opening (``mouth_opening``) of dlib's landmarks on the result against the
   driver's (Pearson r over the frames where both exist). Targets: face >= 95%, distance < 0.6 in >= 95%,
   r >= 0.6. Writes a contact sheet per pair and one 3 x 3 sheet (driver | result columns) to ``--out``.
3. **Speed** (``speed``): ``fsth animate`` end to end (decode, landmarks, retarget, warp, G, encode, audio) with the
   checkpoint and with ``--model warp`` on one driver (talk.mp4 looped to ``--driver-seconds``, default 2 minutes,
   so that the command's start-up does not dominate), against paper256's generator alone in fp32 (batch 2,
   eager, random weights: speed does not depend on them) in the same process, interleaved. Targets: animate >= 8x
   faster per frame than that generator; the warp alone >= 30x. And the resident memory of a long animate run
   (``--memory-minutes`` of driver, looped without re-encoding), sampled every second: flat means the last third's
   peak within 5% of the first third's.

Prints the figures and writes them to ``OUT/results.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples" / "warp256"))

from make_tree import HELD_OUT  # noqa: E402

from fsth import console  # noqa: E402
from fsth.animate import AnimateOptions, animate  # noqa: E402
from fsth.checkpoint import find_meta_checkpoint, load_checkpoint  # noqa: E402
from fsth.evaluate import CopyRenderer  # noqa: E402
from fsth.fewshot import (  # noqa: E402  # noqa: E402
    Renderer,  # noqa: E402
    crop_policy_of,
    crop_track_frames,
    detector_for,
    load_person,
    shots_from_pairs,
)
from fsth.fewshot.embed import embed  # noqa: E402  (a function of the submodule of that name)
from fsth.landmarks import make_detector, track_video  # noqa: E402
from fsth.landmarks.crop import CropPolicy  # noqa: E402
from fsth.metrics.keypoints import detect_landmarks, mouth_opening  # noqa: E402
from fsth.metrics.pixel import ssim  # noqa: E402
from fsth.metrics.recognition import SAME_PERSON_DISTANCE, DlibFaceEmbedder, face_distance  # noqa: E402
from fsth.video import VideoReader, ffmpeg_exe, read_image, write_image  # noqa: E402

PORTRAITS = ("images2/eamm_scarlett.jpg", "images2/hallo_ref_3_audrey_hepburn.jpg", "images2/ghost_beckham.jpg")
DRIVERS = HELD_OUT[:3]
TARGET_EVERY = 5
MOUTH_GROW = 0.5  # the mouth box grows by half its width / height on each side


def machine() -> str:
    name = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            name = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), name)
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads)"


def box_of(points: np.ndarray, size: int, grow: float = 0.0) -> tuple[int, int, int, int]:
    (x0, y0), (x1, y1) = points.min(0), points.max(0)
    w, h = x1 - x0, y1 - y0
    x0, x1, y0, y1 = x0 - grow * w, x1 + grow * w, y0 - grow * h, y1 + grow * h
    return (
        max(int(np.floor(x0)), 0),
        max(int(np.floor(y0)), 0),
        min(int(np.ceil(x1)) + 1, size),
        min(int(np.ceil(y1)) + 1, size),
    )


def square(frame: np.ndarray, side: int = 256) -> np.ndarray:
    """The centre square of a frame at side x side (for contact sheets)."""
    import cv2

    h, w = frame.shape[:2]
    m = min(h, w)
    y0, x0 = (h - m) // 2, (w - m) // 2
    return cv2.resize(frame[y0 : y0 + m, x0 : x0 + m], (side, side), interpolation=cv2.INTER_AREA)


def region_l1(a: np.ndarray, b: np.ndarray, box) -> float:
    x0, y0, x1, y1 = box
    return float(np.abs(a[y0:y1, x0:x1].astype(np.float32) - b[y0:y1, x0:x1].astype(np.float32)).mean() / 255.0)


# ---------------------------------------------------------------------------------------------- self-reenactment


def self_targets(meta, media: Path, detector):
    """Per held-out video: (path, source frame index, target frame indices, the source ``Shots``, the targets'
    ``Shots``, their renderers ``model`` / ``copy`` / ``warp``), the self-reenactment protocol's pairs."""
    size = meta.config.image_size
    policy = crop_policy_of(meta)
    E, G = meta.embedder().eval(), meta.generator().eval()
    for rel in HELD_OUT:
        path = media / rel
        track = track_video(path, detector, crop_policy=policy, label=f"track {path.name}")
        frames = np.flatnonzero(track.valid)
        source, targets = int(frames[0]), [int(f) for f in frames[1:] if (f - frames[0]) % TARGET_EVERY == 0]
        pairs = crop_track_frames(path, track, {source, *targets}, size)
        shot = shots_from_pairs([pairs[source]], [f"{path}#{source}"])
        real = shots_from_pairs([pairs[t] for t in targets])
        e_hat = embed(E, shot)
        source_pair = (shot.crops, shot.points)
        renderers = {
            "model": Renderer(G, e_hat, source=source_pair, dtype=torch.float32),
            "copy": CopyRenderer(*source_pair),
            "warp": Renderer(None, source=source_pair),
        }
        yield path, source, targets, shot, real, renderers


def render_all(renderer, points: np.ndarray) -> np.ndarray:
    """(N, S, S, 3) uint8 frames of ``renderer`` for landmarks (N, 68, 2), in batches of 8."""
    return np.concatenate([renderer.render(points[i : i + 8]) for i in range(0, len(points), 8)])


def self_reenactment(meta, media: Path, detector, out: Path) -> dict:
    size = meta.config.image_size
    rows = {}
    sheets = []
    for path, source, targets, _shot, real, renderers in self_targets(meta, media, detector):
        row = {"targets": len(targets), "source_frame": source}
        generated = {}
        for name, renderer in renderers.items():
            made = render_all(renderer, real.points)
            generated[name] = made
            face = [box_of(p[:27], size) for p in real.points]
            mouth = [box_of(p[48:68], size, MOUTH_GROW) for p in real.points]
            row[name] = {
                "l1_face": float(np.mean([region_l1(g, r, b) for g, r, b in zip(made, real.crops, face)])),
                "ssim_face": float(
                    np.mean(
                        [
                            ssim(g[b[1] : b[3], b[0] : b[2]], r[b[1] : b[3], b[0] : b[2]], data_range=255)
                            for g, r, b in zip(made, real.crops, face)
                        ]
                    )
                ),
                "l1_mouth": float(np.mean([region_l1(g, r, b) for g, r, b in zip(made, real.crops, mouth)])),
            }
        rows[path.name] = row
        pick = np.linspace(0, len(targets) - 1, 5).astype(int)
        sheets.append(
            np.concatenate(
                [np.concatenate([real.crops[j], generated["warp"][j], generated["model"][j]], 1) for j in pick], 0
            )
        )  # real | warp | model, five targets
        console.log(
            f"self {path.name}: "
            + ", ".join(
                f"{n} L1 {row[n]['l1_face']:.4f} mouth {row[n]['l1_mouth']:.4f} SSIM {row[n]['ssim_face']:.3f}"
                for n in renderers
            )
        )
    write_image(out / "self_real_warp_model.png", np.concatenate(sheets, 1))
    mean = {
        n: {m: float(np.mean([r[n][m] for r in rows.values()])) for m in ("l1_face", "ssim_face", "l1_mouth")}
        for n in ("model", "copy", "warp")
    }
    return {
        "videos": rows,
        "mean": mean,
        "model_over_copy_l1_face": mean["model"]["l1_face"] / mean["copy"]["l1_face"],
        "model_over_warp_l1_mouth": mean["model"]["l1_mouth"] / mean["warp"]["l1_mouth"],
        "protocol": f"source = first frame with a face, targets = every {TARGET_EVERY}th later frame with a face, "
        "each in its own smoothed crop box; L1 / SSIM inside the box of the target's points 0-26, "
        f"mouth L1 inside the box of points 48-67 grown by {MOUTH_GROW} of its size each way",
    }


# ---------------------------------------------------------------------------------------------- cross-reenactment


def cross_reenactment(checkpoint: Path, media: Path, detector, out: Path) -> dict:
    recognizer = DlibFaceEmbedder()
    results = {}
    grid_rows = []
    for portrait_rel in PORTRAITS:
        portrait = media / portrait_rel
        photo = read_image(portrait)
        photo_points = detect_landmarks(detector, photo)
        photo_descriptor = recognizer.descriptors([photo], [photo_points])[0]
        person = load_person([portrait], checkpoint)  # as fsth animate reads it (detector_for); dlib judges
        row_cells = []
        for driver_rel in DRIVERS:
            driver = media / driver_rel
            video = out / f"cross_{portrait.stem}_{driver.stem}.mp4"
            animate(person, driver, video, AnimateOptions(audio=False))
            with VideoReader(video) as reader:
                result = list(reader)
            track = track_video(driver, detector, label=f"driver {driver.name}")
            found, dist, mouth_result, mouth_driver = 0, [], [], []
            for i, frame in enumerate(result):
                points = detect_landmarks(detector, frame)
                if points is None:
                    continue
                found += 1
                dist.append(float(face_distance(recognizer.descriptors([frame], [points])[0], photo_descriptor)))
                if i < len(track) and track.valid[i]:
                    mouth_result.append(float(mouth_opening(points)))
                    mouth_driver.append(float(mouth_opening(track.landmarks[i])))
            r = float(np.corrcoef(mouth_result, mouth_driver)[0, 1]) if len(mouth_result) > 2 else float("nan")
            n = len(result)
            cell = {
                "frames": n,
                "face_rate": found / n,
                "same_person_rate": float(np.mean(np.array(dist) < SAME_PERSON_DISTANCE)) * found / n,
                "face_distance_mean": float(np.mean(dist)) if dist else None,
                "face_distance_max": float(np.max(dist)) if dist else None,
                "mouth_r": r,
            }
            results[f"{portrait.name} x {driver.name}"] = cell
            console.log(
                f"cross {portrait.name} x {driver.name}: face {cell['face_rate']:.0%}, same person "
                f"{cell['same_person_rate']:.0%} (distance {cell['face_distance_mean']:.3f} mean, "
                f"{cell['face_distance_max']:.3f} max), mouth r {r:.2f}"
            )
            # contact sheet: driver | result at six moments
            with VideoReader(driver) as reader:
                drive = [square(f) for f in reader]
            picks = np.linspace(0, min(len(drive), n) - 1, 6).astype(int)
            write_image(
                out / f"cross_{portrait.stem}_{driver.stem}.png",
                np.concatenate([np.concatenate([drive[j], result[j]], 1) for j in picks], 0),
            )
            row_cells.append(np.concatenate([drive[picks[2]], result[picks[2]], drive[picks[4]], result[picks[4]]], 1))
        grid_rows.append(np.concatenate(row_cells, 1))
    write_image(out / "cross_3x3.png", np.concatenate(grid_rows, 0))
    cells = list(results.values())
    return {
        "pairs": results,
        "face_rate_min": min(c["face_rate"] for c in cells),
        "same_person_rate_min": min(c["same_person_rate"] for c in cells),
        "mouth_r_min": min(c["mouth_r"] for c in cells),
        "mouth_r_mean": float(np.mean([c["mouth_r"] for c in cells])),
    }


# ---------------------------------------------------------------------------------------------- speed


def paper_generator_seconds_per_frame(sketches: torch.Tensor, repeats: int = 3) -> float:
    """paper256's G in fp32, eager, batch 2 (random weights), seconds per frame: the baseline."""
    from fsth.config import ModelConfig
    from fsth.models import Generator

    torch.manual_seed(0)
    G = Generator(ModelConfig.preset("paper256")).eval()
    e_hat = torch.randn(512)
    with torch.inference_mode():
        G(sketches[:2], e_hat)  # warm up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for i in range(0, len(sketches), 2):
                G(sketches[i : i + 2], e_hat)
            times.append((time.perf_counter() - start) / len(sketches))
    return statistics.median(times)


def run_animate(args: list[str]) -> float:
    """Seconds of one ``fsth animate`` command (a fresh process: everything a user waits for)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "fsth", "-q", "animate", *args], check=True)
    return time.perf_counter() - start


def looped(driver: Path, seconds: float, path: Path) -> Path:
    """``driver`` (talk.mp4, 2 s) repeated to at least ``seconds``, stream-copied (no re-encoding) to ``path``."""
    loops = max(1, int(np.ceil(seconds / 2.0)))
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-stream_loop", str(loops - 1), "-i", str(driver), "-c", "copy"]
    subprocess.run([*cmd, str(path)], check=True)
    return path


def speed(checkpoint: Path, repeats: int, driver_seconds: float, memory_minutes: float, out: Path) -> dict:
    from fsth.landmarks import draw_sketch
    from fsth.models import images_to_tensor

    clip = ROOT / "tests" / "assets" / "talk.mp4"
    portrait = ROOT / "tests" / "assets" / "portrait.jpg"
    driver = looped(clip, driver_seconds, out / "speed_driver.mp4")  # long enough that start-up does not dominate
    with VideoReader(driver) as reader:
        frames = sum(1 for _ in reader)
    track = track_video(clip, make_detector("dlib"))
    sketches = images_to_tensor(
        np.stack([draw_sketch(p, 256) for p in CropPolicy.to_crop(track.landmarks, track.boxes, 256)[:16]])
    )
    base, model, warp_only = [], [], []
    for _ in range(repeats):  # interleaved, so that a shared machine's load hits all alike
        base.append(paper_generator_seconds_per_frame(sketches, 1))
        model.append(
            run_animate(
                [
                    str(portrait),
                    str(driver),
                    "-o",
                    str(out / "speed_model.mp4"),
                    "--force",
                    "--checkpoint",
                    str(checkpoint),
                ]
            )
            / frames
        )
        warp_only.append(
            run_animate([str(portrait), str(driver), "-o", str(out / "speed_warp.mp4"), "--force", "--model", "warp"])
            / frames
        )
    result = {
        "driver_frames": frames,
        "paper256_generator_fp32_s_per_frame": statistics.median(base),
        "animate_model_s_per_frame": statistics.median(model),
        "animate_warp_s_per_frame": statistics.median(warp_only),
    }
    result["model_speedup"] = result["paper256_generator_fp32_s_per_frame"] / result["animate_model_s_per_frame"]
    result["warp_speedup"] = result["paper256_generator_fp32_s_per_frame"] / result["animate_warp_s_per_frame"]
    console.log(
        f"speed: paper256 G fp32 {1 / result['paper256_generator_fp32_s_per_frame']:.1f} frames/s; animate "
        f"(end to end, the whole command) {1 / result['animate_model_s_per_frame']:.1f} frames/s = "
        f"{result['model_speedup']:.1f}x; --model warp {1 / result['animate_warp_s_per_frame']:.1f} frames/s "
        f"= {result['warp_speedup']:.1f}x"
    )
    if memory_minutes > 0:
        result["memory"] = memory_flat(checkpoint, portrait, clip, memory_minutes, out)
    return result


def memory_flat(checkpoint: Path, portrait: Path, driver: Path, minutes: float, out: Path) -> dict:
    """Resident memory of ``fsth animate`` over a driver of ``minutes`` (talk.mp4 looped, stream-copied)."""
    long_driver = looped(driver, minutes * 60, out / "long_driver.mp4")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fsth",
            "-q",
            "animate",
            str(portrait),
            str(long_driver),
            "-o",
            str(out / "long.mp4"),
            "--force",
            "--checkpoint",
            str(checkpoint),
        ]
    )
    samples = []
    while proc.poll() is None:
        try:
            with open(f"/proc/{proc.pid}/status") as f:
                rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS"))
            samples.append(rss / 1024)
        except (OSError, StopIteration):
            pass
        time.sleep(1.0)
    third = max(len(samples) // 3, 1)
    first, last = max(samples[:third]), max(samples[-third:])
    console.log(
        f"memory over a {minutes:g}-minute driver: peak {first:.0f} MB in the first third, {last:.0f} MB in "
        f"the last ({len(samples)} samples)"
    )
    return {
        "minutes": minutes,
        "seconds": len(samples),
        "rss_mb_first_third_peak": first,
        "rss_mb_last_third_peak": last,
        "flat": last <= 1.05 * first,
        "exit": proc.returncode,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="meta checkpoint (default: the shipped model)")
    parser.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "default_model")
    parser.add_argument("--only", default="self,cross,speed")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--driver-seconds", type=float, default=120.0, help="speed: talk.mp4 looped to this long")
    parser.add_argument("--memory-minutes", type=float, default=0.0)
    args = parser.parse_args()
    checkpoint = find_meta_checkpoint(args.checkpoint)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = load_checkpoint(checkpoint, "meta", only=("E", "G"))
    detector = make_detector("dlib")  # the judge of cross-reenactment
    parts = set(args.only.split(","))
    results = {"machine": machine(), "checkpoint": str(checkpoint), "step": meta.step}
    console.log(f"{checkpoint} (step {meta.step}) on {results['machine']}")
    if "self" in parts:
        # the protocol draws each target's own landmarks: those the model was trained on
        own = detector_for(meta.landmark_backend, as_trained=True)
        results["self"] = self_reenactment(meta, args.media, own, args.out)
        r = results["self"]
        console.log(
            f"self-reenactment: model L1 {r['model_over_copy_l1_face']:.3f}x copy's (target <= 0.85), "
            f"mouth L1 {r['model_over_warp_l1_mouth']:.3f}x warp's (target <= 0.85)"
        )
    if "cross" in parts:
        results["cross"] = cross_reenactment(checkpoint, args.media, detector, args.out)
        r = results["cross"]
        console.log(
            f"cross-reenactment: face >= {r['face_rate_min']:.0%}, same person >= "
            f"{r['same_person_rate_min']:.0%}, mouth r >= {r['mouth_r_min']:.2f} (mean {r['mouth_r_mean']:.2f})"
        )
    if "speed" in parts:
        results["speed"] = speed(checkpoint, args.repeats, args.driver_seconds, args.memory_minutes, args.out)
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    console.log(f"figures -> {args.out / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
