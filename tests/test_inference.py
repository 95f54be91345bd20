"""The inference form of G gives the training form's image within the stated tolerance."""

import numpy as np
import pytest
import torch
from conftest import set_attention_gammas
from torch.nn.utils import parametrize

from fsth.models import Generator, images_to_tensor, inference_generator, person_generator, tensor_to_images


@pytest.fixture
def generator(tiny):
    torch.manual_seed(0)
    G = Generator(tiny)
    set_attention_gammas(G)
    return G


def test_float32_inference_form_matches_within_1e_4(generator, frames, tiny):
    _, y = frames
    e_hat = torch.rand(tiny.embedding_dim) * 3
    fast = inference_generator(generator, e_hat, dtype=torch.float32)
    with torch.no_grad():
        reference = generator.eval()(y, e_hat)
    out = fast(y)
    assert out.dtype == torch.float32 and out.shape == reference.shape
    assert (out - reference).abs().max() < 1e-4
    # spectral norm folded into plain weights; the training form is left as it was
    assert not any(parametrize.is_parametrized(m) for m in fast.modules())
    assert all(parametrize.is_parametrized(m, "weight") for m in generator.modules() if isinstance(m, torch.nn.Conv2d))


def test_bfloat16_inference_form_matches_within_stated_tolerance(generator, frames, tiny):
    _, y = frames
    G_prime = person_generator(generator, torch.rand(tiny.embedding_dim) * 3)
    fast = inference_generator(G_prime, dtype=torch.bfloat16)
    with torch.no_grad():
        reference = G_prime.eval()(y)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            autocast = G_prime(y).float()
    diff = (fast(y) - reference).abs()
    assert diff.max() < 0.25 and diff.mean() < 0.03
    assert diff.mean() <= 1.25 * (autocast - reference).abs().mean()  # no error beyond bf16's own
    assert fast.body.out_conv.weight.dtype == torch.bfloat16
    assert fast.body.out_conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_inference_form_needs_the_right_inputs(generator, tiny):
    with pytest.raises(ValueError, match="needs the person's e_hat"):
        inference_generator(generator)
    e_hat = torch.zeros(tiny.embedding_dim)
    with pytest.raises(ValueError, match="pass no e_hat"):
        inference_generator(person_generator(generator, e_hat), e_hat)


def test_image_conversion_round_trip():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(2, 5, 7, 3), dtype=np.uint8)
    x = images_to_tensor(images)
    assert x.shape == (2, 3, 5, 7) and x.min() >= -1 and x.max() <= 1
    assert x[0, 0, 0, 0].item() == pytest.approx(images[0, 0, 0, 0] / 127.5 - 1)
    assert np.array_equal(tensor_to_images(x), images)
    assert np.array_equal(tensor_to_images(images_to_tensor(images[0]))[0], images[0])
    assert tensor_to_images(torch.full((3, 2, 2), 5.0)).max() == 255  # clipped
    with pytest.raises(ValueError, match="expected uint8 RGB"):
        images_to_tensor(images.astype(np.float32))
