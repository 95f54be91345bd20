"""The one crop policy and the one sketch renderer: geometry, stability, exact pixels."""

from __future__ import annotations

import numpy as np
import pytest

from fsth.errors import InputError
from fsth.landmarks import SKETCH_COLORS, CropPolicy, draw_overlay, draw_sketch
from fsth.landmarks.parts import PARTS

# ---------------------------------------------------------------------------------------------- crop


def test_box_is_square_and_contains_the_face(talk_track):
    policy = CropPolicy()
    for L in talk_track.landmarks[::10]:
        x0, y0, x1, y1 = policy.box(L)
        assert x1 - x0 == pytest.approx(y1 - y0, rel=1e-6)
        assert (L[:, 0] > x0).all() and (L[:, 0] < x1).all() and (L[:, 1] > y0).all() and (L[:, 1] < y1).all()
        # whole head with margin: the landmarks (brows to chin) fill about half of the box
        assert 0.35 < np.ptp(L[:, 1]) / (y1 - y0) < 0.65
        assert y0 < L[17:27, 1].min() - 0.25 * (y1 - y0)  # room above the brows for forehead and hair


def test_box_follows_the_face_frame(talk_track):
    """Rotating, scaling and moving the landmarks does the same to the box (centre and side)."""
    policy = CropPolicy()
    L = talk_track.landmarks[0].astype(np.float64)
    box = policy.box(L)
    c = (box[:2] + box[2:]) / 2
    theta = np.deg2rad(20)
    R = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    moved = (L - c) @ R.T * 1.5 + c + np.array([30.0, -10.0])
    box2 = policy.box(moved)
    np.testing.assert_allclose((box2[:2] + box2[2:]) / 2, c + np.array([30.0, -10.0]), atol=0.5)
    assert box2[2] - box2[0] == pytest.approx(1.5 * (box[2] - box[0]), rel=1e-4)


def test_box_does_not_breathe_with_the_mouth(talk_track):
    """The crop must not grow when the jaw drops (rigid face extent, not the landmarks' bounding box)."""
    policy = CropPolicy()
    gap = np.linalg.norm(talk_track.landmarks[:, 66] - talk_track.landmarks[:, 62], axis=1)
    closed, wide = talk_track.landmarks[gap.argmin()], talk_track.landmarks[gap.argmax()]
    side = lambda L: float(np.ptp(policy.box(L)[[0, 2]]))  # noqa: E731
    assert np.ptp(wide[:, 1]) > 1.1 * np.ptp(closed[:, 1])  # the landmarks' bbox grows by >10% ...
    assert side(wide) == pytest.approx(side(closed), rel=0.04)  # ... the crop does not


def test_box_is_stable_under_jitter(talk_track):
    rng = np.random.default_rng(1)
    policy = CropPolicy()
    L = talk_track.landmarks[0]
    box = policy.box(L)
    side = box[2] - box[0]
    shifts = [np.abs(policy.box(L + rng.normal(0, 1.0, L.shape)) - box).max() for _ in range(50)]
    assert max(shifts) < 0.02 * side  # 1 px of landmark noise moves a ~500 px box by a few px at most
    # over a video: smoothing removes most of what is left
    n = 90
    noisy = np.repeat(L[None], n, axis=0) + rng.normal(0, 1.0, (n, 68, 2))
    raw = policy.box(noisy)
    smooth = policy.boxes(noisy, np.ones(n, bool), fps=30)
    assert smooth.std(axis=0).max() < 0.3 * raw.std(axis=0).max()


def test_smooth_boxes_follow_motion_and_fill_gaps():
    policy = CropPolicy(smooth_seconds=0.2)
    n, fps = 100, 25.0
    x = np.linspace(0, 200, n)  # the face slides 200 px to the right
    boxes = np.stack([x, np.full(n, 50.0), x + 100, np.full(n, 150.0)], axis=1)
    valid = np.ones(n, bool)
    valid[40:50] = False
    boxes[~valid] = np.nan
    out = policy.smooth_boxes(boxes, valid, fps)
    assert np.isfinite(out).all()
    truth = np.stack([x, np.full(n, 50.0), x + 100, np.full(n, 150.0)], axis=1)
    assert np.abs(out[10:-10] - truth[10:-10]).max() < 1.0  # a straight path is kept (no lag: zero-phase)
    assert np.isnan(policy.smooth_boxes(boxes, np.zeros(n, bool), fps)).all()
    # a long gap is bridged by a straight line between its ends, not extrapolated
    valid2 = np.zeros(n, bool)
    valid2[:5] = valid2[-5:] = True
    out2 = policy.smooth_boxes(truth, valid2, fps)
    assert np.isfinite(out2).all() and (np.diff(out2[:, 0]) >= -1e-6).all()
    np.testing.assert_allclose(
        CropPolicy(smooth_seconds=0).smooth_boxes(truth, np.ones(n, bool), fps), truth, atol=1e-4
    )


def test_the_live_box_follower_smooths_causally(talk_track):
    from fsth.landmarks.crop import BoxFollower

    L = talk_track.landmarks[0]
    np.testing.assert_allclose(BoxFollower(CropPolicy(smooth_seconds=0), 25)(L), CropPolicy().box(L), atol=1e-4)
    policy, fps = CropPolicy(smooth_seconds=0.2), 25.0
    follow = BoxFollower(policy, fps)
    np.testing.assert_allclose(follow(L), policy.box(L), atol=1e-4)  # the first box as it is
    moved = L + [40.0, 0.0]  # the face jumps 40 px to the right and stays there
    steps = [follow(moved)[0] - policy.box(L)[0] for _ in range(25)]
    assert 0 < steps[0] < 40 * 0.3 and (np.diff(steps) > 0).all()  # moves towards it without overshoot
    assert steps[4] == pytest.approx(40 * (1 - np.exp(-5 / (0.2 * fps))), abs=1e-3)  # one time constant: 63%
    assert steps[-1] == pytest.approx(40 * (1 - np.exp(-25 / (0.2 * fps))), abs=1e-3)  # 99% after five


def test_crop_puts_pixels_where_to_crop_says():
    """A single bright pixel lands in the crop exactly where to_crop maps its coordinates (down- and upscaling)."""
    image = np.zeros((600, 800, 3), np.uint8)
    image[321, 456] = 255
    policy = CropPolicy()
    for box, size in [((300.5, 200.25, 620.5, 520.25), 64), ((430, 300, 490, 360), 256), ((200, 100, 700, 600), 256)]:
        crop = policy.crop(image, np.array(box), size)
        assert crop.shape == (size, size, 3) and crop.dtype == np.uint8
        expected = policy.to_crop(np.array([[456.0, 321.0]]), np.array(box), size)[0]
        weights = crop[..., 0].astype(np.float64)
        ys, xs = np.mgrid[:size, :size]
        centroid = np.array([(weights * xs).sum(), (weights * ys).sum()]) / weights.sum()
        np.testing.assert_allclose(centroid, expected, atol=0.35)


def test_crop_outside_the_image_is_padded():
    image = np.full((100, 100, 3), 200, np.uint8)
    box = np.array([-50.0, -50.0, 50.0, 50.0])  # the top-left three quarters are outside
    black = CropPolicy().crop(image, box, 100)
    assert (black[:45, :45] == 0).all() and (black[55:, 55:] == 200).all()
    edge = CropPolicy(padding="replicate").crop(image, box, 100)
    assert (edge == 200).all()
    assert (CropPolicy(padding="soft").crop(image, box, 100) == 200).all()  # a flat photo's soft fill is flat


def test_soft_padding_blurs_the_repeated_edge_pixels_by_how_far_out_they_lie():
    """Vertical stripes cut by the photo's top edge: "replicate" runs them on as streaks above the photo; "soft"
    leaves the photo's own pixels as they are and fades the streaks into their mean colour farther out."""
    image = np.zeros((200, 200, 3), np.uint8)
    image[:, ::8] = image[:, 1::8] = image[:, 2::8] = image[:, 3::8] = 255  # stripes 4 px wide
    box = np.array([0.0, -60.0, 200.0, 140.0])  # the top 60 px of the box lie above the photo
    edge = CropPolicy(padding="replicate").crop(image, box, 200).astype(float)
    soft = CropPolicy(padding="soft").crop(image, box, 200).astype(float)
    np.testing.assert_array_equal(soft[60:], edge[60:])  # inside the photo: its pixels
    assert edge[:59].std(axis=1).min() > 100  # streaks all the way up
    assert soft[59].std() > 60 and soft[:40].std(axis=1).max() < 10  # sharp at the edge, smooth 20 px out
    np.testing.assert_allclose(soft[:40].mean(), 127.5, atol=3)


def test_soft_padding_fans_a_wide_block_cut_by_the_edge_out_into_the_colours_beside_it():
    """Dark hair cut by a tight photo's top edge: "soft" starts from it at the edge and spreads it along the edge
    the farther out, so it does not stand as a dark column up to the crop's edge (as repeated edge pixels do)."""
    image = np.full((200, 200, 3), 240, np.uint8)
    image[:50, 70:130] = 20  # a block 60 px wide, cut by the top edge
    box = np.array([0.0, -60.0, 200.0, 140.0])
    edge = CropPolicy(padding="replicate").crop(image, box, 200).astype(float)
    soft = CropPolicy(padding="soft").crop(image, box, 200).astype(float)
    assert edge[0].min() == 20  # the column runs up to the crop's edge
    assert soft[58, 100].max() < 60  # just above the photo: still the block's colour
    assert soft[0].min() > 100 and soft[:30].std(axis=1).max() < 60  # 60 px out: faded into the light around it
    assert soft[:59, 100].min() > soft[59, 100].min() - 1 and np.all(np.diff(soft[:59, 100, 0]) <= 1)  # no band


def test_to_crop_from_crop_round_trip(talk_track):
    policy = CropPolicy()
    pts = policy.to_crop(talk_track.landmarks, talk_track.boxes, 256)  # (N, 68, 2) with (N, 4) boxes
    assert pts.shape == (60, 68, 2) and (pts > 0).all() and (pts < 256).all()
    back = policy.from_crop(pts, talk_track.boxes, 256)
    np.testing.assert_allclose(back, talk_track.landmarks, atol=1e-3)
    at512 = policy.to_crop(talk_track.landmarks[0], talk_track.boxes[0], 512)
    np.testing.assert_allclose(at512, 2 * pts[0], atol=1e-3)


def test_policy_storage_and_validation():
    policy = CropPolicy(scale=2.5, y_offset=-0.2, smooth_seconds=1.0, padding="replicate")
    assert CropPolicy.from_dict(policy.to_dict()) == policy
    assert CropPolicy.from_dict({}) == CropPolicy()
    with pytest.raises(InputError, match="unknown crop policy parameters: zoom"):
        CropPolicy.from_dict({"zoom": 2})
    with pytest.raises(InputError):
        CropPolicy(scale=0)
    with pytest.raises(InputError):
        CropPolicy(padding="mirror")


# ---------------------------------------------------------------------------------------------- sketch


def schematic_face() -> np.ndarray:
    """68 integer points laid out like a face on a 256x256 canvas, every part well apart from the others."""
    jaw = [(40, 100), (40, 120), (42, 140), (46, 160), (54, 178), (66, 194), (82, 206), (104, 214), (128, 218),
           (152, 214), (174, 206), (190, 194), (202, 178), (210, 160), (214, 140), (216, 120), (216, 100)]  # fmt: skip
    right_brow = [(60 + 10 * i, 66) for i in range(5)]
    left_brow = [(156 + 10 * i, 66) for i in range(5)]
    ridge = [(128, 80), (128, 95), (128, 110), (128, 125)]
    base = [(110, 140), (119, 140), (128, 140), (137, 140), (146, 140)]
    right_eye = [(64, 95), (74, 89), (88, 89), (98, 95), (88, 101), (74, 101)]
    left_eye = [(x + 94, y) for x, y in right_eye]
    outer = [(96, 170), (106, 164), (118, 160), (128, 162), (138, 160), (150, 164), (160, 170), (150, 182),
             (138, 188), (128, 190), (118, 188), (106, 182)]  # fmt: skip
    inner = [(104, 172), (116, 168), (128, 168), (140, 168), (152, 172), (140, 178), (128, 178), (116, 178)]
    pts = np.array(jaw + right_brow + left_brow + ridge + base + right_eye + left_eye + outer + inner, np.float32)
    assert pts.shape == (68, 2)
    return pts


def test_sketch_golden_pixels():
    img = draw_sketch(schematic_face(), 256)
    assert img.shape == (256, 256, 3) and img.dtype == np.uint8
    golden = {  # (x, y) on each part's polyline -> that part's colour
        (40, 110): "jaw", (128, 218): "jaw",
        (80, 66): "right_brow", (176, 66): "left_brow",
        (128, 102): "nose_ridge", (123, 140): "nose_base",
        (81, 89): "right_eye", (69, 98): "right_eye",  # the second is on the closing segment 41 -> 36
        (175, 89): "left_eye", (163, 98): "left_eye",
        (128, 190): "outer_lips", (101, 176): "outer_lips",  # closing segment 59 -> 48
        (128, 168): "inner_lips", (110, 175): "inner_lips",  # closing segment 67 -> 60
    }  # fmt: skip
    for (x, y), part in golden.items():
        assert tuple(img[y, x]) == SKETCH_COLORS[part], (x, y, part)
    for x, y in [(0, 0), (255, 255), (81, 95), (175, 95), (128, 173), (150, 100), (128, 60)]:
        # background: corners, inside the (unfilled) eyes, the open mouth, the open end of the jaw, the forehead
        assert tuple(img[y, x]) == (0, 0, 0), (x, y)
    assert len({SKETCH_COLORS[p.name] for p in PARTS}) == len(PARTS)  # every part its own colour


def test_sketch_scales_with_size():
    pts = schematic_face()
    small, big = draw_sketch(pts, 256), draw_sketch(pts * 2, 512)
    assert tuple(big[2 * 218, 2 * 128]) == SKETCH_COLORS["jaw"]

    def width(img, y, x0, x1):  # coloured pixels across the vertical nose ridge
        return int((img[y, x0:x1].max(axis=1) > 0).sum())

    thin, thick = width(small, 102, 118, 138), width(big, 204, 236, 276)
    assert thin in (3, 4, 5) and thin + 2 <= thick <= 2 * thin  # ~2 px at 256, ~4 px at 512, anti-aliased
    buf = np.full((256, 256, 3), 77, np.uint8)
    assert draw_sketch(pts, 256, out=buf) is buf and np.array_equal(buf, small)
    assert not draw_sketch(np.full((68, 2), np.nan), 256).any()  # an invalid frame: an empty sketch


def test_overlay_draws_on_a_copy():
    frame = np.full((1000, 1000, 3), 40, np.uint8)
    pts = schematic_face()
    out = draw_overlay(frame, pts, np.array([20.0, 20.0, 240.0, 240.0]), thickness=2)
    assert (frame == 40).all()  # the input frame is untouched
    assert tuple(out[218, 128]) == SKETCH_COLORS["jaw"] and tuple(out[20, 130]) == (255, 255, 255)
    assert tuple(out[150, 290]) == (40, 40, 40) and tuple(out[500, 500]) == (40, 40, 40)
    assert np.array_equal(draw_overlay(frame, None, None), frame)
    auto = draw_overlay(frame, pts * 4, np.array([80.0, 80.0, 960.0, 960.0]))  # a big face: thicker lines
    assert int((auto[400, 500:530].max(axis=1) > 40).sum()) >= 5


def test_the_named_index_slices_are_the_parts():
    from fsth.landmarks import parts

    def span(*names):
        ps = [parts.PART_BY_NAME[n] for n in names]
        return slice(ps[0].start, ps[-1].stop)

    assert parts.JAW == span("jaw") and parts.BROWS == span("right_brow", "left_brow")
    assert parts.NOSE == span("nose_ridge", "nose_base") and parts.NOSE_BASE == span("nose_base")
    assert (parts.RIGHT_EYE, parts.LEFT_EYE, parts.EYES) == (
        span("right_eye"),
        span("left_eye"),
        span("right_eye", "left_eye"),
    )
    assert parts.MOUTH == span("outer_lips", "inner_lips") and parts.INNER_LIPS == span("inner_lips")
