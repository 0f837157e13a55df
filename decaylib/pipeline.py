"""Build-or-load helpers that let every notebook run on its own in a fresh kernel.

Each ``ensure_*`` function returns a stage's artifacts from ``data_dir`` when they exist and
otherwise rebuilds them through decaylib (and writes them, atomically), so that notebook 02 can be
run without notebook 01 having been run first, and so on.  This module sits on top of the stages:
it may import any of them, and no stage imports it.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pandas as pd

from . import io
from .preprocess import PANEL_COLUMNS, preprocess
from .synth import SimConfig, simulate

__all__ = ["EVENTS_FILES", "save_simulation", "load_simulation", "ensure_simulation", "save_panel", "ensure_panel"]

EVENTS_FILES = ("events.parquet", "truth.parquet", "truth_daily.parquet", "sim_meta.json")
TRUTH_COLUMNS = ("user_id", "category", "t_start", "t_peak", "peak_interest", "lam", "half_life", "is_bot")


def save_simulation(sim, data_dir) -> dict:
    """Write a :class:`~decaylib.synth.Simulation` to ``data_dir`` (Parquet + a JSON of its metadata)."""
    d = Path(data_dir)
    io.write_parquet(sim.events, d / "events.parquet")
    io.write_parquet(sim.truth, d / "truth.parquet")
    io.write_parquet(sim.truth_daily, d / "truth_daily.parquet")
    meta = {"config": asdict(sim.config), "outage_days": sim.outage_days, "n_duplicates": sim.n_duplicates,
            "bot_users": sim.bot_users, "summary": sim.summary()}
    io.write_json(meta, d / "sim_meta.json")  # written last: its presence marks a complete set
    return meta


def load_simulation(data_dir) -> dict:
    """Read the simulator's artifacts: ``events``, ``truth``, ``truth_daily`` and ``meta``."""
    d = Path(data_dir)
    made_by = "notebook 01_synthetic_events (or decaylib.pipeline.ensure_simulation)"
    meta = io.read_json(d / "sim_meta.json", made_by=made_by)
    return {
        "events": io.read_parquet(d / "events.parquet", ["user_id", "item_id", "category", "ts", "event"], made_by),
        "truth": io.read_parquet(d / "truth.parquet", TRUTH_COLUMNS, made_by),
        "truth_daily": io.read_parquet(d / "truth_daily.parquet", ["user_id", "category", "day", "interest"], made_by),
        "meta": meta,
    }


def ensure_simulation(data_dir, force: bool = False, verbose: bool = True, **sim_params) -> dict:
    """Load the simulation from ``data_dir``, or simulate with ``sim_params`` and save it.

    When the artifacts exist and were made with different ``sim_params``, they are kept (they are
    the input the later notebooks were built on) and a note says so; pass ``force=True`` to
    regenerate.
    """
    d = Path(data_dir)
    if not force and all((d / f).exists() for f in EVENTS_FILES):
        sim = load_simulation(d)
        cfg = sim["meta"]["config"]
        differ = {k: (cfg.get(k), v) for k, v in sim_params.items() if cfg.get(k) != v}
        if verbose:
            note = f" (differs from the requested parameters: {differ}; pass force=True to regenerate)" if differ else ""
            print(f"Loaded the simulation from {d}{note}")
        return sim
    sim = simulate(SimConfig(), **sim_params)
    save_simulation(sim, d)
    if verbose:
        print(f"Simulated {sim.summary()['n_events']:,} events and saved them to {d}")
    return load_simulation(d)


def save_panel(result, data_dir, extra_meta: dict | None = None) -> None:
    d = Path(data_dir)
    io.write_parquet(result.panel, d / "panel.parquet")
    meta = {
        "bot_users": result.bot_users,
        "outage_days": result.outage_days,
        "cleaning": result.report.to_frame().to_dict(orient="records"),
        **(extra_meta or {}),
    }
    io.write_json(meta, d / "panel_meta.json")


def ensure_panel(data_dir, force: bool = False, verbose: bool = True, weights: dict | None = None, **sim_params) -> pd.DataFrame:
    """Load ``panel.parquet`` from ``data_dir``, or build it from the (ensured) simulation."""
    d = Path(data_dir)
    if not force and (d / "panel.parquet").exists() and (d / "panel_meta.json").exists():
        if verbose:
            print(f"Loaded the panel from {d}")
        return io.read_parquet(d / "panel.parquet", PANEL_COLUMNS)
    sim = ensure_simulation(d, verbose=verbose, **sim_params)
    cfg = sim["meta"]["config"]
    res = preprocess(sim["events"], weights=weights, start_date=cfg["start_date"], end_day=cfg["n_days"] - 1)
    save_panel(res, d, {"weights": weights})
    if verbose:
        print(f"Built the panel ({len(res.panel):,} rows) and saved it to {d}")
    return res.panel
