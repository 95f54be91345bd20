"""Shared fixtures: the tiny model preset and seeded networks built from it."""

import pytest
import torch

from fsth.config import ModelConfig


@pytest.fixture
def tiny() -> ModelConfig:
    return ModelConfig.preset("tiny")


@pytest.fixture
def frames(tiny):
    """A reproducible batch of 2 frames x and landmark images y, (2, 3, 64, 64) in [-1, 1]."""
    g = torch.Generator().manual_seed(0)
    size = (2, 3, tiny.image_size, tiny.image_size)
    return torch.rand(size, generator=g) * 2 - 1, torch.rand(size, generator=g) * 2 - 1


def set_attention_gammas(*nets, value: float = 0.5) -> None:
    """Self-attention starts with gamma = 0 (SAGAN), which gives its q, k, v, o convs exactly zero
    gradient until the first update; tests that check gradients set gamma as after some training."""
    for net in nets:
        for name, p in net.named_parameters():
            if name.endswith("gamma"):
                torch.nn.init.constant_(p, value)
