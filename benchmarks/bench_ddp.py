"""Benchmark: DDP training with N CPU processes against 1, the same global batch (windows/second).

Both runs go through :func:`decaylib.distributed.spawn_train` (so process start-up is paid by
both), with the same random windows, model, global batch, epochs and seed. Throughput = windows x
epochs / wall time of the training loop of rank 0. On a 2-core machine expect little or no gain:
each process gets one core, and the gradient all-reduce after every batch costs time the single
process does not pay.

Usage::

    python benchmarks/bench_ddp.py --nproc 2 --n-samples 20000 --epochs 2 --global-batch 512

Not a test: nothing here fails because a machine is slow.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decaylib.distributed import spawn_train  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--n-samples", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--global-batch", type=int, default=512)
    ap.add_argument("--hidden-size", type=int, default=32)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(args.n_samples, 14, 6)).astype(np.float32)
    Y = rng.normal(size=(args.n_samples, 7)).astype(np.float32)
    cfg = {"cell": "lstm", "hidden_size": args.hidden_size}
    kw = dict(epochs=args.epochs, global_batch=args.global_batch, seed=0)
    out = {"n_samples": args.n_samples, "epochs": args.epochs, "global_batch": args.global_batch}
    for w in (1, args.nproc):
        _, secs, _ = spawn_train(X, Y, cfg, world_size=w, **kw)
        out[f"windows_per_s_{w}proc"] = round(args.n_samples * args.epochs / secs)
    out["speedup"] = round(out[f"windows_per_s_{args.nproc}proc"] / out["windows_per_s_1proc"], 2)
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
