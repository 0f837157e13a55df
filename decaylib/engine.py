"""The heavy relational steps of preprocessing as SQL in DuckDB: out of core, on files or frames.

Pandas holds every event in memory (about 230 bytes per event at its peak while the panel is
built), so a log of a few tens of millions of events is the end of the road on a laptop. DuckDB
runs in the same process, reads Parquet or CSV files directly (a file, a glob or a folder), spills
to disk when memory is short and uses every core. This module runs there the steps whose cost
grows with the number of *events*; what remains (one row per user, per pair or per pair-day) is
small and goes back to pandas:

* :func:`log_counts`: rows, exact duplicate rows, first and last timestamp;
* :func:`user_stats`: per user events, active days and categories (the input of the bot rule,
  :func:`decaylib.preprocess.detect_bots`);
* :func:`daily_counts`: events per (user, category, day) and event type, the table the daily panel
  is built from (:func:`decaylib.preprocess.build_panel` does the same in pandas);
* :func:`pair_stats`: the sufficient statistics of every pair's decay phase
  (:mod:`decaylib.stream`), so that λ for every pair needs no dense panel at all.

Each function takes ``source``: a pandas DataFrame or a path / glob / folder of Parquet or CSV
files with the columns of the data contract (``user_id, item_id, category, ts, event``), and
gives the same numbers as the pandas path (``tests/test_engine.py`` checks equality on the
simulator's log and on the Online Retail sample). Exact duplicates are the rows repeated in every
column (a logging retry), removed before counting as in :func:`decaylib.preprocess.drop_duplicates`
with ``date_only=False``.
"""

from __future__ import annotations

import glob as _glob
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["connect", "EventStore", "SparkEventStore", "spark_session", "log_counts", "user_stats", "daily_counts", "pair_stats", "REQUIRED"]

REQUIRED = ("user_id", "item_id", "category", "ts", "event")
_COUNTS = ("view", "click", "cart", "purchase", "impression")


def connect(threads: int | None = None, memory_limit: str | None = None):
    """An in-process DuckDB connection (``threads``: default all cores; ``memory_limit`` e.g. ``"4GB"``)."""
    try:
        import duckdb
    except ImportError as err:  # pragma: no cover - duckdb is a core dependency
        raise ImportError("decaylib.engine needs duckdb: pip install duckdb") from err
    con = duckdb.connect()
    if threads is not None:
        con.execute(f"SET threads = {int(threads)}").fetchall()
    if memory_limit is not None:
        con.execute(f"SET memory_limit = '{str(memory_limit)}'").fetchall()
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
    missing = [c for c in REQUIRED if c not in cols]
    if missing:
        raise ValueError(f"the events are missing column(s) {missing}; they have {cols}")
    con.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT user_id, item_id, category, CAST(ts AS TIMESTAMP) AS ts, "
                f"CAST(event AS VARCHAR) AS event FROM {rel}").fetchall()
    empty = con.execute(f"SELECT count(*) FROM {name}").fetchall()[0][0] == 0
    if empty:
        raise ValueError("the events are empty")


def _with_con(con):
    return con if con is not None else connect()


class EventStore:
    """A log registered once in DuckDB, with its exact duplicates removed once (a temporary table).

    Use it to run several steps on one big log without reading and de-duplicating it again::

        store = EventStore("events/*.parquet")
        store.log_counts(); store.user_stats(); store.daily_counts(exclude_users=bots)

    The module-level functions build a store for a single call.
    """

    def __init__(self, source, *, con=None):
        self.con = _with_con(con)
        _events_view(self.con, source)
        self.con.execute("CREATE OR REPLACE TEMP TABLE clean AS SELECT DISTINCT * FROM events").fetchall()

    def log_counts(self) -> dict:
        """``rows``, ``duplicates`` (rows repeated in every column, beyond the first), ``first_ts``, ``last_ts``."""
        rows, first, last = self.con.execute("SELECT count(*), min(ts), max(ts) FROM events").fetchall()[0]
        distinct = self.con.execute("SELECT count(*) FROM clean").fetchall()[0][0]
        return {"rows": int(rows), "duplicates": int(rows - distinct), "first_ts": pd.Timestamp(first),
                "last_ts": pd.Timestamp(last)}

    def user_stats(self) -> pd.DataFrame:
        """Per user, duplicates removed: ``n_events``, ``active_days``, ``n_categories`` (sorted by user)."""
        return self.con.execute(
            "SELECT user_id, count(*) AS n_events, count(DISTINCT date_trunc('day', ts)) AS active_days, "
            "count(DISTINCT category) AS n_categories FROM clean GROUP BY user_id ORDER BY user_id").df().astype(
            {"n_events": "int64", "active_days": "int64", "n_categories": "int64"})

    def daily_counts(self, *, start_date=None, exclude_users=(), dedup: bool = True) -> pd.DataFrame:
        """See :func:`daily_counts`."""
        con = self.con
        src = "clean" if dedup else "events"
        if start_date is None:
            start = con.execute("SELECT date_trunc('day', min(ts)) FROM events").fetchall()[0][0]
        else:
            start = pd.Timestamp(start_date).floor("D").to_pydatetime()
        con.register("excluded_users", pd.DataFrame({"user_id": np.asarray(list(exclude_users), dtype=np.int64)}))
        pivots = ", ".join(f"count(*) FILTER (WHERE event = '{e}') AS {e}" for e in _COUNTS)
        out = con.execute(
            f"SELECT user_id, category, CAST(date_diff('day', CAST(? AS TIMESTAMP), date_trunc('day', ts)) AS BIGINT) "
            f"AS day, {pivots} FROM {src} WHERE user_id NOT IN (SELECT user_id FROM excluded_users) "
            f"GROUP BY ALL ORDER BY user_id, category, day", [start]).df()
        if len(out) and out["day"].min() < 0:
            raise ValueError(f"{int((out['day'] < 0).sum())} (pair, day) rows happen before start_date "
                             f"{pd.Timestamp(start).date()}")
        return out.astype({c: "int64" for c in ("user_id", "category", "day", *_COUNTS)})

    def pair_stats(self, *, t_last: int | None = None, start_date=None, exclude_users=(), outage_days=(),
                   count_events=("view", "click", "cart", "purchase")) -> pd.DataFrame:
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
    """``rows``, ``duplicates`` (rows repeated in every column, beyond the first), ``first_ts``, ``last_ts``."""
    return EventStore(source, con=con).log_counts()


def user_stats(source, *, con=None) -> pd.DataFrame:
    """Per user, after removing exact duplicates: ``n_events``, ``active_days``, ``n_categories`` (sorted by user)."""
    return EventStore(source, con=con).user_stats()


def daily_counts(source, *, start_date=None, exclude_users=(), dedup: bool = True, con=None) -> pd.DataFrame:
    """Events per ``(user_id, category, day)`` and event type (``view, click, cart, purchase, impression``).

    ``day``: whole days since ``start_date`` (default: the first event's day). ``exclude_users``:
    users left out (the bots). One row per active (pair, day), sorted, int64 counts: the table
    :func:`decaylib.preprocess.build_panel` builds in pandas.
    """
    return EventStore(source, con=con).daily_counts(start_date=start_date, exclude_users=exclude_users, dedup=dedup)


def pair_stats(source, *, t_last: int | None = None, start_date=None, exclude_users=(), outage_days=(),
               count_events=("view", "click", "cart", "purchase"), con=None) -> pd.DataFrame:
    """Sufficient statistics of every pair's decay phase, from its peak day to ``t_last``, in SQL.

    The decay starts on the pair's day with the most events (``count_events`` summed; the earliest
    such day), the rule of :func:`decaylib.stream.peak_starts`; outage days count nothing. Returns
    the table of :func:`decaylib.stream.phase_stats` (``t0, t_last, Y, S, active_days,
    first_event, last_event``), ready for :func:`decaylib.stream.lambda_from_stats`, without ever
    building a row for a day without events.
    """
    return EventStore(source, con=con).pair_stats(t_last=t_last, start_date=start_date, exclude_users=exclude_users,
                                                  outage_days=outage_days, count_events=count_events)


# --------------------------------------------------------------------------------------------
# The same steps on Spark (optional extra: pip install decaylib[spark]; Java 17+)
# --------------------------------------------------------------------------------------------
def spark_session(master: str = "local[2]", app: str = "decaylib"):
    """A SparkSession (``local[N]`` on one machine, or a cluster's master URL), with UTC time and Arrow."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as err:
        raise ImportError("the Spark engine needs pyspark: pip install 'decaylib[spark]' (and Java 17+)") from err
    return (SparkSession.builder.master(master).appName(app)
            .config("spark.sql.session.timeZone", "UTC")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.ui.enabled", "false")
            .getOrCreate())


class SparkEventStore:
    """:class:`EventStore` on Spark: the same queries (Spark SQL dialect), the same results.

    ``source``: a pandas DataFrame (small data, for tests and teaching) or a path / folder of
    Parquet or CSV files that the cluster can read (Spark reads microsecond timestamps: write
    Parquet from pandas with ``coerce_timestamps="us"``). The results come back to pandas (they
    are per user or per active pair-day: small).
    """

    def __init__(self, source, *, spark=None):
        self.spark = spark if spark is not None else spark_session()
        if isinstance(source, pd.DataFrame):
            missing = [c for c in REQUIRED if c not in source.columns]
            if missing:
                raise ValueError(f"the events are missing column(s) {missing}; they have {list(source.columns)}")
            if source.empty:
                raise ValueError("the events are empty")
            pdf = source[list(REQUIRED)].copy()
            pdf["ts"] = pd.to_datetime(pdf["ts"]).astype("datetime64[us]")
            pdf["event"] = pdf["event"].astype(str)
            df = self.spark.createDataFrame(pdf)
        elif isinstance(source, (str, Path)):
            files = _files(source)
            reader = self.spark.read
            df = (reader.parquet(*files) if files[0].lower().endswith(".parquet")
                  else reader.option("header", True).option("inferSchema", True).csv(files))
            missing = [c for c in REQUIRED if c not in df.columns]
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
                       "count(DISTINCT category) AS n_categories FROM clean GROUP BY user_id ORDER BY user_id")
        return out.astype({"user_id": "int64", "n_events": "int64", "active_days": "int64", "n_categories": "int64"})

    def daily_counts(self, *, start_date=None, exclude_users=(), dedup: bool = True) -> pd.DataFrame:
        src = "clean" if dedup else "events"
        if start_date is None:
            start = pd.Timestamp(self._df("SELECT min(ts) AS t FROM events").iloc[0]["t"]).floor("D")
        else:
            start = pd.Timestamp(start_date).floor("D")
        excl = ",".join(str(int(u)) for u in exclude_users)
        where = f"WHERE user_id NOT IN ({excl})" if excl else ""  # NOT IN (NULL) would drop every row
        pivots = ", ".join(f"count_if(event = '{e}') AS {e}" for e in _COUNTS)
        out = self._df(
            f"SELECT user_id, category, CAST(datediff(to_date(ts), DATE'{start.date()}') AS BIGINT) AS day, {pivots} "
            f"FROM {src} {where} GROUP BY 1, 2, 3 ORDER BY user_id, category, day")
        if len(out) and out["day"].min() < 0:
            raise ValueError(f"{int((out['day'] < 0).sum())} (pair, day) rows happen before start_date {start.date()}")
        return out.astype({c: "int64" for c in ("user_id", "category", "day", *_COUNTS)}).reset_index(drop=True)

    def pair_stats(self, *, t_last: int | None = None, start_date=None, exclude_users=(), outage_days=(),
                   count_events=("view", "click", "cart", "purchase")) -> pd.DataFrame:
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
