"""Motion transfer: a driver's landmarks -> landmarks of the *source* face making the same motion.

Stage: animate (and cross-reenactment in evaluate). In: the source's landmarks ``S`` (68, 2) in its crop's pixels
(from its shot), the driver's landmarks ``D_t`` (68, 2) per frame in the driver's pixels, and the driver's
reference frame ``D_ref``. Out: landmarks (68, 2) in the source crop's pixels, to draw with ``draw_sketch``.

Driving a face with someone else's landmarks as they are puts the driver's face shape (jaw width, eye distance,
nose length) into the result: the "identity gap" of cross-person reenactment. So by default only the driver's
*motion* is transferred, split into a rigid part and an expression part:

* rigid motion ``A_t``: the similarity transform (translation, in-plane rotation, uniform scale) that best maps
  the driver's reference landmarks onto frame t's, fitted by least squares (Umeyama) on points that do not move
  with expression: the eye corners and the nose (ridge and base). Blinks, speech, smiles and raised brows leave
  them in place, so ``A_t`` is the head's motion: moving, tilting (roll), coming closer;
* expression ``e_t = A_t^-1(D_t) - D_ref``: what is left in the reference's own frame once the head motion is
  undone: the mouth opening, blinks, brows, and the apparent deformation that turning the head (yaw, pitch)
  gives a 2-D outline. Of the outline's sideways motion, the part both its sides share (a turn shifts it against
  the eyes and nose) is carried at ``OUTLINE_SWAY`` (``_damp_sway``): a warp cannot turn a cheek towards the
  camera, only stretch it, and the background beside it, into a bulge;
* both are carried over to the source through ``B``, the similarity that best maps the driver's reference onto
  the source (same rigid points): the expression is rotated and scaled into the source's frame and added to
  the source's own landmarks, and the head motion is conjugated (``B A_t B^-1``) so that the driver turning 10
  degrees turns the source 10 degrees about its own face, and a step of half a face to the left moves the
  source half of *its* face to the left:

      out_t = (B A_t B^-1) (S + L_B e_t)        L_B = B's linear part (rotation x scale)

Pixel displacements carry the driver's mouth size and its reference frame's expression: a small-mouthed driver
barely opens a wide mouth, and a photo taken with an open mouth never closes it. So the opening parts are then set
in scale-free units (``expression_ratios``), on ``S + L_B e_t`` before the head motion (``_set_expression``):

* mouth: the inner-lip gap becomes the driver's gap / mouth width at frame t times the source's mouth width there
  (absolute, not relative to the reference), plus the source's gap at rest (``rest_mouth``: a smile whose teeth
  meet shows them between parted lips with the jaw shut, and speaking drops the jaw from there; the mouth layer
  measures it on the shot's pixels, ``fsth.animate.mouth.teeth_together``). A driver smiling with its teeth
  together shows a gap of its own with the jaw shut (``driver_grin``, read on its frames the same way,
  ``grin_gaps``): the two grins' gaps are not added, the wider one is kept and the driver's jaw drops from there,
  ``D_t + max(rest - grin_t, 0)``. (Letting the source's grin stand for the driver's, ``D_t - grin_t + rest``, kept
  a smiling photo's lips still wherever a speaker's teeth met, which speech does with its lips parted: Audrey
  Hepburn's mouth r on ``retalking_face4`` fell to 0.51.) The lower lip takes 70% of the change, the upper lip
  30%, and the chin follows the lower lip in part;
* eyes: each eye's lid gaps become the source's own times two factors (the upper lid takes 80% of the change), the
  more open eye's change drawn halfway to the other's unless they are a wink apart (``EYE_COUPLING``: the lids
  blink together; each eye's blink share is first drawn most of the way to the two eyes' mean,
  ``EYE_SHARE_COUPLING``):

  - the narrowing: the driver's open level at t (``eye_levels``: its eye's opening over the second around t, a high
    percentile, which a blink does not move) over its open level at the reference frame (a reference caught
    mid-blink, a camera's first face, opened the source's eyes twice as wide for good), both counted from
    ``EYE_SHUT`` (what the mesh reads on a shut eye). A driver looking down or narrowing its eyes for a while
    narrows the source's in proportion; eyes held shut shut it;
  - the blink: the driver's opening at t over its open level, shut below ``EYE_BLINK[0]`` of it, open from
    ``EYE_BLINK[1]``. A blink is a fast, deep dip below the level; its depth, not the opening itself, closes the
    source's eye. Counted from the reference instead (the level unknown), a narrowed driver's eye, which the mesh
    reads at 0.10-0.15 eye widths like a half blink, shut the source's for seconds.

  Without a level (a single frame) the reference is the level: the blink factor alone. The reference gives the
  driver's open state, the source's own: ``choose_reference`` picks the frame whose expression (eyes included) is
  the source's, so "the driver as in its reference" is "the source as photographed";
* brows: each brow's height above its eye, in eye distances, changes by the driver's change since the reference.

The driver's ratios come from its dense face-mesh points (478) where given (``driver_dense``, ``reference_dense``):
dlib's 68 points never close an eye (0.13-0.16 eye widths on closed frames, 0.30 open). The output is 68 points,
set by their own measures, so the source's dense points are not needed.

At the reference frame the result is ``S`` but for the mouth's opening (the driver's there, in the source's mouth
widths); when the driver is the source (``D_ref = S``) it is ``D_t``, but for eyes a little off their open level,
which close a little more or open as the level (a blink counts between the two ``EYE_BLINK`` shares of the level).
``head_motion=False`` leaves out the conjugated head motion: expression only, the head stays put. Distances that
expression does not change (between the eyes, across the face) stay the source's, times the head's scale change.
``absolute`` mode skips all of this (the caller maps the driver's landmarks into its own crop, as the networks were
trained).

The driver's reference frame: by default, for a driver file, the frame whose expression is closest to the
source's (``choose_reference``, on scale-free measures: mouth opening and width, eye opening, brow height), so
that a source photographed with an open mouth closes it when the driver closes theirs; for a live camera, the
first frame with a face (``MotionTransfer.reset`` takes a new one). ``MotionTransfer`` is the per-frame, causal
wrapper that also repeats the last good landmarks when the driver's face is lost (``HoldLast``, which
``hold_last`` runs over a tracked driver file).
"""

from __future__ import annotations

import collections

import numpy as np

from fsth.landmarks.parts import BROWS, EYES, JAW, MESH_EYE_LIDS, MESH_MOUTH_CORNERS, MESH_MOUTH_GAP, NOSE

# Points that expression does not move: eye corners (36, 39, 42, 45) and the nose (ridge 27-30, base 31-35).
RIGID_POINTS = np.r_[[36, 39, 42, 45], NOSE]


def similarity_fit(
    src: np.ndarray, dst: np.ndarray, points: np.ndarray | None = RIGID_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """The similarity ``x -> L x + t`` that best maps ``src[points]`` onto ``dst[points]`` (least squares).

    ``src``, ``dst``: (..., N, 2), by default 68 landmarks of which the rigid ones are fitted; ``points=None``
    fits all N (ArcFace's 5-point alignment). Returns ``L`` (..., 2, 2) (rotation times scale, no reflection)
    and ``t`` (..., 2). Umeyama's closed form in 2-D: with centred points a (src) and b (dst), the best ``L`` is
    ``[[p, -q], [q, p]]`` with ``p = sum(a . b) / sum|a|^2`` and ``q = sum(a x b) / sum|a|^2``.
    """
    a = np.asarray(src, np.float64)
    b = np.asarray(dst, np.float64)
    if points is not None:
        a, b = a[..., points, :], b[..., points, :]
    ca, cb = a.mean(axis=-2), b.mean(axis=-2)
    a, b = a - ca[..., None, :], b - cb[..., None, :]
    norm = np.maximum((a * a).sum(axis=(-2, -1)), 1e-12)
    p = (a * b).sum(axis=(-2, -1)) / norm
    q = (a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]).sum(axis=-1) / norm
    L = np.stack([np.stack([p, -q], -1), np.stack([q, p], -1)], -2)  # (..., 2, 2)
    t = cb - np.einsum("...ij,...j->...i", L, ca)
    return L, t


def apply_similarity(L: np.ndarray, t: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``L x + t`` for points (..., 68, 2) with ``L`` (..., 2, 2), ``t`` (..., 2)."""
    return np.einsum("...ij,...nj->...ni", L, points) + t[..., None, :]


def invert_similarity(L: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    Li = np.linalg.inv(L)
    return Li, -np.einsum("...ij,...j->...i", Li, t)


def retarget(
    source: np.ndarray,
    driver: np.ndarray,
    driver_reference: np.ndarray,
    *,
    head_motion: bool = True,
    driver_dense: np.ndarray | None = None,
    reference_dense: np.ndarray | None = None,
    fps: float | None = None,
    eye_level: np.ndarray | None = None,
    reference_index: int | None = None,
    reference_level: np.ndarray | None = None,
    rest_mouth: float = 0.0,
    driver_together: np.ndarray | None = None,
    driver_grin: np.ndarray | None = None,
) -> np.ndarray:
    """The source's landmarks making the driver's motion since its reference frame (module docstring).

    ``source`` (68, 2) in the source crop's pixels; ``driver`` (..., 68, 2) and ``driver_reference`` (68, 2) in
    the driver's pixels. Returns (..., 68, 2) float32 in the source crop's pixels. ``head_motion=False`` transfers
    the expression only: the source's head keeps its place, size and tilt (for pasting back into a still photo).
    ``driver_dense`` (..., 478, 2) and ``reference_dense`` (478, 2): the same frames' face-mesh points, which
    measure the driver's eyes and mouth where both are given (``expression_ratios``). The driver's eyes' open level:
    with ``fps``, ``driver`` (N, 68, 2) is N consecutive frames at that rate, and the level is measured over them
    (``eye_levels``); else ``eye_level`` (..., 2) gives it (a live camera's, over the frames before); neither: the
    eyes' opening at the reference. The narrowing counts from the reference's own open level (a reference caught
    mid-blink says nothing about the eyes open): with ``fps``, ``reference_index`` says which of the N frames is
    the reference; else ``reference_level`` (2,) gives it; neither: the eyes' opening at the reference.
    ``rest_mouth``: the source's inner-lip gap (mouth widths) with its jaw shut (its teeth together), which a
    driver's closed mouth gives. The driver's own such gap: with ``fps``, ``driver_together`` (N,) says how surely
    each frame's teeth are together (``fsth.animate.mouth.teeth_together``) and ``grin_gaps`` measures it over the
    frames; else ``driver_grin`` (...) gives it (a live camera's, over the frames before); neither: none.
    """
    S = np.asarray(source, np.float64)
    D = np.asarray(driver, np.float64)
    R = np.asarray(driver_reference, np.float64)
    A_L, A_t = similarity_fit(np.broadcast_to(R, D.shape), D)  # driver reference -> frame t (head motion)
    Ai_L, Ai_t = invert_similarity(A_L, A_t)
    expression = apply_similarity(Ai_L, Ai_t, D) - R  # (..., 68, 2) in the reference's pixels
    expression = _damp_sway(expression, R)
    B_L, B_t = similarity_fit(R, S)  # driver reference -> source
    Bi_L, Bi_t = invert_similarity(B_L, B_t)
    posed = S + np.einsum("ij,...nj->...ni", B_L, expression)  # source with the driver's expression
    if driver_dense is None or reference_dense is None:
        driver_dense = reference_dense = None
    ratios = expression_ratios(D, driver_dense)
    if fps is not None:
        eye_level = eye_levels(ratios[..., 1:3], fps)
        if reference_index is not None:
            reference_level = eye_level[reference_index]
        if driver_together is not None:
            driver_grin = grin_gaps(ratios[..., 0], driver_together, fps)
    own = expression_ratios(S)
    posed = _set_expression(
        posed,
        S,
        ratios,
        expression_ratios(R, reference_dense),
        own,
        eye_level,
        reference_level,
        rest_mouth,
        driver_grin,
    )
    if not head_motion:
        return posed.astype(np.float32)
    # conjugated head motion B A_t B^-1: linear part B_L A_L B_L^-1, translation B_L (A_L Bi_t + A_t) + B_t
    M_L = np.einsum("ij,...jk,kl->...il", B_L, A_L, Bi_L)
    M_t = np.einsum("ij,...j->...i", B_L, np.einsum("...ij,j->...i", A_L, Bi_t) + A_t) + B_t
    return apply_similarity(M_L, M_t, posed).astype(np.float32)


# -- expression in scale-free units ------------------------------------------------------------------------

# The measures on the 68 points (on the face mesh: ``parts.MESH_MOUTH_GAP``, ``MESH_MOUTH_CORNERS``,
# ``MESH_EYE_LIDS``): the centre pair of the inner lips, the outer corners; the eyes' corners and lid pairs.
MOUTH_GAP, MOUTH_CORNERS = (62, 66), (48, 54)
EYE_PAIRS = (((36, 39), ((37, 41), (38, 40))), ((42, 45), ((43, 47), (44, 46))))

RATIO_NAMES = ("mouth", "right_eye", "left_eye", "right_brow", "left_brow")
MOUTH_LOWER_SHARE = 0.7  # of a change in the mouth's opening, the lower lip moves 70% (the jaw drops), the upper 30%
EYE_UPPER_SHARE = 0.8  # of a change in an eye's opening, the upper lid moves 80%
# The mouth's points that move with its opening, and by how much of the lip's move: the three inner pairs, the outer
# lips (less towards the corners), and the chin below the lower lip.
UPPER_LIP = {61: 0.8, 62: 1.0, 63: 0.8, 50: 0.8, 51: 1.0, 52: 0.8, 49: 0.4, 53: 0.4}
LOWER_LIP = {67: 0.8, 66: 1.0, 65: 0.8, 58: 0.8, 57: 1.0, 56: 0.8, 59: 0.4, 55: 0.4}
CHIN = {8: 0.8, 7: 0.6, 9: 0.6, 6: 0.35, 10: 0.35, 5: 0.15, 11: 0.15}
EYE_CHANGE_LIMITS = (0.0, 2.0)  # an eye opens at most twice as wide as the source's own (a surprised driver)
MIN_REFERENCE_EYE = 0.15  # eye widths: a reference frame with the driver's eyes shut says nothing about them open
# Eye widths: what the face mesh reads on a shut eye, from which the driver's open level counts (the narrowing). Its
# lid points sit either side of the lashes: 0.02-0.04 on the held-out driver lia_vox_driving2's full blinks.
EYE_SHUT = 0.03
# The blink: an eye reading the first share of its open level or less is shut, one reading the second share or more is
# open as the level (wider, in proportion above it), in between it opens in proportion. lia_vox_driving2's full
# blinks read 0.02-0.07 against a level of about 0.2, its half blinks and slowly closing or reopening eyes (which
# another face mesh reads closed) up to 0.09-0.11: at 0.5 they shut. With 0.4 they were drawn half closed, and of the
# frames that mesh read closed, 50-78% were closed in the results of its three held-out pairs (65-78% at 0.5, with
# EYE_SHARE_COUPLING 0.5); the other held-out drivers stayed at 77-100%. Open eyes read 0.85-1
# of their level from frame to frame: with the second share at 1, those frames closed the eye a little, and its
# narrowed eyes were drawn half lidded, one eye more than the other (a wink).
EYE_BLINK = (0.5, 0.85)
# The open level (``eye_levels``): this percentile of an eye's opening over EYE_LEVEL_SECONDS either side of a frame
# (a live camera: as long a stretch up to it). A blink's 3-8 frames do not move it; a narrowing held for
# half the window does.
EYE_LEVEL_PERCENTILE = 75
EYE_LEVEL_SECONDS = 1.0
# How far the more open eye's change moves towards the other's (0: each its own, 1: the same). The lids blink
# together; the mesh reads the driver's eyes unequally when the head turns (lia_vox_driving2's blinks: one eye at
# 0.13-0.17 eye widths, the other at 0.04-0.08), which left one of the source's eyes half open. The pull fades out
# as the eyes' changes differ by EYE_WINK (from the first to the second; a change of 1 is shut to open): a wink, one
# eye shut and the other open, stays a wink.
EYE_COUPLING = 0.5
EYE_WINK = (0.4, 0.7)
# Before that, each eye's blink (its opening's share of its open level) moves this far towards the two eyes' mean, the
# pull fading out as the shares differ by EYE_SHARE_WINK (a wink: one eye at 0.1 of its level, the other at 1). A
# driver looking down with its head turned reads one eye at 0.5-0.75 of its level for seconds and the other at 0.9-1.2
# (lia_vox_driving2's frames 126-186; both look alike in the frames, narrowed): counted alone, the first was a
# sustained half blink, which the eyelid layer drew as one shut eye beside an open one. Frames where the two eyes'
# retargeted openings differ by more than 0.15 of the source's: 31 -> 0 of its 221, 30 -> 2 of dpe_s's 228.
EYE_SHARE_COUPLING = 0.75
EYE_SHARE_WINK = (0.6, 0.9)


def _down(points: np.ndarray, i: int, j: int) -> tuple[np.ndarray, np.ndarray]:
    """The unit normal (..., 2) of the line from point i to point j (left to right in the image) that points down
    the face, and the distance (...) between them."""
    v = points[..., j, :] - points[..., i, :]
    width = np.maximum(np.linalg.norm(v, axis=-1), 1e-6)
    return v[..., ::-1] * (np.array([-1.0, 1.0]) / width[..., None]), width


def _gap(points: np.ndarray, pair, down: np.ndarray) -> np.ndarray:
    """The signed opening (...) of an (upper, lower) pair along ``down``: negative where they cross."""
    return ((points[..., pair[1], :] - points[..., pair[0], :]) * down).sum(-1)


def expression_ratios(points: np.ndarray, dense: np.ndarray | None = None) -> np.ndarray:
    """Scale-free measures of expression (..., 5), in ``RATIO_NAMES``' order, of landmarks (..., 68, 2): the mouth's
    inner-lip gap / its width; each eye's mean lid gap / its width; each brow's height above its eye / the eye
    distance. Given the same frames' dense face-mesh points (..., 478, 2), the mouth and eyes are measured on them
    (dlib's 68 points never close an eye). Openings are clipped at 0 (crossed lips or lids are shut)."""
    P = np.asarray(points, np.float64)
    M = P if dense is None else np.asarray(dense, np.float64)
    gap, corners, eyes = (
        (MOUTH_GAP, MOUTH_CORNERS, EYE_PAIRS) if dense is None else (MESH_MOUTH_GAP, MESH_MOUTH_CORNERS, MESH_EYE_LIDS)
    )
    down, width = _down(M, *corners)
    out = [np.maximum(_gap(M, gap, down), 0) / width]
    for ends, pairs in eyes:
        down, width = _down(M, *ends)
        out.append(np.mean([np.maximum(_gap(M, p, down), 0) for p in pairs], 0) / width)
    return np.concatenate([np.stack(out, -1), _brow_heights(P)], -1)


def _brow_heights(P: np.ndarray) -> np.ndarray:
    """Each brow's mean height above its eye's corners (..., 2), in eye distances (``expression_ratios``)."""
    down, eye_dist = _down(P, 36, 45)
    eyes = P[..., [36, 42], :] + P[..., [39, 45], :]  # (..., 2, 2): twice each eye's corners' midpoint
    brows = P[..., BROWS, :].reshape(*P.shape[:-2], 2, 5, 2).mean(-2)  # (..., 2, 2): right, left
    return -((brows - eyes / 2) * down[..., None, :]).sum(-1) / eye_dist[..., None]


def eye_levels(eyes: np.ndarray, fps: float, causal: bool = False) -> np.ndarray:
    """The eyes' open level (N, 2) at each of N consecutive frames of their openings ``eyes`` (N, 2) (in eye widths,
    ``expression_ratios``' 1:3): the ``EYE_LEVEL_PERCENTILE``-th percentile over ``EYE_LEVEL_SECONDS`` either side
    of the frame, the ends repeated where the window runs past them; ``causal``: over as many frames up to it, what a
    live camera has, only those there are in its first seconds (a camera starting on a blink: repeated, its first
    frame made the level shut for over a second)."""
    x = np.asarray(eyes, np.float64)
    if len(x) == 0:
        return x.copy()
    half = _level_half(fps)
    if causal:
        padded = np.concatenate([np.full((2 * half, *x.shape[1:]), np.nan), x])
    else:
        padded = np.concatenate([np.repeat(x[:1], half, 0), x, np.repeat(x[-1:], half, 0)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1, axis=0)  # (N, 2, 2 * half + 1)
    return (np.nanpercentile if causal else np.percentile)(windows, EYE_LEVEL_PERCENTILE, axis=-1)


def _level_half(fps: float) -> int:
    """Frames on either side of a frame over which ``eye_levels`` measures (25 frames/s where ``fps`` is unknown)."""
    return max(1, round(EYE_LEVEL_SECONDS * (fps if fps > 0 else 25.0)))


def _last_level(history: np.ndarray, fps: float) -> np.ndarray:
    """``eye_levels(history, fps, causal=True)[-1]`` without the earlier frames' windows: the level (2,) of the last
    of the frames ``history`` (n, 2), over the window up to it (the frames there are, where it is longer)."""
    return np.percentile(history[-(2 * _level_half(fps) + 1) :], EYE_LEVEL_PERCENTILE, axis=0)


# A driver smiling with its teeth together: its grin's gap at frame t is its opening there times how surely its
# teeth are together. A grin held while speaking reads teeth together on some frames and apart on the next
# (dreamtalk's "happy" speakers: 23 and 44 of 94 and 108 frames, flipping frame to frame), so a frame read apart
# takes the widest grin of the frames within GRIN_SECONDS either side where it opens at least as wide (its jaw drops
# from that grin; fully from GRIN_INHERIT[1] of its gap, none below [0]). Where it opens less, its lips are closing:
# they were not the grin's (retalking_face4, whose speaker shows her teeth together on a quarter of her frames,
# kept a grinning photo's mouth still for whole words when every frame near a grin took it).
GRIN_SECONDS = 0.3
GRIN_INHERIT = (0.8, 1.0)


def grin_gaps(openings: np.ndarray, together: np.ndarray, fps: float, causal: bool = False) -> np.ndarray:
    """The driver's grin gap (N,) at each of N consecutive frames (mouth widths, ``GRIN_SECONDS``) from their mouth
    openings (N,) and how surely their teeth are together (N,) (0 where unknown); ``causal``: a frame read apart
    looks at the frames up to it only, what a live camera has."""
    opening = np.nan_to_num(np.asarray(openings, np.float64))
    together = np.nan_to_num(np.asarray(together, np.float64))
    own = opening * together
    if len(own) == 0:
        return own
    half = _grin_half(fps)
    padded = np.concatenate([np.zeros(half), own, np.zeros(0 if causal else half)])
    near = np.lib.stride_tricks.sliding_window_view(padded, (half + 1) if causal else (2 * half + 1)).max(-1)
    share = opening / np.maximum(near, 1e-9)
    inherit = np.clip((share - GRIN_INHERIT[0]) / (GRIN_INHERIT[1] - GRIN_INHERIT[0]), 0.0, 1.0)
    return np.minimum(own + (1.0 - together) * inherit * near, opening)


def _grin_half(fps: float) -> int:
    """Frames on either side of a frame over which ``grin_gaps`` looks (25 frames/s where ``fps`` is unknown)."""
    return max(1, round(GRIN_SECONDS * (fps if fps > 0 else 25.0)))


def _move(points: np.ndarray, weights: dict, step: np.ndarray) -> None:
    """Move ``points[..., i]`` by ``weights[i] * step`` (..., 2), in place."""
    for i, w in weights.items():
        points[..., i, :] += w * step


# A head turning (yaw) shifts the driver's face outline sideways against its eyes and nose, both sides the same way
# (lia_vox_driving2's frame 102: 20-27 px on a 256 px crop). Carried onto a photo, the warp moves its cheek and the
# background beside it that far: a bulging cheek (Audrey Hepburn, in three-quarter view, 20% of her face's width).
# That shared sideways part of the outline's motion is carried at this share; the nose's, and the outline's
# symmetric motion (the jaw narrowing as it drops), in full.
OUTLINE_SWAY = 0.4


def _damp_sway(expression: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """``expression`` (..., 68, 2) with the face outline's sideways sway (``OUTLINE_SWAY``): of the outline's motion
    along the eyes of ``reference`` (68, 2), the part its two sides share (the mean of each point's and its mirror
    point's), which a head turning gives; the part they do not share (the jaw narrowing as it drops) is kept."""
    across = reference[45] - reference[36]
    across = across / max(float(np.linalg.norm(across)), 1e-6)
    x = expression[..., JAW, :] @ across  # (..., 17): jaw point i's mirror is 16 - i
    shared = (x + x[..., ::-1]) / 2
    out = expression.copy()
    out[..., JAW, :] -= (1 - OUTLINE_SWAY) * shared[..., None] * across
    return out


def _set_expression(
    posed: np.ndarray,
    source: np.ndarray,
    driver: np.ndarray,
    reference: np.ndarray,
    own: np.ndarray,
    eye_level: np.ndarray | None = None,
    reference_level: np.ndarray | None = None,
    rest_mouth: float = 0.0,
    driver_grin: np.ndarray | None = None,
) -> np.ndarray:
    """``posed`` (..., 68, 2) with its mouth, eyes and brows set from ratios (module docstring): ``driver`` (..., 5)
    the driver's at frame t, ``reference`` (5,) at its reference frame, ``own`` (5,) the source's (``source``
    (68, 2)), ``eye_level`` (..., 2) the driver's eyes' open level at t (None: the reference's), ``reference_level``
    (2,) the reference frame's (None: its opening), ``rest_mouth`` the source's gap with its jaw shut,
    ``driver_grin`` (...) the driver's at t (None: none)."""
    P = posed.copy()
    # mouth: absolute, the driver's opening in the source's mouth widths, from the wider of the two gaps at rest
    down, width = _down(P, *MOUTH_CORNERS)
    rest = rest_mouth if driver_grin is None else np.maximum(rest_mouth - np.asarray(driver_grin), 0.0)
    change = (driver[..., 0] + rest) * width - np.maximum(_gap(P, MOUTH_GAP, down), 0)  # (...) px
    inner = ((61, 67), (62, 66), (63, 65))
    floors = [np.minimum(_gap(P, p, down), 0) for p in inner]
    _move(P, UPPER_LIP, -(1 - MOUTH_LOWER_SHARE) * change[..., None] * down)
    _move(P, LOWER_LIP, MOUTH_LOWER_SHARE * change[..., None] * down)
    _move(P, CHIN, MOUTH_LOWER_SHARE * change[..., None] * down)
    _unfold(P, inner, down, floors)  # a closing mouth shuts: its lips meet, they do not cross
    # eyes: the source's own opening times the driver's narrowing (its open level against its reference) and its
    # blink (its opening against its open level), the more open eye drawn towards the other (EYE_COUPLING) unless
    # they are a wink apart (EYE_WINK)
    opened = np.maximum(reference[1:3] if reference_level is None else reference_level, MIN_REFERENCE_EYE)
    level = opened if eye_level is None else np.asarray(eye_level, np.float64)
    narrowing = np.clip((level - EYE_SHUT) / (opened - EYE_SHUT), *EYE_CHANGE_LIMITS)  # (..., 2)
    share = driver[..., 1:3] / np.maximum(level, 1e-6)  # of the open level
    share = pull_together(share, EYE_SHARE_WINK, EYE_SHARE_COUPLING)
    blink = np.clip((share - EYE_BLINK[0]) / (EYE_BLINK[1] - EYE_BLINK[0]), 0, 1) * np.maximum(share, 1)
    ks = [np.clip(narrowing[..., e] * blink[..., e], *EYE_CHANGE_LIMITS) for e in range(2)]
    pull = EYE_COUPLING * _unless_wink(ks[0] - ks[1], EYE_WINK)
    ks = [ks[0] - pull * np.maximum(ks[0] - ks[1], 0), ks[1] - pull * np.maximum(ks[1] - ks[0], 0)]
    for e, (ends, pairs) in enumerate(EYE_PAIRS):
        k = ks[e]
        down, width = _down(P, *ends)
        floors = [np.minimum(_gap(P, p, down), 0) for p in pairs]
        gaps = np.stack([np.maximum(_gap(P, p, down), 0) for p in pairs], -1)  # (..., 2) px
        # the lid's shape: the posed one, or the source's where the posed eye is shut (it opens again)
        shut = gaps.mean(-1, keepdims=True) < 0.02 * width[..., None]
        own_gaps = np.stack([np.maximum(_gap(source, p, _down(source, *ends)[0]), 0) for p in pairs], -1)
        shape = np.where(shut, own_gaps + 1e-6, gaps)
        target = shape * (own[1 + e] * k * width / np.maximum(shape.mean(-1), 1e-9))[..., None]
        for (upper, lower), change in zip(pairs, np.moveaxis(target - gaps, -1, 0)):
            P[..., upper, :] -= EYE_UPPER_SHARE * change[..., None] * down
            P[..., lower, :] += (1 - EYE_UPPER_SHARE) * change[..., None] * down
        _unfold(P, pairs, down, floors)
    # brows: the source's own height plus the driver's change since its reference, in eye distances
    down, eye_dist = _down(P, 36, 45)
    lift = own[3:] + driver[..., 3:] - reference[3:] - _brow_heights(P)  # (..., 2) eye distances
    P[..., BROWS, :] -= np.repeat(lift * eye_dist[..., None], 5, axis=-1)[..., None] * down[..., None, :]
    return P


def pull_together(values: np.ndarray, wink: tuple[float, float], strength: float = 1.0) -> np.ndarray:
    """The two eyes' measures ``values`` (..., 2) moved ``strength`` of the way to their mean, unless they are a
    wink apart (``_unless_wink``): the eyes blink together. Retargeting's blink shares and the eyelid layer's
    closures."""
    together = strength * _unless_wink(values[..., 0] - values[..., 1], wink)[..., None]
    return values + together * (values.mean(-1, keepdims=True) - values)


def _unless_wink(difference: np.ndarray, wink: tuple[float, float]) -> np.ndarray:
    """1 where the two eyes' measures differ by up to ``wink[0]``, 0 from ``wink[1]`` (a wink), smooth between: how
    much of the eyes' coupling applies."""
    return 1 - smoothstep(np.abs(difference), *wink)


def smoothstep(x: np.ndarray, edge0: float, edge1: float) -> np.ndarray:
    """0 up to ``edge0``, 1 from ``edge1``, the cubic 3t^2 - 2t^3 between (no kink at either end)."""
    t = np.clip((np.asarray(x, np.float64) - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def _unfold(points: np.ndarray, pairs, down: np.ndarray, floors: list[np.ndarray]) -> None:
    """Pairs (upper, lower) whose opening along ``down`` fell below its floor (0, or less where the pair crossed
    already before, as dlib's closed lips often do by a pixel) move apart, each by half the shortfall, in place."""
    for (u, v), floor in zip(pairs, floors):
        short = np.maximum(floor - _gap(points, (u, v), down), 0)[..., None] / 2
        points[..., u, :] -= short * down
        points[..., v, :] += short * down


# -- the driver's reference frame -----------------------------------------------------------------------


def _dist(points: np.ndarray, i: int, j: int) -> np.ndarray:
    return np.linalg.norm(points[..., i, :] - points[..., j, :], axis=-1)


def expression_features(points: np.ndarray) -> np.ndarray:
    """Scale-free measures of expression (..., 5) of landmarks (..., 68, 2), each in units of the eye distance:
    inner-lip opening, mouth width, right and left eye opening, brow height above the eyes."""
    P = np.asarray(points, np.float64)
    eye_dist = np.maximum(_dist(P, 36, 45), 1e-6)
    mouth_open = (_dist(P, 61, 67) + _dist(P, 62, 66) + _dist(P, 63, 65)) / 3
    mouth_width = _dist(P, 48, 54)
    right_eye = (_dist(P, 37, 41) + _dist(P, 38, 40)) / 2
    left_eye = (_dist(P, 43, 47) + _dist(P, 44, 46)) / 2
    brows = np.linalg.norm(P[..., BROWS, :].mean(-2) - P[..., EYES, :].mean(-2), axis=-1)
    return np.stack([mouth_open, mouth_width, right_eye, left_eye, brows], -1) / eye_dist[..., None]


# Weights of the features when matching expressions: mouth opening matters most (it is the largest motion
# and the one a viewer notices), eyes next (a source with closed eyes should not be matched to open ones).
_FEATURE_WEIGHTS = np.array([3.0, 1.0, 2.0, 2.0, 1.0])


def choose_reference(driver: np.ndarray, valid: np.ndarray, source: np.ndarray, rest_mouth: float = 0.0) -> int:
    """Index of the valid driver frame (of (N, 68, 2)) whose expression is closest to the source's (68, 2), its
    mouth's opening counted from ``rest_mouth`` (mouth widths: a smile's teeth together are a shut jaw)."""
    valid = np.asarray(valid, bool)
    if not valid.any():
        raise ValueError("no valid driver frame to take as the reference")
    idx = np.flatnonzero(valid)
    own = expression_features(source)
    own[0] = max(own[0] - rest_mouth * own[1], 0.0)  # both in eye distances
    diff = expression_features(np.asarray(driver)[idx]) - own
    return int(idx[np.argmin((diff * diff * _FEATURE_WEIGHTS).sum(-1))])


# -- frame by frame ----------------------------------------------------------------------------------------


class HoldLast:
    """Landmarks through a face's absence: ``hold(points)`` returns ``points`` and keeps them; ``hold(None)`` (no face
    in this frame) returns the last ones kept, ``before_first`` until there are any. The one way a lost face is
    bridged, live (``MotionTransfer``) and over a tracked driver file (``hold_last``)."""

    def __init__(self, before_first: np.ndarray):
        self.last = np.asarray(before_first, np.float32)

    def __call__(self, points: np.ndarray | None) -> np.ndarray:
        if points is not None:
            self.last = np.asarray(points, np.float32)
        return self.last


def hold_last(points: np.ndarray, valid: np.ndarray, before_first: np.ndarray) -> np.ndarray:
    """(N, 68, 2) float32: ``points`` where ``valid``, elsewhere the last valid frame's (``before_first`` before
    the first valid one); ``HoldLast`` over the frames."""
    hold = HoldLast(before_first)
    out = np.array(points, np.float32, copy=True)
    for i in range(len(out)):
        out[i] = hold(out[i] if valid[i] else None)
    return out


class MotionTransfer:
    """Per-frame motion transfer for a stream of driver landmarks (causal: works on a live camera).

    ``update(points)`` takes the driver's landmarks of the next frame (68, 2), or None when it has no face, and
    returns the landmarks to render in the source crop's pixels (68, 2). Without a face, the last good result
    is repeated (the source's own landmarks before the first face: ``HoldLast``). ``reference`` fixes the driver's
    reference frame; None takes the first frame with a face (``reset()`` forgets it, so the next face becomes the
    new reference). ``absolute=True`` passes the driver's landmarks through unchanged (the caller has mapped them
    into the crop); ``head_motion=False`` transfers the expression only (``retarget``). With a face-mesh backend,
    ``update(points, dense)`` also takes the frame's dense points (478, 2) and ``reference_dense`` the reference's:
    they measure the eyes and mouth (``expression_ratios``). The driver's eyes' open level comes from the frames
    seen so far (``eye_levels``, causal, at ``fps``), the reference's from the frames from it on (a window's worth:
    a camera that starts on a blink does not open the source's eyes wide for good). ``update(..., together=)``: how
    surely the frame's teeth are together (``fsth.animate.mouth.teeth_together``), whose grin gap, over the frames
    seen so far (``grin_gaps``, causal), is not added to the source's ``rest_mouth``.
    """

    def __init__(
        self,
        source: np.ndarray,
        reference: np.ndarray | None = None,
        *,
        absolute: bool = False,
        head_motion: bool = True,
        reference_dense: np.ndarray | None = None,
        fps: float = 30.0,
        rest_mouth: float = 0.0,
    ):
        self.source = np.asarray(source, np.float32)
        self.rest_mouth = rest_mouth
        self.reference = None if reference is None else np.asarray(reference, np.float32)
        self.reference_dense = reference_dense
        self.absolute = absolute
        self.head_motion = head_motion
        self.hold = HoldLast(self.source.copy())
        self.fps = fps
        self.eyes: collections.deque = collections.deque(maxlen=2 * _level_half(fps) + 1)
        self.since_reference: list[np.ndarray] = []  # the eyes' openings from the reference on, a window's worth
        self.reference_level: np.ndarray | None = None  # their open level, fixed once the window is full
        self.grins: collections.deque = collections.deque(maxlen=_grin_half(fps) + 1)  # (opening, together)

    @property
    def last(self) -> np.ndarray:
        """The landmarks returned last (the source's before the first face)."""
        return self.hold.last

    def reset(self) -> None:
        """Take the next frame with a face as the driver's new reference (a live user's "this is neutral")."""
        self.reference = self.reference_dense = None
        self.since_reference = []

    def update(
        self, points: np.ndarray | None, dense: np.ndarray | None = None, together: float | None = None
    ) -> np.ndarray:
        if points is None or not np.isfinite(points).all():
            return self.hold(None)
        if self.absolute:
            return self.hold(points)
        if self.reference is None:
            self.reference, self.reference_dense = np.asarray(points, np.float32), dense
        if dense is None or self.reference_dense is None:
            dense = None  # measured as retarget measures: on the mesh only where both frames have it
        ratios = expression_ratios(points, dense)
        self.eyes.append(ratios[1:3])
        grin = None
        if together is not None:
            self.grins.append((ratios[0], together))
            grin = float(grin_gaps(*np.array(self.grins).T, self.fps, causal=True)[-1])
        if len(self.since_reference) < self.eyes.maxlen:
            self.since_reference.append(self.eyes[-1])
            self.reference_level = _last_level(np.array(self.since_reference), self.fps)
        return self.hold(
            retarget(
                self.source,
                points,
                self.reference,
                head_motion=self.head_motion,
                driver_dense=dense,
                reference_dense=self.reference_dense,
                eye_level=_last_level(np.array(self.eyes), self.fps),
                reference_level=self.reference_level,
                rest_mouth=self.rest_mouth,
                driver_grin=grin,
            )
        )
