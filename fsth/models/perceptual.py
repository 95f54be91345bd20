"""Frozen perceptual networks for the content loss L_CNT: VGG19 (ImageNet) and VGGFace.

Stage: meta-learning and fine-tuning. In: images (B, 3, H, W) in [-1, 1]. Out: the list of activations
the content loss compares. "conv1, conv6, conv11, conv20, conv29" of the paper are indices into VGG19's
``features`` stack (torchvision's layout) and "conv1, 6, 11, 18, 25" into the same stack of VGG16; at those
indices sit the ReLUs after conv1_1, conv2_1, conv3_1, conv4_1 and conv5_1, so both networks return
relu1_1, relu2_1, relu3_1, relu4_1, relu5_1 (the layers after the last tap are not built).

Weights (each network with its own input normalisation):

- VGG19: torchvision's ``vgg19-dcbb9e9d.pth`` (keys ``features.N.weight/bias``, ``classifier.N...``),
  input: [0, 1] RGB normalised with the ImageNet mean and std.
- VGGFace: the common ``vgg_face_dag.pth`` (VGG16 layout, keys ``conv1_1.weight`` ... ``fc8.bias``,
  2622 identities), input: 0-255 RGB minus the channel means stored with that model.

``load_vgg19(path)`` / ``load_vggface(path)`` read a given file (``.pth`` through torch's weights-only
loader, or ``.safetensors``); without a path they look in the torch hub cache
(``$TORCH_HOME/hub/checkpoints``, default ``~/.cache/torch/hub/checkpoints``) and otherwise download the
file there on first use. ``FSTH_OFFLINE=1`` forbids the download. A file that is missing and cannot be
fetched raises ``MissingWeightsError`` naming the file, where it was looked for and how to get it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import NamedTuple

import torch
from torch import nn

from fsth import console
from fsth.errors import MissingWeightsError
from fsth.hub import check_layout, find_weights, read_state_dict

M = "M"  # max-pool in a VGG layer list
VGG19_LAYERS = [64, 64, M, 128, 128, M, 256, 256, 256, 256, M, 512, 512, 512, 512, M, 512, 512, 512, 512, M]
VGG16_LAYERS = [64, 64, M, 128, 128, M, 256, 256, 256, M, 512, 512, 512, M, 512, 512, 512, M]

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
VGGFACE_URL = "https://www.robots.ox.ac.uk/~albanie/models/pytorch-mcn/vgg_face_dag.pth"
VGGFACE_MEAN = (129.186279296875, 104.76238250732422, 93.59396362304688)  # RGB, stored with vgg_face_dag
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def _vgg_stack(layers: list, last_index: int) -> tuple[nn.Sequential, list[tuple[int, int, int]]]:
    """torchvision's ``features`` stack up to ``last_index``, and (index, c_in, c_out) of every conv of
    the *whole* stack (to recognise a complete weights file)."""
    modules, convs, c_in = [], [], 3
    for v in layers:
        if v == M:
            modules.append(nn.MaxPool2d(2, 2))
        else:
            convs.append((len(modules), c_in, v))
            modules += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU(inplace=False)]
            c_in = v
    return nn.Sequential(*modules[: last_index + 1]), convs


class _VGGFeatures(nn.Module):
    """A frozen VGG ``features`` stack returning the activations at ``taps``."""

    name = ""  # shown in messages
    filename = ""  # the standard weights file
    url = ""
    sha256_prefix = ""
    layers: list = []
    taps: tuple[int, ...] = ()

    def __init__(self):
        super().__init__()
        self.features, self._all_convs = _vgg_stack(self.layers, max(self.taps))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "_VGGFeatures":
        return super().train(False)  # frozen: always in eval mode

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        # x: (B, 3, H, W) in [-1, 1] -> activations at the taps, shallow to deep
        h, out = self.normalize(x), []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.taps:
                out.append(h)
        return out

    # -- weights files ------------------------------------------------------------------------------

    def _file_key(self, index: int, param: str) -> str:
        raise NotImplementedError

    def _other_file_keys(self) -> set[str]:
        raise NotImplementedError

    def load_file_state(self, state: dict[str, torch.Tensor], path: Path) -> None:
        """Load a state dict in the file's standard layout; name whatever does not match it."""
        wanted, known = {}, set(self._other_file_keys())
        for index, c_in, c_out in self._all_convs:
            for param, shape in (("weight", (c_out, c_in, 3, 3)), ("bias", (c_out,))):
                key = self._file_key(index, param)
                known.add(key)
                if index < len(self.features):
                    wanted[key] = (f"features.{index}.{param}", shape)
        check_layout(
            state,
            {k: shape for k, (_, shape) in wanted.items()},
            path,
            f"{self.name} weights in the {self.filename} layout",
            allowed=known,
        )
        self.load_state_dict({ours: state[key].float() for key, (ours, _) in wanted.items()}, strict=True)


class VGG19(_VGGFeatures):
    """VGG19 (ImageNet) in torchvision's key layout, returning relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
    (``features`` indices 1, 6, 11, 20, 29: the paper's conv1, 6, 11, 20, 29)."""

    name = "VGG19"
    filename = "vgg19-dcbb9e9d.pth"
    url = VGG19_URL
    sha256_prefix = "dcbb9e9d"
    layers = VGG19_LAYERS
    taps = (1, 6, 11, 20, 29)

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return ((x + 1) / 2 - self.mean) / self.std

    def _file_key(self, index: int, param: str) -> str:
        return f"features.{index}.{param}"

    def _other_file_keys(self) -> set[str]:
        return {f"classifier.{i}.{p}" for i in (0, 3, 6) for p in ("weight", "bias")}


class VGGFace(_VGGFeatures):
    """VGGFace (VGG16 layout, ``vgg_face_dag.pth``), returning relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
    (indices 1, 6, 11, 18, 25 of the VGG16 ``features`` stack: the paper's conv1, 6, 11, 18, 25)."""

    name = "VGGFace"
    filename = "vgg_face_dag.pth"
    url = VGGFACE_URL
    layers = VGG16_LAYERS
    taps = (1, 6, 11, 18, 25)

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(VGGFACE_MEAN).view(1, 3, 1, 1), persistent=False)
        block, conv, names = 1, 1, {}
        for index, _, _ in self._all_convs:  # conv1_1 ... conv5_3 in order; a pool starts the next block
            if names and index - max(names) > 2:
                block, conv = block + 1, 1
            names[index] = f"conv{block}_{conv}"
            conv += 1
        self._conv_names = names

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x + 1) * 127.5 - self.mean

    def _file_key(self, index: int, param: str) -> str:
        return f"{self._conv_names[index]}.{param}"

    def _other_file_keys(self) -> set[str]:
        return {f"fc{i}.{p}" for i in (6, 7, 8) for p in ("weight", "bias")}


def _load(cls, path, download: bool, device) -> _VGGFeatures:
    file = find_weights(cls, path, download)
    net = cls()
    net.load_file_state(read_state_dict(file, cls.name), file)
    console.debug(f"{cls.name} weights from {file}")
    return net.to(device) if device is not None else net


def load_vgg19(path: str | os.PathLike | None = None, *, download: bool = True, device=None) -> VGG19:
    """Frozen VGG19 with torchvision's ImageNet weights (see the module docstring for where from)."""
    return _load(VGG19, path, download, device)


def load_vggface(path: str | os.PathLike | None = None, *, download: bool = True, device=None) -> VGGFace:
    """Frozen VGGFace with the ``vgg_face_dag.pth`` weights (see the module docstring for where from)."""
    return _load(VGGFace, path, download, device)


class ContentNetworks(NamedTuple):
    vgg19: VGG19
    vggface: VGGFace


def load_content_networks(train_cfg, device=None, download: bool = True) -> ContentNetworks | None:
    """The two networks L_CNT needs, per ``TrainConfig`` (paths ``vgg19_weights``/``vggface_weights``).

    Returns None, with a warning, when ``train_cfg.content_loss`` is off: the one place that says so, once per
    command that trains (train, finetune, animate --finetune-steps, evaluate --finetune-steps). A missing file is
    a ``MissingWeightsError`` that names it, the option that passes it and ``--no-content-loss``.
    """
    if not train_cfg.content_loss:
        console.warn("the content loss L_CNT (VGG19 + VGGFace) is switched off: training without it")
        return None
    try:
        return ContentNetworks(
            load_vgg19(train_cfg.vgg19_weights, download=download, device=device),
            load_vggface(train_cfg.vggface_weights, download=download, device=device),
        )
    except MissingWeightsError as exc:  # name the option that passes the file, and the way around it
        flag = "--vggface-weights" if str(exc).startswith("VGGFace") else "--vgg19-weights"
        message = str(exc).replace("or pass its path", f"or pass its path with {flag}")
        raise MissingWeightsError(
            f"{message}; or train without the content loss: --no-content-loss (worse likeness)"
        ) from None
