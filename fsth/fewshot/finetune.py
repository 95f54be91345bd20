"""Fine-tuning: the meta networks specialised to one person on its T shots (the paper's section 3).

Stage: few-shot use (``fsth finetune``, ``fsth animate --finetune-steps``) and evaluation. In: the meta
checkpoint's G and D, the person's e_hat (``fsth.fewshot.embed``) and their ``Shots``. Out: G' and D'
(``FinetuneResult``), saved as a checkpoint of kind ``person``: everything ``fsth animate`` needs to render that person.

As the paper does: G' starts from G with its own AdaIN coefficients psi' = P e_hat (P is no longer used), D' from
D with w' = w0 + e_hat and b' = b (no W); then both are trained on the shots with the meta-learning losses
without the embedding match term: G' minimises L_CNT + L_ADV (adversarial score and feature matching), D' the
hinge loss, ``TrainConfig.d_steps_per_g_step`` D' updates per G' update, Adam with the meta-learning rates.
The default length is ``TrainConfig.finetune_epochs`` (40) passes over the shots.

Each step: a batch of shots (an endless stream of random permutations, so every epoch sees every shot once),
x_hat = G'(y); the D' updates on (x, x_hat); then one G' update on L_CNT + L_ADV against the updated D' (the order
of ``fsth.gan``, as meta-learning). Ctrl-C ends the loop after the current step and returns what it has
(``interrupted``); the caller saves it.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from rich.progress import TextColumn

from fsth import console, gan
from fsth.checkpoint import Checkpoint, save_checkpoint
from fsth.config import TrainConfig
from fsth.errors import CheckpointError, InputError
from fsth.fewshot.options import check_length
from fsth.fewshot.shots import Shots
from fsth.models import PersonDiscriminator, PersonGenerator, person_discriminator, person_generator


@dataclass
class FinetuneResult:
    G: PersonGenerator  # G' (training mode, on the device it was trained on)
    D: PersonDiscriminator  # D'
    steps: int  # steps done
    planned: int  # steps asked for
    batch_size: int
    content_loss: bool  # was L_CNT part of G's objective
    losses: dict[str, float] = field(default_factory=dict)  # the last step's named terms, and "disc" for D'
    seconds: float = 0.0

    @property
    def interrupted(self) -> bool:
        return self.steps < self.planned


def plan_steps(
    num_shots: int,
    batch_size: int,
    *,
    steps: int | None = None,
    epochs: float | None = None,
    cfg: TrainConfig,
) -> int:
    """Number of steps: ``steps`` if given, else ``epochs`` (default ``cfg.finetune_epochs``: the model's
    fine-tuning configuration, ``TrainConfig.for_model``) passes over the shots in batches of ``batch_size``. Not
    both (``check_length``)."""
    check_length(steps, epochs)
    if steps is not None:
        return steps
    epochs = cfg.finetune_epochs if epochs is None else epochs
    return max(1, math.ceil(epochs * num_shots / batch_size))


def person_networks(
    source: Checkpoint, e_hat: torch.Tensor | None = None, device=None
) -> tuple[PersonGenerator, PersonDiscriminator]:
    """G', D' to fine-tune: from a ``meta`` checkpoint and the person's e_hat (psi' = P e_hat, w' = w0 + e_hat),
    or from a ``person`` checkpoint that holds D' (to continue fine-tuning)."""
    if source.kind == "person":
        if "D" not in {k.split(".")[0] for k in source.shapes}:
            raise CheckpointError(
                f"{source.path}: this person checkpoint holds no discriminator D'; "
                "fine-tune from the meta checkpoint instead"
            )
        return source.generator(device), source.discriminator(device)
    if e_hat is None:
        raise ValueError("fine-tuning from a meta checkpoint needs the person's e_hat")
    G = person_generator(source.generator(device), e_hat)
    if "D" not in {k.split(".")[0] for k in source.shapes}:  # the shipped default model holds E and G only
        console.debug(f"{source.path} holds no discriminator: D' starts from new weights")
        D = PersonDiscriminator(source.config).to(device)
        with torch.no_grad():
            D.w_prime.copy_(e_hat.to(D.w_prime))
        return G, D
    return G, person_discriminator(source.discriminator(device), e_hat)


def _batches(num_shots: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Endless shot indices in batches: random permutations one after another (one per epoch)."""
    stream = np.empty(0, int)
    while True:
        while len(stream) < batch_size:
            stream = np.concatenate([stream, rng.permutation(num_shots)])
        yield stream[:batch_size]
        stream = stream[batch_size:]


def finetune_step(
    G, D, opt_G, opt_D, x, y, cfg: TrainConfig, content_nets=None, warped=None, points=None
) -> dict[str, float]:
    """One fine-tuning step on shots x, y (B, 3, S, S), with ``fsth.gan``'s halves of a GAN step in its order (as
    meta-learning): the D' updates, then a G' update on L_CNT + L_ADV (+ the pixel terms ``cfg`` switches on;
    ``points`` (B, 68, 2): the shots' landmarks) against the updated D'. ``warped`` (B, 3, S, S): what a
    warp-guided G' takes (``warp_sources``). Returns the named loss terms (G's and ``disc``, D's hinge loss at its
    last update)."""
    x_hat = G(y, warped)  # (B, 3, S, S)
    d = gan.d_update(D, [opt_D], x, x_hat, y, steps=cfg.d_steps_per_g_step)
    terms = gan.g_objective(D, cfg, x_hat, x, y, content_nets=content_nets, points=points)
    gan.step(terms["total"], [opt_G])
    out = {name: float(value.detach()) for name, value in terms.items()}
    out["disc"] = float(d["hinge"])
    return out


def warp_sources(x: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """For a warp-guided G': per shot x (K, 3, S, S) with landmarks ``points`` (K, 68, 2), taken as a target, the
    nearest *other* shot warped to its landmarks (the shot itself when there is only one): (K, 3, S, S)."""
    from fsth.models.warp import nearest_shot, warp

    k = len(x)
    if k == 1:
        return x.clone()
    others = torch.stack([torch.cat([points[:i], points[i + 1 :]]) for i in range(k)])  # (K, K - 1, 68, 2)
    pick = nearest_shot(others, points)
    source = torch.where(pick >= torch.arange(k, device=x.device), pick + 1, pick)  # index among all shots
    with torch.no_grad():
        return warp(x[source], points[source], points)


def finetune(
    G: PersonGenerator,
    D: PersonDiscriminator,
    shots: Shots,
    steps: int,
    cfg: TrainConfig | None = None,
    *,
    content_nets=None,
    batch_size: int = 1,
    device=None,
    seed: int = 0,
    label: str = "fine-tuning",
) -> FinetuneResult:
    """Train G' and D' on ``shots`` for ``steps`` steps (module docstring), with a progress bar showing the
    losses. ``cfg``: by default G's model's (``TrainConfig.for_model``). ``content_nets`` must be given when
    ``cfg.content_loss`` is on (``fsth.models.load_content_networks``). Ctrl-C stops after the current step; the
    result then has fewer ``steps`` than ``planned``."""
    cfg = cfg if cfg is not None else TrainConfig.for_model(G.cfg)
    device = torch.device(device) if device is not None else next(G.parameters()).device
    G, D = G.to(device).train(), D.to(device).train()
    batch_size = min(batch_size, len(shots))
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr_EG, betas=cfg.adam_betas)
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.lr_D, betas=cfg.adam_betas)
    x_all, y_all = shots.tensors(device)  # (K, 3, S, S) each
    points_all = torch.from_numpy(np.asarray(shots.points, np.float32)).to(device)
    warped_all = warp_sources(x_all, points_all) if G.cfg.warp else None
    batches = _batches(len(shots), batch_size, np.random.default_rng(seed))
    result = FinetuneResult(G, D, 0, steps, batch_size, cfg.content_loss)
    start = time.perf_counter()
    with console.progress(TextColumn("{task.fields[losses]}")) as bar:
        task = bar.add_task(label, total=steps, losses="")
        try:
            for _ in range(steps):
                idx = torch.from_numpy(next(batches)).to(device)
                warped = warped_all[idx] if warped_all is not None else None
                result.losses = finetune_step(
                    G, D, opt_G, opt_D, x_all[idx], y_all[idx], cfg, content_nets, warped, points_all[idx]
                )
                result.steps += 1
                bar.update(task, advance=1, losses=format_losses(result.losses))
        except KeyboardInterrupt:
            console.warn(f"{label}: interrupted after {result.steps} of {steps} steps")
    result.seconds = time.perf_counter() - start
    return result


def format_losses(losses: dict[str, float]) -> str:
    """``G 1.23 (adv .. fm ..) D 0.98`` for the progress bar."""
    parts = " ".join(f"{k} {v:.3g}" for k, v in losses.items() if k not in ("total", "disc"))
    return f"G {losses.get('total', float('nan')):.3g} ({parts}) D {losses.get('disc', float('nan')):.3g}"


def save_person(
    path: str | os.PathLike,
    result: FinetuneResult,
    shots: Shots,
    e_hat: torch.Tensor,
    source: Checkpoint,
    cfg: TrainConfig,
) -> Path:
    """Write a ``person`` checkpoint: G' and D', the shots' landmarks (K, 68, 2) in crop pixels (the source face
    for retargeting), e_hat, the crop policy and landmark backend of ``source`` (the meta or person checkpoint
    fine-tuning started from) and how it was fine-tuned. A G' that diverged (NaN or infinite weights) is refused
    and nothing is written."""
    from fsth.fewshot.embed import provenance, shot_tensors

    if not all(bool(torch.isfinite(p).all()) for p in result.G.parameters()):
        raise InputError(
            f"fine-tuning diverged: G' holds NaN or infinite weights after {result.steps} steps; "
            f"{path} was not written (try fewer --steps, or the content loss)"
        )
    previous = source.step if source.kind == "person" and source.step else 0
    origin = (
        provenance(source)
        if source.kind == "meta"
        else {k: source.meta.get(k) for k in ("meta_checkpoint", "meta_fingerprint", "meta_step")}
    )
    return save_checkpoint(
        path,
        "person",
        {"G": result.G, "D": result.D, "e_hat": e_hat.float(), **shot_tensors(shots, source.config)},
        source.config,
        step=previous + result.steps,
        crop_policy=source.crop_policy,
        landmark_backend=source.landmark_backend,
        shots=list(shots.sources),
        finetune={
            "steps": result.steps,
            "planned": result.planned,
            "batch_size": result.batch_size,
            "content_loss": result.content_loss,
            "lr_G": cfg.lr_EG,
            "lr_D": cfg.lr_D,
            "seconds": round(result.seconds, 1),
        },
        **origin,
    )
