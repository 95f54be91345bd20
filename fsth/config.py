"""Configuration of the networks (``ModelConfig``), of their training (``TrainConfig``) and of a run (``TrainOptions``).

Every default of the method is visible and commented here, in one place. ``ModelConfig`` describes the
architecture and is stored, as JSON, inside every checkpoint, so a checkpoint rebuilds its own networks;
``TrainConfig`` holds the loss weights, learning rates and schedule of the paper (the paper's section 3).

``TrainOptions`` holds how one ``fsth train`` run goes (preset, batch size, steps, intervals, precision).

A field declared with ``option(...)`` is also a command-line option of ``fsth train``: its metadata holds the help
text, range and choices that ``fsth.cli`` builds the option from, so each is written once, here.

Presets (``ModelConfig.preset(name)``):

- ``paper256``: our reading of the paper's architecture at 256x256 (Zakharov et al. 2019, section 3.4 and
  supplementary). Embedder E and the trunk of discriminator D: six residual downsampling blocks
  256 -> 4 with 64, 128, 256, 512, 512, 512 channels ("minimum 64, maximum 512 channels"), self-attention
  after the block that outputs 32x32, global sum pooling (the paper adds a ReLU to E's: ``embedder_relu``, off
  by default, see the field); D has one more residual block (its sum pooling is followed by ReLU)
  at 4x4. That gives 14.4 M parameters in E and 19.1 M in D's convolutional part (the paper: 15 M, 20 M).
  Generator G: four residual downsampling blocks with instance norm 256 -> 16 (64, 128, 256, 512
  channels, self-attention at 32x32), five residual AdaIN blocks at the 16x16, 512-channel bottleneck,
  four residual AdaIN upsampling blocks 16 -> 256 (256, 128, 64, 64 channels, self-attention at 64x64)
  and an AdaIN + ReLU + 3x3 conv + tanh output layer; psi_hat = P e_hat feeds all 13 312 AdaIN
  coefficients, so P is 13312 x 512 and G has 37.9 M parameters (the paper: 38 M). Self-attention is
  SAGAN's in BigGAN's form (keys and values max-pooled 2x2). As we read the paper, it gives widths,
  attention sides and parameter counts but no block counts; these block counts reproduce all three.
- ``tiny``: the same architecture at 64x64 and narrow (16 to 64 channels, embedding size 64, two
  bottleneck blocks, attention at 16x16 down and 32x32 up), for tests and laptops: a full training step
  (two D updates, one E/G update, batch 2, K = 8) takes about 0.35 s on a 2-core CPU.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from typing import Any

from fsth.errors import ConfigError

_RUN, _SCHED, _METHOD = "Run", "Schedule and outputs", "Method (TrainConfig)"  # fsth train's help panels

_JSON_TYPES = {"bool": "true or false", "int": "an integer", "float": "a number", "str": "a string",
               "dict": "a JSON object", "list": "a list"}  # fmt: skip


def wrong_type(value: Any, annotation: str) -> str | None:
    """Why a value read from JSON is not of the type a dataclass field is annotated with (``"int"``, ``"float"``,
    ``"str | None"``, ``"tuple[int, ...]"``, ``"tuple[float, float]"``, ``"dict"``, ...): ``"an integer, not
    '256'"``; None if it is. A bool is no number; a number must be finite."""
    if annotation.endswith(" | None"):
        return None if value is None else wrong_type(value, annotation[: -len(" | None")])
    if annotation.startswith("tuple["):
        items = annotation[len("tuple[") : -1].split(", ")
        if not isinstance(value, (list, tuple)) or (items[-1] != "..." and len(value) != len(items)):
            count = "" if items[-1] == "..." else f"{len(items)} "
            return f"a list of {count}{items[0]} values, not {json.dumps(value)[:40]}"
        problems = [wrong_type(v, items[0]) for v in value]
        return next((f"a list of {items[0]} values, holding {p.split(', not ')[-1]}" for p in problems if p), None)
    kinds = {"bool": bool, "int": int, "float": (int, float), "str": str, "dict": dict, "list": list}[annotation]
    fits = isinstance(value, kinds) and (annotation == "bool" or not isinstance(value, bool))
    if fits and isinstance(value, float) and not math.isfinite(value):
        fits = False
    return None if fits else f"{_JSON_TYPES[annotation]}, not {json.dumps(value)[:40]}"


def check_types(data: Any, types: dict[str, str], what: str) -> dict:
    """``data`` (read from a JSON file) as a dict whose entries named in ``types`` (name -> annotation, as
    ``wrong_type`` reads them) have those types; a ``ConfigError`` naming ``what`` and the first field that does
    not. The one check of metadata read back from files (checkpoints, datasets, run directories)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{what} must be a JSON object, not {type(data).__name__}")
    for name, annotation in types.items():
        if name in data:
            problem = wrong_type(data[name], annotation)
            if problem:
                raise ConfigError(f"{what}: {name} must be {problem}")
    return data


def field_types(cls) -> dict[str, str]:
    """Dataclass ``cls``'s fields and their annotations as strings (what ``check_types`` takes)."""
    return {f.name: str(f.type) for f in dataclasses.fields(cls)}


def _fields_from_dict(cls, data: Any, what: str) -> dict:
    """Check that ``data`` names exactly the fields of dataclass ``cls``, each of its annotated type
    (``check_types``); tuples come back from lists."""
    check_types(data, field_types(cls), what)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    missing = [n for n in names if n not in data]
    if unknown or missing:
        parts = []
        if unknown:
            parts.append(f"unknown field(s) {', '.join(unknown)}")
        if missing:
            parts.append(f"missing field(s) {', '.join(missing)}")
        raise ConfigError(f"{what}: {'; '.join(parts)}")
    return {n: tuple(data[n]) if isinstance(data[n], list) else data[n] for n in names}


def _to_dict(obj) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(obj).items()}


def option(
    default: Any,
    help: str,
    *,
    low: float | None = None,
    high: float | None = None,
    choices: tuple[str, ...] | None = None,
    shown: str | None = None,
    flags: tuple[str, ...] | None = None,
    panel: str | None = None,
    metavar: str | None = None,
    parse: Any = None,
    kind: type | None = None,
) -> Any:
    """A dataclass field that is also a command-line option: ``default``, and as metadata the ``help`` text
    (``--help`` adds "(default: ...)"), the range [``low``, ``high``] or ``choices`` of its values, and ``shown``:
    how ``--help`` states the default where the value itself would not say it (None: the value; on/off for a
    bool). For the command line (``fsth.cli``): ``flags`` (default ``--field-name``, ``--x/--no-x`` for a bool),
    the help ``panel``, the ``metavar``, ``parse`` (the option's text -> the field's value, raising ``FsthError``)
    and ``kind``: the option's type where the annotation does not say it (``str`` for a text that ``parse`` reads)."""
    metadata = {"help": help, "low": low, "high": high, "choices": choices, "shown": shown, "flags": flags,
                "panel": panel, "metavar": metavar, "parse": parse, "kind": kind}  # fmt: skip
    metadata = {k: v for k, v in metadata.items() if v is not None}
    return dataclasses.field(default=default, metadata=metadata)


def option_problems(obj: Any) -> list[str]:
    """What is wrong with the values of ``obj``'s ``option`` fields, by their bounds and choices, each problem
    naming its command-line option (``--batch-size must be at least 1, not 0``). None is always allowed."""
    problems = []
    for f in dataclasses.fields(obj):
        value, meta = getattr(obj, f.name), f.metadata
        low, high, choices = meta.get("low"), meta.get("high"), meta.get("choices")
        flag = "--" + f.name.lower().replace("_", "-")
        if value is None:
            continue
        if low is not None and value < low:
            problems.append(f"{flag} must be at least {low}, not {value}")
        if high is not None and value > high:
            problems.append(f"{flag} must be at most {high}, not {value}")
        if choices is not None and value not in choices:
            problems.append(f"{flag} must be one of {', '.join(choices)}, not {value!r}")
    return problems


def _is_power_of_two(n: Any) -> bool:
    return isinstance(n, int) and not isinstance(n, bool) and n > 0 and n & (n - 1) == 0


@dataclass(frozen=True)
class ModelConfig:
    """The architecture of E, G and D. Sizes are sides of square feature maps, in pixels."""

    image_size: int = 256  # side of the frames x and landmark images y (a power of two, 64..512)
    base_channels: int = 64  # width of the first residual block; doubles per downsampling (paper: 64)
    max_channels: int = 512  # widest any block gets (paper: 512)
    embedding_dim: int = 512  # size of e, e_hat, W_i, w0 and D's V(x, y); width of E's and D's last blocks
    min_size: int = 4  # E and D downsample until this side (paper: 4x4), then sum-pool
    gen_bottleneck_size: int = 16  # side at which G's bottleneck residual blocks run
    gen_bottleneck_blocks: int = 5  # residual AdaIN blocks at G's bottleneck
    attention_down: tuple[int, ...] = (32,)  # sides after which a self-attention block follows in E, D, G's down path
    attention_up: tuple[int, ...] = (64,)  # sides after which a self-attention block follows on G's up path
    # A ReLU after E's sum pooling, as the paper describes E. Off: L_MCH (weight 80, W_i initialised near 0)
    # drives every pre-ReLU entry negative within 25-75 steps, e_hat is then 0 for everyone, no gradient
    # reaches E again and G renders the same person whatever the shots (measured on the tiny preset).
    embedder_relu: bool = False
    # "paper": G draws the whole frame from the landmark image and P e_hat. "warp": G also sees the source (the
    # nearest shot) warped to the target's landmarks (``fsth.models.warp``) and returns mask * warped +
    # (1 - mask) * drawn, initialised to return the warp; what it learns is local (mouths, eyes, borders).
    generator: str = "paper"
    # The side at which E, D and G's convolutional body work (0: image_size). Below image_size, their inputs are
    # resized to it and G's drawn picture and mask are upsampled to image_size, where the warp is composed.
    net_size: int = 0

    def __post_init__(self) -> None:
        problems = []
        for name in ("image_size", "base_channels", "max_channels", "embedding_dim", "min_size", "gen_bottleneck_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f"{name} must be a positive integer, not {value!r}")
        if not problems:
            if not (_is_power_of_two(self.image_size) and 64 <= self.image_size <= 512):
                problems.append(f"image_size must be 64, 128, 256 or 512, not {self.image_size}")
            if not (_is_power_of_two(self.min_size) and self.min_size < self.side):
                problems.append(f"min_size must be a power of two below the networks' side, not {self.min_size}")
            if not (_is_power_of_two(self.gen_bottleneck_size) and self.gen_bottleneck_size < self.side):
                problems.append(
                    f"gen_bottleneck_size must be a power of two below image_size, not {self.gen_bottleneck_size}"
                )
            if self.base_channels > self.max_channels:
                problems.append("base_channels must not exceed max_channels")
            if self.base_channels < 8:
                problems.append("base_channels must be at least 8 (self-attention uses channels / 8)")
        if self.generator not in GENERATORS:
            problems.append(f"generator must be one of {', '.join(GENERATORS)}, not {self.generator!r}")
        if not (self.net_size == 0 or (_is_power_of_two(self.net_size) and 32 <= self.net_size <= self.image_size)):
            problems.append(f"net_size must be 0 or a power of two from 32 to image_size, not {self.net_size!r}")
        if not isinstance(self.embedder_relu, bool):
            problems.append(f"embedder_relu must be true or false, not {self.embedder_relu!r}")
        if not isinstance(self.gen_bottleneck_blocks, int) or self.gen_bottleneck_blocks < 0:
            problems.append(f"gen_bottleneck_blocks must be a non-negative integer, not {self.gen_bottleneck_blocks!r}")
        if not problems:
            down = set(self.disc_sizes()) & set(self.gen_down_sizes())
            bad = [s for s in self.attention_down if s not in down]
            if bad:
                problems.append(f"attention_down {bad} not among the sides of the down paths {sorted(down)}")
            bad = [s for s in self.attention_up if s not in self.gen_up_sizes()]
            if bad:
                problems.append(f"attention_up {bad} not among the sides of G's up path {self.gen_up_sizes()}")
        if problems:
            raise ConfigError("invalid ModelConfig: " + "; ".join(problems))

    # -- derived layout (one place, used by the networks) ------------------------------------------

    @property
    def side(self) -> int:
        """The side at which the networks' convolutions work (``net_size``, or ``image_size`` when 0)."""
        return self.net_size or self.image_size

    @property
    def warp(self) -> bool:
        return self.generator == "warp"

    def _width(self, i: int) -> int:
        return min(self.base_channels * 2**i, self.max_channels)

    def disc_sizes(self) -> list[int]:
        """Output sides of E's (and D's trunk's) downsampling blocks: side/2 ... min_size."""
        n = int(math.log2(self.side // self.min_size))
        return [self.side >> (i + 1) for i in range(n)]

    def disc_widths(self) -> list[int]:
        """Output channels of E's downsampling blocks; the last one is embedding_dim."""
        n = len(self.disc_sizes())
        return [self._width(i) for i in range(n - 1)] + [self.embedding_dim]

    def gen_down_sizes(self) -> list[int]:
        """Output sides of G's downsampling blocks: side/2 ... gen_bottleneck_size."""
        n = int(math.log2(self.side // self.gen_bottleneck_size))
        return [self.side >> (i + 1) for i in range(n)]

    def gen_down_widths(self) -> list[int]:
        return [self._width(i) for i in range(len(self.gen_down_sizes()))]

    def gen_up_sizes(self) -> list[int]:
        """Output sides of G's upsampling blocks: 2 * gen_bottleneck_size ... side."""
        return self.gen_down_sizes()[-2::-1] + [self.side]

    def gen_up_widths(self) -> list[int]:
        """Each up block matches the width of the down block at its side; the last one is base_channels."""
        return self.gen_down_widths()[-2::-1] + [self.base_channels]

    # -- presets and (de)serialisation --------------------------------------------------------------

    @classmethod
    def preset(cls, name: str) -> "ModelConfig":
        """A named architecture: ``paper256`` or ``tiny`` (see the module docstring)."""
        if name not in PRESETS:
            raise ConfigError(f"unknown model preset {name!r}: choose one of {', '.join(PRESETS)}")
        return PRESETS[name]

    def to_dict(self) -> dict:
        """A JSON-safe dict of every field (tuples become lists)."""
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        """The inverse of ``to_dict``; unknown or missing fields raise ``ConfigError`` naming them.

        A config without ``embedder_relu`` was written before the field existed, when E always had the ReLU; one
        without ``generator`` / ``net_size`` before the warp generator existed (the paper's G at image_size)."""
        if isinstance(data, dict) and "embedder_relu" not in data:
            data = {**data, "embedder_relu": True}
        if isinstance(data, dict):
            data = {"generator": "paper", "net_size": 0, **data}
        return cls(**_fields_from_dict(cls, data, "model config"))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


GENERATORS = ("paper", "warp")

PRESETS: dict[str, ModelConfig] = {
    "paper256": ModelConfig(),
    "tiny": ModelConfig(
        image_size=64,
        base_channels=16,
        max_channels=64,
        embedding_dim=64,
        min_size=4,
        gen_bottleneck_size=16,
        gen_bottleneck_blocks=2,
        attention_down=(16,),
        attention_up=(32,),
    ),
    # The shipped default model: warp-guided, 256x256 frames, networks at 128x128, narrow enough to train on a
    # 2-core CPU (no self-attention; G's body has U-Net skips).
    "warp256": ModelConfig(
        image_size=256,
        base_channels=16,
        max_channels=256,
        embedding_dim=256,
        min_size=4,
        gen_bottleneck_size=8,
        gen_bottleneck_blocks=2,
        attention_down=(),
        attention_up=(),
        generator="warp",
        net_size=128,
    ),
    # warp256's architecture at 64x64 (networks at 32x32), for tests.
    "tiny_warp": ModelConfig(
        image_size=64,
        base_channels=8,
        max_channels=32,
        embedding_dim=32,
        min_size=4,
        gen_bottleneck_size=8,
        gen_bottleneck_blocks=1,
        attention_down=(),
        attention_up=(),
        generator="warp",
        net_size=32,
    ),
}


@dataclass(frozen=True)
class TrainConfig:
    """Loss weights, learning rates and schedule of meta-learning and fine-tuning (the paper's section 3)."""

    # Adam learning rates of the embedder E and generator G (incl. P), of the discriminator D (incl. W, w0, b)
    lr_EG: float = option(5e-5, "Adam learning rate of E and G, 0 to 1.", low=0, high=1, panel=_METHOD)
    lr_D: float = option(2e-4, "Adam learning rate of D (and W), 0 to 1.", low=0, high=1, panel=_METHOD)
    adam_betas: tuple[float, float] = (0.0, 0.9)  # Adam betas; the paper follows SAGAN's two-time-scale setup
    d_steps_per_g_step: int = 2  # discriminator updates per embedder/generator update
    # K (the episode has K + 1 frames)
    shots: int = option(8, "K, frames per episode given to the embedder.", low=1, panel=_METHOD)
    # L_CNT on; off (tests, machines without VGG weights) is warned about
    content_loss: bool = option(
        True,
        "The content loss L_CNT (needs VGG19 and VGGFace weights). Without it training runs on the adversarial, "
        "feature-matching and match terms only (not the paper's objective).",
        panel=_METHOD,
    )
    weight_vgg19: float = 1e-2  # L_CNT weight of the VGG19 (ImageNet) term
    weight_vggface: float = 2e-3  # L_CNT weight of the VGGFace term
    weight_adv: float = 1.0  # weight of the realism score -D(x_hat) inside L_ADV (the paper's: 1)
    weight_fm: float = 10.0  # weight of feature matching L_FM inside L_ADV
    weight_match: float = 80.0  # weight of the embedding match term L_MCH = ||W_i - e_hat_i||_1
    # None: the torch hub cache (downloaded into it when missing)
    vgg19_weights: str | None = option(
        None, "Path of torchvision's vgg19-dcbb9e9d.pth.", shown="torch hub cache", panel=_METHOD, metavar="PATH"
    )
    vggface_weights: str | None = option(
        None, "Path of vgg_face_dag.pth.", shown="torch hub cache", panel=_METHOD, metavar="PATH"
    )
    finetune_epochs: int = 40  # fine-tuning length in passes over the T shots (the paper's ~40 epochs)
    # Terms for machines without the VGG weights (not the paper's; 0 = off, as in the paper):
    weight_l1: float = 0.0  # mean absolute pixel error |x_hat - x|, on [-1, 1]
    weight_ssim: float = 0.0  # 1 - SSIM(x_hat, x) (pytorch-msssim, 11x11 Gaussian window)
    weight_mouth: float = 0.0  # pixel L1 weighted by a Gaussian around the target's mouth (points 48-67)
    # the realism score of the mouth's crop, from a second discriminator (fsth.models.MouthDiscriminator; meta-
    # learning of a warp-guided G only), in the generator's objective: -weight * D_mouth(x_hat)
    weight_mouth_adv: float = 0.0

    @classmethod
    def for_preset(cls, preset: str | None, **overrides) -> "TrainConfig":
        """The training defaults of a model preset (the paper's, except where ``PRESET_TRAINING`` says)."""
        return cls(**{**PRESET_TRAINING.get(preset or "", {}), **overrides})

    @classmethod
    def for_model(cls, model: ModelConfig, **overrides) -> "TrainConfig":
        """The training defaults for a model of config ``model`` (its preset's; a warp-guided model of no preset
        takes warp256's), updated by ``overrides`` (e.g. fine-tuning's command-line options)."""
        preset = next((name for name, cfg in PRESETS.items() if cfg == model), "warp256" if model.warp else None)
        return cls.for_preset(preset, **overrides)

    def to_dict(self) -> dict:
        return _to_dict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "TrainConfig":
        if isinstance(data, dict):  # written before the pixel terms (and the mouth's discriminator) existed
            old = {"weight_l1": 0.0, "weight_ssim": 0.0, "weight_mouth": 0.0, "weight_adv": 1.0}
            data = {**old, "weight_mouth_adv": 0.0, **data}
        return cls(**_fields_from_dict(cls, data, "train config"))


# Training defaults that differ from the paper's, per model preset. warp256 trains on a CPU without VGG weights:
# pixel L1 + SSIM + a mouth-weighted L1 stand in for the content loss and carry the objective (with the paper's
# adversarial weights, the image drifted away from the warp faster than a CPU budget of steps could bring it back:
# worse than the warp alone after 250-500 steps, twice); K = 1 (the shipped model animates one photo); one D update
# per E/G update (D is the most expensive part of a step).
PRESET_TRAINING: dict[str, dict] = {
    "warp256": {
        "content_loss": False,
        "weight_l1": 10.0,
        "weight_ssim": 2.0,
        "weight_mouth": 20.0,
        "weight_mouth_adv": 0.5,
        "shots": 1,
        "d_steps_per_g_step": 1,
        "lr_EG": 1e-4,
        "lr_D": 2e-4,
        "weight_match": 10.0,
        "weight_adv": 0.1,
        "weight_fm": 1.0,
    },
    "tiny_warp": {
        "content_loss": False,
        "weight_l1": 10.0,
        "weight_ssim": 2.0,
        "weight_mouth": 20.0,
        "weight_mouth_adv": 0.5,
        "shots": 2,
    },
}


PRECISIONS = ("auto", "bf16", "fp32")
DEFAULT_METRICS = ("ssim", "psnr", "l1", "csim", "akd", "fid")  # what ``fsth evaluate`` computes (``fsth.metrics``)


@dataclass(frozen=True)
class TrainOptions:
    """How one run goes; the method's own settings (losses, learning rates, K) are ``TrainConfig``'s."""

    preset: str = option(
        "paper256",
        "Model architecture: paper256 (the paper's, 256x256), tiny (64x64, CPU), warp256 (the warp-guided default "
        "model: 256x256, trains on a CPU; its own training defaults) or tiny_warp.",
        choices=tuple(PRESETS),
        panel=_RUN,
    )
    # the global batch is this x processes
    batch_size: int = option(8, "Episodes per step in each process, 1 to 256.", low=1, high=256, panel=_RUN)
    # the paper gives no step count; pick by budget
    max_steps: int = option(300_000, "Train until this many E/G updates.", low=0, panel=_RUN)
    seed: int = option(0, "Seed of the initial weights and of every episode.", panel=_RUN)
    log_every: int = option(50, "Steps between log lines and stats.jsonl rows.", low=1, panel=_SCHED)
    sample_every: int = option(1000, "Steps between sample grids in samples/.", low=1, panel=_SCHED)  # and at step 0
    checkpoint_every: int = option(
        1000, "Steps between checkpoints (also written at the end, on Ctrl-C and SIGTERM).", low=1, panel=_SCHED
    )
    snapshot_every: int = option(
        10_000, "Steps between snapshots: copies of the meta checkpoint in snapshots/.", low=1, panel=_SCHED
    )
    keep: int = option(0, "Snapshots to keep, the latest (0: all).", low=0, panel=_SCHED)
    num_samples: int = option(8, "Fixed episodes shown in each sample grid.", low=1, panel=_SCHED)
    tensorboard: bool = option(
        False,
        "Also write TensorBoard event files to RUN/tensorboard/ (the stats.jsonl rows and the sample grids); "
        "needs the tensorboard package (pip install 'fsth[tensorboard]').",
        panel=_SCHED,
    )
    # None: 4 on CUDA; 0 on CPU, where loading episodes in the training process costs less than a worker
    # competing for its cores
    workers: int | None = option(
        None,
        "DataLoader processes per training process.",
        low=0,
        shown="4 on CUDA, 0 on CPU: episodes are read in the training process",
        panel=_RUN,
    )
    precision: str = option("auto", "auto: bf16 autocast on CUDA, fp32 on CPU.", choices=PRECISIONS, panel=_RUN)

    def __post_init__(self):
        problems = option_problems(self)
        if problems:
            raise ConfigError("; ".join(problems))
