"""VGG19 / VGGFace: weights files in their standard key layouts, input normalisation, clear errors."""

import pytest
import torch
import torch.nn.functional as F
from conftest import serve_downloads, torchvision_vgg19_state, vgg_face_dag_state

from fsth.errors import MissingWeightsError
from fsth.models.perceptual import load_vgg19, load_vggface


def imagenet_normalised(x):
    """[-1, 1] -> [0, 1] RGB normalised with the ImageNet mean and std (VGG19's input)."""
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    return ((x + 1) / 2 - mean) / std


def vgg_face_dag_normalised(x):
    """[-1, 1] -> 0-255 RGB minus the means stored with vgg_face_dag (VGGFace's input)."""
    return (x + 1) * 127.5 - torch.tensor([129.186279296875, 104.76238250732422, 93.59396362304688]).view(1, 3, 1, 1)


@pytest.mark.parametrize(
    "make_state, filename, load, normalise, first_conv, conv5_1",
    [
        (torchvision_vgg19_state, "vgg19-dcbb9e9d.pth", load_vgg19, imagenet_normalised, "features.0", "features.28"),
        (vgg_face_dag_state, "vgg_face_dag.pth", load_vggface, vgg_face_dag_normalised, "conv1_1", "conv5_1"),
    ],
    ids=["vgg19", "vggface"],
)
def test_standard_layout_loads_with_its_own_normalisation(
    tmp_path, make_state, filename, load, normalise, first_conv, conv5_1
):
    state = make_state()
    torch.save(state, tmp_path / filename)
    net = load(tmp_path / filename)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    feats = net(x)
    # relu1_1, relu2_1, relu3_1, relu4_1, relu5_1
    assert [f.shape[1] for f in feats] == [64, 128, 256, 512, 512]
    relu1_1 = F.relu(F.conv2d(normalise(x), state[f"{first_conv}.weight"], state[f"{first_conv}.bias"], padding=1))
    assert torch.allclose(feats[0], relu1_1, rtol=1e-4, atol=1e-3)
    # conv5_1 (before the last tap) is loaded; the convs after it are not needed
    assert torch.equal(net.features[len(net.features) - 2].weight, state[f"{conv5_1}.weight"])
    assert not any(p.requires_grad for p in net.parameters())
    assert not net.train().training  # frozen in eval mode


def test_weights_are_found_in_the_torch_hub_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    (tmp_path / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(vgg_face_dag_state(), tmp_path / "hub" / "checkpoints" / "vgg_face_dag.pth")
    assert load_vggface(download=False).features[0].weight.shape == (64, 3, 3, 3)


def test_missing_weights_name_the_file_where_and_how(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError) as err:
        load_vgg19(download=False)
    message = str(err.value)
    assert "vgg19-dcbb9e9d.pth" in message and str(tmp_path / "hub" / "checkpoints") in message
    assert "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth" in message and "\n" not in message
    with pytest.raises(MissingWeightsError, match="does not exist; get vgg_face_dag.pth from https://"):
        load_vggface(tmp_path / "nowhere.pth")


def test_a_failed_download_is_the_same_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def unreachable(url):
        raise OSError("network is unreachable")

    serve_downloads(monkeypatch, unreachable)
    with pytest.raises(MissingWeightsError, match="download failed .network is unreachable.*vgg_face_dag.pth"):
        load_vggface()
    assert not list((tmp_path / "hub" / "checkpoints").iterdir())  # no partial file left behind


def test_a_file_of_another_layout_is_named(tmp_path):
    state = torchvision_vgg19_state()
    state["features.0.weight"] = torch.zeros(64, 4, 3, 3)
    del state["features.2.bias"]
    state["fc.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "other.pth")
    with pytest.raises(MissingWeightsError) as err:
        load_vgg19(tmp_path / "other.pth")
    message = str(err.value)
    assert "unexpected key fc.weight" in message and "missing key features.2.bias" in message
    assert "features.0.weight: shape (64, 4, 3, 3) in file, (64, 3, 3, 3) expected" in message
    (tmp_path / "junk.pth").write_bytes(b"not a weights file")
    with pytest.raises(MissingWeightsError, match="cannot read VGG19 weights from .*junk.pth"):
        load_vgg19(tmp_path / "junk.pth")
