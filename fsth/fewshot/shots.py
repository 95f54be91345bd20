"""Shots: the K photos or frames of one person, as the networks see them.

Stage: few-shot use (embed, finetune, animate) and evaluation. In: photos (files or directories of them) or one
video, a landmark detector, the model's crop policy and image size (both from the checkpoint: a model must see the
crop it was trained on).
Out: ``Shots``: per shot the face crop x, its landmark image y, the landmarks in crop pixels, the crop box in
source pixels and where it came from.

* a photo is one shot: its largest face, cropped with the policy's box for that face (``track_image``; a photo
  without a face is a ``NoFaceError`` naming it);
* a video gives K shots (``k``, default 8: the K of meta-learning) spread evenly over its frames with a face,
  cropped with the video's smoothed boxes, as the training data is (``track_video``).

``shots_from_frames`` builds ``Shots`` from frames and landmarks the caller already has, ``shots_from_pairs`` from
``face_pair`` results (evaluation crops its shots and targets from tracked videos as it reads them). Every crop goes
through ``face_pair``, the one meeting point of crop and sketch.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from fsth import console
from fsth.errors import InputError
from fsth.landmarks.crop import CropPolicy
from fsth.landmarks.detectors import LandmarkDetector
from fsth.landmarks.pair import FacePair, face_pair
from fsth.landmarks.record import LandmarkTrack
from fsth.landmarks.tracker import track_image, track_video
from fsth.video import VideoReader, expand_inputs, is_image, is_video, read_image, spread

DEFAULT_VIDEO_SHOTS = 8  # K frames taken from a video when no k is given (the K of meta-learning)


@dataclass
class Shots:
    """K shots of one person at model size."""

    crops: np.ndarray  # (K, S, S, 3) uint8 RGB: the frames x as the networks see them
    sketches: np.ndarray  # (K, S, S, 3) uint8 RGB: their landmark images y
    points: np.ndarray  # (K, 68, 2) float32: the landmarks in crop pixels
    boxes: np.ndarray  # (K, 4) float32: the crop boxes [x0, y0, x1, y1] in source pixels
    sources: list[str]  # per shot: the photo's path, or "video.mp4#frame" for a video frame
    mesh: np.ndarray | None = None  # (K, 478, 2) float32: the mesh in crop pixels (mesh backend), else None
    photo: np.ndarray | None = None  # (H, W, 3) uint8: the first photo's pixels (photos only), read once

    def __len__(self) -> int:
        return len(self.crops)

    @property
    def size(self) -> int:
        return int(self.crops.shape[1])

    def select(self, index) -> "Shots":
        """The shots at ``index``: a slice or an array of indices."""
        picked = np.arange(len(self))[index]
        return Shots(
            self.crops[picked],
            self.sketches[picked],
            self.points[picked],
            self.boxes[picked],
            [self.sources[i] for i in np.atleast_1d(picked)],
            None if self.mesh is None else self.mesh[picked],
        )

    def tensors(self, device=None):
        """x, y as (K, 3, S, S) float tensors in [-1, 1] (``images_to_tensor``)."""
        from fsth.models import images_to_tensor

        return images_to_tensor(self.crops, device), images_to_tensor(self.sketches, device)


def shots_from_frames(
    frames: Sequence[np.ndarray],
    landmarks: np.ndarray,
    size: int,
    policy: CropPolicy,
    boxes: np.ndarray | None = None,
    sources: Sequence[str] | None = None,
) -> Shots:
    """Shots from frames (H, W, 3) uint8 and their landmarks (K, 68, 2) in frame pixels.

    ``boxes`` (K, 4): crop boxes to use (e.g. a track's smoothed boxes); default: the policy's box of each frame.
    """
    if len(frames) == 0:
        raise InputError("no shots given")
    pairs = [
        face_pair(frame, landmarks[i], size, policy, None if boxes is None else boxes[i])
        for i, frame in enumerate(frames)
    ]
    return shots_from_pairs(pairs, sources)


def shots_from_pairs(pairs: Sequence[FacePair], sources: Sequence[str] | None = None) -> Shots:
    """Shots from ``face_pair`` results (crops made as the frames were read, so that no frame is kept)."""
    if len(pairs) == 0:
        raise InputError("no shots given")
    return Shots(
        crops=np.stack([p.crop for p in pairs]),
        sketches=np.stack([p.sketch for p in pairs]),
        points=np.stack([p.points for p in pairs]).astype(np.float32),
        boxes=np.stack([p.box for p in pairs]).astype(np.float32),
        sources=list(sources) if sources is not None else [f"shot {i}" for i in range(len(pairs))],
    )


def shot_files(paths: Sequence[str | os.PathLike]) -> tuple[list[Path], Path | None]:
    """(photos, video) named by ``paths``: files and directories of photos, or exactly one video."""
    files = expand_inputs(paths)
    for f in files:
        if not f.exists():
            raise InputError(f"{f}: no such file")
    photos = [f for f in files if is_image(f)]
    videos = [f for f in files if is_video(f)]
    others = [f for f in files if f not in photos and f not in videos]
    if others:
        raise InputError(f"{others[0]}: not a photo or video (by its extension)")
    if videos and (photos or len(videos) > 1):
        what = f"{videos[0]} and {(photos or videos[1:])[0]}"
        raise InputError(f"shots are photos or one video, not both or several videos ({what})")
    if not files:
        raise InputError("no shots given")
    return photos, videos[0] if videos else None


def person_crop_policy(policy: CropPolicy) -> CropPolicy:
    """The crop of a new person's shots (embed, finetune, animate): ``policy`` with the box's parts outside the
    photo filled with its edge pixels, blurred by how far out they lie ("soft"), not black. A tight portrait's box
    runs off the photo; the warp moves the source's own pixels, and would drag a black band into every frame;
    the edge pixels alone drew streaks (hair cut by the photo's top edge)."""
    return dataclasses.replace(policy, padding="soft")


def load_shots(
    paths: Sequence[str | os.PathLike],
    detector: LandmarkDetector,
    size: int,
    policy: CropPolicy,
    k: int | None = None,
    face_index: int = 0,
) -> Shots:
    """The shots named by ``paths`` (photos, directories of photos, or one video) at ``size`` x ``size``.

    ``k``: how many. Photos: all of them by default, else ``k`` spread over them (in path order). A video:
    ``k`` frames (default 8) spread over the frames where a face was found.
    """
    if k is not None and k < 1:
        raise InputError(f"the number of shots must be at least 1, not {k}")
    photos, video = shot_files(paths)
    if video is not None:
        return _video_shots(video, detector, size, policy, k or DEFAULT_VIDEO_SHOTS, face_index)
    if k is not None and k < len(photos):
        photos = [photos[i] for i in spread(len(photos), k)]
    elif k is not None and k > len(photos):
        console.warn(
            f"--k {k} asks for {k} shots, but the shots are {len(photos)} photo(s): using "
            f"{'it' if len(photos) == 1 else 'all of them'}"
        )
    images, points, boxes, meshes = [], [], [], []
    for path in photos:
        image = read_image(path)
        track = track_image(path, detector, face_index=face_index, crop_policy=policy, image=image)
        images.append(image)
        points.append(track.landmarks[0])
        boxes.append(track.boxes[0])
        meshes.append(None if track.mesh is None else track.mesh[0])
    console.debug(f"shots: {len(photos)} photo(s) at {size}x{size}")
    names, boxes = [str(p) for p in photos], np.stack(boxes)
    warn_if_enlarged(boxes, size, names)
    warn_unless_one_person(images, points, names)
    shots = shots_from_frames(images, np.stack(points), size, policy, boxes, names)
    if meshes[0] is not None:
        shots.mesh = CropPolicy.to_crop(np.stack(meshes), shots.boxes, size)
    shots.photo = images[0]
    return shots


# dlib's face-recognition network (fsth.metrics.identity): on the test media, photos of one person scored a cosine
# similarity of 0.95-0.99, photos of different people 0.72-0.92.
SAME_PERSON_SIMILARITY = 0.93


# A shot's crop box enlarged more than this to the model's size gives a soft result (the pixels are not there).
MAX_ENLARGEMENT = 2.0


def warn_if_enlarged(boxes: np.ndarray, size: int, names: Sequence[str]) -> None:
    """Warn when the shots' face crops (``boxes`` (K, 4), source pixels) are enlarged more than MAX_ENLARGEMENT
    times to ``size``: the face is small in the photos (or video), and every frame made from them is soft. One
    warning, naming the first such photo (or the video, ``names`` of one), its crop's side and the enlargement."""
    boxes = np.asarray(boxes, np.float64)
    sides = boxes[:, 2] - boxes[:, 0]
    small = np.flatnonzero(size / np.maximum(sides, 1e-6) > MAX_ENLARGEMENT)
    if len(small) == 0:
        return
    i = int(small[0])
    name = names[i] if len(names) == len(sides) else names[0]
    more = f" ({len(small)} of {len(sides)} shots)" if len(sides) > 1 else ""
    console.warn(
        f"{name}: the face is small{more}: its {sides[i]:.0f} px crop is enlarged {size / sides[i]:.1f}x to the "
        f"model's {size} px, so the result will be soft; a photo with the face larger gives a sharper one"
    )


def warn_unless_one_person(
    images: Sequence[np.ndarray],
    landmarks: Sequence[np.ndarray],
    names: Sequence[str],
    threshold: float = SAME_PERSON_SIMILARITY,
) -> list[str]:
    """Warn when photos given as one person's shots do not look like one person (e_hat would average the faces
    of several): each photo's median cosine similarity to the others, in dlib's face-recognition embedding,
    must reach ``threshold``. Returns the names of the photos that do not (nothing to say with one photo, or
    without dlib's network)."""
    if len(images) < 2:
        return []
    from fsth.errors import FsthError
    from fsth.metrics.recognition import DlibFaceEmbedder

    try:
        embeddings = DlibFaceEmbedder().embed(list(images), list(landmarks))  # (N, 128), unit rows
    except FsthError as exc:
        console.debug(f"shots: not checked for one person ({exc})")
        return []
    similarity = embeddings @ embeddings.T
    np.fill_diagonal(similarity, np.nan)
    typical = np.nanmedian(similarity, axis=1)
    odd = [name for name, value in zip(names, typical) if value < threshold]
    if odd:
        more = f" and {len(odd) - 3} more" if len(odd) > 3 else ""
        console.warn(
            f"the {len(names)} shots do not look like one person (dlib's face distance): "
            f"{', '.join(odd[:3])}{more} look{'s' if len(odd) == 1 else ''} unlike the others; the "
            "embedding averages every face it is given"
        )
    return odd


def _video_shots(path: Path, detector: LandmarkDetector, size: int, policy: CropPolicy, k: int, face_index=0) -> Shots:
    """``k`` frames with a face, spread over the video; crops with the video's smoothed boxes."""
    track = track_video(path, detector, face_index=face_index, crop_policy=policy, label=f"shots from {path.name}")
    valid = np.flatnonzero(track.valid)
    chosen = valid[spread(len(valid), k)]
    if len(chosen) < k:
        console.warn(f"{path}: only {len(chosen)} frames with a face; using all of them as shots instead of {k}")
    pairs = crop_track_frames(path, track, chosen, size)
    chosen = [i for i in chosen if i in pairs]
    shots = shots_from_pairs([pairs[i] for i in chosen], [f"{path}#{i}" for i in chosen])
    warn_if_enlarged(shots.boxes, size, [str(path)])
    if track.mesh is not None:
        shots.mesh = CropPolicy.to_crop(track.mesh[chosen], shots.boxes, size)
    return shots


def crop_track_frames(path: str | os.PathLike, track: LandmarkTrack, frames, size: int) -> dict[int, FacePair]:
    """Frame index -> ``face_pair`` of that frame of a tracked video, for ``frames`` (indices of frames with a face),
    cropped with the track's smoothed boxes and crop policy as the video is read: no frame is kept. Frames that a
    second read does not reach (a damaged end) are left out."""
    wanted = {int(i) for i in frames}
    pairs: dict[int, FacePair] = {}
    with VideoReader(path, strict=False) as video:
        for i, frame in enumerate(video):
            if i in wanted:
                pairs[i] = face_pair(frame, track.landmarks[i], size, track.crop_policy, track.boxes[i])
            if len(pairs) == len(wanted):
                break
    return pairs
