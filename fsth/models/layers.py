"""Building blocks shared by the embedder E, the generator G and the discriminator D.

BigGAN-style pre-activation residual blocks (down, same-size, up), AdaIN, instance norm and SAGAN-style
self-attention, with spectral norm on every convolution and linear layer (``sn``). Notation of the paper:
the AdaIN coefficients of the whole generator form one vector psi; each AdaIN layer of C channels takes
2C entries of it, ``(gamma - 1, beta)``, so that psi = 0 is the identity affine map.

Instance norm is computed as ``group_norm`` with one group per channel: the same statistics (per sample
and channel, biased variance, eps 1e-5) with a fast channels_last kernel on CPU, which the inference
form of the generator relies on.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

EPS = 1e-5  # instance-norm / AdaIN epsilon


def sn(module: nn.Module) -> nn.Module:
    """Spectral normalisation of ``module.weight`` (one power iteration per training forward)."""
    return spectral_norm(module)


def conv3x3(c_in: int, c_out: int) -> nn.Module:
    return sn(nn.Conv2d(c_in, c_out, 3, padding=1))


def conv1x1(c_in: int, c_out: int) -> nn.Module:
    return sn(nn.Conv2d(c_in, c_out, 1))


def _instance_norm(x: torch.Tensor, weight=None, bias=None) -> torch.Tensor:
    """Per-(sample, channel) normalisation of x (B, C, H, W), then the per-channel affine map if given.

    On CPU the channels_last bf16 kernel of group_norm is very slow below 32x32 (about 50 times the contiguous
    kernel's time at 512 x 16 x 16 in torch 2.13): there the contiguous kernel is used, with two cheap layout copies.
    """
    c = x.shape[1]
    if (
        x.device.type == "cpu"
        and x.shape[2] * x.shape[3] < 1024
        and not x.is_contiguous()
        and x.is_contiguous(memory_format=torch.channels_last)
    ):
        return F.group_norm(x.contiguous(), c, weight, bias, EPS).contiguous(memory_format=torch.channels_last)
    return F.group_norm(x, c, weight, bias, EPS)


def adain(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Adaptive instance norm: normalise each (sample, channel) of x to mean 0, std 1, then scale by
    gamma and shift by beta, so that channel c of the output has mean beta[c] and std |gamma[c]|.

    x: (B, C, H, W); gamma, beta: (B, C) for a per-sample psi, or (C,) when shared by the whole batch
    (one person: the fused kernel does it in one pass).
    """
    if gamma.dim() == 1:
        return _instance_norm(x, gamma.to(x.dtype), beta.to(x.dtype))
    x = _instance_norm(x)
    return torch.addcmul(beta[:, :, None, None].to(x.dtype), x, gamma[:, :, None, None].to(x.dtype))


class AdaIN(nn.Module):
    """AdaIN layer with no parameters of its own: its 2C coefficients come from a slice of psi."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.psi_size = 2 * channels  # (gamma - 1, beta)

    def forward(self, x: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        # psi: (B, 2C) or (2C,)
        gamma_minus_1, beta = psi.split(self.channels, dim=-1)
        return adain(x, 1 + gamma_minus_1, beta)


class InstanceNorm(nn.Module):
    """Instance norm with a learned (person-generic) affine map, for G's downsampling path."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _instance_norm(x, self.weight, self.bias)


def split_psi(psi: torch.Tensor, layers) -> list[torch.Tensor]:
    """Cut psi (..., sum of psi_size) into one slice per layer, in order."""
    return list(psi.split([layer.psi_size for layer in layers], dim=-1))


class SelfAttention(nn.Module):
    """Self-attention (SAGAN, in BigGAN's form): x + gamma * o(softmax(q k^T / sqrt(d)) v), with queries
    q = conv(x) (C/8 channels) at every position, keys k (C/8) and values v (C/2) max-pooled 2x2, so each
    position attends to HW/4 pooled positions (4x less work and memory than unpooled); gamma starts at 0.

    Uses ``scaled_dot_product_attention`` (fused kernels on CPU and GPU, autograd included).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.q = conv1x1(channels, channels // 8)
        self.k = conv1x1(channels, channels // 8)
        self.v = conv1x1(channels, channels // 2)
        self.o = conv1x1(channels // 2, channels)
        self.gamma = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, C, H, W) -> tokens (B, 1, L, C') for one attention head; L = HW for q, HW/4 for k and v
        tokens = lambda t: t.flatten(2).transpose(1, 2).unsqueeze(1)  # noqa: E731
        q = tokens(self.q(x))
        k = tokens(F.max_pool2d(self.k(x), 2))
        v = tokens(F.max_pool2d(self.v(x), 2))
        # The fused (flash) kernels need one head size for q, k and v: zero-padding q and k from C/8 to
        # C/2 leaves q k^T unchanged (the scale stays 1/sqrt(C/8)) and avoids the unfused fallback, which
        # materialises the whole attention matrix.
        d_qk, d_v = q.shape[-1], v.shape[-1]
        q, k = F.pad(q, (0, d_v - d_qk)), F.pad(k, (0, d_v - d_qk))
        a = F.scaled_dot_product_attention(q, k, v, scale=d_qk**-0.5)  # (B, 1, HW, C/2)
        a = a.squeeze(1).transpose(1, 2).reshape(x.shape[0], -1, *x.shape[2:])  # (B, C/2, H, W)
        return x + self.gamma * self.o(a)


class ResBlockDown(nn.Module):
    """Residual block that halves the side: [norm, ReLU,] conv3x3, [norm,] ReLU, conv3x3, avg-pool;
    shortcut: avg-pool then conv1x1 (they commute; pooling first is 4x cheaper) when widths differ.

    ``norm``: instance norm before each ReLU (G's way down) or none (E and D). ``first``: the block that
    reads the input image starts with the conv (no activation on pixels).
    """

    def __init__(self, c_in: int, c_out: int, norm: bool = False, first: bool = False):
        super().__init__()
        self.first = first
        self.norm1 = InstanceNorm(c_in) if norm and not first else nn.Identity()
        self.conv1 = conv3x3(c_in, c_out)
        self.norm2 = InstanceNorm(c_out) if norm else nn.Identity()
        self.conv2 = conv3x3(c_out, c_out)
        self.shortcut = conv1x1(c_in, c_out) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # x: (B, C_in, H, W) -> (B, C_out, H/2, W/2)
        h = x if self.first else F.relu(self.norm1(x))
        h = self.conv2(F.relu(self.norm2(self.conv1(h))))
        return F.avg_pool2d(h, 2) + self.shortcut(F.avg_pool2d(x, 2))


class ResBlock(nn.Module):
    """Same-size residual block: norm, ReLU, conv3x3, norm, ReLU, conv3x3, plus the input.

    ``adain=True``: both norms are AdaIN taking psi (G's bottleneck); otherwise no norm (D's last block).
    """

    def __init__(self, channels: int, adain: bool = False):
        super().__init__()
        self.norms = nn.ModuleList([AdaIN(channels), AdaIN(channels)]) if adain else None
        self.psi_size = sum(n.psi_size for n in self.norms) if adain else 0
        self.conv1 = conv3x3(channels, channels)
        self.conv2 = conv3x3(channels, channels)

    def forward(self, x: torch.Tensor, psi: torch.Tensor | None = None) -> torch.Tensor:
        if self.norms is None:
            h = self.conv2(F.relu(self.conv1(F.relu(x))))
        else:
            psi1, psi2 = split_psi(psi, self.norms)
            h = self.conv1(F.relu(self.norms[0](x, psi1)))
            h = self.conv2(F.relu(self.norms[1](h, psi2)))
        return x + h


class ResBlockUp(nn.Module):
    """Residual block that doubles the side, AdaIN before each ReLU (G's way up):
    AdaIN, ReLU, nearest-upsample, conv3x3, AdaIN, ReLU, conv3x3; shortcut: conv1x1 (at the low side;
    it commutes with nearest upsampling) then upsample.
    """

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.norms = nn.ModuleList([AdaIN(c_in), AdaIN(c_out)])
        self.psi_size = sum(n.psi_size for n in self.norms)
        self.conv1 = conv3x3(c_in, c_out)
        self.conv2 = conv3x3(c_out, c_out)
        self.shortcut = conv1x1(c_in, c_out) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        # x: (B, C_in, H, W) -> (B, C_out, 2H, 2W)
        psi1, psi2 = split_psi(psi, self.norms)
        h = F.interpolate(F.relu(self.norms[0](x, psi1)), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(self.norms[1](self.conv1(h), psi2)))
        return h + F.interpolate(self.shortcut(x), scale_factor=2.0, mode="nearest")


class DownPath(nn.Module):
    """A chain of ``ResBlockDown`` with self-attention after the blocks whose output side is listed.

    Returns the activation after every stage (block + its attention, if any), last one deepest: D uses
    them for feature matching, E and G the last.
    """

    def __init__(self, c_in: int, widths: list[int], sizes: list[int], attention: tuple[int, ...], norm: bool):
        super().__init__()
        self.blocks = nn.ModuleList()
        self.attention = nn.ModuleDict()
        for i, (c_out, size) in enumerate(zip(widths, sizes)):
            self.blocks.append(ResBlockDown(c_in, c_out, norm=norm, first=i == 0))
            if size in attention:
                self.attention[str(i)] = SelfAttention(c_out)
            c_in = c_out

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, block in enumerate(self.blocks):
            x = block(x)
            if str(i) in self.attention:
                x = self.attention[str(i)](x)
            feats.append(x)
        return feats


def resize(x: torch.Tensor, size: int, mode: str = "area") -> torch.Tensor:
    """x (B, C, H, W) at side ``size`` (unchanged when it already is): area averaging down, ``mode`` up."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    if size < x.shape[-1]:
        return F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(x, size=(size, size), mode=mode, align_corners=False)


def sum_pool_relu(h: torch.Tensor) -> torch.Tensor:
    """Global sum pooling over the spatial dimensions followed by ReLU: (B, C, H, W) -> (B, C)."""
    return F.relu(h.sum(dim=(2, 3)))
