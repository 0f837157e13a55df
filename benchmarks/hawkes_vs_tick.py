"""Benchmark: fit_hawkes_continuous against tick on one simulated 2-type Hawkes process.

The larger-size companion of ``tests/decay/test_hawkes_tick.py``. tick's ``SimuHawkesExpKernels``
simulates a process with known baseline, adjacency (``[k, j]``: the effect of type j on type k,
tick's convention) and exponential decay; both libraries fit it by maximum likelihood:

* decay fixed at the truth: :func:`decaylib.decay.hawkes.fit_hawkes_continuous` with ``decay=``
  against tick's ``HawkesExpKern(decay, gofit="likelihood", penalty="none")`` run to a tight
  tolerance (``tol=1e-10``), and at its default tolerance (``tol=1e-5``, ``step=1e-3``);
* decay free: ours against tick's profile likelihood over the decay (tick fits one decay at a time:
  a grid of ``score()``, then Brent's bounded search on log decay).

Prints a table per setting (parameter, truth, ours, tick, |difference|), the log-likelihood of
each estimate (one function for both: tick's ``score()`` is ``(loglik + n_types * end) / n_events``)
and the fit times. The process ends at its last event, as tick's learners take it.

Needs the ``peer`` extra (``pip install -e ".[peer]"``); not one of ``make bench``'s ``bench_*.py``.

Usage::

    python benchmarks/hawkes_vs_tick.py                     # end time 10,000 (about 16,000 events)
    python benchmarks/hawkes_vs_tick.py --end-time 4000 --out benchmarks/results/hawkes_vs_tick.json

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
from scipy import optimize

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decaylib.decay.hawkes import fit_hawkes_continuous  # noqa: E402

try:
    from tick.hawkes import HawkesExpKern, SimuHawkesExpKernels
except ImportError as exc:  # pragma: no cover - depends on the environment
    sys.exit(f"tick is not installed ({exc}): pip install -e \".[peer]\" (tick>=0.8, numpydoc, six)")

BASELINE = np.array([0.5, 0.3])
ADJACENCY = np.array([[0.3, 0.1], [0.2, 0.4]])
DECAY = 2.0


def tick_fit(ts, decay: float, *, tight: bool = True):
    """tick's unpenalised likelihood fit: tight (tol 1e-10, start 0.1) or its default tolerance (step 1e-3)."""
    if tight:
        learner = HawkesExpKern(decay, gofit="likelihood", penalty="none", tol=1e-10, max_iter=10_000)
        return learner.fit(ts, start=0.1)
    learner = HawkesExpKern(decay, gofit="likelihood", penalty="none", step=1e-3, max_iter=5000)
    return learner.fit(ts)


def loglik(learner, ts, end: float, mu=None, adjacency=None) -> float:
    """The log-likelihood at (mu, adjacency) (default: the learner's estimate), through tick's score()."""
    n = sum(len(x) for x in ts)
    return float(learner.score(baseline=mu, adjacency=adjacency) * n - len(ts) * end)


def tick_profile(ts, end: float, truth: float):
    """tick's maximum-likelihood decay: a grid of the profile likelihood (factors of 2), then Brent on log decay."""
    def neg(log_decay):
        return -loglik(tick_fit(ts, float(np.exp(log_decay))), ts, end)

    grid = np.log(truth) + np.log(2.0) * np.arange(-4, 5)
    values = [neg(g) for g in grid]
    i = int(np.argmin(values))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    res = optimize.minimize_scalar(neg, bounds=(lo, hi), method="bounded", options={"xatol": 1e-6})
    return float(np.exp(res.x)), -float(res.fun), len(grid) + int(res.nfev)


def rows(ours: dict, tk, decay_truth: float | None, tick_decay: float | None = None) -> list[tuple]:
    out = [(f"mu[{k}]", BASELINE[k], ours["mu"][k], tk.baseline[k]) for k in range(2)]
    out += [(f"adj[{k},{j}]", ADJACENCY[k, j], ours["adjacency"][k, j], tk.adjacency[k, j])
            for k in range(2) for j in range(2)]
    if decay_truth is not None:
        out.append(("decay", decay_truth, ours["decay"], tick_decay))
    return out


def print_table(title: str, table: list[tuple]) -> float:
    print(title)
    print(f"  {'parameter':<10} {'truth':>9} {'ours':>11} {'tick':>11} {'|ours-tick|':>12}")
    worst = 0.0
    for name, truth, o, t in table:
        d = abs(o - t)
        worst = max(worst, d)
        print(f"  {name:<10} {truth:>9.4f} {o:>11.6f} {t:>11.6f} {d:>12.2e}")
    return worst


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--end-time", type=float, default=10_000.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--no-free", action="store_true", help="skip the free-decay fits (the slowest part)")
    ap.add_argument("--out", type=str, default=None, help="optional JSON path for the numbers")
    args = ap.parse_args(argv)

    sim = SimuHawkesExpKernels(adjacency=ADJACENCY, decays=DECAY, baseline=BASELINE, end_time=args.end_time,
                               seed=args.seed, verbose=False)
    sim.simulate()
    ts = [np.asarray(t, dtype=float) for t in sim.timestamps]
    end = max(float(t[-1]) for t in ts)
    n = sum(len(t) for t in ts)
    print(f"Hawkes (2 types, exponential kernel, decay {DECAY}): end time {end:,.1f}, "
          f"{n:,} events ({', '.join(f'{len(t):,}' for t in ts)}), seed {args.seed}")

    t0 = time.perf_counter()
    ours = fit_hawkes_continuous(ts, end, decay=DECAY)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    tk = tick_fit(ts, DECAY)
    t_tick = time.perf_counter() - t0
    t0 = time.perf_counter()
    tk0 = tick_fit(ts, DECAY, tight=False)
    t_tick0 = time.perf_counter() - t0
    ll = {"ours": loglik(tk, ts, end, ours["mu"], ours["adjacency"]), "tick": loglik(tk, ts, end),
          "tick_default_tol": loglik(tk0, ts, end)}
    print()
    worst = print_table("decay fixed at the truth (tick: tol 1e-10)", rows(ours, tk, None))
    worst0 = max(abs(tk0.baseline - ours["mu"]).max(), abs(tk0.adjacency - ours["adjacency"]).max())
    print(f"  log-likelihood: ours {ll['ours']:.6f} (reported {ours['loglik']:.6f}), tick {ll['tick']:.6f}, "
          f"tick at its default tol {ll['tick_default_tol']:.6f}")
    best = max(ll, key=ll.get)
    print(f"  higher: {best} (tick - ours = {ll['tick'] - ll['ours']:+.2e}; "
          f"default-tol tick - ours = {ll['tick_default_tol'] - ll['ours']:+.2e}, max |param diff| {worst0:.2e})")
    print(f"  fit time: ours {t_ours:.2f} s, tick {t_tick:.3f} s (default tol {t_tick0:.3f} s)")
    out = {
        "end_time": end, "events": n, "seed": args.seed,
        "fixed": {"max_abs_diff": worst, "loglik": ll, "default_tol_max_abs_diff": float(worst0),
                  "seconds": {"ours": round(t_ours, 3), "tick": round(t_tick, 4),
                              "tick_default_tol": round(t_tick0, 4)},
                  "ours": {"mu": ours["mu"].tolist(), "adjacency": ours["adjacency"].tolist()},
                  "tick": {"mu": tk.baseline.tolist(), "adjacency": tk.adjacency.tolist()}},
    }

    if not args.no_free:
        t0 = time.perf_counter()
        free = fit_hawkes_continuous(ts, end)
        t_free = time.perf_counter() - t0
        t0 = time.perf_counter()
        tick_decay, tick_ll, n_fits = tick_profile(ts, end, DECAY)
        tkf = tick_fit(ts, tick_decay)
        t_prof = time.perf_counter() - t0
        print()
        worst_f = print_table("decay free (tick: profile likelihood over the decay)",
                              rows(free, tkf, DECAY, tick_decay))
        print(f"  log-likelihood: ours {free['loglik']:.6f}, tick {tick_ll:.6f}; higher: "
              f"{'tick' if tick_ll > free['loglik'] else 'ours'} (tick - ours = {tick_ll - free['loglik']:+.2e})")
        print(f"  decay: ours / tick - 1 = {free['decay'] / tick_decay - 1:+.2e}; ours / truth - 1 = "
              f"{free['decay'] / DECAY - 1:+.2e}")
        print(f"  fit time: ours {t_free:.2f} s, tick {t_prof:.2f} s ({n_fits + 1} fits over the decay)")
        out["free"] = {"max_abs_diff": worst_f, "decay": {"ours": free["decay"], "tick": tick_decay, "truth": DECAY},
                       "loglik": {"ours": free["loglik"], "tick": tick_ll},
                       "seconds": {"ours": round(t_free, 3), "tick": round(t_prof, 3)}}
    out["machine"] = {"python": platform.python_version(), "cpu_count": os.cpu_count(), "platform": platform.platform()}
    if args.out:
        p = Path(args.out)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(out, indent=2, default=float))
        print(f"  wrote {p}")
    return out


if __name__ == "__main__":
    main()
