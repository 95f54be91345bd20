"""Motion transfer: the source keeps its face shape and makes the driver's motion (real dlib landmarks)."""

import numpy as np
import pytest
from conftest import ASSETS, GROUP, PORTRAIT


def dist(points, i, j):
    return np.linalg.norm(points[..., i, :] - points[..., j, :], axis=-1)


def rotation(degrees):
    a = np.deg2rad(degrees)
    return np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])


@pytest.fixture(scope="module")
def source_points(dlib_detector):
    """Landmarks of the largest face of group.jpg in its 256 crop: a short nose (0.52 eye distances; the driver's
    is 0.62), so taking the driver's landmarks as they are would visibly change the face."""
    from fsth.fewshot import load_shots
    from fsth.landmarks import CropPolicy

    return load_shots([GROUP], dlib_detector, 256, CropPolicy()).points[0]


def test_similarity_fit_recovers_a_known_transform(talk_track):
    from fsth.landmarks.retarget import apply_similarity, similarity_fit

    P = talk_track.landmarks[0]
    L = 1.3 * rotation(17)
    moved = P @ L.T + np.array([40.0, -25.0])
    L_fit, t_fit = similarity_fit(P, moved)
    np.testing.assert_allclose(L_fit, L, atol=1e-6)
    np.testing.assert_allclose(apply_similarity(L_fit, t_fit, P), moved, atol=1e-3)


def test_driver_equal_to_source_is_reproduced(talk_track, monkeypatch):
    import fsth.landmarks.retarget
    from fsth.landmarks.retarget import expression_ratios, eye_levels, retarget

    D = talk_track.landmarks
    level = eye_levels(expression_ratios(D)[:, 1:3], talk_track.fps)
    damped = retarget(D[0], D, D[0], eye_level=level)
    # but for the outline's shared sway (test_a_head_turns_sway_of_the_outline_is_damped), which is small here
    np.testing.assert_allclose(damped[:, 17:], retarget(D[0], D, D[0], eye_level=level)[:, 17:], atol=1e-3)
    assert np.abs(damped[:, :17] - D[:, :17]).max() < 3.0  # px (2.3 on talk.mp4)
    monkeypatch.setattr(fsth.landmarks.retarget, "OUTLINE_SWAY", 1.0)
    out = retarget(D[0], D, D[0], eye_level=level)  # the driver drives itself from its first frame
    lids = [37, 38, 40, 41, 43, 44, 46, 47]
    np.testing.assert_allclose(np.delete(out, lids, axis=1), np.delete(D, lids, axis=1), atol=1e-3)
    # the lids too, within a pixel or two, but in the blink (frames 42-48): dlib's points read its shut eyes at about
    # half their open level, which counts as shut (EYE_BLINK)
    blink = np.arange(42, 49)
    assert np.abs(np.delete(out[:, lids] - D[:, lids], blink, axis=0)).max() < 2.0  # px (1.7 on talk.mp4)
    opening = expression_ratios(out)[:, 1:3].mean(1) / expression_ratios(D)[:, 1:3].mean(1)
    assert opening[45] < 0.1 < 0.4 < opening[blink].max()  # shut at its deepest, as it closes and opens partly
    np.testing.assert_allclose(damped[:, 17:], out[:, 17:], atol=1e-3)


def test_a_head_turns_sway_of_the_outline_is_damped(talk_track, source_points):
    """A head turning shifts the driver's outline sideways against its eyes and nose, both sides one way; the warp
    would move the photo's cheek and the background beside it that far (a bulge). That shared sway is carried at
    OUTLINE_SWAY; the jaw's symmetric motion (it narrows as it drops), the nose and all the rest in full."""
    from fsth.landmarks.retarget import OUTLINE_SWAY, retarget, similarity_fit

    S, D = source_points, talk_track.landmarks
    R = D[0]
    across = (R[45] - R[36]) / np.linalg.norm(R[45] - R[36])
    A, _ = similarity_fit(np.broadcast_to(R, D.shape), D)  # each frame's head motion
    sideways = (A @ across)[:, None]  # (N, 1, 2): along the eyes in each frame, 1 px of the reference's
    turned = D.copy()
    turned[:, :17] += 20.0 * sideways  # the outline shifted 20 px sideways against the eyes and nose: a turn
    base, out = retarget(S, D, R, head_motion=False), retarget(S, turned, R, head_motion=False)
    np.testing.assert_allclose(out[:, 17:], base[:, 17:], atol=1e-3)  # the face inside the outline as before
    L, _ = similarity_fit(R, S)  # the driver's pixels -> the source's
    moved = (out[:, :17] - base[:, :17]).reshape(-1, 2)
    np.testing.assert_allclose(moved, np.broadcast_to(OUTLINE_SWAY * 20.0 * (L @ across), moved.shape), atol=1e-3)
    # the jaw's symmetric motion is carried in full: the outline narrowed, each side 6 px towards the middle
    narrowed = D.copy()
    narrowed[:, :8] += 6.0 * sideways
    narrowed[:, 9:17] -= 6.0 * sideways
    inward = (retarget(S, narrowed, R, head_motion=False) - base)[:, :17].reshape(-1, 17, 2)
    sides = inward[:, [*range(8), *range(9, 17)]] @ (L @ across) / np.linalg.norm(L @ across) ** 2
    np.testing.assert_allclose(np.abs(sides), 6.0, atol=1e-2)


def test_retargeting_keeps_the_source_face_and_follows_the_mouth(talk_track, source_points):
    from fsth.landmarks import CropPolicy
    from fsth.landmarks.retarget import choose_reference, retarget, similarity_fit

    S, D = source_points, talk_track.landmarks
    ref = choose_reference(D, talk_track.valid, S)
    out = retarget(S, D, D[ref])
    # the reference frame is the source as it is, but for the mouth's opening (absolute: the driver's, in the
    # source's mouth widths) and the chin that moves with it
    still = np.setdiff1d(np.arange(68), [*range(5, 12), *range(49, 54), *range(55, 60), 61, 62, 63, 65, 66, 67])
    np.testing.assert_allclose(out[ref][still], S[still], atol=1e-3)
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
    at_rest = retarget(source_points, D0, D0)  # the source with the reference frame's mouth opening
    shift = (retarget(source_points, D0 + step, D0) - at_rest).mean(axis=0)
    B, _ = similarity_fit(D0, source_points)  # driver -> source scale and rotation
    np.testing.assert_allclose(shift, B @ step, atol=0.05)  # the same step in *its* face's units
    still = retarget(source_points, turned + step, D0, head_motion=False)
    np.testing.assert_allclose(still, at_rest, atol=0.2)  # a rigid motion only: nothing to carry over


def test_reference_is_the_driver_frame_with_the_source_expression(talk_track, dlib_detector, source_points):
    from fsth.fewshot import load_shots
    from fsth.landmarks import CropPolicy
    from fsth.landmarks.retarget import choose_reference

    D, valid = talk_track.landmarks, talk_track.valid
    opening = dist(D, 62, 66) / dist(D, 36, 45)
    closed_ref = choose_reference(D, valid, source_points)  # mouth closed in group.jpg
    open_ref = choose_reference(D, valid, load_shots([PORTRAIT], dlib_detector, 256, CropPolicy()).points[0])
    assert opening[closed_ref] < 0.1 and opening[open_ref] > 0.25


def test_motion_transfer_repeats_the_last_face_and_resets(talk_track, source_points):
    from fsth.landmarks.retarget import MotionTransfer, expression_ratios, eye_levels, retarget

    D = talk_track.landmarks

    def level(*frames):  # the eyes' open level after the faces seen so far (causal)
        return eye_levels(expression_ratios(D[list(frames)])[:, 1:3], 30.0, causal=True)[-1]

    motion = MotionTransfer(source_points, fps=30.0)
    np.testing.assert_array_equal(motion.update(None), source_points)  # no face yet: the source at rest
    first = motion.update(D[0])
    np.testing.assert_allclose(first, retarget(source_points, D[0], D[0]), atol=1e-3)  # the first face: reference
    at_20 = motion.update(D[20])
    np.testing.assert_array_equal(motion.update(None), at_20)  # face lost: the last good landmarks
    np.testing.assert_array_equal(motion.update(np.full((68, 2), np.nan)), at_20)
    motion.reset()
    new = retarget(source_points, D[30], D[30], eye_level=level(0, 20, 30))  # a new reference, the same driver's eyes
    np.testing.assert_allclose(motion.update(D[30]), new, atol=1e-3)
    # the reference's own open level: over the frames from it on
    since = np.percentile(expression_ratios(D[[30, 40]])[:, 1:3], 75, axis=0)
    expected = retarget(source_points, D[40], D[30], eye_level=level(0, 20, 30, 40), reference_level=since)
    np.testing.assert_allclose(motion.update(D[40]), expected, atol=1e-4)
    absolute = MotionTransfer(source_points, absolute=True)
    np.testing.assert_array_equal(absolute.update(D[5]), D[5])


# -- expression in scale-free units: synthetic variations of real landmarks ---------------------------------


def eye_opening(points):
    """The right eye's mean lid gap across its corner line / its width (``expression_ratios``)."""
    from fsth.landmarks.retarget import expression_ratios

    return expression_ratios(points)[..., 1]


def mouth_opening(points):
    """The inner lips' centre gap across the corner line / the mouth's width (``expression_ratios``)."""
    from fsth.landmarks.retarget import expression_ratios

    return expression_ratios(points)[..., 0]


def shut_right_eye(points, amount=1.0):
    """The right eye's upper lid lowered onto the lower one by ``amount`` of its gap (1: shut)."""
    out = points.copy()
    for upper, lower in ((37, 41), (38, 40)):
        out[..., upper, :] += amount * (points[..., lower, :] - points[..., upper, :])
    return out


def shut_left_eye(points, amount=1.0):
    """The left eye's upper lid lowered onto the lower one by ``amount`` of its gap (1: shut)."""
    out = points.copy()
    for upper, lower in ((43, 47), (44, 46)):
        out[..., upper, :] += amount * (points[..., lower, :] - points[..., upper, :])
    return out


def scale_mouth(points, factor):
    """The mouth (and its opening) made ``factor`` times as wide, about its centre: a smaller or larger mouth."""
    out = points.copy()
    centre = points[..., 48:68, :].mean(-2, keepdims=True)
    out[..., 48:68, :] = centre + (points[..., 48:68, :] - centre) * factor
    return out


def fake_mesh(points):
    """Dense points (..., 478, 2) with the face-mesh indices that measure eyes and mouth placed on the 68 points
    (the rest unused): a stand-in for the mesh backend, to drive with lids the 68 points do not close."""
    mesh = np.zeros((*points.shape[:-2], 478, 2))
    for dense, ours in {13: 62, 14: 66, 61: 48, 291: 54, 33: 36, 133: 39, 158: 38, 160: 37, 153: 40, 144: 41}.items():
        mesh[..., dense, :] = points[..., ours, :]
    for dense, ours in {362: 42, 263: 45, 385: 43, 387: 44, 380: 47, 373: 46}.items():
        mesh[..., dense, :] = points[..., ours, :]
    mesh[..., 159, :] = points[..., [37, 38], :].mean(-2)
    mesh[..., 145, :] = points[..., [41, 40], :].mean(-2)
    mesh[..., 386, :] = points[..., [43, 44], :].mean(-2)
    mesh[..., 374, :] = points[..., [47, 46], :].mean(-2)
    return mesh


def test_ratios_are_measured_on_the_dense_mesh_where_given(talk_track):
    from fsth.landmarks.retarget import expression_ratios

    D = talk_track.landmarks[:10].astype(np.float64)
    np.testing.assert_allclose(expression_ratios(D, fake_mesh(D))[..., :3], expression_ratios(D)[..., :3], atol=1e-9)
    mesh = fake_mesh(shut_right_eye(D))
    assert np.all(expression_ratios(D, mesh)[..., 1] < 1e-9) and np.all(expression_ratios(D)[..., 1] > 0.15)


def test_a_closed_driver_eye_closes_the_source_eye(talk_track, source_points, monkeypatch):
    import fsth.landmarks.retarget
    from fsth.landmarks.retarget import EYE_BLINK, MotionTransfer, retarget

    monkeypatch.setattr(fsth.landmarks.retarget, "EYE_COUPLING", 0.0)  # each eye on its own (the next tests: both)
    monkeypatch.setattr(fsth.landmarks.retarget, "EYE_SHARE_COUPLING", 0.0)

    D = talk_track.landmarks.astype(np.float64)
    S = source_points
    assert eye_opening(S) > 0.2 and eye_opening(D[0]) > 0.2  # both open
    out = retarget(S, shut_right_eye(D), D[0])
    assert eye_opening(out).max() < 0.01  # shut, whatever the driver's pixels say
    half = retarget(S, shut_right_eye(D, 0.5), D[0])  # the driver half closes its eye: the source's closes more
    # a blink: the opening over the open level (here the reference's), from EYE_BLINK of it
    counted = (eye_opening(shut_right_eye(D, 0.5)) / eye_opening(D[0]) - EYE_BLINK[0]) / (EYE_BLINK[1] - EYE_BLINK[0])
    counted = np.maximum(counted, 0)  # a driver's eye below EYE_BLINK of its level is shut
    np.testing.assert_allclose(eye_opening(half) / eye_opening(S), counted, atol=0.05)
    assert counted.mean() < 0.3  # (counted from 0, half the driver's opening would be half the source's)
    # dlib's points stop at about half shut on a closed eye; the mesh closes it: where given, the mesh decides
    dlib_like = shut_right_eye(D, 0.5)
    closed = retarget(S, dlib_like, D[0], driver_dense=fake_mesh(shut_right_eye(D)), reference_dense=fake_mesh(D[0]))
    assert eye_opening(closed).max() < 0.01
    np.testing.assert_allclose(closed[:, 42:48], half[:, 42:48], atol=1e-4)  # the left eye is the 68 points' alike
    # live: MotionTransfer takes each frame's dense points, and the reference's with the reference
    motion = MotionTransfer(S)
    motion.update(D[0], fake_mesh(D[0]))
    live = motion.update(dlib_like[5], fake_mesh(shut_right_eye(D[5])))
    np.testing.assert_allclose(live[36:42], closed[5, 36:42], atol=1e-4)  # the shut eye: shut, as from the file


def test_the_more_open_eye_follows_the_other_in_a_blink_but_not_in_a_wink(talk_track, source_points):
    """The mesh reads a turned head's blink unequally (one eye 0.15, the other 0.05 eye widths): the more open eye is
    drawn towards the other (``EYE_SHARE_COUPLING``, ``EYE_COUPLING``); a wink (one shut, one open) stays a wink."""
    import fsth.landmarks.retarget
    from fsth.landmarks.retarget import retarget

    D = talk_track.landmarks[:10].astype(np.float64)
    S = source_points

    def left_opening(points):
        from fsth.landmarks.retarget import expression_ratios

        return expression_ratios(points)[..., 2]

    blink = shut_right_eye(D, 1.0)
    for upper, lower in ((43, 47), (44, 46)):  # the left eye 40% shut (a blink read unequally)
        blink[:, upper] += 0.4 * (D[:, lower] - D[:, upper])
    coupled = retarget(S, blink, D[0])
    with pytest.MonkeyPatch.context() as m:
        m.setattr(fsth.landmarks.retarget, "EYE_COUPLING", 0.0)
        m.setattr(fsth.landmarks.retarget, "EYE_SHARE_COUPLING", 0.0)
        alone = retarget(S, blink, D[0])
    assert eye_opening(coupled).max() < 0.01 and eye_opening(alone).max() < 0.01  # the shut eye: shut either way
    assert np.all(left_opening(coupled) < 0.8 * left_opening(alone))  # the other closes further
    wink = retarget(S, shut_right_eye(D, 1.0), D[0])
    assert eye_opening(wink).max() < 0.01 and left_opening(wink).min() > 0.8 * left_opening(S)


def test_eyes_read_unequally_blink_together(talk_track, source_points):
    """A turned head's driver reads one eye at 0.5-0.75 of its open level for seconds and the other at 0.9-1.2: each
    eye's share of its level moves most of the way to their mean (``EYE_SHARE_COUPLING``), so the source's eyes close
    alike instead of one drawn shut beside an open one."""
    import fsth.landmarks.retarget
    from fsth.landmarks.retarget import expression_ratios, retarget

    D = talk_track.landmarks[:10].astype(np.float64)
    S = source_points
    driver = shut_left_eye(D, 0.35)  # the left eye at 65% of its opening, the right as open as the reference

    def openings(points):
        return expression_ratios(points)[..., 1:3] / expression_ratios(S)[1:3]

    together = openings(retarget(S, driver, D[0]))
    with pytest.MonkeyPatch.context() as m:
        m.setattr(fsth.landmarks.retarget, "EYE_SHARE_COUPLING", 0.0)
        alone = openings(retarget(S, driver, D[0]))
    assert np.all(together[:, 1] > alone[:, 1] + 0.1)  # the less open eye closes less
    assert np.all(np.abs(together[:, 0] - together[:, 1]) < 0.7 * np.abs(alone[:, 0] - alone[:, 1]))
    assert np.all(together[:, 0] <= alone[:, 0] + 0.1)  # and the more open one no wider than alone
    assert np.all(together > 0.6)  # neither eye is drawn shut


def test_a_reference_caught_mid_blink_does_not_open_the_eyes_wide(talk_track, source_points):
    """A camera's reference is its first face, which may be blinking: the narrowing counts from the reference's open
    level (the frames from it on; for a file, the level at its index), not its shut reading, so the source's eyes open
    as in its photo, not as wide as retargeting allows (twice: ``EYE_CHANGE_LIMITS``)."""
    from fsth.landmarks.retarget import MotionTransfer, retarget

    D = talk_track.landmarks[:40].astype(np.float64)  # open eyes (talk.mp4 blinks at frames 42-48)
    D[0] = shut_right_eye(shut_left_eye(D[0]))
    S = source_points
    file = eye_opening(retarget(S, D, D[0], fps=30.0, reference_index=0)) / eye_opening(S)
    from_shut = eye_opening(retarget(S, D, D[0], fps=30.0)) / eye_opening(S)  # counted from the shut reading
    assert np.all((0.85 < file[10:]) & (file[10:] < 1.25)), file  # as in the photo, within the driver's own variation
    assert np.all(from_shut[10:] > 1.9), from_shut
    motion = MotionTransfer(S, fps=30.0)
    live = np.array([eye_opening(motion.update(d)) for d in D]) / eye_opening(S)
    assert np.all((0.85 < live[10:]) & (live[10:] < 1.25)), live


def test_eyes_narrowed_for_seconds_narrow_the_source_eyes_and_a_blink_in_them_shuts_them(talk_track, source_points):
    """A driver looking down narrows its eyes for seconds, which the mesh reads like a half blink (0.10-0.15 eye
    widths against 0.2 open on lia_vox_driving2). Against the eyes' open level over the second around each frame
    (``eye_levels``) that is a narrowing, carried over in proportion; a blink is a dip below the level, and shuts."""
    from fsth.landmarks.retarget import EYE_SHUT, expression_ratios, eye_levels, retarget

    fps = 30.0
    D = np.repeat(talk_track.landmarks[10:11].astype(np.float64), 150, axis=0)  # 5 s of one open-eyed frame
    narrowed = np.arange(50, 150)
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):  # from 1.7 s on, both eyes 45% narrower
        D[narrowed, upper] += 0.45 * (D[narrowed, lower] - D[narrowed, upper])
    D[100:104] = shut_right_eye(shut_left_eye(D[100:104]))  # and a blink in the narrowing
    S = source_points
    level = eye_levels(expression_ratios(D)[:, 1:3], fps)
    out = retarget(S, D, D[0], eye_level=level)
    np.testing.assert_array_equal(retarget(S, D, D[0], fps=fps), out)  # consecutive frames: the level over them
    opening = eye_opening(out) / eye_opening(S)
    open_, narrow = eye_opening(D[0]), eye_opening(D[80])
    np.testing.assert_allclose(opening[:20], 1.0, atol=0.01)  # open as the reference
    np.testing.assert_allclose(opening[75:95], (narrow - EYE_SHUT) / (open_ - EYE_SHUT), atol=0.02)  # in proportion
    assert opening[75:95].min() > 0.45  # narrowed, not shut (the eyelid layer draws shut lids below about 0.45)
    assert opening[100:104].max() < 0.01  # the blink shuts them
    assert opening[120:].min() > 0.45  # and they open again to the narrowed level
    # counted from the reference frame alone (no level), the narrowed eyes were two-thirds shut for seconds
    assert eye_opening(retarget(S, D[75:95], D[0])).max() / eye_opening(S) < 0.4


def test_a_real_shut_eye_seen_by_the_mesh_shuts_the_source_eye(source_points):
    """The face mesh reads a shut eye at a few hundredths of its width, not 0 (blink.jpg's right eye: 0.035). Counted
    from ``EYE_SHUT`` the source's eye shuts; counted from 0 it stayed a fifth open (0.035 / obama.jpg's 0.195)."""
    from fsth.landmarks import make_detector
    from fsth.landmarks.mesh import mesh_to_68
    from fsth.landmarks.retarget import expression_ratios, retarget
    from fsth.video import read_image

    mesh = make_detector("mesh", device="cpu")
    shut = mesh.detect(read_image(ASSETS / "blink.jpg"))[0].astype(np.float64)
    # the reference: open eyes (another person's: only its ratios count, the source keeps its own shape)
    reference = mesh.detect(read_image(ASSETS / "obama.jpg"))[0].astype(np.float64)
    assert (
        0
        < expression_ratios(mesh_to_68(shut), shut)[1]
        < 0.05
        < 0.15
        < expression_ratios(mesh_to_68(reference), reference)[1]
    )
    out = retarget(source_points, mesh_to_68(shut), mesh_to_68(reference), driver_dense=shut, reference_dense=reference)
    assert eye_opening(out) < 0.02 * eye_opening(source_points)


def test_a_small_mouthed_driver_opens_a_wide_mouth_in_proportion(talk_track, source_points):
    from fsth.landmarks.retarget import retarget

    D = scale_mouth(talk_track.landmarks.astype(np.float64), 0.7)  # a driver with a small mouth
    S = scale_mouth(source_points.astype(np.float64), 1.4)  # a source with a wide one
    out = retarget(S, D, D[0])
    driver_ratio = mouth_opening(D)
    assert driver_ratio.max() > 0.3
    np.testing.assert_allclose(mouth_opening(out), driver_ratio, atol=0.01)  # the same opening in mouth widths
    # in eye distances, the driver's gap times the ratio of the mouths' widths (2.2 here: 1.4 / 0.7 and the two
    # faces' own); displacements in pixels would give about 1
    wide = driver_ratio > 0.2
    gain = (dist(out, 62, 66) / dist(out, 36, 45))[wide] / (dist(D, 62, 66) / dist(D, 36, 45))[wide]
    widths = (dist(S, 48, 54) / dist(S, 36, 45)) / (dist(D[0], 48, 54) / dist(D[0], 36, 45))
    assert widths > 2 and np.median(gain) == pytest.approx(widths, rel=0.15)


def test_an_open_mouthed_source_closes_when_the_driver_closes(talk_track, dlib_detector):
    from fsth.fewshot import load_shots
    from fsth.landmarks import CropPolicy
    from fsth.landmarks.retarget import choose_reference, retarget

    S = load_shots([PORTRAIT], dlib_detector, 256, CropPolicy()).points[0]
    D = talk_track.landmarks
    assert mouth_opening(S) > 0.2  # portrait.jpg: photographed with an open mouth
    out = retarget(S, D, D[choose_reference(D, talk_track.valid, S)])  # the reference: an open-mouthed frame
    closed = mouth_opening(D) < 0.02
    assert closed.sum() >= 3 and mouth_opening(out)[closed].max() < 0.03  # the mouth shuts with the driver's
    assert dist(out, 36, 45).std() / dist(S, 36, 45) < 0.05  # its eye distance stays its own
    for upper, lower in ((61, 67), (62, 66), (63, 65)):  # the lips meet, they do not cross
        assert ((out[:, lower, 1] - out[:, upper, 1])[closed] > -1.0).all()


def test_a_raised_brow_rises_by_the_same_share_of_the_eye_distance(talk_track, source_points):
    from fsth.landmarks.retarget import expression_ratios, retarget

    D = talk_track.landmarks[:5].astype(np.float64)
    raised = D.copy()
    raised[:, 17:27, 1] -= 0.1 * dist(D, 36, 45)[:, None]  # both brows up by a tenth of the eye distance
    lift = (
        expression_ratios(retarget(source_points, raised, D[0]))[:, 3:]
        - expression_ratios(retarget(source_points, D, D[0]))[:, 3:]
    )
    np.testing.assert_allclose(lift, 0.1, atol=0.01)


def test_a_smile_with_its_teeth_together_keeps_them_shut_and_drops_the_jaw_from_there(talk_track, dlib_detector):
    """obama.jpg smiles with his teeth together: his lips are parted by his teeth with the jaw shut. The driver's
    closed mouth gives his gap at rest (not lips pressed over his teeth), an open one opens that much more; the
    reference is a closed-mouthed frame of the driver, as his jaw is shut."""
    from fsth.animate.mouth import teeth_together
    from fsth.fewshot import load_shots
    from fsth.landmarks import CropPolicy
    from fsth.landmarks.retarget import choose_reference, expression_ratios, retarget

    shot = load_shots([ASSETS / "obama.jpg"], dlib_detector, 256, CropPolicy())
    S = shot.points[0]
    rest = teeth_together(shot.crops[0], S).rest
    own = float(expression_ratios(S)[0])
    assert own > 0.1 and rest == pytest.approx(own)  # all of his gap is teeth
    D = talk_track.landmarks
    reference = choose_reference(D, talk_track.valid, S, rest)
    assert mouth_opening(D[reference]) < 0.05  # without the rest: an open-mouthed frame
    assert mouth_opening(D[choose_reference(D, talk_track.valid, S)]) > 0.1
    out = retarget(S, D, D[reference], rest_mouth=rest)
    base = retarget(S, D, D[reference])
    driver = expression_ratios(D)[:, 0]
    np.testing.assert_allclose(expression_ratios(out)[:, 0], driver + rest, atol=0.01)
    np.testing.assert_allclose(expression_ratios(base)[:, 0], driver, atol=0.01)


def test_a_drivers_grin_gap_is_held_over_a_frame_read_apart_that_opens_as_wide():
    """``grin_gaps``: frames read as teeth together give their opening; a frame read apart in between, open as wide
    or wider, keeps its neighbours' grin (its jaw drops from there); one open less is closing its lips: no grin;
    past the window, none. Causal: only the frames before count."""
    from fsth.landmarks.retarget import GRIN_SECONDS, grin_gaps

    fps = 10.0 / GRIN_SECONDS  # the window: 10 frames either side
    openings = np.array([0.25] * 5 + [0.30, 0.10] + [0.25] * 5 + [0.40] * 30)
    together = np.array([1.0] * 5 + [0.0, 0.0] + [1.0] * 5 + [0.0] * 30)
    gaps = grin_gaps(openings, together, fps)
    np.testing.assert_allclose(gaps[:12], [0.25] * 5 + [0.25, 0.0] + [0.25] * 5)
    assert gaps[12 + 9] == pytest.approx(0.25) and gaps[12 + 10] == 0.0  # 10 frames on, the window has passed
    causal = grin_gaps(openings, together, fps, causal=True)
    assert causal[0] == pytest.approx(0.25) and causal[-1] == 0.0
    late = grin_gaps(openings[::-1], together[::-1], fps, causal=True)
    assert late[:30].max() == 0.0  # no grin seen yet


def test_a_grin_driving_a_grin_keeps_the_wider_gap_instead_of_adding_both(dlib_detector, tmp_path):
    """obama.jpg driven by a video of itself (his grin, teeth together, in every frame): his own gap at rest and the
    driver's are one grin, not two: the result opens as much as his photo, where adding them gaped twice as wide.
    group.jpg's largest face, whose grin is narrower, driven by the same video opens as wide as Obama's grin, not
    its own plus his. The driver's teeth are read on its frames as it is tracked (``DriverTeeth``), and the same
    way live (``MotionTransfer.update(..., together=)``)."""
    from conftest import GROUP

    from fsth.animate import AnimateOptions
    from fsth.animate.drivers import plan_targets
    from fsth.animate.mouth import DriverTeeth, frame_teeth, rest_mouth
    from fsth.fewshot import load_shots
    from fsth.landmarks import CropPolicy
    from fsth.landmarks.retarget import MotionTransfer, expression_ratios
    from fsth.landmarks.tracker import track_video
    from fsth.video import VideoWriter, read_image

    photo = read_image(ASSETS / "obama.jpg")
    video = tmp_path / "grin.mp4"
    with VideoWriter(video, fps=10) as out:
        for dx in range(8):  # the photo moving sideways a pixel a frame
            out.write(np.ascontiguousarray(np.roll(photo, dx, axis=1)))
    shot = load_shots([ASSETS / "obama.jpg"], dlib_detector, 256, CropPolicy())
    rest = rest_mouth(shot.crops, shot.points)
    teeth = DriverTeeth()
    track = track_video(video, dlib_detector, on_frame=teeth)
    together = teeth.together(len(track))
    assert rest > 0.15 and together.min() > 0.9  # the same grin read on the video's frames
    driver = expression_ratios(track.landmarks)[:, 0]
    planned, _ = plan_targets(track, shot.points[0], 256, AnimateOptions(), rest, together)
    np.testing.assert_allclose(expression_ratios(planned)[:, 0], np.maximum(driver, rest), atol=0.02)
    added, _ = plan_targets(track, shot.points[0], 256, AnimateOptions(), rest)
    np.testing.assert_allclose(expression_ratios(added)[:, 0], driver + rest, atol=0.02)
    live = MotionTransfer(shot.points[0], fps=10, rest_mouth=rest)
    points = track.landmarks[0]
    out = live.update(points, together=frame_teeth(photo, points))
    assert float(expression_ratios(out)[0]) == pytest.approx(max(driver[0], rest), abs=0.02)

    other = load_shots([GROUP], dlib_detector, 256, CropPolicy())
    its_rest = rest_mouth(other.crops, other.points)
    assert 0 < its_rest < 0.6 * rest  # a narrower grin
    planned, _ = plan_targets(track, other.points[0], 256, AnimateOptions(), its_rest, together)
    np.testing.assert_allclose(expression_ratios(planned)[:, 0], driver, atol=0.02)  # the wider: Obama's
