"""D's table W: a step touches only the batch's rows (SparseAdam: rows that left the batch stay put), also across
processes (DDP with gloo)."""

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from fsth.config import ModelConfig
from fsth.distributed import all_reduce_sparse_grad, exclude_from_ddp
from fsth.losses import discriminator_hinge_loss
from fsth.models import Discriminator


def _d_step(D, optimizers, x, y, idx, world_sync: bool = False):
    """One discriminator update: hinge loss on real x vs. a made-up fake, with the given Adam + SparseAdam."""
    for opt in optimizers:
        opt.zero_grad(set_to_none=True)
    score_real, _ = D(x, y, idx)
    score_fake, _ = D(x.flip(-1), y, idx)
    discriminator_hinge_loss(score_real, score_fake).backward()
    if world_sync:
        all_reduce_sparse_grad(D.W.weight)
    for opt in optimizers:
        opt.step()


# Rows 2 and 7 are in the first batch only, 3 and 5 in the later ones, the others never. With one optimizer kept
# across the steps, a dense Adam would go on moving rows 2 and 7 after they left the batch (their moments are not
# zero); SparseAdam leaves them where the first step put them.
SCHEDULE = [torch.tensor([2, 7]), torch.tensor([3, 5]), torch.tensor([3, 5])]


def test_a_step_leaves_rows_outside_the_batch_exactly_unchanged(frames):
    torch.manual_seed(0)
    D = Discriminator(ModelConfig.preset("tiny"), num_videos=10)
    optimizers = (torch.optim.Adam(D.dense_parameters(), lr=1e-2), torch.optim.SparseAdam(D.W.parameters(), lr=1e-2))
    x, y = frames
    tables = [D.W.weight.detach().clone()]
    for idx in SCHEDULE:
        _d_step(D, optimizers, x, y, idx)
        tables.append(D.W.weight.detach().clone())
        assert D.W.weight.grad.is_sparse
    never = [0, 1, 4, 6, 8, 9]
    assert torch.equal(tables[-1][never], tables[0][never])
    assert not torch.equal(tables[1][[2, 7]], tables[0][[2, 7]])  # moved while in the batch
    assert torch.equal(tables[3][[2, 7]], tables[1][[2, 7]])  # and not after it left
    assert not torch.equal(tables[2][[3, 5]], tables[1][[3, 5]]) and not torch.equal(
        tables[3][[3, 5]], tables[2][[3, 5]]
    )


def test_the_schedule_tells_sparse_from_dense_adam():
    """The control: under the same schedule a dense Adam moves rows that have left the batch."""
    torch.manual_seed(0)
    table = torch.nn.Embedding(10, 4)
    opt = torch.optim.Adam(table.parameters(), lr=1e-2)
    after = []
    for idx in SCHEDULE:
        opt.zero_grad()
        table(idx).square().sum().backward()
        opt.step()
        after.append(table.weight.detach().clone())
    assert not torch.equal(after[2][[2, 7]], after[0][[2, 7]])


def _ddp_worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    torch.manual_seed(rank)  # different initial weights on each rank: DDP and exclude_from_ddp must align them
    D = Discriminator(ModelConfig.preset("tiny"), num_videos=10).eval()  # eval: no power-iteration drift
    exclude_from_ddp(D, ["W.weight"])
    ddp = torch.nn.parallel.DistributedDataParallel(D)
    torch.manual_seed(100 + rank)
    x, y = torch.rand(2, 2, 3, 64, 64) * 2 - 1
    idx = torch.tensor([[1, 4], [4, 6]][rank])  # row 4 in both processes' batches
    torch.save(
        {
            "W0": D.W.weight.detach().clone(),
            "x": x,
            "y": y,
            "idx": idx,
            "state0": {k: v.clone() for k, v in D.state_dict().items()},
        },
        f"{out_dir}/in{rank}.pt",
    )
    dense = torch.optim.Adam(D.dense_parameters(), lr=1e-2)
    sparse = torch.optim.SparseAdam(D.W.parameters(), lr=1e-2)
    score_real, _ = ddp(x, y, idx)
    score_fake, _ = ddp(x.flip(-1), y, idx)
    discriminator_hinge_loss(score_real, score_fake).backward()
    all_reduce_sparse_grad(D.W.weight)
    dense.step()
    sparse.step()
    torch.save({k: v.detach().clone() for k, v in D.state_dict().items()}, f"{out_dir}/out{rank}.pt")
    dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_W_stays_consistent_across_ddp_processes(tmp_path):
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ins = [torch.load(tmp_path / f"in{r}.pt") for r in range(2)]
    outs = [torch.load(tmp_path / f"out{r}.pt") for r in range(2)]
    assert torch.equal(ins[0]["W0"], ins[1]["W0"])  # exclude_from_ddp broadcast rank 0's table
    for key in outs[0]:
        assert torch.equal(outs[0][key], outs[1][key]), f"{key} differs between the processes"
    # the same step in one process on the union of both batches (DDP averages the two losses)
    D = Discriminator(ModelConfig.preset("tiny"), num_videos=10).eval()
    D.load_state_dict(ins[0]["state0"])
    dense = torch.optim.Adam(D.dense_parameters(), lr=1e-2)
    sparse = torch.optim.SparseAdam(D.W.parameters(), lr=1e-2)
    loss = 0
    for r in range(2):
        x, y, idx = ins[r]["x"], ins[r]["y"], ins[r]["idx"]
        loss = loss + discriminator_hinge_loss(D(x, y, idx)[0], D(x.flip(-1), y, idx)[0]) / 2
    loss.backward()
    dense.step()
    sparse.step()
    W = outs[0]["W.weight"]
    assert torch.allclose(W, D.W.weight.detach(), atol=1e-6)
    assert torch.equal(W[[0, 2, 3, 5, 7, 8, 9]], ins[0]["W0"][[0, 2, 3, 5, 7, 8, 9]])  # untouched rows
    assert torch.allclose(outs[0]["w0"], D.w0.detach(), atol=1e-6)
