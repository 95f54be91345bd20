"""Person mode, for fine-tuning on T shots of one unseen person (the paper's section 3).

In: the meta networks and the person's embedding e_hat (512,) from ``Embedder.embed_shots``. Out:
G' with psi' = P e_hat as its own parameter (P no longer used) and D' with w' = w0 + e_hat, b' = b and
no W. Both start out computing exactly what the meta networks compute for that e_hat (D: for a video
whose row W_i equals e_hat), and are then trained directly.
"""

from __future__ import annotations

import torch

from fsth.models.discriminator import Discriminator, PersonDiscriminator
from fsth.models.generator import Generator, PersonGenerator


def _single_embedding(e_hat: torch.Tensor, dim: int) -> torch.Tensor:
    e_hat = e_hat.detach()
    if e_hat.dim() == 2 and e_hat.shape[0] == 1:
        e_hat = e_hat[0]
    if e_hat.shape != (dim,):
        raise ValueError(f"e_hat must have shape ({dim},) or (1, {dim}) for one person, not {tuple(e_hat.shape)}")
    return e_hat


def person_generator(G: Generator, e_hat: torch.Tensor) -> PersonGenerator:
    """G' = G with psi' = P e_hat (computed with P's stored spectral norm; G is left unchanged)."""
    e_hat = _single_embedding(e_hat, G.cfg.embedding_dim)
    training = G.P.training
    G.P.eval()  # read P's spectral norm without a power-iteration step
    with torch.no_grad():
        psi = G.psi_hat(e_hat.to(G.P.parametrizations.weight.original))
    G.P.train(training)
    person = PersonGenerator(G.cfg)
    state = {k: v for k, v in G.state_dict().items() if not k.startswith("P.")}
    state["psi"] = psi
    person.load_state_dict(state, strict=True)
    return person.to(psi.device).train(G.training)


def person_discriminator(D: Discriminator, e_hat: torch.Tensor) -> PersonDiscriminator:
    """D' = D's trunk with w' = w0 + e_hat and b' = b."""
    e_hat = _single_embedding(e_hat, D.cfg.embedding_dim)
    person = PersonDiscriminator(D.cfg)
    state = {k: v for k, v in D.state_dict().items() if k not in ("W.weight", "w0")}
    state["w_prime"] = D.w0.detach() + e_hat.to(D.w0)
    person.load_state_dict(state, strict=True)
    return person.to(D.w0.device).train(D.training)
