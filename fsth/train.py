"""Meta-learning: a dataset of videos -> the meta checkpoint (E, G, and D with one row W_i per video).

What ``fsth train DATASET --run-dir RUN`` runs. In: a dataset built by ``fsth landmarks TREE --dataset``. Out:
the run directory (``fsth.rundir``): config, log, stats, sample grids, ``meta.safetensors`` and the training
state that ``--resume`` continues from.

One step (``train_step``), as in the paper (the paper's section 3), on a batch of episodes (K shots + 1 target):

1. E and G forward: e_hat = mean_k E(x_k, y_k) over the K shots; x_hat = G(y, e_hat) for the target's
   landmark image y. The graph is kept for step 3.
2. ``d_steps_per_g_step`` (2) discriminator updates (``fsth.gan.d_update``) with the hinge loss on the target x
against x_hat
   (detached): D runs once per update on real and fake concatenated (spectral norm does one power iteration
   per training-mode call). D's grads are zeroed before each update. Adam for D's dense parameters and
   SparseAdam for W (only the batch's rows change). Both D updates use this step's episodes: fresh episodes
   for each would cost two more E passes over K shots, the most expensive part of a step.
3. One E/G update with the updated D: L = L_CNT + L_ADV + L_MCH (``fsth.gan.g_objective``). D's parameters are
   frozen for this backward, except that L_MCH(phi, W) = 80 ||W_i - e_hat_i||_1 moves W_i as well as E (the
   paper writes L_MCH as a function of both; W gets this gradient only through the match term, never from
   -D(x_hat), and takes its step with the same SparseAdam).

On CUDA: bf16 autocast (no loss scaling needed) and channels_last. With ``torchrun`` (one process per GPU,
NCCL; gloo on CPU): E and G are wrapped together in one DistributedDataParallel, D in another with W left out
(``fsth.distributed.exclude_from_ddp``) and W's sparse gradient averaged by ``all_reduce_sparse_grad`` after every
backward that reaches it, so every process takes the same SparseAdam step and W stays identical everywhere. Each process
draws its own episodes (``fsth.episodes``); only rank 0 writes files. A stop request (Ctrl-C, SIGTERM) is agreed
on by all processes at the end of a step, then rank 0 saves and all exit.

Resume is exact: the state holds the step, all weights (W and spectral norm's vectors included) and every
optimizer's state, and all randomness is a function of (seed, step, rank): the episodes (``fsth.episodes``) and
the torch generator, reseeded at every step. On the CPU a run stopped and resumed ends bit-identical to one
that was not stopped (tested).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import signal
import time
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from fsth import __version__, console, gan
from fsth.config import ModelConfig, TrainConfig, TrainOptions, option_problems
from fsth.dataset.store import Dataset
from fsth.distributed import Processes, StopRequest, exclude_from_ddp
from fsth.episodes import EpisodeDataset, check_shots, episode_loader, to_model_input
from fsth.errors import FsthError, InputError
from fsth.models import (
    Discriminator,
    Embedder,
    Generator,
    MouthDiscriminator,
    count_parameters,
    load_content_networks,
    tensor_to_images,
    warped_source,
)
from fsth.rundir import RunDir

# Options a resumed run may change; any other must stay as the run started (or the resume is not exact).
CHANGEABLE_ON_RESUME = frozenset(
    {
        "max_steps",
        "log_every",
        "sample_every",
        "checkpoint_every",
        "snapshot_every",
        "keep",
        "num_samples",
        "tensorboard",
        "workers",
        "precision",
        "vgg19_weights",
        "vggface_weights",
    }
)


def resolve_options(given: dict, saved: dict | None = None) -> tuple[TrainOptions, TrainConfig]:
    """The run's options and training config: defaults (or a resumed run's ``saved`` config.json) updated by
    the options ``given`` on the command line. A resumed run refuses changes outside CHANGEABLE_ON_RESUME."""
    opt_names = {f.name for f in dataclasses.fields(TrainOptions)}
    cfg_names = {f.name for f in dataclasses.fields(TrainConfig)}
    if set(given) - opt_names - cfg_names:
        raise ValueError(f"unknown training options {sorted(set(given) - opt_names - cfg_names)}")
    if saved is None:
        opts = TrainOptions()
        cfg = TrainConfig.for_preset(given.get("preset", opts.preset))
    else:
        known = {k: v for k, v in saved["options"].items() if k in opt_names}  # a run from before an option existed
        opts, cfg = TrainOptions(**known), TrainConfig.from_dict(saved["train"])
        for name, value in given.items():
            old = getattr(opts if name in opt_names else cfg, name)
            if name not in CHANGEABLE_ON_RESUME and value != old:
                raise InputError(
                    f"--{name.replace('_', '-')} {value} differs from this run's {old}: a resumed run keeps its "
                    "settings (start a new --run-dir to change it)"
                )
    opts = dataclasses.replace(opts, **{k: v for k, v in given.items() if k in opt_names})
    cfg = dataclasses.replace(cfg, **{k: v for k, v in given.items() if k in cfg_names})
    problems = option_problems(cfg)  # TrainOptions checks itself; a TrainConfig read from a checkpoint is not checked
    if problems:
        raise InputError("; ".join(problems))
    return opts, cfg


# ---------------------------------------------------------------------------------------------- networks


class EmbedGenerate(nn.Module):
    """E and G as one module (one DistributedDataParallel syncs both): shots + landmarks -> (e_hat, x_hat)."""

    def __init__(self, E: Embedder, G: Generator):
        super().__init__()
        self.E, self.G = E, G

    def forward(self, shots_x, shots_y, y, shots_points=None, points=None):
        # shots_x, shots_y: (B, K, 3, H, W); y: (B, 3, H, W); shots_points (B, K, 68, 2) and points (B, 68, 2) for
        # the warp-guided G -> e_hat (B, D), x_hat (B, 3, H, W)
        e_hat = self.E.embed_shots(shots_x, shots_y)
        return e_hat, self.G(y, e_hat, warped_source(self.G.cfg, shots_x, shots_points, points))


def build_training(cfg: ModelConfig, train_cfg: TrainConfig, num_videos: int, device, content=None):
    """E, G, D on ``device`` and their optimizers: ({"E", "G", "D"}, {"EG", "D", "W"}). Adam with the paper's
    rates and betas for E + G and for D's dense parameters, SparseAdam for D's table W (only the batch's rows
    change). A warp-guided G with ``weight_mouth_adv`` on adds the mouth's discriminator ``D_mouth`` and its Adam
    (at D's rate). On CUDA the networks (and the content networks) go channels_last."""
    E, G, D = Embedder(cfg).to(device), Generator(cfg).to(device), Discriminator(cfg, num_videos).to(device)
    nets = {"E": E, "G": G, "D": D}
    if _trains_mouth_discriminator(cfg, train_cfg):
        nets["D_mouth"] = MouthDiscriminator(cfg).to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        for net in (*nets.values(), *(content or ())):
            net.to(memory_format=torch.channels_last)
    betas = tuple(train_cfg.adam_betas)
    opt_EG = torch.optim.Adam(chain(E.parameters(), G.parameters()), lr=train_cfg.lr_EG, betas=betas)
    opt_D = torch.optim.Adam(D.dense_parameters(), lr=train_cfg.lr_D, betas=betas)
    opt_W = torch.optim.SparseAdam(list(D.W.parameters()), lr=train_cfg.lr_D, betas=betas)
    optimizers = {"EG": opt_EG, "D": opt_D, "W": opt_W}
    if "D_mouth" in nets:
        optimizers["D_mouth"] = torch.optim.Adam(nets["D_mouth"].parameters(), lr=train_cfg.lr_D, betas=betas)
    return nets, optimizers


def parameter_counts(cfg: ModelConfig, num_videos: int, train_cfg: TrainConfig | None = None) -> dict[str, int]:
    """Parameters per network: E, G, D's dense part and D's table W (num_videos x embedding_dim), and the mouth's
    discriminator where ``train_cfg`` trains one."""
    D = Discriminator(cfg, num_videos=1)
    dense = sum(p.numel() for p in D.dense_parameters())
    counts = {
        "E": count_parameters(Embedder(cfg)),
        "G": count_parameters(Generator(cfg)),
        "D": dense,
        "D.W": num_videos * cfg.embedding_dim,
    }
    if train_cfg is not None and _trains_mouth_discriminator(cfg, train_cfg):
        counts["D_mouth"] = count_parameters(MouthDiscriminator(cfg))
    return counts


def _trains_mouth_discriminator(cfg: ModelConfig, train_cfg: TrainConfig) -> bool:
    """Whether a run trains the mouth's discriminator: a warp-guided G with ``weight_mouth_adv`` on."""
    return cfg.warp and train_cfg.weight_mouth_adv > 0


# ---------------------------------------------------------------------------------------------- one step


@dataclass
class Trainer:
    """What a meta-learning step works with: E + G as one module and D (either may be a DistributedDataParallel
    wrapper), their optimizers ({"EG", "D", "W"}, as ``build_training`` makes them), the losses' settings, the
    content networks of L_CNT (None when it is off), the autocast context, whether inputs go channels_last, and the
    mouth's discriminator (None without one; its optimizer is ``optimizers["D_mouth"]``)."""

    EG: nn.Module
    D: nn.Module
    optimizers: dict[str, torch.optim.Optimizer]
    cfg: TrainConfig
    content: object = None
    autocast: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext
    channels_last: bool = False
    D_mouth: nn.Module | None = None


def train_step(batch, t: Trainer) -> dict[str, torch.Tensor]:
    """One meta-learning step on a batch of episodes (``fsth.episodes.ModelInput``; see the module docstring):
    ``fsth.gan``'s D updates, then the E/G update. Returns the losses (detached)."""
    shots_x, shots_y, x, y, idx, shots_points, points = batch
    if t.channels_last:
        x, y = x.contiguous(memory_format=torch.channels_last), y.contiguous(memory_format=torch.channels_last)
    opt = t.optimizers

    # 1. E and G: the person's embedding from the K shots, the target frame rendered from its landmarks.
    with t.autocast():
        e_hat, x_hat = t.EG(shots_x, shots_y, y, shots_points, points)  # (B, D), (B, 3, H, W)

    # 2. D updates: hinge loss, real target vs generated, one D call on both halves.
    d = gan.d_update(t.D, (opt["D"], opt["W"]), x, x_hat, y, idx, steps=t.cfg.d_steps_per_g_step, autocast=t.autocast)
    # and the mouth's discriminator's, on the targets' mouths
    dm = None
    if t.D_mouth is not None:
        dm = gan.d_update(t.D_mouth, (opt["D_mouth"],), x, x_hat, y, points, steps=1, autocast=t.autocast)

    # 3. E/G update against the updated D: L_CNT + L_ADV + L_MCH; D frozen except W through L_MCH.
    terms = gan.g_objective(
        t.D,
        t.cfg,
        x_hat,
        x,
        y,
        idx,
        e_hat=e_hat,
        content_nets=t.content,
        points=points,
        autocast=t.autocast,
        D_mouth=t.D_mouth,
    )
    gan.step(terms["total"], (opt["EG"], opt["W"]), t.D)

    losses = {f"G_{k}": v.detach() for k, v in terms.items()}
    losses.update(D_hinge=d["hinge"], D_real=d["real"], D_fake=d["fake"])
    if dm is not None:
        losses.update(D_mouth_hinge=dm["hinge"], D_mouth_real=dm["real"], D_mouth_fake=dm["fake"])
    return losses


@torch.no_grad()
def render_samples(E, G, batch, autocast) -> tuple[list[list[np.ndarray]], float]:
    """Rows [landmark image | generated | target] of the fixed episodes (the warp-guided G: [landmark image | warped
    source | generated | target]), and the generated frames' mean absolute error in 8-bit grey levels. E and G run
    in eval mode (spectral norm then uses, and does not change, its vectors)."""
    shots_x, shots_y, x, y, _, shots_points, points = batch
    modes = E.training, G.training
    E.eval(), G.eval()
    warped = warped_source(G.cfg, shots_x, shots_points, points)
    with autocast():
        x_hat = G(y, E.embed_shots(shots_x, shots_y), warped).float()
    E.train(modes[0]), G.train(modes[1])
    columns = [tensor_to_images(t) for t in (y, *([warped] if warped is not None else []), x_hat, x)]
    fake, real = columns[-2], columns[-1]
    error = float(np.abs(fake.astype(np.float32) - real.astype(np.float32)).mean())
    return [list(row) for row in zip(*columns)], error


# ---------------------------------------------------------------------------------------------- the run


@dataclass
class TrainResult:
    step: int  # steps done
    stopped_by: str | None  # "SIGINT" / "SIGTERM" when stopped early, else None
    run_dir: Path


def train(dataset_dir, run_dir, given: dict | None = None, *, resume: bool = False) -> TrainResult:
    """Meta-learn on the dataset in ``dataset_dir`` into ``run_dir``; see the module docstring.

    ``given``: options set on the command line (``TrainOptions`` and ``TrainConfig`` field names); ``resume``:
    continue the run in ``run_dir``. ``resolve_run`` says what this would run, without training.
    """
    with _processes() as procs, contextlib.closing(RunDir(run_dir, writer=procs.rank == 0)) as run:
        existed = run.path.exists()
        run.check(resume)
        try:
            return _train(procs, run, _plan(procs, Path(dataset_dir), run, given or {}, resume), resume)
        except FsthError:
            if not resume:  # e.g. every video unreadable: nothing of value was made; the command can run again
                run.remove_unstarted(existed)
            raise


def resolve_run(dataset_dir, run_dir, given: dict | None = None, *, resume: bool = False) -> dict:
    """What ``train`` with the same arguments would run, without training or writing anything: the resolved
    configuration (model, training config, options, dataset, processes, device, ...) and each network's parameter
    count, as a JSON-safe dict (``--dry-run`` prints it with ``dry_run_text``)."""
    with _processes() as procs:
        run = RunDir(run_dir, writer=procs.rank == 0)
        if resume:
            run.check(resume)
        plan = _plan(procs, Path(dataset_dir), run, given or {}, resume)
        return {**plan.resolved, "parameters": parameter_counts(plan.model, len(plan.dataset), plan.train_cfg)}


@contextlib.contextmanager
def _processes():
    """This process's place among the training processes (``torchrun``'s, or one); only rank 0 reports."""
    procs = Processes.from_env()
    if procs.rank != 0:
        console.set_verbosity(0)
    try:
        yield procs
    finally:
        procs.close()


@dataclass
class _Plan:
    """A run's settings, resolved: the options, training and model configs, the dataset, whether to autocast to
    bf16, the DataLoader workers, and all of it as ``resolved`` (the run's config.json)."""

    opts: TrainOptions
    train_cfg: TrainConfig
    model: ModelConfig
    dataset: Dataset
    bf16: bool
    workers: int
    resolved: dict


def _plan(procs: Processes, dataset_dir: Path, run: RunDir, given: dict, resume: bool) -> _Plan:
    device = procs.device
    opts, train_cfg = resolve_options(given, run.read_config() if resume else None)
    dataset = Dataset(dataset_dir)
    if not resume:  # a resumed run keeps the K it was started with
        check_shots(dataset, train_cfg.shots)
    cfg = ModelConfig.preset(opts.preset)
    bf16 = opts.precision == "bf16" or (opts.precision == "auto" and device.type == "cuda")
    workers = opts.workers if opts.workers is not None else (4 if device.type == "cuda" else 0)
    resolved = {
        "model": cfg.to_dict(), "train": train_cfg.to_dict(), "options": dataclasses.asdict(opts),
        "dataset": {"path": str(dataset.root.resolve()), "videos": len(dataset), "persons": dataset.num_persons,
                    "fingerprint": dataset.fingerprint(), "settings": dataset.settings.to_dict()},
        "processes": procs.world, "device": str(device), "autocast": "bf16" if bf16 else None,
        "channels_last": device.type == "cuda", "dataloader_workers": workers,
        "fsth_version": __version__, "torch_version": torch.__version__,
    }  # fmt: skip
    if dataset.settings.size < cfg.image_size:
        console.warn(
            f"{dataset.root}: crops stored at {dataset.settings.size}px are enlarged to the model's "
            f"{cfg.image_size}px; build the dataset with --size {cfg.image_size} or more"
        )
    return _Plan(opts, train_cfg, cfg, dataset, bf16, workers, resolved)


def _train(procs: Processes, run: RunDir, plan: _Plan, resume: bool) -> TrainResult:
    device = procs.device
    opts, train_cfg, cfg, dataset = plan.opts, plan.train_cfg, plan.model, plan.dataset
    content = load_content_networks(train_cfg, device)  # first: a missing weights file fails before anything is written
    torch.manual_seed(opts.seed)
    nets, optimizers = build_training(cfg, train_cfg, len(dataset), device, content)
    step = _resume(run, nets, optimizers, plan, procs) if resume else 0
    run.start(plan.resolved, [v.video_id for v in dataset.videos], step, tensorboard=opts.tensorboard)
    run.log(
        f"{'resumed at step ' + str(step) if resume else 'started'}: {opts.preset}, {len(dataset)} videos of "
        f"{dataset.num_persons} persons, batch {opts.batch_size} x {procs.world} process(es), K = "
        f"{train_cfg.shots}, {device}{', bf16 autocast' if plan.bf16 else ''}; run directory {run.path}"
    )
    autocast = (lambda: torch.autocast(device.type, dtype=torch.bfloat16)) if plan.bf16 else contextlib.nullcontext
    EG, D, D_mouth = _parallel(nets, procs)
    trainer = Trainer(EG, D, optimizers, train_cfg, content, autocast, device.type == "cuda", D_mouth)
    episodes = EpisodeDataset(dataset, cfg.image_size, train_cfg.shots, seed=opts.seed)
    books = _Bookkeeping(run, plan, procs, nets, optimizers, episodes, autocast, last_saved=step if resume else None)
    loader = episode_loader(
        episodes, step, opts.max_steps, opts.batch_size, procs.rank, plan.workers, pin_memory=device.type == "cuda"
    )
    with StopRequest() as stop, console.progress(_InfoColumn()) as bar:
        task = bar.add_task("train", total=opts.max_steps, completed=step, info="")
        if step == 0 and procs.rank == 0 and opts.max_steps > 0:
            books.first_samples()
        for batch in loader:
            torch.manual_seed(_step_seed(opts.seed, step, procs.rank))
            losses = train_step(to_model_input(batch, device), trainer)
            step += 1
            stopping = procs.any(stop.signal is not None)
            books.after_step(step, losses, stopping, functools.partial(bar.update, task, completed=step))
            if stopping:
                break
    stopped_by = signal.Signals(stop.signal).name if stop.signal is not None else None
    run.log(
        f"{'stopped by ' + stopped_by if stopped_by else 'finished'} at step {step}; meta checkpoint "
        f"{run.meta}" + ("; --resume continues" if step < opts.max_steps else "")
    )
    return TrainResult(step, stopped_by, run.path)


def _resume(run: RunDir, nets: dict, optimizers: dict, plan: _Plan, procs: Processes) -> int:
    """Load the run's training state into ``nets`` and ``optimizers``; its step. The dataset must be the one it
    trained on (W has one row per video)."""
    state = run.load(nets, optimizers, plan.model)
    if state.get("dataset_fingerprint") != plan.dataset.fingerprint():
        raise InputError(
            f"{plan.dataset.root}: not the dataset this run trained on (its videos differ, and W has one row per video)"
        )
    if state.get("processes", 1) != procs.world:
        console.warn(
            f"resumed on {procs.world} processes, started on {state.get('processes')}: the episodes "
            "of each step differ from those of an uninterrupted run"
        )
    return int(state["step"])


def _parallel(nets: dict, procs: Processes) -> tuple[nn.Module, nn.Module, nn.Module | None]:
    """E and G as one module, D, and the mouth's discriminator (None without one), each wrapped in
    DistributedDataParallel on more than one process (W, a sparse embedding, is left out of DDP:
    ``fsth.distributed`` all-reduces its gradient rows)."""
    EG, D, D_mouth = EmbedGenerate(nets["E"], nets["G"]), nets["D"], nets.get("D_mouth")
    if procs.world == 1:
        return EG, D, D_mouth
    exclude_from_ddp(D, ["W.weight"])
    ids = [procs.device.index] if procs.device.type == "cuda" else None

    def ddp(net):
        return nn.parallel.DistributedDataParallel(net, device_ids=ids) if net is not None else None

    return ddp(EG), ddp(D), ddp(D_mouth)


class _Bookkeeping:
    """What a run writes around its steps: the progress line, log rows (stats.jsonl), sample grids of fixed
    episodes, checkpoints and snapshots; and the check that stops a run whose loss is not finite before anything
    of that step is written."""

    def __init__(self, run, plan, procs, nets, optimizers, episodes, autocast, last_saved: int | None):
        self.run, self.opts, self.procs, self.nets, self.optimizers = run, plan.opts, procs, nets, optimizers
        self.cfg, self.autocast = plan.model, autocast
        self.last_saved = last_saved  # the last checkpoint in the run directory (it holds finite weights)
        self.echo = not console.err.is_terminal  # a terminal has the progress line; a log file gets the lines
        self.meter = LossMeter(samples_per_step=self.opts.batch_size * procs.world)
        self.diverged = FirstNonFinite(procs.device)
        self.fixed = None
        if procs.rank == 0:
            n = min(self.opts.num_samples, 64)
            collated = torch.utils.data.default_collate([episodes.fixed_episode(i, n) for i in range(n)])
            self.fixed = to_model_input(collated, procs.device)
        dataset = plan.dataset
        self.meta = {
            "crop_policy": dataset.settings.crop_policy,
            "landmark_backend": dataset.settings.landmark_backend,
            "dataset_fingerprint": dataset.fingerprint(),
            "image_size": plan.model.image_size,
            "shots": plan.train_cfg.shots,
        }
        self.state_meta = {
            "seed": self.opts.seed,
            "processes": procs.world,
            "batch_size": self.opts.batch_size,
            "run_config": plan.resolved,
        }

    def first_samples(self) -> None:
        row = {"step": 0}
        self.sample(0, row)
        self.run.append_stats(row)

    def after_step(self, step: int, losses: dict, stopping: bool, show: Callable[..., None]) -> None:
        opts, meter = self.opts, self.meter
        meter.add(losses)
        self.diverged.add(losses, step)
        show()
        if meter.seconds_since_shown() > 2.0:  # the progress line: at most every 2 s (it syncs a GPU)
            show(info=meter.show())
        log, samples = step % opts.log_every == 0, step % opts.sample_every == 0
        snapshot = step % opts.snapshot_every == 0
        checkpoint = stopping or step % opts.checkpoint_every == 0 or step == opts.max_steps or snapshot
        # A non-finite loss stops the run before anything of this step is written. Checked every step on the
        # CPU; on a GPU (a sync) before every log row, sample grid and checkpoint, naming the first bad step.
        if self.procs.device.type != "cuda" or log or samples or checkpoint:
            bad = self.diverged.step()
            if self.procs.any(bad is not None):
                raise TrainingDiverged(self.run, bad or step, self.last_saved)
        with meter.paused():  # writing samples and checkpoints does not count against samples/s
            row = {}
            if log:
                show(info=meter.show())
                row = {
                    "time": round(time.time(), 3),
                    "samples_per_s": round(meter.rate(), 3),
                    "lr_EG": self.optimizers["EG"].param_groups[0]["lr"],
                    "lr_D": self.optimizers["D"].param_groups[0]["lr"],
                    **{k: round(v, 6) for k, v in meter.means().items()},
                }
                self.run.log(f"step {step}: {meter.show()}", echo=self.echo)
                meter.reset()
            if self.procs.rank == 0 and samples:
                self.sample(step, row)
            if row:
                self.run.append_stats({"step": step, **row})
            if checkpoint:
                self.save(step)
                self.run.log(f"step {step}: checkpoint -> {self.run.meta}", echo=self.echo)
                if snapshot:
                    path = self.run.snapshot(step, opts.keep)
                    self.run.log(f"step {step}: snapshot -> {path}", echo=self.echo)

    def save(self, step: int) -> None:
        self.run.save(self.nets, self.optimizers, self.cfg, step=step, meta=self.meta, state_meta=self.state_meta)
        self.procs.barrier()
        self.last_saved = step

    def sample(self, step: int, row: dict) -> None:
        rows, error = render_samples(self.nets["E"], self.nets["G"], self.fixed, self.autocast)
        path = self.run.write_samples(step, rows)
        row["sample_l1"] = round(error, 3)
        self.run.log(f"step {step}: samples -> {path} (mean abs error {error:.1f} grey levels)", echo=self.echo)


class FirstNonFinite:
    """The first step whose losses were not all finite, kept on the device: adding a step costs no GPU sync."""

    def __init__(self, device):
        self._first = torch.full((), -1, dtype=torch.long, device=device)

    def add(self, losses: dict[str, torch.Tensor], step: int) -> None:
        finite = torch.stack([v.detach().float().reshape(()) for v in losses.values()]).isfinite().all()
        self._first = torch.where((self._first < 0) & ~finite, torch.full_like(self._first, step), self._first)

    def step(self) -> int | None:
        first = int(self._first)
        return first if first >= 0 else None


class TrainingDiverged(FsthError):
    """A loss became NaN or infinite: the run stops, keeps its last good checkpoint, and says at which step."""

    def __init__(self, run: RunDir, step: int, last_saved: int | None):
        kept = (
            f"the last good checkpoint, {run.meta} at step {last_saved}, is kept (--resume continues from it)"
            if last_saved
            else "no checkpoint had been written yet"
        )
        message = (
            f"training diverged: a loss is NaN or infinite at step {step}; stopped without saving it, {kept}. "
            "Lower --lr-eg / --lr-d, or check the dataset"
        )
        run.log(message, echo=False)
        super().__init__(message)


class LossMeter:
    """Means of the step losses since the last reset, and samples/s over the same steps (paused time excluded)."""

    def __init__(self, samples_per_step: int):
        self.samples_per_step = samples_per_step
        self._shown = time.perf_counter()
        self.reset()

    def reset(self) -> None:
        self._sums: dict[str, torch.Tensor] = {}
        self._steps, self._start, self._paused = 0, time.perf_counter(), 0.0

    def add(self, losses: dict[str, torch.Tensor]) -> None:
        for k, v in losses.items():  # summed on the device: no GPU sync per step
            self._sums[k] = self._sums[k] + v if k in self._sums else v.clone()
        self._steps += 1

    def means(self) -> dict[str, float]:
        return {k: float(v) / self._steps for k, v in self._sums.items()} if self._steps else {}

    def rate(self) -> float:
        return self._steps * self.samples_per_step / max(time.perf_counter() - self._start - self._paused, 1e-9)

    @contextlib.contextmanager
    def paused(self):
        start = time.perf_counter()
        yield
        self._paused += time.perf_counter() - start

    def seconds_since_shown(self) -> float:
        return time.perf_counter() - self._shown

    def show(self) -> str:
        """ "D 0.512 G 12.345 fm 3.210 mch 8.765 | 12.3 samples/s": the progress line and log lines."""
        self._shown = time.perf_counter()
        means = self.means()
        parts = [f"{label} {means[k]:.3f}" for k, label in _INFO_KEYS if k in means]
        return f"{' '.join(parts)} | {self.rate():.1f} samples/s"


_INFO_KEYS = (("D_hinge", "D"), ("G_total", "G"), ("G_fm", "fm"), ("G_match", "mch"))


def _step_seed(seed: int, step: int, rank: int) -> int:
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1)[0])


def _InfoColumn():
    from rich.progress import TextColumn

    return TextColumn("{task.fields[info]}")


def dry_run_text(resolved: dict) -> str:
    """The resolved configuration and parameter counts, as ``--dry-run`` prints them (JSON)."""
    counts = resolved["parameters"]
    resolved = {**resolved, "parameters": {**counts, "total": sum(counts.values())}}
    return json.dumps(resolved, indent=2)
