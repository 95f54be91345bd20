"""The losses of meta-learning and fine-tuning (the paper's section 3), as small pure functions.

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
    gradient; the generated image's do (never detach x_hat here: G would learn nothing from the term).
    """
    terms = {}
    for name, net, weight in (
        ("content_vgg19", content_nets.vgg19, weight_vgg19),
        ("content_vggface", content_nets.vggface, weight_vggface),
    ):
        with torch.no_grad():
            real = net(x)
        terms[name] = weight * l1_features(net(x_hat), real)
    return terms


def adversarial_loss(
    score_fake, feats_fake, feats_real, weight_fm: float, weight_adv: float = 1.0
) -> dict[str, torch.Tensor]:
    """L_ADV = -D(x_hat) + L_FM, with L_FM = weight_fm * sum of L1 between D's activations on the
    generated and the real frame (the real ones as constants)."""
    return {
        "adv": -weight_adv * score_fake.mean(),
        "fm": weight_fm * l1_features(feats_fake, [f.detach() for f in feats_real]),
    }


def match_loss(W_rows: torch.Tensor, e_hat: torch.Tensor, weight: float) -> torch.Tensor:
    """L_MCH = weight * ||W_i - e_hat_i||_1 (mean over the batch and the embedding's entries)."""
    return weight * F.l1_loss(e_hat, W_rows)


def mouth_weights(points: torch.Tensor, size: int) -> torch.Tensor:
    """A Gaussian (B, 1, S, S) around each target's mouth (the centre of points 48-67, sigma 0.6 of the mouth's
    width), 1 at its centre: where the warp alone cannot open a mouth."""
    from fsth.landmarks.parts import MOUTH

    mouth = points[:, MOUTH]  # (B, 20, 2)
    centre = mouth.mean(dim=1)  # (B, 2)
    sigma = 0.6 * (mouth[..., 0].amax(1) - mouth[..., 0].amin(1)).clamp_min(2.0)  # (B,)
    axis = torch.arange(size, device=points.device, dtype=torch.float32)
    dx = (axis[None, :] - centre[:, :1]) / sigma[:, None]  # (B, S)
    dy = (axis[None, :] - centre[:, 1:]) / sigma[:, None]
    return torch.exp(-0.5 * (dy[:, :, None] ** 2 + dx[:, None, :] ** 2))[:, None]


def pixel_loss(
    cfg: TrainConfig, x_hat: torch.Tensor, x: torch.Tensor, points: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    """The pixel terms (off in the paper's objective): ``l1`` = weight_l1 |x_hat - x|, ``ssim`` = weight_ssim
    (1 - SSIM), ``mouth`` = weight_mouth * the L1 weighted by ``mouth_weights`` of the target's landmarks
    ``points`` (B, 68, 2) in pixels. x_hat, x: (B, 3, S, S) in [-1, 1]."""
    terms = {}
    if cfg.weight_l1:
        terms["l1"] = cfg.weight_l1 * F.l1_loss(x_hat, x)
    if cfg.weight_ssim:
        from pytorch_msssim import ssim

        with torch.autocast(x.device.type, enabled=False):  # its variances cancel badly in bf16 (-inf seen)
            score = ssim((x_hat.float() + 1) / 2, (x.float() + 1) / 2, data_range=1.0, size_average=True)
        terms["ssim"] = cfg.weight_ssim * (1 - score)
    if cfg.weight_mouth:
        if points is None:
            raise ValueError("weight_mouth needs the target's landmarks")
        w = mouth_weights(points, x.shape[-1])
        terms["mouth"] = cfg.weight_mouth * ((x_hat - x).abs() * w).sum() / (w.sum() * x.shape[1]).clamp_min(1.0)
    return terms


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
    points: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """The E/G objective L_CNT + L_ADV (+ L_MCH when W_rows and e_hat are given; fine-tuning has none), plus the
    pixel terms that ``cfg`` switches on (``pixel_loss``; ``points``: the target's landmarks, for ``mouth``).

    Returns the named terms (``content_vgg19``, ``content_vggface``, ``adv``, ``fm``, ``match``, ``l1``, ``ssim``,
    ``mouth``) and their sum as ``total``. ``content_nets`` must be given when ``cfg.content_loss`` is on.
    """
    terms: dict[str, torch.Tensor] = {}
    if cfg.content_loss:
        if content_nets is None:
            raise ValueError("cfg.content_loss is on but no content networks were given")
        terms.update(content_loss(x_hat, x, content_nets, cfg.weight_vgg19, cfg.weight_vggface))
    terms.update(adversarial_loss(score_fake, feats_fake, feats_real, cfg.weight_fm, cfg.weight_adv))
    terms.update(pixel_loss(cfg, x_hat, x, points))
    if W_rows is not None and e_hat is not None:
        terms["match"] = match_loss(W_rows, e_hat, cfg.weight_match)
    terms["total"] = sum(terms.values())
    return terms
