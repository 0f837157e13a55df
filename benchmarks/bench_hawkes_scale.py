"""Benchmark: the self-exciting model (:mod:`decaylib.decay.hawkes`) at the scale of 100M events.

Issue 19's goals: *the fit from daily counts of 100M events in at most 5 minutes and 4 GB on this
2-core box; the streaming update at least 10M pair-updates per second.*

**The data.** The daily counts that ``--events`` events (default 100M) would give, generated in
chunks of pairs without materialising one row per event: ``--pairs`` (user, category) pairs
(default 1M; 4 categories per user, so 250k users) over ``--days`` days (default 365), four types
(view, click, cart, purchase). The counts are drawn from the model of ``hawkes.py`` itself, day by
day: pair ``g`` has a multiplier :math:`\\theta_g \\sim \\mathrm{Gamma}(r, r)` (capped so that no
pair's process runs away, see :data:`TRUTH`), and the conditional mean of its count of type ``k``
on day ``t`` is exactly the model's :math:`\\theta_g(\\mu_k + \\sum_j \\alpha_{jk} S_{gjt} - s_k
\\alpha_{pk} Q_{gt})`, with the excitation driven by the counts drawn so far (satiation on
purchases included). Within a day the count is compound Poisson: a Poisson number of *sessions*,
each of ``SESSION_SIZE[k]`` events on average (views 1 + Poisson(3), clicks 1 + Poisson(1), carts
and purchases 1), so that an active (pair, day) row carries several events, as in real logs and in
the repository's own simulator (:func:`decaylib.data.synth.simulate`: about 6.5 events of the four
types per (user, category, day) row). The means are the model's, so the fit is a consistent
quasi-likelihood fit of :math:`\\mu, \\alpha, \\beta, s, \\delta` (``r`` absorbs the extra
within-day variance); the baselines are scaled so that the expected total is ``--events`` (the
model is linear in :math:`\\mu`: one pilot of 20k pairs sets the scale). The table has one row per
(pair, day) with an event, sorted by (user_id, category, day), as a groupby of a log gives it:
``user_id`` int32, ``category`` int16, ``day`` int16, the four counts int16.

**The steps,** each timed in a fresh child process that loads the table from ``.npy`` files
(written once to ``--data-dir``, reused when the same settings are asked again), so that the
generator's memory does not count:

1. ``event_arrays(panel, types=...)``;
2. ``fit_hawkes(ev, interval=..., max_pairs=...)`` for each ``--max-pairs`` (default 10k and 50k
   pairs; ``0`` = all pairs, which at 100M events is out of this box's limits: some 300 bytes per
   row of the 32M rows and about 1,500 evaluations of the likelihood at ~20 s each); the
   objective's evaluations and the time in the state recursion are counted (wrappers around
   ``hawkes._objective`` and ``hawkes._states``; the results are unchanged); the parameters are
   global, so a random sample of pairs estimates them (``fits_vs_largest`` compares the samples);
3. ``hawkes_forecast`` of every pair (``--horizon`` days) from the first fit;
4. streaming: ``HawkesState(fit, n_pairs=G).step(counts)`` with a dense (G, K) float day of counts,
   for each ``--stream-pairs`` G and K = 1 (views, no satiation) and K = 4 (with satiation): the
   median of ``--steps`` steps, reported as pair-updates per second (G / seconds per step).

Memory: each child's peak resident set (``VmHWM``) is reset before a step (``/proc/self/clear_refs``,
Linux >= 4.0) and read after it, so ``peak_gib`` of a step is the process's high-water mark during
that step, *including* what it already held (``rss_before_gib``: the table, the event arrays). The
table is deleted after ``event_arrays`` (the later steps do not need it). ``pipeline_peak_gib``: the
child's high-water mark over load + ``event_arrays`` + fit + forecast, i.e. what "the fit from
daily counts" needs.

The machine's load (1-minute load average before and after each step) and each step's CPU
seconds are recorded: the box is shared, and a busy neighbour slows every number here.

Usage::

    python benchmarks/bench_hawkes_scale.py --events 10000000 --pairs 100000 --max-pairs 10000 --out /tmp/hawkes_scale_10m.json
    python benchmarks/bench_hawkes_scale.py --data-dir /tmp/hs_100m --out benchmarks/results/hawkes_scale.json  # 100M events
    python benchmarks/bench_hawkes_scale.py --skip-fit --stream-pairs 1000000 10000000

Not a test: nothing here fails because a machine is slow.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TYPES = ("view", "click", "cart", "purchase")
#: The truth of the generator (per day; ``alpha[j, k]``: one event of type j raises type k's rate).
#: ``mu`` is the shape of the baselines; it is scaled to give ``--events`` events.
TRUTH = {
    "mu": np.array([0.6, 0.2, 0.05, 0.015]),
    "alpha": np.array([[0.030, 0.010, 0.002, 0.0005],
                       [0.040, 0.040, 0.010, 0.002],
                       [0.050, 0.020, 0.050, 0.030],
                       [0.100, 0.020, 0.020, 0.030]]),
    "satiation": np.array([0.0, 0.0, 0.5, 0.9]),
    "satiation_decay": 0.3,
    "beta": 0.3,
    "r": 1.5,
}
#: Mean events per session of each type (a day's count is a Poisson number of sessions).
SESSION_SIZE = np.array([4.0, 2.0, 1.0, 1.0])
#: The largest multiplier times the branching ratio (the multiplier is capped there: no runaway).
MAX_BRANCHING = 0.9
GIB = 1024.0 ** 3


# --------------------------------------------------------------------------------------------
# Memory
# --------------------------------------------------------------------------------------------
def _status(field: str) -> float:
    """A field of /proc/self/status (VmRSS, VmHWM) in GiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024 / GIB
    return float("nan")


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def reset_peak() -> None:
    """Reset the process's peak resident set to its current one (Linux >= 4.0)."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


class Step:
    """Times a block and records the resident set before and its high-water mark during it."""

    def __init__(self, out: dict, name: str):
        self.out, self.name = out, name

    def __enter__(self):
        self.load0 = os.getloadavg()[0]
        r = resource.getrusage(resource.RUSAGE_SELF)
        self.cpu0 = r.ru_utime + r.ru_stime
        self.rss0 = _status("VmRSS")
        reset_peak()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.out[self.name] = {"seconds": round(time.perf_counter() - self.t0, 2),
                                   "peak_gib": round(_status("VmHWM"), 3), "rss_before_gib": round(self.rss0, 3),
                                   "cpu_seconds": round(_cpu() - self.cpu0, 2),
                                   "load_average_1min": [round(self.load0, 2), round(os.getloadavg()[0], 2)]}
        return False


# --------------------------------------------------------------------------------------------
# The daily counts
# --------------------------------------------------------------------------------------------
def branching_ratio(alpha: np.ndarray, beta: float) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(alpha * (np.exp(-beta) / -np.expm1(-beta))))))


def simulate_chunk(rng, theta: np.ndarray, n_days: int, mu: np.ndarray, truth=TRUTH):
    """Daily counts of the pairs with multipliers ``theta``: rows (pair index, day, counts (n, 4) int16)
    of the (pair, day) with an event, sorted by (pair, day)."""
    B, K = len(theta), len(mu)
    alpha, beta = truth["alpha"], truth["beta"]
    p = K - 1
    sa = truth["satiation"] * alpha[p]
    q, qs = np.exp(-beta), np.exp(-(beta + truth["satiation_decay"]))
    S = np.zeros((B, K))
    Q = np.zeros(B)
    rows_g, rows_d, rows_y = [], [], []
    for t in range(n_days):
        c = mu[None, :] + S @ alpha - Q[:, None] * sa[None, :]
        lam = theta[:, None] * np.maximum(c, 0.0) / SESSION_SIZE[None, :]  # sessions per day
        tot = lam.sum(axis=1)
        n = rng.poisson(tot)
        act = np.flatnonzero(n)
        if len(act):
            # split the pair's sessions between the types (exact: sequential binomials)
            la, rest = lam[act], n[act]
            sess = np.zeros((len(act), K), dtype=np.int64)
            left = tot[act]
            for k in range(K - 1):
                pk = np.clip(la[:, k] / np.maximum(left, 1e-300), 0.0, 1.0)
                sess[:, k] = rng.binomial(rest, pk)
                rest = rest - sess[:, k]
                left = left - la[:, k]
            sess[:, K - 1] = rest
            y = sess.copy()
            for k in np.flatnonzero(SESSION_SIZE > 1):
                y[:, k] += rng.poisson((SESSION_SIZE[k] - 1.0) * sess[:, k])
            S[act] += y
            Q[act] += y[:, p]
            rows_g.append(act.astype(np.int32))
            rows_d.append(np.full(len(act), t, dtype=np.int16))
            rows_y.append(y.astype(np.int16))
        S *= q
        Q *= qs
    g = np.concatenate(rows_g) if rows_g else np.zeros(0, np.int32)
    d = np.concatenate(rows_d) if rows_d else np.zeros(0, np.int16)
    y = np.concatenate(rows_y) if rows_y else np.zeros((0, K), np.int16)
    o = np.lexsort((d, g))
    return g[o], d[o], y[o]


def generate(n_pairs: int, n_days: int, events: float, seed: int = 0, chunk: int = 100_000) -> dict:
    """The daily counts table as numpy columns, plus the truth and the generator's numbers."""
    rng = np.random.default_rng(seed)
    rho = branching_ratio(TRUTH["alpha"], TRUTH["beta"])
    cap = MAX_BRANCHING / rho
    # scale the baselines: the expected total is linear in mu, so one pilot sets it
    pilot_n = min(20_000, n_pairs)
    th = np.minimum(rng.gamma(TRUTH["r"], 1.0 / TRUTH["r"], pilot_n), cap)
    _, _, yp = simulate_chunk(np.random.default_rng(seed + 1), th, n_days, TRUTH["mu"])
    scale = events / (yp.astype(np.int64).sum() / pilot_n * n_pairs)
    mu = TRUTH["mu"] * scale
    theta = np.minimum(rng.gamma(TRUTH["r"], 1.0 / TRUTH["r"], n_pairs), cap)
    cat_offset = rng.integers(0, 12, n_pairs)
    cols = {k: [] for k in ("user_id", "category", "day", *TYPES)}
    t0 = time.perf_counter()
    for lo in range(0, n_pairs, chunk):
        hi = min(n_pairs, lo + chunk)
        g, d, y = simulate_chunk(np.random.default_rng([seed, lo]), theta[lo:hi], n_days, mu)
        g = g.astype(np.int64) + lo
        cols["user_id"].append((g // 4).astype(np.int32))
        cols["category"].append(((g % 4) * 12 + cat_offset[g]).astype(np.int16))  # 4 distinct of 48 per user
        cols["day"].append(d)
        for j, t in enumerate(TYPES):
            cols[t].append(np.ascontiguousarray(y[:, j]))
        print(f"  generated pairs {hi:,}/{n_pairs:,} ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
    cols = {k: np.concatenate(v) for k, v in cols.items()}
    counts = np.stack([cols[t].astype(np.int64).sum() for t in TYPES])
    meta = {"pairs_generated": n_pairs, "days": n_days, "events_target": int(events), "seed": seed,
            "rows": len(cols["day"]), "events": int(counts.sum()),
            "events_by_type": dict(zip(TYPES, counts.tolist())),
            "pairs_with_events": len(np.unique(cols["user_id"].astype(np.int64) * 64 + cols["category"])),
            "events_per_row": round(float(counts.sum() / max(len(cols["day"]), 1)), 3),
            "max_count": int(max(cols[t].max() for t in TYPES)),
            "table_bytes": int(sum(v.nbytes for v in cols.values())),
            "generate_seconds": round(time.perf_counter() - t0, 1),
            "truth": {"mu": mu.tolist(), "alpha": TRUTH["alpha"].tolist(), "satiation": TRUTH["satiation"].tolist(),
                      "satiation_decay": TRUTH["satiation_decay"], "beta": TRUTH["beta"], "r": TRUTH["r"],
                      "theta_cap": round(cap, 3), "branching_ratio": round(rho, 4),
                      "session_size": SESSION_SIZE.tolist()}}
    return {"cols": cols, "meta": meta}


def ensure_data(folder: Path, n_pairs: int, n_days: int, events: float, seed: int) -> dict:
    """Generate the table into ``folder`` (one .npy per column and meta.json), unless it holds it already."""
    key = {"pairs": n_pairs, "days": n_days, "events": int(events), "seed": seed}
    mfile = folder / "meta.json"
    if mfile.exists():
        meta = json.loads(mfile.read_text())
        if meta.get("key") == key:
            print(f"reusing the table in {folder}", file=sys.stderr)
            return meta
    folder.mkdir(parents=True, exist_ok=True)
    res = generate(n_pairs, n_days, events, seed)
    for k, v in res["cols"].items():
        np.save(folder / f"{k}.npy", v)
    meta = {**res["meta"], "key": key}
    tmp = mfile.with_suffix(".tmp")
    tmp.write_text(json.dumps(meta, indent=1))
    tmp.replace(mfile)
    return meta


def load_panel(folder: Path):
    import pandas as pd

    return pd.DataFrame({k: np.load(folder / f"{k}.npy") for k in ("user_id", "category", "day", *TYPES)})


# --------------------------------------------------------------------------------------------
# The children
# --------------------------------------------------------------------------------------------
def _instrument(H, prof: dict):
    """Count the objective's evaluations and time the state recursion (wrappers; results unchanged)."""
    if not hasattr(H, "_bench_originals"):
        H._bench_originals = (H._objective, H._states)
    obj, states = H._bench_originals
    prof.update(objective_calls=0, objective_seconds=0.0, states_calls=0, states_seconds=0.0)

    def objective(*a, **k):
        t = time.perf_counter()
        try:
            return obj(*a, **k)
        finally:
            prof["objective_calls"] += 1
            prof["objective_seconds"] += time.perf_counter() - t

    def st(*a, **k):
        t = time.perf_counter()
        try:
            return states(*a, **k)
        finally:
            prof["states_calls"] += 1
            prof["states_seconds"] += time.perf_counter() - t

    H._objective, H._states = objective, st


def child_pipeline(a) -> dict:
    from decaylib.decay import hawkes as H

    out: dict = {}
    with Step(out, "load_table"):
        panel = load_panel(Path(a.data_dir))
    out["table_rows"] = len(panel)
    out["table_memory_gib"] = round(panel.memory_usage(deep=True).sum() / GIB, 3)
    with Step(out, "event_arrays"):
        ev = H.event_arrays(panel, types=TYPES)
    del panel
    out["pairs"] = ev.n_pairs
    out["event_rows"] = len(ev.day)
    out["events"] = float(ev.y.sum())
    out["max_rows_per_pair"] = int(np.bincount(ev.pair).max())
    out["event_arrays_gib"] = round(sum(x.nbytes for x in (ev.pair, ev.day, ev.y, ev.first, ev.n_days)) / GIB, 3)
    out["fits"] = {}
    first_fit = None
    for mp in a.max_pairs:
        prof: dict = {}
        _instrument(H, prof)
        name = "all" if mp == 0 else str(mp)
        res: dict = {}
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            with Step(res, "fit"):
                fit = H.fit_hawkes(ev, interval=None if a.interval == "none" else a.interval,
                                   max_pairs=None if mp == 0 else mp)
        res = res["fit"]
        res.update({k: (round(v, 2) if isinstance(v, float) else v) for k, v in prof.items()})
        res.update(beta=fit.beta, beta_interval=list(fit.beta_interval), half_life=fit.half_life, r=fit.r,
                   mu=fit.mu.tolist(), alpha=fit.alpha.tolist(), satiation=fit.satiation.tolist(),
                   satiation_decay=fit.satiation_decay, loglik=fit.loglik, n_pairs=fit.n_pairs,
                   n_events=fit.n_events, converged=fit.converged, message=fit.message,
                   warnings=[str(x.message)[:200] for x in w])
        out["fits"][name] = res
        print(f"  fit max_pairs={name}: {res['seconds']} s, peak {res['peak_gib']} GiB, beta {fit.beta:.5g}",
              file=sys.stderr, flush=True)
        if first_fit is None:
            first_fit = fit
        ev._cache.clear()
    if a.horizon > 0 and first_fit is not None:
        with Step(out, "forecast"):
            fc = H.hawkes_forecast(ev, first_fit, a.horizon)
        out["forecast"]["rows"] = len(fc)
        out["forecast"]["fit"] = a.max_pairs[0]
        out["forecast"]["horizon"] = a.horizon
    out["pipeline_peak_gib"] = round(max(v["peak_gib"] for v in [out["load_table"], out["event_arrays"],
                                                                   *out["fits"].values(),
                                                                   *([out["forecast"]] if "forecast" in out else [])]), 3)
    return out


def _truth_fit(K: int):
    from decaylib.decay import hawkes as H

    if K == 1:
        types, mu, alpha, s, sat = ("view",), TRUTH["mu"][:1], TRUTH["alpha"][:1, :1], np.zeros(1), False
    else:
        types, mu, alpha, s, sat = TYPES, TRUTH["mu"], TRUTH["alpha"], TRUTH["satiation"], True
    return H.HawkesFit(types, mu, alpha, s, TRUTH["satiation_decay"] if sat else 0.0, TRUTH["beta"], TRUTH["r"],
                       (float("nan"), float("nan")), float("nan"), 0, 0.0, True, "truth", sat=sat)


def child_stream(a) -> dict:
    from decaylib.decay import hawkes as H

    G, K = a.stream_g, a.stream_k
    fit = _truth_fit(K)
    rng = np.random.default_rng(0)
    out: dict = {"pairs": G, "K": K, "satiation": fit.sat}
    counts = rng.poisson(0.05 * SESSION_SIZE[:K], (G, K)).astype(float)  # one day of a dense table (float)
    state = H.HawkesState(fit, n_pairs=G)
    state.step(counts)  # warm-up (page faults of the state arrays)
    times = []
    rss0 = _status("VmRSS")
    reset_peak()
    for _ in range(a.steps):
        t = time.perf_counter()
        state.step(counts)
        times.append(time.perf_counter() - t)
    med = float(np.median(times))
    out.update(steps=a.steps, median_step_seconds=round(med, 4), min_step_seconds=round(min(times), 4),
               pair_updates_per_second=round(G / med), rss_before_gib=round(rss0, 3), peak_gib=round(_status("VmHWM"), 3))
    t = time.perf_counter()
    state.expected(7)
    out["expected_7_days_seconds"] = round(time.perf_counter() - t, 3)
    return out


def _rel_diff_big(f: dict, ref: dict) -> float:
    """The largest relative difference of the baselines and of the excitations that matter (>= 0.001 in ``ref``)."""
    a, b = np.r_[np.ravel(f["mu"]), np.ravel(f["alpha"])], np.r_[np.ravel(ref["mu"]), np.ravel(ref["alpha"])]
    big = np.r_[np.ones(len(f["mu"]), bool), np.ravel(ref["alpha"]) >= 1e-3]
    return float(np.max(np.abs(a[big] / b[big] - 1)))


def run_child(args: list[str]) -> dict:
    res = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    sys.stderr.write(res.stderr)
    if res.returncode != 0:
        return {"error": f"exit {res.returncode}", "stderr_tail": res.stderr[-2000:]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", type=float, default=100_000_000)
    ap.add_argument("--pairs", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-pairs", type=int, nargs="+", default=[10_000, 50_000],
                    help="fits to run, in order: fit_hawkes(max_pairs=...), 0 = all pairs; the forecast uses the first")
    ap.add_argument("--interval", choices=["wald", "profile", "none"], default="wald")
    ap.add_argument("--horizon", type=int, default=30)
    ap.add_argument("--stream-pairs", type=int, nargs="*", default=[1_000_000, 10_000_000])
    ap.add_argument("--steps", type=int, default=7)
    ap.add_argument("--data-dir", type=Path, default=None,
                    help="where the table's .npy files go (kept and reused); default: a temporary folder, removed")
    ap.add_argument("--skip-fit", action="store_true", help="only the streaming part")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--child", choices=["pipeline", "stream"], default=None, help=argparse.SUPPRESS)
    ap.add_argument("--stream-g", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--stream-k", type=int, default=0, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child == "pipeline":
        print(json.dumps(child_pipeline(a), default=float))
        return {}
    if a.child == "stream":
        print(json.dumps(child_stream(a), default=float))
        return {}
    out: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                             "platform": platform.platform()},
                 "goals": {"fit_seconds": 300, "fit_gib": 4.0, "stream_pair_updates_per_second": 10_000_000}}
    tmp_dir = None
    if not a.skip_fit:
        folder = a.data_dir
        if folder is None:
            folder = tmp_dir = Path(tempfile.mkdtemp(prefix="hawkes_scale_"))
        try:
            out["table"] = ensure_data(folder, a.pairs, a.days, a.events, a.seed)
            print(json.dumps({k: v for k, v in out["table"].items() if k != "truth"}), file=sys.stderr)
            out["pipeline"] = run_child(["--child", "pipeline", "--data-dir", str(folder), "--interval", a.interval,
                                         "--horizon", str(a.horizon),
                                         "--max-pairs", *map(str, a.max_pairs)])
        finally:
            if tmp_dir is not None:
                shutil.rmtree(tmp_dir, ignore_errors=True)
        fits = out["pipeline"].get("fits", {})
        if len(fits) > 1:  # each fit against the one on the most pairs
            ref_name = max(fits, key=lambda k: fits[k].get("n_pairs", 0))
            ref = fits[ref_name]
            out["fits_vs_largest"] = {
                "largest": ref_name,
                **{name: {"beta_rel_diff": f["beta"] / ref["beta"] - 1,
                          "beta_within_largest_interval": bool(ref["beta_interval"][0] <= f["beta"] <= ref["beta_interval"][1]),
                          "largest_beta_within_its_interval": bool(f["beta_interval"][0] <= ref["beta"] <= f["beta_interval"][1]),
                          "max_rel_diff_mu_and_alpha_over_0.001": _rel_diff_big(f, ref)}
                   for name, f in fits.items() if name != ref_name and "beta" in f and "beta" in ref}}
    out["stream"] = []
    for G in a.stream_pairs:
        for K in (1, 4):
            r = run_child(["--child", "stream", "--stream-g", str(G), "--stream-k", str(K), "--steps", str(a.steps)])
            print(json.dumps(r), file=sys.stderr, flush=True)
            out["stream"].append(r)
    print(json.dumps(out, indent=1, default=float))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = a.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=1, default=float))
        tmp.replace(a.out)
    return out


if __name__ == "__main__":
    main()
