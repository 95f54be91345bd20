"""What renders a setting's frames: the meta generator with e_hat (FF), the fine-tuned G' (FT) and the
baselines (the nearest shot, as it is or warped)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterator

import numpy as np
import torch

from fsth.config import TrainConfig
from fsth.fewshot import FewShotModel, Renderer, Shots

if TYPE_CHECKING:
    from fsth.evaluate.options import EvalOptions

EVAL_DTYPE = torch.float32  # the generator's precision: figures that do not depend on a CPU's bf16 support


class CopyRenderer:
    """The ``copy`` baseline: for each target, the shot whose landmark shape is nearest the target's, unchanged."""

    def __init__(self, crops: np.ndarray, points: np.ndarray):
        self.crops, self.points = np.asarray(crops), torch.as_tensor(np.asarray(points, np.float32))

    def render(self, points: np.ndarray) -> np.ndarray:
        from fsth.models.warp import nearest_shot

        target = torch.as_tensor(np.asarray(points, np.float32)).reshape(-1, 68, 2)
        pick = nearest_shot(self.points[None].expand(len(target), -1, -1, -1), target)
        return self.crops[pick.numpy()]


def baseline_renderers(crops: np.ndarray, points: np.ndarray, device=None) -> Iterator[tuple[str, object]]:
    """(mode, renderer) of the BASELINES for shots (K, S, S, 3) with landmarks (K, 68, 2)."""
    yield "copy", CopyRenderer(crops, points)
    yield "warp", Renderer(None, source=(crops, points), device=device)


def person_renderers(
    model: FewShotModel,
    shots: Shots,
    options: EvalOptions,
    *,
    train_cfg: TrainConfig,
    content_nets=None,
    label: str = "fine-tuning",
) -> Iterator[tuple[str, Renderer]]:
    """(mode, renderer) for one person from their shots, made as they are asked for: FF (G with e_hat) and, with
    fine-tuning steps, FT (G' and D' from the same e_hat, fine-tuned on the shots). Ctrl-C during fine-tuning
    stops the evaluation."""
    e_hat = model.embed(shots)
    yield "FF", model.renderer(shots, e_hat=e_hat, dtype=EVAL_DTYPE)
    if options.finetune_steps:
        result = model.finetune(
            shots,
            options.finetune_steps,
            train_cfg,
            e_hat=e_hat,
            content_nets=content_nets,
            batch_size=options.finetune_batch_size,
            seed=options.seed,
            label=label,
        )
        if result.interrupted:
            raise KeyboardInterrupt
        yield "FT", model.renderer(shots, G=result.G.eval(), dtype=EVAL_DTYPE)
    if options.baselines:
        yield from baseline_renderers(shots.crops, shots.points, model.device)


RENDER_BATCH = 8  # frames per generator call: bounded memory at 256x256 and beyond


def render_all(renderer: Renderer, points: np.ndarray) -> np.ndarray:
    """Landmarks (N, 68, 2) in crop pixels -> generated frames (N, S, S, 3) uint8, in batches."""
    return np.concatenate([renderer.render(points[i : i + RENDER_BATCH]) for i in range(0, len(points), RENDER_BATCH)])
