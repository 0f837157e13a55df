"""Training the forecaster on several processes with PyTorch DistributedDataParallel (DDP).

One process per device (``gloo`` on CPU, ``nccl`` on GPUs). Every process holds the training
windows; the *global* batch of ``global_batch`` windows (the same seeded permutation on every
process, epoch by epoch) is split between the processes: rank ``r`` takes positions
``r, r + W, r + 2W, ...`` of it, which is how the work and the data each process touches are
sharded. Each rank's loss is the *sum* of its squared errors divided by the global batch size,
times ``W``, so that DDP's averaging of the gradients gives exactly the gradient of the mean loss
over the global batch: the same update as one process with the same global batch and seed, up to
the order of floating-point additions (the all-reduce sums the ranks' partial gradients in another
order than one process sums its batch, so weights agree to about 1e-6, not bit for bit).
Checkpoints are written by rank 0 only, atomically (:func:`decaylib.train.save_checkpoint`).

Run it with ``torchrun``::

    torchrun --nproc_per_node=2 -m decaylib.distributed --data windows.npz --out model.pt \\
        --epochs 5 --global-batch 256 --hidden-size 32

where ``windows.npz`` holds ``X`` (windows x days x features) and ``Y`` (windows x horizon), or
from Python with :func:`spawn_train` (used by the tests and ``benchmarks/bench_ddp.py``).
"""

from __future__ import annotations

import argparse
import os
import socket
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from .models import build_model

__all__ = ["train_windows", "spawn_train", "free_port", "main"]


def free_port() -> int:
    """A free TCP port on localhost for the process group's rendezvous."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _check(X, Y, global_batch, epochs, world):
    if X.ndim != 3 or Y.ndim != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(f"X must be (windows, days, features) and Y (windows, horizon) with as many windows; "
                         f"got {tuple(X.shape)} and {tuple(Y.shape)}")
    if X.shape[0] == 0:
        raise ValueError("no training windows")
    if not isinstance(global_batch, int) or global_batch < world:
        raise ValueError(f"global_batch must be an integer >= the number of processes ({world}), got {global_batch!r}")
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")


def train_windows(X, Y, config: dict, *, epochs: int = 3, global_batch: int = 256, learning_rate: float = 1e-3,
                  seed: int = 0, rank: int = 0, world_size: int = 1, device: str = "cpu"):
    """Train a forecaster on windows with the global-batch rule above; DDP when ``world_size > 1``.

    Call it in every process of an initialized process group (``world_size > 1``), or alone
    (``world_size == 1``: plain training, the reference). Returns ``(model, seconds, samples)``:
    the trained (unwrapped) model, the wall time of the loop and the windows this rank processed.
    """
    X = torch.as_tensor(np.asarray(X, dtype=np.float32))
    Y = torch.as_tensor(np.asarray(Y, dtype=np.float32))
    _check(X, Y, global_batch, epochs, world_size)
    X, Y = X.to(device), Y.to(device)
    model = build_model(dict(config, n_features=int(X.shape[2]), horizon=int(Y.shape[1])), seed=seed).to(device)
    net = model
    if world_size > 1:
        net = DistributedDataParallel(model, device_ids=[device] if str(device).startswith("cuda") else None)
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate)
    n = X.shape[0]
    done = 0
    t0 = time.perf_counter()
    net.train()
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch)).to(device)
        for start in range(0, n, global_batch):
            batch = perm[start:start + global_batch]
            mine = batch[rank::world_size]
            opt.zero_grad(set_to_none=True)
            if len(mine):
                err = net(X[mine]) - Y[mine]
                loss = (err * err).sum() * (world_size / (len(batch) * Y.shape[1]))
            else:  # a short last batch can leave a rank empty: it still joins the all-reduce
                loss = sum(p.sum() * 0.0 for p in net.parameters())
            loss.backward()
            opt.step()
            done += len(mine)
    if str(device).startswith("cuda"):
        torch.cuda.synchronize()
    return model, time.perf_counter() - t0, done


def _worker(rank, world_size, port, X, Y, config, kw, out, queue):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // world_size))
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        model, secs, done = train_windows(X, Y, config, rank=rank, world_size=world_size, **kw)
        if rank == 0:
            if out is not None:
                from .train import save_checkpoint

                save_checkpoint(out, model, {"world_size": world_size, **{k: v for k, v in kw.items() if k != "device"}})
            queue.put(("ok", {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}, secs, done))
        dist.barrier()
    except Exception as err:  # report it to the parent in one line instead of a hung group
        queue.put(("error", f"rank {rank}: {type(err).__name__}: {err}", 0.0, 0))
        raise
    finally:
        dist.destroy_process_group()


def spawn_train(X, Y, config: dict, *, world_size: int = 2, out=None, **kw):
    """Train with ``world_size`` CPU processes (gloo on localhost) and return rank 0's result.

    Returns ``(state_dict as NumPy arrays, seconds, windows processed by rank 0)``; ``out``: a
    checkpoint path written by rank 0 only. ``**kw`` go to :func:`train_windows`.
    """
    if not isinstance(world_size, int) or world_size < 1:
        raise ValueError(f"world_size must be a positive integer, got {world_size!r}")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_worker, args=(r, world_size, port, X, Y, config, kw, out, queue)) for r in range(world_size)]
    for p in procs:
        p.start()
    status, payload, secs, done = queue.get(timeout=600)
    for p in procs:
        p.join(timeout=120)
    if status != "ok":
        raise RuntimeError(f"distributed training failed: {payload}")
    bad = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if bad:
        raise RuntimeError(f"distributed training: a process exited with code {bad[0]}")
    return payload, secs, done


def main(argv=None) -> None:
    """``torchrun`` entry point: train on an ``.npz`` of windows, rank 0 writes the checkpoint."""
    ap = argparse.ArgumentParser(description="DDP training of the decaylib forecaster (run under torchrun)")
    ap.add_argument("--data", required=True, help=".npz with X (windows, days, features) and Y (windows, horizon)")
    ap.add_argument("--out", required=True, help="checkpoint path (written by rank 0)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--global-batch", type=int, default=256)
    ap.add_argument("--learning-rate", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    ap.add_argument("--hidden-size", type=int, default=32)
    args = ap.parse_args(argv)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    cuda = torch.cuda.is_available()
    device = f"cuda:{local}" if cuda else "cpu"
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo")
    data = np.load(Path(args.data))
    model, secs, done = train_windows(data["X"], data["Y"], {"cell": args.cell, "hidden_size": args.hidden_size},
                                      epochs=args.epochs, global_batch=args.global_batch,
                                      learning_rate=args.learning_rate, seed=args.seed, rank=rank, world_size=world,
                                      device=device)
    if rank == 0:
        from .train import save_checkpoint

        save_checkpoint(args.out, model, {"world_size": world, "epochs": args.epochs, "global_batch": args.global_batch})
        print(f"rank 0: {done:,} windows in {secs:.1f} s ({done * world / secs:,.0f} windows/s over {world} process(es)); "
              f"checkpoint {args.out}")
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
