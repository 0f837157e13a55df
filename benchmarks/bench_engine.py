"""Benchmark: events -> daily counts per pair (+ duplicates, bot statistics) in pandas and in DuckDB.

``--make N`` (``--chunks K``: a folder of K files, simulated one at a time) writes a simulated log of about N events to Parquet (the simulator with
``n_users = N / 1800``, about 1,800 events per user at the defaults); ``--engine pandas`` or
``--engine duckdb`` then runs the same steps on it in a fresh process and prints the wall time
and the peak resident memory of the process:

* pandas: read the Parquet file, drop exact duplicates, per-user statistics of the bot rule
  (:func:`decaylib.data.clean.detect_bots`), daily counts per pair and event type (the table the
  panel is built from); ``--full`` runs the whole :func:`decaylib.data.preprocess.preprocess` instead
  (with the dense panel);
* ``--full``: the whole :func:`decaylib.data.preprocess.preprocess` with ``engine="pandas"`` (after
  ``pd.read_parquet``) or ``engine="duckdb"`` (reading the files itself): the same result, the
  panel built in pandas at the end; the default run compares these two;
* duckdb ``--stats``: :func:`decaylib.data.engine.preprocess_stats` (the same cleaning, then the
  sufficient statistics of every pair, no panel) and λ for every pair
  (:func:`decaylib.decay.stream.lambda_from_stats`): events to λ for the largest logs;
* duckdb without options: :func:`decaylib.data.engine.log_counts`, :func:`~decaylib.data.engine.user_stats` (then the same
  bot rule on that small table) and :func:`~decaylib.data.engine.daily_counts`, reading the file itself
  and, with ``--stats``, :func:`~decaylib.data.engine.pair_stats` and λ for every pair
  (:func:`decaylib.decay.stream.lambda_from_stats`): events to λ without a dense panel.

Usage::

    python benchmarks/bench_engine.py --make 10000000 --path /tmp/events10m.parquet
    python benchmarks/bench_engine.py --engine pandas --path /tmp/events10m.parquet
    python benchmarks/bench_engine.py --engine duckdb --path /tmp/events10m.parquet --stats
    python benchmarks/bench_engine.py          # all of it at 10M events (what `make bench` runs)
    # the largest log, events -> cleaning -> sufficient statistics -> λ, without a panel:
    python benchmarks/bench_engine.py --replicate 10 --source /tmp/events10m.parquet --path /tmp/events100m
    python benchmarks/bench_engine.py --engine duckdb --stats --path /tmp/events100m --memory-limit 8GB

Not a test: nothing here fails because a machine is slow.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make(n: int, path: str, seed: int = 0, chunks: int = 1) -> dict:
    """About ``n`` simulated events to ``path``: one Parquet file, or with ``chunks > 1`` a folder of
    ``chunks`` files, each an independent simulation (seed ``seed + i``) of ``n / chunks`` events with
    its users renumbered after the previous chunk's, so the memory needed is that of one chunk."""
    from decaylib.data.synth import simulate

    if chunks <= 1:
        sim = simulate(n_users=max(10, int(round(n / 1800))), seed=seed)
        tmp = Path(str(path) + ".tmp")
        sim.events.to_parquet(tmp, index=False)
        tmp.replace(path)
        return {"events": len(sim.events), "path": str(path)}
    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    users = max(10, int(round(n / chunks / 1800)))
    total = 0
    for i in range(chunks):
        ev = simulate(n_users=users, seed=seed + i).events
        ev["user_id"] += i * users
        ev.to_parquet(folder / f"part-{i:04d}.parquet", index=False)
        total += len(ev)
        del ev
    return {"events": total, "path": str(folder), "files": chunks}


def replicate(source: str, copies: int, path: str) -> dict:
    """``copies`` copies of the log ``source`` into the folder ``path`` (one Parquet file each), the
    user ids of copy ``i`` shifted past those of copy ``i - 1``: a log ``copies`` times larger with
    the same per-user behaviour, written by DuckDB in seconds (simulating 100M events takes long)."""
    import duckdb

    folder = Path(path)
    folder.mkdir(parents=True, exist_ok=True)
    src = str(source).replace("'", "''")
    shift = int(duckdb.sql(f"SELECT max(user_id) + 1 FROM read_parquet('{src}')").fetchall()[0][0])
    for i in range(copies):
        dst = str(folder / f"copy-{i:04d}.parquet").replace("'", "''")
        duckdb.sql(f"COPY (SELECT user_id + {i * shift} AS user_id, item_id, category, ts, event FROM read_parquet('{src}')) "
                   f"TO '{dst}' (FORMAT parquet)")
    n = int(duckdb.sql(f"SELECT count(*) FROM read_parquet('{str(folder).replace(chr(39), chr(39) * 2)}/*.parquet')").fetchall()[0][0])
    return {"events": n, "path": str(folder), "files": copies}


def run_pandas(path: str, full: bool) -> dict:
    from decaylib.data import clean as CL
    from decaylib.data import panel as PN
    from decaylib.data import preprocess as PP

    t0 = time.perf_counter()
    ev = pd.read_parquet(path)
    out = {"events": len(ev)}
    if full:
        res = PP.preprocess(ev, max_panel_rows=None, engine="pandas")
        out["panel_rows"] = len(res.panel)
    else:
        ev = ev.drop_duplicates()
        bots = CL.detect_bots(ev)
        ev = ev[~ev["user_id"].isin(bots.loc[bots["is_bot"], "user_id"])]
        keys = pd.DataFrame({"user_id": ev["user_id"].to_numpy(), "category": ev["category"].to_numpy(),
                             "day": PN.event_days(ev["ts"])})
        counts = PN._daily_counts(keys, ev["event"].to_numpy())
        out["count_rows"] = len(counts)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def run_duckdb(path: str, stats: bool, threads: int | None, full: bool = False, memory_limit: str | None = None) -> dict:
    import warnings

    from decaylib.data import clean as CL
    from decaylib.data import engine as EN
    from decaylib.data import preprocess as PP

    t0 = time.perf_counter()
    if full or stats:  # the whole preprocess() (panel) or its cleaning up to the statistics and λ (no panel)
        con = EN.connect(threads=threads, memory_limit=memory_limit)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if stats:
                from decaylib.decay.stream import lambda_from_stats

                res = EN.preprocess_stats(path, con=con, progress=True)
                t1 = time.perf_counter()
                lam = lambda_from_stats(res.stats, res.outage_days)
                out = {"events": int(res.report.to_frame()["rows_before"].iloc[0]), "pairs": len(res.stats),
                       "pairs_ok": int((lam["reason"] == "ok").sum()), "seconds_stats": round(t1 - t0, 2),
                       "seconds_lambda": round(time.perf_counter() - t1, 2)}
            else:
                res = PP.preprocess(path, engine="duckdb", max_panel_rows=None, con=con, progress=True)
                out = {"events": int(res.report.to_frame()["rows_before"].iloc[0]), "panel_rows": len(res.panel)}
        out["bots"] = len(res.bot_users)
        out["outage_days"] = len(res.outage_days)
        out["seconds"] = round(time.perf_counter() - t0, 2)
        return out
    store = EN.EventStore(path, con=EN.connect(threads=threads))  # read and de-duplicated once
    info = store.log_counts()
    users = store.user_stats()
    # the bot rule on the small per-user table (detect_bots' formula, from its inputs)
    x = np.log(users["n_events"] / users["active_days"])
    med = float(np.median(x))
    mad = float(np.median(np.abs(x - med))) * CL.MAD_TO_SD
    bots = users.loc[(x - med) / max(mad, 1e-12) > 4.0, "user_id"].tolist() if mad > 0 else []
    counts = store.daily_counts(exclude_users=bots)
    out = {"events": info["rows"], "duplicates": info["duplicates"], "count_rows": len(counts)}
    if stats:
        from decaylib.decay.stream import lambda_from_stats

        st = store.pair_stats(exclude_users=bots)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            lam = lambda_from_stats(st)
        out["pairs"] = len(st)
        out["pairs_ok"] = int((lam["reason"] == "ok").sum())
    out["seconds"] = round(time.perf_counter() - t0, 2)
    return out


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--make", type=int, default=None, help="write a simulated log of about N events to --path")
    ap.add_argument("--path", default="/tmp/decaylib_bench_events.parquet")
    ap.add_argument("--engine", choices=("pandas", "duckdb"), default=None)
    ap.add_argument("--chunks", type=int, default=1, help="--make: write a folder of this many Parquet files")
    ap.add_argument("--replicate", type=int, default=None,
                    help="write this many copies of the log --source (users renumbered) into the folder --path")
    ap.add_argument("--source", default=None, help="--replicate: the log to copy")
    ap.add_argument("--full", action="store_true", help="the whole preprocess() with the dense panel (engine=pandas|duckdb)")
    ap.add_argument("--stats", action="store_true",
                    help="duckdb: preprocess_stats (the same cleaning, sufficient statistics, no panel) and λ for every pair")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--memory-limit", default=None, help="duckdb memory_limit, e.g. 8GB (it spills to disk beyond)")
    args = ap.parse_args(argv)
    if args.replicate:
        out = replicate(args.source, args.replicate, args.path)
    elif args.make:
        out = make(args.make, args.path, chunks=args.chunks)
    elif args.engine == "pandas":
        out = run_pandas(args.path, args.full)
    elif args.engine == "duckdb":
        out = run_duckdb(args.path, args.stats, args.threads, args.full, args.memory_limit)
    else:  # the whole comparison: write the log if needed, then each engine in its own process
        import subprocess

        if not Path(args.path).exists():
            print(json.dumps(make(10_000_000, args.path)))
        runs = {}
        for eng in (["pandas", "--full"], ["duckdb", "--full"]):
            res = subprocess.run([sys.executable, __file__, "--engine", *eng, "--path", args.path],
                                 capture_output=True, text=True, check=True)
            runs[eng[0]] = json.loads(res.stdout.strip().splitlines()[-1])
            print(res.stdout.strip().splitlines()[-1])
        out = {"speedup_duckdb": round(runs["pandas"]["seconds"] / runs["duckdb"]["seconds"], 2),
               "memory_ratio_duckdb": round(runs["duckdb"]["peak_rss_mb"] / runs["pandas"]["peak_rss_mb"], 2)}
    out["peak_rss_mb"] = round(peak_mb())
    out["engine"] = args.engine
    print(json.dumps(out, default=str))
    return out


if __name__ == "__main__":
    main()
