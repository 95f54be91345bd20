"""Drawn upper lids: the layer that draws a closing or closed eye where the target's eye closes (``EyeLids``).

Stage: animate, inside the compositor (``fsth.animate.compose``), on top of the warped (and corrected) face, like
the mouth interior (``fsth.animate.mouth``). In: each frame's target landmarks (68, 2) in the source crop's pixels
and the face the layer goes over; the person's first shot (its crop and landmarks), once. Out: ``Layer``, a lid
image and a feathered alpha (crop-sized box around the eyes), or None where both eyes are open enough to be left to
the warp.

Why a layer: a warp only moves the photo's pixels, and an open eye in a photo has no hidden lid skin to show. The
warp's eyelid layer (``fsth.models.warp``) slides the upper lid down over the eyeball, stretching it about twice:
on made-up or deep-set lids the stretched eyeliner or lid shadow is a dark band that reads as an open slit (the
face mesh read 0.12-0.19 eye widths on fully shut targets, where real shut eyes read 0.02-0.09). Here the lid is
drawn instead, from the person's own colours:

* the lid: from a margin above the photo's upper lid (its lashes and eyeliner, carried onto the target's eye
  corners) down to the lash line, the skin of the face around the shut lids filled in over them (``fill_in``, a
  membrane through the pixels around: the socket's own light, no edge where the lid meets the face; a flat lid of
  the person's lid colour, mixed with the face's at its edges, was a light band over Beckham's shadowed sockets,
  like goggles), a little darker towards the lash line, as a lid's curve is. Without the face
  (``layer(target)``), the person's own upper-lid colour (``lid_colours``: the band just above the lashes, without
  the dark lash / liner / crease / brow pixels);
* the lash line: a stroke in the colour of the person's own lashes (the darkest pixels along the photo's upper
  lid) over ``LASH_OPACITY`` of the skin (a real shut eye's lashes are a soft line at this size, not black),
  thinning towards the inner corner. On a closing eye it is the target's upper lid, and the warp's eyeball
  shows below it; as the eye shuts (``SHUT``) it comes down to where the lids meet, curving down (``LASH_SAG``),
  with a fringe of lashes below and the lower lid's rim covered by the person's lower-lid skin.

The filled-in skin is smooth, and with ``--paste-back`` the layer is enlarged from the crop to the photo: on a large
photo the lids were flat patches beside the skin's pores and lines. ``skin_detail`` gives them the fine detail of
the skin below the eyes (the same pixels moved up by the cover's height, in the output's own resolution, softly
limited so that an edge's step is not taken for skin).

Each eye's alpha rises with its closure (``FADE``: 1 - the target's opening over the photo's, the warp's
measure): nothing while the eye is open enough, all from about half closed; the shapes follow the landmarks
continuously and, as an eye closes, no pixel's alpha falls, so the lids do not flicker. Two eyes closed alike are
drawn at their mean closure (``TOGETHER``), a wink each at its own. Open eyes are left pixel for pixel as the warp
made them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fsth.animate.layers import Layer
from fsth.landmarks.parts import LEFT_EYE, RIGHT_EYE
from fsth.landmarks.retarget import pull_together, smoothstep
from fsth.models.warp import LID_COVER

# The layer's alpha rises from 0 to 1 as an eye's closure (1 - its opening over the photo's) goes over this range.
# Retargeting leaves a driver's full blink at 0.7-1 (the face mesh reads 0.02-0.09 eye widths on shut eyes, a blink
# counts from ``EYE_BLINK`` of the eye's open level) and a half blink at about 0.5.
FADE = (0.3, 0.55)
# As the closure goes over this range, the drawn lid goes from one whose edge is the target's upper lid (over the
# warp's eyeball) to a shut eye (its lash line curving down, the lower lid's rim covered).
SHUT = (0.4, 0.75)
# The two eyes are drawn at their mean closure where their closures differ by up to the first of these, each at its
# own from the second (a wink), smoothly between. The bands above are steep: a driver's narrowed eyes, retargeted to
# closures of 0.46 and 0.53 (lia_vox_driving2's frame 138), were drawn as an open eye beside a shut one.
TOGETHER = (0.15, 0.35)
# In half eye widths, the eye's frame (corners at u = -1, +1, v down the face):
COVER_ABOVE = 0.6  # the lid covers this much above the photo's upper lid (its lashes, its eyeliner)
COVER_BELOW = 0.25  # and this much below the lower lid (its rim and waterline, the photo's or the target's) and
# the lashes that the warp's eyelid layer pulls down past it (``LID_COVER``); at 0.1 the pulled lashes' tips were
# left at the cover's edge, and the lid's skin, filled in from the pixels around, took their dark: a grey patch with
# a dark lower edge
COVER_SIDES = 0.7  # and this much beyond each corner, narrowing to a rounded end (the inner corner's caruncle, a
# winged liner: with 0.12, Audrey Hepburn's wings were left, and the face mesh read her shut eyes open)
FEATHER = 0.2  # the lid's edge fades over this distance
SKIN_BAND = (0.25, 0.7)  # the upper-lid skin sampled this far above the photo's upper lid
LOWER_BAND = (0.3, 0.6)  # the lower-lid skin this far below its lower lid
LASH_RISE = 0.05  # the lash line sits this much above the target's lower lid
LASH_SAG = 0.1  # and at least this far below the corners at its middle: a shut eye's lash line curves down
LASH_WIDTH = 0.12  # the lash line's thickness at the eye's outer part (at least a pixel)
RELAX_STEPS = 60  # of the lid's filled-in skin towards the membrane (``fill_in``)
LASH_OPACITY = 0.6  # the lashes' colour covers this much of the skin at the line (at 1 a drawn black stroke)
LASH_FRINGE = 0.12  # below it, the lashes' fringe fades out over this distance
LID_SHADE = 0.82  # the lid's brightness at the lash line, relative to its skin higher up
SKIN_DETAIL = 0.7  # crop pixels: the lid's skin takes the skin's detail finer than this (``skin_detail``)
SKIN_DETAIL_LIMIT = 10.0  # grey levels: the detail taken is softly limited to this (an edge's step is not skin)
SHADE_FROM = 0.6  # darkening from this share of the way from the lid's edge to the lash line (a lid's curve
# turning away from the light); from the edge, the whole lid was a grey patch on pale skin (Audrey Hepburn)


@dataclass
class _Eye:
    """One eye's frame and lids: centre c, half the corner-to-corner vector x, its normal y (down the face), and
    the lids as parabolas v = a (1 - u^2): upper a (negative: above the corner line), lower a."""

    c: np.ndarray
    x: np.ndarray
    y: np.ndarray
    upper: float
    lower: float

    @classmethod
    def of(cls, eye: np.ndarray) -> "_Eye":
        """From an eye's six landmarks (corner, upper lid 2, corner, lower lid 2)."""
        eye = np.asarray(eye, np.float64)
        c, x = (eye[3] + eye[0]) / 2, (eye[3] - eye[0]) / 2
        y = np.array([-x[1], x[0]])
        u, v = _uv(eye, c, x, y)
        a = v / np.maximum(1 - u * u, 0.2)
        return cls(c, x, y, float(a[1:3].mean()), float(a[4:6].mean()))

    @property
    def half_width(self) -> float:
        return float(np.linalg.norm(self.x))

    @property
    def opening(self) -> float:
        return max(self.lower - self.upper, 0.0)

    def points(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Pixels (..., 2) at eye coordinates (u, v)."""
        return self.c + u[..., None] * self.x + v[..., None] * self.y


def _uv(points: np.ndarray, c: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.asarray(points, np.float64) - c
    n = max(float(x @ x), 1e-12)
    return d @ x / n, d @ y / n


def closure(target: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Each eye's closure (2,) (right, left) of landmarks ``target`` against ``source`` (68, 2): 1 - the target's
    lid opening over the source's, both in half eye widths (the lids as parabolas through the corners, as the
    warp's eyelid layer measures them); 0 open as in the photo (or wider), 1 shut."""
    out = []
    for part in (RIGHT_EYE, LEFT_EYE):
        t, s = _Eye.of(target[part]), _Eye.of(source[part])
        out.append(1.0 - t.opening / max(s.opening, 1e-6))
    return np.clip(np.array(out), 0.0, 1.0)


def fade(closed: np.ndarray) -> np.ndarray:
    """The layer's alpha for closures ``closed``: a smoothstep over ``FADE``."""
    return smoothstep(np.asarray(closed, np.float64), *FADE)


@dataclass
class LidColours:
    """One eye's colours in the photo, (n, 3) float RGB at n positions from corner to corner (``lid_colours``)."""

    upper: np.ndarray  # the upper lid's skin
    lower: np.ndarray  # the lower lid's skin
    lashes: np.ndarray  # (3,): the lashes'


def lid_colours(crop: np.ndarray, eye: _Eye, n: int = 4) -> LidColours:
    """The person's lid skin along the eye, and its lashes' colour, from the photo's ``crop`` (S, S, 3) and that
    eye's frame: the upper lid's in the band ``SKIN_BAND`` above the upper lid, the lower lid's in the band
    ``LOWER_BAND`` below the lower lid, the upper one's brightest 40% (no lashes, liner, shadow in a crease, brow
    hairs), the lower one's brightest 80% (no lower lashes, and not the highlights of the cheek);
    the lashes' the darkest tenth of the pixels along the upper lid."""
    size = crop.shape[0]
    img = crop.astype(np.float64)
    lum = img @ np.array([0.299, 0.587, 0.114])

    def sample(u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = np.clip(np.round(eye.points(u, v)).astype(int), 0, size - 1)
        return img[p[..., 1], p[..., 0]], lum[p[..., 1], p[..., 0]]

    def band(lid: float, near: float, far: float, share: float) -> np.ndarray:
        out = []
        edges = np.linspace(-0.85, 0.85, n + 1)
        for u0, u1 in zip(edges[:-1], edges[1:]):
            u, t = np.meshgrid(np.linspace(u0, u1, 6), np.linspace(near, far, 8))
            rgb, y = sample(u, lid * (1 - u * u) + t)
            out.append(rgb[y >= np.quantile(y, 1 - share)].mean(0))
        return np.array(out)

    u, t = np.meshgrid(np.linspace(-0.9, 0.9, 24), np.linspace(-0.15, 0.1, 6))
    rgb, y = sample(u, eye.upper * (1 - u * u) + t)
    return LidColours(
        band(eye.upper, -SKIN_BAND[0], -SKIN_BAND[1], 0.4),
        band(eye.lower, LOWER_BAND[0], LOWER_BAND[1], 0.8),
        rgb[y <= np.quantile(y, 0.1)].mean(0),
    )


class EyeLids:
    """The shut-lid layer of one person: their first shot's ``crop`` (S, S, 3) uint8 and landmarks ``points``
    (68, 2), sampled once (``lid_colours``); ``layer(target)`` per frame.

    ``mesh`` (478, 2): the shot's face mesh, where ``points`` are another detector's (dlib's, read by ``mesh+dlib``;
    ``fsth animate`` gives every model the mesh's own since 2026-12-08): the lids are drawn between the mesh's eye
    corners, carried onto each target eye by its own frame. dlib's corners sit inside a squinting eye's (Beckham's
    photo), and the real corners showed beyond a short lash line, the outline of an open eye. The closure is still
    measured on ``points``, as the target was made from them."""

    def __init__(self, crop: np.ndarray, points: np.ndarray, mesh: np.ndarray | None = None):
        self.size = crop.shape[0]
        self.source = np.asarray(points, np.float64)
        eyes = [_Eye.of(self.source[part]) for part in (RIGHT_EYE, LEFT_EYE)]
        self.corners = None  # per eye, the outline's corners (2, 2) in (u, v) of the points' eye frame
        if mesh is not None:
            from fsth.landmarks.mesh import mesh_to_68

            outline = mesh_to_68(np.asarray(mesh, np.float64))
            self.corners = [
                np.stack(_uv(outline[part][[0, 3]], eye.c, eye.x, eye.y), -1)
                for part, eye in zip((RIGHT_EYE, LEFT_EYE), eyes)
            ]
        self.eyes = [self._eye(self.source[part], k) for k, part in enumerate((RIGHT_EYE, LEFT_EYE))]
        self.colours = [lid_colours(crop, eye) for eye in self.eyes]

    def _eye(self, eye: np.ndarray, k: int) -> _Eye:
        """Eye ``k``'s frame and lids from its six landmarks, between the outline's corners where there is one."""
        if self.corners is None:
            return _Eye.of(eye)
        frame = _Eye.of(eye)
        eye = np.array(eye, np.float64, copy=True)
        eye[[0, 3]] = frame.points(self.corners[k][:, 0], self.corners[k][:, 1])
        return _Eye.of(eye)

    def layer(self, target: np.ndarray, face: np.ndarray | None = None) -> Layer | None:
        """The shut lids over the target's eyes (landmarks (68, 2) in crop pixels), None where both are open
        enough (alpha 0: the face is left as it is). Given the ``face`` (S, S, 3) uint8 that the layer goes over,
        the lids' skin is the face's around the shut lids, filled in over them (``fill_in``): the socket's light."""
        target = np.asarray(target, np.float64)
        closed = closure(target, self.source)
        closed = pull_together(closed, TOGETHER)
        alphas, shut = fade(closed), smoothstep(closed, *SHUT)
        eyes = [(k, self._eye(target[part], k)) for k, part in enumerate((RIGHT_EYE, LEFT_EYE)) if alphas[k] > 0]
        if not eyes:
            return None
        # the box around the eyes drawn, their reach in all directions
        reach = []
        for _, eye in eyes:
            r = (1 + COVER_SIDES + 2 * FEATHER) * eye.half_width
            reach.append(np.stack([eye.c - r, eye.c + r]))
        reach = np.concatenate(reach)
        x0, y0 = np.clip(np.floor(reach.min(0)).astype(int), 0, self.size)
        x1, y1 = np.clip(np.ceil(reach.max(0)).astype(int) + 1, 0, self.size)
        if x1 <= x0 or y1 <= y0:
            return None
        gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        pixels = np.stack([gx, gy], -1)
        image = np.zeros((y1 - y0, x1 - x0, 3), np.float64)
        alpha = np.zeros((y1 - y0, x1 - x0), np.float64)
        inner = [1.0, -1.0]  # the inner corner's u, right eye and left
        covers = {k: _Cover.of(pixels, eye, self.eyes[k], float(shut[k]), inner[k]) for k, eye in eyes}
        skin = None
        if face is not None:  # the skin around the eyes, filled in over where the shut lids would be
            around = np.ones(alpha.shape, np.float64)
            for k, eye in eyes:  # the fully shut cover: the eye's own where it is shut
                shut_cover = covers[k] if shut[k] == 1.0 else _Cover.of(pixels, eye, self.eyes[k], 1.0, inner[k])
                around *= 1 - shut_cover.inside
            skin = fill_in(face[y0:y1, x0:x1].astype(np.float32), around.astype(np.float32))
        for k, _ in eyes:
            cover = covers[k]
            a = cover.inside * alphas[k]
            rgb = cover.paint(self.colours[k], skin)
            image = image * (1 - a[..., None]) + rgb * a[..., None]
            alpha = alpha + a * (1 - alpha)
        # ``image`` holds colour premultiplied by the alphas laid so far; un-premultiply
        image = image / np.maximum(alpha, 1e-6)[..., None]
        return Layer(np.clip(np.round(image), 0, 255).astype(np.uint8), alpha.astype(np.float32), (int(x0), int(y0)))

    def skin_detail(self, target: np.ndarray, under: np.ndarray, alpha: np.ndarray, to_crop) -> np.ndarray:
        """The fine detail (h, w, 3) float32, around 0, of the skin below the target's eyes, moved up over the
        lids: what the lid layer's filled-in skin (smooth: a membrane, and drawn at the crop's resolution) lacks.
        ``under`` (h, w, 3) uint8 is the image the layer goes over, in output pixels (the crop, or the photo with
        ``--paste-back``), ``alpha`` (h, w) the layer's alpha there (0: nothing is computed), ``to_crop`` (s, ox, oy)
        maps an output pixel p to the crop's q = s p + o. Each pixel takes, in its nearer eye's frame, the pixel the lid
        cover's height further down (the under-eye skin, moving with the face, as the lid does; mirrored across the
        cover's edge instead, its lines met in chevrons), less its Gaussian blur of ``SKIN_DETAIL`` crop pixels: the
        skin's pores and lines finer than that, softly limited to ``SKIN_DETAIL_LIMIT``."""
        import cv2

        out = np.zeros(under.shape, np.float32)
        ys, xs = np.nonzero(alpha > 0)
        if len(ys) == 0:
            return out
        s, ox, oy = (float(v) for v in to_crop)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        q = np.stack([gx * s + ox, gy * s + oy], -1)  # crop pixels
        target = np.asarray(target, np.float64)
        eyes = [self._eye(target[part], k) for k, part in enumerate((RIGHT_EYE, LEFT_EYE))]
        near = np.linalg.norm(q - eyes[0].c, axis=-1) <= np.linalg.norm(q - eyes[1].c, axis=-1)
        below = np.empty_like(q)
        for k, eye in enumerate(eyes):
            u, v = _uv(q, eye.c, eye.x, eye.y)
            edge = max(self.eyes[k].lower, eye.lower) + LID_COVER + COVER_BELOW  # the cover's lower edge, mid-eye
            here = near if k == 0 else ~near
            top = min(self.eyes[k].upper, eye.upper) - COVER_ABOVE  # the cover's upper edge, mid-eye
            below[here] = eye.points(u, v + (edge - top))[here]  # the cover's height further down
        src = (below - [ox, oy]) / s  # output pixels
        sigma = SKIN_DETAIL / s
        pad = int(np.ceil(3 * sigma)) + 2
        h, w = under.shape[:2]
        sx0, sy0 = np.clip(np.floor(src.reshape(-1, 2).min(0)).astype(int) - pad, 0, [w, h])
        sx1, sy1 = np.clip(np.ceil(src.reshape(-1, 2).max(0)).astype(int) + pad + 1, 0, [w, h])
        if sx1 - sx0 < 2 or sy1 - sy0 < 2:
            return out
        patch = under[sy0:sy1, sx0:sx1].astype(np.float32)
        detail = patch - cv2.GaussianBlur(patch, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
        mx, my = (src[..., 0] - sx0).astype(np.float32), (src[..., 1] - sy0).astype(np.float32)
        taken = cv2.remap(detail, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
        taken = SKIN_DETAIL_LIMIT * np.tanh(taken / SKIN_DETAIL_LIMIT)  # pores and fine lines, not an edge's step
        out[y0:y1, x0:x1] = taken * (alpha[y0:y1, x0:x1] > 0)[..., None]
        return out


def fill_in(image: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``image`` (h, w, 3) float32 where ``known`` (h, w) in [0, 1] is 1, and elsewhere a smooth fill from the known
    pixels around: push-pull over an image pyramid (each level averages the known pixels of the one below, and the
    unknown ones take the coarser level's colour), then ``RELAX_STEPS`` towards the membrane through the known
    pixels. A lid's skin in the light of the socket around it."""
    import cv2

    levels = []
    colour, weight = image * known[..., None], known.astype(np.float32)
    while max(weight.shape) > 2:
        levels.append((colour, weight))
        colour, weight = cv2.pyrDown(colour), cv2.pyrDown(weight)
    fill = colour / np.maximum(weight, 1e-6)[..., None]
    if (weight <= 1e-6).all():  # nothing known: the image's mean
        fill[:] = image.reshape(-1, 3).mean(0)
    for colour, weight in reversed(levels):
        up = cv2.pyrUp(fill, dstsize=(weight.shape[1], weight.shape[0]))
        fill = colour + (1 - np.clip(weight, 0, 1))[..., None] * up
    # relaxed towards the membrane through the known pixels (each unknown pixel the mean of its four neighbours):
    # push-pull alone left the fill's middle at the coarse levels' average, an edge a few pixels inside the known
    # ring (a light lid framed by a dark socket)
    fixed = (known >= 0.99)[..., None]
    cross = np.array([[0, 0.25, 0], [0.25, 0, 0.25], [0, 0.25, 0]], np.float32)
    for _ in range(RELAX_STEPS):
        fill = np.where(fixed, image, cv2.filter2D(fill, -1, cross, borderType=cv2.BORDER_REPLICATE))
    return fill


@dataclass
class _Cover:
    """One eye's drawn upper lid over pixels (h, w, 2): their eye coordinates (u, v), the cover's alpha ``inside``
    (h, w), and its lines in v: ``top``, the lash ``line``, ``bottom``, the lash line's ``width``; ``shut`` (0-1,
    ``SHUT``): from a lid whose edge is the target's upper lid, over the eyeball, to a shut eye; ``inner``: the inner
    corner's u (+1 on the right eye, whose landmarks start at the outer corner; -1 on the left)."""

    u: np.ndarray
    v: np.ndarray
    top: np.ndarray
    line: np.ndarray
    bottom: np.ndarray
    width: np.ndarray
    bump: np.ndarray
    px: float
    shut: float
    inside: np.ndarray

    @classmethod
    def of(cls, pixels, eye: _Eye, source: _Eye, shut: float, inner: float) -> "_Cover":
        u, v = _uv(pixels, eye.c, eye.x, eye.y)
        hw = eye.half_width
        px = 1.0 / hw  # a pixel, in half eye widths
        feather = max(FEATHER, px)
        bump = np.clip(1 - u * u, 0, None)
        # the lash line: the target's upper lid, or where the shut lids meet (curving down); the cover, from above
        # the photo's upper lid (carried onto the target's corners) to the line, and once shut, below it over the
        # lower lid's rim (and the lashes the warp pulls down there)
        width = max(LASH_WIDTH, px) * (1 - 0.5 * smoothstep(u * inner, 0.0, 1.0))  # thinner at the inner corner
        line = (eye.upper + shut * (max(eye.lower, LASH_SAG) - LASH_RISE - eye.upper)) * bump
        top = min(source.upper, eye.upper) * bump - COVER_ABOVE
        shut_bottom = (max(source.lower, eye.lower) + LID_COVER) * bump + COVER_BELOW
        bottom = line + width / 2 + shut * np.maximum(shut_bottom - line - width / 2, 0)
        bottom_feather = px + shut * (feather - px)  # over an eyeball, the lid's edge is sharp
        # beyond the corners the cover narrows to a rounded end on the line
        ends = np.sqrt(1 - np.clip((np.abs(u) - 1) / COVER_SIDES, 0, 1) ** 2)
        top, bottom = line - (line - top) * ends, line + (bottom - line) * ends
        inside = (
            smoothstep(v, top - feather, top)
            * (1 - smoothstep(v, bottom, bottom + bottom_feather))
            * (1 - smoothstep(np.abs(u), 1 + COVER_SIDES, 1 + COVER_SIDES + feather))
        )
        return cls(u, v, top, line, bottom, width, bump, px, shut, inside)

    def paint(self, colours: LidColours, skin: np.ndarray | None = None) -> np.ndarray:
        """The lid's colour (h, w, 3) over the cover: ``skin`` (h, w, 3), the face's skin filled in over the eye
        (``fill_in``), or without it the person's lid colours along the eye (``colours``), darker towards the lash
        line; the lashes a dark stroke along the line, and on a shut eye a fringe below it."""
        u, v, line, px = self.u, self.v, self.line, self.px
        positions = np.linspace(-0.85, 0.85, len(colours.upper))

        def along(values: np.ndarray) -> np.ndarray:
            return np.stack([np.interp(u, positions, values[:, i]) for i in range(3)], -1)

        above = np.clip((v - self.top) / np.maximum(line - self.top, px), 0, 1)
        upper, lower = (along(colours.upper), along(colours.lower)) if skin is None else (skin, skin)
        below = np.clip((self.bottom - v) / np.maximum(self.bottom - line, px), 0, 1)
        upper = upper * (1 - (1 - LID_SHADE) * smoothstep(above, SHADE_FROM, 1.0))[..., None]
        lower = lower * (1 - (1 - LID_SHADE) * smoothstep(below, SHADE_FROM, 1.0))[..., None]
        rgb = upper + (lower - upper) * smoothstep(v - line, -2 * px, 2 * px)[..., None]
        lash = 1 - smoothstep(np.abs(v - line), self.width / 2, self.width / 2 + px)
        fringe = 0.5 * self.shut * (1 - smoothstep(v - line, 0.0, LASH_FRINGE)) * (v >= line)
        lash = LASH_OPACITY * np.maximum(lash, fringe) * smoothstep(self.bump, 0.0, 0.15)
        return rgb * (1 - lash[..., None]) + colours.lashes * lash[..., None]
