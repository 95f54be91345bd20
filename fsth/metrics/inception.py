"""The FID Inception-v3: the TensorFlow FID network (inception-2015-12-05) as ported to PyTorch by pytorch-fid.

In: images (B, 3, H, W) in [-1, 1] (fsth's tensor convention), any size. Out: (B, 2048) pool features.
The network resizes its input to 299x299 itself (bilinear, half-pixel centres, no antialiasing), as
pytorch-fid does before scaling [0, 1] to [-1, 1]; resizing commutes with that affine scaling, so the
features are the same.

Written here in the key layout of pytorch-fid's weights file ``pt_inception-2015-12-05-6726825d.pth``, which
is torchvision's ``Inception3`` layout without the auxiliary classifier, with 1008 classes:

- every conv is a ``BasicConv2d``: ``.conv`` (no bias) + ``.bn`` (BatchNorm, eps 0.001) + ReLU;
- stem ``Conv2d_1a_3x3`` (3 -> 32, stride 2), ``Conv2d_2a_3x3`` (32 -> 32), ``Conv2d_2b_3x3`` (32 -> 64, pad 1),
  max-pool 3/2, ``Conv2d_3b_1x1`` (64 -> 80), ``Conv2d_4a_3x3`` (80 -> 192), max-pool 3/2;
- ``Mixed_5b/5c/5d`` (block A, pool features 32/64/64), ``Mixed_6a`` (B), ``Mixed_6b..6e`` (C, 7x7 channels
  128/160/160/192), ``Mixed_7a`` (D), ``Mixed_7b/7c`` (E), global average pool -> 2048;
- ``fc`` (2048 -> 1008) is in the file but not used.

FID's network differs from torchvision's ImageNet Inception in two ways besides its weights: the average
pools inside blocks A, C and E ignore the zero padding (TensorFlow's behaviour), and the pool branch of the last
block (``Mixed_7c``) is a max pool. Its trunk has 21,785,568 parameters (torchvision's 27,161,264 less the
auxiliary classifier's 3,326,696 and the 1000-class ``fc``'s 2,049,000).

Weights: ``load_fid_inception(path)`` reads a given file; without one it looks in the torch hub cache
(``$TORCH_HOME/hub/checkpoints``) and otherwise downloads ``FID_WEIGHTS_URL`` there on first use (sha256
checked; ``FSTH_OFFLINE=1`` forbids the download); ``MissingWeightsError`` says what is missing and how to get it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from fsth import console
from fsth.hub import check_layout, find_weights, read_state_dict

FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth"
)
FID_INPUT_SIZE = 299
FID_FEATURES = 2048
FID_CLASSES = 1008


@dataclass(frozen=True)
class _Weights:
    name: str = "FID Inception-v3"
    filename: str = "pt_inception-2015-12-05-6726825d.pth"
    url: str = FID_WEIGHTS_URL
    sha256_prefix: str = "6726825d"


FID_WEIGHTS = _Weights()


class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm (eps 0.001) -> ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)))


def _tf_avg_pool(x: torch.Tensor) -> torch.Tensor:
    """3x3 average pool, stride 1, that averages only the pixels inside the image (TensorFlow's padding)."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | pool -> 1x1.  c_in -> 224 + pool_features."""

    def __init__(self, c_in: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, 1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(c_in, pool_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_tf_avg_pool(x))], 1)


class InceptionB(nn.Module):
    """35 -> 17 reduction: 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | max-pool/2.  c_in -> 480 + c_in."""

    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (1x7 and 7x1).  c_in -> 768."""

    def __init__(self, c_in: int, c7: int):
        super().__init__()
        row, col = dict(kernel=(1, 7), padding=(0, 3)), dict(kernel=(7, 1), padding=(3, 0))
        self.branch1x1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, **row)
        self.branch7x7_3 = BasicConv2d(c7, 192, **col)
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, **row)
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, **col)
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, **row)
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for i in range(1, 6):
            bd = getattr(self, f"branch7x7dbl_{i}")(bd)
        return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(_tf_avg_pool(x))], 1)


class InceptionD(nn.Module):
    """17 -> 8 reduction: 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 | max-pool/2.  c_in -> 512 + c_in."""

    def __init__(self, c_in: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3 / 3x1 outputs.  c_in -> 2048. ``max_pool``: FID's last block pools by max."""

    def __init__(self, c_in: int, max_pool: bool = False):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(c_in, 320, 1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _tf_avg_pool(x)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """(B, 3, H, W) in [-1, 1] -> (B, 2048) features of FID's Inception-v3 (frozen, eval mode)."""

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, c7=128)
        self.Mixed_6c = InceptionC(768, c7=160)
        self.Mixed_6d = InceptionC(768, c7=160)
        self.Mixed_6e = InceptionC(768, c7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "FIDInceptionV3":
        return super().train(False)  # frozen: always in eval mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(FID_INPUT_SIZE, FID_INPUT_SIZE), mode="bilinear", align_corners=False)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # (B, 64, 147, 147)
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))  # (B, 192, 71, 71)
        x = F.max_pool2d(x, 3, stride=2)  # (B, 192, 35, 35)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)  # -> (B, 288, 35, 35), (B, 768, 17, 17), (B, 2048, 8, 8)
        return x.mean(dim=(2, 3))  # (B, 2048)


def load_fid_inception(path: str | os.PathLike | None = None, *, download: bool = True, device=None) -> FIDInceptionV3:
    """FID's Inception-v3 with pytorch-fid's weights (given path, hub cache or first-use download)."""
    file = find_weights(FID_WEIGHTS, path, download)
    state = read_state_dict(file, FID_WEIGHTS.name)
    net = FIDInceptionV3()
    wanted = {k: v.shape for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    optional = {k for k in net.state_dict() if k.endswith("num_batches_tracked")}
    if "fc.weight" in state or "fc.bias" in state:  # the classifier: unused, but its size tells FID's file apart
        wanted.update({"fc.weight": (FID_CLASSES, FID_FEATURES), "fc.bias": (FID_CLASSES,)})
    check_layout(state, wanted, file, f"the FID Inception weights ({FID_WEIGHTS.filename} layout)", allowed=optional)
    net.load_state_dict({k: state[k].float() for k in wanted if not k.startswith("fc.")}, strict=False)
    console.debug(f"{FID_WEIGHTS.name} weights from {file}")
    net.weights_file = file
    return net if device is None else net.to(device)
