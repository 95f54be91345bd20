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

    import fsth.finetune as ft

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
