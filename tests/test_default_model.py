"""The model shipped with fsth (fsth/weights): what it holds, and that `fsth animate PHOTO DRIVER -o OUT` with no
checkpoint anywhere uses it to make a video of that person whose mouth opens when the driver's does."""

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fsth.cli import app
from fsth.config import ModelConfig
from fsth.weights import shipped_model

ASSETS = Path(__file__).parent / "assets"
EINSTEIN = ASSETS / "einstein.jpg"  # 375x500, frontal, mouth closed
TALK = ASSETS / "talk.mp4"  # mouth closed (frames 0-9), opens wide (~10-18), holds, closes (~43-50)


def test_the_shipped_model_is_a_small_warp256_meta_checkpoint_of_E_and_G():
    from fsth.checkpoint import load_checkpoint

    path = shipped_model()
    assert path.is_file() and path.stat().st_size <= 25 * 2**20
    ckpt = load_checkpoint(path, "meta")
    assert ckpt.config == ModelConfig.preset("warp256")
    assert {k.split(".")[0] for k in ckpt.tensors} == {"E", "G"}
    assert ckpt.crop_policy and ckpt.landmark_backend == "mesh" and ckpt.step > 0


@pytest.fixture(scope="module")
def animated(tmp_path_factory):
    """`fsth animate einstein.jpg talk.mp4 -o out.mp4` with no --checkpoint, no $FSTH_CHECKPOINT and nothing at the
    default location: the shipped model."""
    tmp = tmp_path_factory.mktemp("default_model")
    out = tmp / "out.mp4"
    env = {"FSTH_CHECKPOINT": "", "XDG_DATA_HOME": str(tmp / "empty_data_home"), "FSTH_OFFLINE": "1"}
    result = CliRunner().invoke(app, ["animate", str(EINSTEIN), str(TALK), "-o", str(out)], env=env)
    assert result.exit_code == 0, result.stdout + result.stderr
    from fsth.video import VideoReader, probe_video

    with VideoReader(out) as video:
        frames = list(video)
    return frames, probe_video(out), result.stderr


def test_animate_without_a_checkpoint_uses_the_shipped_model(animated):
    frames, info, _ = animated
    assert len(frames) == 60 and frames[0].shape == (256, 256, 3)
    assert info.has_audio  # the driver's sound


def test_the_result_is_the_portraits_person_and_its_mouth_follows_the_driver(animated, dlib_detector, talk_track):
    from fsth.metrics.keypoints import detect_landmarks, mouth_opening
    from fsth.metrics.recognition import SAME_PERSON_DISTANCE, DlibFaceEmbedder, face_distance
    from fsth.video import read_image

    frames, _, _ = animated
    recognizer = DlibFaceEmbedder()
    photo = read_image(EINSTEIN)
    reference = recognizer.descriptors([photo], [detect_landmarks(dlib_detector, photo)])[0]
    found = [(i, detect_landmarks(dlib_detector, f)) for i, f in enumerate(frames)]
    found = [(i, p) for i, p in found if p is not None]
    assert len(found) >= 57  # a face in at least 95% of the frames
    distances = [float(face_distance(recognizer.descriptors([frames[i]], [p])[0], reference)) for i, p in found]
    assert np.mean(np.array(distances) < SAME_PERSON_DISTANCE) >= 0.95, f"dlib face distances {distances}"
    opening = {i: float(mouth_opening(p)) for i, p in found}
    driver = mouth_opening(talk_track.landmarks)
    closed = [opening[i] for i in range(0, 8) if i in opening]
    wide = [opening[i] for i in range(20, 40) if i in opening]
    # it opens: the inner-lip gap, in eye distances (about 0.01 closed, 0.1 open here: 5 px at this size)
    assert closed and wide and np.median(wide) > np.median(closed) + 0.05
    common = sorted(opening)
    r = np.corrcoef([opening[i] for i in common], driver[common])[0, 1]
    assert r >= 0.6, f"mouth opening follows the driver's with r = {r:.2f}"
