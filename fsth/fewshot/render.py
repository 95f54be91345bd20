"""Rendering: one person's target landmarks -> generated face crops (``Renderer``, the piece evaluation reuses).

``Renderer.generate`` returns a batch as ``Rendered``; ``Rendered.frame(j)`` is one frame's ``FaceLayers``, what the
compositor (``fsth.animate.compose``) turns into an output frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fsth.landmarks.sketch import draw_sketch

if TYPE_CHECKING:
    from fsth.fewshot.source import Person


@dataclass
class Rendered:
    """A batch of generated frames, and for a warp-guided generator its two layers (for ``--paste-back`` at the
    photo's resolution)."""

    faces: np.ndarray  # (B, S, S, 3) uint8 RGB
    drawn: np.ndarray | None = None  # (B, S, S, 3) uint8: what G drew (warp-guided G only)
    mask: np.ndarray | None = None  # (B, S, S) float32 in [0, 1]: where the warp is kept (None with the warp alone)

    def frame(self, j: int) -> "FaceLayers":
        """Frame ``j`` of the batch."""
        return FaceLayers(
            self.faces[j], None if self.drawn is None else self.drawn[j], None if self.mask is None else self.mask[j]
        )


@dataclass
class FaceLayers:
    """One generated frame: the crop, and for warp models what ``--paste-back`` recomposes at the photo's size."""

    face: np.ndarray  # (S, S, 3) uint8
    drawn: np.ndarray | None = None  # (S, S, 3) uint8, warp-guided G only
    mask: np.ndarray | None = None  # (S, S) float32, warp-guided G only


class Renderer:
    """One person's landmarks -> generated frames, through the generator's fast inference form.

    ``Renderer(G, e_hat)`` for a meta Generator and a person's e_hat, ``Renderer(G_prime)`` for a fine-tuned
    PersonGenerator, ``Renderer.of(person)`` for a ``Person``. A warp-guided generator also needs the shots it warps:
    ``source=(crops (K, S, S, 3) uint8, points (K, 68, 2))``; ``Renderer(None, source=...)`` is the warp alone
    (``--model warp``: no network). ``render(points)`` takes (B, 68, 2) landmarks in crop pixels and returns
    (B, S, S, 3) uint8 RGB; ``generate(sketches, points)`` takes their landmark images too and returns ``Rendered``.
    """

    def __init__(self, generator, e_hat=None, *, source=None, size=None, device=None, dtype=None):
        import torch

        from fsth.models import images_to_tensor, inference_generator

        self.generator = None
        self.warps = generator is None or generator.cfg.warp
        if generator is not None:
            self.size = generator.cfg.image_size
            self.generator = inference_generator(generator, e_hat, device=device, dtype=dtype)
            device = self.generator.device
        else:
            self.size = size or (source[0].shape[1] if source is not None else None)
            device = torch.device(device or "cpu")
        self.source_crops = self.source_points = None
        if self.warps:
            if source is None:
                raise ValueError("a warp-guided generator (and the warp alone) needs the shots to warp: source=")
            crops, points = source
            self.source_crops = images_to_tensor(np.asarray(crops), device)[None]  # (1, K, 3, S, S)
            self.source_points = torch.as_tensor(np.asarray(points, np.float32), device=device)[None]  # (1, K, 68, 2)
        self.device = device

    @classmethod
    def of(cls, person: Person, *, device=None, dtype=None, warp_only: bool = False) -> "Renderer":
        source = (person.crops, person.points) if person.crops is not None else None
        if warp_only or person.generator is None:
            return cls(None, source=source, size=person.size, device=device)
        return cls(person.generator, person.e_hat, source=source, device=device, dtype=dtype)

    @property
    def needs_sketches(self) -> bool:
        """Whether ``generate`` reads the landmark images (a generator does; the warp alone does not)."""
        return self.generator is not None

    def sketch(self, points: np.ndarray) -> np.ndarray:
        return draw_sketch(points, self.size)

    def _warped(self, points: np.ndarray):
        import torch

        from fsth.models.warp import warp_shots

        target = torch.as_tensor(np.asarray(points, np.float32), device=self.device)  # (B, 68, 2)
        b = target.shape[0]
        with torch.inference_mode():
            return warp_shots(
                self.source_crops.expand(b, -1, -1, -1, -1), self.source_points.expand(b, -1, -1, -1), target
            )

    def generate(self, sketches: np.ndarray | None, points: np.ndarray | None = None) -> Rendered:
        """Frames for landmark images ``sketches`` (B, S, S, 3) uint8 of the landmarks ``points`` (B, 68, 2) (a
        warp-guided generator and the warp alone need them; the warp alone needs no sketches: None)."""
        from fsth.models import images_to_tensor, tensor_to_images
        from fsth.models.generator import blend

        if self.generator is not None and sketches is None:
            raise ValueError("a generator needs the landmark images of the frames to render")
        if not self.warps:
            return Rendered(tensor_to_images(self.generator(images_to_tensor(sketches, self.device))))
        if points is None:
            raise ValueError("a warp-guided generator needs the landmarks of the frames to render")
        warped = self._warped(points)
        if self.generator is None:
            return Rendered(tensor_to_images(warped))
        drawn, mask = self.generator.layers(images_to_tensor(sketches, self.device), warped)
        face = blend(warped.float(), drawn, mask)
        return Rendered(tensor_to_images(face), tensor_to_images(drawn), mask[:, 0].float().cpu().numpy())

    def render(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, np.float32).reshape(-1, 68, 2)
        sketches = np.stack([self.sketch(p) for p in points]) if self.needs_sketches else None
        return self.generate(sketches, points).faces
