"""From raw events to a clean daily interest panel.

Steps (each one reports how many rows it removed and why, nothing is dropped silently):

1. :func:`validate_events` checks the schema: required columns, integer ids, parseable
   timestamps, known event names, no missing values.
2. :func:`drop_duplicates` removes exact duplicate rows (logging retries).
3. :func:`detect_bots` flags users whose volume is absurd with a robust rule (median/MAD of the
   log of events per active day); :func:`remove_users` drops them.
4. :func:`build_panel` aggregates to one row per (user, category, day), zero-filled from the pair's
   first activity to the end of the observation window, detects logging outages
   (:func:`detect_outage_days`), computes the interest score (:func:`interest_score`) and its
   smoothed version (moving median, then moving mean).

Transformations for models: :func:`log_transform` (``log1p``, no ``1e-8`` hack) and
:class:`Standardizer`, fitted on training users only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .io import EventSchemaError
from .synth import BEHAVIOURS, EVENT_TYPES
from .utils import check_frame

__all__ = [
    "DEFAULT_WEIGHTS",
    "COUNT_COLUMNS",
    "PANEL_COLUMNS",
    "EventSchemaError",
    "CleaningReport",
    "PreprocessResult",
    "validate_events",
    "drop_duplicates",
    "detect_bots",
    "remove_users",
    "event_days",
    "detect_outage_days",
    "interest_score",
    "expected_score",
    "moving_mean",
    "moving_median",
    "smooth_interest",
    "build_panel",
    "preprocess",
    "log_transform",
    "Standardizer",
]

#: Weights of the interest score: a purchase says more about interest than a view.
#: Any positive weights keep the true decay rate, because every behaviour's mean is proportional
#: to the same latent interest.  Impressions are the platform's doing and get no weight.
DEFAULT_WEIGHTS = {"view": 1.0, "click": 2.0, "cart": 3.0, "purchase": 5.0}
COUNT_COLUMNS = ("view", "click", "cart", "purchase", "impression")
PANEL_COLUMNS = (
    "user_id",
    "category",
    "day",
    *COUNT_COLUMNS,
    "interest",
    "interest_smooth",
    "observed",
)
REQUIRED_EVENT_COLUMNS = ("user_id", "item_id", "category", "ts", "event")


@dataclass
class CleaningReport:
    """A log of cleaning steps: rows before and after each, and why rows were removed."""

    steps: list[dict] = field(default_factory=list)

    def add(self, step: str, before: int, after: int, reason: str) -> None:
        self.steps.append(
            {"step": step, "rows_before": int(before), "rows_after": int(after), "removed": int(before - after), "reason": reason}
        )

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.steps, columns=["step", "rows_before", "rows_after", "removed", "reason"])

    def removed(self, step: str) -> int:
        """Rows removed by ``step`` (``KeyError`` if the step never ran)."""
        for s in self.steps:
            if s["step"] == step:
                return s["removed"]
        raise KeyError(f"no cleaning step named {step!r}; steps: {[s['step'] for s in self.steps]}")


def validate_events(events: pd.DataFrame) -> pd.DataFrame:
    """Check the raw event table and return a copy with canonical dtypes.

    Raises
    ------
    EventSchemaError
        When the input is not a DataFrame, is empty, lacks a column, has non-integer ids,
        missing values, unparseable timestamps or unknown event names.  The message names the
        column and shows a few offending values.
    """
    if not isinstance(events, pd.DataFrame):
        raise EventSchemaError(f"events must be a pandas DataFrame, got {type(events).__name__}")
    missing = [c for c in REQUIRED_EVENT_COLUMNS if c not in events.columns]
    if missing:
        raise EventSchemaError(f"events is missing required column(s) {missing}; it has {list(events.columns)}")
    if len(events) == 0:
        raise EventSchemaError("events is empty: there is nothing to preprocess")
    out = events[list(REQUIRED_EVENT_COLUMNS)].copy()
    for col in ("user_id", "item_id", "category"):
        s = out[col]
        if s.isna().any():
            raise EventSchemaError(f"column {col!r} has {int(s.isna().sum())} missing value(s)")
        if not pd.api.types.is_integer_dtype(s):
            num = pd.to_numeric(s, errors="coerce")
            bad = s[num.isna() | (num != np.floor(num))]
            if len(bad):
                raise EventSchemaError(
                    f"column {col!r} must hold integer ids; found {len(bad)} non-integer value(s), e.g. {bad.head(3).tolist()}"
                )
            s = num
        out[col] = s.astype("int64")
    ts = out["ts"]
    if ts.isna().any():
        raise EventSchemaError(f"column 'ts' has {int(ts.isna().sum())} missing timestamp(s)")
    if not pd.api.types.is_datetime64_any_dtype(ts):
        parsed = pd.to_datetime(ts, errors="coerce")
        bad = ts[parsed.isna()]
        if len(bad):
            raise EventSchemaError(f"column 'ts' has {len(bad)} unparseable timestamp(s), e.g. {bad.head(3).tolist()}")
        ts = parsed
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    out["ts"] = ts.astype("datetime64[ns]")
    ev = out["event"].astype(str)
    unknown = sorted(set(ev.unique()) - set(EVENT_TYPES))
    if unknown:
        raise EventSchemaError(f"column 'event' has unknown event name(s) {unknown[:5]}; expected one of {list(EVENT_TYPES)}")
    out["event"] = ev
    return out


def drop_duplicates(events: pd.DataFrame, report: CleaningReport | None = None) -> pd.DataFrame:
    """Remove exact duplicate rows (same user, item, category, timestamp and event)."""
    before = len(events)
    out = events.drop_duplicates(ignore_index=True)
    if report is not None:
        report.add("drop_duplicates", before, len(out), "exact duplicate rows (logging retries)")
    return out


def detect_bots(events: pd.DataFrame, z_threshold: float = 4.0, min_categories: int = 1) -> pd.DataFrame:
    """Flag users with an absurd volume of activity, robustly.

    For each user: events per active day, on a log scale, compared with all users through the
    robust z-score ``(x - median) / (1.4826 * MAD)``.  A user is a bot when the z-score exceeds
    ``z_threshold`` and the user touched at least ``min_categories`` categories.  Median and MAD are
    barely moved by the bots themselves, unlike a mean and standard deviation.

    Returns one row per user: ``user_id``, ``n_events``, ``active_days``, ``events_per_day``,
    ``n_categories``, ``robust_z``, ``is_bot``.
    """
    if len(events) == 0:
        raise ValueError("events is empty: cannot detect bots")
    day = events["ts"].dt.floor("D")
    g = pd.DataFrame({"user_id": events["user_id"].to_numpy(), "day": day.to_numpy(), "category": events["category"].to_numpy()})
    by_user = g.groupby("user_id").agg(
        n_events=("day", "size"), active_days=("day", "nunique"), n_categories=("category", "nunique")
    )
    by_user["events_per_day"] = by_user["n_events"] / by_user["active_days"]
    x = np.log(by_user["events_per_day"].to_numpy())
    med = np.median(x)
    mad = np.median(np.abs(x - med)) * 1.4826
    if mad == 0:
        mad = float(np.std(x)) or 1.0
    by_user["robust_z"] = (x - med) / mad
    by_user["is_bot"] = (by_user["robust_z"] > z_threshold) & (by_user["n_categories"] >= min_categories)
    return by_user.reset_index()[["user_id", "n_events", "active_days", "events_per_day", "n_categories", "robust_z", "is_bot"]]


def remove_users(events: pd.DataFrame, users, report: CleaningReport | None = None, reason: str = "removed users") -> pd.DataFrame:
    """Drop every event of ``users`` and record it in ``report``."""
    before = len(events)
    out = events[~events["user_id"].isin(list(users))].reset_index(drop=True)
    if report is not None:
        report.add("remove_bots", before, len(out), reason)
    return out


def event_days(ts: pd.Series, start_date=None) -> np.ndarray:
    """Day index of each timestamp: whole days since ``start_date`` (default: the first day seen)."""
    start = pd.Timestamp(start_date) if start_date is not None else ts.min().floor("D")
    days = (ts.dt.floor("D") - start).dt.days.to_numpy()
    if (days < 0).any():
        raise ValueError(f"{int((days < 0).sum())} event(s) happen before start_date {start.date()}")
    return days.astype("int64")


def detect_outage_days(panel: pd.DataFrame, window: int = 15, ratio: float = 0.25, min_pairs: int = 10) -> list[int]:
    """Days on which logging failed, found from the share of live pairs that logged anything.

    For each day, the share of pairs whose span (first to last activity) covers that day and that
    logged at least one event (impressions included).  A logging outage loses every event of the
    day, so the share collapses far below the centered rolling median of its neighbours, while the
    ramp-up at the start of the data or a trend in volume does not move a share.  A day is flagged
    when its share is below ``ratio`` times that median and at least ``min_pairs`` pairs are live.

    ``panel`` needs ``user_id``, ``category``, ``day`` and the count columns (zero-filled).
    """
    if len(panel) == 0:
        return []
    cols = [c for c in COUNT_COLUMNS if c in panel.columns]
    if not cols:
        raise KeyError(f"panel has none of the count columns {list(COUNT_COLUMNS)}")
    any_event = panel[cols].to_numpy().sum(axis=1) > 0
    key = [panel["user_id"].to_numpy(), panel["category"].to_numpy()]
    day = panel["day"].to_numpy()
    active_day = pd.Series(np.where(any_event, day, np.nan))
    first = active_day.groupby(key).transform("min").to_numpy()
    last = active_day.groupby(key).transform("max").to_numpy()
    live = (day >= first) & (day <= last)
    df = pd.DataFrame({"day": day[live], "hit": any_event[live]})
    per_day = df.groupby("day")["hit"].agg(["mean", "size"])
    per_day = per_day.reindex(range(int(per_day.index.min()), int(per_day.index.max()) + 1))
    share = per_day["mean"].fillna(0.0)
    med = share.rolling(window, center=True, min_periods=1).median()
    flagged = share[(share < ratio * med) & (per_day["size"].fillna(0) >= min_pairs)]
    return [int(d) for d in flagged.index]


def interest_score(counts: pd.DataFrame, weights: dict | None = None) -> np.ndarray:
    """Weighted sum of behaviour counts: ``sum_b weights[b] * counts[b]``.

    ``weights`` may name any subset of ``view``, ``click``, ``cart``, ``purchase`` with
    non-negative numbers (default :data:`DEFAULT_WEIGHTS`).
    """
    w = _check_weights(weights)
    missing = [b for b in w if b not in counts.columns]
    if missing:
        raise KeyError(f"counts is missing column(s) {missing} needed by the interest weights")
    return sum(float(w[b]) * counts[b].to_numpy(dtype=float) for b in w)


def expected_score(truth_daily: pd.DataFrame, weights: dict | None = None) -> np.ndarray:
    """The true interest in the units of the panel's ``interest`` column.

    ``sum_b weights[b] * expected_b``: the mean of the observed score on that day.
    """
    w = _check_weights(weights)
    cols = {b: f"expected_{b}" for b in w}
    missing = [c for c in cols.values() if c not in truth_daily.columns]
    if missing:
        raise KeyError(f"truth_daily is missing column(s) {missing}")
    return sum(float(w[b]) * truth_daily[c].to_numpy(dtype=float) for b, c in cols.items())


def _check_weights(weights: dict | None) -> dict:
    w = dict(DEFAULT_WEIGHTS if weights is None else weights)
    unknown = sorted(set(w) - set(BEHAVIOURS))
    if unknown:
        raise ValueError(f"unknown behaviour(s) {unknown} in interest weights; expected some of {list(BEHAVIOURS)}")
    if not w or any((not np.isfinite(v)) or v < 0 for v in w.values()) or sum(w.values()) <= 0:
        raise ValueError(f"interest weights must be non-negative, finite and not all zero, got {w}")
    return w


def _rolling(values: pd.Series, keys: list[pd.Series], window: int, center: bool, how: str) -> np.ndarray:
    if not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    s = pd.Series(np.asarray(values, dtype=float))
    grouped = s.groupby([np.asarray(k) for k in keys], sort=False)
    r = grouped.rolling(window, center=center, min_periods=1)
    res = r.mean() if how == "mean" else r.median()
    return res.reset_index(level=list(range(len(keys))), drop=True).sort_index().to_numpy()


def moving_mean(panel: pd.DataFrame, column: str = "interest", window: int = 7, center: bool = True) -> np.ndarray:
    """Moving mean of ``column`` within each (user, category) pair.

    ``center=True`` uses days on both sides (retrospective analysis only: it sees the future);
    ``center=False`` uses the trailing ``window`` days (causal, safe as a model input).
    Missing values (``NaN``) are skipped, not spread.
    """
    return _rolling(panel[column], [panel["user_id"], panel["category"]], window, center, "mean")


def moving_median(panel: pd.DataFrame, column: str = "interest", window: int = 3, center: bool = True) -> np.ndarray:
    """Moving median within each pair: robust to single-day spikes (see :func:`moving_mean`)."""
    return _rolling(panel[column], [panel["user_id"], panel["category"]], window, center, "median")


def smooth_interest(panel: pd.DataFrame, median_window: int = 3, mean_window: int = 7, center: bool = True) -> np.ndarray:
    """Median filter (kills spikes) then mean filter (averages Poisson noise) of ``interest``.

    Days with ``observed == False`` (logging outages) are skipped, so a lost day does not pull the
    curve down.
    """
    work = panel[["user_id", "category"]].copy()
    x = panel["interest"].to_numpy(dtype=float).copy()
    if "observed" in panel.columns:
        x[~panel["observed"].to_numpy(dtype=bool)] = np.nan
    work["x"] = x
    work["x"] = moving_median(work, "x", median_window, center) if median_window > 1 else x
    out = moving_mean(work, "x", mean_window, center) if mean_window > 1 else work["x"].to_numpy()
    # A window made only of unobserved days has no value: take the last one before it.
    if np.isnan(out).any():
        out = pd.Series(out).groupby([panel["user_id"].to_numpy(), panel["category"].to_numpy()]).ffill().fillna(0.0).to_numpy()
    return out


def build_panel(
    events: pd.DataFrame,
    weights: dict | None = None,
    start_date=None,
    end_day: int | None = None,
    until: str = "end",
    outage_days: list[int] | None = None,
    median_window: int = 3,
    mean_window: int = 7,
) -> pd.DataFrame:
    """Aggregate clean events to the daily panel (see :data:`PANEL_COLUMNS`).

    Parameters
    ----------
    until:
        ``"end"`` (default) zero-fills each pair from its first activity to ``end_day``, the last
        day of the observation window: a day without events after the last one is a real
        observation of low interest, and dropping those days would bias decay rates down.
        ``"last_activity"`` stops at the pair's last event instead.
    outage_days:
        Days on which logging failed.  ``None`` detects them with :func:`detect_outage_days`.
        On those days ``observed`` is False, counts are 0 (nothing was logged) and ``interest``
        is imputed from the smoothed neighbouring days.
    """
    if until not in ("end", "last_activity"):
        raise ValueError(f"unknown value until={until!r}; expected 'end' or 'last_activity'")
    if len(events) == 0:
        raise ValueError("events is empty: cannot build a panel")
    day = event_days(events["ts"], start_date)
    last_day = int(day.max()) if end_day is None else int(end_day)
    if end_day is not None and day.max() > end_day:
        raise ValueError(f"events run to day {int(day.max())}, after end_day={end_day}")
    keys = pd.DataFrame({"user_id": events["user_id"].to_numpy(), "category": events["category"].to_numpy(), "day": day})
    counts = (
        pd.crosstab([keys["user_id"], keys["category"], keys["day"]], events["event"].to_numpy())
        .reindex(columns=list(COUNT_COLUMNS), fill_value=0)
        .astype("int64")
    )
    counts.columns.name = None
    counts = counts.reset_index()
    # One contiguous day range per pair (vectorized expansion).
    span = counts.groupby(["user_id", "category"], sort=True)["day"].agg(["min", "max"]).reset_index()
    stop = span["max"].to_numpy() if until == "last_activity" else np.full(len(span), last_day)
    length = (stop - span["min"].to_numpy() + 1).astype(int)
    idx = np.repeat(np.arange(len(span)), length)
    offset = np.arange(len(idx)) - np.repeat(np.cumsum(length) - length, length)
    grid = pd.DataFrame(
        {
            "user_id": span["user_id"].to_numpy()[idx].astype("int64"),
            "category": span["category"].to_numpy()[idx].astype("int64"),
            "day": (span["min"].to_numpy()[idx] + offset).astype("int64"),
        }
    )
    panel = grid.merge(counts, on=["user_id", "category", "day"], how="left")
    for c in COUNT_COLUMNS:
        panel[c] = panel[c].fillna(0).astype("int64")

    if outage_days is None:
        outage_days = detect_outage_days(panel)
    panel["observed"] = ~panel["day"].isin(list(outage_days))
    panel["interest"] = interest_score(panel, weights)
    panel["interest_smooth"] = smooth_interest(panel, median_window, mean_window, center=True)
    lost = ~panel["observed"].to_numpy()
    if lost.any():
        panel.loc[lost, "interest"] = panel.loc[lost, "interest_smooth"]
    return panel[list(PANEL_COLUMNS)].sort_values(["user_id", "category", "day"], ignore_index=True)


@dataclass
class PreprocessResult:
    """What :func:`preprocess` returns: the panel and everything needed to audit it."""

    panel: pd.DataFrame
    report: CleaningReport
    bots: pd.DataFrame
    outage_days: list[int]
    events_clean: pd.DataFrame

    @property
    def bot_users(self) -> list[int]:
        return sorted(self.bots.loc[self.bots["is_bot"], "user_id"].tolist())


def preprocess(
    events: pd.DataFrame,
    weights: dict | None = None,
    start_date=None,
    end_day: int | None = None,
    bot_z: float = 4.0,
    until: str = "end",
    median_window: int = 3,
    mean_window: int = 7,
) -> PreprocessResult:
    """Run every cleaning step and build the panel; see the module docstring."""
    report = CleaningReport()
    ev = validate_events(events)
    report.add("validate", len(events), len(ev), "schema check (never removes rows; fails loudly instead)")
    ev = drop_duplicates(ev, report)
    bots = detect_bots(ev, z_threshold=bot_z)
    bot_users = bots.loc[bots["is_bot"], "user_id"].tolist()
    ev = remove_users(ev, bot_users, report, reason=f"{len(bot_users)} bot user(s): robust z of log(events/day) > {bot_z}")
    if len(ev) == 0:
        raise ValueError("no events left after cleaning: every user was flagged as a bot")
    panel = build_panel(ev, weights, start_date, end_day, until, None, median_window, mean_window)
    outages = sorted(int(d) for d in panel.loc[~panel["observed"], "day"].unique())
    report.add("aggregate", len(ev), len(panel), "events -> one row per (user, category, day), zero-filled")
    return PreprocessResult(panel=panel, report=report, bots=bots, outage_days=outages, events_clean=ev)


def log_transform(x):
    """``log(1 + x)``: defined at zero (no ``1e-8`` patch), ~x for small x, ~log x for large x.

    Negative values are an error, not a NaN.
    """
    arr = np.asarray(x, dtype=float)
    if (arr < 0).any():
        raise ValueError(f"log_transform got {int((arr < 0).sum())} negative value(s); counts and scores must be >= 0")
    return np.log1p(arr)


def _check_panel(panel: pd.DataFrame, columns: Iterable[str]) -> None:
    check_frame(panel, list(columns), "panel")



def _as_user_array(users, name: str = "users") -> np.ndarray:
    if isinstance(users, (str, bytes)) or np.isscalar(users):
        raise TypeError(f"{name} must be an array-like of user ids, got a scalar {users!r}")
    arr = np.asarray(users)
    if arr.ndim != 1:
        arr = arr.ravel()
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer user ids, got dtype {arr.dtype}")
    return np.unique(arr.astype(np.int64))


def _user_rows(panel: pd.DataFrame, users, name: str = "users") -> np.ndarray:
    """Boolean row mask of ``users`` in ``panel``; KeyError when some are not in the panel."""
    u = _as_user_array(users, name)
    panel_users = panel["user_id"].to_numpy()
    known = np.isin(u, panel_users)
    if not known.all():
        unknown = u[~known]
        raise KeyError(
            f"{unknown.size} of {u.size} {name} are not in the panel, e.g. {unknown[:5].tolist()}"
        )
    return np.isin(panel_users, u)



@dataclass(frozen=True)
class Standardizer:
    """``z = (log1p(x) - mean) / std`` per column, with the exact inverse.

    Attributes
    ----------
    columns : tuple of str
        Panel columns, in feature order.
    mean, std : numpy.ndarray
        Per-column mean and standard deviation of ``log1p(x)`` (float64, shape ``(n_columns,)``).
        A column that is constant on the fitting rows gets ``std = 1``.
    """

    columns: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        cols = tuple(str(c) for c in self.columns)
        mean = np.asarray(self.mean, dtype=np.float64).reshape(-1)
        std = np.asarray(self.std, dtype=np.float64).reshape(-1)
        if len(cols) == 0:
            raise ValueError("Standardizer needs at least one column")
        if mean.shape != (len(cols),) or std.shape != (len(cols),):
            raise ValueError(
                f"mean/std must have one entry per column ({len(cols)}), got {mean.shape} and {std.shape}"
            )
        if not (np.isfinite(mean).all() and np.isfinite(std).all()) or (std <= 0).any():
            raise ValueError("Standardizer mean must be finite and std finite and > 0")
        object.__setattr__(self, "columns", cols)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @property
    def n_features(self) -> int:
        """Number of columns."""
        return len(self.columns)

    def _values(self, values) -> np.ndarray:
        if isinstance(values, pd.DataFrame):
            missing = [c for c in self.columns if c not in values.columns]
            if missing:
                raise KeyError(f"missing column(s) {missing} to transform")
            return values[list(self.columns)].to_numpy(dtype=np.float64)
        arr = np.asarray(values, dtype=np.float64)
        if self.n_features > 1 and (arr.ndim == 0 or arr.shape[-1] != self.n_features):
            raise ValueError(
                f"last axis must have {self.n_features} entries {list(self.columns)}, got shape {arr.shape}"
            )
        return arr

    def transform(self, values) -> np.ndarray:
        """Raw values (DataFrame with ``columns`` or array ``[..., n_columns]``) -> scaled float64.

        With a single column, any array shape is accepted (e.g. targets ``[N, horizon]``).
        Negative raw values raise ``ValueError`` (log1p is undefined below -1 and counts are >= 0).
        """
        x = self._values(values)
        if (x < 0).any():
            raise ValueError("values to transform must be >= 0 (counts / interest scores)")
        return (np.log1p(x) - self.mean) / self.std

    def inverse_transform(self, z, clip: bool = False) -> np.ndarray:
        """Scaled values -> raw units: ``expm1(z * std + mean)`` (float64).

        ``clip=True`` clips at 0 (a model output can map slightly below 0; raw data never does).
        """
        z = np.asarray(z, dtype=np.float64)
        if self.n_features > 1 and (z.ndim == 0 or z.shape[-1] != self.n_features):
            raise ValueError(f"last axis must have {self.n_features} entries, got shape {z.shape}")
        out = np.expm1(z * self.std + self.mean)
        return np.maximum(out, 0.0) if clip else out

    def to_dict(self) -> dict:
        """Plain-Python form (lists, strings) for JSON or a ``weights_only`` checkpoint."""
        return {
            "columns": list(self.columns),
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "transform": "log1p_standardize",
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Standardizer":
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, dict):
            raise TypeError(f"expected a dict from Standardizer.to_dict(), got {type(d).__name__}")
        missing = [k for k in ("columns", "mean", "std") if k not in d]
        if missing:
            raise KeyError(f"Standardizer dict is missing key(s) {missing}")
        if d.get("transform", "log1p_standardize") != "log1p_standardize":
            raise ValueError(f"unknown transform {d['transform']!r}; expected 'log1p_standardize'")
        return cls(tuple(d["columns"]), np.asarray(d["mean"]), np.asarray(d["std"]))

    @classmethod
    def fit(cls, panel: pd.DataFrame, users, columns: Sequence[str]) -> "Standardizer":
        """Fit mean/std of ``log1p`` of ``columns`` on the rows of ``users`` only."""
        if isinstance(columns, str):
            columns = (columns,)
        columns = tuple(columns)
        if len(columns) == 0:
            raise ValueError("columns is empty")
        _check_panel(panel, ("user_id", *columns))
        rows = _user_rows(panel, users)
        x = panel.loc[rows, list(columns)].to_numpy(dtype=np.float64)
        if not np.isfinite(x).all():
            raise ValueError(f"non-finite values in panel columns {list(columns)}")
        if (x < 0).any():
            bad = [c for c, b in zip(columns, (x < 0).any(axis=0)) if b]
            raise ValueError(f"negative values in panel column(s) {bad}; counts must be >= 0")
        lx = np.log1p(x)
        mean = lx.mean(axis=0)
        std = lx.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)
        return cls(columns, mean, std)
