"""The few-shot layer's specification (``fsth.fewshot``): every SOURCE kind (a photo, a directory of photos, a video,
an embedding file, a person file) and every model kind (the paper's generator, a warp-guided one, the warp alone)
becomes a ``Person`` that renders; and what must be the same wherever a source is taken (issue 19's five bugs): one
landmark detector for the source and the driver, one crop for animate and evaluate, the model's own fine-tuning
defaults, the warp alone at the checkpoint's crop and size without its networks, and one order of a GAN step."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import OBAMA, PORTRAIT, PORTRAIT_POUT, SMILE, TALK, VOX, ok

from fsth.config import TrainConfig
from fsth.fewshot import FewShotModel, Renderer, load_person, load_shots, person_crop_policy
from fsth.landmarks import CropPolicy, make_detector


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No weights to download (an empty torch hub cache, no network): VGG cannot be loaded."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("FSTH_OFFLINE", "1")


@pytest.fixture
def animated(monkeypatch) -> dict:
    """What `fsth animate` hands the pipeline (``fsth.animate.animate``: the person, and its detector that also
    reads the driver), without driving it."""
    import fsth.animate
    from fsth.animate import AnimateStats

    seen = {}

    def animate(person, driver, output, options, **kwargs):
        seen.update(person=person, detector=person.detector)
        return AnimateStats(0, 0, 1.0, 0, None, 30.0, None)

    monkeypatch.setattr(fsth.animate, "animate", animate)
    return seen


def test_animate_takes_the_photo_landmarks_from_the_backend_given(
    tmp_path, animated, tiny_meta_checkpoint, random_fan_weights
):
    """`--backend fan --fan-weights X` with a checkpoint trained on dlib's landmarks: the photo's landmarks are
    FAN's, from the detector that also tracks the driver."""
    seen = animated
    ok(
        "animate", PORTRAIT, TALK, "-o", tmp_path / "out.mp4", "-c", tiny_meta_checkpoint,
        "--backend", "fan", "--fan-weights", random_fan_weights,
    )  # fmt: skip
    assert seen["detector"].name == "fan"
    fan = load_shots([PORTRAIT], seen["detector"], 64, person_crop_policy(CropPolicy()))
    dlib = load_shots([PORTRAIT], make_detector("dlib"), 64, person_crop_policy(CropPolicy()))
    assert np.array_equal(seen["person"].points, fan.points)
    assert np.abs(fan.points - dlib.points).max() > 1  # random FAN weights: the two cannot be mistaken


def test_evaluate_crops_a_cross_source_as_animate_does(offline, tiny_meta_checkpoint, dlib_detector):
    """Obama's portrait is cropped past its top edge: evaluate's source shot (the identity CSIM is measured on)
    is the one animate embeds, its edge pixels repeated, not a black band."""
    from fsth.evaluate import EvalOptions, load_cross_source
    from fsth.fewshot import FewShotModel

    model = FewShotModel(FewShotModel.load(tiny_meta_checkpoint).checkpoint)
    source = load_cross_source(OBAMA, model, dlib_detector, EvalOptions(baselines=False), train_cfg=TrainConfig())
    person = load_person([OBAMA], tiny_meta_checkpoint, detector=dlib_detector)  # as `fsth animate` takes it
    assert np.array_equal(source.identity.crops[0], person.crops[0])
    assert np.array_equal(source.points, person.points[0])
    assert (source.identity.crops[0].max(axis=-1) == 0).sum() == 0  # no black pixel


def test_library_fine_tuning_follows_the_model(offline, dlib_detector):
    """From Python with no configuration given, the shipped warp model fine-tunes with its own objective (pixel
    terms, no content loss): no VGG weights are needed, and the report says so."""
    from fsth.evaluate import EvalOptions, evaluate
    from fsth.fewshot import FewShotModel
    from fsth.fewshot.finetune import finetune, person_networks

    meta = FewShotModel.load(None).checkpoint  # no $FSTH_CHECKPOINT, nothing at the default place: the shipped model
    options = EvalOptions(baselines=False, shots=(1,), targets=1, finetune_steps=1, metrics=("l1",))
    report = evaluate(FewShotModel(meta), [VOX], dlib_detector, options)
    assert report["protocols"]["self"]["finetune"]["content_loss"] is False
    assert [s["name"] for s in report["settings"]] == ["self K=1 FF", "self K=1 FT"]

    model = FewShotModel(meta)
    shots = model.shots([PORTRAIT], dlib_detector)
    e_hat = model.embed(shots)
    assert model.finetune(shots, 1, e_hat=e_hat).content_loss is False
    assert finetune(*person_networks(meta, e_hat), shots, 1).content_loss is False


@pytest.fixture
def warp_meta(tmp_path):
    """A tiny_warp meta checkpoint (64x64, E and G only, random weights), with a crop policy of its own."""
    import torch

    from fsth.checkpoint import save_checkpoint
    from fsth.config import ModelConfig
    from fsth.models import Embedder, Generator

    torch.manual_seed(0)
    cfg = ModelConfig.preset("tiny_warp")
    nets = {"E": Embedder(cfg), "G": Generator(cfg)}
    policy = CropPolicy(scale=CropPolicy().scale * 1.25).to_dict()
    path = tmp_path / "meta.safetensors"
    return save_checkpoint(path, "meta", nets, cfg, crop_policy=policy, landmark_backend="dlib")


def test_the_warp_alone_takes_photos_at_the_checkpoint_crop_and_size(warp_meta, dlib_detector):
    """`--model warp` with photos: the shots are at --checkpoint's size and crop policy (as every command crops)."""
    from fsth.fewshot import crop_policy_of

    meta = FewShotModel.load(warp_meta, only=()).checkpoint
    person = load_person([PORTRAIT], warp_meta, warp_only=True, detector=dlib_detector)
    assert person.size == 64 and person.crop_policy == crop_policy_of(meta) != CropPolicy()
    expected = load_shots([PORTRAIT], dlib_detector, 64, person_crop_policy(crop_policy_of(meta)))
    assert np.array_equal(person.crops, expected.crops)


def test_the_warp_alone_warps_an_embedding_without_the_meta_checkpoint(tmp_path, animated, warp_meta, dlib_detector):
    """`--model warp` with an embedding file warps its stored shots and uses no network: the meta checkpoint it was
    made with may be gone."""
    from fsth.fewshot import crop_policy_of, save_embedding
    from fsth.fewshot.embed import embed

    meta = FewShotModel.load(warp_meta).checkpoint
    shots = load_shots([PORTRAIT], dlib_detector, 64, person_crop_policy(crop_policy_of(meta)))
    save_embedding(tmp_path / "me.safetensors", embed(meta.embedder(), shots), shots, meta)
    warp_meta.unlink()  # the meta checkpoint it was made with is gone (as $FSTH_CHECKPOINT still names it)
    env = {"FSTH_CHECKPOINT": str(warp_meta)}
    ok("animate", tmp_path / "me.safetensors", TALK, "--model", "warp", "-o", tmp_path / "out.mp4", env=env)
    person = animated["person"]
    assert person.generator is None and person.e_hat is None and np.array_equal(person.crops, shots.crops)
    assert person.size == 64 and person.crop_policy == crop_policy_of(meta)


def test_fine_tuning_steps_d_then_g_as_meta_learning(monkeypatch, tiny, frames):
    """A fine-tuning step updates D' first, then G' against the updated D' (``fsth.gan``'s order)."""
    import torch

    from fsth import gan
    from fsth.fewshot.finetune import finetune_step
    from fsth.models import Generator, PersonDiscriminator, person_generator

    torch.manual_seed(0)
    G, D = person_generator(Generator(tiny), torch.randn(tiny.embedding_dim)), PersonDiscriminator(tiny)
    opt_G, opt_D = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    order, step = [], gan.step

    def spy(loss, optimizers, D=None):
        optimizers = list(optimizers)
        order.extend("G" if opt is opt_G else "D" for opt in optimizers)
        step(loss, optimizers, D)

    monkeypatch.setattr(gan, "step", spy)
    x, y = frames
    finetune_step(G, D, opt_G, opt_D, x, y, TrainConfig(content_loss=False, d_steps_per_g_step=2))
    assert order == ["D", "D", "G"]


def test_every_source_kind_becomes_a_person_that_renders(tmp_path, tiny_meta_checkpoint, dlib_detector):
    """Photos, a directory, a video, an embedding file and a person file: each gives the person's landmarks at the
    checkpoint's size and crop (a photo's exactly as ``load_shots`` crops it for every command), the one detector
    it was read with (the driver's too), and frames from its renderer."""
    from fsth.fewshot import save_embedding, save_person
    from fsth.fewshot.embed import embed
    from fsth.fewshot.finetune import finetune, person_networks

    model = FewShotModel.load(tiny_meta_checkpoint)
    policy = person_crop_policy(model.crop_policy)
    folder = tmp_path / "photos"
    folder.mkdir()
    for photo in (PORTRAIT, PORTRAIT_POUT):
        (folder / photo.name).write_bytes(photo.read_bytes())
    shots = load_shots([PORTRAIT], dlib_detector, 64, policy)
    save_embedding(tmp_path / "me.safetensors", embed(model.E, shots), shots, model.checkpoint)
    cfg = TrainConfig(content_loss=False)
    result = finetune(*person_networks(model.checkpoint, embed(model.E, shots), "cpu"), shots, 1, cfg)
    save_person(tmp_path / "p.safetensors", result, shots, embed(model.E, shots), model.checkpoint, cfg)
    sources = {
        "photo": ([PORTRAIT], 1, "FF"),
        "directory": ([folder], 2, "FF"),
        "video": ([SMILE], 3, "FF"),
        "embedding": (tmp_path / "me.safetensors", 1, "FF"),
        "person": (tmp_path / "p.safetensors", 1, "FT"),
    }
    for kind, (source, k, mode) in sources.items():
        person = load_person(source, None if kind == "person" else tiny_meta_checkpoint, detector=dlib_detector, k=k)
        assert person.detector is dlib_detector, kind
        assert person.points.shape == (k, 68, 2) and person.size == 64, kind
        assert person.crop_policy == model.crop_policy and (person.e_hat is None) == (mode == "FT"), kind
        frames = Renderer.of(person).render(person.points[:1])
        assert frames.shape == (1, 64, 64, 3) and frames.dtype == np.uint8 and frames.std() > 1, kind
        if kind in ("photo", "embedding", "person"):
            assert np.allclose(person.points[0], shots.points[0]), kind  # the one crop of every command
    with pytest.raises(Exception, match="person file carries its own generator"):
        load_person(tmp_path / "p.safetensors", tiny_meta_checkpoint, detector=dlib_detector)


def test_every_model_kind_renders_and_the_warp_alone_keeps_the_shot(warp_meta, tiny_meta_checkpoint, dlib_detector):
    """The paper's generator, a warp-guided generator and the warp alone (no network): each renders the person's own
    landmarks; the warp alone, given the shot's own landmarks, gives the shot back."""
    paper = load_person([PORTRAIT], tiny_meta_checkpoint, detector=dlib_detector)
    guided = load_person([PORTRAIT], warp_meta, detector=dlib_detector)
    alone = load_person([PORTRAIT], warp_meta, warp_only=True, detector=dlib_detector)
    assert not paper.generator.cfg.warp and guided.generator.cfg.warp and alone.generator is None
    for person in (paper, guided, alone):
        frames = Renderer.of(person).render(person.points[:1])
        assert frames.shape == (1, 64, 64, 3) and frames.dtype == np.uint8
    back = Renderer.of(alone).render(alone.points[:1])[0].astype(float)
    assert np.abs(back - alone.crops[0]).mean() < 3  # the identity warp, up to resampling


def test_paste_back_reads_the_photo_once(monkeypatch, warp_meta, dlib_detector):
    """The source photo is read for its shots and pasted back into without being read again."""
    import fsth.animate.compose
    import fsth.fewshot.shots
    from fsth.animate import AnimateOptions, Compositor
    from fsth.video import read_image

    reads = []

    def counted(path):
        reads.append(path)
        return read_image(path)

    monkeypatch.setattr(fsth.fewshot.shots, "read_image", counted)
    monkeypatch.setattr(fsth.animate.compose, "read_image", counted)
    person = load_person([PORTRAIT], warp_meta, warp_only=True, detector=dlib_detector)
    compose = Compositor(person, AnimateOptions(paste_back=True, model="warp"), warps=True)
    assert reads == [PORTRAIT] and np.array_equal(compose.photo, read_image(PORTRAIT))


def test_paste_back_of_a_tight_photo_moves_its_soft_fill_into_view(monkeypatch, warp_meta, dlib_detector, tmp_path):
    """--paste-back warps the photo itself: where the crop box runs off a tight photo and the head moves down, what
    comes into view above it is the photo's edge softly filled outwards (as a new person's crop is), not its edge
    pixels repeated as streaks; where nothing moves, the photo is as it was."""
    import cv2

    import fsth.animate.compose
    from fsth.animate import AnimateOptions, Compositor
    from fsth.video import read_image, write_image

    image = read_image(PORTRAIT)
    points = dlib_detector.detect(image)[0]
    x0, y0 = points.min(0).astype(int) - 20
    x1, y1 = points.max(0).astype(int) + 20
    tight = tmp_path / "tight.png"
    write_image(tight, image[max(y0, 0) : y1, max(x0, 0) : x1])
    person = load_person([tight], warp_meta, warp_only=True, detector=dlib_detector)
    photo = read_image(tight)

    def result(points):
        compose = Compositor(person, AnimateOptions(paste_back=True, model="warp"), warps=True)
        return compose.result(Renderer.of(person).render(points[None])[0], points).astype(np.float32)

    source = person.points[0]
    assert np.abs(result(source) - photo).mean() < 3  # the identity warp, up to resampling
    down = source + [0.0, 0.08 * person.size]  # the head moves down by 8% of the crop
    soft = result(down)
    monkeypatch.setattr(
        fsth.animate.compose,
        "soft_pad",
        lambda img, pads, scale: cv2.copyMakeBorder(img, pads[1], pads[3], pads[0], pads[2], cv2.BORDER_REPLICATE),
    )
    streaks = result(down)

    def detail(frame):  # high-frequency detail across the top rows (repeated edge pixels run as vertical streaks)
        top = frame[:12]
        return np.abs(top - cv2.GaussianBlur(top, (0, 0), sigmaX=3, sigmaY=0.1)).mean()

    assert detail(soft) < 0.6 * detail(streaks)
