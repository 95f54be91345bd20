"""``fsth embed``, ``fsth finetune`` and ``fsth animate`` as a user runs them (tiny preset, real media)."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import OFFLINE, PORTRAIT, PORTRAIT_RGBA, TALK, ffmpeg, fsth, interrupt_finetuning_at, ok, one_error_line
from typer.testing import CliRunner

from fsth.cli import app
from fsth.video import VideoReader, probe_video, read_image


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """No downloads, no default checkpoint, no display: what these tests assume of the machine."""
    for name, value in OFFLINE.items():
        monkeypatch.setenv(name, value)


def video_facts(path):
    """(frames, fps, width, height, has_audio) of a written video, frames counted by decoding."""
    info = probe_video(path)
    with VideoReader(path) as video:
        frames = sum(1 for _ in video)
    return frames, info.fps, info.width, info.height, info.has_audio


def nothing_written(directory, name):
    """No output under ``name`` and no temp file left beside it."""
    return not (directory / name).exists() and not list(directory.glob(f".{name}*"))


@pytest.fixture(scope="module")
def files(tmp_path_factory, tiny_meta_checkpoint):
    """An embedding (two photos) and a person file (2 fine-tuning steps on 3 frames of talk.mp4), made by the CLI."""
    d = tmp_path_factory.mktemp("fewshot")
    embedding, person = d / "embedding.safetensors", d / "person.safetensors"
    ok("embed", "-c", tiny_meta_checkpoint, "--shots", PORTRAIT, "--shots", PORTRAIT_RGBA, "-o", embedding, env=OFFLINE)
    result = ok(
        "finetune",
        "-c",
        tiny_meta_checkpoint,
        "--shots",
        TALK,
        "-k",
        "3",
        "--steps",
        "2",
        "--no-content-loss",
        "-o",
        person,
        env=OFFLINE,
    )
    assert "2 steps on 3 shot(s)" in result.stderr
    assert result.stderr.count("content loss L_CNT (VGG19 + VGGFace) is switched off") == 1
    return {"meta": tiny_meta_checkpoint, "embedding": embedding, "person": person}


@pytest.fixture(scope="module")
def silent_talk(tmp_path_factory):
    path = tmp_path_factory.mktemp("silent") / "silent.mp4"
    ffmpeg("-i", str(TALK), "-an", "-c:v", "copy", str(path))
    return path


def test_embed_then_animate_keeps_frames_fps_and_audio(tmp_path, files):
    out = tmp_path / "out.mp4"
    result = ok("animate", files["embedding"], TALK, "-c", files["meta"], "-o", out)
    assert "60 frames at 30 fps, 64x64" in result.stderr and "driver face in 60/60 frames" in result.stderr
    assert video_facts(out) == (60, 30.0, 64, 64, True)
    assert b"crf=12.0" in out.read_bytes()  # a small frame: x264's finer setting (its options are in the stream)
    ok("animate", files["embedding"], TALK, "-c", files["meta"], "-o", out, "--force", "--no-audio", "--crf", "30")
    assert video_facts(out)[4] is False and b"crf=30.0" in out.read_bytes()


def test_person_file_animates_side_by_side_without_the_meta_checkpoint(tmp_path, files, silent_talk):
    out = tmp_path / "out.mp4"
    ok("animate", files["person"], silent_talk, "-o", out, "--side-by-side")  # no -c: the person file suffices
    assert video_facts(out) == (60, 30.0, 64 * 3, 64, False)  # driver | landmark image | result; no audio to keep
    with VideoReader(out) as video:
        frame = next(iter(video))
    sketch = frame[:, 64:128].astype(int)
    assert (sketch.max(axis=2) < 40).mean() > 0.6 and (sketch.max(axis=2) > 120).sum() > 20  # lines on black


def test_photo_source_pasted_back(tmp_path, files):
    out = tmp_path / "out.mp4"
    ok("animate", PORTRAIT, TALK, "-c", files["meta"], "-o", out, "--paste-back", "--no-head-motion")
    assert video_facts(out) == (60, 30.0, 720, 720, True)
    assert b"crf=18.0" in out.read_bytes()  # a photo-sized frame
    photo = read_image(PORTRAIT).astype(int)
    with VideoReader(out) as video:
        frame = next(iter(video)).astype(int)
    # the photo is kept outside the face (h264 rounding only), the generated face replaces it inside
    assert np.abs(frame[:60] - photo[:60]).mean() < 4 and np.abs(frame[-60:] - photo[-60:]).mean() < 4
    assert np.abs(frame[300:400, 300:420] - photo[300:400, 300:420]).mean() > 20


def test_live_path_with_a_file_in_place_of_the_camera(tmp_path, files):
    out = tmp_path / "live.mp4"
    result = ok("animate", files["person"], TALK, "--live", "--no-preview", "-o", out, "--side-by-side")
    assert "reference frame 0" in result.stderr
    assert video_facts(out) == (60, 30.0, 192, 64, True)


def test_camera_and_preview_fail_in_one_line_without_a_display(tmp_path, files):
    one_error_line(fsth("animate", files["person"], "0"), "needs a display", "--no-preview")
    one_error_line(fsth("animate", files["person"], TALK, "--preview"), "needs a display")
    result = fsth("animate", files["person"], "0", "--no-preview", "-o", tmp_path / "rec.mp4")
    one_error_line(result, "camera 0: cannot open")
    assert nothing_written(tmp_path, "rec.mp4")


@pytest.mark.parametrize(
    "case",
    [
        "no face in source",
        "unreadable driver",
        "truncated driver",
        "faceless driver",
        "photo as driver",
        "meta as source",
        "person as meta",
        "missing directory",
        "existing output",
    ],
)
def test_bad_input_is_one_line_and_leaves_no_file(
    tmp_path, files, case, no_face_image, truncated_videos, faceless_video
):
    source, driver, options, name, message = files["embedding"], TALK, ["-c", files["meta"]], "out.mp4", None
    if case == "no face in source":
        source, message = no_face_image, "wall.png: no face found"
    elif case == "unreadable driver":
        driver = tmp_path / "notes.mp4"
        driver.write_text("not a video")
        message = "notes.mp4: cannot read video"
    elif case == "truncated driver":
        driver, message = truncated_videos["front"], "truncated or corrupt"
    elif case == "faceless driver":
        driver, message = faceless_video, "no face found in any of its 10 frames"
    elif case == "photo as driver":
        driver, message = PORTRAIT, "not a photo"
    elif case == "meta as source":
        source, message = files["meta"], "is a 'meta' checkpoint"
    elif case == "person as meta":
        source, options, message = PORTRAIT, ["-c", files["person"]], "'meta' is needed here"
    elif case == "missing directory":
        name, message = "nodir/out.mp4", "output directory"
    else:
        (tmp_path / name).write_bytes(b"keep me")
        message = "already exists; use --force"
    one_error_line(fsth("animate", source, driver, "-o", tmp_path / name, *options), message)
    if case == "existing output":
        assert (tmp_path / name).read_bytes() == b"keep me"
    else:
        assert nothing_written(tmp_path, "out.mp4")


def test_the_meta_checkpoint_is_found_by_option_variable_or_default_location(tmp_path, files, monkeypatch):
    import shutil

    from fsth.checkpoint import load_checkpoint
    from fsth.weights import shipped_model

    out, data = tmp_path / "e.safetensors", tmp_path / "data"
    no_default = {"XDG_DATA_HOME": str(data), "FSTH_CHECKPOINT": ""}
    shipped = tmp_path / "shipped.safetensors"
    ok("embed", "--shots", PORTRAIT, "-o", shipped, env=no_default)  # nothing given, nothing there: the shipped model
    assert load_checkpoint(shipped, "embedding").meta["meta_checkpoint"] == str(shipped_model())
    monkeypatch.setattr("fsth.weights.SHIPPED_NAME", "not_installed.safetensors")
    result = fsth("embed", "--shots", PORTRAIT, "-o", out, env=no_default)
    default = str(data / "fsth" / "meta.safetensors")
    one_error_line(result, "no meta checkpoint", "--checkpoint", "FSTH_CHECKPOINT", default, "reinstall")
    gone = {**no_default, "FSTH_CHECKPOINT": "gone.safetensors"}
    one_error_line(
        fsth("embed", "--shots", PORTRAIT, "-o", out, env=gone),
        "gone.safetensors: no such checkpoint file (from $FSTH_CHECKPOINT)",
    )
    ok("embed", "--shots", PORTRAIT, "-o", out, env={**no_default, "FSTH_CHECKPOINT": str(files["meta"])})
    (data / "fsth").mkdir(parents=True)
    shutil.copy(files["meta"], data / "fsth" / "meta.safetensors")
    ok("embed", "--shots", PORTRAIT, "-o", out, "--force", env=no_default)


def test_finetune_without_vgg_weights_or_with_conflicting_lengths(tmp_path, files):
    out = tmp_path / "p.safetensors"
    args = ("finetune", "-c", files["meta"], "--shots", PORTRAIT, "-o", out)
    result = fsth(*args, "--steps", "1", env={"TORCH_HOME": str(tmp_path / "torch")})
    one_error_line(result, "vgg19-dcbb9e9d.pth", "--no-content-loss")
    one_error_line(fsth(*args, "--steps", "1", "--epochs", "2"), "--steps or --epochs")
    one_error_line(fsth("finetune", "-c", files["meta"], "--shots", PORTRAIT, "-o", tmp_path / "p.pt"), ".safetensors")
    assert not out.exists()


def test_finetune_ctrl_c_saves_what_it_has(tmp_path, files, monkeypatch):
    from fsth.checkpoint import load_checkpoint

    interrupt_finetuning_at(monkeypatch, 2)
    out = tmp_path / "p.safetensors"
    result = fsth("finetune", "-c", files["meta"], "--shots", PORTRAIT, "--no-content-loss", "-o", out)
    assert result.exit_code == 130 and "interrupted after 1 of 40 steps" in result.stderr
    ckpt = load_checkpoint(out, "person")
    assert ckpt.step == 1 and ckpt.meta["finetune"]["planned"] == 40  # 40 epochs over one photo


def test_finetune_continues_from_a_person_file(tmp_path, files):
    from fsth.checkpoint import load_checkpoint

    out = tmp_path / "more.safetensors"
    ok("finetune", "-c", files["person"], "--shots", TALK, "-k", "3", "--steps", "1", "--no-content-loss", "-o", out)
    ckpt = load_checkpoint(out, "person")
    assert ckpt.step == 3 and ckpt.meta["meta_checkpoint"] == str(files["meta"])


def test_help_explains_the_commands():
    for command, options in (
        ("embed", ("--shots", "--k", "--checkpoint")),
        ("finetune", ("--steps", "--epochs", "--no-content-loss")),
        (
            "animate",
            (
                "--side-by-side",
                "--paste-back",
                "--no-audio",
                "--absolute",
                "--reference",
                "--finetune-steps",
                "--live",
                "--preview",
            ),
        ),
    ):
        text = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "80"}).stdout
        for option in options:
            assert option in text, (command, option)


def test_paste_back_panels_line_up(dlib_detector):
    """With --paste-back --side-by-side the landmark panel shows the landmarks where the face is in the photo."""
    from fsth.animate import AnimateOptions, Compositor
    from fsth.config import ModelConfig
    from fsth.fewshot import Person, load_shots
    from fsth.landmarks import CropPolicy

    shots = load_shots([PORTRAIT], dlib_detector, 64, CropPolicy())
    person = Person(
        None,
        None,
        ModelConfig.preset("tiny"),
        CropPolicy(),
        "dlib",
        shots.points,
        "portrait.jpg",
        PORTRAIT,
        shots.boxes[0],
    )
    compose = Compositor(person, AnimateOptions(paste_back=True, side_by_side=True))
    driver = np.zeros((480, 640, 3), np.uint8)
    frame = compose.panels(driver, shots.sketches[0], compose.result(shots.crops[0], shots.points[0]), shots.points[0])
    assert frame.shape == (720, 960 + 720 + 720, 3)  # driver scaled to the photo's height | landmarks | photo
    lines = frame[:, 960:1680].max(axis=2) > 100
    ys, xs = np.nonzero(lines)
    x0, y0, x1, y1 = shots.boxes[0]
    assert xs.min() > x0 and xs.max() < x1 and ys.min() > y0 and ys.max() < y1  # inside the face's crop box
    np.testing.assert_array_equal(frame[:50, 1680:1780], read_image(PORTRAIT)[:50, :100])  # the photo, untouched


def test_animate_fine_tunes_photos_first(tmp_path, files):
    out = tmp_path / "out.mp4"
    result = ok("animate", PORTRAIT, TALK, "-c", files["meta"], "--finetune-steps", "1", "--no-content-loss", "-o", out)
    assert "fine-tuning" in result.stderr and video_facts(out)[:4] == (60, 30.0, 64, 64)
    one_error_line(
        fsth("animate", files["embedding"], TALK, "-c", files["meta"], "--finetune-steps", "1", "-o", out, "--force"),
        "--finetune-steps fine-tunes on photos",
    )
