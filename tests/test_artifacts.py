import json
import math

import numpy as np
import pandas as pd
import pytest

from decaylib import artifacts
from decaylib.data import load as LD
from decaylib.workflow.pipeline import ensure_panel, ensure_simulation


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "a.json"
    artifacts.write_json({"x": 1}, target)
    with pytest.raises(RuntimeError):
        with artifacts.atomic_write(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert json.loads(target.read_text()) == {"x": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temp file left behind


def test_parquet_round_trip_and_missing(tmp_path):
    df = pd.DataFrame({"a": [1, 2], "b": [0.5, 1.5]})
    artifacts.write_parquet(df, tmp_path / "x.parquet")
    pd.testing.assert_frame_equal(artifacts.read_parquet(tmp_path / "x.parquet", ["a"]), df)
    with pytest.raises(ValueError, match="missing column"):
        artifacts.read_parquet(tmp_path / "x.parquet", ["zzz"])
    with pytest.raises(artifacts.ArtifactMissingError, match="run notebook 01"):
        artifacts.read_parquet(tmp_path / "nope.parquet", made_by="notebook 01")


def test_json_never_writes_nan(tmp_path):
    artifacts.write_metrics(tmp_path, "nb", {"a": np.float64("nan"), "b": np.int64(3), "c": [np.inf, 1.0]})
    data = artifacts.read_metrics(tmp_path, "nb")
    assert data == {"a": None, "b": 3, "c": [None, 1.0]}
    with pytest.raises(ValueError):
        artifacts.write_metrics(tmp_path, "nb", {})
    with pytest.raises(TypeError):
        artifacts.to_jsonable(object())


def test_article_table_round_trip(small_pre, tmp_path):
    t = LD.export_article_table(small_pre.panel, start_date="2026-01-05")
    assert list(t.columns) == ["user_id", "date", "浏览次数", "点击次数", "推荐次数", "兴趣度"]
    assert t["浏览次数"].sum() == small_pre.panel["view"].sum()
    t.to_csv(tmp_path / "a.csv", index=False)
    back = LD.load_article_table(tmp_path / "a.csv")
    assert {"user_id", "date", "view", "click", "impression", "interest"} <= set(back.columns)
    np.testing.assert_allclose(back["interest"].sum(), small_pre.panel["interest"].sum())
    with pytest.raises(KeyError, match="兴趣度"):
        LD.load_article_table(t.drop(columns="兴趣度"))
    bad = t.copy()
    bad.loc[0, "浏览次数"] = -1
    with pytest.raises(ValueError, match="negative"):
        LD.load_article_table(bad)


def test_ensure_rebuilds_missing_artifacts(tmp_path):
    panel = ensure_panel(tmp_path, verbose=False, n_users=30, n_days=40, seed=2)
    assert (tmp_path / "events.parquet").exists() and (tmp_path / "panel.parquet").exists()
    again = ensure_panel(tmp_path, verbose=False)
    pd.testing.assert_frame_equal(panel, again)
    sim = ensure_simulation(tmp_path, verbose=False)
    assert sim["meta"]["config"]["n_users"] == 30


def test_shipped_data_loaders():
    from tests.conftest import ROOT

    eb = LD.load_ebbinghaus(ROOT / "data" / "ebbinghaus" / "ebbinghaus_1885.csv")
    assert eb["savings_Q_percent"].tolist()[0] == pytest.approx(58.2) and len(eb) == 7
    ev = LD.load_online_retail(ROOT / "data" / "online_retail" / "online_retail_sample.csv")
    assert set(ev["event"]) == {"purchase"} and ev["user_id"].dtype == "int64"
    assert ev.attrs["removed"]["cancellations"] > 0 and ev.attrs["removed"]["no_customer"] > 0
    assert math.isclose(len(ev) + sum(ev.attrs["removed"].values()), 20000)


def test_long_frames_are_written_in_chunks_and_read_back_the_same(tmp_path, monkeypatch):
    from decaylib import artifacts

    monkeypatch.setattr(artifacts, "PARQUET_CHUNK_ROWS", 7)
    df = pd.DataFrame({"user_id": np.arange(30, dtype=np.int64), "interest_pred": np.linspace(0, 1, 30),
                       "model": "lstm", "split": ["cross_fit"] * 30})
    artifacts.write_parquet(df, tmp_path / "f.parquet")
    back = pd.read_parquet(tmp_path / "f.parquet")
    pd.testing.assert_frame_equal(back, pd.read_parquet(_plain(df, tmp_path)))
    pd.testing.assert_frame_equal(back[["user_id", "interest_pred"]], df[["user_id", "interest_pred"]])
    import pyarrow.parquet as pq

    assert pq.ParquetFile(tmp_path / "f.parquet").metadata.num_row_groups == 5  # 30 rows in chunks of 7


def _plain(df, tmp_path):
    df.to_parquet(tmp_path / "plain.parquet", index=False)
    return tmp_path / "plain.parquet"


@pytest.mark.parametrize("case", ["numeric", "strings", "nullable", "nan_and_nulls", "stored_index", "bytes"])
def test_lean_parquet_read_gives_the_frame_pandas_gives(tmp_path, case):
    import io

    from decaylib import artifacts

    n = 23
    df = pd.DataFrame({"user_id": np.arange(n, dtype=np.int64), "day": np.arange(n, dtype=np.int32) % 5,
                       "interest": np.linspace(0, 2, n), "observed": np.arange(n) % 3 > 0})
    if case in ("strings", "bytes"):
        df["model"] = "lstm"
        df["split"] = ["cross_fit", "test"] * 11 + ["test"]
    if case == "nullable":
        df["count"] = pd.array([1, None] * 11 + [3], dtype="Int64")
    if case == "nan_and_nulls":
        df["interest"] = np.where(np.arange(n) % 4 == 0, np.nan, df["interest"])
        df["maybe"] = pd.Series([1.0, None] * 11 + [2.0])
    path = tmp_path / "t.parquet"
    if case == "stored_index":
        df.index = pd.Index(np.arange(n) * 2, name="row")
        df.to_parquet(path, row_group_size=5)
    else:
        df.to_parquet(path, index=False, row_group_size=5)  # five row groups
    want = pd.read_parquet(path)
    got = artifacts._read_parquet(io.BytesIO(path.read_bytes()) if case == "bytes" else path)
    pd.testing.assert_frame_equal(got, want, check_exact=True)
