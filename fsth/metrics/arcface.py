"""ArcFace for CSIM: insightface's ``arcface_torch`` iresnet backbones, and the standard 5-point face alignment.

In: uint8 RGB images and their 68 landmarks. Out: 512-d unit identity embeddings.

The network is written here in the key layout of ``arcface_torch``'s ``backbones/iresnet.py``, so its
``backbone.pth`` files load directly (``.pth`` through torch's weights-only loader, or ``.safetensors``):

- stem ``conv1`` (3x3, 3 -> 64, no bias), ``bn1``, ``prelu``;
- ``layer1``..``layer4`` of improved residual blocks, 64/128/256/512 channels, each layer starting with a
  stride-2 block whose shortcut is ``downsample.0`` (1x1 conv, no bias) + ``downsample.1`` (BatchNorm); a block
  is ``bn1 -> conv1 (3x3) -> bn2 -> prelu -> conv2 (3x3, the block's stride) -> bn3``, plus the shortcut;
- ``bn2`` (BatchNorm2d 512), flatten, ``fc`` (512 x 7 x 7 -> 512), ``features`` (BatchNorm1d 512).

Blocks per layer: iresnet18 (2, 2, 2, 2), iresnet34 (3, 4, 6, 3), iresnet50 (3, 4, 14, 3), iresnet100
(3, 13, 30, 3), iresnet200 (6, 26, 60, 6); the loader reads the depth from the file. All BatchNorm eps 1e-5.

Input: the face aligned to 112x112 by the similarity transform (rotation, uniform scale, translation; least
squares, Umeyama 1991: ``fsth.landmarks.retarget.similarity_fit``) that maps its eye centres, nose tip and
mouth corners onto insightface's template ``ARCFACE_TEMPLATE``; RGB scaled to [-1, 1] ((x / 255 - 0.5) / 0.5).

Weights: there is no single official download URL (insightface links its model zoo from
``recognition/arcface_torch``'s README: e.g. ``ms1mv3_arcface_r100_fp16/backbone.pth``); pass the file's path.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from fsth.errors import MissingWeightsError
from fsth.hub import check_layout, read_state_dict
from fsth.landmarks.parts import LEFT_EYE, RIGHT_EYE
from fsth.landmarks.retarget import similarity_fit
from fsth.metrics.recognition import FaceEmbedder

ARCFACE_SIZE = 112
ARCFACE_DIM = 512
# Where the 5 points sit in a 112x112 ArcFace input (insightface's arcface_dst): the eye on the image's left,
# the other eye, the nose tip, the mouth corner on the image's left, the other mouth corner.
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]]
)
IRESNET_LAYERS = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
    "iresnet200": (6, 26, 60, 6),
}
ARCFACE_HOW = (
    "ArcFace needs an insightface arcface_torch model file: download one from the model zoo linked in "
    "insightface's recognition/arcface_torch README (e.g. ms1mv3_arcface_r100_fp16/backbone.pth) and pass its "
    "path, or use CSIM's offline default network 'dlib'"
)

# -- the network ---------------------------------------------------------------------------------------


def _bn(c: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(c, eps=1e-5)


class IBasicBlock(nn.Module):
    """Improved residual block: BN -> conv3x3 -> BN -> PReLU -> conv3x3(stride) -> BN, + shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.bn1 = _bn(c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, 1, 1, bias=False)
        self.bn2 = _bn(c_out)
        self.prelu = nn.PReLU(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, stride, 1, bias=False)
        self.bn3 = _bn(c_out)
        self.downsample = None
        if stride != 1 or c_in != c_out:
            self.downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), _bn(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        return out + (x if self.downsample is None else self.downsample(x))


class IResNet(nn.Module):
    """arcface_torch's iresnet: (B, 3, 112, 112) in [-1, 1] -> (B, 512) embeddings (not normalised)."""

    def __init__(self, layers=IRESNET_LAYERS["iresnet100"], dim: int = ARCFACE_DIM):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = _bn(64)
        self.prelu = nn.PReLU(64)
        c_in = 64
        for i, (width, blocks) in enumerate(zip((64, 128, 256, 512), layers), start=1):
            stage = [IBasicBlock(c_in, width, stride=2)] + [IBasicBlock(width, width) for _ in range(blocks - 1)]
            setattr(self, f"layer{i}", nn.Sequential(*stage))
            c_in = width
        self.bn2 = _bn(512)
        self.fc = nn.Linear(512 * 7 * 7, dim)  # 112 / 2^4 = 7
        self.features = nn.BatchNorm1d(dim, eps=1e-5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))  # (B, 64, 112, 112)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))  # (B, 512, 7, 7)
        return self.features(self.fc(self.bn2(x).flatten(1)))  # (B, 512)


def iresnet_depth(state: dict) -> str:
    """The iresnet variant of a state dict, from its blocks per layer; MissingWeightsError if none matches."""
    counts = tuple(len({k.split(".")[1] for k in state if k.startswith(f"layer{i}.")}) for i in range(1, 5))
    for name, layers in IRESNET_LAYERS.items():
        if counts == layers:
            return name
    raise MissingWeightsError(f"not an arcface_torch iresnet state dict (blocks per layer {counts})")


# -- alignment -----------------------------------------------------------------------------------------


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """(68, 2) iBUG landmarks -> (5, 2): eye centres (image left, then right), nose tip, mouth corners."""
    L = np.asarray(landmarks, np.float64)
    return np.stack([L[RIGHT_EYE].mean(0), L[LEFT_EYE].mean(0), L[30], L[48], L[54]])


def align_arcface(image: np.ndarray, landmarks: np.ndarray, size: int = ARCFACE_SIZE) -> np.ndarray:
    """The face of ``image`` warped to ArcFace's 112x112 input (uint8 RGB), from its 68 landmarks."""
    L, t = similarity_fit(five_points(landmarks), ARCFACE_TEMPLATE * (size / ARCFACE_SIZE), points=None)
    m = np.hstack([L, t[:, None]])  # (2, 3), as cv2 takes it
    return cv2.warpAffine(np.ascontiguousarray(image), m, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)


# -- the embedder --------------------------------------------------------------------------------------


class ArcFaceEmbedder(FaceEmbedder):
    """An arcface_torch iresnet on 5-point-aligned 112x112 faces; 512-d unit embeddings."""

    dim = ARCFACE_DIM

    def __init__(self, net: IResNet, depth: str, weights: Path, device=None, batch_size: int = 64):
        from fsth.device import get_device

        self.device = get_device() if device is None else torch.device(device)
        self.net = net.to(self.device).eval().requires_grad_(False)
        self.name = f"arcface-{depth}"
        self.weights = weights
        self.batch_size = batch_size

    def embed(self, images, landmarks) -> np.ndarray:
        faces = np.stack([align_arcface(im, lm) for im, lm in zip(images, landmarks)]) if len(images) else None
        if faces is None:
            return np.zeros((0, self.dim))
        rows = []
        with torch.no_grad():
            for i in range(0, len(faces), self.batch_size):
                x = torch.from_numpy(faces[i : i + self.batch_size]).to(self.device).permute(0, 3, 1, 2)
                e = self.net(x.float() / 127.5 - 1)  # (B, 512)
                rows.append(torch.nn.functional.normalize(e.double(), dim=1).cpu().numpy())
        return np.concatenate(rows)


def load_arcface(path: str | os.PathLike | None, device=None) -> ArcFaceEmbedder:
    """ArcFace from an arcface_torch ``backbone.pth`` (or .safetensors); its depth is read from the file."""
    if path is None:
        raise MissingWeightsError(f"no ArcFace model file given: {ARCFACE_HOW}")
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingWeightsError(f"ArcFace model file {path} does not exist: {ARCFACE_HOW}")
    state = read_state_dict(path, "ArcFace")
    state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from DistributedDataParallel
    depth = iresnet_depth(state)
    net = IResNet(IRESNET_LAYERS[depth])
    wanted = {k: v.shape for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    optional = [k for k in net.state_dict() if k.endswith("num_batches_tracked")]
    check_layout(state, wanted, path, f"an arcface_torch {depth}", allowed=optional)
    net.load_state_dict({k: state[k].float() for k in wanted}, strict=False)
    return ArcFaceEmbedder(net, depth, path, device=device)
