"""``fsth landmarks TREE --dataset DIR``: the stored crops and landmarks, resume, shards, workers, bad videos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import DATASET_ARGS, TALK, ffmpeg, fsth

from fsth.dataset import Dataset, DatasetSettings, find_videos
from fsth.dataset.build import allocate, shard_of
from fsth.dataset.store import open_record, record_path
from fsth.landmarks import CropPolicy
from fsth.video import spread


def build(tree, out, *extra):
    result = fsth("landmarks", tree, "--dataset", out, *DATASET_ARGS, *extra)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result


def records(root) -> dict[str, tuple]:
    """Every record's metadata and tensors (safetensors does not fix the order of metadata keys in the file)."""
    from safetensors.numpy import load_file

    from fsth.dataset import VideoRecord

    out = {}
    for path in sorted((root / "videos").rglob("*.safetensors")):
        tensors = {k: v.tobytes() for k, v in load_file(str(path)).items()}
        out[path.relative_to(root).as_posix()] = (VideoRecord(path).meta, tensors)
    return out


def test_manifest_metadata_and_records(dataset_dir):
    ds = Dataset(dataset_dir)
    assert [(v.video_id, v.person_id, v.num_frames) for v in ds.videos] == [
        ("A/v1", "A", 10),
        ("B/v1", "B", 10),
        ("C/v1", "C", 10),
    ]
    assert ds.videos[2].sources == ["C/v1/00001.mp4", "C/v1/00002.mp4"]
    assert ds.videos[0].sources == ["A/v1/00001.mp4"] and ds.videos[0].source_frames in (60, 61)
    info = json.loads((dataset_dir / "dataset.json").read_text())
    assert info["crop_policy"] == CropPolicy().to_dict() and info["landmark_backend"] == "dlib"
    assert (info["size"], info["frames_per_video"], info["track_every_frame"]) == (128, 10, False)
    a, c = ds.record(0), ds.record(2)
    assert a.path == open_record(dataset_dir, "A/v1").path == record_path(dataset_dir, "A/v1")
    frames = a.frames(range(len(a)))
    assert frames.shape == (10, 128, 128, 3) and frames.dtype == np.uint8
    assert a.tensor("frame").tolist() == spread(60, 10)  # spread over the clip: 3, 9, 15, ... 57
    assert sorted(set(c.tensor("clip").tolist())) == [0, 1]  # a two-clip video takes frames from both
    sizes = np.diff(a.offsets)
    assert 1000 < sizes.mean() < 10_000  # JPEG bytes, not raw (128x128x3 = 49 KB)
    assert ((a.points > 0) & (a.points < 128)).all()  # the whole face inside the crop


def test_stored_landmarks_sit_on_the_stored_face(dataset_dir, dlib_detector):
    """Landmarks in crop pixels match what the detector finds again on the stored JPEG crop (real pixels)."""
    ds = Dataset(dataset_dir)
    for i in range(len(ds)):
        record = ds.record(i)
        crop = record.frames([4])[0]
        again = dlib_detector.detect(crop)[0]
        error = np.linalg.norm(again - record.points[4], axis=1).mean()
        assert error < 2.5, (ds.videos[i].video_id, error)  # px at 128 (the face is ~58 px wide)


def test_rerun_skips_finished_videos_and_rebuilds_a_missing_one(dataset_dir, video_tree, tmp_path):
    out = tmp_path / "ds"
    shutil.copytree(dataset_dir, out)
    before = records(out)
    result = build(video_tree, out)
    assert "nothing new stored, 3 done before" in result.stderr
    assert records(out) == before
    record_path(out, "B/v1").unlink()
    result = build(video_tree, out)
    assert "1 videos stored" in result.stderr and "2 done before" in result.stderr
    assert records(out) == before  # the same pixels and landmarks: building is deterministic
    one_error(fsth("landmarks", video_tree, "--dataset", out, "--size", "64"), "other settings", "size 128")


def test_fsth_dataset_builds_what_landmarks_dataset_builds(dataset_dir, video_tree, tmp_path):
    """`fsth dataset TREE -o DIR` is the dataset build as its own command: the same records as `fsth landmarks TREE
    --dataset DIR`, and the same refusal of mixed-up options."""
    out = tmp_path / "ds"
    result = fsth("dataset", video_tree, "-o", out, *DATASET_ARGS)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert records(out) == records(dataset_dir)
    one_error(fsth("landmarks", video_tree, "--dataset", out, "-o", tmp_path / "x.npz"), "-o does not apply")


def test_shards_and_worker_processes_give_the_same_dataset(dataset_dir, video_tree, tmp_path):
    out = tmp_path / "ds"
    build(video_tree, out, "--shard", "0/2", "--workers", "2")
    build(video_tree, out, "--shard", "1/2")
    manifests = sorted(p.name for p in out.glob("manifest*.jsonl"))
    assert manifests == ["manifest-00000-of-00002.jsonl", "manifest-00001-of-00002.jsonl"]
    assert {shard_of(v, 2) for v in ("A/v1", "B/v1", "C/v1")} == {0, 1}  # both shards hold videos
    assert [v.video_id for v in Dataset(out).videos] == ["A/v1", "B/v1", "C/v1"]
    assert records(out) == records(dataset_dir)


def test_bad_videos_are_skipped_reported_and_not_retried(tmp_path, truncated_videos, no_face_image):
    tree = tmp_path / "tree"
    for rel, src in (
        ("A/v1/1.mp4", TALK),
        ("B/v1/1.mp4", truncated_videos["end"]),
        ("C/v1/1.mp4", truncated_videos["front"]),
    ):
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, tree / rel)
    (tree / "D/v1").mkdir(parents=True)
    ffmpeg(
        "-loop", "1", "-i", str(no_face_image), "-t", "1", "-r", "10", "-pix_fmt", "yuv420p", str(tree / "D/v1/1.mp4")
    )  # a real wall, no face
    out = tmp_path / "ds"
    result = build(tree, out)
    assert "3 videos skipped as bad" in result.stderr and "1 of the 4 videos" in result.stderr
    report = {r["video_id"]: r["reason"] for r in map(json.loads, (out / "report.jsonl").read_text().splitlines())}
    assert set(report) == {"B/v1", "C/v1", "D/v1"}
    assert "moov atom not found" in report["B/v1"] and "truncated" in report["C/v1"]
    assert "a face (of the same person) in only 0 of its 10 kept frames" in report["D/v1"]
    assert [v.video_id for v in Dataset(out).videos] == ["A/v1"]
    result = build(tree, out)
    assert "3 videos that failed before were not tried again" in result.stderr
    result = build(tree, out, "--retry-failed")
    assert "3 videos skipped as bad" in result.stderr


def test_dataset_option_errors(video_tree, tmp_path):
    one_error(fsth("landmarks", video_tree, "--dataset", tmp_path / "a", "-o", tmp_path / "x"), "-o does not apply")
    one_error(fsth("landmarks", video_tree, TALK, "--dataset", tmp_path / "b"), "one VIDEO_TREE directory")
    one_error(fsth("landmarks", TALK, "--dataset", tmp_path / "c"), "must be a directory")
    one_error(fsth("landmarks", video_tree, "--dataset", tmp_path / "d", "--shard", "2/2"), "numbered from 0")
    one_error(fsth("landmarks", video_tree, "--dataset", tmp_path / "e", "--min-frames", "40"), "--min-frames")
    (tmp_path / "empty").mkdir()
    one_error(fsth("landmarks", tmp_path / "empty", "--dataset", tmp_path / "f"), "no video files")
    assert not (tmp_path / "f").exists()  # nothing created for a tree without videos


def test_videos_and_persons_from_the_tree_shape(tmp_path):
    for rel in (
        "id1/vidA/001.mp4",
        "id1/vidA/002.mp4",
        "id1/vidB/001.mp4",
        "dev/mp4/id2/vidC/001.mp4",
        "alice/talk.mp4",
        "alice/talk.mov",
        "solo.mp4",
        "notes.txt",
        "photo.jpg",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).touch()
    found = {v.video_id: (v.person_id, v.sources) for v in find_videos(tmp_path)}
    assert found == {
        "id1/vidA": ("id1", ["id1/vidA/001.mp4", "id1/vidA/002.mp4"]),
        "id1/vidB": ("id1", ["id1/vidB/001.mp4"]),
        "dev/mp4/id2/vidC": ("dev/mp4/id2", ["dev/mp4/id2/vidC/001.mp4"]),
        "alice/talk": ("alice", ["alice/talk.mov"]),
        "alice/talk.mp4": ("alice", ["alice/talk.mp4"]),
        "solo": ("solo", ["solo.mp4"]),
    }


def test_later_frames_keep_the_first_frames_person(dlib_detector):
    """In a clip with several people, the face kept in later frames is the first one's person, or none."""
    from conftest import GROUP

    from fsth.dataset.build import same_face
    from fsth.video import read_image

    faces = dlib_detector.detect(read_image(GROUP), min_faces=3)
    assert len(faces) == 3
    moved = faces[1] + np.float32([6, -4])  # the same person a little later
    assert same_face([faces[0], moved, faces[2]], faces[1]) is moved
    assert same_face([faces[0], faces[2]], faces[1]) is None  # the others are not taken instead
    assert same_face([faces[1] * 2.5], faces[1]) is None  # far away and much larger: not the same person


def test_frame_selection():
    assert spread(100, 4) == [12, 37, 62, 87] and spread(3, 10) == [0, 1, 2]
    assert allocate([100, 300], 8) == [2, 6] and allocate([5, 5], 32) == [5, 5] and sum(allocate([7, 3, 9], 10)) == 10
    with pytest.raises(Exception, match="min-frames"):
        DatasetSettings(frames_per_video=4, min_frames=9)


def one_error(result, *fragments):
    assert result.exit_code != 0 and "Traceback" not in result.stderr
    assert [ln for ln in result.stderr.splitlines() if ln.startswith("error:")], result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


def _children(pid: int) -> list[int]:
    """Pids of the live processes whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            out.append(int(stat.parent.name))
    return out


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"  # a zombie has ended; whoever adopted it reaps it


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to see the worker processes")
@pytest.mark.parametrize("signals", [("SIGINT", "SIGINT"), ("SIGINT",) * 5, ("SIGTERM",), ("SIGINT", "SIGTERM")])
def test_ctrl_c_twice_or_sigterm_ends_the_workers_and_keeps_finished_videos(tmp_path, signals):
    """Issue 12: two Ctrl-Cs 0.3 s apart hung forever (the workers waited for work, this process joined them at
    exit); a SIGTERM left the workers orphaned. Any number must end the run within seconds, workers gone."""
    import os
    import signal
    import subprocess
    import sys
    import time

    tree = tmp_path / "tree"
    for i in range(40):
        (tree / f"p{i:02d}" / "v").mkdir(parents=True)
        shutil.copy(TALK, tree / f"p{i:02d}" / "v" / "00001.mp4")
    out = tmp_path / "ds"
    cmd = [
        sys.executable,
        "-m",
        "fsth",
        "landmarks",
        str(tree),
        "--dataset",
        str(out),
        "--workers",
        "2",
        "--size",
        "64",
        "--frames-per-video",
        "4",
        "--min-frames",
        "2",
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # as a terminal starts its foreground job
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not list((out / "videos").glob("*/*.safetensors")) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1]
            time.sleep(0.1)
        workers = _children(proc.pid)
        assert (
            len([w for w in workers if "spawn_main" in Path(f"/proc/{w}/cmdline").read_text()]) == 2
        )  # + the resource tracker
        # what the build does with signals as they are sent (SigBlk, SigIgn, SigCgt: bit 1 is SIGINT, 14 SIGTERM), so
        # that a failure says whether SIGINT was blocked or ignored in it (a rare failure once: the build ran on)
        dispositions = [ln for ln in Path(f"/proc/{proc.pid}/status").read_text().splitlines() if ln.startswith("Sig")]
        for name in signals:  # Ctrl-C reaches the whole process group, as from a terminal; SIGTERM the main process
            if name == "SIGINT":
                os.killpg(proc.pid, signal.SIGINT)
            else:
                os.kill(proc.pid, signal.SIGTERM)
            time.sleep(0.3)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    interrupted = signals[0] == "SIGINT"  # the first signal ends the build; SIGTERM as 128 + 15, as a shell reports it
    assert proc.returncode == (130 if interrupted else 143), (stderr, dispositions)
    assert ("error: interrupted" if interrupted else "error: terminated by SIGTERM") in stderr
    assert "Traceback" not in stderr
    deadline = time.monotonic() + 10
    while not all(_gone(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(_gone(w) for w in workers), [w for w in workers if not _gone(w)]
    from fsth.dataset.build import entry_from_record
    from fsth.dataset.store import read_jsonl

    stored = sorted(p.parent.name + "/v" for p in (out / "videos").glob("*/v.safetensors"))
    assert 1 <= len(stored) < 40 and not list(out.rglob("*.partial"))
    # every finished video is complete, as a re-run reads it back; the manifest lists those whose result had
    # come back (one in flight at the interrupt is taken up by the next run)
    assert all(entry_from_record(out, video_id) is not None for video_id in stored)
    assert {row["video_id"] for row in read_jsonl(out / "manifest.jsonl")} <= set(stored)
