"""Meta-learning on a laptop: a dataset from the bundled clips, then the tiny preset for a few hundred steps.

    python examples/train_tiny.py                 # writes into out/train_tiny/ (1-2 minutes on 2 CPU cores)
    python examples/train_tiny.py --steps 1000    # longer
    python examples/train_tiny.py --force         # again: an existing out/train_tiny/ is refused without it

1. a VoxCeleb-style tree (person/video/clip.mp4) of the three bundled clips, built into a dataset with the API
   that `fsth landmarks TREE --dataset DIR` runs;
2. a contact sheet of stored crops and their landmark images (what training sees): contact_sheet.png;
3. the tiny preset trained without the content loss (no VGG weights needed), at 4x the paper's learning rates
   (the tiny model takes them, and shows progress sooner): run/ with a sample grid every 50 steps;
4. the meta checkpoint loaded back, one frame rendered from K shots of a person;
5. self-reenactment scores (fsth evaluate) of the trained and of an untrained checkpoint on the same clips.

The same from the shell:

    fsth landmarks out/train_tiny/tree --dataset out/train_tiny/dataset --size 128 --frames-per-video 16
    fsth train out/train_tiny/dataset --run-dir out/train_tiny/run --preset tiny --batch-size 2 --shots 4 \\
        --no-content-loss --lr-eg 2e-4 --lr-d 8e-4 --max-steps 500 --sample-every 50
    fsth evaluate -c out/train_tiny/run/meta.safetensors tests/assets/*.mp4 --shots 1,4 --targets 8 \\
        --metrics ssim,psnr,l1 --samples out/train_tiny/eval
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fsth.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from fsth.dataset import Dataset, DatasetSettings, build_dataset  # noqa: E402
from fsth.episodes import EpisodeDataset, to_model_input  # noqa: E402
from fsth.evaluate import EvalOptions, evaluate  # noqa: E402
from fsth.fewshot import FewShotModel  # noqa: E402
from fsth.files import parse_with_out_dir  # noqa: E402
from fsth.landmarks import CropPolicy, face_pair, full_box, make_detector  # noqa: E402
from fsth.models import Discriminator, Embedder, Generator, tensor_to_images  # noqa: E402
from fsth.rundir import image_grid  # noqa: E402
from fsth.train import train  # noqa: E402
from fsth.video import write_image  # noqa: E402

ASSETS = ROOT / "tests" / "assets"
DEFAULT_OUT = ROOT / "out" / "train_tiny"
OUT = DEFAULT_OUT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=500)
    global OUT
    args, OUT = parse_with_out_dir(parser, DEFAULT_OUT)

    # 1. The tree and its dataset: 16 frames per video, 128x128 crops.
    for person, clip in (("man_hoodie", "talk.mp4"), ("man_glasses", "smile.mp4"), ("vox_closeup", "vox.mp4")):
        (OUT / "tree" / person / "video1").mkdir(parents=True)
        shutil.copy(ASSETS / clip, OUT / "tree" / person / "video1" / "00001.mp4")
    detector = make_detector("dlib")
    settings = DatasetSettings(
        size=128,
        frames_per_video=16,
        min_frames=9,
        landmark_backend=detector.name,
        crop_policy=CropPolicy().to_dict(),
        tracking={"face_index": 0},
    )
    summary = build_dataset(OUT / "tree", OUT / "dataset", settings, detector)
    print(
        f"dataset: {summary.stored} videos, {summary.frames} frames, "
        f"{summary.jpeg_bytes / summary.frames / 1024:.1f} KB per frame"
    )

    # 2. Contact sheet: per video, 4 stored crops, each beside its landmark image.
    dataset = Dataset(OUT / "dataset")
    rows = []
    for i in range(len(dataset)):
        record = dataset.record(i)
        picks = [0, 5, 10, 15]
        pairs = [
            face_pair(crop, record.points[j], 128, box=full_box(crop)) for crop, j in zip(record.frames(picks), picks)
        ]
        rows.append([im for p in pairs for im in (p.crop, p.sketch)])
    write_image(OUT / "contact_sheet.png", image_grid(rows))
    print(f"contact sheet -> {OUT / 'contact_sheet.png'}")

    # 3. Training (fsth train with the same options).
    given = {
        "preset": "tiny",
        "batch_size": 2,
        "shots": 4,
        "content_loss": False,
        "lr_EG": 2e-4,
        "lr_D": 8e-4,
        "max_steps": args.steps,
        "sample_every": 50,
        "log_every": 25,
        "num_samples": 6,
    }
    result = train(OUT / "dataset", OUT / "run", given)
    errors = [
        (r["step"], r["sample_l1"]) for r in map(json.loads, (OUT / "run" / "stats.jsonl").open()) if "sample_l1" in r
    ]
    print("mean abs error of the sample episodes (grey levels) by step:", errors)
    print(f"sample grids (landmark image | generated | target) in {result.run_dir / 'samples'}")

    # 4. The meta checkpoint: E and G from the file, one person's frame from K = 4 shots.
    ckpt = load_checkpoint(result.run_dir / "meta.safetensors", kind="meta")
    E, G = ckpt.embedder().eval(), ckpt.generator().eval()
    episode = EpisodeDataset(dataset, ckpt.config.image_size, shots=4).fixed_episode(0, 1)
    shots_x, shots_y, x, y, *_ = to_model_input(torch.utils.data.default_collate([episode]), "cpu")
    with torch.no_grad():
        x_hat = G(y, E.embed_shots(shots_x, shots_y))
    write_image(OUT / "render.png", np.concatenate([tensor_to_images(t)[0] for t in (y, x_hat, x)], axis=1))
    print(
        f"step {ckpt.step}, crop policy {ckpt.crop_policy}, landmarks by {ckpt.landmark_backend}; "
        f"one rendered frame -> {OUT / 'render.png'}"
    )

    # 5. Evaluation (fsth evaluate): self-reenactment on the three clips, this checkpoint against an untrained one
    #    of the same preset. They are its training clips: this shows that training learned something, not how the
    #    model does on new people (give it held-out videos for that).
    untrained = OUT / "untrained.safetensors"
    torch.manual_seed(0)
    nets = {"E": Embedder(ckpt.config), "G": Generator(ckpt.config), "D": Discriminator(ckpt.config, num_videos=3)}
    save_checkpoint(
        untrained,
        "meta",
        nets,
        ckpt.config,
        step=0,
        crop_policy=ckpt.crop_policy,
        landmark_backend=ckpt.landmark_backend,
    )
    clips = [ASSETS / "talk.mp4", ASSETS / "smile.mp4", ASSETS / "vox.mp4"]
    options = EvalOptions(shots=(1, 4), targets=8, metrics=("ssim", "psnr", "l1"))
    for name, path in (("untrained", untrained), ("trained", result.run_dir / "meta.safetensors")):
        model = FewShotModel.load(path)
        report = evaluate(model, clips, detector, options, samples=OUT / f"eval_{name}")
        print(
            f"{name}: "
            + "; ".join(
                f"{s['name']}: SSIM {s['metrics']['ssim']['value']:.3f} L1 {s['metrics']['l1']['value']:.3f}"
                for s in report["settings"]
            )
            + f" (grids: {OUT / f'eval_{name}'})"
        )


if __name__ == "__main__":
    main()
