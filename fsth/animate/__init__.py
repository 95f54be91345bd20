"""Animation: a driver's face motion -> video of the source person (``fsth animate``).

Stage: few-shot use, the last one. In: a ``Person`` (``fsth.fewshot``: generator, face shape, crop policy), a driver
(a video file or a camera; its landmarks from ``Person.detector``) and ``AnimateOptions``. Out: an mp4 at the
driver's frame rate with its audio (or a preview window for a camera), and ``AnimateStats``.

Per driver frame: its landmarks (tracked), the driver's motion carried over to the source's face
(``fsth.landmarks.retarget``; ``absolute`` takes the driver's landmarks in its own crop instead), the landmark image
of the result (``draw_sketch``, the one renderer), the generator (its inference form, in batches), then the frame
as asked: the generated crop, the face pasted back into the source photo (``paste_back``), and/or the panels
driver | landmark image | result.

Two ways through a driver:

* a video file (default): pass 1 tracks the whole video's landmarks (kept: about 1 KB per frame), which lets the
  driver's reference frame be the one whose expression is closest to the source's; pass 2 streams. Decoding
  (ffmpeg in its own process plus a reader thread), drawing landmark images, the generator (main thread) and
  compositing + encoding (a writer thread, ffmpeg in its own process) overlap, joined by small bounded queues:
  memory stays flat however long the driver is.
* live (a camera, or ``live`` for a file): one causal pass, tracking frame by frame in the producer thread; the
  reference is the first frame with a face (``r`` in the preview takes a new one); batches of one for latency; a
  camera's stale frames are dropped (only the newest is rendered) and the recording repeats frames to keep real
  time. The preview window (driver | result, ``q`` quits) needs a display; without one it is a one-line error.

The modules, in the order a frame goes through them (driver frames -> landmarks -> targets -> renderer ->
compositor -> writer):

* ``drivers``: the driver's frames with their target landmarks and landmark images (``_Frame``): ``parse_driver``,
  ``plan_targets`` (a tracked file retargeted, its reference frame), a file's second pass, the live pass.
* ``compose``: ``Compositor``, a face crop -> the output frame (``paste_back``, ``face_mask``, side-by-side panels).
* ``pipeline``: ``animate()``, which joins them, writes the mp4 (``VideoWriter``) and returns ``AnimateStats``;
  ``check_output``.
* ``streams``: the threads and queues between the stages, and the cleanup that leaves no half-written output.
* ``preview``: the live window (``Preview``, ``require_display``). ``options``: ``AnimateOptions``.

The renderer (target landmarks -> generated face crops) is the few-shot layer's (``fsth.fewshot.Renderer``).

Every public name is importable from ``fsth.animate`` (each loads its module when first used: the options can be
read without loading the networks). Names with an underscore are shared between the package's
modules, not for use outside it. ``Renderer`` is the piece evaluation reuses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fsth import lazy_exports

_MODULES = {
    "compose": ("Compositor", "face_mask", "paste_back"),
    "drivers": ("checked_driver", "parse_driver", "plan_targets"),
    "options": ("REFERENCES", "AnimateOptions", "batch_size_for", "parse_reference"),
    "pipeline": ("ENCODER_PRESET", "OUTPUT_SUFFIXES", "AnimateStats", "animate", "check_output"),
    "preview": ("Preview", "require_display"),
}
__all__ = [
    "AnimateOptions",
    "AnimateStats",
    "Compositor",
    "ENCODER_PRESET",
    "OUTPUT_SUFFIXES",
    "Preview",
    "REFERENCES",
    "animate",
    "batch_size_for",
    "check_output",
    "checked_driver",
    "face_mask",
    "parse_driver",
    "parse_reference",
    "paste_back",
    "plan_targets",
    "require_display",
]


__getattr__ = lazy_exports(__name__, _MODULES)

if TYPE_CHECKING:
    from fsth.animate.compose import Compositor, face_mask, paste_back
    from fsth.animate.drivers import checked_driver, parse_driver, plan_targets
    from fsth.animate.options import REFERENCES, AnimateOptions, batch_size_for, parse_reference
    from fsth.animate.pipeline import ENCODER_PRESET, OUTPUT_SUFFIXES, AnimateStats, animate, check_output
    from fsth.animate.preview import Preview, require_display
