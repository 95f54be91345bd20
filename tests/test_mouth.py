"""The mouth interior layer (``fsth.animate.mouth``): the opening between the target's inner lips is a hole, filled
from the person's own open-mouthed shot or from the driver's mouth, never stretched lip."""

import numpy as np
import pytest
from conftest import PORTRAIT, TALK

SIZE = 256


@pytest.fixture(scope="module")
def einstein(dlib_detector):
    """Einstein's shot (closed mouth) at model size: crop (S, S, 3) and landmarks (68, 2)."""
    from conftest import ASSETS

    from fsth.fewshot import load_shots
    from fsth.landmarks import CropPolicy

    shots = load_shots([ASSETS / "einstein.jpg"], dlib_detector, SIZE, CropPolicy())
    return shots.crops[0], shots.points[0]


@pytest.fixture(scope="module")
def open_driver(talk_frames, talk_track):
    """talk.mp4's frame with the widest mouth, and its landmarks in its own pixels."""
    from fsth.animate.mouth import mouth_opening

    opening = np.where(talk_track.valid, mouth_opening(np.nan_to_num(talk_track.landmarks)), -1)
    i = int(np.argmax(opening))
    return talk_frames[i], talk_track.landmarks[i], float(opening[i])


def opened(points: np.ndarray, gap: float) -> np.ndarray:
    """``points`` (68, 2) with the lower lip and the chin moved down by ``gap`` px: an open mouth."""
    out = np.array(points, np.float32, copy=True)
    out[[65, 66, 67, 55, 56, 57, 58, 59, 6, 7, 8, 9, 10]] += [0.0, gap]
    return out


def test_mouth_opening_is_large_on_talks_open_frames_and_small_on_its_closed_ones(talk_track):
    from fsth.animate.mouth import mouth_opening

    opening = mouth_opening(talk_track.landmarks[talk_track.valid])
    assert opening.shape == (int(talk_track.valid.sum()),)
    assert opening[:5].max() < 0.1  # the clip starts with the mouth closed
    assert opening.max() > 0.4  # and opens wide


def test_auto_takes_own_shots_when_one_is_open_else_the_driver_else_the_generator(einstein, dlib_detector):
    from fsth.animate.mouth import MouthInterior
    from fsth.fewshot import load_shots
    from fsth.landmarks import CropPolicy

    crop, points = einstein
    assert MouthInterior(crop[None], points[None], SIZE).mode == "driver"  # closed mouth
    assert MouthInterior(crop[None], points[None], SIZE, driver_frames=False).mode == "generator"
    surprised = load_shots([PORTRAIT], dlib_detector, SIZE, CropPolicy())  # portrait.jpg: an open mouth
    both = MouthInterior(
        np.stack([crop, surprised.crops[0]]), np.stack([points, surprised.points[0]]), SIZE, driver_frames=False
    )
    assert both.mode == "own" and "1 of 2" in both.describe()


def test_the_drivers_interior_fills_the_hole_with_a_dark_mouth_not_lip(einstein, open_driver):
    """On real pixels: Einstein (closed mouth) opened by talk.mp4's widest mouth. Inside the hole the layer shows
    the driver's dark mouth (darker than Einstein's own lips); outside the hole the layer is transparent."""
    from fsth.animate.mouth import MouthInterior, polygon_mask, to_lab

    crop, points = einstein
    frame, driver_points, _ = open_driver
    target = opened(points, 18.0)
    layer = MouthInterior(crop[None], points[None], SIZE).layer(target, frame, driver_points).full(SIZE)
    assert layer.image.shape == (SIZE, SIZE, 3) and layer.alpha.shape == (SIZE, SIZE)
    hole = polygon_mask(target[60:68], SIZE, 0) > 0.5
    assert hole.sum() > 100
    assert layer.alpha[hole].mean() > 0.8
    import cv2

    lips = (polygon_mask(target[48:60], SIZE, 0) > 0).astype(np.uint8)
    far = cv2.dilate(lips, np.ones((9, 9), np.uint8)) == 0  # 4 px or more outside the lips
    assert layer.alpha[far].max() < 0.01
    inside = np.median(to_lab(layer.image)[hole][:, 0])
    driver_inside = np.median(to_lab(frame)[polygon_mask(driver_points[60:68], frame.shape[0], 0) > 0.5][:, 0])
    # the driver's mouth (its light matched to Einstein's lips), darker towards the outline (mouth.SHADE)
    assert driver_inside - 12 < inside < driver_inside + 3
    assert inside < np.median(to_lab(crop)[hole][:, 0]) - 15  # not the lip, chin and moustache that were there
    face = layer.over(crop)
    assert np.abs(face[far].astype(int) - crop[far].astype(int)).max() <= 1  # the rest of the face is untouched


def test_the_drivers_lips_stay_out_of_a_hole_opened_wider_than_its_own(open_driver):
    """talk.mp4's widest mouth laid into a target with the same outer lips but thinner lips (an inner opening 1.8x
    as tall): the hole shows only the driver's inner mouth, dark to its inner-lip outline, not the driver's lips
    squeezed in along its rim; and the driver's own points as the target give back its mouth's middle unchanged."""
    from fsth.animate.mouth import MouthInterior, polygon_mask, to_lab

    frame, points, _ = open_driver
    size = frame.shape[0]
    mouth = MouthInterior(None, None, size, "driver")
    same = mouth.layer(points, frame, points)
    x, y = same.origin
    centre = np.round((points[[61, 62, 63]] + points[[67, 66, 65]]) / 2).astype(int)  # the opening's middle,
    # which the inset (mouth.INSET) maps onto itself and the shade (mouth.SHADE) does not reach
    got = same.image[centre[:, 1] - y, centre[:, 0] - x].astype(int)
    assert np.abs(got - frame[centre[:, 1], centre[:, 0]].astype(int)).max() <= 3

    target = np.array(points, np.float32, copy=True)
    middle = (target[[61, 62, 63]] + target[[67, 66, 65]]) / 2
    target[[61, 62, 63]] = middle + 1.8 * (target[[61, 62, 63]] - middle)
    target[[67, 66, 65]] = middle[::-1] + 1.8 * (target[[67, 66, 65]] - middle[::-1])
    layer = mouth.layer(target, frame, points).full(size)
    driver_hole = polygon_mask(points[60:68], size, 0) > 0.5
    lips = (polygon_mask(points[48:60], size, 0) > 0.5) & ~driver_hole
    lips_l = np.median(to_lab(frame)[lips][:, 0])
    inside = to_lab(layer.image)[polygon_mask(target[60:68], size, 0) > 0.5][:, 0]
    driver_l = np.median(to_lab(frame)[driver_hole][:, 0])
    assert driver_l - 10 < np.median(inside) < driver_l + 3  # as dark as the driver's mouth, or darker (SHADE)
    assert np.mean(inside > lips_l - 5) < 0.15  # hardly a pixel as light as the lips (the affine map of the 20
    # mouth points, which this replaced: 0.25; its alpha at the outline: 0.34)
    assert layer.alpha[polygon_mask(target[60:68], size, 0) > 0.5].min() > 0.9  # opaque up to the outline


def _rimmed(frame: np.ndarray, points: np.ndarray, rim: float, inside, outline) -> np.ndarray:
    """``frame`` with the hole of ``points`` painted: ``outline`` colour within ``rim`` of its height of the
    outline (a detector's inner-lip outline lying on the lip's rim), ``inside`` colour deeper in."""
    import cv2

    from fsth.animate.mouth import polygon_mask

    hole = (polygon_mask(points[60:68], (frame.shape[1], frame.shape[0]), 0) > 0.5).astype(np.uint8)
    depth = cv2.distanceTransform(hole, cv2.DIST_L2, 3)
    out = frame.copy()
    out[hole > 0] = outline
    out[depth > rim * 2 * depth.max()] = inside
    return out


def test_the_hole_leaves_out_a_lip_rim_inside_the_drivers_outline_and_shades_towards_its_edge(open_driver):
    """A driver whose inner-lip outline lies a tenth of the opening into its lips (lip-coloured rim, dark inside):
    the hole shows the dark inside, hardly any rim (mouth.INSET); and a uniform tongue-coloured interior comes out
    darker at the hole's edge than in its middle (mouth.SHADE), where white teeth keep their light."""
    from fsth.animate.mouth import MouthInterior, polygon_mask

    frame, points, _ = open_driver
    size = frame.shape[0]
    lip, dark = (170, 90, 95), (40, 20, 25)
    driver = _rimmed(frame, points, 0.1, dark, lip)
    layer = MouthInterior(None, None, size, "driver").layer(points, driver, points).full(size)
    hole = polygon_mask(points[60:68], size, 0) > 0.5
    lip_like = np.abs(layer.image[hole].astype(int) - lip).sum(-1) < 60
    assert lip_like.mean() < 0.03  # the rim: 0.3 of the hole's pixels in the driver
    assert np.abs(driver[hole].astype(int) - lip).sum(-1).__lt__(60).mean() > 0.2

    import cv2

    depth = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3)
    edge, middle = hole & (depth <= 2), depth > 0.8 * depth.max()
    for colour, darker in (((170, 90, 95), True), ((235, 235, 230), False)):
        flat = _rimmed(frame, points, 0, colour, colour)
        image = MouthInterior(None, None, size, "driver").layer(points, flat, points).full(size).image.sum(-1, float)
        ratio = image[edge].mean() / image[middle].mean()
        assert (ratio < 0.75) if darker else (ratio > 0.97), (colour, ratio)


def test_teeth_reach_the_lips_in_the_hole_with_no_dark_rim_between(open_driver):
    """A grin: a driver whose opening has white teeth along its outline (a tenth of the opening deep, where the inset
    would leave a lip's rim out) and a dark inside. The teeth stay in the hole, up to the target's inner lips
    (mouth.inset_profile), and the lips' rim that the layer's feathered edge covers is not shaded where it meets
    the teeth, as it is where it meets a tongue-coloured mouth."""
    import cv2

    from fsth.animate.mouth import MouthInterior, polygon_mask, to_lab

    frame, points, _ = open_driver
    size = frame.shape[0]
    white, dark, tongue = (235, 235, 230), (40, 20, 25), (170, 90, 95)
    grin = _rimmed(frame, points, 0.1, dark, white)
    hole = polygon_mask(points[60:68], size, 0) > 0.5
    layer = MouthInterior(None, None, size, "driver").layer(points, grin, points).full(size)
    white_share = (np.abs(layer.image[hole].astype(int) - white).sum(-1) < 60).mean()
    in_driver = (np.abs(grin[hole].astype(int) - white).sum(-1) < 60).mean()
    assert white_share > 0.8 * in_driver  # an inset of the opening's middle: 0

    outside = cv2.dilate(hole.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & ~hole  # 2 px of rim
    rim = {}
    for name, colour in (("teeth", white), ("tongue", tongue)):
        flat = _rimmed(frame, points, 0, colour, colour)
        image = MouthInterior(None, None, size, "driver").layer(points, flat, points).full(size).image
        rim[name] = float(np.median(to_lab(image)[outside][:, 0]))
    own = float(np.median(to_lab(frame)[outside][:, 0]))  # the driver's rim, in its own light
    assert rim["teeth"] == pytest.approx(own, abs=1.0)
    assert rim["tongue"] < 0.75 * own  # shaded


def test_a_closed_target_mouth_gets_no_layer_and_no_driver_face_neither(einstein, open_driver):
    from fsth.animate.mouth import MouthInterior

    crop, points = einstein
    frame, driver_points, _ = open_driver
    mouth = MouthInterior(crop[None], points[None], SIZE)
    assert mouth.layer(points, frame, driver_points) is None  # closed: the warp's lips stay
    assert mouth.layer(opened(points, 18.0), frame, np.full((68, 2), np.nan)) is None  # the driver lost its face
    assert MouthInterior(crop[None], points[None], SIZE, "generator").layer(opened(points, 18.0), frame) is None


def test_own_shots_give_the_persons_own_open_mouth_and_keep_it_over_frames(einstein, dlib_detector):
    """With an open-mouthed shot among the person's, an opening target takes its interior from that shot (no
    driver needed), and small changes of the opening keep the same shot (no flicker between shots)."""
    from fsth.animate.mouth import MouthInterior, polygon_mask
    from fsth.fewshot import load_shots
    from fsth.landmarks import CropPolicy

    crop, points = einstein
    surprised = load_shots([PORTRAIT], dlib_detector, SIZE, CropPolicy())
    mouth = MouthInterior(np.stack([crop, surprised.crops[0]]), np.stack([points, surprised.points[0]]), SIZE)
    target = opened(points, 20.0)
    layer = mouth.layer(target).full(SIZE)
    assert mouth.shot == 1
    hole = polygon_mask(target[60:68], SIZE, 0) > 0.5
    assert np.abs(layer.image[hole].astype(int) - crop[hole].astype(int)).mean() > 10  # not Einstein's lips
    for gap in (12.0, 14.0, 16.0):
        mouth.layer(opened(points, gap))
        assert mouth.shot == 1


@pytest.fixture(scope="module")
def open_shot(dlib_detector):
    """An open-mouthed shot (portrait.jpg, surprised) at model size: crop, landmarks, and a function of ``ratio``
    giving its landmarks with the opening ``ratio`` times its own."""
    from fsth.animate.mouth import mouth_opening
    from fsth.fewshot import load_shots
    from fsth.landmarks import CropPolicy

    surprised = load_shots([PORTRAIT], dlib_detector, SIZE, CropPolicy())
    shot, shot_points = surprised.crops[0], surprised.points[0]
    shot_opening = float(mouth_opening(shot_points))

    def opened_to(ratio):
        for gap in np.linspace(-20, 60, 321):
            if mouth_opening(opened(shot_points, gap)) >= ratio * shot_opening:
                return opened(shot_points, gap)
        raise AssertionError(f"no gap opens the shot's mouth to {ratio} times its own")

    return shot, shot_points, opened_to


def test_auto_takes_the_drivers_interior_where_the_mouth_opens_much_wider_than_the_shots(open_shot, open_driver):
    """With auto, a shot's mouth stretched to far more than its opening (mouth.OWN_STRETCH) gives way to the
    driver's interior, cross-faded; near the shot's opening the layer is the shot's whatever the driver shows;
    ``--mouth own`` keeps the shot."""
    from fsth.animate.mouth import OWN_STRETCH, MouthInterior

    frame, driver_points, _ = open_driver
    shot, shot_points, opened_to = open_shot
    auto = MouthInterior(shot[None], shot_points[None], SIZE)
    assert auto.mode == "own" and auto.needs_driver and "the driver's where it opens wider" in auto.describe()
    assert not MouthInterior(shot[None], shot_points[None], SIZE, "own").needs_driver

    near, wide = opened_to(1.05), opened_to(OWN_STRETCH[1] + 0.3)
    for target, driven in ((near, False), (wide, True)):
        layers = [
            MouthInterior(shot[None], shot_points[None], SIZE, mode).layer(target, frame, driver_points)
            for mode in ("auto", "own", "driver")
        ]
        same_as = layers[2] if driven else layers[1]
        assert np.array_equal(layers[0].image, same_as.image)
    # a driver file read a second time only where a frame can take its interior
    assert not auto.needs_driver_for(np.stack([shot_points, near]))
    assert auto.needs_driver_for(np.stack([shot_points, near, wide]))
    assert MouthInterior(shot[None], shot_points[None], SIZE, "driver").needs_driver_for(shot_points[None])


def test_the_hand_over_to_the_drivers_interior_moves_a_step_a_frame(open_shot, open_driver, einstein):
    """A speaking mouth crosses OWN_STRETCH back and forth: from one frame to the next the person's share of the
    interior moves by at most OWN_STEP (its teeth no longer come and go from frame to frame); a frame after one
    without a layer (a closed mouth) takes its own share at once."""
    from fsth.animate.mouth import OWN_STEP, OWN_STRETCH, MouthInterior

    frame, driver_points, _ = open_driver
    shot, shot_points, opened_to = open_shot
    near, wide = opened_to(1.05), opened_to(OWN_STRETCH[1] + 0.3)

    def alone(mode, target):  # a first frame: the shot's interior, or the driver's
        return MouthInterior(shot[None], shot_points[None], SIZE, mode).layer(target, frame, driver_points).image

    own, driver = alone("own", wide).astype(np.float64), alone("driver", wide).astype(np.float64)
    auto = MouthInterior(shot[None], shot_points[None], SIZE)
    auto.layer(near, frame, driver_points)  # the shot's interior
    steps = int(np.ceil(1 / OWN_STEP))
    for k in range(1, steps + 1):  # wide frames: towards the driver's, a step a frame
        image = auto.layer(wide, frame, driver_points).image.astype(np.float64)
        share = max(1 - k * OWN_STEP, 0.0)
        assert np.abs(image - (share * own + (1 - share) * driver)).max() <= 1.0, k
    assert auto.layer(einstein[1], frame, driver_points) is None  # a closed mouth: no layer
    assert np.array_equal(auto.layer(near, frame, driver_points).image, alone("own", near))  # at once


def test_teeth_keep_their_colour_and_the_rest_takes_the_persons_lip_colour():
    from fsth.animate.mouth import match_colours, to_lab

    teeth = np.full((4, 4, 3), 235, np.uint8)
    tongue = np.zeros((4, 4, 3), np.uint8)
    tongue[:] = (150, 60, 70)
    driver_lips = np.array([[45.0, 30.0, 15.0], [8.0, 5.0, 5.0]])
    person_lips = np.array([[55.0, 40.0, 10.0], [8.0, 5.0, 5.0]])
    t_lab, m_lab = to_lab(teeth), to_lab(match_colours(teeth, driver_lips, person_lips))
    assert np.hypot(*m_lab[..., 1:].reshape(-1, 2).T).max() < 6  # still white, not tinted
    assert m_lab[..., 0].mean() > t_lab[..., 0].mean()  # the person's lighter light
    g_lab, n_lab = to_lab(tongue), to_lab(match_colours(tongue, driver_lips, person_lips))
    assert n_lab[..., 1].mean() == pytest.approx(g_lab[..., 1].mean() + 10, abs=1.5)  # redder, as the person's lips
    grey_lips = np.array([[55.0, 0.0, 0.0], [8.0, 0.0, 0.0]])  # a black-and-white photo's
    b_lab = to_lab(match_colours(tongue, driver_lips, grey_lips))
    assert np.hypot(b_lab[..., 1], b_lab[..., 2]).max() < 3  # a colourless mouth, not a tinted one


def test_the_drivers_teeth_keep_their_brightness_relative_to_the_face(einstein, dlib_detector):
    """Obama's official portrait (teeth in two thirds of his inner mouth) as the driver of Einstein, whose lips are
    much darker than his cheeks (moustache): the layer's teeth are as bright against Einstein's cheeks as Obama's
    are against his (here: white), and paler than Einstein's skin (a lip-based light change darkened them to 0.9x
    his cheeks)."""
    from conftest import OBAMA

    from fsth.animate.mouth import MouthInterior, polygon_mask, skin_stats, to_lab
    from fsth.video import read_image

    crop, points = einstein
    driver = read_image(OBAMA)
    driver_points = dlib_detector.detect(driver)[0]
    target = opened(points, 14.0)
    layer = MouthInterior(crop[None], points[None], SIZE).layer(target, driver, driver_points).full(SIZE)

    def brightest(image, region):  # the brightest quarter of a region's Lab pixels: the teeth
        lab = to_lab(image)[region]
        return lab[lab[:, 0] >= np.quantile(lab[:, 0], 0.75)]

    size = (driver.shape[1], driver.shape[0])
    theirs = brightest(driver, polygon_mask(driver_points[60:68], size, 0) > 0.5)
    ours = brightest(layer.image, polygon_mask(target[60:68], SIZE, 0) > 0.5)
    driver_skin, person_skin = skin_stats(driver, driver_points), skin_stats(crop, points)
    relative = np.median(ours[:, 0]) / person_skin[0, 0]
    expected = min(np.median(theirs[:, 0]) / driver_skin[0, 0], 100 / person_skin[0, 0])  # up to white (L 100)
    assert relative == pytest.approx(expected, abs=0.08)
    chroma = np.median(np.hypot(ours[:, 1], ours[:, 2]))
    assert chroma <= 0.8 * np.hypot(*person_skin[0, 1:])  # paler than the skin: white teeth


def test_animate_with_the_warp_alone_shows_its_hole_or_the_drivers_interior_never_stretched_lip(tmp_path, einstein):
    """End to end on the bundled demo pair with the warp alone, at the driver's open frames: with --mouth generator
    (no layer) the result's inner mouth is the warp's dark hole (Einstein's closed lips and moustache stretched
    over it read 86 grey levels before the hole); with --mouth driver, the driver's interior over it, its teeth and
    tongue lighter than the hole."""
    from conftest import ASSETS

    from fsth.animate import AnimateOptions, animate, plan_targets
    from fsth.animate.mouth import mouth_opening, polygon_mask
    from fsth.fewshot import load_person
    from fsth.landmarks import make_detector, track_video
    from fsth.video import VideoReader

    detector = make_detector("dlib")
    person = load_person([ASSETS / "einstein.jpg"], warp_only=True, detector=detector)
    options = AnimateOptions(model="warp", audio=False)
    targets, _ = plan_targets(track_video(TALK, detector), person.points[0], SIZE, options)
    wide = np.flatnonzero(mouth_opening(targets) > 0.3)
    assert len(wide) > 10
    means = {}
    for mode in ("driver", "generator"):
        out = tmp_path / f"{mode}.mp4"
        animate(person, TALK, out, AnimateOptions(model="warp", mouth=mode, audio=False))
        with VideoReader(out) as video:
            frames = list(video)
        means[mode] = np.mean([frames[i][polygon_mask(targets[i][60:68], SIZE, 0) > 0.5].mean() for i in wide])
    assert means["generator"] < 40  # the hole (31 here), its edge on the lips
    assert means["driver"] > means["generator"] + 10  # the driver's teeth and tongue (50)


def test_warm_lit_teeth_count_as_teeth_and_are_not_tinted_with_the_persons_lip_colour():
    """retalking_face4's teeth under warm light: Lab L 77, chroma about 20, as chromatic as its lips (L 59, chroma
    17). They weigh as teeth (mouth.TEETH_BRIGHT, TEETH_CHROMA) and keep their chroma relative to the skin, where a
    partial weight moved them towards a red-lipped person's lip colour."""
    import cv2

    from fsth.animate.mouth import match_colours, teeth_weight, to_lab

    teeth_lab = np.array([[[77.0, 8.0, 18.0]]], np.float32)
    assert teeth_weight(teeth_lab, 59.0)[0, 0] == pytest.approx(1.0)
    assert teeth_weight(np.array([[[60.0, 15.0, 10.0]]], np.float32), 59.0)[0, 0] == 0.0  # lip-bright: not teeth
    teeth = np.clip(cv2.cvtColor(teeth_lab, cv2.COLOR_LAB2RGB) * 255 + 0.5, 0, 255).astype(np.uint8)
    teeth = np.repeat(np.repeat(teeth, 4, 0), 4, 1)
    driver_lips = np.array([[59.0, 15.0, 8.0], [6.0, 4.0, 4.0]])
    person_lips = np.array([[50.0, 40.0, 20.0], [6.0, 4.0, 4.0]])  # red lips
    skin = np.array([[70.0, 12.0, 16.0], [5.0, 3.0, 3.0]])  # the same skin: teeth keep their colour
    out = to_lab(match_colours(teeth, driver_lips, person_lips, skin, skin))
    assert np.abs(out[..., 1:] - to_lab(teeth)[..., 1:]).max() < 2.5


def test_teeth_take_the_persons_light_not_the_drivers_pink_one():
    """retalking_face4's teeth under its pink light (Lab 78, 13, -4: hue -17 degrees; its cheeks 76.5, 21, 0) given to
    a warm-skinned person (David Beckham's cheeks, 72.5, 14, 29): the teeth keep their hue and chroma relative to
    the skin (turned with the skin's hue to 46 degrees, cream), where keeping the driver's hue made them lilac; a
    black-and-white photo gets grey teeth."""
    import cv2

    from fsth.animate.mouth import match_colours, teeth_weight, to_lab

    teeth_lab = np.array([[[78.0, 13.0, -4.0]]], np.float32)
    teeth = np.clip(cv2.cvtColor(teeth_lab, cv2.COLOR_LAB2RGB) * 255 + 0.5, 0, 255).astype(np.uint8)
    teeth = np.repeat(np.repeat(teeth, 4, 0), 4, 1)
    driver_lips = np.array([[60.8, 30.0, -2.0], [6.0, 4.0, 4.0]])
    assert teeth_weight(to_lab(teeth), 60.8).min() == pytest.approx(1.0)
    driver_skin = np.array([[76.5, 21.0, 0.0], [5.0, 3.0, 3.0]])
    person_lips = np.array([[54.0, 16.0, 21.0], [6.0, 4.0, 4.0]])
    person_skin = np.array([[72.5, 14.0, 29.0], [5.0, 3.0, 3.0]])
    out = to_lab(match_colours(teeth, driver_lips, person_lips, driver_skin, person_skin)).reshape(-1, 3)
    a, b = np.median(out[:, 1]), np.median(out[:, 2])
    hue = np.degrees(np.arctan2(b, a))
    skin_hue = np.degrees(np.arctan2(29.0, 14.0))
    assert hue == pytest.approx(-17.0 + skin_hue, abs=6.0)  # was -17: lilac beside a warm face
    assert b > 5.0
    # chroma: the driver's teeth's times the skins' chroma ratio (32.2 / 21, held to 1.2)
    assert np.hypot(a, b) == pytest.approx(1.2 * np.hypot(13.0, 4.0), abs=1.5)
    grey_skin = np.array([[75.0, 0.5, 0.5], [5.0, 0.5, 0.5]])
    grey = to_lab(match_colours(teeth, driver_lips, person_lips, driver_skin, grey_skin)).reshape(-1, 3)
    assert np.hypot(grey[:, 1], grey[:, 2]).max() < 2.0


@pytest.fixture(scope="module")
def grin(dlib_detector):
    """obama.jpg's shot (a smile showing his teeth together) at model size: crop and landmarks."""
    from conftest import ASSETS

    from fsth.fewshot import load_shots
    from fsth.landmarks import CropPolicy

    shots = load_shots([ASSETS / "obama.jpg"], dlib_detector, SIZE, CropPolicy())
    return shots.crops[0], shots.points[0]


def test_teeth_together_tells_a_smile_showing_teeth_from_an_open_or_a_closed_mouth(grin, open_shot, einstein):
    from fsth.animate.mouth import teeth_together
    from fsth.landmarks.retarget import expression_ratios

    smile = teeth_together(*grin)
    assert smile.rest == pytest.approx(float(expression_ratios(grin[1])[0])) and smile.rest > 0.1
    assert 0.4 < smile.split < 0.8  # the upper teeth show more than the lower
    assert teeth_together(*open_shot[:2]).rest == 0.0  # portrait.jpg: a wide-open mouth, tongue and cavity
    assert teeth_together(*einstein).rest == 0.0  # a closed mouth under a moustache
    top, bottom = smile.cavity.astype(int)
    assert top.max() < 80 and bottom.sum() > top.sum()  # dark, lighter towards the tongue


def test_a_grin_whose_inner_lip_outline_lies_on_its_lips_reads_teeth_together(dlib_detector):
    """group.jpg's largest face smiles with his teeth together under a moustache. The face mesh puts the inner lips'
    outline on the lips, so lip fills half the opening and its teeth less than half; teeth still fill what is not
    lip, and nothing dark or grey lies between them. A talking mouth with its teeth apart (talking_teeth.jpg: a grey
    shadowed gap over the lower teeth) is not a shut jaw, read by dlib's points, whose outline lies further in."""
    from conftest import ASSETS, GROUP

    from fsth.animate.mouth import teeth_together
    from fsth.fewshot import load_shots
    from fsth.landmarks import CropPolicy
    from fsth.landmarks.backends import make_detector
    from fsth.landmarks.retarget import expression_ratios

    grin = load_shots([GROUP], make_detector("mesh", device="cpu"), SIZE, CropPolicy())
    read = teeth_together(grin.crops[0], grin.points[0])
    assert read.together > 0.9 and read.shut_jaw
    assert read.rest == pytest.approx(read.together * float(expression_ratios(grin.points[0])[0]))
    talking = load_shots([ASSETS / "talking_teeth.jpg"], dlib_detector, SIZE, CropPolicy())
    assert float(expression_ratios(talking.points[0])[0]) > 0.1  # open
    assert teeth_together(talking.crops[0], talking.points[0]).together < 0.1


def test_upper_and_lower_teeth_with_a_dark_band_between_them_are_apart(dlib_detector):
    """talking_apart.jpg speaks wide open: both rows of teeth show, parted by a band of dark mouth a fifth of the
    opening tall; teeth and lip fill most of the opening, so without the rows' order it read teeth together, and a
    driver's frame like it would have taken a smiling source's own gap away."""
    from conftest import ASSETS

    from fsth.animate.mouth import frame_teeth, teeth_together
    from fsth.fewshot import load_shots
    from fsth.landmarks import CropPolicy
    from fsth.landmarks.retarget import expression_ratios
    from fsth.video import read_image

    shot = load_shots([ASSETS / "talking_apart.jpg"], dlib_detector, SIZE, CropPolicy())
    assert float(expression_ratios(shot.points[0])[0]) > 0.3
    assert teeth_together(shot.crops[0], shot.points[0]).together < 0.1
    frame = read_image(ASSETS / "talking_apart.jpg")  # read on the whole frame, as a driver's
    points = dlib_detector.detect(frame)[0]
    assert frame_teeth(frame, points) < 0.1


def test_a_grin_at_rest_is_its_own_mouth_with_no_dark_band_between_its_teeth(grin):
    """At the shot's own opening (the driver's mouth closed, or grinning as it does), the own interior of a smile
    with its teeth together is the shot's mouth as photographed: read from inside its lip rims, its teeth were
    parted by a band of the mouth's dark inside a fifth of the opening tall."""
    from fsth.animate.mouth import MouthInterior, to_lab

    shot, points = grin
    layer = MouthInterior(shot[None], points[None], SIZE, "own").layer(points)
    x0, y0 = layer.origin
    h, w = layer.alpha.shape
    inside = layer.alpha > 0.9
    drawn = to_lab(layer.image)[..., 0][inside]
    photo = to_lab(shot[y0 : y0 + h, x0 : x0 + w])[..., 0][inside]
    assert np.abs(drawn - photo).mean() < 6.0
    x = int(round(points[[62, 66], 0].mean())) - x0  # the middle column: teeth all the way, no dark band
    column = to_lab(layer.image)[int(points[62, 1]) - y0 + 1 : int(points[66, 1]) - y0, x, 0]
    assert column.min() > 50, column


def test_a_drivers_teeth_are_read_on_a_frame_of_any_size_even_where_its_mouth_meets_the_edge(dlib_detector):
    """``frame_teeth`` reads obama.jpg's grin on the whole photo (360x450), and on the photo cut just below his
    lower lip, where the square around his mouth runs off the frame (its edge pixels repeated); a mouth wholly off
    the frame reads nothing."""
    from conftest import ASSETS

    from fsth.animate.mouth import frame_teeth
    from fsth.video import read_image

    photo = read_image(ASSETS / "obama.jpg")
    points = dlib_detector.detect(photo)[0]
    assert frame_teeth(photo, points) > 0.9
    cut = photo[: int(np.ceil(points[57, 1])) + 3]  # a few pixels below the lower lip
    assert frame_teeth(cut, points) > 0.9
    assert frame_teeth(photo, points + [1000.0, 0.0]) == 0.0  # a mouth wholly off the frame: nothing read


def test_the_persons_own_teeth_keep_their_size_and_the_jaw_opens_a_dark_gap_between_them(grin):
    """The own interior of a smile with teeth, opened wider: his upper teeth under the upper lip as in the photo,
    the cavity's dark between his teeth, not his teeth stretched to the opening."""
    from fsth.animate.mouth import MouthInterior, to_lab

    shot, points = grin
    gap = 0.25 * float(np.linalg.norm(points[54] - points[48]))  # the jaw drops by a quarter of the mouth's width
    target = opened(points, gap)
    auto = MouthInterior(shot[None], points[None], SIZE)  # its own teeth at any opening: no driver's interior
    assert auto.mode == "own" and not auto.needs_driver and "teeth together" in auto.describe()
    layer = MouthInterior(shot[None], points[None], SIZE, "own").layer(target)
    x = int(round(points[[62, 66], 0].mean())) - layer.origin[0]  # the middle column of the mouth
    top, bottom = target[62, 1] - layer.origin[1], target[66, 1] - layer.origin[1]
    column = to_lab(layer.image)[:, x, 0]
    upper_teeth = column[int(top) + 2 : int(top) + 5].mean()
    middle = column[int((top + bottom) / 2) - 1 : int((top + bottom) / 2) + 2].mean()
    assert upper_teeth > 70 and middle < 30, (upper_teeth, middle)
    lips_l = to_lab(shot)[int(points[57, 1]), int(points[57, 0]), 0]
    assert middle < 0.6 * lips_l
