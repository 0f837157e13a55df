"""Benchmark: DDP training with N CPU processes against 1, the same global batch (windows/second).

Both runs go through :func:`decaylib.forecast.distributed.spawn_train` (gloo on localhost), with the same
random windows (users sharded as in training), model, global batch, epochs and seed. Torch
threads per process: ``--threads`` (default 1, decaylib's "auto" choice for hidden sizes <= 128:
small recurrent matmuls run faster on one thread than on two, so giving the single process 2
threads would make DDP look better than it is). Runs alternate (1, N, 1, N, ...), median kept.
Throughput = windows x epochs / wall time of rank 0's training loop (process start-up and
the rendezvous excluded; they are reported separately as ``*_wall_s``). On a 2-core machine
expect little or no gain: each process gets one core, and the gradient all-reduce after every
batch costs time the single process does not pay. The weights of the two runs are compared too.

Usage::

    python benchmarks/bench_ddp.py --nproc 2 --n-samples 20000 --epochs 2 --global-batch 512

Not a test: nothing here fails because a machine is slow.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decaylib.forecast.distributed import spawn_train  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--n-samples", type=int, default=20000)
    ap.add_argument("--n-users", type=int, default=500)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--global-batch", type=int, default=512)
    ap.add_argument("--hidden-size", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (both runs)")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=None, help="write the results as JSON to this path")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.n_samples, 14, 6)).astype(np.float32)
    Y = rng.normal(size=(args.n_samples, 7)).astype(np.float32)
    users = np.sort(rng.integers(0, args.n_users, size=args.n_samples))
    cfg = {"cell": "lstm", "hidden_size": args.hidden_size}
    kw = dict(epochs=args.epochs, global_batch=args.global_batch, seed=0, users=users)
    out = {"machine": platform.processor() or platform.machine(), "cores": os.cpu_count(), "torch": torch.__version__,
           "n_samples": args.n_samples, "epochs": args.epochs, "global_batch": args.global_batch,
           "hidden_size": args.hidden_size, "threads_per_process": args.threads, "repeats": args.repeats}
    states, train_s, wall_s = {}, {1: [], args.nproc: []}, {1: [], args.nproc: []}
    for _ in range(args.repeats):
        for w in (1, args.nproc):
            t0 = time.perf_counter()
            states[w], secs, _ = spawn_train(X, Y, cfg, world_size=w, threads=args.threads, **kw)
            wall_s[w].append(time.perf_counter() - t0)
            train_s[w].append(secs)
    for w in (1, args.nproc):
        secs = statistics.median(train_s[w])
        out[f"{w}proc_wall_s"] = round(statistics.median(wall_s[w]), 2)
        out[f"{w}proc_train_s"] = round(secs, 2)
        out[f"{w}proc_train_s_runs"] = [round(v, 2) for v in train_s[w]]
        out[f"windows_per_s_{w}proc"] = round(args.n_samples * args.epochs / secs)
    out["speedup"] = round(out[f"windows_per_s_{args.nproc}proc"] / out["windows_per_s_1proc"], 2)
    out["max_abs_weight_diff"] = max(float(np.max(np.abs(states[1][k] - states[args.nproc][k]))) for k in states[1])
    print(json.dumps(out, indent=2))
    if args.out:
        p = Path(args.out)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
