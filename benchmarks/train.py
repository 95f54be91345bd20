"""Training speed: samples/s of one meta-learning step (fsth.train.train_step) and of the episode pipeline.

    python benchmarks/train.py                    # CPU: tiny and paper256, with and without the content loss
    python benchmarks/train.py --presets tiny     # only the tiny preset
    python benchmarks/train.py --gpu-batch 16     # on a CUDA machine: fp32 vs bf16 + channels_last, peak memory

A sample is one episode (K = 8 shots + 1 target); a step is two D updates and one E/G update. The step runs
the real training code (``train_step``) on fixed random batches (speed does not depend on pixel values); the
content loss uses VGG19 and VGGFace with random weights (the same cost as the real ones, which are not needed
here). Prints the median over --repeats steps after two warm-up steps, timed round-robin so that a busy
shared machine slows every variant alike. The episode pipeline (JPEG decode, resize, sketch; what a DataLoader
worker does) is timed on a dataset built from the bundled test clips at 256x256.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import torch

from fsth.config import ModelConfig, TrainConfig
from fsth.episodes import ModelInput
from fsth.models import VGG19, ContentNetworks, VGGFace
from fsth.train import EmbedGenerate, Trainer, build_training, train_step

ASSETS = Path(__file__).resolve().parents[1] / "tests" / "assets"


def make_step(preset: str, batch: int, device, content: bool, bf16: bool, shots: int = 8):
    """A closure running one training step of ``preset`` on a fixed random batch."""
    cfg = ModelConfig.preset(preset)
    train_cfg = TrainConfig(content_loss=content, shots=shots)
    torch.manual_seed(0)
    nets = ContentNetworks(VGG19().to(device), VGGFace().to(device)) if content else None
    networks, optimizers = build_training(cfg, train_cfg, 1000, device, nets)
    E, G, D = networks.values()
    g = torch.Generator().manual_seed(1)

    def images(*shape):  # (..., 3, S, S) in [-1, 1] on the device
        return (torch.rand(*shape, 3, cfg.image_size, cfg.image_size, generator=g) * 2 - 1).to(device)

    batch_ = ModelInput(
        images(batch, shots),
        images(batch, shots),
        images(batch),
        images(batch),
        torch.randint(0, 1000, (batch,), generator=g).to(device),
        None,
        None,
    )
    EG = EmbedGenerate(E, G)
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if bf16 else contextlib.nullcontext
    trainer = Trainer(EG, D, optimizers, train_cfg, nets, autocast, device.type == "cuda")
    return lambda: train_step(batch_, trainer)


def seconds_per_call(fns: dict, repeats: int, sync=lambda: None) -> dict[str, float]:
    """Median seconds per call, round-robin (one call of each per round), after two warm-up rounds."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(repeats + 2):
        for name, fn in fns.items():
            sync()
            start = time.perf_counter()
            fn()
            sync()
            if round_ >= 2:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def cpu(presets: list[str], batch: int, repeats: int) -> None:
    device = torch.device("cpu")
    print(f"CPU, {torch.get_num_threads()} threads, torch {torch.__version__}; batch {batch}, K = 8, fp32")
    for preset in presets:
        steps = {
            f"{preset}, content loss on ": make_step(preset, batch, device, True, False),
            f"{preset}, content loss off": make_step(preset, batch, device, False, False),
        }
        reps = repeats if preset == "tiny" else max(2, repeats // 4)
        for name, s in seconds_per_call(steps, reps).items():
            print(f"  {name}: {s * 1000:9.1f} ms/step  {batch / s:7.2f} samples/s")


def gpu(presets: list[str], batch: int, repeats: int) -> None:
    device = torch.device("cuda")
    torch.backends.cudnn.benchmark = True
    print(f"GPU {torch.cuda.get_device_name(device)}, batch {batch}, K = 8, content loss on (random VGG weights)")
    for preset in presets:
        for bf16 in (False, True):
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
            step = make_step(preset, batch, device, True, bf16)
            s = seconds_per_call({"step": step}, repeats, sync=torch.cuda.synchronize)["step"]
            peak = torch.cuda.max_memory_allocated(device) / 2**30
            label = "bf16 autocast + channels_last" if bf16 else "fp32 + channels_last         "
            print(f"  {preset:8s} {label}: {s * 1000:8.1f} ms/step  {batch / s:8.1f} samples/s  peak {peak:5.1f} GiB")
            del step


def episodes(repeats: int) -> None:
    """Episodes/s of the data pipeline in one process, at 256x256 and 64x64, K = 8."""
    from fsth import console
    from fsth.dataset import DatasetSettings, build_dataset
    from fsth.episodes import EpisodeDataset
    from fsth.landmarks import CropPolicy, make_detector

    console.set_verbosity(0)
    work = Path(tempfile.mkdtemp(prefix="fsth-bench-train-"))
    for i, clip in enumerate(("talk.mp4", "smile.mp4", "vox.mp4")):
        (work / "tree" / f"p{i}").mkdir(parents=True)
        shutil.copy(ASSETS / clip, work / "tree" / f"p{i}" / clip)
    settings = DatasetSettings(
        size=256, frames_per_video=32, min_frames=9, crop_policy=CropPolicy().to_dict(), tracking={"face_index": 0}
    )
    build_dataset(work / "tree", work / "ds", settings, make_detector("dlib"))
    for size in (256, 64):
        data = EpisodeDataset(work / "ds", size, shots=8)
        s = seconds_per_call({"episode": lambda data=data: [data[(step, 0)] for step in range(10)]}, repeats)["episode"]
        print(f"  episode pipeline at {size}x{size}: {10 / s:6.1f} episodes/s per process (K + 1 = 9 frames each)")
    shutil.rmtree(work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="tiny,paper256", help="comma-separated presets (default: tiny,paper256)")
    parser.add_argument("--batch", type=int, default=2, help="episodes per step on the CPU (default: 2)")
    parser.add_argument("--gpu-batch", type=int, default=8, help="episodes per step on a GPU (default: 8)")
    parser.add_argument("--repeats", type=int, default=8, help="timed steps per figure (median is shown)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    presets = args.presets.split(",")
    cpu(presets, args.batch, args.repeats)
    if torch.cuda.is_available():
        gpu(presets, args.gpu_batch, args.repeats)
    else:
        print("no CUDA GPU here: the bf16 vs fp32 speed and peak memory on a GPU were not measured")
    episodes(args.repeats)


if __name__ == "__main__":
    main()
