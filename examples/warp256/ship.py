"""Turn a trained warp256 run's meta checkpoint into the shipped default model: E and G only, in float16.

    python examples/warp256/ship.py runs/warp256/meta.safetensors fsth/weights/warp256.safetensors [--force]

D (and its table W of the training videos) stays behind: animate, embed and evaluate need E and G, and fine-tuning
starts a new D' when the meta checkpoint has none. float16 halves the file (the weights are far inside its range);
the script reports how far a rendered frame of the bundled portrait moves against the float32 weights.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fsth.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("meta", type=Path, help="the run's meta.safetensors")
    parser.add_argument("out", type=Path, help="where to write the shipped model")
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    args = parser.parse_args()
    if args.out.exists() and not args.force:
        print(f"error: {args.out} already exists; use --force to replace it", file=sys.stderr)
        return 1
    if args.out.resolve() == args.meta.resolve():
        print("error: the output would overwrite the input", file=sys.stderr)
        return 1
    meta = load_checkpoint(args.meta, "meta", only=("E", "G"))
    if not meta.config.warp:
        print(f"error: {args.meta} is not a warp-guided model ({meta.config.generator})", file=sys.stderr)
        return 1
    tensors = {k: v for k, v in meta.tensors.items() if k.split(".")[0] in ("E", "G")}
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        print(f"error: {args.meta} holds non-finite weights ({', '.join(bad[:3])})", file=sys.stderr)
        return 1
    half = {k: v.to(torch.float16) if v.is_floating_point() else v for k, v in tensors.items()}
    info = {k: v for k, v in meta.meta.items() if k not in ("step", "crop_policy", "landmark_backend", "fsth_version")}
    info["shipped_from"] = {"checkpoint": str(args.meta), "dtype": "float16"}
    save_checkpoint(
        args.out,
        "meta",
        {
            "E": {k[2:]: v for k, v in half.items() if k.startswith("E.")},
            "G": {k[2:]: v for k, v in half.items() if k.startswith("G.")},
        },
        meta.config,
        step=meta.step,
        crop_policy=meta.crop_policy,
        landmark_backend=meta.landmark_backend,
        **info,
    )
    # how much float16 moves a frame: the bundled portrait, its own landmarks with the mouth opened a little
    from fsth.fewshot import Renderer, load_person

    person = {}
    for name, path in (("float32", args.meta), ("float16", args.out)):
        person[name] = load_person([ROOT / "tests" / "assets" / "einstein.jpg"], path)
    target = person["float32"].points[:1].copy()
    target[0, 57:60, 1] += 6
    target[0, 65:68, 1] += 6
    frames = {n: Renderer.of(p, dtype=torch.float32).render(target).astype(np.int16) for n, p in person.items()}
    diff = np.abs(frames["float32"] - frames["float16"])
    size = args.out.stat().st_size / 2**20
    print(
        f"{args.out}: step {meta.step}, {len(half)} tensors, {size:.1f} MiB; float16 against float32 on a rendered "
        f"frame: max {diff.max()} / mean {diff.mean():.3f} grey levels",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
