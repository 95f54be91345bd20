"""benchmarks/expressions.py: the measures issue 17's figures rest on. The colour classes on real mouths (teeth,
an open cavity, a closed mouth; their MediaPipe meshes stored in tests/assets/face_meshes.npz), the ratios on known
points, the closed-eye share, the pairing of driver and result frames, and the targets' verdicts. No test runs the
judge's interpreter."""

import sys

import numpy as np
import pytest
from conftest import ASSETS, OBAMA, PORTRAIT, PORTRAIT_POUT

sys.path.insert(0, str(ASSETS.parent.parent / "benchmarks"))

import expressions as ex  # noqa: E402


@pytest.fixture(scope="module")
def faces():
    from fsth.video import read_image

    meshes = np.load(ASSETS / "face_meshes.npz")
    return {
        name: (read_image(path), meshes[name])
        for name, path in (("obama", OBAMA), ("portrait", PORTRAIT), ("portrait_pout", PORTRAIT_POUT))
    }


# ---------------------------------------------------------------------------------------------- colour classes


def test_a_smile_with_teeth_is_mostly_teeth(faces):
    shares, classes = ex.mouth_classes(*faces["obama"])
    dark, teeth, lip, _ = shares
    assert ex.mouth_opening(faces["obama"][1]) > ex.OPEN_MOUTH
    assert teeth >= 0.4 and lip <= 0.45 and dark <= 0.2
    assert shares.sum() == pytest.approx(1.0)
    assert (classes >= 0).sum() >= 200  # the ring's inside is where the shares come from


def test_a_wide_open_mouth_shows_cavity_and_tongue_not_teeth(faces):
    dark, teeth, lip, other = ex.mouth_classes(*faces["portrait"])[0]
    assert dark >= 0.2 and other >= 0.2 and teeth <= 0.1 and lip <= 0.3


def test_a_closed_mouth_has_no_inner_area_and_its_lips_are_lip(faces):
    image, mesh = faces["portrait_pout"]
    assert ex.mouth_opening(mesh) < 0.05
    assert np.isnan(ex.mouth_classes(image, mesh)[0]).all()  # nothing to share out
    lab = ex.to_lab(image)
    skin, lip = ex.reference_colours(lab, mesh)
    band = ex.polygon_mask(image.shape[:2], mesh[list(ex.OUTER_LIPS)]) & ~ex.polygon_mask(
        image.shape[:2], mesh[list(ex.INNER_LIPS)]
    )
    labels = ex.classify(lab[band], skin, lip)
    shares = np.bincount(labels, minlength=4) / len(labels)  # the lips themselves, highlights and shade included
    assert shares[ex.LIP] >= 0.5 and shares[ex.TEETH] <= 0.02 and shares[ex.DARK] <= 0.1  # the seam


def test_classes_are_relative_to_the_face_and_grey_teeth_need_brightness():
    skin, lip = np.array([60.0, 18.0, 12.0]), np.array([45.0, 25.0, 10.0])
    pixels = np.array([[20.0, 15, 5], [58, 5, 8], [47, 22, 12], [60, 18, 12], [35, 35, 14]])
    expected = [ex.DARK, ex.TEETH, ex.LIP, ex.OTHER, ex.OTHER]  # cavity, teeth, lip, skin, tongue
    assert ex.classify(pixels, skin, lip).tolist() == expected
    darker = pixels * [0.7, 1, 1]  # the same mouth in a darker face is classed alike
    assert ex.classify(darker, skin * [0.7, 1, 1], lip * [0.7, 1, 1]).tolist() == expected
    grey = np.array([[65.0, 0, 0], [58, 0, 0], [45, 0, 0]])  # a grey photo: only what is brighter than skin is teeth
    assert ex.classify(grey, np.array([60.0, 0, 0]), np.array([45.0, 0, 0])).tolist() == [ex.TEETH, ex.OTHER, ex.LIP]


def test_the_mouth_patch_follows_the_mouth_and_a_still_mouth_does_not_change(faces):
    import cv2

    image, mesh = faces["obama"]
    patch, ring = ex.mouth_patch(image, mesh)
    assert ex.patch_change((patch, ring), (patch, ring)) == 0.0
    matrix = np.array([[0.8, 0.0, 30.0], [0.0, 0.8, -10.0]])  # the head moves and shrinks
    moved = cv2.warpAffine(image, matrix, image.shape[1::-1], flags=cv2.INTER_LINEAR)
    other = ex.mouth_patch(moved, mesh @ matrix[:, :2].T + matrix[:, 2])
    assert ex.patch_change((patch, ring), other) < 4.0  # L units: resampling only
    closed = ex.mouth_patch(*faces["portrait_pout"])
    assert np.isnan(ex.patch_change(closed, closed))  # no inner mouth to compare


# ---------------------------------------------------------------------------------------------- ratios on points


def known_mesh(gap=10.0, width=40.0, lid=3.0, eye=30.0, brow=20.0):
    """A mesh (478, 2) with only the measured points set: a mouth ``width`` wide opened ``gap``, eyes ``eye`` wide
    opened ``lid`` 60 px apart, brows ``brow`` above the eyes' centres."""
    m = np.zeros((478, 2), np.float32)
    m[list(ex.MOUTH_CORNERS)] = [[100 - width / 2, 200], [100 + width / 2, 200]]
    m[list(ex.LIP_GAP)] = [[100, 200 - gap / 2], [100, 200 + gap / 2]]
    for (a, b, lids), cx, brows in zip(ex.EYES, (70, 130), ex.BROWS):
        m[[a, b]] = [[cx - eye / 2, 100], [cx + eye / 2, 100]]
        for u, v in lids:
            m[[u, v]] = [[cx, 100 - lid / 2], [cx, 100 + lid / 2]]
        m[list(brows)] = [cx, 100 - brow]
    return m


def test_ratios_of_known_points():
    m = known_mesh()
    assert ex.mouth_opening(m) == pytest.approx(0.25)
    assert ex.eye_opening(m) == pytest.approx(0.1)
    assert ex.brow_height(m) == pytest.approx(20 / 60)
    big = known_mesh(gap=20, width=80, lid=6, eye=60, brow=40) * [1, 1]  # twice the face: the same ratios
    assert ex.mouth_opening(big) == pytest.approx(0.25) and ex.eye_opening(big) == pytest.approx(0.1)
    stack = np.stack([m, np.full_like(m, np.nan)])  # no face: NaN, not a crash
    assert np.isnan(ex.mouth_opening(stack)[1]) and ex.mouth_opening(stack)[0] == pytest.approx(0.25)


def test_closed_eye_share_counts_only_the_drivers_closed_frames():
    driver = np.array([0.30, 0.05, 0.08, 0.10, 0.25, np.nan, 0.02])
    result = np.array([0.30, 0.10, 0.20, 0.05, 0.02, 0.01, np.nan])
    share, n = ex.closed_followed(driver, result)
    assert n == 3 and share == pytest.approx(2 / 3)  # frames 1-3 closed (5 and 6 unjudged); 1 and 3 followed
    assert ex.closed_followed(np.full(4, 0.3), np.full(4, 0.05)) == (None, 0)  # no blink: no figure


def test_pairing_is_frame_by_frame_over_the_common_length():
    driver = np.array([0.0, 0.1, np.nan, 0.3, 0.4])
    result = np.array([0.0, 0.2, 0.2, np.nan])  # one frame shorter
    d, r = ex.paired(driver, result)
    assert d.tolist() == [0.0, 0.1] and r.tolist() == [0.0, 0.2]
    assert ex.pearson(np.arange(5.0), 2 * np.arange(5.0) + 1) == pytest.approx(1.0)
    assert ex.pearson(np.arange(5.0), np.ones(5)) is None
    assert ex.open_ratio(np.array([0.05, 0.2, 0.4]), np.array([0.3, 0.1, 0.2])) == pytest.approx(0.5)


def measures(mouth, eyes, shares, change):
    n = len(mouth)
    return ex.Measures(np.asarray(mouth, float), np.asarray(eyes, float), np.zeros(n), np.asarray(shares), change)


def test_a_result_that_copies_its_driver_meets_every_target_and_a_stretched_mouth_does_not():
    rng = np.random.default_rng(0)
    n = 40
    mouth = np.abs(rng.normal(0.15, 0.1, n))
    eyes = np.where(np.arange(n) % 10 == 0, 0.05, 0.3)
    shares = np.tile([0.4, 0.3, 0.2, 0.1], (n, 1))
    change = rng.uniform(1, 3, n)
    driver = measures(mouth, eyes, shares, change)
    same = ex.score(driver, driver, np.full(n, 0.3))
    assert set(same["targets"].values()) == {"met", "reported"}
    assert same["figures"]["mouth_r"] == pytest.approx(1.0)
    assert same["figures"]["closed_eyes_followed"] == 1.0 and same["closed_eye_frames"] == 4

    stretched = measures(0.3 * mouth, np.full(n, 0.2), np.tile([0.05, 0.0, 0.9, 0.05], (n, 1)), change)
    bad = ex.score(driver, stretched, np.where(np.arange(n) < 5, np.nan, 0.3))  # no face in 5 frames
    t = bad["targets"]
    assert t["lip_share_open"] == t["teeth_over_driver"] == t["mouth_open_ratio"] == "not met"
    assert t["closed_eyes_followed"] == "not met" and t["same_person"] == "not met"
    assert bad["figures"]["same_person"] == pytest.approx(35 / 40)
    assert bad["figures"]["teeth_over_driver"] == 0.0


def test_outline_change_sees_a_stretched_cheek_and_not_a_moved_or_scaled_face(faces):
    """On a real face's mesh: the same face moved, turned in the image and scaled reads 0; one cheek pushed out by a
    tenth of the face's width (a bulge) reads its share of the side points; no face is NaN."""
    mesh = faces["portrait"][1].astype(np.float64)
    width = np.linalg.norm(mesh[234] - mesh[454])
    a = np.deg2rad(10)
    moved = (mesh - mesh.mean(0)) @ (1.3 * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])).T + 40
    bulge = mesh.copy()
    left = [356, 454, 323, 361, 288, 397]  # the image's right side of the face
    bulge[left, 0] += 0.1 * width
    out = ex.outline_change(np.stack([mesh, moved, bulge, np.full_like(mesh, np.nan)]), mesh)
    assert out[:2] == pytest.approx([0, 0], abs=1e-6)
    assert out[2] == pytest.approx(0.1 * len(left) / len(ex.FACE_SIDES), rel=0.05)  # the eyes and nose stay put
    assert np.isnan(out[3])


def test_modes_carry_animate_options_and_refuse_unknown_ones():
    from fsth.errors import InputError

    assert ex.parse_mode("warp") == ("warp", {})
    assert ex.parse_mode("model:reference=first:head-motion=off") == (
        "model",
        {"reference": "first", "head_motion": False},
    )
    assert ex.parse_mode("model:batch_size=4") == ("model", {"batch_size": 4})
    for bad in ("paper", "model:nonsense=1", "model:reference"):
        with pytest.raises(InputError):
            ex.parse_mode(bad)


def test_verdicts():
    assert ex.verdict("mouth_open_ratio", 1.0) == "met"
    assert ex.verdict("mouth_open_ratio", 1.5) == "not met"
    assert ex.verdict("lip_share_open", 0.31) == "not met"
    assert ex.verdict("closed_eyes_followed", None) == "n/a"
    assert ex.verdict("mouth_change_over_driver", 3.0) == "reported"
    assert ex.target_text("mouth_open_ratio") == "0.7-1.4" and ex.target_text("eye_r") == ">= 0.8"


def test_fsth_judge_needs_the_mesh_backend_and_then_agrees_with_the_reference(faces):
    from fsth.errors import InputError
    from fsth.landmarks.backends import BACKENDS

    if "mesh" not in BACKENDS:
        with pytest.raises(InputError, match="mesh"):
            ex.FsthMeshJudge()
        return
    image, reference = faces["obama"]
    (mesh,) = ex.FsthMeshJudge().meshes([image[None]])
    assert mesh.shape == (1, ex.MESH_POINTS, 2)
    width = np.linalg.norm(reference[ex.EYES[0][0]] - reference[ex.EYES[1][1]])
    assert np.nanmean(np.linalg.norm(mesh[0, :468] - reference[:468], axis=-1)) < 0.05 * width


def test_fsths_reading_of_a_driver_is_scored_against_the_judge_frame_by_frame():
    from conftest import TALK

    frames = ex.read_frames(TALK)  # the mouth opens wide and closes again
    (mesh,) = ex.FsthMeshJudge().meshes([frames])  # the same networks, frame by frame instead of tracked
    reading = ex.fsth_reading(TALK, ex.measure(frames, mesh))
    assert reading["mouth_r"] > 0.95 and 0.85 < reading["mouth_open_ratio"] < 1.15
    late = ex.measure(np.roll(frames, 30, 0), np.roll(mesh, 30, 0))  # a judge half the clip out of step
    assert ex.fsth_reading(TALK, late)["mouth_r"] < 0.5
