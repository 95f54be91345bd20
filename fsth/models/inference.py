"""The inference form of the generator: one person, fixed psi, as fast as the machine allows.

Stage: animation and evaluation. In: a meta ``Generator`` and the person's e_hat, or a fine-tuned
``PersonGenerator``. Out: an ``InferenceGenerator`` whose ``forward(y)`` maps landmark images
(B, 3, H, W) in [-1, 1] (any float dtype, any device) to frames (B, 3, H, W) float32 in [-1, 1].

What changes against the training form: spectral norm is folded into plain conv weights (the weight the
eval-mode network uses, W / sigma with the stored power-iteration vectors), psi = P e_hat is computed
once (so P is dropped and every AdaIN becomes one fused ``group_norm`` call with per-channel affine),
eval mode, ``torch.inference_mode``, channels_last memory format, and bfloat16 weights and activations
where the hardware runs them fast (CUDA with bf16 support; CPUs with AVX512-BF16 or AMX, through
oneDNN). Self-attention uses ``scaled_dot_product_attention`` in both forms.

Tolerance. float32: the training form's eval image within 1e-4 (absolute, on [-1, 1]) when both see
the same memory layout (tested on the tiny preset). bfloat16: the error of bf16 itself, no more: the
same as running the training form under ``torch.autocast(dtype=torch.bfloat16)`` (tested: mean error
within 1.25x of autocast's), which for randomly initialised tiny networks is below 0.25 at any pixel
and 0.03 on average (tested). For a randomly initialised paper256 generator on a landmark sketch,
``benchmarks/generator.py`` measures about 0.22 max / 0.016 mean for bf16 (autocast: 0.21 / 0.016); the
float32 form differs from plain NCHW float32 by 0.09 max / 0.006 mean, exactly as much as the training
form itself does when merely given a channels_last input: such random networks amplify the last-bit
differences of another convolution algorithm. How a trained generator behaves is not measured here (no
trained weights); use ``dtype=torch.float32`` where exactness matters more than speed.
"""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.nn.utils import parametrize

from fsth.models.generator import Generator, PersonGenerator, _AdaINRenderer, blend


@functools.cache
def cpu_has_fast_bf16() -> bool:
    """True when the CPU has native bf16 matrix instructions (AVX512-BF16 or AMX-BF16)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line for line in f if line.startswith("flags")), "").split()
    except OSError:
        return False
    return ("amx_bf16" in flags or "avx512_bf16" in flags) and torch.backends.mkldnn.is_available()


def fast_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 where ``device`` runs it fast, else float32."""
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    if device.type == "cpu":
        return torch.bfloat16 if cpu_has_fast_bf16() else torch.float32
    return torch.float32


def fold_spectral_norm(module: nn.Module) -> nn.Module:
    """Replace every spectral-norm parametrization by the plain weight it computes in eval mode."""
    module.eval()
    for m in module.modules():
        if parametrize.is_parametrized(m, "weight"):
            parametrize.remove_parametrizations(m, "weight", leave_parametrized=True)
    return module


class InferenceGenerator(nn.Module):
    """G for one person, ready for fast inference (see the module docstring)."""

    def __init__(self, body: nn.Module, psi: torch.Tensor, dtype: torch.dtype, channels_last: bool):
        super().__init__()
        self.body = body  # the renderer with plain weights
        self.register_buffer("psi", psi)  # (psi_size,) float32; AdaIN casts after adding 1 to gamma - 1
        self.dtype = dtype
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.__dict__["_render"] = body  # not a second submodule; ``compile()`` replaces it

    def compile(self) -> "InferenceGenerator":
        """Opt in to ``torch.compile`` (inductor, weights frozen as constants), which fuses the norm,
        ReLU and residual passes. The first call afterwards compiles: about 40 s for paper256 on a 2-core
        CPU, and again for each new input shape; it needs a C++ compiler on the CPU. Returns self."""
        self.__dict__["_render"] = torch.compile(self.body, options={"freezing": True}, dynamic=False)
        return self

    @property
    def device(self) -> torch.device:
        return self.psi.device

    def _input(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(self.device, self.dtype).contiguous(memory_format=self.memory_format)

    @torch.inference_mode()
    def forward(self, y: torch.Tensor, warped: torch.Tensor | None = None) -> torch.Tensor:
        # y: (B, 3, H, W) in [-1, 1]; warped (B, 3, H, W) for a warp-guided G -> x_hat: (B, 3, H, W) float32
        if warped is not None:
            drawn, mask = self.layers(y, warped)
            return blend(warped.to(self.device, torch.float32), drawn, mask)
        return self._render(self._input(y), self.psi).float().contiguous()

    @torch.inference_mode()
    def layers(self, y: torch.Tensor, warped: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A warp-guided G's drawn picture (B, 3, H, W) and mask (B, 1, H, W), float32 (``_AdaINRenderer.layers``)."""
        drawn, mask = self.body.layers(self._input(y), self.psi, self._input(warped))
        return drawn.float().contiguous(), mask.float().contiguous()


def inference_generator(
    G: Generator | PersonGenerator,
    e_hat: torch.Tensor | None = None,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    channels_last: bool = True,
) -> InferenceGenerator:
    """The inference form of ``G`` for one person: a meta Generator with that person's e_hat (D,) or
    (1, D), or a PersonGenerator (no e_hat). ``dtype`` None picks bf16 where it is fast (``fast_dtype``);
    ``device`` None keeps G's device. G itself is left unchanged."""
    if isinstance(G, PersonGenerator):
        if e_hat is not None:
            raise ValueError("a PersonGenerator has its own psi': pass no e_hat")
        psi = G.psi.detach()
    elif isinstance(G, Generator):
        if e_hat is None:
            raise ValueError("a meta Generator needs the person's e_hat")
        from fsth.models.person import person_generator

        psi = person_generator(G, e_hat).psi.detach()
    else:
        raise TypeError(f"expected a Generator or PersonGenerator, not {type(G).__name__}")
    # A fresh body, not a deepcopy: a copied parametrized module shares its class with the original, and
    # removing the parametrization from one would break the other.
    body = _AdaINRenderer(G.cfg)
    body.load_state_dict({k: v for k, v in G.state_dict().items() if not k.startswith("P.") and k != "psi"})
    body = fold_spectral_norm(body).requires_grad_(False)
    device = torch.device(device) if device is not None else psi.device
    dtype = dtype or fast_dtype(device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    body = body.to(device=device, dtype=dtype, memory_format=memory_format)
    return InferenceGenerator(body, psi.to(device, torch.float32), dtype, channels_last).eval()
