"""The shut-eyelid layer (``fsth.animate.eyes``): where the target's eyes close, a closed eye is drawn from the
person's own colours (a warp alone only stretches the open eye's lid), read as closed by a face mesh; open eyes are
left pixel for pixel as they were, and the layer fades in with the closure."""

import numpy as np
import pytest
from conftest import PORTRAIT

SIZE = 256
CLOSED = 0.12  # eye widths: the expressions benchmark's closed eye (fsth.landmarks.retarget's judge)


@pytest.fixture(scope="module")
def mesh():
    from fsth.landmarks.backends import make_detector

    return make_detector("mesh", device="cpu")


@pytest.fixture(scope="module")
def person(mesh):
    """portrait.jpg (eyes open) as ``fsth animate --model warp`` loads it: a Person with its crop and landmarks."""
    from fsth.fewshot import load_person

    return load_person([PORTRAIT], warp_only=True, detector=mesh)


def closing(points: np.ndarray, k: float, k_left: float | None = None) -> np.ndarray:
    """``points`` (68, 2) retargeted from a driver whose eyes close by ``k`` (1: as it is, 0: shut; the left eye by
    ``k_left`` where given), counted from ``EYE_BLINK`` of its open level as retargeting counts a blink: the source's
    own lid gaps times ``k``, the upper lid taking 80% of the change."""
    from fsth.landmarks.retarget import EYE_BLINK, retarget

    driver = np.array(points, np.float64)
    for pairs, ke in zip((((37, 41), (38, 40)), ((43, 47), (44, 46))), (k, k if k_left is None else k_left)):
        m = EYE_BLINK[0] + ke * (EYE_BLINK[1] - EYE_BLINK[0])  # the driver's lid gaps times m
        for upper, lower in pairs:  # as a blink does it: the upper lid comes down 80% of the way
            gap = driver[lower] - driver[upper]
            driver[upper] += 0.8 * (1 - m) * gap
            driver[lower] -= 0.2 * (1 - m) * gap
    return retarget(points, driver, points, head_motion=False)


def warped(person, target: np.ndarray) -> np.ndarray:
    """The person's crop warped to ``target`` (68, 2): what ``--model warp`` draws before the layers."""
    import torch

    from fsth.models import images_to_tensor, tensor_to_images
    from fsth.models.warp import warp

    src = torch.as_tensor(person.points[:1], dtype=torch.float32)
    dst = torch.as_tensor(np.asarray(target, np.float32)[None])
    with torch.inference_mode():
        return tensor_to_images(warp(images_to_tensor(person.crops[:1]), src, dst))[0]


def eye_opening(mesh, image: np.ndarray) -> float:
    """Lid gap / eye width by the face mesh, both eyes averaged (the benchmark's three lid pairs)."""
    from fsth.landmarks.parts import MESH_EYE_LIDS

    points = mesh.detect(image)[0]
    d = lambda a, b: float(np.linalg.norm(points[a] - points[b]))  # noqa: E731
    return float(np.mean([np.mean([d(u, v) for u, v in lids]) / d(a, b) for (a, b), lids in MESH_EYE_LIDS]))


def test_a_shut_target_reads_closed_with_the_layer(person, mesh):
    from fsth.animate.eyes import EyeLids

    lids = EyeLids(person.crops[0], person.points[0])
    shut = closing(person.points[0], 0.0)
    face = warped(person, shut)
    layer = lids.layer(shut)
    assert layer is not None and layer.alpha.max() == pytest.approx(1.0)
    before, after = eye_opening(mesh, face), eye_opening(mesh, layer.over(face))
    assert after < CLOSED < eye_opening(mesh, person.crops[0]), (before, after)
    assert after < before - 0.02  # the layer closes what the warp left open


def test_open_eyes_are_left_as_they_are(person):
    from fsth.animate.eyes import FADE, EyeLids, closure

    lids = EyeLids(person.crops[0], person.points[0])
    assert lids.layer(person.points[0]) is None
    slightly = closing(person.points[0], 0.8)  # a fifth closed: below FADE's start
    assert closure(slightly, person.points[0]).max() < FADE[0]
    assert lids.layer(slightly) is None


def test_the_layer_fades_in_with_the_closure_without_jumps(person):
    """Over an eye closing in 20 steps, the layer's alpha rises with the closure, from none to all, and at no pixel
    does it ever fall (no flicker: the lid only comes down)."""
    from fsth.animate.eyes import FADE, EyeLids, closure

    lids = EyeLids(person.crops[0], person.points[0])
    peaks, falls, previous = [], [], None
    for k in np.linspace(1.0, 0.0, 21):
        target = closing(person.points[0], k)
        face = warped(person, target)
        layer = lids.layer(target, face)
        peaks.append(0.0 if layer is None else float(layer.alpha.max()))
        full = np.zeros(face.shape[:2], np.float32) if layer is None else layer.full(SIZE).alpha
        if previous is not None:
            falls.append((previous - full).max())  # how much any pixel's alpha fell
        previous = full
        if closure(target, person.points[0]).min() >= FADE[1]:
            assert peaks[-1] == pytest.approx(1.0)
    assert peaks[0] == 0.0 and peaks[-1] == pytest.approx(1.0)
    assert np.all(np.diff(peaks) >= -1e-6)  # rises with the closure, never falls
    assert any(0.0 < p < 0.9 for p in peaks)  # it fades in, it does not switch on
    assert max(falls) < 0.02, max(falls)


def test_eyes_closed_alike_are_drawn_alike_and_a_wink_stays_a_wink(person, monkeypatch):
    """Two eyes a little apart in closure (0.45 and 0.55) get the same lid (the alpha over each eye's half);
    drawn each at its own, the layer's steep bands made one eye open and the other shut. A wink keeps one lid."""
    import fsth.animate.eyes
    import fsth.landmarks.retarget
    from fsth.animate.eyes import EyeLids, closure
    from fsth.landmarks.retarget import retarget

    lids = EyeLids(person.crops[0], person.points[0])
    S = person.points[0]

    def halves(target) -> tuple[float, float]:
        """The layer's highest alpha over each eye (right, left): between its corners, half its width up and down."""
        full = lids.layer(target).full(SIZE).alpha
        out = []
        for a, b in ((36, 39), (42, 45)):
            x0, x1 = int(S[a, 0]), int(np.ceil(S[b, 0]))
            y, half = int(round((S[a, 1] + S[b, 1]) / 2)), int((S[b, 0] - S[a, 0]) / 2)
            out.append(float(full[y - half : y + half, x0:x1].max()))
        return tuple(out)

    with monkeypatch.context() as m:  # retargeting's coupling off: each eye at its own closure
        m.setattr(fsth.landmarks.retarget, "EYE_COUPLING", 0.0)
        m.setattr(fsth.landmarks.retarget, "EYE_SHARE_COUPLING", 0.0)
        target = closing(S, 0.55, 0.45)
    right, left = closure(target, S)
    assert 0.05 < left - right < 0.15 and 0.4 < right < left < 0.6, (right, left)
    together = halves(target)
    with monkeypatch.context() as m:
        m.setattr(fsth.animate.eyes, "TOGETHER", (0.0, 1e-6))
        alone = halves(target)
    assert abs(together[0] - together[1]) < 0.02 and 0.6 < min(together), together
    assert abs(alone[0] - alone[1]) > 0.25, alone
    driver = np.array(S, np.float64)
    driver[[43, 44]] = driver[[47, 46]]  # a wink: the left eye shut, the right open
    wink = retarget(S, driver, S, head_motion=False)
    assert closure(wink, S) == pytest.approx([0.0, 1.0], abs=0.02)
    assert halves(wink) == (0.0, pytest.approx(1.0))


def test_the_layer_takes_the_persons_colours(person):
    """The lid's skin is the person's: the hue of the skin around the eye (red and blue over green within 0.15), a
    little darker (a lid's shade), not grey, and the lash line is darker than it."""
    from fsth.animate.eyes import EyeLids

    lids = EyeLids(person.crops[0], person.points[0])
    layer = lids.layer(closing(person.points[0], 0.0))
    inside = layer.image[layer.alpha > 0.99].astype(np.float32)
    x, y = layer.origin
    h, w = layer.alpha.shape
    around = person.crops[0][y : y + h, x : x + w][layer.alpha < 0.01].astype(np.float32)
    lid, skin = np.median(inside, 0), np.median(around, 0)
    assert np.abs(lid[[0, 2]] / lid[1] - skin[[0, 2]] / skin[1]).max() < 0.15, (lid, skin)
    assert 0.6 * skin.mean() < lid.mean() < 1.1 * skin.mean()
    assert np.percentile(inside.mean(1), 2) < np.median(inside.mean(1)) - 40  # a dark lash line


def test_paste_back_lays_the_lids_over_the_photo(person, mesh):
    """With --paste-back (the photo warped at its own resolution), a shut target reads closed in the photo, and
    an open one is the photo's warp pixel for pixel (the layer touches nothing)."""
    from fsth.animate import AnimateOptions, Compositor
    from fsth.fewshot import FaceLayers

    compose = Compositor(person, AnimateOptions(paste_back=True, model="warp"), warps=True)
    assert compose.eyes is not None
    shut = closing(person.points[0], 0.0)
    photo = compose.result(FaceLayers(warped(person, shut)), shut)
    assert eye_opening(mesh, photo) < CLOSED
    open_ = person.points[0]
    with_layer = compose.result(FaceLayers(warped(person, open_)), open_)
    compose.eyes = None
    assert np.array_equal(with_layer, compose.result(FaceLayers(warped(person, open_)), open_))


def test_fill_in_keeps_the_known_pixels_and_fills_the_rest_smoothly(person):
    """``fill_in`` on real skin: known pixels unchanged, an unknown ellipse filled within the colours around it,
    smoothly and without an edge where it meets them."""
    import cv2

    from fsth.animate.eyes import fill_in

    x0, y0 = np.floor(person.points[0][36:48].min(0)).astype(int) - 12
    image = person.crops[0][y0 : y0 + 40, x0 : x0 + 90].astype(np.float32)
    known = np.ones(image.shape[:2], np.uint8)
    cv2.ellipse(known, (45, 20), (30, 10), 0, 0, 360, 0, -1)
    filled = fill_in(image, known.astype(np.float32))
    assert np.allclose(filled[known == 1], image[known == 1], atol=1e-3)
    ring = image[(cv2.dilate(1 - known, np.ones((3, 3), np.uint8)) > 0) & (known == 1)]
    hole = filled[known == 0]
    assert (hole >= ring.min(0) - 1).all() and (hole <= ring.max(0) + 1).all()
    # harmonic: every filled pixel the mean of its four neighbours, at the ring too (no edge where the fill meets
    # the known pixels; push-pull alone: up to 24 grey levels off there)
    cross = np.array([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]], np.float32)
    off = np.abs(filled - cv2.filter2D(filled, -1, cross, borderType=cv2.BORDER_REPLICATE))[known == 0]
    assert off.max() < 1.0, off.max()


def test_the_lid_takes_the_light_of_the_face_around_it(person):
    """Given the face it goes over, the shut lid is that face's skin filled in: over a face darkened to 0.6 (a
    shadowed socket) the lid darkens as much, not only at its edges."""
    from fsth.animate.eyes import EyeLids

    lids = EyeLids(person.crops[0], person.points[0])
    shut = closing(person.points[0], 0.0)
    face = warped(person, shut)
    lit, dark = lids.layer(shut, face), lids.layer(shut, (face * 0.6).astype(np.uint8))
    inside = lit.alpha > 0.99
    ratio = np.median(dark.image[inside].astype(np.float32)) / np.median(lit.image[inside].astype(np.float32))
    assert 0.5 < ratio < 0.7, ratio


def test_with_dlibs_points_the_lids_are_drawn_between_the_mesh_eye_corners():
    """For a model trained on dlib's points the person's landmarks are dlib's, whose eye corners sit inside the
    eye's; given the shot's mesh, the lids span the mesh's corners, carried onto a moved target by its eye's frame;
    given the mesh's own 68 points, nothing changes."""
    from fsth.animate.eyes import EyeLids
    from fsth.fewshot import load_person
    from fsth.landmarks.backends import make_detector
    from fsth.landmarks.mesh import mesh_to_68
    from fsth.landmarks.parts import LEFT_EYE, RIGHT_EYE

    person = load_person([PORTRAIT], warp_only=True, detector=make_detector("mesh+dlib", device="cpu"))
    points, mesh = person.points[0], person.mesh[0]
    outline = mesh_to_68(mesh)
    assert np.abs(points[[36, 39, 42, 45]] - outline[[36, 39, 42, 45]]).max() > 1.0  # dlib's are not the mesh's
    lids = EyeLids(person.crops[0], points, mesh)
    moved = points * 1.1 + 5.0
    for k, part in enumerate((RIGHT_EYE, LEFT_EYE)):
        eye = lids.eyes[k]
        np.testing.assert_allclose([eye.c - eye.x, eye.c + eye.x], outline[part][[0, 3]], atol=1e-4)
        there = lids._eye(moved[part], k)
        np.testing.assert_allclose([there.c - there.x, there.c + there.x], outline[part][[0, 3]] * 1.1 + 5, atol=1e-3)
    own = EyeLids(person.crops[0], outline, mesh)
    for a, b in zip(own.eyes, EyeLids(person.crops[0], outline).eyes):
        np.testing.assert_allclose([a.c, a.x], [b.c, b.x], atol=1e-6)
        assert a.upper == pytest.approx(b.upper) and a.lower == pytest.approx(b.lower)


def test_the_drawn_lids_take_the_skin_s_fine_detail(person, monkeypatch):
    """The lid's filled-in skin is smooth (a membrane, drawn at the crop's resolution); ``skin_detail`` gives it
    the fine detail of the skin below the eyes, moving with the face: nothing outside the layer, about the skin's
    own amount of detail on the lid, and with --paste-back (the lids enlarged to the photo) more detail there
    than without it, the rest of the photo unchanged."""
    import cv2

    import fsth.animate.eyes
    from fsth.animate import AnimateOptions, Compositor
    from fsth.fewshot import FaceLayers

    shut = closing(person.points[0], 0.0)
    face = warped(person, shut)
    compose = Compositor(person, AnimateOptions(paste_back=True, model="warp"), warps=True)
    full = compose.eyes.layer(shut, face).full(SIZE)
    detail = compose.eyes.skin_detail(shut, face, full.alpha, (1.0, 0.0, 0.0))
    assert detail.shape == face.shape and not detail[full.alpha == 0].any()
    skin = face.astype(np.float32) - cv2.GaussianBlur(face.astype(np.float32), (0, 0), 0.7)
    lid = full.alpha > 0.99
    assert 0.3 < np.abs(detail[lid]).mean() / np.abs(skin[lid.any(1)]).mean() < 3

    textured = compose.result(FaceLayers(face), shut).astype(np.float32)
    monkeypatch.setattr(fsth.animate.eyes.EyeLids, "skin_detail", lambda self, t, under, a, m: np.zeros(under.shape))
    smooth = compose.result(FaceLayers(face), shut).astype(np.float32)
    changed = np.abs(textured - smooth).max(-1) > 0
    box, side = compose.box, compose.box[2] - compose.box[0]
    eyes = shut[36:48] * side / SIZE + box[:2]  # the target's eyes in the photo
    (x0, y0), (x1, y1) = eyes.min(0) - 0.4 * side / 4, eyes.max(0) + 0.4 * side / 4
    ys, xs = np.nonzero(changed)
    assert len(ys) and x0 <= xs.min() and xs.max() <= x1 and y0 <= ys.min() and ys.max() <= y1

    below = np.zeros_like(changed)  # the skin under the eyes, in the photo
    below[int(y1) : int(y1 + 0.1 * side), int(x0) : int(x1)] = True
    photo_skin = np.abs(smooth - cv2.GaussianBlur(smooth, (0, 0), 1.3))[below].mean()
    added = np.abs(textured - smooth)[changed].mean()
    assert 0.3 * photo_skin < added < 2 * photo_skin, (added, photo_skin)
