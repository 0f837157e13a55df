"""The heavy relational steps of preprocessing as SQL in DuckDB (or Spark): out of core, on files or frames.

Pandas holds every event in memory (about 230 bytes per event at its peak while the panel is
built), so a log of a few tens of millions of events is the end of the road on a laptop. DuckDB
runs in the same process, reads Parquet or CSV files directly (a file, a glob or a folder), spills
to disk when memory is short and uses every core. This module runs there the steps whose cost
grows with the number of *events*; what remains (one row per user, per pair or per pair-day) is
small and goes back to pandas:

* :func:`log_counts`: rows, exact duplicate rows, first and last timestamp;
* :func:`user_stats`: per user events, active days, categories and purchases (the input of the bot rule,
  :func:`decaylib.data.clean.detect_bots`);
* :func:`daily_counts`: events per (user, category, day) and event type, the table the daily panel
  is built from (:func:`decaylib.data.panel.build_panel` does the same in pandas);
* :func:`pair_stats`: the sufficient statistics of every pair's decay phase
  (:mod:`decaylib.decay.stream`), so that λ for every pair needs no dense panel at all.

The whole cleaning flow runs here too: ``decaylib.data.preprocess.preprocess(events, engine="duckdb")``
(or ``"spark"``, or ``"auto"``, which picks DuckDB from :data:`decaylib.data.preprocess.AUTO_DUCKDB_ROWS`
events or :data:`~decaylib.data.preprocess.AUTO_DUCKDB_BYTES` of files) calls :func:`run_preprocess`:
validation counts, far-off timestamps, duplicates, the bot rule, outage detection and the daily
counts in SQL, the rules themselves shared with the pandas path, and the panel built in pandas from
the daily counts, so the :class:`~decaylib.data.panel.PreprocessResult` is the same whatever the
engine. :func:`preprocess_stats` stops at the per-pair sufficient statistics (no dense panel) for
logs whose panel would not fit. The SQL is portable: Spark runs the same queries through
``spark.sql`` on temporary views (:func:`spark_session`; ``pip install decaylib[spark]``, Java 17+),
and the few dialect differences (the day of a timestamp, materializing a table) live in one class.

Each function takes ``source``: a pandas DataFrame or a path / glob / folder of Parquet or CSV
files with the columns of the data contract (``user_id, item_id, category, ts, event``), and
gives the same numbers as the pandas path (``tests/data/test_engine.py`` checks equality on the
simulator's log and on the Online Retail sample). Exact duplicates are the rows repeated in every
column (a logging retry), removed before counting as in :func:`decaylib.data.clean.drop_duplicates`
with ``date_only=False``.
"""

from __future__ import annotations

import glob as _glob
import os
from pathlib import Path

import numpy as np
import pandas as pd

from decaylib.checks import FLOAT_ID_MAX, DataWarning, EventSchemaError, check_choice, check_float_ids, check_unique_columns
from decaylib.data.clean import (
    CleaningConfig,
    CleaningReport,
    _bot_decision,
    _bot_table,
    _epoch_day,
    _outage_rule,
    _rows_from_spans,
    _time_outlier_days,
    _time_outlier_reason,
    _time_outlier_step,
    _time_outlier_text,
)
from decaylib.data.panel import (
    PreprocessResult,
    _add_aggregate_step,
    _panel_checks,
    _panel_from_counts,
)
from decaylib.schema import BEHAVIOURS, COUNT_COLUMNS, EVENT_LOG_COLUMNS, EVENT_TYPES, PURCHASE

__all__ = ['EVENT_LOG_COLUMNS', 'connect', 'EventStore', 'log_counts', 'user_stats', 'daily_counts', 'pair_stats', 'spark_session', 'SparkEventStore', 'source_files', 'read_events', 'spark_unavailable', 'run_preprocess', 'preprocess_stats']



def connect(threads: int | None = None, memory_limit: str | None = None):
    """An in-process DuckDB connection (``threads``: default all cores; ``memory_limit`` e.g. ``"4GB"``).

    Notebook 09.
    """
    try:
        import duckdb
    except ImportError as err:  # pragma: no cover - duckdb is a core dependency
        raise ImportError("decaylib.data.engine needs duckdb: pip install duckdb") from err
    con = duckdb.connect()
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}").fetchall()
    if memory_limit is not None:
        con.execute(f"SET memory_limit = '{str(memory_limit)}'").fetchall()
    try:  # day boundaries of time-zone-aware timestamps in UTC, as pandas' tz_convert("UTC") draws them
        con.execute("SET TimeZone = 'UTC'").fetchall()
    except duckdb.Error:  # pragma: no cover - without the ICU extension there are no TIMESTAMPTZ values either
        pass
    try:  # no progress bar in notebooks (DuckDB would draw it with ipywidgets)
        con.execute("SET enable_progress_bar = false").fetchall()
    except duckdb.Error:  # inside Jupyter without ipywidgets the setting itself is refused; no bar is drawn then
        pass
    return con


def _files(source) -> list[str]:
    p = Path(source)
    if p.is_dir():
        files = sorted(str(f) for f in p.iterdir() if f.suffix.lower() in (".parquet", ".csv"))
    else:
        files = sorted(_glob.glob(str(source)))
    if not files:
        raise FileNotFoundError(f"no Parquet or CSV file at {source!s}")
    kinds = {Path(f).suffix.lower() for f in files}
    if len(kinds) > 1 or not kinds <= {".parquet", ".csv"}:
        raise ValueError(f"{source!s}: expected only .parquet or only .csv files, found {sorted(kinds)}")
    return files


def _events_view(con, source, name: str = "events") -> None:
    """Register ``source`` as the view ``name`` with the contract's columns, checked."""
    if isinstance(source, pd.DataFrame):
        con.register(f"{name}_raw", source)
        rel = f"{name}_raw"
    elif isinstance(source, (str, Path)):
        files = _files(source)
        lst = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
        reader = f"read_parquet({lst})" if files[0].lower().endswith(".parquet") else f"read_csv_auto({lst})"
        con.execute(f"CREATE OR REPLACE VIEW {name}_raw AS SELECT * FROM {reader}").fetchall()
        rel = f"{name}_raw"
    else:
        raise TypeError(f"source must be a DataFrame or a path to Parquet/CSV files, got {type(source).__name__}")
    cols = [r[0] for r in con.execute(f"DESCRIBE {rel}").fetchall()]
    missing = [c for c in EVENT_LOG_COLUMNS if c not in cols]
    if missing:
        raise ValueError(f"the events are missing column(s) {missing}; they have {cols}")
    con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT user_id, item_id, category, CAST(ts AS TIMESTAMP) AS ts, "
                f"CAST(event AS VARCHAR) AS event FROM {rel}").fetchall()
    empty = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0] == 0
    if empty:
        raise ValueError("the events are empty")


def _with_con(con):
    """``con``, or a new connection. A caller's connection first runs one statement, which ends any
    result it left unfetched: DuckDB refuses ``register`` and relations (``con.sql``) until then."""
    if con is None:
        return connect()
    con.execute("SELECT 1").fetchall()
    return con


class EventStore:
    """A log registered once in DuckDB, with its exact duplicates removed once (a temporary table).

    Use it to run several steps on one big log without reading and de-duplicating it again::

        store = EventStore("events/*.parquet")
        store.log_counts(); store.user_stats(); store.daily_counts(exclude_users=bots)

    The module-level functions build a store for a single call.

    Notebook 09.
    """

    def __init__(self, source, *, con=None):
        self.con = _with_con(con)
        _events_view(self.con, source)
        clean = _distinct_rows(self.con, "events", ", ".join(EVENT_LOG_COLUMNS))  # = SELECT DISTINCT *, faster
        self.con.execute(f"CREATE OR REPLACE TEMP TABLE clean AS {clean}").fetchall()

    def log_counts(self) -> dict:
        """``rows``, ``duplicates`` (rows repeated in every column, beyond the first), ``first_ts``, ``last_ts``."""
        rows, first, last = self.con.execute("SELECT count(*), min(ts), max(ts) FROM events").fetchall()[0]
        distinct = self.con.execute("SELECT count(*) FROM clean").fetchall()[0][0]
        return {"rows": int(rows), "duplicates": int(rows - distinct), "first_ts": pd.Timestamp(first),
                "last_ts": pd.Timestamp(last)}

    def user_stats(self) -> pd.DataFrame:
        """Per user, duplicates removed: ``n_events``, ``active_days``, ``n_categories``, ``n_purchases`` (sorted by user)."""
        return self.con.execute(
            "SELECT user_id, count(*) AS n_events, count(DISTINCT date_trunc('day', ts)) AS active_days, "
            f"count(DISTINCT category) AS n_categories, count(*) FILTER (WHERE event = '{PURCHASE}') AS n_purchases "
            "FROM clean GROUP BY user_id ORDER BY user_id").df().astype(
            {"n_events": "int64", "active_days": "int64", "n_categories": "int64", "n_purchases": "int64"})

    def daily_counts(self, *, start_date=None, exclude_users=(), dedup: bool = True) -> pd.DataFrame:
        """See :func:`daily_counts`."""
        con = self.con
        src = "clean" if dedup else "events"
        if start_date is None:
            start = con.execute("SELECT date_trunc('day', min(ts)) FROM events").fetchall()[0][0]
        else:
            start = pd.Timestamp(start_date).floor("D").to_pydatetime()
        con.register("excluded_users", pd.DataFrame({"user_id": np.asarray(list(exclude_users), dtype=np.int64)}))
        pivots = ", ".join(f"count(*) FILTER (WHERE event = '{e}') AS {e}" for e in COUNT_COLUMNS)
        out = con.execute(
            f"SELECT user_id, category, CAST(date_diff('day', CAST(? AS TIMESTAMP), date_trunc('day', ts)) AS BIGINT) "
            f"AS day, {pivots} FROM {src} WHERE user_id NOT IN (SELECT user_id FROM excluded_users) "
            f"GROUP BY ALL ORDER BY user_id, category, day", [start]).df()
        if len(out) and out["day"].min() < 0:
            raise ValueError(f"{int((out['day'] < 0).sum())} (pair, day) rows happen before start_date "
                             f"{pd.Timestamp(start).date()}")
        return out.astype({c: "int64" for c in ("user_id", "category", "day", *COUNT_COLUMNS)})

    def pair_stats(self, *, t_last: int | None = None, start_date=None, exclude_users=(), outage_days=(),
                   count_events=BEHAVIOURS) -> pd.DataFrame:
        """See :func:`pair_stats`."""
        con = self.con
        counts = self.daily_counts(start_date=start_date, exclude_users=exclude_users)
        con.register("daily", counts)
        last = int(counts["day"].max()) if t_last is None else int(t_last)
        con.register("outages", pd.DataFrame({"day": np.asarray(list(outage_days), dtype=np.int64)}))
        y = " + ".join(count_events)
        out = con.execute(
            f"""
            WITH d AS (SELECT user_id, category, day, CAST({y} AS DOUBLE) AS y FROM daily
                       WHERE day <= ? AND day NOT IN (SELECT day FROM outages) AND {y} > 0),
            peak AS (SELECT user_id, category, arg_min(day, [-y, day]) AS t0 FROM d GROUP BY user_id, category)
            SELECT p.user_id, p.category, p.t0, CAST(? AS BIGINT) AS t_last, sum(d.y) AS "Y",
                   sum((d.day - p.t0) * d.y) AS "S", count(*) AS active_days,
                   CAST(min(d.day) AS DOUBLE) AS first_event, CAST(max(d.day) AS DOUBLE) AS last_event
            FROM peak p JOIN d ON d.user_id = p.user_id AND d.category = p.category AND d.day >= p.t0
            GROUP BY ALL ORDER BY p.user_id, p.category
            """, [last, last]).df()
        return out.astype({"user_id": "int64", "category": "int64", "t0": "int64", "t_last": "int64",
                           "active_days": "int64"})


def log_counts(source, *, con=None) -> dict:
    """``rows``, ``duplicates`` (rows repeated in every column, beyond the first), ``first_ts``, ``last_ts``.

    Notebook 09.
    """
    return EventStore(source, con=con).log_counts()


def user_stats(source, *, con=None) -> pd.DataFrame:
    """Per user, after removing exact duplicates: ``n_events``, ``active_days``, ``n_categories``, ``n_purchases`` (sorted by user).

    Notebook 09.
    """
    return EventStore(source, con=con).user_stats()


def daily_counts(source, *, start_date=None, exclude_users=(), dedup: bool = True, con=None) -> pd.DataFrame:
    """Events per ``(user_id, category, day)`` and event type (``view, click, cart, purchase, impression``).

    ``day``: whole days since ``start_date`` (default: the first event's day). ``exclude_users``:
    users left out (the bots). One row per active (pair, day), sorted, int64 counts: the table
    :func:`decaylib.data.panel.build_panel` builds in pandas.

    Notebook 09.
    """
    return EventStore(source, con=con).daily_counts(start_date=start_date, exclude_users=exclude_users, dedup=dedup)


def pair_stats(source, *, t_last: int | None = None, start_date=None, exclude_users=(), outage_days=(),
               count_events=BEHAVIOURS, con=None) -> pd.DataFrame:
    """Sufficient statistics of every pair's decay phase, from its peak day to ``t_last``, in SQL.

    The decay starts on the pair's day with the most events (``count_events`` summed; the earliest
    such day), the rule of :func:`decaylib.decay.stream.peak_starts`; outage days count nothing. Returns
    the table of :func:`decaylib.decay.stream.phase_stats` (``t0, t_last, Y, S, active_days,
    first_event, last_event``), ready for :func:`decaylib.decay.stream.lambda_from_stats`, without ever
    building a row for a day without events.

    Notebook 09.
    """
    return EventStore(source, con=con).pair_stats(t_last=t_last, start_date=start_date, exclude_users=exclude_users,
                                                  outage_days=outage_days, count_events=count_events)


# --------------------------------------------------------------------------------------------
# The same steps on Spark (optional extra: pip install decaylib[spark]; Java 17+)
# --------------------------------------------------------------------------------------------
def spark_session(master: str = "local[2]", app: str = "decaylib", jvm_log=None, conf: dict | None = None):
    """A SparkSession (``local[N]`` on one machine, or a cluster's master URL), with UTC time and Arrow.

    ``conf``: further Spark settings (``{"spark.executor.memory": "512m"}``), e.g. those of
    :meth:`decaylib.data.spark_cluster.SparkCluster.session` for a standalone cluster.

    The JVM's own output (its start-up notices and log lines) goes to ``jvm_log`` (default:
    ``spark-jvm-<pid>.log`` in the temporary folder) instead of the terminal or the notebook,
    where it would show as stderr blocks; Spark's errors still reach Python as exceptions.
    PySpark's FutureWarning that it does not yet fully support pandas 3 is silenced: the
    equality tests of this module check Spark's results against DuckDB's under the installed
    pandas. An existing session is reused (Spark allows one per process).

    Notebook 09.
    """
    import tempfile
    import warnings

    try:
        from pyspark import SparkConf, SparkContext
        from pyspark.java_gateway import launch_gateway
        from pyspark.sql import SparkSession
    except ImportError as err:
        raise ImportError("the Spark engine needs pyspark: pip install 'decaylib[spark]' (and Java 17+)") from err
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    settings = (SparkConf().setMaster(master).setAppName(app)
                .set("spark.sql.session.timeZone", "UTC")
                .set("spark.sql.execution.arrow.pyspark.enabled", "true")
                .set("spark.sql.shuffle.partitions", "4")
                .set("spark.ui.enabled", "false")
                .set("spark.ui.showConsoleProgress", "false"))  # no stage bars on stderr (notebooks)
    for key, value in (conf or {}).items():
        settings.set(str(key), str(value))
    if SparkContext._active_spark_context is None and SparkContext._gateway is None:  # no JVM yet: start it
        log_path = Path(jvm_log) if jvm_log is not None else Path(tempfile.gettempdir()) / f"spark-jvm-{os.getpid()}.log"
        with open(log_path, "ab") as log:  # the JVM keeps its own copy of the descriptor
            gateway = launch_gateway(settings, popen_kwargs={"stdout": log, "stderr": log})
        SparkContext(conf=settings, gateway=gateway)
    spark = SparkSession.builder.config(conf=settings).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")  # Spark's WARN lines (task sizes, native libraries) are noise here
    return spark


class SparkEventStore:
    """:class:`EventStore` on Spark: the same queries (Spark SQL dialect), the same results.

    ``source``: a pandas DataFrame (small data, for tests and teaching) or a path / folder of
    Parquet or CSV files that the cluster can read (Spark reads microsecond timestamps: write
    Parquet from pandas with ``coerce_timestamps="us"``). The results come back to pandas (they
    are per user or per active pair-day: small).

    Notebook 09.
    """

    def __init__(self, source, *, spark=None):
        self.spark = spark if spark is not None else spark_session()
        if isinstance(source, pd.DataFrame):
            missing = [c for c in EVENT_LOG_COLUMNS if c not in source.columns]
            if missing:
                raise ValueError(f"the events are missing column(s) {missing}; they have {list(source.columns)}")
            if source.empty:
                raise ValueError("the events are empty")
            pdf = source[list(EVENT_LOG_COLUMNS)].copy()
            pdf["ts"] = pd.to_datetime(pdf["ts"]).astype("datetime64[us]")
            pdf["event"] = pdf["event"].astype(str)
            df = self.spark.createDataFrame(pdf)
        elif isinstance(source, (str, Path)):
            files = _files(source)
            reader = self.spark.read
            df = (reader.parquet(*files) if files[0].lower().endswith(".parquet")
                  else reader.option("header", True).option("inferSchema", True).csv(files))
            missing = [c for c in EVENT_LOG_COLUMNS if c not in df.columns]
            if missing:
                raise ValueError(f"the events are missing column(s) {missing}; they have {df.columns}")
        else:
            raise TypeError(f"source must be a DataFrame or a path to Parquet/CSV files, got {type(source).__name__}")
        df.selectExpr("user_id", "item_id", "category", "CAST(ts AS TIMESTAMP) AS ts",
                      "CAST(event AS STRING) AS event").createOrReplaceTempView("events")
        self.spark.sql("SELECT DISTINCT * FROM events").cache().createOrReplaceTempView("clean")

    def _df(self, sql: str) -> pd.DataFrame:
        return self.spark.sql(sql).toPandas()

    def log_counts(self) -> dict:
        r = self._df("SELECT count(*) AS rows, min(ts) AS first, max(ts) AS last FROM events").iloc[0]
        distinct = int(self._df("SELECT count(*) AS n FROM clean").iloc[0]["n"])
        return {"rows": int(r["rows"]), "duplicates": int(r["rows"]) - distinct, "first_ts": pd.Timestamp(r["first"]),
                "last_ts": pd.Timestamp(r["last"])}

    def user_stats(self) -> pd.DataFrame:
        out = self._df("SELECT user_id, count(*) AS n_events, count(DISTINCT date_trunc('DAY', ts)) AS active_days, "
                       f"count(DISTINCT category) AS n_categories, count_if(event = '{PURCHASE}') AS n_purchases "
                       "FROM clean GROUP BY user_id ORDER BY user_id")
        return out.astype({"user_id": "int64", "n_events": "int64", "active_days": "int64", "n_categories": "int64",
                           "n_purchases": "int64"})

    def daily_counts(self, *, start_date=None, exclude_users=(), dedup: bool = True) -> pd.DataFrame:
        src = "clean" if dedup else "events"
        if start_date is None:
            start = pd.Timestamp(self._df("SELECT min(ts) AS t FROM events").iloc[0]["t"]).floor("D")
        else:
            start = pd.Timestamp(start_date).floor("D")
        excl = ",".join(str(int(u)) for u in exclude_users)
        where = f"WHERE user_id NOT IN ({excl})" if excl else ""  # NOT IN (NULL) would drop every row
        pivots = ", ".join(f"count_if(event = '{e}') AS {e}" for e in COUNT_COLUMNS)
        out = self._df(
            f"SELECT user_id, category, CAST(datediff(to_date(ts), DATE'{start.date()}') AS BIGINT) AS day, {pivots} "
            f"FROM {src} {where} GROUP BY 1, 2, 3 ORDER BY user_id, category, day")
        if len(out) and out["day"].min() < 0:
            raise ValueError(f"{int((out['day'] < 0).sum())} (pair, day) rows happen before start_date {start.date()}")
        return out.astype({c: "int64" for c in ("user_id", "category", "day", *COUNT_COLUMNS)}).reset_index(drop=True)

    def pair_stats(self, *, t_last: int | None = None, start_date=None, exclude_users=(), outage_days=(),
                   count_events=BEHAVIOURS) -> pd.DataFrame:
        counts = self.daily_counts(start_date=start_date, exclude_users=exclude_users)
        last = int(counts["day"].max()) if t_last is None else int(t_last)
        self.spark.createDataFrame(counts).createOrReplaceTempView("daily")
        outs = ",".join(str(int(d)) for d in outage_days)
        no_outage = f"AND day NOT IN ({outs})" if outs else ""
        y = " + ".join(count_events)
        out = self._df(
            f"""
            WITH d AS (SELECT user_id, category, day, CAST({y} AS DOUBLE) AS y FROM daily
                       WHERE day <= {last} {no_outage} AND {y} > 0),
            peak AS (SELECT user_id, category, min_by(day, struct(-y, day)) AS t0 FROM d GROUP BY user_id, category)
            SELECT p.user_id, p.category, p.t0, CAST({last} AS BIGINT) AS t_last, sum(d.y) AS Y,
                   sum((d.day - p.t0) * d.y) AS S, count(*) AS active_days,
                   CAST(min(d.day) AS DOUBLE) AS first_event, CAST(max(d.day) AS DOUBLE) AS last_event
            FROM peak p JOIN d ON d.user_id = p.user_id AND d.category = p.category AND d.day >= p.t0
            GROUP BY p.user_id, p.category, p.t0 ORDER BY p.user_id, p.category
            """)
        return out.astype({"user_id": "int64", "category": "int64", "t0": "int64", "t_last": "int64",
                           "active_days": "int64"}).reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# preprocess() in SQL: the whole cleaning flow on DuckDB or Spark, the panel built in pandas
# --------------------------------------------------------------------------------------------
def source_files(source) -> list[str]:
    """The Parquet or CSV files of ``source`` (a file, a glob or a folder), sorted; one kind only.

    Notebooks 02, 08 and 09.
    """
    return _files(source)


def read_events(source) -> pd.DataFrame:
    """The events of Parquet or CSV files (a file, a glob or a folder) as one pandas DataFrame.

    What :func:`decaylib.data.preprocess.preprocess` does with a path and ``engine="pandas"``: the
    whole log in memory (the SQL engines read the files themselves).

    Notebooks 02 and 08.
    """
    files = source_files(source)
    read = pd.read_parquet if files[0].lower().endswith(".parquet") else pd.read_csv
    parts = [read(f) for f in files]
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)


def spark_unavailable() -> str | None:
    """Why the Spark engine cannot run here (pyspark missing, no Java 17+), or ``None`` when it can.

    Notebook 09.
    """
    import os
    import re
    import shutil
    import subprocess

    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'decaylib[spark]')"
    home = os.environ.get("JAVA_HOME")
    java = os.path.join(home, "bin", "java") if home and os.path.exists(os.path.join(home, "bin", "java")) else shutil.which("java")
    if java is None:
        return "Spark needs Java 17+: no java on PATH or in JAVA_HOME"
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.SubprocessError) as err:
        return f"Spark needs Java 17+: running {java} -version failed ({err})"
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    major = int(m.group(1)) if m else 0
    if major == 1 and m.group(2):  # "1.8.0" is Java 8
        major = int(m.group(2))
    if major < 17:
        return f"Spark 4 needs Java 17+; found: {out.splitlines()[0] if out else 'unknown'}"
    return None

_INT_TYPES = ("tinyint", "smallint", "integer", "int", "bigint", "hugeint", "utinyint", "usmallint", "uinteger",
              "ubigint", "int1", "int2", "int4", "int8", "long", "short", "byte")


def _arrow_table(con, sql: str):
    """The result of ``sql`` on the DuckDB connection ``con`` as a pyarrow Table: for a million rows
    about half the time of ``.df()`` (int64 columns then reach NumPy without another copy).

    Through a relation (``con.sql``), not ``con.execute(sql).to_arrow_table()``: with
    ``preserve_insertion_order = false`` (what :class:`_Sql` sets) the latter hands back the
    batches of a parallel export in any order, losing the ``ORDER BY`` (DuckDB 2.0.1; tested). A
    relation refuses to run while an earlier result on the connection is unfetched; :class:`_Sql`
    fetches every result whole, and its first statement ends any result a caller left open.
    """
    rel = con.sql(sql)
    return rel.to_arrow_table() if hasattr(rel, "to_arrow_table") else rel.fetch_arrow_table()  # DuckDB < 1.4


class _Sql:
    """One SQL engine behind the flow: DuckDB (in process) or Spark (``spark.sql`` on temp views).

    Only portable SQL goes through :meth:`df`; what differs between the dialects (the day of a
    timestamp, materializing a table, registering a pandas frame, column types) is a method here.
    """

    def __init__(self, kind: str, con=None):
        self.kind = kind
        self._restore_order = False
        if kind == "duckdb":
            self.con = con if con is not None else connect()
            # Every query here whose row order matters says ORDER BY, so DuckDB need not keep the
            # scan's order in between (~6% of a 10M-event run); the connection's setting comes back
            # in close().
            if self.con.execute("SELECT current_setting('preserve_insertion_order')").fetchall()[0][0]:
                self.con.execute("SET preserve_insertion_order = false").fetchall()
                self._restore_order = True
        else:
            reason = spark_unavailable() if con is None else None
            if reason:
                raise RuntimeError(f"engine='spark' cannot run here: {reason}")
            self.con = con if con is not None else spark_session()
            self.con.conf.set("spark.sql.session.timeZone", "UTC")  # event days in UTC, as pandas counts them
        self._cached = []

    def df(self, sql: str) -> pd.DataFrame:
        if self.kind == "duckdb":
            return self.con.execute(sql).df()
        return self.con.sql(sql).toPandas()

    def arrays(self, sql: str) -> dict[str, np.ndarray]:
        """The result's columns as NumPy arrays (DuckDB: through Arrow, about half the time of
        :meth:`df` for a million rows; no pandas frame is built)."""
        if self.kind == "duckdb":
            t = _arrow_table(self.con, sql)  # each column joined in Arrow's pool, seen by NumPy without a copy
            return {name: t.column(name).combine_chunks().to_numpy() for name in t.column_names}
        return {k: v.to_numpy() for k, v in self.df(sql).items()}

    def table(self, name: str, sql: str) -> None:
        """Materialize ``sql`` as the temporary table ``name`` (read once, used by several steps)."""
        if self.kind == "duckdb":
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}").fetchall()
        else:
            d = self.con.sql(sql).cache()
            d.createOrReplaceTempView(name)
            self._cached.append(d)

    def view(self, name: str, sql: str) -> None:
        if self.kind == "duckdb":
            self.con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS {sql}").fetchall()
        else:
            self.con.sql(sql).createOrReplaceTempView(name)

    def register(self, name: str, frame: pd.DataFrame, schema: str | None = None) -> None:
        if self.kind == "duckdb":
            self.con.register(name, frame)
        else:
            d = self.con.createDataFrame(frame, schema=schema) if schema else self.con.createDataFrame(frame)
            d.createOrReplaceTempView(name)

    def source(self, events) -> None:
        """Register the raw events as ``events_raw``: a pandas frame or Parquet/CSV files."""
        if isinstance(events, pd.DataFrame):
            check_unique_columns(events.columns, "events")
            if self.kind == "duckdb":
                self.con.register("events_raw", events)
            else:
                pdf = events.copy()
                for c in pdf.columns:  # Spark holds microseconds; Arrow refuses to truncate silently
                    if pd.api.types.is_datetime64_any_dtype(pdf[c]):
                        pdf[c] = pdf[c].dt.floor("us")
                    elif pd.api.types.is_string_dtype(pdf[c]) and not pd.api.types.is_object_dtype(pdf[c]):
                        pdf[c] = pdf[c].astype(object)
                self.con.createDataFrame(pdf).createOrReplaceTempView("events_raw")
            return
        if not isinstance(events, (str, Path)):
            raise TypeError(f"events must be a DataFrame or a path to Parquet/CSV files, got {type(events).__name__}")
        files = source_files(events)
        parquet = files[0].lower().endswith(".parquet")
        if self.kind == "duckdb":
            lst = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
            reader = f"read_parquet({lst})" if parquet else f"read_csv_auto({lst})"
            self.view("events_raw", f"SELECT * FROM {reader}")
        else:
            r = self.con.read
            d = r.parquet(*files) if parquet else r.option("header", True).option("inferSchema", True).csv(files)
            d.createOrReplaceTempView("events_raw")

    def types(self, name: str) -> dict[str, str]:
        """Column name -> lower-case type name."""
        if self.kind == "duckdb":
            return {r[0]: str(r[1]).lower() for r in self.con.execute(f"DESCRIBE {name}").fetchall()}
        return {c: str(t).lower() for c, t in self.con.table(name).dtypes}

    def epoch_day(self, ts: str) -> str:
        """SQL: the whole days from 1970-01-01 to the day of ``ts`` (BIGINT)."""
        if self.kind == "duckdb":
            return f"CAST(date_diff('day', DATE '1970-01-01', CAST({ts} AS DATE)) AS BIGINT)"
        return f"CAST(unix_date(CAST({ts} AS DATE)) AS BIGINT)"

    def close(self) -> None:
        for d in self._cached:
            d.unpersist()
        self._cached = []
        if self._restore_order:
            self.con.execute("SET preserve_insertion_order = true").fetchall()
            self._restore_order = False


class _Progress:
    """One printed line per step with its time (stdout: a notebook shows it without stderr noise)."""

    def __init__(self, enabled: bool, engine: str):
        import time

        self.enabled, self.engine, self._time = enabled, engine, time.perf_counter
        self.t0 = self.last = self._time()

    def __call__(self, step: str) -> None:
        now = self._time()
        if self.enabled:
            print(f"[{self.engine}] {step}: {now - self.last:.1f} s (total {now - self.t0:.1f} s)", flush=True)
        self.last = now


def _int_list(values) -> str:
    return ", ".join(str(int(v)) for v in values)

#: ``progress=None`` prints the steps from this many events on.
PROGRESS_ROWS = 5_000_000


def _bad_float_id(c: str) -> str:
    """SQL: a float id that :func:`decaylib.checks.check_float_ids` refuses (NaN and infinities fail the
    comparison; a NULL is counted as missing elsewhere)."""
    return f"{c} IS NOT NULL AND NOT (abs({c}) <= {FLOAT_ID_MAX} AND {c} = floor({c}))"


def _validate_sql(db: _Sql):
    """The checks of :func:`decaylib.data.clean.validate_events` in SQL; defines the view ``events``
    (the contract's columns, canonical types).

    The checks are counted per calendar day in the same pass over the events. Returns ``(n,
    per_day)``: the number of rows and a frame of ``d`` (days since 1970-01-01), ``n`` (events)
    and ``timed`` (events not at midnight), sorted by day. Event names are not checked here: the
    caller checks them with :func:`_check_event_names` (see there).
    """

    types = db.types("events_raw")
    missing = [c for c in EVENT_LOG_COLUMNS if c not in types]
    if missing:
        raise EventSchemaError(f"events is missing required column(s) {missing}; it has {list(types)}")
    checks = ["count(*) AS n_rows"] + [f"count(*) - count({c}) AS null_{c}" for c in EVENT_LOG_COLUMNS]
    ids = {}
    for c in ("user_id", "item_id", "category"):
        t = types[c]
        if t.split("(")[0] in _INT_TYPES:
            ids[c] = f"CAST({c} AS BIGINT)"
        elif t.startswith(("double", "float", "real", "decimal", "numeric")):
            ids[c] = f"CAST({c} AS BIGINT)"
            checks.append(f"sum(CASE WHEN {_bad_float_id(c)} THEN 1 ELSE 0 END) AS float_{c}")
        elif t in ("varchar", "string") or t.startswith("varchar"):
            ids[c] = f"TRY_CAST({c} AS BIGINT)"
            checks.append(f"sum(CASE WHEN {c} IS NOT NULL AND TRY_CAST({c} AS BIGINT) IS NULL THEN 1 ELSE 0 END) AS bad_{c}")
        else:
            raise EventSchemaError(f"column {c!r} must hold integer ids, got SQL type {types[c]}")
    t = types["ts"]
    if t.startswith("timestamp with time zone") or t == "timestamptz":
        ts = "timezone('UTC', ts)" if db.kind == "duckdb" else "ts"
    elif t.startswith("timestamp"):
        ts = "ts"
    elif t == "date":
        ts = "CAST(ts AS TIMESTAMP)"
    elif t in ("varchar", "string") or t.startswith("varchar"):
        ts = "TRY_CAST(ts AS TIMESTAMP)"
        checks.append("sum(CASE WHEN ts IS NOT NULL AND TRY_CAST(ts AS TIMESTAMP) IS NULL THEN 1 ELSE 0 END) AS bad_ts")
    else:
        raise EventSchemaError(
            f"column 'ts' has SQL type {t}: Unix numbers have no unit to read them by; convert them to timestamps "
            "first (decaylib.data.load.load_events does, with ts_unit=)")
    day = db.epoch_day(ts)  # one pass: the checks per day (summed here) and the events per day for step 2
    days = db.df(f"SELECT {day} AS d, " + ", ".join(checks) + f", sum(CASE WHEN {ts} <> CAST(CAST({ts} AS DATE) "
                 f"AS TIMESTAMP) THEN 1 ELSE 0 END) AS timed FROM events_raw GROUP BY {day} ORDER BY d")
    r = days.drop(columns=["d", "timed"]).fillna(0).sum()
    n = int(r["n_rows"])
    if n == 0:
        raise EventSchemaError("events is empty: there is nothing to preprocess")
    for c in ("user_id", "item_id", "category"):
        if int(r[f"null_{c}"]):
            raise EventSchemaError(f"column {c!r} has {int(r[f'null_{c}'])} missing value(s)")
        if f"float_{c}" in r and int(r[f"float_{c}"] or 0):  # the rule of check_float_ids, shown on a few rows
            row = "row_number() OVER () - 1" if db.kind == "duckdb" else "row_number() OVER (ORDER BY monotonically_increasing_id()) - 1"
            ex = db.df(f"SELECT * FROM (SELECT {row} AS r, CAST({c} AS DOUBLE) AS v FROM events_raw) x "
                       f"WHERE {_bad_float_id('v')} ORDER BY r LIMIT 5")
            check_float_ids(ex["v"].to_numpy(dtype=float), c, ex["r"].to_numpy(), total=int(r[f"float_{c}"]))
        if f"bad_{c}" in r and int(r[f"bad_{c}"] or 0):
            ex = db.df(f"SELECT DISTINCT {c} FROM events_raw WHERE TRY_CAST({c} AS BIGINT) IS NULL OR "
                       f"CAST(TRY_CAST({c} AS DOUBLE) AS DOUBLE) <> floor(TRY_CAST({c} AS DOUBLE)) ORDER BY {c} LIMIT 3")[c].tolist()
            raise EventSchemaError(f"column {c!r} must hold integer ids; found {int(r[f'bad_{c}'])} non-integer value(s), e.g. {ex}")
    if int(r["null_ts"]):
        raise EventSchemaError(f"column 'ts' has {int(r['null_ts'])} missing timestamp(s)")
    if "bad_ts" in r and int(r["bad_ts"] or 0):
        ex = db.df("SELECT DISTINCT ts FROM events_raw WHERE TRY_CAST(ts AS TIMESTAMP) IS NULL ORDER BY ts LIMIT 3")["ts"].tolist()
        raise EventSchemaError(f"column 'ts' has {int(r['bad_ts'])} value(s) that are not timestamps, e.g. {ex}")
    if int(r["null_event"]):
        raise EventSchemaError(f"column 'event' has {int(r['null_event'])} missing value(s)")
    db.view("events", f"SELECT {ids['user_id']} AS user_id, {ids['item_id']} AS item_id, {ids['category']} AS category, "
                      f"{ts} AS ts, CAST(event AS STRING) AS event, {db.epoch_day(ts)} AS d FROM events_raw")
    days = days.rename(columns={"n_rows": "n"})[["d", "n", "timed"]]
    return n, days.astype({"d": "int64", "n": "int64", "timed": "int64"}).reset_index(drop=True)


def _check_event_names(db: _Sql) -> None:
    """Raise :class:`~decaylib.checks.EventSchemaError` naming up to five unknown event names, if any.

    Not part of :func:`_validate_sql`'s pass: the daily counts count every event type anyway, so
    :func:`_run` compares their sum with the events counted and scans for the names only when they
    differ (or when far-off days are about to be set apart, before which the check must run).
    """


    known = ", ".join(f"'{e}'" for e in EVENT_TYPES)
    bad = db.df(f"SELECT DISTINCT CAST(event AS STRING) AS e FROM events_raw WHERE CAST(event AS STRING) NOT IN ({known}) "
                "ORDER BY e LIMIT 5")["e"].tolist()
    if bad:
        raise EventSchemaError(f"column 'event' has unknown event name(s) {bad}; expected one of {list(EVENT_TYPES)}")


def _span_rows(db: _Sql, where: str, start_date, end_day, until: str) -> int:
    """:func:`decaylib.data.clean.estimate_panel_rows` of the events of ``events`` matching ``where``."""

    sp = db.df(f"SELECT min(d) AS f, max(d) AS l FROM events WHERE {where} GROUP BY user_id, category")
    return _rows_from_spans(sp["f"].to_numpy(dtype=np.int64), sp["l"].to_numpy(dtype=np.int64), start_date, end_day, until)


def run_preprocess(events, cfg: CleaningConfig | None = None, *, engine: str = "duckdb", notes=None, report=None,
                   keep_events=None, progress=None, con=None, stats_only=False, t_last=None, count_events=BEHAVIOURS):
    """:func:`decaylib.data.preprocess.preprocess` with the event-sized steps in SQL (``engine``:
    ``"duckdb"`` or ``"spark"``); call it through ``preprocess(..., engine=...)`` (which checks the
    arguments) or :func:`preprocess_stats`.

    The flow, step by step the same rules as the pandas path (the rules themselves are shared
    functions of :mod:`decaylib.data.preprocess`, applied to what the SQL returns):

    1. validation counts (missing values, non-integer ids, unparseable timestamps), counted per
       calendar day in one pass over the events (unknown event names: see step 3);
    2. the events per calendar day -> far-off timestamps (:func:`~decaylib.data.clean.detect_time_outliers`'
       rule) and whether every timestamp is at midnight (dates only);
    3. the distinct events (exact duplicates gone, unless the timestamps are dates only; in DuckDB
       found through a sorted row hash, :func:`_dedup_source`) aggregated at once into events per
       (user, category, day) and event type, materialized as the table ``daily_all`` (a row per
       active pair-day); when its per-type counts do not add up to its events, some event names
       are unknown, and the error names them (checked before step 2 sets far-off days apart, if any);
    4. per-user events, active days and categories from ``daily_all`` -> the bot rule and the
       ``max_bot_share`` cap; ``daily`` = ``daily_all`` without the removed users;
    5. per pair first/last day and active days, per day active pairs -> the panel-size check, the
       sparse-pairs warning and the logging outages (:func:`~decaylib.data.clean.detect_outage_days`'
       rule, from live and active pairs per day: no panel needed);
    6. the daily counts back to NumPy, zero-filled into the panel by the pandas code
       (``stats_only``: instead, the sufficient statistics of every pair's decay phase, in SQL).

    Notebooks 02, 08 and 09.
    """
    notes = [] if notes is None else notes
    report = CleaningReport() if report is None else report
    db = _Sql(engine, con)
    try:
        return _run(db, events, CleaningConfig() if cfg is None else cfg, notes=notes, report=report,
                    keep_events=keep_events, progress=progress, stats_only=stats_only, t_last=t_last,
                    count_events=count_events)
    finally:
        db.close()


def _run(db: _Sql, events, cfg: CleaningConfig, *, notes, report, keep_events, progress, stats_only, t_last, count_events):
    step = _Progress(False, db.kind)  # enabled once the size is known; the clock starts now
    db.source(events)
    n, per_day = _validate_sql(db)
    step.enabled = n >= PROGRESS_ROWS if progress is None else bool(progress)
    step(f"validate {n:,} events, events per day")
    report.add("validate", n, n, "schema check (never removes rows; fails loudly instead)")

    # 2. Far-off timestamps and dates-only, from the events per day.
    days, counts = per_day["d"].to_numpy(dtype=np.int64), per_day["n"].to_numpy(dtype=np.int64)
    bad = _time_outlier_days(days, counts, cfg.max_gap_days, cfg.max_outlier_share)
    where = "TRUE"
    far_sql = None
    if len(bad):
        _check_event_names(db)  # before anything is set apart (afterwards, the daily counts tell)
        out_mask = np.isin(days, bad)
        out_days = pd.Series(counts[out_mask], index=pd.to_datetime(days[out_mask], unit="D"), name="count")
        k = days[~out_mask]
        lit = _int_list(bad)
        what = _time_outlier_text(
            out_days, pd.Timestamp(int(k.min()), unit="D"), pd.Timestamp(int(k.max()), unit="D"),
            pd.Timestamp(int(days.min()), unit="D"), pd.Timestamp(int(days.max()), unit="D"),
            float(counts[out_mask].sum() / n), _span_rows(db, "TRUE", cfg.start_date, cfg.end_day, cfg.until),
            _span_rows(db, f"d NOT IN ({lit})", cfg.start_date, cfg.end_day, cfg.until), cfg.max_gap_days)
        far_sql = f"SELECT user_id, item_id, category, ts, event FROM events WHERE d IN ({lit}) ORDER BY user_id, ts, item_id, category, event"
        if _time_outlier_step(what, cfg.time_outliers, notes):
            where = f"d NOT IN ({lit})"
            kept = n - int(counts[out_mask].sum())
            per_day = per_day[~out_mask]
        else:
            kept = n
        report.add("time_outliers", n, kept, _time_outlier_reason(what, cfg.time_outliers))
    else:
        kept = n
    detected = cfg.date_only is None
    used_date_only = (kept >= 2 and int(per_day["timed"].sum()) == 0) if detected else bool(cfg.date_only)
    step("far-off timestamps")

    # 3. Exact duplicates and the daily counts per pair and event type, in one pass.
    src = _dedup_source(db, where, kept) if not used_date_only else f"(SELECT * FROM events WHERE {where})"
    pivots = ", ".join(f"count(*) FILTER (WHERE event = '{e}') AS {e}" for e in COUNT_COLUMNS)
    db.table("daily_all", f"SELECT user_id, category, d, {pivots}, count(*) AS total FROM {src} e "
                          "GROUP BY user_id, category, d")
    tot = db.df(f"SELECT sum(total) AS n, sum({' + '.join(COUNT_COLUMNS)}) AS known FROM daily_all")
    distinct = int(tot["n"].iloc[0])
    if int(tot["known"].iloc[0]) != distinct:  # events of none of the known types: name them
        _check_event_names(db)
    if used_date_only:
        n_same = int(db.df(f"SELECT count(*) AS n FROM (SELECT DISTINCT user_id, item_id, category, ts, event FROM events "
                           f"WHERE {where}) x").iloc[0]["n"])
        how = "detected: every timestamp is at midnight" if detected else "date_only=True"
        report.add("drop_duplicates", kept, kept,
                   f"timestamps are dates only ({how}): {kept - n_same:,} identical row(s) kept as real same-day repeats "
                   "(e.g. the same item bought twice a day), not logging retries")
    else:
        report.add("drop_duplicates", kept, distinct, "exact duplicate rows (logging retries)")
    step(f"duplicates and daily counts ({distinct:,} events left)")

    # 4. The bot rule on the per-user table.
    users = db.df("SELECT user_id, sum(total) AS n_events, count(DISTINCT d) AS active_days, "
                  f"count(DISTINCT category) AS n_categories, sum({PURCHASE}) AS n_purchases FROM daily_all "
                  "GROUP BY user_id ORDER BY user_id")
    by_user = users.astype("int64").set_index("user_id")
    if len(by_user) == 0:
        raise ValueError("events is empty: cannot detect bots")
    import warnings as _w

    with _w.catch_warnings():  # detect_bots warns with its own stack level; repeat from here
        _w.simplefilter("ignore")
        bots = _bot_table(by_user, cfg.bot_z)
    for msg in bots.attrs.get("warnings", []):
        _w.warn(msg, DataWarning, stacklevel=4)
    remove, reason = _bot_decision(bots, distinct, cfg.bot_z, cfg.max_bot_share, notes)
    if remove:
        db.register("removed_users", pd.DataFrame({"user_id": np.asarray(remove, dtype=np.int64)}), "user_id BIGINT")
        db.table("daily", "SELECT * FROM daily_all WHERE user_id NOT IN (SELECT user_id FROM removed_users)")
        n_clean = distinct - int(bots.loc[bots["user_id"].isin(remove), "n_events"].sum())
    else:
        db.view("daily", "SELECT * FROM daily_all")
        n_clean = distinct
    report.add("remove_bots", distinct, n_clean if remove is not None else distinct, reason)
    if n_clean == 0:
        raise ValueError("no events left after cleaning: every user was flagged as a bot")
    step(f"bot rule ({len(remove or [])} removed)")

    # 5. Pair spans, the data's limits, the outages.
    first_d = int(db.df("SELECT min(d) AS d FROM daily").iloc[0]["d"])
    day0 = _epoch_day(cfg.start_date) if cfg.start_date is not None else first_d
    if first_d < day0:
        early = int(db.df(f"SELECT sum(total) AS n FROM daily WHERE d < {day0}").iloc[0]["n"])
        raise ValueError(f"{early} event(s) happen before start_date {pd.Timestamp(cfg.start_date).date()}")
    spans = db.df("SELECT min(d) AS f, max(d) AS l, count(*) AS n_days FROM daily GROUP BY user_id, category")
    first, last = spans["f"].to_numpy(dtype=np.int64), spans["l"].to_numpy(dtype=np.int64)
    max_day = int(last.max()) - day0
    _panel_checks(n_clean, first, last, max_day, int((spans["n_days"].to_numpy() == 1).sum()), cfg.start_date, cfg.end_day,
                     cfg.until, None if stats_only else cfg.max_panel_rows, cfg.mean_window, notes)
    if cfg.end_day is not None and max_day > cfg.end_day:
        raise ValueError(f"events run to day {max_day}, after end_day={cfg.end_day}")
    last_day = max_day if cfg.end_day is None else int(cfg.end_day)
    hits = db.df("SELECT d, count(*) AS n FROM daily GROUP BY d")
    outages = _outage_days(first - day0, last - day0, hits["d"].to_numpy(dtype=np.int64) - day0,
                           hits["n"].to_numpy(dtype=np.int64))
    step(f"pair spans and outages ({len(first):,} pairs, {len(outages)} outage day(s))")

    far = db.df(far_sql) if far_sql is not None else None
    if far is not None:
        far = _as_events(far)
    if keep_events is None:
        keep_events = isinstance(events, pd.DataFrame)
    ev_clean = None
    if keep_events:
        excl = "AND user_id NOT IN (SELECT user_id FROM removed_users)" if remove else ""
        inner = src[1:-1]  # the de-duplicated events (or all, dates only)
        ev_clean = _as_events(db.df(f"SELECT user_id, item_id, category, ts, event FROM ({inner}) x WHERE TRUE {excl} "
                                    "ORDER BY user_id, category, ts, item_id, event"))
        step("clean events to pandas")
    start = pd.Timestamp(cfg.start_date).floor("D") if cfg.start_date is not None else pd.Timestamp(day0, unit="D")
    common = dict(report=report, bots=bots, outage_days=outages, events_clean=ev_clean, warnings=notes,
                  time_outliers=far if far is not None else _as_events(pd.DataFrame(columns=list(EVENT_LOG_COLUMNS))),
                  date_only=used_date_only, start_date=start, engine=db.kind, n_events_clean=n_clean)

    if stats_only:
        rows = _rows_from_spans(first, last, cfg.start_date, cfg.end_day, cfg.until)
        tl = last_day if t_last is None else int(t_last)
        stats = _pair_stats_sql(db, day0, tl, outages, count_events)
        step(f"sufficient statistics of {len(stats):,} pairs")
        report.add("aggregate", n_clean, len(stats), f"events -> one row of sufficient statistics per (user, category) pair "
                   f"(decay phase from the peak day to day {tl}); no panel built", removes=False)
        return PreprocessResult(panel=None, rows_per_event=rows / n_clean, stats=stats, **common)

    counts = db.arrays(f"SELECT user_id, category, d - {day0} AS day, {', '.join(COUNT_COLUMNS)} FROM daily "
                       "ORDER BY user_id, category, day")
    counts = {k: np.asarray(v, dtype=np.int64) for k, v in counts.items()}
    step(f"{len(counts['day']):,} active pair-days to NumPy")
    panel = _panel_from_counts(counts, last_day, cfg.until, outages, cfg.weights, cfg.median_window, cfg.mean_window)
    _add_aggregate_step(report, n_clean, len(panel))
    step(f"panel of {len(panel):,} rows")
    return PreprocessResult(panel=panel, rows_per_event=len(panel) / n_clean, **common)

HASH_DEDUP_MAX_ROWS = None  # None: as many rows as fit 8 bytes each in a quarter of DuckDB's memory_limit

_UNITS = {"bytes": 1, "b": 1, "kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15, "kib": 2**10, "mib": 2**20,
          "gib": 2**30, "tib": 2**40, "pib": 2**50}


def _bytes(text: str) -> float:
    """``"7.4 GiB"`` (DuckDB's way of showing a memory size) -> bytes."""
    num, _, unit = str(text).strip().partition(" ")
    try:
        return float(num) * _UNITS[unit.strip().lower() or "bytes"]
    except (ValueError, KeyError):
        raise ValueError(f"cannot read the memory size {text!r}") from None


def _hash_dedup_max_rows(con) -> int:
    if HASH_DEDUP_MAX_ROWS is not None:
        return int(HASH_DEDUP_MAX_ROWS)
    try:  # no more than the machine's memory ('-1', no limit, shows as 16383.9 PiB)
        ram = float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):  # pragma: no cover - not on Linux/macOS
        ram = 8 * 2.0**30
    try:
        limit = min(_bytes(con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]), ram)
    except ValueError:  # pragma: no cover - a format this DuckDB version does not use
        limit = ram
    return int(limit / 4 / 8)


def _distinct_rows(con, relation: str, cols: str, where: str = "TRUE", rows: int | None = None,
                   key: str | None = None) -> str:
    """DuckDB SQL for the distinct rows (columns ``cols``) of ``relation WHERE where``: exactly a
    ``SELECT DISTINCT``, found faster while the row hashes fit in memory.

    A ``SELECT DISTINCT`` hashes every row into a table of ~all rows (most events are unique),
    the slowest step of a whole run (1.1-1.6 s at 10M events on 2 threads). Instead one 64-bit
    hash of the five event columns per row is sorted in NumPy (~0.1 s at 10M); rows whose hash
    occurs once are certainly unique (identical rows have identical hashes) and are kept as they
    are, and only rows whose hash occurs more than once (the duplicates plus any hash collision,
    ~1% here) go through an exact ``SELECT DISTINCT``. Collisions included, the result is exactly
    the ``SELECT DISTINCT`` (tested). The hashes take 8 bytes a row in NumPy, outside DuckDB's own
    memory: while they fit a quarter of its ``memory_limit`` (:data:`HASH_DEDUP_MAX_ROWS` rows
    when set; about 590M rows with the default limit on a 24 GiB machine, 250M with
    ``memory_limit="8GB"``); above that, the plain ``SELECT DISTINCT``, which spills to disk.
    ``rows``: the row count if known; ``key``: the SQL expression hashed per row (the tests pass
    deliberately weak ones to show that collisions cost time, never rows).
    """
    if rows is None:
        rows = int(con.execute(f"SELECT count(*) FROM {relation} WHERE {where}").fetchall()[0][0])
    if rows > _hash_dedup_max_rows(con):
        return f"SELECT DISTINCT {cols} FROM {relation} WHERE {where}"
    key = key or f"hash({', '.join(EVENT_LOG_COLUMNS)})"
    # fetchnumpy on an execute() result. Through Arrow its chunks and the joined array would both be
    # alive (16 bytes a row at the peak); on a relation (con.sql) it is faster at 10M rows (0.14 vs
    # 0.17 s) but slower and larger at 99M (1.9-3.0 s and 1.8 GB against 1.4 s and 1.3 GB).
    h = np.asarray(con.execute(f"SELECT {key} AS h FROM {relation} WHERE {where}").fetchnumpy()["h"], dtype=np.uint64)
    if not h.flags.writeable:
        h = h.copy()
    h.sort()  # in place: one array of 8 bytes a row at any time
    dup = np.unique(h[1:][h[1:] == h[:-1]])
    del h
    con.register("dedup_hashes", pd.DataFrame({"h": dup}))
    return (f"WITH flagged AS (SELECT {cols}, {key} IN (SELECT h FROM dedup_hashes) AS candidate FROM {relation} "
            f"WHERE {where}) SELECT {cols} FROM flagged WHERE NOT candidate "
            f"UNION ALL SELECT DISTINCT {cols} FROM flagged WHERE candidate")


def _dedup_source(db: _Sql, where: str, rows: int, key: str | None = None) -> str:
    """SQL (a subquery) for the distinct events of ``events WHERE where``, with their day ``d``:
    :func:`_distinct_rows` in DuckDB, ``SELECT DISTINCT`` in Spark."""
    cols = "user_id, item_id, category, ts, event, d"
    if db.kind != "duckdb":
        return f"(SELECT DISTINCT {cols} FROM events WHERE {where})"
    return f"({_distinct_rows(db.con, 'events', cols, where, rows, key)})"


def _as_events(frame: pd.DataFrame) -> pd.DataFrame:
    """A SQL result as an event table with the pandas path's dtypes."""
    out = frame[list(EVENT_LOG_COLUMNS)].reset_index(drop=True)
    return out.astype({"user_id": "int64", "item_id": "int64", "category": "int64", "ts": "datetime64[ns]",
                       "event": str})


def _outage_days(first: np.ndarray, last: np.ndarray, hit_days: np.ndarray, hit_pairs: np.ndarray) -> list[int]:
    """:func:`decaylib.data.clean.detect_outage_days` from pair spans and active pairs per day."""
    lo, hi = int(first.min()), int(last.max())
    size = np.zeros(hi - lo + 2, dtype=np.int64)
    np.add.at(size, first - lo, 1)
    np.add.at(size, last - lo + 1, -1)
    live = np.cumsum(size)[:-1]
    hits = np.zeros(hi - lo + 1, dtype=np.int64)
    hits[hit_days - lo] = hit_pairs
    idx = np.flatnonzero(live > 0)
    per_day = pd.DataFrame({"mean": hits[idx] / live[idx], "size": live[idx]}, index=idx + lo)
    return sorted(int(d) for d in _outage_rule(per_day))


def _pair_stats_sql(db: _Sql, day0: int, t_last: int, outages, count_events) -> pd.DataFrame:
    """The per-pair sufficient statistics (:data:`decaylib.decay.stream.STATS_COLUMNS`) from ``daily``, in portable SQL:
    the decay starts on the pair's day with the most ``count_events`` (the earliest on a tie), outage days excluded."""
    unknown = [e for e in count_events if e not in COUNT_COLUMNS]
    if unknown or not count_events:
        raise ValueError(f"count_events must name some of {list(COUNT_COLUMNS)}, got {list(count_events)}")
    y = " + ".join(count_events)
    no_out = f"AND d - {day0} NOT IN ({_int_list(outages)})" if len(outages) else ""
    out = db.df(f"""
        WITH x AS (SELECT user_id, category, d - {day0} AS day, CAST({y} AS DOUBLE) AS y FROM daily
                   WHERE d - {day0} <= {int(t_last)} {no_out} AND {y} > 0),
        m AS (SELECT user_id, category, max(y) AS ymax FROM x GROUP BY user_id, category),
        p AS (SELECT x.user_id, x.category, min(x.day) AS t0 FROM x JOIN m ON x.user_id = m.user_id
              AND x.category = m.category AND x.y = m.ymax GROUP BY x.user_id, x.category)
        SELECT p.user_id, p.category, p.t0, CAST({int(t_last)} AS BIGINT) AS t_last, sum(x.y) AS Y,
               sum(CAST(x.day - p.t0 AS DOUBLE) * x.y) AS S, count(*) AS active_days,
               CAST(min(x.day) AS DOUBLE) AS first_event, CAST(max(x.day) AS DOUBLE) AS last_event
        FROM p JOIN x ON x.user_id = p.user_id AND x.category = p.category AND x.day >= p.t0
        GROUP BY p.user_id, p.category, p.t0 ORDER BY p.user_id, p.category""")
    return out.astype({"user_id": "int64", "category": "int64", "t0": "int64", "t_last": "int64", "Y": "float64",
                       "S": "float64", "active_days": "int64"}).reset_index(drop=True)


def preprocess_stats(events, *, engine: str = "duckdb", t_last: int | None = None,
                     count_events=BEHAVIOURS, **kwargs):
    """The cleaning of :func:`decaylib.data.preprocess.preprocess`, stopping at the per-pair sufficient statistics.

    For logs whose dense panel would not fit: the same validation, far-off timestamps,
    duplicates, bot rule and outage detection (same report, bots and outage days), then, instead
    of a panel, one row per pair with the statistics of its decay phase (``result.stats``,
    :data:`decaylib.decay.stream.STATS_COLUMNS`: ``t0`` the day of the pair's highest daily count of
    ``count_events`` outside outage days, the earliest on a tie; ``t_last`` default the last day
    of the window; ``Y``, ``S`` over the observed days of ``[t0, t_last]``), ready for
    :func:`decaylib.decay.stream.lambda_from_stats` with ``result.outage_days``. ``result.panel`` is
    ``None``; ``rows_per_event`` says how large the panel would have been. ``engine``:
    ``"duckdb"`` or ``"spark"``; ``kwargs``: :func:`~decaylib.data.preprocess.preprocess`'s options.

    Notebook 09.
    """

    check_choice("engine", engine, ("duckdb", "spark"))
    run = {k: kwargs.pop(k) for k in ("keep_events", "progress", "con") if k in kwargs}
    return run_preprocess(events, CleaningConfig(**kwargs), engine=engine, stats_only=True, t_last=t_last,
                          count_events=count_events, **run)
