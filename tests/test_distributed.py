"""DDP training (decaylib.distributed): 2 CPU processes give the single-process result."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from decaylib import distributed as DD
from decaylib.train import load_checkpoint

CONFIG = {"cell": "lstm", "hidden_size": 8}


def windows(n=300, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 10, 3)).astype(np.float32)
    Y = (X[:, -3:, :1].sum(axis=2) + 0.1 * rng.normal(size=(n, 3))).astype(np.float32)
    return X, Y


def test_two_processes_match_one(tmp_path):
    X, Y = windows()
    kw = dict(epochs=2, global_batch=64, learning_rate=1e-2, seed=3)  # 300 windows: a short last batch
    ref, _, _ = DD.train_windows(X, Y, CONFIG, **kw)
    out = tmp_path / "ddp.pt"
    state, secs, done = DD.spawn_train(X, Y, CONFIG, world_size=2, out=out, **kw)
    assert done == 2 * 150  # rank 0 saw half of every global batch, both epochs
    for name, value in ref.state_dict().items():
        # same global batch and seed: the same updates up to the order of float additions
        np.testing.assert_allclose(state[name], value.numpy(), rtol=1e-4, atol=1e-5, err_msg=name)
    load_checkpoint(out)  # a complete, loadable checkpoint
    assert out.exists() and not list(tmp_path.glob("*.tmp*"))  # written once, atomically, by rank 0


def test_a_different_seed_differs():
    X, Y = windows()
    a, _, _ = DD.train_windows(X, Y, CONFIG, epochs=1, global_batch=64, seed=1)
    b, _, _ = DD.train_windows(X, Y, CONFIG, epochs=1, global_batch=64, seed=2)
    assert not all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_bad_input():
    X, Y = windows(20)
    with pytest.raises(ValueError, match="global_batch"):
        DD.train_windows(X, Y, CONFIG, global_batch=0)
    with pytest.raises(ValueError, match="windows"):
        DD.train_windows(X[:, :, 0], Y, CONFIG)
    with pytest.raises(ValueError, match="world_size"):
        DD.spawn_train(X, Y, CONFIG, world_size=0)


def test_torchrun_entry_point(tmp_path):
    X, Y = windows(120)
    np.savez(tmp_path / "w.npz", X=X, Y=Y)
    port = DD.free_port()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
           "-m", "decaylib.distributed", "--data", str(tmp_path / "w.npz"), "--out", str(tmp_path / "m.pt"),
           "--epochs", "1", "--global-batch", "32", "--hidden-size", "8"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert res.returncode == 0, res.stderr[-2000:]
    assert "rank 0:" in res.stdout and (tmp_path / "m.pt").exists()
