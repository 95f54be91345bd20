"""The report's parts (checkpoint, protocols, networks, video rows, sources), its table and the sample grids."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fsth import console
from fsth.checkpoint import Checkpoint
from fsth.config import TrainConfig
from fsth.errors import InputError
from fsth.evaluate.options import EvalOptions
from fsth.evaluate.protocol import TestVideo
from fsth.evaluate.renderers import EVAL_DTYPE
from fsth.evaluate.scoring import Setting, file_name
from fsth.evaluate.sources import CrossSource
from fsth.video import spread


def video_row(video: TestVideo) -> dict:
    track = video.track
    return {
        "video": str(video.path), "status": "evaluated", "frames": len(track), "frames_with_face": track.num_valid,
        "fps": track.fps, "shot_part": [int(video.shot_part[0]), int(video.shot_part[-1])] if len(video.shot_part)
        else [], "target_part": [int(video.target_part[0]), int(video.target_part[-1])],
        "shot_frames": {str(k): f for k, f in video.shot_frames.items()}, "target_frames": video.target_frames,
        "track_seconds": round(video.seconds, 3), "settings": {},
    }  # fmt: skip


def checkpoint_info(meta: Checkpoint) -> dict:
    from fsth.fewshot import fingerprint

    return {
        "path": str(meta.path),
        "fingerprint": fingerprint(meta.path),
        "kind": meta.kind,
        "step": meta.step,
        "config": meta.config.to_dict() if meta.config else None,
        "crop_policy": meta.crop_policy,
        "landmark_backend": meta.landmark_backend,
    }


def protocols_info(options: EvalOptions, sources: list[CrossSource], train_cfg: TrainConfig) -> dict:
    finetune = None
    if options.finetune_steps:
        finetune = {
            "steps": options.finetune_steps,
            "batch_size": options.finetune_batch_size,
            "content_loss": train_cfg.content_loss,
            "lr_G": train_cfg.lr_EG,
            "lr_D": train_cfg.lr_D,
            "seed": options.seed,
        }
    self_protocol = {
        "shots": list(options.shots), "targets": options.targets, "modes": list(options.modes),
        "finetune": finetune, "generator_dtype": str(EVAL_DTYPE).removeprefix("torch."),
        "split": "the frames with a face, in order: the first floor(n/2) are the shot part, the rest the target "
                 "part; K shots spread evenly over the shot part, the targets spread evenly over the target part, "
                 "the same targets for every setting",
    }  # fmt: skip
    cross_protocol = None
    if sources:
        motion = options.motion
        cross_protocol = {
            "sources": [s.given for s in sources], "frames_per_driver": options.targets,
            "frames": "spread evenly over the driver's frames with a face",
            "retarget": {"absolute": motion.absolute, "head_motion": motion.head_motion,
                         "reference": motion.reference},
            "identity": "CSIM against the source's first shot",
        }  # fmt: skip
    return {"self": self_protocol, "cross": cross_protocol}


def networks_info(settings: list[Setting]) -> dict:
    """Metric name -> what measured it (from the first setting that has it)."""
    out = {}
    for setting in settings:
        for name, m in setting.metrics.items():
            if name not in out:
                r = m.result()
                out[name] = {
                    "network": r.network,
                    "weights": r.weights,
                    "unit": r.unit,
                    "higher_is_better": r.higher_is_better,
                }
    return out


def source_info(source: CrossSource) -> dict:
    return {
        "name": source.name,
        "path": source.given,
        "shots": source.num_shots,
        "sources": source.sources,
        "modes": list(source.renderers),
        "identity": source.identity.sources[0] if source.identity is not None else None,
        "identity_reason": source.identity_reason,
    }


# ----------------------------------------------------------------------------------------------------- the table


_HEADERS = {"ssim": "SSIM", "psnr": "PSNR dB", "l1": "L1", "csim": "CSIM", "akd": "AKD px", "fid": "FID"}


def format_result(result: dict) -> str:
    """``MetricResult.to_dict()`` as a table cell: "0.812 ± 0.031", "31.4", "n/a"."""
    value, std = result["value"], result["std"]
    if value is None:
        return "n/a"
    if isinstance(value, str):  # "inf": identical crops
        return value
    digits = 3 if result["unit"] == "" and result["metric"] != "fid" else 2
    return f"{value:.{digits}f}" + (f" ± {std:.{digits}f}" if std is not None else "")


def report_table(report: dict):
    """The summary as a rich Table: one row per setting (self K=8 FF, cross photo.jpg FT ...) with its videos, mean ±
    std of each metric and the failures (pairs a metric could not score); the caption says why a value is missing."""
    from rich.table import Table

    names = list(report["metrics"])
    checkpoint = report["checkpoint"]
    table = Table(
        title=f"fsth evaluate: {checkpoint['path']} (step {checkpoint['step']})",
        title_justify="left",
        caption_justify="left",
    )
    table.add_column("setting", no_wrap=True)
    table.add_column("videos", justify="right")
    for name in names:
        arrow = "↑" if report["metrics"][name]["higher_is_better"] else "↓"
        table.add_column(f"{_HEADERS.get(name, name)} {arrow}", justify="right", no_wrap=True)
    table.add_column("failures")
    reasons: list[str] = []
    for s in report["settings"]:
        cells = []
        for name in names:
            r = s["metrics"].get(name)
            cells.append("–" if r is None else format_result(r))
            if r is not None and r["reason"] and f"{name}: {r['reason']}" not in reasons:
                reasons.append(f"{name}: {r['reason']}")
        failures = [f"{n} {r['failed']}/{r['count'] + r['failed']}" for n, r in s["metrics"].items() if r["failed"]]
        table.add_row(s["name"], str(s["videos"]), *cells, ", ".join(failures) or "none")
    done = report["summary"]
    caption = [f"{done['evaluated']} of {done['videos']} videos evaluated in {done['seconds']:.0f} s"]
    caption += [f"skipped {r['reason']}" for r in report["videos"] if r["status"] == "skipped"]
    table.caption = "\n".join(caption + reasons)
    return table


def print_table(report: dict) -> None:
    """``report_table`` on stderr (unless quiet); not squeezed into 80 columns when stderr is not a terminal."""
    if console.verbosity < 1:
        return
    out = console.err
    if not out.is_terminal:  # a log file or a pipe: rich would assume 80 columns
        from rich.console import Console

        out = Console(stderr=True, highlight=False, width=160)
    out.print(report_table(report))


# ------------------------------------------------------------------------------------------------------- samples


SAMPLE_ROWS = 8  # targets shown in a sample grid


SAMPLE_MIN_SIDE = 128  # crops smaller than this are enlarged (pixel repetition) in sample grids


def write_sample(
    samples: Path | None, video_index: int, video: Path, setting: Setting, rows: list[list[np.ndarray]]
) -> None:
    """A PNG grid of rows of equally sized images: samples/NNN_video/setting.png."""
    if samples is None:
        return
    from fsth.rundir import image_grid
    from fsth.video import write_image

    folder = samples / f"{video_index:03d}_{file_name(video.stem)}"
    folder.mkdir(parents=True, exist_ok=True)
    grid = image_grid(rows)
    factor = -(-SAMPLE_MIN_SIDE // rows[0][0].shape[0])  # small models' crops, enlarged to look at
    if factor > 1:
        grid = np.repeat(np.repeat(grid, factor, axis=0), factor, axis=1)
    write_image(folder / f"{setting.slug}.png", grid)


def sample_rows(count: int) -> np.ndarray:
    return spread(count, SAMPLE_ROWS)


def samples_dir(path: Path | None, force: bool) -> Path | None:
    """``--samples DIR``: created if missing; an existing one must be empty unless ``force`` (its PNGs are
    replaced)."""
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


def write_report(report: dict, output: Path | None) -> None:
    """The report as strict JSON into ``output`` (atomically), or on stdout without one."""
    import json
    import sys

    from fsth.files import atomic_write

    text = json.dumps(report, indent=2, allow_nan=False) + "\n"
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    atomic_write(output, lambda f: f.write(text.encode()))
    console.log(f"{output}: report of {report['summary']['evaluated']} video(s), {len(report['settings'])} setting(s)")
