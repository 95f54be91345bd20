"""The networks: shapes, spectral norm, AdaIN, gradients of the full E/G loss, person mode."""

import pytest
import torch
from conftest import set_attention_gammas
from torch import nn
from torch.nn.utils import parametrize

from fsth.config import ModelConfig, TrainConfig
from fsth.losses import adversarial_loss, generator_loss
from fsth.models import (
    VGG19,
    ContentNetworks,
    Discriminator,
    Embedder,
    Generator,
    VGGFace,
    count_parameters,
    person_discriminator,
    person_generator,
)
from fsth.models.layers import adain


def _check_forward(cfg: ModelConfig, batch: int) -> tuple[nn.Module, nn.Module, nn.Module]:
    torch.manual_seed(0)
    n = cfg.image_size
    x, y = torch.rand(batch, 3, n, n) * 2 - 1, torch.rand(batch, 3, n, n) * 2 - 1
    E, G, D = Embedder(cfg), Generator(cfg), Discriminator(cfg, num_videos=5)
    with torch.no_grad():
        e = E(x, y)
        x_hat = G(y, e)
        score, feats = D(x_hat, y, torch.arange(batch) % 5)
    assert e.shape == (batch, cfg.embedding_dim)
    assert (e >= 0).all() if cfg.embedder_relu else (e < 0).any()  # sum pooling (then a ReLU if asked)
    assert x_hat.shape == (batch, 3, n, n) and x_hat.abs().max() <= 1
    assert score.shape == (batch,)
    # one activation per residual block of D: the down blocks plus the extra block at min_size
    assert len(feats) == len(cfg.disc_sizes()) + 1
    assert [f.shape[-1] for f in feats] == cfg.disc_sizes() + [cfg.min_size]
    return E, G, D


def test_forward_shapes_tiny(tiny):
    _check_forward(tiny, batch=2)


def test_forward_shapes_and_parameter_counts_paper256():
    E, G, D = _check_forward(ModelConfig.preset("paper256"), batch=1)
    # The paper: embedder 15 M, generator 38 M, convolutional part of the discriminator 20 M parameters.
    assert 13e6 < count_parameters(E) < 16e6
    assert 36e6 < count_parameters(G) < 40e6
    assert 18e6 < count_parameters(D) - D.W.weight.numel() < 21e6


def test_embed_shots_is_the_mean_embedding(tiny, frames):
    E = Embedder(tiny).eval()  # in training mode each forward also steps spectral norm's power iteration
    x, y = frames
    e_hat = E.embed_shots(x[None], y[None])  # one episode of K = 2 shots
    assert torch.allclose(e_hat[0], E(x, y).mean(0), atol=1e-5)


def test_spectral_norm_on_every_conv_and_linear(tiny):
    nets = {"E": Embedder(tiny), "G": Generator(tiny), "D": Discriminator(tiny, num_videos=3)}
    checked = 0
    for net_name, net in nets.items():
        for name, m in net.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                assert parametrize.is_parametrized(m, "weight"), f"{net_name}.{name} has no spectral norm"
                assert type(m.parametrizations.weight[0]).__name__ == "_SpectralNorm"
                checked += 1
    assert checked > 50
    assert parametrize.is_parametrized(nets["G"].P, "weight")


def test_adain_output_has_the_given_mean_and_std():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 16, 16) * 3 + 5
    gamma = torch.tensor([[0.5, 1.0, 2.0, 3.0], [1.5, 0.25, 1.0, 4.0]])
    beta = torch.tensor([[-1.0, 0.0, 1.0, 2.0], [0.5, -0.5, 3.0, 0.0]])
    out = adain(x, gamma, beta)
    assert torch.allclose(out.mean(dim=(2, 3)), beta, atol=1e-4)
    assert torch.allclose(out.std(dim=(2, 3), unbiased=False), gamma, atol=1e-3)
    # the shared form (one psi for the whole batch, the inference path) gives the same as per-sample
    shared = adain(x, gamma[0], beta[0])
    assert torch.allclose(shared, adain(x, gamma[:1].expand(2, 4), beta[:1].expand(2, 4)), atol=1e-5)


def _random_content_nets() -> ContentNetworks:
    torch.manual_seed(1)
    return ContentNetworks(VGG19(), VGGFace())


def test_every_embedder_and_generator_parameter_gets_gradient_from_the_full_loss(tiny, frames):
    torch.manual_seed(0)
    E, G, D = Embedder(tiny), Generator(tiny), Discriminator(tiny, num_videos=4)
    set_attention_gammas(E, G, D)
    x, y = frames
    video_idx = torch.tensor([1, 3])
    # an episode: K = 2 shots per video for the embedder, one target frame each
    e_hat = E.embed_shots(x.flip(0)[:, None].expand(2, 2, -1, -1, -1), y[:, None].expand(2, 2, -1, -1, -1))
    x_hat = G(y, e_hat)
    score_fake, feats_fake = D(x_hat, y, video_idx)
    _, feats_real = D(x, y, video_idx)
    terms = generator_loss(
        TrainConfig(),
        x_hat,
        x,
        score_fake,
        feats_fake,
        feats_real,
        content_nets=_random_content_nets(),
        W_rows=D.W_rows(video_idx),
        e_hat=e_hat,
    )
    assert set(terms) == {"content_vgg19", "content_vggface", "adv", "fm", "match", "total"}
    terms["total"].backward()
    for net_name, net in (("E", E), ("G", G)):
        for name, p in net.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{net_name}.{name} gets no gradient"
    assert D.W.weight.grad is not None  # the match term reaches the batch's rows of W


def test_feature_matching_uses_every_discriminator_activation(tiny, frames):
    torch.manual_seed(0)
    D = Discriminator(tiny, num_videos=2)
    x, y = frames
    x_hat = (x * 0.5).requires_grad_()
    score_fake, feats_fake = D(x_hat, y, torch.tensor([0, 1]))
    _, feats_real = D(x, y, torch.tensor([0, 1]))
    for f in feats_fake:
        f.retain_grad()
    adversarial_loss(score_fake, feats_fake, feats_real, weight_fm=10.0)["fm"].backward()
    for i, f in enumerate(feats_fake):
        assert f.grad is not None and f.grad.abs().sum() > 0, f"D activation {i} not used by feature matching"
    assert x_hat.grad.abs().sum() > 0


def test_person_networks_start_out_equal_to_the_meta_networks(tiny, frames):
    torch.manual_seed(0)
    E, G, D = Embedder(tiny), Generator(tiny), Discriminator(tiny, num_videos=3)
    set_attention_gammas(G, D)
    x, y = frames
    e_hat = E.embed_shots(x[None], y[None])[0].detach()  # (D,)
    G_prime, D_prime = person_generator(G, e_hat), person_discriminator(D, e_hat)
    assert not hasattr(G_prime, "P") and not hasattr(D_prime, "W")
    with torch.no_grad():
        D.W.weight[2] = e_hat  # a training video whose W_i is exactly this e_hat
    for net in (G, D, G_prime, D_prime):
        net.eval()
    with torch.no_grad():
        # equal up to float rounding: one shared psi' takes the fused AdaIN kernel, a batch of psi the other
        assert torch.allclose(G_prime(y), G(y, e_hat.expand(2, -1)), atol=1e-5)
        assert torch.equal(G_prime(y), G(y, e_hat))
        score, feats = D(x, y, torch.tensor([2, 2]))
        score_prime, feats_prime = D_prime(x, y)
    assert torch.allclose(score_prime, score, rtol=1e-5, atol=1e-4)
    assert all(torch.equal(a, b) for a, b in zip(feats, feats_prime))
    # psi' and w' are parameters of their own, trained directly
    G_prime.train(), D_prime.train()
    score, _ = D_prime(G_prime(y), y)
    score.sum().backward()
    assert G_prime.psi.grad.abs().sum() > 0 and D_prime.w_prime.grad.abs().sum() > 0
    assert torch.equal(D_prime.w_prime.detach(), D.w0.detach() + e_hat)


def test_person_generator_leaves_the_meta_generator_unchanged(tiny):
    G = Generator(tiny).train()
    before = {k: v.clone() for k, v in G.state_dict().items()}
    person_generator(G, torch.rand(tiny.embedding_dim))
    assert all(torch.equal(before[k], v) for k, v in G.state_dict().items())
    with pytest.raises(ValueError, match="e_hat must have shape"):
        person_generator(G, torch.rand(2, tiny.embedding_dim))
