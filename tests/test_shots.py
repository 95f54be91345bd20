"""Shots: photos and video frames -> crops and landmark images at model size, with the one crop policy."""

import cv2
import numpy as np
import pytest
from conftest import ASSETS, PORTRAIT, PORTRAIT_RGBA, TALK


@pytest.fixture(scope="module")
def policy():
    from fsth.landmarks import CropPolicy

    return CropPolicy()


def test_photos_become_one_shot_each(dlib_detector, policy):
    from fsth.fewshot import load_shots
    from fsth.landmarks import face_pair, track_image
    from fsth.video import read_image

    shots = load_shots([PORTRAIT, PORTRAIT_RGBA], dlib_detector, 64, policy)
    assert len(shots) == 2 and shots.size == 64
    assert shots.crops.shape == shots.sketches.shape == (2, 64, 64, 3) and shots.crops.dtype == np.uint8
    assert shots.points.shape == (2, 68, 2) and shots.sources == [str(PORTRAIT), str(PORTRAIT_RGBA)]
    assert ((shots.points > 0) & (shots.points < 64)).all()  # the whole face inside its crop
    # exactly what face_pair makes of the photo with its policy box: the one crop for every stage
    track = track_image(PORTRAIT, dlib_detector, crop_policy=policy)
    pair = face_pair(read_image(PORTRAIT), track.landmarks[0], 64, policy)
    np.testing.assert_array_equal(shots.crops[0], pair.crop)
    np.testing.assert_array_equal(shots.sketches[0], pair.sketch)
    x, y = shots.tensors()
    assert x.shape == y.shape == (2, 3, 64, 64) and float(x.min()) >= -1 and float(x.max()) <= 1


def test_a_directory_of_photos_and_k(dlib_detector, policy, tmp_path):
    import shutil

    from fsth.fewshot import load_shots

    for name in ("a.jpg", "b.jpg", "c.png"):
        shutil.copy(PORTRAIT if name != "c.png" else PORTRAIT_RGBA, tmp_path / name)
    assert len(load_shots([tmp_path], dlib_detector, 64, policy)) == 3
    two = load_shots([tmp_path], dlib_detector, 64, policy, k=2)
    assert [s.rsplit("/", 1)[-1] for s in two.sources] == ["a.jpg", "c.png"]  # spread over the three


def test_a_video_gives_k_frames_spread_over_it(dlib_detector, policy, talk_track, talk_frames):
    from fsth.fewshot import load_shots
    from fsth.landmarks import face_pair
    from fsth.video import spread

    shots = load_shots([TALK], dlib_detector, 64, policy, k=4)
    assert list(spread(60, 4)) == [7, 22, 37, 52]
    assert shots.sources == [f"{TALK}#{i}" for i in (7, 22, 37, 52)]
    pair = face_pair(talk_frames[22], talk_track.landmarks[22], 64, policy, talk_track.boxes[22])
    np.testing.assert_array_equal(shots.crops[1], pair.crop)  # the video's smoothed box, as in training


def test_shots_errors_name_the_problem(dlib_detector, policy, no_face_image, tmp_path):
    from fsth.errors import InputError, NoFaceError
    from fsth.fewshot import load_shots

    with pytest.raises(NoFaceError, match="wall.png: no face found"):
        load_shots([PORTRAIT, no_face_image], dlib_detector, 64, policy)
    with pytest.raises(InputError, match="photos or one video"):
        load_shots([PORTRAIT, TALK], dlib_detector, 64, policy)
    with pytest.raises(InputError, match="missing.jpg: no such file"):
        load_shots([tmp_path / "missing.jpg"], dlib_detector, 64, policy)
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="not a photo or video"):
        load_shots([tmp_path / "notes.txt"], dlib_detector, 64, policy)
    with pytest.raises(InputError, match="at least 1"):
        load_shots([ASSETS / "portrait.jpg"], dlib_detector, 64, policy, k=0)


def test_a_tight_portrait_s_shots_show_its_edge_pixels_not_black(dlib_detector, tmp_path):
    """Where the crop box runs off a tightly framed photo, a person's shots (and so what the warp moves into every
    frame) hold the photo's edge pixels, softened farther out; the plain policy's crop is black there."""
    from fsth.fewshot import load_person, person_crop_policy
    from fsth.landmarks import CropPolicy, face_pair, track_image
    from fsth.video import read_image, write_image

    image = read_image(PORTRAIT)
    points = dlib_detector.detect(image)[0]
    x0, y0 = points.min(0).astype(int) - 20
    x1, y1 = points.max(0).astype(int) + 20
    tight = tmp_path / "tight.png"
    write_image(tight, image[max(y0, 0) : y1, max(x0, 0) : x1])  # the face and little else

    person = load_person([tight], warp_only=True, detector=dlib_detector)
    track = track_image(tight, dlib_detector, crop_policy=CropPolicy())
    black = face_pair(read_image(tight), track.landmarks[0], 256, CropPolicy()).crop
    soft = face_pair(read_image(tight), track.landmarks[0], 256, person_crop_policy(CropPolicy())).crop
    streaks = face_pair(read_image(tight), track.landmarks[0], 256, CropPolicy(padding="replicate")).crop
    off = black.max(axis=2) == 0
    assert off.mean() > 0.2  # the box runs well off the photo
    np.testing.assert_array_equal(person.crops[0], soft)
    assert (soft.max(axis=2) == 0).mean() < 0.01
    # the photo's pixels, less the outermost (their centres may lie just past the photo's edge: the crop's too)
    kernel = np.ones((3, 3), np.uint8)
    inside = cv2.erode((~off).astype(np.uint8), kernel, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)
    np.testing.assert_array_equal(soft[inside], streaks[inside])  # the photo's own pixels, unchanged

    def detail(crop):  # high-frequency detail off the photo (streaks of repeated edge pixels)
        crop = crop.astype(np.float32)
        return np.abs(crop - cv2.GaussianBlur(crop, (0, 0), 3))[off].mean()

    assert detail(soft) < 0.5 * detail(streaks)


def test_a_small_face_is_warned_about(dlib_detector, tmp_path, capfd):
    """A photo whose face crop is enlarged more than twice to the model's size gives soft frames: the user is told
    which photo, by how much; a portrait of ordinary size says nothing."""
    from fsth.fewshot import load_shots
    from fsth.landmarks import CropPolicy
    from fsth.video import read_image, write_image

    small = tmp_path / "small.jpg"
    image = read_image(PORTRAIT)
    write_image(small, cv2.resize(image, (image.shape[1] // 5, image.shape[0] // 5), interpolation=cv2.INTER_AREA))
    load_shots([PORTRAIT], dlib_detector, 256, CropPolicy())
    assert "the face is small" not in capfd.readouterr().err
    shots = load_shots([small], dlib_detector, 256, CropPolicy())
    side = shots.boxes[0, 2] - shots.boxes[0, 0]
    err = " ".join(capfd.readouterr().err.split())
    assert f"{small}: the face is small: its {side:.0f} px crop is enlarged {256 / side:.1f}x" in err
