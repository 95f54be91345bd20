"""The landmark-driven warp: move the source's own pixels so that its 68 landmarks land on the target's.

Stage: the warp-guided generator (training, fine-tuning, animation) and ``fsth animate --model warp``. A thin-plate
spline (TPS) f: R^2 -> R^2 with f(target_i) = source_i through the 68 landmark pairs plus fixed anchors on the
image border (so the background stays put), solved per pair in one batched linear solve. It is evaluated on a
coarse grid, upsampled bilinearly to the output's side, and the source is read there with ``grid_sample``: a
backward warp, every output pixel looks up where it comes from. Batched, differentiable (in the image and in the
points) and device-agnostic.

The face's parts that one smooth spline gets wrong (``face_controls``, ``_add_eyelids``; every caller gets them):
- brows: support points above the brows, placed by the eye corners in both point sets, so a raised brow moves its
  own texture and compresses the forehead below them instead of stretching up to the crop's border;
- eyelids: the spline moves each eye with its corners only, and an eyelid layer, computed at every pixel of the
  eyes' box, slides the upper lid over an eyeball read at its own scale: a closing eye shows the lid coming down
  over an unsqueezed eyeball, a closed one lid skin and lashes (the spline alone squeezed the eyeball into the
  slit, and its smoothing left a shut eye half open);
- the mouth (``mouth_hole``): where the target's inner lips part wider than the source's, the spline reads the
  pixels between them from the source's lips (on a closed-mouth photo, from the one line where its lips meet) and
  stretches lip over the opening. Those pixels are a hole instead, ``HOLE_COLOUR`` (a dark mouth), for what is
  laid over it to fill: the mouth layer of ``fsth animate``, or the warp-guided generator, which learns to draw
  it. Where the source's own mouth is open, its teeth and dark inside are warped as they are.

Coordinates: landmarks are in pixels of a ``size`` x ``size`` image with pixel centres at integers (OpenCV's
convention, as everywhere in fsth); internally they are mapped to [-1, 1] with ``grid_sample``'s
``align_corners=False`` convention, so one spline serves any resolution of the same frame: ``warp_region`` warps a
photo at its own resolution with the spline of its 256x256 crop (``--paste-back``).

With K shots, ``warp_shots`` warps the shot whose landmarks are nearest the target's (after removing position and
scale): the pose and expression that need the least stretching.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F

from fsth.landmarks.parts import EYES, INNER_LIPS

ANCHORS_PER_SIDE = 17  # fixed points per border side (corners included): 64 anchors, 16 px apart at 256
REGULARISATION = 1e-4  # lambda of the spline's smoothing term, in [-1, 1] units: keeps near-duplicate points solvable
GRID_DIVISOR = 4  # the spline is evaluated on a (side / 4)^2 grid, then upsampled: ~16x fewer kernel evaluations


def to_unit(points: torch.Tensor, size: int) -> torch.Tensor:
    """Pixel coordinates (centres at integers) of a ``size``-sided image -> [-1, 1] (align_corners=False)."""
    return (2 * points + 1) / size - 1


def border_anchors(device=None, dtype=torch.float32, per_side: int = ANCHORS_PER_SIDE) -> torch.Tensor:
    """(4 (per_side - 1), 2) points on the border of [-1, 1]^2, corners included, each mapped to itself."""
    t = torch.linspace(-1.0, 1.0, per_side, device=device, dtype=dtype)[:-1]
    one = torch.ones_like(t)
    return torch.cat(
        [torch.stack([t, -one], 1), torch.stack([one, t], 1), torch.stack([-t, one], 1), torch.stack([-one, -t], 1)]
    )


def _kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """TPS radial basis U(r) = r^2 log r^2 between point sets a (B, M, 2) and b (B, N, 2) -> (B, M, N).

    r^2 = |a|^2 + |b|^2 - 2 a.b, one fused matrix product (baddbmm) clamped in place: 7x faster on a CPU than
    differencing (B, M, N, 2), and the fused form another 1.4x."""
    squares = a.pow(2).sum(-1)[:, :, None] + b.pow(2).sum(-1)[:, None, :]
    r2 = torch.baddbmm(squares, a, b.transpose(1, 2), alpha=-2).clamp_min_(1e-12)
    return r2 * torch.log(r2)


def _with_anchors(points: torch.Tensor) -> torch.Tensor:
    anchors = border_anchors(points.device, points.dtype)
    return torch.cat([points, anchors.expand(points.shape[0], -1, -1)], dim=1)


# -- the face's parts: support points above the brows, and the eyelids ---------------------------------------

# Support points above the brows, in units of the outer eye corners' distance from their midpoint (x along the
# eyes, y down the face; the brows sit about 0.5 above the eye corners): a row across the forehead with one at each
# temple, and a second row higher up that holds the top of the forehead (with one row, the spline's bulge moved it
# by 4 px under a brow raised 9 px; with two, 0.2 px). Placed by the eye corners, which expression does not move,
# not by the brows: a raised brow moves its own texture and compresses the forehead between it and the first row,
# instead of stretching the brow up to the crop's border.
SUPPORT = (
    *((-1.8, -1.3), (-0.9, -1.4), (0.0, -1.4), (0.9, -1.4), (1.8, -1.3)),
    *((-2.0, -0.7), (2.0, -0.7)),
    *((-1.3, -2.3), (0.0, -2.3), (1.3, -2.3)),
)
# The eyes (``EYES``) are points 36-41 (right eye) and 42-47 (left), each from its corner on the image's left, over
# the upper lid (1, 2) to the other corner (3) and back under the lower lid (4, 5).
LID_REACH = (-1.3, 1.0)  # the eyelid layer spans from 1.3 half eye widths above the corner line to 1 below
# How far past the lower lid's line a shut upper lid's edge comes down, in half eye widths at the eye's middle (less
# towards the corners), from half closed (none) to shut (all): a shut lid covers the lower lid's rim. Ending on the
# line left the rim and a strip of eyeball below the lashes, which MediaPipe's face mesh reads as an open slit
# (0.16-0.22 eye widths on the three benchmark portraits, where a real shut eye reads 0.02-0.09); 0.4 gave
# 0.12-0.19. More pulls the lashes down into a pouch under the eye.
LID_COVER = 0.4


def support_points(points: torch.Tensor) -> torch.Tensor:
    """(B, len(SUPPORT), 2) points above the brows of landmarks (B, 68, 2), in the landmarks' units."""
    centre = (points[:, 36] + points[:, 45]) / 2
    x = (points[:, 45] - points[:, 36]) / 2  # (B, 2): to the right along the eyes
    y = torch.stack([-x[:, 1], x[:, 0]], dim=1)  # down the face
    offsets = torch.tensor(SUPPORT, device=points.device, dtype=points.dtype)  # (P, 2)
    return centre[:, None] + offsets[:, :1] * x[:, None] + offsets[:, 1:] * y[:, None]


def _eyes(points: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Both eyes of landmarks (B, 68, 2): their points (B, 2, 6, 2) and frames: the corners' midpoints (B, 2, 2),
    half the corner-to-corner vectors (B, 2, 2) and their normals pointing down the face, so that the corners sit
    at u = -1 and +1 of u x + v y."""
    eyes = points[:, EYES].unflatten(1, (2, 6))
    x = (eyes[:, :, 3] - eyes[:, :, 0]) / 2
    return eyes, ((eyes[:, :, 3] + eyes[:, :, 0]) / 2, x, torch.stack([-x[..., 1], x[..., 0]], dim=-1))


def _eye_coordinates(points: torch.Tensor, frames) -> tuple[torch.Tensor, torch.Tensor]:
    """(u, v) of points (B, 2, ..., 2) (one set per eye, the eyes' axis second) in the eyes' ``frames``."""
    c, x, y = frames
    basis = torch.stack([x, y], -2) / x.pow(2).sum(-1).clamp_min(1e-12)[..., None, None]  # (B, 2, 2 (u, v), 2)
    uv = torch.einsum("be...k,bejk->be...j", points - c.reshape(*c.shape[:2], *[1] * (points.dim() - 3), 2), basis)
    return uv[..., 0], uv[..., 1]


def face_controls(target: torch.Tensor, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The spline's point pairs of landmarks ``target`` -> ``source`` (B, 68, 2): the landmarks and the support
    points above the brows, (B, 68 + len(SUPPORT), 2) each. The target's lid points are replaced by the source's
    carried by each eye's similarity (its corners onto the target's): the spline moves each eye with its corners
    and leaves the lids to the eyelid layer (``_add_eyelids``); a smooth spline cannot close an eye (it squeezes the
    eyeball into a smear)."""
    source_eyes, source_frames = _eyes(source)
    target_eyes, (c, x, y) = _eyes(target)
    u, v = _eye_coordinates(source_eyes, source_frames)  # (B, 2, 6)
    placed = c[:, :, None] + u[..., None] * x[:, :, None] + v[..., None] * y[:, :, None]  # (B, 2, 6, 2)
    corners = torch.zeros(6, 1, dtype=torch.bool, device=target.device)
    corners[[0, 3]] = True  # the corners stay the target's (the similarity takes them there, up to rounding)
    eyes = torch.where(corners, target_eyes, placed).flatten(1, 2)
    target = torch.cat([target[:, : EYES.start], eyes, target[:, EYES.stop :]], 1)
    return torch.cat([target, support_points(target)], 1), torch.cat([source, support_points(source)], 1)


def _lid_curves(points: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Both eyes' lids as parabolas v = a (1 - u^2) through the corners in each eye's frame: the coefficients
    (B, 2, 2, 1, 1) (eye; upper (negative: above), lower; two axes to broadcast over pixels), and the frames."""
    eyes, frames = _eyes(points)
    u, v = _eye_coordinates(eyes, frames)  # (B, 2, 6)
    a = v / (1 - u * u).clamp_min(0.2)
    return torch.stack([a[..., 1:3].mean(-1), a[..., 4:6].mean(-1)], -1)[..., None, None], frames


def _add_eyelids(grid: torch.Tensor, target: torch.Tensor, source: torch.Tensor, xs, ys) -> torch.Tensor:
    """The spline's ``grid`` (B, rows, cols, 2) at the pixels xs x ys ([-1, 1] units, like ``target`` / ``source``
    (B, 68, 2)) with the eyelid layer added: each upper lid slides over an eyeball that is not squeezed.

    In each target eye's frame (corners at u = +-1, v down, in half eye widths), with the lids as parabolas, a pixel
    (u, v) reads the source at (u, v') in the source eye's frame (``face_controls`` makes the spline follow that
    eye's similarity, so v' - v is the whole correction):
    - between the target's lids (the opening), the eyeball: v' = v measured from the lower lid, stretched only when
      the target is open wider than the source (there is no more eyeball to show): a lowered lid covers it;
    - above the upper lid, up to LID_REACH[0]: the lid skin, stretched from there so that the lid's edge (its
      lashes) lands on the target's: a closed eye shows lid skin down to the lashes;
    - below the lower lid, down to LID_REACH[1]: the lower lid and cheek, stretched likewise.
    The correction vanishes at the reach and beyond the corners; at the upper lid's edge it jumps, lid over eyeball.
    Only the box around both eyes (over the batch) is computed, a few % of the pixels; it is added in place.
    """
    top, bottom = LID_REACH
    b = target.shape[0]
    curves, both = _lid_curves(torch.cat([target, source]))  # one pass for both point sets
    (curves_t, curves_s), y_s = curves.split(b), both[2][b:]
    frames = tuple(f[:b] for f in both)
    c, x, y = frames
    reach = torch.tensor([[-1.0, top], [1.0, top], [-1.0, bottom], [1.0, bottom]], device=c.device)
    ends = (c[:, :, None] + reach[:, :1] * x[:, :, None] + reach[:, 1:] * y[:, :, None]).detach().reshape(-1, 2)
    lo, hi = ends.min(0).values, ends.max(0).values
    x0, x1, y0, y1 = torch.cat(
        [
            torch.searchsorted(xs.contiguous(), torch.stack([lo[0], hi[0]])),
            torch.searchsorted(ys.contiguous(), torch.stack([lo[1], hi[1]])),
        ]
    ).tolist()  # one synchronisation
    if x1 <= x0 or y1 <= y0:
        return grid
    gy, gx = torch.meshgrid(ys[y0:y1], xs[x0:x1], indexing="ij")
    pixels = torch.stack([gx, gy], dim=-1)[None, None]  # (1, 1, h, w, 2)
    u, v = _eye_coordinates(pixels, frames)  # (B, 2, h, w)
    bump = (1 - u * u).clamp_min(0)  # the lids' shape, 0 beyond the corners
    # inside the reach (no division by zero below, whatever the landmarks); crossed lids are shut
    up_t = (curves_t[:, :, 0] * bump).clamp(top + 0.1, bottom - 0.1)
    low_t = torch.maximum((curves_t[:, :, 1] * bump).clamp(max=bottom - 0.1), up_t)
    up_s = (curves_s[:, :, 0] * bump).clamp(top + 0.1, bottom - 0.1)
    low_s = torch.maximum((curves_s[:, :, 1] * bump).clamp(max=bottom - 0.1), up_s)
    ball = low_s - (low_t - v) * ((low_s - up_s) / (low_t - up_t).clamp_min(1e-6)).clamp(max=1.0)
    # a closing lid's edge comes down past the lower lid's line, over its rim (LID_COVER)
    opening_t, opening_s = (c[:, :, 1] - c[:, :, 0] for c in (curves_t, curves_s))
    closure = (1 - opening_t / opening_s.clamp_min(1e-6)).clamp(0, 1)
    edge = (up_t + LID_COVER * (2 * closure - 1).clamp_min(0) * bump).clamp(max=bottom - 0.1)
    lid = top + (v - top) * (up_s - top) / (edge - top)
    under = bottom + (v - bottom) * (low_s - bottom) / (low_t - bottom)
    moved = torch.where(v < edge, lid, torch.where(v <= low_t, ball, under))
    dv = torch.where((v >= top) & (v <= bottom), moved - v, torch.zeros_like(v))  # in half source eye widths
    grid[:, y0:y1, x0:x1] += (dv[..., None] * y_s[:, :, None, None]).sum(1)
    return grid


def solve_tps(target: torch.Tensor, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The spline through the landmarks ``target`` -> ``source`` (B, 68, 2) in [-1, 1] (``face_controls``: with
    support points above the brows, the lids left to the eyelid layer), plus the border anchors.

    Returns (control points (B, N + A, 2), coefficients (B, N + A + 3, 2)) for ``apply_tps``.
    """
    target, source = face_controls(target.float(), source.float())
    ctrl = _with_anchors(target)
    dest = _with_anchors(source)
    b, n = ctrl.shape[:2]
    K = _kernel(ctrl, ctrl) + REGULARISATION * torch.eye(n, device=ctrl.device)
    P = torch.cat([torch.ones(b, n, 1, device=ctrl.device), ctrl], dim=2)  # (B, n, 3)
    top = torch.cat([K, P], dim=2)
    bottom = torch.cat([P.transpose(1, 2), torch.zeros(b, 3, 3, device=ctrl.device)], dim=2)
    A = torch.cat([top, bottom], dim=1)  # (B, n + 3, n + 3)
    rhs = torch.cat([dest, torch.zeros(b, 3, 2, device=ctrl.device)], dim=1)
    return ctrl, torch.linalg.solve(A, rhs)


def apply_tps(ctrl: torch.Tensor, coef: torch.Tensor, query: torch.Tensor, anchor_kernel=None) -> torch.Tensor:
    """The spline at ``query`` (B, M, 2) -> (B, M, 2), all in [-1, 1] units. ``anchor_kernel``: the kernel between
    ``query`` and the border anchors (1, M, A), when the caller has it already (it depends on neither pair)."""
    n = ctrl.shape[1]
    affine = coef[:, n:]  # (B, 3, 2): constant, x, y
    if anchor_kernel is None:
        moving = _kernel(query, ctrl) @ coef[:, :n]
    else:
        a = anchor_kernel.shape[-1]  # the anchors are the last control points (``_with_anchors``)
        moving = _kernel(query, ctrl[:, : n - a]) @ coef[:, : n - a] + anchor_kernel @ coef[:, n - a : n]
    return moving + affine[:, :1] + query @ affine[:, 1:]


@functools.lru_cache(maxsize=16)
def lattice(n: int, out_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The coarse n x n lattice of an ``out_size``-sided grid (its axis, its (1, n^2, 2) points) and the kernel
    between them and the border anchors (1, n^2, A): the same for every frame, so computed once. Half the kernel's
    cost per frame at 256x256."""
    with torch.inference_mode(False), torch.no_grad():  # plain tensors, kept: usable with autograd and without
        axis = torch.linspace(-1 + 1 / out_size, 1 - 1 / out_size, n, device=device)  # first to last pixel centre
        gy, gx = torch.meshgrid(axis, axis, indexing="ij")
        query = torch.stack([gx, gy], dim=-1).reshape(1, -1, 2)
        return axis, query, _kernel(query, border_anchors(device)[None])


def _fp32(fn):
    """Run ``fn`` in float32 even under autocast: in bfloat16 the spline's kernel sums cancel (r^2 log r^2 times
    large coefficients) and the warp moved pixels by several px (a training run under bf16 autocast learned to
    blur those errors away)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        devices = {a.device.type for a in args if isinstance(a, torch.Tensor)} or {"cpu"}
        with torch.autocast(next(iter(devices)), enabled=False):
            return fn(
                *[a.float() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args], **kwargs
            )

    return wrapper


@_fp32
def warp_grid(
    target_points: torch.Tensor, source_points: torch.Tensor, size: int, out_size: int | None = None
) -> torch.Tensor:
    """The sampling grid (B, S, S, 2) of ``grid_sample`` that takes an image whose landmarks are
    ``source_points`` to one whose landmarks are ``target_points`` (both (B, 68, 2) in pixels of a ``size``-sided
    image). ``out_size``: the side of the grid (default ``size``). Always float32, autocast or not."""
    out_size = out_size or size
    target, source = to_unit(target_points, size), to_unit(source_points, size)
    ctrl, coef = solve_tps(target, source)
    axis, query, anchor_kernel = lattice(max(out_size // GRID_DIVISOR, 8) + 1, out_size, ctrl.device)
    grid = spline_grid(ctrl, coef, axis, axis, out_size, out_size, query, anchor_kernel)
    pixels = _pixel_axis(out_size, ctrl.device)
    return _add_eyelids(grid, target, source, pixels, pixels)


@functools.lru_cache(maxsize=16)
def _pixel_axis(n: int, device: torch.device) -> torch.Tensor:
    """The pixel centres of an n-pixel side in [-1, 1] units (align_corners=False)."""
    with torch.inference_mode(False), torch.no_grad():
        return torch.linspace(-1 + 1 / n, 1 - 1 / n, n, device=device)


def spline_grid(
    ctrl: torch.Tensor,
    coef: torch.Tensor,
    xs: torch.Tensor,
    ys: torch.Tensor,
    rows: int,
    cols: int,
    query: torch.Tensor | None = None,
    anchor_kernel: torch.Tensor | None = None,
) -> torch.Tensor:
    """The spline at every pixel of a rows x cols image, (B, rows, cols, 2): evaluated on the coarse lattice xs x
    ys ([-1, 1] units of the spline's image, evenly spaced from the first to the last pixel centre), then
    interpolated with align_corners=True, which is exact at the lattice and for the spline's affine part, with no
    extrapolation at the border. ``query`` / ``anchor_kernel``: the lattice's points and anchor kernel, if cached."""
    if query is None:
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        query = torch.stack([gx, gy], dim=-1).reshape(1, -1, 2)
    query = query.expand(ctrl.shape[0], -1, -1)
    mapped = apply_tps(ctrl, coef, query, anchor_kernel).reshape(-1, len(ys), len(xs), 2).permute(0, 3, 1, 2)
    # contiguous: from a channels-last layout, interpolate takes a path 3x slower on a CPU
    return F.interpolate(mapped.contiguous(), size=(rows, cols), mode="bilinear", align_corners=True).permute(
        0, 2, 3, 1
    )


def warp(image: torch.Tensor, source_points: torch.Tensor, target_points: torch.Tensor) -> torch.Tensor:
    """``image`` (B, 3, S, S) in [-1, 1] with landmarks ``source_points`` (B, 68, 2), warped so that they move to
    ``target_points`` (B, 68, 2); pixels from outside the image repeat its border, and the mouth's opening beyond
    the source's is a hole (``mouth_hole``). The grid and the sampling run in float32 under autocast too; the result
    has the image's dtype."""
    size = image.shape[-1]
    grid = warp_grid(target_points, source_points, size)
    with torch.autocast(image.device.type, enabled=False):
        out = F.grid_sample(image.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
        pixels = _pixel_axis(size, grid.device)
        target, source = to_unit(target_points, size), to_unit(source_points, size)
        out = fill_hole(out, mouth_hole(grid, target, source, pixels, pixels))
    return out.to(image.dtype)


# The colour of the mouth's hole (``mouth_hole``), RGB in [-1, 1]: a dark mouth (8-bit 30, 14, 14).
HOLE_COLOUR = (30 / 127.5 - 1, 14 / 127.5 - 1, 14 / 127.5 - 1)
# A pixel inside the target's inner lips is all hole where the warp reads its rows at under the first of these
# shares of the face's scale (a source's lips stretched), none from the second.
HOLE_STRETCH = (0.3, 0.6)


def _smooth(x: torch.Tensor, edge0: float, edge1: float) -> torch.Tensor:
    t = ((x - edge0) / (edge1 - edge0)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def _polygon_inside(query: torch.Tensor, polygon: torch.Tensor, pixel, grow: float = 0.0) -> torch.Tensor:
    """How far each point of ``query`` (B, P, 2) lies inside the closed ``polygon`` (B, N, 2), anti-aliased over
    one ``pixel`` (the query's pixel size in their units: a float or (B, 1)): 1 inside, 0 outside, 0.5 on an edge
    grown outwards by ``grow`` pixels (B, P)."""
    a, b = polygon[:, None], polygon.roll(-1, dims=1)[:, None]  # (B, 1, N, 2): the edges a -> b
    q = query[:, :, None]  # (B, P, 1, 2)
    ab, aq = b - a, q - a
    t = ((aq * ab).sum(-1) / ab.pow(2).sum(-1).clamp_min(1e-12)).clamp(0, 1)
    distance = (aq - t[..., None] * ab).norm(dim=-1).amin(-1)  # (B, P): to the nearest edge
    # crossing number: edges that straddle the query's row, crossed to the query's right
    ay, by = a[..., 1], b[..., 1]
    straddles = (ay > q[..., 1]) != (by > q[..., 1])
    x_cross = a[..., 0] + (q[..., 1] - ay) * ab[..., 0] / torch.where(ab[..., 1] == 0, 1e-12, ab[..., 1])
    inside = ((straddles & (x_cross > q[..., 0])).sum(-1) % 2) == 1
    signed = torch.where(inside, distance, -distance)
    return (0.5 + grow + signed / pixel).clamp(0, 1)


def mouth_hole(
    grid: torch.Tensor, target: torch.Tensor, source: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor
) -> torch.Tensor | None:
    """The warp's mouth hole (B, 1, rows, cols) in [0, 1], or None where there is none: the pixels inside the
    target's inner lips (points 60-67 of ``target``, (B, 68, 2) in the grid's [-1, 1] units; the output's pixel
    centres at ``xs`` (cols,) and ``ys`` (rows,) in the same units) that the warp's ``grid`` (B, rows, cols, 2)
    stretches down the face (``HOLE_STRETCH``: the source's rows per output row, against the face's scale
    between the two, the eye corners' distance): the opening the source's mouth does not have. A source's own
    opening (a photo's teeth, its dark mouth) is read at about the face's scale, and kept. Computed in the box
    around the target's inner lips only; the lips' edge anti-aliased over a pixel."""
    lips = target[:, INNER_LIPS]  # (B, 8, 2)
    pixel = float((xs[1] - xs[0]).abs()) if len(xs) > 1 else 2.0
    low, high = lips.amin((0, 1)) - pixel, lips.amax((0, 1)) + pixel
    cols = ((xs >= low[0]) & (xs <= high[0])).nonzero()[:, 0]
    rows = ((ys >= low[1]) & (ys <= high[1])).nonzero()[:, 0]
    if len(cols) == 0 or len(rows) == 0:
        return None
    c0, c1, r0, r1 = int(cols[0]), int(cols[-1]) + 1, int(rows[0]), int(rows[-1]) + 1
    gy, gx = torch.meshgrid(ys[r0:r1], xs[c0:c1], indexing="ij")
    query = torch.stack([gx, gy], -1).reshape(1, -1, 2).expand(len(target), -1, -1)
    opening = _polygon_inside(query, lips, pixel, grow=-0.5)  # a pixel on the lips' line is not in the hole
    if not bool((opening > 0).any()):
        return None
    # the source's rows read per output row (central differences, one-sided at the grid's edge)
    a, b = max(r0 - 1, 0), min(r1 + 1, len(ys))
    (stretch,) = torch.gradient(grid[:, a:b, c0:c1, 1], dim=1)
    stretch = stretch[:, r0 - a : r0 - a + r1 - r0]
    scale = (source[:, 45] - source[:, 36]).norm(dim=-1) / (target[:, 45] - target[:, 36]).norm(dim=-1).clamp_min(1e-6)
    stretch = stretch / (pixel * scale[:, None, None])  # 1: the face's scale; small: one source row spread over many
    hole = opening * (1 - _smooth(stretch.reshape(len(target), -1), *HOLE_STRETCH))
    out = torch.zeros(len(target), 1, len(ys), len(xs), device=grid.device, dtype=grid.dtype)
    out[:, 0, r0:r1, c0:c1] = hole.reshape(len(target), r1 - r0, c1 - c0)
    return out


def fill_hole(image: torch.Tensor, hole: torch.Tensor | None) -> torch.Tensor:
    """``image`` (B, 3, H, W) in [-1, 1] with ``HOLE_COLOUR`` laid over ``hole`` (B, 1, H, W) (None: as it is)."""
    if hole is None:
        return image
    colour = torch.tensor(HOLE_COLOUR, device=image.device, dtype=image.dtype)[None, :, None, None]
    return image + hole.to(image.dtype) * (colour - image)


def normalised_shape(points: torch.Tensor) -> torch.Tensor:
    """Landmarks (..., 68, 2) with position and scale removed: centred, unit RMS distance from the centre."""
    centred = points - points.mean(dim=-2, keepdim=True)
    return centred / centred.pow(2).sum(-1).mean(-1, keepdim=True).sqrt()[..., None].clamp_min(1e-6)


def nearest_shot(shots_points: torch.Tensor, target_points: torch.Tensor) -> torch.Tensor:
    """Index (B,) of the shot (B, K, 68, 2) whose landmark shape is nearest the target's (B, 68, 2)."""
    d = (normalised_shape(shots_points) - normalised_shape(target_points)[:, None]).pow(2).sum(-1).mean(-1)
    return d.argmin(dim=1)


def warp_shots(shots: torch.Tensor, shots_points: torch.Tensor, target_points: torch.Tensor) -> torch.Tensor:
    """The nearest shot (B, K, 3, S, S) with landmarks (B, K, 68, 2), warped to ``target_points`` (B, 68, 2)."""
    if shots.shape[1] == 1:  # one shot: nothing to choose, and no copy of it per frame
        return warp(shots[:, 0], shots_points[:, 0], target_points)
    pick = nearest_shot(shots_points, target_points)
    rows = torch.arange(shots.shape[0], device=shots.device)
    return warp(shots[rows, pick], shots_points[rows, pick], target_points)


@_fp32
def warp_region(
    photo: torch.Tensor,
    box,
    source_points: torch.Tensor,
    target_points: torch.Tensor,
    size: int,
    region: tuple[int, int, int, int],
) -> torch.Tensor:
    """Warp a photo at its own resolution with the spline of its crop.

    ``photo`` (1, C, H, W); ``box`` [x0, y0, x1, y1], the photo's square crop box that was resized to ``size``;
    ``source_points`` / ``target_points`` (1, 68, 2) in crop pixels; ``region`` (ix0, iy0, ix1, iy1) the photo
    pixels to produce. Returns (1, C, iy1 - iy0, ix1 - ix0): the warped photo there (the border repeats).
    """
    x0, y0, x1, y1 = (float(v) for v in box)
    ix0, iy0, ix1, iy1 = region
    h, w = photo.shape[-2:]
    device = photo.device
    rows, cols = iy1 - iy0, ix1 - ix0
    # the region's first to last pixel, coarsely; photo pixel p -> crop pixel q = (p - x0) * size / side
    # (CropPolicy's convention) -> [-1, 1] of the crop
    sx, sy = size / (x1 - x0), size / (y1 - y0)
    xs = to_unit((torch.linspace(ix0, ix1 - 1, cols // GRID_DIVISOR + 2, device=device) - x0) * sx, size)
    ys = to_unit((torch.linspace(iy0, iy1 - 1, rows // GRID_DIVISOR + 2, device=device) - y0) * sy, size)
    target, source = to_unit(target_points, size), to_unit(source_points, size)
    ctrl, coef = solve_tps(target, source)
    mapped = spline_grid(ctrl, coef, xs, ys, rows, cols)
    every_x = to_unit((torch.arange(ix0, ix1, device=device, dtype=torch.float32) - x0) * sx, size)
    every_y = to_unit((torch.arange(iy0, iy1, device=device, dtype=torch.float32) - y0) * sy, size)
    mapped = _add_eyelids(mapped, target, source, every_x, every_y)  # the same layers as warp_grid's
    # crop [-1, 1] -> crop pixels -> photo pixels -> photo [-1, 1]
    px = ((mapped[..., 0] + 1) * size - 1) / 2 / sx + x0
    py = ((mapped[..., 1] + 1) * size - 1) / 2 / sy + y0
    grid = torch.stack([(2 * px + 1) / w - 1, (2 * py + 1) / h - 1], dim=-1).to(photo.dtype)
    out = F.grid_sample(photo, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return fill_hole(out, mouth_hole(mapped, target, source, every_x, every_y))  # the same hole as warp's
