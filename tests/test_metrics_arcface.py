"""ArcFace for CSIM: arcface_torch's iresnet key layout, 512-d unit embeddings, 5-point alignment, clear errors."""

import numpy as np
import pytest
import torch
from conftest import PORTRAIT, random_state_dict

from fsth.errors import MissingWeightsError
from fsth.landmarks.retarget import similarity_fit
from fsth.metrics import CSIM, Frames, make_metric
from fsth.metrics.arcface import (
    ARCFACE_TEMPLATE,
    IRESNET_LAYERS,
    IResNet,
    align_arcface,
    five_points,
    load_arcface,
)
from fsth.video import read_image


def test_iresnet100_has_arcface_torchs_key_layout():
    state = IResNet(IRESNET_LAYERS["iresnet100"]).state_dict()
    facts = {  # key -> shape in an arcface_torch r100 backbone.pth (backbones/iresnet.py names)
        "conv1.weight": (64, 3, 3, 3),
        "prelu.weight": (64,),
        "layer1.0.downsample.0.weight": (64, 64, 1, 1),
        "layer1.0.conv2.weight": (64, 64, 3, 3),
        "layer2.12.bn3.running_var": (128,),
        "layer3.0.downsample.1.weight": (256,),
        "layer3.29.prelu.weight": (256,),
        "layer4.2.conv1.weight": (512, 512, 3, 3),
        "bn2.weight": (512,),
        "fc.weight": (512, 512 * 7 * 7),
        "features.running_mean": (512,),
    }
    assert {k: tuple(state[k].shape) for k in facts} == facts
    assert "layer2.13.bn1.weight" not in state and "layer3.30.bn1.weight" not in state  # (3, 13, 30, 3) blocks
    assert not any(k.startswith("layer1.1.downsample") or k.endswith("conv1.bias") for k in state)
    # 65.16M parameters (OpenVINO lists 65.13M for the MXNet ResNet100-ArcFace, a close variant)
    assert sum(v.numel() for k, v in state.items() if "running" not in k and "num_batches" not in k) == 65_156_160


@pytest.fixture(scope="module")
def arcface_file(tmp_path_factory):
    """An iresnet18 backbone.pth in arcface_torch's layout, random weights, saved as if from DDP ('module.')."""
    state = random_state_dict(IResNet(IRESNET_LAYERS["iresnet18"]))
    path = tmp_path_factory.mktemp("arcface") / "backbone.pth"
    torch.save({f"module.{k}": v for k, v in state.items()}, path)
    return path


def test_arcface_gives_512d_unit_embeddings_of_aligned_faces(arcface_file, dlib_detector):
    embedder = load_arcface(arcface_file, device="cpu")
    assert (embedder.name, embedder.dim, embedder.weights) == ("arcface-iresnet18", 512, arcface_file)
    photo = read_image(PORTRAIT)
    points = dlib_detector.detect(photo)[0]
    e = embedder.embed([photo, photo[:, ::-1]], [points, points * [-1, 1] + [photo.shape[1] - 1, 0]])
    assert e.shape == (2, 512) and np.allclose(np.linalg.norm(e, axis=1), 1.0)
    m = CSIM(network="arcface", weights=arcface_file, detector=dlib_detector, device="cpu")
    assert m.update(Frames(photo, photo)) == [pytest.approx(1.0, abs=1e-9)]
    assert (m.result().network, m.result().details["embedding_dim"]) == ("arcface-iresnet18", 512)


def test_alignment_puts_the_five_points_on_the_template(dlib_detector):
    photo = read_image(PORTRAIT)
    points = dlib_detector.detect(photo)[0]
    L, t = similarity_fit(five_points(points), ARCFACE_TEMPLATE, points=None)
    moved = five_points(points) @ L.T + t
    assert np.abs(moved - ARCFACE_TEMPLATE).max() < 6  # a real face is not exactly the template
    assert np.linalg.norm(moved[0] - moved[1]) == pytest.approx(35.2, abs=3)  # eyes ~35 px apart at 112
    assert align_arcface(photo, points).shape == (112, 112, 3)
    # a known similarity transform is recovered exactly
    angle, scale, shift = 0.3, 1.7, np.array([5.0, -2.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = np.random.default_rng(0).normal(size=(5, 2)) * 30
    L, t = similarity_fit(src, src @ rot.T + shift, points=None)
    np.testing.assert_allclose(np.hstack([L, t[:, None]]), np.hstack([rot, shift[:, None]]), atol=1e-10)


def test_a_missing_or_foreign_arcface_file_is_a_clear_error(tmp_path, arcface_file):
    with pytest.raises(MissingWeightsError, match="no ArcFace model file given: .*arcface_torch.*backbone.pth"):
        make_metric("csim", network="arcface")
    with pytest.raises(MissingWeightsError, match="nowhere.pth does not exist: .*insightface"):
        load_arcface(tmp_path / "nowhere.pth")
    state = torch.load(arcface_file)
    state["module.fc.weight"] = torch.zeros(512, 100)
    torch.save(state, tmp_path / "other.pth")
    with pytest.raises(MissingWeightsError, match="is not an arcface_torch iresnet18: fc.weight: shape"):
        load_arcface(tmp_path / "other.pth")
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "tiny.pth")
    with pytest.raises(MissingWeightsError, match="not an arcface_torch iresnet state dict"):
        load_arcface(tmp_path / "tiny.pth")
