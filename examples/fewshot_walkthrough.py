"""Walkthrough of few-shot use: embed a person, fine-tune on them, animate them with a driving video.

    python examples/fewshot_walkthrough.py                          # tiny random meta checkpoint, fast
    python examples/fewshot_walkthrough.py --preset paper256        # the paper's size (slower on a CPU)
    python examples/fewshot_walkthrough.py --checkpoint meta.safetensors   # a trained meta checkpoint

Everything is written into out/fewshot/ (``--out DIR`` elsewhere); a directory that holds files already is refused
unless ``--force``, which deletes them first. Without --checkpoint it first saves a meta checkpoint made from
randomly initialised networks: it runs every step for real, but **the faces it generates look like nothing, no
likeness at all**. A meta checkpoint trained with `fsth train` on VoxCeleb-scale data (paper256) is what makes the
generated face look like the person. What you can check with a random checkpoint is the machinery: the crops and
landmark images, that the landmark images follow the driver's mouth, eyes and head while keeping the source's
face shape (the middle panel of the side-by-side video), the paste-back, the frame rate and the sound.

The steps, each with the command that does the same:

1. ``fsth embed --shots PHOTO -o embedding.safetensors``: shots -> crops + landmark images -> e_hat;
2. ``fsth finetune --shots VIDEO --k 8 --steps N --no-content-loss -o person.safetensors``: the paper's fine-tuning
   (``--no-content-loss`` because VGG19 / VGGFace weights are not on this machine; with them, leave it out);
3. ``fsth animate embedding.safetensors DRIVER -o side_by_side.mp4 --side-by-side``: motion transfer and rendering;
4. ``fsth animate PHOTO DRIVER -o pasted.mp4 --paste-back --no-head-motion``: the face back in the photo;
5. rendering frames from landmarks in Python (``Renderer``), as an evaluation does.

A contact sheet of a few frames of each video is written as PNG, to look at.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fsth.animate import AnimateOptions, animate  # noqa: E402
from fsth.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from fsth.config import ModelConfig, TrainConfig  # noqa: E402
from fsth.fewshot import (  # noqa: E402  # noqa: E402
    Renderer,  # noqa: E402
    crop_policy_of,
    detector_for,
    load_person,
    load_shots,  # noqa: E402
    save_embedding,
)
from fsth.fewshot.embed import embed  # noqa: E402  (a function of the submodule of that name)
from fsth.fewshot.finetune import finetune, person_networks, save_person  # noqa: E402
from fsth.files import parse_with_out_dir  # noqa: E402
from fsth.landmarks import CropPolicy  # noqa: E402
from fsth.models import Discriminator, Embedder, Generator  # noqa: E402
from fsth.video import VideoReader, write_image  # noqa: E402

MEDIA = ROOT.parent / "shared" / "media"
DEFAULT_OUT = ROOT / "out" / "fewshot"
OUT = DEFAULT_OUT


def contact_sheet(video: Path, png: Path, count: int = 6) -> None:
    """``count`` frames spread over ``video``, one below the other, as a PNG."""
    with VideoReader(video) as reader:
        frames = list(reader)
    picks = np.linspace(0, len(frames) - 1, count).round().astype(int)
    write_image(png, np.concatenate([frames[i] for i in picks], axis=0))
    print(f"  {png}: frames {picks.tolist()} of {len(frames)}")


def random_meta_checkpoint(path: Path, preset: str) -> Path:
    torch.manual_seed(0)
    cfg = ModelConfig.preset(preset)
    nets = {"E": Embedder(cfg), "G": Generator(cfg), "D": Discriminator(cfg, num_videos=4)}
    save_checkpoint(path, "meta", nets, cfg, step=0, crop_policy=CropPolicy().to_dict(), landmark_backend="dlib")
    print(f"random {preset} meta checkpoint (no likeness!) -> {path}")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="a trained meta checkpoint (default: a random one)")
    parser.add_argument("--preset", default="tiny", help="preset of the random checkpoint: tiny or paper256")
    parser.add_argument("--photo", type=Path, default=MEDIA / "images" / "liveportrait_d19.jpg")
    parser.add_argument(
        "--shots-video",
        type=Path,
        default=MEDIA / "videos" / "liveportrait_d18.mp4",
        help="a video of the same person (liveportrait_d19.jpg shows the man of d18.mp4)",
    )
    parser.add_argument("--driver", type=Path, default=MEDIA / "videos" / "lia_vox_driving2.mp4")
    parser.add_argument("--finetune-steps", type=int, default=10)
    global OUT
    args, OUT = parse_with_out_dir(parser, DEFAULT_OUT)
    if not args.photo.is_file():
        sys.exit(f"{args.photo} not found: this walkthrough uses ../shared/media beside the repository")
    meta_path = args.checkpoint or random_meta_checkpoint(OUT / f"meta_random_{args.preset}.safetensors", args.preset)
    meta = load_checkpoint(meta_path, "meta")
    size, policy = meta.config.image_size, crop_policy_of(meta)
    detector = detector_for(meta.landmark_backend)

    # 1. embed: one photo -> crop + landmark image -> e_hat
    shots = load_shots([args.photo], detector, size, policy)
    e_hat = embed(meta.embedder(), shots)
    save_embedding(OUT / "embedding.safetensors", e_hat, shots, meta)
    write_image(OUT / "shot.png", np.concatenate([shots.crops[0], shots.sketches[0]], axis=1))
    print(
        f"1. embed: e_hat {tuple(e_hat.shape)} from {args.photo.name} -> {OUT / 'embedding.safetensors'}; "
        f"crop | landmark image -> {OUT / 'shot.png'}"
    )

    # 2. finetune on 8 frames of a video of the same person
    video_shots = load_shots([args.shots_video], detector, size, policy, k=8)
    cfg = TrainConfig(content_loss=False)  # VGG19 / VGGFace weights are not on this machine
    video_e_hat = embed(meta.embedder(), video_shots)
    G, D = person_networks(meta, video_e_hat)
    result = finetune(G, D, video_shots, args.finetune_steps, cfg)
    save_person(OUT / "person.safetensors", result, video_shots, video_e_hat, meta, cfg)
    print(
        f"2. finetune: {result.steps} steps in {result.seconds:.1f} s on {len(video_shots)} frames of "
        f"{args.shots_video.name} -> {OUT / 'person.safetensors'}; last losses {result.losses}"
    )

    # 3. animate the embedding, side by side: driver | landmark image | result
    out = OUT / "side_by_side.mp4"
    person = load_person(OUT / "embedding.safetensors", meta_path)
    stats = animate(person, args.driver, out, AnimateOptions(side_by_side=True))
    print(
        f"3. animate: {stats.frames} frames at {stats.fps:g} fps, {stats.frames_per_second:.1f} frames/s, "
        f"driver reference frame {stats.reference} -> {out}"
    )
    contact_sheet(out, OUT / "side_by_side.png")

    # 4. the face pasted back into the photo (expression only: the head stays where it is in the photo)
    out = OUT / "pasted.mp4"
    person = load_person([args.photo], meta_path)
    animate(person, args.driver, out, AnimateOptions(paste_back=True, side_by_side=True, head_motion=False))
    print(f"4. paste-back -> {out}")
    contact_sheet(out, OUT / "pasted.png")

    # 5. frames from landmarks in Python, as an evaluation renders its targets
    renderer = Renderer.of(load_person(OUT / "person.safetensors"))
    frames = renderer.render(video_shots.points[:4])  # (4, S, S, 3) uint8
    write_image(
        OUT / "rendered.png",
        np.concatenate(
            [
                np.concatenate(list(video_shots.crops[:4]), 1),
                np.concatenate(list(video_shots.sketches[:4]), 1),
                np.concatenate(list(frames), 1),
            ],
            0,
        ),
    )
    print(f"5. real shots | their landmark images | the fine-tuned generator's frames -> {OUT / 'rendered.png'}")


if __name__ == "__main__":
    main()
