"""Benchmark: the self-exciting model against the truth of the simulator (issue 19's simulator goals).

1. **Recovery and coverage** (self-exciting mode, ``--reps`` replications): the spread of the
   fitted decay (log β) against the Cramér-Rao bound, and the share of 90% profile-likelihood
   intervals that cover the true β (goal: 88-92%). The bound is the (log β, log β) element of the
   inverse of the Fisher information at the truth, estimated by the mean over replications of the
   observed information (the Hessian of the negative marginal log-likelihood at the true
   parameters, by central differences of the analytic gradient). A ratio sd / bound of 1 is
   efficient; the goal is at most 1.1.
2. **Forecasts on held-back days** (self-exciting mode): hawkes against constant, tuned SAR and
   the pooled decay (``shrunk``), paired bootstrap intervals with users resampled.
3. **Today's mode** (rise and decay, the simulator of notebook 01): the same comparison, where the
   truth is the pooled decay's own model (goal: hawkes not worse than ``shrunk`` by more than 2%).

Usage::

    python benchmarks/bench_hawkes_sim.py --reps 300 --out benchmarks/results/hawkes_sim.json

Not a test: nothing here fails because a machine is slow.
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

from decaylib.data.panel import build_panel  # noqa: E402
from decaylib.data.synth import simulate, simulate_self_exciting  # noqa: E402
from decaylib.decay import hawkes as H  # noqa: E402
from decaylib.decay.counts import forecast_counts  # noqa: E402
from decaylib.evaluation.bootstrap import paired_bootstrap  # noqa: E402
from decaylib.evaluation.forecast import score_forecasts  # noqa: E402

TRUTH = dict(types=("view", "purchase"), mu=[0.08, 0.02], alpha=[[0.12, 0.03], [0.04, 0.1]], beta=0.35, r=20.0)


def _pack(truth) -> np.ndarray:
    mu = np.asarray(truth["mu"], float)
    alpha = np.asarray(truth["alpha"], float)
    # the simulator's baseline does not fade: γ sits on its lower bound (held there in the bound below)
    return np.r_[np.log(mu), np.log(alpha).ravel(), np.log(truth["beta"]), H._LOG_GAMMA_BOUNDS[0], np.log(truth["r"])]


def hessian(ev, lay, x, h=1e-4) -> np.ndarray:
    P = len(x)
    Hm = np.zeros((P, P))
    for i in range(P):
        e = np.zeros(P)
        e[i] = h
        Hm[i] = (H._objective(x + e, ev, lay)[1] - H._objective(x - e, ev, lay)[1]) / (2 * h)
    return (Hm + Hm.T) / 2


def recovery(reps: int, n_users: int, n_days: int, interval: str) -> dict:
    K = len(TRUTH["types"])
    lay = H._Layout(K, False, -1)
    x_true = _pack(TRUTH)
    ib = lay.index_beta()
    rows, info = [], np.zeros((lay.size, lay.size))
    t0 = time.perf_counter()
    for rep in range(reps):
        sim = simulate_self_exciting(n_users, 2, n_days, seed=1000 + rep, **TRUTH)
        ev = H.event_arrays(sim.panel, types=TRUTH["types"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = H.fit_hawkes(ev, satiation=False, interval=interval)
        info += hessian(ev, lay, x_true)
        lo, hi = fit.beta_interval
        rows.append({"rep": rep, "beta": fit.beta, "lo": lo, "hi": hi, "covered": lo <= TRUTH["beta"] <= hi,
                     "events": fit.n_events})
    t = pd.DataFrame(rows)
    free = [i for i in range(lay.size) if i != lay.index_gamma()]
    sub = np.linalg.inv((info / reps)[np.ix_(free, free)])
    crb = float(np.sqrt(sub[free.index(ib), free.index(ib)]))
    sd = float(np.log(t["beta"]).std(ddof=1))
    cover = float(t["covered"].mean())
    se_cover = float(np.sqrt(cover * (1 - cover) / reps))
    out = {"reps": reps, "n_users": n_users, "n_days": n_days, "interval": interval, "truth_beta": TRUTH["beta"],
           "mean_beta": float(t["beta"].mean()), "bias_log_beta": float(np.log(t["beta"]).mean() - np.log(TRUTH["beta"])),
           "sd_log_beta": sd, "crb_log_beta": crb, "sd_over_crb": sd / crb, "coverage_90": cover,
           "coverage_se": se_cover, "mean_events": float(t["events"].mean()), "seconds": time.perf_counter() - t0}
    print(f"recovery over {reps} replications ({out['mean_events']:,.0f} events each): sd(log β) {sd:.4f}, "
          f"Cramér-Rao bound {crb:.4f}, ratio {sd / crb:.3f}; 90% {interval} intervals cover {cover:.1%} "
          f"(± {se_cover:.1%}); mean β {out['mean_beta']:.4f} (truth {TRUTH['beta']}); {out['seconds']:.0f} s")
    return out


def forecast_comparison(panel: pd.DataFrame, cols, horizon: int, methods, label: str, n_boot: int) -> dict:
    cut = int(panel["day"].max()) - horizon
    rows = []
    summary = {}
    for m in methods:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            f = forecast_counts(panel, cut, horizon, method=m, column=cols)
        sc = score_forecasts(f, panel, cut, horizon, column=cols)
        summary[m] = sc.summary["deviance"]
        rows.append(sc.per_pair.assign(method=m, cutoff=cut))
    table = paired_bootstrap(pd.concat(rows, ignore_index=True), "hawkes", n_boot=n_boot, seed=0)
    best_other = min((v, k) for k, v in summary.items() if k != "hawkes")
    print(f"\n== {label}: cutoff {cut}, horizon {horizon}")
    print(table.round(4).to_string(index=False))
    return {"label": label, "cutoff": cut, "horizon": horizon, "table": table.to_dict(orient="records"),
            "hawkes_vs_best_other": summary["hawkes"] / best_other[0] - 1, "best_other": best_other[1]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=300)
    ap.add_argument("--n-users", type=int, default=150)
    ap.add_argument("--n-days", type=int, default=80)
    ap.add_argument("--interval", default="profile", choices=["profile", "wald"])
    ap.add_argument("--n-boot", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args(argv)
    res = {"recovery": recovery(a.reps, a.n_users, a.n_days, a.interval)}
    sim = simulate_self_exciting(600, 3, 120, seed=7, **TRUTH)
    res["self_exciting"] = forecast_comparison(sim.panel, list(TRUTH["types"]), 14,
                                               ("constant", "sar", "shrunk", "hawkes"), "self-exciting mode", a.n_boot)
    s = simulate(seed=0)  # notebook 01's defaults
    panel = build_panel(s.events, outage_days=s.outage_days)
    res["todays_mode"] = forecast_comparison(panel, "interest", 14, ("constant", "sar", "shrunk", "hawkes"),
                                             "today's mode (rise and decay), interest", a.n_boot)
    print(f"\ntoday's mode: hawkes vs the best other ({res['todays_mode']['best_other']}): "
          f"{res['todays_mode']['hawkes_vs_best_other']:+.1%} deviance")
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = a.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(res, indent=1, default=float))
        tmp.replace(a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
