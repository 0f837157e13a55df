"""Build-or-load helpers that let every notebook run on its own in a fresh kernel.

Each ``ensure_*`` function returns a stage's artifacts from ``data_dir`` when they exist and
otherwise rebuilds them through decaylib (and writes them, atomically), so that notebook 02 can be
run without notebook 01 having been run first, and so on.

Every stage's files are one set with a manifest (:func:`decaylib.artifacts.save_stage`): its parameters,
the sha256 of each file and the fingerprints of the sets it was built from (:data:`STAGE_INPUTS`).
Loading verifies the set and its inputs (:func:`decaylib.artifacts.load_stage`): a missing, incomplete,
corrupt or stale set is rebuilt where the library can (simulation, panel, forecasts), with one
printed line saying why, or refused with one line naming it; never a silent mix.

This module sits on top of the stages: it may import any of them, and no stage imports it.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

pass
from decaylib import artifacts
from decaylib.checks import InsufficientDataError
from decaylib.data.load import load_events, load_mapping
from decaylib.data.preprocess import preprocess
from decaylib.data.synth import SimConfig, simulate
from decaylib.schema import (
    BASE_COLUMNS,
    DEFAULT_WEIGHTS,
    EVENT_LOG_COLUMNS,
    PANEL_COLUMNS,
)
from decaylib.workflow.params import project_path, repo_root

__all__ = ['EVENTS_FILES', 'PANEL_FILES', 'STAGE_FILES', 'STAGE_INPUTS', 'save_simulation', 'load_simulation', 'ensure_simulation', 'save_panel', 'ensure_panel', 'ensure_forecasts', 'NO_TRUTH', 'suggest_windows', 'check_window_span', 'DataSource', 'open_source']

EVENTS_FILES = ("events.parquet", "truth.parquet", "truth_daily.parquet", "sim_meta.json")

PANEL_FILES = ("panel.parquet", "panel_meta.json")

TRUTH_COLUMNS = ("user_id", "category", "t_start", "t_peak", "peak_interest", "lam", "half_life", "is_bot")

#: Each stage's required files (a set may hold more: ``model.pt`` beside the forecasts, id maps
#: beside a panel of your own events) and the stages it is built from.  Every set is written by
#: :func:`decaylib.artifacts.save_stage` with a manifest and read back by :func:`decaylib.artifacts.load_stage`.
STAGE_FILES = {
    "simulation": EVENTS_FILES,
    "panel": PANEL_FILES,
    "forecasts": ("forecasts.parquet",),
    "lambda": ("lambda.parquet",),
    "decay_points": ("decay_points.parquet",),
    "recommendations": ("recommendations.parquet",),
}

STAGE_INPUTS = {
    "simulation": (),
    "panel": ("simulation",),  # on your own events: the events file's sha256 and the mapping
    "forecasts": ("panel",),
    "lambda": ("panel", "forecasts"),
    "decay_points": ("panel", "forecasts"),
    "recommendations": ("panel",),
}

#: Parameters shown in messages about a simulation.
_SIM_KEYS = ("n_users", "n_categories", "n_days", "seed")


def _say(line: str) -> None:
    print(line, flush=True)


def _sim_config(params: dict) -> dict:
    """The :class:`SimConfig` fields among recorded (JSON) parameters, lists back to tuples."""
    fields = SimConfig.__dataclass_fields__
    out = {k: tuple(v) if isinstance(v, list) else v for k, v in (params or {}).items() if k in fields}
    try:
        SimConfig(**out)
    except (TypeError, ValueError):
        return {}
    return out


def _recorded_sim_params(d: Path) -> dict:
    """The parameters of a broken simulation set, to simulate the same again: from its manifest
    when its fingerprint verifies (:func:`decaylib.artifacts.read_manifest`), else, when there is
    no manifest at all (a write interrupted after it removed the old one), from ``sim_meta.json``
    (of the interrupted write or the one before it, each a complete file), else none (the
    defaults).  A manifest that is there but was changed after it was written is not trusted,
    and neither is the ``sim_meta.json`` beside it."""
    m = artifacts.read_manifest(d, "simulation")
    if m is not None:
        return _sim_config(m.get("params"))
    if artifacts.manifest_path(d, "simulation").exists():
        return {}
    try:
        return _sim_config(artifacts.read_json(d / "sim_meta.json").get("config"))
    except (OSError, ValueError, AttributeError):
        return {}


def save_simulation(sim, data_dir) -> artifacts.StageSet:
    """Write a :class:`~decaylib.data.synth.Simulation` to ``data_dir`` as the ``simulation`` set
    (events, truth, truth_daily as Parquet, ``sim_meta.json``, then ``simulation.manifest.json``).

    Notebook 01.
    """
    meta = {"config": asdict(sim.config), "outage_days": sim.outage_days, "n_duplicates": sim.n_duplicates,
            "bot_users": sim.bot_users, "summary": sim.summary()}
    files = {"events.parquet": sim.events, "truth.parquet": sim.truth, "truth_daily.parquet": sim.truth_daily,
             "sim_meta.json": meta}
    return artifacts.save_stage(data_dir, "simulation", files, params=asdict(sim.config))


def load_simulation(data_dir) -> dict:
    """Read the simulator's verified set: ``events``, ``truth``, ``truth_daily``, ``meta`` and
    ``manifest`` (the :class:`~decaylib.artifacts.StageSet`).  Raises the errors of
    :func:`decaylib.artifacts.load_stage` when the set is missing, incomplete or corrupt.

    Notebooks 02 and 01.
    """
    st = artifacts.load_stage(data_dir, "simulation", expect_files=EVENTS_FILES)
    return {
        "events": st.frame("events.parquet", list(EVENT_LOG_COLUMNS)),
        "truth": st.frame("truth.parquet", TRUTH_COLUMNS),
        "truth_daily": st.frame("truth_daily.parquet", list(BASE_COLUMNS)),
        "meta": st.json("sim_meta.json"),
        "manifest": st,
    }


def _existing_simulation(d: Path, sim_params: dict, verbose: bool) -> dict:
    """The verified simulation set of ``d`` (the errors of :func:`load_simulation` otherwise); a line
    says so when ``sim_params`` differ from the parameters it was made with."""
    sim = load_simulation(d)
    st = sim["manifest"]
    differ = artifacts.param_diff({k: st.params.get(k) for k in sim_params}, sim_params)
    if differ:
        _say(f"Using the simulation in {d} made with {artifacts._short_params(st.params, differ)} (notebook 01); "
             f"{artifacts._short_params(sim_params, differ)} given here would only be used if it were missing "
             "(run notebook 01 with them to simulate again)")
    elif verbose:
        print(f"Loaded the simulation from {d}")
    return sim


def ensure_simulation(data_dir, force: bool = False, verbose: bool = True, **sim_params) -> dict:
    """Load the simulation from ``data_dir``, or simulate with ``sim_params`` and save it.

    The set is verified against its manifest.  An intact simulation is used as it is, also when
    ``sim_params`` differ from the parameters it was made with (notebook 01 made it; notebook 02's
    simulation parameters are "used only if notebook 01's artifacts are missing"): one printed line
    then names the parameters it was made with.  It is simulated, with one printed line saying why,
    when it is missing, incomplete or corrupt (with the parameters its manifest recorded when the
    manifest verifies, so the same data come back; ``sim_params`` fill in what it did not record).
    ``force=True`` always simulates with ``sim_params``; later stages built from the old
    simulation are then stale, and their loaders rebuild or refuse them.

    The check and the write hold the folder's lock (:func:`decaylib.artifacts.directory_lock`): two
    runs that find the simulation missing at once simulate it once, the second waits and loads it.

    Notebooks 02 and 01.
    """
    d = Path(data_dir)
    if not force:
        try:
            return _existing_simulation(d, sim_params, verbose)
        except (artifacts.ArtifactMissingError, artifacts.StaleArtifactError):
            pass  # decided again below, under the lock: another run may be writing it right now
    with artifacts.directory_lock(d, "simulating"):
        params, why = dict(sim_params), None
        if not force:
            try:
                return _existing_simulation(d, sim_params, verbose)
            except artifacts.StageMissingError:
                pass
            except (artifacts.ArtifactMissingError, artifacts.StaleArtifactError) as e:
                why = e.reason
                params = {**sim_params, **_recorded_sim_params(d)}
        sim = simulate(SimConfig(), **params)
        save_simulation(sim, d)
        if why:
            _say(f"{why}: simulated again ({artifacts._short_params(asdict(sim.config), _SIM_KEYS)}) into {d}")
        elif verbose:
            print(f"Simulated {sim.summary()['n_events']:,} events and saved them to {d}")
        return load_simulation(d)


#: The bot rule's numbers that ``panel_meta.json`` keeps (``bots.attrs`` of :func:`decaylib.data.clean.detect_bots`).
_BOT_RULE_KEYS = ("median_events_per_day", "scale", "scale_rule", "bot_z", "max_bot_share", "n_removable", "capped")
#: Each flagged user's numbers that ``panel_meta.json`` keeps beside ``removed`` and ``reason``.
_BOT_RECORD_KEYS = ("events_per_day", "ratio_to_median", "robust_z", "n_events", "active_days", "n_purchases", "buyer_kept")


def _plain(v):
    """A NumPy scalar as the Python value JSON writes."""
    return v.item() if isinstance(v, np.generic) else v


def _bot_record(r: pd.Series) -> dict:
    out = {"user_id": int(r["user_id"]), "removed": bool(r.get("removed", True)), "reason": str(r.get("reason", ""))}
    return out | {k: _plain(r[k]) for k in _BOT_RECORD_KEYS if k in r.index}


def _panel_meta(result, extra_meta: dict | None = None) -> dict:
    bots = getattr(result, "bots", None)
    flagged = bots.loc[bots["is_bot"]] if bots is not None and {"is_bot", "user_id"} <= set(bots.columns) else None
    return {
        "bot_users": result.bot_users,
        # why each flagged user was flagged, with the rule's numbers (the report explains a removed id
        # with them and names the bot_z / max_bot_share that would keep it)
        "bots": [] if flagged is None else [_bot_record(r) for _, r in flagged.iterrows()],
        "bot_rule": {} if bots is None else {k: _plain(v) for k, v in bots.attrs.items() if k in _BOT_RULE_KEYS}
        | ({"n_users": len(bots)} if bots is not None else {}),
        "warnings": list(getattr(result, "warnings", []) or []),
        "outage_days": result.outage_days,
        "cleaning": result.report.to_frame().to_dict(orient="records"),
        **(extra_meta or {}),
    }


def save_panel(result, data_dir, extra_meta: dict | None = None, *, params: dict | None = None,
               inputs: dict | None = None, more_files: dict | None = None) -> artifacts.StageSet:
    """Write a :class:`~decaylib.data.panel.PreprocessResult` as the ``panel`` set
    (``panel.parquet``, ``panel_meta.json`` and ``more_files``) with its parameters and inputs
    (``{"simulation": StageSet}``, or ``{"events": fingerprint}``; see :func:`decaylib.artifacts.save_stage`).

    Notebooks 02 and 01.
    """
    files = {"panel.parquet": result.panel, "panel_meta.json": _panel_meta(result, extra_meta), **(more_files or {})}
    return artifacts.save_stage(data_dir, "panel", files, params=params, inputs=inputs)


def ensure_panel(data_dir, force: bool = False, verbose: bool = True, weights: dict | None = None, **sim_params) -> pd.DataFrame:
    """The panel of ``data_dir`` built from its (ensured) simulation: loaded when its set is intact
    and was built from the simulation as it is now, else rebuilt with one line saying why (see
    :meth:`DataSource.panel`).

    Notebooks 02 and 01.
    """
    return DataSource(data_dir, verbose=verbose, **sim_params).panel(force=force, weights=weights)


def _panel_settings(params) -> dict:
    """The keyword arguments of :func:`~decaylib.data.preprocess.preprocess` among a panel's recorded
    parameters (to rebuild it as it was built)."""
    import inspect

    allowed = set(inspect.signature(preprocess).parameters) - {"events", "start_date", "end_day", "date_only"}
    return {k: v for k, v in (params or {}).items() if k in allowed} if isinstance(params, dict) else {}

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
    """Out-of-fold forecasts for every user (see :func:`decaylib.forecast.train.cross_validate`).

    Returns ``(cv_table, forecasts)`` with ``forecasts`` in the ``forecasts.parquet`` layout
    (``model`` = the cell, ``split`` = ``"cross_fit"``).

    Memory: the windows are index arrays into the panel's rows and ``max_train_windows`` draws
    window positions before anything is sliced, so what grows with the log is the panel and the
    table itself, one row per origin of every pair x ``horizon`` (about 70 bytes a row); a table
    above :data:`decaylib.forecast.sequences.WINDOW_MEMORY_BUDGET` is refused before any training
    with a :class:`~decaylib.checks.MemoryBudgetError` that names what to change
    (``benchmarks/bench_memory_scale.py`` measures it).

    Notebook 03.
    """
    # PyTorch (about 2 s to import) loads only when forecasts are built: notebooks 01, 02 and the
    # report never pay for it. The house test allows function-level imports for this reason only.
    from decaylib.forecast.sequences import user_folds
    from decaylib.forecast.train import cross_validate

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
    # in place: the long table is the stage's largest object, so no column is copied (one block each)
    del ff["day"], ff["fold"]
    ff["model"] = p["cell"]
    ff["split"] = "cross_fit"
    return cv, ff[list(FORECAST_COLUMNS)]


def ensure_forecasts(data_dir, force: bool = False, verbose: bool = True, device: str = "auto", **params) -> pd.DataFrame:
    """Load ``forecasts.parquet``, or rebuild its cross-fitted part from the (ensured) panel.

    Notebook 03 writes both the test-user forecasts of each cell and the cross-fitted ones; the
    rebuild here writes only the cross-fitted forecasts, which is what notebooks 04-07 use.  The
    set is rebuilt when missing, incomplete, corrupt or built from another panel (see
    :meth:`DataSource.forecasts`).
    """
    return DataSource(data_dir, verbose=verbose).forecasts(device=device, force=force, **params)

# --------------------------------------------------------------------------------------------
# Where the events come from: the simulator, or the user's own log
# --------------------------------------------------------------------------------------------
#: The one line every "check against the truth" section prints on the user's own data.
NO_TRUTH = ("No ground truth for your data; see notebook 01 for how well each method does when the "
            "truth is known.")

#: Files only the simulator writes; never written beside a user's own events.
SYNTHETIC_FILES = (*EVENTS_FILES, "simulation" + artifacts.MANIFEST_SUFFIX)

OWN_DIR = "own"


def _file_sha256(path: Path, chunk: int = 1 << 20) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _resolve_path(path) -> Path:
    """A user-given path: absolute as given, relative from the repository root
    (:func:`decaylib.workflow.params.project_path`), so ``data/shop.csv`` means one file from the root, from
    ``notebooks/`` and through the runner alike."""

    p = project_path(path)
    if p.exists():
        return p
    raise FileNotFoundError(f"events_path {str(path)!r} does not exist: {p} "
                            f"(relative paths start at the repository root {repo_root() or Path.cwd()})")


def suggest_windows(span_days: int, seq_length: int, horizon: int) -> tuple[int, int]:
    """Window sizes that fit a log of ``span_days`` days: at most the requested ones, with
    ``seq_length + horizon <= span_days`` (about half the span of history, 30% ahead).

    Notebooks 02 and 01.
    """
    h = max(1, min(int(horizon), (int(span_days) * 3) // 10))
    s = max(2, min(int(seq_length), int(span_days) // 2))
    return s, h


def check_window_span(span_days: int, seq_length: int, horizon: int, what: str = "the log") -> None:
    """Raise :class:`~decaylib.checks.InsufficientDataError` when windows of ``seq_length`` days
    plus ``horizon`` days ahead do not fit into ``span_days``; the message names the parameters
    and values that would fit.

    Notebooks 03 and 03b.
    """

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
    * ``events_path="shop.csv"``: the user's own log, read by :func:`decaylib.data.load.load_events` with
      the keyword arguments of ``events_mapping`` (a JSON file or a dict, see
      :func:`decaylib.data.load.load_mapping`). Artifacts go to ``data_dir/own/<name>-<hash>/`` (the hash
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
        self._panel_meta = None
        self._manifests: dict[str, artifacts.StageSet] = {}  # the verified sets this source read or wrote
        self.events_fingerprint = None
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
        self.mapping = load_mapping(events_mapping) if events_mapping is not None else {}
        import hashlib
        import json

        self.sha256 = _file_sha256(self.events_path)
        digest = hashlib.sha256(self.sha256.encode())
        digest.update(json.dumps(artifacts.to_jsonable(self.mapping), sort_keys=True).encode())
        self.events_fingerprint = digest.hexdigest()  # the panel's input: the file's bytes and the mapping
        stem = self.events_path.name.split(".")[0] or "events"
        self.artifact_dir = self.data_dir / OWN_DIR / f"{stem}-{digest.hexdigest()[:12]}"
        self.artifact_dir.mkdir(parents=True, exist_ok=True)
        if verbose:
            print(f"Your events: {self.events_path.name}; artifacts in {self.artifact_dir}")

    # ---- lineage --------------------------------------------------------------------------
    def _inputs(self, stage: str) -> dict:
        """The inputs of ``stage`` as this source uses them: ``{input stage: StageSet}``, or for
        the panel of your own events ``{"events": fingerprint of the file's bytes and mapping}``."""
        if stage == "panel":
            return {"simulation": self.stage("simulation")} if self.synthetic else {"events": self.events_fingerprint}
        return {k: self.stage(k) for k in STAGE_INPUTS.get(stage, ("panel",))}

    def stage(self, name: str) -> artifacts.StageSet:
        """The verified set of stage ``name`` that this source reads (loaded, or rebuilt where the
        library can: simulation, panel, forecasts; later stages are loaded or refused)."""
        if name not in self._manifests:
            if name == "simulation":
                self.simulation()
            elif name == "panel":
                self.panel()
            elif name == "forecasts":
                self.forecasts()
            else:
                self._manifests[name] = self.load_stage(name)
        return self._manifests[name]

    def save_stage(self, stage: str, files: dict, params: dict | None = None) -> artifacts.StageSet:
        """Write a notebook's output set into :attr:`artifact_dir` with its manifest
        (:func:`decaylib.artifacts.save_stage`), recording the inputs this source used (:data:`STAGE_INPUTS`)."""
        inputs = self._inputs(stage)
        with artifacts.directory_lock(self.artifact_dir, f"writing the {stage} set"):
            self._check_current(inputs, f"the {stage} set was not written")
            st = artifacts.save_stage(self.artifact_dir, stage, files, params=params, inputs=inputs)
        self._manifests[stage] = st
        return st

    def _check_current(self, sets: dict, what: str) -> None:
        """Raise :class:`~decaylib.artifacts.StaleArtifactError` when a set this source used is no
        longer the one in :attr:`artifact_dir` (another run rewrote it meanwhile), so that nothing
        built from the old one is written beside the new one.  Call it holding the folder's lock."""
        d = self.artifact_dir
        for k, used in sets.items():
            if not isinstance(used, artifacts.StageSet):
                continue  # your own events: the file's fingerprint, checked by the panel's loader
            m = artifacts.read_manifest(d, k)
            now = m.get("fingerprint") if m else None
            if now != used.fingerprint:
                there = f"it now holds {k} {now[:8]}" if now else f"its {k} set is missing or being rewritten"
                raise artifacts.StaleArtifactError(
                    k, d, artifacts.manifest_path(d, k).name,
                    f"{what}: this run used the {k} {used.fingerprint[:8]} of {d} but another run rewrote it meanwhile "
                    f"({there})", "run this notebook again, one run at a time per data_dir")

    def load_stage(self, stage: str) -> artifacts.StageSet:
        """A notebook's output set, verified and checked against the inputs as they are now.

        Outputs of notebooks 04-06 are not rebuilt by the library: a missing, incomplete, corrupt
        or stale set raises the one-line error of :func:`decaylib.artifacts.load_stage`."""
        st = artifacts.load_stage(self.artifact_dir, stage, expect_files=STAGE_FILES.get(stage, ()))
        artifacts.check_inputs(st, self._inputs(stage))
        return st

    # ---- simulator ------------------------------------------------------------------------
    def simulation(self) -> dict:
        """The simulator's artifacts (events, truth, truth_daily, meta); an error on own data."""
        if not self.synthetic:
            raise RuntimeError("this notebook runs on your own events: there is no simulation and no truth")
        if self._sim is None:
            self._sim = ensure_simulation(self.data_dir, verbose=self.verbose, **self.sim_params)
            self._manifests["simulation"] = self._sim["manifest"]
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
        """The user's events as a :class:`decaylib.data.load.EventLog` (own data only)."""
        if self.synthetic:
            raise RuntimeError("event_log() is for your own events; the simulator's are in simulation()['events']")
        if self._log is None:
            self._log = load_events(self.events_path, **self.mapping)
        return self._log

    def events(self) -> pd.DataFrame:
        """The raw events (simulated, or the user's after loading), in decaylib's schema."""
        return self.simulation()["events"] if self.synthetic else self.event_log().events

    def preprocess_kwargs(self) -> dict:
        """Window and timestamp settings for :func:`decaylib.data.preprocess.preprocess`."""
        if self.synthetic:
            cfg = self.simulation()["meta"]["config"]
            return {"start_date": cfg["start_date"], "end_day": cfg["n_days"] - 1}
        return {"date_only": self.event_log().date_only}

    def preprocess(self, weights: dict | None = None, **kw):
        """Clean and aggregate the events (:func:`decaylib.data.preprocess.preprocess`) and save the
        panel set (``panel.parquet``, ``panel_meta.json``, the id maps of your own events) with
        its settings and the simulation (or events file) it was built from."""
        res = preprocess(self.events(), weights=weights, **{**self.preprocess_kwargs(), **kw})
        extra = {"weights": weights, "preprocess": {k: v for k, v in kw.items()}}
        more = {}
        if not self.synthetic:
            extra["start_date"] = str(pd.Timestamp(res.start_date).date())
            extra["source"] = self.describe()
            more = {f"id_map_{col}.parquet": m for col, m in self.event_log().id_maps.items()}
        params = {"weights": weights or DEFAULT_WEIGHTS, **kw}
        inputs = self._inputs("panel")
        with artifacts.directory_lock(self.artifact_dir, "writing the panel set"):
            self._check_current(inputs, "the panel set was not written")
            st = save_panel(res, self.artifact_dir, extra, params=params, inputs=inputs, more_files=more)
        self._panel, self._panel_meta, self._manifests["panel"] = res.panel, st.json("panel_meta.json"), st
        if not self.synthetic:
            self._maps = dict(self.event_log().id_maps)
        return res

    def _use_panel(self, st: artifacts.StageSet) -> None:
        self._panel = st.frame("panel.parquet", PANEL_COLUMNS)
        self._panel_meta = st.json("panel_meta.json")
        self._manifests["panel"] = st
        if not self.synthetic:
            maps = {}
            for name in st.files:
                if name.startswith("id_map_") and name.endswith(".parquet"):
                    m = st.frame(name, ["code", "original"])
                    maps[name[len("id_map_"):-len(".parquet")]] = pd.DataFrame(
                        {"code": m["code"].astype("int64"), "original": m["original"].astype(str)})
            self._maps = maps

    def panel(self, force: bool = False, weights: dict | None = None) -> pd.DataFrame:
        """The daily panel: loaded from its verified set when that was built from the events as
        they are now, else rebuilt, with one printed line saying why (missing, incomplete,
        corrupt, or built from another simulation).  A rebuild keeps the settings the old panel
        recorded (notebook 02's ``bot_z``, windows, weights) or uses the defaults; ``weights``
        that differ from the recorded ones also rebuild it."""
        if self._panel is not None and not force and weights is None:
            return self._panel
        if not force and self._intact_panel(weights):
            return self._panel
        with artifacts.directory_lock(self.artifact_dir, "building the panel"):  # decided again: another run may be writing it
            return self._build_panel(force, weights)

    def _intact_panel(self, weights) -> bool:
        """Use the panel's set when it is intact, built from the events as they are now, with ``weights``."""
        d = self.artifact_dir
        try:
            st = artifacts.load_stage(d, "panel", expect_inputs=self._inputs("panel"), expect_files=PANEL_FILES)
        except (artifacts.ArtifactMissingError, artifacts.StaleArtifactError):
            return False
        if weights is not None and artifacts.param_diff({"w": st.params.get("weights")}, {"w": weights}):
            return False
        self._use_panel(st)
        if self.verbose:
            print(f"Loaded the panel from {d}")
        return True

    def _build_panel(self, force: bool, weights) -> pd.DataFrame:
        d = self.artifact_dir
        inputs = self._inputs("panel")
        settings, why = ({"weights": weights} if weights is not None else {}), None
        if not force:
            try:
                st = artifacts.load_stage(d, "panel", expect_inputs=inputs, expect_files=PANEL_FILES)
            except artifacts.StageMissingError:
                pass
            except (artifacts.ArtifactMissingError, artifacts.StaleArtifactError) as e:
                why = e.reason
                if weights is None:
                    settings = _panel_settings((artifacts.read_manifest(d, "panel") or {}).get("params"))
            else:
                if weights is None or not artifacts.param_diff({"w": st.params.get("weights")}, {"w": weights}):
                    self._use_panel(st)
                    if self.verbose:
                        print(f"Loaded the panel from {d}")
                    return self._panel
                why = f"panel.parquet in {d} was built with weights {st.params.get('weights')} but {weights} were requested"
        res = self.preprocess(**settings)
        if why:
            shown = {k: v for k, v in settings.items() if k != "weights" or v != DEFAULT_WEIGHTS}
            how = f"with its recorded settings {shown}" if shown else "with the default settings"
            _say(f"{why}: rebuilt the panel ({len(res.panel):,} rows) {how}")
        elif self.verbose:
            print(f"Built the panel ({len(res.panel):,} rows) from {'the simulation' if self.synthetic else 'your events'} "
                  f"and saved it to {d}")
        return self._panel

    def panel_meta(self) -> dict:
        self.panel()
        return self._panel_meta

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
        """Cross-fitted forecasts (``forecasts.parquet``): loaded from their verified set when it
        was built from the panel as it is now, else cross-fitted again with notebook 03's
        defaults (and ``params``), with one printed line saying why and which of notebook 03's
        settings are not kept.  ``params`` that differ from the recorded ones also rebuild.

        On a log shorter than ``seq_length + horizon`` days the windows are shrunk to fit
        (:func:`suggest_windows`) and a line says so; a log too short for any window raises
        :class:`~decaylib.checks.InsufficientDataError`.
        """
        d = self.artifact_dir
        with artifacts.directory_lock(d, "cross-fitting the forecasts"):
            return self._forecasts(device, force, params)

    def _forecasts(self, device, force, params) -> pd.DataFrame:
        d = self.artifact_dir
        inputs = {"panel": self.stage("panel")}
        why, old = None, {}
        if not force:
            try:
                st = artifacts.load_stage(d, "forecasts", expect_inputs=inputs, expect_files=STAGE_FILES["forecasts"])
            except artifacts.StageMissingError:
                pass
            except (artifacts.ArtifactMissingError, artifacts.StaleArtifactError) as e:
                why, old = e.reason, (artifacts.read_manifest(d, "forecasts") or {}).get("params") or {}
            else:
                differ = artifacts.param_diff({k: st.params.get(k) for k in params}, params)
                if not differ:
                    self._manifests["forecasts"] = st
                    if self.verbose:
                        print(f"Loaded forecasts from {d}")
                    return st.frame("forecasts.parquet", FORECAST_COLUMNS)
                why = (f"forecasts.parquet in {d} was built with {artifacts._short_params(st.params, differ)} but "
                       f"{artifacts._short_params(params, differ)} was requested")
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
            p = {**p, "seq_length": s, "horizon": h}
        if why:
            lost = [k for k in FORECAST_DEFAULTS if k in old and k not in params and old[k] != FORECAST_DEFAULTS[k]]
            note = (f" (it was built with {artifacts._short_params(old, lost)}: run notebook 03_forecasting again for those)"
                    if lost else "")
            given = f" and {artifacts._short_params(params, list(params))}" if params else ""
            _say(f"{why}: cross-fitting the forecaster again with notebook 03's defaults{given}{note} ...")
        elif self.verbose:
            what = "force=True" if force else "forecasts.parquet is missing"
            print(f"{what}: cross-fitting the forecaster (notebook 03's defaults) ...")
        _, ff = cross_fit_forecasts(panel, device=device, **params)
        self.save_stage("forecasts", {"forecasts.parquet": ff}, params=p)
        return ff

    # ---- ids and metrics ------------------------------------------------------------------
    def _id_maps(self) -> dict:
        """The id maps of the user's log: from memory, else from the panel's set (written with the
        panel), so a report does not re-read a big event file just to map ids."""
        if self._log is not None:
            return self._log.id_maps
        if self._maps is None:
            self.panel()
        return self._maps or {}

    def user_code(self, user_id) -> int:
        """The panel's integer id of a user given by their own id (identity on the simulator).

        ``KeyError`` ("not in this event log") when the log does not hold the id; an id that the log
        holds but the panel lacks (cleaning removed its events) gets its code, and the caller
        (:func:`decaylib.recommend.advice.check_user`) says so."""
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
        code = int(text)
        panel = self._panel
        if panel is not None and column in panel.columns and (panel[column].to_numpy() == code).any():
            return code  # in the panel, so in the log: no need to read the event file
        # Integer ids have no id map: only the log itself knows whether a code it lacks was ever there
        # (read only on this path, for an id the panel lacks); EventLog.code_of raises "not in this event log".
        return self.event_log().code_of(column, code)

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
        """Write ``metrics`` (plus ``"data": describe()`` with the fingerprints of the sets used) to ``artifact_dir/metrics/<notebook>.json``.

        Refused (:class:`~decaylib.artifacts.StaleArtifactError`, nothing written) when another run
        rewrote one of those sets while this one ran: the folder never holds one run's panel
        beside the other's numbers."""
        lineage = {k: v.fingerprint for k, v in self._manifests.items()}
        with artifacts.directory_lock(self.artifact_dir, f"writing metrics/{notebook}.json"):
            self._check_current(self._manifests, f"metrics/{notebook}.json was not written")
            return artifacts.write_metrics(self.artifact_dir, notebook, metrics, lineage=lineage,
                                           data=self.describe())

    def __repr__(self) -> str:
        what = "simulator" if self.synthetic else str(self.events_path)
        return f"DataSource({what}, artifacts in {self.artifact_dir})"


def open_source(data_dir, events_path=None, events_mapping=None, *, verbose: bool = True, **sim_params) -> DataSource:
    """The events a notebook runs on: the simulator (``events_path=None``) or the user's own log.

    ``sim_params`` (``seed``, ``n_users``, ...) are used only for the simulator. See
    :class:`DataSource`.

    Notebooks 02, 03, 03b, 04, 05, 06 and 07.
    """
    if events_path is not None and isinstance(events_path, str) and not events_path.strip():
        events_path = None

    if isinstance(events_mapping, (str, Path)):
        events_mapping = project_path(events_mapping)
    return DataSource(project_path(data_dir), events_path, events_mapping, verbose=verbose, **sim_params)
