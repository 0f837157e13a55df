"""Benchmark: the self-exciting model against tuned SAR, BG/NBD and the floored pooled decay on the complete Online Retail.

The goal of issue 19: lower Poisson deviance of purchase days than every peer, with paired
bootstrap intervals (customers resampled) that exclude zero, on

* purchase days per **customer** and per **customer x product family** (the first three
  characters of the stock code), and
* two splits: the last ``--holdout`` days of the complete Online Retail (2010-12 to 2011-12)
  held back, and the classic **year one / year two** split of the two-year log (Online Retail II's
  2009-12 to 2010-11 as calibration, the next year as holdout).

Every model sees the calibration days only. BG/NBD is fitted on the same units (per pair for the
pair setting). ``auto`` is :func:`decaylib.decay.counts.forecast_counts`'s ``method="auto"``
(picked on rolling origins inside the calibration period); its regret against the best single
method is measured on rolling origins of the complete year (``--origins``).

Usage::

    python benchmarks/bench_hawkes_real.py --out benchmarks/results/hawkes_real.json

Not a test: the numbers are reported in the issue's closing note.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from decaylib.data.load import load_online_retail, load_online_retail_years  # noqa: E402
from decaylib.decay.counts import forecast_counts, rolling_cutoffs  # noqa: E402
from decaylib.decay.repeat import bgnbd_expected, customer_summary, fit_bgnbd  # noqa: E402
from decaylib.evaluation.bootstrap import paired_bootstrap  # noqa: E402
from decaylib.evaluation.forecast import poisson_deviance, score_forecasts  # noqa: E402

METHODS = ("sar", "shrunk_floor", "hawkes")


def purchase_days(events: pd.DataFrame, unit: str, origin) -> pd.DataFrame:
    """One row per (customer, [family,] purchase day): ``user_id, category, day, purchase_day, observed``."""
    day = (events["ts"].dt.floor("D") - pd.Timestamp(origin).floor("D")).dt.days.to_numpy()
    cat = events["category"].to_numpy() if unit == "pair" else np.zeros(len(events), dtype=np.int64)
    out = (pd.DataFrame({"user_id": events["user_id"].to_numpy(np.int64), "category": cat.astype(np.int64), "day": day})
           .query("day >= 0").drop_duplicates().sort_values(["user_id", "category", "day"]).reset_index(drop=True))
    out["purchase_day"] = 1
    out["observed"] = True
    return out


def evaluate(panel: pd.DataFrame, cal_end: int, hold_end: int, *, n_boot: int, label: str) -> dict:
    """All models on one split: mean deviance, paired differences (customers resampled) against hawkes."""
    horizon = hold_end - cal_end
    past = panel[panel["day"] <= hold_end]
    keys = past.loc[past["day"] <= cal_end, ["user_id", "category"]].drop_duplicates().sort_values(["user_id", "category"])
    pid = pd.MultiIndex.from_frame(keys)
    # BG/NBD on the same units: a pair is a "customer" (its own frequency, recency, T)
    code = pid.get_indexer(pd.MultiIndex.from_frame(past[["user_id", "category"]]))
    units = past.loc[code >= 0].assign(user_id=code[code >= 0])
    rfm = customer_summary(units[["user_id", "day"]], cal_end, hold_end)
    t0 = time.perf_counter()
    bg = fit_bgnbd(rfm["frequency"], rfm["recency"], rfm["T"])
    pred = {"bgnbd": bgnbd_expected(bg, horizon, rfm["frequency"], rfm["recency"], rfm["T"])}
    secs = {"bgnbd": time.perf_counter() - t0}
    observed = rfm["holdout"].to_numpy(dtype=float)
    learnt = {}
    for m in (*METHODS, "auto"):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = forecast_counts(past, cal_end, horizon, method=m, column="purchase_day")
        secs[m] = time.perf_counter() - t0
        got = pd.MultiIndex.from_frame(f[["user_id", "category"]])
        if not got.equals(pid):
            raise RuntimeError(f"{m}: forecasts and summaries hold different units")
        pred[m] = f["expected"].to_numpy()
        if m == "hawkes":
            fit = f.attrs["hawkes"]
            learnt["hawkes"] = {"beta": fit.beta, "half_life": fit.half_life, "r": fit.r, "mu": fit.mu.tolist(),
                                "alpha": fit.alpha.tolist(), "branching_ratio": fit.branching_ratio,
                                "prior_only_share": float((f["reason"] == "prior_only").mean())}
        if m == "sar":
            learnt["sar"] = {"half_life": f.attrs["half_life"], "at_edge": f.attrs["at_edge"]}
        if m == "auto":
            learnt["auto"] = {"picked": f.attrs["picked"], "margin": f.attrs["margin"],
                              "table": f.attrs["auto"].to_dict(orient="records")}
    scores = pd.concat([keys.assign(method=m, cutoff=cal_end, deviance=poisson_deviance(observed, p)) for m, p in pred.items()],
                       ignore_index=True)
    table = paired_bootstrap(scores, "hawkes", n_boot=n_boot, seed=0)
    res = {"label": label, "units": len(keys), "customers": int(keys["user_id"].nunique()), "calibration_end": cal_end,
           "holdout_days": horizon, "observed_total": float(observed.sum()),
           "predicted_total": {m: float(p.sum()) for m, p in pred.items()}, "seconds": secs, "learnt": learnt,
           "table": table.to_dict(orient="records")}
    print(f"\n== {label}: {len(keys):,} units of {res['customers']:,} customers, holdout {horizon} days, "
          f"{observed.sum():,.0f} purchase days observed")
    print(table.round(4).to_string(index=False))
    print("seconds:", {k: round(v, 1) for k, v in secs.items()}, "| auto picked", learnt["auto"]["picked"],
          "| hawkes half-life", round(learnt["hawkes"]["half_life"], 1))
    return res


def auto_regret(panel: pd.DataFrame, horizon: int, n_origins: int) -> dict:
    """On rolling origins: auto's mean deviance against the best single candidate's (chosen after the fact)."""
    h, cutoffs, _ = rolling_cutoffs(panel, horizon, n_origins, min_history=2 * horizon + 30)
    rows = []
    for c in cutoffs:
        for m in ("constant", *METHODS, "auto"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                f = forecast_counts(panel, c, h, method=m, column="purchase_day")
            s = score_forecasts(f, panel, c, h, column="purchase_day").per_pair
            rows.append({"cutoff": c, "method": m, "deviance": float(s["deviance"].sum()), "n": len(s),
                         "picked": f.attrs.get("picked")})
    t = pd.DataFrame(rows)
    tot = t.groupby("method")[["deviance", "n"]].sum()
    mean = tot["deviance"] / tot["n"]
    best_single = mean.drop("auto").min()
    out = {"horizon": h, "cutoffs": cutoffs, "mean_deviance": mean.to_dict(), "best_single": mean.drop("auto").idxmin(),
           "auto_regret": float(mean["auto"] / best_single - 1),
           "picked": t.loc[t["method"] == "auto", ["cutoff", "picked"]].to_dict(orient="records")}
    print(f"\n== auto on {len(cutoffs)} rolling origins, horizon {h}: mean deviance",
          {k: round(v, 4) for k, v in out["mean_deviance"].items()}, f"regret {out['auto_regret']:+.2%}")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--holdout", type=int, default=91)
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--origins", type=int, default=4)
    ap.add_argument("--skip-pairs", action="store_true", help="customers only (the pair settings take longest)")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    full = load_online_retail(ROOT / "data" / "online_retail" / "online_retail_full.parquet")
    years = load_online_retail_years()
    results = {"settings": []}
    origin = full["ts"].min()
    for unit in ("customer", *(() if a.skip_pairs else ("pair",))):
        p = purchase_days(full, unit, origin)
        last = int(p["day"].max())
        results["settings"].append(evaluate(p, last - a.holdout, last, n_boot=a.n_boot,
                                            label=f"{unit}, complete Online Retail, last {a.holdout} days held back"))
    y0 = years["ts"].min()
    year2 = (pd.Timestamp("2010-12-01") - y0.floor("D")).days
    for unit in ("customer", *(() if a.skip_pairs else ("pair",))):
        p = purchase_days(years, unit, y0)
        results["settings"].append(evaluate(p, year2 - 1, int(p["day"].max()), n_boot=a.n_boot,
                                            label=f"{unit}, year one (2009-12 to 2010-11) / year two"))
    results["auto"] = auto_regret(purchase_days(full, "customer", origin), a.holdout // 2, a.origins)
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = a.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(results, indent=1, default=float))
        tmp.replace(a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
