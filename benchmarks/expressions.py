"""Expressions that read as real (issue 17): cross-reenactment judged by a face mesh that fsth does not warp to.

    python benchmarks/expressions.py                      # 3 portraits x 3 drivers, model and warp (36 min*)
    python benchmarks/expressions.py --quick              # the first 60 frames of each driver (9 min*)
    python benchmarks/expressions.py --modes model,warp,model:mouth=driver   # an AnimateOptions field per mode
    python benchmarks/expressions.py --judge fsth         # fsth.landmarks.make_detector("mesh") as the judge
    python benchmarks/expressions.py --portraits eamm_scarlett --drivers lia_vox_driving2   # a subset (file stems)

(*) on the development machine, 2 cores shared with other work (load 5-8). Of the full run, about half was dlib's
identity figures (its detector was then reloaded per video; now once), a third ``animate`` (tracking the 700x700
driver twice per portrait), the judge under a minute in all.

In: the shipped model (or ``--checkpoint``), 3 portraits of ``images2/`` and 3 of the model's 4 held-out drivers
(``fsth/weights/MODEL_CARD.md``: none trained on; people different from each other and from the portraits), from
``--media``. Each pair runs what ``fsth animate PORTRAIT DRIVER -o out.mp4`` runs (``load_person`` + ``animate``,
256x256 crops, no audio) once per mode: ``model`` (the checkpoint's G) and ``warp`` (``--model warp``); a mode may
set any ``AnimateOptions`` field (``model:mouth=driver``), so options added later are measured without a change here.

The judge sees the driver's frames and the result's: a 478-point face mesh per frame (MediaPipe's indices), from

* ``reference`` (default): MediaPipe 0.10.21's FaceMesh (``refine_landmarks``, video mode, one instance per video)
  run by ``--judge-python`` in its own interpreter (MediaPipe needs numpy < 2): this script writes the frames as
  .npy and a small judge script into a temporary folder, runs it, and reads back (N, 478, 2) pixel meshes (NaN
  where no face);
* ``fsth``: ``fsth.landmarks.make_detector("mesh")``, when fsth has that backend. fsth's mesh backend carries the
  same MediaPipe models, so once the warp follows the mesh, this judge (and the reference one) judges its own fit.

Measured per frame, on the driver and on the result (``measure``): mouth opening (inner lips 13-14 over the mouth
corners 61-291), eye opening (three lid pairs over the eye corners, both eyes averaged), brow height (over the eye
distance), the inner-mouth pixel shares (``mouth_classes`` inside the inner-lip ring: dark cavity, teeth,
lip-coloured and other, relative to the face's own skin and lip colour; ``classify``), a mouth patch normalised on
the corners (for the frame-to-frame change), and dlib's face distance of the result to the portrait. Per pair
(``score``), against the issue's targets: on the driver's open-mouth frames (> 0.12) the result's lip share <= 0.30
(the driver's own is printed beside it), dark-or-teeth >= 0.6x the driver's, teeth >= 0.5x the driver's where it
shows teeth (>= 0.1); mouth r >= 0.8 and open-frame mean 0.7-1.4x the driver's; of the driver's closed-eye frames
(< 0.12) the result's closed in >= 80%, eye r >= 0.8; same person (distance < 0.6) in >= 95% of frames; the
mean frame-to-frame change inside the mouth, result over driver (no target in the issue: reported); and how far the
result's face sides (cheeks, the jaw's sides) lie from the portrait's once eyes and nose are aligned, in face widths
(``outline_change``, reported: a warp stretching a cheek into a bulge on a head's turn moves it).
Per driver, the same figures with fsth's own tracking of the driver (``fsth_reading``: the detector ``fsth
animate`` tracks it with) in the result's place: how far fsth's perception of the driver agrees with the judge's,
the ceiling of every result on that driver.

Out (``--out``, default out/expressions/): ``expressions.json`` (every figure, per pair and mode, with its target
and whether it is met), ``sheet_{mouth,blink,brow}.png`` (per driver x portrait: the driver's frame with the widest
mouth / the most closed eyes / the highest brows, driver row above a row per mode), ``classes.png`` (the colour
classes over the inner mouths at the widest-mouth frames), and the result videos.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from default_model import DRIVERS, PORTRAITS, ROOT, machine  # noqa: E402

from fsth import console  # noqa: E402
from fsth.errors import FsthError, InputError  # noqa: E402
from fsth.landmarks.parts import (  # noqa: E402
    MESH_EYE_LIDS,
    MESH_LIPS_INNER,
    MESH_LIPS_OUTER,
    MESH_MOUTH_CORNERS,
    MESH_MOUTH_GAP,
)

# MediaPipe face-mesh indices (the 468 points of the mesh + 10 of the irises), as fsth names them
INNER_LIPS, OUTER_LIPS = MESH_LIPS_INNER, MESH_LIPS_OUTER  # rings
LIP_GAP = MESH_MOUTH_GAP  # inner lips, upper and lower, at the centre
MOUTH_CORNERS = MESH_MOUTH_CORNERS
EYES = tuple((a, b, lids) for (a, b), lids in MESH_EYE_LIDS)  # (corner, corner, three (upper, lower) lid pairs)
BROWS = ((105, 66, 107), (334, 296, 336))  # the upper brow ridge, right and left
CHEEKS = (50, 280, 101, 330)  # skin samples, away from lips, eyes and beard lines
MESH_POINTS = 478

OPEN_MOUTH = 0.12  # mouth opening (mouth widths) above which a driver frame counts as open (the threshold)
CLOSED_EYE = 0.12  # eye opening (eye widths) below which an eye counts as closed
SEAM = 0.04  # below this opening (mouth widths) the inner-lip ring is a seam, a line of pixels, not an inner mouth
SHOWS_TEETH = 0.1  # teeth share of the inner mouth from which a driver frame counts as showing teeth
SAME_PERSON = 0.6  # dlib's face distance threshold

DARK, TEETH, LIP, OTHER = 0, 1, 2, 3
CLASS_NAMES = ("dark", "teeth", "lip", "other")
CLASS_COLOURS = ((0, 90, 255), (255, 255, 0), (255, 0, 180), (0, 200, 0))  # overlay colours, RGB
LIP_DELTA_E = 12.0  # Lab distance to the lip band's median colour within which a pixel is lip-coloured

# The targets: figure -> (lowest, highest) accepted value (None: unbounded)
TARGETS = {
    "lip_share_open": (None, 0.30),
    "dark_or_teeth_over_driver": (0.6, None),
    "teeth_over_driver": (0.5, None),
    "mouth_r": (0.8, None),
    "mouth_open_ratio": (0.7, 1.4),
    "closed_eyes_followed": (0.8, None),
    "eye_r": (0.8, None),
    "same_person": (0.95, None),
    "mouth_change_over_driver": (None, None),
    "outline_change": (None, None),
}

PATCH = (48, 96)  # (H, W) of the normalised mouth patch; the corners land at x = 24 and 72, y = 24
PATCH_MIN_PIXELS = 20  # fewer inner-mouth pixels in both patches: no frame-to-frame figure for that pair of frames


# ---------------------------------------------------------------------------------------------- geometry


def _dist(mesh: np.ndarray, a, b) -> np.ndarray:
    return np.linalg.norm(mesh[..., a, :] - mesh[..., b, :], axis=-1)


# The face's sides (cheeks and the jaw's sides, not the chin, which a dropping jaw moves) and the points no expression
# moves (the eye corners, the nose), on the judge's mesh.
FACE_SIDES = (356, 454, 323, 361, 288, 397, 127, 234, 93, 132, 58, 172)
RIGID = (33, 133, 362, 263, 1, 4, 6, 168, 197, 195, 5)
FACE_WIDTH = (234, 454)


def outline_change(meshes: np.ndarray, portrait: np.ndarray) -> np.ndarray:
    """How far the face's sides lie from the portrait's once the eyes and nose are laid onto the portrait's
    (similarity), mean over the side points in the portrait's face widths: (N, 478, 2) and (478, 2) -> (N,), NaN
    where the judge found no face. A warp stretching a cheek (the bulge of a head's turn) moves it; a jaw dropping
    within the face moves it little."""
    from fsth.landmarks.retarget import apply_similarity, similarity_fit

    meshes, portrait = np.asarray(meshes, np.float64), np.asarray(portrait, np.float64)
    out = np.full(len(meshes), np.nan)
    found = np.isfinite(meshes).all(axis=(1, 2))
    if found.any() and np.isfinite(portrait).all():
        X = meshes[found]
        L, t = similarity_fit(X, np.broadcast_to(portrait, X.shape), np.array(RIGID))
        sides = list(FACE_SIDES)
        d = np.linalg.norm(apply_similarity(L, t, X)[:, sides] - portrait[sides], axis=-1).mean(-1)
        out[found] = d / np.linalg.norm(portrait[FACE_WIDTH[0]] - portrait[FACE_WIDTH[1]])
    return out


def mouth_opening(mesh: np.ndarray) -> np.ndarray:
    """Inner-lip gap at the centre over the mouth's width. (..., 478, 2) -> (...); NaN where the mesh is."""
    return _dist(mesh, *LIP_GAP) / np.maximum(_dist(mesh, *MOUTH_CORNERS), 1e-6)


def eye_opening(mesh: np.ndarray) -> np.ndarray:
    """Mean gap of three upper / lower lid pairs over the eye's width, both eyes averaged. (..., 478, 2) -> (...)."""
    per_eye = [
        np.mean([_dist(mesh, u, v) for u, v in lids], 0) / np.maximum(_dist(mesh, a, b), 1e-6) for a, b, lids in EYES
    ]
    return (per_eye[0] + per_eye[1]) / 2


def _eye_centres(mesh: np.ndarray) -> list[np.ndarray]:
    return [(mesh[..., a, :] + mesh[..., b, :]) / 2 for a, b, _ in EYES]


def brow_height(mesh: np.ndarray) -> np.ndarray:
    """Height of the brow ridge above its eye's centre over the distance between the eyes, both sides averaged.
    (..., 478, 2) -> (...)."""
    centres = _eye_centres(mesh)
    heights = [np.linalg.norm(mesh[..., brow, :].mean(-2) - c, axis=-1) for brow, c in zip(BROWS, centres)]
    return (heights[0] + heights[1]) / 2 / np.maximum(np.linalg.norm(centres[0] - centres[1], axis=-1), 1e-6)


def paired(*series: np.ndarray) -> tuple[np.ndarray, ...]:
    """Frame i of the result is frame i of the driver (``animate`` writes one frame per driver frame): the series
    cut to their common length and to the frames where every one is finite."""
    n = min(len(s) for s in series)
    cut = [np.asarray(s[:n], np.float64) for s in series]
    keep = np.logical_and.reduce([np.isfinite(s).reshape(n, -1).all(1) for s in cut])
    return tuple(s[keep] for s in cut)


def pearson(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson r over the frames where both are finite (None with fewer than 3, or a constant series)."""
    a, b = paired(a, b)
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return None
    return float(np.corrcoef(a, b)[0, 1])


def open_ratio(driver: np.ndarray, result: np.ndarray, threshold: float = OPEN_MOUTH) -> float | None:
    """Mean of the result's opening over the mean of the driver's, on the driver's frames above ``threshold``."""
    d, r = paired(driver, result)
    open_ = d > threshold
    return float(r[open_].mean() / d[open_].mean()) if open_.any() else None


def closed_followed(driver: np.ndarray, result: np.ndarray, threshold: float = CLOSED_EYE) -> tuple[float | None, int]:
    """(of the driver's frames below ``threshold``, the share where the result is below it too; how many)."""
    d, r = paired(driver, result)
    closed = d < threshold
    return (float((r[closed] < threshold).mean()) if closed.any() else None), int(closed.sum())


def fsth_reading(path: Path, judged: Measures) -> dict | None:
    """How fsth's own tracking of a driver (the detector ``fsth animate`` tracks it with) agrees with the judge on
    it: the same figures as a result's, with fsth's reading of the driver as the result. A result follows the driver
    only as well as fsth perceives it: where these fall short of a target, so does every portrait on that driver,
    however it is rendered. None when that detector gives no face mesh."""
    from fsth.fewshot import detector_for
    from fsth.landmarks.tracker import track_video

    track = track_video(path, detector_for(None))
    if track.mesh is None:
        return None
    mesh = np.where(track.valid[:, None, None], track.mesh, np.nan)
    mouth, eyes = mouth_opening(mesh), eye_opening(mesh)
    return {
        "mouth_r": pearson(judged.mouth, mouth),
        "mouth_open_ratio": open_ratio(judged.mouth, mouth),
        "closed_eyes_followed": closed_followed(judged.eyes, eyes)[0],
        "eye_r": pearson(judged.eyes, eyes),
    }


# ---------------------------------------------------------------------------------------------- colour classes


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 RGB -> float32 CIE Lab (L 0-100, a and b around 0), OpenCV's 8-bit conversion."""
    lab = cv2.cvtColor(np.ascontiguousarray(rgb).reshape(-1, 1, 3), cv2.COLOR_RGB2LAB).astype(np.float32)
    lab[..., 0] *= 100 / 255
    lab[..., 1:] -= 128
    return lab.reshape(*rgb.shape)


def polygon_mask(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def reference_colours(lab: np.ndarray, mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The face's own (skin, lip) Lab colours: medians over discs on the cheeks and over the lip band (the outer-lip
    ring less the inner). lab (H, W, 3), mesh (478, 2) -> two (3,)."""
    h, w = lab.shape[:2]
    radius = max(2, int(round(0.08 * np.linalg.norm(mesh[EYES[0][0]] - mesh[EYES[1][1]]))))
    cheeks = np.zeros((h, w), np.uint8)
    for i in CHEEKS:
        cv2.circle(cheeks, tuple(int(v) for v in np.round(mesh[i])), radius, 1, -1)
    band = polygon_mask((h, w), mesh[list(OUTER_LIPS)]) & ~polygon_mask((h, w), mesh[list(INNER_LIPS)])
    skin = lab[cheeks.astype(bool)]
    lip = lab[band] if band.sum() >= 5 else skin
    return np.median(skin, 0), np.median(lip, 0)


def classify(lab: np.ndarray, skin: np.ndarray, lip: np.ndarray) -> np.ndarray:
    """Colour class of each Lab pixel (..., 3) -> (...) int, relative to the face's own skin and lip colours (Lab):

    * ``DARK``: the mouth's cavity, L below half the skin's;
    * ``TEETH``: bright, L at least 0.85x the skin's, and pale, chroma at most 0.8x the skin's; on a grey face (skin
      chroma below 4, where no chroma tells teeth from skin) brighter than the skin instead (L >= 1.05x);
    * ``LIP``: lip-coloured, within ``LIP_DELTA_E`` (Lab distance) of the lip band's colour: lips, and lip stretched
      over the opening;
    * ``OTHER``: the rest: tongue, gums, shade between lip and cavity, stretched skin."""
    L, chroma = lab[..., 0], np.hypot(lab[..., 1], lab[..., 2])
    skin_chroma = float(np.hypot(skin[1], skin[2]))
    if skin_chroma >= 4:
        teeth = (L >= 0.85 * skin[0]) & (chroma <= 0.8 * skin_chroma)
    else:
        teeth = L >= 1.05 * skin[0]
    out = np.full(L.shape, OTHER, np.int64)
    out[np.linalg.norm(lab - lip, axis=-1) < LIP_DELTA_E] = LIP
    out[teeth] = TEETH
    out[L < 0.5 * skin[0]] = DARK
    return out


def mouth_box(mesh: np.ndarray, shape: tuple[int, int], grow: float = 0.25) -> tuple[slice, slice]:
    """Rows and columns of the outer lips' box grown by ``grow`` of the mouth's width, inside an image of ``shape``."""
    lips = mesh[list(OUTER_LIPS)]
    (x0, y0), (x1, y1) = lips.min(0), lips.max(0)
    g = grow * (x1 - x0)
    h, w = shape
    return (
        slice(max(int(y0 - g), 0), min(int(np.ceil(y1 + g)) + 1, h)),
        slice(max(int(x0 - g), 0), min(int(np.ceil(x1 + g)) + 1, w)),
    )


def mouth_classes(frame: np.ndarray, mesh: np.ndarray, min_pixels: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """(shares of ``CLASS_NAMES`` inside the inner-lip ring (4,), NaN for a shut mouth (opening below ``SEAM``) or a
    ring over fewer than ``min_pixels``; the class map of the mouth box, -1 outside the ring). frame (H, W, 3) uint8
    RGB, mesh (478, 2) pixels."""
    rows, cols = mouth_box(mesh, frame.shape[:2])
    lab = to_lab(frame)
    skin, lip = reference_colours(lab, mesh)
    offset = np.array([cols.start, rows.start], np.float32)
    inner = polygon_mask(lab[rows, cols].shape[:2], mesh[list(INNER_LIPS)] - offset)
    classes = np.where(inner, classify(lab[rows, cols], skin, lip), -1)
    if inner.sum() < min_pixels or mouth_opening(mesh) < SEAM:
        return np.full(len(CLASS_NAMES), np.nan), classes
    return np.bincount(classes[inner], minlength=len(CLASS_NAMES)) / inner.sum(), classes


def mouth_patch(frame: np.ndarray, mesh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(L channel of the mouth mapped so that its corners land at fixed places (``PATCH``), the inner-lip ring's mask
    there, empty for a shut mouth): the mouth's pixels free of the head's position, size and tilt, for the
    frame-to-frame change."""
    h, w = PATCH
    src = mesh[list(MOUTH_CORNERS)].astype(np.float64)
    dst = np.array([[w / 4, h / 2], [3 * w / 4, h / 2]])
    s = complex(*(dst[1] - dst[0])) / complex(*(src[1] - src[0]))  # rotation and scale as one complex number
    t = complex(*dst[0]) - s * complex(*src[0])
    matrix = np.array([[s.real, -s.imag, t.real], [s.imag, s.real, t.imag]])
    L = to_lab(frame)[..., 0]
    patch = cv2.warpAffine(L, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    ring = mesh[list(INNER_LIPS)] @ matrix[:, :2].T + matrix[:, 2]
    return patch, polygon_mask((h, w), ring) & (mouth_opening(mesh) >= SEAM)


def patch_change(a: tuple[np.ndarray, np.ndarray], b: tuple[np.ndarray, np.ndarray]) -> float:
    """Mean |L| change between two ``mouth_patch`` results inside both rings (NaN when they share too few pixels)."""
    both = a[1] & b[1]
    return float(np.abs(a[0] - b[0])[both].mean()) if both.sum() >= PATCH_MIN_PIXELS else float("nan")


# ---------------------------------------------------------------------------------------------- per video, per pair


@dataclasses.dataclass
class Measures:
    """One video's per-frame figures (N frames; NaN where the judge found no face or the mouth is shut)."""

    mouth: np.ndarray  # (N,) mouth opening, mouth widths
    eyes: np.ndarray  # (N,) eye opening, eye widths
    brows: np.ndarray  # (N,) brow height, eye distances
    shares: np.ndarray  # (N, 4) CLASS_NAMES shares of the inner mouth
    change: np.ndarray  # (N,) mean |L| change inside the mouth since the previous frame

    def to_dict(self) -> dict:
        return {k: np.round(v, 4).tolist() for k, v in dataclasses.asdict(self).items()}


def measure(frames, meshes: np.ndarray) -> Measures:
    """``Measures`` of frames (an iterable of (H, W, 3) uint8 RGB) and their judge's meshes (N, 478, 2)."""
    n = len(meshes)
    shares, change = np.full((n, len(CLASS_NAMES)), np.nan), np.full(n, np.nan)
    previous = None
    for i, frame in enumerate(frames):
        if i >= n:
            break
        if not np.isfinite(meshes[i]).all():
            previous = None
            continue
        shares[i] = mouth_classes(frame, meshes[i])[0]
        patch = mouth_patch(frame, meshes[i])
        if previous is not None:
            change[i] = patch_change(previous, patch)
        previous = patch
    return Measures(mouth_opening(meshes), eye_opening(meshes), brow_height(meshes), shares, change)


def _mean(x: np.ndarray) -> float | None:
    x = x[np.isfinite(x)]
    return float(x.mean()) if len(x) else None


def _over(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def score(driver: Measures, result: Measures, distances: np.ndarray, outline: np.ndarray | None = None) -> dict:
    """The issue's figures for one result against its driver (frame i against frame i); ``distances`` (N,) dlib's
    face distance of each result frame to the portrait, NaN where dlib found no face (not the same person);
    ``outline`` (N,) each frame's ``outline_change`` (reported: its mean)."""
    n = min(len(driver.mouth), len(result.mouth))
    open_ = np.zeros(n, bool)
    open_[np.isfinite(driver.mouth[:n])] = driver.mouth[:n][np.isfinite(driver.mouth[:n])] > OPEN_MOUTH
    d_shares, r_shares = driver.shares[:n][open_], result.shares[:n][open_]
    teeth = d_shares[:, TEETH] >= SHOWS_TEETH
    closed, n_closed = closed_followed(driver.eyes, result.eyes)
    changes = paired(driver.change, result.change)
    figures = {
        "lip_share_open": _mean(r_shares[:, LIP]),
        "dark_or_teeth_over_driver": _over(
            _mean(r_shares[:, DARK] + r_shares[:, TEETH]), _mean(d_shares[:, DARK] + d_shares[:, TEETH])
        ),
        "teeth_over_driver": _over(_mean(r_shares[teeth, TEETH]), _mean(d_shares[teeth, TEETH]))
        if teeth.any()
        else None,
        "mouth_r": pearson(driver.mouth, result.mouth),
        "mouth_open_ratio": open_ratio(driver.mouth, result.mouth),
        "closed_eyes_followed": closed,
        "eye_r": pearson(driver.eyes, result.eyes),
        "same_person": float(np.mean(np.nan_to_num(distances, nan=np.inf) < SAME_PERSON)) if len(distances) else None,
        "mouth_change_over_driver": _over(_mean(changes[1]), _mean(changes[0])) if len(changes[0]) else None,
        "outline_change": None if outline is None else _mean(outline),
    }
    shares = {
        f"{who}_{name}_share_open": _mean(s[:, k]) for who, s in (("driver", d_shares), ("result", r_shares))
        for k, name in enumerate(CLASS_NAMES)
    }  # fmt: skip
    counts = {
        "frames": n,
        "open_frames": int(open_.sum()),
        "open_frames_with_result_mouth": int(np.isfinite(r_shares[:, 0]).sum()),
        "teeth_frames": int(teeth.sum()),
        "closed_eye_frames": n_closed,
        "judged_driver": int(np.isfinite(driver.mouth[:n]).sum()),
        "judged_result": int(np.isfinite(result.mouth[:n]).sum()),
        "face_distance_mean": _mean(distances),
    }
    return {"figures": figures, "targets": {k: verdict(k, v) for k, v in figures.items()}, **shares, **counts}


def verdict(name: str, value: float | None) -> str:
    """'met', 'not met', 'n/a' (no figure: e.g. a driver without closed eyes) or 'reported' (no target)."""
    low, high = TARGETS[name]
    if low is None and high is None:
        return "reported"
    if value is None:
        return "n/a"
    return "met" if (low is None or value >= low) and (high is None or value <= high) else "not met"


def target_text(name: str) -> str:
    low, high = TARGETS[name]
    if low is not None and high is not None:
        return f"{low:g}-{high:g}"
    return f">= {low:g}" if low is not None else (f"<= {high:g}" if high is not None else "no target")


# ---------------------------------------------------------------------------------------------- judges

JUDGE_SCRIPT = '''"""fsth benchmarks/expressions.py's reference judge: MediaPipe FaceMesh on .npy frame stacks
(run by a Python with mediapipe 0.10.21). argv[1]: JSON [[frames.npy, meshes.npy], ...]; writes (N, 478, 2)
float32 pixels, NaN where no face."""
import json
import sys

import mediapipe as mp
import numpy as np

for src, dst in json.loads(sys.argv[1]):
    frames = np.load(src, mmap_mode="r")
    n, h, w = frames.shape[:3]
    out = np.full((n, 478, 2), np.nan, np.float32)
    with mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1, refine_landmarks=True) as mesh:
        for i in range(n):
            found = mesh.process(np.ascontiguousarray(frames[i])).multi_face_landmarks
            if found:
                out[i] = [(p.x * w, p.y * h) for p in found[0].landmark]
    np.save(dst, out)
'''


class ReferenceJudge:
    """MediaPipe's FaceMesh in another interpreter (``python``): frame stacks in, (N, 478, 2) meshes out."""

    name = "MediaPipe 0.10.21 FaceMesh (refine_landmarks, video mode), reference runtime"

    def __init__(self, python: Path, workdir: Path):
        self.python, self.workdir = python, workdir
        self.script = workdir / "judge_mediapipe.py"
        self.script.write_text(JUDGE_SCRIPT)
        self.calls = 0

    def meshes(self, videos: list[np.ndarray]) -> list[np.ndarray]:
        jobs = []
        for frames in videos:
            self.calls += 1
            src, dst = self.workdir / f"frames{self.calls}.npy", self.workdir / f"mesh{self.calls}.npy"
            np.save(src, frames)
            jobs.append((str(src), str(dst)))
        run = subprocess.run([str(self.python), str(self.script), json.dumps(jobs)], capture_output=True, text=True)
        if run.returncode != 0:
            tail = run.stderr.strip().splitlines()[-1:] or ["(no message)"]
            raise InputError(f"the judge ({self.python}) failed: {tail[0]}")
        meshes = []
        for src, dst in jobs:
            meshes.append(np.load(dst))
            Path(src).unlink()
        return meshes


class FsthMeshJudge:
    """fsth's own mesh landmark backend (``make_detector("mesh")``), frame by frame: (N, 478, 2) meshes."""

    name = "fsth.landmarks.make_detector('mesh')"

    def __init__(self):
        from fsth.landmarks import make_detector

        try:
            self.detector = make_detector("mesh")
        except FsthError as exc:
            raise InputError(f"--judge fsth needs fsth's mesh landmark backend ({exc}); use --judge reference") from exc

    def _mesh(self, frame: np.ndarray) -> np.ndarray | None:
        dense = getattr(self.detector, "detect_mesh", None)  # a backend whose detect() gives 68 points
        faces = dense(frame) if dense is not None else self.detector.detect(frame)
        if not faces:
            return None
        if len(faces[0]) < 468:
            raise InputError(
                f"the mesh backend gives {len(faces[0])} points per face; the judge needs the 468/478 mesh"
            )
        return np.asarray(faces[0], np.float32)

    def meshes(self, videos: list[np.ndarray]) -> list[np.ndarray]:
        out = []
        for frames in videos:
            m = np.full((len(frames), MESH_POINTS, 2), np.nan, np.float32)
            for i, frame in enumerate(frames):
                points = self._mesh(np.ascontiguousarray(frame))
                if points is not None:
                    m[i, : len(points)] = points
            out.append(m)
        return out


# ---------------------------------------------------------------------------------------------- runs


def parse_mode(text: str) -> tuple[str, dict]:
    """``model`` | ``warp``, then ``:field=value`` for any ``AnimateOptions`` field (``model:mouth=driver``)."""
    from fsth.animate import AnimateOptions

    base, *settings = text.split(":")
    if base not in ("model", "warp"):
        raise InputError(f"a mode starts with model or warp, not {base!r}")
    defaults = AnimateOptions()
    fields = {f.name for f in dataclasses.fields(AnimateOptions)}
    changes = {}
    for setting in settings:
        key, sep, value = setting.partition("=")
        key = key.replace("-", "_")
        if not sep or key not in fields:
            raise InputError(
                f"mode {text!r}: {setting!r} is not FIELD=VALUE of an animate option ({', '.join(fields)})"
            )
        default = getattr(defaults, key)
        if isinstance(default, bool):
            changes[key] = value.lower() in ("1", "true", "yes", "on")
        elif isinstance(default, int) or value.isdigit():
            changes[key] = int(value)
        else:
            changes[key] = value
    return base, changes


def read_frames(path: Path, limit: int | None = None) -> np.ndarray:
    from fsth.video import VideoReader

    frames = []
    with VideoReader(path) as reader:
        for frame in reader:
            frames.append(frame)
            if limit is not None and len(frames) >= limit:
                break
    return np.stack(frames)


def trimmed(driver: Path, frames: int, out: Path) -> Path:
    """The first ``frames`` frames of ``driver``, re-encoded near-losslessly (``--quick``)."""
    from fsth.video import ffmpeg_exe

    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-i", str(driver), "-frames:v", str(frames), "-an"]
    subprocess.run([*cmd, "-c:v", "libx264", "-crf", "10", "-pix_fmt", "yuv420p", str(out)], check=True)
    return out


def animate_mode(mode: str, portrait: Path, driver: Path, checkpoint: Path | None, out: Path) -> float:
    """What ``fsth animate PORTRAIT DRIVER -o OUT`` runs for ``mode`` (no audio); returns its frames/s."""
    from fsth.animate import AnimateOptions, animate
    from fsth.fewshot import load_person

    base, changes = parse_mode(mode)
    options = dataclasses.replace(
        AnimateOptions(audio=False), model="warp" if base == "warp" else "checkpoint", **changes
    )
    person = load_person([portrait], checkpoint, warp_only=options.warp_only)
    return animate(person, driver, out, options).frames_per_second


@functools.lru_cache(maxsize=1)
def _dlib_identity():
    """dlib's landmark detector and face-recognition network, loaded once (the detector takes seconds)."""
    from fsth.landmarks import make_detector
    from fsth.metrics.recognition import DlibFaceEmbedder

    return make_detector("dlib"), DlibFaceEmbedder()


def portrait_crop(portrait: Path) -> np.ndarray:
    """The portrait's face crop as ``fsth animate`` makes its results (256x256 RGB uint8): the source as it is."""
    from fsth.fewshot import load_person

    return load_person([portrait], warp_only=True).crops[0]


def face_distances(frames: np.ndarray, portrait: np.ndarray) -> np.ndarray:
    """dlib's face distance of each frame's largest face to the portrait's (NaN where dlib finds none)."""
    from fsth.metrics.keypoints import detect_landmarks
    from fsth.metrics.recognition import face_distance

    detector, recognizer = _dlib_identity()
    reference = recognizer.descriptors([portrait], [detect_landmarks(detector, portrait)])[0]
    out = np.full(len(frames), np.nan)
    for i, frame in enumerate(frames):
        points = detect_landmarks(detector, frame)
        if points is not None:
            out[i] = face_distance(recognizer.descriptors([frame], [points])[0], reference)
    return out


# ---------------------------------------------------------------------------------------------- contact sheets

CELL = 192


def face_square(frame: np.ndarray, mesh: np.ndarray, side: int = CELL) -> np.ndarray:
    """The square around the mesh's face (1.6x its larger side), at ``side`` (the frame's edge pixels repeated)."""
    if not np.isfinite(mesh).all():
        return cv2.resize(frame, (side, side), interpolation=cv2.INTER_AREA)
    (x0, y0), (x1, y1) = mesh.min(0), mesh.max(0)
    half = 0.8 * max(x1 - x0, y1 - y0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    s = side / (2 * half)
    matrix = np.array([[s, 0, side / 2 - s * cx], [0, s, side / 2 - s * cy]])
    return cv2.warpAffine(frame, matrix, (side, side), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE)


def label(image: np.ndarray, text: str) -> np.ndarray:
    out = image.copy()
    cv2.putText(out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(out, text, (4, 14), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def class_overlay(frame: np.ndarray, mesh: np.ndarray, side: int = CELL) -> np.ndarray:
    """The mouth box with its colour classes painted over the inner mouth (left half: pixels, right: classes)."""
    if not np.isfinite(mesh).all():
        return np.zeros((side // 2, side, 3), np.uint8)
    rows, cols = mouth_box(mesh, frame.shape[:2])
    crop = frame[rows, cols]
    painted = crop.copy()
    classes = mouth_classes(frame, mesh)[1]
    for k, colour in enumerate(CLASS_COLOURS):
        painted[classes == k] = colour
    pair = np.concatenate([crop, painted], 1)
    return cv2.resize(pair, (side, side // 2), interpolation=cv2.INTER_NEAREST)


def moments(driver: Measures) -> dict[str, int]:
    """The driver frames the sheets show: the widest mouth, the most closed eyes, the highest brows."""
    pick = {"mouth": np.nanargmax(driver.mouth), "blink": np.nanargmin(driver.eyes), "brow": np.nanargmax(driver.brows)}
    return {k: int(v) for k, v in pick.items()}


def sheet(columns: list[list[np.ndarray]]) -> np.ndarray:
    """Columns of equal-width cells, each column top to bottom, side by side (a 2 px gap between columns)."""
    gap = np.zeros((sum(c.shape[0] for c in columns[0]), 2, 3), np.uint8)
    parts = []
    for column in columns:
        parts += [np.concatenate(column, 0), gap]
    return np.concatenate(parts[:-1], 1)


# ---------------------------------------------------------------------------------------------- main


def summarise(pairs: dict, modes: list[str]) -> dict:
    """Per mode and figure: its range over the pairs and in how many the target is met."""
    out = {}
    for mode in modes:
        out[mode] = {}
        for name in TARGETS:
            values = [p[mode]["figures"][name] for p in pairs.values() if p[mode]["figures"][name] is not None]
            verdicts = [p[mode]["targets"][name] for p in pairs.values()]
            out[mode][name] = {
                "min": min(values) if values else None,
                "max": max(values) if values else None,
                "mean": float(np.mean(values)) if values else None,
                "target": target_text(name),
                "met": verdicts.count("met"),
                "judged": len(verdicts) - verdicts.count("n/a"),
            }
    return out


def print_summary(summary: dict, drivers: dict) -> None:
    for name, d in drivers.items():
        console.log(
            f"driver {name}: {d['frames']} frames, open mouth in {d['open_frames']}, closed eyes in "
            f"{d['closed_eye_frames']}; inner mouth on open frames: "
            + ", ".join(f"{n} {d[f'{n}_share_open']:.2f}" for n in CLASS_NAMES)
        )
        if d.get("fsth_reading"):
            console.log(
                "  fsth's tracking of it against the judge: "
                + ", ".join(f"{k} {'-' if v is None else f'{v:.2f}'}" for k, v in d["fsth_reading"].items())
            )
    for mode, figures in summary.items():
        console.log(f"{mode}:")
        for name, f in figures.items():
            span = "-" if f["min"] is None else f"{f['min']:.2f}-{f['max']:.2f} (mean {f['mean']:.2f})"
            met = f"met in {f['met']}/{f['judged']} pairs" if f["target"] != "no target" else "reported"
            console.log(f"  {name:28s} {span:28s} target {f['target']:10s} {met}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None, help="meta checkpoint (default: the shipped model)")
    parser.add_argument("--media", type=Path, default=ROOT.parent / "shared" / "media")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "expressions")
    parser.add_argument("--modes", default="model,warp", help="comma-separated: model|warp[:FIELD=VALUE...]")
    parser.add_argument("--judge", choices=("reference", "fsth"), default="reference")
    parser.add_argument("--judge-python", type=Path, default=Path("/work/mpvenv/bin/python"))
    parser.add_argument("--quick", action="store_true", help="only the first --quick-frames frames of each driver")
    parser.add_argument("--quick-frames", type=int, default=60)
    parser.add_argument(
        "--portraits", default=None, help="comma-separated names (file stems) of a subset of the portraits"
    )
    parser.add_argument("--drivers", default=None, help="comma-separated names (file stems) of a subset of the drivers")
    args = parser.parse_args()
    try:
        return run(args)
    except FsthError as exc:
        console.error(str(exc))
        return 1


def _subset(paths: tuple[str, ...], names: str | None) -> tuple[str, ...]:
    """``paths`` whose file stems are among the comma-separated ``names`` (all of them for None), in their order."""
    if names is None:
        return paths
    wanted = {n.strip() for n in names.split(",") if n.strip()}
    unknown = wanted - {Path(p).stem for p in paths}
    if unknown:
        raise InputError(
            f"unknown name(s) {', '.join(sorted(unknown))}: choose among {', '.join(Path(p).stem for p in paths)}"
        )
    return tuple(p for p in paths if Path(p).stem in wanted)


def run(args) -> int:
    from fsth.checkpoint import find_meta_checkpoint
    from fsth.video import read_image, write_image

    start = time.perf_counter()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for mode in modes:
        parse_mode(mode)  # a bad mode fails now, not after the first pair
    checkpoint = find_meta_checkpoint(args.checkpoint)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.judge == "reference" and not args.judge_python.is_file():
        raise InputError(f"--judge-python {args.judge_python} is missing (a Python with mediapipe 0.10.21, numpy < 2)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        judge = ReferenceJudge(args.judge_python, tmp) if args.judge == "reference" else FsthMeshJudge()
        drivers, driver_info, saved = {}, {}, {}
        for rel in _subset(DRIVERS, args.drivers):
            path = args.media / rel
            if args.quick:
                path = trimmed(path, args.quick_frames, tmp / path.name)
            frames = read_frames(path)
            mesh = judge.meshes([frames])[0]
            saved[path.stem] = mesh
            m = measure(frames, mesh)
            picks = moments(m)
            cells = {k: label(face_square(frames[i], mesh[i]), f"{path.stem} f{i}") for k, i in picks.items()}
            mouths = class_overlay(frames[picks["mouth"]], mesh[picks["mouth"]])
            drivers[path.stem] = (path, m, picks, cells, mouths)
            open_ = m.mouth > OPEN_MOUTH
            driver_info[path.stem] = {
                "file": rel,
                "frames": len(frames),
                "judged": int(np.isfinite(m.mouth).sum()),
                "open_frames": int(open_.sum()),
                "closed_eye_frames": int((m.eyes < CLOSED_EYE).sum()),
                **{f"{n}_share_open": _mean(m.shares[open_, k]) for k, n in enumerate(CLASS_NAMES)},
                "moments": picks,
                "fsth_reading": fsth_reading(path, m),
                "measures": m.to_dict(),
            }
            console.log(f"driver {path.stem}: {len(frames)} frames judged")
        pairs, sheets, overlays = {}, {k: [] for k in ("mouth", "blink", "brow")}, []
        for portrait_rel in _subset(PORTRAITS, args.portraits):
            portrait = args.media / portrait_rel
            photo = read_image(portrait)
            crop = portrait_crop(portrait)  # the frame the results are made in, with the face as photographed
            crop_mesh = judge.meshes([crop[None]])[0][0]
            saved[portrait.stem] = crop_mesh
            for stem, (path, d_measures, picks, cells, mouths) in drivers.items():
                videos, rates, names = [], [], []
                clock = time.perf_counter()
                for mode in modes:
                    names.append(f"{portrait.stem}_{stem}_{mode.replace(':', '_').replace('=', '-')}")
                    video = args.out / f"{names[-1]}.mp4"
                    rates.append(animate_mode(mode, portrait, path, checkpoint, video))
                    videos.append(read_frames(video))
                seconds = {"animate": time.perf_counter() - clock}
                clock = time.perf_counter()
                meshes = judge.meshes(videos)
                saved.update(zip(names, meshes))
                seconds["judge"] = time.perf_counter() - clock
                pair = {}
                for mode, frames, mesh, rate in zip(modes, videos, meshes, rates):
                    clock = time.perf_counter()
                    r_measures = measure(frames, mesh)
                    distances = face_distances(frames, photo)
                    pair[mode] = score(d_measures, r_measures, distances, outline_change(mesh, crop_mesh))
                    pair[mode]["animate_frames_per_second"] = rate
                    pair[mode]["measures"] = {**r_measures.to_dict(), "face_distance": np.round(distances, 4).tolist()}
                    seconds[f"measure {mode}"] = time.perf_counter() - clock
                    f = pair[mode]["figures"]
                    console.log(
                        f"{portrait.stem} x {stem} {mode}: "
                        + ", ".join(f"{k} {'-' if v is None else f'{v:.2f}'}" for k, v in f.items())
                    )
                pair["seconds"] = seconds
                console.log("  seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in seconds.items()))
                pairs[f"{portrait.name} x {stem}"] = pair
                for moment, column in sheets.items():
                    i = picks[moment]
                    column.append(
                        [cells[moment]]
                        + [
                            label(cv2.resize(v[min(i, len(v) - 1)], (CELL, CELL), interpolation=cv2.INTER_AREA), m)
                            for m, v in zip(modes, videos)
                        ]
                    )
                i = picks["mouth"]
                overlays.append(
                    [mouths]
                    + [
                        class_overlay(v[min(i, len(v) - 1)], mesh[min(i, len(v) - 1)])
                        for v, mesh in zip(videos, meshes)
                    ]
                )
    for moment, columns in sheets.items():
        write_image(args.out / f"sheet_{moment}.png", sheet(columns))
    write_image(args.out / "classes.png", sheet(overlays))
    # the judge's meshes: drivers and portraits (their crops) by stem, results by video
    np.savez_compressed(args.out / "meshes.npz", **saved)
    summary = summarise(pairs, modes)
    results = {
        "machine": machine(),
        "checkpoint": str(checkpoint),
        "judge": judge.name,
        "quick": args.quick,
        "modes": modes,
        "portraits": list(_subset(PORTRAITS, args.portraits)),
        "drivers": driver_info,
        "thresholds": {"open_mouth": OPEN_MOUTH, "closed_eye": CLOSED_EYE, "shows_teeth": SHOWS_TEETH},
        "summary": summary,
        "pairs": pairs,
        "seconds": time.perf_counter() - start,
    }
    print_summary(summary, driver_info)
    (args.out / "expressions.json").write_text(json.dumps(results, indent=1) + "\n")
    console.log(f"{results['seconds']:.0f} s; figures -> {args.out / 'expressions.json'}, sheets -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
