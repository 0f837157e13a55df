"""decaylib.data.load.load_events: bring-your-own event logs, every loading error on small frames."""

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from decaylib import artifacts
from decaylib.checks import DataWarning, EventSchemaError
from decaylib.data import load as LD
from decaylib.data.clean import validate_events
from decaylib.data.load import load_events
from decaylib.schema import EVENT_LOG_COLUMNS

RETAIL = Path(__file__).resolve().parents[2] / "data" / "online_retail" / "online_retail_sample.csv"


def frame(n=6, **over):
    """A small valid log in the user's own names."""
    df = pd.DataFrame(
        {
            "visitor": [10, 11, 10, 12, 11, 10][:n],
            "sku": [100, 101, 100, 102, 103, 101][:n],
            "dept": [1, 1, 1, 2, 2, 1][:n],
            "when": [f"2021-03-0{d} 1{d}:30:00" for d in range(1, n + 1)],
            "action": ["pv", "pv", "buy", "pv", "cart", "pv"][:n],
        }
    )
    for k, v in over.items():
        df[k] = v
    return df


COLS = {"visitor": "user_id", "sku": "item_id", "dept": "category", "when": "ts", "action": "event"}
EMAP = {"pv": "view", "buy": "purchase"}


def load(df, **kw):
    kw.setdefault("columns", COLS)
    kw.setdefault("event_map", EMAP)
    return load_events(df, **kw)


# ----------------------------------------------------------------------------- inputs and schema


def test_dataframe_input_is_canonical_and_untouched():
    df = frame()
    before = df.copy()
    log = load(df)
    pd.testing.assert_frame_equal(df, before)  # the caller's frame is never modified
    ev = log.events
    assert list(ev.columns) == list(EVENT_LOG_COLUMNS)
    assert [str(t) for t in ev.dtypes[:3]] == ["int64"] * 3 and str(ev["ts"].dtype) == "datetime64[ns]"
    assert ev["user_id"].tolist() == [10, 11, 10, 12, 11, 10] and ev["event"].tolist() == ["view", "view", "purchase", "view", "cart", "view"]
    assert ev["ts"].iloc[0] == pd.Timestamp("2021-03-01 11:30")
    pd.testing.assert_frame_equal(validate_events(ev), ev, check_dtype=False)
    r = log.report
    assert (r["rows_read"], r["rows_kept"], r["dropped_events"], r["ts_kind"], r["date_only"]) == (6, 6, {}, "string", False)
    assert (r["n_users"], r["n_items"], r["n_categories"], r["span_days"]) == (3, 4, 2, 6)
    assert r["event_counts"] == {"view": 4, "cart": 1, "purchase": 1} and r["factorized"] == [] and log.id_maps == {}
    json.dumps(r)  # the report is plain JSON
    text = log.describe()
    assert "6 events (6 rows read)" in text and "users 3, items 4, categories 2" in text


@pytest.mark.parametrize("name", ["events.csv", "events.csv.gz", "events.csv.bz2", "events.tsv", "events.parquet", "events.pq"])
def test_file_formats_give_the_same_events(tmp_path, name):
    df = frame().assign(extra="x")
    path = tmp_path / name
    if ".parquet" in name or name.endswith(".pq"):
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False, sep="\t" if ".tsv" in name else ",")
    log = load(path)
    pd.testing.assert_frame_equal(log.events, load(frame()).events)
    assert log.source == str(path) and log.report["ignored_columns"] == ["extra"]


def test_parquet_folder(tmp_path):
    (tmp_path / "parts").mkdir()
    frame().iloc[:3].to_parquet(tmp_path / "parts" / "a.parquet", index=False)
    frame().iloc[3:].to_parquet(tmp_path / "parts" / "b.parquet", index=False)
    pd.testing.assert_frame_equal(load(tmp_path / "parts").events, load(frame()).events)


def test_missing_file_unknown_extension_and_empty(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load(tmp_path / "nope.csv")
    (tmp_path / "events.xlsx").write_text("x")
    with pytest.raises(EventSchemaError, match=r"events.xlsx.*unknown file type.*\.csv.*\.parquet"):
        load(tmp_path / "events.xlsx")
    frame().iloc[:0].to_csv(tmp_path / "empty.csv", index=False)
    with pytest.raises(EventSchemaError, match="has no rows"):
        load(tmp_path / "empty.csv")
    (tmp_path / "blank.csv").write_text("")
    with pytest.raises(EventSchemaError, match="empty"):
        load(tmp_path / "blank.csv")


def test_missing_columns_are_listed_with_what_the_file_has():
    df = frame().rename(columns={"visitor": "User_ID"})
    with pytest.raises(EventSchemaError) as e:
        load_events(df.drop(columns=["when"]), columns={"sku": "item_id", "dept": "category", "action": "event"}, event_map=EMAP)
    msg = str(e.value)
    assert "missing required column(s) ['user_id', 'ts']" in msg and "'User_ID'" in msg and "did you mean columns={'User_ID': 'user_id'}" in msg
    with pytest.raises(EventSchemaError, match=r"'nosuch'.*does not have"):
        load(frame(), columns={**COLS, "nosuch": "user_id", "visitor": None})
    with pytest.raises(ValueError, match=r"unknown name\(s\) \{'visitor': 'customer'\}"):
        load(frame(), columns={**COLS, "visitor": "customer"})
    with pytest.raises(ValueError, match="several columns"):
        load(frame(), columns={**COLS, "sku": "user_id"})
    with pytest.raises(EventSchemaError, match="already has a column 'user_id'"):
        load(frame().assign(user_id=1))
    with pytest.raises(EventSchemaError, match=r"\['event'\].*event_map='purchase'"):
        load(frame().drop(columns="action"), columns={k: v for k, v in COLS.items() if k != "action"})


# ----------------------------------------------------------------------------- events


def test_unmapped_event_names_are_listed_with_counts():
    df = frame(action=["pv", "pv", "ADD", "Purchase", "ADD", "zz"])
    with pytest.raises(EventSchemaError) as e:
        load(df)
    msg = str(e.value)
    assert "'ADD' (2 rows), 'Purchase' (1 row), 'zz' (1 row)" in msg and "'pv'" not in msg.split(":")[1]
    assert "did you mean event_map={'Purchase': 'purchase'}" in msg
    with pytest.raises(ValueError, match="unknown event"):
        load(frame(), event_map={"pv": "pageview"})


def test_none_mapped_events_are_dropped_and_counted():
    df = frame(action=["pv", "noise", "buy", "noise", "bot", "pv"])
    log = load(df, event_map={**EMAP, "noise": None, "bot": None, "never_seen": None})
    r = log.report
    assert r["dropped_events"] == {"noise": 2, "bot": 1}
    assert r["rows_read"] == 6 and r["rows_kept"] == 3 == r["rows_read"] - sum(r["dropped_events"].values())
    assert log.events["event"].tolist() == ["view", "purchase", "view"]
    assert "dropped noise 2, bot 1" in log.describe()
    with pytest.raises(EventSchemaError, match="drops every row"):
        load(df, event_map={"pv": None, "noise": None, "buy": None, "bot": None})
    # a dropped row's bad data does not matter: its timestamp is never read
    df.loc[1, "when"] = "garbage"
    assert len(load(df, event_map={**EMAP, "noise": None, "bot": None}).events) == 3


def test_integer_event_codes_and_single_event_logs():
    log = load(frame(action=[1, 1, 2, 1, 2, 1]), event_map={"1": "view", 2: "cart"})  # JSON-style and raw keys
    assert log.events["event"].tolist() == ["view", "view", "cart", "view", "cart", "view"]
    orders = frame().drop(columns="action")
    cols = {k: v for k, v in COLS.items() if k != "action"}
    log = load_events(orders, columns=cols, event_map="purchase")
    assert set(log.events["event"]) == {"purchase"}
    with pytest.raises(EventSchemaError, match="has an event column"):
        load(frame(), event_map="purchase")
    with pytest.raises(EventSchemaError, match=r"'event' has 1 missing value\(s\) at rows 4 "):
        load(frame(action=["pv", "pv", "buy", "pv", None, "pv"]))


# ----------------------------------------------------------------------------- timestamps


def test_integer_timestamps_need_a_unit_and_the_error_shows_each_reading():
    secs = [1511848894 + 3600 * k for k in range(6)]
    with pytest.raises(EventSchemaError) as e:
        load(frame(when=secs))
    msg = str(e.value)
    assert "1511848894 is 2017-11-28 06:01 as seconds, 1970-01-18 11:57 as ms, 1970-01-01 00:25 as us, 1970-01-01 00:00 as ns" in msg
    assert "only 's' gives a date" in msg and "pass ts_unit=" in msg
    by_s = load(frame(when=secs), ts_unit="s").events["ts"]
    by_ms = load(frame(when=[s * 1000 for s in secs]), ts_unit="ms").events["ts"]
    by_float = load(frame(when=[s + 0.5 for s in secs]), ts_unit="s").events["ts"]
    pd.testing.assert_series_equal(by_s, by_ms)
    assert by_s.iloc[0] == pd.Timestamp("2017-11-28 06:01:34") and by_float.iloc[0] == pd.Timestamp("2017-11-28 06:01:34.5")
    r = load(frame(when=secs), ts_unit="s").report
    assert (r["ts_kind"], r["ts_unit"]) == ("numeric", "s")
    with pytest.raises(ValueError, match="unknown ts_unit"):
        load(frame(when=secs), ts_unit="sec")
    with pytest.raises(ValueError, match="ts_unit='s' applies to numeric"):
        load(frame(), ts_unit="s")
    # with tz, Unix timestamps (instants) are shown on the shop's clock: Paris is UTC+1 in November
    paris = load(frame(when=secs), ts_unit="s", tz="Europe/Paris")
    assert paris.events["ts"].iloc[0] == pd.Timestamp("2017-11-28 07:01:34") and paris.report["ts_clock"] == "Europe/Paris"


@pytest.mark.parametrize("case", ["ms_without_unit", "ms_as_seconds", "one_ms_among_seconds"])
def test_every_wrong_unit_ends_in_the_loaders_own_message(case):
    """Milliseconds read as seconds are years beyond 9999, which strftime refuses: the hint must still
    come out as the loader's EventSchemaError naming ts_unit and the likely unit."""
    secs = [1511848894 + 3600 * k for k in range(6)]
    when, unit = {"ms_without_unit": ([s * 1000 for s in secs], None), "ms_as_seconds": ([s * 1000 for s in secs], "s"),
                  "one_ms_among_seconds": (secs[:5] + [secs[5] * 1000], "s")}[case]
    with pytest.raises(EventSchemaError) as e:
        load(frame(when=when), ts_unit=unit)
    msg = str(e.value)
    assert "ts_unit" in msg and re.search(r"is 4987\d-\d\d-\d\d \d\d:\d\d as seconds, 2017-11-28 \d\d:\d\d as ms", msg)
    assert ("only 'ms' gives a date" in msg) if unit is None else ("is ts_unit='ms'?" in msg)
    if case == "one_ms_among_seconds":
        assert "the other 5 row(s) are plausible with ts_unit='s'" in msg and "row 5: 1511866894000" in msg


def test_digit_timestamps_from_csv_and_text_count_as_numeric(tmp_path):
    secs = [1511848894 + 3600 * k for k in range(6)]
    frame(when=secs).to_csv(tmp_path / "e.csv", index=False)
    with pytest.raises(EventSchemaError, match="pass ts_unit"):
        load(tmp_path / "e.csv")
    text = frame(when=[str(s) for s in secs])
    pd.testing.assert_series_equal(load(text, ts_unit="s").events["ts"], load(tmp_path / "e.csv", ts_unit="s").events["ts"])
    mixed = frame(when=[str(s) for s in secs[:5]] + ["2017-11-28"])
    with pytest.raises(EventSchemaError, match=r"mixes numbers \(5\) with other text: row 5: '2017-11-28'"):
        load(mixed, ts_unit="s")


def test_timestamps_out_of_range_show_values_and_rows():
    secs = [1511848894 + 3600 * k for k in range(6)]
    with pytest.raises(EventSchemaError) as e:
        load(frame(when=secs), ts_unit="ms")  # seconds read as milliseconds: all in January 1970
    msg = str(e.value)
    assert "6 timestamp(s) outside the plausible range 1990-01-01" in msg and "row 0: 1511848894" in msg
    assert "(6 in all)" in msg and "0-based data row numbers" in msg and "is ts_unit='s'?" in msg
    when = frame()["when"].tolist()
    when[2], when[4] = "1970-01-01 00:00:00", "2299-01-01 00:00:00"
    with pytest.raises(EventSchemaError) as e:
        load(frame(when=when))
    msg = str(e.value)
    assert "2 timestamp(s) outside" in msg and "row 2: '1970-01-01 00:00:00', row 4: '2299-01-01 00:00:00'" in msg
    assert "row 0" not in msg
    ahead = pd.Timestamp.now().normalize() + LD.TS_MAX_AHEAD + pd.Timedelta(days=3)
    with pytest.raises(EventSchemaError, match="row 5"):
        load(frame(when=when[:4] + ["2021-03-05 10:00:00", str(ahead)]))


def test_bad_strings_show_only_the_offending_values_with_rows():
    n = 10_000
    base = pd.Timestamp("2021-01-01")
    when = (base + pd.to_timedelta(np.arange(n), unit="min")).strftime("%Y-%m-%d %H:%M:%S").tolist()
    when[17], when[9_001] = "not a date", "2021-02-30 10:00:00"
    df = pd.DataFrame({"user_id": np.arange(n) % 7, "item_id": 1, "category": 1, "ts": when, "event": "view"})
    with pytest.raises(EventSchemaError) as e:
        load_events(df)
    msg = str(e.value)
    assert "2 value(s) that are not dates" in msg and "row 17: 'not a date', row 9001: '2021-02-30 10:00:00'" in msg
    assert len(msg) < 600 and "2021-01-01 00:00:00" not in msg.split("):")[1]
    first_bad = df.assign(ts=["garbage"] + when[1:])  # the format is guessed from the first readable value
    with pytest.raises(EventSchemaError, match=r"guessed from row 1 '2021-01-01 00:01:00'.*: row 0: 'garbage', row 17"):
        load_events(first_bad)
    df.loc[[17, 9_001], "ts"] = None
    with pytest.raises(EventSchemaError, match=r"2 missing timestamp\(s\) at rows 17, 9001 "):
        load_events(df)


def test_mixed_formats_iso_fallback():
    when = ["2021-03-01 10:00:00", "2021-03-02", "2021-03-03T11:30:00", "2021-03-04 12:00:00", "2021-03-05 13:00", "2021-03-06 14:00:00"]
    log = load(frame(when=when))
    assert log.events["ts"].iloc[1] == pd.Timestamp("2021-03-02") and log.events["ts"].iloc[4] == pd.Timestamp("2021-03-05 13:00")
    assert "ISO8601" in log.report["ts_format"]


def test_day_month_order_ambiguity_warns():
    when = [f"0{d}/0{d + 1}/2021 10:00" for d in range(1, 7)]
    with pytest.warns(DataWarning, match="day/month order"):
        log = load(frame(when=when))
    assert log.events["ts"].iloc[0] == pd.Timestamp("2021-01-02 10:00")  # month first, as pandas guesses


def test_time_zones_mixed_offsets_and_tz():
    naive = frame()["when"].tolist()
    mixed = [naive[0] + "+01:00", naive[1] + "+02:00"] + naive[2:]
    with pytest.raises(EventSchemaError) as e:
        load(frame(when=mixed))
    msg = str(e.value)
    assert "with an offset row 0: '2021-03-01 11:30:00+01:00', row 1: '2021-03-02 12:30:00+02:00'" in msg
    assert "without row 2: '2021-03-03 13:30:00'" in msg
    aware = [t + "+01:00" for t in naive]
    log = load(frame(when=aware))
    assert log.events["ts"].iloc[0] == pd.Timestamp("2021-03-01 10:30") and log.report["ts_offsets"] == ["+01:00"]
    dst = [naive[0] + "+01:00", naive[1] + "Z"] + [t + "+0200" for t in naive[2:]]  # one instant each: converted
    got = load(frame(when=dst)).events["ts"]
    assert got.iloc[1] == pd.Timestamp("2021-03-02 12:30") and got.iloc[2] == pd.Timestamp("2021-03-03 11:30")
    # naive local times in the shop's zone are its clock already: kept as written, so its days are cut at its midnight
    log = load(frame(), tz="Europe/Paris")
    assert log.events["ts"].iloc[0] == pd.Timestamp("2021-03-01 11:30") and log.report["tz_applied"]
    assert log.report["ts_clock"] == "Europe/Paris" and "days local to Europe/Paris" in log.describe()
    # instants with offsets: on the shop's clock with tz (Paris is UTC+1 in March), in UTC without
    assert load(frame(when=aware), tz="Europe/Paris").events["ts"].iloc[0] == pd.Timestamp("2021-03-01 11:30")
    with pytest.raises(EventSchemaError, match=r"tz='Asia/Tokyo' does not match.*row 0: .* is UTC\+01:00, but Asia/Tokyo was UTC\+09:00"):
        load(frame(when=aware), tz="Asia/Tokyo")
    with pytest.raises(ValueError, match="unknown time zone"):
        load(frame(), tz="Mars/Olympus")
    # datetime64 columns, naive and aware
    dt = pd.to_datetime(pd.Series(naive))
    assert load(frame(when=dt), tz="Europe/Paris").events["ts"].iloc[0] == pd.Timestamp("2021-03-01 11:30")
    as_objects = pd.Series([t.to_pydatetime() for t in dt.dt.tz_localize("Europe/Paris")], dtype=object)
    assert load(frame(when=as_objects)).events["ts"].iloc[0] == pd.Timestamp("2021-03-01 10:30")
    pd.testing.assert_frame_equal(load(frame(when=pd.Series(naive, dtype=object))).events, load(frame()).events)
    aware_dt = load(frame(when=dt.dt.tz_localize("America/New_York")))
    assert aware_dt.events["ts"].iloc[0] == pd.Timestamp("2021-03-01 16:30") and aware_dt.report["ts_kind"] == "datetime"


def test_dst_ambiguous_and_missing_local_times_are_counted():
    when = ["2021-10-31 02:30:00", "2021-03-28 02:30:00", "2021-03-01 10:00:00", "2021-03-02 10:00:00", "2021-03-03 10:00:00", "2021-03-04 10:00:00"]
    with pytest.warns(DataWarning, match=r"1 local time\(s\) .* daylight saving skips in Europe/Paris \(row 1: .*to 2021-03-28 03:30"):
        log = load(frame(when=when), tz="Europe/Paris")
    assert (log.report["tz_ambiguous"], log.report["tz_nonexistent"]) == (1, 1)
    assert log.events["ts"].iloc[0] == pd.Timestamp("2021-10-31 02:30")  # the clock as written: counted, not moved
    # the skipped hour: written by a clock not yet changed, so moved forward by the change (not all onto 03:00)
    assert log.events["ts"].iloc[1] == pd.Timestamp("2021-03-28 03:30")


def test_date_only_detection_and_override():
    days = [f"2021-03-0{d}" for d in range(1, 7)]
    log = load(frame(when=days))
    assert log.date_only and log.report["date_only_detected"] and log.report["date_only"]
    assert "dates only" in log.describe() and "time 2021-03-01 .. 2021-03-06 (dates as written; 6 days)" in log.describe()
    midnight = load(frame(when=[d + " 00:00:00" for d in days]))
    assert midnight.date_only
    assert not load(frame(when=days), date_only=False).date_only
    forced = load(frame(), date_only=True)
    assert forced.date_only and not forced.report["date_only_detected"]
    assert not load(frame()).date_only
    # calendar days stay the days written: never shifted to the previous day by a time zone
    assert load(frame(when=days), tz="Europe/Paris").events["ts"].iloc[0] == pd.Timestamp("2021-03-01")
    with pytest.raises(TypeError, match="date_only"):
        load(frame(), date_only="yes")


# ----------------------------------------------------------------------------- ids


def test_string_ids_are_factorized_and_mapped_back(tmp_path):
    df = frame(visitor=["u-b", "u-a", "u-b", "u-c", "u-a", "u-b"], sku=["X9", "A1", "X9", "B2", "A1", "C3"])
    log = load(df)
    assert log.events["user_id"].tolist() == [1, 0, 1, 2, 0, 1]  # sorted, deterministic codes
    assert log.report["factorized"] == ["user_id", "item_id"]
    assert log.id_maps["user_id"]["original"].tolist() == ["u-a", "u-b", "u-c"]
    assert list(log.original_ids("user_id", log.events["user_id"])) == df["visitor"].tolist()
    assert log.original_ids("item_id", 0) == "A1" and log.code_of("item_id", "X9") == 3
    with pytest.raises(KeyError, match="'nobody' is not in this event log"):
        log.code_of("user_id", "nobody")
    only_cart = load(frame(), event_map={**EMAP, "cart": None})  # user 11's cart row is dropped at loading
    with pytest.raises(KeyError, match=r"user_id 99 is not in this event log \(rows of the event names that event_map drops, \{'cart': 1\}"):
        only_cart.code_of("user_id", 99)
    with pytest.raises(KeyError, match="not user_id codes"):
        log.original_ids("user_id", [7])
    # integer ids stay themselves
    assert log.code_of("category", 2) == 2 and log.original_ids("category", 2) == 2
    with pytest.raises(KeyError):
        log.code_of("category", 99)
    with pytest.raises(KeyError, match="unknown id column"):
        log.code_of("ts", 1)
    # id map round trip
    paths = LD.write_id_maps(log, tmp_path / "art")
    assert sorted(p.name for p in paths) == ["id_map_item_id.parquet", "id_map_user_id.parquet"]
    back = LD.read_id_maps(tmp_path / "art")
    assert set(back) == {"user_id", "item_id"}
    for col in back:
        pd.testing.assert_frame_equal(back[col], log.id_maps[col])
    LD.write_id_maps({"item_id": log.id_maps["item_id"]}, tmp_path / "art")  # a stale user map is removed
    assert set(LD.read_id_maps(tmp_path / "art")) == {"item_id"}
    with pytest.raises(artifacts.ArtifactMissingError):
        LD.read_id_maps(tmp_path / "none")


def test_huge_integer_ids_are_factorized(tmp_path):
    big = [2**64 - 1, 2**63, 2**64 - 1, 5, 2**63, 5]
    log = load(frame(visitor=pd.Series(big, dtype="uint64")))
    assert log.id_maps["user_id"]["original"].tolist() == ["5", str(2**63), str(2**64 - 1)]
    assert log.events["user_id"].tolist() == [2, 1, 2, 0, 1, 0]
    huge = [10**30, 7, 10**30, 8, 7, 8]  # beyond uint64: Python ints
    log = load(frame(visitor=pd.Series(huge, dtype=object)))
    assert log.code_of("user_id", 10**30) == 2 and log.original_ids("user_id", 2) == str(10**30)
    frame(visitor=huge).to_csv(tmp_path / "h.csv", index=False)
    assert load(tmp_path / "h.csv").id_maps["user_id"]["original"].tolist() == ["7", "8", str(10**30)]
    digits = load(frame(visitor=["10", "9", "10", "100", "9", "9"]))  # digit strings: numeric order of codes
    assert digits.id_maps["user_id"]["original"].tolist() == ["9", "10", "100"] and digits.events["user_id"].tolist() == [1, 0, 1, 2, 0, 0]
    small = load(frame(visitor=pd.Series([1, 2, 1, 3, 2, 1], dtype="uint64")))
    assert small.id_maps == {} and small.events["user_id"].dtype == "int64"


def test_float_bool_and_missing_ids():
    assert load(frame(sku=[100.0, 101.0, 100.0, 102.0, 103.0, 101.0])).events["item_id"].tolist() == [100, 101, 100, 102, 103, 101]
    with pytest.raises(EventSchemaError, match=r"1 value\(s\) are not whole numbers: row 3: 1.5"):
        load(frame(sku=[100.0, 101.0, 100.0, 1.5, 103.0, 101.0]))
    with pytest.raises(EventSchemaError, match=r"'item_id' has 2 missing id\(s\) at rows 1, 4 "):
        load(frame(sku=[100.0, np.nan, 100.0, 102.0, np.nan, 101.0]))
    with pytest.raises(EventSchemaError, match=r"above 2\*\*53"):
        load(frame(sku=[1e17, 101.0, 100.0, 102.0, 103.0, 101.0]))
    with pytest.raises(EventSchemaError, match="'user_id' holds true/false values"):
        load(frame(visitor=[True, False, True, True, False, True]))
    with pytest.raises(EventSchemaError, match=r"true/false values, not ids: row 2: True"):
        load(frame(visitor=pd.Series(["a", "b", True, "c", "a", "b"], dtype=object)))
    with pytest.raises(EventSchemaError, match=r"'user_id' has 1 empty id\(s\) at rows 5"):
        load(frame(visitor=["a", "b", "a", "c", "a", " "]))


# ----------------------------------------------------------------------------- category


def test_category_item_constant_callable_and_conflict():
    no_cat = frame().drop(columns="dept")
    cols = {k: v for k, v in COLS.items() if k != "dept"}
    by_item = load_events(no_cat, columns=cols, event_map=EMAP, category="item")
    assert by_item.events["category"].tolist() == by_item.events["item_id"].tolist() and by_item.report["category_mode"] == "item"
    whole = load_events(no_cat, columns=cols, event_map=EMAP, category=0)
    assert set(whole.events["category"]) == {0} and whole.report["n_categories"] == 1
    fam = load_events(no_cat.assign(sku=["AB1", "AB2", "AB1", "CD1", "CD2", "AB2"]), columns=cols, event_map=EMAP, category=lambda d: d["item_id"].str[:2])
    assert fam.events["category"].tolist() == [0, 0, 0, 1, 1, 0] and fam.id_maps["category"]["original"].tolist() == ["AB", "CD"]
    # the callable sees every column of the source, under our names where mapped
    by_extra = load_events(no_cat.assign(shelf=[7, 7, 8, 8, 9, 9]), columns=cols, event_map=EMAP, category=lambda d: d["shelf"])
    assert by_extra.events["category"].tolist() == [7, 7, 8, 8, 9, 9] and by_extra.id_maps == {}
    # the callable gets only kept rows, indexed by their data row numbers
    seen = {}
    load_events(no_cat, columns=cols, event_map={**EMAP, "cart": None}, category=lambda d: seen.setdefault("i", d.index.tolist()) and d["item_id"])
    assert seen["i"] == [0, 1, 2, 3, 5]
    with pytest.raises(EventSchemaError, match="one label per row"):
        load_events(no_cat, columns=cols, event_map=EMAP, category=lambda d: [1, 2])
    with pytest.raises(EventSchemaError, match=r"'category' has 1 missing id\(s\) at rows 2"):
        load_events(no_cat, columns=cols, event_map=EMAP, category=lambda d: d["item_id"].where(d.index != 2))
    with pytest.raises(EventSchemaError, match=r"category='item' was given but DataFrame also has a category column \('dept'\)"):
        load(frame(), category="item")
    assert load(frame(), columns={**COLS, "dept": None}, category=3).events["category"].eq(3).all()  # ignore the column
    with pytest.raises(EventSchemaError, match="category='item'"):
        load_events(no_cat, columns=cols, event_map=EMAP)  # no column, no category=: the error says what to pass
    with pytest.raises(ValueError, match="category='shop'"):
        load(frame(), category="shop")
    with pytest.raises(TypeError):
        load(frame(), category=True)


# ----------------------------------------------------------------------------- mapping files


def test_load_mapping(tmp_path):
    m = {"columns": {k: v for k, v in COLS.items() if k != "dept"}, "event_map": {**EMAP, "cart": None}, "category": "item", "tz": "UTC"}
    (tmp_path / "m.json").write_text(json.dumps(m))
    kw = LD.load_mapping(tmp_path / "m.json")
    assert kw == m and LD.load_mapping(None) == {}
    frame().drop(columns="dept").to_csv(tmp_path / "e.csv.gz", index=False)
    log = load_events(tmp_path / "e.csv.gz", **kw)
    assert log.report["dropped_events"] == {"cart": 1} and log.report["category_mode"] == "item"
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['colums', 'events_path'\]; valid keys: \['columns'"):
        LD.load_mapping({"colums": {}, "events_path": "x", "tz": "UTC"})
    (tmp_path / "bad.json").write_text("{'columns': 1}")
    with pytest.raises(ValueError, match="not valid JSON"):
        LD.load_mapping(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="unknown ts_unit"):
        LD.load_mapping({"ts_unit": "seconds"})
    with pytest.raises(FileNotFoundError, match="nomap.json"):
        LD.load_mapping(tmp_path / "nomap.json")


# ----------------------------------------------------------------------------- a real log


def test_online_retail_sample_through_load_events():
    raw = pd.read_csv(RETAIL, dtype={"InvoiceNo": str, "StockCode": str})
    mapping = {
        "columns": {"CustomerID": "user_id", "StockCode": "item_id", "InvoiceDate": "ts"},
        "event_map": "purchase",
    }
    family = lambda d: d["item_id"].str[:3]  # noqa: E731  (product family: first 3 chars of the stock code)
    # Rows without a customer are not events of a user: loading refuses to guess and names the rows.
    no_customer = raw["CustomerID"].isna().to_numpy()
    with pytest.raises(EventSchemaError) as e:
        load_events(RETAIL, **mapping, category=family)
    assert f"'user_id' has {int(no_customer.sum()):,} missing id(s) at rows {int(np.flatnonzero(no_customer)[0])}," in str(e.value)
    # Filter them (and cancellations) yourself, then load.
    kept = raw[~no_customer & ~raw["InvoiceNo"].str.startswith("C")]
    log = load_events(kept, **mapping, category=family)
    ev = log.events
    assert log.report["rows_read"] == log.report["rows_kept"] == len(ev) == len(kept)
    assert log.report["n_users"] == kept["CustomerID"].nunique() and log.report["n_items"] == kept["StockCode"].nunique()
    assert log.report["n_categories"] == kept["StockCode"].str[:3].nunique()
    assert ev["user_id"].tolist() == kept["CustomerID"].astype("int64").tolist() and "user_id" not in log.id_maps
    assert list(log.original_ids("item_id", ev["item_id"].head(50))) == kept["StockCode"].head(50).tolist()
    assert not log.date_only and log.report["ts_kind"] == "string"
    assert ev["ts"].min() == pd.Timestamp(kept["InvoiceDate"].min()) and ev["ts"].max() == pd.Timestamp(kept["InvoiceDate"].max())
    # the shipped loader gives the same events (it also removes non-positive quantities: none left here)
    shipped = LD.load_online_retail(RETAIL)
    pd.testing.assert_frame_equal(shipped, ev, check_dtype=False)
    assert re.search(r"[\d,]+ events \([\d,]+ rows read\)", log.describe())
    assert repr(log).startswith("EventLog(source='DataFrame', 14,580 events") and len(repr(log)) < 300


def test_a_million_rows_load_fast():
    import time

    n = 1_000_000
    rng = np.random.default_rng(0)
    df = pd.DataFrame(
        {
            "u": rng.integers(0, 50_000, n),
            "i": rng.integers(0, 20_000, n),
            "t": 1_600_000_000 + rng.integers(0, 86_400 * 200, n),
            "e": rng.choice(np.array(["pv", "buy", "cart"]), n),
        }
    )
    t0 = time.perf_counter()
    log = load_events(df, columns={"u": "user_id", "i": "item_id", "t": "ts", "e": "event"}, event_map=EMAP, ts_unit="s", category="item")
    assert len(log.events) == n and time.perf_counter() - t0 < 10


# ----------------------------------------------------------------------------- real files as they come


def _rows(df):
    return [list(r) for r in df.itertuples(index=False)]


def test_a_csv_without_header_is_read_by_position(tmp_path):
    df = frame()
    path = tmp_path / "noheader.csv"
    df.to_csv(path, index=False, header=False)
    by_name = load(df).events
    by_pos = load_events(path, header=None, columns={0: "user_id", 1: "item_id", 2: "category", 3: "ts", 4: "event"},
                         event_map=EMAP)
    pd.testing.assert_frame_equal(by_pos.events, by_name)
    assert by_pos.report["rows_read"] == 6  # the first row is an event, not a header
    # a JSON mapping: keys are strings, so positions are digits; header is null
    (tmp_path / "m.json").write_text(json.dumps({"header": None, "columns": {"0": "user_id", "1": "item_id", "2": "category",
                                                                             "3": "ts", "4": "event"}, "event_map": EMAP}))
    kw = LD.load_mapping(tmp_path / "m.json")
    assert kw["header"] is None
    pd.testing.assert_frame_equal(load_events(path, **kw).events, by_name)
    # unmapped positions are ignored and listed
    part = load_events(path, header=None, columns={"0": "user_id", "1": "item_id", "3": "ts", "4": "event"}, event_map=EMAP, category=1)
    assert part.report["ignored_columns"] == ["2"]
    with pytest.raises(ValueError, match=r"columns= keys are 0-based column positions .*not \['visitor'\]"):
        load_events(path, header=None, columns={"visitor": "user_id"})
    with pytest.raises(ValueError, match=r"the other way round: columns=\{0: 'user_id', 3: 'ts'\}"):
        load_events(path, header=None, columns={"user_id": 0, "ts": "3"})  # ours: position, as {your column: ours} reads
    with pytest.raises(ValueError, match="columns= must name them by position"):
        load_events(path, header=None)
    with pytest.raises(ValueError, match="header=1"):
        load_events(path, header=1, columns={0: "user_id"})
    with pytest.raises(ValueError, match="header=None applies to CSV files"):
        load(df, header=None, columns={0: "user_id"})
    with pytest.raises(EventSchemaError, match=r"columns= names \[7\], which .* does not have"):
        load_events(path, header=None, columns={7: "user_id"})


def test_a_header_row_that_looks_like_data_says_no_header(tmp_path):
    path = tmp_path / "noheader.csv"
    frame().to_csv(path, index=False, header=False)
    with pytest.raises(EventSchemaError) as e:  # the mapping names columns, the file's first row is an event
        load(path)
    msg = str(e.value)
    assert "does not have" in msg and "looks like data, not column names: no header?" in msg
    assert 'set "header": null in the mapping (header=None)' in msg
    with pytest.raises(EventSchemaError, match="no header"):  # no mapping: the required columns are missing
        load_events(path, event_map=EMAP, category=1)
    # a real header does not get the hint, a DataFrame neither
    frame().to_csv(tmp_path / "ok.csv", index=False)
    with pytest.raises(EventSchemaError) as e:
        load(tmp_path / "ok.csv", columns={**COLS, "nosuch": None})
    assert "no header" not in str(e.value)


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_the_separator_is_an_argument_and_a_wrong_one_is_named(tmp_path, sep):
    df = frame()
    path = tmp_path / "semi.csv"
    df.to_csv(path, index=False, sep=sep)
    pd.testing.assert_frame_equal(load(path, sep=sep).events, load(df).events)
    with pytest.raises(EventSchemaError) as e:
        load(path)
    msg = str(e.value)
    assert f"pass sep={sep!r}" in msg and "separator" in msg and "reads as one column" in msg
    # without a header too, and from a mapping file
    df.to_csv(tmp_path / "semi_nh.csv", index=False, sep=sep, header=False)
    cols = {"0": "user_id", "1": "item_id", "2": "category", "3": "ts", "4": "event"}
    with pytest.raises(EventSchemaError, match="separator"):
        load_events(tmp_path / "semi_nh.csv", header=None, columns=cols, event_map=EMAP)
    kw = LD.load_mapping({"sep": sep, "header": None, "columns": cols, "event_map": EMAP})
    pd.testing.assert_frame_equal(load_events(tmp_path / "semi_nh.csv", **kw).events, load(df).events)


def test_sep_argument_errors(tmp_path):
    with pytest.raises(ValueError, match="sep=';;'"):
        load(frame(), sep=";;")
    with pytest.raises(ValueError, match="sep=';' applies to CSV files"):
        load(frame(), sep=";")
    frame().to_parquet(tmp_path / "e.parquet")
    with pytest.raises(ValueError, match="applies to CSV files"):
        load(tmp_path / "e.parquet", sep=";")


def test_ts_format_reads_text_and_integer_dates(tmp_path):
    days = ["31/01/2024", "01/02/2024", "02/02/2024", "03/02/2024", "04/02/2024", "05/02/2024"]
    log = load(frame(when=days), ts_format="%d/%m/%Y")
    assert log.events["ts"].iloc[0] == pd.Timestamp("2024-01-31") and log.date_only
    assert log.report["ts_format"] == "%d/%m/%Y" and "format %d/%m/%Y" in log.describe()
    ints = [20240131, 20240201, 20240202, 20240203, 20240204, 20240205]
    pd.testing.assert_series_equal(load(frame(when=ints), ts_format="%Y%m%d").events["ts"], log.events["ts"])
    frame(when=ints).to_csv(tmp_path / "ints.csv", index=False)  # read back as int64 by pandas
    kw = LD.load_mapping({"columns": COLS, "event_map": EMAP, "ts_format": "%Y%m%d"})
    pd.testing.assert_series_equal(load_events(tmp_path / "ints.csv", **kw).events["ts"], log.events["ts"])
    with_time = load(frame(when=["2024-01-31 08.05"] * 6), ts_format="%Y-%m-%d %H.%M")
    assert with_time.events["ts"].iloc[0] == pd.Timestamp("2024-01-31 08:05") and not with_time.date_only
    # the integers without ts_format: the unit error suggests it
    with pytest.raises(EventSchemaError, match="ts_format='%Y%m%d'"):
        load(frame(when=ints))
    with pytest.raises(EventSchemaError, match=r"1 value\(s\) that do not match ts_format='%Y%m%d': row 3: 20241302"):
        load(frame(when=ints[:3] + [20241302] + ints[4:]), ts_format="%Y%m%d")
    with pytest.raises(EventSchemaError, match="not whole"):
        load(frame(when=[20240131.5] * 6), ts_format="%Y%m%d")
    with pytest.raises(ValueError, match="exclude each other"):
        load(frame(when=ints), ts_format="%Y%m%d", ts_unit="s")
    with pytest.raises(ValueError, match="strftime format"):
        load(frame(when=ints), ts_format="YYYYMMDD")
    with pytest.raises(ValueError, match="holds datetimes already"):
        load(frame(when=pd.to_datetime(days, format="%d/%m/%Y")), ts_format="%d/%m/%Y")


def test_a_log_without_an_item_column(tmp_path):
    from decaylib.data.preprocess import preprocess

    cols = {k: v for k, v in COLS.items() if v != "item_id"}
    df = frame().drop(columns="sku")
    with pytest.warns(DataWarning, match=r"has no item column: item_id is 0 for every event") as w:
        log = load(df, columns=cols)
    assert (log.events["item_id"] == LD.NO_ITEM).all() and log.events["item_id"].dtype == "int64"
    assert log.report["item_mode"] == "constant" and log.report["n_items"] == 1
    assert "repeat" not in str(w[0].message)
    # two orders of different (unknown) items at one instant: the warning says the duplicate rule takes them for retries
    twice = pd.concat([df, df.iloc[[0]]], ignore_index=True)
    with pytest.warns(DataWarning, match=r"1 row\(s\) repeat another row's user, category, timestamp and event.*date_only=True"):
        log2 = load(twice, columns=cols)
    assert log2.report["same_key_rows_without_item"] == 1
    # it goes through preprocess: the constant item is a valid id; the repeated row goes as the warning said
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # a 6-day toy log: short-log notes
        res = preprocess(log.events, engine="pandas", max_bot_share=None)
        res2 = preprocess(log2.events, engine="duckdb", max_bot_share=None)
    assert res.n_events_clean == len(log.events) and len(res.panel)
    assert res2.n_events_clean == len(log2.events) - 1
    # an ignored column is named in the warning, in case it held the items
    with pytest.warns(DataWarning, match=r"not read: \['sku'\]"):
        load(frame(), columns={**cols, "sku": None})
    with pytest.raises(EventSchemaError, match="category='item' .* needs an item column"):
        load(df, columns={k: v for k, v in cols.items() if v != "category"}, category="item")


def test_unix_timestamps_with_tz_cut_days_at_local_midnight():
    """A Beijing shop (UTC+8): 23:30 and 00:30 local are two days, 07:00 and 09:00 local one day
    (UTC midnight is 08:00 there, so UTC days would cut between those)."""
    local = ["2024-03-01 07:00", "2024-03-01 09:00", "2024-03-01 23:30", "2024-03-02 00:30", "2024-03-02 12:00", "2024-03-03 10:00"]
    secs = [int((pd.Timestamp(t).tz_localize("Asia/Shanghai").tz_convert("UTC").tz_localize(None) - pd.Timestamp("1970-01-01")).total_seconds())
            for t in local]
    df = frame(when=secs, visitor=[1] * 6, dept=[1] * 6)
    log = load(df, ts_unit="s", tz="Asia/Shanghai")
    assert log.events["ts"].tolist() == [pd.Timestamp(t) for t in local]
    assert log.report["ts_clock"] == "Asia/Shanghai" and log.report["tz_applied"]
    utc_days = load(df, ts_unit="s").events["ts"].dt.floor("D").dt.day.tolist()
    assert utc_days == [29, 1, 1, 1, 2, 3]  # without tz: 07:00 Beijing is the day before in UTC
    assert log.events["ts"].dt.floor("D").dt.day.tolist() == [1, 1, 1, 2, 2, 3]
    # ms too, and Unix timestamps at local midnight are dates
    ms = load(frame(when=[s * 1000 for s in secs], visitor=[1] * 6, dept=[1] * 6), ts_unit="ms", tz="Asia/Shanghai")
    pd.testing.assert_frame_equal(ms.events, log.events)
    midnight = [int((pd.Timestamp(f"2024-03-0{d}").tz_localize("Asia/Shanghai").tz_convert("UTC").tz_localize(None)
                     - pd.Timestamp("1970-01-01")).total_seconds()) for d in range(1, 7)]
    dates = load(frame(when=midnight), ts_unit="s", tz="Asia/Shanghai")
    assert dates.date_only and dates.events["ts"].iloc[0] == pd.Timestamp("2024-03-01")
    assert LD.load_mapping({"ts_unit": "s", "tz": "Asia/Shanghai"}) == {"ts_unit": "s", "tz": "Asia/Shanghai"}


def test_local_days_are_the_same_in_pandas_and_duckdb():
    from decaylib.data.preprocess import preprocess

    rng = np.random.default_rng(3)
    n = 400
    base = int((pd.Timestamp("2024-03-01") - pd.Timestamp("1970-01-01")).total_seconds())
    df = pd.DataFrame({"visitor": rng.integers(0, 8, n), "sku": rng.integers(0, 5, n), "dept": rng.integers(0, 3, n),
                       "when": base + rng.integers(0, 20 * 86400, n), "action": rng.choice(["pv", "buy"], n)})
    log = load(df, ts_unit="s", tz="Asia/Shanghai")
    kw = dict(max_bot_share=None, mean_window=3, max_gap_days=90)
    a = preprocess(log.events, engine="pandas", **kw)
    b = preprocess(log.events, engine="duckdb", **kw)
    pd.testing.assert_frame_equal(a.panel, b.panel)
    assert a.start_date == b.start_date
    # the panel's days are the local days: each event's Beijing date
    local_day = (log.events["ts"].dt.floor("D") - a.start_date).dt.days
    counts = pd.Series(1, index=pd.MultiIndex.from_arrays([log.events["user_id"], log.events["category"], local_day])).groupby(level=[0, 1, 2]).size()
    active = a.panel[a.panel[["view", "purchase"]].sum(axis=1) > 0].set_index(["user_id", "category", "day"])
    assert (active[["view", "purchase"]].sum(axis=1).sort_index() == counts.sort_index()).all()
