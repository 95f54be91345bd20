"""THE checkpoint format of fsth: safetensors files holding tensors plus JSON metadata. No pickle.

Every command that writes or reads model state goes through ``save_checkpoint`` / ``load_checkpoint``.

Layout of a file
----------------
Tensors (flat names; a network's state dict sits under its name and a dot):

- ``meta``      (a meta-learned model, from ``fsth train``): ``E.*`` Embedder, ``G.*`` Generator (incl. ``G.P``),
  ``D.*`` Discriminator (incl. ``D.W.weight`` (num_videos, 512), ``D.w0``, ``D.b``); D may be left out (the
  shipped default model, ``fsth.weights``, holds E and G only).
- ``person``    (a fine-tuned person, from ``fsth finetune``): ``G.*`` PersonGenerator (incl. ``G.psi``),
  optionally ``D.*`` PersonDiscriminator (incl. ``D.w_prime``, ``D.b``) so fine-tuning can continue.
- ``embedding`` (a person's e_hat, from ``fsth embed``): ``e_hat`` (512,) and ``landmarks`` (K, 68, 2), the
  shots' landmarks in crop coordinates; for a warp-guided model also ``crops`` (K, S, S, 3) uint8, the shots
  themselves (what its G warps). A warp-guided ``person`` file carries them too.
- ``train_state`` (what ``fsth train --resume`` reads): E, G and D, plus the optimizers' state under ``opt.*``
  (layout in ``fsth.rundir``).
- any kind may carry further tensors under other names (optimizer state, RNG state ...), stored as given.

Metadata (safetensors' string map): ``format`` = ``"fsth"``, ``format_version`` (an integer, currently 1),
``kind``, ``config`` (``ModelConfig.to_dict()`` as JSON) and ``meta``: a JSON object with ``step``,
``crop_policy`` (the landmarks stage's ``CropPolicy.to_dict()``), ``landmark_backend``, ``fsth_version``
and whatever other JSON-safe values the writer passed.

Loading checks format, version (newer than this code reads: refused), kind, the stored config and that
every network's weights match what that config builds, and names exactly what does not match; a tensor that
holds NaN or infinite values is refused too (it would render black frames). Every
problem is a ``CheckpointError`` with one line that names the file. Writes are atomic: a temporary file
in the same directory, fsync, then ``os.replace``.

Every kind is declared here, so any of them loads in a fresh interpreter; ``register_kind`` adds more.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import nn

from fsth import __version__
from fsth.config import ModelConfig, check_types
from fsth.errors import CheckpointError, FsthError
from fsth.files import atomic_output

FORMAT_NAME = "fsth"
FORMAT_VERSION = 1

Shapes = Mapping[str, tuple[int, ...]]  # tensor name -> shape, as stored in a file
META_TYPES = {"step": "int | None", "crop_policy": "dict | None", "landmark_backend": "str | None"}  # in ``meta``


@dataclass(frozen=True)
class KindSpec:
    """What a checkpoint kind holds. ``networks``: name -> builder(config, shapes) for the networks
    it must hold; ``optional_networks`` likewise for those it may hold; ``check(config, shapes)`` returns
    problems with its plain tensors (e.g. ``e_hat``'s shape)."""

    name: str
    description: str
    networks: Mapping[str, Callable[[ModelConfig, Shapes], nn.Module]] = field(default_factory=dict)
    optional_networks: Mapping[str, Callable[[ModelConfig, Shapes], nn.Module]] = field(default_factory=dict)
    check: Callable[[ModelConfig, Shapes], list[str]] | None = None

    def builders(self) -> dict[str, Callable[[ModelConfig, Shapes], nn.Module]]:
        return {**self.networks, **self.optional_networks}


KINDS: dict[str, KindSpec] = {}


def register_kind(spec: KindSpec) -> KindSpec:
    """Make a new checkpoint kind known to ``save_checkpoint`` and ``load_checkpoint``."""
    KINDS[spec.name] = spec
    return spec


def _meta_discriminator(cfg: ModelConfig, shapes: Shapes) -> nn.Module:
    from fsth.models import Discriminator

    return Discriminator(cfg, num_videos=shapes.get("D.W.weight", (1,))[0])


def _builder(class_name: str) -> Callable[[ModelConfig, Shapes], nn.Module]:
    def build(cfg: ModelConfig, shapes: Shapes) -> nn.Module:
        import fsth.models

        return getattr(fsth.models, class_name)(cfg)

    return build


def _check_embedding(cfg: ModelConfig, shapes: Shapes) -> list[str]:
    problems = []
    if "e_hat" not in shapes:
        problems.append("missing tensor e_hat")
    elif tuple(shapes["e_hat"]) != (cfg.embedding_dim,):
        problems.append(f"e_hat: shape {tuple(shapes['e_hat'])} in file, ({cfg.embedding_dim},) for the stored config")
    if "landmarks" not in shapes:
        problems.append("missing tensor landmarks")
    elif len(shapes["landmarks"]) != 3 or tuple(shapes["landmarks"][1:]) != (68, 2) or not shapes["landmarks"][0]:
        problems.append(f"landmarks: shape {tuple(shapes['landmarks'])} in file, (K, 68, 2) with K >= 1 expected")
    problems += _check_crops(cfg, shapes)
    return problems


def _check_crops(cfg: ModelConfig, shapes: Shapes) -> list[str]:
    """A warp-guided model's person files carry the shots' crops (K, S, S, 3) uint8: what its G warps."""
    if cfg is None or not cfg.warp:
        return []
    s = cfg.image_size
    if "crops" not in shapes:
        return ["missing tensor crops (the shots the warp-guided generator warps)"]
    if len(shapes["crops"]) != 4 or tuple(shapes["crops"][1:]) != (s, s, 3):
        return [f"crops: shape {tuple(shapes['crops'])} in file, (K, {s}, {s}, 3) expected"]
    return []


register_kind(
    KindSpec(
        "meta",
        "a meta-learned model (E, G, D)",
        networks={"E": _builder("Embedder"), "G": _builder("Generator")},
        # the shipped default model has no D (fine-tuning starts a new D'); a run with the mouth's discriminator
        # (TrainConfig.weight_mouth_adv) has D_mouth too
        optional_networks={"D": _meta_discriminator, "D_mouth": _builder("MouthDiscriminator")},
    )
)
register_kind(
    KindSpec(
        "person",
        "a fine-tuned person (G' with psi', D')",
        networks={"G": _builder("PersonGenerator")},
        optional_networks={"D": _builder("PersonDiscriminator")},
        check=_check_crops,
    )
)
register_kind(KindSpec("embedding", "a person's embedding e_hat and the shots' landmarks", check=_check_embedding))
# What `fsth train --resume` reads (layout in fsth.rundir): the meta networks plus every optimizer's state.
register_kind(
    KindSpec(
        "train_state",
        "a resumable training state (E, G, D and optimizer states)",
        networks={**KINDS["meta"].networks, "D": _meta_discriminator},
        optional_networks={"D_mouth": _builder("MouthDiscriminator")},
    )
)


# -- validation ------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=16)
def _expected_shapes_cached(kind: str, name: str, cfg: ModelConfig, shapes: tuple) -> dict[str, tuple[int, ...]]:
    net = KINDS[kind].builders()[name](cfg, dict(shapes))
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def _expected_shapes(kind: KindSpec, name: str, cfg: ModelConfig, shapes: Shapes) -> dict[str, tuple[int, ...]]:
    """The state-dict shapes of network ``name`` as ``cfg`` builds it (cached: building costs ~1 s at
    paper256; the meta device would be slower still, through Python decompositions)."""
    mine = tuple(sorted((k, tuple(v)) for k, v in shapes.items() if k.startswith(name + ".")))
    return _expected_shapes_cached(kind.name, name, cfg, mine)


def _mismatches(kind: KindSpec, cfg: ModelConfig | None, shapes: Shapes, saving: bool = False) -> list[str]:
    """Everything in ``shapes`` that does not fit ``kind`` built from ``cfg``, one phrase each."""
    where, config = ("given", "the config") if saving else ("in file", "the stored config")
    if cfg is None:
        return ["no model config stored"] if kind.builders() or kind.check else []
    shape_problems, missing, unexpected = [], [], []  # reported in this order: shapes say the most
    for name in kind.builders():
        in_file = {k[len(name) + 1 :]: s for k, s in shapes.items() if k.startswith(name + ".")}
        if not in_file:
            if name in kind.networks:
                missing.append(f"missing network {name} (no {name}.* tensors)")
            continue
        expected = _expected_shapes(kind, name, cfg, shapes)
        for key in sorted(in_file.keys() & expected.keys()):
            if tuple(in_file[key]) != expected[key]:
                shape_problems.append(
                    f"{name}.{key}: shape {tuple(in_file[key])} {where}, {expected[key]} for {config}"
                )
        missing += [f"{name}.{key}: missing {where}" for key in sorted(expected.keys() - in_file.keys())]
        unexpected += [
            f"{name}.{key}: {where}, not in the network the config builds"
            for key in sorted(in_file.keys() - expected.keys())
        ]
    problems = shape_problems + missing + unexpected
    if kind.check:
        problems += [p.replace("in file", where).replace("the stored config", config) for p in kind.check(cfg, shapes)]
    return problems


def _summary(problems: list[str], limit: int = 3) -> str:
    more = f" (and {len(problems) - limit} more)" if len(problems) > limit else ""
    return "; ".join(problems[:limit]) + more


# -- saving ----------------------------------------------------------------------------------------


def _flatten(content: Mapping[str, Any]) -> dict[str, torch.Tensor]:
    tensors: dict[str, torch.Tensor] = {}
    for name, item in content.items():
        if isinstance(item, nn.Module):
            item = item.state_dict()
        if isinstance(item, torch.Tensor):
            tensors[name] = item
        elif isinstance(item, Mapping):
            for key, value in item.items():
                tensors[f"{name}.{key}"] = value
        else:
            raise TypeError(f"checkpoint content {name!r} is a {type(item).__name__}, not a module or tensor(s)")
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in tensors.items()}


def save_checkpoint(
    path: str | os.PathLike,
    kind: str,
    content: Mapping[str, nn.Module | torch.Tensor | Mapping[str, torch.Tensor]],
    config: ModelConfig | None,
    *,
    step: int | None = None,
    crop_policy: dict | None = None,
    landmark_backend: str | None = None,
    **meta: Any,
) -> Path:
    """Write a checkpoint atomically and return its path.

    ``content`` maps names to modules (stored as their state dicts under ``name.``), tensors (stored as
    ``name``) or dicts of tensors (under ``name.``); e.g. ``{"E": E, "G": G, "D": D}`` for kind ``meta``,
    ``{"e_hat": e_hat, "landmarks": landmarks}`` for ``embedding``. ``meta``: further JSON-safe values.
    The content is checked against the kind and config before anything is written.
    """
    path = Path(path)
    if kind not in KINDS:
        raise ValueError(f"unknown checkpoint kind {kind!r}; known: {', '.join(KINDS)}")
    tensors = _flatten(content)
    problems = _mismatches(KINDS[kind], config, {k: tuple(v.shape) for k, v in tensors.items()}, saving=True)
    if problems:
        raise ValueError(f"refusing to write {path}: content does not match kind {kind!r}: {_summary(problems)}")
    info = {
        "step": step,
        "crop_policy": crop_policy,
        "landmark_backend": landmark_backend,
        "fsth_version": __version__,
        **meta,
    }
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "kind": kind,
        "config": config.to_json() if config is not None else "",
        "meta": json.dumps(info, sort_keys=True),  # TypeError here names a value that is not JSON-safe
    }
    if not path.parent.is_dir():
        raise CheckpointError(f"cannot write checkpoint {path}: directory {path.parent} does not exist")
    from safetensors.torch import save_file

    try:
        with atomic_output(path) as tmp:
            save_file(tensors, str(tmp), metadata=metadata)
    except FsthError:
        raise
    except Exception as exc:  # an OSError, or safetensors' own error for a failed write (a full disk)
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).strip().splitlines()[-1]
        if "No space left" in reason:
            reason = "no space left on device: free some space (or write elsewhere) and run again"
        raise CheckpointError(f"cannot write checkpoint {path}: {reason}") from None
    return path


# -- loading ---------------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """A loaded checkpoint. ``tensors`` holds what was asked for (all by default), on the CPU."""

    path: Path
    kind: str
    config: ModelConfig | None
    meta: dict
    tensors: dict[str, torch.Tensor]
    format_version: int = FORMAT_VERSION
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)  # every tensor in the file, loaded or not

    @property
    def step(self) -> int | None:
        return self.meta.get("step")

    @property
    def crop_policy(self) -> dict | None:
        return self.meta.get("crop_policy")

    @property
    def landmark_backend(self) -> str | None:
        return self.meta.get("landmark_backend")

    @property
    def e_hat(self) -> torch.Tensor:
        return self._tensor("e_hat")

    @property
    def landmarks(self) -> torch.Tensor:
        return self._tensor("landmarks")

    def _tensor(self, name: str) -> torch.Tensor:
        if name not in self.tensors:
            raise CheckpointError(f"{self.path}: this {self.kind!r} checkpoint holds no tensor {name!r}")
        return self.tensors[name]

    def state_dict(self, name: str) -> dict[str, torch.Tensor]:
        """The tensors stored under ``name.``, with that prefix removed."""
        prefix = name + "."
        return {k[len(prefix) :]: v for k, v in self.tensors.items() if k.startswith(prefix)}

    def network(self, name: str, device: torch.device | str | None = None) -> nn.Module:
        """Rebuild network ``name`` (``E``, ``G``, ``D``) from the stored config and load its weights
        strictly. For a ``meta`` checkpoint G is a ``Generator``, for a ``person`` one a ``PersonGenerator``
        (D likewise). The network comes back in training mode; call ``.eval()`` for inference."""
        builder = KINDS[self.kind].builders().get(name)
        state = self.state_dict(name)
        if builder is None or not any(k.startswith(name + ".") for k in self.shapes):
            raise CheckpointError(f"{self.path}: this {self.kind!r} checkpoint holds no network {name!r}")
        if not state:
            raise ValueError(f"network {name!r} of {self.path} was not loaded (see load_checkpoint's only=)")
        net = builder(self.config, self.shapes)
        net.load_state_dict(state, strict=True)  # shapes were validated at load time
        return net.to(device) if device is not None else net

    def embedder(self, device=None) -> nn.Module:
        return self.network("E", device)

    def generator(self, device=None) -> nn.Module:
        return self.network("G", device)

    def discriminator(self, device=None) -> nn.Module:
        return self.network("D", device)


def read_header(path: str | os.PathLike) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """The raw metadata and tensor shapes of a safetensors file (no tensor data is read)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            return f.metadata() or {}, {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as exc:  # safetensors raises its own error types for a bad header
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CheckpointError(f"{path}: not a readable checkpoint (truncated or not safetensors: {reason})") from None


def load_checkpoint(
    path: str | os.PathLike,
    kind: str | Iterable[str] | None = None,
    *,
    only: Iterable[str] | None = None,
) -> Checkpoint:
    """Read and validate a checkpoint. ``kind``: the kind (or kinds) the caller can use; another kind is
    refused. ``only``: load just the tensors under these names (e.g. ``("G",)`` for animation, which
    skips D's large W table); everything is still validated."""
    path = Path(path)
    metadata, shapes = read_header(path)
    if metadata.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{path}: not an fsth checkpoint (its metadata has no format 'fsth')")
    try:
        version = int(metadata.get("format_version", ""))
    except ValueError:
        raise CheckpointError(f"{path}: unreadable format_version {metadata.get('format_version')!r}") from None
    if version > FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version} is newer than this fsth {__version__} reads "
            f"({FORMAT_VERSION}); upgrade fsth"
        )
    file_kind = metadata.get("kind", "")
    if file_kind not in KINDS:
        raise CheckpointError(f"{path}: unknown checkpoint kind {file_kind!r} (known: {', '.join(KINDS)})")
    wanted = [kind] if isinstance(kind, str) else list(kind) if kind is not None else None
    if wanted is not None and file_kind not in wanted:
        need = " or ".join(repr(k) for k in wanted)
        raise CheckpointError(
            f"{path}: is a {file_kind!r} checkpoint ({KINDS[file_kind].description}), but {need} is needed here"
        )
    try:
        config = ModelConfig.from_dict(json.loads(metadata["config"])) if metadata.get("config") else None
        meta = check_types(json.loads(metadata.get("meta") or "{}"), META_TYPES, "meta")
    except (json.JSONDecodeError, FsthError) as exc:
        raise CheckpointError(f"{path}: bad metadata: {exc}") from None
    problems = _mismatches(KINDS[file_kind], config, shapes)
    if problems:
        raise CheckpointError(f"{path}: weights do not match the stored config: {_summary(problems)}")
    names = set(only) if only is not None else None
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys() if names is None or k.split(".")[0] in names}
    bad = [k for k, v in tensors.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        more = f" (and {len(bad) - 1} more tensors)" if len(bad) > 1 else ""
        raise CheckpointError(
            f"{path}: {bad[0]}{more} holds NaN or infinite values (the training or fine-tuning "
            "that wrote it diverged); refusing to use it"
        )
    if "landmarks" in tensors and config is not None:
        size, worst = config.image_size, float(tensors["landmarks"].abs().max())
        if worst > 4 * size:  # crop coordinates: a face spills past its crop by a fraction of it, not by 4 crops
            raise CheckpointError(
                f"{path}: landmarks reach {worst:.3g}, far outside the {size}x{size} crop they are stored in; "
                "refusing to use them (make the file again with fsth embed)"
            )
    return Checkpoint(path, file_kind, config, meta, tensors, version, dict(shapes))


# -- where the meta checkpoint is -----------------------------------------------------------------------

CHECKPOINT_ENV = "FSTH_CHECKPOINT"


def default_checkpoint_path() -> Path:
    """Where commands look for the meta checkpoint when neither ``--checkpoint`` nor ``FSTH_CHECKPOINT`` names
    one: ``$XDG_DATA_HOME/fsth/meta.safetensors`` (``~/.local/share/fsth/meta.safetensors`` by default)."""
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home).expanduser() / "fsth" / "meta.safetensors"


def find_meta_checkpoint(path: str | os.PathLike | None = None) -> Path:
    """The meta checkpoint to use: ``path`` if given, else ``$FSTH_CHECKPOINT``, else the default location, else
    the model shipped with fsth (``fsth.weights``).

    A path that is given (either way) but missing is an error naming it; with none given, nothing at the default
    location and no shipped model (a broken install), the error says how to get one.
    """
    if path is not None:
        given, how = Path(path).expanduser(), "--checkpoint"
    elif os.environ.get(CHECKPOINT_ENV):
        given, how = Path(os.environ[CHECKPOINT_ENV]).expanduser(), f"${CHECKPOINT_ENV}"
    else:
        default = default_checkpoint_path()
        if default.is_file():
            return default
        from fsth.weights import shipped_model

        if shipped_model().is_file():
            return shipped_model()
        raise CheckpointError(
            f"no meta checkpoint: pass --checkpoint META.safetensors, set {CHECKPOINT_ENV}, or put one at "
            f"{default} (the model shipped with fsth, {shipped_model()}, is missing: reinstall fsth)"
        )
    if not given.is_file():
        raise CheckpointError(f"{given}: no such checkpoint file (from {how})")
    return given


def load_meta_checkpoint(path: str | os.PathLike | None = None, only: Iterable[str] | None = None) -> Checkpoint:
    """``load_checkpoint`` of the meta checkpoint ``find_meta_checkpoint`` finds. A problem with one that was not
    named on the command line says where it was found ($FSTH_CHECKPOINT, the default location), so that a broken
    file nobody remembers putting there can be found."""
    found = find_meta_checkpoint(path)
    try:
        return load_checkpoint(found, "meta", only=only)
    except CheckpointError as exc:
        if path is None and os.environ.get(CHECKPOINT_ENV):
            raise CheckpointError(f"{exc} (from ${CHECKPOINT_ENV})") from None
        if path is None and found == default_checkpoint_path():
            raise CheckpointError(f"{exc} (found at the default location: replace or remove it)") from None
        raise
