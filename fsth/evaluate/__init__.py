"""Evaluation: a meta checkpoint and held-out videos -> the paper's figures, per setting (``fsth evaluate``).

In: a meta checkpoint (``Checkpoint``), test videos of people it was not trained on, the landmark detector, the
metrics (``fsth.metrics``, by name) and ``EvalOptions``; optionally cross-reenactment sources. Out: a report, a
JSON-safe dict (layout in ``evaluate``'s docstring), one row per video and one summary per setting;
``report_table`` shows the summary.

Modules: ``options`` (``EvalOptions``, ``MetricOptions``), ``protocol`` (test videos and their shot/target split),
``renderers`` (FF, FT and the baselines), ``sources`` (cross-reenactment sources), ``scoring`` (settings and their
metrics, one ``Frames`` record per video and setting), ``report`` (the report's parts, its table, sample grids,
``write_report``), ``run`` (``evaluate``).

**Self-reenactment** (the paper's protocol), for each test video:

1. it is tracked once (``track_video`` with the checkpoint's crop policy: landmarks and smoothed crop boxes);
2. its n frames with a face, in order, are split in two parts: the first floor(n / 2) are the *shot part*, the
   others the *target part*. The targets are ``targets`` frames spread evenly over the target part (``spread``:
   the centres of equal parts; all of it when it is shorter), the same ones for every setting;
3. for each K of ``shots``, the shots are K frames spread evenly over the shot part (all of it when it is shorter;
   the report gives the frames used) and e_hat is the embedder's mean over them (``embed``). Feed-forward (FF): the
   meta generator with e_hat renders every target from the target's own landmarks, drawn in the target's own
   smoothed crop box (``face_pair`` made both the real crop and the landmarks, ``Renderer`` draws and renders), so
   the generated and the real crop line up pixel for pixel. Fine-tuned (FT, with ``finetune_steps``): G' and D'
   start from the same e_hat (``person_networks``), are fine-tuned on the K shots (``finetune``), and G' renders
   the same targets;
4. every (generated, real) pair of crops at model size is scored: ``ssim``, ``psnr``, ``l1``; ``csim`` with both
   faces located by the target's landmarks (identity where the face was asked to be; pose is AKD's business);
   ``akd`` with landmarks detected on both crops resized to 256x256 (the same detector as the tracking);
   ``fid`` over all generated against all real target frames of a setting, over every video.

**Cross-reenactment**, for each source (photos, a directory of them or a video: its shots, embedded; or an
``embedding`` / ``person`` file) and each test video as the driver: the driver's motion is retargeted onto the
source's face exactly as ``fsth animate`` does (``plan_targets``: reference frame, head motion and expression), and
``targets`` frames spread over the driver's frames with a face are rendered. There is no ground truth: identity
is ``csim`` of each generated frame against the source's first shot (its photo), both faces located by their
landmarks (the generated one by the landmarks the generator was given); motion is ``akd`` between landmarks
detected on the generated frame (at 256x256) and the retargeted landmarks the generator was given, with the
detection-failure rate beside it. The other metrics need a real frame (``Metric.needs``) and are left out.

A video that cannot be evaluated (missing, unreadable, no face, fewer than 2 frames with a face) is a row with its
reason, and the run goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fsth import lazy_exports

_MODULES = {
    "options": ("BASELINES", "MODES", "EvalOptions", "MetricOptions", "parse_shots"),
    "protocol": ("TestVideo", "load_test_video", "split_parts"),
    "renderers": ("EVAL_DTYPE", "CopyRenderer", "baseline_renderers", "person_renderers", "render_all"),
    "report": ("format_result", "print_table", "report_table", "samples_dir", "write_report"),
    "run": ("evaluate",),
    "scoring": ("Setting", "score"),
    "sources": ("CrossSource", "load_cross_source"),
}
__all__ = [
    "BASELINES",
    "CopyRenderer",
    "CrossSource",
    "EVAL_DTYPE",
    "EvalOptions",
    "MODES",
    "MetricOptions",
    "Setting",
    "TestVideo",
    "baseline_renderers",
    "evaluate",
    "format_result",
    "load_cross_source",
    "load_test_video",
    "parse_shots",
    "person_renderers",
    "print_table",
    "render_all",
    "report_table",
    "samples_dir",
    "score",
    "split_parts",
    "write_report",
]
__getattr__ = lazy_exports(__name__, _MODULES)

if TYPE_CHECKING:
    from fsth.evaluate.options import BASELINES, MODES, EvalOptions, MetricOptions, parse_shots
    from fsth.evaluate.protocol import TestVideo, load_test_video, split_parts
    from fsth.evaluate.renderers import EVAL_DTYPE, CopyRenderer, baseline_renderers, person_renderers, render_all
    from fsth.evaluate.report import format_result, print_table, report_table, samples_dir, write_report
    from fsth.evaluate.run import evaluate
    from fsth.evaluate.scoring import Setting, score
    from fsth.evaluate.sources import CrossSource, load_cross_source
