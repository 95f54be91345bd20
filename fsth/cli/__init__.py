"""The ``fsth`` command line: one thin function per subcommand over the core package.

Global options (before the subcommand): ``--device auto|cpu|cuda``, ``-v/--verbose``, ``-q/--quiet``,
``--version``. Data goes to stdout or to files; progress and messages go to stderr. A problem with the
user's input ends with one ``error: ...`` line on stderr and a non-zero exit (see ``fsth.errors``).
"""

from __future__ import annotations

import dataclasses
import enum
import os
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
import typer.core

from fsth import __version__, console
from fsth.animate.options import AnimateOptions
from fsth.cli.plumbing import (
    OneLineErrors,
    closed_stdout_named,
    handled,
    ignore_further_interrupts,
    with_options,
)
from fsth.config import TrainConfig, TrainOptions
from fsth.dataset.options import BuildOptions
from fsth.errors import FsthError, InputError
from fsth.evaluate.options import EvalOptions, MetricOptions
from fsth.fewshot.options import ContentLoss, FinetuneOptions, SourceOptions
from fsth.landmarks.options import LandmarkOptions

app = typer.Typer(
    name="fsth",
    cls=OneLineErrors,
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
    """Register ``func`` as a subcommand whose ``FsthError``s become one stderr line + exit code (``handled``)."""
    return app.command()(handled(func))


def main() -> None:
    """Console-script entry point."""
    # OpenMP threads that spin while waiting stall for milliseconds at every parallel region when another
    # process holds a core: on a busy machine with few cores, fine-tuning steps and generator frames took several
    # times longer with spinning waiters. Sleeping waiters avoid that. Must be set before torch loads
    # (it loads lazily, inside the commands); a user's own setting wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # OpenCV's own thread pool: its calls here are small (a face crop, an eye's layer), and its idle workers spin
    # in sched_yield for a while after each; in `fsth animate` on 2 cores one of them took 5% of all the CPU time
    # (perf) while the pipeline's own threads wanted the core. The calls run in the thread that makes them.
    os.environ.setdefault("OPENCV_FOR_THREADS_NUM", "1")
    closed_stdout_named()
    app()


# ---------------------------------------------------------------------------------------------- landmarks


class FormatChoice(str, enum.Enum):
    npz = "npz"
    jsonl = "jsonl"


_OUT, _SKETCH = "Output", "Sketch"


@command
@with_options(marks=LandmarkOptions, build=BuildOptions)
def landmarks(
    inputs: Annotated[
        list[Path],
        typer.Argument(
            help="Image files, video files, or directories of them (searched recursively).",
            show_default=False,
            metavar="INPUT",
        ),
    ],
    marks: LandmarkOptions,
    build: BuildOptions,
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
            help="Build a training dataset in this directory instead (the same as `fsth dataset INPUT -o OUT_DIR`).",
            show_default=False,
            metavar="OUT_DIR",
        ),
    ] = None,
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
      fsth landmarks videos/ photos/ -o landmarks/ --backend dlib
    """
    from fsth.landmarks.extract import plan_jobs, run_jobs

    if dataset is not None:
        given = {
            "-o": output,
            "--format": fmt,
            "--sketch": sketch,
            "--overlay": overlay,
            "--skip-existing": skip_existing,
        }
        if any(given.values()):
            names = ", ".join(name for name, value in {**given, "--skip-existing": skip_existing}.items() if value)
            raise InputError(f"--dataset writes its own files (and always resumes): {names} does not apply")
        if len(inputs) != 1:
            raise InputError(f"--dataset takes one VIDEO_TREE directory, not {len(inputs)} inputs")
        return _build_dataset(inputs[0], dataset, build, marks, force)
    jobs, out_format = plan_jobs(inputs, output, fmt and fmt.value, sketch, force=force, skip_existing=skip_existing)
    if not jobs:
        console.log("landmarks: every output exists already; nothing to do")
        return
    if overlay and sketch is None:
        raise InputError("--overlay draws into the --sketch video: give --sketch PATH too")
    options = dict(crop_policy=marks.crop_policy, sketch_size=sketch_size, overlay=overlay, **marks.tracking())
    if run_jobs(jobs, marks.detector(), out_format, sys.stdout, **options):
        raise typer.Exit(1)


@command
@with_options(marks=LandmarkOptions, build=BuildOptions)
def dataset(
    tree: Annotated[
        Path,
        typer.Argument(
            help="A tree of videos: person/video/clip.mp4 (VoxCeleb's layout) or any folder of videos.",
            show_default=False,
            metavar="VIDEO_TREE",
        ),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="The dataset directory.", show_default=False, metavar="OUT_DIR")
    ],
    marks: LandmarkOptions,
    build: BuildOptions,
    force: Annotated[bool, typer.Option("--force", "-f", help="Rebuild the videos stored already.")] = False,
) -> None:
    """A training dataset from a tree of videos: face crops (JPEG) and landmarks of frames spread over each video.

    Each video gets --frames-per-video frames spread over its length, cropped with the crop policy at --size;
    a manifest lists what is stored and a report what was skipped and why. Re-running continues where it stopped
    (--retry-failed tries the bad videos again); --shard i/n splits the work over machines. `auto` landmarks are
    dlib's here (the mesh adds nothing a dataset stores, at ~4x the CPU time).

    Examples:

    \b
      fsth dataset voxceleb2/dev/mp4 -o data/vox2 --workers 16
      fsth dataset clips/ -o data/clips --frames-per-video 16 --size 128
    """
    _build_dataset(tree, output, build, marks, force)


def _build_dataset(tree: Path, root: Path, build, marks, force: bool) -> None:
    from fsth.dataset.build import run_build

    try:
        run_build(tree, root, build, marks, force)
    except KeyboardInterrupt:
        ignore_further_interrupts()  # the workers are ended, the lists written: only the exit is left
        raise


# ---------------------------------------------------------------------------------------------- train


_RUN = "Run"


@command
@with_options(given=TrainOptions, method=TrainConfig)
def train(
    dataset: Annotated[
        Path,
        typer.Argument(
            help="A dataset built by: fsth dataset VIDEO_TREE -o DATASET.",
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
    given: dict,
    method: dict,
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

    given = {**given, **method}
    if given.get("max_steps") == 0 and not resume and not dry_run:
        raise InputError(
            "--max-steps 0 trains nothing and writes no checkpoint; give at least 1 (or --dry-run to see "
            "the configuration)"
        )
    if not dry_run:
        from fsth.files import check_writable, refuse_inputs

        refuse_inputs(run_dir, (dataset, given.get("vgg19_weights"), given.get("vggface_weights")), "--run-dir")
        check_writable(run_dir, "--run-dir", directory=True)
    if dry_run:
        typer.echo(dry_run_text(resolve_run(dataset, run_dir, given, resume=resume)))
        return
    result = run_training(dataset, run_dir, given, resume=resume)
    if result.stopped_by:
        import signal

        raise typer.Exit(128 + signal.Signals[result.stopped_by])


# ---------------------------------------------------------------------------------------------- few-shot use

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
ForceOption = Annotated[bool, typer.Option("--force", "-f", help="Overwrite the output if it exists.")]


def _checkpoint_output(path: Path, force: bool, inputs=()) -> Path:
    """An output checkpoint path: .safetensors, in an existing directory, not overwritten unless ``force``."""
    return _output_file(path, force, ".safetensors", "checkpoints are safetensors files", inputs)


def _output_file(path: Path, force: bool, suffix: str, kind: str, inputs=()) -> Path:
    """An output path checked before any work (``fsth.files.check_output_file``)."""
    from fsth.files import check_output_file

    return check_output_file(path, force, suffixes=suffix, kind=kind, inputs=inputs)


def _meta_path(checkpoint: Optional[Path]) -> Optional[Path]:
    """The meta checkpoint a command will read (--checkpoint, $FSTH_CHECKPOINT or the default place), to keep
    outputs off it; None when there is none (loading it reports that)."""
    from fsth.checkpoint import find_meta_checkpoint
    from fsth.errors import CheckpointError

    try:
        return find_meta_checkpoint(checkpoint)
    except CheckpointError:
        return checkpoint


@command
@with_options(read=SourceOptions)
def embed(
    paths: ShotsOption,
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="The embedding file to write (.safetensors).", show_default=False, metavar="OUT"
        ),
    ],
    read: SourceOptions,
    force: ForceOption = False,
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
    from fsth.fewshot import FewShotModel, save_embedding

    _checkpoint_output(output, force, inputs=(*paths, _meta_path(read.checkpoint), read.fan_weights))
    model = FewShotModel.load(read.checkpoint, only=("E",), device=get_device())
    shots = model.shots(paths, model.detector(read.backend, read.fan_weights), read.k, read.face_index)
    save_embedding(output, model.embed(shots), shots, model.checkpoint)
    console.log(f"{output}: e_hat of {len(shots)} shot(s) at {shots.size}x{shots.size} (meta checkpoint {model.path})")


@command
@with_options(read=SourceOptions, loss=ContentLoss, tune=FinetuneOptions)
def finetune(
    paths: ShotsOption,
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="The person file to write (.safetensors).", show_default=False, metavar="OUT"
        ),
    ],
    read: SourceOptions,
    loss: ContentLoss,
    tune: FinetuneOptions,
    force: ForceOption = False,
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
    from fsth.fewshot import FewShotModel, save_person
    from fsth.fewshot.finetune import format_losses
    from fsth.models import load_content_networks

    _checkpoint_output(output, force, inputs=(*paths, _meta_path(read.checkpoint), *loss.files, read.fan_weights))
    model = FewShotModel.load(read.checkpoint, device=get_device(), person=True)
    train_cfg = loss.train_config(model.config)
    content_nets = load_content_networks(train_cfg, model.device)  # before the slow part: a missing file fails now
    shots = model.shots(paths, model.detector(read.backend, read.fan_weights), read.k, read.face_index)
    e_hat = model.embed(shots)
    result = model.finetune(shots, tune.steps, train_cfg, epochs=tune.epochs, e_hat=e_hat, content_nets=content_nets,
                            batch_size=tune.batch_size, seed=tune.seed)  # fmt: skip
    save_person(output, result, shots, e_hat, model.checkpoint, train_cfg)
    console.log(
        f"{output}: {result.steps} steps on {len(shots)} shot(s) in {result.seconds:.0f} s "
        f"({result.seconds / max(result.steps, 1):.2f} s/step); last losses {format_losses(result.losses)}"
    )
    if result.interrupted:
        console.error(f"interrupted after {result.steps} of {result.planned} steps; saved what was trained to {output}")
        raise typer.Exit(130)


@command
@with_options(read=SourceOptions, loss=ContentLoss, options=AnimateOptions)
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
    read: SourceOptions,
    loss: ContentLoss,
    options: AnimateOptions,
    output: Annotated[
        Optional[Path],
        typer.Option(
            "--output",
            "-o",
            help="The mp4 to write (optional for a camera: then it records the result).",
            show_default=False,
            metavar="OUT.mp4",
        ),
    ] = None,
    force: ForceOption = False,
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
    from fsth.animate import animate as run_animate
    from fsth.animate import check_output, checked_driver, parse_driver, require_display
    from fsth.device import get_device
    from fsth.fewshot import load_person

    device = get_device()
    options = options.for_driver(isinstance(parse_driver(driver), int), device)
    if options.preview:
        require_display()
    if output is not None:
        inputs = (source, driver, _meta_path(read.checkpoint), *loss.files, read.fan_weights)
        check_output(output, force, inputs=inputs)
    elif not options.preview:
        raise InputError("give -o OUT.mp4 (or --preview to watch without writing)")
    checked_driver(driver)
    person = load_person(source, **dataclasses.asdict(read), warp_only=options.warp_only, device=device,
                         finetune_steps=options.finetune_steps, train_cfg=loss.changes())  # fmt: skip
    stats = run_animate(person, driver, output, options, device=device)
    size = f"{stats.size[0]}x{stats.size[1]}" if stats.size else "?"
    console.log(
        f"{f'{output}: ' if output is not None else ''}{stats.frames} frames at {stats.fps:g} fps, {size}, "
        f"{stats.frames_per_second:.1f} frames/s; driver face in {stats.faces}/{stats.frames} frames"
        + (f", reference frame {stats.reference}" if stats.reference is not None else "")
    )


# ---------------------------------------------------------------------------------------------- evaluate


@command
@with_options(
    skip=("k", "face_index"), read=SourceOptions, loss=ContentLoss, options=EvalOptions, scoring=MetricOptions
)
def evaluate(
    videos: Annotated[
        list[Path],
        typer.Argument(
            help="Test videos (people the model was not trained on), or directories of them (searched recursively).",
            show_default=False,
            metavar="VIDEOS",
        ),
    ],
    read: SourceOptions,
    loss: ContentLoss,
    options: EvalOptions,
    scoring: MetricOptions,
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
    cross: Annotated[
        Optional[list[str]],
        typer.Option(
            "--cross",
            help="Cross-reenactment source, driven by every video: a photo, a directory of "
            "photos, a video, an embedding or a person file (repeat for several sources).",
            show_default=False,
            metavar="SOURCE",
        ),
    ] = None,
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
    from fsth.device import get_device
    from fsth.evaluate import evaluate as run_evaluation
    from fsth.evaluate import print_table, samples_dir, write_report
    from fsth.fewshot import FewShotModel
    from fsth.files import check_writable, refuse_inputs

    inputs = (*videos, _meta_path(read.checkpoint), *(cross or ()), *scoring.files, *loss.files, read.fan_weights)
    if output is not None:
        _output_file(output, force, ".json", "the report is JSON", inputs)
    if samples is not None:
        refuse_inputs(samples, inputs, "--samples")
        check_writable(samples, "--samples", directory=True)
    for source in cross or ():
        if not Path(source).exists():
            raise InputError(f"--cross {source}: no such file or directory")
    metric_options = scoring.for_metrics(options.metrics)
    model = FewShotModel.load(read.checkpoint, only=None if options.finetune_steps else ("E", "G"), device=get_device())
    detector = model.detector(read.backend, read.fan_weights, as_trained=True)  # the paper's protocol: its own points
    train_cfg = loss.train_config(model.config)
    report = run_evaluation(model, videos, detector, options, cross=cross or (), metric_options=metric_options,
                            train_cfg=train_cfg, samples=samples_dir(samples, force),
                            content_nets=_content_networks(options, train_cfg, model.device))  # fmt: skip
    print_table(report)
    write_report(report, output)


def _content_networks(options, train_cfg, device):
    """L_CNT's networks when the evaluation fine-tunes (loaded before the slow part: a missing file fails now)."""
    if not options.finetune_steps:
        return None
    from fsth.models import load_content_networks

    return load_content_networks(train_cfg, device)
