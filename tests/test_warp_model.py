"""The warp-guided generator (ModelConfig.generator == "warp", tiny_warp preset) on real shots from talk.mp4:
it starts as the warp, every E and G parameter learns from the full loss, training, fine-tuning, person files,
rendering and the evaluation baselines use it, and paper256 is untouched."""

from pathlib import Path

import numpy as np
import pytest
import torch

from fsth.config import ModelConfig, TrainConfig
from fsth.losses import generator_loss, mouth_weights
from fsth.models import Discriminator, Embedder, Generator, images_to_tensor, warped_source
from fsth.models.warp import warp

TALK = Path(__file__).parent / "assets" / "talk.mp4"


@pytest.fixture(scope="module")
def cfg():
    return ModelConfig.preset("tiny_warp")


@pytest.fixture(scope="module")
def shots(dlib_detector, cfg):
    """4 shots of talk.mp4 (mouth closed, opening, open, closing) at the tiny_warp size."""
    from fsth.fewshot import load_shots
    from fsth.landmarks import CropPolicy

    return load_shots([TALK], dlib_detector, cfg.image_size, CropPolicy(), k=4)


def episode(shots, target: int):
    """The other shots as the embedder's K = 3, shot ``target`` as the target: (shots_x, shots_y, shots_points,
    x, y, points) as tensors."""
    x, y = shots.tensors()
    points = torch.from_numpy(shots.points)
    rest = [i for i in range(len(shots)) if i != target]
    return (
        x[rest][None],
        y[rest][None],
        points[rest][None],
        x[target : target + 1],
        y[target : target + 1],
        points[target : target + 1],
    )


def test_an_untrained_warp_generator_returns_the_warp(cfg, shots):
    torch.manual_seed(0)
    E, G = Embedder(cfg), Generator(cfg)
    sx, sy, sp, x, y, p = episode(shots, 2)
    warped = warped_source(cfg, sx, sp, p)
    with torch.no_grad():
        x_hat = G(y, E.embed_shots(sx, sy), warped)
    assert x_hat.shape == x.shape
    assert (x_hat - warped).abs().max() < 1e-6  # a zero correction: the warp itself
    # and the warp is nearer the real target than the unchanged nearest shot on these real frames
    from fsth.models.warp import nearest_shot

    copy = sx[0, nearest_shot(sp, p)]
    assert (warped - x).abs().mean() < (copy - x).abs().mean()


def test_every_embedder_and_generator_parameter_gets_gradient_from_the_full_loss(cfg, shots):
    torch.manual_seed(0)
    E, G, D = Embedder(cfg), Generator(cfg), Discriminator(cfg, num_videos=3)
    with torch.no_grad():  # as after a first step: the zero-initialised output convs pass no gradient to the body
        G.out_conv.weight.normal_(0, 0.05)
        G.mask_conv.weight.normal_(0, 0.05)
    sx, sy, sp, x, y, p = episode(shots, 1)
    e_hat = E.embed_shots(sx, sy)
    x_hat = G(y, e_hat, warped_source(cfg, sx, sp, p))
    idx = torch.tensor([2])
    score_fake, feats_fake = D(x_hat, y, idx)
    _, feats_real = D(x, y, idx)
    train_cfg = TrainConfig.for_preset("tiny_warp")
    terms = generator_loss(
        train_cfg, x_hat, x, score_fake, feats_fake, feats_real, W_rows=D.W_rows(idx), e_hat=e_hat, points=p
    )
    assert {"adv", "fm", "match", "l1", "ssim", "mouth"} <= set(terms) and torch.isfinite(terms["total"])
    terms["total"].backward()
    for net_name, net in (("E", E), ("G", G)):
        for name, param in net.named_parameters():
            assert param.grad is not None and param.grad.abs().sum() > 0, f"{net_name}.{name} gets no gradient"


def test_the_mouth_weights_sit_on_the_mouth(shots):
    p = torch.from_numpy(shots.points[:1])
    w = mouth_weights(p, shots.size)[0, 0]
    centre = shots.points[0, 48:68].mean(0)
    assert w.shape == (shots.size, shots.size) and float(w.max()) <= 1.0
    peak = np.unravel_index(int(w.argmax()), w.shape)
    assert abs(peak[0] - centre[1]) <= 1 and abs(peak[1] - centre[0]) <= 1
    assert float(w[int(shots.points[0, 27, 1]), int(shots.points[0, 27, 0])]) < 0.05  # not on the nose bridge


def test_paper256_is_untouched():
    cfg = ModelConfig.preset("paper256")
    assert cfg.generator == "paper" and cfg.side == 256 and not cfg.warp
    assert TrainConfig.for_model(cfg) == TrainConfig()  # the paper's objective and rates
    # configs written before the warp fields existed load as the paper's generator
    old = {k: v for k, v in cfg.to_dict().items() if k not in ("generator", "net_size")}
    assert ModelConfig.from_dict(old) == cfg


def test_the_warp_presets_train_on_pixel_terms_without_vgg():
    for name in ("warp256", "tiny_warp"):
        cfg = ModelConfig.preset(name)
        train = TrainConfig.for_model(cfg)
        assert cfg.warp and cfg.side < cfg.image_size
        assert not train.content_loss and train.weight_l1 > 0 and train.weight_ssim > 0 and train.weight_mouth > 0
    assert TrainConfig.for_model(ModelConfig.preset("warp256"), content_loss=True).content_loss


def test_training_a_warp_model_runs_and_samples_show_the_warp(dataset_dir, tmp_path):
    from fsth.rundir import RunDir
    from fsth.train import train
    from fsth.video import read_image

    result = train(
        dataset_dir,
        tmp_path / "run",
        {"preset": "tiny_warp", "batch_size": 2, "max_steps": 4, "log_every": 2, "sample_every": 4, "num_samples": 2},
    )
    assert result.step == 4
    run = RunDir(tmp_path / "run")
    grid = read_image(run.samples / "step_00000004.png")
    assert grid.shape[1] == 4 * 64 + 3 * 2  # landmark image | warped source | generated | target
    from fsth.checkpoint import load_checkpoint

    ckpt = load_checkpoint(run.meta, "meta")
    assert ckpt.config == ModelConfig.preset("tiny_warp") and ckpt.meta["shots"] == 2
    # the preset trains the mouth's discriminator: it is in the checkpoint, and its terms in the log
    assert any(k.startswith("D_mouth.") for k in ckpt.tensors)
    import json

    last = json.loads(run.stats.read_text().splitlines()[-1])
    assert {"G_mouth_adv", "D_mouth_hinge"} <= set(last)


def test_the_mouths_discriminator_sees_the_mouth_learns_in_its_half_and_teaches_g(cfg, shots):
    """The mouth's crop is centred on the lips; a meta-learning step updates the mouth's D in its own half (not
    in G's), and its score alone gives G and E a gradient."""
    from fsth import gan
    from fsth.models import MouthDiscriminator
    from fsth.models.discriminator import MOUTH_CROP, mouth_crops
    from fsth.train import EmbedGenerate, Trainer, build_training, train_step

    sx, sy, sp, x, y, p = episode(shots, 2)
    crop = mouth_crops(x, p)[0]  # (3, 64, 64)
    assert crop.shape == (3, MOUTH_CROP, MOUTH_CROP)
    cx, cy = p[0, 48:68].mean(0)
    lips = x[0, :, int(cy.round()), int(cx.round())]
    assert (crop[:, MOUTH_CROP // 2, MOUTH_CROP // 2] - lips).abs().max() < 0.15  # the middle is the mouth's

    torch.manual_seed(0)
    train_cfg = TrainConfig.for_preset("tiny_warp", shots=3)
    nets, optimizers = build_training(cfg, train_cfg, 3, torch.device("cpu"))
    assert isinstance(nets["D_mouth"], MouthDiscriminator) and "D_mouth" in optimizers
    with torch.no_grad():  # as after a first step (the zero-initialised output convs pass no gradient)
        nets["G"].out_conv.weight.normal_(0, 0.05)
        nets["G"].mask_conv.weight.normal_(0, 0.05)
    before = {k: v.detach().clone() for k, v in nets["D_mouth"].named_parameters()}
    batch = (sx, sy, x, y, torch.tensor([1]), sp, p)
    trainer = Trainer(EmbedGenerate(nets["E"], nets["G"]), nets["D"], optimizers, train_cfg, D_mouth=nets["D_mouth"])
    losses = train_step(batch, trainer)
    assert {"G_mouth_adv", "D_mouth_hinge", "D_mouth_real", "D_mouth_fake"} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    assert any(not torch.equal(before[k], v) for k, v in nets["D_mouth"].named_parameters())
    assert all(p.requires_grad for p in nets["D_mouth"].parameters())  # trainable again after G's half

    # the mouth's score alone reaches G and E, and not the mouth's D
    E, G, D_mouth = nets["E"], nets["G"], nets["D_mouth"]
    for net in (E, G, D_mouth):
        net.zero_grad(set_to_none=True)
    x_hat = G(y, E.embed_shots(sx, sy), warped_source(cfg, sx, sp, p))
    only_mouth = TrainConfig(content_loss=False, weight_adv=0.0, weight_fm=0.0, weight_match=0.0, weight_mouth_adv=1.0)
    terms = gan.g_objective(nets["D"], only_mouth, x_hat, x, y, torch.tensor([1]), points=p, D_mouth=D_mouth)
    terms["total"].backward()
    assert G.out_conv.weight.grad.abs().sum() > 0
    assert all(q.grad is None for q in D_mouth.parameters())


@pytest.fixture(scope="module")
def warp_meta(tmp_path_factory, cfg):
    """A tiny_warp meta checkpoint holding E and G only (like the shipped model)."""
    from fsth.checkpoint import save_checkpoint
    from fsth.landmarks import CropPolicy

    torch.manual_seed(0)
    G = Generator(cfg)
    with torch.no_grad():
        G.out_conv.weight.normal_(0, 0.2)  # a correction, and a mask that varies: rendering must compose them as
        G.mask_conv.weight.normal_(0, 0.5)  # training does
    path = tmp_path_factory.mktemp("warp_meta") / "meta.safetensors"
    return save_checkpoint(
        path,
        "meta",
        {"E": Embedder(cfg), "G": G},
        cfg,
        step=0,
        crop_policy=CropPolicy().to_dict(),
        landmark_backend="dlib",
    )


def test_embed_and_finetune_files_carry_the_shots_and_render_like_the_training_form(tmp_path, warp_meta, shots):
    from fsth.checkpoint import load_checkpoint
    from fsth.fewshot import Renderer, load_person, save_embedding
    from fsth.fewshot.embed import embed
    from fsth.fewshot.finetune import finetune, person_networks, save_person
    from fsth.models import tensor_to_images

    meta = load_checkpoint(warp_meta, "meta")
    e_hat = embed(meta.embedder(), shots)
    save_embedding(tmp_path / "e.safetensors", e_hat, shots, meta)
    person = load_person(tmp_path / "e.safetensors", warp_meta)
    np.testing.assert_array_equal(person.crops, shots.crops)
    renderer = Renderer.of(person, dtype=torch.float32)
    target = shots.points[2:3] + np.float32([1.5, -1.0])
    frame = renderer.render(target)
    G = meta.generator().eval()
    with torch.no_grad():
        from fsth.landmarks.sketch import draw_sketch

        y = images_to_tensor(draw_sketch(target[0], shots.size)[None])
        warped = warped_source(
            meta.config,
            images_to_tensor(shots.crops)[None],
            torch.from_numpy(shots.points)[None],
            torch.from_numpy(target),
        )
        expected = tensor_to_images(G(y, e_hat, warped))
    assert np.abs(frame.astype(int) - expected.astype(int)).max() <= 1

    # fine-tuning: the shipped-like checkpoint has no D, so D' starts new; the person file keeps the crops
    G_prime, D_prime = person_networks(meta, e_hat)
    before = {k: v.clone() for k, v in G_prime.state_dict().items()}
    result = finetune(G_prime, D_prime, shots, 3, TrainConfig.for_model(meta.config), batch_size=2)
    assert result.steps == 3 and {"l1", "ssim", "mouth"} <= set(result.losses)
    assert any(not torch.equal(before[k], v) for k, v in result.G.state_dict().items())
    save_person(tmp_path / "p.safetensors", result, shots, e_hat, meta, TrainConfig.for_model(meta.config))
    person = load_person(tmp_path / "p.safetensors")
    assert person.e_hat is None and person.crops is not None
    assert Renderer.of(person).render(target).shape == (1, shots.size, shots.size, 3)
    assert Renderer.of(person).needs_sketches
    with pytest.raises(ValueError, match="landmark images"):
        Renderer.of(person).generate(None, target)


def test_the_warp_alone_renders_the_nearest_shot_warped(shots):
    from fsth.fewshot import Renderer
    from fsth.models import tensor_to_images

    renderer = Renderer(None, source=(shots.crops, shots.points))
    assert renderer.warps and renderer.generator is None
    target = shots.points[3:4] + np.float32([2.0, 0.0])
    out = renderer.render(target)
    expected = tensor_to_images(
        warp(images_to_tensor(shots.crops[3:4]), torch.from_numpy(shots.points[3:4]), torch.from_numpy(target))
    )
    np.testing.assert_array_equal(out, expected)  # shot 3 is the nearest to a shifted copy of itself
    # it reads no landmark images (``fsth animate --model warp`` draws none), and one shot is warped as it is
    assert not renderer.needs_sketches
    np.testing.assert_array_equal(renderer.generate(None, target).faces, out)
    alone = Renderer(None, source=(shots.crops[3:4], shots.points[3:4]))
    np.testing.assert_array_equal(alone.generate(None, target).faces, expected)


def test_evaluate_reports_the_copy_and_warp_baselines(warp_meta, dlib_detector, monkeypatch, tmp_path):
    """Both baselines sit in every setting; their figures are those of the shot itself and of the shot warped to
    each target's landmarks, measured here directly on the same real crops."""
    from fsth.evaluate import EvalOptions, evaluate, load_test_video
    from fsth.fewshot import FewShotModel
    from fsth.landmarks import CropPolicy
    from fsth.metrics.pixel import mean_l1
    from fsth.models import tensor_to_images

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    report = evaluate(
        FewShotModel.load(warp_meta),
        [TALK],
        dlib_detector,
        EvalOptions(shots=(1,), targets=6, metrics=("l1", "ssim")),
    )
    assert [s["name"] for s in report["settings"]] == ["self K=1 FF", "self K=1 copy", "self K=1 warp"]
    assert report["protocols"]["self"]["modes"] == ["FF", "copy", "warp"]
    l1 = {s["mode"]: s["metrics"]["l1"]["value"] for s in report["settings"]}
    video = load_test_video(TALK, dlib_detector, 64, CropPolicy(), (1,), 6)
    shot, targets = video.shots[1], video.targets
    copied = np.repeat(shot.crops, len(targets), axis=0)
    warped = tensor_to_images(
        warp(
            images_to_tensor(copied),
            torch.from_numpy(shot.points).expand(len(targets), -1, -1),
            torch.from_numpy(targets.points),
        )
    )
    assert l1["copy"] == pytest.approx(float(np.mean(mean_l1(copied, targets.crops))), rel=1e-6)
    assert l1["warp"] == pytest.approx(float(np.mean(mean_l1(warped, targets.crops))), rel=1e-3)
    assert l1["warp"] != l1["copy"]
