"""The animate pipeline's parts: targets for every driver frame, paste-back, the live camera's timing."""

import time

import numpy as np
import pytest
from conftest import PORTRAIT, TALK


@pytest.fixture(scope="module")
def portrait_shot(dlib_detector):
    from fsth.fewshot import load_shots
    from fsth.landmarks import CropPolicy

    return load_shots([PORTRAIT], dlib_detector, 256, CropPolicy())


def test_frames_without_a_face_repeat_the_last_good_landmarks(talk_track, portrait_shot):
    from dataclasses import replace

    from fsth.animate import AnimateOptions, plan_targets

    track = replace(talk_track, landmarks=talk_track.landmarks.copy(), valid=talk_track.valid.copy())
    track.valid[[0, 1, 30, 31, 32]] = False  # the face is lost at the start and in the middle
    track.landmarks[~track.valid] = np.nan
    source = portrait_shot.points[0]
    targets, ref = plan_targets(track, source, 256, AnimateOptions(reference="first"))
    assert ref == 2 and np.isfinite(targets).all()
    np.testing.assert_array_equal(targets[0], source)  # before the first face: the source at rest
    # the reference frame: the source as it is, but for the mouth's opening, which is the driver's (in mouth widths),
    # and the eyes within a pixel (they open as the driver's open level around the frame, not as in the frame)
    still, lids = np.r_[0:5, 12:37, 39, 42, 45, 48, 54, 60, 64], np.r_[37, 38, 40, 41, 43, 44, 46, 47]
    np.testing.assert_allclose(targets[2][still], source[still], atol=1e-3)
    np.testing.assert_allclose(targets[2][lids], source[lids], atol=1.0)
    for i in (30, 31, 32):
        np.testing.assert_array_equal(targets[i], targets[29])
    absolute, ref = plan_targets(track, source, 256, AnimateOptions(absolute=True))
    assert ref is None
    np.testing.assert_array_equal(absolute[0], absolute[2])
    with pytest.raises(Exception, match="no face in frame 30"):
        plan_targets(track, source, 256, AnimateOptions(reference=30))


def test_paste_back_changes_only_the_face(portrait_shot):
    from fsth.animate import face_mask, paste_back
    from fsth.video import read_image

    photo = read_image(PORTRAIT)
    points, box = portrait_shot.points[0], portrait_shot.boxes[0]
    mask = face_mask([points], 256)
    nose = np.round(points[30]).astype(int)
    assert mask[nose[1], nose[0]] == pytest.approx(1.0) and mask[5, 5] == 0.0 and mask.max() <= 1.0
    grey = np.full((256, 256, 3), 128, np.uint8)
    out = paste_back(photo, grey, box, mask)
    assert out.shape == photo.shape
    x0, y0, x1, y1 = np.round(box).astype(int)
    outside = np.ones(photo.shape[:2], bool)
    outside[max(y0, 0) : y1 + 1, max(x0, 0) : x1 + 1] = False
    np.testing.assert_array_equal(out[outside], photo[outside])  # untouched outside the crop box
    nose_in_photo = np.round(box[:2] + points[30] * (box[2] - box[0]) / 256).astype(int)
    np.testing.assert_array_equal(out[nose_in_photo[1], nose_in_photo[0]], [128, 128, 128])  # the face replaced


def test_a_camera_recording_keeps_real_time(tmp_path, monkeypatch, dlib_detector, talk_frames):
    """A camera at 100 frames/s and a generator that takes 35 ms a frame: frames that came while the generator was
    busy are dropped, and the recording repeats frames to keep real time."""
    import cv2

    from fsth.animate import AnimateOptions, animate
    from fsth.fewshot import Rendered, Renderer, load_person
    from fsth.video import VideoReader

    class Camera:  # cv2.VideoCapture of a camera: talk.mp4's first 30 frames, one every 10 ms
        def __init__(self, index):
            self.frames = iter(talk_frames[:30])

        def isOpened(self):
            return True

        def read(self):
            time.sleep(0.01)
            frame = next(self.frames, None)
            return frame is not None, None if frame is None else frame[..., ::-1]

        def get(self, prop):
            return 100.0 if prop == cv2.CAP_PROP_FPS else 0.0

        def release(self):
            pass

    def slow_generate(self, sketches, points=None):
        time.sleep(0.035)  # the warp alone is given no landmark images: grey frames of the person's size
        return Rendered(np.full((len(points), self.size, self.size, 3), 128, np.uint8))

    monkeypatch.setattr(cv2, "VideoCapture", Camera)
    monkeypatch.setattr(Renderer, "generate", slow_generate)
    person = load_person([PORTRAIT], warp_only=True, detector=dlib_detector)
    out = tmp_path / "rec.mp4"
    stats = animate(person, 0, out, AnimateOptions(mouth="generator", preview=False))
    assert 2 <= stats.frames < 30 and stats.faces > 0  # frames dropped while the generator was busy
    assert stats.written > stats.frames and stats.fps == 100.0  # ... and filled by repeating
    with VideoReader(out) as video:
        assert sum(1 for _ in video) == stats.written


def test_outputs_and_drivers_are_checked_before_any_work(tmp_path, monkeypatch):
    from fsth.animate import check_output, parse_driver
    from fsth.errors import InputError

    assert parse_driver("0") == 0 and parse_driver(1) == 1 and parse_driver("clip.mp4") == "clip.mp4"
    monkeypatch.chdir(tmp_path)
    (tmp_path / "3").write_bytes(b"")
    assert parse_driver("3") == "3"  # an existing file named like a number is a file
    with pytest.raises(InputError, match="name it .mp4"):
        check_output(tmp_path / "out.avi")
    (tmp_path / "in.mp4").write_bytes(b"x")
    with pytest.raises(InputError, match="would overwrite an input"):
        check_output(tmp_path / "in.mp4", force=True, inputs=["in.mp4"])
    with pytest.raises(InputError, match="already exists"):
        check_output(tmp_path / "in.mp4")
    assert check_output(tmp_path / "new.mp4") == tmp_path / "new.mp4"


def test_the_options_policy_reference_batch_size_and_driver(tmp_path):
    """What `fsth animate` used to decide in the CLI: --reference's forms, the batch size per device, and which
    drivers can drive (a video or a camera index; not a missing file, not a photo)."""
    import torch

    from fsth.animate import batch_size_for, checked_driver, parse_reference
    from fsth.errors import InputError

    assert [parse_reference(t) for t in ("auto", "first", "closest", "12")] == ["auto", "first", "closest", 12]
    with pytest.raises(InputError, match="--reference must be auto, first, closest or a frame index, not 'last'"):
        parse_reference("last")
    assert batch_size_for(torch.device("cpu")) == 2 and batch_size_for(torch.device("cuda")) == 8
    assert checked_driver(TALK) == str(TALK) and checked_driver("0") == 0
    with pytest.raises(InputError, match="no such file"):
        checked_driver(tmp_path / "gone.mp4")
    with pytest.raises(InputError, match="not a photo"):
        checked_driver(PORTRAIT)
    landmarks = tmp_path / "driver.npz"  # what `fsth landmarks driver.mp4 -o driver.npz` writes
    landmarks.write_bytes(b"PK")
    with pytest.raises(InputError, match="a landmarks file; give the driver's video"):
        checked_driver(landmarks)
    text = tmp_path / "notes.mp4"  # named as a video, is not one: refused before the person is loaded
    text.write_text("not a video\n")
    with pytest.raises(InputError, match="cannot read video"):
        checked_driver(text)


def test_plan_targets_measures_the_drivers_eyes_on_its_face_mesh(talk_track, portrait_shot):
    """A driver track with a face mesh: its eyes and mouth are measured there, not on the 68 points. A mesh that
    says "eyes shut" in one frame (while the 68 points say open, as dlib's do on a blink) shuts the source's eyes."""
    from dataclasses import replace

    from fsth.animate import AnimateOptions, plan_targets
    from fsth.landmarks.retarget import expression_ratios

    # a mesh with the measured points where the 68 points have them (MediaPipe's numbering)
    P = talk_track.landmarks
    mesh = np.full((len(P), 478, 2), np.nan, np.float32)
    for m, d in {13: 62, 14: 66, 61: 48, 291: 54, 33: 36, 133: 39, 362: 42, 263: 45}.items():
        mesh[:, m] = P[:, d]
    for m, (a, b) in {159: (37, 38), 158: (38, 38), 160: (37, 37), 145: (41, 40), 153: (40, 40), 144: (41, 41)}.items():
        mesh[:, m] = (P[:, a] + P[:, b]) / 2
    for m, (a, b) in {386: (43, 44), 385: (43, 43), 387: (44, 44), 374: (47, 46), 380: (47, 47), 373: (46, 46)}.items():
        mesh[:, m] = (P[:, a] + P[:, b]) / 2
    shut = 30
    for upper, lower in ((159, 145), (158, 153), (160, 144), (386, 374), (385, 380), (387, 373)):
        mesh[shut, lower] = mesh[shut, upper]
    points = portrait_shot.points[0]
    options = AnimateOptions(reference="first")
    plain, _ = plan_targets(talk_track, points, 256, options)
    meshed, _ = plan_targets(replace(talk_track, mesh=mesh), points, 256, options)
    own = expression_ratios(points)[1:3]
    assert (expression_ratios(plain[shut])[1:3] > 0.5 * own).all()  # the 68 points: open
    assert (expression_ratios(meshed[shut])[1:3] < 0.05).all()  # the mesh: shut
    assert np.allclose(expression_ratios(meshed[shut + 5])[1:3], expression_ratios(plain[shut + 5])[1:3], atol=0.03)
