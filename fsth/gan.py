"""One GAN step's two halves, shared by meta-learning (``fsth.train``) and fine-tuning (``fsth.fewshot.finetune``).

``d_update``: D's hinge-loss updates on the real frames against the generated ones (detached), with D called once
per update on both halves concatenated (spectral norm runs one power iteration per training-mode call, so real and
fake see the same normalised weights). ``g_objective``: the E/G (or G') terms against D frozen: one D call on
generated and real concatenated, D's dense weights get no gradient, and the meta discriminator's table W only
through the embedding match term L_MCH (never from -D(x_hat)). ``step`` zeroes, backpropagates and steps a set of
optimizers, averaging W's sparse gradient over the processes of a distributed run.

A step runs them in one order, in meta-learning and fine-tuning alike: first ``d_update`` on x_hat (detached), then
the generator's update on ``g_objective`` against the updated D, which has already seen this step's fake frames. A
D' that starts from new weights (the shipped model holds no D) so takes a step before G' first learns from it.

The meta discriminator takes the batch's video indices ``idx``; D' (``PersonDiscriminator``) takes none.
``D`` may be a DistributedDataParallel wrapper; D's frozen half always runs on the plain module.

The mouth's discriminator (``MouthDiscriminator``, meta-learning of a warp-guided G with
``TrainConfig.weight_mouth_adv``) takes the same two halves: ``d_update`` with ``points`` for ``idx`` (it reads
the targets' mouths from them), and ``g_objective``'s ``D_mouth``, whose score joins the terms as ``mouth_adv``.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterable

import torch
from torch import nn

from fsth.config import TrainConfig
from fsth.distributed import all_reduce_sparse_grad, plain_module
from fsth.losses import discriminator_hinge_loss, generator_loss

Autocast = Callable[[], contextlib.AbstractContextManager]


def _table(D: nn.Module) -> nn.Embedding | None:
    """The meta discriminator's per-video table W (None for D')."""
    return getattr(plain_module(D), "W", None)


def step(loss: torch.Tensor, optimizers: Iterable[torch.optim.Optimizer], D: nn.Module | None = None) -> None:
    """Zero the optimizers' gradients, backpropagate ``loss``, average W's gradient across processes (when ``D``
    has a W), and step every optimizer (SparseAdam skips W when the loss did not reach it)."""
    optimizers = list(optimizers)
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    loss.backward()
    table = _table(D) if D is not None else None
    if table is not None:
        all_reduce_sparse_grad(table.weight)
    for opt in optimizers:
        opt.step()


def d_update(
    D: nn.Module,
    optimizers: Iterable[torch.optim.Optimizer],
    x: torch.Tensor,
    x_hat: torch.Tensor,
    y: torch.Tensor,
    idx: torch.Tensor | None = None,
    *,
    steps: int = 1,
    autocast: Autocast = contextlib.nullcontext,
) -> dict[str, torch.Tensor]:
    """``steps`` hinge-loss updates of D on real ``x`` against ``x_hat`` (detached), both (B, 3, S, S) with
    landmark images ``y``; returns the last update's ``hinge`` loss and mean ``real`` / ``fake`` scores
    (detached). ``idx``: what D takes third (the meta D's video indices; the mouth's D's landmarks)."""
    optimizers = list(optimizers)
    pair, y2 = torch.cat([x, x_hat.detach()]), torch.cat([y, y])
    idx2 = torch.cat([idx, idx]) if idx is not None else None
    out: dict[str, torch.Tensor] = {}
    for _ in range(steps):
        with autocast():
            scores, _ = D(pair, y2, idx2)
        score_real, score_fake = scores.float().chunk(2)
        loss = discriminator_hinge_loss(score_real, score_fake)
        step(loss, optimizers, D)
        out = {"hinge": loss.detach(), "real": score_real.mean().detach(), "fake": score_fake.mean().detach()}
    return out


def g_objective(
    D: nn.Module,
    cfg: TrainConfig,
    x_hat: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    idx: torch.Tensor | None = None,
    *,
    e_hat: torch.Tensor | None = None,
    content_nets=None,
    points: torch.Tensor | None = None,
    autocast: Autocast = contextlib.nullcontext,
    D_mouth: nn.Module | None = None,
) -> dict[str, torch.Tensor]:
    """The generator's terms (``fsth.losses.generator_loss``) for ``x_hat`` against real ``x`` with D frozen: its
    backward gives D's dense parameters no gradient. With the meta discriminator, ``idx`` and ``e_hat``, and
    ``cfg.weight_match`` on, L_MCH(W_idx, e_hat) is in the terms and its gradient reaches W's batch rows (and E).
    With ``D_mouth`` (frozen likewise) and the targets' ``points``: ``mouth_adv`` = -weight_mouth_adv x its score
    of x_hat's mouth."""
    terms = _g_terms(D, cfg, x_hat, x, y, idx, e_hat, content_nets, points, autocast)
    if D_mouth is not None and cfg.weight_mouth_adv > 0:
        if points is None:
            raise ValueError("the mouth's discriminator needs the targets' landmarks")
        with _frozen(D_mouth) as D_m, autocast():
            score, _ = D_m(x_hat, y, points)
        terms["mouth_adv"] = -cfg.weight_mouth_adv * score.float().mean()
        terms["total"] = terms["total"] + terms["mouth_adv"]
    return terms


@contextlib.contextmanager
def _frozen(D: nn.Module):
    """D's plain module with its parameters' ``requires_grad`` off inside (as they were after)."""
    D_ = plain_module(D)
    flags = [p.requires_grad for p in D_.parameters()]
    D_.requires_grad_(False)
    try:
        yield D_
    finally:
        for p, flag in zip(D_.parameters(), flags):
            p.requires_grad_(flag)


def _g_terms(D, cfg, x_hat, x, y, idx, e_hat, content_nets, points, autocast) -> dict[str, torch.Tensor]:
    table = _table(D)
    with_match = table is not None and idx is not None and e_hat is not None and cfg.weight_match > 0
    with _frozen(D) as D_, autocast():  # the graph built below holds no path into D's weights
        idx2 = torch.cat([idx, idx]) if idx is not None else None
        scores, feats = D_(torch.cat([x_hat, x]), torch.cat([y, y]), idx2)
        feats_fake, feats_real = zip(*(f.chunk(2) for f in feats))
        W_rows = None
        if with_match:
            table.weight.requires_grad_(True)
            W_rows = table(idx)
        return generator_loss(
            cfg,
            x_hat,
            x,
            scores.float().chunk(2)[0],
            list(feats_fake),
            [f.detach() for f in feats_real],
            content_nets=content_nets,
            W_rows=W_rows,
            e_hat=e_hat,
            points=points,
        )
