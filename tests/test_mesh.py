"""The mesh backend: MediaPipe's face mesh and iris model ported to torch, on real photos and video.

Golden values (``tests/assets/mesh_golden.npz``) are MediaPipe's own TFLite runtime's outputs (``mediapipe``
0.10.21) on the face and eye crops of ``blink.jpg`` (eyes closed), ``portrait.jpg`` (mouth wide open, teeth) and
``obama.jpg``, written once by

    python benchmarks/landmarks.py --write-golden tests/assets/mesh_golden.npz --reference-python MPVENV/bin/python

(the crops' regions are stored with them, so the test cuts the same crops and compares the networks' outputs).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import ASSETS

from fsth.errors import NoFaceError
from fsth.landmarks import parts
from fsth.landmarks.backends import make_detector
from fsth.landmarks.mesh import MESH_INPUT, crop_eyes, crop_region, face_region, mesh_to_68
from fsth.landmarks.mesh_runtime import load_runtime
from fsth.landmarks.record import LandmarkTrack
from fsth.landmarks.tracker import FINISH_AHEAD, track_image, track_video
from fsth.video import read_image


@pytest.fixture(scope="module")
def mesh():
    return make_detector("mesh", device="cpu")


@pytest.fixture(scope="module")
def dlib():
    return make_detector("dlib")


def _eye_opening(points: np.ndarray) -> float:
    """Lid gap / eye width, both eyes averaged (mesh points)."""
    d = lambda a, b: np.linalg.norm(points[a] - points[b])  # noqa: E731
    return (d(159, 145) / d(33, 133) + d(386, 374) / d(362, 263)) / 2


def _eye_distance(points68: np.ndarray) -> float:
    return float(np.linalg.norm(points68[36:42].mean(0) - points68[42:48].mean(0)))


@pytest.mark.parametrize("runtime", ["litert", "torch"])
def test_both_runtimes_match_mediapipes_on_golden_crops(runtime):
    import torch

    golden = np.load(ASSETS / "mesh_golden.npz")
    run = load_runtime(torch.device("cpu"), runtime)
    assert run.name == runtime
    crops, eyes = [], []
    for i, name in enumerate(golden["images"]):
        image = read_image(ASSETS / str(name).rsplit("/", 1)[-1])
        crops.append(crop_region(image, golden["regions"][i], MESH_INPUT))
        eyes.append(crop_eyes(image, list(golden["eye_regions"][2 * i : 2 * i + 2])))
    points, face = run.mesh(np.stack(crops))
    contour, iris_points = run.iris(np.concatenate(eyes))
    for got, want in (
        (points, golden["mesh_points"]),
        (contour, golden["iris_contour"]),
        (iris_points, golden["iris_points"]),
    ):
        assert got.shape == want.shape
        d = np.linalg.norm(got[..., :2] - want[..., :2], axis=-1)  # crop pixels
        assert d.mean() < 0.05 and d.max() < 0.5
    assert np.allclose(face, golden["mesh_face"], atol=0.05)
    assert (golden["mesh_face"] > 0).all()  # every golden crop shows a face


def test_the_cpu_runs_litert_and_a_tracked_video_agrees_with_the_torch_port(mesh):
    assert mesh.runtime.name == "litert"  # installed with fsth where it has a wheel (this machine's platform does)
    port = make_detector("mesh", device="cpu", runtime="torch")
    a, b = track_video(ASSETS / "smile.mp4", mesh), track_video(ASSETS / "smile.mp4", port)
    assert np.abs(a.mesh - b.mesh).max() < 0.05 * _eye_distance(a.landmarks[0])
    assert np.abs(a.mesh - b.mesh).mean() < 0.05  # px


def test_closed_eyes_and_an_open_mouth(mesh, dlib):
    closed = mesh.detect(read_image(ASSETS / "blink.jpg"))
    assert len(closed) == 1 and closed[0].shape == (478, 2)
    assert _eye_opening(closed[0]) < 0.12
    open_mouth = mesh.detect(read_image(ASSETS / "portrait.jpg"))[0]
    assert _eye_opening(open_mouth) > 0.2
    inner_upper, inner_lower = parts.MESH_LIPS_INNER_UPPER, parts.MESH_LIPS_INNER_LOWER
    gap = np.linalg.norm(open_mouth[inner_upper[5]] - open_mouth[inner_lower[5]])
    width = np.linalg.norm(open_mouth[inner_upper[0]] - open_mouth[inner_upper[-1]])
    assert gap / width > 0.5
    # the irises sit between their eye's corners
    for iris, (a, b) in ((parts.MESH_RIGHT_IRIS, parts.MESH_RIGHT_EYE_CORNERS),):
        c = open_mouth[iris[0]]
        assert min(open_mouth[a][0], open_mouth[b][0]) < c[0] < max(open_mouth[a][0], open_mouth[b][0])
    for iris, (a, b) in ((parts.MESH_LEFT_IRIS, parts.MESH_LEFT_EYE_CORNERS),):
        c = open_mouth[iris[0]]
        assert min(open_mouth[a][0], open_mouth[b][0]) < c[0] < max(open_mouth[a][0], open_mouth[b][0])


def _lid_gap_68(points68: np.ndarray) -> float:
    """iBUG lid gap / eye width, both eyes averaged."""
    p = points68
    d = lambda a, b: np.linalg.norm(p[a] - p[b])  # noqa: E731
    return ((d(37, 41) + d(38, 40)) / d(36, 39) + (d(43, 47) + d(44, 46)) / d(42, 45)) / 4


def test_68_points_from_the_mesh_agree_with_dlibs(mesh, dlib):
    for name in ("obama.jpg", "portrait.jpg", "einstein.jpg", "blink.jpg"):
        image = read_image(ASSETS / name)
        ours = mesh_to_68(mesh.detect(image)[0])
        theirs = dlib.detect(image)[0]
        err = np.linalg.norm(ours - theirs, axis=1) / _eye_distance(theirs)
        assert err.mean() < 0.09, name  # eye distances; the jaw differs most (the mesh follows the silhouette)
        if name == "blink.jpg":  # closed eyes: the mesh's lids meet, dlib's stay apart (why the mesh exists)
            assert _lid_gap_68(ours) < 0.1 < _lid_gap_68(theirs)
        else:
            assert np.median(err[36:48]) < 0.06, name  # eyes


def test_no_face_or_a_tiny_one_gives_the_same_message_as_dlib(mesh, dlib):
    import cv2

    portrait = read_image(ASSETS / "portrait.jpg")
    cases = {"wall.png": portrait[:160, :160], "tiny.png": cv2.resize(portrait, (60, 60), interpolation=cv2.INTER_AREA)}
    for name, image in cases.items():
        messages = []
        for detector in (mesh, dlib):
            with pytest.raises(NoFaceError) as info:
                track_image(name, detector, image=image)
            messages.append(str(info.value))
        assert messages[0] == messages[1] and messages[0].startswith(f"{name}: no face found in the image")


def test_batched_equals_single(mesh):
    image = read_image(ASSETS / "obama_biden.jpg")
    faces = mesh.detect(image, min_faces=2)
    assert len(faces) == 2
    regions = [face_region(f) for f in faces]
    both, logits = mesh.landmarks(image, regions)
    for i, r in enumerate(regions):
        one, logit = mesh.landmarks(image, [r])
        assert np.abs(one[0] - both[i]).max() < 0.01 and abs(logit[0] - logits[i]) < 1e-3  # px; float noise only


def test_the_torch_port_runs_on_one_cpu_thread_and_leaves_torchs_setting_as_it_was():
    import torch

    mesh = make_detector("mesh", device="cpu", runtime="torch")
    seen = []
    nets = mesh.runtime.nets
    hooks = [net.register_forward_pre_hook(lambda *_: seen.append(torch.get_num_threads())) for net in nets]
    before = torch.get_num_threads()
    torch.set_num_threads(2)  # the generator's setting in `fsth animate`, say
    try:
        mesh.detect(read_image(ASSETS / "obama.jpg"))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
        for h in hooks:
            h.remove()
    assert seen and set(seen) == {1}


def test_a_tracked_video_keeps_the_mesh_and_its_68(mesh, tmp_path):
    track = track_video(ASSETS / "smile.mp4", mesh)
    assert track.backend == "mesh" and track.valid.all()
    assert track.mesh.shape == (len(track), 478, 2) and track.mesh.dtype == np.float32
    assert np.allclose(track.landmarks, mesh_to_68(track.mesh))
    # the face moves little between frames: no jumps (mean point motion per frame, in eye distances)
    step = np.linalg.norm(np.diff(track.mesh[:, :468], axis=0), axis=2).mean(axis=1)
    assert step.max() < 0.25 * _eye_distance(track.landmarks[0])


def test_a_tracked_video_finished_on_a_second_thread_equals_the_tracker_frame_by_frame(mesh):
    from fsth.landmarks.tracker import LandmarkTracker
    from fsth.video import VideoReader

    seen = []
    track = track_video(ASSETS / "smile.mp4", mesh, on_frame=lambda v, i, p, m, f: seen.append((i, p, f.copy())))
    with VideoReader(ASSETS / "smile.mp4") as video:
        frames = list(video)
    tracker = LandmarkTracker(mesh, fps=video.fps)
    rows = [(tracker.update(frame), tracker.mesh) for frame in frames]
    assert len(frames) > 2 * FINISH_AHEAD  # the second stage runs behind, and catches up at the end
    assert np.array_equal(track.landmarks, np.stack([p for p, _ in rows]))
    assert np.array_equal(track.mesh, np.stack([m for _, m in rows]))
    # each frame reported once, in order, with its own points and pixels
    assert [i for i, _, _ in seen] == list(range(len(frames)))
    assert all(np.array_equal(p, q) and np.array_equal(f, g) for (_, p, f), (q, _), g in zip(seen, rows, frames))
    # the iris model moved the lids and placed the irises (unfinished points hold the eye's centre)
    first, _ = mesh.landmarks(read_image(ASSETS / "blink.jpg"), [face_region(track.mesh[0])], irises=False)
    assert np.ptp(track.mesh[0, 468:473], axis=0).max() > 1.0 and np.ptp(first[0, 468:473], axis=0).max() == 0.0


def test_npz_and_jsonl_round_trip_with_and_without_mesh(tmp_path, mesh):
    track = track_image(ASSETS / "obama.jpg", mesh)
    assert track.mesh.shape == (1, 478, 2)
    track.save(tmp_path / "m.npz")
    back = LandmarkTrack.load(tmp_path / "m.npz")
    assert np.array_equal(back.mesh, track.mesh) and np.array_equal(back.landmarks, track.landmarks)
    row = next(track.jsonl_rows())
    assert len(row["mesh"]) == 478 and json.dumps(row)
    # a 68-point track (and a file written before the mesh existed) has no mesh
    plain = LandmarkTrack(
        landmarks=track.landmarks, valid=track.valid, boxes=track.boxes, fps=0.0, frame_size=(360, 450),
        backend="dlib", source="obama.jpg",
    )  # fmt: skip
    plain.save(tmp_path / "d.npz")
    with np.load(tmp_path / "d.npz") as z:
        assert "mesh" not in z.files
    assert LandmarkTrack.load(tmp_path / "d.npz").mesh is None
    assert "mesh" not in next(plain.jsonl_rows())


def test_a_person_keeps_the_mesh_of_its_shots(mesh):
    from fsth.fewshot import detector_for, load_person

    assert detector_for(None).name == "mesh"
    person = load_person([ASSETS / "portrait.jpg"], warp_only=True, detector=mesh)
    assert person.mesh.shape == (1, 478, 2) and person.points.shape == (1, 68, 2)
    assert np.allclose(mesh_to_68(person.mesh), person.points, atol=0.01)  # both in crop pixels
    assert ((person.mesh > 0) & (person.mesh < person.size)).all()


def test_a_model_trained_on_dlib_reads_a_person_on_the_mesh_whose_inner_lips_go_round_the_teeth():
    """A model trained on dlib's points gets the mesh in ``animate`` / ``embed`` / ``finetune``, for the person and
    the driver: on a mouth that shows its teeth dlib lays both inner lips across them, and an opening mouth split
    the teeth. ``fsth evaluate`` keeps the points the model was trained on."""
    from fsth.animate.mouth import mouth_opening
    from fsth.fewshot import detector_for, load_person

    assert detector_for("dlib").name == "mesh" and detector_for("dlib", as_trained=True).name == "mesh+dlib"
    photo = ASSETS / "talking_teeth.jpg"
    given = load_person([photo], warp_only=True, detector=detector_for("dlib"))
    as_trained = load_person([photo], warp_only=True, detector=detector_for("dlib", as_trained=True))
    assert mouth_opening(given.points[0]) > 0.22 and mouth_opening(as_trained.points[0]) < 0.16


def test_mesh_plus_dlib_tracks_dlibs_68_with_the_mesh_beside_them(mesh, dlib):
    both = make_detector("mesh+dlib", device="cpu")
    track = track_video(ASSETS / "smile.mp4", both, smoothing=None)
    plain = track_video(ASSETS / "smile.mp4", dlib, smoothing=None)
    assert track.backend == "mesh+dlib" and track.mesh.shape == (len(track), 478, 2)
    assert np.abs(track.landmarks - plain.landmarks).max() < 1e-3  # dlib's tracked points
    alone = track_video(ASSETS / "smile.mp4", mesh, smoothing=None)
    assert np.abs(track.mesh - alone.mesh).max() < 1e-3  # and the mesh backend's mesh


def test_the_periodic_check_keeps_the_tracked_mesh_where_dlib_finds_the_same_face(mesh):
    image = read_image(ASSETS / "obama.jpg")
    tracked = track_image(ASSETS / "obama.jpg", mesh).mesh[0]
    assert mesh.redetect(image, tracked, tracked=tracked) is tracked  # no second mesh pass on the same face
    # a track that has drifted off the face dlib finds is replaced by a fresh mesh on dlib's face
    drifted = tracked + np.float32([1.5 * np.ptp(tracked[:, 0]), 0])
    fresh = mesh.redetect(image, tracked, tracked=drifted)
    assert fresh is not drifted and np.abs(fresh[:468] - tracked[:468]).max() < 3.0
