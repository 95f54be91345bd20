"""Motion transfer: the source keeps its face shape and makes the driver's motion (real dlib landmarks)."""

import numpy as np
import pytest
from conftest import GROUP, PORTRAIT


def dist(points, i, j):
    return np.linalg.norm(points[..., i, :] - points[..., j, :], axis=-1)


def rotation(degrees):
    a = np.deg2rad(degrees)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


@pytest.fixture(scope="module")
def source_points(dlib_detector):
    """Landmarks of the largest face of group.jpg in its 256 crop: a short nose (0.52 eye distances; the driver's
    is 0.62), so taking the driver's landmarks as they are would visibly change the face."""
    from fsth.landmarks import CropPolicy
    from fsth.shots import load_shots

    return load_shots([GROUP], dlib_detector, 256, CropPolicy()).points[0]


def test_similarity_fit_recovers_a_known_transform(talk_track):
    from fsth.landmarks.retarget import apply_similarity, similarity_fit

    P = talk_track.landmarks[0]
    L = 1.3 * rotation(17)
    moved = P @ L.T + np.array([40.0, -25.0])
    L_fit, t_fit = similarity_fit(P, moved)
    np.testing.assert_allclose(L_fit, L, atol=1e-6)
    np.testing.assert_allclose(apply_similarity(L_fit, t_fit, P), moved, atol=1e-3)


def test_driver_equal_to_source_is_reproduced(talk_track):
    from fsth.landmarks.retarget import retarget

    D = talk_track.landmarks
    out = retarget(D[0], D, D[0])  # the driver drives itself from its first frame
    np.testing.assert_allclose(out, D, atol=1e-3)


def test_retargeting_keeps_the_source_face_and_follows_the_mouth(talk_track, source_points):
    from fsth.landmarks import CropPolicy
    from fsth.landmarks.retarget import choose_reference, retarget, similarity_fit

    S, D = source_points, talk_track.landmarks
    ref = choose_reference(D, talk_track.valid, S)
    out = retarget(S, D, D[ref])
    np.testing.assert_allclose(out[ref], S, atol=1e-3)  # the reference frame is the source as it is
    L, _ = similarity_fit(np.broadcast_to(D[ref], D.shape), D)
    head_scale = np.sqrt(np.linalg.det(L))  # the driver leans in by up to 7%: the source does too
    absolute = CropPolicy.to_crop(D, talk_track.boxes, 256)  # the driver's landmarks as they are
    for i, j, spread in ((36, 45, 0.03), (0, 16, 0.08), (27, 33, 0.06)):  # eye distance, face width, nose
        ratio = dist(out, i, j) / head_scale / dist(S, i, j)
        assert np.median(np.abs(ratio - 1)) < 0.02 and np.abs(ratio - 1).max() < spread, (i, j, ratio)
    # the nose is where the identity gap shows: 24% longer in the driver's own landmarks
    assert np.median(dist(absolute, 27, 33)) / dist(S, 27, 33) > 1.15
    mouth_out = dist(out, 62, 66) / dist(out, 36, 45)  # inner-lip opening in eye distances
    mouth_driver = dist(D, 62, 66) / dist(D, 36, 45)
    assert np.corrcoef(mouth_out, mouth_driver)[0, 1] > 0.99
    assert mouth_driver.max() > 0.3 and abs(mouth_out.max() - mouth_driver.max()) < 0.1
    assert mouth_out.min() < 0.03  # closes when the driver closes


def test_head_roll_and_position_transfer_about_the_source_face(talk_track, source_points):
    from fsth.landmarks.retarget import retarget, similarity_fit

    D0 = talk_track.landmarks[0]
    c = D0.mean(axis=0)
    turned = (D0 - c) @ rotation(20).T + c  # the driver tilts its head 20 degrees
    L, _ = similarity_fit(source_points, retarget(source_points, turned, D0))
    assert np.degrees(np.arctan2(L[1, 0], L[0, 0])) == pytest.approx(20, abs=0.5)
    assert np.sqrt(np.linalg.det(L)) == pytest.approx(1.0, abs=0.01)
    step = np.array([0.5 * dist(D0, 36, 45), 0.0])  # and moves right by half its eye distance
    shift = (retarget(source_points, D0 + step, D0) - source_points).mean(axis=0)
    B, _ = similarity_fit(D0, source_points)  # driver -> source scale and rotation
    np.testing.assert_allclose(shift, B @ step, atol=0.05)  # the same step in *its* face's units
    still = retarget(source_points, turned + step, D0, head_motion=False)
    np.testing.assert_allclose(still, source_points, atol=0.2)  # a rigid motion only: nothing to carry over


def test_reference_is_the_driver_frame_with_the_source_expression(talk_track, dlib_detector, source_points):
    from fsth.landmarks import CropPolicy
    from fsth.landmarks.retarget import choose_reference
    from fsth.shots import load_shots

    D, valid = talk_track.landmarks, talk_track.valid
    opening = dist(D, 62, 66) / dist(D, 36, 45)
    closed_ref = choose_reference(D, valid, source_points)  # mouth closed in group.jpg
    open_ref = choose_reference(D, valid, load_shots([PORTRAIT], dlib_detector, 256, CropPolicy()).points[0])
    assert opening[closed_ref] < 0.1 and opening[open_ref] > 0.25


def test_motion_transfer_repeats_the_last_face_and_resets(talk_track, source_points):
    from fsth.landmarks.retarget import MotionTransfer, retarget

    D = talk_track.landmarks
    motion = MotionTransfer(source_points)
    np.testing.assert_array_equal(motion.update(None), source_points)  # no face yet: the source at rest
    first = motion.update(D[0])
    np.testing.assert_allclose(first, source_points, atol=1e-3)  # the first face is the reference
    at_20 = motion.update(D[20])
    np.testing.assert_array_equal(motion.update(None), at_20)  # face lost: the last good landmarks
    np.testing.assert_array_equal(motion.update(np.full((68, 2), np.nan)), at_20)
    motion.reset()
    np.testing.assert_allclose(motion.update(D[30]), source_points, atol=1e-3)  # new reference
    np.testing.assert_allclose(motion.update(D[40]), retarget(source_points, D[40], D[30]), atol=1e-4)
    absolute = MotionTransfer(source_points, absolute=True)
    np.testing.assert_array_equal(absolute.update(D[5]), D[5])
