"""Benchmark: streaming updates of the decay statistics and λ from statistics at scale.

* ``DecayState.update``: pair-updates per second (``--pairs`` pairs with an event every day for
  ``--days`` days, integer codes; goal of issue 11: at least 1M pair-updates per second);
* :func:`decaylib.decay.stream.lambda_from_stats` for 100k and 1M pairs (goal: 1M at most 10x the time
  of 100k, and under 10 s), beside :func:`decaylib.decay.rate.fit_poisson_mle` on the same 100k pairs
  (the dense table of 30 days; ``--mle-1m`` also times it on 1M pairs, about 30 s and 6 GB).

Usage::

    python benchmarks/bench_stream.py
    python benchmarks/bench_stream.py --pairs 200000 --days 5

Not a test: nothing here fails because a machine is slow.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_decay import make_table  # noqa: E402

from decaylib.decay import rate as D  # noqa: E402
from decaylib.decay import stream as ST  # noqa: E402


def stats_from_table(df: pd.DataFrame) -> tuple[pd.DataFrame, list]:
    """Statistics of the bench tables (t0 = 0, every pair to the last day; outages are per row there,
    so mark them as zero counts on observed days: the comparison with the MLE uses the same data)."""
    g = (df["user_id"].to_numpy() * 8 + df["category"].to_numpy())
    y = np.where(df["observed"].to_numpy(), df["count"].to_numpy(), 0.0)
    t = df["t"].to_numpy()
    G = int(g.max()) + 1
    first = np.full(G, np.inf)
    last = np.full(G, -np.inf)
    pos = y > 0
    np.minimum.at(first, g[pos], t[pos])
    np.maximum.at(last, g[pos], t[pos])
    keys = df[["user_id", "category"]].drop_duplicates().sort_values(["user_id", "category"])
    return pd.DataFrame({"user_id": keys["user_id"].to_numpy(), "category": keys["category"].to_numpy(), "t0": 0,
                         "t_last": int(t.max()), "Y": np.bincount(g, y, G), "S": np.bincount(g, y * t, G),
                         "active_days": np.bincount(g, pos.astype(float), G).astype(np.int64),
                         "first_event": np.where(np.isfinite(first), first, np.nan),
                         "last_event": np.where(np.isfinite(last), last, np.nan)}), []


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--mle-1m", action="store_true")
    args = ap.parse_args(argv)
    out = {}
    rng = np.random.default_rng(0)
    state = ST.DecayState(args.pairs)
    codes = np.arange(args.pairs, dtype=np.int64)
    t0 = time.perf_counter()
    for day in range(args.days):
        state.update(day, codes, rng.poisson(2.0, args.pairs).astype(float))
    dt = time.perf_counter() - t0
    out["update_pairs_per_second"] = round(args.pairs * args.days / dt)
    for n in (100_000, 1_000_000):
        df, lam = make_table(n, 30, 0, outage_share=0.0)
        st, outs = stats_from_table(df)
        t0 = time.perf_counter()
        res = ST.lambda_from_stats(st, outs)
        out[f"lambda_from_stats_{n}_s"] = round(time.perf_counter() - t0, 3)
        out[f"lambda_from_stats_{n}_median_rel_error"] = round(float(np.nanmedian(np.abs(res["lam_hat"] / lam - 1))), 4)
        if n == 100_000 or args.mle_1m:
            t0 = time.perf_counter()
            mle = D.fit_poisson_mle(df)
            out[f"fit_poisson_mle_{n}_s"] = round(time.perf_counter() - t0, 3)
            ok = (mle["reason"] == "ok").to_numpy() & (np.abs(mle["lam_hat"].to_numpy()) > 1e-6)  # relative: away from λ = 0
            out[f"max_rel_diff_{n}"] = float(np.nanmax(np.abs(res["lam_hat"].to_numpy()[ok] / mle["lam_hat"].to_numpy()[ok] - 1)))
        del df
    out["ratio_1m_over_100k"] = round(out["lambda_from_stats_1000000_s"] / out["lambda_from_stats_100000_s"], 2)
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
