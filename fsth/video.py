"""The one video and image layer: files and cameras in, RGB uint8 frames out; frames in, mp4 out.

Reading
    ``read_image(path)``          any image OpenCV decodes -> (H, W, 3) uint8 RGB (alpha composited on white,
                                  grayscale expanded, 16-bit scaled down, EXIF orientation applied; more than
                                  ``MAX_IMAGE_PIXELS`` refused from the header, before decoding).
    ``VideoReader(source)``       a video file (anything ffmpeg reads: mp4/h264, mov, mpeg4 part 2, webm, ...)
                                  or an int camera index; iterates (H, W, 3) uint8 RGB frames, streaming, by a
                                  constant clock (frame i shows time i / fps, variable frame rates included).
                                  Attributes ``fps``, ``num_frames``, ``width``, ``height``, ``has_audio``.
    ``probe_video(path)``         the same metadata (``VideoInfo``), decoding only the first frame.
Writing
    ``write_image(path, rgb)``    an image file (format from the suffix), atomically.
    ``VideoWriter(path, fps, audio_from=None)``  h264/yuv420p mp4, optionally with another file's audio;
                                  atomic (temp file in the same directory, renamed on a successful close).
Inputs
    ``is_image``/``is_video`` classify a path by extension (a one-frame GIF is an image); ``expand_inputs``
    turns files and directories into a sorted list of media files; ``spread(n, k)`` picks k frames spread
    evenly over n.

Video files are decoded by the ffmpeg executable that ships with imageio-ffmpeg, in its own process, with a
reader thread in front of it: decoding runs in parallel with whatever consumes the frames; their metadata is the
header imageio-ffmpeg parses. Cameras go through OpenCV. Every problem with a file is an ``InputError`` that names it.
"""

from __future__ import annotations

import functools
import logging
import os
import queue
import re
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from fsth import console
from fsth.errors import FsthError, InputError
from fsth.files import atomic_write, commit, temp_beside

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ts", ".gif"}
)


def is_image(path: str | os.PathLike) -> bool:
    """True if ``path`` has an image extension (``.jpg``, ``.png``, ...), or is a GIF of one frame (a still)."""
    suffix = Path(path).suffix.lower()
    return suffix in IMAGE_EXTENSIONS or (suffix == ".gif" and _one_frame_gif(Path(path)))


def is_video(path: str | os.PathLike) -> bool:
    """True if ``path`` has a video extension (``.mp4``, ``.mov``, ``.webm``, ...) and is not a one-frame GIF."""
    suffix = Path(path).suffix.lower()
    return suffix in VIDEO_EXTENSIONS and not (suffix == ".gif" and _one_frame_gif(Path(path)))


def _one_frame_gif(path: Path) -> bool:
    """Whether ``path`` is a readable GIF with a single frame (its blocks are walked, no pixels decoded)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return getattr(im, "n_frames", 1) == 1
    except Exception:  # missing or not a GIF: a video to the caller, which says what is wrong with it
        return False


def expand_inputs(paths: Iterable[str | os.PathLike]) -> list[Path]:
    """Files as given (whatever their extension) and, for each directory, its image and video files.

    Directories are searched recursively (a VoxCeleb tree is ``id/video/clip.mp4``) and their files sorted
    by path. Paths that do not exist are kept, so that the caller reports them with the other bad inputs.
    A directory without any image or video file is an ``InputError``.
    """
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and (is_image(f) or is_video(f)))
            if not found:
                raise InputError(f"{p}: directory has no image or video files")
            out.extend(found)
        else:
            out.append(p)
    return out


# ---------------------------------------------------------------------------------------------- images


def spread(n: int, k: int) -> list[int]:
    """``k`` indices spread evenly over ``range(n)`` (the centres of k equal parts; all of them if k >= n), in
    increasing order: the shots of a video or of photos, the frames kept of a clip (``fsth.dataset.build``), the
    targets of an evaluation. A list, so that it indexes an array and compares with a list alike."""
    if k >= n:
        return list(range(n))
    return [int((j + 0.5) * n / k) for j in range(k)]  # k < n: a step of n / k > 1, so no two are the same


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB.

    RGBA is composited over white, grayscale becomes three equal channels, 16-bit images are scaled to 8 bits,
    and the EXIF orientation is applied (the pixels come out the way a viewer shows them). An image of more than
    ``MAX_IMAGE_PIXELS`` is refused from its header, before it is decoded.
    """
    cv2 = quiet_cv2()
    path = Path(path)
    check_file(path)
    data = np.fromfile(path, dtype=np.uint8)  # bytes, so non-ASCII paths work too
    if data.size == 0:  # cv2.imdecode raises on an empty buffer
        raise InputError(f"{path}: empty file (0 bytes), not an image")
    orientation, fmt = _read_header(path, data)
    if data[:2].tobytes() == b"\xff\xd8":  # JPEG: 8-bit, no alpha; IMREAD_COLOR applies the EXIF orientation
        img = cv2.imdecode(data, cv2.IMREAD_COLOR)
    else:
        img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if (img is None or img.size == 0) and fmt:
        raise InputError(f"{path}: {_DAMAGED.format(fmt)}")
    if img is None or img.size == 0:
        raise InputError(f"{path}: not an image file (or a format OpenCV cannot decode)")
    if img.dtype == np.uint16:
        img = (img.astype(np.float32) / 257.0 + 0.5).astype(np.uint8)
    elif img.dtype != np.uint8:
        raise InputError(f"{path}: unsupported image sample type {img.dtype}")
    if img.ndim == 2:
        return _oriented(cv2.cvtColor(img, cv2.COLOR_GRAY2RGB), orientation)
    if img.shape[2] == 4:  # BGRA: composite over white
        alpha = img[:, :, 3:4].astype(np.float32) / 255.0
        bgr = img[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        img = (bgr + 0.5).astype(np.uint8)
    return _oriented(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), orientation)


MAX_IMAGE_PIXELS = 150_000_000  # 450 MB as RGB: a 108-megapixel phone photo is read, a 20000x20000 image is not


_MAGIC = ((b"\x89PNG", "PNG"), (b"\xff\xd8", "JPEG"), (b"GIF8", "GIF"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"))


_DAMAGED = "a truncated or damaged {} image (its header reads, its pixels do not)"


def _png_whole(im) -> bool:
    """Whether a PNG's chunks are all there with the right checksums (nothing is decoded): libpng would print its
    own complaint about a cut-short file on stderr before ours."""
    try:
        im.verify()
        return True
    except Exception:
        return False


def quiet_cv2():
    """``cv2``, its own log lines off: a missing camera printed 8 warnings, a truncated PNG one, before the
    ``error:`` line that says it (``-v`` shows them)."""
    import cv2

    levels = cv2.utils.logging
    levels.setLogLevel(levels.LOG_LEVEL_INFO if console.verbosity >= 2 else levels.LOG_LEVEL_SILENT)
    return cv2


def _read_header(path: Path, data: np.ndarray) -> tuple[int, str | None]:
    """From the image's header alone (nothing decoded): refuse one of more than ``MAX_IMAGE_PIXELS`` (decoding a
    20000x20000 PNG took 5 GB and 86 s); (the EXIF orientation 1-8 that a PNG or WebP carries before its pixels,
    which OpenCV does not apply (it does for JPEG and TIFF), else 1; the format Pillow names, None if unknown)."""
    import io
    import warnings

    from PIL import Image

    limit = f"the {MAX_IMAGE_PIXELS / 1e6:g} megapixels fsth reads; scale it down first"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data.tobytes())) as im:  # reads the header only
                (width, height), fmt, exif = im.size, im.format, im.info.get("exif")
                whole = _png_whole(im) if fmt == "PNG" else True
    except Image.DecompressionBombError as exc:  # beyond Pillow's own limit: its message has the count
        count = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{int(count.group(1)) / 1e6:g} megapixels" if count else "an image"
        raise InputError(f"{path}: {size}, more than {limit}") from None
    except Exception:  # cut short inside its header, or not an image Pillow knows: OpenCV decides
        head = data[:12].tobytes()
        return 1, next(
            (name for magic, name in _MAGIC if head.startswith(magic)), "WEBP" if head[8:] == b"WEBP" else None
        )
    if width * height > MAX_IMAGE_PIXELS:
        raise InputError(f"{path}: {width}x{height} pixels, more than {limit}")
    if not whole:
        raise InputError(f"{path}: {_DAMAGED.format(fmt)}")
    if fmt not in ("PNG", "WEBP") or not exif:
        return 1, fmt
    tags = Image.Exif()
    tags.load(exif)
    return (int(tags.get(0x0112, 1)) if tags.get(0x0112, 1) in range(1, 9) else 1), fmt


def _oriented(rgb: np.ndarray, orientation: int) -> np.ndarray:
    """``rgb`` turned the way EXIF ``orientation`` (1-8) says a viewer shows it."""
    turned = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.transpose(1, 0, 2),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
        8: lambda a: np.rot90(a, 1),
    }.get(orientation)
    return np.ascontiguousarray(turned(rgb)) if turned else rgb


def write_image(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 RGB image; the format follows the suffix (.png, .jpg, ...). Atomic."""
    import cv2

    path = Path(path)
    ok, data = cv2.imencode(path.suffix or ".png", cv2.cvtColor(np.asarray(image, np.uint8), cv2.COLOR_RGB2BGR))
    if not ok:
        raise InputError(f"{path}: cannot write an image with suffix {path.suffix!r}")
    return atomic_write(path, lambda f: f.write(data.tobytes()))


def check_file(path: str | os.PathLike) -> Path:
    """``path`` as a ``Path`` if it is a regular file; else an ``InputError`` saying what it is instead (missing, a
    directory, a FIFO or a device such as /dev/zero, which would be read forever)."""
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise InputError(f"{path}: no such file")
    kinds = (("a directory", path.is_dir), ("a FIFO", path.is_fifo), ("a device", path.is_char_device))
    what = next((name for name, test in kinds if test()), "a special file")
    raise InputError(f"{path}: is {what}, not a file")


# ---------------------------------------------------------------------------------------------- ffmpeg


def ffmpeg_exe() -> str:
    """Path of the ffmpeg executable bundled with imageio-ffmpeg."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


class _StderrCollector(threading.Thread):
    """Reads an ffmpeg process's stderr line by line so its pipe never fills, keeping it for the error checks."""

    def __init__(self, stream):
        super().__init__(daemon=True)
        self.stream = stream
        self.lines: list[str] = []
        self.start()

    def run(self) -> None:
        for raw in iter(self.stream.readline, b""):
            if len(self.lines) < 2000:
                self.lines.append(raw.decode("utf-8", "replace").rstrip())
        self.stream.close()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


# Lines by which ffmpeg says the input ended early or holds damaged data (as opposed to harmless warnings).
_CORRUPTION = re.compile(
    r"partial file|corrupt input packet|Packet corrupt|Invalid data found|error while decoding|"
    r"Decoding error|Invalid NAL unit|truncat|moov atom not found|End of file",
    re.IGNORECASE,
)


def _first_problem(text: str) -> str | None:
    """The most telling line of ffmpeg's complaints ("partial file" first), without its "[h264 @ 0x..]" prefix."""
    hits = [line for line in text.splitlines() if _CORRUPTION.search(line)]
    if not hits:
        return None
    best = next((line for line in hits if "partial file" in line), hits[0])
    return re.sub(r"^(\[[^\]]*\]\s*)+", "", best.strip()).rstrip(".")


def _last_error(text: str) -> str:
    lines = [
        ln.strip()
        for ln in text.replace("\r", "\n").splitlines()
        if ln.strip() and not ln.startswith(" ") and not ln.lstrip().startswith(("frame=", "size="))
    ]
    for line in reversed(lines):
        if "rror" in line or "not found" in line or "Invalid" in line:
            return re.sub(r"^(\[[^\]]*\]\s*)+", "", line)
    return lines[-1] if lines else "ffmpeg gave no reason"


@dataclass(frozen=True)
class VideoInfo:
    """What ffmpeg says about a video as it starts decoding it."""

    width: int  # frame size as decoded (after any rotation the file asks for)
    height: int
    fps: float  # 0.0 when the file gives none
    num_frames: int | None  # duration x fps: an estimate; None when the file gives no duration
    duration: float | None  # seconds
    has_audio: bool
    codec: str


# imageio-ffmpeg warns when the delivered frame size differs from the stored one, which is what a rotated clip
# (a phone video) is meant to do: not worth a line on the user's terminal.
logging.getLogger("imageio_ffmpeg").addFilter(lambda record: not record.getMessage().startswith("The frame size"))


def probe_video(path: str | os.PathLike) -> VideoInfo:
    """Metadata of a video file, from the header imageio-ffmpeg parses when ffmpeg starts decoding (only the first
    frame is decoded). ``InputError`` if it is missing, has no video stream, or ffmpeg cannot read it. A file
    probed before, unchanged since (same size and modification time), is not probed again."""
    path = Path(path)
    check_file(path)
    stat = path.stat()
    return _probe(path, path.resolve(), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _probe(path: Path, resolved: Path, size: int, mtime_ns: int) -> VideoInfo:
    """``probe_video`` of ``path`` (errors name it as given); the other arguments tell one file version."""
    import imageio_ffmpeg

    # The stream VideoReader reads; one decoder thread, as only the first frame is decoded (frame threads would
    # decode several before handing it over).
    frames = imageio_ffmpeg.read_frames(str(path), input_params=["-threads", "1"], output_params=["-map", "0:v:0"])
    try:
        meta = next(frames)
    except Exception as err:  # OSError carrying ffmpeg's stderr when no header came; or a header it cannot parse
        raise InputError(f"{path}: {_unreadable_reason(str(err))}") from None
    finally:
        frames.close()  # stops ffmpeg
    width, height = meta["size"]  # what is delivered: after the rotation the file asks for
    fps, duration = float(meta["fps"]), float(meta["duration"]) or None  # both 0 when ffmpeg gives none
    fps = fps or _stream_fps(path)
    return VideoInfo(
        width=width,
        height=height,
        fps=fps,
        num_frames=round(duration * fps) if duration and fps else None,
        duration=duration,
        has_audio="audio_codec" in meta,  # set when the file has an audio stream
        codec=meta["codec"].rstrip(","),  # "gif," when no profile follows the name
    )


def _stream_fps(path: Path) -> float:
    """The frame rate on ffmpeg's line for the video stream, where imageio-ffmpeg read none: it takes "1k fps" (a
    1000 fps clip) for no rate at all. 0.0 when the line gives none either."""
    proc = subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True)
    for line in proc.stderr.decode("utf-8", "replace").splitlines():
        rate = re.search(r" ([0-9]+(?:\.[0-9]+)?)(k?) (?:fps|tbr)\b", line) if "Video:" in line else None
        if rate:
            return float(rate.group(1)) * (1000 if rate.group(2) else 1)
    return 0.0


def _unreadable_reason(text: str) -> str:
    if "Input #" in text and "Video:" not in text:
        return "has no video stream"
    if "moov atom not found" in text:
        return "cannot read video: moov atom not found (the file is truncated, unfinished, or not really an mp4/mov)"
    return f"cannot read video ({_last_error(text)})"


# ---------------------------------------------------------------------------------------------- reading


PIPE_BYTES = 1 << 20  # Linux's limit for a user's pipe (/proc/sys/fs/pipe-max-size), its default 64 KiB


def widen_pipe(pipe) -> None:
    """Let ``pipe`` (to or from ffmpeg) hold ``PIPE_BYTES``: a few frames, where the default holds a third of a
    256x256 frame, so that the two ends wait on each other frame by frame. Where the system has no such call, or
    refuses, the pipe stays as it is."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):
        pass


def put_unless(q: queue.Queue, item, stopped) -> bool:
    """Put ``item`` into the bounded queue ``q``, waiting for room, unless ``stopped()`` becomes true first
    (the consumer went away); returns whether it was put. For producer threads."""
    while not stopped():
        try:
            q.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


class VideoReader:
    """Stream RGB uint8 frames from a video file or a camera.

    ``source`` is a path or an int camera index. Use as a context manager and iterate::

        with VideoReader("talk.mp4") as video:
            print(video.fps, video.num_frames, video.width, video.height, video.has_audio)
            for frame in video:          # (H, W, 3) uint8 RGB, one at a time
                ...

    Frames come by a constant clock: frame i shows the video at time i / ``fps``. A constant-frame-rate file's
    frames are delivered once each, in order; a variable-frame-rate file's are repeated or dropped by their
    timestamps (what keeps a driver in sync with its sound). ``num_frames`` is an estimate from the container
    (duration x fps; None for cameras); count the frames you get for the exact number.

    A file that cannot be opened raises ``InputError`` at construction. A file that ends early or holds
    damaged data (an interrupted download whose index is at the front) delivers the frames that decoded, then
    raises ``InputError`` naming the file instead of ending quietly; ``strict=False`` ends quietly instead
    (the problem is then in ``.problem``). Frames are decoded ahead in another process while you consume them.
    """

    def __init__(self, source: str | os.PathLike | int, *, strict: bool = True, queue_size: int = 8):
        self.source = source
        self.strict = strict
        self.problem: str | None = None
        self.frames_read = 0
        self._proc = None
        self._cap = None
        self._queue: queue.Queue | None = None
        self._thread = None
        self._stderr: _StderrCollector | None = None
        self._closed = False
        if isinstance(source, int):
            self._open_camera(source)
        else:
            self._open_file(Path(source), queue_size)

    # -- opening

    def _open_camera(self, index: int) -> None:
        cv2 = quiet_cv2()

        cap = cv2.VideoCapture(index)
        if not cap.isOpened():
            raise InputError(f"camera {index}: cannot open (no such camera, or it is in use)")
        ok, first = cap.read()
        if not ok:
            cap.release()
            raise InputError(f"camera {index}: opened but delivers no frames")
        self._cap = cap
        self._first = first
        self.height, self.width = first.shape[:2]
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = float(fps) if fps and fps > 0 else 30.0
        self.num_frames = None
        self.duration = None
        self.has_audio = False
        self.codec = "camera"

    def _open_file(self, path: Path, queue_size: int) -> None:
        info = probe_video(path)
        self.width, self.height = info.width, info.height
        self.fps = info.fps or 25.0
        self.num_frames = info.num_frames
        self.duration = info.duration
        self.has_audio = info.has_audio
        self.codec = info.codec
        # The frame clock: frame i shows time i / fps. A variable-frame-rate file (a phone's) has its frames repeated
        # or dropped by their timestamps to get there; played one per 1/fps as stored, one drifted up to 0.235 s
        # from its sound. A constant-rate file comes through frame for frame. No rate at all: frames as stored.
        clock = ["-vf", f"fps={info.fps:.6g}"] if info.fps > 0 else []  # from the first frame's time, not 0
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-nostats", "-i", str(path),
            "-map", "0:v:0", *clock, "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-",
        ]  # fmt: skip
        self._proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        widen_pipe(self._proc.stdout)
        self._stderr = _StderrCollector(self._proc.stderr)
        self._queue = queue.Queue(maxsize=queue_size)
        self._thread = threading.Thread(target=self._pump, daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        """Reader thread: pipe -> frames -> queue. Ends with None (clean end) or the short-read byte count."""
        nbytes = self.width * self.height * 3
        stdout = self._proc.stdout
        try:
            while True:
                frame = np.empty((self.height, self.width, 3), np.uint8)
                view = memoryview(frame).cast("B")
                got = 0
                while got < nbytes:
                    n = stdout.readinto(view[got:])
                    if not n:
                        break
                    got += n
                if got < nbytes:
                    self._put(("end", got))
                    return
                if not self._put(("frame", frame)):
                    return
        except (OSError, ValueError):  # the pipe was closed by close()
            self._put(("end", 0))

    def _put(self, item) -> bool:
        return put_unless(self._queue, item, lambda: self._closed)

    # -- iterating

    def __iter__(self) -> Iterator[np.ndarray]:
        if self._cap is not None:
            yield from self._iter_camera()
            return
        while True:
            kind, value = self._queue.get()
            if kind == "frame":
                self.frames_read += 1
                yield value
                continue
            self._finish(partial_bytes=value)
            return

    def _iter_camera(self) -> Iterator[np.ndarray]:
        import cv2

        frame = self._first
        while frame is not None and not self._closed:
            self.frames_read += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            ok, frame = self._cap.read()
            if not ok:
                return

    def _finish(self, partial_bytes: int) -> None:
        """End of stream: decide whether the file was complete."""
        rc = self._proc.wait(timeout=60)
        self._stderr.join(timeout=10)
        text = self._stderr.text
        problem = _first_problem(text)
        if rc != 0 and problem is None:
            problem = f"ffmpeg exited with code {rc}: {_last_error(text)}"
        if problem is None and partial_bytes:
            problem = "the last frame is incomplete"
        if problem is None and self.frames_read == 0:
            problem = "no frames could be decoded"
        self.close()
        if problem is not None:
            self.problem = problem
            msg = f"{self.source}: video is truncated or corrupt: decoding stopped after {self.frames_read} frames"
            if self.num_frames:
                msg += f" of about {self.num_frames}"
            msg += f" ({problem})"
            if self.strict or self.frames_read == 0:
                raise InputError(msg)
            console.warn(msg)

    # -- closing

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._cap is not None:
            self._cap.release()
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            try:
                self._proc.stdout.close()
            except OSError:
                pass
            self._proc.wait()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass


# ---------------------------------------------------------------------------------------------- writing

# x264's constant rate factor (0 lossless ... 51; lower is better and larger) by frame size. yuv420p keeps one colour
# sample per 2x2 pixels: at 256x256 a face's teeth span a few of them, and at CRF 18 the encoder spread red lips'
# colour over them (teeth read 0.37x a driver's share in fsth animate's output, 0.59x at CRF 12 and as large a
# share as the driver's before encoding), where a photo-sized frame has the pixels to spare. CRF 12 costs 2.3-2.6x
# the bytes (about 0.3-0.6 Mbit/s at 256x256, 25 frames/s) and no more encoding time.
SMALL_FRAME_CRF, LARGE_FRAME_CRF = 12, 18
SMALL_FRAME_PIXELS = 512 * 512


def default_crf(width: int, height: int) -> int:
    """The CRF ``VideoWriter`` encodes (width, height) frames with when none is given: ``SMALL_FRAME_CRF`` up to
    ``SMALL_FRAME_PIXELS``, ``LARGE_FRAME_CRF`` above."""
    return SMALL_FRAME_CRF if width * height <= SMALL_FRAME_PIXELS else LARGE_FRAME_CRF


class VideoWriter:
    """Write RGB uint8 frames to an mp4 (h264, yuv420p), atomically, optionally with another file's audio.

    ::

        with VideoWriter("out.mp4", fps=25, audio_from="driver.mp4") as out:
            for frame in frames:
                out.write(frame)          # (H, W, 3) uint8 RGB, same size every frame

    Frames go to a temp file in the output's directory, which is renamed to ``path`` when ``close()`` succeeds
    (the ``with`` block ends normally). If the block raises, the temp file is removed and ``path`` is left as
    it was. h264 in yuv420p needs even dimensions: an odd width or height is padded by one row/column that
    repeats the last one. ``audio_from``'s first audio track is muxed in (cut to the video's length, or padded
    with silence up to it) when it has one; otherwise the output has no audio. Every frame written is in the file.

    With audio, frames are encoded to a video-only temp file and the audio is muxed in by ``close()``, when the
    number of frames is known, so the file lasts exactly ``frames_written / fps``: muxing while streaming with
    ``-shortest`` let padded audio run up to ~2 s past the last frame when the encoder was starved of CPU (a
    frozen last frame in players).

    ``crf``: x264's quality, 0 (lossless) to 51; None: by the frame size (``default_crf``).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: float,
        *,
        audio_from: str | os.PathLike | None = None,
        crf: int | None = None,
        preset: str = "medium",
    ):
        self.path = Path(path)
        if not self.path.parent.is_dir():
            raise InputError(f"{self.path}: output directory {self.path.parent} does not exist")
        if not fps or fps <= 0:
            raise FsthError(f"{self.path}: frames per second must be positive, not {fps}")
        self.fps = float(fps)
        self.audio_from = Path(audio_from) if audio_from is not None else None
        self.crf, self.preset = crf, preset
        fd, tmp = temp_beside(self.path)
        os.close(fd)
        self._tmp = Path(tmp)
        self._video_tmp: Path | None = None  # video-only temp file when audio is muxed in at close()
        self._proc = None
        self._stderr: _StderrCollector | None = None
        self.size: tuple[int, int] | None = None  # (w, h) of the frames given
        self.frames_written = 0
        self._closed = False

    def _start(self, width: int, height: int) -> None:
        self.size = (width, height)
        if self.crf is None:
            self.crf = default_crf(width, height)
        out_w, out_h = width + width % 2, height + height % 2
        if (out_w, out_h) != (width, height):
            console.debug(f"{self.path}: {width}x{height} padded to {out_w}x{out_h} (h264 needs even sizes)")
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{out_w}x{out_h}", "-r", f"{self.fps:.6g}", "-i", "-",
        ]  # fmt: skip
        target = self._tmp
        if self.audio_from is not None and probe_video(self.audio_from).has_audio:
            fd, tmp = temp_beside(self.path)
            os.close(fd)
            self._video_tmp = target = Path(tmp)
        cmd += ["-c:v", "libx264", "-preset", self.preset, "-crf", str(self.crf), "-pix_fmt", "yuv420p"]
        cmd += ["-movflags", "+faststart", "-f", "mp4", str(target)]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        widen_pipe(self._proc.stdin)
        self._stderr = _StderrCollector(self._proc.stderr)

    def write(self, frame: np.ndarray) -> None:
        """Append one (H, W, 3) uint8 RGB frame."""
        if self._closed:
            raise FsthError(f"{self.path}: write() after close()")
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise FsthError(f"{self.path}: frames must be (H, W, 3) uint8 RGB, got {frame.dtype} {frame.shape}")
        h, w = frame.shape[:2]
        if self._proc is None:
            self._start(w, h)
        elif (w, h) != self.size:
            raise FsthError(
                f"{self.path}: frame {self.frames_written} is {w}x{h}, earlier frames {self.size[0]}x{self.size[1]}"
            )
        if w % 2 or h % 2:
            frame = np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        try:
            self._proc.stdin.write(np.ascontiguousarray(frame).data)
        except BrokenPipeError:
            self._proc.wait()
            self._stderr.join(timeout=5)
            self.abort()
            raise FsthError(f"{self.path}: video encoder failed: {_last_error(self._stderr.text)}") from None
        self.frames_written += 1

    def close(self) -> None:
        """Finish encoding and move the file into place. Raises if nothing was written or ffmpeg failed."""
        if self._closed:
            return
        if self._proc is None:
            self.abort()
            raise FsthError(f"{self.path}: no frames were written")
        self._proc.stdin.close()
        rc = self._proc.wait()
        self._stderr.join(timeout=10)
        self._closed = True
        if rc != 0:
            self._remove_temps()
            raise FsthError(f"{self.path}: video encoder failed: {_last_error(self._stderr.text)}")
        if self._video_tmp is not None:
            self._mux_audio()
        try:
            commit(self._tmp, self.path)
        finally:
            self._remove_temps()

    def _mux_audio(self) -> None:
        """Copy the encoded video and add ``audio_from``'s audio, padded with silence or cut to the video's length."""
        duration = self.frames_written / self.fps
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-i", str(self._video_tmp), "-i", str(self.audio_from), "-map", "0:v:0", "-map", "1:a:0",
            "-c:v", "copy", "-c:a", "aac", "-b:a", "160k", "-af", "apad", "-t", f"{duration:.6f}",
            "-movflags", "+faststart", "-f", "mp4", str(self._tmp),
        ]  # fmt: skip
        proc = subprocess.run(cmd, capture_output=True)
        self._video_tmp.unlink(missing_ok=True)
        if proc.returncode != 0:
            self._tmp.unlink(missing_ok=True)
            text = proc.stderr.decode("utf-8", "replace")
            raise FsthError(f"{self.path}: adding the audio of {self.audio_from} failed: {_last_error(text)}")

    def _remove_temps(self) -> None:
        self._tmp.unlink(missing_ok=True)
        if self._video_tmp is not None:
            self._video_tmp.unlink(missing_ok=True)

    def abort(self) -> None:
        """Stop encoding and remove the temp file; ``path`` is not touched."""
        if self._closed and not self._tmp.exists():
            return
        self._closed = True
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._remove_temps()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
