"""Generator speed: the training form in plain fp32 vs the inference form, in one process, same input.

    python benchmarks/generator.py                 # paper256 on this machine's CPU
    python benchmarks/generator.py --compile       # also the torch.compile'd inference form
    python benchmarks/generator.py --tiny-step     # also one full training step of the tiny preset

Prints milliseconds per 256x256 frame (median of --repeats runs after two warm-up runs) for the training
form in plain fp32 eager (eval mode, no_grad), the training form under bf16 autocast (for reference), the
inference form in fp32 and in the dtype it picks (bf16 where the CPU/GPU runs it fast), their ratio
(target: inference form >= 4x faster than plain fp32), and the largest pixel difference. On a machine
with CUDA it also prints frames/s of the inference form at batch 1 and 32 in bf16. Networks are randomly
initialised (seeded): speed does not depend on the weights; the pixel differences of random networks
are put in scale by what rounding only the input to bf16 does to the fp32 output.
"""

from __future__ import annotations

import argparse
import statistics
import time

import cv2
import numpy as np
import torch

from fsth.config import ModelConfig, TrainConfig
from fsth.models import Embedder, Generator, images_to_tensor, inference_generator


def landmark_like_image(size: int) -> torch.Tensor:
    """A sketch of a face (jaw, brows, eyes, nose, mouth as coloured polylines on black), (1, 3, S, S)."""
    img = np.zeros((size, size, 3), np.uint8)
    s = size / 256
    t = np.linspace(0.1 * np.pi, 0.9 * np.pi, 17)
    parts = [
        (np.stack([128 + 80 * np.cos(t), 110 + 100 * np.sin(t)], 1), (255, 255, 0), False),  # jaw
        (np.array([[70, 90], [90, 82], [110, 86]]), (255, 0, 0), False),  # brows
        (np.array([[146, 86], [166, 82], [186, 90]]), (255, 0, 0), False),
        (np.array([[128, 100], [128, 140], [115, 150], [141, 150]]), (0, 255, 0), False),  # nose
        (np.array([[80, 110], [95, 104], [110, 110], [95, 114]]), (0, 0, 255), True),  # eyes
        (np.array([[146, 110], [161, 104], [176, 110], [161, 114]]), (0, 0, 255), True),
        (np.array([[100, 180], [128, 172], [156, 180], [128, 192]]), (255, 0, 255), True),  # mouth
    ]
    for points, colour, closed in parts:
        pts = (points * s).astype(np.int32).reshape(-1, 1, 2)
        cv2.polylines(img, [pts], closed, colour, max(1, round(2 * s)), cv2.LINE_AA)
    return images_to_tensor(img)


def ms_per_call(fns: dict, repeats: int, sync=lambda: None) -> dict[str, float]:
    """Median milliseconds per call of each function, timed round-robin (one call of each per round),
    so that a slow phase of a shared machine hits every variant alike; two warm-up rounds first."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for round_ in range(repeats + 2):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync()
            if round_ >= 2:
                times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def pixel_difference(a: torch.Tensor, b: torch.Tensor) -> str:
    d = (a.float() - b.float()).abs()
    return f"max {d.max():.3f} on [-1, 1] (= {d.max() * 127.5:.0f} of 255 grey levels), mean {d.mean():.4f}"


def cpu_benchmark(cfg: ModelConfig, repeats: int, compile_too: bool, batch: int) -> None:
    torch.manual_seed(0)
    G, E = Generator(cfg).eval(), Embedder(cfg).eval()
    y = landmark_like_image(cfg.image_size)
    with torch.no_grad():
        e_hat = E(torch.rand_like(y) * 2 - 1, y)[0]  # an embedding of realistic magnitude
    y = y.expand(batch, -1, -1, -1).contiguous()  # plain NCHW, as a training loop would hand it over
    print(
        f"generator {cfg.image_size}x{cfg.image_size}, batch {batch}, CPU, {torch.get_num_threads()} threads, "
        f"torch {torch.__version__}; times are per frame"
    )

    fast32 = inference_generator(G, e_hat, dtype=torch.float32)
    fast = inference_generator(G, e_hat)
    name = str(fast.dtype).replace("torch.", "")

    def autocast_bf16():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return G(y, e_hat).float()

    with torch.no_grad():
        reference = G(y, e_hat)
        rounded_input = G(y.bfloat16().float(), e_hat)
        other_layout = G(y.contiguous(memory_format=torch.channels_last), e_hat)
        ms = ms_per_call(
            {
                "fp32": lambda: G(y, e_hat),
                "autocast": autocast_bf16,
                "inference fp32": lambda: fast32(y),
                "inference": lambda: fast(y),
            },
            repeats,
        )
        autocast_out = autocast_bf16()
    ms = {key: value / batch for key, value in ms.items()}
    fp32 = ms["fp32"]
    print(f"  training form, fp32 eager (eval, no_grad)   {fp32:8.1f} ms/frame")
    for key, label in (
        ("autocast", "training form, bf16 autocast (reference)  "),
        ("inference fp32", "inference form, fp32                      "),
        ("inference", f"inference form, {name:8s} (the default)    "),
    ):
        print(f"  {label}  {ms[key]:8.1f} ms/frame   {fp32 / ms[key]:4.1f}x")
    print(f"speed-up of the inference form over plain fp32: {fp32 / ms['inference']:.1f}x (target >= 4x)")
    print(f"pixel difference, inference form {name} vs fp32 eager: {pixel_difference(fast(y), reference)}")
    print(f"  inference form fp32 vs fp32 eager:    {pixel_difference(fast32(y), reference)}")
    print(f"  bf16 autocast vs fp32 eager:          {pixel_difference(autocast_out, reference)}")
    print("  for scale, what this randomly initialised network does with tiny changes:")
    print(f"  fp32 eager, input rounded to bf16:    {pixel_difference(rounded_input, reference)}")
    print(f"  fp32 eager, channels_last input:      {pixel_difference(other_layout, reference)}")

    if compile_too:
        start = time.perf_counter()
        compiled = inference_generator(G, e_hat).compile()
        out = compiled(y)
        seconds = time.perf_counter() - start
        with torch.no_grad():
            again = ms_per_call({"fp32": lambda: G(y, e_hat), "compiled": lambda: compiled(y)}, repeats)
        again = {key: value / batch for key, value in again.items()}
        msc = again["compiled"]
        print(
            f"  inference form, {name}, torch.compile      {msc:8.1f} ms/frame   "
            f"{again['fp32'] / msc:4.1f}x over fp32 timed beside it (compile time {seconds:.0f} s)"
        )
        print(f"  compiled vs fp32 eager: {pixel_difference(out, reference)}")


def gpu_benchmark(cfg: ModelConfig, repeats: int) -> None:
    """Frames/s of the bf16 inference form on CUDA at batch 1 and 32."""
    device = torch.device("cuda")
    torch.manual_seed(0)
    G = Generator(cfg).eval().to(device)
    fast = inference_generator(G, torch.rand(cfg.embedding_dim, device=device), dtype=torch.bfloat16)
    y = landmark_like_image(cfg.image_size).to(device)
    print(f"GPU {torch.cuda.get_device_name(device)}, inference form, bf16")
    for batch in (1, 32):
        yb = y.expand(batch, -1, -1, -1).contiguous()
        ms = ms_per_call({"gpu": lambda yb=yb: fast(yb)}, repeats, sync=torch.cuda.synchronize)["gpu"]
        print(f"  batch {batch:2d}: {1000 * batch / ms:8.1f} frames/s ({ms:.1f} ms per batch)")


def tiny_step_benchmark(repeats: int) -> None:
    """One full meta-learning step of the tiny preset: two D updates, one E/G update (K = 8, batch 2)."""
    from fsth.losses import discriminator_hinge_loss, generator_loss
    from fsth.models import VGG19, ContentNetworks, Discriminator, VGGFace

    cfg, train = ModelConfig.preset("tiny"), TrainConfig()
    torch.manual_seed(0)
    E, G, D = Embedder(cfg), Generator(cfg), Discriminator(cfg, num_videos=16)
    content = ContentNetworks(VGG19(), VGGFace())  # random weights: the cost is the same
    opt_eg = torch.optim.Adam([*E.parameters(), *G.parameters()], lr=train.lr_EG, betas=train.adam_betas)
    opt_d = torch.optim.Adam(D.dense_parameters(), lr=train.lr_D, betas=train.adam_betas)
    opt_w = torch.optim.SparseAdam(D.W.parameters(), lr=train.lr_D, betas=train.adam_betas)
    b, k, n = 2, train.shots, cfg.image_size
    shots_x, shots_y = torch.rand(b, k, 3, n, n) * 2 - 1, torch.rand(b, k, 3, n, n) * 2 - 1
    x, y, idx = torch.rand(b, 3, n, n) * 2 - 1, torch.rand(b, 3, n, n) * 2 - 1, torch.tensor([3, 11])

    def step(with_content: bool) -> None:
        cfg_step = TrainConfig(content_loss=with_content)
        for _ in range(train.d_steps_per_g_step):
            with torch.no_grad():
                x_hat = G(y, E.embed_shots(shots_x, shots_y))
            opt_d.zero_grad(), opt_w.zero_grad()
            discriminator_hinge_loss(D(x, y, idx)[0], D(x_hat, y, idx)[0]).backward()
            opt_d.step(), opt_w.step()
        e_hat = E.embed_shots(shots_x, shots_y)
        x_hat = G(y, e_hat)
        score_fake, feats_fake = D(x_hat, y, idx)
        with torch.no_grad():
            _, feats_real = D(x, y, idx)
        opt_eg.zero_grad()
        terms = generator_loss(
            cfg_step,
            x_hat,
            x,
            score_fake,
            feats_fake,
            feats_real,
            content_nets=content,
            W_rows=D.W_rows(idx),
            e_hat=e_hat,
        )
        terms["total"].backward()
        opt_eg.step()

    ms = ms_per_call({"content": lambda: step(True), "none": lambda: step(False)}, repeats)
    print(f"tiny preset, one training step (2 D + 1 E/G update, batch {b}, K = {k}, {n}x{n}), CPU:")
    print(f"  with the content loss (VGG19 + VGGFace): {ms['content']:7.1f} ms")
    print(f"  without it:                              {ms['none']:7.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="paper256", help="model preset (default: paper256)")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs per figure (median is shown)")
    parser.add_argument("--batch", type=int, default=1, help="frames per generator call on the CPU (default: 1)")
    parser.add_argument("--compile", action="store_true", help="also time the torch.compile'd inference form")
    parser.add_argument("--tiny-step", action="store_true", help="also time one training step of the tiny preset")
    args = parser.parse_args()
    cfg = ModelConfig.preset(args.preset)
    cpu_benchmark(cfg, args.repeats, args.compile, args.batch)
    if torch.cuda.is_available():
        gpu_benchmark(cfg, args.repeats)
    else:
        print("no CUDA GPU here: GPU frames/s at batch 1 and 32 not measured")
    if args.tiny_step:
        tiny_step_benchmark(args.repeats)


if __name__ == "__main__":
    main()
