"""Reading and writing artifacts safely, schemas, and loaders for shipped and foreign tables.

Every writer goes through :func:`atomic_write`: the file is written to a temporary name in the
same folder and renamed over the target only when complete, so a crash never leaves a
half-written artifact and never destroys the previous one.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = [
    "ARTICLE_COLUMNS",
    "ArtifactMissingError",
    "EventSchemaError",
    "atomic_write",
    "write_parquet",
    "read_parquet",
    "write_json",
    "read_json",
    "to_jsonable",
    "write_metrics",
    "read_metrics",
    "export_article_table",
    "load_article_table",
    "load_ebbinghaus",
    "load_online_retail",
]

#: The source article's table: one row per user and day.
ARTICLE_COLUMNS = {"view": "浏览次数", "click": "点击次数", "impression": "推荐次数", "interest": "兴趣度"}


class EventSchemaError(ValueError):
    """An event table (or file) does not have the expected shape; the message says what is wrong
    and shows a few of the offending values with their row numbers."""


class ArtifactMissingError(FileNotFoundError):
    """An input artifact is not there; the message says which notebook or function makes it."""


@contextmanager
def atomic_write(path):
    """Yield a temporary path next to ``path``; rename it over ``path`` if the block succeeds.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_parquet(df: pd.DataFrame, path) -> Path:
    """Write ``df`` to Parquet atomically (no index)."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected a DataFrame, got {type(df).__name__}")
    with atomic_write(path) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(path)


def read_parquet(path, required_columns=(), made_by: str | None = None) -> pd.DataFrame:
    """Read a Parquet artifact and check that it has ``required_columns``."""
    path = Path(path)
    if not path.exists():
        hint = f"; run {made_by} first" if made_by else ""
        raise ArtifactMissingError(f"artifact {path} does not exist{hint}")
    df = pd.read_parquet(path)
    missing = [c for c in required_columns if c not in df.columns]
    if missing:
        raise ValueError(f"{path} is missing column(s) {missing}; it has {list(df.columns)}")
    return df


def to_jsonable(obj):
    """Convert NumPy/pandas scalars and containers to plain JSON types (NaN/inf -> None)."""
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [to_jsonable(v) for v in obj.tolist()]
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer, int)):
        return int(obj)
    if isinstance(obj, (np.floating, float)):
        f = float(obj)
        return f if math.isfinite(f) else None
    if isinstance(obj, (pd.Timestamp,)):
        return obj.isoformat()
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} to JSON")


def write_json(obj, path) -> Path:
    """Write ``obj`` as pretty JSON atomically (NaN becomes null, never invalid JSON)."""
    text = json.dumps(to_jsonable(obj), indent=2, ensure_ascii=False, sort_keys=False, allow_nan=False)
    with atomic_write(path) as tmp:
        tmp.write_text(text + "\n", encoding="utf-8")
    return Path(path)


def read_json(path, made_by: str | None = None):
    path = Path(path)
    if not path.exists():
        hint = f"; run {made_by} first" if made_by else ""
        raise ArtifactMissingError(f"{path} does not exist{hint}")
    return json.loads(path.read_text(encoding="utf-8"))


def write_metrics(data_dir, notebook: str, metrics: dict) -> Path:
    """Write a notebook's headline numbers to ``data_dir/metrics/<notebook>.json``."""
    if not isinstance(metrics, dict) or not metrics:
        raise ValueError("metrics must be a non-empty dict")
    return write_json(metrics, Path(data_dir) / "metrics" / f"{notebook}.json")


def read_metrics(data_dir, notebook: str) -> dict:
    return read_json(Path(data_dir) / "metrics" / f"{notebook}.json", made_by=f"notebook {notebook}")


def export_article_table(panel: pd.DataFrame, start_date=None) -> pd.DataFrame:
    """The daily panel in the source article's format: one row per user and day.

    Columns: ``user_id``, ``date`` (or ``day`` when ``start_date`` is None), then
    浏览次数 (views), 点击次数 (clicks), 推荐次数 (recommendations = impressions) and
    兴趣度 (interest score), each summed over the user's categories.
    """
    need = ["user_id", "day", *ARTICLE_COLUMNS]
    missing = [c for c in need if c not in panel.columns]
    if missing:
        raise KeyError(f"panel is missing column(s) {missing}")
    t = panel.groupby(["user_id", "day"], as_index=False)[list(ARTICLE_COLUMNS)].sum()
    if start_date is not None:
        t.insert(1, "date", pd.Timestamp(start_date) + pd.to_timedelta(t["day"], unit="D"))
        t = t.drop(columns="day")
    return t.rename(columns=ARTICLE_COLUMNS)


def load_article_table(source) -> pd.DataFrame:
    """Read a table in the article's format (a CSV path or a DataFrame) into decaylib's names.

    Returns ``user_id``, ``day`` (or ``date``), ``view``, ``click``, ``impression``,
    ``interest``.  Missing columns, negative counts and non-numeric values are errors.
    """
    df = pd.read_csv(source) if not isinstance(source, pd.DataFrame) else source.copy()
    inverse = {v: k for k, v in ARTICLE_COLUMNS.items()}
    missing = [c for c in ARTICLE_COLUMNS.values() if c not in df.columns]
    if "user_id" not in df.columns:
        missing.insert(0, "user_id")
    if not ("day" in df.columns or "date" in df.columns):
        missing.append("day or date")
    if missing:
        raise KeyError(f"article table is missing column(s) {missing}; it has {list(df.columns)}")
    if len(df) == 0:
        raise ValueError("article table is empty")
    df = df.rename(columns=inverse)
    for c in ARTICLE_COLUMNS:
        num = pd.to_numeric(df[c], errors="coerce")
        if num.isna().any():
            raise ValueError(f"column {ARTICLE_COLUMNS[c]} ({c}) has {int(num.isna().sum())} non-numeric value(s)")
        if (num < 0).any():
            raise ValueError(f"column {ARTICLE_COLUMNS[c]} ({c}) has negative values")
        df[c] = num
    if "date" in df.columns:
        df["date"] = pd.to_datetime(df["date"])
    return df


def load_ebbinghaus(path) -> pd.DataFrame:
    """Ebbinghaus' 1885 savings table: ``delay_hours``, ``savings_Q_percent`` and the rest."""
    df = pd.read_csv(path)
    need = ["delay_hours", "savings_Q_percent"]
    missing = [c for c in need if c not in df.columns]
    if missing:
        raise KeyError(f"{path} is missing column(s) {missing}")
    return df


def load_online_retail(path) -> pd.DataFrame:
    """The UCI Online Retail sample as decaylib events (purchases only, customers only).

    Every invoice line with a customer and a positive quantity becomes one ``purchase`` event;
    ``category`` is the first three characters of the stock code turned into an integer code
    (a coarse "product family"), ``item_id`` an integer code of the stock code.  Cancellations
    (invoice numbers starting with ``C``), rows without a customer and non-positive quantities
    are removed; the returned frame's ``attrs["removed"]`` counts each.
    """
    raw = pd.read_csv(path, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": "string"}, keep_default_na=True)
    need = ["InvoiceNo", "StockCode", "Quantity", "InvoiceDate", "CustomerID"]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise KeyError(f"{path} is missing column(s) {missing}")
    removed = {}
    cancel = raw["InvoiceNo"].str.startswith("C")
    removed["cancellations"] = int(cancel.sum())
    raw = raw[~cancel]
    no_cust = raw["CustomerID"].isna()
    removed["no_customer"] = int(no_cust.sum())
    raw = raw[~no_cust]
    bad_q = raw["Quantity"] <= 0
    removed["non_positive_quantity"] = int(bad_q.sum())
    raw = raw[~bad_q]
    family = raw["StockCode"].str[:3]
    events = pd.DataFrame(
        {
            "user_id": pd.to_numeric(raw["CustomerID"]).astype("int64").to_numpy(),
            "item_id": pd.factorize(raw["StockCode"], sort=True)[0].astype("int64"),
            "category": pd.factorize(family, sort=True)[0].astype("int64"),
            "ts": pd.to_datetime(raw["InvoiceDate"]).to_numpy(),
            "event": "purchase",
        }
    )
    events.attrs["removed"] = removed
    events.attrs["category_names"] = dict(enumerate(sorted(family.unique())))
    return events.reset_index(drop=True)
