"""ModelConfig / TrainConfig: presets, JSON round trip, validation with clear errors."""

import dataclasses
import json

import pytest

from fsth.config import ModelConfig, TrainConfig, TrainOptions
from fsth.errors import ConfigError, FsthError


def test_presets():
    paper = ModelConfig.preset("paper256")
    assert paper.image_size == 256 and paper.embedding_dim == 512
    assert paper.disc_sizes() == [128, 64, 32, 16, 8, 4]
    assert paper.disc_widths() == [64, 128, 256, 512, 512, 512]
    assert paper.gen_down_widths() == [64, 128, 256, 512] and paper.gen_up_widths() == [256, 128, 64, 64]
    assert paper.attention_down == (32,) and paper.attention_up == (64,)
    assert ModelConfig.preset("tiny").image_size == 64


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(FsthError, match="unknown model preset 'huge'.*paper256.*tiny"):
        ModelConfig.preset("huge")


@pytest.mark.parametrize("name", ["paper256", "tiny"])
def test_dict_round_trip_through_json(name):
    cfg = ModelConfig.preset(name)
    assert ModelConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_from_dict_names_unknown_and_missing_fields():
    data = ModelConfig().to_dict()
    data["colour"] = "red"
    del data["min_size"]
    with pytest.raises(ConfigError, match="unknown field.*colour.*missing field.*min_size"):
        ModelConfig.from_dict(data)


def test_a_config_from_before_embedder_relu_keeps_the_relu_it_was_trained_with():
    data = ModelConfig().to_dict()
    assert data["embedder_relu"] is False  # the default: see test_train's person-specific embedding test
    del data["embedder_relu"]
    assert ModelConfig.from_dict(data).embedder_relu is True


@pytest.mark.parametrize(
    "change, message",
    [
        ({"image_size": 100}, "image_size must be 64, 128, 256 or 512"),
        ({"image_size": 1024}, "image_size must be"),
        ({"attention_down": (48,)}, r"attention_down \[48\] not among"),
        ({"attention_up": (16,)}, r"attention_up \[16\] not among"),
        ({"gen_bottleneck_size": 256}, "gen_bottleneck_size must be"),
        ({"base_channels": 1024}, "base_channels must not exceed max_channels"),
    ],
)
def test_invalid_values_are_named(change, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**{**ModelConfig().to_dict(), **change})


def test_other_image_sizes_build_a_consistent_layout():
    cfg = ModelConfig(image_size=512, attention_down=(64,), attention_up=(128,))
    assert cfg.disc_sizes()[-1] == 4 and cfg.gen_up_sizes()[-1] == 512
    assert len(cfg.gen_up_widths()) == len(cfg.gen_down_widths())


def test_train_config_holds_the_papers_values():
    t = TrainConfig()
    assert (t.lr_EG, t.lr_D, t.d_steps_per_g_step, t.shots) == (5e-5, 2e-4, 2, 8)
    assert (t.weight_vgg19, t.weight_vggface, t.weight_fm, t.weight_match) == (1e-2, 2e-3, 10.0, 80.0)
    assert TrainConfig.from_dict(json.loads(json.dumps(t.to_dict()))) == t
    with pytest.raises(ConfigError, match="unknown field.*lr_G"):
        TrainConfig.from_dict({**t.to_dict(), "lr_G": 1.0})


def test_train_options_are_checked_by_their_fields_metadata():
    assert TrainOptions().batch_size == 8 and TrainOptions(workers=None).workers is None
    with pytest.raises(ConfigError, match=r"--batch-size must be at least 1, not 0; --precision must be one of auto"):
        TrainOptions(batch_size=0, precision="fp16")
    with pytest.raises(ConfigError, match="--preset must be one of paper256, tiny, warp256, tiny_warp"):
        TrainOptions(preset="huge")


def test_every_command_line_field_states_its_help():
    for cls in (TrainOptions, TrainConfig):
        for f in dataclasses.fields(cls):
            if f.metadata:
                assert f.metadata["help"].endswith("."), f.name
    assert {f.name for f in dataclasses.fields(TrainOptions)} == {
        f.name for f in dataclasses.fields(TrainOptions) if "help" in f.metadata
    }
