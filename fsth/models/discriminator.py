"""The projection discriminator D(x, y, i; theta, W, w0, b) and its person form D'.

Stage: meta-learning (train) and fine-tuning. In: frames x and landmark images y (B, 3, H, W) in [-1, 1]
and the batch's video indices i (B,). Out: realism scores r (B,) and the activations after every
residual block (for feature matching). A trunk like the embedder's (plus one residual block at
``min_size``) gives V(x, y) = ReLU(sum-pool) in R^512; r = V^T (W_i + w0) + b.

W: one row per training video, all in one table
-------------------------------------------------
``D.W`` is an ``nn.Embedding(num_videos, 512, sparse=True)``: a forward reads only the batch's rows,
backward gives a *sparse* gradient holding only those rows, and ``torch.optim.SparseAdam`` (over
``D.W.parameters()``; ``torch.optim.Adam`` over ``D.dense_parameters()`` for the rest) updates exactly
those rows and their Adam moments; every other row stays bit-identical. ``D.W_rows(i)`` reads rows for
the match loss L_MCH = 80 ||W_i - e_hat_i||_1. No spectral norm on W: that would touch the whole table.

Under DistributedDataParallel, W is left out of DDP and its sparse gradient averaged by hand: see
``fsth.distributed`` (``exclude_from_ddp``, ``all_reduce_sparse_grad``).

The mouth's discriminator (``MouthDiscriminator``, not the paper's)
-------------------------------------------------------------------
A second, small D for the warp-guided G (``TrainConfig.weight_mouth_adv``): it sees only a square crop around the
target's mouth (``mouth_crops``: the frame and its landmark image, ``MOUTH_CROP`` px a side) and scores it real or
drawn, patch by patch. D judges the whole face at 128x128, where an opening mouth is a few pixels of it; the
mouth's hole in the warp (``fsth.models.warp.mouth_hole``) is G's to fill, and an L1 alone fills it with the mean
of mouths: a grey blur. Not conditioned on the person (no W): a mouth's inside is teeth, tongue and dark for
everyone.
"""

from __future__ import annotations

import math
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from fsth.config import ModelConfig
from fsth.models.layers import DownPath, ResBlock, resize, sn, sum_pool_relu

MOUTH_CROP = 64  # the side of the mouth's crop the mouth's discriminator sees, in pixels
MOUTH_SPAN = 1.6  # the crop spans this many mouth widths (the outer lip corners' distance)
MOUTH_WIDTHS = (32, 64, 128)  # the mouth's discriminator's channels at 32, 16 and 8 px


class _DiscriminatorTrunk(nn.Module):
    """The convolutional part V(x, y): E's architecture plus one residual block at min_size."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.down = DownPath(6, cfg.disc_widths(), cfg.disc_sizes(), cfg.attention_down, norm=False)
        self.last = ResBlock(cfg.embedding_dim)

    def features(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        # x, y: (B, 3, H, W) -> V: (B, D); feats: activation after every residual block
        feats = self.down(resize(torch.cat([x, y], dim=1), self.cfg.side))
        feats.append(self.last(feats[-1]))
        return sum_pool_relu(feats[-1]), feats


class Discriminator(_DiscriminatorTrunk):
    """The meta-learned projection discriminator with one row W_i per training video."""

    def __init__(self, cfg: ModelConfig, num_videos: int):
        super().__init__(cfg)
        d = cfg.embedding_dim
        self.W = nn.Embedding(num_videos, d, sparse=True)  # (num_videos, D)
        nn.init.normal_(self.W.weight, std=1 / math.sqrt(d))
        self.w0 = nn.Parameter(torch.zeros(d))  # (D,)
        self.b = nn.Parameter(torch.zeros(()))

    @property
    def num_videos(self) -> int:
        return self.W.num_embeddings

    def W_rows(self, video_idx: torch.Tensor) -> torch.Tensor:
        """W_i for the batch's videos: (B,) -> (B, D); its gradient is sparse."""
        return self.W(video_idx)

    def forward(self, x, y, video_idx) -> tuple[torch.Tensor, list[torch.Tensor]]:
        v, feats = self.features(x, y)
        score = (v * (self.W_rows(video_idx) + self.w0)).sum(dim=1) + self.b  # (B,)
        return score, feats

    def dense_parameters(self) -> Iterator[nn.Parameter]:
        """Every parameter but W (for a dense optimizer; W goes to SparseAdam)."""
        return (p for name, p in self.named_parameters() if name != "W.weight")


class PersonDiscriminator(_DiscriminatorTrunk):
    """D' for one person (fine-tuning): r = V^T w' + b with w' = w0 + e_hat; no W.

    Build it from a meta discriminator with ``fsth.models.person_discriminator(D, e_hat)``.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.w_prime = nn.Parameter(torch.zeros(cfg.embedding_dim))  # w': (D,)
        self.b = nn.Parameter(torch.zeros(()))

    def forward(self, x, y, video_idx=None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        v, feats = self.features(x, y)
        return v @ self.w_prime + self.b, feats


def mouth_crops(images: torch.Tensor, points: torch.Tensor, side: int = MOUTH_CROP) -> torch.Tensor:
    """Square crops (B, C, side, side) of ``images`` (B, C, S, S) around each target's mouth (landmarks ``points``
    (B, 68, 2) in pixels): centred on the lips' points (48-67), ``MOUTH_SPAN`` mouth widths a side, level with
    the image (the face's roll stays: it is small in talking heads). Differentiable in the images (bilinear)."""
    size = images.shape[-1]
    lips = points[:, 48:68].float()
    centre = lips.mean(1)  # (B, 2) pixels
    width = (points[:, 54] - points[:, 48]).float().norm(dim=-1).clamp_min(4.0)  # (B,)
    half = MOUTH_SPAN * width / size  # half the crop's side in [-1, 1] units (a side of S px is 2)
    theta = torch.zeros(len(points), 2, 3, device=images.device, dtype=torch.float32)
    theta[:, 0, 0] = theta[:, 1, 1] = half
    theta[:, :, 2] = (2 * centre + 1) / size - 1
    grid = F.affine_grid(theta, [len(points), images.shape[1], side, side], align_corners=False)
    return F.grid_sample(images.float(), grid, mode="bilinear", padding_mode="border", align_corners=False).to(
        images.dtype
    )


class MouthDiscriminator(nn.Module):
    """The mouth's discriminator (see the module docstring): strided 4x4 convolutions with spectral norm on the
    mouth's crop of the frame and of its landmark image (6 channels, ``MOUTH_CROP`` px), ``MOUTH_WIDTHS`` channels,
    a 1-channel map of patch scores at 8x8, averaged: the realism score (B,), and every layer's activations (D's
    interface, which ``gan.d_update`` unpacks; no feature matching is computed on them)."""

    def __init__(self, cfg: ModelConfig | None = None):
        super().__init__()
        layers, c = [], 6
        for width in MOUTH_WIDTHS:
            layers.append(sn(nn.Conv2d(c, width, 4, stride=2, padding=1)))
            c = width
        self.blocks = nn.ModuleList(layers)
        self.out = sn(nn.Conv2d(c, 1, 3, padding=1))

    def forward(self, x, y, points) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = torch.cat([mouth_crops(x, points), mouth_crops(y, points)], dim=1)
        feats = []
        for block in self.blocks:
            h = F.leaky_relu(block(h), 0.2)
            feats.append(h)
        return self.out(h).mean(dim=(1, 2, 3)), feats
