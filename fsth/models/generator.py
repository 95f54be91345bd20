"""The generator G(y, e_hat; psi, P): a landmark image and a person's embedding -> a frame.

Stage: meta-learning (train), fine-tuning (``PersonGenerator``) and animation (its inference form,
``fsth.models.inference``). In: landmark images y (B, 3, H, W) in [-1, 1] and e_hat (B, 512) or (512,)
for one person. Out: x_hat (B, 3, H, W) in [-1, 1].

An image-to-image network: residual downsampling blocks with instance norm (self-attention at
``cfg.attention_down``), residual blocks at the bottleneck, residual upsampling blocks (self-attention
at ``cfg.attention_up``), then AdaIN, ReLU, conv3x3 and tanh. Every normalisation layer from the
bottleneck on is AdaIN; all their coefficients form one vector psi_hat = P e_hat, with P a learned,
person-generic matrix (spectrally normalised, like every conv). psi is laid out in forward order:
bottleneck blocks, up blocks, output layer; each AdaIN layer of C channels takes (gamma - 1, beta).

The warp-guided form (``cfg.generator == "warp"``, the shipped default model) keeps all of that and also takes
``warped`` (B, 3, H, W): the source moved to the target's landmarks (``fsth.models.warp``). Its body reads
concat(y, warped) at ``cfg.side`` (U-Net skips from each down block to the up block of the same side) and outputs
a correction and a blend mask; both are upsampled to the frame's side, the drawn picture is the warp plus the
correction, and x_hat = mask * warped + (1 - mask) * drawn. The correction and the mask's logit come from their
own 3x3 convs (``out_conv``, ``mask_conv``: no spectral norm, initialised to zero), so an untrained G returns the
warp exactly, and the picture keeps the warp's detail wherever G corrects only the colour or shading. (Drawing the
whole picture from scratch instead, behind a mask initialised near 1, made a face blurrier than the warp for the
first thousand steps on a CPU budget: the drawn picture of a 128x128 body is blurry wherever it is used); what it
learns is where the warp is wrong (an opening mouth, closing eyes, the border) and what to draw
there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from fsth.config import ModelConfig
from fsth.models.layers import AdaIN, DownPath, ResBlock, ResBlockUp, SelfAttention, conv3x3, resize, sn, split_psi

MASK_OFFSET = 0.0  # added to the mask logit: an untrained warp-guided G's mask is 0.5 (and its correction 0)


def blend(warped: torch.Tensor, drawn: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The warp-guided G's frame: mask * warped + (1 - mask) * drawn (mask (B, 1, H, W) in [0, 1])."""
    return mask * warped + (1 - mask) * drawn


class _AdaINRenderer(nn.Module):
    """G's convolutional body: renders y with given AdaIN coefficients psi. Shared by the meta generator
    (psi_hat = P e_hat) and the person generator (psi' its own parameter)."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        c_in = 6 if cfg.warp else 3  # the warp-guided G reads concat(y, warped)
        self.down = DownPath(c_in, cfg.gen_down_widths(), cfg.gen_down_sizes(), cfg.attention_down, norm=True)
        c = cfg.gen_down_widths()[-1]
        self.bottleneck = nn.ModuleList(ResBlock(c, adain=True) for _ in range(cfg.gen_bottleneck_blocks))
        self.up = nn.ModuleList()
        self.up_attention = nn.ModuleDict()
        for i, (c_out, size) in enumerate(zip(cfg.gen_up_widths(), cfg.gen_up_sizes())):
            self.up.append(ResBlockUp(c, c_out))
            if size in cfg.attention_up:
                self.up_attention[str(i)] = SelfAttention(c_out)
            c = c_out
        self.out_norm = AdaIN(c)
        if cfg.warp:  # the correction (RGB) and the blend mask's logit: plain convs, zero at first
            self.out_conv = nn.Conv2d(c, 3, 3, padding=1)
            self.mask_conv = nn.Conv2d(c, 1, 3, padding=1)
            for conv in (self.out_conv, self.mask_conv):
                nn.init.zeros_(conv.weight)
                nn.init.zeros_(conv.bias)
        else:
            self.out_conv = conv3x3(c, 3)
        self.psi_size = sum(layer.psi_size for layer in self._adain_layers())

    def _adain_layers(self) -> list[nn.Module]:
        """The modules that take a slice of psi, in the order psi is laid out."""
        return [*self.bottleneck, *self.up, self.out_norm]

    def forward(self, y: torch.Tensor, psi: torch.Tensor, warped: torch.Tensor | None = None) -> torch.Tensor:
        return self.render(y, psi, warped)

    def render(self, y: torch.Tensor, psi: torch.Tensor, warped: torch.Tensor | None = None) -> torch.Tensor:
        # y: (B, 3, H, W); psi: (B, psi_size) or (psi_size,); warped: (B, 3, H, W) for the warp-guided G
        # -> x_hat: (B, 3, H, W)
        if not self.cfg.warp:
            if warped is not None:
                raise ValueError("the paper's generator takes no warped source")
            return torch.tanh(self.body(y, psi))
        drawn, mask = self.layers(y, psi, warped)
        return blend(warped, drawn, mask)

    def layers(
        self, y: torch.Tensor, psi: torch.Tensor, warped: torch.Tensor, size: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The warp-guided G's two outputs at side ``size`` (default: y's): the drawn picture (B, 3, s, s) in
        [-1, 1], the warp plus G's correction (2 tanh of its RGB output, at most the whole range either way), and the
        mask (B, 1, s, s) in [0, 1] of where the warp is kept as it is."""
        if warped is None:
            raise ValueError("the warp-guided generator needs the warped source")
        out = self.body(torch.cat([resize(y, self.cfg.side), resize(warped, self.cfg.side)], dim=1), psi)
        size = size or y.shape[-1]
        out = resize(out, size, mode="bilinear")
        drawn = (resize(warped, size) + 2 * torch.tanh(out[:, :3])).clamp(-1, 1)
        return drawn, torch.sigmoid(out[:, 3:] + MASK_OFFSET)

    def body(self, inputs: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        """The convolutional body: (B, C_in, side, side) -> (B, C_out, side, side), before tanh / sigmoid."""
        feats = self.down(inputs)  # the activation after every down block, the last one deepest
        skips = {f.shape[-1]: f for f in feats[:-1]} if self.cfg.warp else {}
        h = feats[-1]  # (B, C_bottleneck, S, S)
        chunks = iter(split_psi(psi, self._adain_layers()))
        for block in self.bottleneck:
            h = block(h, next(chunks))
        for i, block in enumerate(self.up):
            h = block(h, next(chunks))
            if h.shape[-1] in skips:  # U-Net skip (warp-guided G): same side, same width
                h = h + skips[h.shape[-1]]
            if str(i) in self.up_attention:
                h = self.up_attention[str(i)](h)
        h = F.relu(self.out_norm(h, next(chunks)))
        if self.cfg.warp:  # RGB and the mask's logit
            return torch.cat([self.out_conv(h), self.mask_conv(h)], dim=1)
        return self.out_conv(h)


class Generator(_AdaINRenderer):
    """The meta-learned generator: x_hat = G(y, e_hat) with psi_hat = P e_hat."""

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.P = sn(nn.Linear(cfg.embedding_dim, self.psi_size, bias=False))  # (psi_size, embedding_dim)

    def psi_hat(self, e_hat: torch.Tensor) -> torch.Tensor:
        # e_hat: (B, D) or (D,) -> psi_hat: (B, psi_size) or (psi_size,)
        return self.P(e_hat)

    def forward(self, y: torch.Tensor, e_hat: torch.Tensor, warped: torch.Tensor | None = None) -> torch.Tensor:
        return self.render(y, self.psi_hat(e_hat), warped)


class PersonGenerator(_AdaINRenderer):
    """G' for one person (fine-tuning): psi' is its own parameter, initialised from P e_hat; P is gone.

    Build it from a meta generator with ``fsth.models.person_generator(G, e_hat)``.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__(cfg)
        self.psi = nn.Parameter(torch.zeros(self.psi_size))  # psi': (psi_size,)

    def forward(self, y: torch.Tensor, warped: torch.Tensor | None = None) -> torch.Tensor:
        return self.render(y, self.psi, warped)
