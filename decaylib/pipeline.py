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


#: Default forecaster settings, shared by notebook 03's parameters cell (a test checks they
#: agree) and by :func:`ensure_forecasts`, which rebuilds the cross-fitted forecasts when a later
#: notebook runs without notebook 03.
FORECAST_DEFAULTS = {
    "cell": "lstm",
    "seq_length": 14,
    "horizon": 7,
    "hidden_size": 32,
    "num_layers": 1,
    "learning_rate": 0.003,
    "batch_size": 256,
    "n_folds": 3,
    "cv_epochs": 6,
    "max_train_windows": 40000,
    "seed": 42,
}
FORECAST_COLUMNS = ("user_id", "category", "origin_day", "horizon", "interest_pred", "model", "split")


def cross_fit_forecasts(panel: pd.DataFrame, device: str = "auto", progress: bool = False, **params):
    """Out-of-fold forecasts for every user (see :func:`decaylib.train.cross_validate`).

    Returns ``(cv_table, forecasts)`` with ``forecasts`` in the ``forecasts.parquet`` layout
    (``model`` = the cell, ``split`` = ``"cross_fit"``).
    """
    from .sequences import user_folds
    from .train import cross_validate

    unknown = sorted(set(params) - set(FORECAST_DEFAULTS))
    if unknown:
        raise TypeError(f"unknown forecasting parameter(s) {unknown}; valid ones are {sorted(FORECAST_DEFAULTS)}")
    p = {**FORECAST_DEFAULTS, **params}
    folds = user_folds(panel["user_id"].unique(), n_folds=p["n_folds"], seed=p["seed"])
    config = {"cell": p["cell"], "hidden_size": p["hidden_size"], "num_layers": p["num_layers"]}
    cv, ff = cross_validate(
        panel, config, folds=folds, seq_length=p["seq_length"], horizon=p["horizon"], epochs=p["cv_epochs"],
        batch_size=p["batch_size"], learning_rate=p["learning_rate"], seed=p["seed"], device=device,
        progress=progress, max_train_windows=p["max_train_windows"], return_forecasts=True,
    )
    ff = ff.assign(model=p["cell"], split="cross_fit")[list(FORECAST_COLUMNS)]
    return cv, ff


def ensure_forecasts(data_dir, force: bool = False, verbose: bool = True, device: str = "auto", **params) -> pd.DataFrame:
    """Load ``forecasts.parquet``, or rebuild its cross-fitted part from the (ensured) panel.

    Notebook 03 writes both the test-user forecasts of each cell and the cross-fitted ones; the
    rebuild here writes only the cross-fitted forecasts, which is what notebooks 04-07 use.
    """
    d = Path(data_dir)
    path = d / "forecasts.parquet"
    if not force and path.exists():
        if verbose:
            print(f"Loaded forecasts from {d}")
        return io.read_parquet(path, FORECAST_COLUMNS)
    panel = ensure_panel(d, verbose=verbose)
    if verbose:
        print("forecasts.parquet is missing: cross-fitting the forecaster (notebook 03's defaults) ...")
    _, ff = cross_fit_forecasts(panel, device=device, **params)
    io.write_parquet(ff, path)
    return ff
