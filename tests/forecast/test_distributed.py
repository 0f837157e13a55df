"""DDP training (decaylib.forecast.distributed): 2 CPU processes give the single-process result.

Tolerance: the two runs make the same updates from the same global batches, but the all-reduce
adds the two processes' partial gradients (and each process sums its part of the batch) in
another order than one process sums the whole batch. float32 addition is not associative, so
the weights differ by rounding, not bit for bit; after a dozen Adam steps the largest weight
difference is about 1e-6 here (a different seed moves weights by about 1), and the tests allow
rtol 1e-4 / atol 1e-5. One process (world_size=1) is
train_model's loop exactly, so there the tests ask for equality.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from decaylib.forecast import distributed as DD
from decaylib.forecast.checkpoints import load_checkpoint
from decaylib.forecast.models import build_model
from decaylib.forecast.sequences import (
    build_windows,
    fit_feature_stats,
    fit_target_transform,
    split_users,
)
from decaylib.forecast.train import train_model
from tests.panels import random_panel

CONFIG = {"cell": "lstm", "hidden_size": 8}
RTOL, ATOL = 1e-4, 1e-5


def windows(n=257, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 10, 3)).astype(np.float32)
    Y = (X[:, -3:, :1].sum(axis=2) + 0.1 * rng.normal(size=(n, 3))).astype(np.float32)
    users = np.sort(rng.integers(0, 40, size=n))  # windows come ordered by user, as from build_windows
    return X, Y, users


def reference(X, Y, val, *, epochs, global_batch, learning_rate, seed, patience=None):
    """Single-process training: decaylib.forecast.train.train_model with batch_size = the global batch."""
    m = build_model(dict(CONFIG, n_features=X.shape[2], horizon=Y.shape[1]), seed=seed)
    hist = train_model(m, (torch.from_numpy(X), torch.from_numpy(Y)), val, epochs=epochs, batch_size=global_batch,
                       learning_rate=learning_rate, seed=seed, patience=patience, device="cpu", progress=False,
                       num_threads=None)
    return m, hist


def test_user_shards_keep_users_whole_and_balance():
    users = np.repeat([5, 1, 9, 3, 7, 2], [10, 40, 5, 30, 20, 15])
    owner = DD.user_shards(users, 2)
    for u in np.unique(users):
        assert np.unique(owner[users == u]).size == 1  # a user on one rank only
    # contiguous in sorted user order, about half the windows each
    ranks_in_user_order = [owner[users == u][0] for u in np.unique(users)]
    assert ranks_in_user_order == sorted(ranks_in_user_order)
    assert abs(np.sum(owner == 0) - np.sum(owner == 1)) <= 40
    assert np.array_equal(DD.user_shards(users, 1), np.zeros(users.size))
    with pytest.raises(ValueError, match="world_size"):
        DD.user_shards(users, 0)


@pytest.mark.slow
def test_one_process_is_train_model_exactly():
    X, Y, users = windows(120)
    Xv, Yv, _ = windows(40, seed=1)
    kw = dict(epochs=4, global_batch=32, learning_rate=1e-2, seed=5)
    ref, hist = reference(X, Y, (torch.from_numpy(Xv), torch.from_numpy(Yv)), patience=2, **kw)
    r = DD.train_ddp(X, Y, CONFIG, users=users, val=(Xv, Yv), patience=2, **kw)
    for k, v in ref.state_dict().items():
        assert torch.equal(r.model.state_dict()[k], v), k
    assert r.history.val_loss == hist.val_loss and r.history.train_loss == hist.train_loss
    assert r.history.best_epoch == hist.best_epoch


@pytest.mark.slow
def test_two_processes_match_one(tmp_path):
    X, Y, users = windows()  # 257 windows, global batch 64: the last batch has 1 window, one rank owns none of it
    Xv, Yv, vusers = windows(60, seed=1)
    kw = dict(epochs=3, global_batch=64, learning_rate=1e-2, seed=3)
    ref, hist = reference(X, Y, (torch.from_numpy(Xv), torch.from_numpy(Yv)), **kw)
    out = tmp_path / "ddp.pt"
    res = DD.spawn_train(X, Y, CONFIG, world_size=2, out=out, full=True, users=users, val=(Xv, Yv),
                         val_users=vusers, **kw)
    shard0 = int(np.sum(DD.user_shards(users, 2) == 0))
    assert 0 < shard0 < 257 and res["windows_seen"] == 3 * shard0  # rank 0 trained on its users only
    for name, value in ref.state_dict().items():
        np.testing.assert_allclose(res["state"][name], value.numpy(), rtol=RTOL, atol=ATOL, err_msg=name)
    np.testing.assert_allclose(res["history"]["val_loss"], hist.val_loss, rtol=RTOL)
    np.testing.assert_allclose(res["history"]["train_loss"], hist.train_loss, rtol=RTOL)
    model, extra = load_checkpoint(out)  # complete and loadable
    assert extra["world_size"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name != "ddp.pt"]  # written once, atomically, by rank 0


def test_a_different_seed_differs():
    X, Y, _ = windows(100)
    a, _, _ = DD.train_windows(X, Y, CONFIG, epochs=1, global_batch=32, seed=1)
    b, _, _ = DD.train_windows(X, Y, CONFIG, epochs=1, global_batch=32, seed=2)
    assert not all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_bad_input():
    X, Y, users = windows(20)
    with pytest.raises(ValueError, match="global_batch"):
        DD.train_windows(X, Y, CONFIG, global_batch=0)
    with pytest.raises(ValueError, match="windows"):
        DD.train_windows(X[:, :, 0], Y, CONFIG)
    with pytest.raises(ValueError, match="users has 3 entries"):
        DD.train_ddp(X, Y, CONFIG, users=users[:3])
    with pytest.raises(RuntimeError, match="process group"):
        DD.train_ddp(X, Y, CONFIG, world_size=2, global_batch=8)
    with pytest.raises(ValueError, match="world_size"):
        DD.spawn_train(X, Y, CONFIG, world_size=0)


@pytest.mark.slow
def test_torchrun_on_a_panel_matches_train_model(tmp_path):
    panel = random_panel(seed=0, n_users=16)
    panel.to_parquet(tmp_path / "panel.parquet", index=False)
    seq, hor, seed = 7, 3, 4
    # the single-process run that the 2-process torchrun run must reproduce
    train_u, val_u, _ = split_users(panel["user_id"].to_numpy(), val_frac=0.25, test_frac=0.0, seed=seed)
    fs, ts = fit_feature_stats(panel, train_u), fit_target_transform(panel, train_u)
    tr = build_windows(panel, fs, ts, seq_length=seq, horizon=hor, users=train_u)
    va = build_windows(panel, fs, ts, seq_length=seq, horizon=hor, users=val_u)
    ref = build_model(dict(CONFIG, n_features=len(fs.columns), horizon=hor), seed=seed)
    hist = train_model(ref, tr, va, epochs=2, batch_size=128, learning_rate=1e-2, seed=seed, patience=5,
                       device="cpu", progress=False, num_threads=None)

    port = DD.free_port()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
           "-m", "decaylib.forecast.distributed", "--panel", str(tmp_path / "panel.parquet"), "--out", str(tmp_path / "m.pt"),
           "--epochs", "2", "--global-batch", "128", "--learning-rate", "1e-2", "--hidden-size", "8",
           "--seq-length", str(seq), "--horizon", str(hor), "--val-frac", "0.25", "--seed", str(seed),
           "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "rank 0:" in res.stdout and "over 2 process(es)" in res.stdout
    model, extra = load_checkpoint(tmp_path / "m.pt")
    assert extra["world_size"] == 2 and extra["seq_length"] == seq
    assert extra["train_users"] == train_u.tolist()
    for name, value in ref.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[name].numpy(), value.numpy(), rtol=RTOL, atol=ATOL,
                                   err_msg=name)
    np.testing.assert_allclose(extra["val_loss"], hist.val_loss, rtol=RTOL)
