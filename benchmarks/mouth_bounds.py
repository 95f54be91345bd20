"""How far can any G go below the warp's mouth L1? Where the warp's error lies, and what would remove it.

    python benchmarks/mouth_bounds.py                                    # decomposition and oracles (~2 min)
    python benchmarks/mouth_bounds.py --flow-dataset data/warp256_ds --flow-minutes 35   # + the flow probe

On the self-reenactment targets of ``benchmarks/default_model.py`` (4 held-out videos, 164 targets), inside the
same mouth box (points 48-67, grown by half its size each way):

1. **Decomposition**: the box's L1 of the warp and of the model, split into the part inside the inner lips (points
   60-67), the lips (the outer-lip polygon less the inner) and the skin around them (the rest of the box). The
   parts sum to the box's L1.
2. **Oracles**: the warp with something taken from the *real* target frame, which no G can see: the inner-mouth
   pixels; a per-frame, per-channel affine colour fit inside the box (shading); the warp re-aligned to the real
   frame by dense optical flow (OpenCV's DIS; alignment). Each is an upper bound of what fixing that one thing
   could give.
3. **Flow probe** (``--flow-dataset``): is the warp's misalignment predictable from what G sees? A small U-Net reads
   the target's landmark image, the warped source and the spline's displacement (at 128x128) and outputs a residual
   offset of the sampling grid (at 64x64, at most 6.4 px at 256, zero at first); the source is sampled once with
   spline grid + offset. Trained for ``--flow-minutes`` on the dataset (pairs of frames of one video, L1 weighted
   by ``fsth.losses.mouth_weights``), then scored on the held-out targets. Its training-set ratio is printed too.

Prints the figures and writes ``OUT/mouth_bounds.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from default_model import MOUTH_GROW, ROOT, box_of, machine, region_l1, render_all, self_targets  # noqa: E402

from fsth import console  # noqa: E402
from fsth.checkpoint import find_meta_checkpoint, load_checkpoint  # noqa: E402
from fsth.landmarks import make_detector  # noqa: E402
from fsth.landmarks.sketch import draw_sketch  # noqa: E402
from fsth.models import images_to_tensor, tensor_to_images  # noqa: E402
from fsth.models.layers import resize  # noqa: E402
from fsth.models.warp import warp_grid  # noqa: E402

SIZE = 256


def polygon(points: np.ndarray, idx: range) -> np.ndarray:
    mask = np.zeros((SIZE, SIZE), np.uint8)
    cv2.fillPoly(mask, [np.round(points[list(idx)]).astype(np.int32)], 1)
    return mask.astype(bool)


def parts(made: np.ndarray, real: np.ndarray, points: np.ndarray, box) -> list[float]:
    """[box L1, inner-mouth part, lips part, skin part] (the parts sum to the box's L1)."""
    x0, y0, x1, y1 = box
    inside = np.zeros((SIZE, SIZE), bool)
    inside[y0:y1, x0:x1] = True
    inner, outer = polygon(points, range(60, 68)), polygon(points, range(48, 60))
    err = np.abs(made.astype(np.float32) - real.astype(np.float32)).mean(-1) / 255
    n = inside.sum()
    return [
        float(err[inside].mean()),
        float(err[inside & inner].sum() / n),
        float(err[inside & outer & ~inner].sum() / n),
        float(err[inside & ~outer].sum() / n),
    ]


def oracles(warp: np.ndarray, real: np.ndarray, points: np.ndarray, box) -> dict[str, float]:
    x0, y0, x1, y1 = box
    w, r = warp.astype(np.float32), real.astype(np.float32)
    inner = polygon(points, range(60, 68))
    filled = w.copy()
    filled[inner] = r[inner]
    wb, rb = w[y0:y1, x0:x1].reshape(-1, 3), r[y0:y1, x0:x1].reshape(-1, 3)
    fitted = np.empty_like(wb)
    for c in range(3):
        design = np.stack([wb[:, c], np.ones(len(wb), np.float32)], 1)
        fitted[:, c] = design @ np.linalg.lstsq(design, rb[:, c], rcond=None)[0]
    grey = [cv2.cvtColor(im, cv2.COLOR_RGB2GRAY) for im in (real, warp)]
    flow = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM).calc(grey[0], grey[1], None)
    gx, gy = np.meshgrid(np.arange(SIZE, dtype=np.float32), np.arange(SIZE, dtype=np.float32))
    aligned = cv2.remap(warp, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR)
    return {
        "real_inner_mouth": region_l1(filled, r, box),
        "colour_fit": float(np.abs(fitted - rb).mean() / 255),
        "flow_aligned": region_l1(aligned, real, box),
        "flow_px": float(np.linalg.norm(flow[y0:y1, x0:x1], axis=-1).mean()),
    }


# ------------------------------------------------------------------------------------------------- flow probe


def _block(c_in: int, c_out: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(4, c_out), nn.LeakyReLU(0.2),
        nn.Conv2d(c_out, c_out, 3, padding=1), nn.GroupNorm(4, c_out), nn.LeakyReLU(0.2),
    )  # fmt: skip


class FlowProbe(nn.Module):
    """(landmark image, warped source, 10 x displacement) at 128 -> grid offset (B, 2, 64, 64), |offset| <= 0.05."""

    def __init__(self, widths=(24, 48, 96, 96)):
        super().__init__()
        self.down = nn.ModuleList(_block(c_in, c) for c_in, c in zip((8, *widths[:-1]), widths))
        self.up = nn.ModuleList([_block(widths[3] + widths[2], widths[2]), _block(widths[2] + widths[1], widths[1])])
        self.out = nn.Conv2d(widths[1], 2, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else F.avg_pool2d(x, 2))
            feats.append(x)
        for block, skip in zip(self.up, (feats[2], feats[1])):
            x = block(torch.cat([F.interpolate(x, scale_factor=2, mode="bilinear"), skip], 1))
        return 0.05 * torch.tanh(self.out(x))


def _identity(n: int) -> torch.Tensor:
    t = (torch.arange(n, dtype=torch.float32) * 2 + 1) / n - 1
    gy, gx = torch.meshgrid(t, t, indexing="ij")
    return torch.stack([gx, gy], -1)[None]


def probe_warp(net, source, sketch, source_points, target_points):
    """(the source sampled at spline grid + the probe's offset, the plain warp), both (B, 3, S, S)."""
    grid = warp_grid(target_points, source_points, SIZE)
    warped = F.grid_sample(source, grid, padding_mode="border", align_corners=False)
    shift = (grid - _identity(SIZE)).permute(0, 3, 1, 2)
    offset = net(torch.cat([resize(sketch, 128), resize(warped, 128), 10 * resize(shift, 128)], 1))
    offset = F.interpolate(offset, size=(SIZE, SIZE), mode="bilinear", align_corners=False).permute(0, 2, 3, 1)
    return F.grid_sample(source, grid + offset, padding_mode="border", align_corners=False), warped


def train_probe(dataset: Path, minutes: float) -> tuple[FlowProbe, float]:
    from fsth.episodes import EpisodeDataset, episode_loader, to_model_input
    from fsth.losses import mouth_weights

    torch.manual_seed(0)
    net = FlowProbe()
    opt = torch.optim.Adam(net.parameters(), 5e-4)
    loader = episode_loader(EpisodeDataset(dataset, SIZE, 1, seed=1), 0, 10**9, 8, workers=1)
    start, recent = time.time(), []
    for step, batch in enumerate(loader):
        m = to_model_input(batch, "cpu")
        made, warped = probe_warp(net, m.shots_x[:, 0], m.y, m.shots_points[:, 0], m.points)
        w = 1 + 20 * mouth_weights(m.points, SIZE)
        loss = ((made - m.x).abs() * w).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        recent = [*recent[-199:], (loss.item(), ((warped - m.x).abs() * w).mean().item())]
        if step % 100 == 0:
            ratio = sum(a for a, _ in recent) / sum(b for _, b in recent)
            console.log(f"flow probe step {step}: weighted L1 {ratio:.3f}x the warp's (last {len(recent)} batches)")
        if time.time() - start > minutes * 60:
            break
    return net.eval(), sum(a for a, _ in recent) / sum(b for _, b in recent)


# ------------------------------------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="meta checkpoint (default: the shipped model)")
    parser.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "mouth_bounds")
    parser.add_argument("--flow-dataset", type=Path, default=None, help="train the flow probe on this dataset")
    parser.add_argument("--flow-minutes", type=float, default=35.0)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    checkpoint = find_meta_checkpoint(args.checkpoint)
    meta = load_checkpoint(checkpoint, "meta", only=("E", "G"))
    net, train_ratio = train_probe(args.flow_dataset, args.flow_minutes) if args.flow_dataset else (None, None)
    split = {"warp": [], "model": [], "probe": []}
    bounds = []
    for path, _source, _targets, shot, real, renderers in self_targets(meta, args.media, make_detector("dlib")):
        made = {name: render_all(renderers[name], real.points) for name in ("warp", "model")}
        if net is not None:
            n = len(real.points)
            with torch.no_grad():
                probed, _ = probe_warp(
                    net,
                    images_to_tensor(shot.crops).expand(n, -1, -1, -1),
                    images_to_tensor(np.stack([draw_sketch(p, SIZE) for p in real.points])),
                    torch.as_tensor(shot.points, dtype=torch.float32).expand(n, -1, -1),
                    torch.as_tensor(real.points, dtype=torch.float32),
                )
            made["probe"] = tensor_to_images(probed)
        for i, points in enumerate(real.points):
            box = box_of(points[48:68], SIZE, MOUTH_GROW)
            for name, frames in made.items():
                split[name].append(parts(frames[i], real.crops[i], points, box))
            bounds.append(oracles(made["warp"][i], real.crops[i], points, box))
        console.log(f"{path.name}: {len(real.points)} targets")
    warp = np.mean(split["warp"], 0)
    results = {"machine": machine(), "checkpoint": str(checkpoint), "targets": len(bounds)}
    for name in ("warp", "model", "probe"):
        if split[name]:
            box, inner, lips, skin = np.mean(split[name], 0)
            results[name] = {"box": box, "inner_mouth": inner, "lips": lips, "skin": skin, "over_warp": box / warp[0]}
            console.log(
                f"{name}: mouth box L1 {box:.4f} ({box / warp[0]:.3f}x the warp's) = inner mouth {inner:.4f} "
                f"+ lips {lips:.4f} + skin {skin:.4f}"
            )
    for key in ("real_inner_mouth", "colour_fit", "flow_aligned"):
        value = float(np.mean([b[key] for b in bounds]))
        results[f"oracle_{key}"] = {"box": value, "over_warp": value / warp[0]}
        console.log(f"oracle {key}: {value:.4f} = {value / warp[0]:.3f}x the warp's")
    results["flow_px_mean"] = float(np.mean([b["flow_px"] for b in bounds]))
    if train_ratio is not None:
        results["probe_train_ratio"] = train_ratio
        console.log(f"flow probe on its training pairs: {train_ratio:.3f}x the warp's weighted L1")
    (args.out / "mouth_bounds.json").write_text(json.dumps(results, indent=2) + "\n")
    console.log(f"figures -> {args.out / 'mouth_bounds.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
