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
"""

from __future__ import annotations

import math
from typing import Iterator

import torch
from torch import nn

from fsth.config import ModelConfig
from fsth.models.layers import DownPath, ResBlock, resize, sum_pool_relu


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
