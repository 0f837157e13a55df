"""Benchmark: peak memory of the forecasting stage and of the decay stage's inputs against the log's size.

Issue 20: *on an 18-month purchase log of 23,570 customers notebook 03 was killed at 20.6 GB; the
goal is at most 3 GB per kernel at 25k users x 540 days.*  This measures, for each ``--users``
(default 5k, 10k and 25k) over ``--days`` days (default 540), the peak resident set of:

1. **forecast** (what notebook 03 and :func:`decaylib.workflow.pipeline.ensure_forecasts` run on the
   panel): ``split_windows`` = notebook 03's library calls (user split, transforms,
   ``build_split_windows`` for train / val / test, ``sample(max_train_windows)``, a short
   ``train_model`` with validation, the test users' forecasts for every origin with
   ``forecast_frame``); ``cross_fit`` = :func:`~decaylib.workflow.pipeline.cross_fit_forecasts`
   (per fold: windows, a short training, validation metrics, out-of-fold forecasts of every origin);
   ``write_forecasts`` = ``forecasts.parquet`` written;
2. **decay_inputs** (what notebooks 04 and 05 start from): ``panel.parquet`` and
   ``forecasts.parquet`` read back with :func:`decaylib.artifacts.read_parquet` (the reader of every
   stage set), the cross-fitted rows selected as notebook 04 does.

Files are written with :func:`decaylib.artifacts.write_parquet` (what ``save_stage`` uses).

Each part runs in a fresh child process (its address space capped at ``--max-gib`` with
``RLIMIT_AS``, so a run can never starve the machine); each step records the child's high-water
mark of resident memory (``VmHWM``, which includes what the child already held: the panel,
PyTorch), its seconds and the 1-minute load average (the box is shared: a busy neighbour slows
every number here, but not the memory).  ``slope_mib_per_1k_users`` is the least-squares slope of
each part's peak against the number of users; ``eager_x_gib`` is what the windows' inputs alone
took before windows became index arrays (every window of the training users copied out as
``[n, seq_length, n_features]`` float32).  A size whose cross-fitted forecast table (every origin of
every user x ``horizon`` rows) would exceed the memory budget
(:data:`decaylib.forecast.sequences.WINDOW_MEMORY_BUDGET`, 2 GiB; ``--budget-gib`` sets
``DECAYLIB_MEMORY_BUDGET_GIB`` for the children) is refused before any training: the run records
the message (``cross_fit_refused``) and has no ``decay_inputs``.

**The panel** is built directly, not simulated (the simulator's event rows at 25k users x 540
days would take longer than the measured stage): ``--pairs-per-user`` (mean, at least 1) (user,
category) pairs per user, each starting on a uniform random day in the first ``days - 30`` days
and zero-filled to the last day, as ``preprocess`` does by default (``until="end"``), with the
panel's columns and dtypes.  Counts are Poisson with a rate that decays from the pair's first day
(a sparse purchase-like log: most days are zero).  The forecaster uses notebook 03's defaults
except ``cv_epochs`` and ``max_train_windows`` (``--cv-epochs``, ``--max-train-windows``: memory,
not accuracy).

Usage::

    python benchmarks/bench_memory_scale.py --out benchmarks/results/memory_scale.json
    python benchmarks/bench_memory_scale.py --users 2000 --days 200 --out /tmp/mem_small.json

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
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

GIB = 1024.0 ** 3
MIB = 1024.0 ** 2


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


class Step:
    """Times a block; records the resident set before it and the process's high-water mark after it."""

    def __init__(self, out: dict, name: str):
        self.out, self.name = out, name

    def __enter__(self):
        self.load0 = os.getloadavg()[0]
        self.rss0 = _status("VmRSS")
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            self.out[self.name] = {"seconds": round(time.perf_counter() - self.t0, 2),
                                   "peak_gib": round(_status("VmHWM"), 3), "rss_before_gib": round(self.rss0, 3),
                                   "load_average_1min": [round(self.load0, 2), round(os.getloadavg()[0], 2)]}
        return False


# --------------------------------------------------------------------------------------------
# The panel
# --------------------------------------------------------------------------------------------
def make_panel(n_users: int, n_days: int, pairs_per_user: float, n_categories: int, seed: int):
    """A daily panel (``PANEL_COLUMNS``, the dtypes of ``preprocess``), sorted by (user, category, day)."""
    import pandas as pd

    from decaylib.schema import DEFAULT_WEIGHTS, PANEL_COLUMNS

    rng = np.random.default_rng(seed)
    k = np.minimum(1 + rng.poisson(pairs_per_user - 1, size=n_users), n_categories)
    user = np.repeat(np.arange(n_users, dtype=np.int64), k)
    first = np.repeat(np.cumsum(k) - k, k)
    offset = np.repeat(rng.integers(0, n_categories, size=n_users), k)
    category = ((offset + np.arange(user.size) - first) % n_categories).astype(np.int64)
    order = np.lexsort((category, user))
    user, category = user[order], category[order]
    n_pairs = user.size
    t0 = rng.integers(0, n_days - 30, size=n_pairs)
    length = n_days - t0
    starts = np.cumsum(length) - length
    pair = np.repeat(np.arange(n_pairs), length)
    day = (np.arange(length.sum()) - starts[pair] + t0[pair]).astype(np.int64)
    age = day - t0[pair]
    peak = rng.lognormal(np.log(0.6), 0.7, size=n_pairs)
    lam = rng.uniform(0.01, 0.2, size=n_pairs)
    mu = peak[pair] * np.exp(-lam[pair] * age) + 0.003
    cols = {"user_id": user[pair], "category": category[pair], "day": day}
    for name, share in (("view", 3.0), ("click", 1.0), ("cart", 0.3), ("purchase", 0.1)):
        cols[name] = rng.poisson(share * mu).astype(np.int64)
    cols["view"][age == 0] += 1  # a pair starts on its first event
    cols["impression"] = rng.poisson(0.3, size=day.size).astype(np.int64)
    interest = sum(w * cols[b].astype(np.float64) for b, w in DEFAULT_WEIGHTS.items())
    cols.update(interest=interest, interest_smooth=interest.copy(), observed=np.ones(day.size, dtype=bool))
    return pd.DataFrame({c: cols[c] for c in PANEL_COLUMNS}, copy=False)


# --------------------------------------------------------------------------------------------
# Children
# --------------------------------------------------------------------------------------------
def _cap(max_gib: float) -> None:
    lim = int(max_gib * GIB)
    resource.setrlimit(resource.RLIMIT_AS, (lim, lim))


def child_forecast(a) -> dict:
    _cap(a.max_gib)
    import torch

    from decaylib.artifacts import read_parquet, write_parquet
    from decaylib.checks import MemoryBudgetError
    from decaylib.forecast.models import build_model
    from decaylib.forecast.sequences import (
        build_split_windows,
        build_windows,
        fit_feature_stats,
        fit_target_transform,
        split_users,
    )
    from decaylib.forecast.train import forecast_frame, predict_interest, train_model
    from decaylib.workflow.pipeline import FORECAST_DEFAULTS, cross_fit_forecasts

    torch.set_num_threads(1)
    out: dict = {}
    d = Path(a.work_dir)
    p = dict(FORECAST_DEFAULTS, cv_epochs=a.cv_epochs, max_train_windows=a.max_train_windows)
    with Step(out, "load_panel"):
        panel = read_parquet(d / "panel.parquet")
    if not a.skip_notebook_steps:
        with Step(out, "split_windows"):
            tr_u, va_u, te_u = split_users(panel["user_id"].unique(), 0.15, 0.15, seed=p["seed"])
            fs, ts = fit_feature_stats(panel, tr_u), fit_target_transform(panel, tr_u)
            win = build_split_windows(panel, fs, ts, {"train": tr_u, "val": va_u, "test": te_u},
                                      seq_length=p["seq_length"], horizon=p["horizon"])
            train_w = win["train"].sample(p["max_train_windows"], seed=p["seed"])
            model = build_model({"n_features": len(fs.columns), "horizon": p["horizon"], "cell": p["cell"],
                                 "hidden_size": p["hidden_size"], "num_layers": p["num_layers"]}, seed=p["seed"])
            train_model(model, train_w, win["val"], epochs=a.cv_epochs, batch_size=p["batch_size"],
                        learning_rate=p["learning_rate"], seed=p["seed"], device="cpu", progress=False)
            predict_interest(model, win["test"], ts, device="cpu")
            every = build_windows(panel, fs, seq_length=p["seq_length"], horizon=p["horizon"], users=te_u,
                                  with_target=False)
            test_ff = forecast_frame(model, every, ts, device="cpu")
            out["windows"] = {k: len(w) for k, w in win.items()}
            out["eager_x_gib"] = round(len(win["train"]) * p["seq_length"] * len(fs.columns) * 4 / GIB, 3)
            out["test_forecast_rows"] = len(test_ff)
            del win, train_w, every, test_ff, model
    try:
        with Step(out, "cross_fit"):
            cv, ff = cross_fit_forecasts(panel, device="cpu", cv_epochs=a.cv_epochs,
                                         max_train_windows=a.max_train_windows)
    except MemoryBudgetError as e:  # refused up front, with the parameter to change: recorded as the result
        out["cross_fit_refused"] = str(e)
        out["peak_gib"] = round(_status("VmHWM"), 3)
        return out
    out["cross_fit_windows"] = int(cv["n_val_windows"].sum())
    out["forecast_rows"] = len(ff)
    out["forecast_frame_gib"] = round(ff.memory_usage(deep=True).sum() / GIB, 3)
    with Step(out, "write_forecasts"):
        write_parquet(ff, d / "forecasts.parquet")
    out["peak_gib"] = round(_status("VmHWM"), 3)
    return out


def child_decay(a) -> dict:
    _cap(a.max_gib)
    from decaylib.artifacts import read_parquet

    out: dict = {}
    d = Path(a.work_dir)
    with Step(out, "read_inputs"):
        panel = read_parquet(d / "panel.parquet")
        forecasts = read_parquet(d / "forecasts.parquet")
        cross_fit = forecasts.query("split == 'cross_fit'")
    out["rows"] = {"panel": len(panel), "forecasts": len(forecasts), "cross_fit": len(cross_fit)}
    out["peak_gib"] = round(_status("VmHWM"), 3)
    return out


def run_child(args: list[str]) -> dict:
    res = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    peak_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / GIB
    if res.returncode != 0:
        return {"error": f"exit {res.returncode}", "stderr_tail": res.stderr[-2000:]}
    r = json.loads(res.stdout.strip().splitlines()[-1])
    r["ru_maxrss_children_gib"] = round(peak_children, 3)  # the largest child so far (a cross-check)
    return r


def _slope(xs, ys) -> float | None:
    pts = [(x, y) for x, y in zip(xs, ys) if y is not None]
    if len(pts) < 2:
        return None
    x = np.array([p[0] for p in pts], dtype=float) / 1000.0
    y = np.array([p[1] for p in pts], dtype=float) * GIB / MIB
    return round(float(np.polyfit(x, y, 1)[0]), 1)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--users", type=int, nargs="+", default=[5000, 10000, 25000])
    ap.add_argument("--days", type=int, default=540)
    ap.add_argument("--pairs-per-user", type=float, default=1.5)
    ap.add_argument("--categories", type=int, default=8)
    ap.add_argument("--cv-epochs", type=int, default=1)
    ap.add_argument("--max-train-windows", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-gib", type=float, default=8.0, help="address-space cap of each child (RLIMIT_AS)")
    ap.add_argument("--budget-gib", type=float, default=None,
                    help="DECAYLIB_MEMORY_BUDGET_GIB for the children (default: the library's 2 GiB)")
    ap.add_argument("--skip-notebook-steps", action="store_true", help="only the pipeline's cross-fit")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--append", action="store_true",
                    help="keep the runs already in --out (same settings), replacing those of the same --users")
    ap.add_argument("--child", choices=["forecast", "decay"], default=None, help=argparse.SUPPRESS)
    ap.add_argument("--work-dir", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        print(json.dumps((child_forecast if a.child == "forecast" else child_decay)(a), default=float))
        return {}
    import pandas as pd
    import torch

    out: dict = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                             "pandas": pd.__version__, "torch": torch.__version__, "platform": platform.platform()},
                 "goal": {"users": 25000, "days": 540, "peak_gib": 3.0},
                 "settings": {"days": a.days, "pairs_per_user": a.pairs_per_user, "categories": a.categories,
                              "cv_epochs": a.cv_epochs, "max_train_windows": a.max_train_windows, "seed": a.seed,
                              "max_gib": a.max_gib, "notebook_steps": not a.skip_notebook_steps},
                 "runs": []}
    if a.budget_gib is not None:
        out["settings"]["budget_gib"] = a.budget_gib
        os.environ["DECAYLIB_MEMORY_BUDGET_GIB"] = str(a.budget_gib)
    common = ["--cv-epochs", str(a.cv_epochs), "--max-train-windows", str(a.max_train_windows),
              "--max-gib", str(a.max_gib)] + (["--skip-notebook-steps"] if a.skip_notebook_steps else [])
    for n in a.users:
        work = Path(tempfile.mkdtemp(prefix="mem_scale_"))
        try:
            t0 = time.perf_counter()
            panel = make_panel(n, a.days, a.pairs_per_user, a.categories, a.seed)
            run = {"users": n, "panel_rows": len(panel),
                   "pairs": int(panel.groupby(["user_id", "category"], sort=False).ngroups),
                   "active_rows": int((panel["interest"] > 0).sum()),
                   "panel_gib": round(panel.memory_usage(deep=True).sum() / GIB, 3)}
            panel.to_parquet(work / "panel.parquet")
            del panel
            run["make_panel_seconds"] = round(time.perf_counter() - t0, 1)
            print(json.dumps(run), file=sys.stderr, flush=True)
            run["forecast"] = run_child(["--child", "forecast", "--work-dir", str(work), *common])
            print(json.dumps(run["forecast"]), file=sys.stderr, flush=True)
            if "error" not in run["forecast"] and "cross_fit_refused" not in run["forecast"]:
                run["decay_inputs"] = run_child(["--child", "decay", "--work-dir", str(work), "--max-gib", str(a.max_gib)])
                print(json.dumps(run["decay_inputs"]), file=sys.stderr, flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        out["runs"].append(run)
    if a.append and a.out and a.out.exists():
        old = json.loads(a.out.read_text())
        if old.get("settings") != out["settings"]:
            raise SystemExit(f"--append: {a.out} was measured with {old.get('settings')}, not {out['settings']}")
        mine = {r["users"] for r in out["runs"]}
        out["runs"] = sorted([r for r in old["runs"] if r["users"] not in mine] + out["runs"], key=lambda r: r["users"])
    measured = [r for r in out["runs"] if "cross_fit" in r.get("forecast", {})]  # refusals are not peaks
    out["slope_mib_per_1k_users"] = {
        part: _slope([r["users"] for r in measured], [r.get(part, {}).get("peak_gib") for r in measured])
        for part in ("forecast", "decay_inputs")}
    print(json.dumps(out, indent=1, default=float))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        tmp = a.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=1, default=float))
        tmp.replace(a.out)
    return out


if __name__ == "__main__":
    main()
