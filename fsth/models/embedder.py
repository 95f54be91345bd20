"""The embedder E(x, y; phi): a frame and its landmark image -> an embedding e in R^embedding_dim.

Stage: meta-learning (train) and few-shot use (embed). In: frames x and landmark images y, each
(B, 3, H, W) in [-1, 1]. Out: e (B, 512). The person's embedding e_hat is the mean of e over the K shots
(``Embedder.embed_shots``). Architecture: residual downsampling blocks without normalisation, spectral
norm on every conv, self-attention at ``cfg.attention_down`` (32x32 at 256), then global sum pooling
(followed by ReLU only with ``cfg.embedder_relu``: see ``ModelConfig``; with it, meta-learning drives e to 0 for
every person).
"""

from __future__ import annotations

import torch
from torch import nn

from fsth.config import ModelConfig
from fsth.models.layers import DownPath, resize, sum_pool_relu


class Embedder(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        # concat(x, y): 6 channels, image_size -> min_size
        self.down = DownPath(6, cfg.disc_widths(), cfg.disc_sizes(), cfg.attention_down, norm=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        # x, y: (B, 3, H, W) -> e: (B, embedding_dim)
        h = self.down(resize(torch.cat([x, y], dim=1), self.cfg.side))[-1]
        return sum_pool_relu(h) if self.cfg.embedder_relu else h.sum(dim=(2, 3))

    def embed_shots(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """e_hat = (1/K) sum_k E(x_k, y_k): shots x, y (B, K, 3, H, W) -> e_hat (B, embedding_dim)."""
        b, k = x.shape[:2]
        e = self(x.flatten(0, 1), y.flatten(0, 1))  # (B*K, D)
        return e.view(b, k, -1).mean(dim=1)
