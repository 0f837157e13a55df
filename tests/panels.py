"""Small hand-built panels and logs shared by several tests (ranking, evaluation, advice, streaming λ, exercises)."""

from __future__ import annotations

import numpy as np
import pandas as pd

BEHAVIOURS = ["view", "click", "cart", "purchase", "impression"]


def make_panel(series: dict, end_day: int) -> pd.DataFrame:
    """Panel from {(user, category): (start_day, [interest per day ...])}; zero-filled to end_day.

    interest is put into ``view`` (so interest == view), other counts are 0.
    """
    rows = []
    for (u, c), (start, values) in series.items():
        vals = list(values) + [0] * (end_day - start + 1 - len(values))
        for i, v in enumerate(vals[: end_day - start + 1]):
            rows.append((u, c, start + i, int(v)))
    p = pd.DataFrame(rows, columns=["user_id", "category", "day", "view"])
    for col in ("click", "cart", "purchase", "impression"):
        p[col] = 0
    p[["user_id", "category", "day"] + BEHAVIOURS] = p[["user_id", "category", "day"] + BEHAVIOURS].astype("int64")
    p["interest"] = p["view"].astype(float)
    p["interest_smooth"] = p["interest"]
    p["observed"] = True
    return p.sort_values(["user_id", "category", "day"]).reset_index(drop=True)


def random_panel(seed: int = 0, n_users: int = 12, n_cats: int = 6, end_day: int = 59) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    series = {}
    for u in range(n_users):
        for c in rng.choice(n_cats, size=4, replace=False):
            start = int(rng.integers(0, 30))
            peak = start + int(rng.integers(0, 12))
            i0, lam = rng.uniform(1, 8), rng.uniform(0.02, 0.3)
            d = np.arange(start, end_day + 1)
            mu = np.where(d <= peak, i0 * (d - start + 1) / (peak - start + 1), i0 * np.exp(-lam * (d - peak)))
            series[(u, int(c) + 100)] = (start, rng.poisson(mu))
    return make_panel(series, end_day)


def add_wild_future(panel: pd.DataFrame, cutoff: int, seed: int = 1) -> pd.DataFrame:
    """Scramble every row after ``cutoff`` and append new pairs/users/days after it."""
    rng = np.random.default_rng(seed)
    p = panel.copy()
    after = p["day"].to_numpy() > cutoff
    wild = rng.integers(0, 500, size=after.sum())
    p.loc[after, "view"] = wild
    p.loc[after, "purchase"] = wild % 7
    p.loc[after, "interest"] = (wild + 5 * (wild % 7)).astype(float)
    p["interest_smooth"] = rng.uniform(0, 1e6, size=len(p))  # centered filter: must never be used
    end = int(p["day"].max())
    extra = []
    for u, c in [(0, 999), (777, 100), (3, 105)]:  # new pair, new user, maybe existing pair
        if ((p["user_id"] == u) & (p["category"] == c)).any():
            continue
        for d in range(cutoff + 1, end + 15):
            extra.append((u, c, d, 900, 0, 0, 50, 0))
    ext = pd.DataFrame(extra, columns=["user_id", "category", "day"] + BEHAVIOURS).astype("int64")
    ext["interest"] = (ext["view"] + 5 * ext["purchase"]).astype(float)
    ext["interest_smooth"] = 0.0
    ext["observed"] = True
    return pd.concat([p, ext], ignore_index=True).sort_values(["user_id", "category", "day"]).reset_index(drop=True)


def make_log(n_pairs=400, n_days=40, seed=0, outages=(7, 23)):
    """Sparse daily counts of decaying pairs with different starts, plus the dense phase table."""
    rng = np.random.default_rng(seed)
    lam = np.log(2) / rng.uniform(2, 60, n_pairs)
    A = np.exp(rng.normal(np.log(3.0), 0.8, n_pairs))
    t0 = rng.integers(0, n_days - 5, n_pairs)
    rows = []
    for g in range(n_pairs):
        d = np.arange(t0[g], n_days)
        y = rng.poisson(A[g] * np.exp(-lam[g] * (d - t0[g])))
        y[np.isin(d, outages)] = 0
        rows.append(pd.DataFrame({"user_id": g, "category": g % 3, "day": d, "count": y.astype(float)}))
    dense = pd.concat(rows, ignore_index=True)
    starts = pd.DataFrame({"user_id": np.arange(n_pairs), "category": np.arange(n_pairs) % 3, "t0": t0})
    sparse = dense[dense["count"] > 0].reset_index(drop=True)
    phase = dense.merge(starts, on=["user_id", "category"])
    phase = phase.assign(t=(phase["day"] - phase["t0"]).astype(float), observed=~phase["day"].isin(outages))
    return sparse, starts, phase[["user_id", "category", "t", "count", "observed"]], list(outages), n_days - 1
