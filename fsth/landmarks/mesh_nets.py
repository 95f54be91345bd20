"""MediaPipe's face-mesh and iris networks as torch modules (weights: ``fsth/weights/face_mesh.safetensors``).

Stage: landmarks. ``FaceMeshNet``: a (B, 3, 192, 192) face crop in [0, 1] -> (B, 468, 3) points in crop pixels
(x, y, and a relative depth z) and (B,) face-presence logits. ``IrisNet``: a (B, 3, 64, 64) crop of a left eye
(a right eye is mirrored first) in [0, 1] -> (B, 71, 3) eye-contour points and (B, 5, 3) iris points (centre
first, then four points on the iris edge), crop pixels.

Both are small residual CNNs built from depthwise-separable blocks with PReLU activations; the layout follows the
TensorFlow Lite graphs of ``face_landmark.tflite`` and ``iris_landmark.tflite`` (``mediapipe`` 0.10.21) layer for
layer, including TensorFlow's "same" padding (a stride-2 3x3 convolution on an even size pads only the bottom and
right). Each weight-holding layer carries its TFLite layer name (``tflite_name``), which is how
``fsth.landmarks.mesh_convert`` fills the safetensors file.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

MESH_INPUT = 192  # face crop side (px)
IRIS_INPUT = 64  # eye crop side (px)


def _named(module: nn.Module, name: str) -> nn.Module:
    module.tflite_name = name
    return module


class _SamePad(nn.Module):
    """TensorFlow "same" padding of a 3x3 kernel: 1 px on each side at stride 1, bottom/right only at stride 2."""

    def __init__(self, stride: int):
        super().__init__()
        self.pad = (1, 1, 1, 1) if stride == 1 else (0, 1, 0, 1)

    def forward(self, x):
        return F.pad(x, self.pad)


def _conv(cin: int, cout: int, k: int, stride: int, name: str) -> nn.Conv2d:
    return _named(nn.Conv2d(cin, cout, k, stride), name)


def _dw(c: int, stride: int, name: str) -> nn.Sequential:
    """A 3x3 depthwise conv with "same" padding: the conv's own at stride 1 (symmetric: no padded copy of the
    input, a quarter of these networks' CPU time), ``_SamePad`` at stride 2 (bottom/right only)."""
    if stride == 1:
        return nn.Sequential(nn.Identity(), _named(nn.Conv2d(c, c, 3, 1, padding=1, groups=c), name))
    return nn.Sequential(_SamePad(stride), _named(nn.Conv2d(c, c, 3, stride, groups=c), name))


def _prelu(c: int, name: str) -> nn.PReLU:
    return _named(nn.PReLU(c), name)


def _layer(m: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``m(x)`` for this file's layers without ``nn.Module.__call__``: on a CPU the per-call overhead of ~300 module
    calls a frame cost as much as the arithmetic of these small networks."""
    if isinstance(m, nn.Conv2d):
        return F.conv2d(x, m.weight, m.bias, m.stride, m.padding, m.dilation, m.groups)
    if isinstance(m, nn.PReLU):
        return F.prelu(x, m.weight)
    if isinstance(m, _SamePad):
        return F.pad(x, m.pad)
    if isinstance(m, nn.Identity):
        return x
    return m.forward(x)  # a block, a Sequential


def _seq(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    for m in layers:
        x = _layer(m, x)
    return x


def _add_skip(y: torch.Tensor, x: torch.Tensor, stride: int) -> torch.Tensor:
    """y + the residual path of x, in place in y (a fresh tensor): x 2x2 max-pooled at stride 2; when the block
    widens, x's channels are added to y's first ones (the same sums as appending zero channels to x)."""
    if stride == 2:
        x = F.max_pool2d(x, 2)
    if y.shape[1] > x.shape[1]:
        y[:, : x.shape[1]] += x
        return y
    return y.add_(x)


class MeshBlock(nn.Module):
    """x (B, cin, H, W) -> prelu(pw(dw(x)) + skip(x)) (B, cout, H/stride, W/stride)."""

    def __init__(self, cin: int, cout: int, stride: int, dw: int, pw: int, act: int):
        super().__init__()
        self.stride = stride
        self.dw = _dw(cin, stride, f"depthwise_conv2d_{dw}")
        self.pw = _conv(cin, cout, 1, 1, f"conv2d_{pw}")
        self.act = _prelu(cout, f"p_re_lu_{act}")

    def forward(self, x):
        y = _layer(self.pw, _seq(self.dw, x))
        return F.prelu(_add_skip(y, x, self.stride), self.act.weight)


def _mesh_block(cin: int, cout: int, stride: int, i: int) -> MeshBlock:
    # the trunk's and the landmark head's blocks: depthwise_conv2d_i, conv2d_{i+1}, p_re_lu_{i+1}
    return MeshBlock(cin, cout, stride, i, i + 1, i + 1)


class FaceMeshNet(nn.Module):
    """face_landmark.tflite: (B, 3, 192, 192) in [0, 1] -> points (B, 468, 3) crop px, face logits (B,)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(_SamePad(2), _conv(3, 16, 3, 2, "conv2d_1"), _prelu(16, "p_re_lu_1"))  # 96x96
        widths = [(16, 16, 1), (16, 16, 1), (16, 32, 2)]  # -> 48x48
        widths += [(32, 32, 1), (32, 32, 1), (32, 64, 2)]  # -> 24x24
        widths += [(64, 64, 1), (64, 64, 1), (64, 128, 2)]  # -> 12x12
        widths += [(128, 128, 1), (128, 128, 1), (128, 128, 2)]  # -> 6x6
        widths += [(128, 128, 1), (128, 128, 1)]  # (B, 128, 6, 6)
        self.trunk = nn.Sequential(*(_mesh_block(a, b, s, i + 1) for i, (a, b, s) in enumerate(widths)))
        # landmark head: 6x6 -> 3x3 -> 1x1 x 1404
        self.points_head = nn.Sequential(
            _mesh_block(128, 128, 2, 15),
            _mesh_block(128, 128, 1, 16),
            _mesh_block(128, 128, 1, 17),
            _conv(128, 32, 1, 1, "conv2d_19"),
            _prelu(32, "p_re_lu_19"),
            MeshBlock(32, 32, 1, 18, 20, 20),
            _conv(32, 1404, 3, 1, "conv2d_21"),
        )
        # face-presence head: 6x6 -> 3x3 -> 1x1 x 1 (a logit)
        self.face_head = nn.Sequential(
            MeshBlock(128, 128, 2, 23, 28, 26),
            _conv(128, 32, 1, 1, "conv2d_29"),
            _prelu(32, "p_re_lu_27"),
            MeshBlock(32, 32, 1, 24, 30, 28),
            _conv(32, 1, 3, 1, "conv2d_31"),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = _seq(self.trunk, _seq(self.stem, x))  # (B, 128, 6, 6)
        points = _seq(self.points_head, f).reshape(-1, 468, 3)
        return points, _seq(self.face_head, f).reshape(-1)


class IrisBlock(nn.Module):
    """x (B, c, H, W) -> prelu(pw(dw(prelu(squeeze(x)))) + skip(x)); a downsampling block squeezes with a
    2x2 stride-2 convolution (and its skip path max-pools)."""

    def __init__(self, cin: int, cout: int, k: int, down: bool = False):
        super().__init__()
        mid = 32 if cin == 64 and not down else 64  # the squeezed width
        n = "depthwise_conv2d" if k == 0 else f"depthwise_conv2d_{k}"
        self.stride = 2 if down else 1
        k_sq = 2 if down else 1
        self.squeeze = nn.Sequential(
            _conv(cin, mid, k_sq, k_sq, f"conv2d_{2 * k + 1}"), _prelu(mid, f"p_re_lu_{2 * k + 1}")
        )
        self.dw = _dw(mid, 1, n)
        self.pw = _conv(mid, cout, 1, 1, f"conv2d_{2 * k + 2}")
        self.act = _prelu(cout, f"p_re_lu_{2 * k + 2}")

    def forward(self, x):
        y = _layer(self.pw, _seq(self.dw, _seq(self.squeeze, x)))
        return F.prelu(_add_skip(y, x, self.stride), self.act.weight)


def _iris_branch(first: int) -> nn.Sequential:
    # 8 blocks at 128 channels: 8x8 -> 4x4 (third block) -> 2x2 (sixth block)
    return nn.Sequential(*(IrisBlock(128, 128, first + i, down=i in (2, 5)) for i in range(8)))


class IrisNet(nn.Module):
    """iris_landmark.tflite: (B, 3, 64, 64) left-eye crop in [0, 1] -> contour (B, 71, 3), iris (B, 5, 3)."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(_SamePad(2), _conv(3, 64, 3, 2, "conv2d"), _prelu(64, "p_re_lu"))  # 32x32
        blocks = [IrisBlock(64, 64, k) for k in range(4)]  # (B, 64, 32, 32)
        blocks.append(IrisBlock(64, 128, 4, down=True))  # (B, 128, 16, 16)
        blocks += [IrisBlock(128, 128, k) for k in range(5, 9)]
        blocks.append(IrisBlock(128, 128, 9, down=True))  # (B, 128, 8, 8)
        self.trunk = nn.Sequential(*blocks)
        self.contour_branch = _iris_branch(10)  # (B, 128, 2, 2)
        self.iris_branch = _iris_branch(18)
        self.contour_out = _conv(128, 213, 2, 1, "conv_eyes_contours_and_brows")  # (B, 213, 1, 1)
        self.iris_out = _conv(128, 15, 2, 1, "conv_iris")  # (B, 15, 1, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = _seq(self.trunk, _seq(self.stem, x))
        contour = _layer(self.contour_out, _seq(self.contour_branch, f)).reshape(-1, 71, 3)
        iris = _layer(self.iris_out, _seq(self.iris_branch, f)).reshape(-1, 5, 3)
        return contour, iris


def tflite_layers(net: nn.Module) -> dict[str, nn.Module]:
    """TFLite layer name -> the module holding its weights."""
    return {m.tflite_name: m for m in net.modules() if hasattr(m, "tflite_name")}
