"""Build-or-load helpers that let every notebook run on its own in a fresh kernel.

Each ``ensure_*`` function returns a stage's artifacts from ``data_dir`` when they exist and
otherwise rebuilds them through decaylib (and writes them, atomically), so that notebook 02 can be
run without notebook 01 having been run first, and so on.  This module sits on top of the stages:
it may import any of them, and no stage imports it.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from . import io
from .preprocess import PANEL_COLUMNS, preprocess
from .synth import SimConfig, simulate

__all__ = ["EVENTS_FILES", "NO_TRUTH", "DataSource", "open_source", "suggest_windows", "check_window_span",
           "save_simulation", "load_simulation", "ensure_simulation", "save_panel", "ensure_panel", "ensure_forecasts"]

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
    bots = getattr(result, "bots", None)
    flagged = bots.loc[bots["is_bot"]] if bots is not None and {"is_bot", "user_id"} <= set(bots.columns) else None
    meta = {
        "bot_users": result.bot_users,
        # why each flagged user was flagged (the report explains a removed id with it)
        "bots": [] if flagged is None else [
            {"user_id": int(r["user_id"]), "removed": bool(r.get("removed", True)), "reason": str(r.get("reason", ""))}
            for _, r in flagged.iterrows()],
        "warnings": list(getattr(result, "warnings", []) or []),
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


# --------------------------------------------------------------------------------------------
# Where the events come from: the simulator, or the user's own log
# --------------------------------------------------------------------------------------------
#: The one line every "check against the truth" section prints on the user's own data.
NO_TRUTH = ("No ground truth for your data; see notebook 01 for how well each method does when the "
            "truth is known.")
#: Files only the simulator writes; never written beside a user's own events.
SYNTHETIC_FILES = EVENTS_FILES
OWN_DIR = "own"


def _file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


REPO_ROOT = Path(__file__).resolve().parents[1]


def _resolve_path(path) -> Path:
    """A user-given path: as given (absolute, or relative to the working directory), else relative
    to the repository root, so ``data/shop.csv`` works from the root, from ``notebooks/`` and
    through the runner alike."""
    p = Path(path).expanduser()
    for cand in (p, REPO_ROOT / p):
        if cand.exists():
            return cand
    raise FileNotFoundError(f"events_path {str(path)!r} does not exist (looked in {Path.cwd()} and {REPO_ROOT})")


def suggest_windows(span_days: int, seq_length: int, horizon: int) -> tuple[int, int]:
    """Window sizes that fit a log of ``span_days`` days: at most the requested ones, with
    ``seq_length + horizon <= span_days`` (about half the span of history, 30% ahead)."""
    h = max(1, min(int(horizon), (int(span_days) * 3) // 10))
    s = max(2, min(int(seq_length), int(span_days) // 2))
    return s, h


def check_window_span(span_days: int, seq_length: int, horizon: int, what: str = "the log") -> None:
    """Raise :class:`~decaylib.utils.InsufficientDataError` when windows of ``seq_length`` days
    plus ``horizon`` days ahead do not fit into ``span_days``; the message names the parameters
    and values that would fit."""
    from .utils import InsufficientDataError

    need = int(seq_length) + int(horizon)
    if need <= span_days:
        return
    s, h = suggest_windows(span_days, seq_length, horizon)
    if s + h > span_days:
        raise InsufficientDataError(
            f"{what} spans {span_days} days; forecasting needs at least 3 (2 days of history and 1 ahead)")
    raise InsufficientDataError(
        f"{what} spans {span_days} days; seq_length + horizon = {seq_length} + {horizon} = {need} needs at least "
        f"{need}; pass seq_length={s}, horizon={h}")


class DataSource:
    """The events a notebook runs on, and where its artifacts go.

    * ``events_path=None``: the simulator (notebook 01). Artifacts live in ``data_dir``; the truth
      is known (``truth``, ``truth_daily``).
    * ``events_path="shop.csv"``: the user's own log, read by :func:`decaylib.io.load_events` with
      the keyword arguments of ``events_mapping`` (a JSON file or a dict, see
      :func:`decaylib.io.load_mapping`). Artifacts go to ``data_dir/own/<name>-<hash>/`` (the hash
      covers the file's bytes and the mapping), so nothing synthetic is ever written beside the
      user's data, and a changed file or mapping never mixes with an older one. ``truth`` is None.

    Build it with :func:`open_source`.
    """

    def __init__(self, data_dir, events_path=None, events_mapping=None, *, verbose: bool = True, **sim_params):
        self.data_dir = Path(data_dir)
        self.verbose = verbose
        self.sim_params = dict(sim_params)
        self._sim = None
        self._log = None
        self._maps = None
        self._panel = None
        if events_path is None:
            if events_mapping is not None:
                raise ValueError("events_mapping was given without events_path; pass both, or neither to simulate")
            self.synthetic = True
            self.events_path = None
            self.mapping = {}
            self.sha256 = None
            self.artifact_dir = self.data_dir
            return
        self.synthetic = False
        path = _resolve_path(events_path)
        if path.is_dir():
            raise ValueError(f"events_path {str(path)!r} is a folder; give one CSV or Parquet file")
        self.events_path = path.resolve()
        self.mapping = io.load_mapping(events_mapping) if events_mapping is not None else {}
        import hashlib
        import json

        self.sha256 = _file_sha256(self.events_path)
        digest = hashlib.sha256(self.sha256.encode())
        digest.update(json.dumps(io.to_jsonable(self.mapping), sort_keys=True).encode())
        stem = self.events_path.name.split(".")[0] or "events"
        self.artifact_dir = self.data_dir / OWN_DIR / f"{stem}-{digest.hexdigest()[:12]}"
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        if verbose:
            print(f"Your events: {self.events_path.name}; artifacts in {self.artifact_dir}")

    # ---- simulator ------------------------------------------------------------------------
    def simulation(self) -> dict:
        """The simulator's artifacts (events, truth, truth_daily, meta); an error on own data."""
        if not self.synthetic:
            raise RuntimeError("this notebook runs on your own events: there is no simulation and no truth")
        if self._sim is None:
            self._sim = ensure_simulation(self.data_dir, verbose=self.verbose, **self.sim_params)
        return self._sim

    @property
    def truth(self):
        """Per-pair truth of the simulator, or None on the user's own events."""
        return self.simulation()["truth"] if self.synthetic else None

    @property
    def truth_daily(self):
        return self.simulation()["truth_daily"] if self.synthetic else None

    # ---- events ---------------------------------------------------------------------------
    def event_log(self):
        """The user's events as a :class:`decaylib.io.EventLog` (own data only)."""
        if self.synthetic:
            raise RuntimeError("event_log() is for your own events; the simulator's are in simulation()['events']")
        if self._log is None:
            self._log = io.load_events(self.events_path, **self.mapping)
            io.write_id_maps(self._log, self.artifact_dir)
        return self._log

    def events(self) -> pd.DataFrame:
        """The raw events (simulated, or the user's after loading), in decaylib's schema."""
        return self.simulation()["events"] if self.synthetic else self.event_log().events

    def preprocess_kwargs(self) -> dict:
        """Window and timestamp settings for :func:`decaylib.preprocess.preprocess`."""
        if self.synthetic:
            cfg = self.simulation()["meta"]["config"]
            return {"start_date": cfg["start_date"], "end_day": cfg["n_days"] - 1}
        return {"date_only": self.event_log().date_only}

    def preprocess(self, weights: dict | None = None, **kw):
        """Clean and aggregate the events (:func:`decaylib.preprocess.preprocess`) and save the panel."""
        res = preprocess(self.events(), weights=weights, **{**self.preprocess_kwargs(), **kw})
        extra = {"weights": weights, "preprocess": {k: v for k, v in kw.items()}}
        if not self.synthetic:
            extra["start_date"] = str(pd.Timestamp(res.start_date).date())
            extra["source"] = self.describe()
        save_panel(res, self.artifact_dir, extra)
        self._panel = res.panel
        return res

    def panel(self, force: bool = False) -> pd.DataFrame:
        """The daily panel: loaded from the artifacts, or built with the default settings."""
        if self._panel is not None and not force:
            return self._panel
        if self.synthetic:
            self._panel = ensure_panel(self.data_dir, force=force, verbose=self.verbose, **self.sim_params)
            return self._panel
        d = self.artifact_dir
        if not force and (d / "panel.parquet").exists() and (d / "panel_meta.json").exists():
            if self.verbose:
                print(f"Loaded the panel from {d}")
            self._panel = io.read_parquet(d / "panel.parquet", PANEL_COLUMNS)
            return self._panel
        res = self.preprocess()
        if self.verbose:
            print(f"Built the panel ({len(res.panel):,} rows) from your events and saved it to {d}")
        return self._panel

    def panel_meta(self) -> dict:
        self.panel()
        return io.read_json(self.artifact_dir / "panel_meta.json")

    @property
    def span_days(self) -> int:
        """Days from the first to the last day of the panel (inclusive)."""
        p = self.panel()
        return int(p["day"].max()) - int(p["day"].min()) + 1

    @property
    def start_date(self):
        """Calendar date of day 0."""
        if self.synthetic:
            return pd.Timestamp(self.simulation()["meta"]["config"]["start_date"])
        return pd.Timestamp(self.panel_meta().get("start_date"))

    # ---- forecasts ------------------------------------------------------------------------
    def forecasts(self, device: str = "auto", force: bool = False, **params) -> pd.DataFrame:
        """Cross-fitted forecasts (``forecasts.parquet``), built if missing.

        On a log shorter than ``seq_length + horizon`` days the windows are shrunk to fit
        (:func:`suggest_windows`) and a line says so; a log too short for any window raises
        :class:`~decaylib.utils.InsufficientDataError`.
        """
        path = self.artifact_dir / "forecasts.parquet"
        if not force and path.exists():
            if self.verbose:
                print(f"Loaded forecasts from {self.artifact_dir}")
            return io.read_parquet(path, FORECAST_COLUMNS)
        panel = self.panel()
        p = {**FORECAST_DEFAULTS, **params}
        span = self.span_days
        if p["seq_length"] + p["horizon"] > span:
            s, h = suggest_windows(span, p["seq_length"], p["horizon"])
            check_window_span(span, s, h)
            if self.verbose:
                print(f"The log spans {span} days: forecasting with seq_length={s}, horizon={h} "
                      f"instead of {p['seq_length']}, {p['horizon']}")
            params = {**params, "seq_length": s, "horizon": h}
        if self.verbose:
            print("forecasts.parquet is missing: cross-fitting the forecaster (notebook 03's defaults) ...")
        _, ff = cross_fit_forecasts(panel, device=device, **params)
        io.write_parquet(ff, path)
        return ff

    # ---- ids and metrics ------------------------------------------------------------------
    def _id_maps(self) -> dict:
        """The id maps of the user's log: from memory, else from the artifact folder (written when
        the panel was built), so a report does not re-read a big event file just to map ids."""
        if self._log is not None:
            return self._log.id_maps
        if self._maps is None:
            self.panel()
            self._maps = io.read_id_maps(self.artifact_dir)
        return self._maps

    def user_code(self, user_id) -> int:
        """The panel's integer id of a user given by their own id (identity on the simulator).

        ``KeyError`` when the id cannot be one of the log's (the caller checks the panel)."""
        return self.code_of("user_id", user_id)

    def code_of(self, column: str, original) -> int:
        """The integer code of the user's own id ``original`` in ``column`` (``user_id``,
        ``item_id`` or ``category``); identity on the simulator and for integer ids."""
        if self.synthetic:
            return original
        maps = self._id_maps()
        if column in maps:
            m = maps[column]
            hit = np.flatnonzero(m["original"].to_numpy(dtype=object) == str(original).strip())
            if len(hit) == 0:
                raise KeyError(f"{column} {original!r} is not in this event log "
                               f"({len(m):,} known, e.g. {m['original'].head(3).tolist()})")
            return int(m["code"].iloc[hit[0]])
        text = str(original).strip()
        if isinstance(original, (bool, np.bool_)) or not text.lstrip("+-").isdigit():
            raise KeyError(f"{column} {original!r} is not in this event log (its ids are integers)")
        return int(text)

    def original_ids(self, column: str, codes):
        """The user's own ids of integer ``codes`` in ``column`` (identity where not factorized)."""
        scalar = np.ndim(codes) == 0
        arr = np.atleast_1d(np.asarray(codes))
        maps = {} if self.synthetic else self._id_maps()
        if column not in maps:
            return codes if scalar else arr
        m = maps[column]
        pos = pd.Index(m["code"].to_numpy()).get_indexer(arr)
        if (pos < 0).any():
            raise KeyError(f"code(s) {arr[pos < 0][:5].tolist()} are not {column} codes of this log")
        out = m["original"].to_numpy(dtype=object)[pos]
        return out[0] if scalar else out

    def display_user(self, code) -> str:
        """A user's own id for display."""
        return str(self.original_ids("user_id", code))

    def describe(self) -> dict:
        """What ran: for the metrics JSON and the report."""
        if self.synthetic:
            return {"kind": "simulated", "sim_params": self.sim_params, "data_dir": str(self.data_dir)}
        return {"kind": "own_events", "events_path": str(self.events_path), "sha256": self.sha256,
                "mapping": self.mapping, "artifact_dir": str(self.artifact_dir)}

    def write_metrics(self, notebook: str, metrics: dict) -> Path:
        """Write ``metrics`` (plus ``"data": describe()``) to ``artifact_dir/metrics/<notebook>.json``."""
        return io.write_metrics(self.artifact_dir, notebook, {**metrics, "data": self.describe()})

    def __repr__(self) -> str:
        what = "simulator" if self.synthetic else str(self.events_path)
        return f"DataSource({what}, artifacts in {self.artifact_dir})"


def open_source(data_dir, events_path=None, events_mapping=None, *, verbose: bool = True, **sim_params) -> DataSource:
    """The events a notebook runs on: the simulator (``events_path=None``) or the user's own log.

    ``sim_params`` (``seed``, ``n_users``, ...) are used only for the simulator. See
    :class:`DataSource`.
    """
    if events_path is not None and isinstance(events_path, str) and not events_path.strip():
        events_path = None
    return DataSource(data_dir, events_path, events_mapping, verbose=verbose, **sim_params)
