"""The landmark-driven warp (fsth.models.warp): identity, known motions, gradients, photo-resolution warping."""

from pathlib import Path

import numpy as np
import pytest
import torch

from fsth.models import images_to_tensor, tensor_to_images
from fsth.models.warp import nearest_shot, warp, warp_grid, warp_region, warp_shots
from fsth.video import read_image

SIZE = 256
PORTRAIT = Path(__file__).parent / "assets" / "portrait.jpg"


@pytest.fixture(scope="module")
def crop():
    """The bundled portrait's face crop at 256 and its 68 landmarks (crop pixels)."""
    from fsth.landmarks import CropPolicy, make_detector
    from fsth.landmarks.pair import face_pair

    image = read_image(PORTRAIT)
    points = make_detector("dlib").detect(image)[0]
    pair = face_pair(image, points, SIZE, CropPolicy())
    return pair.crop, pair.points


def test_equal_points_give_the_identity(crop):
    image, points = crop
    x = images_to_tensor(image[None])
    p = torch.from_numpy(points)[None]
    out = warp(x, p, p)
    assert torch.allclose(out, x, atol=2e-3)  # bilinear at the pixel centres: the image itself


def test_a_similarity_moves_known_pixels_to_known_places(crop):
    """Target landmarks = the source's scaled by 1.1 about the centre and shifted by (6, -4) px: a source pixel q
    must appear at 1.1 (q - c) + c + t (the border anchors hold the frame's edge, so only the face's interior
    follows the similarity exactly)."""
    image, points = crop
    c, t = (SIZE - 1) / 2, np.array([6.0, -4.0], np.float32)
    target = ((points - c) * 1.1 + c + t).astype(np.float32)
    grid = warp_grid(torch.from_numpy(target)[None], torch.from_numpy(points)[None], SIZE)[0]  # (S, S, 2) in [-1, 1]
    for q in points[[30, 33, 36, 45, 48, 54, 57]]:  # nose, eyes' corners, mouth: inside the landmarks' hull
        p = (q - c) * 1.1 + c + t  # where the source pixel q should land
        looked_up = (grid[int(round(p[1])), int(round(p[0]))].numpy() + 1) * SIZE / 2 - 0.5  # source pixel read
        expected = q + (np.round(p) - p) / 1.1  # the rounding of p, carried back through the similarity
        assert np.abs(looked_up - expected).max() < 0.6


def test_the_border_stays_put(crop):
    image, points = crop
    target = points.copy()
    target[48:68, 1] += 12  # the mouth moves down a lot
    grid = warp_grid(torch.from_numpy(target)[None], torch.from_numpy(points)[None], SIZE)[0]
    ident = warp_grid(torch.from_numpy(points)[None], torch.from_numpy(points)[None], SIZE)[0]
    edge = torch.cat([grid[0], grid[-1], grid[:, 0], grid[:, -1]]) - torch.cat(
        [ident[0], ident[-1], ident[:, 0], ident[:, -1]]
    )
    assert edge.abs().max() * SIZE / 2 < 0.75  # under a pixel everywhere on the border
    inside = (grid - ident).abs().max() * SIZE / 2
    assert inside > 8  # while the mouth region moved by about the 12 px asked for


def test_the_gradient_reaches_the_image_and_the_points(crop):
    image, points = crop
    x = images_to_tensor(image[None]).requires_grad_(True)
    src = torch.from_numpy(points)[None].requires_grad_(True)
    target = torch.from_numpy(points)[None] + 3.0
    warp(x, src, target).mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert src.grad is not None and torch.isfinite(src.grad).all() and src.grad.abs().sum() > 0


def test_batched_warps_match_single_ones(crop):
    image, points = crop
    x = images_to_tensor(np.stack([image, image[:, ::-1].copy()]))
    p = torch.from_numpy(np.stack([points, points]))
    t = p + torch.tensor([[2.0, 1.0], [-3.0, 0.5]])[:, None]
    both = warp(x, p, t)
    for i in range(2):
        assert torch.allclose(
            both[i : i + 1], warp(x[i : i + 1], p[i : i + 1], t[i : i + 1]), atol=2e-3
        )  # 1/4 grey level


def test_the_nearest_shot_is_the_one_with_the_closest_expression(crop):
    _, points = crop
    open_mouth = points.copy()
    open_mouth[57:60, 1] += 10
    open_mouth[65:68, 1] += 10
    shots = torch.from_numpy(np.stack([points, open_mouth]))[None]  # (1, 2, 68, 2)
    # the target: the open mouth, moved and scaled (position and size do not count)
    target = torch.from_numpy(open_mouth * 0.8 + 20)[None]
    assert int(nearest_shot(shots, target)[0]) == 1
    assert int(nearest_shot(shots, torch.from_numpy(points * 1.2 - 10)[None])[0]) == 0
    images = images_to_tensor(np.zeros((2, SIZE, SIZE, 3), np.uint8))[None]
    assert warp_shots(images, shots, target).shape == (1, 3, SIZE, SIZE)


def test_warp_region_warps_the_photo_at_its_own_resolution(crop):
    """The photo warped inside its crop box with the crop's spline equals, downscaled to the crop, the crop warped
    directly (the same motion at two resolutions), and is sharper than the crop enlarged."""
    import cv2

    from fsth.landmarks import CropPolicy, make_detector

    photo = read_image(PORTRAIT)
    image, points = crop
    box = CropPolicy().box(make_detector("dlib").detect(photo)[0])
    target = closed_eyes(points)  # the eyes shut (the eyelid layer), the brows up (the support points above them)
    target[17:27, 1] -= 8
    target[48:68, 1] += 6  # the mouth moves down
    src, dst = torch.from_numpy(points)[None], torch.from_numpy(target)[None]
    x0, y0, x1, y1 = (int(round(v)) for v in box)
    h, w = photo.shape[:2]
    region = (max(x0, 0), max(y0, 0), min(x1, w), min(y1, h))
    big = tensor_to_images(warp_region(images_to_tensor(photo[None]), box, src, dst, SIZE, region))[0]
    assert big.shape == (region[3] - region[1], region[2] - region[0], 3)
    small = tensor_to_images(warp(images_to_tensor(image[None]), src, dst))[0]
    # compare over the part of the box inside the photo, at crop resolution
    side = box[2] - box[0]
    cx0, cy0 = [int(np.ceil((r - b) * SIZE / side)) for r, b in zip(region[:2], box[:2])]
    cx1, cy1 = [int(np.floor((r - b) * SIZE / side)) for r, b in zip(region[2:], box[:2])]
    down = cv2.resize(
        big,
        (SIZE * big.shape[1] // int(round(side)), SIZE * big.shape[0] // int(round(side))),
        interpolation=cv2.INTER_AREA,
    )
    n = min(down.shape[0], cy1 - cy0) - 8, min(down.shape[1], cx1 - cx0) - 8
    diff = np.abs(
        down[4 : 4 + n[0], 4 : 4 + n[1]].astype(float)
        - small[cy0 + 4 : cy0 + 4 + n[0], cx0 + 4 : cx0 + 4 + n[1]].astype(float)
    )
    assert diff.mean() < 6.0  # grey levels: resampling differences only
    eyes = diff[int(points[37, 1]) - cy0 - 10 - 4 : int(points[41, 1]) - cy0 + 6 - 4, int(points[36, 0]) - cx0 - 4 :]
    assert eyes[:, : int(points[45, 0] - points[36, 0])].mean() < 8.0  # the eyes shut alike in both


def test_the_warp_is_float32_under_bf16_autocast(crop):
    """Training runs under bf16 autocast; in bf16 the spline's sums cancel (a mean 20 px error was measured on real
    episodes), so the warp must leave autocast and give the same image as without it."""
    image, points = crop
    x = images_to_tensor(image[None])
    p = torch.from_numpy(points)[None]
    t = p + torch.tensor([3.0, -2.0])
    plain = warp(x, p, t)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = warp(x, p, t)
    assert under.dtype == torch.float32 and torch.equal(under, plain)


def test_the_cached_anchor_kernel_changes_nothing(crop):
    """warp_grid reuses the lattice's kernel with the border anchors across frames: the same grid, to 0.05 px, as
    the spline evaluated in full (the uncached path, which warp_region takes)."""
    from fsth.models.warp import solve_tps, spline_grid, to_unit

    _, points = crop
    target = points.copy()
    target[48:68, 1] += np.linspace(0, 10, 20, dtype=np.float32)  # the mouth opens
    src, dst = torch.from_numpy(points)[None], torch.from_numpy(target)[None]
    ctrl, coef = solve_tps(to_unit(dst, SIZE), to_unit(src, SIZE))
    axis = torch.linspace(-1 + 1 / SIZE, 1 - 1 / SIZE, SIZE // 4 + 1)
    full = spline_grid(ctrl, coef, axis, axis, SIZE, SIZE)
    assert (warp_grid(dst, src, SIZE) - full).abs().max() * SIZE / 2 < 0.05


def test_a_grid_first_made_in_inference_mode_still_carries_gradients(crop):
    """The cached lattice is made once: made first under inference_mode (as animate runs), it must still serve
    a later warp that needs gradients (as training does)."""
    from fsth.models.warp import lattice

    image, points = crop
    lattice.cache_clear()
    with torch.inference_mode():
        warp_grid(torch.from_numpy(points)[None], torch.from_numpy(points)[None], SIZE)
    src = torch.from_numpy(points)[None].requires_grad_(True)
    warp(images_to_tensor(image[None]), src, src.detach() + 2.0).mean().backward()
    assert src.grad is not None and src.grad.abs().sum() > 0


# -- the face's parts: brows and eyelids ------------------------------------------------------------------


def source_pixels(grid):
    """The source pixel (x, y) each output pixel reads, (S, S, 2), from a grid (S, S, 2) in [-1, 1]."""
    return (grid.numpy() + 1) * SIZE / 2 - 0.5


def closed_eyes(points, amount=1.0):
    """Both eyes closed by ``amount`` of their lid gap: the upper lid comes 80% of the way down, the lower lid 20% up
    (as retargeting moves them)."""
    out = points.copy()
    for upper, lower in ((37, 41), (38, 40), (43, 47), (44, 46)):
        gap = points[lower] - points[upper]
        out[upper] += 0.8 * amount * gap
        out[lower] -= 0.2 * amount * gap
    return out


def inside(polygon, xy):
    """Which points xy (..., 2) lie inside the closed polygon (n, 2) (even-odd rule)."""
    x, y = xy[..., 0], xy[..., 1]
    hit = np.zeros(x.shape, bool)
    for (x0, y0), (x1, y1) in zip(polygon, np.roll(polygon, -1, axis=0)):
        crosses = (y0 > y) != (y1 > y)
        at = x0 + (y - y0) * (x1 - x0) / np.where(y1 == y0, 1e-9, y1 - y0)
        hit ^= crosses & (x < at)
    return hit


def test_a_raised_brow_moves_the_brow_and_not_the_top_of_the_forehead(crop):
    image, points = crop
    eye_distance = np.linalg.norm(points[45] - points[36])
    target = points.copy()
    target[17:27, 1] -= 0.12 * eye_distance  # both brows up (9 px here)
    read = source_pixels(warp_grid(torch.from_numpy(target)[None], torch.from_numpy(points)[None], SIZE)[0])
    ident = source_pixels(warp_grid(torch.from_numpy(points)[None], torch.from_numpy(points)[None], SIZE)[0])
    for i in range(17, 27):  # where the raised brow is drawn, the source's brow is read
        x, y = np.round(target[i]).astype(int)
        assert np.abs(read[y, x] - points[i] - (np.round(target[i]) - target[i])).max() < 1.5, i
    centre = (points[36] + points[45]) / 2
    forehead = int(centre[1] - 1.2 * eye_distance)  # the top of the forehead, at the hairline
    moved = np.linalg.norm(read - ident, axis=-1)
    assert moved[: forehead + 1].max() < 1.0  # stays put (0.9 px; without the support points above the brows: 7.8)
    assert moved[int(centre[1] - 0.45 * eye_distance), int(centre[0])] > 3  # the forehead just above moves up
    corners = np.r_[moved[:40, :40].ravel(), moved[:40, -40:].ravel(), moved[-40:, :40].ravel()]
    assert corners.max() < 1.0  # the background stays put (0.8 px at most, in the top corners)


def test_a_closed_eye_shows_lid_skin_and_no_squeezed_eyeball(crop):
    """The target's eyes are shut: no output pixel reads the source's eye opening (the spline alone squeezed the
    whole eyeball into the slit, iris and all); the lid's edge, its lashes, lands on the target's."""
    image, points = crop
    target = closed_eyes(points)
    read = source_pixels(warp_grid(torch.from_numpy(target)[None], torch.from_numpy(points)[None], SIZE)[0])
    for eye in (slice(36, 42), slice(42, 48)):
        polygon = points[eye]
        centre = polygon.mean(0)
        opening = centre + (polygon - centre) * 0.8  # the source's eye opening, inside its lid edges
        assert not inside(opening, read).any()


def test_a_half_closed_eye_shows_the_eyeball_unsqueezed(crop):
    """The upper lid halfway down: between the lids the eyeball is read at its own scale (the lid covers its top),
    not squeezed into the smaller opening."""
    _, points = crop
    points = points * 2 + 0.5  # the same face at 512, so that the opening spans several rows
    target = closed_eyes(points, 0.5)
    read = (warp_grid(torch.from_numpy(target)[None], torch.from_numpy(points)[None], 512)[0].numpy() + 1) * 256 - 0.5
    for eye in ([37, 38, 40, 41], [43, 44, 46, 47]):
        x = int(round(target[eye, 0].mean()))
        top, bottom = target[eye[:2], 1].mean(), target[eye[2:], 1].mean()
        rows = np.arange(int(np.ceil(top)) + 1, int(np.floor(bottom)))
        assert len(rows) >= 3
        slope = np.diff(read[rows, x, 1]).mean()  # source rows per target row
        assert 0.9 < slope < 1.1  # (the spline alone: squeezed, and the lid barely lowered)


def test_a_shut_lid_covers_the_lower_lids_rim(crop):
    """A shut eye's upper lid comes down past the lower lid's line (``LID_COVER``): just below that line, at the eye's
    middle, the output reads the lid skin above the source's upper lid, not the lower lid's rim and the strip of
    eyeball above it, which the face mesh read as an open slit. A half-closed eye's lid stops at its line."""
    _, points = crop
    points = points * 2 + 0.5  # at 512, so that the cover spans several rows
    for amount, covered in ((1.0, True), (0.5, False)):
        target = closed_eyes(points, amount)
        read = (warp_grid(torch.from_numpy(target)[None], torch.from_numpy(points)[None], 512)[0].numpy() + 1) * 256
        read -= 0.5
        for upper, lower, corners in (([37, 38], [40, 41], [36, 39]), ([43, 44], [46, 47], [42, 45])):
            x = int(round(target[upper + lower, 0].mean()))
            half_width = np.linalg.norm(points[corners[1]] - points[corners[0]]) / 2
            below = int(np.ceil(target[lower, 1].mean() + 0.15 * half_width))  # under the lower lid's line
            source_lid = points[upper, 1].mean()
            assert (read[below, x, 1] < source_lid) == covered, (amount, read[below, x, 1], source_lid)


@pytest.fixture(scope="module")
def closed_mouth():
    """A face crop whose mouth is closed (tests/assets/blink.jpg) and its landmarks."""
    from fsth.landmarks import CropPolicy, make_detector
    from fsth.landmarks.pair import face_pair

    image = read_image(Path(__file__).parent / "assets" / "blink.jpg")
    pair = face_pair(image, make_detector("dlib").detect(image)[0], SIZE, CropPolicy())
    return pair.crop, pair.points


def _opened(points: np.ndarray, by: float) -> np.ndarray:
    """Landmarks with the jaw dropped ``by`` px: the lower lip (inner and outer) and the chin move down."""
    target = points.copy()
    target[[55, 56, 57, 58, 59, 65, 66, 67], 1] += by
    target[6:11, 1] += by * 0.7
    return target


def _hole(source: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    from fsth.models.warp import mouth_hole, to_unit

    src, dst = torch.from_numpy(source)[None], torch.from_numpy(target)[None]
    pixels = torch.linspace(-1 + 1 / SIZE, 1 - 1 / SIZE, SIZE)  # the pixel centres in [-1, 1]
    hole = mouth_hole(warp_grid(dst, src, SIZE), to_unit(dst, SIZE), to_unit(src, SIZE), pixels, pixels)
    return None if hole is None else hole[0, 0].numpy()


def test_an_opening_the_photo_does_not_have_is_a_dark_hole_not_stretched_lip(closed_mouth):
    """A closed mouth (blink.jpg) warped to a jaw dropped 14 px: between the target's inner lips the warp shows the
    hole's dark colour (the spline alone stretched the lips' seam over it, lip-coloured), and nowhere else."""
    from fsth.models.warp import HOLE_COLOUR

    image, points = closed_mouth
    assert np.linalg.norm(points[66] - points[62]) < 3  # a closed mouth
    target = _opened(points, 14.0)
    src, dst = torch.from_numpy(points)[None], torch.from_numpy(target)[None]
    out = tensor_to_images(warp(images_to_tensor(image[None]), src, dst))[0].astype(float)
    dark = (np.array(HOLE_COLOUR) + 1) * 127.5
    x, y = np.round((target[62] + target[66]) / 2).astype(int)
    assert np.abs(out[y - 3 : y + 4, x - 6 : x + 7] - dark).max() < 3  # the opening's middle: the hole
    lx, ly = np.round((target[66] + target[57]) / 2).astype(int)
    assert np.abs(out[ly, lx] - dark).max() > 60  # the lower lip below it is lip
    hole = _hole(points, target)
    width = np.linalg.norm(target[64] - target[60])
    assert hole[y, x] == 1.0 and hole.sum() > 0.5 * 14 * width  # most of the opening
    assert hole[: int(target[51, 1])].max() == 0 and hole[int(target[57, 1]) + 1 :].max() == 0  # only between the lips


def test_no_hole_where_the_mouth_opens_no_further_than_the_photos(crop, closed_mouth):
    """Same landmarks, a moved head (a similarity) or a mouth that closes: no hole. A photo that shows its own open
    mouth (portrait.jpg, 29 px apart) moved elsewhere, closing, or opened up to 10 px further: its teeth and dark
    mouth are warped as they are (no hole); opened 20 px further, the stretched middle is a hole."""
    _, points = closed_mouth
    centre = points.mean(0)
    moved = ((points - centre) * 1.1 + centre + np.float32([6, -4])).astype(np.float32)
    for target in (points, moved):
        hole = _hole(points, target)
        assert hole is None or hole.sum() == 0
    _, open_points = crop
    assert np.linalg.norm(open_points[66] - open_points[62]) > 20  # portrait.jpg's mouth is open
    width = np.linalg.norm(open_points[64] - open_points[60])
    closing = open_points.copy()
    closing[[65, 66, 67], 1] -= 10
    for target in (open_points + np.float32([3, 2]), closing, _opened(open_points, 4.0), _opened(open_points, 10.0)):
        hole = _hole(open_points, target)
        assert hole is None or hole.sum() < 0.1 * width * 4  # a sliver at most
    # opened 1.7 times its own opening, the teeth would be stretched: the middle of it is a hole
    assert _hole(open_points, _opened(open_points, 20.0)).sum() > 2 * width
