"""Landmarks on real photos and video: anatomy, tracking, faces, smoothing, the FAN code path, track files."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from conftest import GROUP, PORTRAIT, PORTRAIT_POUT, PORTRAIT_RGBA, TALK

from fsth.errors import InputError, MissingWeightsError, NoFaceError
from fsth.landmarks import (
    LandmarkTrack,
    LandmarkTracker,
    OneEuroFilter,
    Smoothing,
    make_detector,
    track_image,
    track_video,
)
from fsth.video import read_image


def assert_anatomical(L: np.ndarray, shape) -> None:
    """Brows above eyes above nose above mouth above chin; the subject's right on the image's left; in frame."""
    assert L.shape == (68, 2) and L.dtype == np.float32 and np.isfinite(L).all()
    h, w = shape[:2]
    assert (L[:, 0] >= 0).all() and (L[:, 0] < w).all() and (L[:, 1] >= 0).all() and (L[:, 1] < h).all()
    brows, eyes, nose_tip = L[17:27, 1].mean(), L[36:48, 1].mean(), L[30, 1]
    mouth, chin = L[48:68, 1].mean(), L[8, 1]
    assert brows < eyes < nose_tip < mouth < chin
    assert L[7:10, 1].max() == L[0:17, 1].max()  # the chin is the lowest jaw point
    right_eye, left_eye = L[36:42].mean(axis=0), L[42:48].mean(axis=0)
    assert right_eye[0] < L[30, 0] < left_eye[0]  # nose tip between the eyes
    assert L[17:22, 0].mean() < L[22:27, 0].mean() and L[48, 0] < L[54, 0]
    assert L[0, 0] < L[36:48, 0].min() and L[16, 0] > L[36:48, 0].max()  # the jaw spans the face
    eye_distance = np.linalg.norm(left_eye - right_eye)
    assert 1.5 * eye_distance < L[16, 0] - L[0, 0] < 3.5 * eye_distance


@pytest.mark.parametrize(
    "path,nose_tip",  # nose tips located by eye on the photos (within 15 px)
    [(PORTRAIT, (361, 363)), (PORTRAIT_RGBA, (276, 229))],
)
def test_photo_landmarks_are_anatomical_and_on_the_face(dlib_detector, path, nose_tip):
    image = read_image(path)
    faces = dlib_detector.detect(image)
    assert len(faces) == 1
    assert_anatomical(faces[0], image.shape)
    assert np.abs(faces[0][30] - np.array(nose_tip)).max() < 15


def test_photo_search_accepts_a_less_certain_face(dlib_detector):
    """A pout behind glasses scores below dlib's default threshold; a photo gets a second, lenient search."""
    image = read_image(PORTRAIT_POUT)
    assert dlib_detector.detect(image) == []
    track = track_image(PORTRAIT_POUT, dlib_detector)
    assert_anatomical(track.landmarks[0], image.shape)
    assert np.abs(track.landmarks[0, 30] - np.array([195, 210])).max() < 15  # nose tip, located by eye


def test_several_faces_largest_first_and_face_index(dlib_detector):
    image = read_image(GROUP)
    faces = dlib_detector.detect(image, min_faces=3)
    assert len(faces) == 3
    for face in faces:
        assert_anatomical(face, image.shape)
    areas = [np.ptp(f[:, 0]) * np.ptp(f[:, 1]) for f in faces]
    assert areas == sorted(areas, reverse=True)
    assert 380 < faces[0][30, 0] < 410  # the largest face is the man on the right
    second = track_image(GROUP, dlib_detector, face_index=1)
    np.testing.assert_allclose(second.landmarks[0], faces[1])
    with pytest.raises(NoFaceError, match="group.jpg: --face-index 5 asks for face 6, found 3"):
        track_image(GROUP, dlib_detector, face_index=5)


def test_photo_without_face_is_a_clear_error(dlib_detector, no_face_image):
    with pytest.raises(NoFaceError, match="wall.png: no face found in the image"):
        track_image(no_face_image, dlib_detector)


def test_video_track_has_one_row_per_frame(talk_track, talk_frames):
    track = talk_track
    assert len(track) == len(talk_frames) == 60
    assert track.landmarks.shape == (60, 68, 2) and track.boxes.shape == (60, 4)
    assert track.valid.all() and track.fps == 30.0 and track.frame_size == (480, 480)
    assert track.backend == "dlib" and track.source == str(TALK)
    for i in (0, 30, 59):
        assert_anatomical(track.landmarks[i], talk_frames[i].shape)
    # he opens his mouth wide in this clip (frames ~10-18) and closes it again (~43-50)
    gap = np.linalg.norm(track.landmarks[:, 66] - track.landmarks[:, 62], axis=1)
    assert gap[:8].max() < 8 and gap[25:40].min() > 35 and gap[52:].max() < 8


def test_tracking_searches_once_and_agrees_with_detecting_every_frame(dlib_detector, talk_frames):
    tracker = LandmarkTracker(dlib_detector, smoothing=None)
    tracked = [tracker.update(f) for f in talk_frames]
    assert tracker.searches == 1  # one full-frame face search, then tracking
    detected = [dlib_detector.detect(f)[0] for f in talk_frames[::6]]
    diff = np.mean([np.abs(t - d).mean() for t, d in zip(tracked[::6], detected)])
    assert diff < 2.0  # px, on a face ~250 px wide


def test_tracker_marks_frames_without_face_and_recovers(dlib_detector, talk_frames):
    blank = np.full_like(talk_frames[0], 128)
    frames = talk_frames[:10] + [blank] * 3 + talk_frames[10:20]
    tracker = LandmarkTracker(dlib_detector)
    out = [tracker.update(f) for f in frames]
    assert all(o is not None for o in out[:10])
    assert all(o is None for o in out[10:13])  # the face vanished: invalid at once, not tracked into the wall
    assert all(o is not None for o in out[13:])
    assert tracker.searches == 1 + 3 + 1


def test_video_without_any_face_is_an_error(dlib_detector, tmp_path, no_face_image):
    from fsth.video import VideoWriter

    path = tmp_path / "wall.mp4"
    with VideoWriter(path, fps=10) as out:
        for _ in range(5):
            out.write(read_image(no_face_image))
    with pytest.raises(NoFaceError, match="wall.mp4: no face found in any of its 5 frames"):
        track_video(path, dlib_detector)


# ---------------------------------------------------------------------------------------------- smoothing


def test_one_euro_removes_jitter_without_lagging_the_mouth(talk_track):
    """A real face (~250 px) held still with 1 px noise, then the jaw dropping 40 px in 4 frames at 30 fps."""
    rng = np.random.default_rng(0)
    base = talk_track.landmarks[0].astype(np.float64)
    n, fps = 100, 30.0
    opening = np.zeros(n)
    opening[60:64] = np.linspace(0.25, 1.0, 4)
    opening[64:] = 1.0
    lower = [5, 6, 7, 8, 9, 10, 11, 55, 56, 57, 58, 59, 65, 66, 67]
    clean = np.repeat(base[None], n, axis=0)
    clean[:, lower, 1] += 40 * opening[:, None]
    noisy = clean + rng.normal(0.0, 1.0, clean.shape)
    f = OneEuroFilter(Smoothing())
    out = np.stack([f(noisy[i], i / fps, 250.0) for i in range(n)])
    still = slice(17, 48)
    noise_in = np.sqrt(((noisy[10:60, still] - clean[10:60, still]) ** 2).mean())
    noise_out = np.sqrt(((out[10:60, still] - clean[10:60, still]) ** 2).mean())
    assert noise_out < 0.6 * noise_in
    lag = np.abs(out[60:66, 66, 1] - clean[60:66, 66, 1]).max()
    assert lag < 8.0  # px, while the lip moves 10 px per frame: under one frame behind
    assert abs(out[64, 66, 1] - clean[64, 66, 1]) < 4.0  # and there when the mouth stops


def test_smoothing_off_and_reset():
    x = np.array([[10.0, 20.0], [30.0, 40.0]])
    f = OneEuroFilter(Smoothing(strength=0))
    assert np.array_equal(f(x, 0.0, 100.0), x) and np.array_equal(f(x + 5, 0.033, 100.0), x + 5)
    f = OneEuroFilter(Smoothing())
    f(x, 0.0, 100.0)
    assert not np.allclose(f(x + 5, 0.033, 100.0), x + 5)  # smoothed
    f.reset()
    assert np.allclose(f(x + 5, 0.066, 100.0), x + 5)  # a fresh start takes the input as is
    with pytest.raises(InputError):
        Smoothing(strength=-1)


def test_points_weighted_down_are_smoothed_less_and_the_mesh_weights_its_lids_and_lips():
    """A blink's lid dropping 6 px in 2 frames: at the full strength the filter is still 2 px short of the shut lid
    two frames later; a point at a quarter of it gets there. The mesh detector smooths its lids and lips less, not its
    eye corners (the head's motion is fitted on them)."""
    from fsth.landmarks.mesh import EXPRESSION_SMOOTHING
    from fsth.landmarks.parts import MESH_LIPS_INNER, MESH_RIGHT_EYE_CORNERS, MESH_RIGHT_EYELIDS

    fps, n = 30.0, 12
    lid = np.zeros((n, 2, 2))
    lid[6:, :, 1] = 6.0
    lid[5, :, 1] = 3.0
    f = OneEuroFilter(Smoothing(), weights=np.array([1.0, 0.25]))
    out = np.stack([f(lid[i], i / fps, 200.0) for i in range(n)])
    full, light = out[:, 0, 1], out[:, 1, 1]
    assert 6.0 - full[7] > 1.0 > 0.3 > 6.0 - light[7] >= 0  # px
    np.testing.assert_array_equal(out[:5], lid[:5])  # a still point stays put either way
    weights = make_detector("mesh", device="cpu").smoothing_weights()
    assert weights.shape == (478,)
    assert np.all(weights[list(MESH_LIPS_INNER)] == EXPRESSION_SMOOTHING)
    assert weights[MESH_RIGHT_EYELIDS[4]] == EXPRESSION_SMOOTHING  # the lower lid's middle
    assert np.all(weights[list(MESH_RIGHT_EYE_CORNERS)] == 1.0) and weights[1] == 1.0  # corners, the nose tip


def test_smoothing_changes_video_landmarks_only_a_little(dlib_detector, talk_track):
    raw = track_video(TALK, dlib_detector, smoothing=None)
    diff = np.abs(raw.landmarks - talk_track.landmarks)
    assert 0 < diff.mean() < 1.5
    assert raw.tracking["smoothing"]["strength"] == 0 and talk_track.tracking["smoothing"]["strength"] == 1


# ---------------------------------------------------------------------------------------------- fan


def test_fan_backend_runs_from_local_weights(random_fan_weights):
    detector = make_detector("fan", fan_weights=random_fan_weights, device="cpu")
    assert detector.name == "fan"
    image = read_image(PORTRAIT)
    faces = detector.detect(image)  # faces found by dlib's detector (no S3FD weights here), points by FAN
    assert len(faces) == 1 and faces[0].shape == (68, 2) and faces[0].dtype == np.float32
    assert np.isfinite(faces[0]).all()
    refined = detector.refine(image, faces[0])
    assert refined is None or refined.shape == (68, 2)


def test_fan_weight_files_match_face_alignment():
    from face_alignment.api import models_urls
    from face_alignment.detection.sfd.sfd_detector import models_urls as sfd_urls

    from fsth.landmarks.detectors import FAN_URL, SFD_URL

    assert FAN_URL == models_urls["2DFAN-4"] and SFD_URL == sfd_urls["s3fd"]


def test_fan_without_weights_says_what_to_do(tmp_path, monkeypatch):
    import torch.hub

    def offline(url, dst, *args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(MissingWeightsError, match=r"2DFAN4-11f355bf06.pth.tar.*--fan-weights PATH.*--backend dlib"):
        make_detector("fan")
    assert make_detector("auto").name == "mesh"  # auto never downloads: it picks the shipped mesh
    with pytest.raises(InputError, match="no such file"):
        make_detector("fan", fan_weights=tmp_path / "missing.pth")
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not weights")
    with pytest.raises(MissingWeightsError, match="bad.pth: not usable 2DFAN4 weights"):
        make_detector("fan", fan_weights=bad)


# ---------------------------------------------------------------------------------------------- files


def test_track_npz_round_trip_without_pickle(tmp_path, talk_track):
    valid = talk_track.valid.copy()
    valid[5] = False  # pretend frame 5 had no face
    track = dataclasses.replace(talk_track, landmarks=talk_track.landmarks.copy(), valid=valid)
    path = tmp_path / "talk.npz"
    track.save(path)
    with np.load(path, allow_pickle=False) as z:
        assert z["landmarks"].dtype == np.float32 and z["landmarks"].shape == (60, 68, 2)
        assert z["valid"].dtype == bool and z["boxes"].shape == (60, 4)
        assert str(z["backend"]) == "dlib" and str(z["source"]) == str(TALK)
        assert tuple(z["frame_size"]) == (480, 480) and float(z["fps"]) == 30.0
        assert json.loads(str(z["crop_policy"]))["scale"] == track.crop_policy.scale
        assert np.isnan(z["landmarks"][5]).all() and np.isfinite(z["boxes"][5]).all()
    back = LandmarkTrack.load(path)
    np.testing.assert_array_equal(back.landmarks, track.landmarks)
    np.testing.assert_array_equal(back.valid, track.valid)
    np.testing.assert_array_equal(back.boxes, track.boxes)
    assert (back.fps, back.frame_size, back.backend, back.source) == (30.0, (480, 480), "dlib", str(TALK))
    assert back.crop_policy == track.crop_policy and back.tracking == track.tracking


def test_track_load_rejects_other_files(tmp_path):
    np.savez(tmp_path / "other.npz", x=np.zeros(3))
    with pytest.raises(InputError, match="other.npz: not an fsth landmark file"):
        LandmarkTrack.load(tmp_path / "other.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(InputError, match="junk.npz: not a readable .npz"):
        LandmarkTrack.load(tmp_path / "junk.npz")


def test_track_jsonl_rows(talk_track):
    import io

    buf = io.StringIO()
    talk_track.write_jsonl(buf)
    rows = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert len(rows) == 60 and [r["frame"] for r in rows] == list(range(60))
    assert rows[30]["time"] == pytest.approx(1.0)
    assert len(rows[0]["landmarks"]) == 68 and all(len(p) == 2 for p in rows[0]["landmarks"])
    np.testing.assert_allclose(rows[7]["landmarks"], talk_track.landmarks[7], atol=0.006)
    assert rows[0]["backend"] == "dlib" and rows[0]["frame_size"] == [480, 480] and len(rows[0]["box"]) == 4
