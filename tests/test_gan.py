"""One GAN step (fsth.gan), shared by meta-learning and fine-tuning: what each half may and may not change."""

from __future__ import annotations

import pytest
import torch

from fsth import gan
from fsth.config import TrainConfig
from fsth.episodes import ModelInput
from fsth.fewshot.finetune import finetune_step
from fsth.models import PersonDiscriminator, PersonGenerator
from fsth.train import EmbedGenerate, Trainer, build_training, train_step

VIDEOS = 6


def _setup(tiny, weight_match: float = 10.0, d_steps: int = 1):
    torch.manual_seed(0)
    cfg = TrainConfig(content_loss=False, shots=2, weight_match=weight_match, d_steps_per_g_step=d_steps)
    nets, optimizers = build_training(tiny, cfg, VIDEOS, torch.device("cpu"))
    return cfg, nets, optimizers


def _batch(frames, tiny):
    x, y = frames  # (2, 3, S, S)
    return ModelInput(
        x[:, None].expand(-1, 2, -1, -1, -1),
        y[:, None].expand(-1, 2, -1, -1, -1),
        x.flip(-1),
        y,
        torch.tensor([1, 4]),
        None,
        None,
    )


def _dense(D):
    return {k: v.detach().clone() for k, v in D.named_parameters() if k != "W.weight"}


def _eg_update(cfg, nets, optimizers, batch):
    """The E/G half of a meta-learning step, as train_step runs it."""
    EG = EmbedGenerate(nets["E"], nets["G"])
    e_hat, x_hat = EG(batch.shots_x, batch.shots_y, batch.y)
    terms = gan.g_objective(nets["D"], cfg, x_hat, batch.x, batch.y, batch.video, e_hat=e_hat)
    gan.step(terms["total"], (optimizers["EG"], optimizers["W"]), nets["D"])
    return terms


def test_the_eg_update_leaves_ds_dense_weights_and_moves_only_the_batchs_rows_of_W(tiny, frames):
    cfg, nets, optimizers = _setup(tiny)
    D, G = nets["D"], nets["G"]
    dense, W, g_before = _dense(D), D.W.weight.detach().clone(), [p.detach().clone() for p in G.parameters()]
    terms = _eg_update(cfg, nets, optimizers, _batch(frames, tiny))
    assert "match" in terms
    after = _dense(D)
    assert all(torch.equal(dense[k], after[k]) for k in dense)  # no D weight moved (spectral norm's u is a buffer)
    moved = (D.W.weight.detach() != W).any(dim=1)
    assert moved.tolist() == [i in (1, 4) for i in range(VIDEOS)]  # the batch's rows moved, no other
    assert any(not torch.equal(a, b) for a, b in zip(g_before, G.parameters()))  # and G did learn
    assert all(p.requires_grad for p in D.parameters())  # D is trainable again afterwards


def test_without_the_match_term_the_eg_update_leaves_W_alone(tiny, frames):
    cfg, nets, optimizers = _setup(tiny, weight_match=0.0)
    W = nets["D"].W.weight.detach().clone()
    terms = _eg_update(cfg, nets, optimizers, _batch(frames, tiny))
    assert "match" not in terms
    assert torch.equal(nets["D"].W.weight.detach(), W)


def test_the_d_update_moves_d_and_only_the_batchs_rows(tiny, frames):
    cfg, nets, optimizers = _setup(tiny)
    D = nets["D"]
    dense, W = _dense(D), D.W.weight.detach().clone()
    x, y = frames
    out = gan.d_update(D, (optimizers["D"], optimizers["W"]), x, x.flip(-1), y, torch.tensor([1, 4]))
    assert torch.isfinite(out["hinge"]) and out["hinge"] > 0
    after = _dense(D)
    assert any(not torch.equal(dense[k], after[k]) for k in dense)
    assert (D.W.weight.detach() != W).any(dim=1).tolist() == [i in (1, 4) for i in range(VIDEOS)]


def _count_calls(module):
    calls = []
    module.register_forward_hook(lambda *_: calls.append(1))
    return calls


@pytest.mark.parametrize("d_steps", [1, 2])
def test_a_meta_step_and_a_finetune_step_call_d_once_per_half(tiny, frames, d_steps):
    """Real and fake go through D together: one call for the E/G half and one per D update, in both stages
    (fine-tuning used to call D twice per half: 6 power iterations per step instead of 3)."""
    cfg, nets, optimizers = _setup(tiny, d_steps=d_steps)
    calls = _count_calls(nets["D"])
    losses = train_step(_batch(frames, tiny), Trainer(EmbedGenerate(nets["E"], nets["G"]), nets["D"], optimizers, cfg))
    assert len(calls) == 1 + d_steps and torch.isfinite(losses["G_total"])

    G, D = PersonGenerator(tiny), PersonDiscriminator(tiny)
    calls = _count_calls(D)
    dense = {k: v.detach().clone() for k, v in D.named_parameters()}
    opt_G, opt_D = torch.optim.Adam(G.parameters(), lr=1e-3), torch.optim.Adam(D.parameters(), lr=1e-3)
    x, y = frames
    out = finetune_step(G, D, opt_G, opt_D, x, y, cfg)
    assert len(calls) == 1 + d_steps and out["disc"] > 0 and "match" not in out
    assert any(not torch.equal(dense[k], v) for k, v in D.named_parameters())  # D' learned in its own half


def test_the_g_half_gives_d_no_gradient(tiny, frames):
    """Fine-tuning's G' update: D' gets no gradient at all (its update comes from the D half only)."""
    cfg = TrainConfig(content_loss=False)
    G, D = PersonGenerator(tiny), PersonDiscriminator(tiny)
    x, y = frames
    terms = gan.g_objective(D, cfg, G(y), x, y)
    terms["total"].backward()
    assert all(p.grad is None for p in D.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in G.parameters())
