"""Training the forecaster on several processes with PyTorch DistributedDataParallel (DDP).

One process per device (``gloo`` on CPU, ``nccl`` on GPUs); every process holds a replica of the
model, DDP averages the gradients after every batch, so all replicas keep identical weights.

How the work is split so that the result is the single-process one
-----------------------------------------------------------------
* **Data sharded by user.** The users are cut, in sorted order, into ``W`` contiguous groups of
  about equal numbers of windows (:func:`user_shards`); a process holds the windows of its own
  users only (all of a user's windows on one process, as in the user split of ``decaylib.forecast.sequences``).
* **The same global batch as one process.** Every process draws the permutation that
  :func:`decaylib.forecast.train.train_model` draws (``torch.Generator().manual_seed(seed)``, one
  ``randperm`` per epoch) over the *global* window positions and cuts it into global batches of
  ``global_batch`` windows. From each global batch a process trains on the windows it owns.
* **Gradients averaged by DDP, loss scaled.** A process's loss is the *sum* of its squared errors
  divided by ``len(global batch) * horizon``, times ``W``; DDP divides the summed gradients by
  ``W``, which leaves exactly the gradient of the mean loss over the global batch, whatever the
  number of windows each process happened to own in it (a process that owns none runs one dummy
  window with weight 0 so that it still joins the all-reduce). Adam, weight decay and gradient
  clipping then see the same gradient on every process as one process would.
* **Validation** is sharded the same way; the per-process sums of the loss are all-reduced, so
  every process takes the same early-stopping decision.

Why not ``torch.utils.data.DistributedSampler``: it gives each process its own shuffled slice
of the data (padded to equal length), so a "global batch" is a different set of windows than
the single-process batch, and the two runs agree only in distribution, not window for window.

Exact equality is not expected: the all-reduce adds the processes' partial gradients, and each
process sums its part of the batch, in another order than one process sums the whole batch;
float32 addition is not associative, so the weights differ by rounding (about 1e-7 relative per
step), which Adam's normalisation can amplify a little over many steps. The tests allow 1e-4.
With ``dropout > 0`` each process draws its own masks (seeded ``seed + rank``), so the match is
then only statistical. With ``W == 1`` the loop is :func:`decaylib.forecast.train.train_model`'s, bit for bit.

Checkpoints are written by rank 0 only, atomically (:func:`decaylib.forecast.checkpoints.save_checkpoint`:
a temporary file in the same folder renamed over the target).

Run it with ``torchrun``::

    torchrun --nproc_per_node=2 -m decaylib.forecast.distributed --panel data/generated/panel.parquet \\
        --out model_ddp.pt --epochs 5 --global-batch 256 --hidden-size 32

(``--panel``: the daily panel; users split into train/validation with ``split_users``, feature and
target transforms fitted on the training users, windows cut per process for its own users), or
``--data windows.npz`` with ``X`` (windows x days x features), ``Y`` (windows x horizon) and
optionally ``user_id`` (one per window). From Python, :func:`spawn_train` starts ``W`` CPU
processes on localhost (used by the tests, ``benchmarks/bench_ddp.py`` and notebook 09).
"""

from __future__ import annotations

import argparse
import gc
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from decaylib.checks import InsufficientDataError
from decaylib.forecast.checkpoints import save_checkpoint
from decaylib.forecast.models import build_model
from decaylib.forecast.sequences import (
    build_windows,
    fit_feature_stats,
    fit_target_transform,
    split_users,
)
from decaylib.forecast.train import EpochProgress, TrainHistory, _loss_fn, run_epochs
from decaylib.runtime import set_seed

__all__ = ['free_port', 'user_shards', 'DDPResult', 'train_ddp', 'train_windows', 'train_panel', 'spawn_train', 'main']


def free_port() -> int:
    """A free TCP port on localhost for the process group's rendezvous.

    Notebook 09.
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pos_int(name, value, minimum=1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def user_shards(user_ids, world_size: int) -> np.ndarray:
    """Rank (0 .. ``world_size - 1``) of each entry: users in sorted order cut into contiguous groups.

    ``user_ids`` has one entry per window (or per panel row); a user's entries all get the same
    rank, and the groups hold about equal numbers of entries (a user goes to the rank its middle
    entry falls in). A rank may get nothing when one user outweighs the rest; training still works.

    Notebook 09.
    """
    world_size = _pos_int("world_size", world_size)
    u = np.asarray(user_ids)
    if u.ndim != 1:
        raise ValueError(f"user_ids must be one-dimensional (one per window), got shape {u.shape}")
    if u.size == 0:
        return np.zeros(0, dtype=np.int64)
    uniq, inv, counts = np.unique(u, return_inverse=True, return_counts=True)
    mid = np.cumsum(counts) - counts / 2.0
    rank_of_user = np.minimum((mid * world_size / u.size).astype(np.int64), world_size - 1)
    return rank_of_user[inv]


@dataclass
class DDPResult:
    """What :func:`train_ddp` returns on every process.

    Attributes
    ----------
    model : nn.Module
        The trained model (unwrapped from DDP, eval mode, on ``device``); identical on every rank.
    history : decaylib.forecast.train.TrainHistory
        Global losses (all ranks' sums reduced), ``n_train``/``n_val`` the global window counts,
        ``samples_per_sec`` the global windows per second.
    seconds : float
        Wall time of the training loop (validation included).
    windows_seen : int
        Training windows this rank processed (its shard x epochs run).
    shard_size : int
        Training windows held by this rank.

    Notebook 09.
    """

    model: nn.Module
    history: object
    seconds: float
    windows_seen: int
    shard_size: int


def _as_float_tensor(a, name) -> torch.Tensor:
    t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a, dtype=np.float32))
    t = t.float()
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def _local_index(owner: np.ndarray, world_size: int) -> np.ndarray:
    """Position of each global window inside its owner's shard (the shards keep global order)."""
    local = np.empty(owner.size, dtype=np.int64)
    for r in range(world_size):  # W is small: a loop over ranks, not over windows
        m = owner == r
        local[m] = np.arange(int(m.sum()))
    return local


def _train_sharded(model, X, Y, owner, Xv, Yv, n_val, *, rank, world_size, epochs, global_batch,
                   learning_rate, weight_decay, loss, grad_clip, seed, patience, min_delta,
                   restore_best, device, progress):
    """The loop. ``X``/``Y``: this rank's windows (global order); ``owner``: rank of every global window."""

    loss_fn = _loss_fn(loss)
    n = int(owner.size)
    H = int(Y.shape[1])
    dev = torch.device(device)
    ddp = world_size > 1
    set_seed(seed + rank)  # dropout masks; rank 0 of 1 seeds like train_model
    gen = torch.Generator().manual_seed(int(seed))  # the same batch order on every rank
    owner_t = torch.as_tensor(owner, dtype=torch.int64).to(dev)
    local_t = torch.as_tensor(_local_index(owner, world_size)).to(dev)
    X, Y = X.to(dev), Y.to(dev)
    if Xv is not None:
        Xv, Yv = Xv.to(dev), Yv.to(dev)
    dummy = torch.zeros((1, *X.shape[1:]), device=dev)
    model.to(dev)
    if len(X):  # a shape mismatch fails clearly (eval mode: consumes no random numbers)
        model.eval()
        with torch.no_grad():
            out = model(X[:2])
        if tuple(out.shape[1:]) != (H,):
            raise ValueError(f"model output shape {tuple(out.shape[1:])} does not match targets [n, {H}]")
    net = model
    if ddp:
        ids = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else None
        net = DistributedDataParallel(model, device_ids=ids)
    opt = torch.optim.Adam(net.parameters(), lr=learning_rate, weight_decay=float(weight_decay))
    hist = TrainHistory(device=str(dev), n_train=n, n_val=int(n_val or 0))
    seen = 0

    def train_epoch() -> float:
        nonlocal seen
        net.train()
        perm = torch.randperm(n, generator=gen).to(dev, non_blocking=True)
        total = torch.zeros((), device=dev)
        for start in range(0, n, global_batch):
            batch = perm[start : start + global_batch]
            mine = local_t[batch[owner_t[batch] == rank]]
            opt.zero_grad(set_to_none=True)
            if not ddp:  # exactly train_model's step
                batch_loss = loss_fn(net(X[mine]), Y[mine])
                batch_loss.backward()
                total += batch_loss.detach() * mine.shape[0]
            elif mine.numel():
                part = loss_fn(net(X.index_select(0, mine)), Y.index_select(0, mine), reduction="sum")
                (part * (world_size / (batch.shape[0] * H))).backward()
                total += part.detach() / H
            else:  # owns nothing of this batch: one dummy window, weight 0, joins the all-reduce
                (net(dummy).sum() * 0.0).backward()
            if grad_clip is not None:
                nn.utils.clip_grad_norm_(net.parameters(), grad_clip)
            opt.step()
            seen += int(mine.numel())
        if ddp:
            dist.all_reduce(total)
        return float(total.item()) / n

    def val_loss() -> float:
        net.eval()
        v = torch.zeros((), device=dev)
        with torch.no_grad():
            for s in range(0, len(Xv), 1024):
                v += loss_fn(model(Xv[s : s + 1024]), Yv[s : s + 1024], reduction="sum")
        if ddp:
            dist.all_reduce(v)
        return float(v.item()) / (n_val * H)

    t_start = time.perf_counter()
    try:
        run_epochs(model, hist, train_epoch, val_loss if Xv is not None else None, epochs=epochs, patience=patience,
                   min_delta=min_delta, restore_best=restore_best,
                   bar=EpochProgress(epochs, f"DDP x{world_size}", enabled=bool(progress and rank == 0)))
    finally:
        if ddp:
            # DDP's reducer holds the process group and hooks on the parameters, in a reference
            # cycle: free it now, while the group is alive, not at interpreter exit (where gloo's
            # threads can meet a half-torn-down interpreter and abort the process).
            del net, opt, train_epoch, val_loss
            gc.collect()
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)
    return hist, time.perf_counter() - t_start, seen


def _check_options(global_batch, epochs, world_size, rank, patience, grad_clip):
    world_size = _pos_int("world_size", world_size)
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or not 0 <= rank < world_size:
        raise ValueError(f"rank must be an integer in [0, {world_size}), got {rank!r}")
    if isinstance(global_batch, bool) or not isinstance(global_batch, (int, np.integer)) or global_batch < world_size:
        raise ValueError(f"global_batch must be an integer >= the number of processes ({world_size}), "
                         f"got {global_batch!r}")
    _pos_int("epochs", epochs)
    if patience is not None:
        _pos_int("patience", patience)
    if grad_clip is not None and not (isinstance(grad_clip, (int, float)) and grad_clip > 0):
        raise ValueError(f"grad_clip must be a number > 0 or None, got {grad_clip!r}")
    if world_size > 1 and not (dist.is_available() and dist.is_initialized()):
        raise RuntimeError(f"world_size={world_size} needs an initialized process group "
                           "(run under torchrun, or use spawn_train)")
    if world_size > 1 and dist.get_world_size() != world_size:
        raise ValueError(f"world_size={world_size} but the process group has {dist.get_world_size()} processes")


def _shape_check(X, Y, name):
    if X.dim() != 3 or Y.dim() != 2 or X.shape[0] != Y.shape[0]:
        raise ValueError(f"{name}: X must be (windows, days, features) and Y (windows, horizon) with as many "
                         f"windows; got {tuple(X.shape)} and {tuple(Y.shape)}")


def _model_for(config_or_model, X, Y, seed):
    if isinstance(config_or_model, nn.Module):
        return config_or_model
    if not isinstance(config_or_model, dict):
        raise TypeError(f"config must be a model config dict or an nn.Module, got {type(config_or_model).__name__}")
    return build_model(dict(config_or_model, n_features=int(X.shape[2]), horizon=int(Y.shape[1])), seed=seed)


def train_ddp(X, Y, config, *, users=None, val=None, val_users=None, epochs: int = 3, global_batch: int = 256,
              learning_rate: float = 1e-3, weight_decay: float = 0.0, loss: str = "mse",
              grad_clip: float | None = None, seed: int = 0, patience: int | None = None, min_delta: float = 0.0,
              restore_best: bool = True, rank: int = 0, world_size: int = 1, device: str = "cpu",
              progress: bool = False) -> DDPResult:
    """Train on the windows ``X``, ``Y`` with DDP over ``world_size`` processes (1: one process).

    Call it in every process of an initialized process group with the same arguments (each
    process keeps only its users' windows, :func:`user_shards`), or alone with ``world_size=1``,
    which is :func:`decaylib.forecast.train.train_model` with ``batch_size=global_batch`` exactly.

    Parameters
    ----------
    X, Y : array or tensor
        All training windows ``(n, days, features)`` and scaled targets ``(n, horizon)``.
    config : dict or nn.Module
        Model config without ``n_features``/``horizon`` (taken from the data; initial weights
        seeded by ``seed``, the same on every rank), or a ready model (the same on every rank).
    users, val_users : array-like, optional
        The user of each training / validation window; None: contiguous equal blocks of windows.
    val : (Xv, Yv), optional
        Validation windows: loss per epoch, early stopping with ``patience``, best weights restored.
    epochs, global_batch, learning_rate, weight_decay, loss, grad_clip, seed, patience, min_delta, restore_best :
        As in :func:`decaylib.forecast.train.train_model` (``global_batch`` is its ``batch_size``: the
        windows of one update, summed over all processes).
    rank, world_size : int
        This process and the number of processes.
    device : str
        ``"cpu"`` or ``"cuda:<local rank>"``.

    Notebook 09.
    """
    _check_options(global_batch, epochs, world_size, rank, patience, grad_clip)
    X = _as_float_tensor(X, "X")
    Y = _as_float_tensor(Y, "Y")
    _shape_check(X, Y, "train")
    if X.shape[0] == 0:
        raise ValueError("no training windows")
    owner = user_shards(np.arange(X.shape[0]) if users is None else users, world_size)
    if owner.size != X.shape[0]:
        raise ValueError(f"users has {owner.size} entries but there are {X.shape[0]} windows")
    mine = torch.from_numpy(np.flatnonzero(owner == rank))
    model = _model_for(config, X, Y, seed)
    Xv = Yv = None
    n_val = 0
    if val is not None:
        if not (isinstance(val, (tuple, list)) and len(val) == 2):
            raise TypeError("val must be a pair (Xv, Yv)")
        Xv, Yv = _as_float_tensor(val[0], "val X"), _as_float_tensor(val[1], "val Y")
        _shape_check(Xv, Yv, "val")
        n_val = int(Xv.shape[0])
        if n_val == 0:
            raise ValueError("val has no windows")
        vowner = user_shards(np.arange(n_val) if val_users is None else val_users, world_size)
        if vowner.size != n_val:
            raise ValueError(f"val_users has {vowner.size} entries but there are {n_val} validation windows")
        vmine = torch.from_numpy(np.flatnonzero(vowner == rank))
        Xv, Yv = Xv.index_select(0, vmine), Yv.index_select(0, vmine)
    Xl, Yl = (X, Y) if world_size == 1 else (X.index_select(0, mine), Y.index_select(0, mine))
    hist, secs, seen = _train_sharded(
        model, Xl, Yl, owner, Xv, Yv, n_val, rank=rank, world_size=world_size, epochs=epochs,
        global_batch=int(global_batch), learning_rate=learning_rate, weight_decay=weight_decay, loss=loss,
        grad_clip=grad_clip, seed=int(seed), patience=patience, min_delta=min_delta, restore_best=restore_best,
        device=device, progress=progress)
    return DDPResult(model, hist, secs, seen, int(mine.numel()))


def train_windows(X, Y, config: dict, *, epochs: int = 3, global_batch: int = 256, learning_rate: float = 1e-3,
                  seed: int = 0, rank: int = 0, world_size: int = 1, device: str = "cpu", **kw):
    """:func:`train_ddp` returning ``(model, seconds, windows this rank processed)``.

    Notebook 09.
    """
    r = train_ddp(X, Y, config, epochs=epochs, global_batch=global_batch, learning_rate=learning_rate, seed=seed,
                  rank=rank, world_size=world_size, device=device, **kw)
    return r.model, r.seconds, r.windows_seen


# --------------------------------------------------------------------------------------------
# from a panel: every process cuts the windows of its own users only
# --------------------------------------------------------------------------------------------
def _gather_counts(n_local: int, world_size: int, device) -> list[int]:
    if world_size == 1:
        return [n_local]
    t = torch.tensor([n_local], dtype=torch.int64, device=device)
    out = [torch.zeros_like(t) for _ in range(world_size)]
    dist.all_gather(out, t)
    return [int(o.item()) for o in out]


def _shard_windows(panel, fstats, tstats, users, rank, world_size, seq_length, horizon, device, name):
    """This rank's windows of ``users`` (contiguous user groups), and the rank of every global window."""

    rows_user = panel["user_id"].to_numpy()
    rows_user = rows_user[np.isin(rows_user, users)]
    owner_rows = user_shards(rows_user, world_size)  # weight users by their panel rows
    mine_users = np.unique(rows_user[owner_rows == rank])
    Xl = Yl = None
    if mine_users.size:
        try:
            w = build_windows(panel, fstats, tstats, seq_length=seq_length, horizon=horizon, users=mine_users,
                              name=f"the {mine_users.size} {name} users of rank {rank}")
            Xl, Yl = w.tensors
        except InsufficientDataError:  # this rank's users are all too short: an empty shard
            pass
    if Xl is None:
        Xl = torch.zeros((0, seq_length, len(fstats.columns)))
        Yl = torch.zeros((0, horizon))
    counts = _gather_counts(int(Xl.shape[0]), world_size, device)
    if sum(counts) == 0:
        raise ValueError(f"no {name} window: every pair is shorter than seq_length + horizon = {seq_length + horizon}")
    # windows come ordered by (user, category, origin) and the groups are contiguous in user order,
    # so the shards laid end to end in rank order are the single-process window order
    return Xl, Yl, np.repeat(np.arange(world_size), counts)


def train_panel(panel, config: dict, *, val_frac: float = 0.15, seq_length: int = 14, horizon: int = 7,
                epochs: int = 5, global_batch: int = 256, learning_rate: float = 1e-3, weight_decay: float = 0.0,
                loss: str = "mse", grad_clip: float | None = None, seed: int = 0, patience: int | None = 5,
                rank: int = 0, world_size: int = 1, device: str = "cpu", out=None,
                progress: bool = False) -> DDPResult:
    """Train from a daily panel: users split, transforms fitted on training users, windows cut per rank.

    Users are split with :func:`decaylib.forecast.sequences.split_users` (``val_frac``, no test part,
    ``seed``); every rank fits the feature and target transforms on all training users (the same
    numbers everywhere) and cuts the windows of its own users only. The global window order is
    that of ``build_windows(panel, ..., users=train_users)``, so the run equals
    :func:`decaylib.forecast.train.train_model` on those windows with ``batch_size=global_batch`` (up to
    the order of additions). ``out``: checkpoint written by rank 0 only, atomically, with the
    transforms (``extra`` as in notebook 03, plus ``world_size`` and the users of each split).
    """

    _check_options(global_batch, epochs, world_size, rank, patience, grad_clip)
    train_u, val_u, _ = split_users(panel["user_id"].to_numpy(), val_frac=val_frac, test_frac=0.0, seed=seed)
    fstats = fit_feature_stats(panel, train_u)
    tstats = fit_target_transform(panel, train_u)
    dev = torch.device(device)
    Xl, Yl, owner = _shard_windows(panel, fstats, tstats, train_u, rank, world_size, seq_length, horizon, dev,
                                   "training")
    Xv = Yv = None
    n_val = 0
    if val_u.size:
        Xv, Yv, vowner = _shard_windows(panel, fstats, tstats, val_u, rank, world_size, seq_length, horizon, dev,
                                        "validation")
        n_val = int(vowner.size)
    model = build_model(dict(config, n_features=len(fstats.columns), horizon=horizon), seed=seed)
    hist, secs, seen = _train_sharded(
        model, Xl, Yl, owner, Xv, Yv, n_val, rank=rank, world_size=world_size, epochs=epochs,
        global_batch=int(global_batch), learning_rate=learning_rate, weight_decay=weight_decay, loss=loss,
        grad_clip=grad_clip, seed=int(seed), patience=patience if Xv is not None else None, min_delta=0.0,
        restore_best=True, device=device, progress=progress)
    if out is not None and rank == 0:

        extra = {"feature_stats": fstats, "target_transform": tstats, "seq_length": seq_length, "horizon": horizon,
                 "world_size": world_size, "global_batch": int(global_batch), "epochs_run": hist.epochs_run,
                 "best_epoch": hist.best_epoch, "val_loss": hist.val_loss, "train_users": train_u, "val_users": val_u}
        save_checkpoint(out, model, extra)
    if world_size > 1:
        dist.barrier()  # nobody reads the checkpoint before rank 0 has renamed it into place
    return DDPResult(model, hist, secs, seen, int(Xl.shape[0]))


# --------------------------------------------------------------------------------------------
# processes on this machine (tests, benchmark, notebook)
# --------------------------------------------------------------------------------------------
def _worker(rank, world_size, port, X, Y, config, kw, out, queue, threads):
    torch.set_num_threads(threads or max(1, (os.cpu_count() or 1) // world_size))
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    try:
        r = train_ddp(X, Y, config, rank=rank, world_size=world_size, **kw)
        if rank == 0:
            if out is not None:

                keep = {k: v for k, v in kw.items() if k in ("epochs", "global_batch", "learning_rate", "seed")}
                save_checkpoint(out, r.model, {"world_size": world_size, **keep})
            queue.put(("ok", {k: v.detach().cpu().numpy() for k, v in r.model.state_dict().items()}, r.seconds,
                       r.windows_seen, r.history.to_frame().to_dict("list")))
        dist.barrier()
        del r
        gc.collect()
    except Exception as err:  # report it to the parent in one line instead of a hung group
        queue.put(("error", f"rank {rank}: {type(err).__name__}: {err}", 0.0, 0, None))
        raise
    finally:
        dist.destroy_process_group()
    # Done and reported: leave without interpreter finalization, where objects that gloo's C++
    # threads still reference would be torn down in arbitrary order ("terminate called without an
    # active exception", exit code -6, seen once in CI after a successful run).
    queue.close()
    queue.join_thread()  # the result is in the pipe before the process goes
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def spawn_train(X, Y, config: dict, *, world_size: int = 2, out=None, full: bool = False, timeout: float = 600,
                threads: int | None = None, **kw):
    """Train with ``world_size`` CPU processes (gloo on localhost, a free port); rank 0's result.

    Returns ``(state_dict as NumPy arrays, seconds, windows processed by rank 0)``, or with
    ``full=True`` a dict with those as ``state``, ``seconds``, ``windows_seen`` plus ``history``
    (:meth:`TrainHistory.to_frame` as a dict of lists). ``out``: a checkpoint path written by
    rank 0 only. ``threads``: torch threads per process (default: cores // ``world_size``).
    ``**kw`` go to :func:`train_ddp` (``users``, ``val``, ``val_users``, ``epochs``, ...).

    Notebook 09.
    """
    world_size = _pos_int("world_size", world_size)
    if threads is not None:
        threads = _pos_int("threads", threads)
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = free_port()
    procs = [ctx.Process(target=_worker, args=(r, world_size, port, X, Y, config, kw, out, queue, threads))
             for r in range(world_size)]
    for p in procs:
        p.start()
    try:
        status, payload, secs, done, history = queue.get(timeout=timeout)
    finally:
        for p in procs:
            p.join(timeout=60)
        for p in procs:  # only our own children, by object
            if p.is_alive():
                p.terminate()
    if status != "ok":
        raise RuntimeError(f"distributed training failed: {payload}")
    bad = [p.exitcode for p in procs if p.exitcode not in (0, None)]
    if bad:
        raise RuntimeError(f"distributed training: a process exited with code {bad[0]}")
    if full:
        return {"state": payload, "seconds": secs, "windows_seen": done, "history": history}
    return payload, secs, done


# --------------------------------------------------------------------------------------------
# torchrun entry point
# --------------------------------------------------------------------------------------------
def main(argv=None) -> None:
    """``torchrun --nproc_per_node=N -m decaylib.forecast.distributed ...``: rank 0 writes the checkpoint.

    Notebooks 03 and 03b.
    """
    ap = argparse.ArgumentParser(description="DDP training of the decaylib forecaster (run under torchrun)")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--panel", help="daily panel (Parquet); users split into train/validation")
    src.add_argument("--data", help=".npz with X (windows, days, features), Y (windows, horizon), optional user_id")
    ap.add_argument("--out", required=True, help="checkpoint path (written by rank 0, atomically)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--global-batch", type=int, default=256, help="windows per update, over all processes")
    ap.add_argument("--learning-rate", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    ap.add_argument("--hidden-size", type=int, default=32)
    ap.add_argument("--num-layers", type=int, default=1)
    ap.add_argument("--seq-length", type=int, default=14)
    ap.add_argument("--horizon", type=int, default=7)
    ap.add_argument("--val-frac", type=float, default=0.15)
    ap.add_argument("--patience", type=int, default=5)
    ap.add_argument("--device", default="auto", help="auto (cuda:<local rank> if a GPU is there, else cpu), cpu or cuda")
    ap.add_argument("--threads", type=int, default=None, help="torch threads per process (default: cores / processes)")
    args = ap.parse_args(argv)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    local = int(os.environ.get("LOCAL_RANK", 0))
    cuda = args.device in ("auto", "cuda") and torch.cuda.is_available()
    if args.device == "cuda" and not cuda:
        raise SystemExit("--device cuda: no CUDA GPU is available")
    device = f"cuda:{local}" if cuda else "cpu"
    if cuda:
        torch.cuda.set_device(local)
    else:
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", world))
        torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // local_world))
    if world > 1:
        dist.init_process_group("nccl" if cuda else "gloo")
    config = {"cell": args.cell, "hidden_size": args.hidden_size, "num_layers": args.num_layers}
    try:
        if args.panel:
            import pandas as pd

            panel = pd.read_parquet(args.panel)
            r = train_panel(panel, config, val_frac=args.val_frac, seq_length=args.seq_length, horizon=args.horizon,
                            epochs=args.epochs, global_batch=args.global_batch, learning_rate=args.learning_rate,
                            seed=args.seed, patience=args.patience, rank=rank, world_size=world, device=device,
                            out=args.out, progress=True)
        else:
            data = np.load(Path(args.data))
            users = data["user_id"] if "user_id" in data.files else None
            r = train_ddp(data["X"], data["Y"], config, users=users, epochs=args.epochs,
                          global_batch=args.global_batch, learning_rate=args.learning_rate, seed=args.seed,
                          rank=rank, world_size=world, device=device)
            if rank == 0:

                save_checkpoint(args.out, r.model, {"world_size": world, "epochs": args.epochs,
                                                    "global_batch": args.global_batch})
            if world > 1:
                dist.barrier()
        if rank == 0:
            h = r.history
            val = f", best val loss {h.best_val_loss:.5f} (epoch {h.best_epoch})" if h.val_loss else ""
            print(f"rank 0: {r.windows_seen:,} of {h.n_train * h.epochs_run:,} windows in {r.seconds:.1f} s "
                  f"({h.n_train * h.epochs_run / r.seconds:,.0f} windows/s over {world} process(es), {device}); "
                  f"train loss {h.train_loss[-1]:.5f}{val}; checkpoint {args.out}")
    finally:
        if world > 1:
            dist.destroy_process_group()

if __name__ == "__main__":
    main()
