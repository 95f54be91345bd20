"""The mouth interior: the layer that fills the opening between the target's inner lips (``MouthInterior``).

Stage: animate, inside the compositor (``fsth.animate.compose``), on top of the warped (and corrected) face. In:
each frame's target landmarks (68, 2) in the source crop's pixels, and, where the source of the interior needs them,
the driver's frame (H, W, 3) uint8 with its landmarks (68, 2) in its own pixels. Out: ``Layer``, an interior
image and a feathered alpha (crop-sized), which the compositor lays over the face (and, with ``--paste-back``, over
the photo at its own resolution).

Why a layer: on a closed-mouth photo the upper and lower inner-lip points lie on one line, and any smooth warp maps
the whole opening of the target back onto that line, so an opening mouth is filled with stretched lip. Here the
opening (the polygon of the target's inner lips) is a hole, filled from the best source at hand (``--mouth``):

* ``own``: the person's own shot whose mouth opening (in mouth widths) is nearest the frame's, its inner mouth
  mapped onto the hole (inner lips onto inner lips, ``_mapped_into``): with several photos or a video of the
  person, they keep their own teeth. A shot is kept until another is clearly nearer, so consecutive frames take the
  same one. Its upper and lower parts keep their size, parted where its teeth meet (``teeth_together``); the gap
  the jaw opens between them is the mouth's dark inside. A smile whose teeth are together (a common portrait) is a
  shut jaw: retargeting keeps its gap where the driver's mouth is closed (``rest``).
* ``driver``: the driver's own mouth interior in this frame, mapped the same way, its colours matched to the
  person's (Lab mean and spread of a ring of lip pixels, the driver's and the person's; teeth keep their hue and
  take the change of light of the cheeks, so they stay white and as bright against the face), after "Bringing
  Portraits to Life" (Averbuch-Elor et al., SIGGRAPH Asia 2017).
  Consecutive driver frames give consecutive interiors: no flicker of its own.
* ``generator``: no layer: the warp-guided generator's picture (or the warp) is kept as it is, the only choice
  when only landmarks exist (``fsth evaluate``'s self-reenactment, where the driver's pixels would be the answer).
* ``auto`` (default): ``own`` when a shot shows an open mouth, else ``driver`` when the driver's frames are at hand,
  else ``generator``; ``MouthInterior.describe`` says which (``fsth animate`` prints it on stderr). With ``auto``,
  a frame whose mouth opens much wider than the widest shot's (``OWN_STRETCH``) takes the driver's interior instead,
  cross-faded, the share moving at most ``OWN_STEP`` a frame, but for a shot whose teeth are together, whose own
  teeth and the gap between them serve any opening.

Both sources are read from the middle of their opening (``INSET``), but for teeth (``inset_profile``): the outline
a detector gives the inner lips is uncertain by a few pixels, and where it lies on the lip the lip's inner rim was
copied into the hole, where a face mesh read it as lip; teeth reach up to the lips and are kept. The driver's
interior is also shaded towards the hole's outline and over the lips' inner rim (``SHADE``, not its teeth nor the
rim where it meets them), as the lips shade a real mouth: a tongue or a lower lip's wet rim matched to the person's
lip colour otherwise reads as their lip, and the opening as smaller.

The alpha is opaque up to the target's inner-lip outline and feathered outside it, over the lips (``hole_alpha``),
and fades in with the opening (nothing below 5% of the mouth width, all from 10%), so a closed or barely parted
mouth stays the warp's lips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fsth.animate.layers import Layer
from fsth.errors import InputError
from fsth.landmarks.parts import INNER_LIPS, MOUTH, OUTER_LIPS
from fsth.landmarks.retarget import expression_features

MOUTH_SOURCES = ("auto", "own", "driver", "generator")

OPEN_SHOT = 0.10  # a shot whose inner-lip opening is at least this many mouth widths shows its mouth interior
FADE = (0.05, 0.10)  # the layer's alpha rises from 0 to 1 as the target's opening goes over this range (dlib reads
# a closed mouth as 0-0.05: a moustache, a lip seam)
KEEP_SHOT = 0.03  # switch to another shot only when its opening is this much nearer the frame's (mouth widths)
DRIVER_STATS_MOMENTUM = 0.9  # the driver's lip and skin colour statistics are smoothed over frames (exponential)
# The hole is filled from the middle of the source's opening: this share of it is left out at the top and at the
# bottom. On the four pairs of two held-out drivers x Beckham and Hepburn (``--model warp``), 0.2 raised the opening
# that a face mesh reads on the result from 0.39-0.64x the driver's to 0.47-0.73x.
INSET = 0.2
BAND_ROWS = 8  # rows of that band read for teeth (``inset_profile``), from the lip inwards
# The driver's interior darkens towards the hole's outline: by SHADE (a share of its Lab lightness) at the outline
# and over the lips' inner rim that the layer's feathered edge covers (a real mouth's lips are shaded there),
# nothing from SHADE_DEPTH of the opening inwards; teeth are left as they are. With INSET, Beckham's openings read
# 0.56 / 0.73 -> 0.70 / 0.88x the driver's and the lip-coloured share of his inner mouth 0.34 / 0.23 -> 0.17 / 0.20
# (shaded inside the hole only: 0.76x on the second).
SHADE, SHADE_DEPTH = 0.5, 0.3
# The shade rises from nothing to SHADE as the target's opening (mouth widths) goes over this range: on a barely
# parted mouth a dark rim read as an opening (the judge read 0.06 on the driver's closed frames, against 0.003;
# the layer itself starts at FADE[0]). Lowered from (0.08, 0.16): a slightly parted mouth (fsth's mesh reads
# 0.07-0.10 on 44 of lia_vox_driving2's open frames) showed as lips without a slit, read shut; in a full run of the
# 9 pairs the opening rose 0.01-0.08x the driver's in 12 of 18 pairs and modes (the rest unchanged), the lip share fell
# 0.00-0.03, mouth r moved by 0.01 at most.
SHADE_OPENING = (0.04, 0.10)
# With ``auto``, a frame whose opening is this many times the shot's (from the first to the second) fades from the
# person's own interior to the driver's.
OWN_STRETCH = (1.25, 1.6)
# ... and that hand-over moves at most this much from one frame to the next: a speaking mouth's opening crosses the
# range back and forth, and its teeth came and went from frame to frame (Audrey Hepburn's smile with teeth, driven by
# lia_vox_driving2 with ``--model warp``: the inside of the mouth changed 1.98x as much as the driver's from frame to
# frame, against 1.10x with the driver's interior alone).
OWN_STEP = 0.25


def mouth_opening(points: np.ndarray) -> np.ndarray:
    """Inner-lip opening in mouth widths of landmarks (..., 68, 2): retargeting's expression measures (the mean gap
    of the three inner-lip pairs, the outer corners' distance) over each other."""
    features = expression_features(points)
    return features[..., 0] / np.maximum(features[..., 1], 1e-6)


def polygon_mask(points: np.ndarray, size: int | tuple[int, int], feather: float) -> np.ndarray:
    """(h, w) float32 (``size``: an int for a square, or (w, h)): the filled polygon of ``points`` (N, 2),
    anti-aliased, feathered by a Gaussian of ``feather`` px."""
    import cv2

    w, h = (size, size) if isinstance(size, int) else size
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [np.round(np.asarray(points) * 16).astype(np.int32)], 255, cv2.LINE_AA, 4)
    if feather > 0:
        mask = cv2.GaussianBlur(mask, (0, 0), feather)
    return mask.astype(np.float32) / 255.0


UPPER_INNER = (60, 61, 62, 63, 64)  # the inner lips from corner to corner, over the upper lip and under the lower
LOWER_INNER = (60, 67, 66, 65, 64)


def _mouth_frame(points: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mouth's frame of landmarks (68, 2): origin at the inner corner 60, axes (2, 2) along the corners (to 64)
    and down the face, each as long as the corners' distance, and the (upper, lower) inner lips' (u, v) there
    (2, 5, 2): u from 0 at corner 60 to 1 at corner 64, v down the face."""
    origin = points[60].astype(np.float64)
    x = points[64] - origin
    x = x if np.hypot(*x) > 1e-3 else np.array([1e-3, 0.0])
    axes = np.stack([x, [-x[1], x[0]]])
    lips = np.stack([points[list(UPPER_INNER)], points[list(LOWER_INNER)]]) - origin
    return origin, axes, lips @ np.linalg.inv(axes)


def _lip_curve(uv: np.ndarray, u: np.ndarray) -> np.ndarray:
    """v of one inner lip (5, 2) (u, v) at ``u`` (...): piecewise linear, flat beyond the corners."""
    us = np.maximum.accumulate(uv[:, 0])  # a lip whose points fold back along the mouth: keep u increasing
    return np.interp(u, us, uv[:, 1])


def _mapped_into(
    image: np.ndarray, image_points: np.ndarray, target: np.ndarray, box, inset=INSET, split: float | None = None
):
    """The crop's pixels ``box`` (x0, y0, x1, y1) of ``image`` resampled so that its mouth lands on ``target``'s
    (a backward map): along the mouth, the inner corners onto the inner corners; across it, each column of the
    target's opening (between its inner lips) onto the same column of the image's, and beyond the inner lips the
    lips at the image's own scale. The image's inner-lip outline lands exactly on the target's, so its lips stay
    outside the hole, whatever the two mouths' shapes (an affine fit of all 20 mouth points put the driver's lips
    inside the hole where its lips are thicker or its mouth rounder than the target's, and a face mesh read them as
    the result's lips: a smaller opening). ``inset``: the image's opening is read from this share of it below its
    upper inner lip to as much above its lower one (``INSET``), or a callable of u (...) giving the (top, bottom)
    shares per column (``inset_profile``); beyond the target's inner lips the image's lips continue from its own
    inner lips, so its band that is left out appears nowhere.

    ``split`` (a share of the image's opening, from its top; ``teeth_together``): the image's opening is two parts
    that keep their size, the upper from the upper lip down to there, the lower from the lower lip up to there (the
    upper and lower teeth, which the jaw parts), not stretched with the opening. Where the target's opening is
    wider, a gap is left between them; where it is narrower, each loses its rows nearest the other (the jaw
    closes the cavity between them first). Returns
    (image, gap, depth): gap (h, w) float32, 1 in the gap (to fill with the mouth's cavity), feathered over a
    pixel; depth (h, w) float32, 0 at the gap's top to 1 at its bottom."""
    import cv2

    x0, y0, x1, y1 = box
    t_origin, t_axes, t_lips = _mouth_frame(np.asarray(target, np.float64))
    i_origin, i_axes, i_lips = _mouth_frame(np.asarray(image_points, np.float64))
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    u, v = np.moveaxis((np.stack([xs, ys], -1) - t_origin) @ np.linalg.inv(t_axes), -1, 0)
    upper_t, lower_t = _lip_curve(t_lips[0], u), _lip_curve(t_lips[1], u)
    upper_i, lower_i = _lip_curve(i_lips[0], u), _lip_curve(i_lips[1], u)
    lower_t = np.maximum(lower_t, upper_t)
    lower_i = np.maximum(lower_i, upper_i)
    top, bottom = inset(u) if callable(inset) else (inset, inset)
    top_i = upper_i + top * (lower_i - upper_i)
    bottom_i = lower_i - bottom * (lower_i - upper_i)
    gap = None
    if split is None:
        across = (v - upper_t) / np.maximum(lower_t - upper_t, 1e-6) * (bottom_i - top_i) + top_i
    else:  # two parts of their own size, the gap between them (or the lips over them)
        meet = top_i + split * (bottom_i - top_i)
        fits = np.clip((lower_t - upper_t) / np.maximum(bottom_i - top_i, 1e-6), 0.0, 1.0)
        upper_end = upper_t + fits * (meet - top_i)  # the upper part ends here in the target
        lower_start = lower_t - fits * (bottom_i - meet)  # the lower part starts here
        across = np.where(
            v <= upper_end, top_i + v - upper_t, np.where(v >= lower_start, bottom_i - (lower_t - v), meet)
        )
        width_px = float(np.hypot(*t_axes[0]))
        gap = np.clip(np.minimum(v - upper_end, lower_start - v) * width_px + 0.5, 0.0, 1.0).astype(np.float32)
        gap[(v < upper_t) | (v > lower_t)] = 0.0
        depth = np.clip((v - upper_end) / np.maximum(lower_start - upper_end, 1e-6), 0.0, 1.0).astype(np.float32)
    v_i = np.where(v < upper_t, upper_i + v - upper_t, np.where(v > lower_t, lower_i + v - lower_t, across))
    mapped = i_origin + np.stack([u, v_i], -1) @ i_axes
    out = cv2.remap(
        np.ascontiguousarray(image),
        mapped[..., 0].astype(np.float32),
        mapped[..., 1].astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    return out if gap is None else (out, gap, depth)


def inset_profile(image: np.ndarray, image_points: np.ndarray, lips_l: float, inset: float = INSET, columns: int = 16):
    """The (top, bottom) inset of ``_mapped_into`` along a source mouth, a callable of u (...): per column of the
    mouth, the depth into the source's opening (``image`` (H, W, 3) uint8, landmarks (68, 2); lips of mean Lab
    lightness ``lips_l``) at which teeth begin (``teeth_weight``, read on ``BAND_ROWS`` rows from each inner lip),
    at most ``inset``. The inset keeps the lips' inner rim out of the hole; teeth are not lip, and on a smile they
    reach up to the upper lip (read from the middle, a dark band lay between the upper lip and the teeth, and a face
    mesh read 0.38x the driver's share of teeth on Scarlett Johansson's photo)."""
    import cv2

    origin, axes, lips = _mouth_frame(np.asarray(image_points, np.float64))
    us = (np.arange(columns) + 0.5) / columns
    upper, lower = _lip_curve(lips[0], us), np.maximum(_lip_curve(lips[1], us), _lip_curve(lips[0], us))
    step = inset / BAND_ROWS
    depth = np.outer((np.arange(BAND_ROWS) + 0.5) * step, lower - upper)  # (rows, columns), from each lip
    v = np.concatenate([upper + depth, lower - depth])  # the upper lip's band, then the lower's
    xy = (origin + np.stack([np.broadcast_to(us, v.shape), v], -1) @ axes).astype(np.float32)
    bands = cv2.remap(
        np.ascontiguousarray(image), xy[..., 0], xy[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    no_teeth_yet = 1.0 - teeth_weight(to_lab(bands), lips_l)
    top, bottom = (step * np.cumprod(part, axis=0).sum(0) for part in np.split(no_teeth_yet, 2))
    return lambda u: (np.interp(u, us, top), np.interp(u, us, bottom))


# A shot's teeth are together (its jaw shut) where teeth (``teeth_weight``) fill the middle of its opening but for
# the lip in it: the outline a face mesh gives the inner lips of a smile lies on them by a few pixels, so lip fills
# 0.35-0.5 of the opening of grins whose teeth are plainly together (headgan_reference, dlib's 2008_001322), which
# read 0.41-0.45 teeth against the whole. Of the rest (teeth and the inside: a dark cavity, a grey shadowed gap),
# teeth's share: none at TEETH_FILL[0], all from [1]; grins read 0.87-1.0 there (Obama, Audrey Hepburn, Alex
# Lacamoire, sadtalker_happy1), blurred or shaded ones 0.61-0.66 (Lin-Manuel Miranda, tpsmm_source: in part),
# mouths open with their teeth apart 0.33-0.55 (liveportrait_d12, d38, Lei Jun). And teeth must be a fair share
# of the whole (TEETH_SHARE): a wide-open mouth shows a tongue, lip-coloured, under a row of upper teeth
# (liveportrait_d9: 0.27).
TEETH_FILL = (0.55, 0.85)
# Rows of teeth (over 0.7 of them teeth) parted by rows of none (0.5 or less: a dark gap, a tongue) are apart: from
# none at the first share of the opening to all at the second. A driver speaking wide open shows its upper and
# lower teeth with a narrow dark band between (retalking_face4's frames 84-96, 0.27-0.44 mouth widths: 4-8 of 24
# rows), which, a small share of the opening, left its teeth read together. A lower lip's highlight under the teeth
# (headgan_reference on dlib's points, whose inner-lip outline reaches over the lower lip) is not a row of teeth.
TEETH_APART = (0.08, 0.17)
TEETH_SHARE = (0.3, 0.4)
# The inside, neither teeth nor lip: darker than INSIDE_DARK of the lips' Lab lightness (fully from 0.15 of it
# darker still), or of less than INSIDE_GREY of their chroma (fully below the first); lips under INSIDE_GREY_LIPS
# chroma (a black-and-white photo) tell by their lightness alone.
INSIDE_DARK = 0.75
INSIDE_GREY = (0.4, 0.7)
INSIDE_GREY_LIPS = 10.0
MIDDLE = (0.3, 0.7)  # the middle of a mouth, along it (0: one inner corner, 1: the other)
TEETH_MEET = 0.65  # where teeth together meet: this share of the way down the rows that show teeth
# The Lab lightness of the mouth's inside, a share of its lips': at the top of the gap the jaw opens (with half their
# chroma), and at its bottom, where a tongue lies (in their hue).
CAVITY = (0.2, 0.45)


@dataclass(frozen=True)
class ShotMouth:
    """What a shot's mouth gives the layer and retargeting (``teeth_together``)."""

    rest: float  # its inner-lip gap (retargeting's measure, mouth widths) with the jaw shut: ``together`` of it
    together: float  # how surely its teeth are together (0-1, ``TEETH_FILL``): rest is this share of its gap
    split: float  # where its teeth meet (or its cavity is darkest): a share of its opening from the upper lip
    cavity: np.ndarray  # (2, 3) uint8 RGB: a mouth's inside at the top and the bottom, in this person's light and hue

    @property
    def shut_jaw(self) -> bool:
        """Whether its teeth are more surely together than not: its own teeth then serve any opening (no hand-over
        to the driver's interior)."""
        return self.together >= 0.5


def teeth_together(image: np.ndarray, points: np.ndarray) -> ShotMouth:
    """How a shot's mouth (``image`` (S, S, 3) uint8, landmarks ``points`` (68, 2)) is open: its teeth together
    (a smile showing them, the jaw shut: ``rest`` is then its gap, which a driver's closed mouth gives it), and
    where its opening parts when the jaw drops (``split``): where the teeth meet (``TEETH_MEET``), or an open
    mouth's darkest row below its first third."""
    import cv2

    from fsth.landmarks.retarget import expression_ratios

    stats = _lab_stats(image, lip_ring(points, image.shape[0]))
    lips = np.array([50.0, 0.0, 0.0]) if stats is None else stats[0]
    origin, axes, lip_uv = _mouth_frame(np.asarray(points, np.float64))
    us = np.linspace(*MIDDLE, 9)
    upper, lower = _lip_curve(lip_uv[0], us), np.maximum(_lip_curve(lip_uv[1], us), _lip_curve(lip_uv[0], us))
    shares = (np.arange(24) + 0.5) / 24
    v = upper + np.outer(shares, lower - upper)  # (rows, columns)
    xy = (origin + np.stack([np.broadcast_to(us, v.shape), v], -1) @ axes).astype(np.float32)
    lab = to_lab(
        cv2.remap(
            np.ascontiguousarray(image), xy[..., 0], xy[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    )
    weights = teeth_weight(lab, float(lips[0]))  # (rows, columns)
    teeth = float(weights.mean()) if float((lower - upper).mean()) > 0 else 0.0
    inside = float(inside_weight(lab, lips, weights).mean())
    together = _fade(teeth / max(teeth + inside, 1e-6), *TEETH_FILL) * _fade(teeth, *TEETH_SHARE)
    profile = weights.mean(1)
    rows = np.flatnonzero(profile > 0.5)  # the rows that are teeth
    strong = np.flatnonzero(profile > 0.7)
    if len(strong) > 1:  # rows of teeth with rows of no teeth between them are apart
        between = profile[strong[0] : strong[-1] + 1] <= 0.5
        together *= 1.0 - _fade(_longest_run(between) / len(shares), *TEETH_APART)
    rest = together * float(expression_ratios(points)[0])
    if together > 0 and len(rows):  # the upper teeth show more than the lower on a smile
        split = float(shares[rows[0]] + TEETH_MEET * (shares[rows[-1]] - shares[rows[0]]))
    else:  # an open mouth: its darkest row, below its first third
        below = shares >= 1 / 3
        split = float(shares[below][np.argmin(lab[..., 0].mean(1)[below])])
    cavity = np.array([[CAVITY[0] * lips[0], 0.5 * lips[1], 0.5 * lips[2]], [CAVITY[1] * lips[0], *lips[1:]]])
    rgb = np.clip(cv2.cvtColor(cavity[None].astype(np.float32), cv2.COLOR_LAB2RGB)[0] * 255.0 + 0.5, 0, 255)
    return ShotMouth(rest, together, split, rgb.astype(np.uint8))


def rest_mouth(crops: np.ndarray | None, points: np.ndarray | None) -> float:
    """A person's inner-lip gap (mouth widths) with the jaw shut, on the first of its shots (``crops`` (K, S, S, 3),
    ``points`` (K, 68, 2)): what retargeting gives it where the driver's mouth is closed (``teeth_together``'s
    ``rest``); 0 without shots."""
    return 0.0 if crops is None or points is None else teeth_together(crops[0], points[0]).rest


def _longest_run(mask: np.ndarray) -> int:
    """The length of the longest run of True in a 1-D bool array."""
    best = run = 0
    for m in mask:
        run = run + 1 if m else 0
        best = max(best, run)
    return best


FRAME_TEETH_SIDE = 128  # a driver's mouth is read on a square of at most this side (``frame_teeth``)


def frame_teeth(frame: np.ndarray, points: np.ndarray) -> float:
    """How surely the teeth of the mouth of landmarks ``points`` (68, 2) in a ``frame`` (H, W, 3) uint8 of any size
    are together (``teeth_together``'s ``together``), read on the square around the mouth, twice its width a side
    (repeating the frame's edge pixels where it runs off), scaled down to ``FRAME_TEETH_SIDE`` where larger."""
    P = np.asarray(points, np.float64)
    half = max(16, int(np.ceil(np.linalg.norm(P[54] - P[48]))))
    x0, y0 = np.round(P[MOUTH].mean(0)).astype(int) - half
    h, w = frame.shape[:2]
    crop = frame[max(y0, 0) : max(y0 + 2 * half, 0), max(x0, 0) : max(x0 + 2 * half, 0)]
    if crop.size == 0:
        return 0.0
    pad = ((max(-y0, 0), max(y0 + 2 * half - h, 0)), (max(-x0, 0), max(x0 + 2 * half - w, 0)), (0, 0))
    crop, P = np.pad(crop, pad, mode="edge"), P - [x0, y0]
    if half > FRAME_TEETH_SIDE // 2:  # a large face: read at FRAME_TEETH_SIDE pixels (its cost is per pixel)
        import cv2

        scale = FRAME_TEETH_SIDE / (2 * half)
        crop = cv2.resize(crop, (FRAME_TEETH_SIDE, FRAME_TEETH_SIDE), interpolation=cv2.INTER_LINEAR)
        P = (P + 0.5) * scale - 0.5
    return teeth_together(np.ascontiguousarray(crop), P).together


class DriverTeeth:
    """``track_video``'s ``on_frame`` that reads, as a driver is tracked, how surely each frame's teeth are together
    (``frame_teeth``, on the face mesh's lips where the track has a mesh): ``together(n)`` (n,), 0 where it has no
    face. Read on dlib's points (``mesh+dlib``), whose inner lips may lie on the teeth, 5 of a bearded speaker's
    frames (``lia_vox_driving2``, no teeth showing) read together; on the mesh's, none. Retargeting
    (``driver_together``) keeps the wider of a driver's and a source's grins instead of adding them: a source that
    smiles with its teeth together, driven by someone who speaks smiling, gaped by both grins (Obama's photo by
    dreamtalk's W009 "happy")."""

    def __init__(self):
        self.read: dict[int, float] = {}

    def __call__(self, video, index: int, points: np.ndarray | None, mesh, frame: np.ndarray) -> None:
        if points is not None:
            self.read[index] = self.of(frame, points, mesh)

    @staticmethod
    def of(frame: np.ndarray, points: np.ndarray, mesh: np.ndarray | None) -> float:
        """One frame's reading (``frame_teeth``) on the face mesh's lips where there is a mesh (478, 2), not the 68
        ``points`` (dlib's, with ``mesh+dlib``); the live driver reads its frames with it too."""
        if mesh is not None:
            from fsth.landmarks.mesh import mesh_to_68

            points = mesh_to_68(mesh)
        return frame_teeth(frame, points)

    @staticmethod
    def needed(rest: float, absolute: bool = False) -> bool:
        """Whether a driver's teeth are worth reading: only a source with a gap of its own at ``rest`` has a grin
        the driver's could be added to, and ``absolute`` (``--absolute``) does no retargeting."""
        return rest > 0 and not absolute

    def together(self, n: int) -> np.ndarray:
        out = np.zeros(n, np.float64)
        for i, t in self.read.items():
            out[i] = t
        return out


def hole_alpha(points: np.ndarray, box, feather: float) -> np.ndarray:
    """(h, w) float32 over ``box`` (x0, y0, x1, y1): the hole between the inner lips of ``points`` (68, 2), opaque
    up to the inner-lip outline (over 0.9 there) and feathered by a Gaussian of ``feather`` px outside it, over the
    lips. A feather centred on the outline left the hole's edge half transparent: on a 40 px wide mouth opened by
    6 px, a third of the opening showed the warped lips under it."""
    import cv2

    x0, y0, x1, y1 = box
    mask = (polygon_mask(points[INNER_LIPS] - [x0, y0], (x1 - x0, y1 - y0), 0) > 0.5).astype(np.uint8)
    grow = int(np.ceil(1.5 * feather))
    if grow > 0:
        mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1)))
    alpha = mask.astype(np.float32)
    return cv2.GaussianBlur(alpha, (0, 0), feather) if feather > 0 else alpha


def shaded(
    image: np.ndarray, teeth: np.ndarray, points: np.ndarray, box, strength: float = SHADE, rim: int = 0
) -> np.ndarray:
    """``image`` (h, w, 3) uint8 over ``box`` of the crop, darkened towards the outline of the hole of ``points``
    (68, 2) from ``SHADE_DEPTH`` of the opening inside it, and by ``strength`` of its Lab lightness at the outline and
    outside it (where the layer's feathered alpha lays it over the lips' inner rim), but where ``teeth`` (h, w) in
    [0, 1] (``teeth_weight``), and outside the hole within ``rim`` px of teeth: where teeth meet a lip, as upper
    teeth under the upper lip on a smile, there is no dark rim between them (a face mesh read the rim as cavity,
    and the teeth as a smaller share of the mouth)."""
    import cv2

    if strength <= 0:  # a barely parted mouth (SHADE_OPENING): nothing to shade
        return image
    x0, y0, x1, y1 = box
    hole = (polygon_mask(points[INNER_LIPS] - [x0, y0], (x1 - x0, y1 - y0), 0) > 0.5).astype(np.uint8)
    depth = cv2.distanceTransform(hole, cv2.DIST_L2, 3)  # px from the outline, 0 outside
    reach = max(2.0 * float(depth.max()) * SHADE_DEPTH, 1.0)  # the opening's height times SHADE_DEPTH
    if rim > 0:
        near = cv2.dilate(teeth.astype(np.float32), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * rim + 1,) * 2))
        teeth = np.where(hole > 0, teeth, near)
    dark = strength * np.clip(1.0 - depth / reach, 0.0, 1.0) * (1.0 - teeth)  # outside the hole: strength
    lab = to_lab(image)
    lab[..., 0] *= 1.0 - dark  # Lab lightness: on RGB the same factor darkened about half as much to the eye
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def mouth_box(points: np.ndarray, size: int, pad: int) -> tuple[int, int, int, int]:
    """The crop's pixels (x0, y0, x1, y1) around the mouth points of ``points`` (68, 2), ``pad`` more each side."""
    lo = np.floor(points[MOUTH].min(0)).astype(int) - pad
    hi = np.ceil(points[MOUTH].max(0)).astype(int) + pad + 1
    x0, y0 = np.clip(lo, 0, size - 1)
    x1, y1 = np.clip(hi, 1, size)
    return int(x0), int(y0), max(int(x1), int(x0) + 1), max(int(y1), int(y0) + 1)


def lip_ring(points: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """(h, w) bool (``size`` as ``polygon_mask``'s): the lips, between the outer (48-59) and inner (60-67) lip
    polygons of ``points``."""
    outer = polygon_mask(points[OUTER_LIPS], size, 0) > 0.5
    inner = polygon_mask(points[INNER_LIPS], size, 0) > 0.5
    return outer & ~inner


def to_lab(image: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)


def _lab_stats(image: np.ndarray, region: np.ndarray) -> np.ndarray | None:
    """(2, 3) Lab mean and standard deviation of ``image``'s pixels where ``region``; None if too few."""
    if region.sum() < 8:
        return None
    lab = to_lab(image[region][None])[0]  # only the region's pixels converted
    return np.stack([lab.mean(0), lab.std(0) + 1e-3])


# Teeth: from TEETH_BRIGHT[0] to [1] brighter than the lips (Lab L), and of chroma from TEETH_CHROMA[1] down to [0].
# Under warm light teeth are as chromatic as pale lips (retalking_face4: teeth L 77, chroma 20-21; lips L 53-63,
# chroma 17-18): with (5, 20) and (18, 30) its teeth weighed 0.5-0.8, and the rest of the weight moved them to the
# person's lip colour and light (Scarlett's teeth read 1.6x as chromatic as her skin, Hepburn's at 0.78x her skin's
# light, where the driver's were 0.8x and 1.0x).
HUED_SKIN = 4.0  # Lab chroma from which a skin's hue is a hue (greyer: a black-and-white photo, no turn of the teeth)
TEETH_BRIGHT = (4.0, 14.0)
TEETH_CHROMA = (22.0, 32.0)


def teeth_weight(lab: np.ndarray, lips_l: float) -> np.ndarray:
    """(...,) in [0, 1]: how much Lab pixels ``lab`` (..., 3) look like teeth: brighter than the lips (mean
    luminance ``lips_l``) and nearly colourless."""
    chroma = np.hypot(lab[..., 1], lab[..., 2])
    bright = np.clip((lab[..., 0] - lips_l - TEETH_BRIGHT[0]) / (TEETH_BRIGHT[1] - TEETH_BRIGHT[0]), 0.0, 1.0)
    grey = np.clip((TEETH_CHROMA[1] - chroma) / (TEETH_CHROMA[1] - TEETH_CHROMA[0]), 0.0, 1.0)
    return bright * grey


def inside_weight(lab: np.ndarray, lips: np.ndarray, teeth: np.ndarray) -> np.ndarray:
    """(...,) in [0, 1]: how much Lab pixels ``lab`` (..., 3) inside a mouth look like its inside (a dark cavity, a
    grey shadowed gap), neither teeth (their ``teeth_weight``, ``teeth``) nor lip (mean Lab ``lips`` (3,)); see
    ``INSIDE_DARK``."""
    dark = np.clip((INSIDE_DARK * lips[0] - lab[..., 0]) / (0.15 * max(float(lips[0]), 1.0)), 0.0, 1.0)
    chroma = float(np.hypot(lips[1], lips[2]))
    if chroma < INSIDE_GREY_LIPS:
        lip_hue = np.ones_like(dark)
    else:
        share = np.hypot(lab[..., 1], lab[..., 2]) / chroma
        lip_hue = np.clip((share - INSIDE_GREY[0]) / (INSIDE_GREY[1] - INSIDE_GREY[0]), 0.0, 1.0)
    return (1.0 - teeth) * (1.0 - (1.0 - dark) * lip_hue)


def skin_stats(image: np.ndarray, points: np.ndarray) -> np.ndarray | None:
    """(2, 3) Lab mean and spread of the cheeks of landmarks ``points`` (68, 2) in ``image`` (H, W, 3) uint8: two
    discs on the cheekbones, each at the centroid of a jaw point (1, 15), the nose's wing (31, 35) and the lower lid
    (41, 46), a tenth of the eye corners' distance in radius; None where they are off the image or too small. Lower
    discs, halfway between the jaw and the nose, read stubble: Beckham's cheeks at L 60 where the face mesh's cheek
    points read 72."""
    import cv2

    P = np.asarray(points, np.float64)
    radius = max(2, int(round(0.1 * np.linalg.norm(P[45] - P[36]))))
    centres = np.round([(P[1] + P[31] + P[41]) / 3, (P[15] + P[35] + P[46]) / 3]).astype(int)
    lo = np.maximum(centres.min(0) - radius, 0)
    hi = np.minimum(centres.max(0) + radius + 1, [image.shape[1], image.shape[0]])
    if (hi <= lo).any():
        return None
    region = np.zeros((hi[1] - lo[1], hi[0] - lo[0]), np.uint8)
    for c in centres - lo:
        cv2.circle(region, (int(c[0]), int(c[1])), radius, 1, -1)
    return _lab_stats(np.ascontiguousarray(image[lo[1] : hi[1], lo[0] : hi[0]]), region.astype(bool))


def match_colours(
    interior: np.ndarray,
    driver_lips: np.ndarray,
    person_lips: np.ndarray,
    driver_skin: np.ndarray | None = None,
    person_skin: np.ndarray | None = None,
) -> np.ndarray:
    """The driver's interior (H, W, 3) uint8 in the person's colours and light. ``*_lips``, ``*_skin``: (2, 3) Lab
    mean and std (``_lab_stats``, ``skin_stats``).

    Luminance: every pixel's scaled by the ratio of the person's lip luminance to the driver's (held to [0.75, 1.35]:
    a dark cavity stays dark, the light changes), but on teeth (``teeth_weight``) by the ratio of their cheeks' (held
    to [0.6, 1.6]), so the teeth keep their brightness relative to the face: by the lips' ratio, dark lipstick or a
    moustache over the lips darkened them below the face's skin. Chroma: moved from the driver's lip chroma (mean,
    spread) to the person's, except on teeth, which keep their hue and their chroma relative to the skin's: their
    (a, b) turned by the angle from the driver's skin hue to the person's and scaled by the ratio of the skins'
    chroma (a black-and-white photo gets white teeth, not the driver's cream ones; a warm-skinned person driven by
    a pink-lit driver gets cream teeth, where keeping the driver's hue made them lilac). Without skins, teeth take
    the lips' light and keep their own chroma."""
    import cv2

    lab = to_lab(interior)
    t = teeth_weight(lab, float(driver_lips[0, 0]))[..., None]
    gain = float(np.clip(person_lips[0, 0] / max(float(driver_lips[0, 0]), 1e-3), 0.75, 1.35))
    teeth_gain, teeth_turn = gain, complex(1.0)  # the teeth's (a, b) as a + ib times teeth_turn
    if driver_skin is not None and person_skin is not None:
        teeth_gain = float(np.clip(person_skin[0, 0] / max(float(driver_skin[0, 0]), 1e-3), 0.6, 1.6))
        person, driver = (complex(*stats[0, 1:]) for stats in (person_skin, driver_skin))
        teeth_turn = complex(np.clip(abs(person) / max(abs(driver), 1e-3), 0.0, 1.2))
        if min(abs(person), abs(driver)) >= HUED_SKIN:
            teeth_turn *= (person / abs(person)) / (driver / abs(driver))
    gain = t[..., 0] * teeth_gain + (1 - t[..., 0]) * gain
    out = lab.copy()
    out[..., 0] = np.clip(lab[..., 0] * gain, 0, 100)
    # chroma: the driver's lip statistics mapped onto the person's (mean and spread; a spread ratio held to [0, 1.2],
    # so a black-and-white photo's lips, of no spread, make a colourless mouth, never a tinted one)
    spread = np.clip(person_lips[1, 1:] / driver_lips[1, 1:], 0.0, 1.2)
    moved = (lab[..., 1:] - driver_lips[0, 1:]) * spread + person_lips[0, 1:]
    turned = (lab[..., 1] + 1j * lab[..., 2]) * teeth_turn
    out[..., 1:] = t * np.stack([turned.real, turned.imag], -1) + (1 - t) * moved
    rgb = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2RGB)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _fade(x: float, start: float, end: float, rising: bool = True) -> float:
    """0 below ``start``, 1 above ``end``, linear between (the other way round if not ``rising``)."""
    t = float(np.clip((x - start) / (end - start), 0.0, 1.0))
    return t if rising else 1.0 - t


class MouthInterior:
    """The mouth layer for one person (module docstring): ``layer(target, driver, driver_points)`` per frame.

    ``crops`` (K, S, S, 3) uint8 and ``points`` (K, 68, 2): the person's shots (None: no shots, as for the paper's
    model given an embedding without them). ``mode``: one of ``MOUTH_SOURCES``; ``driver_frames``: whether the
    driver's frames will be given (a driver video or camera; not in evaluation)."""

    def __init__(self, crops, points, size: int, mode: str = "auto", *, driver_frames: bool = True):
        if mode not in MOUTH_SOURCES:
            raise ValueError(f"mouth source must be one of {', '.join(MOUTH_SOURCES)}, not {mode!r}")
        self.size = size
        self.crops = None if crops is None else np.asarray(crops)
        self.points = None if points is None else np.asarray(points, np.float32)
        self.openings = None if self.points is None else mouth_opening(self.points)
        open_shots = self.openings is not None and bool((self.openings >= OPEN_SHOT).any())
        shots = () if self.crops is None or mode not in ("auto", "own") else zip(self.crops, self.points)
        self.shot_mouths = [teeth_together(c, p) for c, p in shots]  # per shot: teeth together, where they part
        # with auto, frames opened wider than the shots take the driver's interior (OWN_STRETCH), but for shots
        # whose teeth are together: their own teeth and the gap between them serve any opening
        apart = open_shots and any(not m.shut_jaw and o >= OPEN_SHOT for m, o in zip(self.shot_mouths, self.openings))
        self.wider_from_driver = mode == "auto" and open_shots and driver_frames and apart
        if mode == "auto":
            mode = "own" if open_shots else "driver" if driver_frames else "generator"
        if mode == "own" and self.crops is None:
            raise InputError("--mouth own needs the person's shots (photos, a video, or a file that stores them)")
        self.mode = mode
        self.shot: int | None = None
        self._own: float | None = None  # the last frame's share of the person's interior (None: no layer there)
        self._shot_insets: dict = {}  # shot -> its inset_profile
        self.feather = 0.006 * size
        self.person_lips = self.person_skin = None
        self.driver_lips: np.ndarray | None = None
        self.driver_skin: np.ndarray | None = None
        if self.needs_driver and self.crops is not None:
            self.person_lips = _lab_stats(self.crops[0], lip_ring(self.points[0], size))
            self.person_skin = skin_stats(self.crops[0], self.points[0])

    @property
    def needs_driver(self) -> bool:
        """Whether the driver's frames (and their landmarks) may be used."""
        return self.mode == "driver" or self.wider_from_driver

    def needs_driver_for(self, targets: np.ndarray) -> bool:
        """Whether the driver's frames are used for these target landmarks (N, 68, 2) (NaN rows: no face): always
        from the driver, or with auto's hand-over where a target opens ``OWN_STRETCH[0]`` times the narrowest
        open shot or wider (no frame of a driver that opens less than that is read a second time)."""
        if self.mode == "driver" or not self.wider_from_driver:
            return self.needs_driver
        targets = np.asarray(targets, np.float32)
        targets = targets[np.isfinite(targets).all(axis=(1, 2))]
        narrowest = float(self.openings[self.openings >= OPEN_SHOT].min())
        return bool(len(targets)) and bool((mouth_opening(targets) >= OWN_STRETCH[0] * narrowest).any())

    def describe(self) -> str:
        """One line for stderr: where the mouth interior comes from."""
        if self.mode == "own":
            n = int((self.openings >= OPEN_SHOT).sum())
            line = f"mouth interior: the person's own shots ({n} of {len(self.openings)} show an open mouth)"
            if self.wider_from_driver:
                return line + ", the driver's where it opens wider"
            together = self.shot_mouths and all(
                m.shut_jaw for m, o in zip(self.shot_mouths, self.openings) if o >= OPEN_SHOT
            )
            return line + (", their teeth together, parting as the jaw drops" if together else "")
        if self.mode == "driver":
            return "mouth interior: the driver's, colour-matched to the person"
        return "mouth interior: drawn by the generator (no driver frames or open-mouthed shots to take it from)"

    def _driver_interior(self, driver: np.ndarray, driver_points: np.ndarray, target: np.ndarray, box) -> np.ndarray:
        """The driver's interior mapped into the hole over ``box``, in the person's colours, shaded (``shaded``)."""
        stats = self._driver_stats(driver, driver_points)
        inset = INSET if stats is None else inset_profile(driver, driver_points, float(stats[0, 0]))
        image = _mapped_into(driver, driver_points, target, box, inset)
        skin = skin_stats(driver, driver_points)
        if skin is not None:  # smoothed over frames, as the lips'
            old, keep = self.driver_skin, DRIVER_STATS_MOMENTUM
            self.driver_skin = skin if old is None else keep * old + (1 - keep) * skin
        lab = to_lab(image)
        lips_l = float(stats[0, 0]) if stats is not None else float(lab[..., 0].mean())
        teeth = teeth_weight(lab, lips_l)  # the driver's own colours tell teeth from a tongue
        if stats is not None and self.person_lips is not None:
            image = match_colours(image, stats, self.person_lips, self.driver_skin, self.person_skin)
        strength = SHADE * _fade(float(mouth_opening(target)), *SHADE_OPENING)
        return shaded(image, teeth, target, box, strength, rim=int(np.ceil(1.5 * self.feather)) + 1)

    def _own_interior(self, k: int, target: np.ndarray, box) -> np.ndarray:
        """Shot ``k``'s interior mapped into the hole over ``box``: its upper and lower parts at their own size, the
        gap the jaw opens between them in the mouth's cavity colour (``teeth_together``). A shot whose teeth are
        together is read over its whole opening, lip rims and all (the inset in the share they are not): read from
        inside its rims, its grin at rest showed a dark band between its teeth a fifth of the opening tall."""
        import cv2

        if k not in self._shot_insets:  # the shot's teeth, read once
            stats = _lab_stats(self.crops[k], lip_ring(self.points[k], self.size))
            lips_l = None if stats is None else float(stats[0, 0])
            self._shot_insets[k] = INSET if lips_l is None else inset_profile(self.crops[k], self.points[k], lips_l)
        mouth = self.shot_mouths[k]
        inset = self._shot_insets[k]
        if mouth.together > 0:  # teeth together: the whole opening, so that at rest the hole is the shot's own mouth
            keep = 1.0 - mouth.together
            inset = (lambda u, f=inset: tuple(keep * x for x in f(u))) if callable(inset) else keep * inset
        image, gap, depth = _mapped_into(self.crops[k], self.points[k], target, box, inset, mouth.split)
        if not gap.any():
            return image
        top, bottom = mouth.cavity.astype(np.float32)
        cavity = (top + depth[..., None] * (bottom - top) + 0.5).astype(np.uint8)
        return cv2.blendLinear(cavity, image, gap, 1.0 - gap)

    def _pick_shot(self, opening: float) -> int:
        """The open-mouthed shot (any shot, if none is open) whose opening is nearest ``opening``, kept from the
        previous frame unless another is ``KEEP_SHOT`` nearer."""
        d = np.abs(self.openings - opening)
        if (self.openings >= OPEN_SHOT).any():
            d[self.openings < OPEN_SHOT] = np.inf  # a closed mouth has no interior to give
        best = int(np.argmin(d))
        if self.shot is not None and d[self.shot] <= d[best] + KEEP_SHOT:
            return self.shot
        self.shot = best
        return best

    def _driver_stats(self, driver: np.ndarray, driver_points: np.ndarray) -> np.ndarray | None:
        """The driver's lip statistics in this frame, smoothed over frames; from its mouth region only."""
        lo = np.floor(driver_points[MOUTH].min(0)).astype(int) - 2
        hi = np.ceil(driver_points[MOUTH].max(0)).astype(int) + 3
        lo = np.maximum(lo, 0)
        hi = np.minimum(hi, [driver.shape[1], driver.shape[0]])
        if (hi <= lo).any():
            return self.driver_lips
        patch = np.ascontiguousarray(driver[lo[1] : hi[1], lo[0] : hi[0]])
        local = driver_points - lo
        ring = lip_ring(local, (patch.shape[1], patch.shape[0]))
        stats = _lab_stats(patch, ring)
        if stats is None:
            return self.driver_lips
        if self.driver_lips is None:
            self.driver_lips = stats
        else:
            self.driver_lips = DRIVER_STATS_MOMENTUM * self.driver_lips + (1 - DRIVER_STATS_MOMENTUM) * stats
        return self.driver_lips

    def layer(
        self, target: np.ndarray, driver: np.ndarray | None = None, driver_points: np.ndarray | None = None
    ) -> Layer | None:
        """The interior for target landmarks ``target`` (68, 2) in crop pixels, or None where there is none to lay
        (a closed mouth, the generator's choice, no driver face in this frame)."""
        target = np.asarray(target, np.float32)
        opening = float(mouth_opening(target))
        fade = _fade(opening, *FADE)
        if self.mode == "generator" or fade <= 0:
            self._own = None
            return None
        box = mouth_box(target, self.size, int(np.ceil(4.5 * self.feather)) + 2)
        has_driver = driver is not None and driver_points is not None and np.isfinite(driver_points).all()
        own = 0.0
        if self.mode == "own":
            k = self._pick_shot(opening)
            own = 1.0
            # a frame opened much wider than a shot whose teeth are apart: the driver's (teeth together part)
            if self.wider_from_driver and has_driver and not self.shot_mouths[k].shut_jaw:
                own = _fade(opening / max(float(self.openings[k]), 1e-6), *OWN_STRETCH, rising=False)
                if self._own is not None:  # gradually (OWN_STEP)
                    own = float(np.clip(own, self._own - OWN_STEP, self._own + OWN_STEP))
        self._own = own
        if own == 0.0 and not has_driver:
            self._own = None
            return None
        image = self._own_interior(k, target, box) if own > 0 else None
        if own < 1.0:
            import cv2

            drivers = self._driver_interior(driver, np.asarray(driver_points, np.float32), target, box)
            image = drivers if image is None else cv2.addWeighted(image, own, drivers, 1.0 - own, 0.0)
        alpha = hole_alpha(target, box, self.feather)
        return Layer(image, alpha * np.float32(fade), box[:2])
