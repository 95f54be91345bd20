"""Distributed training's plumbing: one process or ``torchrun``'s, the stop request all processes agree on, and
the meta discriminator's table W under DistributedDataParallel.

``Processes.from_env()``: this process's rank, world size and device (NCCL on CUDA, gloo on the CPU).
``StopRequest``: Ctrl-C or SIGTERM finishes the step, saves and stops (agreed on with ``Processes.any``).

W under DDP: DDP all-reduces sparse gradients only with the gloo backend (NCCL has no sparse all-reduce), and would
otherwise treat W like any dense parameter. So, on every backend, ``exclude_from_ddp(D, ["W.weight"])`` runs
*before* wrapping D (DDP then ignores W, and W is broadcast from rank 0 so all processes start equal), and after
each backward that reached W, ``all_reduce_sparse_grad(D.W.weight)`` all-gathers every process's (row index,
gradient row) pairs with dense collectives (NCCL and gloo) and sums them into one sparse gradient divided by the
world size (DDP's averaging), identical on every process: SparseAdam takes the same step everywhere and W stays
consistent without the table ever being sent. Each process holds the whole table (145k x 512 float32 = 0.3 GB,
plus twice that for SparseAdam's moments).
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass

import torch
from torch import nn

from fsth import console


def _initialized() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


@dataclass
class Processes:
    """This process's place in a (possibly distributed) run and its device."""

    rank: int
    world: int
    device: torch.device

    @classmethod
    def from_env(cls) -> "Processes":
        """One process, or ``torchrun``'s: WORLD_SIZE/RANK/LOCAL_RANK from the environment, NCCL on CUDA else gloo."""
        from fsth.device import get_device

        device = get_device()
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls(0, 1, device)
        import torch.distributed as dist

        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(device)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(dist.get_rank(), dist.get_world_size(), device)

    def any(self, flag: bool) -> bool:
        """True in every process if ``flag`` is true in any (a stop request must be agreed on)."""
        if self.world == 1:
            return flag
        import torch.distributed as dist

        t = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return bool(t.item())

    def barrier(self) -> None:
        if self.world > 1:
            import torch.distributed as dist

            dist.barrier()

    def close(self) -> None:
        if self.world > 1 and _initialized():
            import torch.distributed as dist

            dist.destroy_process_group()


class StopRequest:
    """Ctrl-C, SIGTERM or SIGHUP during training: finish the step, save, stop. A second Ctrl-C stops at once."""

    def __init__(self):
        self.signal: int | None = None
        self._old = {}

    def _handle(self, signum, frame):
        if self.signal == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.signal = signum
        console.log(f"{signal.Signals(signum).name}: stopping after this step and saving (Ctrl-C again stops at once)")

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread only
            for sig in (signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._old.items():
            signal.signal(sig, handler)


def plain_module(module: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel wrapper (the module itself otherwise)."""
    return module.module if isinstance(module, nn.parallel.DistributedDataParallel) else module


def exclude_from_ddp(module: nn.Module, names: list[str], group=None) -> None:
    """Before ``DistributedDataParallel(module)``: DDP leaves the parameters ``names`` alone (their gradients are
    averaged by ``all_reduce_sparse_grad``), and they are broadcast from rank 0 so all processes start equal."""
    import torch.distributed as dist

    # The one hook DDP offers for this; private in name, but public in use (torch's own tests and FSDP rely on it).
    nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(module, names)
    if _initialized():
        params = dict(module.named_parameters())
        src = dist.get_global_rank(group, 0) if group else 0
        for name in names:
            dist.broadcast(params[name].data, src=src, group=group)


@torch.no_grad()
def all_reduce_sparse_grad(weight: nn.Parameter, group=None) -> None:
    """Average ``weight``'s sparse (row) gradient over the processes of a distributed run (module docstring).

    A no-op in a single process. Every process must call it, also one whose ``weight`` got no gradient.
    """
    import torch.distributed as dist

    if not _initialized() or dist.get_world_size(group) == 1:
        return
    world = dist.get_world_size(group)
    grad = weight.grad
    if grad is None:
        rows = torch.zeros(0, dtype=torch.long, device=weight.device)
        values = weight.new_zeros(0, weight.shape[1])
    else:
        grad = grad.coalesce()
        rows, values = grad.indices()[0], grad.values()
    counts = [torch.zeros(1, dtype=torch.long, device=weight.device) for _ in range(world)]
    dist.all_gather(counts, torch.tensor([rows.numel()], device=weight.device), group=group)
    n_max = int(max(c.item() for c in counts))
    pad = n_max - rows.numel()  # all_gather needs equal sizes; padding is cut off again below
    rows = torch.cat([rows, rows.new_zeros(pad)])
    values = torch.cat([values, values.new_zeros(pad, values.shape[1])])
    all_rows = [torch.empty_like(rows) for _ in range(world)]
    all_values = [torch.empty_like(values) for _ in range(world)]
    dist.all_gather(all_rows, rows, group=group)
    dist.all_gather(all_values, values, group=group)
    rows = torch.cat([r[: int(c.item())] for r, c in zip(all_rows, counts)])
    values = torch.cat([v[: int(c.item())] for v, c in zip(all_values, counts)])
    weight.grad = torch.sparse_coo_tensor(rows[None], values / world, weight.shape, check_invariants=False).coalesce()
