"""Time of one fine-tuning step (`fsth finetune`), with and without the content loss.

    python benchmarks/finetune.py                   # paper256, batch 1, on this machine's CPU (or GPU)
    python benchmarks/finetune.py --preset tiny --batch-size 2

One step is what `fsth finetune` repeats: G'(y), one G' update on L_CNT + L_ADV, two D' updates (the paper's
schedule). Networks are randomly initialised, VGG19 and VGGFace too (their weights are not needed to time them).
Prints the median seconds per step over ``--steps`` steps after one warm-up step, and what the default schedule
(40 epochs over 8 shots, batch 1: 320 steps) would take.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fsth import console  # noqa: E402
from fsth.config import ModelConfig, TrainConfig  # noqa: E402
from fsth.device import get_device  # noqa: E402
from fsth.fewshot.finetune import finetune_step, plan_steps  # noqa: E402
from fsth.models import (  # noqa: E402  # noqa: E402
    VGG19,
    ContentNetworks,
    Discriminator,
    Generator,
    VGGFace,
    person_discriminator,
    person_generator,
)


def seconds_per_step(cfg: ModelConfig, train: TrainConfig, batch: int, steps: int, device) -> float:
    torch.manual_seed(0)
    e_hat = torch.randn(cfg.embedding_dim, device=device)
    G = person_generator(Generator(cfg).to(device), e_hat).train()
    D = person_discriminator(Discriminator(cfg, num_videos=2).to(device), e_hat).train()
    nets = ContentNetworks(VGG19().to(device), VGGFace().to(device)) if train.content_loss else None
    opt_G = torch.optim.Adam(G.parameters(), lr=train.lr_EG, betas=train.adam_betas)
    opt_D = torch.optim.Adam(D.parameters(), lr=train.lr_D, betas=train.adam_betas)
    x = torch.rand(batch, 3, cfg.image_size, cfg.image_size, device=device) * 2 - 1
    y = torch.rand_like(x) * 2 - 1
    times = []
    for i in range(steps + 1):
        start = time.perf_counter()
        finetune_step(G, D, opt_G, opt_D, x, y, train, nets)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:  # the first step warms up
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="paper256")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    console.set_verbosity(0)  # the content-off warning
    cfg, device = ModelConfig.preset(args.preset), get_device()
    default_steps = plan_steps(8, args.batch_size, cfg=TrainConfig.for_model(cfg))
    print(
        f"{args.preset} fine-tuning step, batch {args.batch_size}, {device}"
        f"{f', {torch.get_num_threads()} threads' if device.type == 'cpu' else ''}"
    )
    for content in (False, True):
        s = seconds_per_step(cfg, TrainConfig(content_loss=content), args.batch_size, args.steps, device)
        print(
            f"  {'with' if content else 'without'} the content loss: {s:6.2f} s/step; the default schedule "
            f"({default_steps} steps) {s * default_steps / 60:5.1f} min"
        )


if __name__ == "__main__":
    main()
