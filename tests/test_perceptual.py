"""VGG19 / VGGFace: weights files in their standard key layouts, input normalisation, clear errors."""

import pytest
import torch
import torch.nn.functional as F

from fsth.errors import MissingWeightsError
from fsth.models import perceptual
from fsth.models.perceptual import VGG16_LAYERS, VGG19_LAYERS, load_vgg19, load_vggface


def _conv_shapes(layers):
    """(index in the features stack, c_in, c_out) of every conv of a VGG layer list."""
    index, c_in, out = 0, 3, []
    for v in layers:
        if v == "M":
            index += 1
        else:
            out.append((index, c_in, v))
            index, c_in = index + 2, v
    return out


def _torchvision_vgg19_state(seed=0):
    """A state dict in torchvision's vgg19 layout with random weights (the classifier kept small:
    the loader never reads it, and its real 4096 x 25088 matrix would make a 0.5 GB test file)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for index, c_in, c_out in _conv_shapes(VGG19_LAYERS):
        state[f"features.{index}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=g) * 0.05
        state[f"features.{index}.bias"] = torch.randn(c_out, generator=g) * 0.05
    for i in (0, 3, 6):
        state[f"classifier.{i}.weight"], state[f"classifier.{i}.bias"] = torch.zeros(2, 2), torch.zeros(2)
    return state


def _vgg_face_dag_state(seed=0):
    """A state dict in vgg_face_dag.pth's layout (conv1_1 ... conv5_3, fc6-fc8) with random weights."""
    g = torch.Generator().manual_seed(seed)
    state, block, conv, last = {}, 1, 1, None
    for index, c_in, c_out in _conv_shapes(VGG16_LAYERS):
        if last is not None and index - last > 2:
            block, conv = block + 1, 1
        state[f"conv{block}_{conv}.weight"] = torch.randn(c_out, c_in, 3, 3, generator=g) * 0.05
        state[f"conv{block}_{conv}.bias"] = torch.randn(c_out, generator=g) * 0.05
        conv, last = conv + 1, index
    for i in (6, 7, 8):
        state[f"fc{i}.weight"], state[f"fc{i}.bias"] = torch.zeros(2, 2), torch.zeros(2)
    return state


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
        (_torchvision_vgg19_state, "vgg19-dcbb9e9d.pth", load_vgg19, imagenet_normalised, "features.0", "features.28"),
        (_vgg_face_dag_state, "vgg_face_dag.pth", load_vggface, vgg_face_dag_normalised, "conv1_1", "conv5_1"),
    ],
    ids=["vgg19", "vggface"],
)
def test_standard_layout_loads_with_its_own_normalisation(tmp_path, make_state, filename, load, normalise,
                                                          first_conv, conv5_1):
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
    torch.save(_vgg_face_dag_state(), tmp_path / "hub" / "checkpoints" / "vgg_face_dag.pth")
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

    def unreachable(url, timeout):
        raise OSError("network is unreachable")

    monkeypatch.setattr(perceptual.urllib.request, "urlopen", unreachable)
    with pytest.raises(MissingWeightsError, match="download failed .network is unreachable.*vgg_face_dag.pth"):
        load_vggface()
    assert not list((tmp_path / "hub" / "checkpoints").iterdir())  # no partial file left behind


def test_a_file_of_another_layout_is_named(tmp_path):
    state = _torchvision_vgg19_state()
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
