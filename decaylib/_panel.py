"""Checks and slices of the daily panel shared by :mod:`decaylib.evaluate`, :mod:`decaylib.recommend` and :mod:`decaylib.advice`.

Private helpers: the panel's required columns, integer and positivity checks with messages that
name the problem, and the panel cut at a cutoff day (the only way the ranking code reads it).
"""

from __future__ import annotations

from functools import partial
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from decaylib.utils import check_int


_check_int = partial(check_int, minimum=None)  # ids and days may be 0; callers pass a minimum where needed


_check_int = partial(check_int, minimum=None)  # ids and days may be 0; callers pass a minimum where needed


_PAIR = ["user_id", "category"]


_BASE_COLUMNS = ("user_id", "category", "day", "interest")


_EVENT_COLUMNS = ("view", "click", "cart", "purchase")


def _require_frame(df, name: str, columns: Iterable[str], allow_empty: bool = False) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"{name} is missing column(s) {missing}; it has {list(df.columns)}")
    if df.empty and not allow_empty:
        raise ValueError(f"{name} is empty")


def _check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def _check_integer_column(df: pd.DataFrame, name: str, column: str) -> None:
    if not pd.api.types.is_integer_dtype(df[column]):
        raise TypeError(f"{name}.{column} must have an integer dtype, got {df[column].dtype}")


def _day_range(panel: pd.DataFrame) -> tuple[int, int]:
    day = panel["day"].to_numpy()
    return int(day.min()), int(day.max())


def _panel_upto(panel, cutoff_day, extra: Sequence[str] = ()) -> pd.DataFrame:
    """Validate ``panel`` and return its rows with ``day <= cutoff_day`` (a sorted copy).

    Only the day range of the full panel is read (to reject a cutoff outside it); every value
    used for scoring comes from the returned slice.
    """
    _require_frame(panel, "panel", (*_BASE_COLUMNS, *extra))
    cutoff_day = _check_int("cutoff_day", cutoff_day)
    for col in ("user_id", "category", "day"):
        _check_integer_column(panel, "panel", col)
    lo, hi = _day_range(panel)
    if not lo <= cutoff_day <= hi:
        raise ValueError(f"cutoff_day={cutoff_day} is outside the panel's days [{lo}, {hi}]")
    cols = [*_BASE_COLUMNS, *extra]
    if "observed" in panel.columns and "observed" not in cols:
        cols.append("observed")
    past = panel.loc[panel["day"].to_numpy() <= cutoff_day, cols]
    interest = past["interest"].to_numpy(dtype=float)
    if not np.all(np.isfinite(interest)):
        raise ValueError("panel.interest has NaN or infinite values up to the cutoff")
    if np.any(interest < 0):
        raise ValueError("panel.interest must be >= 0")
    if not _is_sorted(past):
        past = past.sort_values(["user_id", "category", "day"], kind="stable")
    return past.reset_index(drop=True)


def _is_sorted(df: pd.DataFrame) -> bool:
    """True when rows are sorted by (user_id, category, day) -- the contract's order."""
    if len(df) < 2:
        return True
    du, dc, dd = (np.diff(df[c].to_numpy()) for c in ("user_id", "category", "day"))
    return bool(np.all((du > 0) | ((du == 0) & ((dc > 0) | ((dc == 0) & (dd >= 0))))))


def _observed_mask(past: pd.DataFrame) -> np.ndarray:
    if "observed" in past.columns:
        return past["observed"].to_numpy(dtype=bool)
    return np.ones(len(past), dtype=bool)


def _run_positions(sorted_keys: np.ndarray) -> np.ndarray:
    """0-based position of each element inside its run of equal, adjacent keys."""
    n = len(sorted_keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.arange(n, dtype=np.int64)
    starts = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    return idx - np.maximum.accumulate(np.where(starts, idx, 0))
