"""The complete UCI Online Retail files: the shipped Parquet files, ``load_online_retail`` on them and
``load_online_retail_years`` (two years of one shop as one event log, the December 2010 overlap kept once).

The tests that load a whole file (hundreds of thousands of lines, seconds on two cores) are ``slow``;
the others read only metadata, a few columns, or small files written here.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from decaylib.data import load as LD

DATA = Path(__file__).resolve().parents[2] / "data" / "online_retail"
FULL = DATA / "online_retail_full.parquet"
II = DATA / "online_retail_ii_2009_2010.parquet"

N_FULL, N_II = 541_909, 525_461
#: Invoice lines that both files hold: 2010-12-01 08:26 .. 2010-12-09 20:01, 1,088 invoices.
N_OVERLAP = 22_523
LINE = ["InvoiceNo", "StockCode", "InvoiceDate", "Quantity"]
CUT = pd.Timestamp("2010-12-01")  # Online Retail starts here: year 1 before, year 2 from here on


def _raw(path, columns=None) -> pd.DataFrame:
    """One file in Online Retail's column names (Online Retail II's renamed), only ``columns``."""
    names = pq.read_schema(path).names
    back = {"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"}
    cols = None if columns is None else [c if c in names else back[c] for c in columns]
    return pd.read_parquet(path, columns=cols).rename(columns={v: k for k, v in back.items()})


# ----------------------------------------------------------------------------- the shipped files (fast)


def test_shipped_files_rows_columns_and_types():
    full, ii = pq.read_schema(FULL), pq.read_schema(II)
    assert pq.read_metadata(FULL).num_rows == N_FULL and pq.read_metadata(II).num_rows == N_II
    assert full.names == ["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID", "Country"]
    assert ii.names == ["Invoice", "StockCode", "Description", "Quantity", "InvoiceDate", "Price", "Customer ID", "Country"]
    for s in (full, ii):
        assert [str(t) for t in s.types] == ["string", "string", "string", "int32", "timestamp[ms]", "double", "int32", "string"]
    assert b"CC BY 4.0" in full.metadata[b"source"] and b"CC BY 4.0" in ii.metadata[b"source"]


def test_shipped_files_date_ranges():
    full, ii = _raw(FULL, ["InvoiceDate"])["InvoiceDate"], _raw(II, ["InvoiceDate"])["InvoiceDate"]
    assert (full.min(), full.max()) == (pd.Timestamp("2010-12-01 08:26"), pd.Timestamp("2011-12-09 12:50"))
    assert (ii.min(), ii.max()) == (pd.Timestamp("2009-12-01 07:45"), pd.Timestamp("2010-12-09 20:01"))


def test_the_files_overlap_by_22523_identical_lines():
    full, ii = _raw(FULL, LINE), _raw(II, LINE)
    lo, hi = full["InvoiceDate"].min(), ii["InvoiceDate"].max()
    a = ii[ii["InvoiceDate"] >= lo].sort_values(LINE, ignore_index=True)
    b = full[full["InvoiceDate"] <= hi].sort_values(LINE, ignore_index=True)
    assert len(a) == len(b) == N_OVERLAP and a["InvoiceNo"].nunique() == 1_088
    pd.testing.assert_frame_equal(a, b)  # the same lines, repeats included: one multiset
    assert int(a.duplicated(LINE).sum()) == 327  # repeat copies of a line (in both files alike): kept, not merged


# ----------------------------------------------------------------------------- small files (fast)


def _lines(rows, ii_names=False) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "UnitPrice", "CustomerID"])
    df["InvoiceDate"] = pd.to_datetime(df["InvoiceDate"])
    df["CustomerID"] = df["CustomerID"].astype("float64")
    if ii_names:
        df = df.rename(columns={"InvoiceNo": "Invoice", "UnitPrice": "Price", "CustomerID": "Customer ID"})
    return df


@pytest.fixture
def two_small_years(tmp_path):
    nan = np.nan
    old = _lines(
        [
            ("100", "85123A", 2, "2009-12-01 09:00", 2.5, 1),
            ("101", "22111", 1, "2010-06-01 10:00", 1.0, 2),
            ("C102", "22111", -1, "2010-06-02 10:00", 1.0, 2),  # cancellation
            ("103", "22111", 1, "2010-06-03 10:00", 1.0, nan),  # no customer
            ("104", "22112", 0, "2010-06-04 10:00", 1.0, 2),  # non-positive quantity
            ("200", "22113", 3, "2010-12-01 09:00", 1.0, 3),  # in both files, written twice in each
            ("200", "22113", 3, "2010-12-01 09:00", 1.0, 3),
            ("201", "22114", 1, "2010-12-02 09:00", 1.0, 4),  # in both files, once
            ("202", "22115", 1, "2010-12-02 09:00", 1.0, 4),  # only here, inside the overlap
        ],
        ii_names=True,
    )
    new = _lines(
        [
            ("201", "22114", 1, "2010-12-02 09:00", 1.0, 4),
            ("200", "22113", 3, "2010-12-01 09:00", 1.0, 3),
            ("200", "22113", 3, "2010-12-01 09:00", 1.0, 3),
            ("300", "22116", 5, "2011-01-05 12:00", 1.0, 1),
            ("300", "22116", 5, "2011-01-05 12:00", 1.0, 1),  # a repeat within one file stays
        ]
    )
    old.to_parquet(tmp_path / LD.ONLINE_RETAIL_YEAR_FILES[0])
    new.to_parquet(tmp_path / LD.ONLINE_RETAIL_YEAR_FILES[1])
    return tmp_path


def test_years_drop_the_shared_lines_once(two_small_years):
    ev = LD.load_online_retail_years(two_small_years)
    assert ev.attrs["overlap_duplicates"] == 3  # 200 twice + 201 once, counted with multiplicity
    assert ev.attrs["removed"] == {"overlap_duplicates": 3, "cancellations": 1, "no_customer": 1, "non_positive_quantity": 1}
    assert len(ev) + sum(ev.attrs["removed"].values()) == 9 + 5
    assert ev["ts"].is_monotonic_increasing and set(ev["event"]) == {"purchase"}
    assert ev["user_id"].tolist() == [1, 2, 3, 3, 4, 4, 1, 1]
    assert [s["dropped_as_overlap"] for s in ev.attrs["sources"]] == [3, 0]
    assert [s["rows"] for s in ev.attrs["sources"]] == [9, 5]
    # the order of the paths does not matter: files are put in time order
    paths = [two_small_years / f for f in reversed(LD.ONLINE_RETAIL_YEAR_FILES)]
    again = LD.load_online_retail_years(paths)
    pd.testing.assert_frame_equal(again, ev)
    assert again.attrs["overlap_duplicates"] == 3


def test_load_online_retail_reads_parquet_in_either_naming(two_small_years):
    old = LD.load_online_retail(two_small_years / LD.ONLINE_RETAIL_YEAR_FILES[0])
    assert old.attrs["removed"] == {"cancellations": 1, "no_customer": 1, "non_positive_quantity": 1}
    assert len(old) == 6 and old["user_id"].dtype == "int64" and (old["user_id"] > 0).all()
    new = LD.load_online_retail(two_small_years / LD.ONLINE_RETAIL_YEAR_FILES[1])
    assert len(new) == 5 and sorted(new.attrs["category_names"].values()) == ["221"]


def test_clear_errors(two_small_years, tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.parquet"):
        LD.load_online_retail(tmp_path / "nothing.parquet")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        LD.load_online_retail_years(tmp_path / "no-such-folder")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=LD.ONLINE_RETAIL_YEAR_FILES[0]):
        LD.load_online_retail_years(empty)
    with pytest.raises(FileNotFoundError, match="missing.parquet"):
        LD.load_online_retail_years([two_small_years / LD.ONLINE_RETAIL_YEAR_FILES[0], tmp_path / "missing.parquet"])
    bad = tmp_path / "bad.parquet"
    pd.read_parquet(two_small_years / LD.ONLINE_RETAIL_YEAR_FILES[0]).drop(columns="Customer ID").to_parquet(bad)
    with pytest.raises(KeyError, match=r"bad\.parquet is missing column\(s\) \['CustomerID'\] of Online Retail"):
        LD.load_online_retail(bad)
    with pytest.raises(KeyError, match="CustomerID"):
        LD.load_online_retail_years([bad, two_small_years / LD.ONLINE_RETAIL_YEAR_FILES[1]])
    (tmp_path / "lines.xlsx").write_bytes(b"")
    with pytest.raises(ValueError, match="unknown file type"):
        LD.load_online_retail(tmp_path / "lines.xlsx")


# ----------------------------------------------------------------------------- the whole data (slow)


@pytest.fixture(scope="module")
def years():
    t0 = time.perf_counter()
    ev = LD.load_online_retail_years()
    return ev, time.perf_counter() - t0


@pytest.mark.slow
def test_years_rows_dates_and_load_time(years):
    ev, seconds = years
    assert seconds < 30, f"loading both years took {seconds:.1f} s"  # about 4 s on two cores
    assert len(ev) == 791_114 and ev["user_id"].nunique() == 5_881
    assert ev.attrs["overlap_duplicates"] == N_OVERLAP
    assert ev.attrs["removed"] == {"overlap_duplicates": N_OVERLAP, "cancellations": 19_165, "no_customer": 234_568, "non_positive_quantity": 0}
    assert len(ev) + sum(ev.attrs["removed"].values()) == N_II + N_FULL
    assert [(s["rows"], s["dropped_as_overlap"]) for s in ev.attrs["sources"]] == [(N_II, N_OVERLAP), (N_FULL, 0)]
    assert ev["ts"].is_monotonic_increasing
    assert (ev["ts"].min(), ev["ts"].max()) == (pd.Timestamp("2009-12-01 07:45"), pd.Timestamp("2011-12-09 12:50"))
    assert (ev["ts"] < CUT).sum() == 393_190 and (ev["ts"] >= CUT).sum() == 397_924


@pytest.mark.slow
def test_years_keep_customers_and_positive_quantities_only(years):
    ev, _ = years
    assert ev["user_id"].dtype == "int64" and ev["user_id"].notna().all() and set(ev["event"]) == {"purchase"}
    # the same count from the raw lines: the overlap taken once (from Online Retail), then the rules
    cols = ["InvoiceNo", "Quantity", "InvoiceDate", "CustomerID"]
    full, ii = _raw(FULL, cols), _raw(II, cols)
    raw = pd.concat([ii[ii["InvoiceDate"] < full["InvoiceDate"].min()], full])
    keep = ~raw["InvoiceNo"].str.startswith("C") & raw["CustomerID"].notna() & (raw["Quantity"] > 0)
    assert int(keep.sum()) == len(ev)
    assert sorted(raw.loc[keep, "CustomerID"].astype("int64").unique()) == sorted(ev["user_id"].unique())


@pytest.mark.slow
def test_years_hold_the_overlap_once(years):
    ev, _ = years
    full = LD.load_online_retail(FULL)

    def named(e):
        names = e.attrs["category_names"]
        out = pd.DataFrame({"user_id": e["user_id"], "ts": e["ts"], "family": e["category"].map(names)})
        return out.sort_values(["ts", "user_id", "family"], ignore_index=True)

    # from 2010-12-01 on, the two-year log is Online Retail itself: the December lines are there once
    pd.testing.assert_frame_equal(named(ev[ev["ts"] >= CUT]), named(full))
    december = (ev["ts"] >= CUT) & (ev["ts"] < pd.Timestamp("2010-12-10"))
    assert int(december.sum()) == int((full["ts"] < pd.Timestamp("2010-12-10")).sum()) == 14_505
