"""The daily panel of notebook 02: events -> daily counts per (user, category), the interest score, grouped smoothing kernels, and the one gateway to the panel up to a cutoff (``panel_upto``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from decaylib.checks import check_finite, check_int, check_integer_column, check_unique_rows, require_frame
from decaylib.data.clean import (
    SPARSE_PAIR_SHARE,
    CleaningReport,
    _fmt_bytes,
    _pct,
    _rows_from_spans,
    _warn,
    detect_outage_days,
)
from decaylib.schema import (
    BASE_COLUMNS,
    BEHAVIOURS,
    COUNT_COLUMNS,
    DEFAULT_WEIGHTS,
    PAIR_COLS,
    PANEL_COLUMNS,
    PANEL_KEY_COLUMNS,
)

__all__ = ['DEFAULT_WEIGHTS', 'COUNT_COLUMNS', 'PANEL_COLUMNS', 'event_days', 'PanelTooLargeError', 'interest_score', 'expected_score', 'moving_mean', 'moving_median', 'smooth_interest', 'build_panel']


def day_range(panel: pd.DataFrame) -> tuple[int, int]:
    """The first and the last ``day`` of ``panel``, as ints: ``(first, last)``.

    Notebooks 02 and 06.
    """
    day = panel["day"].to_numpy()
    return int(day.min()), int(day.max())


def panel_upto(panel, cutoff_day, extra: Sequence[str] = ()) -> pd.DataFrame:
    """Validate ``panel`` and return its rows with ``day <= cutoff_day`` (a sorted copy).

    Only the day range of the full panel is read (to reject a cutoff outside it); every value
    used for scoring comes from the returned slice.

    Notebook 02.
    """
    require_frame(panel, "panel", (*BASE_COLUMNS, *extra))
    cutoff_day = check_int("cutoff_day", cutoff_day, minimum=None)
    for col in PANEL_KEY_COLUMNS:
        check_integer_column(panel, "panel", col)
    lo, hi = day_range(panel)
    if not lo <= cutoff_day <= hi:
        raise ValueError(f"cutoff_day={cutoff_day} is outside the panel's days [{lo}, {hi}]")
    cols = [*BASE_COLUMNS, *extra]
    if "observed" in panel.columns and "observed" not in cols:
        cols.append("observed")
    past = panel.loc[panel["day"].to_numpy() <= cutoff_day, cols]
    interest = past["interest"].to_numpy(dtype=float)
    if not np.all(np.isfinite(interest)):
        raise ValueError("panel.interest has NaN or infinite values up to the cutoff")
    if np.any(interest < 0):
        raise ValueError("panel.interest must be >= 0")
    if not is_sorted(past):
        past = past.sort_values(list(PANEL_KEY_COLUMNS), kind="stable")
    return past.reset_index(drop=True)


def is_sorted(df: pd.DataFrame) -> bool:
    """True when rows are sorted by (user_id, category, day) -- the contract's order.

    Notebook 02.
    """
    if len(df) < 2:
        return True
    du, dc, dd = (np.diff(df[c].to_numpy()) for c in PANEL_KEY_COLUMNS)
    return bool(np.all((du > 0) | ((du == 0) & ((dc > 0) | ((dc == 0) & (dd >= 0))))))


def observed_mask(past: pd.DataFrame) -> np.ndarray:
    """The ``observed`` column of ``past`` as a bool array (all True when the panel has no such column).

    Notebook 06.
    """
    if "observed" in past.columns:
        return past["observed"].to_numpy(dtype=bool)
    return np.ones(len(past), dtype=bool)


def run_positions(sorted_keys: np.ndarray) -> np.ndarray:
    """0-based position of each element inside its run of equal, adjacent keys.

    Notebook 02.
    """
    n = len(sorted_keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.arange(n, dtype=np.int64)
    starts = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    return idx - np.maximum.accumulate(np.where(starts, idx, 0))




def event_days(ts: pd.Series, start_date=None) -> np.ndarray:
    """Day index of each timestamp: whole days since ``start_date`` (default: the first day seen).

    Notebook 09.
    """
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





#: Bytes per panel row: 3 id/day columns, 5 counts (int64), 2 scores (float64), ``observed`` (bool).
PANEL_ROW_BYTES = 8 * (3 + len(COUNT_COLUMNS) + 2) + 1


class PanelTooLargeError(ValueError):
    """The daily panel would be too large to build; the message gives its size and what helps.

    Notebook 02.
    """


def interest_score(counts: pd.DataFrame, weights: dict | None = None) -> np.ndarray:
    """Weighted sum of behaviour counts: ``sum_b weights[b] * counts[b]``.

    ``weights`` may name any subset of ``view``, ``click``, ``cart``, ``purchase`` with
    non-negative numbers (default :data:`DEFAULT_WEIGHTS`).

    Notebook 02.
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

    Notebooks 01, 02, 03 and 05.
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

    Notebook 02.
    """
    return _rolling(panel[column], [panel["user_id"], panel["category"]], window, center, "mean")


def moving_median(panel: pd.DataFrame, column: str = "interest", window: int = 3, center: bool = True) -> np.ndarray:
    """Moving median within each pair: robust to single-day spikes (see :func:`moving_mean`).

    Notebook 02.
    """
    return _rolling(panel[column], [panel["user_id"], panel["category"]], window, center, "median")


def smooth_interest(panel: pd.DataFrame, median_window: int = 3, mean_window: int = 7, center: bool = True) -> np.ndarray:
    """Median filter (kills spikes) then mean filter (averages Poisson noise) of ``interest``.

    Days with ``observed == False`` (logging outages) are skipped, so a lost day does not pull the
    curve down.

    Notebook 02.
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

    Notebooks 01, 02 and 08.
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
    and its smoothing. The SQL engines (:mod:`decaylib.data.engine`) compute ``counts`` (sorted) and
    hand it here, so both paths build one panel."""
    # One contiguous day range per pair (vectorized expansion), pairs sorted by (user, category):
    # the grid comes out in the panel's order, and each active pair-day is placed by position.
    # Row-sized arrays are created sparingly here: on a million-row panel each fresh one costs page
    # faults (with NumPy's transparent huge pages on a fragmented heap, more than the arithmetic).
    u, c, d = (np.asarray(counts[k]) for k in PANEL_KEY_COLUMNS)
    pair_of_row, head = _sorted_pairs(u, c, d)
    if pair_of_row is not None:  # sorted (the SQL engines): pairs by a scan
        tail = np.r_[head[1:], len(u)] - 1
        span_u, span_c, span_min, span_max = u[head], c[head], d[head], d[tail]
    else:
        grouped = pd.DataFrame({"user_id": u, "category": c, "day": d}).groupby(list(PAIR_COLS), sort=True)["day"]
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


@dataclass
class PreprocessResult:
    """What :func:`preprocess` returns: the panel and everything needed to audit it.

    ``bots`` is :func:`detect_bots`' table plus ``removed`` (False for flagged users that were kept
    because they were more than ``max_bot_share`` of the users).  ``warnings`` lists the
    :class:`~decaylib.checks.DataWarning` messages raised (for notebooks to print), ``rows_per_event``
    the panel rows per clean event, ``time_outliers`` the far-off events found (dropped or kept),
    ``date_only`` whether the timestamps were treated as dates only, ``start_date`` the date of
    day 0, ``engine`` the engine that ran, ``n_events_clean`` the clean events (also when
    ``events_clean`` was not kept), ``stats`` the per-pair sufficient statistics when
    :func:`decaylib.data.engine.preprocess_stats` computed them (``panel`` is then ``None``).

    Notebook 02.
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
        ids from :class:`decaylib.data.load.EventLog`); default the code itself.
        """
        show = display if callable(display) else (display.__getitem__ if display is not None else (lambda u: u))
        out = {}
        flagged = self.bots[self.bots["is_bot"]]
        removed = flagged["removed"] if "removed" in flagged.columns else pd.Series(True, index=flagged.index)
        for (_, r), gone in zip(flagged.iterrows(), removed):
            if gone:
                what = "was removed as a bot"
            elif r.get("buyer_kept", False):  # the reason says why: purchases, and a MAD of 0
                what = "was flagged as a bot but kept"
            else:
                what = "was flagged as a bot but kept (more flagged users than max_bot_share)"
            out[int(r["user_id"])] = f"user {show(int(r['user_id']))} {what}: {r['reason']}"
        return out


def check_panel(panel, cols):
    """Check a panel for the count forecasts (notebooks 04, 08): a DataFrame with the pair, ``day``
    and ``cols``, integer keys, and finite, non-negative values in ``cols``."""
    if not isinstance(panel, pd.DataFrame):
        raise TypeError(f"panel must be a pandas DataFrame, got {type(panel).__name__}")
    need = [*PAIR_COLS, "day", *cols]
    missing = [c for c in need if c not in panel.columns]
    if missing:
        raise ValueError(f"panel is missing column(s) {missing}; it has {list(panel.columns)}")
    if panel.empty:
        raise ValueError("panel is empty")
    for c in [*PAIR_COLS, "day"]:
        if not pd.api.types.is_integer_dtype(panel[c]):
            raise TypeError(f"panel[{c!r}] must hold integers (coded ids / day numbers), got {panel[c].dtype}")
    for c in cols:
        if not pd.api.types.is_numeric_dtype(panel[c]):
            raise TypeError(f"panel[{c!r}] must be numeric, got {panel[c].dtype}")
        check_finite(panel[c].to_numpy(dtype=float), c, "panel")
    check_unique_rows(panel, [*PAIR_COLS, "day"], "panel")  # a repeated (pair, day) would be summed silently


def outage_days_of(panel) -> set:
    """The days a panel marks as not observed (``observed`` False; notebooks 02, 04)."""
    if "observed" not in panel.columns:
        return set()
    return set(np.unique(panel.loc[~panel["observed"].to_numpy(dtype=bool), "day"].to_numpy()).tolist())


def column_sum(panel, cols) -> np.ndarray:
    """The row sums of the panel columns ``cols`` as floats (several event counts as one series; notebooks 04, 08)."""
    return panel[cols].to_numpy(dtype=float).sum(axis=1)
