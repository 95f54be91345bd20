"""Hostile inputs, as a new user tries them (issue 12): each ends in one ``error:`` line naming the problem, a
non-zero exit, no traceback, nothing lost or half-written, and, where a run could only fail at its end, before
the work starts."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import OFFLINE, PORTRAIT, TALK, fsth, ok, one_error_line

UNWRITABLE = [d for d in ("/sys", "/proc") if os.path.isdir(d)]


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    for name, value in OFFLINE.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def work(tmp_path, tiny_meta_checkpoint):
    """A folder with a meta checkpoint, a photo and a video in it (and a symlink to the checkpoint)."""
    (tmp_path / "ck").mkdir()
    meta = tmp_path / "ck" / "meta.safetensors"
    shutil.copy(tiny_meta_checkpoint, meta)
    shutil.copy(PORTRAIT, tmp_path / "portrait.jpg")
    shutil.copy(TALK, tmp_path / "talk.mp4")
    (tmp_path / "link.safetensors").symlink_to(meta)
    return tmp_path


def unchanged(path: Path, before: bytes) -> bool:
    return path.read_bytes() == before


def finetune_photo(work: Path, checkpoint, output, *extra) -> tuple:
    """``fsth finetune``'s arguments: the work folder's photo as the shots, ``checkpoint``, ``-o output``."""
    return ("finetune", "--shots", work / "portrait.jpg", "-c", checkpoint, "-o", output, *extra)


# -- an output that is an input: refused for every command, --force or not, through .. and symlinks ---------


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_embed_and_finetune_never_write_over_their_checkpoint(work, force):
    meta = work / "ck" / "meta.safetensors"
    before = meta.read_bytes()
    for target in (meta, work / "ck" / ".." / "ck" / "meta.safetensors", work / "link.safetensors"):
        one_error_line(
            fsth("embed", "--shots", work / "portrait.jpg", "-c", meta, "-o", target, *force),
            "would overwrite an input",
        )
        one_error_line(
            fsth(*finetune_photo(work, meta, target, "--steps", "1", "--no-content-loss", *force)),
            "would overwrite an input",
        )
    # the checkpoint found through $FSTH_CHECKPOINT (no -c) counts too
    one_error_line(
        fsth("embed", "--shots", work / "portrait.jpg", "-o", meta, *force, env={"FSTH_CHECKPOINT": str(meta)}),
        "would overwrite an input",
    )
    assert unchanged(meta, before)


def test_finetune_never_writes_over_the_person_file_it_continues(work):
    person = work / "person.safetensors"
    ok(*finetune_photo(work, work / "ck" / "meta.safetensors", person, "--steps", "1", "--no-content-loss"))
    before = person.read_bytes()
    one_error_line(
        fsth(*finetune_photo(work, person, person, "--steps", "1", "--no-content-loss", "--force")),
        "would overwrite an input",
    )
    assert unchanged(person, before)


def test_animate_landmarks_evaluate_train_never_write_over_an_input(work, dataset_dir):
    talk, before = work / "talk.mp4", (work / "talk.mp4").read_bytes()
    (work / "talk_link.mp4").symlink_to(talk)
    for target in (talk, work / "ck" / ".." / "talk.mp4", work / "talk_link.mp4"):
        one_error_line(
            fsth(
                "animate", work / "portrait.jpg", talk, "-c", work / "ck" / "meta.safetensors", "-o", target, "--force"
            ),
            "would overwrite an input",
        )
        one_error_line(
            fsth("landmarks", talk, "-o", work / "x.npz", "--sketch", target, "--force"), "would overwrite an input"
        )
    assert unchanged(talk, before)
    one_error_line(fsth("landmarks", work / "ck" / "..", "--dataset", work), "would overwrite an input")
    one_error_line(
        fsth("evaluate", "-c", work / "ck" / "meta.safetensors", work, "--samples", work / "ck" / "..", "--force"),
        "--samples",
        "would overwrite an input",
    )
    one_error_line(
        fsth("train", dataset_dir, "--run-dir", dataset_dir / "videos" / "..", "--preset", "tiny"),
        "--run-dir",
        "would overwrite an input",
    )


# -- outputs that cannot be written: refused before the work -------------------------------------------------


@pytest.mark.skipif(not UNWRITABLE, reason="no /sys or /proc here")
@pytest.mark.parametrize("where", UNWRITABLE)
def test_outputs_under_sys_or_proc_are_refused_before_the_work(work, where):
    meta, photo, talk = work / "ck" / "meta.safetensors", work / "portrait.jpg", work / "talk.mp4"
    cases = [
        (("landmarks", talk, "-o", f"{where}/x.npz"), "-o"),
        (("landmarks", talk, "-o", work / "x.npz", "--sketch", f"{where}/s.mp4"), "--sketch"),
        (("landmarks", work, "-o", f"{where}/out/"), "-o"),
        (("landmarks", work, "--dataset", f"{where}/ds"), "--dataset"),
        (("train", work, "--run-dir", f"{where}/run"), "--run-dir"),
        (("embed", "--shots", photo, "-c", meta, "-o", f"{where}/e.safetensors"), "-o"),
        (("finetune", "--shots", photo, "-c", meta, "-o", f"{where}/x.safetensors", "--no-content-loss"), "-o"),
        (("animate", photo, talk, "-c", meta, "-o", f"{where}/a.mp4"), "-o"),
        (("evaluate", "-c", meta, talk, "-o", f"{where}/r.json"), "-o"),
        (("evaluate", "-c", meta, talk, "--samples", f"{where}/s"), "--samples"),
    ]
    for args, option in cases:
        one_error_line(fsth(*args), f"{option} {where}/", f"cannot write in {where}")


def test_a_file_used_as_a_directory_is_refused_before_the_work(work):
    meta, photo, talk = work / "ck" / "meta.safetensors", work / "portrait.jpg", work / "talk.mp4"
    for args in [
        ("landmarks", talk, "-o", talk / "x.npz"),
        ("landmarks", photo, talk, "-o", talk / "out"),
        ("embed", "--shots", photo, "-c", meta, "-o", talk / "e.safetensors"),
        ("animate", photo, talk, "-c", meta, "-o", photo / "a.mp4"),
        ("evaluate", "-c", meta, talk, "-o", talk / "sub" / "r.json"),
        ("evaluate", "-c", meta, talk, "--samples", photo),
    ]:
        one_error_line(fsth(*args), "is a file, not a directory")


def test_animate_into_an_existing_directory_is_refused_before_rendering(work):
    (work / "clip.mp4").mkdir()
    one_error_line(
        fsth(
            "animate",
            work / "portrait.jpg",
            work / "talk.mp4",
            "-c",
            work / "ck" / "meta.safetensors",
            "-o",
            work / "clip.mp4",
            "--force",
        ),
        "clip.mp4: is a directory",
    )


# -- usage errors ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ("embed", "--k", "0", "--shots", "x.jpg", "-o", "e.safetensors"),
        ("finetune", "--steps", "-1", "--shots", "x.jpg", "-o", "p.safetensors"),
        ("embed", "--shots", "x.jpg"),
        ("landmarks",),
        ("nope",),
        ("landmarks", "x.jpg", "--sketch-size", "abc"),
    ],
)
def test_usage_errors_are_one_error_line(args):
    result = fsth(*args)
    one_error_line(result, "--help")
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr


# -- files that are not what they are named ------------------------------------------------------------------


def test_an_empty_jpg_is_one_line_and_a_batch_goes_on(work, no_face_image):
    empty = work / "empty.jpg"
    empty.write_bytes(b"")
    out = work / "lm"
    result = fsth("landmarks", work / "talk.mp4", work / "portrait.jpg", empty, no_face_image, "-o", f"{out}/")
    one_error_line(result, "empty.jpg: empty file (0 bytes)", "2 of 4 inputs failed")
    assert sorted(p.name for p in out.iterdir()) == ["portrait.npz", "talk.npz"]
    meta = work / "ck" / "meta.safetensors"
    one_error_line(fsth("embed", "--shots", empty, "-c", meta, "-o", work / "e.safetensors"), "empty.jpg: empty file")
    one_error_line(fsth("animate", empty, work / "talk.mp4", "-c", meta, "-o", work / "a.mp4"), "empty.jpg: empty file")
    result = fsth(
        "evaluate", "-c", meta, work / "talk.mp4", "--cross", empty, "--shots", "1", "--targets", "1", "--metrics", "l1"
    )
    one_error_line(result, "empty.jpg: empty file")
    assert not (work / "e.safetensors").exists() and not (work / "a.mp4").exists()


@pytest.mark.parametrize("option", ["--fan-weights", "--vgg19-weights", "--arcface-weights"])
def test_a_text_file_given_as_weights_says_what_it_is_not(work, option):
    text = work / "weights.pth"
    text.write_text("hello, I am a text file\n")
    meta = work / "ck" / "meta.safetensors"
    args = {
        "--fan-weights": ("landmarks", work / "portrait.jpg", "--backend", "fan", "--fan-weights", text),
        "--vgg19-weights": finetune_photo(
            work, meta, work / "p.safetensors", "--vgg19-weights", text, "--vggface-weights", text
        ),
        "--arcface-weights": (
            "evaluate",
            "-c",
            meta,
            work / "talk.mp4",
            "--csim-network",
            "arcface",
            "--arcface-weights",
            text,
        ),
    }[option]
    result = fsth(*args)
    one_error_line(result, "weights.pth", "holds text ('hello, I am '...), not weights")
    assert "101" not in result.stderr


# -- numbers ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,fragment",
    [
        (
            ("landmarks", "x.jpg", "--crop-y-offset", "nan"),
            "--crop-y-offset': must be a finite number from -2 to 2, not nan",
        ),
        (("landmarks", "x.jpg", "--crop-scale", "1e9"), "--crop-scale': must be a finite number from 0.5 to 10"),
        (("landmarks", "x.jpg", "--smoothing", "inf"), "--smoothing': must be a finite number"),
        (("landmarks", "x.jpg", "--sketch-size", "100000"), "--sketch-size"),
        (("landmarks", "x", "--dataset", "d", "--size", "100000"), "--size"),
        (
            ("finetune", "--shots", "x.jpg", "-o", "p.safetensors", "--epochs", "inf"),
            "--epochs': must be a finite number",
        ),
        (("train", "ds", "--run-dir", "run", "--lr-eg", "inf"), "--lr-eg': must be a finite number from 0 to 1"),
        (("train", "ds", "--run-dir", "run", "--lr-d", "1e6"), "--lr-d'"),
        (("train", "ds", "--run-dir", "run", "--lr-d", "nan"), "--lr-d'"),
    ],
)
def test_float_options_take_finite_numbers_in_a_sane_range(args, fragment):
    result = fsth(*args)
    one_error_line(result, fragment)
    assert result.exit_code == 2


# -- messages that name the real problem ----------------------------------------------------------------------


def test_face_index_beyond_the_faces_of_a_video_says_so(work):
    one_error_line(
        fsth("landmarks", work / "talk.mp4", "--face-index", "1", "-o", work / "x.npz"),
        "--face-index 1 asks for face 2, found at most 1 in any of its 60 frames",
    )


def test_a_1x1_video_says_its_frames_are_too_small(work):
    from conftest import ffmpeg

    tiny = work / "one.mp4"
    ffmpeg(
        "-f", "lavfi", "-i", "color=c=red:s=1x1:d=1", "-r", "30", "-c:v", "libx264", "-pix_fmt", "yuv444p", str(tiny)
    )
    result = fsth("landmarks", tiny, "-o", work / "x.npz")
    one_error_line(result, "one.mp4: its frames are 1x1 pixels, too small to hold a face")
    assert "frame=" not in result.stderr


def test_skip_existing_resumes_an_input_whose_sketch_is_missing(work):
    npz, sketch = work / "talk.npz", work / "talk_sketch.mp4"
    ok("landmarks", work / "talk.mp4", "-o", npz)  # as if interrupted before the sketch was written
    result = ok("landmarks", work / "talk.mp4", "-o", npz, "--sketch", sketch, "--skip-existing")
    assert sketch.is_file() and npz.is_file() and "talk.mp4: 60/60 frames" in result.stderr
    result = ok("landmarks", work / "talk.mp4", "-o", npz, "--sketch", sketch, "--skip-existing")
    assert "nothing to do" in result.stderr


def test_more_shots_asked_for_than_given_is_said(work):
    result = ok(
        "embed",
        "--shots",
        work / "portrait.jpg",
        "--k",
        "100",
        "-c",
        work / "ck" / "meta.safetensors",
        "-o",
        work / "e.safetensors",
    )
    assert "--k 100 asks for 100 shots, but the shots are 1 photo(s): using it" in result.stderr
    assert "e_hat of 1 shot(s)" in result.stderr


def test_shots_of_different_people_are_warned_about(work):
    from conftest import OBAMA, OBAMA_BIDEN

    meta = work / "ck" / "meta.safetensors"
    mixed = ok("embed", "--shots", work / "portrait.jpg", "--shots", OBAMA, "-c", meta, "-o", work / "a.safetensors")
    assert "do not look like one person" in mixed.stderr
    same = ok("embed", "--shots", OBAMA, "--shots", OBAMA_BIDEN, "-c", meta, "-o", work / "b.safetensors")
    assert "one person" not in same.stderr  # Obama's official portrait and the largest face beside Biden


def test_train_shots_beyond_the_frames_of_the_videos_are_refused(dataset_dir, tmp_path):
    run = tmp_path / "run"
    one_error_line(
        fsth("train", dataset_dir, "--run-dir", run, "--preset", "tiny", "--shots", "100"),
        "--shots 100: an episode takes K + 1 = 101 frames of one video",
        "at most 10",
    )
    assert not run.exists()


# -- help --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [(), ("landmarks",), ("train",), ("embed",), ("finetune",), ("animate",), ("evaluate",)]
)
def test_help_is_readable_at_80_columns_and_in_a_pipe(command):
    """Every option name whole, no flag shown as taking a <bool>, no line wider than the terminal, no box or markup."""
    from typer.main import get_command

    from fsth.cli import app

    text = fsth(*command, "--help", env={"COLUMNS": "80"}).stdout
    assert "…" not in text and "<bool>" not in text and "[cyan]" not in text and "╭" not in text
    assert max(len(line) for line in text.splitlines()) <= 80, text
    click_command = get_command(app)
    for name in command:
        click_command = click_command.commands[name]
    for param in click_command.params:
        for option in param.opts if param.param_type_name == "option" else ():
            assert option in text, (option, text)


# -- NaN --------------------------------------------------------------------------------------------------------


def test_a_non_finite_embedding_is_refused_not_animated_black(work, tiny):
    import torch

    from fsth.checkpoint import save_checkpoint

    bad = save_checkpoint(
        work / "nan.safetensors",
        "embedding",
        {"e_hat": torch.full((tiny.embedding_dim,), float("nan")), "landmarks": torch.zeros(1, 68, 2)},
        tiny,
    )
    one_error_line(
        fsth("animate", bad, work / "talk.mp4", "-c", work / "ck" / "meta.safetensors", "-o", work / "a.mp4"),
        "e_hat holds NaN or infinite values",
    )
    assert not (work / "a.mp4").exists()


def test_fine_tuning_that_diverges_writes_no_person_file(work, monkeypatch):
    import torch

    import fsth.fewshot.finetune as ft

    real_step = ft.finetune_step

    def step(G, *args):
        with torch.no_grad():
            next(G.parameters()).fill_(float("nan"))
        return real_step(G, *args)

    monkeypatch.setattr(ft, "finetune_step", step)
    out = work / "p.safetensors"
    one_error_line(
        fsth(*finetune_photo(work, work / "ck" / "meta.safetensors", out, "--steps", "2", "--no-content-loss")),
        "fine-tuning diverged",
        "was not written",
    )
    assert not out.exists()


# -- issue 20: one output writer ----------------------------------------------------------------------------------


def beside(path: Path) -> list[str]:
    """What a folder holds besides the inputs ``work`` puts there."""
    return sorted(
        p.name for p in path.iterdir() if p.name not in ("ck", "portrait.jpg", "talk.mp4", "link.safetensors")
    )


def test_an_output_that_appears_while_embed_runs_is_kept_and_said(work, monkeypatch):
    import safetensors.torch

    out, real = work / "e.safetensors", safetensors.torch.save_file

    def someone_else_writes_first(*args, **kwargs):
        out.write_text("precious")  # another program, or a second run, while this one works
        return real(*args, **kwargs)

    monkeypatch.setattr(safetensors.torch, "save_file", someone_else_writes_first)
    args = ("embed", "--shots", work / "portrait.jpg", "-c", work / "ck" / "meta.safetensors", "-o", out)
    one_error_line(fsth(*args), "e.safetensors appeared while this command ran", "--force")
    assert out.read_text() == "precious" and beside(work) == ["e.safetensors"]
    ok(*args, "--force")  # with --force it is replaced
    assert out.read_bytes() != b"precious" and beside(work) == ["e.safetensors"]


def test_an_output_that_appears_while_animate_renders_is_kept_and_said(work, monkeypatch):
    from fsth.video import VideoWriter

    out, real = work / "a.mp4", VideoWriter.write

    def write(self, frame):
        if self.frames_written == 2:
            out.write_text("precious")
        real(self, frame)

    monkeypatch.setattr(VideoWriter, "write", write)
    result = fsth(
        "animate", work / "portrait.jpg", work / "talk.mp4", "-c", work / "ck" / "meta.safetensors", "-o", out
    )
    one_error_line(result, "a.mp4 appeared while this command ran")
    assert out.read_text() == "precious" and beside(work) == ["a.mp4"]


@pytest.mark.parametrize("signame", ["SIGTERM", "SIGHUP"])
def test_sigterm_or_sighup_during_animate_or_a_sketch_leaves_no_partial_files(work, monkeypatch, signame):
    import signal

    from fsth.video import VideoWriter

    real = VideoWriter.write

    def write(self, frame):
        if self.frames_written == 3:  # `timeout`, `docker stop`, a closed terminal, in the middle of the video
            os.kill(os.getpid(), getattr(signal, signame))
        real(self, frame)

    monkeypatch.setattr(VideoWriter, "write", write)
    meta = work / "ck" / "meta.safetensors"
    for args in (
        ("animate", work / "portrait.jpg", work / "talk.mp4", "-c", meta, "-o", work / "a.mp4"),
        ("landmarks", work / "talk.mp4", "-o", work / "x.npz", "--sketch", work / "s.mp4"),
    ):
        result = fsth(*args)
        one_error_line(result, f"terminated by {signame}")
        assert result.exit_code == 128 + getattr(signal, signame)
        assert beside(work) in ([], ["x.npz"]), beside(work)  # the landmarks are whole (written before the sketch)


def test_a_250_character_output_name_is_written_and_a_longer_one_refused_before_the_work(work):
    meta = work / "ck" / "meta.safetensors"
    long_ok = work / ("p" * 238 + ".safetensors")  # 250 bytes: its temp file's name must still fit in 255
    result = ok(*finetune_photo(work, meta, long_ok, "--steps", "1", "--no-content-loss"))
    assert long_ok.is_file() and beside(work) == [long_ok.name], result.stderr
    too_long = "q" * 252 + ".safetensors"  # 264 bytes: no file system takes it
    for args in (
        finetune_photo(work, meta, work / too_long, "--steps", "1", "--no-content-loss"),
        ("embed", "--shots", work / "portrait.jpg", "-c", meta, "-o", work / too_long),
        ("animate", work / "portrait.jpg", work / "talk.mp4", "-c", meta, "-o", work / (too_long[:-12] + ".mp4")),
        ("landmarks", work / "talk.mp4", "-o", work / (too_long[:-12] + ".npz")),
        ("evaluate", "-c", meta, work / "talk.mp4", "-o", work / (too_long[:-12] + ".json")),
    ):
        result = fsth(*args)
        one_error_line(result, "longer than the 255 a file system allows")
        assert "frames" not in result.stderr and "step" not in result.stderr  # refused before the work
    assert beside(work) == [long_ok.name]


def test_checkpoints_get_the_mode_the_umask_gives_like_every_other_output(work):
    meta = work / "ck" / "meta.safetensors"
    old = os.umask(0o022)
    try:
        ok("embed", "--shots", work / "portrait.jpg", "-c", meta, "-o", work / "e.safetensors")
        ok(*finetune_photo(work, meta, work / "p.safetensors", "--steps", "1", "--no-content-loss"))
        ok("landmarks", work / "portrait.jpg", "-o", work / "x.npz")
    finally:
        os.umask(old)
    for name in ("e.safetensors", "p.safetensors", "x.npz"):
        assert (work / name).stat().st_mode & 0o777 == 0o644, name


# -- issue 20: OSErrors the machine causes, as one line ---------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path):
    """A 1 MiB tmpfs filled up to its last byte (root only: skipped elsewhere); unmounted after."""
    import subprocess

    where = tmp_path / "full"
    where.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M", "tmpfs", str(where)]).returncode:
        pytest.skip("needs root to mount a small tmpfs")
    try:
        with open(where / "filler", "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError:  # ENOSPC: full
                pass
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)])


def test_a_full_disk_is_one_line_for_every_command_that_writes(work, full_disk, dataset_dir):
    meta, photo, talk = work / "ck" / "meta.safetensors", work / "portrait.jpg", work / "talk.mp4"
    for args in (
        ("embed", "--shots", photo, "-c", meta, "-o", full_disk / "e.safetensors"),
        finetune_photo(work, meta, full_disk / "p.safetensors", "--steps", "1", "--no-content-loss"),
        ("landmarks", talk, "-o", full_disk / "x.npz"),
        ("landmarks", talk, "-o", full_disk / "x.jsonl"),
        ("evaluate", "-c", meta, talk, "-o", full_disk / "r.json", "--shots", "1", "--targets", "1", "--metrics", "l1"),
        ("animate", photo, talk, "-c", meta, "-o", full_disk / "a.mp4"),
        ("train", dataset_dir, "--run-dir", full_disk / "run", "--preset", "tiny", "--no-content-loss"),
    ):
        result = fsth(*args)
        one_error_line(result, str(full_disk))
        assert "no space left on device" in result.stderr.lower(), result.stderr
        left = [p.name for p in full_disk.iterdir() if p.name != "run"]
        assert left == ["filler"], (args[0], left)


def test_a_dataset_build_that_fills_the_disk_stops_and_keeps_its_videos_to_do(video_tree, full_disk):
    from conftest import DATASET_ARGS

    filler, out = full_disk / "filler", full_disk / "ds"
    os.truncate(filler, filler.stat().st_size - 96 * 1024)  # room for the first video or so, not for all four
    result = fsth("landmarks", video_tree, "--dataset", out, *DATASET_ARGS)
    one_error_line(result, "no space left on device")
    assert "skipped" not in result.stderr  # no video was called bad for the machine's fault
    assert not list(full_disk.rglob("*.partial"))
    filler.unlink()  # space freed: the rerun does the rest, without --retry-failed
    result = ok("landmarks", video_tree, "--dataset", out, *DATASET_ARGS)
    assert "not tried again" not in result.stderr and len(list((out / "videos").rglob("*.safetensors"))) == 3


def run_shell(command: str):
    """``command`` in bash (``fsth`` there is this tree's ``python -m fsth``): (exit status of fsth, stderr)."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, **OFFLINE, "PYTHONPATH": str(root)}
    script = "set -o pipefail; fsth() { " + f"'{sys.executable}' -m fsth \"$@\"; }}; {command}"
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, env=env, timeout=120)
    return proc.returncode, proc.stderr


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_stdout_to_dev_full_or_closed_is_one_line_and_a_pipe_closed_early_is_no_error(work):
    for command in ("fsth --version", f"fsth -q landmarks {work / 'portrait.jpg'}", "fsth animate --help"):
        for redirect, reason in (("> /dev/full", "no space left on device"), (">&-", "it is closed")):
            code, stderr = run_shell(f"{command} {redirect}")
            assert code == 1 and "Traceback" not in stderr, (command, redirect, stderr)
            assert stderr.startswith(f"error: standard output: {reason}"), (command, redirect, stderr)
    code, stderr = run_shell(f"fsth -q landmarks {work / 'talk.mp4'} | head -1 > /dev/null")
    assert code == 0 and stderr == "", stderr


# -- issue 20: crafted checkpoints and datasets, checked by type ------------------------------------------------


def rewrite(src: Path, dst: Path, *, metadata: dict | None = None, tensors: dict | None = None) -> Path:
    """``src`` (a safetensors file) written to ``dst`` with some metadata entries and tensors replaced."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(src), framework="pt") as f:
        old_meta, old_tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    save_file({**old_tensors, **(tensors or {})}, str(dst), metadata={**old_meta, **(metadata or {})})
    return dst


@pytest.mark.parametrize(
    "change,fragment",
    [
        (("config", "image_size", "256"), 'model config: image_size must be an integer, not "256"'),
        (("config", "attention_up", 32), "model config: attention_up must be a list of int values, not 32"),
        (("meta", None, [1, 2]), "meta must be a JSON object, not list"),
        (("meta", "step", "ten"), 'meta: step must be an integer or null, not "ten"'),
        (("meta", "crop_policy", "big"), 'meta: crop_policy must be a JSON object or null, not "big"'),
        (("meta", "crop_policy.scale", -1), "crop scale must be a positive finite number, not -1"),
    ],
)
def test_a_checkpoint_whose_metadata_has_the_wrong_types_names_the_file_and_field(work, change, fragment):
    import json

    meta = work / "ck" / "meta.safetensors"
    from safetensors import safe_open

    with safe_open(str(meta), framework="pt") as f:
        stored = json.loads(f.metadata()[change[0]])
    key, field, value = change
    crafted = value if field is None else {**stored, field: value}
    if field and "." in field:  # one entry of a nested object
        outer, inner = field.split(".")
        crafted = {**stored, outer: {**stored[outer], inner: value}}
    bad = rewrite(meta, work / "bad.safetensors", metadata={key: json.dumps(crafted)})
    result = fsth("embed", "--shots", work / "portrait.jpg", "-c", bad, "-o", work / "e.safetensors")
    one_error_line(result, "bad.safetensors: bad metadata: " + fragment.replace(" or null", ""))
    assert not (work / "e.safetensors").exists()


def test_an_embedding_with_zero_shots_or_landmarks_at_1e9_is_refused_naming_the_file(work):
    import torch

    meta = work / "ck" / "meta.safetensors"
    emb = work / "e.safetensors"
    ok("embed", "--shots", work / "portrait.jpg", "-c", meta, "-o", emb)
    zero = rewrite(emb, work / "zero.safetensors", tensors={"landmarks": torch.zeros(0, 68, 2)})
    far = rewrite(emb, work / "far.safetensors", tensors={"landmarks": torch.full((1, 68, 2), 1e9)})
    for bad, fragment in ((zero, "landmarks: shape (0, 68, 2) in file, (K, 68, 2) with K >= 1"), (far, "reach 1e+09")):
        result = fsth("animate", bad, work / "talk.mp4", "-c", meta, "-o", work / "a.mp4")
        one_error_line(result, bad.name, fragment)
    assert not (work / "a.mp4").exists()


@pytest.fixture
def crafted_dataset(dataset_dir, tmp_path):
    out = tmp_path / "ds"
    shutil.copytree(dataset_dir, out)
    return out


def test_a_dataset_json_holding_a_list_is_one_line(crafted_dataset, tmp_path):
    (crafted_dataset / "dataset.json").write_text("[1, 2]\n")
    result = fsth("train", crafted_dataset, "--run-dir", tmp_path / "run", "--preset", "tiny", "--no-content-loss")
    one_error_line(result, "dataset.json must be a JSON object, not list")
    assert not (tmp_path / "run").exists()


def test_a_manifest_row_without_a_video_id_is_one_line(crafted_dataset, tmp_path):
    manifest = crafted_dataset / "manifest.jsonl"
    rows = manifest.read_text().splitlines()
    manifest.write_text("\n".join([rows[0].replace('"video_id":"A/v1"', '"video_id":null'), *rows[1:]]) + "\n")
    result = fsth("train", crafted_dataset, "--run-dir", tmp_path / "run", "--preset", "tiny", "--no-content-loss")
    one_error_line(result, "manifest.jsonl: row 1: video_id must be a string, not null")
    assert not (tmp_path / "run").exists()


def test_a_stored_video_with_5_points_a_frame_is_named_and_passed_over(crafted_dataset, tmp_path):
    import torch
    from safetensors import safe_open

    record = crafted_dataset / "videos" / "A" / "v1.safetensors"
    with safe_open(str(record), framework="pt") as f:
        n = f.get_tensor("points").shape[0]
    rewrite(record, record, tensors={"points": torch.zeros(n, 5, 2)})
    result = ok(
        "train", crafted_dataset, "--run-dir", tmp_path / "run", "--preset", "tiny", "--no-content-loss",
        "--max-steps", "1", "--workers", "0", "--batch-size", "2", "--shots", "2",
    )  # fmt: skip
    assert f"warning: {record}: points of shape ({n}, 5, 2), (N, 68, 2) expected" in result.stderr
    assert "Traceback" not in result.stderr


# -- issue 20: one image loader -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt,suffix,options", [("PNG", ".png", {}), ("WEBP", ".webp", {"lossless": True})])
@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_a_sideways_png_or_webp_from_a_phone_comes_out_upright(tmp_path, fmt, suffix, options, orientation):
    import numpy as np
    from PIL import Image

    from fsth.video import read_image

    upright = read_image(PORTRAIT)
    stored = {6: np.rot90(upright, 1), 8: np.rot90(upright, -1), 3: upright[::-1, ::-1]}[orientation]
    exif = Image.Exif()
    exif[0x0112] = orientation  # "turn me this way to show me", as a phone writes it
    path = tmp_path / f"phone{suffix}"
    Image.fromarray(np.ascontiguousarray(stored)).save(path, fmt, exif=exif, **options)
    assert np.array_equal(read_image(path), upright)


def test_a_20000x20000_png_is_refused_from_its_header_before_decoding(work):
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    big = work / "huge.png"  # a valid header of 20000x20000 RGB; decoding it whole would take 1.2 GB and more
    header = struct.pack(">IIBBBBB", 20000, 20000, 8, 2, 0, 0, 0)
    big.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 1000)))
    meta = work / "ck" / "meta.safetensors"
    for args in (
        ("landmarks", big, "-o", work / "x.npz"),
        ("embed", "--shots", big, "-c", meta, "-o", work / "e.safetensors"),
        ("animate", big, work / "talk.mp4", "-c", meta, "-o", work / "a.mp4"),
    ):
        one_error_line(fsth(*args), "huge.png: 400 megapixels, more than the 150 megapixels fsth reads")
    assert beside(work) == ["huge.png"]


# -- issue 20: the frame clock ------------------------------------------------------------------------------------


def test_a_driver_ffmpeg_reports_at_1k_fps_is_read_at_1000_not_0(tmp_path):
    from conftest import ffmpeg

    from fsth.video import VideoReader, probe_video

    clip = tmp_path / "fast.mp4"  # 90 frames in 0.09 s: ffmpeg says "1k fps", which imageio-ffmpeg read as 0
    ffmpeg("-f", "lavfi", "-i", "testsrc=s=64x64:r=1000:d=0.09", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(clip))
    assert probe_video(clip).fps == 1000.0
    with VideoReader(clip) as video:
        assert video.fps == 1000.0 and sum(1 for _ in video) == 90


# -- issue 20: memory caps ------------------------------------------------------------------------------------------


def test_a_batch_size_of_100000_is_refused_before_the_work(work, dataset_dir):
    result = fsth("animate", work / "portrait.jpg", work / "talk.mp4", "-o", work / "a.mp4", "--batch-size", "100000")
    one_error_line(result, "--batch-size", "less than or equal to 64")
    assert result.exit_code == 2
    run = work / "run"
    result = fsth("train", dataset_dir, "--run-dir", run, "--preset", "tiny", "--batch-size", "100000")
    one_error_line(result, "--batch-size", "less than or equal to 256")
    assert beside(work) == []


# -- issue 20: the dataset build and train's start ---------------------------------------------------------------


def test_a_dataset_whose_videos_folder_is_a_file_is_refused_before_tracking(video_tree, tmp_path):
    from conftest import DATASET_ARGS

    out = tmp_path / "ds"
    out.mkdir()
    (out / "videos").write_text("not a folder")
    result = fsth("landmarks", video_tree, "--dataset", out, *DATASET_ARGS)
    one_error_line(result, "videos: is a file, not a directory")
    assert "frames" not in result.stderr and sorted(p.name for p in out.iterdir()) == ["videos"]


def test_train_on_a_dataset_of_unreadable_videos_leaves_nothing_and_counts_videos(crafted_dataset, tmp_path):
    for record in (crafted_dataset / "videos").rglob("*.safetensors"):
        record.write_bytes(b"garbage")
    run = tmp_path / "run"
    args = ("train", crafted_dataset, "--run-dir", run, "--preset", "tiny", "--no-content-loss", "--workers", "0")
    result = fsth(*args, "--batch-size", "2", "--shots", "2", "--max-steps", "1")
    one_error_line(result, "3 of its 3 videos could not be read")
    assert not run.exists()  # the same command can simply be run again
    run.mkdir()  # an empty directory given: kept, and left empty
    one_error_line(fsth(*args, "--batch-size", "2", "--shots", "2", "--max-steps", "1"), "could not be read")
    assert run.is_dir() and not any(run.iterdir())


def test_a_second_train_on_a_run_directory_in_use_is_refused(dataset_dir, tmp_path):
    import fcntl

    run = tmp_path / "run"
    args = ("train", dataset_dir, "--run-dir", run, "--preset", "tiny", "--no-content-loss", "--workers", "0")
    ok(*args, "--batch-size", "2", "--shots", "2", "--max-steps", "1")
    stats = (run / "stats.jsonl").read_text()
    fd = os.open(run, os.O_RDONLY)  # as the first `fsth train --resume` holds it while it runs
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = fsth("train", dataset_dir, "--run-dir", run, "--resume", "--max-steps", "2")
        one_error_line(result, "another fsth train is using it")
    finally:
        os.close(fd)
    assert (run / "stats.jsonl").read_text() == stats


# -- issue 20: messages that name the real problem ------------------------------------------------------------------


def test_device_cuda_1_on_the_command_line_does_not_blame_the_environment(monkeypatch):
    monkeypatch.delenv("FSTH_DEVICE", raising=False)
    result = fsth("--device", "cuda:1", "landmarks", "x.jpg")
    one_error_line(result, "'cuda:1' is not one of 'auto', 'cpu', 'cuda'")
    assert "FSTH_DEVICE" not in result.stderr and result.exit_code == 2
    result = fsth("landmarks", "x.jpg", env={"FSTH_DEVICE": "cuda:1"})
    one_error_line(result, "env var: 'FSTH_DEVICE'")  # set there: then it is the one to blame


def test_a_driver_that_is_a_directory_a_fifo_or_dev_zero_says_what_it_is(work):
    os.mkfifo(work / "fifo.mp4")
    (work / "dir.mp4").mkdir()
    meta = work / "ck" / "meta.safetensors"
    for driver, what in (
        (work / "dir.mp4", "is a directory"),
        (work / "fifo.mp4", "is a FIFO"),
        ("/dev/zero", "is a device"),
    ):
        one_error_line(
            fsth("animate", work / "portrait.jpg", driver, "-c", meta, "-o", work / "a.mp4"), f"{driver}: {what}"
        )
    assert not (work / "a.mp4").exists()


def test_an_output_named_only_dot_mp4_or_a_sketch_named_as_the_output_says_so(work):
    meta = work / "ck" / "meta.safetensors"
    result = fsth("animate", work / "portrait.jpg", work / "talk.mp4", "-c", meta, "-o", work / ".mp4")
    one_error_line(result, "the name has nothing before .mp4; name it like NAME.mp4")
    result = fsth("landmarks", work / "talk.mp4", "-o", work / "x.npz", "--sketch", work / "x.npz")
    one_error_line(result, "-o and --sketch name the same file")
    assert beside(work) == []


@pytest.mark.parametrize("option,value,fragment", [("--shots", "0", "--shots"), ("--metrics", "", "names no metric")])
def test_evaluate_with_zero_shots_or_no_metrics_is_a_usage_error_before_loading(work, option, value, fragment):
    result = fsth("evaluate", "-c", work / "ck" / "meta.safetensors", work / "talk.mp4", option, value)
    one_error_line(result, fragment)
    assert result.exit_code == 2 and "track" not in result.stderr


def test_a_checkpoint_given_with_model_warp_or_a_person_file_is_refused_not_ignored(work):
    """A checkpoint that would be ignored is refused: --model warp with a file of shots (with photos it gives the
    crop policy and size), and a person file (it carries its own generator)."""
    meta = work / "ck" / "meta.safetensors"
    talk, out = work / "talk.mp4", work / "a.mp4"
    person = work / "p.safetensors"
    ok(*finetune_photo(work, meta, person, "--steps", "1", "--no-content-loss"))
    result = fsth("animate", person, talk, "--model", "warp", "-c", meta, "-o", out)
    one_error_line(result, "drop --checkpoint")
    one_error_line(fsth("animate", person, talk, "-c", meta, "-o", out), "a person file carries its own generator")
    assert not out.exists()


def test_a_broken_checkpoint_at_the_default_location_says_it_was_found_there(work, tmp_path):
    default = tmp_path / "data" / "fsth" / "meta.safetensors"
    default.parent.mkdir(parents=True)
    default.write_bytes(b"\0" * 100)
    args = ("embed", "--shots", work / "portrait.jpg", "-o", work / "e.safetensors")
    result = fsth(*args, env={"XDG_DATA_HOME": str(tmp_path / "data")})
    one_error_line(result, str(default), "found at the default location: replace or remove it")
    assert not (work / "e.safetensors").exists()


def test_a_truncated_png_or_a_missing_camera_is_one_line_without_library_noise(work):
    from conftest import PORTRAIT_RGBA

    data = PORTRAIT_RGBA.read_bytes()
    cut = work / "cut.png"  # an interrupted download: its header whole, its pixels cut short
    cut.write_bytes(data[: len(data) * 2 // 3])
    code, stderr = run_shell(f"fsth -q landmarks {cut}")
    assert (
        code == 1
        and stderr == f"error: {cut}: a truncated or damaged PNG image (its header reads, its pixels do not)\n"
    )
    code, stderr = run_shell(f"fsth -q animate {work / 'portrait.jpg'} 9 --no-preview -o {work / 'cam.mp4'}")
    assert code == 1 and stderr.startswith("error: camera 9: cannot open") and len(stderr.splitlines()) == 1, stderr


def test_a_variable_frame_rate_driver_is_read_by_its_timestamps(tmp_path):
    """A phone clip that stalls for half a second: frame i must show the video at time i / fps, as the output mp4
    plays it beside the driver's sound (read one per 1/fps as stored, it ran 0.2 s behind its sound here)."""
    import imageio_ffmpeg
    import numpy as np
    from conftest import ffmpeg

    from fsth.video import VideoReader

    clip = tmp_path / "vfr.mp4"  # 60 frames at 30 fps, frame n a grey of 16 + 3n, with a 0.5 s stall after frame 29
    ffmpeg(
        "-f", "lavfi", "-i", "color=c=black:s=64x64:r=30:d=2,geq=lum='16+N*3':cb=128:cr=128",
        "-vf", "setpts='(N/30+if(gte(N,30),0.5,0))/TB'", "-fps_mode", "vfr",
        "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p", str(clip),
    )  # fmt: skip
    stored = imageio_ffmpeg.read_frames(str(clip), output_params=["-fps_mode", "passthrough"])
    next(stored)  # its metadata
    greys = np.array([np.frombuffer(f, np.uint8).mean() for f in stored])  # (60,) one per stored frame
    with VideoReader(clip) as video:
        shown = np.array([frame.mean() for frame in video])
        fps = video.fps
    t = np.arange(len(shown)) / fps
    expected = np.where(t < 1.0, t * 30, np.where(t < 1.5, 29, 30 + (t - 1.5) * 30))  # the stored frame due at t
    which = np.abs(shown[:, None] - greys[None]).argmin(1)
    assert len(greys) == 60 and np.abs(which - expected).max() / 30 < 0.1  # ffmpeg's own rounding: ~2 frames


def test_a_photo_with_two_faces_says_which_is_used_and_one_without_says_how_small_is_too_small(work, no_face_image):
    from conftest import OBAMA_BIDEN

    meta = work / "ck" / "meta.safetensors"
    result = ok("embed", "--shots", OBAMA_BIDEN, "-c", meta, "-o", work / "e.safetensors")
    assert "obama_biden.jpg: more than one face (2 found); using face 1 by size" in result.stderr
    one_error_line(
        fsth("embed", "--shots", no_face_image, "-c", meta, "-o", work / "f.safetensors"),
        "no face found in the image (faces less than about 50 px across are not found",
    )


def test_a_one_frame_gif_is_taken_as_a_photo(work):
    from conftest import ffmpeg

    from fsth.video import is_image, is_video

    still = work / "still.gif"
    ffmpeg("-i", str(work / "portrait.jpg"), "-vf", "scale=360:360", "-frames:v", "1", str(still))
    assert is_image(still) and not is_video(still)
    result = ok("embed", "--shots", still, "-c", work / "ck" / "meta.safetensors", "-o", work / "e.safetensors")
    assert "e_hat of 1 shot(s)" in result.stderr and "frames with a face" not in result.stderr


def test_a_photo_of_two_people_embeds_the_face_asked_for(work):
    """`fsth embed --face-index 1` on a photo of Obama and Biden: the second face by size is taken, and where it
    is, is said; a face the photo does not have is one line."""
    import re

    from conftest import OBAMA_BIDEN

    meta = work / "ck" / "meta.safetensors"
    where = []
    for index in (0, 1):
        out = work / f"e{index}.safetensors"
        result = ok("embed", "--shots", OBAMA_BIDEN, "--face-index", index, "--backend", "dlib", "-c", meta, "-o", out)
        assert f"using face {index + 1} by size" in result.stderr and "--face-index N takes another" in result.stderr
        where.append(float(re.search(r"wide at x (\d+)", result.stderr).group(1)))
    assert abs(where[0] - where[1]) > 100  # two faces, side by side in a 560 px photo
    one_error_line(
        fsth("embed", "--shots", OBAMA_BIDEN, "--face-index", "2", "--backend", "dlib", "-c", meta, "-o",
             work / "e2.safetensors"),
        "--face-index 2 asks for face 3, found 2",
    )  # fmt: skip
