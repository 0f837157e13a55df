"""The preprocessing facade of notebook 02: events -> cleaned events -> daily panel, on pandas, DuckDB or Spark."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from decaylib.checks import EventSchemaError, check_choice
from decaylib.data.clean import (
    CleaningConfig,
    CleaningReport,
    _bot_decision,
    _describe_time_outliers,
    _pair_spans,
    _time_outlier_reason,
    _time_outlier_step,
    detect_bots,
    detect_time_outliers,
    drop_duplicates,
    is_date_only,
    remove_users,
    validate_events,
)
from decaylib.data.engine import read_events, run_preprocess, source_files
from decaylib.data.panel import (
    PreprocessResult,
    _add_aggregate_step,
    _panel_checks,
    build_panel,
    event_days,
)

__all__ = ['PreprocessResult', 'preprocess']


def preprocess(
    events,
    weights: dict | None = None,
    start_date=None,
    end_day: int | None = None,
    bot_z: float = 4.0,
    until: str = "end",
    median_window: int = 3,
    mean_window: int = 7,
    date_only: bool | None = None,
    max_bot_share: float | None = 0.05,
    time_outliers: str = "drop",
    max_gap_days: int = 90,
    max_outlier_share: float = 0.01,
    max_panel_rows: int | None = 20_000_000,
    *,
    engine: str = "auto",
    keep_events: bool | None = None,
    progress: bool | None = None,
    con=None,
) -> PreprocessResult:
    """Run every cleaning step and build the panel; see the module docstring.

    ``events``: a DataFrame with the columns of the data contract, or a path to Parquet or CSV
    files with them (a file, a glob such as ``"events/*.parquet"`` or a folder).

    Parameters (beyond :func:`build_panel`'s)
    ------------------------------------------
    date_only:
        Timestamps are dates without a time of day: identical rows are kept as same-day repeats
        (:func:`drop_duplicates`).  ``None`` detects it (every timestamp at midnight); pass
        ``EventLog.date_only`` for a loaded log.
    max_bot_share:
        The largest share of *users* the bot rule may remove (default 5%; never fewer than
        :data:`MIN_REMOVABLE_BOTS` users).  Bots are a few users with an absurd volume, so they may
        hold a large share of the events (half of them in the simulator) but not of the users; when
        the rule flags more users than that, it is cutting into ordinary heavy users rather than
        isolating outliers, so nobody is removed, a :class:`~decaylib.checks.DataWarning` gives the
        numbers and the step is recorded with 0 removed.  ``None``: no cap.
    time_outliers:
        What to do with events far from the rest of the log (:func:`detect_time_outliers` with
        ``max_gap_days`` and ``max_outlier_share``): ``"drop"`` (default) removes them,
        ``"error"`` raises :class:`EventSchemaError`, ``"keep"`` keeps them.  Any found is a
        DataWarning with their dates, the days and the panel rows they add, and (unless
        ``"error"``) a ``time_outliers`` step in the report.  When ``start_date`` / ``end_day`` are
        not given, the window follows the kept events.
    max_panel_rows:
        Stop with :class:`PanelTooLargeError` before building a panel with more rows (pairs x days;
        81 bytes a row, a few times that while it is built); ``None``: no limit.
    engine:
        Where the event-sized steps run: ``"pandas"`` (in memory, the teaching path),
        ``"duckdb"`` (SQL in the same process, reading the files directly, out of core),
        ``"spark"`` (the same SQL on a Spark session, ``pip install decaylib[spark]``) or
        ``"auto"`` (default): DuckDB for at least :data:`AUTO_DUCKDB_ROWS` events in a DataFrame
        or :data:`AUTO_DUCKDB_BYTES` of files, pandas below. Every engine gives the same panel,
        report, bots and outage days (``tests/data/test_engine.py``); only the small tables (one row
        per user, per pair or per pair-day) come back to pandas. See :mod:`decaylib.data.engine`.
    keep_events:
        Keep the clean events in ``result.events_clean``. Default: always with pandas; with a SQL
        engine only when ``events`` is a DataFrame (then sorted by user, category, timestamp,
        item, event, not in input order); ``False`` leaves it ``None`` for logs larger than memory.
    progress:
        Print one line per step with its time (to stdout, so a notebook shows no stderr). Default:
        only for a SQL engine and at least 5 million events.
    con:
        A DuckDB connection (:func:`decaylib.data.engine.connect`, e.g. with a memory limit) or a
        SparkSession to use; default a new one (DuckDB) or :func:`decaylib.data.engine.spark_session`.

    Warnings (:class:`~decaylib.checks.DataWarning`, also listed in ``result.warnings``): the MAD
    of the bot rule is 0, the bot cap kept flagged users, far-off timestamps, a log shorter than
    ``mean_window`` days, more than half of the pairs with one active day.

    Notebooks 02 and 08.
    """
    cfg = CleaningConfig(weights=weights, start_date=start_date, end_day=end_day, bot_z=bot_z, until=until,
                         median_window=median_window, mean_window=mean_window, date_only=date_only,
                         max_bot_share=max_bot_share, time_outliers=time_outliers, max_gap_days=max_gap_days,
                         max_outlier_share=max_outlier_share, max_panel_rows=max_panel_rows)
    notes: list[str] = []
    report = CleaningReport()
    engine = _choose_engine(engine, events)
    if engine != "pandas":
        return run_preprocess(events, cfg, engine=engine, notes=notes, report=report, keep_events=keep_events,
                              progress=progress, con=con)
    if not isinstance(events, pd.DataFrame) and isinstance(events, (str, Path)):
        events = read_events(events)
    ev = validate_events(events)
    report.add("validate", len(events), len(ev), "schema check (never removes rows; fails loudly instead)")

    # Far-off timestamps: before anything that depends on the span.
    mask = detect_time_outliers(ev["ts"], max_gap_days, max_outlier_share).to_numpy()
    far = ev[mask].reset_index(drop=True)
    if mask.any():
        what = _describe_time_outliers(ev, mask, start_date, end_day, until, max_gap_days)
        before = len(ev)
        if _time_outlier_step(what, time_outliers, notes):
            ev = ev[~mask].reset_index(drop=True)
        report.add("time_outliers", before, len(ev), _time_outlier_reason(what, time_outliers))

    used_date_only = is_date_only(ev["ts"]) if date_only is None else bool(date_only)
    ev = drop_duplicates(ev, report, date_only=date_only)  # None: detects the same thing, and says so

    bots = detect_bots(ev, z_threshold=bot_z)
    remove, reason = _bot_decision(bots, len(ev), bot_z, max_bot_share, notes)
    if remove is None:
        report.add("remove_bots", len(ev), len(ev), reason)
    else:
        ev = remove_users(ev, remove, report, reason=reason)
    if len(ev) == 0:
        raise ValueError("no events left after cleaning: every user was flagged as a bot")

    # The data's limits, before the panel is built.
    day = event_days(ev["ts"], start_date)
    first, last = _pair_spans(ev)
    active = pd.DataFrame({"u": ev["user_id"].to_numpy(), "c": ev["category"].to_numpy(), "d": day}).groupby(["u", "c"], sort=False)["d"].nunique()
    _panel_checks(len(ev), first, last, int(day.max()), int((active == 1).sum()), start_date, end_day, until,
                  max_panel_rows, mean_window, notes)

    panel = build_panel(ev, weights, start_date, end_day, until, None, median_window, mean_window)
    outages = sorted(int(d) for d in panel.loc[~panel["observed"], "day"].unique())
    _add_aggregate_step(report, len(ev), len(panel))
    day0 = pd.Timestamp(start_date).floor("D") if start_date is not None else ev["ts"].min().floor("D")
    return PreprocessResult(
        panel=panel, report=report, bots=bots, outage_days=outages, events_clean=ev, warnings=notes,
        rows_per_event=len(panel) / len(ev), time_outliers=far, date_only=used_date_only, start_date=day0,
        engine="pandas", n_events_clean=len(ev),
    )

#: ``engine="auto"`` runs DuckDB at or above this many events (rows of a DataFrame): below it pandas
#: takes a few seconds at most and keeps every intermediate table in view; above it the SQL engine is
#: several times faster and needs a fraction of the memory (``benchmarks/bench_engine.py``).
AUTO_DUCKDB_ROWS = 2_000_000

#: ``engine="auto"`` on files: DuckDB at or above this many bytes on disk (Parquet is about 10-15
#: bytes per event, CSV about 50), pandas below.
AUTO_DUCKDB_BYTES = 50_000_000

ENGINES = ("pandas", "duckdb", "spark", "auto")


def _choose_engine(engine: str, events) -> str:
    """``engine``, with ``"auto"`` resolved by size (:data:`AUTO_DUCKDB_ROWS`, :data:`AUTO_DUCKDB_BYTES`)."""
    check_choice("engine", engine, ENGINES)
    if engine != "auto":
        return engine
    if isinstance(events, pd.DataFrame):
        return "duckdb" if len(events) >= AUTO_DUCKDB_ROWS else "pandas"
    if isinstance(events, (str, Path)):

        size = sum(Path(f).stat().st_size for f in source_files(events))
        return "duckdb" if size >= AUTO_DUCKDB_BYTES else "pandas"
    raise EventSchemaError(f"events must be a pandas DataFrame or a path to Parquet/CSV files, got {type(events).__name__}")
