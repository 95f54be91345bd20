"""Conversion between images as users hold them and tensors as the networks take them (one place).

Images: uint8 RGB arrays (H, W, 3), or stacks (N, H, W, 3). Tensors: float (N, 3, H, W) in [-1, 1].
"""

from __future__ import annotations

import numpy as np
import torch


def as_image_batch(images, *, allow_float: bool = False) -> np.ndarray:
    """uint8 RGB (H, W, 3), (N, H, W, 3) or a list of (H, W, 3) -> one (N, H, W, 3) array.

    ``allow_float`` also accepts float images (kept as they are); anything else is a ``ValueError``.
    """
    if isinstance(images, (list, tuple)):
        images = np.stack([np.asarray(im) for im in images])
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    dtype_ok = images.dtype == np.uint8 or (allow_float and np.issubdtype(images.dtype, np.floating))
    if not dtype_ok or images.ndim != 4 or images.shape[-1] != 3:
        kind = "uint8 or float" if allow_float else "uint8"
        raise ValueError(f"expected {kind} RGB images (H, W, 3) or (N, H, W, 3), got {images.dtype} {images.shape}")
    return images


def images_to_tensor(images, device=None, dtype=torch.float32) -> torch.Tensor:
    """uint8 RGB (H, W, 3), (N, H, W, 3) or a list of (H, W, 3) -> (N, 3, H, W) in [-1, 1]."""
    images = as_image_batch(images)
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device).permute(0, 3, 1, 2)
    return x.to(dtype) / 127.5 - 1


def tensor_to_images(x: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) or (3, H, W) in [-1, 1] -> uint8 RGB (N, H, W, 3) or (H, W, 3), rounded and clipped."""
    if x.dim() not in (3, 4) or x.shape[-3] != 3:
        raise ValueError(f"expected a tensor (N, 3, H, W) or (3, H, W), got {tuple(x.shape)}")
    x = ((x.detach().float() + 1) * 127.5).round_().clamp_(0, 255).to(torch.uint8)
    return x.movedim(-3, -1).cpu().numpy()
