"""The losses of meta-learning and fine-tuning (DESIGN section 2), as small pure functions.

E and G minimise L = L_CNT + L_ADV + L_MCH; D minimises the hinge loss. Every L1 distance here is a mean
absolute difference over the elements of a tensor (summed over the listed layers), the usual reading of
the paper's L1 terms. ``generator_loss`` returns a dict of named terms plus ``"total"``, so what was
optimised is visible in logs; when the content term is switched off, its keys are absent (loading the content
networks warns about it, once per command: ``load_content_networks``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fsth.config import TrainConfig


def l1_features(feats_a: list[torch.Tensor], feats_b: list[torch.Tensor]) -> torch.Tensor:
    """Sum over layers of the mean absolute difference between two lists of activations."""
    if len(feats_a) != len(feats_b):
        raise ValueError(f"activation lists differ in length: {len(feats_a)} vs {len(feats_b)}")
    return sum(F.l1_loss(a, b) for a, b in zip(feats_a, feats_b))


def content_loss(x_hat, x, content_nets, weight_vgg19: float, weight_vggface: float) -> dict[str, torch.Tensor]:
    """L_CNT: L1 between VGG19 and VGGFace activations of the generated x_hat and the real x.

    ``content_nets``: ``fsth.models.perceptual.ContentNetworks``. The real image's activations carry no
    gradient; the generated image's do (never detach x_hat here: that was lesson 1 of DESIGN section 3).
    """
    terms = {}
    for name, net, weight in (("content_vgg19", content_nets.vgg19, weight_vgg19),
                              ("content_vggface", content_nets.vggface, weight_vggface)):
        with torch.no_grad():
            real = net(x)
        terms[name] = weight * l1_features(net(x_hat), real)
    return terms


def adversarial_loss(score_fake, feats_fake, feats_real, weight_fm: float) -> dict[str, torch.Tensor]:
    """L_ADV = -D(x_hat) + L_FM, with L_FM = weight_fm * sum of L1 between D's activations on the
    generated and the real frame (the real ones as constants)."""
    return {
        "adv": -score_fake.mean(),
        "fm": weight_fm * l1_features(feats_fake, [f.detach() for f in feats_real]),
    }


def match_loss(W_rows: torch.Tensor, e_hat: torch.Tensor, weight: float) -> torch.Tensor:
    """L_MCH = weight * ||W_i - e_hat_i||_1 (mean over the batch and the embedding's entries)."""
    return weight * F.l1_loss(e_hat, W_rows)


def discriminator_hinge_loss(score_real: torch.Tensor, score_fake: torch.Tensor) -> torch.Tensor:
    """L_DSC = max(0, 1 + D(x_hat)) + max(0, 1 - D(x)), averaged over the batch."""
    return F.relu(1 + score_fake).mean() + F.relu(1 - score_real).mean()


def generator_loss(
    cfg: TrainConfig,
    x_hat: torch.Tensor,
    x: torch.Tensor,
    score_fake: torch.Tensor,
    feats_fake: list[torch.Tensor],
    feats_real: list[torch.Tensor],
    content_nets=None,
    W_rows: torch.Tensor | None = None,
    e_hat: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The E/G objective L_CNT + L_ADV (+ L_MCH when W_rows and e_hat are given; fine-tuning has none).

    Returns the named terms (``content_vgg19``, ``content_vggface``, ``adv``, ``fm``, ``match``) and their
    sum as ``total``. ``content_nets`` must be given when ``cfg.content_loss`` is on.
    """
    terms: dict[str, torch.Tensor] = {}
    if cfg.content_loss:
        if content_nets is None:
            raise ValueError("cfg.content_loss is on but no content networks were given")
        terms.update(content_loss(x_hat, x, content_nets, cfg.weight_vgg19, cfg.weight_vggface))
    terms.update(adversarial_loss(score_fake, feats_fake, feats_real, cfg.weight_fm))
    if W_rows is not None and e_hat is not None:
        terms["match"] = match_loss(W_rows, e_hat, cfg.weight_match)
    terms["total"] = sum(terms.values())
    return terms
