"""Event logs that are not simulated, built from the shipped UCI Online Retail sample.

They stand in for "a shop's own log" in the tests: the shop's own column names, string-like
customer ids, cancellations as an event type to drop, a full year of sparse purchases, and a
10-day slice. Build them with :func:`make_online_retail_log`, or from the shell::

    python -m tests.real_logs OUT_DIR [--days 10]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "data" / "online_retail" / "online_retail_sample.csv"

#: How the shop's columns and event names map onto decaylib's (a JSON mapping file).
MAPPING = {
    "columns": {"customer": "user_id", "sku": "item_id", "family": "category", "when": "ts", "kind": "event"},
    "event_map": {"order": "purchase", "cancel": None},
}


def online_retail_frame(days: int | None = None) -> pd.DataFrame:
    """The sample in the shop's own format: customers only; cancellations kept as ``cancel``.

    ``days``: keep only the ``days`` consecutive calendar days with the most rows (a short log).
    """
    raw = pd.read_csv(SAMPLE, dtype={"InvoiceNo": str, "StockCode": str, "CustomerID": "string"})
    raw = raw[raw["CustomerID"].notna()]
    out = pd.DataFrame({
        "customer": "C" + raw["CustomerID"].str.replace(r"\.0$", "", regex=True),
        "sku": raw["StockCode"],
        "family": raw["StockCode"].str[:3],
        "when": raw["InvoiceDate"],
        "kind": (raw["InvoiceNo"].str.startswith("C") | (raw["Quantity"] <= 0)).map({True: "cancel", False: "order"}),
    })
    if days is not None:
        day = pd.to_datetime(out["when"]).dt.normalize()
        per_day = day.value_counts().sort_index()
        full = per_day.reindex(pd.date_range(per_day.index.min(), per_day.index.max()), fill_value=0)
        best = full.rolling(days).sum().idxmax()
        out = out[(day > best - pd.Timedelta(days=days)) & (day <= best)]
    return out.reset_index(drop=True)


def make_online_retail_log(out_dir, days: int | None = None) -> tuple[Path, Path]:
    """Write the shop-format CSV and its mapping JSON into ``out_dir``; return both paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = "online_retail" if days is None else f"online_retail_{days}d"
    csv = out_dir / f"{name}.csv"
    online_retail_frame(days).to_csv(csv, index=False)
    mapping = out_dir / f"{name}_mapping.json"
    mapping.write_text(json.dumps(MAPPING, indent=2) + "\n", encoding="utf-8")
    return csv, mapping


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--days", type=int, default=None)
    a = p.parse_args()
    for path in make_online_retail_log(a.out_dir, a.days):
        print(path)
    sys.exit(0)
