"""DuckDB engine (decaylib.engine): the same counts as the pandas path, on frames and on files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decaylib import engine as EN
from decaylib import preprocess as PP
from decaylib import stream as ST


@pytest.fixture(scope="module")
def events(small_sim):
    return small_sim.events


def pandas_daily(ev, exclude=()):
    ev = ev.drop_duplicates()
    ev = ev[~ev["user_id"].isin(list(exclude))]
    keys = pd.DataFrame({"user_id": ev["user_id"].to_numpy(), "category": ev["category"].to_numpy(),
                         "day": PP.event_days(ev["ts"], ev["ts"].min().floor("D"))})
    return PP._daily_counts(keys, ev["event"].to_numpy())


def test_log_counts_and_user_stats(events):
    c = EN.log_counts(events)
    assert c["rows"] == len(events) and c["duplicates"] == int(events.duplicated().sum()) > 0
    assert c["first_ts"] == events["ts"].min()
    got = EN.user_stats(events)
    bots = PP.detect_bots(events.drop_duplicates())
    pd.testing.assert_frame_equal(got, bots[["user_id", "n_events", "active_days", "n_categories"]].reset_index(drop=True),
                                  check_dtype=False)


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
    from decaylib import io

    raw = io.load_online_retail(io.project_path("data/online_retail/online_retail_sample.csv")
                                if hasattr(io, "project_path") else "data/online_retail/online_retail_sample.csv")
    ev = PP.validate_events(raw)
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


def test_spark_without_exclusions_or_outages(spark, events):
    duck = EN.EventStore(events)
    sp = EN.SparkEventStore(events, spark=spark)
    pd.testing.assert_frame_equal(sp.daily_counts(), duck.daily_counts())
    pd.testing.assert_frame_equal(sp.pair_stats(), duck.pair_stats(), check_dtype=False)
