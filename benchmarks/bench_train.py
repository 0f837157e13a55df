"""Throughput of decaylib's training loop against a plain hand-written PyTorch loop.

Both train the same model architecture (same initial weights) on the same random windows,
already on the device, with the same batch size, number of epochs, Adam and MSE loss, and the
same number of CPU threads. Throughput = training windows x epochs / wall time of the whole call.
Runs alternate (plain, decaylib, plain, decaylib, ...) and the median of ``--repeats`` is kept.

Usage::

    python benchmarks/bench_train.py --device cpu --n-samples 40000 --epochs 3 --out bench.json
    python benchmarks/bench_train.py --device cuda --batch-size 4096 --n-samples 400000 --epochs 3  # on a GPU

Several processes (DDP) against one: ``benchmarks/bench_ddp.py``.

A benchmark, not a test: it never fails because the machine is slow; the target is a
decaylib/plain ratio >= 0.9.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decaylib.forecast.models import build_model  # noqa: E402
from decaylib.forecast.train import torch_threads, train_model  # noqa: E402
from decaylib.runtime import resolve_device  # noqa: E402


def plain_loop(model, X, Y, epochs: int, batch_size: int, lr: float, seed: int) -> None:
    """The hand-written baseline: seeded permutation, index slicing, Adam + MSE, nothing else."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    n = X.shape[0]
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen).to(X.device)
        for start in range(0, n, batch_size):
            idx = perm[start : start + batch_size]
            opt.zero_grad(set_to_none=True)
            loss = F.mse_loss(model(X[idx]), Y[idx])
            loss.backward()
            opt.step()
    if X.device.type == "cuda":
        torch.cuda.synchronize()


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=256)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--n-samples", type=int, default=40000)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--cell", default="lstm", choices=["lstm", "gru", "rnn"])
    ap.add_argument("--hidden-size", type=int, default=32)
    ap.add_argument("--num-layers", type=int, default=1)
    ap.add_argument("--seq-length", type=int, default=14)
    ap.add_argument("--horizon", type=int, default=7)
    ap.add_argument("--n-features", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", default="auto", help="'auto' (decaylib's choice), or an int, for BOTH loops")
    ap.add_argument("--out", default=None, help="write the results as JSON to this path")
    args = ap.parse_args(argv)

    device = resolve_device(args.device)
    config = {
        "cell": args.cell,
        "n_features": args.n_features,
        "hidden_size": args.hidden_size,
        "num_layers": args.num_layers,
        "dropout": 0.0,
        "horizon": args.horizon,
    }
    threads = args.threads if args.threads == "auto" else int(args.threads)
    g = torch.Generator().manual_seed(0)
    X = torch.randn(args.n_samples, args.seq_length, args.n_features, generator=g).to(device)
    Y = torch.randn(args.n_samples, args.horizon, generator=g).to(device)
    work = args.n_samples * args.epochs

    plain_sps, lib_sps = [], []
    with torch_threads(threads, device=device, model=build_model(config)):
        n_threads = torch.get_num_threads()
        # warm-up (allocator, kernels, oneDNN primitives) for both paths
        plain_loop(build_model(config, seed=0).to(device), X[:2048], Y[:2048], 1, args.batch_size, 1e-3, 0)
        train_model(build_model(config, seed=0), (X[:2048], Y[:2048]), epochs=1, batch_size=args.batch_size,
                    device=device, progress=False, num_threads=None)
        for _ in range(args.repeats):
            m = build_model(config, seed=0).to(device)
            _sync(device)
            t0 = time.perf_counter()
            plain_loop(m, X, Y, args.epochs, args.batch_size, 1e-3, 0)
            plain_sps.append(work / (time.perf_counter() - t0))

            m = build_model(config, seed=0)
            _sync(device)
            t0 = time.perf_counter()
            train_model(m, (X, Y), epochs=args.epochs, batch_size=args.batch_size, learning_rate=1e-3,
                        seed=0, device=device, progress=False, num_threads=None)
            _sync(device)
            lib_sps.append(work / (time.perf_counter() - t0))

    plain = statistics.median(plain_sps)
    lib = statistics.median(lib_sps)
    result = {
        "device": device,
        "device_name": (
            torch.cuda.get_device_name() if device.startswith("cuda") else platform.processor() or platform.machine()
        ),
        "torch": torch.__version__,
        "threads": n_threads,
        "config": config,
        "batch_size": args.batch_size,
        "n_samples": args.n_samples,
        "epochs": args.epochs,
        "repeats": args.repeats,
        "plain_samples_per_sec": plain,
        "decaylib_samples_per_sec": lib,
        "ratio": lib / plain,
        "plain_runs": plain_sps,
        "decaylib_runs": lib_sps,
    }
    print(f"device={device} threads={result['threads']} cell={args.cell} hidden={args.hidden_size} "
          f"layers={args.num_layers} batch={args.batch_size} n={args.n_samples} epochs={args.epochs}")
    print(f"plain loop    : {plain:12,.0f} samples/s  (runs: {', '.join(f'{v:,.0f}' for v in plain_sps)})")
    print(f"decaylib loop : {lib:12,.0f} samples/s  (runs: {', '.join(f'{v:,.0f}' for v in lib_sps)})")
    print(f"ratio decaylib/plain = {lib / plain:.3f}  (target >= 0.9)")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2))
        print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
