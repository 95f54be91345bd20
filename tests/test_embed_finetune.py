"""Embedding and fine-tuning as library functions (tiny preset, real shots from talk.mp4)."""

import numpy as np
import pytest
import torch
from conftest import TALK, interrupt_finetuning_at


@pytest.fixture(scope="module")
def meta(tiny_meta_checkpoint):
    from fsth.checkpoint import load_checkpoint

    return load_checkpoint(tiny_meta_checkpoint, "meta")


@pytest.fixture(scope="module")
def shots(dlib_detector):
    from fsth.fewshot import load_shots
    from fsth.landmarks import CropPolicy

    return load_shots([TALK], dlib_detector, 64, CropPolicy(), k=3)


@pytest.fixture(scope="module")
def e_hat(meta, shots):
    from fsth.fewshot.embed import embed

    return embed(meta.embedder(), shots)


def test_e_hat_is_the_mean_embedding_of_the_shots(meta, shots, e_hat):
    E = meta.embedder().eval()
    x, y = shots.tensors()
    with torch.no_grad():
        expected = E.embed_shots(x[None], y[None])[0]
    assert e_hat.shape == (64,) and e_hat.dtype == torch.float32
    torch.testing.assert_close(e_hat, expected, atol=1e-5, rtol=1e-5)
    assert float(e_hat.abs().sum()) > 0


def test_embedding_file_keeps_e_hat_landmarks_and_provenance(tmp_path, meta, shots, e_hat):
    from fsth.checkpoint import load_checkpoint
    from fsth.fewshot import Renderer, fingerprint, load_person, save_embedding

    path = save_embedding(tmp_path / "me.safetensors", e_hat, shots, meta)
    ckpt = load_checkpoint(path, "embedding")
    torch.testing.assert_close(ckpt.e_hat, e_hat)
    np.testing.assert_array_equal(ckpt.landmarks.numpy(), shots.points)
    assert ckpt.crop_policy == meta.crop_policy and ckpt.landmark_backend == "dlib"
    assert ckpt.meta["shots"] == shots.sources and ckpt.meta["meta_fingerprint"] == fingerprint(meta.path)
    person = load_person(path, meta.path)  # e_hat with the meta generator
    frame = Renderer.of(person, dtype=torch.float32).generate(shots.sketches[:1]).faces
    G = meta.generator().eval()
    with torch.no_grad():
        from fsth.models import images_to_tensor, tensor_to_images

        expected = tensor_to_images(G(images_to_tensor(shots.sketches[:1]), e_hat))
    assert np.abs(frame.astype(int) - expected.astype(int)).max() <= 1


def test_plan_steps_follows_the_papers_epochs():
    from fsth.config import TrainConfig
    from fsth.errors import InputError
    from fsth.fewshot.finetune import plan_steps

    cfg = TrainConfig()
    assert plan_steps(8, 1, cfg=cfg) == 320  # 40 epochs over 8 shots
    assert plan_steps(8, 4, cfg=cfg) == 80
    assert plan_steps(8, 1, epochs=2, cfg=cfg) == 16 and plan_steps(8, 1, steps=7, cfg=cfg) == 7
    with pytest.raises(InputError, match="give --steps or --epochs, not both"):
        plan_steps(8, 1, steps=7, epochs=2, cfg=cfg)


def test_finetune_trains_psi_and_w_and_the_person_file_renders_the_same(tmp_path, meta, shots, e_hat):
    from fsth.checkpoint import load_checkpoint
    from fsth.config import TrainConfig
    from fsth.fewshot import Renderer, load_person
    from fsth.fewshot.finetune import finetune, person_networks, save_person
    from fsth.models import images_to_tensor, tensor_to_images

    cfg = TrainConfig(content_loss=False)
    G, D = person_networks(meta, e_hat)
    psi, w = G.psi.detach().clone(), D.w_prime.detach().clone()
    result = finetune(G, D, shots, 3, cfg, batch_size=2, seed=1)
    assert result.steps == 3 and not result.interrupted
    assert set(result.losses) == {"adv", "fm", "total", "disc"}  # no match term, no content term here
    assert not torch.equal(G.psi, psi) and not torch.equal(D.w_prime, w)  # psi' and w' were trained
    path = save_person(tmp_path / "person.safetensors", result, shots, e_hat, meta, cfg)
    ckpt = load_checkpoint(path, "person")
    assert ckpt.step == 3 and ckpt.meta["finetune"]["content_loss"] is False
    np.testing.assert_array_equal(ckpt.landmarks.numpy(), shots.points)
    person = load_person(path)
    y = shots.sketches[:2]
    with torch.no_grad():
        expected = tensor_to_images(result.G.eval()(images_to_tensor(y)))
    rendered = Renderer.of(person, dtype=torch.float32).generate(y).faces
    assert np.abs(rendered.astype(int) - expected.astype(int)).max() <= 1


def test_ctrl_c_stops_after_the_current_step(monkeypatch, meta, shots, e_hat):
    import fsth.fewshot.finetune as ft
    from fsth.config import TrainConfig

    interrupt_finetuning_at(monkeypatch, 3)
    G, D = ft.person_networks(meta, e_hat)
    result = ft.finetune(G, D, shots, 10, TrainConfig(content_loss=False))
    assert result.steps == 2 and result.planned == 10 and result.interrupted


def test_missing_vgg_weights_say_which_file_and_the_way_out(monkeypatch, tmp_path):
    from fsth.config import TrainConfig
    from fsth.errors import MissingWeightsError
    from fsth.models import load_content_networks

    monkeypatch.setenv("FSTH_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match=r"vgg19-dcbb9e9d\.pth.*https://.*--no-content-loss"):
        load_content_networks(TrainConfig())


def test_a_fan_model_without_fan_weights_falls_back_to_dlib_with_a_warning(monkeypatch, tmp_path, capsys):
    from fsth.fewshot import detector_for
    from fsth.landmarks.detectors import DlibDetector

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no FAN weights in this cache
    assert isinstance(detector_for("fan"), DlibDetector)
    assert "trained on FAN landmarks" in capsys.readouterr().err
