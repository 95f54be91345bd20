"""Animation: a driver's face motion -> video of the source person (``fsth animate``).

Stage: few-shot use, the last one. In: a ``Person`` (``fsth.person``: generator, face shape, crop policy), a driver
(a video file or a camera), a landmark detector and ``AnimateOptions``. Out: an mp4 at the driver's frame rate with
its audio (or a preview window for a camera), and ``AnimateStats``.

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

``Renderer`` (landmarks -> generated frames for one person) is the piece evaluation reuses.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from fsth import console
from fsth.errors import InputError, NoFaceError
from fsth.landmarks.crop import BoxFollower, CropPolicy
from fsth.landmarks.detectors import LandmarkDetector
from fsth.landmarks.parts import BROWS, JAW
from fsth.landmarks.retarget import MotionTransfer, choose_reference, hold_last, retarget
from fsth.landmarks.sketch import draw_landmarks, draw_sketch, sketch_thickness
from fsth.landmarks.tracker import LandmarkTracker, track_video
from fsth.person import Person
from fsth.video import VideoReader, VideoWriter, put_unless, read_image

OUTPUT_SUFFIXES = (".mp4", ".m4v")
REFERENCES = ("auto", "first", "closest")  # or a frame index


@dataclass
class AnimateOptions:
    absolute: bool = False  # drive with the driver's landmarks as they are (in its own crop), no retargeting
    head_motion: bool = True  # retargeting carries the head's motion too (off: expression only)
    reference: str | int = "auto"  # the driver's reference frame: auto | first | closest | a frame index
    side_by_side: bool = False  # write driver | landmark image | result
    paste_back: bool = False  # paste the generated face back into the source photo
    audio: bool = True  # mux the driver's audio track
    batch_size: int = 2  # frames per generator call (file drivers; live drivers use 1)
    live: bool = False  # one causal pass (cameras always)
    preview: bool = False  # show driver | result in a window as frames are made
    warp_only: bool = False  # the warp alone, no network (``--model warp``)


@dataclass
class AnimateStats:
    frames: int  # frames rendered (= driver frames for a file)
    written: int  # frames written to the output (a camera recording repeats frames to keep real time)
    seconds: float  # wall time of the frame loop (pass 2 for a file; includes pass 1's tracking too)
    faces: int  # driver frames with a face
    reference: int | None  # the driver's reference frame (None: absolute mode)
    fps: float  # the driver's (and output's) frame rate
    size: tuple[int, int] | None  # output frame (width, height)
    tracking: float = 0.0  # seconds of a driver file's tracking pass (part of ``seconds``)

    @property
    def frames_per_second(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


# ---------------------------------------------------------------------------------------------- rendering


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

    def generate(self, sketches: np.ndarray, points: np.ndarray | None = None) -> Rendered:
        """Frames for landmark images ``sketches`` (B, S, S, 3) uint8 of the landmarks ``points`` (B, 68, 2) (a
        warp-guided generator and the warp alone need them)."""
        from fsth.models import images_to_tensor, tensor_to_images
        from fsth.models.generator import blend

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
        return self.generate(np.stack([self.sketch(p) for p in points]), points).faces


# ---------------------------------------------------------------------------------------------- composing


def face_mask(points: Iterable[np.ndarray], size: int) -> np.ndarray:
    """Soft mask (size, size) float32 in [0, 1] over the face of each landmark set (68, 2) in crop pixels: the
    union of their outlines (jaw, and the brows raised by a fifth of the face height to take in the forehead),
    feathered by a Gaussian of 3% of the crop."""
    import cv2

    mask = np.zeros((size, size), np.uint8)
    for p in points:
        p = np.asarray(p, np.float32)
        height = float(np.linalg.norm(p[8] - 0.5 * (p[19] + p[24])))
        up = 0.5 * (p[19] + p[24]) - p[8]
        up /= max(float(np.linalg.norm(up)), 1e-6)
        outline = np.concatenate([p[JAW], p[BROWS] + up * 0.2 * height])
        cv2.fillConvexPoly(mask, cv2.convexHull(np.round(outline * 16).astype(np.int32)), 255, cv2.LINE_AA, 4)
    sigma = 0.03 * size
    return cv2.GaussianBlur(mask, (0, 0), sigma).astype(np.float32) / 255.0


def _photo_region(box: np.ndarray, shape, pad: int) -> tuple[int, int, int, int]:
    """The photo pixels (ix0, iy0, ix1, iy1) that crop box ``box`` covers (``pad`` more on the far sides), clipped
    to a photo of ``shape``."""
    h, w = shape[:2]
    x0, y0, x1, y1 = (float(v) for v in box)
    return (
        max(int(np.floor(x0)), 0),
        max(int(np.floor(y0)), 0),
        min(int(np.ceil(x1)) + pad, w),
        min(int(np.ceil(y1)) + pad, h),
    )


def _into_region(image: np.ndarray, box: np.ndarray, region, border: int, value: float = 0.0) -> np.ndarray:
    """A crop-sized image (S, S[, C]) that shows ``box`` of a photo, resampled to that photo's pixels ``region``
    (photo pixel p <-> crop pixel q = (p - x0) * S / side, CropPolicy's convention); outside the crop ``border``
    (an OpenCV border mode) with ``value``."""
    import cv2

    size = image.shape[0]
    x0, y0, x1, y1 = (float(v) for v in box)
    ix0, iy0, ix1, iy1 = region
    s, t = size / (x1 - x0), size / (y1 - y0)
    M = np.array([[s, 0.0, (ix0 - x0) * s], [0.0, t, (iy0 - y0) * t]])
    return cv2.warpAffine(
        image,
        M,
        (ix1 - ix0, iy1 - iy0),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=border,
        borderValue=value,
    )


def paste_back(photo: np.ndarray, face: np.ndarray, box: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``photo`` (H, W, 3) with the crop ``face`` (S, S, 3), which shows ``box`` of it, blended in through ``mask``
    (S, S) in [0, 1]. Only the box's part of the photo is touched; returns a new image."""
    import cv2

    out = photo.copy()
    ix0, iy0, ix1, iy1 = region = _photo_region(box, photo.shape, pad=1)
    if ix1 <= ix0 or iy1 <= iy0:
        return out
    face_roi = _into_region(face, box, region, cv2.BORDER_REPLICATE)
    alpha = _into_region(mask, box, region, cv2.BORDER_CONSTANT, 0.0)
    out[iy0:iy1, ix0:ix1] = cv2.blendLinear(face_roi, photo[iy0:iy1, ix0:ix1], alpha, 1.0 - alpha)
    return out


def _fit_height(image: np.ndarray, height: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    if h == height:
        return image
    width = max(1, int(round(w * height / h)))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if h > height else cv2.INTER_LINEAR)


@dataclass
class FaceLayers:
    """One generated frame: the crop, and for warp models what ``--paste-back`` recomposes at the photo's size."""

    face: np.ndarray  # (S, S, 3) uint8
    drawn: np.ndarray | None = None  # (S, S, 3) uint8, warp-guided G only
    mask: np.ndarray | None = None  # (S, S) float32, warp-guided G only


class Compositor:
    """Generated crop -> output frame per the options: the crop, or pasted back into the source photo, and in
    side-by-side mode the panels driver | landmark image | result at the result's height (with paste-back, the
    landmarks are drawn where they are in the photo, so the panels line up).

    With a warp model (``warps``), paste-back warps the photo itself at its own resolution (``warp_region``, the
    spline of its crop) instead of enlarging the 256x256 crop: the warp alone keeps every pixel of the photo's
    detail; a warp-guided G's drawn picture is blended in through its mask, enlarged from the crop."""

    def __init__(self, person: Person, options: AnimateOptions, warps: bool = False):
        self.side_by_side = options.side_by_side
        self.size = person.size
        self.warps = warps
        self.photo = self.box = None
        if options.paste_back:
            if person.photo is None or person.box is None:
                raise InputError(
                    f"{person.name}: --paste-back needs a photo as SOURCE (a file or a directory of "
                    "photos: the face goes back into the first one)"
                )
            self.photo, self.box = read_image(person.photo), person.box
            self.source_points = person.points[0]
            if warps:
                import torch

                from fsth.models import images_to_tensor

                self._photo_tensor = images_to_tensor(self.photo[None])  # (1, 3, H, W)
                self._torch = torch

    def result(self, face: FaceLayers | np.ndarray, points: np.ndarray) -> np.ndarray:
        layers = face if isinstance(face, FaceLayers) else FaceLayers(face)
        if self.photo is None:
            return layers.face
        if self.warps:
            return self._warped_photo(layers, points)
        mask = face_mask([self.source_points, points], layers.face.shape[0])
        return paste_back(self.photo, layers.face, self.box, mask)

    def _warped_photo(self, layers: FaceLayers, points: np.ndarray) -> np.ndarray:
        """The photo warped at its resolution inside the crop box (the border anchors keep the box's edge in
        place), a warp-guided G's drawn picture blended in through its mask."""
        import cv2

        from fsth.models import tensor_to_images
        from fsth.models.warp import warp_region

        torch = self._torch
        ix0, iy0, ix1, iy1 = region = _photo_region(self.box, self.photo.shape, pad=0)
        out = self.photo.copy()
        if ix1 <= ix0 or iy1 <= iy0:
            return out
        src = torch.as_tensor(np.asarray(self.source_points, np.float32))[None]
        dst = torch.as_tensor(np.asarray(points, np.float32))[None]
        with torch.inference_mode():
            warped = tensor_to_images(warp_region(self._photo_tensor, self.box, src, dst, self.size, region))[0]
        if layers.mask is not None:
            drawn = _into_region(layers.drawn, self.box, region, cv2.BORDER_REPLICATE)
            alpha = _into_region(layers.mask, self.box, region, cv2.BORDER_CONSTANT, 1.0)
            warped = cv2.blendLinear(warped, drawn, alpha, 1.0 - alpha)
        out[iy0:iy1, ix0:ix1] = warped
        return out

    def panels(
        self, driver: np.ndarray | None, sketch: np.ndarray, result: np.ndarray, points: np.ndarray | None = None
    ) -> np.ndarray:
        if not self.side_by_side:
            return result
        h = result.shape[0]
        if self.photo is not None and points is not None:  # landmarks where the face is in the pasted-back photo
            sketch = np.zeros_like(self.photo)
            side = float(self.box[2] - self.box[0])
            draw_landmarks(sketch, CropPolicy.from_crop(points, self.box, self.size), sketch_thickness(int(side)))
        return np.concatenate([_fit_height(driver, h), _fit_height(sketch, h), result], axis=1)

    def __call__(self, driver: np.ndarray | None, sketch: np.ndarray, face, points: np.ndarray):
        return self.panels(driver, sketch, self.result(face, points), points)


# ---------------------------------------------------------------------------------------------- threads


class _Background:
    """Iterate ``items`` in a thread, ahead of the consumer by at most ``depth`` items; errors re-raised here."""

    _END = object()

    def __init__(self, items: Iterable, depth: int = 4):
        self._items = items
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for item in self._items:
                if not self._put(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            self._error = exc
        finally:
            close = getattr(self._items, "close", None)
            if close is not None:  # a generator: run its cleanup (close its video reader) in this thread
                close()
        self._put(self._END)

    def _put(self, item) -> bool:
        return put_unless(self._queue, item, self._stop.is_set)

    def __iter__(self) -> Iterator:
        while True:
            item = self._queue.get()
            if item is self._END:
                if self._error is not None:
                    raise self._error
                return
            yield item

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class _Sink:
    """Call ``fn(item)`` for each ``put`` item in a thread (at most ``depth`` waiting); ``close`` waits for it and
    re-raises its error, which also surfaces at the next ``put``."""

    _END = object()

    def __init__(self, fn: Callable, depth: int = 4):
        self._fn = fn
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._END:
                return
            if self._error is None:
                try:
                    self._fn(item)
                except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
                    self._error = exc

    def put(self, item) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(item)

    def close(self) -> None:
        self._queue.put(self._END)
        self._thread.join()
        if self._error is not None:
            raise self._error


# ---------------------------------------------------------------------------------------------- the driver


@dataclass
class _Frame:
    index: int
    time: float  # seconds since the start (capture time for a camera)
    driver: np.ndarray | None  # the driver frame, when it is shown
    points: np.ndarray  # (68, 2) landmarks to render, in the source crop's pixels
    sketch: np.ndarray  # (S, S, 3) their landmark image


def parse_driver(driver: str | os.PathLike | int) -> str | int:
    """A camera index (``0``; a string of digits that is not an existing file) or a path."""
    if isinstance(driver, int):
        return driver
    text = str(driver)
    return int(text) if text.isdigit() and not Path(text).exists() else text


def plan_targets(track, source: np.ndarray, size: int, options: AnimateOptions) -> tuple[np.ndarray, int | None]:
    """Landmarks to render for every frame of a tracked driver (N, 68, 2) in crop pixels, and the reference frame.

    Retargeted onto ``source`` (68, 2) relative to the reference frame (options.reference: auto/closest = the
    frame with the expression closest to the source's, first = the first frame with a face, or an index), or with
    ``absolute`` the driver's own landmarks in its (smoothed) crop boxes.
    """
    valid = track.valid
    if options.absolute:
        crop = CropPolicy.to_crop(track.landmarks, track.boxes, size)
        return hold_last(crop, valid, crop[np.argmax(valid)]), None
    ref = options.reference
    if ref in ("auto", "closest"):
        ref = choose_reference(track.landmarks, valid, source)
    elif ref == "first":
        ref = int(np.argmax(valid))
    else:
        ref = int(ref)
        if not 0 <= ref < len(track) or not valid[ref]:
            raise InputError(f"--reference {ref}: the driver has no face in frame {ref} (it has {len(track)} frames)")
    out = np.empty_like(track.landmarks)
    out[valid] = retarget(source, track.landmarks[valid], track.landmarks[ref], head_motion=options.head_motion)
    return hold_last(out, valid, source), ref


def _file_frames(driver: Path, targets: np.ndarray, size: int, fps: float, with_frames: bool) -> Iterator[_Frame]:
    """Pass 2 over a tracked driver file: the landmark image of every frame (and the frame, when shown)."""
    frames = VideoReader(driver) if with_frames else None
    try:
        source = iter(frames) if frames is not None else iter(lambda: None, 0)
        for i in range(len(targets)):
            frame = next(source, None)
            if with_frames and frame is None:
                raise InputError(f"{driver}: fewer frames on the second read ({i}) than on the first ({len(targets)})")
            yield _Frame(i, i / fps, frame, targets[i], draw_sketch(targets[i], size))
    finally:
        if frames is not None:
            frames.close()


def _newest(frames: Iterable[np.ndarray]) -> Iterator[tuple[np.ndarray, float]]:
    """(frame, capture time) from a camera, dropping frames that came while the consumer was busy."""
    slot: queue.Queue = queue.Queue(maxsize=1)
    done = object()
    start = time.perf_counter()

    def grab():
        try:
            for frame in frames:
                item = (frame, time.perf_counter() - start)
                try:
                    slot.get_nowait()  # drop the stale one
                except queue.Empty:
                    pass
                slot.put(item)
        finally:
            try:
                slot.get_nowait()
            except queue.Empty:
                pass
            slot.put(done)

    threading.Thread(target=grab, daemon=True).start()
    while (item := slot.get()) is not done:
        yield item


class _LiveDriver:
    """One causal pass: track, retarget (reference: the first frame with a face) and draw, frame by frame."""

    def __init__(self, reader: VideoReader, person: Person, detector: LandmarkDetector, options: AnimateOptions):
        self.reader, self.size, self.options = reader, person.size, options
        self.tracker = LandmarkTracker(detector, fps=reader.fps)
        self.motion = MotionTransfer(person.points[0], absolute=options.absolute, head_motion=options.head_motion)
        self.boxes = BoxFollower(person.crop_policy, reader.fps)
        self.faces = 0
        self.reference: int | None = None

    def __iter__(self) -> Iterator[_Frame]:
        camera = isinstance(self.reader.source, int)
        timed = _newest(self.reader) if camera else ((f, i / self.reader.fps) for i, f in enumerate(self.reader))
        for i, (frame, t) in enumerate(timed):
            found = self.tracker.update(frame, t)
            if found is not None:
                self.faces += 1
                if self.options.absolute:
                    found = CropPolicy.to_crop(found, self.boxes(found), self.size)
                elif self.motion.reference is None:
                    self.reference = i
            points = self.motion.update(found)
            yield _Frame(i, t, frame, points, draw_sketch(points, self.size))


# ---------------------------------------------------------------------------------------------- preview


def require_display() -> None:
    """An ``InputError`` unless a window can open: on Linux an X11 or Wayland display must be set."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise InputError(
            "the preview window needs a display, and none is set (no DISPLAY / WAYLAND_DISPLAY): "
            "use --no-preview with -o FILE to record without a window"
        )


class Preview:
    """A window showing driver | result; ``show`` returns the key pressed ("q" quits, "r" new reference)."""

    NAME = "fsth animate (q: quit, r: new reference)"

    def __init__(self):
        import cv2

        require_display()
        try:
            cv2.namedWindow(self.NAME, cv2.WINDOW_NORMAL)
        except cv2.error as exc:
            raise InputError(
                f"cannot open the preview window ({str(exc).strip().splitlines()[-1]}): use --no-preview with -o FILE"
            ) from None
        self._cv2 = cv2

    def show(self, image: np.ndarray) -> str:
        cv2 = self._cv2
        cv2.imshow(self.NAME, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        key = cv2.waitKey(1) & 0xFF
        if cv2.getWindowProperty(self.NAME, cv2.WND_PROP_VISIBLE) < 1:
            return "q"  # the window was closed
        return chr(key) if key != 0xFF else ""

    def close(self) -> None:
        self._cv2.destroyWindow(self.NAME)


# ---------------------------------------------------------------------------------------------- the pipeline


def check_output(path: str | os.PathLike, force: bool = False, inputs: Iterable = ()) -> Path:
    """An output video path that may be written (``fsth.files.check_output_file``): an .mp4 in an existing
    directory where a file can be created, never an input, not an existing file unless ``force``."""
    from fsth.files import check_output_file

    return check_output_file(path, force, suffixes=OUTPUT_SUFFIXES, kind="the output is an mp4 video", inputs=inputs)


def animate(
    person: Person,
    driver: str | os.PathLike | int,
    output: str | os.PathLike | None,
    detector: LandmarkDetector,
    options: AnimateOptions = AnimateOptions(),
    *,
    device=None,
    renderer: Renderer | None = None,
) -> AnimateStats:
    """Render ``person`` driven by ``driver`` (a video path or a camera index) into ``output`` (an mp4; may be
    None when previewing a live driver). See the module docstring. The output is written atomically: on an
    error or Ctrl-C nothing is left under its name."""
    driver = parse_driver(driver)
    live = options.live or isinstance(driver, int)
    if output is None and not options.preview:
        raise InputError("nothing to do: give -o OUT.mp4 to write a video, or show the preview window")
    if live and options.reference not in ("auto", "first"):
        raise InputError(
            "a live driver takes its first frame with a face as the reference; "
            f"--reference {options.reference} needs a driver file (without --live)"
        )
    renderer = renderer or Renderer.of(person, device=device, warp_only=options.warp_only)
    compose = Compositor(person, options, warps=renderer.warps)
    preview = Preview() if options.preview else None
    try:
        if live:
            return _run_live(person, driver, output, detector, options, renderer, compose, preview)
        return _run_file(person, Path(driver), output, detector, options, renderer, compose, preview)
    finally:
        if preview is not None:
            preview.close()


ENCODER_PRESET = "veryfast"  # x264: ~40% of "medium"'s CPU time (the generator needs the cores); larger files


def _writer(output, fps: float, audio_from) -> VideoWriter | None:
    return VideoWriter(output, fps, audio_from=audio_from, preset=ENCODER_PRESET) if output is not None else None


def _run_file(person, driver: Path, output, detector, options, renderer, compose, preview) -> AnimateStats:
    start = time.perf_counter()
    track = track_video(driver, detector, crop_policy=person.crop_policy, label=f"driver {driver.name}")
    tracked = time.perf_counter() - start
    targets, reference = plan_targets(track, person.points[0], person.size, options)
    if reference is not None:
        console.debug(f"driver reference frame: {reference}")
    with_frames = options.side_by_side or preview is not None
    frames = _Background(_file_frames(driver, targets, person.size, track.fps, with_frames))
    writer = _writer(output, track.fps, driver if options.audio else None)
    stats = AnimateStats(0, 0, 0.0, track.num_valid, reference, track.fps, None, tracked)
    with _streams(frames, writer):
        _render_loop(frames, renderer, compose, writer, preview, options.batch_size, stats, len(track))
    stats.seconds = time.perf_counter() - start
    return stats


def _run_live(person, driver, output, detector, options, renderer, compose, preview) -> AnimateStats:
    start = time.perf_counter()
    with VideoReader(driver) as reader:
        live = _LiveDriver(reader, person, detector, options)
        frames = _Background(live, depth=1 if isinstance(driver, int) else 4)
        audio = driver if options.audio and not isinstance(driver, int) else None
        writer = _writer(output, reader.fps, audio)
        stats = AnimateStats(0, 0, 0.0, 0, None, reader.fps, None)
        with _streams(frames, writer):
            _render_loop(
                frames,
                renderer,
                compose,
                writer,
                preview,
                1,
                stats,
                reader.num_frames,
                on_key=lambda key: live.motion.reset() if key == "r" else None,
                check=lambda: _found_a_face(live, driver, stats),
            )
            stats.faces, stats.reference = live.faces, live.reference
    stats.seconds = time.perf_counter() - start
    return stats


@contextmanager
def _streams(frames: _Background, writer: VideoWriter | None) -> Iterator[None]:
    """On any error (Ctrl-C too) the output is removed, never left half-written; the producer thread is stopped
    in any case."""
    try:
        yield
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    finally:
        frames.close()


def _found_a_face(live: "_LiveDriver", driver, stats: AnimateStats) -> None:
    if live.faces == 0:
        name = f"camera {driver}" if isinstance(driver, int) else str(driver)
        raise NoFaceError(f"{name}: no face found in any of its {stats.frames} frames")


def _batches(items: Iterable[_Frame], size: int) -> Iterator[list[_Frame]]:
    batch: list[_Frame] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _render_loop(
    frames,
    renderer: Renderer,
    compose: Compositor,
    writer: VideoWriter | None,
    preview: Preview | None,
    batch_size: int,
    stats: AnimateStats,
    total: int | None,
    on_key: Callable[[str], None] = lambda key: None,
    check: Callable[[], None] = lambda: None,
) -> None:
    """The generator runs in this thread; compositing and encoding in a writer thread (compositing here when
    the preview shows the result, since the window belongs to this thread)."""

    def write(item: tuple[_Frame, np.ndarray, np.ndarray | None]) -> None:
        frame, face, out = item
        out = compose(frame.driver, frame.sketch, face, frame.points) if out is None else out
        stats.size = (out.shape[1], out.shape[0])
        if writer is None:
            return
        # one frame per driver frame; a camera's dropped frames are filled by repeating, to keep real time
        due = int(round(frame.time * stats.fps)) + 1
        while stats.written < due:
            writer.write(out)
            stats.written += 1

    sink = _Sink(write)
    quit_ = False
    with console.progress() as bar:
        task = bar.add_task("animate", total=total)
        try:
            for batch in _batches(frames, batch_size):
                rendered = renderer.generate(np.stack([f.sketch for f in batch]), np.stack([f.points for f in batch]))
                for j, frame in enumerate(batch):
                    face = rendered.frame(j)
                    out = None
                    if preview is not None:
                        result = compose.result(face, frame.points)
                        out = compose.panels(frame.driver, frame.sketch, result, frame.points)
                        key = preview.show(np.concatenate([_fit_height(frame.driver, result.shape[0]), result], 1))
                        quit_ = quit_ or key == "q"
                        on_key(key)
                    sink.put((frame, face, out))
                    stats.frames += 1
                bar.update(task, advance=len(batch))
                if quit_:
                    break
        finally:
            sink.close()
        bar.update(task, total=stats.frames, completed=stats.frames)
    check()  # before the output is moved into place
    if writer is not None:
        writer.close()
