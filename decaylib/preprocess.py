"""From raw events to a clean daily interest panel.

Steps (each one reports how many rows it removed and why, nothing is dropped silently):

1. :func:`validate_events` checks the schema: required columns, integer ids, parseable
   timestamps, known event names, no missing values.
2. :func:`detect_time_outliers` finds events far away in time from the rest of the log (a single
   event 10 years out would stretch every pair's zero-filled days to 10 years); :func:`preprocess`
   drops them (or raises, or keeps them) and reports their dates, the days and panel rows they add.
3. :func:`drop_duplicates` removes exact duplicate rows (logging retries), except when the
   timestamps are dates only: then identical rows are real same-day repeats and are kept.
4. :func:`detect_bots` flags users whose volume is absurd with a robust rule (median/MAD of the
   log of events per active day, with a stated fallback when the MAD is 0); :func:`remove_users`
   drops them, unless they are more than ``max_bot_share`` of the users.
5. :func:`build_panel` aggregates to one row per (user, category, day), zero-filled from the pair's
   first activity to the end of the observation window, detects logging outages
   (:func:`detect_outage_days`), computes the interest score (:func:`interest_score`) and its
   smoothed version (moving median, then moving mean).  Its size is pairs x days, not events:
   :func:`estimate_panel_rows` computes it first, and :func:`preprocess` stops with
   :class:`PanelTooLargeError` above ``max_panel_rows``.

Where the data limit what can be estimated (the MAD is 0, a log shorter than the smoothing window,
most pairs active on a single day, far-off timestamps, a bot cap reached), :func:`preprocess` warns
with a :class:`~decaylib.utils.DataWarning` that gives the numbers and lists the messages in
``PreprocessResult.warnings``.

Transformations for models: :func:`log_transform` (``log1p``, no ``1e-8`` hack) and
:class:`Standardizer`, fitted on training users only.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from .io import EventSchemaError
from .synth import BEHAVIOURS, EVENT_TYPES
from .utils import DataWarning, check_choice, check_frame

__all__ = [
    "DEFAULT_WEIGHTS",
    "COUNT_COLUMNS",
    "PANEL_COLUMNS",
    "EventSchemaError",
    "CleaningReport",
    "PreprocessResult",
    "validate_events",
    "is_date_only",
    "drop_duplicates",
    "detect_bots",
    "detect_time_outliers",
    "estimate_panel_rows",
    "PanelTooLargeError",
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

    def add(self, step: str, before: int, after: int, reason: str, removes: bool = True) -> None:
        """Record a step; ``removes=False`` for a step that reshapes rows (the aggregation) rather
        than removing any: its ``removed`` is 0, not a negative difference."""
        removed = int(before - after) if removes else 0
        self.steps.append(
            {"step": step, "rows_before": int(before), "rows_after": int(after), "removed": removed, "reason": reason}
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
        # Strings or numbers: the loader's parser, so that Unix numbers without a unit are an error
        # that shows what each unit would give (never silently nanoseconds, i.e. 1970-01-01), and
        # bad strings are shown with their row numbers.
        from .io import _timestamps

        parsed, _ = _timestamps(ts, np.arange(len(ts)), None, None, False)
        ts = pd.Series(parsed, index=out.index)
    if getattr(ts.dt, "tz", None) is not None:
        ts = ts.dt.tz_convert("UTC").dt.tz_localize(None)
    out["ts"] = ts.astype("datetime64[ns]")
    ev = out["event"].astype(str)
    unknown = sorted(set(ev.unique()) - set(EVENT_TYPES))
    if unknown:
        raise EventSchemaError(f"column 'event' has unknown event name(s) {unknown[:5]}; expected one of {list(EVENT_TYPES)}")
    out["event"] = ev
    return out


def is_date_only(ts: pd.Series) -> bool:
    """Whether ``ts`` holds calendar dates only: at least two timestamps, every one at midnight.

    A single timestamp at midnight says nothing about the log (and a one-row log has no duplicates
    to remove), so it counts as a timestamp with a time of day.  Deterministic: no sampling, no
    threshold.  :func:`decaylib.io.load_events` detects the same thing when it reads a file and
    records it in ``EventLog.date_only``.
    """
    if not pd.api.types.is_datetime64_any_dtype(ts):
        raise TypeError(f"ts must be a datetime64 Series, got dtype {getattr(ts, 'dtype', type(ts).__name__)}")
    if len(ts) < 2:
        return False
    return bool((ts == ts.dt.normalize()).all())


def _check_date_only(date_only) -> None:
    if date_only is not None and not isinstance(date_only, (bool, np.bool_)):
        raise TypeError(f"date_only must be None (detect from the timestamps), True or False, got {date_only!r}")


def drop_duplicates(events: pd.DataFrame, report: CleaningReport | None = None, date_only: bool | None = False) -> pd.DataFrame:
    """Remove exact duplicate rows (same user, item, category, timestamp and event): logging retries.

    ``date_only``: whether the timestamps are calendar dates without a time of day.  Then two
    identical rows are two real events of the same day (a customer buying the same item twice),
    not one event logged twice, so nothing is removed; the step is still recorded in ``report``,
    with 0 removed and the number of identical rows kept.  ``None`` detects it with
    :func:`is_date_only` (every timestamp at midnight, at least two rows); ``True`` is taken as the
    caller's word (e.g. ``EventLog.date_only``) even if some timestamps have a time of day.
    """
    _check_date_only(date_only)
    before = len(events)
    detected = date_only is None
    if detected:
        date_only = is_date_only(events["ts"])
    if date_only:
        n_same = int(events.duplicated().sum())
        how = "detected: every timestamp is at midnight" if detected else "date_only=True"
        if report is not None:
            report.add(
                "drop_duplicates",
                before,
                before,
                f"timestamps are dates only ({how}): {n_same:,} identical row(s) kept as real same-day repeats "
                "(e.g. the same item bought twice a day), not logging retries",
            )
        return events.reset_index(drop=True)
    out = events.drop_duplicates(ignore_index=True)
    if report is not None:
        report.add("drop_duplicates", before, len(out), "exact duplicate rows (logging retries)")
    return out


#: Robust scale: 1.4826 * MAD estimates the standard deviation of normal data.
MAD_TO_SD = 1.4826
#: 1.2533 = sqrt(pi / 2): 1.2533 * mean absolute deviation estimates the standard deviation of normal data.
MEAN_AD_TO_SD = 1.2533
#: The smallest scale the MAD = 0 fallback may use, on the log(events per active day) scale.
#: ``log(10) / 4 = 0.576``: with the default ``z_threshold=4`` a user needs at least 10x the median
#: rate to be flagged.  It is about the robust scale of logs whose MAD is not 0 (0.60 on the shipped
#: Online Retail sample), so a log whose MAD collapses because most users share one rate is judged
#: no more harshly than an ordinary log.
MIN_FALLBACK_SCALE = float(np.log(10.0) / 4.0)


def _fmt_num(x: float) -> str:
    """18402.0 -> '18,402'; 12.0 -> '12'; 1.5 -> '1.5'; 0.333 -> '0.333'."""
    x = float(x)
    if not np.isfinite(x):
        return str(x)
    if abs(x - round(x)) < 1e-9 or abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.3g}"


def _fmt_bytes(n: float) -> str:
    """1.5e9 -> '1.5 GB'; 2.3e6 -> '2.3 MB'; 5e3 -> '5.0 kB'."""
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:,.1f} {unit}"
    return f"{int(n)} bytes"


def _pct(share: float) -> str:
    """0.087 -> '8.7%'; 0.73 -> '73%'; 0.99996 -> '99.996%' (never rounds to 0% or 100% falsely)."""
    p = 100.0 * float(share)
    if abs(p - round(p)) < 1e-9:
        return f"{p:.0f}%"
    digits = 0 if p >= 10 else 1
    while digits < 6 and (round(p, digits) in (0.0, 100.0)):
        digits += 1
    return f"{p:.{digits}f}%"


def detect_bots(events: pd.DataFrame, z_threshold: float = 4.0, min_categories: int = 1) -> pd.DataFrame:
    """Flag users with an absurd volume of activity, robustly.

    For each user: events per active day, on a log scale, compared with all users through the
    robust z-score ``(x - median) / (1.4826 * MAD)``.  A user is a bot when the z-score exceeds
    ``z_threshold`` and the user touched at least ``min_categories`` categories.  Median and MAD are
    barely moved by the bots themselves, unlike a mean and standard deviation.

    **When MAD is 0** (at least half of the users have exactly the median rate, e.g. one event on
    each active day, common in purchase logs), the robust scale is undefined.  The rule then uses
    ``max(1.2533 * mean |x - median|, MIN_FALLBACK_SCALE)`` and says so with a
    :class:`~decaylib.utils.DataWarning` (share of users at the median, the scale used).  The mean
    absolute deviation around the median is, like the MAD, centred on the median, and an outlier
    pulls it linearly, not quadratically as it would a standard deviation; the floor
    :data:`MIN_FALLBACK_SCALE` (``log(10) / 4``) keeps the point mass at the median from shrinking
    the scale so far that users with a few events a day become "bots" (with ``z_threshold=4`` a
    flagged user has at least 10x the median rate).  When every user has the same rate, no one is
    flagged.

    Returns one row per user: ``user_id``, ``n_events``, ``active_days``, ``events_per_day``,
    ``n_categories``, ``robust_z``, ``is_bot``, ``ratio_to_median`` (events per active day over the
    median user's) and ``reason`` (a sentence for flagged users, ``""`` for the others, e.g.
    ``"18,402 events per active day against a median of 12 (1,534x; robust z 9.1 > 4)"``).
    ``attrs`` holds ``median_events_per_day``, ``scale``, ``scale_rule`` (``"mad"``,
    ``"mean_abs_dev"``, ``"floor"`` or ``"constant"``) and ``warnings`` (the messages warned).
    """
    if len(events) == 0:
        raise ValueError("events is empty: cannot detect bots")
    if isinstance(z_threshold, bool) or not isinstance(z_threshold, (int, float, np.integer, np.floating)) or not z_threshold > 0:
        raise ValueError(f"z_threshold must be a positive number (np.inf flags no one), got {z_threshold!r}")
    day = events["ts"].dt.floor("D")
    g = pd.DataFrame({"user_id": events["user_id"].to_numpy(), "day": day.to_numpy(), "category": events["category"].to_numpy()})
    by_user = g.groupby("user_id").agg(
        n_events=("day", "size"), active_days=("day", "nunique"), n_categories=("category", "nunique")
    )
    return _bot_table(by_user, z_threshold, min_categories)


def _bot_table(by_user: pd.DataFrame, z_threshold: float = 4.0, min_categories: int = 1) -> pd.DataFrame:
    """:func:`detect_bots` from its per-user inputs (index ``user_id``, sorted; ``n_events``,
    ``active_days``, ``n_categories``): the part shared with the SQL engines (:mod:`decaylib.engine`)."""
    by_user = by_user[["n_events", "active_days", "n_categories"]].copy()
    by_user["events_per_day"] = by_user["n_events"] / by_user["active_days"]
    x = np.log(by_user["events_per_day"].to_numpy())
    med = float(np.median(x))
    mad = float(np.median(np.abs(x - med))) * MAD_TO_SD
    notes = []
    rule = "mad"
    if mad <= 1e-12:
        at_med = float(np.isclose(x, med, rtol=0.0, atol=1e-12).mean())
        mean_ad = float(np.mean(np.abs(x - med))) * MEAN_AD_TO_SD
        if mean_ad <= 1e-12:
            mad, rule = 1.0, "constant"
            how = "every user has the same rate, so no one is flagged"
        else:
            mad = max(mean_ad, MIN_FALLBACK_SCALE)
            rule = "mean_abs_dev" if mean_ad >= MIN_FALLBACK_SCALE else "floor"
            how = (
                f"used the scale max(1.2533 x mean absolute deviation around the median = {mean_ad:.3f}, "
                f"floor log(10)/4 = {MIN_FALLBACK_SCALE:.3f}) = {mad:.3f}, so a bot needs at least "
                f"{_fmt_num(np.exp(z_threshold * mad))}x the median rate"
            )
        notes.append(
            f"detect_bots: the MAD of log(events per active day) is 0: {_pct(at_med)} of {len(x):,} users have "
            f"exactly the median rate ({_fmt_num(np.exp(med))} event(s) per active day), so the robust scale is "
            f"undefined; {how}"
        )
    z = (x - med) / mad
    by_user["robust_z"] = z
    by_user["is_bot"] = (by_user["robust_z"] > z_threshold) & (by_user["n_categories"] >= min_categories)
    median_rate = float(np.exp(med))
    by_user["ratio_to_median"] = by_user["events_per_day"] / median_rate
    reason = np.full(len(by_user), "", dtype=object)
    for i in np.flatnonzero(by_user["is_bot"].to_numpy()):
        r = by_user.iloc[i]
        reason[i] = (
            f"{_fmt_num(r['events_per_day'])} events per active day against a median of {_fmt_num(median_rate)} "
            f"({_fmt_num(r['ratio_to_median'])}x; robust z {r['robust_z']:.1f} > {_fmt_num(z_threshold)})"
        )
    by_user["reason"] = reason
    out = by_user.reset_index()[
        ["user_id", "n_events", "active_days", "events_per_day", "n_categories", "robust_z", "is_bot", "ratio_to_median", "reason"]
    ]
    for msg in notes:
        warnings.warn(msg, DataWarning, stacklevel=2)
    out.attrs = {"median_events_per_day": median_rate, "scale": float(mad), "scale_rule": rule, "warnings": notes}
    return out


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


def _daily_counts(keys: pd.DataFrame, event: np.ndarray) -> pd.DataFrame:
    """Events per (user, category, day) and event type: one row per active (pair, day), sorted.

    The same table as ``pd.crosstab(keys, event)`` restricted to :data:`COUNT_COLUMNS` (int64, in
    that order), built with a ``groupby(...).size()``, which is several times faster.
    """
    work = keys.assign(event=event)
    counts = (
        work.groupby(["user_id", "category", "day", "event"], sort=True)
        .size()
        .unstack("event", fill_value=0)
        .reindex(columns=list(COUNT_COLUMNS), fill_value=0)
        .astype("int64")
    )
    counts.columns.name = None
    return counts.reset_index()


def _pair_spans(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """First and last event day of each (user, category) pair, as day numbers since 1970-01-01."""
    day = events["ts"].to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype("int64")
    g = pd.DataFrame({"u": events["user_id"].to_numpy(), "c": events["category"].to_numpy(), "d": day})
    span = g.groupby(["u", "c"], sort=False)["d"].agg(["min", "max"])
    return span["min"].to_numpy(), span["max"].to_numpy()


def estimate_panel_rows(events: pd.DataFrame, start_date=None, end_day: int | None = None, until: str = "end") -> int:
    """Rows :func:`build_panel` would make from ``events``, computed per pair (no panel is built).

    The panel has one row per pair and day from the pair's first event to the end of the window
    (``until="end"``: the last event day of the log, or ``end_day``) or to its own last event
    (``until="last_activity"``), so its size is pairs x days, not events: a log where most pairs
    are active once and the window is long gives many rows per event.
    """
    check_choice("until", until, ("end", "last_activity"))
    if len(events) == 0:
        return 0
    first, last = _pair_spans(events)
    return _rows_from_spans(first, last, start_date, end_day, until)


def _rows_from_spans(first: np.ndarray, last: np.ndarray, start_date=None, end_day: int | None = None,
                     until: str = "end") -> int:
    """:func:`estimate_panel_rows` from each pair's first and last event day (days since 1970-01-01)."""
    if len(first) == 0:
        return 0
    if until == "last_activity":
        stop = last
    else:
        day0 = int(first.min()) if start_date is None else _epoch_day(start_date)
        stop = np.full(len(first), int(last.max()) if end_day is None else day0 + int(end_day))
    return int(np.maximum(stop - first + 1, 0).sum())


def _epoch_day(date) -> int:
    """The day of ``date`` as whole days since 1970-01-01."""
    return int(np.datetime64(pd.Timestamp(date).floor("D").date(), "D").astype("int64"))


#: Bytes per panel row: 3 id/day columns, 5 counts (int64), 2 scores (float64), ``observed`` (bool).
PANEL_ROW_BYTES = 8 * (3 + len(COUNT_COLUMNS) + 2) + 1


class PanelTooLargeError(ValueError):
    """The daily panel would be too large to build; the message gives its size and what helps."""


def detect_time_outliers(ts: pd.Series, max_gap_days: int = 90, max_share: float = 0.01) -> pd.Series:
    """Events far away in time from the rest of the log (a clock error, a test event, a default date).

    Rule: sort the distinct event days and cut them into blocks wherever two consecutive event days
    are more than ``max_gap_days`` apart.  The block holding the most events (the earliest on a
    tie) is the main span.  Every other block holding less than ``max_share`` of all events is an
    outlier; a block holding more is real data (e.g. a second season) and is kept.  Without such a
    gap nothing is flagged, however long the log.

    Returns a boolean Series aligned with ``ts`` (named ``time_outlier``).
    """
    if not isinstance(ts, pd.Series) or not pd.api.types.is_datetime64_any_dtype(ts):
        raise TypeError(f"ts must be a datetime64 Series, got {type(ts).__name__} {getattr(ts, 'dtype', '')}")
    if isinstance(max_gap_days, bool) or not isinstance(max_gap_days, (int, np.integer)) or max_gap_days < 1:
        raise ValueError(f"max_gap_days must be an int >= 1, got {max_gap_days!r}")
    if isinstance(max_share, bool) or not isinstance(max_share, (int, float, np.floating)) or not 0 < max_share < 0.5:
        raise ValueError(f"max_share (max_outlier_share) must be a number in (0, 0.5), got {max_share!r}")
    if ts.isna().any():
        raise ValueError(f"ts has {int(ts.isna().sum())} missing timestamp(s)")
    day = ts.to_numpy(dtype="datetime64[ns]").astype("datetime64[D]").astype("int64")
    out = np.zeros(len(day), dtype=bool)
    if len(day):
        days, counts = np.unique(day, return_counts=True)
        bad = _time_outlier_days(days, counts, max_gap_days, max_share)
        if len(bad):
            out = np.isin(day, bad)
    return pd.Series(out, index=ts.index, name="time_outlier")


def _time_outlier_days(days: np.ndarray, counts: np.ndarray, max_gap_days: int, max_share: float) -> np.ndarray:
    """The rule of :func:`detect_time_outliers` on the distinct event days (sorted) and their event
    counts: the outlying days (shared with the SQL engines, which count events per day)."""
    days = np.asarray(days, dtype=np.int64)
    counts = np.asarray(counts, dtype=np.int64)
    block = np.concatenate([[0], np.cumsum(np.diff(days) > max_gap_days)])
    per_block = np.bincount(block, weights=counts)
    main = int(np.argmax(per_block))
    bad = (per_block < max_share * int(counts.sum())) & (np.arange(len(per_block)) != main)
    return days[bad[block]] if bad.any() else days[:0]


def _describe_time_outliers(ev: pd.DataFrame, mask: np.ndarray, start_date, end_day, until, max_gap_days) -> str:
    """What the far-off events are and what they would do to the panel (dates, span, rows)."""
    day = ev["ts"].dt.floor("D")
    out_days = day[mask].value_counts().sort_index()
    kept = ev[~mask]
    # A window the caller fixed is the same with or without them; otherwise it follows the events
    # (for the far-off events to be kept, a fixed window must contain them).
    rows_kept = estimate_panel_rows(kept, start_date, end_day, until)
    rows_all = estimate_panel_rows(ev, start_date, end_day, until)
    return _time_outlier_text(out_days, kept["ts"].min().floor("D"), kept["ts"].max().floor("D"), day.min(), day.max(),
                              float(mask.mean()), rows_all, rows_kept, max_gap_days)


def _time_outlier_text(out_days: pd.Series, k0, k1, d0, d1, share_out: float, rows_all: int, rows_kept: int,
                       max_gap_days: int) -> str:
    """The sentence of :func:`_describe_time_outliers` from its numbers (``out_days``: events per
    outlying day, a Series indexed by day Timestamps, sorted)."""
    shown = ", ".join(f"{d.date()} ({n:,})" for d, n in out_days.head(5).items())
    if len(out_days) > 5:
        shown += f" and {len(out_days) - 5:,} more day(s)"
    span_kept = (k1 - k0).days + 1
    span_all = (d1 - d0).days + 1
    return (
        f"{int(out_days.sum()):,} event(s) lie more than max_gap_days={max_gap_days} days from the main span of the log: "
        f"{shown}; the main span is {k0.date()} to {k1.date()} ({span_kept:,} days, {_pct(1 - share_out)} of events); "
        f"with them the log would span {span_all:,} days (+{span_all - span_kept:,}) and the panel would have about "
        f"{rows_all:,} rows instead of {rows_kept:,} (+{rows_all - rows_kept:,}, {rows_all / max(rows_kept, 1):.1f}x)"
    )


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
    return _outage_rule(per_day, window, ratio, min_pairs)


def _outage_rule(per_day: pd.DataFrame, window: int = 15, ratio: float = 0.25, min_pairs: int = 10) -> list[int]:
    """The rule of :func:`detect_outage_days` from ``per_day`` (index: the days with a live pair,
    sorted; ``mean``: share of live pairs with an event, ``size``: live pairs), shared with the SQL
    engines, which count live and active pairs per day without a panel."""
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
    out = np.zeros(len(counts))
    tmp = np.empty(len(counts))
    for b in w:  # the same sums as sum(w[b] * counts[b]), in place (two row-sized arrays in all)
        col = counts[b]
        tmp[:] = col.to_numpy() if isinstance(col.dtype, np.dtype) else col.to_numpy(dtype=float)
        tmp *= float(w[b])
        out += tmp
    return out


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
    """Rolling mean or median within groups, NaN skipped, at least one valid value (else NaN).

    The same windows as ``groupby(keys).rolling(window, center=center, min_periods=1)`` (a
    centred window of ``w`` rows takes ``(w-1)//2`` rows after and the rest before), computed
    with whole-array shifts instead of one pandas call per group: ~10x faster on a panel of
    a million rows, which matters for the big-log path.
    """
    if not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return x.copy()
    return _by_groups(_rolling_grouped, x, keys, window, center, how)


def _contiguous_groups(keys: list, n: int) -> tuple[np.ndarray, np.ndarray | None]:
    """``(gid, order)``: a group number per row and, unless each group's rows are already
    contiguous (``order is None``), the stable order that brings them together."""
    gid = _sorted_group_ids([np.asarray(k) for k in keys], n)
    if gid is not None:  # rows sorted by the keys (a panel): groups numbered by a scan, no hashing
        return gid, None
    gid = np.zeros(n, dtype=np.int64)  # one integer per group (mixed radix over the keys' codes)
    radix = 1
    for k in keys:
        codes, uniques = pd.factorize(np.asarray(k), use_na_sentinel=False)
        radix *= len(uniques) + 1
        if radix >= 2**62:  # too many key combinations for one integer: number the groups instead
            gid = pd.MultiIndex.from_arrays([np.asarray(k) for k in keys]).factorize()[0].astype(np.int64)
            break
        gid = gid * (len(uniques) + 1) + codes
    # Numbered by first appearance, the groups come out non-decreasing exactly when each group's
    # rows are contiguous: then no reordering is needed.
    gid = pd.factorize(gid)[0]
    if bool(np.all(gid[1:] >= gid[:-1])):
        return gid, None
    return gid, np.argsort(gid, kind="stable")  # rows of a group together, in their original order


def _by_groups(kernel, x: np.ndarray, keys: list, *args) -> np.ndarray:
    """``kernel(x, gid, *args)`` (a function of rows whose groups are contiguous) on rows in any
    order: applied in group order, returned in the rows' order."""
    gid, order = _contiguous_groups(keys, x.size)
    if order is None:
        return kernel(x, gid, *args)
    out = np.empty(x.size)
    out[order] = kernel(x[order], gid[order], *args)
    return out


def _sorted_pairs(u: np.ndarray, c: np.ndarray, d: np.ndarray):
    """``(pair of each row, first row of each pair)`` when the rows are sorted by (``u``, ``c``,
    ``d``), integers; ``(None, None)`` otherwise. Only byte-per-row masks besides the pair ids."""
    n = len(u)
    if n < 2 or not all(a.dtype.kind in "iu" for a in (u, c, d)):
        return None, None
    if np.any(u[1:] < u[:-1]):
        return None, None
    same = u[1:] == u[:-1]
    if np.any(same & (c[1:] < c[:-1])):
        return None, None
    same &= c[1:] == c[:-1]  # the same pair as the row before
    if np.any(same & (d[1:] < d[:-1])):
        return None, None
    new = ~same
    pair = np.zeros(n, dtype=np.int64)
    np.cumsum(new, out=pair[1:])
    return pair, np.flatnonzero(np.r_[True, new])


def _sorted_group_ids(arrays: list[np.ndarray], n: int) -> np.ndarray | None:
    """Group numbers 0, 1, ... by a linear scan when the rows are sorted by the (numeric) keys;
    ``None`` when they are not (or a key is not numeric)."""
    if n < 2 or not all(a.dtype.kind in "iu" for a in arrays):
        return None
    prefix_equal = np.ones(n - 1, dtype=bool)
    for a in arrays:
        up, same = a[1:] > a[:-1], a[1:] == a[:-1]
        if np.any(prefix_equal & ~up & ~same):
            return None
        prefix_equal &= same
    gid = np.zeros(n, dtype=np.int64)
    np.cumsum(~prefix_equal, out=gid[1:])
    return gid


def _rolling_grouped(xs: np.ndarray, gs: np.ndarray, window: int, center: bool, how: str,
                     overwrite: bool = False) -> np.ndarray:
    """:func:`_rolling` on rows whose groups ``gs`` are contiguous (each group's rows in order).

    Written to allocate few row-sized float arrays (in-place ufuncs with ``out=``/``where=``):
    on a million-row panel each fresh array costs page faults, more than the arithmetic.
    ``overwrite``: ``xs`` is scratch (the mean may reuse it).
    """
    n = xs.size
    right = (window - 1) // 2 if center else 0
    left = window - 1 - right
    offsets = range(-left, right + 1)
    if how == "mean":
        valid = ~np.isnan(xs)
        if overwrite:
            x0 = xs
            x0[~valid] = 0.0
        else:
            x0 = np.where(valid, xs, 0.0)
        total = np.zeros(n)
        count = np.zeros(n)
        for o in offsets:  # in this order, so the sums are the same floating-point sums every time
            if o == 0:
                total += x0
                count += valid
            elif abs(o) < n:
                k = abs(o)
                dst, src = (slice(None, -k), slice(k, None)) if o > 0 else (slice(k, None), slice(None, -k))
                same = gs[src] == gs[dst]  # the row o away is in the same group
                # adds only where it is (skipping "+ 0.0" changes no sum: a sum from +0.0 is never -0.0)
                np.add(total[dst], x0[src], out=total[dst], where=same)
                same &= valid[src]
                np.add(count[dst], 1.0, out=count[dst], where=same)
        empty = count == 0
        np.divide(total, count, out=total, where=~empty)
        total[empty] = np.nan
        res = total
    elif window == 3:  # the default median filter: a sorting network instead of a row-wise sort
        # NaN where missing; a is always a fresh array (its offset is -1 or -2), overwritten below
        a, b, c = (xs if o == 0 else _shifted_values(xs, gs, o) for o in offsets)
        with np.errstate(invalid="ignore"):
            lo = np.fmin(a, b)  # the smallest and largest of the values present (NaN if none)
            np.fmin(lo, c, out=lo)
            hi = np.fmax(a, b)
            np.fmax(hi, c, out=hi)
            t = np.maximum(a, b)  # the median of three, max(min(a, b), min(max(a, b), c)), in a;
            np.minimum(a, b, out=a)  # NaN when any of the three is missing
            np.minimum(t, c, out=t)
            np.maximum(a, t, out=a)
            del t
            lo += hi  # two values: their mean; one: 0.5 * (v + v) == v exactly; none: NaN
            lo *= 0.5
        np.copyto(a, lo, where=np.isnan(a))
        res = a
    else:
        cols = np.empty((n, window))
        for j, o in enumerate(offsets):
            cols[:, j] = xs if o == 0 else _shifted_values(xs, gs, o)
        cols.sort(axis=1)  # NaN last
        k = (~np.isnan(cols)).sum(axis=1)
        lo = np.take_along_axis(cols, np.maximum((k - 1) // 2, 0)[:, None], axis=1)[:, 0]
        hi = np.take_along_axis(cols, np.maximum(k // 2, 0)[:, None], axis=1)[:, 0]
        res = np.where(k > 0, 0.5 * (lo + hi), np.nan)
    return res


def _shifted_values(xs: np.ndarray, gs: np.ndarray, o: int) -> np.ndarray:
    """``xs`` shifted by ``o`` rows (``o != 0``), NaN where that row is outside the group."""
    n = xs.size
    v = np.full(n, np.nan)
    k = abs(o)
    if k < n:
        dst, src = (slice(None, -k), slice(k, None)) if o > 0 else (slice(k, None), slice(None, -k))
        v[dst] = xs[src]
        v[dst][gs[src] != gs[dst]] = np.nan
    return v


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
    x = panel["interest"].to_numpy(dtype=float).copy()
    if "observed" in panel.columns:
        x[~panel["observed"].to_numpy(dtype=bool)] = np.nan
    # pairs numbered once for both filters (by a scan when the panel is in (user, category, day) order)
    keys = [panel["user_id"].to_numpy(), panel["category"].to_numpy()]
    return _by_groups(_smooth_grouped, x, keys, median_window, mean_window, center)


def _smooth_grouped(x: np.ndarray, gid: np.ndarray, median_window: int, mean_window: int, center: bool) -> np.ndarray:
    """:func:`smooth_interest` of ``x`` (NaN on unobserved days) whose pairs ``gid`` are contiguous
    and in day order: the same filters, the same floating-point sums."""
    for w in (median_window, mean_window):
        if not isinstance(w, (int, np.integer)) or w < 1:
            raise ValueError(f"window must be a positive integer, got {w!r}")
    if x.size == 0:
        return x.copy()
    if median_window > 1:
        x = _rolling_grouped(x, gid, median_window, center, "median")  # a fresh array: scratch below
    out = _rolling_grouped(x, gid, mean_window, center, "mean", overwrite=median_window > 1) if mean_window > 1 else x
    if np.isnan(out).any():  # a window made only of unobserved days: the last value before it
        out = pd.Series(out).groupby(gid).ffill().fillna(0.0).to_numpy()
    elif out is x:  # no filter ran: never hand back the caller's array
        out = x.copy()
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
    counts = _daily_counts(keys, events["event"].to_numpy())
    return _panel_from_counts(counts, last_day, until, outage_days, weights, median_window, mean_window)


def _panel_from_counts(counts, last_day: int, until: str = "end", outage_days=None, weights=None,
                       median_window: int = 3, mean_window: int = 7) -> pd.DataFrame:
    """:func:`build_panel` from the daily counts (one row per active pair-day; a DataFrame or a
    mapping of column name -> array, the count columns integers): zero-fill, outages, interest
    and its smoothing. The SQL engines (:mod:`decaylib.engine`) compute ``counts`` (sorted) and
    hand it here, so both paths build one panel."""
    # One contiguous day range per pair (vectorized expansion), pairs sorted by (user, category):
    # the grid comes out in the panel's order, and each active pair-day is placed by position.
    # Row-sized arrays are created sparingly here: on a million-row panel each fresh one costs page
    # faults (with NumPy's transparent huge pages on a fragmented heap, more than the arithmetic).
    u, c, d = (np.asarray(counts[k]) for k in ("user_id", "category", "day"))
    pair_of_row, head = _sorted_pairs(u, c, d)
    if pair_of_row is not None:  # sorted (the SQL engines): pairs by a scan
        tail = np.r_[head[1:], len(u)] - 1
        span_u, span_c, span_min, span_max = u[head], c[head], d[head], d[tail]
    else:
        grouped = pd.DataFrame({"user_id": u, "category": c, "day": d}).groupby(["user_id", "category"], sort=True)["day"]
        pair_of_row = grouped.ngroup().to_numpy()
        span = grouped.agg(["min", "max"]).reset_index()
        span_u, span_c = span["user_id"].to_numpy(), span["category"].to_numpy()
        span_min, span_max = span["min"].to_numpy(), span["max"].to_numpy()
    stop = (span_max if until == "last_activity" else np.full(len(span_min), last_day)).astype(np.int64)
    first = span_min.astype(np.int64)
    length = stop - first + 1
    starts = np.cumsum(length) - length
    idx = np.repeat(np.arange(len(span_min)), length)  # the pair of each panel row
    n = len(idx)
    day = np.ones(n, dtype=np.int64)  # +1 a row, and at each pair's first row a jump to its first day
    day[starts] = first - np.r_[0, stop[:-1]]
    np.cumsum(day, out=day)
    cols = {"user_id": np.repeat(span_u.astype(np.int64, copy=False), length),
            "category": np.repeat(span_c.astype(np.int64, copy=False), length), "day": day}
    pos = (starts - first)[pair_of_row]  # the panel row of each active pair-day
    pos += d
    seen = np.zeros(n, dtype=bool)
    seen[pos] = True
    if np.count_nonzero(seen) != pos.size:  # two rows landed on one cell
        raise ValueError("daily counts have more than one row for the same (user_id, category, day)")
    for name in COUNT_COLUMNS:
        col = np.zeros(n, dtype=np.int64)
        col[pos] = np.asarray(counts[name]).astype(np.int64, copy=False)
        cols[name] = col

    if outage_days is None:
        outage_days = detect_outage_days(pd.DataFrame(cols))
    observed = ~np.isin(day, np.asarray(list(outage_days), dtype=np.int64))
    interest = interest_score(pd.DataFrame({b: cols[b] for b in BEHAVIOURS}, copy=False), weights)
    x = interest if observed.all() else np.where(observed, interest, np.nan)  # unobserved days skipped
    smooth = _smooth_grouped(x, idx, median_window, mean_window, True)  # idx: the pair of each row, contiguous
    lost = ~observed
    if lost.any():
        interest[lost] = smooth[lost]
    cols.update(interest=interest, interest_smooth=smooth, observed=observed)
    # In (user_id, category, day) order, index 0..n-1; copy=False: the frame takes these fresh arrays
    # as they are (one block each) instead of copying the integer columns into one 2-D block.
    return pd.DataFrame({k: cols[k] for k in PANEL_COLUMNS}, copy=False)


@dataclass
class PreprocessResult:
    """What :func:`preprocess` returns: the panel and everything needed to audit it.

    ``bots`` is :func:`detect_bots`' table plus ``removed`` (False for flagged users that were kept
    because they were more than ``max_bot_share`` of the users).  ``warnings`` lists the
    :class:`~decaylib.utils.DataWarning` messages raised (for notebooks to print), ``rows_per_event``
    the panel rows per clean event, ``time_outliers`` the far-off events found (dropped or kept),
    ``date_only`` whether the timestamps were treated as dates only, ``start_date`` the date of
    day 0, ``engine`` the engine that ran, ``n_events_clean`` the clean events (also when
    ``events_clean`` was not kept), ``stats`` the per-pair sufficient statistics when
    :func:`decaylib.engine.preprocess_stats` computed them (``panel`` is then ``None``).
    """

    panel: pd.DataFrame
    report: CleaningReport
    bots: pd.DataFrame
    outage_days: list[int]
    events_clean: pd.DataFrame
    warnings: list[str] = field(default_factory=list)
    rows_per_event: float = float("nan")
    time_outliers: pd.DataFrame | None = None
    date_only: bool = False
    start_date: pd.Timestamp | None = None
    engine: str = "pandas"
    n_events_clean: int | None = None
    stats: pd.DataFrame | None = None

    @property
    def bot_users(self) -> list[int]:
        """Users removed as bots (flagged users kept by the ``max_bot_share`` cap are not in it)."""
        col = "removed" if "removed" in self.bots.columns else "is_bot"
        return sorted(int(u) for u in self.bots.loc[self.bots[col], "user_id"])

    @property
    def flagged_bots(self) -> list[int]:
        """Every user the bot rule flagged, removed or not."""
        return sorted(int(u) for u in self.bots.loc[self.bots["is_bot"], "user_id"])

    def bot_reasons(self, display=None) -> dict[int, str]:
        """``{user_id: sentence}`` for every flagged user, e.g.
        ``"user 53 was removed as a bot: 18,402 events per active day against a median of 12 (...)"``.

        ``display``: a callable or mapping from the user code to the id to show (e.g. the user's own
        ids from :class:`decaylib.io.EventLog`); default the code itself.
        """
        show = display if callable(display) else (display.__getitem__ if display is not None else (lambda u: u))
        out = {}
        flagged = self.bots[self.bots["is_bot"]]
        removed = flagged["removed"] if "removed" in flagged.columns else pd.Series(True, index=flagged.index)
        for (_, r), gone in zip(flagged.iterrows(), removed):
            what = "was removed as a bot" if gone else "was flagged as a bot but kept (more flagged users than max_bot_share)"
            out[int(r["user_id"])] = f"user {show(int(r['user_id']))} {what}: {r['reason']}"
        return out


def _warn(msg: str, store: list[str], stacklevel: int = 3) -> None:
    store.append(msg)
    warnings.warn(msg, DataWarning, stacklevel=stacklevel)


def _check_share(name: str, value, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not 0 <= value <= 1:
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be a share between 0 and 1{extra}, got {value!r}")


#: Share of pairs with a single active day above which :func:`preprocess` warns.
SPARSE_PAIR_SHARE = 0.5
#: The ``max_bot_share`` cap never stops the removal of this many flagged users: in a tiny log one
#: or two bots are a large share of users and still bots.
MIN_REMOVABLE_BOTS = 2


def preprocess(
    events,
    weights: dict | None = None,
    start_date=None,
    end_day: int | None = None,
    bot_z: float = 4.0,
    until: str = "end",
    median_window: int = 3,
    mean_window: int = 7,
    date_only: bool | None = None,
    max_bot_share: float | None = 0.05,
    time_outliers: str = "drop",
    max_gap_days: int = 90,
    max_outlier_share: float = 0.01,
    max_panel_rows: int | None = 20_000_000,
    *,
    engine: str = "auto",
    keep_events: bool | None = None,
    progress: bool | None = None,
    con=None,
) -> PreprocessResult:
    """Run every cleaning step and build the panel; see the module docstring.

    ``events``: a DataFrame with the columns of the data contract, or a path to Parquet or CSV
    files with them (a file, a glob such as ``"events/*.parquet"`` or a folder).

    Parameters (beyond :func:`build_panel`'s)
    ------------------------------------------
    date_only:
        Timestamps are dates without a time of day: identical rows are kept as same-day repeats
        (:func:`drop_duplicates`).  ``None`` detects it (every timestamp at midnight); pass
        ``EventLog.date_only`` for a loaded log.
    max_bot_share:
        The largest share of *users* the bot rule may remove (default 5%; never fewer than
        :data:`MIN_REMOVABLE_BOTS` users).  Bots are a few users with an absurd volume, so they may
        hold a large share of the events (half of them in the simulator) but not of the users; when
        the rule flags more users than that, it is cutting into ordinary heavy users rather than
        isolating outliers, so nobody is removed, a :class:`~decaylib.utils.DataWarning` gives the
        numbers and the step is recorded with 0 removed.  ``None``: no cap.
    time_outliers:
        What to do with events far from the rest of the log (:func:`detect_time_outliers` with
        ``max_gap_days`` and ``max_outlier_share``): ``"drop"`` (default) removes them,
        ``"error"`` raises :class:`EventSchemaError`, ``"keep"`` keeps them.  Any found is a
        DataWarning with their dates, the days and the panel rows they add, and (unless
        ``"error"``) a ``time_outliers`` step in the report.  When ``start_date`` / ``end_day`` are
        not given, the window follows the kept events.
    max_panel_rows:
        Stop with :class:`PanelTooLargeError` before building a panel with more rows (pairs x days;
        81 bytes a row, a few times that while it is built); ``None``: no limit.
    engine:
        Where the event-sized steps run: ``"pandas"`` (in memory, the teaching path),
        ``"duckdb"`` (SQL in the same process, reading the files directly, out of core),
        ``"spark"`` (the same SQL on a Spark session, ``pip install decaylib[spark]``) or
        ``"auto"`` (default): DuckDB for at least :data:`AUTO_DUCKDB_ROWS` events in a DataFrame
        or :data:`AUTO_DUCKDB_BYTES` of files, pandas below. Every engine gives the same panel,
        report, bots and outage days (``tests/test_engine.py``); only the small tables (one row
        per user, per pair or per pair-day) come back to pandas. See :mod:`decaylib.engine`.
    keep_events:
        Keep the clean events in ``result.events_clean``. Default: always with pandas; with a SQL
        engine only when ``events`` is a DataFrame (then sorted by user, category, timestamp,
        item, event, not in input order); ``False`` leaves it ``None`` for logs larger than memory.
    progress:
        Print one line per step with its time (to stdout, so a notebook shows no stderr). Default:
        only for a SQL engine and at least 5 million events.
    con:
        A DuckDB connection (:func:`decaylib.engine.connect`, e.g. with a memory limit) or a
        SparkSession to use; default a new one (DuckDB) or :func:`decaylib.engine.spark_session`.

    Warnings (:class:`~decaylib.utils.DataWarning`, also listed in ``result.warnings``): the MAD
    of the bot rule is 0, the bot cap kept flagged users, far-off timestamps, a log shorter than
    ``mean_window`` days, more than half of the pairs with one active day.
    """
    check_choice("until", until, ("end", "last_activity"))
    check_choice("time_outliers", time_outliers, ("drop", "error", "keep"))
    _check_date_only(date_only)
    _check_share("max_bot_share", max_bot_share, allow_none=True)
    if isinstance(bot_z, bool) or not isinstance(bot_z, (int, float, np.integer, np.floating)) or not bot_z > 0:
        raise ValueError(f"bot_z must be a positive number (np.inf removes no one), got {bot_z!r}")
    if max_panel_rows is not None and (isinstance(max_panel_rows, bool) or not isinstance(max_panel_rows, (int, np.integer)) or max_panel_rows < 1):
        raise ValueError(f"max_panel_rows must be a positive int or None, got {max_panel_rows!r}")
    if isinstance(mean_window, bool) or not isinstance(mean_window, (int, np.integer)) or mean_window < 1:
        raise ValueError(f"mean_window must be a positive integer, got {mean_window!r}")
    if isinstance(median_window, bool) or not isinstance(median_window, (int, np.integer)) or median_window < 1:
        raise ValueError(f"median_window must be a positive integer, got {median_window!r}")
    if end_day is not None and (isinstance(end_day, bool) or not isinstance(end_day, (int, np.integer)) or end_day < 0):
        raise ValueError(f"end_day must be an int >= 0 or None, got {end_day!r}")
    notes: list[str] = []
    report = CleaningReport()
    engine = _choose_engine(engine, events)
    if engine != "pandas":
        from .engine import run_preprocess

        return run_preprocess(
            events, engine=engine, notes=notes, report=report, weights=weights, start_date=start_date, end_day=end_day,
            bot_z=bot_z, until=until, median_window=median_window, mean_window=mean_window, date_only=date_only,
            max_bot_share=max_bot_share, time_outliers=time_outliers, max_gap_days=max_gap_days,
            max_outlier_share=max_outlier_share, max_panel_rows=max_panel_rows, keep_events=keep_events,
            progress=progress, con=con,
        )
    if not isinstance(events, pd.DataFrame) and isinstance(events, (str, Path)):
        from .engine import read_events

        events = read_events(events)
    ev = validate_events(events)
    report.add("validate", len(events), len(ev), "schema check (never removes rows; fails loudly instead)")

    # Far-off timestamps: before anything that depends on the span.
    mask = detect_time_outliers(ev["ts"], max_gap_days, max_outlier_share).to_numpy()
    far = ev[mask].reset_index(drop=True)
    if mask.any():
        what = _describe_time_outliers(ev, mask, start_date, end_day, until, max_gap_days)
        before = len(ev)
        if _time_outlier_step(what, time_outliers, notes):
            ev = ev[~mask].reset_index(drop=True)
        report.add("time_outliers", before, len(ev), _time_outlier_reason(what, time_outliers))

    used_date_only = is_date_only(ev["ts"]) if date_only is None else bool(date_only)
    ev = drop_duplicates(ev, report, date_only=date_only)  # None: detects the same thing, and says so

    bots = detect_bots(ev, z_threshold=bot_z)
    remove, reason = _bot_decision(bots, len(ev), bot_z, max_bot_share, notes)
    if remove is None:
        report.add("remove_bots", len(ev), len(ev), reason)
    else:
        ev = remove_users(ev, remove, report, reason=reason)
    if len(ev) == 0:
        raise ValueError("no events left after cleaning: every user was flagged as a bot")

    # The data's limits, before the panel is built.
    day = event_days(ev["ts"], start_date)
    first, last = _pair_spans(ev)
    active = pd.DataFrame({"u": ev["user_id"].to_numpy(), "c": ev["category"].to_numpy(), "d": day}).groupby(["u", "c"], sort=False)["d"].nunique()
    _panel_checks(len(ev), first, last, int(day.max()), int((active == 1).sum()), start_date, end_day, until,
                  max_panel_rows, mean_window, notes)

    panel = build_panel(ev, weights, start_date, end_day, until, None, median_window, mean_window)
    outages = sorted(int(d) for d in panel.loc[~panel["observed"], "day"].unique())
    _add_aggregate_step(report, len(ev), len(panel))
    day0 = pd.Timestamp(start_date).floor("D") if start_date is not None else ev["ts"].min().floor("D")
    return PreprocessResult(
        panel=panel, report=report, bots=bots, outage_days=outages, events_clean=ev, warnings=notes,
        rows_per_event=len(panel) / len(ev), time_outliers=far, date_only=used_date_only, start_date=day0,
        engine="pandas", n_events_clean=len(ev),
    )


#: ``engine="auto"`` runs DuckDB at or above this many events (rows of a DataFrame): below it pandas
#: takes a few seconds at most and keeps every intermediate table in view; above it the SQL engine is
#: several times faster and needs a fraction of the memory (``benchmarks/bench_engine.py``).
AUTO_DUCKDB_ROWS = 2_000_000
#: ``engine="auto"`` on files: DuckDB at or above this many bytes on disk (Parquet is about 10-15
#: bytes per event, CSV about 50), pandas below.
AUTO_DUCKDB_BYTES = 50_000_000
ENGINES = ("pandas", "duckdb", "spark", "auto")


def _choose_engine(engine: str, events) -> str:
    """``engine``, with ``"auto"`` resolved by size (:data:`AUTO_DUCKDB_ROWS`, :data:`AUTO_DUCKDB_BYTES`)."""
    check_choice("engine", engine, ENGINES)
    if engine != "auto":
        return engine
    if isinstance(events, pd.DataFrame):
        return "duckdb" if len(events) >= AUTO_DUCKDB_ROWS else "pandas"
    if isinstance(events, (str, Path)):
        from .engine import source_files

        size = sum(Path(f).stat().st_size for f in source_files(events))
        return "duckdb" if size >= AUTO_DUCKDB_BYTES else "pandas"
    raise EventSchemaError(f"events must be a pandas DataFrame or a path to Parquet/CSV files, got {type(events).__name__}")


def _time_outlier_step(what: str, time_outliers: str, notes: list[str]) -> bool:
    """Raise, or warn; True when the far-off events are to be dropped."""
    if time_outliers == "error":
        raise EventSchemaError(f"{what}; pass time_outliers='drop' to drop them or 'keep' to keep them (or fix their timestamps)")
    if time_outliers == "drop":
        _warn(f"{what}: dropped (time_outliers='drop'; pass 'keep' to keep them)", notes, 4)
        return True
    _warn(f"{what}: kept (time_outliers='keep'; pass 'drop' to drop them)", notes, 4)
    return False


def _time_outlier_reason(what: str, time_outliers: str) -> str:
    if time_outliers == "drop":
        return f"far-off timestamps dropped: {what}"
    return f"far-off timestamps kept (time_outliers='keep'): {what}"


def _bot_decision(bots: pd.DataFrame, n_events: int, bot_z, max_bot_share, notes: list[str]):
    """Apply the ``max_bot_share`` cap to :func:`detect_bots`' table (adds ``removed``).

    Returns ``(users to remove, reason)``; ``users`` is None when the cap keeps every flagged user.
    """
    notes.extend(bots.attrs.get("warnings", []))
    flagged = bots.loc[bots["is_bot"], "user_id"].tolist()
    n_users = len(bots)
    user_share = len(flagged) / n_users
    event_share = float(bots.loc[bots["is_bot"], "n_events"].sum()) / n_events
    capped = max_bot_share is not None and len(flagged) > max(max_bot_share * n_users, MIN_REMOVABLE_BOTS)
    fallback = "" if bots.attrs.get("scale_rule") == "mad" else f" (MAD was 0: scale {bots.attrs['scale']:.3f}, rule {bots.attrs['scale_rule']})"
    if capped:
        suggest = math.ceil(user_share * 100) / 100
        _warn(
            f"the bot rule flagged {len(flagged):,} of {n_users:,} users ({_pct(user_share)}, holding {_pct(event_share)} of events), "
            f"more than max_bot_share={_pct(max_bot_share)} of users: kept; pass max_bot_share={suggest:g} to remove them "
            f"or a larger bot_z (now {_fmt_num(bot_z)}) to flag fewer",
            notes, 4,
        )
        bots["removed"] = False
        return None, (
            f"{len(flagged)} user(s) flagged by the bot rule (robust z of log(events/day) > {bot_z}){fallback} but kept: "
            f"{_pct(user_share)} of users, more than max_bot_share={_pct(max_bot_share)}"
        )
    bots["removed"] = bots["is_bot"]
    return flagged, f"{len(flagged)} bot user(s): robust z of log(events/day) > {bot_z}{fallback}"


def _panel_checks(n_events: int, first: np.ndarray, last: np.ndarray, max_day: int, n_one_day: int, start_date,
                  end_day, until: str, max_panel_rows, mean_window: int, notes: list[str]) -> None:
    """The data's limits before the panel is built, from each pair's first/last event day (days
    since 1970-01-01), the last event's day index and the pairs with one active day."""
    span_days = (max_day if end_day is None else int(end_day)) + 1
    rows = _rows_from_spans(first, last, start_date, end_day, until)
    rows_per_event = rows / n_events
    if max_panel_rows is not None and rows > max_panel_rows:
        n_pairs = len(first)
        lean = _rows_from_spans(first, last, start_date, end_day, "last_activity")
        raise PanelTooLargeError(
            f"the daily panel would have {rows:,} rows ({n_pairs:,} (user, category) pairs, each zero-filled from its first "
            f"event to the end of a {span_days:,}-day window: {rows_per_event:,.1f} rows per event), about "
            f"{_fmt_bytes(rows * PANEL_ROW_BYTES)} ({PANEL_ROW_BYTES} bytes a row, a few times that while it is built), "
            f"more than max_panel_rows={max_panel_rows:,}. What helps: until='last_activity' (stop each pair at its last "
            f"event: {lean:,} rows), a shorter window with start_date / end_day, or a larger max_panel_rows"
        )
    if span_days < mean_window:
        _warn(
            f"the log spans {span_days:,} day(s), fewer than the smoothing window mean_window={mean_window}: each smoothed value "
            f"averages most of the log, so it cannot show a rise and a fall; pass a smaller mean_window (at most "
            f"{max(1, span_days // 2)}) or use a longer log",
            notes, 4,
        )
    one_day = n_one_day / len(first)
    if one_day > SPARSE_PAIR_SHARE:
        _warn(
            f"{_pct(one_day)} of {len(first):,} (user, category) pairs have one active day: per-pair decay rates and decay "
            "points will mostly be not estimable",
            notes, 4,
        )


def _add_aggregate_step(report: CleaningReport, n_events: int, n_rows: int) -> None:
    report.add("aggregate", n_events, n_rows,
               f"events -> one row per (user, category, day), zero-filled ({n_rows / max(n_events, 1):.1f} rows per event); "
               "nothing removed", removes=False)


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
