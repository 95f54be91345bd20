"""Embedding: K shots of a new person -> e_hat, the mean of the meta embedder's outputs (feed-forward, no training).

Stage: few-shot use (``fsth embed``, ``fsth animate`` with photos) and evaluation. In: the meta checkpoint's
embedder E and ``Shots`` (crops and landmark images at model size). Out: e_hat (D,) float32 on the CPU; saved as a
checkpoint of kind ``embedding`` together with the shots' landmarks in crop pixels (which later commands use as
the source face's shape), the crop policy and landmark backend of the meta checkpoint, and which meta checkpoint
made it (an e_hat only means something to the generator that was trained with that embedder).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch

from fsth import console
from fsth.checkpoint import Checkpoint, save_checkpoint
from fsth.fewshot.shots import Shots

EMBED_BATCH = 8  # shots per embedder pass: memory stays bounded for K = 32 at 256x256


def embed(E: torch.nn.Module, shots: Shots, device: torch.device | str | None = None) -> torch.Tensor:
    """e_hat = (1/K) sum_k E(x_k, y_k) over the shots: (D,) float32, on the CPU. E is used in eval mode."""
    device = torch.device(device) if device is not None else next(E.parameters()).device
    training = E.training
    E.eval()
    total = None
    with torch.inference_mode():
        for start in range(0, len(shots), EMBED_BATCH):
            x, y = shots.select(slice(start, start + EMBED_BATCH)).tensors(device)  # (B, 3, S, S) each
            e = E.to(device)(x, y).float().sum(dim=0)  # (D,)
            total = e if total is None else total + e
    E.train(training)
    return (total / len(shots)).cpu()


def fingerprint(path: str | os.PathLike) -> str:
    """A short identity of a checkpoint file: sha256 of its size and first MiB (header, config, first tensors)."""
    path = Path(path)
    digest = hashlib.sha256(str(path.stat().st_size).encode())
    with open(path, "rb") as f:
        digest.update(f.read(1 << 20))
    return digest.hexdigest()[:16]


def provenance(meta: Checkpoint) -> dict:
    """What an embedding or person file records about the meta checkpoint it came from."""
    return {"meta_checkpoint": str(meta.path), "meta_fingerprint": fingerprint(meta.path), "meta_step": meta.step}


def check_provenance(person: Checkpoint, meta: Checkpoint) -> None:
    """Warn when ``person`` (an embedding) was made with another meta checkpoint than ``meta``."""
    made_with = person.meta.get("meta_fingerprint")
    if made_with and made_with != fingerprint(meta.path):
        console.warn(
            f"{person.path} was made with meta checkpoint {person.meta.get('meta_checkpoint')}, not {meta.path}: "
            "its e_hat only fits the generator trained with the embedder that made it"
        )


def shot_tensors(shots: Shots, cfg) -> dict[str, torch.Tensor]:
    """What person files keep of the shots: their landmarks (K, 68, 2) in crop pixels (the face retargeting keeps)
    and, for a warp-guided model, the crops (K, S, S, 3) uint8 (what its generator warps)."""
    out = {"landmarks": torch.from_numpy(np.asarray(shots.points, np.float32))}
    if cfg is not None and cfg.warp:
        out["crops"] = torch.from_numpy(np.ascontiguousarray(shots.crops, np.uint8))
    return out


def save_embedding(path: str | os.PathLike, e_hat: torch.Tensor, shots: Shots, meta: Checkpoint) -> Path:
    """Write an ``embedding`` checkpoint: e_hat, the shots' landmarks (K, 68, 2) in crop pixels (and their crops
    for a warp-guided model), and where they came from; with the meta checkpoint's config, crop policy and
    landmark backend."""
    return save_checkpoint(
        path,
        "embedding",
        {"e_hat": e_hat.float(), **shot_tensors(shots, meta.config)},
        meta.config,
        crop_policy=meta.crop_policy,
        landmark_backend=meta.landmark_backend,
        shots=list(shots.sources),
        **provenance(meta),
    )
