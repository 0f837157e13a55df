"""Bad-input probes of issue 21: each row of its table, tried as a new user would, with the behaviour wanted.

Run ``python benchmarks/probe_bad_input.py``: one line per probe, ``ok`` (a clear error naming the
column, value or row, or correct data with a warning that counts what happened) or ``FAIL`` with
what happened instead. ``tests/test_probe_bad_input.py`` runs every probe (a few seconds).
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from decaylib.checks import DataWarning, EventSchemaError
from decaylib.data.load import load_events, load_mapping
from decaylib.data.preprocess import preprocess
from decaylib.decay.counts import forecast_counts
from decaylib.decay.points import find_decay_point
from decaylib.decay.rate import fit_least_squares, fit_poisson_mle
from decaylib.schema import VIEW

PROBES = {}


def probe(name):
    def deco(fn):
        PROBES[name] = fn
        return fn
    return deco


def _raises(exc, pattern, fn, *a, **k) -> str:
    """Run ``fn``; it must raise ``exc`` with a message matching ``pattern`` (regex, case-insensitive)."""
    try:
        fn(*a, **k)
    except exc as e:
        msg = str(e)
        assert re.search(pattern, msg, re.I | re.S), f"{type(e).__name__} does not say {pattern!r}: {msg[:300]}"
        return msg
    except Exception as e:  # noqa: BLE001 - the probe reports any other exception as the failure
        raise AssertionError(f"{type(e).__name__} instead of {exc.__name__}: {str(e)[:300]}") from e
    raise AssertionError(f"accepted silently (expected {exc.__name__} saying {pattern!r})")


def _events(users, ts=None) -> pd.DataFrame:
    n = len(users)
    ts = ts if ts is not None else pd.date_range("2024-01-01", periods=n, freq="6h")
    return pd.DataFrame({"user_id": users, "item_id": np.arange(n), "category": np.zeros(n, dtype="int64"), "ts": ts,
                         "event": [VIEW] * n})


def _panel(counts_by_pair: dict) -> pd.DataFrame:
    rows = []
    for (u, c), counts in counts_by_pair.items():
        for d, y in enumerate(counts):
            rows.append({"user_id": u, "category": c, "day": d, "view": float(y), "click": 0.0, "cart": 0.0,
                         "purchase": 0.0, "impression": 0.0, "interest": float(y), "observed": True})
    p = pd.DataFrame(rows)
    p["interest_smooth"] = p["interest"]
    return p


# ------------------------------------------------------------------ 1. DST gap
@probe("dst_gap_shifts_forward")
def _dst_gap():
    when = ["2024-03-31 02:10:00", "2024-03-31 02:40:00", "2024-03-31 12:00:00"]
    frame = pd.DataFrame({"user_id": [1, 1, 1], "item_id": [5, 5, 5], "category": [0, 0, 0], "ts": when, "event": [VIEW] * 3})
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        log = load_events(frame, tz="Europe/Paris")
    got = log.events["ts"].tolist()
    want = [pd.Timestamp("2024-03-31 03:10"), pd.Timestamp("2024-03-31 03:40"), pd.Timestamp("2024-03-31 12:00")]
    assert got == want, f"ts {got}, wanted the skipped hour moved forward by the DST offset {want}"
    notes = [str(x.message) for x in w if issubclass(x.category, DataWarning) and "daylight" in str(x.message)]
    assert notes and re.search(r"\b2 (row|timestamp|local)", notes[0]), f"no DataWarning counting the 2 shifted rows: {notes}"
    assert log.report.get("tz_nonexistent") == 2, log.report.get("tz_nonexistent")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        n = preprocess(log.events, engine="pandas", date_only=log.date_only).n_events_clean
    assert n == 3, f"{n} events after cleaning, wanted 3 (no collapse)"
    return "02:10 -> 03:10, 02:40 -> 03:40, DataWarning counts 2, 3 events kept"


# ------------------------------------------------------------------ 2. tz that is not a string
@probe("mapping_tz_not_a_string")
def _tz_number():
    msg = _raises(TypeError, r"tz.*string|tz.*IANA", load_mapping, {"tz": 5})
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "mapping.json"
        p.write_text(json.dumps({"tz": 5}))
        _raises(TypeError, re.escape(str(p)), load_mapping, p)
    _raises(TypeError, r"tz", load_events, _events([1, 2, 3], ["2024-01-01 10:00"] * 3), tz=5)
    return msg[:120]


# ------------------------------------------------------------------ 3. ids preprocess cannot hold
def _id_probe(values, pattern):
    ev = _events(np.asarray(values, dtype=float))
    out = []
    for engine in ("pandas", "duckdb"):
        out.append(_raises(EventSchemaError, pattern, preprocess, ev, engine=engine))
    return out[0][:120]


@probe("preprocess_float_ids_beyond_int64")
def _ids_1e19():
    return _id_probe([1e19, -1e19, 3.0], r"user_id.*row 0: 1e\+19.*row 1: -1e\+19")


@probe("preprocess_float_id_above_2_53")
def _ids_2_60():
    return _id_probe([float(2**60 + 1), 2.0, 3.0], r"user_id.*2\*\*53.*row 0")


@probe("preprocess_inf_id")
def _ids_inf():
    return _id_probe([1.0, np.inf, 3.0], r"user_id.*row 1: inf")


# ------------------------------------------------------------------ 4. λ on a pair with zeros after its peak
@probe("least_squares_zeros_after_peak")
def _ls_zeros():
    t = np.arange(30)
    y = np.r_[[8.0, 9.0, 10.0], np.zeros(27)]
    data = pd.DataFrame({"user_id": 1, "category": 0, "t": t.astype(float), "count": y, "observed": True})
    res = fit_least_squares(data)
    r = res["reason"].iloc[0]
    assert r != "ok", f"λ = {res['lam_hat'].iloc[0]:.3f} with reason 'ok'"
    return f"reason {r!r}"


# ------------------------------------------------------------------ 5. non-finite interest and counts
@probe("find_decay_point_non_finite")
def _fdp_bad():
    base = _panel({(1, 0): [0, 2, 5, 9, 12, 9, 6, 4, 3, 2, 1, 1, 0, 0]})
    out = []
    for col, val, pat in (("interest_smooth", np.inf, r"interest_smooth.*1 "), ("interest_smooth", np.nan, r"interest_smooth.*1 "),
                          ("interest_smooth", -1.0, r"interest_smooth.*1 .*negative"), ("view", np.inf, r"view.*1 ")):
        p = base.copy()
        p.loc[3, col] = val
        out.append(_raises(ValueError, pat, find_decay_point, p))
    return out[0][:120]


@probe("lambda_estimators_refuse_bad_input")
def _lam_bad():
    t = np.arange(10, dtype=float)
    data = pd.DataFrame({"user_id": 1, "category": 0, "t": t, "count": 20 * np.exp(-0.2 * t), "observed": True})
    dup = pd.concat([data, data.iloc[[2]]], ignore_index=True)
    inf = data.assign(count=data["count"].where(data["t"] != 4, np.inf))
    for fit in (fit_least_squares, fit_poisson_mle):
        _raises(ValueError, r"1 duplicated \(user_id, category, t\).*user_id=1, category=0, t=2\.0", fit, dup)
        _raises(ValueError, r"count.*1 ", fit, inf)
    return "duplicated (pair, t) rows and inf counts refused by both estimators"


# ------------------------------------------------------------------ 6. forecast_counts on duplicated rows
@probe("forecast_counts_duplicate_rows")
def _fc_dup():
    p = _panel({(1, 0): [3, 2, 2, 1, 1, 0, 1, 0], (2, 0): [1, 1, 0, 1, 0, 0, 1, 0]})
    p = pd.concat([p, p.iloc[[3]]], ignore_index=True)
    return _raises(ValueError, r"1 duplicate.*user_id.*1.*day.*3", forecast_counts, p, 6, 2, method="constant")[:120]


# ------------------------------------------------------------------ 7. ids with leading zeros
@probe("csv_ids_with_leading_zeros")
def _leading_zeros():
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "ev.csv"
        p.write_text("user_id,item_id,category,ts,event\n007,1,0,2024-01-01 10:00,view\n7,1,0,2024-01-02 10:00,view\n"
                     "8,2,0,2024-01-03 10:00,view\n")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            log = load_events(p)
        n = log.events["user_id"].nunique()
        assert n == 3, f"'007' and '7' merged: {n} users"
        assert log.id_maps["user_id"]["original"].tolist()[:3] == ["007", "7", "8"] or "007" in log.id_maps["user_id"]["original"].tolist()
    return "'007' and '7' are two users (ids read as text)"


# ------------------------------------------------------------------ 8. duplicated column names
@probe("csv_header_twice")
def _ts_twice():
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "ev.csv"
        p.write_text("user_id,item_id,category,ts,event,ts\n1,1,0,2024-01-01 10:00,view,2024-05-01 10:00\n")
        return _raises(EventSchemaError, r"'ts'.*twice|twice.*'ts'|duplicate.*'ts'", load_events, p)[:120]


@probe("dataframe_duplicated_column")
def _df_dup_col():
    ev = _events([1, 2, 3])
    ev = pd.concat([ev, ev[["user_id"]]], axis=1)
    _raises(EventSchemaError, r"'user_id'.*(twice|more than once|duplicate)", load_events, ev)
    return _raises(EventSchemaError, r"'user_id'.*(twice|more than once|duplicate)", preprocess, ev, engine="pandas")[:120]


# ------------------------------------------------------------------ 9. separators, compression, encodings
@probe("csv_semicolons")
def _semicolons():
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "ev.csv"
        p.write_text("user_id;item_id;category;ts;event\n1;1;0;2024-01-01 10:00;view\n")
        return _raises(EventSchemaError, r"sep=';'", load_events, p)[:120]


@probe("gzip_bytes_in_csv")
def _gzip():
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "ev.csv"
        p.write_bytes(gzip.compress(b"user_id,item_id,category,ts,event\n1,1,0,2024-01-01 10:00,view\n"))
        return _raises(EventSchemaError, r"gzip.*compressed.*\.csv\.gz|compressed", load_events, p)[:120]


@probe("mapping_not_utf8")
def _mapping_latin1():
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "map.json"
        p.write_bytes(json.dumps({"event_map": {"vue": "view"}, "columns": {"caté": None}}, ensure_ascii=False).encode("latin-1"))
        return _raises(ValueError, re.escape(str(p)) + r".*UTF-8", load_mapping, p)[:120]


# ------------------------------------------------------------------ 10. milliseconds read as seconds
@probe("ms_timestamps_as_seconds")
def _ms():
    ev = _events([1, 2, 3], [1_700_000_000_000, 1_700_000_100_000, 1_700_000_200_000])
    return _raises(EventSchemaError, r"is 'ms'|as ms", load_events, ev, ts_unit="s")[:120]


def run() -> dict:
    """{probe: (True, what happened) or (False, what went wrong)}."""
    out = {}
    for name, fn in PROBES.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[name] = (True, fn())
        except AssertionError as e:
            out[name] = (False, str(e))
    return out


if __name__ == "__main__":
    results = run()
    for name, (ok, what) in results.items():
        print(f"{'ok  ' if ok else 'FAIL'} {name:40s} {what[:160]}")
    print(f"{sum(ok for ok, _ in results.values())}/{len(results)} probes ok")
    sys.exit(0 if all(ok for ok, _ in results.values()) else 1)
