"""DuckDB engine (decaylib.data.engine): the same counts as the pandas path, on frames and on files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decaylib import checks
from decaylib.data import clean as CL
from decaylib.data import engine as EN
from decaylib.data import panel as PN
from decaylib.data import preprocess as PP
from decaylib.decay import stream as ST
from decaylib.workflow.params import project_path


@pytest.fixture(scope="module")
def events(small_sim):
    return small_sim.events


def pandas_daily(ev, exclude=()):
    ev = ev.drop_duplicates()
    ev = ev[~ev["user_id"].isin(list(exclude))]
    keys = pd.DataFrame({"user_id": ev["user_id"].to_numpy(), "category": ev["category"].to_numpy(),
                         "day": PN.event_days(ev["ts"], ev["ts"].min().floor("D"))})
    return PN._daily_counts(keys, ev["event"].to_numpy())


def test_log_counts_and_user_stats(events):
    c = EN.log_counts(events)
    assert c["rows"] == len(events) and c["duplicates"] == int(events.duplicated().sum()) > 0
    assert c["first_ts"] == events["ts"].min()
    got = EN.user_stats(events)
    bots = CL.detect_bots(events.drop_duplicates())
    pd.testing.assert_frame_equal(got, bots[["user_id", "n_events", "active_days", "n_categories", "n_purchases"]].reset_index(drop=True),
                                  check_dtype=False)


def test_event_store_on_a_connection_with_an_unfetched_result(events):
    """A caller's connection may hold a result it never fetched; DuckDB would refuse register()
    and relations on it: the store ends that result first and works."""
    con = EN.connect()
    con.execute("SELECT * FROM range(1000000)")  # left unfetched
    store = EN.EventStore(events, con=con)
    assert store.log_counts()["rows"] == len(events)
    assert store.log_counts()["duplicates"] == int(events.duplicated().sum())


def test_daily_counts_equal_pandas_on_frames_and_files(events, tmp_path):
    bots = [int(u) for u in events["user_id"].unique()[:3]]
    want = pandas_daily(events, bots)
    got = EN.daily_counts(events, exclude_users=bots)
    pd.testing.assert_frame_equal(got, want)
    events.to_parquet(tmp_path / "a.parquet")
    pd.testing.assert_frame_equal(EN.daily_counts(tmp_path / "a.parquet", exclude_users=bots), want)
    half = len(events) // 2
    (tmp_path / "parts").mkdir()
    events.iloc[:half].to_parquet(tmp_path / "parts" / "p1.parquet")
    events.iloc[half:].to_parquet(tmp_path / "parts" / "p2.parquet")
    pd.testing.assert_frame_equal(EN.daily_counts(tmp_path / "parts", exclude_users=bots), want)


def test_pair_stats_and_lambda_equal_the_sparse_path(events):
    counts = pandas_daily(events)
    daily = counts.assign(count=counts[["view", "click", "cart", "purchase"]].sum(axis=1).astype(float))
    daily = daily.loc[daily["count"] > 0, ["user_id", "category", "day", "count"]]
    outages = [10, 11]
    last = int(daily["day"].max())
    want = ST.phase_stats(daily, ST.peak_starts(daily[~daily["day"].isin(outages)]), t_last=last, outage_days=outages)
    got = EN.pair_stats(events, outage_days=outages)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)
    pd.testing.assert_frame_equal(ST.lambda_from_stats(got, outages), ST.lambda_from_stats(want, outages))


def test_online_retail_log():
    from decaylib.data import load as LD

    raw = LD.load_online_retail(project_path("data/online_retail/online_retail_sample.csv"))
    ev = CL.validate_events(raw)
    pd.testing.assert_frame_equal(EN.daily_counts(ev), pandas_daily(ev))
    assert EN.log_counts(ev)["duplicates"] == int(ev.duplicated().sum())


def test_clear_errors(events, tmp_path):
    with pytest.raises(FileNotFoundError, match="no Parquet or CSV"):
        EN.daily_counts(tmp_path / "nothing-*.parquet")
    with pytest.raises(ValueError, match="missing column"):
        EN.daily_counts(events.drop(columns="category"))
    with pytest.raises(ValueError, match="empty"):
        EN.daily_counts(events.iloc[:0])
    with pytest.raises(TypeError, match="DataFrame or a path"):
        EN.daily_counts(42)


# ----------------------------------------------------------------------------- Spark (local[2])
def _spark_or_skip():
    import shutil
    import subprocess

    try:
        import pyspark  # noqa: F401
    except ImportError:
        pytest.skip("pyspark is not installed (pip install 'decaylib[spark]')")
    java = shutil.which("java")
    if java is None:
        pytest.skip("Spark needs Java 17+; no java on PATH")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    import re

    m = re.search(r'version "(\d+)', out)
    if not m or int(m.group(1)) < 17:
        pytest.skip(f"Spark 4 needs Java 17+; found: {out.splitlines()[0] if out else 'unknown'}")
    return EN.spark_session("local[2]")


@pytest.fixture(scope="module")
def spark():
    s = _spark_or_skip()
    yield s
    s.stop()


@pytest.mark.slow
def test_spark_gives_the_same_tables(spark, events, tmp_path):
    bots = [int(u) for u in events["user_id"].unique()[:3]]
    duck = EN.EventStore(events)
    sp = EN.SparkEventStore(events, spark=spark)
    assert sp.log_counts() == duck.log_counts()
    pd.testing.assert_frame_equal(sp.user_stats(), duck.user_stats())
    pd.testing.assert_frame_equal(sp.daily_counts(exclude_users=bots), duck.daily_counts(exclude_users=bots))
    a = sp.pair_stats(exclude_users=bots, outage_days=[10])
    b = duck.pair_stats(exclude_users=bots, outage_days=[10])
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
    pd.testing.assert_frame_equal(ST.lambda_from_stats(a, [10]), ST.lambda_from_stats(b, [10]))
    # Spark reads microsecond timestamps (pandas writes nanoseconds unless told otherwise)
    events.to_parquet(tmp_path / "e.parquet", coerce_timestamps="us", allow_truncated_timestamps=True)
    pd.testing.assert_frame_equal(EN.SparkEventStore(tmp_path / "e.parquet", spark=spark).daily_counts(),
                                  duck.daily_counts())


@pytest.mark.slow
def test_spark_without_exclusions_or_outages(spark, events):
    duck = EN.EventStore(events)
    sp = EN.SparkEventStore(events, spark=spark)
    pd.testing.assert_frame_equal(sp.daily_counts(), duck.daily_counts())
    pd.testing.assert_frame_equal(sp.pair_stats(), duck.pair_stats(), check_dtype=False)


# ----------------------------------------------------------------------------- preprocess(engine=...)
def _same_result(a, b, *, events=True):
    """Two PreprocessResults hold the same numbers (the clean events compared in the SQL engines' order)."""
    pd.testing.assert_frame_equal(a.report.to_frame(), b.report.to_frame())
    pd.testing.assert_frame_equal(a.bots, b.bots)
    assert a.bots.attrs == b.bots.attrs
    assert a.outage_days == b.outage_days and a.warnings == b.warnings
    assert (a.date_only, a.start_date, a.n_events_clean) == (b.date_only, b.start_date, b.n_events_clean)
    assert a.rows_per_event == b.rows_per_event
    if a.panel is not None or b.panel is not None:
        pd.testing.assert_frame_equal(a.panel, b.panel)
    order = ["user_id", "category", "ts", "item_id", "event"]
    sort = lambda e: e.sort_values(order, kind="stable").reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(sort(a.time_outliers), sort(b.time_outliers), check_dtype=False, check_index_type=False)
    if events:
        pd.testing.assert_frame_equal(sort(a.events_clean), sort(b.events_clean), check_dtype=False)


def _run(events, engine, **kw):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PP.preprocess(events, engine=engine, **kw)


@pytest.fixture(scope="module")
def pandas_result(small_sim):
    cfg = small_sim.config
    return _run(small_sim.events, "pandas", start_date=cfg.start_date, end_day=cfg.n_days - 1)


def test_preprocess_duckdb_equals_pandas_on_frames_and_files(small_sim, pandas_result, tmp_path):
    cfg = small_sim.config
    kw = dict(start_date=cfg.start_date, end_day=cfg.n_days - 1)
    got = _run(small_sim.events, "duckdb", **kw)
    assert got.engine == "duckdb" and pandas_result.engine == "pandas"
    assert pandas_result.report.removed("drop_duplicates") > 0 and pandas_result.bot_users and pandas_result.outage_days
    _same_result(pandas_result, got)
    ev = small_sim.events
    (tmp_path / "parts").mkdir()
    ev.iloc[: len(ev) // 2].to_parquet(tmp_path / "parts" / "p1.parquet")
    ev.iloc[len(ev) // 2:].to_parquet(tmp_path / "parts" / "p2.parquet")
    from_files = _run(tmp_path / "parts", "duckdb", **kw)
    assert from_files.events_clean is None  # files: not kept unless asked (logs larger than memory)
    _same_result(pandas_result, from_files, events=False)
    ev.to_csv(tmp_path / "e.csv", index=False)
    _same_result(pandas_result, _run(tmp_path / "e.csv", "duckdb", keep_events=True, **kw))
    _same_result(pandas_result, _run(str(tmp_path / "parts" / "*.parquet"), "pandas", **kw))  # pandas reads paths too


@pytest.mark.slow
def test_preprocess_online_retail_duckdb_equals_pandas(tmp_path):
    """A real log: dates with times, sparse purchases, far-off-free but MAD-fallback bot rule, cancellations mapped out."""
    from decaylib.data import load as LD
    from tests.real_logs import MAPPING, make_online_retail_log

    csv, _ = make_online_retail_log(tmp_path)
    log = LD.load_events(csv, columns=MAPPING["columns"], event_map=MAPPING["event_map"])
    a = _run(log.events, "pandas", date_only=log.date_only, max_panel_rows=None)
    b = _run(log.events, "duckdb", date_only=log.date_only, max_panel_rows=None)
    _same_result(a, b)
    assert len(a.panel) > 100_000
    # dates only: identical rows are real same-day repeats, kept by both
    day = log.events.assign(ts=log.events["ts"].dt.normalize())
    _same_result(_run(day, "pandas", max_panel_rows=None), _run(day, "duckdb", max_panel_rows=None))


@pytest.mark.slow
def test_time_outliers_bot_cap_and_tz(small_sim):
    ev = small_sim.events.copy()
    far = ev.iloc[:3].copy()
    far["ts"] = far["ts"] + pd.Timedelta(days=400)
    ev = pd.concat([ev, far], ignore_index=True)
    for kw in (dict(time_outliers="drop"), dict(time_outliers="keep", max_panel_rows=None),
               dict(max_bot_share=0.001, until="last_activity")):
        _same_result(_run(ev, "pandas", **kw), _run(ev, "duckdb", **kw))
    with pytest.raises(checks.EventSchemaError, match="max_gap_days"):
        _run(ev, "duckdb", time_outliers="error")
    tz = small_sim.events.assign(ts=small_sim.events["ts"].dt.tz_localize("Europe/Paris"))
    _same_result(_run(tz, "pandas"), _run(tz, "duckdb"))


@pytest.mark.parametrize("far_off", [False, True])
def test_unknown_event_names_named_wherever_they_are(small_sim, far_off):
    """The SQL path finds unknown names from the daily counts (their per-type sum falls short),
    and checks before setting far-off days apart: a bad name on such a day is named too, never dropped."""
    ev = small_sim.events.copy()
    bad = ev.iloc[:2].assign(event=["hover", "zoom"])
    if far_off:
        bad["ts"] = bad["ts"] + pd.Timedelta(days=400)
    ev = pd.concat([ev, bad], ignore_index=True)
    for engine in ("pandas", "duckdb"):
        with pytest.raises(checks.EventSchemaError, match="unknown event name") as err:
            _run(ev, engine, time_outliers="drop")
        assert "hover" in str(err.value) and "zoom" in str(err.value)


def test_sql_engine_hands_the_panel_sorted_counts(small_sim, monkeypatch):
    """The panel's fast path (pairs found by a scan) needs the daily counts in (user, category,
    day) order: the DuckDB flow must deliver them so, not fall back to the groupby path."""
    seen = []
    orig = PN._sorted_pairs

    def spy(u, c, d):
        out = orig(u, c, d)
        seen.append(out[0] is not None)
        return out

    monkeypatch.setattr(PN, "_sorted_pairs", spy)
    _run(small_sim.events, "duckdb")
    assert seen == [True]


def test_arrays_keep_the_order_by_and_any_connection():
    """_Sql.arrays returns the rows in ORDER BY order with preserve_insertion_order off (DuckDB's
    execute().to_arrow_table() does not: its parallel batches come back in any order), also on a
    caller's connection left with an unfetched result."""
    con = EN.connect()
    con.execute("CREATE TEMP TABLE t AS SELECT (hash(range) % 1000)::BIGINT AS a, (hash(range + 7) % 100000)::BIGINT AS b "
                "FROM range(3000000)").fetchall()
    con.execute("SELECT * FROM range(100000)")  # left unfetched
    db = EN._Sql("duckdb", con)
    got = db.arrays("SELECT a, b FROM t ORDER BY a, b")
    assert len(got["a"]) == 3_000_000
    want = con.execute("SELECT a, b FROM t ORDER BY a, b").fetchnumpy()
    assert list(got) == ["a", "b"] and all(isinstance(v, np.ndarray) for v in got.values())
    np.testing.assert_array_equal(got["a"], want["a"])
    np.testing.assert_array_equal(got["b"], want["b"])
    db.close()


def test_preprocess_stats_equal_the_panel_path(small_sim, pandas_result):
    cfg = small_sim.config
    got = EN.preprocess_stats(small_sim.events, start_date=cfg.start_date, end_day=cfg.n_days - 1)
    assert got.panel is None and got.outage_days == pandas_result.outage_days
    pd.testing.assert_frame_equal(got.bots, pandas_result.bots)
    panel = pandas_result.panel
    daily = panel.assign(count=panel[["view", "click", "cart", "purchase"]].sum(axis=1).astype(float))
    daily = daily.loc[daily["count"] > 0, ["user_id", "category", "day", "count"]]
    out = pandas_result.outage_days
    want = ST.phase_stats(daily, ST.peak_starts(daily[~daily["day"].isin(out)]), t_last=cfg.n_days - 1, outage_days=out)
    pd.testing.assert_frame_equal(got.stats, want, check_dtype=False)
    lam_a, lam_b = ST.lambda_from_stats(got.stats, out), ST.lambda_from_stats(want, out)
    np.testing.assert_allclose(lam_a["lam_hat"], lam_b["lam_hat"], rtol=1e-9, equal_nan=True)
    assert got.rows_per_event == pytest.approx(pandas_result.rows_per_event)


def test_auto_engine_and_progress(small_sim, monkeypatch, capsys):
    ev = small_sim.events
    assert PP._choose_engine("auto", ev) == "pandas"
    monkeypatch.setattr(PP, "AUTO_DUCKDB_ROWS", len(ev))
    assert PP._choose_engine("auto", ev) == "duckdb"
    res = _run(ev, "auto", progress=True)
    assert res.engine == "duckdb"
    out = capsys.readouterr()
    assert "[duckdb] validate" in out.out and "panel of" in out.out and out.err == ""
    _run(ev, "duckdb")
    assert capsys.readouterr().out == ""  # small logs: quiet by default


def test_preprocess_clear_errors(small_sim, tmp_path):
    ev = small_sim.events
    with pytest.raises(ValueError, match="engine"):
        PP.preprocess(ev, engine="polars")
    with pytest.raises(FileNotFoundError, match="no Parquet or CSV"):
        PP.preprocess(tmp_path / "missing.parquet", engine="duckdb")
    with pytest.raises(FileNotFoundError, match="no Parquet or CSV"):
        PP.preprocess(tmp_path / "missing.parquet", engine="pandas")
    with pytest.raises(checks.EventSchemaError, match=r"missing required column\(s\) \['category'\]"):
        PP.preprocess(ev.drop(columns="category"), engine="duckdb")
    with pytest.raises(checks.EventSchemaError, match="unknown event name"):
        PP.preprocess(ev.assign(event=ev["event"].where(ev.index > 0, "hover")), engine="duckdb")
    with pytest.raises(checks.EventSchemaError, match="integer ids"):
        PP.preprocess(ev.assign(item_id=ev["item_id"].astype(str).where(ev.index > 0, "x1")), engine="duckdb")
    with pytest.raises(checks.EventSchemaError, match="empty"):
        PP.preprocess(ev.iloc[:0], engine="duckdb")
    with pytest.raises(ValueError, match="count_events"):
        EN.preprocess_stats(ev, count_events=("likes",))


@pytest.mark.slow
def test_preprocess_spark_equals_pandas(spark, tmp_path):
    """Tiny log (Spark runs a job per query): pandas, DuckDB and Spark give the same result and statistics."""
    from decaylib.data.synth import simulate

    sim = simulate(n_users=20, n_categories=4, n_days=30, seed=11)
    a = _run(sim.events, "pandas")
    c = _run(sim.events, "spark", con=spark)
    assert c.engine == "spark"
    _same_result(a, c)
    sim.events.to_parquet(tmp_path / "e.parquet", coerce_timestamps="us", allow_truncated_timestamps=True)
    s_spark = EN.preprocess_stats(tmp_path / "e.parquet", engine="spark", con=spark)
    s_duck = EN.preprocess_stats(tmp_path / "e.parquet", engine="duckdb")
    _same_result(s_duck, s_spark, events=False)
    pd.testing.assert_frame_equal(s_spark.stats, s_duck.stats)
    assert s_spark.outage_days == a.outage_days


def test_hash_dedup_is_select_distinct_even_with_collisions(events, monkeypatch):
    ev = events.iloc[:3000]
    near = ev.iloc[:200].copy()
    near["ts"] = near["ts"] + pd.Timedelta(microseconds=1)  # one column differs: not a duplicate
    other = ev.iloc[200:300].assign(event="impression")
    ev = pd.concat([ev, ev.iloc[::7], ev.iloc[::7], near, other], ignore_index=True)  # triples too
    db = EN._Sql("duckdb")
    db.source(ev)
    n, _ = EN._validate_sql(db)
    cols = "user_id, item_id, category, ts, event, d"
    for where in ("TRUE", "d > (SELECT min(d) FROM events)"):
        want = db.df(f"SELECT DISTINCT {cols} FROM events WHERE {where} ORDER BY ALL")
        assert len(want) < int(db.df(f"SELECT count(*) AS n FROM events WHERE {where}")["n"].iloc[0])
        # the real hash, a weak one (many collisions), one that makes every row collide
        for key in (None, "hash(user_id)", "hash(0)"):
            got = db.df(f"SELECT {cols} FROM {EN._dedup_source(db, where, n, key=key)} x ORDER BY ALL")
            pd.testing.assert_frame_equal(got, want, obj=f"key={key}, where={where}")
    assert "hash" in EN._dedup_source(db, "TRUE", n)
    db.con.execute(f"SET memory_limit = '{4 * 8 * (n - 1)}B'")  # the hashes would take > 1/4 of it
    assert "SELECT DISTINCT" in EN._dedup_source(db, "TRUE", n) and "hash" not in EN._dedup_source(db, "TRUE", n)
    monkeypatch.setattr(EN, "HASH_DEDUP_MAX_ROWS", n)  # an explicit cap wins
    assert "hash" in EN._dedup_source(db, "TRUE", n)
    db.close()
    assert EN._bytes("16383.9 PiB") > 1e18 and EN._bytes("7.4 GiB") == 7.4 * 2**30 and EN._bytes("476.8 MiB") == 476.8 * 2**20 and EN._bytes("12 bytes") == 12
    with pytest.raises(ValueError, match="memory size"):
        EN._bytes("lots")


def test_a_callers_connection_keeps_its_settings(small_sim):
    con = EN.connect()
    PP.preprocess(small_sim.events.iloc[:5000], engine="duckdb", con=con, max_bot_share=1.0)
    assert con.execute("SELECT current_setting('preserve_insertion_order')").fetchone()[0] is True


def test_event_store_keeps_exactly_the_distinct_rows(events):
    ev = pd.concat([events.iloc[:2000], events.iloc[:2000:3]], ignore_index=True)
    store = EN.EventStore(ev)
    got = store.con.execute("SELECT * FROM clean ORDER BY ALL").df()
    want = store.con.execute("SELECT DISTINCT * FROM events ORDER BY ALL").df()
    pd.testing.assert_frame_equal(got, want)
    assert store.log_counts()["duplicates"] == int(ev.duplicated().sum()) > 0


def test_fallback_keeps_the_buyer_in_duckdb_as_in_pandas():
    """The MAD = 0 fallback never removes a buyer: the SQL path counts purchases per user as pandas does."""
    from tests.data.test_preprocess_steps import busy_buyer_log

    ev = busy_buyer_log()
    a, b = _run(ev, "pandas"), _run(ev, "duckdb")
    _same_result(a, b)
    assert b.bot_users == [91] and b.flagged_bots == [90, 91]
    got = b.bots.set_index("user_id")
    assert got.loc[90, "buyer_kept"] and got.loc[90, "n_purchases"] == 1 and not got.loc[90, "removed"]
    assert 90 in set(b.panel["user_id"]) and 91 not in set(b.panel["user_id"])
