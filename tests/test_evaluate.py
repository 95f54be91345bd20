"""The evaluation protocols (``fsth.evaluate``) on the bundled clips with the tiny random checkpoint: the report's
fields, FF and FT rows, bad videos skipped, the shot/target split, cross-reenactment, and stand-in generators that
prove the generated and real crops line up (a perfect generator scores SSIM 1, AKD 0, CSIM 1)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import PORTRAIT, SMILE, TALK, VOX

import fsth.fewshot.model
from fsth.animate import AnimateOptions, plan_targets
from fsth.config import TrainConfig
from fsth.errors import InputError
from fsth.evaluate import EvalOptions, evaluate, parse_shots, report_table, split_parts
from fsth.fewshot import FewShotModel, load_shots, person_crop_policy
from fsth.landmarks import CropPolicy, face_pair
from fsth.metrics.keypoints import at_akd_size, detect_landmarks, keypoint_distance
from fsth.video import read_image

SETTINGS = [
    "self K=1 FF",
    "self K=1 FT",
    "self K=4 FF",
    "self K=4 FT",
    "cross portrait.jpg FF",
    "cross portrait.jpg FT",
]


@pytest.fixture(scope="module")
def offline(tmp_path_factory):
    """No FID weights anywhere (an empty torch hub cache, no download)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("TORCH_HOME", str(tmp_path_factory.mktemp("torch_home")))
        mp.setenv("FSTH_OFFLINE", "1")
        yield


TARGETS = 2  # per video (each costs 2-3 dlib face-recognition passes, ~0.1 s each, in every setting)
EVALUATED = 2  # of the videos ``run`` evaluates: talk.mp4 and vox.mp4
FINETUNE_PAUSE = 0.5  # seconds every fine-tuning takes on top of its 2 steps: FT's seconds must include them


@pytest.fixture(scope="module")
def finetune_seconds() -> list[float]:
    """The seconds of every fine-tuning the evaluation ran, in order."""
    return []


@pytest.fixture(scope="module")
def run(
    offline, tiny_meta_checkpoint, dlib_detector, truncated_videos, faceless_video, tmp_path_factory, finetune_seconds
):
    """One evaluation of two clips and three bad videos: K = 1 and 4, TARGETS targets, FF and FT (2 steps), a
    cross-reenactment source photo, sample grids. Each fine-tuning is made FINETUNE_PAUSE longer and timed."""
    import time

    samples = tmp_path_factory.mktemp("samples")
    missing = samples.parent / "missing.mp4"
    videos = [TALK, missing, VOX, truncated_videos["front"], faceless_video]
    finetune = FewShotModel.finetune

    def timed_finetune(*args, **kwargs):
        start = time.perf_counter()
        time.sleep(FINETUNE_PAUSE)
        result = finetune(*args, **kwargs)
        finetune_seconds.append(time.perf_counter() - start)
        return result

    # One torch thread: the tiny networks gain nothing from two, and two spin for seconds beside a busy neighbour
    # (measured on 2 cores beside another busy process: this evaluation took 97 s with two threads, 17 s with one).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(FewShotModel, "finetune", timed_finetune)
            report = evaluate(
                FewShotModel.load(tiny_meta_checkpoint),
                videos,
                dlib_detector,
                EvalOptions(baselines=False, shots=(1, 4), targets=TARGETS, finetune_steps=2),
                cross=[PORTRAIT],
                train_cfg=TrainConfig(content_loss=False),
                samples=samples,
            )
    finally:
        torch.set_num_threads(threads)
    return report, samples


def evaluated(report):
    return [row for row in report["videos"] if row["status"] == "evaluated"]


def test_the_report_has_every_field(run, tiny_meta_checkpoint):
    report, _ = run
    json.dumps(report, allow_nan=False)  # strict JSON
    checkpoint = report["checkpoint"]
    assert checkpoint["path"] == str(tiny_meta_checkpoint) and checkpoint["step"] == 0
    assert checkpoint["config"]["image_size"] == 64 and checkpoint["landmark_backend"] == "dlib"
    assert checkpoint["crop_policy"] == CropPolicy().to_dict() and len(checkpoint["fingerprint"]) == 16
    assert report["landmark_detector"] == "dlib"
    protocol = report["protocols"]["self"]
    assert protocol["shots"] == [1, 4] and protocol["targets"] == TARGETS and protocol["modes"] == ["FF", "FT"]
    assert protocol["finetune"]["steps"] == 2 and protocol["finetune"]["content_loss"] is False
    assert report["protocols"]["cross"]["sources"] == [str(PORTRAIT)]
    networks = {name: m["network"] for name, m in report["metrics"].items()}
    assert networks == {
        "ssim": None,
        "psnr": None,
        "l1": None,
        "csim": "dlib-resnet-128",
        "akd": "dlib landmarks",
        "fid": "inception-v3-fid",
    }
    assert report["metrics"]["csim"]["weights"].endswith("dlib_face_recognition_resnet_model_v1.dat")
    assert [s["name"] for s in report["settings"]] == SETTINGS
    frames = EVALUATED * TARGETS
    for setting in report["settings"][:4]:  # self-reenactment: 2 videos x 2 targets in every metric
        assert setting["videos"] == EVALUATED and setting["seconds"] > 0
        metrics = setting["metrics"]
        assert list(metrics) == ["ssim", "psnr", "l1", "csim", "akd", "fid"]
        for name in ("ssim", "psnr", "l1", "csim"):
            assert metrics[name]["count"] == frames and metrics[name]["failed"] == 0
            assert metrics[name]["value"] is not None and metrics[name]["std"] is not None
        akd = metrics["akd"]
        # the real faces are found at 256x256, but for one blurry 64-px crop of vox.mp4 that dlib's HOG misses
        assert akd["count"] + akd["failed"] == frames and akd["details"]["real_failures"] <= 1
        fid = metrics["fid"]  # no Inception weights here: not computed, and why
        assert fid["value"] is None and "pt_inception-2015-12-05-6726825d.pth" in fid["reason"]
        assert fid["details"] == {"generated_frames": frames, "real_frames": frames}  # the real targets, shared
    assert report["summary"]["videos"] == 5 and report["summary"]["evaluated"] == EVALUATED
    for row in evaluated(report):
        assert list(row["settings"]) == SETTINGS
        for name in SETTINGS[:4]:
            per_video = row["settings"][name]
            assert per_video["metrics"]["ssim"]["count"] == TARGETS and "fid" not in per_video["metrics"]
            assert per_video["shots_used"] == int(name.split("=")[1].split()[0])
    table = report_table(report)
    assert table.row_count == 6 and "skipped" in str(table.caption) and "FID not computed" in str(table.caption)


def test_ft_rows_come_from_fine_tuning(run, finetune_seconds):
    report, _ = run
    ssim = {s["name"]: s["metrics"]["ssim"]["value"] for s in report["settings"][:4]}
    assert ssim["self K=1 FT"] != ssim["self K=1 FF"] and ssim["self K=4 FT"] != ssim["self K=4 FF"]
    row = evaluated(report)[0]["settings"]
    # the fine-tuning counts for FT, not for FF: the cross source's comes first, then each video's K=1 and K=4
    assert len(finetune_seconds) == 1 + EVALUATED * 2
    assert row["self K=1 FT"]["seconds"] >= finetune_seconds[1] and row["self K=4 FT"]["seconds"] >= finetune_seconds[2]
    assert row["self K=1 FF"]["seconds"] < row["self K=1 FT"]["seconds"]


def test_bad_videos_are_reported_and_skipped(run, truncated_videos, faceless_video):
    report, _ = run
    rows = report["videos"]
    assert [r["status"] for r in rows] == ["evaluated", "skipped", "evaluated", "skipped", "skipped"]
    assert rows[1]["reason"].endswith("missing.mp4: no such file")
    assert str(truncated_videos["front"]) in rows[3]["reason"] and "truncated or corrupt" in rows[3]["reason"]
    assert str(faceless_video) in rows[4]["reason"] and "no face" in rows[4]["reason"]


def test_shots_and_targets_are_disjoint_frames(run):
    report, _ = run
    for row in evaluated(report):
        n = row["frames_with_face"]
        assert n == row["frames"]  # the clips have a face in every frame
        first, last = row["shot_part"], row["target_part"]
        assert first == [0, n // 2 - 1] and last == [n // 2, n - 1]
        targets = row["target_frames"]
        assert len(targets) == TARGETS and all(last[0] <= t <= last[1] for t in targets)
        for k, shots in row["shot_frames"].items():
            assert len(shots) == int(k) and all(first[0] <= s <= first[1] for s in shots)
            assert not set(shots) & set(targets)
    talk = evaluated(report)[0]  # 60 frames: shots spread over 0-29, targets over 30-59 (the centres of 2 parts)
    assert talk["shot_frames"] == {"1": [15], "4": [3, 11, 18, 26]} and talk["target_frames"] == [37, 52]


def test_split_of_short_and_gappy_videos():
    shots, targets = split_parts(np.array([False, True, True, False, True, True, True]))
    assert shots.tolist() == [1, 2] and targets.tolist() == [4, 5, 6]
    shots, targets = split_parts(np.array([True, False]))
    assert shots.tolist() == [] and targets.tolist() == [0]  # fewer than 2 faces: the video is skipped


def test_cross_reenactment_rows(run):
    report, _ = run
    source = report["cross_sources"][0]
    assert source["identity"] == str(PORTRAIT) and source["shots"] == 1 and source["modes"] == ["FF", "FT"]
    for setting in report["settings"][4:]:
        assert list(setting["metrics"]) == ["csim", "akd"]  # no ground truth: no pixel metrics, no FID
        csim, akd = setting["metrics"]["csim"], setting["metrics"]["akd"]
        # every generated frame by the landmarks it was given, the source photo by its own (once per video)
        frames = EVALUATED * TARGETS
        assert csim["count"] == frames and csim["details"]["landmarks_given"] == frames + EVALUATED
        assert akd["details"]["real_failures"] == 0  # the driver's landmarks are given, never detected
        assert akd["count"] + akd["failed"] == frames
    for row in evaluated(report):
        cross = row["settings"]["cross portrait.jpg FF"]
        assert len(cross["driver_frames"]) == TARGETS and isinstance(cross["reference_frame"], int)


def test_sample_grids(run):
    report, samples = run
    files = sorted(p.relative_to(samples).as_posix() for p in samples.rglob("*.png"))
    assert len(files) == EVALUATED * 6
    assert "000_talk/self_K4_FT.png" in files and "002_vox/cross_portrait.jpg_FF.png" in files
    grid = read_image(samples / "000_talk" / "self_K1_FF.png")
    assert grid.shape == ((TARGETS * 66 - 2) * 2, (3 * 66 - 2) * 2, 3)  # targets x (landmark image | real | generated)


# -- stand-in generators -------------------------------------------------------------------------------


class StandIn:
    """Stands in for ``fsth.animate.Renderer`` (same signature; ``monkeypatch``); ``frames(points)`` says what it
    draws for given landmarks."""

    made: list = []

    def __init__(self, generator, e_hat=None, *, device=None, dtype=None):
        StandIn.made.append(generator)

    def render(self, points):
        return np.stack([self.frame(p) for p in points])


def test_a_perfect_generator_scores_perfectly(
    offline, monkeypatch, tiny_meta_checkpoint, dlib_detector, talk_frames, talk_track
):
    """A "generator" that returns the real crop of the frame whose landmarks it is given: only when the targets'
    landmarks are drawn in their own crop boxes and compared with those crops does it score SSIM 1, AKD 0, CSIM 1."""
    known = [
        face_pair(frame, talk_track.landmarks[i], 64, CropPolicy(), talk_track.boxes[i])
        for i, frame in enumerate(talk_frames)
    ]

    class Perfect(StandIn):
        def frame(self, points):
            distance = [np.abs(pair.points - points).max() for pair in known]
            assert min(distance) < 1e-4  # it was given a real frame's landmarks in that frame's crop
            return known[int(np.argmin(distance))].crop

    monkeypatch.setattr(fsth.fewshot.model, "Renderer", Perfect)
    report = evaluate(
        FewShotModel.load(tiny_meta_checkpoint),
        [TALK],
        dlib_detector,
        EvalOptions(baselines=False, shots=(2,), targets=6),
    )
    metrics = report["settings"][0]["metrics"]
    assert metrics["ssim"]["value"] == pytest.approx(1.0, abs=1e-12) and metrics["l1"]["value"] == 0.0
    assert metrics["psnr"]["value"] == "inf"
    assert metrics["csim"]["value"] == pytest.approx(1.0, abs=1e-6) and metrics["csim"]["count"] == 6
    assert metrics["akd"]["value"] == 0.0 and metrics["akd"]["count"] == 6 and metrics["akd"]["failed"] == 0


def test_cross_identity_is_the_source_and_motion_the_driver_landmarks(
    offline, monkeypatch, tiny_meta_checkpoint, dlib_detector, talk_track
):
    """A "generator" that always returns the source's own crop: CSIM against the source is about 1; AKD is the
    distance of the source crop's landmarks from the retargeted driver landmarks it was asked to draw."""
    source = load_shots([PORTRAIT], dlib_detector, 64, person_crop_policy(CropPolicy()))  # as animate crops it

    class Still(StandIn):
        def frame(self, points):
            return source.crops[0]

    monkeypatch.setattr(fsth.fewshot.model, "Renderer", Still)
    report = evaluate(
        FewShotModel.load(tiny_meta_checkpoint),
        [TALK],
        dlib_detector,
        EvalOptions(baselines=False, shots=(1,), targets=5, metrics=("csim", "akd")),
        cross=[PORTRAIT],
    )
    setting = report["settings"][1]
    assert setting["name"] == "cross portrait.jpg FF"
    assert setting["metrics"]["csim"]["value"] > 0.97 and setting["metrics"]["csim"]["count"] == 5
    row = report["videos"][0]["settings"]["cross portrait.jpg FF"]
    planned, reference = plan_targets(talk_track, source.points[0], 64, AnimateOptions())  # animate's retargeting
    assert row["reference_frame"] == reference
    on_source = detect_landmarks(dlib_detector, at_akd_size(source.crops[:1])[0])  # at 256x256
    expected = np.mean([keypoint_distance(on_source, planned[f] * 4) for f in row["driver_frames"]])
    assert setting["metrics"]["akd"]["value"] == pytest.approx(expected, rel=1e-9) and expected > 0.5


def test_fid_per_setting_shares_the_real_frames(offline, tiny_meta_checkpoint, dlib_detector, fid_weights):
    report = evaluate(
        FewShotModel.load(tiny_meta_checkpoint),
        [VOX],
        dlib_detector,
        EvalOptions(baselines=False, shots=(1, 2), targets=3, metrics=("fid",)),
        metric_options={"fid": {"weights": str(fid_weights)}},
    )
    for setting in report["settings"]:
        fid = setting["metrics"]["fid"]
        assert fid["value"] is not None and fid["value"] > 0 and fid["weights"] == str(fid_weights)
        assert fid["details"] == {"generated_frames": 3, "real_frames": 3} and "biased upward" in fid["notes"][0]
    assert report["metrics"]["fid"]["weights"] == str(fid_weights)


def test_options_are_checked():
    assert parse_shots("1, 8,32,8") == (1, 8, 32)
    for bad in ("", "1,,8", "0", "-1", "a"):
        with pytest.raises(InputError, match="--shots"):
            parse_shots(bad)
    with pytest.raises(InputError, match="unknown metric"):
        EvalOptions(metrics=("ssim", "sharpness"))
    with pytest.raises(InputError, match="targets"):
        EvalOptions(targets=0)


def test_embedding_and_person_files_as_cross_sources(offline, tiny_meta_checkpoint, dlib_detector, tmp_path):
    """An embedding drives the meta generator (FF), a person file its own G' (FT); identity is measured on the first
    shot the file records, read again: a video frame is found again, a deleted photo is reported."""
    from fsth.fewshot import save_embedding
    from fsth.fewshot.embed import embed
    from fsth.fewshot.finetune import finetune, person_networks, save_person

    meta, cfg = FewShotModel.load(tiny_meta_checkpoint).checkpoint, TrainConfig(content_loss=False)
    photo = tmp_path / "me.jpg"
    photo.write_bytes(PORTRAIT.read_bytes())
    shots = load_shots([photo], dlib_detector, 64, CropPolicy())
    save_embedding(tmp_path / "me.safetensors", embed(meta.embedder(), shots), shots, meta)
    photo.unlink()
    frames = load_shots([SMILE], dlib_detector, 64, CropPolicy(), k=3)
    e_hat = embed(meta.embedder(), frames)
    result = finetune(*person_networks(meta, e_hat, "cpu"), frames, 1, cfg)
    save_person(tmp_path / "smile.safetensors", result, frames, e_hat, meta, cfg)

    report = evaluate(
        FewShotModel(meta),
        [VOX],
        dlib_detector,
        EvalOptions(baselines=False, shots=(1,), targets=2, metrics=("csim",)),
        cross=[tmp_path / "me.safetensors", tmp_path / "smile.safetensors"],
    )
    embedding, person = report["cross_sources"]
    assert embedding["modes"] == ["FF"] and embedding["identity"] is None and "me.jpg" in embedding["identity_reason"]
    assert person["modes"] == ["FT"] and person["identity"] == frames.sources[0] and person["shots"] == 3
    by_name = {s["name"]: s["metrics"]["csim"] for s in report["settings"]}
    assert by_name["cross me.safetensors FF"]["value"] is None
    assert by_name["cross me.safetensors FF"]["reason"] == embedding["identity_reason"]
    assert by_name["cross smile.safetensors FT"]["count"] == 2


def test_metric_options_from_the_command_s(tmp_path):
    from fsth.evaluate import MetricOptions

    weights = tmp_path / "backbone.pth"
    weights.write_bytes(b"x")
    assert MetricOptions().for_metrics(("ssim", "csim")) == {}
    assert MetricOptions(fid_weights=weights).for_metrics(("ssim",)) == {}  # FID not asked for: no file needed
    assert MetricOptions(csim_network="arcface", arcface_weights=weights).for_metrics(("csim",)) == {
        "csim": {"network": "arcface", "weights": str(weights)}
    }
    with pytest.raises(InputError, match="--arcface-weights"):
        MetricOptions(csim_network="arcface").for_metrics(("csim",))
    with pytest.raises(InputError, match="--fid-weights .*inception.pth: no such file"):
        MetricOptions(fid_weights=tmp_path / "inception.pth").for_metrics(("fid",))


def test_the_settings_share_what_each_metric_makes_once(offline, dlib_detector):
    """Each setting has its own accumulators, but one face-recognition network (CSIM) and one Inception network
    and real set (FID) serve them all: ``Metric.shared_options``."""
    from fsth.evaluate.scoring import SettingMetrics

    made = SettingMetrics(["ssim", "csim", "fid"], dlib_detector, "cpu", None)
    a, b = made.make(["ssim", "csim", "fid"]), made.make(["csim", "fid"])
    assert a["csim"] is not b["csim"] and a["csim"].embedder is b["csim"].embedder
    assert a["fid"] is not b["fid"] and a["fid"].real is b["fid"].real and a["fid"].generated is not b["fid"].generated
    assert a["fid"].reason == b["fid"].reason and "pt_inception" in a["fid"].reason  # one missing file, said once


def test_metrics_read_the_68_points_of_a_detector_with_more():
    """The shipped model's detector (``mesh+dlib``, 478 + 68 points a face), shared by ``fsth evaluate`` with AKD and
    the identity metrics: they get the iBUG 68 (a cross-reenactment with it stopped on a traceback, comparing 546
    points with the 68 the generator was given)."""
    from conftest import ASSETS

    from fsth.landmarks import make_detector
    from fsth.video import read_image

    detector = make_detector("mesh+dlib", device="cpu")
    photo = read_image(ASSETS / "obama.jpg")
    points = detect_landmarks(detector, photo)
    assert points.shape == (68, 2)
    assert keypoint_distance(points, detector.to_68(detector.detect(photo)[0])) == 0.0
