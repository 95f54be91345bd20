"""The ``fsth`` command line: one thin function per subcommand over the core package.

Global options (before the subcommand): ``--device auto|cpu|cuda``, ``-v/--verbose``, ``-q/--quiet``,
``--version``. Data goes to stdout or to files; progress and messages go to stderr. A problem with the
user's input ends with one ``error: ...`` line on stderr and a non-zero exit (see ``fsth.errors``).
"""

from __future__ import annotations

import enum
import functools
import os
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer

from fsth import __version__, console
from fsth.errors import FsthError, InputError
from fsth.landmarks.crop import CropPolicy

app = typer.Typer(
    name="fsth",
    help="Few-shot neural talking heads: landmarks, training, embedding, fine-tuning, animation, evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
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
        except KeyboardInterrupt:
            console.error("interrupted")
            raise typer.Exit(130) from None
        except BrokenPipeError:
            # Whoever read our stdout stopped (`fsth landmarks x.mp4 | head -1`): not an error. Point stdout
            # at /dev/null so the interpreter's final flush does not complain.
            try:
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            except (OSError, ValueError, AttributeError):
                pass
            raise typer.Exit(0) from None

    return app.command()(wrapper)


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except BrokenPipeError:  # `fsth landmarks x.mp4 | head` closes stdout early: not an error
        sys.stderr.close()
        sys.exit(0)


# ---------------------------------------------------------------------------------------------- landmarks


class BackendChoice(str, enum.Enum):
    auto = "auto"
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
            show_default=False, metavar="INPUT",
        ),
    ],
    output: Annotated[
        Optional[str],  # str, not Path: "out/" must keep its slash (a directory to create)
        typer.Option(
            "--output", "-o",
            help="Where to write: FILE.npz / FILE.jsonl for one input, a directory (one file per input) for "
            "several, or DIR/ for one. Without it: JSONL on stdout, one object per frame.",
            rich_help_panel=_OUT, show_default=False, metavar="PATH",
        ),
    ] = None,
    fmt: Annotated[
        Optional[FormatChoice],
        typer.Option(
            "--format", help="npz or jsonl (default: from -o's suffix; npz for a directory; jsonl on stdout).",
            rich_help_panel=_OUT, show_default=False,
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
            help="Landmark detector: fan (face-alignment's FAN, the paper's; downloads weights on first use), dlib "
            "(offline), or auto: fan if its weights are on disk, else dlib.",
            rich_help_panel=_LM,
        ),
    ] = BackendChoice.auto,
    fan_weights: Annotated[
        Optional[Path],
        typer.Option(
            help="Local FAN weights (2DFAN4-*.pth.tar), or a directory with them and S3FD's s3fd-*.pth.",
            rich_help_panel=_LM, show_default=False,
        ),
    ] = None,
    face_index: Annotated[
        int,
        typer.Option(help="Which face when there are several: 0 = the largest, 1 = the next, ...", min=0, rich_help_panel=_LM),
    ] = 0,
    smoothing: Annotated[
        float,
        typer.Option(
            help="Temporal smoothing strength of video landmarks (One-Euro filter): 0 = off, 1 = default, "
            "higher = smoother. Adaptive: fast mouth motion is not delayed.",
            min=0.0, rich_help_panel=_LM,
        ),
    ] = 1.0,
    redetect_every: Annotated[
        int,
        typer.Option(help="Confirm the tracked face with the face detector every N frames.", min=1, rich_help_panel=_LM),
    ] = 10,
    crop_scale: Annotated[
        float,
        typer.Option(help="Crop box side as a multiple of the face size (jaw width).", min=0.1, rich_help_panel=_CROP),
    ] = CropPolicy.scale,
    crop_y_offset: Annotated[
        float,
        typer.Option(
            help="Crop box centre below the eyes-nose midpoint, in face sizes (negative: towards the forehead).",
            rich_help_panel=_CROP,
        ),
    ] = CropPolicy.y_offset,
    sketch: Annotated[
        Optional[str],
        typer.Option(
            help="Also write the landmark images: an .mp4 (with the input's audio) for a video, .png for a photo; a "
            "directory for several inputs.",
            rich_help_panel=_SKETCH, show_default=False, metavar="PATH",
        ),
    ] = None,
    sketch_size: Annotated[
        int, typer.Option(help="Side of the landmark images (the crop the networks see).", min=16, rich_help_panel=_SKETCH)
    ] = 256,
    overlay: Annotated[
        bool,
        typer.Option(
            help="--sketch shows the landmarks and crop box drawn over the input frames instead.", rich_help_panel=_SKETCH
        ),
    ] = False,
    dataset: Annotated[
        Optional[Path],
        typer.Option(
            help="Build a training dataset in this directory from a tree of videos (person/video/clip.mp4 or any "
            "folder of videos): face crops as JPEG + landmarks of frames spread over each video, a manifest, and "
            "a report of skipped videos. Re-running continues where it stopped.",
            rich_help_panel=_DATA, show_default=False, metavar="OUT_DIR",
        ),
    ] = None,
    frames_per_video: Annotated[
        int, typer.Option(help="Frames kept per video, spread over its length.", min=2, rich_help_panel=_DATA)
    ] = 32,
    size: Annotated[
        int, typer.Option(help="Side of the stored face crops (training resizes them to the model's size).",
                          min=16, rich_help_panel=_DATA)
    ] = 256,
    workers: Annotated[
        Optional[int],
        typer.Option(
            help="Worker processes, each with its own landmark detector. Default: one per CPU core (dlib), 1 (fan).",
            min=1, rich_help_panel=_DATA, show_default=False,
        ),
    ] = None,
    shard: Annotated[
        Optional[str],
        typer.Option(
            help="Build only shard i of n (i from 0), for n machines; the shards' manifests are read together.",
            rich_help_panel=_DATA, show_default=False, metavar="i/n",
        ),
    ] = None,
    jpeg_quality: Annotated[
        int, typer.Option(help="JPEG quality of the stored crops.", min=1, max=100, rich_help_panel=_DATA)
    ] = 90,
    min_frames: Annotated[
        int,
        typer.Option(help="Skip (and report) a video with a face in fewer of its kept frames.", min=1,
                     rich_help_panel=_DATA),
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

    [bold]Examples[/bold]

    [cyan]fsth landmarks talk.mp4 -o talk.npz --sketch talk_sketch.mp4[/cyan]

    [cyan]fsth landmarks talk.mp4 | head -1[/cyan]   (JSONL on stdout, one object per frame)

    [cyan]fsth landmarks videos/ photos/ -o landmarks/[/cyan]   (one .npz per input)

    [cyan]fsth landmarks voxceleb2/dev/mp4 --dataset data/vox2 --workers 16[/cyan]   (a training dataset)
    """
    from fsth.landmarks import CropPolicy, Smoothing, make_detector
    from fsth.landmarks.extract import plan_jobs, run_job

    if dataset is not None:
        given = [name for name, value in (("-o", output), ("--format", fmt), ("--sketch", sketch),
                                          ("--overlay", overlay), ("--skip-existing", skip_existing)) if value]
        if given:
            raise InputError(f"--dataset writes its own files (and always resumes): {', '.join(given)} does not apply")
        if len(inputs) != 1:
            raise InputError(f"--dataset takes one VIDEO_TREE directory, not {len(inputs)} inputs")
        from fsth.dataset.build import build_dataset, log_summary, parse_shard
        from fsth.dataset.store import DatasetSettings

        shard_ = parse_shard(shard)
        detector = make_detector(backend.value, fan_weights)
        smoothing_ = Smoothing(strength=smoothing)
        settings = DatasetSettings(
            size=size, frames_per_video=frames_per_video, min_frames=min_frames, jpeg_quality=jpeg_quality,
            landmark_backend=detector.name, track_every_frame=track_every_frame,
            crop_policy=CropPolicy(scale=crop_scale, y_offset=crop_y_offset).to_dict(),
            tracking={"face_index": face_index, **({"redetect_every": redetect_every,
                      "smoothing": smoothing_.to_dict()} if track_every_frame else {})},
        )  # fmt: skip
        if workers is None:
            workers = 1 if detector.name == "fan" else os.cpu_count() or 1
        summary = build_dataset(
            inputs[0], dataset, settings, detector, workers=workers, shard=shard_, retry_failed=retry_failed,
            force=force, fan_weights=str(fan_weights) if fan_weights else None,
        )  # fmt: skip
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
    if len(jobs) == 1:
        run_job(jobs[0], detector, out_format, sys.stdout, **options)
        return
    failures = []
    for job in jobs:
        try:
            run_job(job, detector, out_format, sys.stdout, **options)
        except FsthError as exc:
            console.error(str(exc))
            failures.append(str(exc))
    if failures:
        console.error(f"{len(failures)} of {len(jobs)} inputs failed:")
        for message in failures:
            console.err.print(f"  {message}", soft_wrap=True, highlight=False, markup=False)
        raise typer.Exit(1)


# ---------------------------------------------------------------------------------------------- train


class PresetChoice(str, enum.Enum):
    paper256 = "paper256"
    tiny = "tiny"


class PrecisionChoice(str, enum.Enum):
    auto = "auto"
    bf16 = "bf16"
    fp32 = "fp32"


def _default_of(cls_path: str, name: str) -> str:
    """'(default: X)' for a field of a config dataclass (``module:Class``), the one place the defaults live."""
    import dataclasses
    import importlib

    module, cls = cls_path.split(":")
    value = next(f.default for f in dataclasses.fields(getattr(importlib.import_module(module), cls)) if f.name == name)
    return f"(default: {value})"


def _default_opts(name: str) -> str:
    return _default_of("fsth.config:TrainOptions", name)


def _default_cfg(name: str) -> str:
    return _default_of("fsth.config:TrainConfig", name)


_RUN, _SCHED, _METHOD = "Run", "Schedule and outputs", "Method (TrainConfig)"


@command
def train(
    dataset: Annotated[
        Path,
        typer.Argument(help="A dataset built by: fsth landmarks VIDEO_TREE --dataset DATASET.", show_default=False,
                       metavar="DATASET"),
    ],
    run_dir: Annotated[
        Path,
        typer.Option(help="The run directory: config, log, stats.jsonl, samples/, meta.safetensors, training state.",
                     rich_help_panel=_RUN, show_default=False, metavar="DIR"),
    ],
    preset: Annotated[
        Optional[PresetChoice],
        typer.Option(help="Model architecture: paper256 (the paper's, 256x256) or tiny (64x64, CPU). (default: paper256)",
                     rich_help_panel=_RUN, show_default=False),
    ] = None,
    batch_size: Annotated[
        Optional[int], typer.Option(help="Episodes per step in each process. " + _default_opts("batch_size"),
                                    min=1, rich_help_panel=_RUN, show_default=False)
    ] = None,
    max_steps: Annotated[
        Optional[int], typer.Option(help="Train until this many E/G updates. " + _default_opts("max_steps"), min=0,
                                    rich_help_panel=_RUN, show_default=False)
    ] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --run-dir exactly where its last checkpoint left it.",
                           rich_help_panel=_RUN)
    ] = False,
    dry_run: Annotated[
        bool, typer.Option(help="Print the resolved configuration and parameter counts (JSON) and exit.",
                           rich_help_panel=_RUN)
    ] = False,
    seed: Annotated[
        Optional[int], typer.Option(help="Seed of the initial weights and of every episode. " + _default_opts("seed"),
                                    rich_help_panel=_RUN, show_default=False)
    ] = None,
    workers: Annotated[
        Optional[int], typer.Option(help="DataLoader processes per training process. (default: 4 on CUDA, 0 on CPU: episodes are read in the training process)",
                                    min=0, rich_help_panel=_RUN, show_default=False)
    ] = None,
    precision: Annotated[
        Optional[PrecisionChoice],
        typer.Option(help="auto: bf16 autocast on CUDA, fp32 on CPU. (default: auto)", rich_help_panel=_RUN,
                     show_default=False),
    ] = None,
    log_every: Annotated[
        Optional[int], typer.Option(help="Steps between log lines and stats.jsonl rows. " + _default_opts("log_every"),
                                    min=1, rich_help_panel=_SCHED, show_default=False)
    ] = None,
    sample_every: Annotated[
        Optional[int], typer.Option(help="Steps between sample grids in samples/. " + _default_opts("sample_every"),
                                    min=1, rich_help_panel=_SCHED, show_default=False)
    ] = None,
    checkpoint_every: Annotated[
        Optional[int],
        typer.Option(help="Steps between checkpoints (also written at the end, on Ctrl-C and SIGTERM). "
                     + _default_opts("checkpoint_every"), min=1, rich_help_panel=_SCHED, show_default=False),
    ] = None,
    num_samples: Annotated[
        Optional[int], typer.Option(help="Fixed episodes shown in each sample grid. " + _default_opts("num_samples"),
                                    min=1, rich_help_panel=_SCHED, show_default=False)
    ] = None,
    shots: Annotated[
        Optional[int], typer.Option(help="K, frames per episode given to the embedder. " + _default_cfg("shots"),
                                    min=1, rich_help_panel=_METHOD, show_default=False)
    ] = None,
    content_loss: Annotated[
        Optional[bool],
        typer.Option("--content-loss/--no-content-loss",
                     help="The content loss L_CNT (needs VGG19 and VGGFace weights). Without it training runs on "
                     "the adversarial, feature-matching and match terms only (not the paper's objective). "
                     "(default: on)", rich_help_panel=_METHOD, show_default=False),
    ] = None,
    vgg19_weights: Annotated[
        Optional[str], typer.Option(help="Path of torchvision's vgg19-dcbb9e9d.pth (default: torch hub cache).",
                                    rich_help_panel=_METHOD, show_default=False, metavar="PATH")
    ] = None,
    vggface_weights: Annotated[
        Optional[str], typer.Option(help="Path of vgg_face_dag.pth (default: torch hub cache).",
                                    rich_help_panel=_METHOD, show_default=False, metavar="PATH")
    ] = None,
    lr_eg: Annotated[
        Optional[float], typer.Option("--lr-eg", help="Adam learning rate of E and G. " + _default_cfg("lr_EG"),
                                      min=0.0, rich_help_panel=_METHOD, show_default=False)
    ] = None,
    lr_d: Annotated[
        Optional[float], typer.Option("--lr-d", help="Adam learning rate of D (and W). " + _default_cfg("lr_D"),
                                      min=0.0, rich_help_panel=_METHOD, show_default=False)
    ] = None,
) -> None:
    """Meta-learn E, G and D on a dataset of videos (the paper's stage 1) into a run directory.

    Each step: K shots + 1 target from random videos; two discriminator updates (hinge) and one
    embedder/generator update (content + adversarial + feature matching + embedding match). The run directory
    gets the resolved config, log.txt, stats.jsonl, sample grids and meta.safetensors (what embed, finetune,
    animate and evaluate take); checkpoints are written every --checkpoint-every steps, at the end, and on
    Ctrl-C or SIGTERM, and --resume continues exactly.

    [bold]Examples[/bold]

    [cyan]fsth train data/vox2 --run-dir runs/vox2[/cyan]   (paper256; bf16 on a GPU)

    [cyan]fsth train data/clips --run-dir runs/tiny --preset tiny --batch-size 4 --no-content-loss[/cyan]

    [cyan]torchrun --nproc_per_node 8 -m fsth train data/vox2 --run-dir runs/vox2[/cyan]   (8 GPUs)
    """
    from fsth.train import dry_run_text
    from fsth.train import train as run_training

    given = {
        "preset": preset.value if preset else None, "batch_size": batch_size, "max_steps": max_steps, "seed": seed,
        "workers": workers, "precision": precision.value if precision else None, "log_every": log_every,
        "sample_every": sample_every, "checkpoint_every": checkpoint_every, "num_samples": num_samples,
        "shots": shots, "content_loss": content_loss, "vgg19_weights": vgg19_weights,
        "vggface_weights": vggface_weights, "lr_EG": lr_eg, "lr_D": lr_d,
    }  # fmt: skip
    given = {k: v for k, v in given.items() if v is not None}
    result = run_training(dataset, run_dir, given, resume=resume, dry_run=dry_run)
    if dry_run:
        typer.echo(dry_run_text(result))
        return
    if result.stopped_by:
        raise typer.Exit(130 if result.stopped_by == "SIGINT" else 143)
