"""Cleaning rules of notebook 02 (schema checks, duplicates, bots, time outliers, outage days), shared by the pandas and SQL paths."""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from decaylib.checks import (
    ROWS_NOTE,
    DataWarning,
    EventSchemaError,
    check_choice,
    check_float_ids,
    check_unique_columns,
    row_examples,
)
from decaylib.data.load import _timestamps
from decaylib.schema import COUNT_COLUMNS, EVENT_LOG_COLUMNS, EVENT_TYPES, PURCHASE

__all__ = ['CleaningConfig', 'estimate_panel_rows', 'CleaningReport', 'validate_events', 'is_date_only', 'drop_duplicates', 'detect_bots', 'remove_users', 'detect_time_outliers', 'detect_outage_days']


@dataclass
class CleaningReport:
    """A log of cleaning steps: rows before and after each, and why rows were removed.

    Notebook 02.
    """

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

    Notebooks 01, 02 and 08.
    """
    if not isinstance(events, pd.DataFrame):
        raise EventSchemaError(f"events must be a pandas DataFrame, got {type(events).__name__}")
    missing = [c for c in EVENT_LOG_COLUMNS if c not in events.columns]
    if missing:
        raise EventSchemaError(f"events is missing required column(s) {missing}; it has {list(events.columns)}")
    if len(events) == 0:
        raise EventSchemaError("events is empty: there is nothing to preprocess")
    check_unique_columns(events.columns, "events")
    out = events[list(EVENT_LOG_COLUMNS)].copy()
    rows = np.arange(len(out))
    for col in ("user_id", "item_id", "category"):
        s = out[col]
        if s.isna().any():
            raise EventSchemaError(f"column {col!r} has {int(s.isna().sum())} missing value(s)")
        if pd.api.types.is_unsigned_integer_dtype(s) and len(s) and int(s.max()) > np.iinfo(np.int64).max:
            big = (s > np.iinfo(np.int64).max).to_numpy()
            raise EventSchemaError(f"column {col!r} holds ids beyond int64: {row_examples(s.to_numpy(), rows, big)} ({ROWS_NOTE}); "
                                   "decaylib.data.load.load_events codes ids of any size")
        if not pd.api.types.is_integer_dtype(s):
            num = pd.to_numeric(s, errors="coerce")
            bad = s[num.isna() & s.notna()]
            if len(bad):
                raise EventSchemaError(
                    f"column {col!r} must hold integer ids; found {len(bad)} non-numeric value(s), e.g. {bad.head(3).tolist()}"
                )
            s = pd.Series(check_float_ids(num.to_numpy(dtype=float), col, rows), index=out.index)
        out[col] = s.astype("int64")
    ts = out["ts"]
    if ts.isna().any():
        raise EventSchemaError(f"column 'ts' has {int(ts.isna().sum())} missing timestamp(s)")
    if not pd.api.types.is_datetime64_any_dtype(ts):
        # Strings or numbers: the loader's parser, so that Unix numbers without a unit are an error
        # that shows what each unit would give (never silently nanoseconds, i.e. 1970-01-01), and
        # bad strings are shown with their row numbers.

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
    threshold.  :func:`decaylib.data.load.load_events` detects the same thing when it reads a file and
    records it in ``EventLog.date_only``.

    Notebook 02.
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

    Notebooks 01, 02, 08 and 09.
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
    :class:`~decaylib.checks.DataWarning` (share of users at the median, the scale used).  The mean
    absolute deviation around the median is, like the MAD, centred on the median, and an outlier
    pulls it linearly, not quadratically as it would a standard deviation; the floor
    :data:`MIN_FALLBACK_SCALE` (``log(10) / 4``) keeps the point mass at the median from shrinking
    the scale so far that users with a few events a day become "bots" (with ``z_threshold=4`` a
    flagged user has at least 10x the median rate).  When every user has the same rate, no one is
    flagged.  **A buyer is never removed on the fallback alone**: a flagged user with at least one
    purchase (:data:`decaylib.schema.PURCHASE` events) keeps ``is_bot`` (the rule's numbers say so)
    but gets ``buyer_kept`` and a reason that says why it stays; a paying customer with a busy hour
    is worth more than the noise the fallback scale can tell apart.  With a MAD above 0 the rule
    is unchanged.

    Returns one row per user: ``user_id``, ``n_events``, ``active_days``, ``events_per_day``,
    ``n_categories``, ``robust_z``, ``is_bot``, ``ratio_to_median`` (events per active day over the
    median user's), ``n_purchases``, ``buyer_kept`` (flagged, but a buyer judged on the MAD = 0
    fallback: never removed) and ``reason`` (a sentence for flagged users, ``""`` for the others, e.g.
    ``"18,402 events per active day against a median of 12 (1,534x; robust z 9.1 > 4)"``).
    ``attrs`` holds ``median_events_per_day``, ``scale``, ``scale_rule`` (``"mad"``,
    ``"mean_abs_dev"``, ``"floor"`` or ``"constant"``) and ``warnings`` (the messages warned).

    Notebooks 01 and 08.
    """
    if len(events) == 0:
        raise ValueError("events is empty: cannot detect bots")
    if isinstance(z_threshold, bool) or not isinstance(z_threshold, (int, float, np.integer, np.floating)) or not z_threshold > 0:
        raise ValueError(f"z_threshold must be a positive number (np.inf flags no one), got {z_threshold!r}")
    day = events["ts"].dt.floor("D")
    g = pd.DataFrame({"user_id": events["user_id"].to_numpy(), "day": day.to_numpy(), "category": events["category"].to_numpy(),
                      "bought": (events["event"] == PURCHASE).to_numpy(dtype=np.int64)})
    by_user = g.groupby("user_id").agg(
        n_events=("day", "size"), active_days=("day", "nunique"), n_categories=("category", "nunique"),
        n_purchases=("bought", "sum"),
    )
    return _bot_table(by_user, z_threshold, min_categories)


def _bot_table(by_user: pd.DataFrame, z_threshold: float = 4.0, min_categories: int = 1) -> pd.DataFrame:
    """:func:`detect_bots` from its per-user inputs (index ``user_id``, sorted; ``n_events``,
    ``active_days``, ``n_categories``, ``n_purchases``): the part shared with the SQL engines
    (:mod:`decaylib.data.engine`)."""
    by_user = by_user[["n_events", "active_days", "n_categories", "n_purchases"]].copy()
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
    # The fallback scale is a guess (half the users sit on one rate): not evidence enough against a buyer.
    by_user["buyer_kept"] = by_user["is_bot"] & (by_user["n_purchases"] > 0) & (rule != "mad")
    reason = np.full(len(by_user), "", dtype=object)
    for i in np.flatnonzero(by_user["is_bot"].to_numpy()):
        r = by_user.iloc[i]
        reason[i] = (
            f"{_fmt_num(r['events_per_day'])} events per active day against a median of {_fmt_num(median_rate)} "
            f"({_fmt_num(r['ratio_to_median'])}x; robust z {r['robust_z']:.1f} > {_fmt_num(z_threshold)})"
        )
        if r["buyer_kept"]:
            reason[i] += (
                f"; kept: {int(r['n_purchases']):,} purchase(s), and the MAD was 0 (fallback scale {mad:.3f}, "
                f"rule {rule}), which alone never removes a buyer"
            )
    by_user["reason"] = reason
    out = by_user.reset_index()[
        ["user_id", "n_events", "active_days", "events_per_day", "n_categories", "robust_z", "is_bot", "ratio_to_median",
         "n_purchases", "buyer_kept", "reason"]
    ]
    kept = int(out["buyer_kept"].sum())
    if kept:
        notes.append(
            f"detect_bots: {kept:,} flagged user(s) with purchases kept: the MAD of log(events per active day) is 0, "
            f"and the fallback scale alone never removes a buyer (their reason in the bots table says so)"
        )
    for msg in notes:
        warnings.warn(msg, DataWarning, stacklevel=2)
    out.attrs = {"median_events_per_day": median_rate, "scale": float(mad), "scale_rule": rule, "warnings": notes}
    return out


def remove_users(events: pd.DataFrame, users, report: CleaningReport | None = None, reason: str = "removed users") -> pd.DataFrame:
    """Drop every event of ``users`` and record it in ``report``.

    Notebook 02.
    """
    before = len(events)
    out = events[~events["user_id"].isin(list(users))].reset_index(drop=True)
    if report is not None:
        report.add("remove_bots", before, len(out), reason)
    return out


def detect_time_outliers(ts: pd.Series, max_gap_days: int = 90, max_share: float = 0.01) -> pd.Series:
    """Events far away in time from the rest of the log (a clock error, a test event, a default date).

    Rule: sort the distinct event days and cut them into blocks wherever two consecutive event days
    are more than ``max_gap_days`` apart.  The block holding the most events (the earliest on a
    tie) is the main span.  Every other block holding less than ``max_share`` of all events is an
    outlier; a block holding more is real data (e.g. a second season) and is kept.  Without such a
    gap nothing is flagged, however long the log.

    Returns a boolean Series aligned with ``ts`` (named ``time_outlier``).

    Notebook 02.
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

    Notebook 02.
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


def _warn(msg: str, store: list[str], stacklevel: int = 3) -> None:
    store.append(msg)
    warnings.warn(msg, DataWarning, stacklevel=stacklevel)


def _check_share(name: str, value, allow_none: bool) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not 0 <= value <= 1:
        extra = " or None" if allow_none else ""
        raise ValueError(f"{name} must be a share between 0 and 1{extra}, got {value!r}")


@dataclass(frozen=True)
class CleaningConfig:
    """The cleaning and panel options of :func:`decaylib.data.preprocess.preprocess`, checked once, here.

    The pandas path and the SQL engines (:func:`decaylib.data.engine.run_preprocess`) take the same
    object, so an option is named, defaulted and validated in one place. See ``preprocess`` for
    what each option does.

    Notebooks 02, 08 and 09.
    """

    weights: dict | None = None
    start_date: object = None
    end_day: int | None = None
    bot_z: float = 4.0
    until: str = "end"
    median_window: int = 3
    mean_window: int = 7
    date_only: bool | None = None
    max_bot_share: float | None = 0.05
    time_outliers: str = "drop"
    max_gap_days: int = 90
    max_outlier_share: float = 0.01
    max_panel_rows: int | None = 20_000_000

    def __post_init__(self):
        check_choice("until", self.until, ("end", "last_activity"))
        check_choice("time_outliers", self.time_outliers, ("drop", "error", "keep"))
        _check_date_only(self.date_only)
        _check_share("max_bot_share", self.max_bot_share, allow_none=True)
        bot_z, rows = self.bot_z, self.max_panel_rows
        if isinstance(bot_z, bool) or not isinstance(bot_z, (int, float, np.integer, np.floating)) or not bot_z > 0:
            raise ValueError(f"bot_z must be a positive number (np.inf removes no one), got {bot_z!r}")
        if rows is not None and (isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1):
            raise ValueError(f"max_panel_rows must be a positive int or None, got {rows!r}")
        for name in ("mean_window", "median_window"):
            w = getattr(self, name)
            if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1:
                raise ValueError(f"{name} must be a positive integer, got {w!r}")
        end = self.end_day
        if end is not None and (isinstance(end, bool) or not isinstance(end, (int, np.integer)) or end < 0):
            raise ValueError(f"end_day must be an int >= 0 or None, got {end!r}")


#: Share of pairs with a single active day above which :func:`preprocess` warns.
SPARSE_PAIR_SHARE = 0.5

#: The ``max_bot_share`` cap never stops the removal of this many flagged users: in a tiny log one
#: or two bots are a large share of users and still bots.
MIN_REMOVABLE_BOTS = 2


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

    Flagged buyers kept by the MAD = 0 fallback (``buyer_kept``) are never removed and do not
    count towards the cap.  ``bots.attrs`` gains ``bot_z``, ``max_bot_share``, ``n_removable``
    (flagged and not ``buyer_kept``) and ``capped``: the numbers a report needs to say which value
    of each parameter would keep a removed user (:func:`decaylib.recommend.advice.removed_users`).

    Returns ``(users to remove, reason)``; ``users`` is None when the cap keeps every flagged user.
    """
    notes.extend(bots.attrs.get("warnings", []))
    kept_buyer = bots["buyer_kept"]
    removable = bots["is_bot"] & ~kept_buyer
    flagged = bots.loc[removable, "user_id"].tolist()
    n_users = len(bots)
    user_share = len(flagged) / n_users
    event_share = float(bots.loc[removable, "n_events"].sum()) / n_events
    capped = max_bot_share is not None and len(flagged) > max(max_bot_share * n_users, MIN_REMOVABLE_BOTS)
    bots.attrs.update(bot_z=float(bot_z), max_bot_share=None if max_bot_share is None else float(max_bot_share),
                      n_removable=len(flagged), capped=bool(capped))
    fallback = "" if bots.attrs.get("scale_rule") == "mad" else f" (MAD was 0: scale {bots.attrs['scale']:.3f}, rule {bots.attrs['scale_rule']})"
    n_kept = int(kept_buyer.sum())
    buyers = f"; {n_kept} flagged buyer(s) kept (the MAD = 0 fallback alone never removes a buyer)" if n_kept else ""
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
            f"{_pct(user_share)} of users, more than max_bot_share={_pct(max_bot_share)}{buyers}"
        )
    bots["removed"] = removable
    return flagged, f"{len(flagged)} bot user(s): robust z of log(events/day) > {bot_z}{fallback}{buyers}"


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

    Notebook 02.
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
