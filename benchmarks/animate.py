"""End-to-end speed of `fsth animate` against the generator alone, in one process, same person, same batches.

    python benchmarks/animate.py                      # paper256, portrait.jpg driven by talk.mp4 looped to 240 frames
    python benchmarks/animate.py --side-by-side --paste-back
    python benchmarks/animate.py --preset tiny --loops 1

Builds a meta checkpoint from randomly initialised networks (seeded; speed does not depend on the weights), then
runs what `fsth animate SOURCE DRIVER -o out.mp4` runs: the person from the photo (detect, crop, embed), the
driver tracked (pass 1) and streamed through retargeting, landmark images, the generator's inference form, and
the h264 encoder with the driver's audio (pass 2). Prints:

* end to end: driver frames / seconds of `animate()` (both passes: tracking, rendering, encoding), and the whole
  command including loading the checkpoint and embedding the photo;
* generator only: frames/s of the inference generator on the same landmark images in the same batches (tensors
  ready, no conversion), measured right before and right after each end-to-end run;
* their ratio (target: end to end >= 80% of generator only), per run against the mean of the generator-only
  passes around it, so that a shared machine's load changes hit both alike; medians over ``--repeats`` runs.

The driver is ``--driver`` (default tests/assets/talk.mp4, 60 frames at 30 fps) looped ``--loops`` times.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fsth import console  # noqa: E402
from fsth.animate import AnimateOptions, animate, plan_targets  # noqa: E402
from fsth.checkpoint import save_checkpoint  # noqa: E402
from fsth.config import ModelConfig  # noqa: E402
from fsth.fewshot import Renderer, load_person  # noqa: E402
from fsth.landmarks import CropPolicy, draw_sketch, track_video  # noqa: E402
from fsth.models import Discriminator, Embedder, Generator, images_to_tensor  # noqa: E402
from fsth.video import ffmpeg_exe, probe_video  # noqa: E402


def random_meta_checkpoint(path: Path, preset: str) -> Path:
    torch.manual_seed(0)
    cfg = ModelConfig.preset(preset)
    nets = {"E": Embedder(cfg), "G": Generator(cfg), "D": Discriminator(cfg, num_videos=4)}
    return save_checkpoint(path, "meta", nets, cfg, step=0, crop_policy=CropPolicy().to_dict(), landmark_backend="dlib")


def looped(driver: Path, loops: int, out: Path) -> Path:
    if loops <= 1:
        return driver
    subprocess.run(
        [
            ffmpeg_exe(),
            "-v",
            "error",
            "-y",
            "-stream_loop",
            str(loops - 1),
            "-i",
            str(driver),
            "-fps_mode",
            "cfr",
            "-r",
            f"{probe_video(driver).fps:g}",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "18",
            "-c:a",
            "aac",
            str(out),
        ],
        check=True,
    )
    return out


def generator_fps(renderer: Renderer, batches: list[torch.Tensor]) -> float:
    """Frames/s of the inference generator alone over ready landmark-image batches (one pass)."""
    start = time.perf_counter()
    for y in batches:
        renderer.generator(y)
    return sum(len(y) for y in batches) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="paper256")
    parser.add_argument("--source", type=Path, default=ROOT / "tests" / "assets" / "portrait.jpg")
    parser.add_argument("--driver", type=Path, default=ROOT / "tests" / "assets" / "talk.mp4")
    parser.add_argument("--loops", type=int, default=4, help="play the driver this many times (longer = steadier)")
    parser.add_argument("--batch-size", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="end-to-end runs (medians are shown)")
    parser.add_argument("--side-by-side", action="store_true")
    parser.add_argument("--paste-back", action="store_true")
    parser.add_argument("--live", action="store_true", help="the live (camera) path, with the driver file")
    args = parser.parse_args()
    console.set_verbosity(0)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = random_meta_checkpoint(tmp / "meta.safetensors", args.preset)
        driver = looped(args.driver, args.loops, tmp / "driver.mp4")
        options = AnimateOptions(
            batch_size=args.batch_size, side_by_side=args.side_by_side, paste_back=args.paste_back, live=args.live
        )

        # the landmark images the run will render, for the generator-only figure
        person = load_person([args.source], ckpt)
        detector = person.detector
        track = track_video(driver, detector, crop_policy=person.crop_policy)
        targets, _ = plan_targets(track, person.points[0], person.size, options)
        sketches = np.stack([draw_sketch(p, person.size) for p in targets])
        renderer = Renderer.of(person)
        print(
            f"{args.preset}: {person.size}x{person.size}, generator in {renderer.generator.dtype}, "
            f"{torch.get_num_threads()} torch threads; driver {args.driver.name} x{args.loops} = {len(track)} "
            f"frames at {track.fps:g} fps; batch {args.batch_size}"
            f"{', side by side' if args.side_by_side else ''}{', paste-back' if args.paste_back else ''}"
            f"{', live path' if args.live else ''}"
        )

        batches = [
            images_to_tensor(sketches[i : i + args.batch_size]) for i in range(0, len(sketches), args.batch_size)
        ]
        renderer.generator(batches[0])  # warm-up
        gen, loop_rates, command_rates, ratios = [], [], [], []
        for i in range(args.repeats):
            before = generator_fps(renderer, batches)
            out = tmp / f"out{i}.mp4"
            start = time.perf_counter()
            person = load_person([args.source], ckpt)  # what the command does before the frame loop
            stats = animate(person, driver, out, options)
            command_rates.append(stats.frames / (time.perf_counter() - start))
            after = generator_fps(renderer, batches)
            loop_rates.append(stats.frames_per_second)
            gen.append((before + after) / 2)
            ratios.append(loop_rates[-1] / gen[-1])
            print(
                f"  run {i + 1}: generator only {before:.2f} / {after:.2f} frames/s (before / after), "
                f"end to end {loop_rates[-1]:.2f} frames/s ({stats.tracking / stats.frames * 1000:.1f} ms/frame "
                f"of it tracking): {ratios[-1]:.0%}"
            )

        med = statistics.median
        print(f"generator only (inference form, same batches)   {med(gen):6.2f} frames/s")
        print(f"end to end, animate() (track + render + encode) {med(loop_rates):6.2f} frames/s")
        print(f"whole command incl. loading and embedding       {med(command_rates):6.2f} frames/s")
        print(f"end to end / generator only: {med(ratios):.0%} (median of {args.repeats} runs; target >= 80%)")


if __name__ == "__main__":
    main()
