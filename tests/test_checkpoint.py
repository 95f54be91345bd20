"""The checkpoint format: round trips for every kind, and one clear error for each bad file."""

import json

import pytest
import torch
from conftest import set_attention_gammas
from safetensors import safe_open
from safetensors.torch import save_file

import fsth.checkpoint as ckpt_module
from fsth.checkpoint import KindSpec, load_checkpoint, register_kind, save_checkpoint
from fsth.config import ModelConfig
from fsth.errors import CheckpointError
from fsth.models import (
    Discriminator,
    Embedder,
    Generator,
    PersonDiscriminator,
    PersonGenerator,
    person_discriminator,
    person_generator,
)

CROP = {"name": "fsth-crop", "version": 1, "scale": 1.8}  # stands in for CropPolicy.to_dict()


@pytest.fixture
def meta_file(tiny, tmp_path):
    torch.manual_seed(0)
    nets = {"E": Embedder(tiny), "G": Generator(tiny), "D": Discriminator(tiny, num_videos=6)}
    set_attention_gammas(*nets.values())
    path = save_checkpoint(
        tmp_path / "meta.safetensors", "meta", nets, tiny, step=1234, crop_policy=CROP, landmark_backend="dlib"
    )
    return path, nets


def _rewrite(path, out, metadata=None, tensors=None):
    """Copy a checkpoint with some metadata or tensors replaced (to make bad files)."""
    with safe_open(str(path), framework="pt") as f:
        meta = {**f.metadata(), **(metadata or {})}
        data = {k: f.get_tensor(k) for k in f.keys()}
    save_file({**data, **(tensors or {})}, str(out), metadata=meta)
    return out


def test_meta_round_trip_gives_identical_outputs(meta_file, tiny, frames):
    path, nets = meta_file
    ckpt = load_checkpoint(path, "meta")
    assert ckpt.kind == "meta" and ckpt.config == tiny and ckpt.step == 1234
    assert ckpt.crop_policy == CROP and ckpt.landmark_backend == "dlib"
    x, y = frames
    idx = torch.tensor([0, 5])
    E, G, D = ckpt.embedder().eval(), ckpt.generator().eval(), ckpt.discriminator().eval()
    assert isinstance(G, Generator) and D.num_videos == 6
    for net in nets.values():
        net.eval()
    with torch.no_grad():
        assert torch.equal(E(x, y), nets["E"](x, y))
        e = nets["E"](x, y)
        assert torch.equal(G(y, e), nets["G"](y, e))
        assert torch.equal(D(x, y, idx)[0], nets["D"](x, y, idx)[0])


def test_person_and_embedding_round_trips(tiny, tmp_path, frames):
    torch.manual_seed(0)
    G, D = Generator(tiny), Discriminator(tiny, num_videos=2)
    e_hat = torch.rand(tiny.embedding_dim)
    G_p, D_p = person_generator(G, e_hat), person_discriminator(D, e_hat)
    save_checkpoint(tmp_path / "p.safetensors", "person", {"G": G_p, "D": D_p}, tiny, step=40, crop_policy=CROP)
    ckpt = load_checkpoint(tmp_path / "p.safetensors", kind=("person", "meta"))
    G2, D2 = ckpt.generator().eval(), ckpt.discriminator().eval()
    assert isinstance(G2, PersonGenerator) and isinstance(D2, PersonDiscriminator)
    x, y = frames
    with torch.no_grad():
        assert torch.equal(G2(y), G_p.eval()(y))
        assert torch.equal(D2(x, y)[0], D_p.eval()(x, y)[0])
    with pytest.raises(CheckpointError, match="holds no network 'E'"):
        ckpt.embedder()

    landmarks = torch.rand(8, 68, 2) * 256
    save_checkpoint(
        tmp_path / "e.safetensors",
        "embedding",
        {"e_hat": e_hat, "landmarks": landmarks},
        tiny,
        crop_policy=CROP,
        landmark_backend="fan",
        source="photos/",
    )
    emb = load_checkpoint(tmp_path / "e.safetensors", "embedding")
    assert torch.equal(emb.e_hat, e_hat) and torch.equal(emb.landmarks, landmarks)
    assert emb.meta["source"] == "photos/" and emb.landmark_backend == "fan"


def test_only_loads_the_named_networks(meta_file):
    path, _ = meta_file
    ckpt = load_checkpoint(path, "meta", only=("G",))
    assert ckpt.tensors and all(k.startswith("G.") for k in ckpt.tensors)
    assert isinstance(ckpt.generator(), Generator)
    assert ckpt.shapes["D.W.weight"] == (6, 64)  # known without loading D
    with pytest.raises(ValueError, match="'D' .* was not loaded"):
        ckpt.discriminator()


def test_extra_tensors_json_metadata_and_new_kinds(tiny, tmp_path):
    # what a resumable training state needs: networks plus arbitrary tensors and JSON
    register_kind(KindSpec("test_state", "a test training state", networks={"G": ckpt_module._builder("Generator")}))
    G = Generator(tiny)
    rng = torch.get_rng_state()
    save_checkpoint(
        tmp_path / "s.safetensors",
        "test_state",
        {"G": G, "optim": {"0.exp_avg": torch.ones(3)}, "rng": rng},
        tiny,
        step=7,
        schedule={"d_steps": [1, 2]},
    )
    ckpt = load_checkpoint(tmp_path / "s.safetensors", "test_state")
    assert torch.equal(ckpt.tensors["rng"], rng) and torch.equal(ckpt.state_dict("optim")["0.exp_avg"], torch.ones(3))
    assert ckpt.meta["schedule"] == {"d_steps": [1, 2]} and ckpt.step == 7
    ckpt_module.KINDS.pop("test_state")


def test_truncated_or_foreign_files_are_one_clear_line(meta_file, tmp_path):
    path, _ = meta_file
    data = path.read_bytes()
    for name, content in [
        ("half.safetensors", data[: len(data) // 2]),
        ("head.safetensors", data[:40]),
        ("text.safetensors", b"hello, I am not a checkpoint\n"),
        ("empty.safetensors", b""),
    ]:
        (tmp_path / name).write_bytes(content)
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(tmp_path / name)
        assert str(err.value).startswith(f"{tmp_path / name}: not a readable checkpoint") and "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match="no such checkpoint file"):
        load_checkpoint(tmp_path / "missing.safetensors")
    save_file({"a": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointError, match="not an fsth checkpoint"):
        load_checkpoint(tmp_path / "other.safetensors")


def test_wrong_kind_is_refused(meta_file):
    path, _ = meta_file
    with pytest.raises(CheckpointError, match=r"is a 'meta' checkpoint .*, but 'person' or 'embedding' is needed"):
        load_checkpoint(path, kind=("person", "embedding"))


def test_newer_format_version_is_refused(meta_file, tmp_path):
    path, _ = meta_file
    newer = _rewrite(path, tmp_path / "newer.safetensors", metadata={"format_version": "2"})
    with pytest.raises(CheckpointError, match="format version 2 is newer than this fsth .* reads .1.; upgrade fsth"):
        load_checkpoint(newer)
    unknown = _rewrite(path, tmp_path / "unknown.safetensors", metadata={"kind": "hologram"})
    with pytest.raises(CheckpointError, match="unknown checkpoint kind 'hologram'"):
        load_checkpoint(unknown)


def test_config_mismatch_names_the_tensor_and_both_shapes(meta_file, tiny, tmp_path):
    path, _ = meta_file
    wider = ModelConfig(**{**tiny.to_dict(), "base_channels": 32})
    bad = _rewrite(path, tmp_path / "bad.safetensors", metadata={"config": wider.to_json()})
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(bad)
    message = str(err.value)
    assert message.startswith(f"{bad}: weights do not match the stored config: ")
    assert "E.down.attention.1.k.bias: shape (4,) in file, (8,) for the stored config" in message
    assert "more)" in message and "\n" not in message
    # one tensor of the wrong shape, everything else right
    renamed = _rewrite(path, tmp_path / "renamed.safetensors", tensors={"G.out_conv.bias": torch.zeros(4)})
    with pytest.raises(CheckpointError, match=r"G.out_conv.bias: shape \(4,\) in file, \(3,\) for the stored config$"):
        load_checkpoint(renamed)
    broken = _rewrite(path, tmp_path / "broken.safetensors", metadata={"config": json.dumps({"image_size": 64})})
    with pytest.raises(CheckpointError, match="bad metadata: model config: missing field"):
        load_checkpoint(broken)


def test_embedding_shapes_are_checked(tiny, tmp_path):
    with pytest.raises(ValueError, match=r"e_hat: shape \(3,\) given, \(64,\) for the config"):
        save_checkpoint(
            tmp_path / "e.safetensors", "embedding", {"e_hat": torch.zeros(3), "landmarks": torch.zeros(2, 68, 2)}, tiny
        )
    assert not (tmp_path / "e.safetensors").exists()


def test_writes_are_atomic(meta_file, tiny, tmp_path, monkeypatch):
    path, nets = meta_file
    before = path.read_bytes()

    def crash(tensors, filename, metadata=None):
        open(filename, "wb").write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("safetensors.torch.save_file", crash)
    with pytest.raises(CheckpointError, match="cannot write checkpoint .*meta.safetensors: no space left on device"):
        save_checkpoint(path, "meta", nets, tiny, step=9999)
    assert path.read_bytes() == before  # the previous checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["meta.safetensors"]  # no temporary file left
    with pytest.raises(CheckpointError, match="directory .*nowhere does not exist"):
        save_checkpoint(tmp_path / "nowhere" / "m.safetensors", "meta", nets, tiny)


def test_no_pickle_in_a_checkpoint(meta_file):
    path, _ = meta_file
    header_len = int.from_bytes(path.read_bytes()[:8], "little")
    header = json.loads(path.read_bytes()[8 : 8 + header_len])
    assert header["__metadata__"]["format"] == "fsth" and header["__metadata__"]["format_version"] == "1"
    assert json.loads(header["__metadata__"]["meta"])["crop_policy"] == CROP


def test_every_kind_loads_in_a_fresh_interpreter(tiny, tmp_path):
    """train_state included: no kind waits for another module (fsth.rundir) to be imported first."""
    import subprocess
    import sys

    nets = {"E": Embedder(tiny), "G": Generator(tiny), "D": Discriminator(tiny, num_videos=3)}
    path = save_checkpoint(
        tmp_path / "train_state.safetensors",
        "train_state",
        {**nets, "opt.EG": {"0.exp_avg": torch.ones(2)}},
        tiny,
        step=5,
    )
    code = (
        "import sys\nfrom fsth.checkpoint import KINDS, load_checkpoint\n"
        "assert 'fsth.rundir' not in sys.modules\n"
        "ck = load_checkpoint(sys.argv[1], kind='train_state')\n"
        "print(ck.kind, ck.step, sorted(KINDS))"
    )
    proc = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split(" ", 2)[:2] == ["train_state", "5"]
    assert {"meta", "person", "embedding", "train_state"} <= set(eval(proc.stdout.split(" ", 2)[2]))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(meta_file, tiny, tmp_path, value):
    path, nets = meta_file
    G = nets["G"]
    with torch.no_grad():
        next(p for n, p in G.named_parameters() if n.endswith("weight")).view(-1)[3] = value
    bad = save_checkpoint(tmp_path / "bad.safetensors", "meta", nets, tiny, step=9)
    with pytest.raises(CheckpointError, match=r"bad.safetensors: G\.\S+ holds NaN or infinite values"):
        load_checkpoint(bad)
    load_checkpoint(bad, only=("E",))  # only what is loaded is checked: E is fine
    embedding = save_checkpoint(
        tmp_path / "e.safetensors",
        "embedding",
        {"e_hat": torch.full((tiny.embedding_dim,), value), "landmarks": torch.zeros(1, 68, 2)},
        tiny,
    )
    with pytest.raises(CheckpointError, match="e_hat holds NaN or infinite values"):
        load_checkpoint(embedding)
