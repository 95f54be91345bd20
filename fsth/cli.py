"""The ``fsth`` command line: one thin function per subcommand over the core package.

Global options (before the subcommand): ``--device auto|cpu|cuda``, ``-v/--verbose``, ``-q/--quiet``,
``--version``. Data goes to stdout or to files; progress and messages go to stderr. A problem with the
user's input ends with one ``error: ...`` line on stderr and a non-zero exit (see ``fsth.errors``).
"""

from __future__ import annotations

import dataclasses
import enum
import errno
import functools
import io
import math
import os
import re
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
import typer.core

from fsth import __version__, console
from fsth.config import PRECISIONS, PRESETS, TrainConfig, TrainOptions
from fsth.errors import FsthError, InputError, Terminated, os_error_line, signals_as_interrupts
from fsth.landmarks.crop import CropPolicy


class _OneLineErrors(typer.core.TyperGroup):
    """Usage errors (a bad option value, a missing argument) as one ``error:`` line too, like every other problem
    with the user's input, with the command's --help named; not typer's usage text and boxed panel."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            with signals_as_interrupts():
                code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
                if sys.stdout is not None:
                    sys.stdout.flush()  # a full stdout (`> /dev/full`) fails here, not in the interpreter's exit
        except OSError as exc:  # --version, --help or the last flush; the commands' own are handled in command()
            sys.exit(_os_error_exit_code(exc))
        except _USAGE_ERRORS as exc:
            ctx = getattr(exc, "ctx", None)
            if type(exc).__name__ == "NoArgsIsHelpError":  # plain `fsth`: the help, as --help shows it
                typer.echo(ctx.get_help())
                sys.exit(exc.exit_code)
            message = " ".join(exc.format_message().split()).rstrip(".")
            # typer names an option's environment variable whether or not it is set: only blame it where it is
            message = re.sub(
                r" \(env var: '(\w+)'\)", lambda m: m.group(0) if os.environ.get(m.group(1)) else "", message
            )
            where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
            console.error(f"{message}{where}")
            sys.exit(exc.exit_code)
        except typer.Abort:
            console.error("interrupted")
            sys.exit(130)
        sys.exit(code if isinstance(code, int) else 0)


try:
    _USAGE_ERRORS: tuple[type[Exception], ...] = (typer.TyperException,)  # typer's own click (typer >= 0.2x)
except AttributeError:  # an older typer over click
    import click

    _USAGE_ERRORS = (click.ClickException,)

app = typer.Typer(
    name="fsth",
    cls=_OneLineErrors,
    help="Few-shot neural talking heads: landmarks, training, embedding, fine-tuning, animation, evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # --help in click's plain layout: typer's rich panels cut option names short at 80 columns or in a pipe
    # ("--frames-per-vid…") and mark every flag "<bool>" as if it took a value.
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


class DeviceChoice(str, enum.Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"fsth {__version__}")
        raise typer.Exit()


@app.callback()
def _global_options(
    device: Annotated[
        DeviceChoice,
        typer.Option(
            "--device",
            help="Where to run the networks: auto (CUDA when available), cpu or cuda.",
            envvar="FSTH_DEVICE",
        ),
    ] = DeviceChoice.auto,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show more detail on stderr.")] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Only errors on stderr: no progress bars or status lines.")
    ] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    from fsth.device import set_device

    console.set_verbosity(0 if quiet else 2 if verbose else 1)
    try:
        set_device(device.value)
    except FsthError as exc:
        console.error(str(exc))
        raise typer.Exit(2) from None


def command(func: Callable) -> Callable:
    """Register ``func`` as a subcommand whose ``FsthError``s become one stderr line + exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except FsthError as exc:
            console.error(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:  # Ctrl-C; SIGTERM and SIGHUP as Terminated (signals_as_interrupts)
            signum = exc.signum if isinstance(exc, Terminated) else 2
            console.error("interrupted" if signum == 2 else f"terminated by {exc}")
            raise typer.Exit(128 + signum) from None
        except OSError as exc:
            raise typer.Exit(_os_error_exit_code(exc)) from None

    return app.command()(wrapper)


def _os_error_exit_code(exc: OSError) -> int:
    """An ``OSError`` the machine caused as one ``error:`` line (``fsth.errors.os_error_line``) and exit code 1;
    a reader of stdout that stopped (`fsth landmarks x.mp4 | head -1`) as a quiet exit 0; any other is re-raised
    (a bug: its traceback). Stdout is pointed at /dev/null once it failed, so the interpreter's final flush of
    what it still holds does not fail again."""
    line = None if exc.errno == errno.EPIPE else os_error_line(exc)
    if line is None and exc.errno != errno.EPIPE:
        raise exc
    if exc.errno == errno.EPIPE or exc.filename is None:
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
    if line is None:
        return 0
    console.error(line)
    return 1


def _ignore_further_interrupts() -> None:
    """A command that is ending on Ctrl-C or SIGTERM ignores further ones, so that they cannot cut short its exit
    (a default SIGTERM would end it unreported; a KeyboardInterrupt in the interpreter's exit, with a traceback)."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_IGN)


def main() -> None:
    """Console-script entry point."""
    # OpenMP threads that spin while waiting stall for milliseconds at every parallel region when another
    # process holds a core: on a busy machine with few cores, fine-tuning steps and generator frames took several
    # times longer with spinning waiters. Sleeping waiters avoid that. Must be set before torch loads
    # (it loads lazily, inside the commands); a user's own setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    _closed_stdout_named()
    app()


class _ClosedStdout(io.TextIOBase):
    """``sys.stdout`` when the shell closed it (``>&-``): writing is an ``OSError`` (EBADF) naming no file, which
    ``fsth.errors.os_error_line`` calls standard output."""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "standard output is closed")


def _closed_stdout_named() -> None:
    """With stdout closed (``>&-``), /dev/null takes file descriptor 1 (else the next file opened would get it, and
    data meant for stdout would go into an output file) and ``sys.stdout`` becomes a ``_ClosedStdout``."""
    try:
        os.fstat(1)
        if sys.stdout is not None:
            return
    except OSError:
        fd = os.open(os.devnull, os.O_WRONLY)
        if fd != 1:
            os.dup2(fd, 1)
            os.close(fd)
    sys.stdout = _ClosedStdout()


def _between(low: float, high: float) -> Callable[[Optional[float]], Optional[float]]:
    """Option callback for a float option: a finite number in [low, high] (typer's min=/max= let NaN through and
    would call NaN "not <= high"); the range is stated in the option's help."""

    def check(value: Optional[float]) -> Optional[float]:
        if value is not None and not (math.isfinite(value) and low <= value <= high):
            raise typer.BadParameter(f"must be a finite number from {low:g} to {high:g}, not {value:g}")
        return value

    return check


# ---------------------------------------------------------------------------------------------- landmarks


class BackendChoice(str, enum.Enum):
    auto = "auto"
    mesh = "mesh"
    dlib = "dlib"
    fan = "fan"


class FormatChoice(str, enum.Enum):
    npz = "npz"
    jsonl = "jsonl"


_OUT, _LM, _CROP, _SKETCH, _DATA = "Output", "Landmarks", "Crop", "Sketch", "Dataset (--dataset)"


@command
def landmarks(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Image files, video files, or directories of them (searched recursively).",
            show_default=False,
            metavar="INPUT",
        ),
    ],
    output: Annotated[
        Optional[str],  # str, not Path: "out/" must keep its slash (a directory to create)
        typer.Option(
            "--output",
            "-o",
            help="Where to write: FILE.npz / FILE.jsonl for one input, a directory (one file per input) for "
            "several, or DIR/ for one. Without it: JSONL on stdout, one object per frame.",
            rich_help_panel=_OUT,
            show_default=False,
            metavar="PATH",
        ),
    ] = None,
    fmt: Annotated[
        Optional[FormatChoice],
        typer.Option(
            "--format",
            help="npz or jsonl (default: from -o's suffix; npz for a directory; jsonl on stdout).",
            rich_help_panel=_OUT,
            show_default=False,
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Overwrite outputs that already exist.", rich_help_panel=_OUT)
    ] = False,
    skip_existing: Annotated[
        bool,
        typer.Option(
            help="Skip inputs whose outputs already exist (resume an interrupted run over many files).",
            rich_help_panel=_OUT,
        ),
    ] = False,
    backend: Annotated[
        BackendChoice,
        typer.Option(
            help="Landmark detector: mesh (MediaPipe's 478-point face mesh with irises, offline; writes the mesh as "
            "well as the 68 points), dlib (offline), fan (face-alignment's FAN, the paper's; downloads weights on "
            "first use), or auto: mesh (dlib for --dataset).",
            rich_help_panel=_LM,
        ),
    ] = BackendChoice.auto,
    fan_weights: Annotated[
        Optional[Path],
        typer.Option(
            help="Local FAN weights (2DFAN4-*.pth.tar), or a directory with them and S3FD's s3fd-*.pth.",
            rich_help_panel=_LM,
            show_default=False,
        ),
    ] = None,
    face_index: Annotated[
        int,
        typer.Option(
            help="Which face when there are several: 0 = the largest, 1 = the next, ...", min=0, rich_help_panel=_LM
        ),
    ] = 0,
    smoothing: Annotated[
        float,
        typer.Option(
            help="Temporal smoothing strength of video landmarks (One-Euro filter): 0 = off, 1 = default, "
            "higher = smoother (up to 100). Adaptive: fast mouth motion is not delayed.",
            callback=_between(0, 100),
            rich_help_panel=_LM,
        ),
    ] = 1.0,
    redetect_every: Annotated[
        int,
        typer.Option(
            help="Confirm the tracked face with the face detector every N frames.", min=1, rich_help_panel=_LM
        ),
    ] = 10,
    crop_scale: Annotated[
        float,
        typer.Option(
            help="Crop box side as a multiple of the face size (jaw width), 0.5 to 10.",
            callback=_between(0.5, 10),
            rich_help_panel=_CROP,
        ),
    ] = CropPolicy.scale,
    crop_y_offset: Annotated[
        float,
        typer.Option(
            help="Crop box centre below the eyes-nose midpoint, in face sizes (negative: towards the forehead), "
            "-2 to 2.",
            callback=_between(-2, 2),
            rich_help_panel=_CROP,
        ),
    ] = CropPolicy.y_offset,
    sketch: Annotated[
        Optional[str],
        typer.Option(
            help="Also write the landmark images: an .mp4 (with the input's audio) for a video, .png for a photo; a "
            "directory for several inputs.",
            rich_help_panel=_SKETCH,
            show_default=False,
            metavar="PATH",
        ),
    ] = None,
    sketch_size: Annotated[
        int,
        typer.Option(
            help="Side of the landmark images (the crop the networks see).", min=16, max=2048, rich_help_panel=_SKETCH
        ),
    ] = 256,
    overlay: Annotated[
        bool,
        typer.Option(
            help="--sketch shows the landmarks and crop box drawn over the input frames instead.",
            rich_help_panel=_SKETCH,
        ),
    ] = False,
    dataset: Annotated[
        Optional[Path],
        typer.Option(
            help="Build a training dataset in this directory from a tree of videos (person/video/clip.mp4 or any "
            "folder of videos): face crops as JPEG + landmarks of frames spread over each video, a manifest, and "
            "a report of skipped videos. Re-running continues where it stopped.",
            rich_help_panel=_DATA,
            show_default=False,
            metavar="OUT_DIR",
        ),
    ] = None,
    frames_per_video: Annotated[
        int, typer.Option(help="Frames kept per video, spread over its length.", min=2, rich_help_panel=_DATA)
    ] = 32,
    size: Annotated[
        int,
        typer.Option(
            help="Side of the stored face crops (training resizes them to the model's size).",
            min=16,
            max=2048,
            rich_help_panel=_DATA,
        ),
    ] = 256,
    workers: Annotated[
        Optional[int],
        typer.Option(
            help="Worker processes, each with its own landmark detector. Default: one per CPU core (dlib), 1 (fan).",
            min=1,
            rich_help_panel=_DATA,
            show_default=False,
        ),
    ] = None,
    shard: Annotated[
        Optional[str],
        typer.Option(
            help="Build only shard i of n (i from 0), for n machines; the shards' manifests are read together.",
            rich_help_panel=_DATA,
            show_default=False,
            metavar="i/n",
        ),
    ] = None,
    jpeg_quality: Annotated[
        int, typer.Option(help="JPEG quality of the stored crops.", min=1, max=100, rich_help_panel=_DATA)
    ] = 90,
    min_frames: Annotated[
        int,
        typer.Option(
            help="Skip (and report) a video with a face in fewer of its kept frames.", min=1, rich_help_panel=_DATA
        ),
    ] = 9,
    track_every_frame: Annotated[
        bool,
        typer.Option(
            help="Track landmarks through every frame (the crops animate makes; 1.5-2.6x the CPU time) instead of "
            "a face search on the kept frames only.",
            rich_help_panel=_DATA,
        ),
    ] = False,
    retry_failed: Annotated[
        bool, typer.Option(help="Try again the videos an earlier run reported as bad.", rich_help_panel=_DATA)
    ] = False,
) -> None:
    """68-point face landmarks of photos and videos, with the crop box every later stage uses.

    Videos are tracked frame by frame: one row per frame, frames without a face are marked invalid. Photos
    give one row. The .npz holds landmarks (frames, 68, 2) in source pixels, valid (frames,), crop boxes
    (frames, 4), fps, frame size, backend, source and the crop policy.

    Examples:

    \b
      fsth landmarks talk.mp4 -o talk.npz --sketch talk_sketch.mp4
      fsth landmarks talk.mp4 | head -1        # JSONL on stdout, a row per frame
      fsth landmarks videos/ photos/ -o landmarks/        # one .npz per input
      fsth landmarks voxceleb2/dev/mp4 --dataset data/vox2 --workers 16
    """
    from fsth.landmarks import CropPolicy, Smoothing, make_detector
    from fsth.landmarks.extract import plan_jobs, run_jobs

    if dataset is not None:
        given = [
            name
            for name, value in (
                ("-o", output),
                ("--format", fmt),
                ("--sketch", sketch),
                ("--overlay", overlay),
                ("--skip-existing", skip_existing),
            )
            if value
        ]
        if given:
            raise InputError(f"--dataset writes its own files (and always resumes): {', '.join(given)} does not apply")
        if len(inputs) != 1:
            raise InputError(f"--dataset takes one VIDEO_TREE directory, not {len(inputs)} inputs")
        from fsth.dataset.build import build_dataset, log_summary, parse_shard
        from fsth.dataset.store import DatasetSettings

        shard_ = parse_shard(shard)
        from fsth.files import check_writable, refuse_inputs

        refuse_inputs(dataset, (inputs[0], fan_weights), "--dataset")
        check_writable(dataset, "--dataset", directory=True)
        check_writable(dataset / "videos", "--dataset", directory=True)  # D/videos a file: before any tracking
        # auto: dlib for a training set (68 points; the mesh is ~4x slower on a CPU and adds nothing stored)
        detector = make_detector("dlib" if backend.value == "auto" else backend.value, fan_weights)
        smoothing_ = Smoothing(strength=smoothing)
        settings = DatasetSettings(
            size=size, frames_per_video=frames_per_video, min_frames=min_frames, jpeg_quality=jpeg_quality,
            landmark_backend=detector.name, track_every_frame=track_every_frame,
            crop_policy=CropPolicy(scale=crop_scale, y_offset=crop_y_offset).to_dict(),
            tracking={"face_index": face_index, **({"redetect_every": redetect_every,
                      "smoothing": smoothing_.to_dict()} if track_every_frame else {})},
        )  # fmt: skip
        try:
            summary = build_dataset(
                inputs[0], dataset, settings, detector, workers=workers, shard=shard_, retry_failed=retry_failed,
                force=force, fan_weights=str(fan_weights) if fan_weights else None,
            )  # fmt: skip
        except KeyboardInterrupt:
            _ignore_further_interrupts()  # the workers are ended, the lists written: only the exit is left
            raise
        log_summary(summary, dataset, shard_)
        if summary.stored + summary.before == 0:
            raise InputError(f"{dataset}: no video of {inputs[0]} could be stored")
        return

    jobs, out_format = plan_jobs(
        inputs, output, fmt.value if fmt else None, sketch, force=force, skip_existing=skip_existing
    )
    if not jobs:
        console.log("landmarks: every output exists already; nothing to do")
        return
    if overlay and sketch is None:
        raise InputError("--overlay draws into the --sketch video: give --sketch PATH too")
    detector = make_detector(backend.value, fan_weights)
    options = dict(
        face_index=face_index,
        redetect_every=redetect_every,
        smoothing=Smoothing(strength=smoothing),
        crop_policy=CropPolicy(scale=crop_scale, y_offset=crop_y_offset),
        sketch_size=sketch_size,
        overlay=overlay,
    )
    if run_jobs(jobs, detector, out_format, sys.stdout, **options):
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------------------- train


def _choices(name: str, values) -> type[enum.Enum]:
    """A str enum of ``values``, a choice option's type (``--help`` shows them as <a|b|c>)."""
    return enum.Enum(name, [(value, value) for value in values], type=str)


PresetChoice = _choices("PresetChoice", PRESETS)
PrecisionChoice = _choices("PrecisionChoice", PRECISIONS)


class ModelChoice(str, enum.Enum):
    checkpoint = "checkpoint"
    warp = "warp"


class MouthChoice(str, enum.Enum):
    auto = "auto"
    own = "own"
    driver = "driver"
    generator = "generator"


def _config_option(cls: type, name: str, *param_decls: str, **kwargs) -> typer.models.OptionInfo:
    """The option of field ``name`` of config dataclass ``cls``, from its metadata (``fsth.config.option``): the
    help with the default stated as "(default: X)", and the range: typer's min/max for an integer, ``_between`` for
    a float (whose help states the range). The parameter's default is None, not given: the field's default, the
    preset's or the resumed run's value applies."""
    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    meta, default = field.metadata, field.default
    shown = meta.get("shown", ("on" if default else "off") if isinstance(default, bool) else default)
    low, high = meta.get("low"), meta.get("high")
    if isinstance(default, float) and (low, high) != (None, None):
        kwargs["callback"] = _between(-math.inf if low is None else low, math.inf if high is None else high)
    else:
        kwargs.update(min=low, max=high)
    return typer.Option(*param_decls, help=f"{meta['help']} (default: {shown})", show_default=False, **kwargs)


_RUN, _SCHED, _METHOD = "Run", "Schedule and outputs", "Method (TrainConfig)"


@command
def train(
    dataset: Annotated[
        Path,
        typer.Argument(
            help="A dataset built by: fsth landmarks VIDEO_TREE --dataset DATASET.",
            show_default=False,
            metavar="DATASET",
        ),
    ],
    run_dir: Annotated[
        Path,
        typer.Option(
            help="The run directory: config, log, stats.jsonl, samples/, meta.safetensors, training state.",
            rich_help_panel=_RUN,
            show_default=False,
            metavar="DIR",
        ),
    ],
    preset: Annotated[Optional[PresetChoice], _config_option(TrainOptions, "preset", rich_help_panel=_RUN)] = None,
    batch_size: Annotated[Optional[int], _config_option(TrainOptions, "batch_size", rich_help_panel=_RUN)] = None,
    max_steps: Annotated[Optional[int], _config_option(TrainOptions, "max_steps", rich_help_panel=_RUN)] = None,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue the run in --run-dir exactly where its last checkpoint left it.", rich_help_panel=_RUN
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            help="Print the resolved configuration and parameter counts (JSON) and exit.", rich_help_panel=_RUN
        ),
    ] = False,
    seed: Annotated[Optional[int], _config_option(TrainOptions, "seed", rich_help_panel=_RUN)] = None,
    workers: Annotated[Optional[int], _config_option(TrainOptions, "workers", rich_help_panel=_RUN)] = None,
    precision: Annotated[
        Optional[PrecisionChoice], _config_option(TrainOptions, "precision", rich_help_panel=_RUN)
    ] = None,
    log_every: Annotated[Optional[int], _config_option(TrainOptions, "log_every", rich_help_panel=_SCHED)] = None,
    sample_every: Annotated[Optional[int], _config_option(TrainOptions, "sample_every", rich_help_panel=_SCHED)] = None,
    checkpoint_every: Annotated[
        Optional[int], _config_option(TrainOptions, "checkpoint_every", rich_help_panel=_SCHED)
    ] = None,
    snapshot_every: Annotated[
        Optional[int], _config_option(TrainOptions, "snapshot_every", rich_help_panel=_SCHED)
    ] = None,
    keep: Annotated[Optional[int], _config_option(TrainOptions, "keep", rich_help_panel=_SCHED)] = None,
    num_samples: Annotated[Optional[int], _config_option(TrainOptions, "num_samples", rich_help_panel=_SCHED)] = None,
    tensorboard: Annotated[
        Optional[bool],
        _config_option(TrainOptions, "tensorboard", "--tensorboard/--no-tensorboard", rich_help_panel=_SCHED),
    ] = None,
    shots: Annotated[Optional[int], _config_option(TrainConfig, "shots", rich_help_panel=_METHOD)] = None,
    content_loss: Annotated[
        Optional[bool],
        _config_option(TrainConfig, "content_loss", "--content-loss/--no-content-loss", rich_help_panel=_METHOD),
    ] = None,
    vgg19_weights: Annotated[
        Optional[str], _config_option(TrainConfig, "vgg19_weights", rich_help_panel=_METHOD, metavar="PATH")
    ] = None,
    vggface_weights: Annotated[
        Optional[str], _config_option(TrainConfig, "vggface_weights", rich_help_panel=_METHOD, metavar="PATH")
    ] = None,
    lr_eg: Annotated[Optional[float], _config_option(TrainConfig, "lr_EG", "--lr-eg", rich_help_panel=_METHOD)] = None,
    lr_d: Annotated[Optional[float], _config_option(TrainConfig, "lr_D", "--lr-d", rich_help_panel=_METHOD)] = None,
) -> None:
    """Meta-learn E, G and D on a dataset of videos (the paper's stage 1) into a run directory.

    Each step: K shots + 1 target from random videos; two discriminator updates (hinge) and one
    embedder/generator update (content + adversarial + feature matching + embedding match). The run directory
    gets the resolved config, log.txt, stats.jsonl, sample grids and meta.safetensors (what embed, finetune,
    animate and evaluate take); checkpoints are written every --checkpoint-every steps, at the end, and on
    Ctrl-C or SIGTERM, and --resume continues exactly.

    Examples:

    \b
      fsth train data/vox2 --run-dir runs/vox2        # paper256; bf16 on a GPU
      fsth train data/clips --run-dir runs/tiny --preset tiny --batch-size 4 \\
          --no-content-loss --max-steps 2000
      torchrun --nproc_per_node 8 -m fsth train data/vox2 --run-dir runs/vox2
    """
    from fsth.train import dry_run_text, resolve_run
    from fsth.train import train as run_training

    given = {
        "preset": preset, "batch_size": batch_size, "max_steps": max_steps, "seed": seed, "workers": workers,
        "precision": precision, "log_every": log_every, "sample_every": sample_every,
        "checkpoint_every": checkpoint_every, "snapshot_every": snapshot_every, "keep": keep,
        "num_samples": num_samples, "tensorboard": tensorboard, "shots": shots, "content_loss": content_loss,
        "vgg19_weights": vgg19_weights, "vggface_weights": vggface_weights, "lr_EG": lr_eg, "lr_D": lr_d,
    }  # fmt: skip
    given = {k: v.value if isinstance(v, enum.Enum) else v for k, v in given.items() if v is not None}
    if max_steps == 0 and not resume and not dry_run:
        raise InputError(
            "--max-steps 0 trains nothing and writes no checkpoint; give at least 1 (or --dry-run to see "
            "the configuration)"
        )
    if not dry_run:
        from fsth.files import check_writable, refuse_inputs

        refuse_inputs(run_dir, (dataset, vgg19_weights, vggface_weights), "--run-dir")
        check_writable(run_dir, "--run-dir", directory=True)
    if dry_run:
        typer.echo(dry_run_text(resolve_run(dataset, run_dir, given, resume=resume)))
        return
    result = run_training(dataset, run_dir, given, resume=resume)
    if result.stopped_by:
        import signal

        raise typer.Exit(128 + signal.Signals[result.stopped_by])


# ---------------------------------------------------------------------------------------------- few-shot use

_MOTION, _VIDEO, _TUNE = "Motion", "Output video", "Fine-tuning"

CheckpointOption = Annotated[
    Optional[Path],
    typer.Option(
        "--checkpoint",
        "-c",
        help="The meta checkpoint (from `fsth train`). Default: $FSTH_CHECKPOINT, else "
        "~/.local/share/fsth/meta.safetensors ($XDG_DATA_HOME/fsth/), else the model shipped with fsth.",
        show_default=False,
        metavar="META",
    ),
]
ShotsOption = Annotated[
    list[Path],
    typer.Option(
        "--shots",
        "-s",
        help="The person's photos (files or directories; repeat --shots for several) or one video (K frames are "
        "taken from it).",
        show_default=False,
        metavar="SHOTS",
    ),
]
KOption = Annotated[
    Optional[int],
    typer.Option(
        "--k",
        "-k",
        help="Number of shots: K frames spread over a video (default 8), or K of the photos (default: all).",
        min=1,
        show_default=False,
    ),
]
ForceOption = Annotated[bool, typer.Option("--force", "-f", help="Overwrite the output if it exists.")]
LandmarkBackendOption = Annotated[
    Optional[BackendChoice],
    typer.Option(
        "--backend",
        help="Landmark detector (default: the one the checkpoint was trained with; dlib when "
        "that is FAN and its weights are not on disk).",
        show_default=False,
    ),
]
FanWeightsOption = Annotated[
    Optional[Path], typer.Option(help="Local FAN weights for --backend fan.", show_default=False)
]
ContentLossOption = Annotated[
    Optional[bool],
    typer.Option(
        "--content-loss/--no-content-loss",
        help="Use the content loss L_CNT (needs VGG19 and VGGFace "
        "weights); without it fine-tuning still runs, with worse likeness. (default: the model's: on for "
        "the paper's, off for the warp-guided models, which train on pixel terms)",
        rich_help_panel=_TUNE,
        show_default=False,
    ),
]


def _weights_option(filename: str):
    return Annotated[
        Optional[Path],
        typer.Option(help=f"{filename} (default: the torch hub cache).", show_default=False, rich_help_panel=_TUNE),
    ]


Vgg19Option = _weights_option("vgg19-dcbb9e9d.pth")
VggFaceOption = _weights_option("vgg_face_dag.pth")


def _checkpoint_output(path: Path, force: bool, inputs=()) -> Path:
    """An output checkpoint path: .safetensors, in an existing directory, not overwritten unless ``force``."""
    return _output_file(path, force, ".safetensors", "checkpoints are safetensors files", inputs)


def _output_file(path: Path, force: bool, suffix: str, kind: str, inputs=()) -> Path:
    """An output path checked before any work (``fsth.files.check_output_file``)."""
    from fsth.files import check_output_file

    return check_output_file(path, force, suffixes=suffix, kind=kind, inputs=inputs)


def _checkpoint_kind(path) -> Optional[str]:
    """The kind a safetensors file says it is (None for any other file)."""
    from fsth.checkpoint import read_header

    try:
        return read_header(path)[0].get("kind")
    except FsthError:
        return None


def _meta_path(checkpoint: Optional[Path]) -> Optional[Path]:
    """The meta checkpoint a command will read (--checkpoint, $FSTH_CHECKPOINT or the default place), to keep
    outputs off it; None when there is none (loading it reports that)."""
    from fsth.checkpoint import find_meta_checkpoint
    from fsth.errors import CheckpointError

    try:
        return find_meta_checkpoint(checkpoint)
    except CheckpointError:
        return checkpoint


def _train_config(content_loss: Optional[bool], vgg19: Optional[Path], vggface: Optional[Path], model=None):
    """Fine-tuning's configuration for a model of config ``model`` (its defaults, ``TrainConfig.for_model``, with the
    options given); without ``model``, the options as a dict of changes, for a person made later."""
    from fsth.config import TrainConfig

    given = {"vgg19_weights": str(vgg19) if vgg19 else None, "vggface_weights": str(vggface) if vggface else None}
    if content_loss is not None:
        given["content_loss"] = content_loss
    return TrainConfig.for_model(model, **given) if model is not None else given


def _backend(backend: Optional[BackendChoice]) -> Optional[str]:
    return backend.value if backend is not None else None


@command
def embed(
    shots: ShotsOption,
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="The embedding file to write (.safetensors).", show_default=False, metavar="OUT"
        ),
    ],
    checkpoint: CheckpointOption = None,
    k: KOption = None,
    force: ForceOption = False,
    backend: LandmarkBackendOption = None,
    fan_weights: FanWeightsOption = None,
) -> None:
    """A person's embedding e_hat from a few photos (or frames of a video), feed-forward: no training.

    Each shot is cropped with the checkpoint's crop policy at its model size and paired with its landmark image;
    e_hat is the mean of the embedder's outputs. The file (kind 'embedding') also keeps the shots'
    landmarks, so `fsth animate` keeps this face's shape.

    Examples:

    \b
      fsth embed --shots photos/ -o me.safetensors
      fsth embed --shots talk.mp4 --k 8 -o me.safetensors
      fsth animate me.safetensors driver.mp4 -o out.mp4
    """
    from fsth.device import get_device
    from fsth.embed import save_embedding
    from fsth.fewshot import FewShotModel

    _checkpoint_output(output, force, inputs=(*shots, _meta_path(checkpoint), fan_weights))
    model = FewShotModel.load(checkpoint, only=("E",), device=get_device())
    person = model.shots(shots, model.detector(_backend(backend), fan_weights), k)
    e_hat = model.embed(person)
    save_embedding(output, e_hat, person, model.checkpoint)
    console.log(
        f"{output}: e_hat of {len(person)} shot(s) at {person.size}x{person.size} (meta checkpoint {model.path})"
    )


@command
def finetune(
    shots: ShotsOption,
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="The person file to write (.safetensors).", show_default=False, metavar="OUT"
        ),
    ],
    checkpoint: Annotated[
        Optional[Path],
        typer.Option(
            "--checkpoint",
            "-c",
            help="The meta checkpoint (default: $FSTH_CHECKPOINT, else "
            "~/.local/share/fsth/meta.safetensors, else the model shipped with fsth), or a person file "
            "to fine-tune further.",
            show_default=False,
            metavar="META",
        ),
    ] = None,
    steps: Annotated[
        Optional[int],
        typer.Option(help="Number of steps (instead of --epochs).", min=1, show_default=False, rich_help_panel=_TUNE),
    ] = None,
    epochs: Annotated[
        Optional[float],
        typer.Option(
            help=f"Passes over the shots, 0.01 to 100000 (default {TrainConfig.finetune_epochs:g}, the paper's).",
            callback=_between(0.01, 100_000),
            show_default=False,
            rich_help_panel=_TUNE,
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Shots per step.", min=1, rich_help_panel=_TUNE)] = 1,
    k: KOption = None,
    content_loss: ContentLossOption = None,
    vgg19_weights: Vgg19Option = None,
    vggface_weights: VggFaceOption = None,
    seed: Annotated[int, typer.Option(help="Seed of the shot order.", rich_help_panel=_TUNE)] = 0,
    force: ForceOption = False,
    backend: LandmarkBackendOption = None,
    fan_weights: FanWeightsOption = None,
) -> None:
    """Fine-tune the meta model on a person's shots: the paper's person-specific generator G' and discriminator D'.

    G' starts with its own AdaIN coefficients psi' = P e_hat, D' with w' = w0 + e_hat; both are trained on the
    shots with the meta-learning losses without the match term, by default for 40 passes over the shots. The
    progress bar shows the losses; Ctrl-C saves what has been trained so far. The file (kind
    'person') is all `fsth animate` needs.

    Examples:

    \b
      fsth finetune --shots photos/ -o me.safetensors
      fsth finetune --shots talk.mp4 --k 8 --steps 200 --no-content-loss \\
          -o me.safetensors
    """
    from fsth.device import get_device
    from fsth.fewshot import FewShotModel
    from fsth.finetune import check_length, format_losses, save_person
    from fsth.models import load_content_networks

    check_length(steps, epochs)  # before the slow part
    _checkpoint_output(
        output, force, inputs=(*shots, _meta_path(checkpoint), vgg19_weights, vggface_weights, fan_weights)
    )
    model = FewShotModel.load(checkpoint, device=get_device(), person=True)
    train_cfg = _train_config(content_loss, vgg19_weights, vggface_weights, model.config)
    content_nets = load_content_networks(train_cfg, model.device)  # before the slow part: a missing file fails now
    person = model.shots(shots, model.detector(_backend(backend), fan_weights), k)
    e_hat = model.embed(person)
    result = model.finetune(
        person,
        steps,
        train_cfg,
        epochs=epochs,
        e_hat=e_hat,
        content_nets=content_nets,
        batch_size=batch_size,
        seed=seed,
    )
    save_person(output, result, person, e_hat, model.checkpoint, train_cfg)
    per_step = result.seconds / max(result.steps, 1)
    console.log(
        f"{output}: {result.steps} steps on {len(person)} shot(s) in {result.seconds:.0f} s "
        f"({per_step:.2f} s/step); last losses {format_losses(result.losses)}"
    )
    if result.interrupted:
        console.error(f"interrupted after {result.steps} of {result.planned} steps; saved what was trained to {output}")
        raise typer.Exit(130)


@command
def animate(
    source: Annotated[
        str,
        typer.Argument(
            help="The person: a photo, a directory of photos, a video, an embedding file (fsth embed) or "
            "a person file (fsth finetune).",
            show_default=False,
        ),
    ],
    driver: Annotated[
        str,
        typer.Argument(
            help="The driving video, or a camera index (0) for live use with a preview window.", show_default=False
        ),
    ],
    output: Annotated[
        Optional[Path],
        typer.Option(
            "--output",
            "-o",
            help="The mp4 to write (optional for a camera: then it records the result).",
            show_default=False,
            metavar="OUT.mp4",
            rich_help_panel=_VIDEO,
        ),
    ] = None,
    checkpoint: CheckpointOption = None,
    model: Annotated[
        ModelChoice,
        typer.Option(
            help="checkpoint: the generator of --checkpoint ($FSTH_CHECKPOINT, else the default location, "
            "else the model shipped with fsth); warp: the source's pixels moved to the driver's landmarks "
            "alone, no network (fast).",
            rich_help_panel=_MOTION,
        ),
    ] = ModelChoice.checkpoint,
    mouth: Annotated[
        MouthChoice,
        typer.Option(
            help="Where an opening mouth's interior comes from: own (the person's shot with the nearest mouth "
            "shape), driver (the driver's, colour-matched), generator (as the model draws it); auto: own when a "
            "shot shows an open mouth, else driver.",
            rich_help_panel=_MOTION,
        ),
    ] = MouthChoice.auto,
    force: ForceOption = False,
    side_by_side: Annotated[
        bool, typer.Option(help="Write driver | landmark image | result.", rich_help_panel=_VIDEO)
    ] = False,
    paste_back: Annotated[
        bool,
        typer.Option(
            help="Paste the generated face back into the source photo (the frame is the photo's size).",
            rich_help_panel=_VIDEO,
        ),
    ] = False,
    audio: Annotated[bool, typer.Option(help="Keep the driver's audio track.", rich_help_panel=_VIDEO)] = True,
    absolute: Annotated[
        bool,
        typer.Option(
            help="Drive with the driver's landmarks as they are (its face shape too) "
            "instead of retargeting its motion onto the source face.",
            rich_help_panel=_MOTION,
        ),
    ] = False,
    head_motion: Annotated[
        bool,
        typer.Option(
            help="Retargeting carries the driver's head motion (position, tilt, "
            "size); off: expression only, the head stays where it is in the "
            "source (good with --paste-back).",
            rich_help_panel=_MOTION,
        ),
    ] = True,
    reference: Annotated[
        str,
        typer.Option(
            help="The driver's reference frame, whose face counts as the source's: "
            "auto (closest for a file, first for a camera), closest (the frame whose "
            "expression is closest to the source's), first (the first frame with a "
            "face) or a frame index.",
            rich_help_panel=_MOTION,
        ),
    ] = "auto",
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Treat a driver file like a camera: one causal pass, "
            "reference = first face (for trying the live path).",
            rich_help_panel=_MOTION,
        ),
    ] = False,
    preview: Annotated[
        Optional[bool],
        typer.Option(
            "--preview/--no-preview",
            help="Show driver | result in a window (q quits, r takes a new reference); default: on for a camera.",
            show_default=False,
            rich_help_panel=_VIDEO,
        ),
    ] = None,
    k: KOption = None,
    finetune_steps: Annotated[
        int, typer.Option(help="Fine-tune this many steps on the source photos first.", min=0, rich_help_panel=_TUNE)
    ] = 0,
    content_loss: ContentLossOption = None,
    vgg19_weights: Vgg19Option = None,
    vggface_weights: VggFaceOption = None,
    batch_size: Annotated[
        Optional[int],
        typer.Option(
            help="Frames per generator call, 1 to 64 (default: 2 on a CPU, 8 on a GPU).",
            min=1,
            max=64,
            show_default=False,
        ),
    ] = None,
    backend: LandmarkBackendOption = None,
    fan_weights: FanWeightsOption = None,
) -> None:
    """Animate a person with a driver's face motion: an mp4 at the driver's frame rate with its sound.

    The driver's landmarks are tracked, its motion since a reference frame is carried over onto the source's own
    landmarks (so the result keeps the source's face shape; --absolute uses the driver's as they are), and the
    generator renders the source person making it. Photos as SOURCE are embedded on the fly (feed-forward;
    --finetune-steps fine-tunes first); for the best likeness fine-tune with `fsth finetune` once and animate the
    person file.

    Examples:

    \b
      fsth animate portrait.jpg driver.mp4 -o out.mp4
      fsth animate me.safetensors driver.mp4 -o out.mp4 --side-by-side
      fsth animate portrait.jpg driver.mp4 -o out.mp4 --paste-back \\
          --no-head-motion
      fsth animate me.safetensors 0        # webcam; -o rec.mp4 records
    """
    from fsth.animate import (
        AnimateOptions,
        batch_size_for,
        check_output,
        checked_driver,
        parse_driver,
        parse_reference,
        require_display,
    )
    from fsth.animate import animate as run_animate
    from fsth.device import get_device
    from fsth.person import detector_for, landmark_backend_of, load_person

    device = get_device()
    camera = isinstance(parse_driver(driver), int)
    preview = camera if preview is None else preview
    if preview:
        require_display()
    if output is not None:
        check_output(
            output, force, inputs=(source, driver, _meta_path(checkpoint), vgg19_weights, vggface_weights, fan_weights)
        )
    elif not preview:
        raise InputError("give -o OUT.mp4 (or --preview to watch without writing)")
    options = AnimateOptions(
        absolute=absolute,
        head_motion=head_motion,
        reference=parse_reference(reference),
        side_by_side=side_by_side,
        paste_back=paste_back,
        audio=audio,
        batch_size=batch_size or batch_size_for(device),
        live=live,
        preview=preview,
        warp_only=model == ModelChoice.warp,
        mouth=mouth.value,
    )
    checked_driver(driver)
    if checkpoint is not None and Path(source).is_file() and _checkpoint_kind(source) == "person":
        raise InputError(f"{source}: a person file carries its own generator; drop --checkpoint {checkpoint}")
    trained_with = None if options.warp_only else landmark_backend_of(source, checkpoint)
    detector = detector_for(trained_with, _backend(backend), fan_weights)  # one, for the source and the driver
    if options.warp_only:
        person = load_person(source, checkpoint, warp_only=True, k=k, finetune_steps=finetune_steps, detector=detector)
    else:
        person = load_person(
            source,
            checkpoint,
            k=k,
            finetune_steps=finetune_steps,
            detector=detector,
            device=device,
            train_cfg=_train_config(content_loss, vgg19_weights, vggface_weights),
        )
    stats = run_animate(person, driver, output, detector, options, device=device)
    where = f"{output}: " if output is not None else ""
    size = f"{stats.size[0]}x{stats.size[1]}" if stats.size else "?"
    ref = f", reference frame {stats.reference}" if stats.reference is not None else ""
    console.log(
        f"{where}{stats.frames} frames at {stats.fps:g} fps, {size}, {stats.frames_per_second:.1f} frames/s; "
        f"driver face in {stats.faces}/{stats.frames} frames{ref}"
    )


# ---------------------------------------------------------------------------------------------- evaluate

_PROTOCOL, _METRICS = "Protocol", "Metrics"


class CsimNetworkChoice(str, enum.Enum):
    dlib = "dlib"
    arcface = "arcface"


def _samples_dir(path: Optional[Path], force: bool) -> Optional[Path]:
    """--samples DIR: created if missing; an existing one must be empty unless ``force`` (its PNGs are replaced)."""
    if path is None:
        return None
    if path.exists() and not path.is_dir():
        raise InputError(f"--samples {path}: not a directory")
    if path.is_dir() and any(path.iterdir()) and not force:
        raise InputError(f"--samples {path}: directory is not empty; use --force to write into it")
    if not path.parent.is_dir():
        raise InputError(f"--samples {path}: directory {path.parent} does not exist")
    try:
        path.mkdir(exist_ok=True)
    except OSError as exc:
        raise InputError(f"--samples {path}: cannot create it ({exc.strerror or exc})") from None
    return path


@command
def evaluate(
    videos: Annotated[
        list[Path],
        typer.Argument(
            help="Test videos (people the model was not trained on), or directories of them (searched recursively).",
            show_default=False,
            metavar="VIDEOS",
        ),
    ],
    output: Annotated[
        Optional[Path],
        typer.Option(
            "--output",
            "-o",
            help="Write the JSON report here (.json). Without it: JSON on stdout.",
            show_default=False,
            metavar="REPORT.json",
        ),
    ] = None,
    checkpoint: CheckpointOption = None,
    shots: Annotated[
        str,
        typer.Option(
            help="Self-reenactment: K, the shots per setting, taken from the first half "
            "of each video's frames with a face.",
            rich_help_panel=_PROTOCOL,
            metavar="K,K,...",
        ),
    ] = "1,8,32",
    targets: Annotated[
        int,
        typer.Option(
            help="Target frames per video, spread over the second half (the same for "
            "every K); for --cross, driver frames per video.",
            min=1,
            rich_help_panel=_PROTOCOL,
        ),
    ] = 32,
    finetune_steps: Annotated[
        int,
        typer.Option(
            help="Also fine-tune (FT rows) from the same e_hat for this many steps; 0: feed-forward (FF) only.",
            min=0,
            rich_help_panel=_PROTOCOL,
        ),
    ] = 0,
    cross: Annotated[
        Optional[list[str]],
        typer.Option(
            "--cross",
            help="Cross-reenactment source, driven by every video: a photo, a directory of "
            "photos, a video, an embedding or a person file (repeat for several sources).",
            rich_help_panel=_PROTOCOL,
            show_default=False,
            metavar="SOURCE",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the fine-tuning shot order.", rich_help_panel=_PROTOCOL)] = 0,
    samples: Annotated[
        Optional[Path],
        typer.Option(
            help="Write a PNG grid per video and setting here: landmark image | real | generated (self), "
            "source | driver landmark image | generated (cross).",
            show_default=False,
            metavar="DIR",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", "-f", help="Overwrite the report, write into a non-empty --samples directory.")
    ] = False,
    metrics: Annotated[
        str,
        typer.Option(
            help="Metrics to compute (ssim, psnr, l1, csim, akd, fid).", rich_help_panel=_METRICS, metavar="NAMES"
        ),
    ] = "ssim,psnr,l1,csim,akd,fid",
    fid_weights: Annotated[
        Optional[Path],
        typer.Option(
            help="FID's Inception weights pt_inception-2015-12-05-6726825d.pth (default: the torch hub "
            "cache; without them FID is reported as not computed, with the reason).",
            rich_help_panel=_METRICS,
            show_default=False,
        ),
    ] = None,
    csim_network: Annotated[
        CsimNetworkChoice,
        typer.Option(
            help="CSIM's face-recognition network: dlib (128-d, offline) or arcface (--arcface-weights).",
            rich_help_panel=_METRICS,
        ),
    ] = CsimNetworkChoice.dlib,
    arcface_weights: Annotated[
        Optional[Path],
        typer.Option(
            help="An insightface arcface_torch backbone.pth, for --csim-network arcface.",
            rich_help_panel=_METRICS,
            show_default=False,
        ),
    ] = None,
    baselines: Annotated[
        bool,
        typer.Option(
            help="Also score two baselines in every setting: copy (the nearest shot as it is) and warp (the "
            "nearest shot warped to the target's landmarks, no network).",
            rich_help_panel=_PROTOCOL,
        ),
    ] = True,
    content_loss: ContentLossOption = None,
    vgg19_weights: Vgg19Option = None,
    vggface_weights: VggFaceOption = None,
    backend: LandmarkBackendOption = None,
    fan_weights: FanWeightsOption = None,
) -> None:
    """Score a meta checkpoint on held-out videos: the paper's self-reenactment protocol (and cross-reenactment).

    Self-reenactment: each video's frames with a face are split in half; K shots are spread over the first half,
    --targets target frames over the second, and each target is generated from its own landmarks in its own crop,
    feed-forward (FF) and with --finetune-steps also fine-tuned (FT), then compared with the real crop: SSIM, PSNR,
    L1, CSIM (identity), AKD (pose, with the landmark-detection failure rate) and FID over all frames of a
    setting. --cross SOURCE drives a source photo with each video (identity against the photo, motion against the
    retargeted landmarks). A table goes to stderr, the report (JSON) to -o or stdout; a video that cannot be
    evaluated is reported and skipped.

    Examples:

    \b
      fsth evaluate -c meta.safetensors test_videos/ --shots 1,8,32 -o report.json
      fsth evaluate -c meta.safetensors a.mp4 b.mp4 --finetune-steps 40 \\
          --no-content-loss --samples grids/
      fsth evaluate -c meta.safetensors drivers/ --cross portrait.jpg \\
          --shots 8 | jq .settings
    """
    import json

    from fsth.device import get_device
    from fsth.evaluate import EvalOptions, metric_options, parse_shots, print_table
    from fsth.evaluate import evaluate as run_evaluation
    from fsth.files import atomic_write
    from fsth.metrics import parse_metric_names
    from fsth.person import detector_for, load_meta

    try:  # bad option values are usage errors: exit 2, before anything is loaded
        options = EvalOptions(
            shots=parse_shots(shots),
            targets=targets,
            finetune_steps=finetune_steps,
            metrics=tuple(parse_metric_names(metrics)),
            seed=seed,
            baselines=baselines,
        )
        if not options.metrics:
            raise InputError(f"--metrics {metrics!r} names no metric; give one or more, such as ssim,l1")
    except FsthError as exc:
        exc.exit_code = 2
        raise
    inputs = (
        *videos,
        _meta_path(checkpoint),
        *(cross or ()),
        fid_weights,
        arcface_weights,
        vgg19_weights,
        vggface_weights,
        fan_weights,
    )
    if output is not None:
        _output_file(output, force, ".json", "the report is JSON", inputs)
    if samples is not None:
        from fsth.files import check_writable, refuse_inputs

        refuse_inputs(samples, inputs, "--samples")
        check_writable(samples, "--samples", directory=True)
    for source in cross or ():
        if not Path(source).exists():
            raise InputError(f"--cross {source}: no such file or directory")
    metric_choices = metric_options(
        options.metrics, fid_weights=fid_weights, csim_network=csim_network.value, arcface_weights=arcface_weights
    )
    device = get_device()
    meta = load_meta(checkpoint, only=None if finetune_steps else ("E", "G"))
    train_cfg = _train_config(content_loss, vgg19_weights, vggface_weights, meta.config)
    content_nets = None
    if finetune_steps:
        from fsth.models import load_content_networks

        content_nets = load_content_networks(train_cfg, device)  # before the slow part: a missing file fails now
    samples = _samples_dir(samples, force)
    detector = detector_for(meta.landmark_backend, _backend(backend), fan_weights)
    report = run_evaluation(
        meta,
        videos,
        detector,
        options,
        cross=cross or (),
        train_cfg=train_cfg,
        content_nets=content_nets,
        metric_options=metric_choices,
        device=device,
        samples=samples,
    )
    print_table(report)
    text = json.dumps(report, indent=2, allow_nan=False) + "\n"
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        atomic_write(output, lambda f: f.write(text.encode()))
        console.log(
            f"{output}: report of {report['summary']['evaluated']} video(s), {len(report['settings'])} setting(s)"
        )
