"""Benchmark: pooled (empirical-Bayes) λ against the per-pair Poisson MLE on the same pairs.

The data are those of ``bench_decay.py`` (``--pairs`` decay phases of ``--days`` days, Poisson
counts, 3% outage days). ``--method both`` (default) times both fits in this process and prints
the ratio; ``--method mle`` or ``--method shrunk`` runs one of them (to time whole processes side
by side, e.g. with ``/usr/bin/time -v``). The target of issue 10: the pooled fit (prior and every
posterior) within 2x the time of the MLE on 100,000 pairs x 30 days.

Usage::

    python benchmarks/bench_shrinkage.py                     # 100,000 pairs x 30 days, both
    python benchmarks/bench_shrinkage.py --method shrunk --repeats 1

Not a test: nothing here fails because a machine is slow.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_decay import make_table  # noqa: E402

from decaylib.decay import rate as D  # noqa: E402
from decaylib.decay import shrinkage as S  # noqa: E402


def _best(fn, repeats):
    times, out = [], None
    for _ in range(max(1, repeats)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=100_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3, help="timed fits of each; the best is reported")
    ap.add_argument("--method", choices=("both", "mle", "shrunk"), default="both")
    ap.add_argument("--out", type=str, default=None, help="optional JSON path for the numbers")
    args = ap.parse_args(argv)
    df, lam = make_table(args.pairs, args.days, args.seed)
    out = {"pairs": args.pairs, "days": args.days, "rows": len(df)}
    if args.method in ("both", "mle"):
        t, mle = _best(lambda: D.fit_poisson_mle(df), args.repeats)
        out["mle_seconds"] = round(t, 3)
        out["mle_median_rel_error"] = round(float(np.nanmedian(np.abs(mle["lam_hat"] / lam - 1))), 4)
    if args.method in ("both", "shrunk"):
        t, sh = _best(lambda: S.shrunk_lambda(df), args.repeats)
        out["shrunk_seconds"] = round(t, 3)
        out["shrunk_median_rel_error"] = round(float(np.median(np.abs(sh["lam_hat"] / lam - 1))), 4)
        out["shrunk_coverage_90"] = round(float(np.mean((sh["lam_lo"] <= lam) & (lam <= sh["lam_hi"]))), 4)
    if args.method == "both":
        out["ratio_shrunk_over_mle"] = round(out["shrunk_seconds"] / out["mle_seconds"], 3)
    print(json.dumps(out, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return out


if __name__ == "__main__":
    main()
