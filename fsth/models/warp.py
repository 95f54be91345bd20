"""The landmark-driven warp: move the source's own pixels so that its 68 landmarks land on the target's.

Stage: the warp-guided generator (training, fine-tuning, animation) and ``fsth animate --model warp``. A thin-plate
spline (TPS) f: R^2 -> R^2 with f(target_i) = source_i through the 68 landmark pairs plus fixed anchors on the
image border (so the background stays put), solved per pair in one batched linear solve. It is evaluated on a
coarse grid, upsampled bilinearly to the output's side, and the source is read there with ``grid_sample``: a
backward warp, every output pixel looks up where it comes from. Batched, differentiable (in the image and in the
points) and device-agnostic.

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

    r^2 = |a|^2 + |b|^2 - 2 a.b, one matrix product: 7x faster on a CPU than differencing (B, M, N, 2)."""
    r2 = a.pow(2).sum(-1)[:, :, None] + b.pow(2).sum(-1)[:, None, :] - 2 * a @ b.transpose(1, 2)
    r2 = r2.clamp_min(1e-12)
    return r2 * torch.log(r2)


def _with_anchors(points: torch.Tensor) -> torch.Tensor:
    anchors = border_anchors(points.device, points.dtype)
    return torch.cat([points, anchors.expand(points.shape[0], -1, -1)], dim=1)


def solve_tps(target: torch.Tensor, source: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The spline through ``target`` -> ``source`` (B, N, 2) in [-1, 1], plus the border anchors.

    Returns (control points (B, N + A, 2), coefficients (B, N + A + 3, 2)) for ``apply_tps``.
    """
    ctrl = _with_anchors(target.float())
    dest = _with_anchors(source.float())
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
def _lattice(n: int, out_size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
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
    ctrl, coef = solve_tps(to_unit(target_points, size), to_unit(source_points, size))
    axis, query, anchor_kernel = _lattice(max(out_size // GRID_DIVISOR, 8) + 1, out_size, ctrl.device)
    return _spline_grid(ctrl, coef, axis, axis, out_size, out_size, query, anchor_kernel)


def _spline_grid(
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
    return F.interpolate(mapped, size=(rows, cols), mode="bilinear", align_corners=True).permute(0, 2, 3, 1)


def warp(image: torch.Tensor, source_points: torch.Tensor, target_points: torch.Tensor) -> torch.Tensor:
    """``image`` (B, C, S, S) with landmarks ``source_points`` (B, 68, 2), warped so that they move to
    ``target_points`` (B, 68, 2); pixels from outside the image repeat its border. The grid and the sampling run
    in float32 under autocast too; the result has the image's dtype."""
    grid = warp_grid(target_points, source_points, image.shape[-1])
    with torch.autocast(image.device.type, enabled=False):
        out = F.grid_sample(image.float(), grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out.to(image.dtype)


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
    ctrl, coef = solve_tps(to_unit(target_points, size), to_unit(source_points, size))
    mapped = _spline_grid(ctrl, coef, xs, ys, rows, cols)
    # crop [-1, 1] -> crop pixels -> photo pixels -> photo [-1, 1]
    px = ((mapped[..., 0] + 1) * size - 1) / 2 / sx + x0
    py = ((mapped[..., 1] + 1) * size - 1) / 2 / sy + y0
    grid = torch.stack([(2 * px + 1) / w - 1, (2 * py + 1) / h - 1], dim=-1).to(photo.dtype)
    return F.grid_sample(photo, grid, mode="bilinear", padding_mode="border", align_corners=False)
