"""Benchmark: λ by Poisson maximum likelihood for many pairs at once.

Simulates ``--pairs`` decay phases of ``--days`` days (Poisson counts, known λ), fits them all
with :func:`decaylib.decay.rate.fit_poisson_mle` (vectorized Newton, no per-pair loop) and prints the
wall time, pairs per second, Newton iterations and, as a sanity check, the median error in
units of the Cramér-Rao bound (≈ 0.674 for an efficient estimator).

Usage::

    python benchmarks/bench_decay.py                  # 100,000 pairs x 30 days
    python benchmarks/bench_decay.py --pairs 20000 --out data/generated/bench_decay.json

Not a test: nothing here fails because a machine is slow.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decaylib.decay import rate as D  # noqa: E402


def make_table(n_pairs: int, n_days: int, seed: int, outage_share: float = 0.03) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    lam = np.log(2.0) / rng.uniform(3.0, 60.0, n_pairs)
    log_a = np.log(rng.lognormal(np.log(8.0), 0.6, n_pairs))
    g = np.repeat(np.arange(n_pairs, dtype=np.int64), n_days)
    t = np.tile(np.arange(n_days, dtype=np.float64), n_pairs)
    mu = np.exp(log_a[g] - lam[g] * t)
    observed = rng.random(g.size) >= outage_share
    counts = np.where(observed, rng.poisson(mu), 0).astype(np.float64)
    df = pd.DataFrame(
        {"user_id": g // 8, "category": g % 8, "t": t, "count": counts, "observed": observed, "expected_count": mu}
    )
    return df, lam


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="timed fits; the best is reported")
    ap.add_argument("--out", type=str, default=None, help="optional JSON path for the numbers")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    df, lam = make_table(args.pairs, args.days, args.seed)
    t_make = time.perf_counter() - t0

    times = []
    for _ in range(max(1, args.repeats)):
        t0 = time.perf_counter()
        res = D.fit_poisson_mle(df)
        times.append(time.perf_counter() - t0)
    best = min(times)

    t0 = time.perf_counter()
    crb = D.cramer_rao_table(df)
    t_crb = time.perf_counter() - t0
    ok = (res["reason"] == "ok").to_numpy()
    ratio = D.error_vs_bound(res["lam_hat"].to_numpy()[ok], lam[ok], crb["crb_sd"].to_numpy()[ok])

    out = {
        "pairs": args.pairs,
        "days": args.days,
        "rows": int(len(df)),
        "fit_seconds_best": round(best, 4),
        "fit_seconds_all": [round(x, 4) for x in times],
        "pairs_per_second": round(args.pairs / best),
        "crb_seconds": round(t_crb, 4),
        "table_build_seconds": round(t_make, 3),
        "iterations_median": float(np.median(res["iterations"])),
        "iterations_max": int(res["iterations"].max()),
        "converged_share": float(res["converged"].mean()),
        "reasons": {k: int(v) for k, v in res["reason"].value_counts().items()},
        "median_error_over_crb": round(float(np.median(ratio)), 4),
        "efficient_reference": round(D.EFFICIENT_MEDIAN_RATIO, 4),
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(), "platform": platform.platform()},
    }
    print(f"Poisson MLE: {args.pairs:,} pairs x {args.days} days = {len(df):,} rows")
    print(f"  fit wall time (best of {len(times)}): {best:.3f} s  -> {out['pairs_per_second']:,} pairs/s")
    print(f"  Newton iterations: median {out['iterations_median']:.0f}, max {out['iterations_max']}; "
          f"converged {out['converged_share']:.2%}; reasons {out['reasons']}")
    print(f"  Cramér-Rao table: {t_crb:.3f} s; median |error|/CRB = {out['median_error_over_crb']:.3f} "
          f"(efficient: {D.EFFICIENT_MEDIAN_RATIO:.3f})")
    if args.out:
        p = Path(args.out)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(out, indent=2))
        print(f"  wrote {p}")
    return out


if __name__ == "__main__":
    main()
