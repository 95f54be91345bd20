"""face_pair: the crop and landmark image the networks see, from a real photo and from a stored crop."""

import numpy as np
from conftest import PORTRAIT

from fsth.landmarks import CropPolicy, face_pair, full_box, track_image
from fsth.landmarks.parts import PARTS
from fsth.video import read_image


def segments(points: np.ndarray) -> np.ndarray:
    """The (S, 2, 2) line segments the sketch draws between the 68 points (closed parts joined back)."""
    out = []
    for part in PARTS:
        idx = list(range(part.start, part.stop)) + ([part.start] if part.closed else [])
        out += [(points[a], points[b]) for a, b in zip(idx, idx[1:])]
    return np.asarray(out, np.float64)


def distance_to_segments(pixels: np.ndarray, segs: np.ndarray) -> np.ndarray:
    """Each pixel's (N, 2) distance to the nearest of the segments (S, 2, 2)."""
    a, b = segs[None, :, 0], segs[None, :, 1]  # (1, S, 2)
    ab, ap = b - a, pixels[:, None] - a  # (1, S, 2), (N, S, 2)
    t = np.clip((ap * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0, 1)  # (N, S)
    return np.linalg.norm(ap - t[..., None] * ab, axis=-1).min(axis=1)


def test_the_segment_distance_itself():
    segs = np.array([[[0.0, 0.0], [10.0, 0.0]]])
    np.testing.assert_allclose(distance_to_segments(np.array([[5.0, 3.0], [-4.0, 3.0], [12.0, 0.0]]), segs), [3, 5, 2])


def test_pair_of_a_real_photo_puts_the_sketch_on_the_face(dlib_detector):
    image = read_image(PORTRAIT)
    track = track_image(PORTRAIT, dlib_detector)
    pair = face_pair(image, track.landmarks[0], 64)
    assert pair.crop.shape == pair.sketch.shape == (64, 64, 3)
    assert pair.crop.dtype == pair.sketch.dtype == np.uint8
    # the landmarks land inside the crop, the eyes-nose anchor near its centre (the box frames the whole head)
    assert (pair.points > 0).all() and (pair.points < 64).all()
    anchor = 0.5 * (pair.points[36:48].mean(0) + pair.points[31:36].mean(0))
    assert np.abs(anchor - 32).max() < 8
    # sketch pixels sit where the points are: every drawn pixel is within 2 px of some landmark segment
    ys, xs = np.nonzero(pair.sketch.any(axis=2))
    assert len(xs) > 50
    distance = distance_to_segments(np.stack([xs, ys], axis=1).astype(np.float64), segments(pair.points))
    assert distance.max() <= 2.0, distance.max()
    # the default box is the policy's box for this frame
    np.testing.assert_allclose(pair.box, CropPolicy().box(track.landmarks[0]))


def test_stored_crop_resized_to_model_size_scales_landmarks(dlib_detector):
    image = read_image(PORTRAIT)
    landmarks = track_image(PORTRAIT, dlib_detector).landmarks[0]
    stored = face_pair(image, landmarks, 256)  # what a dataset keeps: a 256 crop and its landmarks
    small = face_pair(stored.crop, stored.points, 64, box=full_box(stored.crop))
    np.testing.assert_allclose(small.points, stored.points / 4, atol=1e-4)
    # the 64 crop is the 256 crop shrunk, sampled where the landmark mapping says: crop pixel q shows source
    # pixel 4q, while the mean of the 4x4 block q sits at 4q + 1.5, i.e. 0.375 crop pixels further on
    import cv2

    shrunk = stored.crop.reshape(64, 4, 64, 4, 3).mean(axis=(1, 3)).astype(np.float32)
    shift = np.float32([[1, 0, 0.375], [0, 1, 0.375]])
    expected = cv2.warpAffine(shrunk, shift, (64, 64), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    assert np.abs(small.crop - expected)[2:-2, 2:-2].mean() < 1.0
