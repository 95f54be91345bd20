"""``fsth landmarks`` as a user runs it: every option, the outputs, JSONL on stdout, bad input, pipes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import GROUP, PORTRAIT, TALK, fsth, ok, one_error_line

from fsth.landmarks import LandmarkTrack
from fsth.video import VideoReader, probe_video, read_image


def test_npz_output(tmp_path):
    out = tmp_path / "talk.npz"
    result = ok("landmarks", TALK, "-o", out)
    assert "mesh backend" in result.stderr and "60/60 frames with a face" in result.stderr  # auto: the mesh
    assert result.stdout == ""
    track = LandmarkTrack.load(out)
    assert len(track) == 60 and track.valid.all() and track.backend == "mesh" and track.mesh.shape == (60, 478, 2)
    assert (track.fps, track.frame_size, track.source) == (30.0, (480, 480), str(TALK))
    with np.load(out, allow_pickle=False) as z:
        assert {"landmarks", "valid", "boxes", "fps", "frame_size", "backend", "source", "crop_policy"} <= set(z.files)


def test_jsonl_on_stdout_by_default():
    result = ok("-q", "landmarks", TALK)
    assert result.stderr == ""  # -q: data only
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["frame"] for r in rows] == list(range(60))
    for row in rows:
        assert row["valid"] and len(row["landmarks"]) == 68 and all(len(p) == 2 for p in row["landmarks"])
        assert row["source"] == str(TALK) and row["backend"] == "mesh" and len(row["mesh"]) == 478


def test_jsonl_file_and_format_choice(tmp_path):
    ok("landmarks", PORTRAIT, "-o", tmp_path / "p.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["frame"] == 0 and len(rows[0]["landmarks"]) == 68
    ok("landmarks", PORTRAIT, "-o", tmp_path / "p.txt", "--format", "jsonl")
    assert (tmp_path / "p.txt").read_text() == (tmp_path / "p.jsonl").read_text()
    one_error_line(fsth("landmarks", PORTRAIT, "-o", tmp_path / "p.npz", "--format", "jsonl"), "does not match")
    one_error_line(fsth("landmarks", PORTRAIT, "-o", tmp_path / "p.dat"), "cannot tell the format")
    one_error_line(fsth("landmarks", PORTRAIT, "--format", "npz"), "give -o")


def test_several_inputs_and_directories(tmp_path):
    src = tmp_path / "in"
    (src / "id1" / "vid").mkdir(parents=True)
    shutil.copy(TALK, src / "id1" / "vid" / "00001.mp4")
    shutil.copy(PORTRAIT, src / "face.jpg")
    out = tmp_path / "out"
    ok("landmarks", src, "-o", out)  # one directory: its tree
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*.npz")) == ["face.npz", "id1/vid/00001.npz"]
    assert len(LandmarkTrack.load(out / "id1" / "vid" / "00001.npz")) == 60
    assert len(LandmarkTrack.load(out / "face.npz")) == 1
    out2 = tmp_path / "out2"
    ok("landmarks", src, GROUP, "-o", out2, "--format", "jsonl")  # several arguments: directories by name
    assert sorted(str(p.relative_to(out2)) for p in out2.rglob("*.jsonl")) == [
        "group.jsonl",
        "in/face.jsonl",
        "in/id1/vid/00001.jsonl",
    ]
    # the same names from two places would overwrite each other: refused before any work
    (tmp_path / "other").mkdir()
    shutil.copy(TALK, tmp_path / "other" / "talk.mp4")
    one_error_line(fsth("landmarks", TALK, tmp_path / "other" / "talk.mp4", "-o", tmp_path / "o2"), "would both write")
    # a new directory named like a file is a slip (fsth landmarks a.mp4 b.mp4 -o out.npz), not made
    for args in (("-o", tmp_path / "both.npz"), ("-o", tmp_path / "o3", "--sketch", tmp_path / "s.mp4")):
        one_error_line(fsth("landmarks", TALK, PORTRAIT, *args), "give " + args[-2] + " DIR/")
    assert not (tmp_path / "both.npz").exists() and not (tmp_path / "o3").exists()
    (tmp_path / "kept.npz").mkdir()  # an existing directory is one, whatever its name
    ok("landmarks", TALK, PORTRAIT, "-o", tmp_path / "kept.npz")
    assert sorted(p.name for p in (tmp_path / "kept.npz").iterdir()) == ["portrait.npz", "talk.npz"]


def test_bad_files_are_summarised_and_the_others_written(tmp_path, no_face_image, truncated_videos):
    out = tmp_path / "out"
    result = fsth("landmarks", TALK, tmp_path / "missing.mp4", no_face_image, truncated_videos["front"], "-o", out)
    assert result.exit_code == 1
    assert (out / "talk.npz").exists() and len(list(out.iterdir())) == 1
    assert "3 of 4 inputs failed" in result.stderr
    for fragment in ("missing.mp4: no such file", "wall.png: no face found", "truncated_front.mp4: video is truncated"):
        assert fragment in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda d, nf, tv: d / "nope.mp4", "nope.mp4: no such file"),
        (lambda d, nf, tv: nf, "wall.png: no face found in the image"),
        (lambda d, nf, tv: tv["front"], "truncated_front.mp4: video is truncated or corrupt"),
        (lambda d, nf, tv: tv["end"], "truncated_end.mp4: cannot read video: moov atom not found"),
        (
            lambda d, nf, tv: (d / "notes.txt", (d / "notes.txt").write_text("hello"))[0],
            "notes.txt: not an image or video",
        ),
    ],
)
def test_one_bad_input_is_one_error_line(tmp_path, no_face_image, truncated_videos, make, message):
    result = fsth("landmarks", make(tmp_path, no_face_image, truncated_videos), "-o", tmp_path / "x.npz")
    one_error_line(result, message)
    assert not (tmp_path / "x.npz").exists()


def test_sketch_video_with_audio(tmp_path):
    ok("landmarks", TALK, "-o", tmp_path / "t.npz", "--sketch", tmp_path / "s.mp4", "--sketch-size", "128")
    info = probe_video(tmp_path / "s.mp4")
    assert (info.width, info.height, info.fps, info.has_audio) == (128, 128, 30.0, True)
    with VideoReader(tmp_path / "s.mp4") as video:
        frames = list(video)
    assert len(frames) == 60
    # coloured lines on black (1 px at 128, blurred a little by h264's colour subsampling): jaw, lips, ...
    assert (frames[30][..., 0] > 120).sum() > 100 and frames[30][:8].max() < 40


def test_overlay_video_shows_the_frames(tmp_path, talk_frames):
    ok("landmarks", TALK, "-o", tmp_path / "t.npz", "--sketch", tmp_path / "o.mp4", "--overlay")
    with VideoReader(tmp_path / "o.mp4") as video:
        frames = list(video)
    assert len(frames) == 60 and frames[0].shape == (480, 480, 3)
    diff = np.abs(frames[0].astype(int) - talk_frames[0].astype(int)).max(axis=2)
    assert 0.005 < (diff > 60).mean() < 0.2  # the picture, with lines drawn over a small part of it
    one_error_line(fsth("landmarks", TALK, "--overlay"), "--overlay")


def test_photo_sketch_and_overlay_are_images(tmp_path):
    ok("landmarks", PORTRAIT, "-o", tmp_path / "p.npz", "--sketch", tmp_path / "s.png")
    sketch = read_image(tmp_path / "s.png")
    assert sketch.shape == (256, 256, 3) and sketch.any()
    ok("landmarks", PORTRAIT, "-o", tmp_path / "q.npz", "--sketch", tmp_path / "o.png", "--overlay")
    assert read_image(tmp_path / "o.png").shape == (720, 720, 3)


def test_face_index(tmp_path):
    ok("landmarks", GROUP, "-o", tmp_path / "0.npz")
    ok("landmarks", GROUP, "-o", tmp_path / "1.npz", "--face-index", "1")
    first, second = LandmarkTrack.load(tmp_path / "0.npz"), LandmarkTrack.load(tmp_path / "1.npz")
    assert np.linalg.norm(first.landmarks[0, 30] - second.landmarks[0, 30]) > 100  # another person
    one_error_line(fsth("landmarks", GROUP, "-o", tmp_path / "5.npz", "--face-index", "5"), "found 3")


def test_smoothing_redetect_and_crop_options_are_applied_and_recorded(tmp_path):
    ok("landmarks", TALK, "-o", tmp_path / "a.npz")
    ok("landmarks", TALK, "-o", tmp_path / "b.npz", "--smoothing", "0", "--redetect-every", "5")
    ok("landmarks", TALK, "-o", tmp_path / "c.npz", "--crop-scale", "3", "--crop-y-offset", "0")
    a, b, c = (LandmarkTrack.load(tmp_path / f"{n}.npz") for n in "abc")
    assert a.tracking["smoothing"]["strength"] == 1.0 and a.tracking["redetect_every"] == 10
    assert b.tracking["smoothing"]["strength"] == 0.0 and b.tracking["redetect_every"] == 5
    assert not np.allclose(a.landmarks, b.landmarks)
    assert (c.crop_policy.scale, c.crop_policy.y_offset) == (3.0, 0.0)
    side = lambda t: t.boxes[:, 2] - t.boxes[:, 0]  # noqa: E731
    np.testing.assert_allclose(side(c), side(a) * 3 / 2.2, rtol=1e-4)
    result = fsth("landmarks", TALK, "--smoothing", "-1")  # a usage error: exit code 2, the usual usage message
    assert result.exit_code == 2 and "Invalid value for '--smoothing'" in result.stderr


def test_existing_outputs_are_not_overwritten_without_force(tmp_path):
    out = tmp_path / "x.npz"
    out.write_bytes(b"keep me")
    one_error_line(fsth("landmarks", PORTRAIT, "-o", out), "x.npz already exists", "--force")
    assert out.read_bytes() == b"keep me"
    ok("landmarks", PORTRAIT, "-o", out, "--force")
    assert len(LandmarkTrack.load(out)) == 1


def test_skip_existing_resumes_a_batch(tmp_path):
    out = tmp_path / "out"
    ok("landmarks", PORTRAIT, "-o", f"{out}/")  # a directory to create, for one input
    before = (out / "portrait.npz").stat().st_mtime_ns
    result = ok("landmarks", PORTRAIT, GROUP, "-o", out, "--skip-existing")
    assert "group.npz" in result.stderr and "portrait.npz" not in result.stderr  # only the missing one was done
    assert (out / "portrait.npz").stat().st_mtime_ns == before and (out / "group.npz").exists()
    assert "nothing to do" in ok("landmarks", PORTRAIT, GROUP, "-o", out, "--skip-existing").stderr


def test_backends(tmp_path, monkeypatch, random_fan_weights):
    ok("landmarks", PORTRAIT, "-o", tmp_path / "d.npz", "--backend", "dlib")
    assert LandmarkTrack.load(tmp_path / "d.npz").backend == "dlib"
    ok("landmarks", PORTRAIT, "-o", tmp_path / "f.npz", "--backend", "fan", "--fan-weights", random_fan_weights)
    assert LandmarkTrack.load(tmp_path / "f.npz").backend == "fan"  # the real FAN path (random weights here)

    import torch.hub

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    result = fsth("landmarks", PORTRAIT, "-o", tmp_path / "g.npz", "--backend", "fan")
    one_error_line(result, "2DFAN4-11f355bf06.pth.tar", "--fan-weights")
    result = ok("landmarks", PORTRAIT, "-o", tmp_path / "h.npz")  # auto: the shipped mesh, and says so
    assert "mesh backend" in result.stderr and LandmarkTrack.load(tmp_path / "h.npz").mesh.shape == (1, 478, 2)


def test_landmarks_pipe_into_head():
    """`fsth landmarks x.mp4 | head -1` prints one row and ends quietly with exit code 0."""
    cmd = f"set -o pipefail; {sys.executable} -m fsth landmarks {TALK} | head -1"
    proc = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["frame"] == 0
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr


def test_help_explains_the_options():
    result = ok("landmarks", "--help")
    for option in ("--output", "--format", "--backend", "--fan-weights", "--face-index", "--smoothing", "--sketch",
                   "--overlay", "--force", "--crop-scale"):  # fmt: skip
        assert option in result.stdout


def test_a_dataset_build_defaults_to_one_worker_per_core_with_dlib_and_one_with_fan():
    import os
    from types import SimpleNamespace

    from fsth.dataset.build import default_workers

    assert default_workers(SimpleNamespace(name="dlib")) == (os.cpu_count() or 1)
    assert default_workers(SimpleNamespace(name="fan")) == 1


def test_landmarks_on_stdout_stream_as_frames_are_tracked(monkeypatch, dlib_detector):
    """`fsth landmarks talk.mp4 | head -1`: each row is written as its frame is tracked (the first once the
    ``FINISH_AHEAD`` frames after it are located, while it is finished on the second thread: not after the whole
    video), with the landmarks the .npz gets; its box is the causal one, within 2% of the box smoothed over the
    whole video."""
    import io

    from fsth.landmarks.extract import Job, run_job
    from fsth.landmarks.tracker import FINISH_AHEAD, LandmarkTracker

    tracked, seen = [], []
    locate = LandmarkTracker.locate

    def counting(self, frame):
        tracked.append(1)
        return locate(self, frame)

    class Stdout(io.StringIO):
        def write(self, text):
            seen.append(len(tracked))
            return super().write(text)

    monkeypatch.setattr(LandmarkTracker, "locate", counting)
    out = Stdout()
    track = run_job(Job(TALK, None, None), dlib_detector, "jsonl", out)
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    first = FINISH_AHEAD + 1
    assert seen[:3] == [first, first + 1, first + 2] and len(rows) == len(track) == 60
    assert all(r["landmarks"] == np.round(track.landmarks[i].astype(float), 2).tolist() for i, r in enumerate(rows))
    side = track.boxes[:, 2] - track.boxes[:, 0]
    assert np.all(np.abs(np.array([r["box"] for r in rows]) - track.boxes).max(axis=1) < 0.02 * side)
