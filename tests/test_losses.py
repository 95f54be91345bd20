"""The loss functions: known values, gradients, and the content switch being reported."""

import pytest
import torch

import fsth.losses as losses
from fsth.config import TrainConfig
from fsth.models import VGG19, ContentNetworks, VGGFace


def test_hinge_loss_values():
    real = torch.tensor([2.0, 0.5])
    fake = torch.tensor([-3.0, 0.0])
    # max(0, 1 - real) = [0, 0.5] -> 0.25; max(0, 1 + fake) = [0, 1] -> 0.5
    assert losses.discriminator_hinge_loss(real, fake).item() == pytest.approx(0.75)


def test_match_loss_is_weighted_mean_l1():
    W = torch.zeros(2, 4)
    e_hat = torch.tensor([[1.0, -1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 4.0]])
    assert losses.match_loss(W, e_hat, weight=80.0).item() == pytest.approx(80.0 * 8 / 8)


def test_adversarial_loss_terms():
    feats_real = [torch.zeros(1, 2, 2, 2), torch.ones(1, 3)]
    feats_fake = [torch.full((1, 2, 2, 2), 0.5), torch.ones(1, 3) * 3]
    terms = losses.adversarial_loss(torch.tensor([1.0, 3.0]), feats_fake, feats_real, weight_fm=10.0)
    assert terms["adv"].item() == pytest.approx(-2.0)
    assert terms["fm"].item() == pytest.approx(10.0 * (0.5 + 2.0))


def test_content_loss_is_zero_for_equal_images_and_has_gradient_otherwise():
    torch.manual_seed(0)
    nets = ContentNetworks(VGG19(), VGGFace())
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    same = losses.content_loss(x, x, nets, 1e-2, 2e-3)
    assert all(v.item() == 0 for v in same.values())
    x_hat = (x * 0.5).requires_grad_()
    terms = losses.content_loss(x_hat, x, nets, 1e-2, 2e-3)
    assert set(terms) == {"content_vgg19", "content_vggface"} and all(v.item() > 0 for v in terms.values())
    sum(terms.values()).backward()
    assert x_hat.grad.abs().sum() > 0
    assert all(p.grad is None for p in nets.vgg19.parameters())  # frozen


def test_content_switched_off_has_no_content_terms(capsys):
    cfg = TrainConfig(content_loss=False)
    feats = [torch.rand(1, 4)]
    x = torch.rand(1, 3, 8, 8)
    terms = losses.generator_loss(cfg, x, x, torch.tensor([0.5]), feats, feats)
    assert "content_vgg19" not in terms and "content_vggface" not in terms
    assert set(terms) == {"adv", "fm", "total"}
    assert capsys.readouterr().err == ""  # the loading of the content networks says it, once (test_train, test_cli_*)
    with pytest.raises(ValueError, match="no content networks"):
        losses.generator_loss(TrainConfig(), x, x, torch.tensor([0.5]), feats, feats)
