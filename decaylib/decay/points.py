"""Decay points: when interest turns from rising to falling (notebook 05).

Two questions, kept apart because they use different information:

* **Retrospective** (:func:`find_decay_point`): looking back at the whole series, on which day
  did the (smoothed) interest peak? A prominence rule keeps noise wiggles from counting as
  peaks. Baselines with the same output: :func:`find_peaks_baseline` (``scipy.signal``) and
  :func:`ruptures_baseline` (Pelt, ``clinear`` cost).
* **Early warning** (:func:`early_warning`, :func:`early_warning_baseline`): walking forward
  day by day with only the data up to that day, on which day do we first say "interest is about
  to fall"? Strictly causal: an alert on day ``d`` depends on nothing after ``d``.

Metrics: :func:`decay_point_metrics` (precision/recall/F1 within ±margin days and timing
error) and :func:`alert_metrics` (delay after the true peak, too-early and missed shares).
Evaluation sets: :func:`peak_visible_pairs` and :func:`lambda_eval_pairs`.

Per-pair outputs are DataFrames with the pair columns, a float day column (NaN = none) and
a ``reason``: ``"ok"`` only when the evidence rules of :mod:`decaylib.decay.evidence` pass (a decay
point on a day with events, enough events around it, a rise and a fall of the event counts
larger than Poisson noise; an alert only once the pair has enough events). Input panels follow
the data contract (``user_id, category, day, ...``); the rules on events need the count columns
(``view, click, cart, purchase``), which the daily panel has.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from decaylib.checks import (
    bool_column,
    check_choice,
    check_finite,
    check_frame,
    check_unique_rows,
    numeric_column,
)
from decaylib.decay import evidence as _ev
from decaylib.decay.evidence import EvidenceRules
from decaylib.decay.rate import FORECAST_COLS
from decaylib.evaluation.detection import alert_metrics
from decaylib.schema import BEHAVIOURS, PAIR_COLS

__all__ = ['find_decay_point', 'find_peaks_baseline', 'ruptures_baseline', 'early_warning_baseline', 'early_warning', 'tune_early_warning']

NON_CAUSAL_COLS = ("interest_smooth",)


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _series_frame(panel, value_col, pair_cols, day_col, observed_col, name="panel", extra=(), nonnegative=False):
    """The panel sorted by pair and day; one row per (pair, day) and finite values on observed days
    (``nonnegative``: >= 0 too), else a ``ValueError`` naming the column, the count and the rows."""
    pair_cols = list(pair_cols)
    req = pair_cols + [day_col, value_col] + ([observed_col] if observed_col else [])
    check_frame(panel, req, name)
    df = panel[list(dict.fromkeys(req + [c for c in extra if c in panel.columns]))]
    if df[pair_cols].isna().any().any():
        raise ValueError(f"{name} has missing values in the pair columns {pair_cols}")
    check_unique_rows(df, pair_cols + [day_col], name)
    check_finite(numeric_column(df, value_col, name), value_col, name, nonnegative=nonnegative,
                 mask=bool_column(df, observed_col, name) if observed_col else None)
    df = df.sort_values(pair_cols + [day_col], kind="stable")
    v = numeric_column(df, value_col, name)
    day = numeric_column(df, day_col, name)
    if observed_col:
        v = np.where(bool_column(df, observed_col, name), v, np.nan)
    new = np.ones(len(df), dtype=bool)
    kv = [df[c].to_numpy() for c in pair_cols]
    new[1:] = np.logical_or.reduce([k[1:] != k[:-1] for k in kv])
    starts = np.flatnonzero(new)
    codes = np.cumsum(new) - 1
    counts = np.diff(np.append(starts, len(df)))
    keys = df.iloc[starts][pair_cols].reset_index(drop=True)
    return df, keys, codes, starts, counts, day, v


def _series(panel, value_col, pair_cols, day_col, observed_col, name="panel"):
    """Sorted per-pair series: (keys, codes, starts, counts, day, value with NaN on unobserved)."""
    _, keys, codes, starts, counts, day, v = _series_frame(panel, value_col, pair_cols, day_col, observed_col, name)
    return keys, codes, starts, counts, day, v


def _series_events(panel, value_col, pair_cols, day_col, observed_col, count_cols, events=None, name="panel",
                   nonnegative=False):
    """:func:`_series` plus the events per row (sum of ``count_cols``, in the same order) and
    the observed flag; events are ``None`` when neither ``panel`` nor ``events`` has the counts.

    ``events`` is a second table (e.g. the daily panel) giving the counts for a ``panel`` that
    lacks them (e.g. forecast levels): joined on the pair columns and the day; a day it does
    not have counts as 0 events.
    """
    pair_cols = list(pair_cols)
    cols = [] if count_cols is None else list(count_cols)
    df, keys, codes, starts, counts, day, v = _series_frame(panel, value_col, pair_cols, day_col, observed_col, name, cols,
                                                           nonnegative)
    obs = bool_column(df, observed_col, name) if observed_col else np.ones(len(df), dtype=bool)
    ev = _ev.event_counts(df, cols) if cols else None
    if ev is None and cols and events is not None:
        check_frame(events, pair_cols + [day_col] + cols, "events")
        src = events[pair_cols + [day_col]].copy()
        src["_ev"] = _ev.event_counts(events, cols)
        check_unique_rows(src, pair_cols + [day_col], "events")
        if observed_col and observed_col in events.columns:
            src["_obs"] = bool_column(events, observed_col, "events")
        m = df[pair_cols + [day_col]].merge(src, on=pair_cols + [day_col], how="left")
        ev = m["_ev"].fillna(0.0).to_numpy(dtype=np.float64)
        if "_obs" in m.columns:
            obs = obs & m["_obs"].fillna(True).to_numpy(dtype=bool)
    return keys, codes, starts, counts, day, v, ev, obs


def _peak_rows(codes, day, keys_n, t_decay):
    """Row of each pair's detected day (``-1`` where NaN or not present); rows sorted by pair, day."""
    G = keys_n
    t = np.asarray(t_decay, dtype=np.float64)
    if len(day) == 0:
        return np.full(G, -1, dtype=np.int64)
    d0 = day - day.min()
    big = d0.max() + 2.0
    key = codes * big + d0
    want = np.arange(G) * big + (t - day.min())
    pos = np.searchsorted(key, np.where(np.isfinite(want), want, -1.0))
    pos = np.clip(pos, 0, len(key) - 1)
    hit = np.isfinite(t) & (key[pos] == want)
    return np.where(hit, pos, -1).astype(np.int64)


def _apply_peak_evidence(out, reason, codes, starts, counts, day, ev, obs, peak_row, rules, smooth_window):
    """Rule 2 of :mod:`decaylib.decay.evidence` on a detector's output (in place): moves empty-day
    peaks, adds the evidence columns and turns failing "ok"s into NaN with their reason."""
    cols = ("peak_shift", "events_near_peak", "active_days_near_peak", "rise_z", "fall_z")
    if ev is None:
        for c in cols:
            out[c] = np.nan
        return reason
    chk = _ev.check_peaks(codes, starts, counts, day, ev, obs, np.where(reason == "ok", peak_row, -1), rules,
                          smooth_window=smooth_window)
    reason = np.where((reason == "ok") & (chk["reason"] != ""), chk["reason"], reason)
    ok = reason == "ok"
    out["t_decay"] = np.where(ok, day[np.maximum(chk["row"], 0)] if len(day) else np.nan, np.nan)
    for c, k in zip(cols, ("shift", "events_near_peak", "active_days_near_peak", "rise_z", "fall_z")):
        out[c] = chk[k]
    return reason


def _check_causal_col(value_col):
    if value_col in NON_CAUSAL_COLS:
        raise ValueError(
            f"{value_col!r} is a centered smoothing that uses future days; an early warning must "
            "be causal: use the raw 'interest' (the trailing window smooths it)"
        )


def _trailing_mean(v, codes, starts, window):
    """Mean of the non-NaN values among the last ``window`` rows of the same pair (causal).

    NaN until the pair has a full window of days: a 1- or 2-day "mean" at the start of a
    series is so noisy that its spikes would set a running maximum that later looks like a fall.
    """
    n = len(v)
    x = np.where(np.isnan(v), 0.0, v)
    k = (~np.isnan(v)).astype(np.float64)
    cx = np.concatenate([[0.0], np.cumsum(x)])
    ck = np.concatenate([[0.0], np.cumsum(k)])
    i = np.arange(n)
    lo = np.maximum(i - window + 1, starts[codes])
    s = cx[i + 1] - cx[lo]
    c = ck[i + 1] - ck[lo]
    full = (i - starts[codes] + 1) >= window
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(full & (c > 0), s / np.where(c > 0, c, 1.0), np.nan)


def _run_length_ok(cond, codes, starts, k):
    """True where ``cond`` held on this row and the ``k-1`` previous rows of the same pair."""
    if k <= 1:
        return cond
    n = len(cond)
    cc = np.concatenate([[0], np.cumsum(cond.astype(np.int64))])
    i = np.arange(n)
    lo = i - k + 1
    valid = lo >= starts[codes]
    lo = np.maximum(lo, 0)
    return valid & ((cc[i + 1] - cc[lo]) == k)


def _first_day(flag, codes, day, G):
    first = np.full(G, np.inf)
    np.minimum.at(first, codes[flag], day[flag])
    return np.where(np.isfinite(first), first, np.nan)


def _clinear_cumsum_cost():
    """ruptures' ``clinear`` cost computed in O(1) per segment from cumulative sums.

    Same value as ``ruptures.costs.CostCLinear.error`` (the squared residuals of the chord
    joining ``signal[start-1]`` and ``signal[end-1]``), which recomputes the residuals with
    NumPy on every call; Pelt calls it O(n^2 / jump) times per series, so this is ~5x faster.
    Built lazily so that importing decaylib.decay.points does not import ruptures.
    """
    from ruptures.base import BaseCost
    from ruptures.costs import NotEnoughPoints

    class CostCLinearCumsum(BaseCost):
        model = "clinear_cumsum"
        min_size = 3

        def fit(self, signal):
            x = np.asarray(signal, dtype=np.float64).ravel()
            self.signal = x.reshape(-1, 1)
            i = np.arange(x.size, dtype=np.float64)
            self._x = x.tolist()
            self._c1 = np.concatenate([[0.0], np.cumsum(x)]).tolist()
            self._c2 = np.concatenate([[0.0], np.cumsum(x * x)]).tolist()
            self._ci = np.concatenate([[0.0], np.cumsum(i * x)]).tolist()
            return self

        def error(self, start, end):
            if end - start < self.min_size:
                raise NotEnoughPoints
            s = max(start, 1)
            m = end - s
            x = self._x
            a = x[s - 1]
            b = (x[end - 1] - a) / m
            sx = self._c1[end] - self._c1[s]
            sxx = self._c2[end] - self._c2[s]
            skx = (self._ci[end] - self._ci[s]) - (s - 1) * sx  # sum of k * x_i, k = i - s + 1
            sk = m * (m + 1) / 2.0
            sk2 = m * (m + 1) * (2 * m + 1) / 6.0
            return sxx - 2.0 * (a * sx + b * skx) + m * a * a + 2.0 * a * b * sk + b * b * sk2

    return CostCLinearCumsum


# --------------------------------------------------------------------------------------------
# Retrospective decay point
# --------------------------------------------------------------------------------------------
def find_decay_point(
    panel: pd.DataFrame,
    *,
    value_col: str = "interest_smooth",
    prominence: float = 0.3,
    min_prominence: float = 0.0,
    noise_col: str | None = None,
    noise_k: float = 5.0,
    smooth_window: int = 7,
    pair_cols: Sequence[str] = PAIR_COLS,
    day_col: str = "day",
    observed_col: str | None = "observed",
    count_cols: Sequence[str] | None = BEHAVIOURS,
    events: pd.DataFrame | None = None,
    rules: EvidenceRules | None = None,
) -> pd.DataFrame:
    """Retrospective decay point: the day the smoothed interest turns from rising to falling.

    Rule (vectorized over all pairs, no per-pair loop): take the pair's global maximum
    ``peak`` (earliest day on ties). Accept it when the series *rose* to it, ``peak - min(before)
    >= thr``, and *falls* after it, ``peak - min(after) >= thr``, with
    ``thr = max(prominence * peak, min_prominence)``. Otherwise NaN: a monotone decay
    (maximum on the first day), a still-rising series, or a flat noisy one has no decay point.

    On a smoothed series the day is that of the smoothed maximum: a centered 7-day mean moves
    the maximum of an asymmetric peak (fast rise, slow decay) towards the slow side, typically
    by 0-2 days, which is why metrics use a ±3-day margin.

    Parameters
    ----------
    panel : DataFrame
        Long daily table: pair columns, ``day``, ``value_col``, optionally ``observed``
        (unobserved outage days are ignored). Works on forecasts too (any long series).
    value_col : str
        Series to use (default the retrospective centered smoothing ``interest_smooth``).
    prominence : float
        Relative prominence in [0, 1): the rise before and the fall after must each be at least
        this fraction of the peak.
    min_prominence : float
        Absolute floor on the rise and the fall (score units), against peaks in tiny series.
    noise_col : str, optional
        A raw column (e.g. ``"interest"``) to make the threshold noise-aware: per pair,
        ``sigma = 1.4826 * MAD(noise_col - value_col)`` over observed days and the threshold
        also has to exceed ``noise_k * sigma / sqrt(smooth_window)`` (the noise sd left after a
        ``smooth_window``-day mean). Recommended for low-count pairs: with a relative rule alone,
        a flat Poisson series with mean ~5 per day shows a 30 % "peak" most of the time.
    noise_k, smooth_window : float, int
        See ``noise_col``. ``smooth_window`` is also the window of the event-count means of the
        evidence rules and, by default, twice the radius (plus one) within which an empty-day
        maximum is moved to a day with events.
    count_cols, events, rules
        The evidence rules (:mod:`decaylib.decay.evidence`, rule 2), checked when the event counts
        ``count_cols`` are in ``panel`` (the daily panel has them) or in ``events`` (a table
        with the pair columns, ``day``, the counts and ``observed``: pass the panel when
        ``panel`` is a table of forecast levels). The decay point must be a day with events: a
        smoothed maximum on an empty day (the centred window's edge effect on short series) is
        moved to the day with the most events within ``smooth_window // 2`` days
        (``peak_shift``), or rejected (``"peak_on_empty_day"``); there must be at least
        ``rules.peak_min_events`` events and ``rules.peak_min_active_days`` active days within
        ±``rules.peak_radius`` days (``"insufficient_data"``); and the event counts' rise and
        fall must each be at least ``rules.noise_k`` Poisson standard deviations
        (``"not_a_peak"``). Without counts only the shape rules above apply.

    Returns
    -------
    DataFrame
        ``pair_cols, t_decay`` (float day, NaN = none), ``peak_value, rise, fall, threshold``
        (shape rule, at the smoothed maximum), ``peak_shift`` (days the decay point was moved
        from the smoothed maximum to a day with events), ``events_near_peak``,
        ``active_days_near_peak``, ``rise_z``, ``fall_z`` (the evidence; NaN without counts),
        ``reason`` in this precedence: ``"no_data"``, ``"insufficient_data"``, ``"no_rise"``,
        ``"no_fall"``, ``"peak_on_empty_day"``, ``"not_a_peak"``, else ``"ok"``.

    Notebooks 04 and 05.
    """
    if not 0 <= prominence < 1:
        raise ValueError(f"prominence must be in [0, 1), got {prominence}")
    if min_prominence < 0:
        raise ValueError("min_prominence must be >= 0")
    if noise_k < 0 or smooth_window < 1:
        raise ValueError("noise_k must be >= 0 and smooth_window >= 1")
    rules = _ev.resolve_rules(rules)
    keys, codes, starts, counts, day, v, ev, obs = _series_events(
        panel, value_col, pair_cols, day_col, observed_col, count_cols, events, nonnegative=True
    )
    G = len(keys)
    noise_thr = np.zeros(G)
    if noise_col is not None:
        _, _, _, _, _, raw = _series(panel, noise_col, pair_cols, day_col, observed_col)
        res = pd.Series(raw - v)
        med = res.groupby(codes).transform("median").to_numpy()
        mad = pd.Series(np.abs(res.to_numpy() - med)).groupby(codes).median().reindex(range(G)).to_numpy()
        noise_thr = noise_k * np.nan_to_num(1.4826 * mad) / np.sqrt(smooth_window)
    vmax = np.where(np.isnan(v), -np.inf, v)
    vmin = np.where(np.isnan(v), np.inf, v)
    peak = np.maximum.reduceat(vmax, starts)
    row = np.arange(len(v))
    is_max = vmax == peak[codes]
    peak_row = np.minimum.reduceat(np.where(is_max, row, len(v)), starts)
    before = row < peak_row[codes]
    after = row > peak_row[codes]
    left_min = np.minimum.reduceat(np.where(before, vmin, np.inf), starts)
    right_min = np.minimum.reduceat(np.where(after, vmin, np.inf), starts)
    with np.errstate(invalid="ignore"):
        rise = peak - left_min
        fall = peak - right_min
    rise = np.where(np.isfinite(rise), rise, np.nan)
    fall = np.where(np.isfinite(fall), fall, np.nan)
    thr = np.maximum(np.maximum(prominence * peak, min_prominence), noise_thr)
    has = np.isfinite(peak)
    ok_rise = has & (rise >= thr) & (rise > 0)
    ok_fall = has & (fall >= thr) & (fall > 0)
    out = keys.copy()
    row = np.where(has, np.minimum(peak_row, len(v) - 1), -1)
    if ev is not None:
        chk = _ev.check_peaks(codes, starts, counts, day, ev, obs, row, rules, smooth_window=smooth_window)
        row = np.where(has, chk["row"], -1)
        extra = {"peak_shift": chk["shift"], "events_near_peak": chk["events_near_peak"],
                 "active_days_near_peak": chk["active_days_near_peak"], "rise_z": chk["rise_z"], "fall_z": chk["fall_z"]}
        fails = [(chk["insufficient"], "insufficient_data")]
        late = [(chk["on_empty"], "peak_on_empty_day"), (chk["noisy"], "not_a_peak")]
    else:
        extra = {c: np.full(G, np.nan) for c in ("peak_shift", "events_near_peak", "active_days_near_peak", "rise_z", "fall_z")}
        fails, late = [], []
    reason = _ev.first_reason(G, [(~has, "no_data"), *fails, (~ok_rise, "no_rise"), (~ok_fall, "no_fall"), *late])
    ok = reason == "ok"
    out["t_decay"] = np.where(ok, day[np.maximum(row, 0)], np.nan) if len(v) else np.full(G, np.nan)
    out["peak_value"] = np.where(has, peak, np.nan)
    out["rise"] = rise
    out["fall"] = fall
    out["threshold"] = np.where(has, thr, np.nan)
    for c, a in extra.items():
        out[c] = a
    out["reason"] = reason.astype(str)
    return out


def find_peaks_baseline(
    panel: pd.DataFrame,
    *,
    value_col: str = "interest_smooth",
    prominence: float = 0.3,
    min_prominence: float = 0.0,
    pair_cols: Sequence[str] = PAIR_COLS,
    day_col: str = "day",
    observed_col: str | None = "observed",
    count_cols: Sequence[str] | None = BEHAVIOURS,
    events: pd.DataFrame | None = None,
    rules: EvidenceRules | None = None,
    smooth_window: int = 7,
) -> pd.DataFrame:
    """Baseline: ``scipy.signal.find_peaks`` per pair; decay point = the most prominent peak.

    A peak must have a prominence (scipy's definition: height above the higher of the two
    surrounding bases) of at least ``max(prominence * its height, min_prominence)``. Unobserved
    days are dropped before the search. Peaks on the first or last day are never found
    (scipy needs a neighbour on each side). One loop over pairs (cheap: ~3000 pairs take
    well under a second).

    The evidence rules of :func:`find_decay_point` (``count_cols``, ``events``, ``rules``,
    ``smooth_window``) are applied to the peak found, with the same evidence columns.

    Returns ``pair_cols, t_decay, peak_value, prominence``, the evidence columns, ``reason``
    (``"ok"``, ``"no_peak"``, ``"insufficient_data"``, ``"peak_on_empty_day"``,
    ``"not_a_peak"``).

    Notebook 05.
    """
    from scipy.signal import find_peaks

    if not 0 <= prominence < 1:
        raise ValueError(f"prominence must be in [0, 1), got {prominence}")
    rules = _ev.resolve_rules(rules)
    keys, codes, starts, counts, day, v, ev, obs = _series_events(
        panel, value_col, pair_cols, day_col, observed_col, count_cols, events
    )
    G = len(keys)
    t_dec = np.full(G, np.nan)
    pv = np.full(G, np.nan)
    pr = np.full(G, np.nan)
    ends = starts + counts
    for gi in range(G):
        x = v[starts[gi] : ends[gi]]
        d = day[starts[gi] : ends[gi]]
        keep = ~np.isnan(x)
        x, d = x[keep], d[keep]
        if x.size < 3:
            continue
        peaks, props = find_peaks(x, prominence=np.maximum(prominence * x, max(min_prominence, 1e-12)))
        if peaks.size:
            j = int(np.argmax(props["prominences"]))
            t_dec[gi], pv[gi], pr[gi] = d[peaks[j]], x[peaks[j]], props["prominences"][j]
    out = keys.copy()
    out["t_decay"] = t_dec
    out["peak_value"] = pv
    out["prominence"] = pr
    reason = np.where(np.isnan(t_dec), "no_peak", "ok").astype(object)
    reason = _apply_peak_evidence(out, reason, codes, starts, counts, day, ev, obs, _peak_rows(codes, day, G, t_dec),
                                  rules, smooth_window)
    out["reason"] = reason.astype(str)
    return out


def ruptures_baseline(
    panel: pd.DataFrame,
    *,
    value_col: str = "interest_smooth",
    pen_scale: float = 10.0,
    noise_lag: int = 7,
    min_size: int = 3,
    jump: int = 2,
    fast: bool = True,
    pair_cols: Sequence[str] = PAIR_COLS,
    day_col: str = "day",
    observed_col: str | None = "observed",
    count_cols: Sequence[str] | None = BEHAVIOURS,
    events: pd.DataFrame | None = None,
    rules: EvidenceRules | None = None,
    smooth_window: int = 7,
) -> pd.DataFrame:
    """Baseline: ``ruptures`` Pelt with the ``clinear`` cost (continuous piecewise-linear fit).

    Per pair, the series (observed days only) is split into linear segments joined at
    vertices; the decay point is the vertex where the slope turns from positive to negative
    (if several, the highest one). The penalty is scaled by the series' noise level,
    ``pen = pen_scale * sigma**2 * log(n)``, where ``sigma`` is a robust noise sd from the
    lag-``noise_lag`` second differences, ``1.4826 * MAD(x[t+L] - 2 x[t] + x[t-L]) / sqrt(6)``
    (a linear trend cancels; with ``L = 7`` the three terms of a 7-day moving average are
    independent, so this is right for ``interest_smooth`` as well as for raw series), floored
    at 1 % of the series' sd. ``pen_scale = 10`` was chosen on synthetic tents (F1 within ±3 days);
    raise it for fewer, lower it for more change points.

    ``jump`` and ``min_size`` bound the work (candidate change points every ``jump`` days).
    One loop over pairs (ruptures works per series). ``fast=True`` (default) uses the same
    ``clinear`` cost computed from cumulative sums (identical values, ~5x faster: 3000 pairs x
    100 days take a few seconds on a laptop core); ``fast=False`` uses ruptures' own
    ``model="clinear"`` (~30 s for 3000 x 100 at ``jump=2``).

    The evidence rules of :func:`find_decay_point` (``count_cols``, ``events``, ``rules``,
    ``smooth_window``) are applied to the vertex found, with the same evidence columns.

    Returns ``pair_cols, t_decay, n_bkps, pen``, the evidence columns, ``reason`` (``"ok"``,
    ``"no_turn"``, ``"too_short"``, ``"insufficient_data"``, ``"peak_on_empty_day"``,
    ``"not_a_peak"``).

    Notebook 05.
    """
    import ruptures as rpt

    if pen_scale <= 0:
        raise ValueError("pen_scale must be > 0")
    if min_size < 3 or jump < 1 or noise_lag < 1:
        raise ValueError("need min_size >= 3 (clinear), jump >= 1 and noise_lag >= 1")
    rules = _ev.resolve_rules(rules)
    keys, codes, starts, counts, day, v, ev, obs = _series_events(
        panel, value_col, pair_cols, day_col, observed_col, count_cols, events
    )
    cost_cls = _clinear_cumsum_cost() if fast else None
    G = len(keys)
    t_dec = np.full(G, np.nan)
    nb = np.zeros(G, dtype=np.int64)
    pens = np.full(G, np.nan)
    reason = np.full(G, "no_turn", dtype=object)
    ends = starts + counts
    # A pair whose whole series has fewer events or active days than the rules ask for around a
    # decay point can never pass them: no need to run Pelt on it (most pairs of a sparse real log).
    hopeless = np.zeros(G, dtype=bool)
    if ev is not None:
        use = obs & np.isfinite(ev)
        tot = np.bincount(codes, weights=np.where(use, ev, 0.0), minlength=G)
        act = np.bincount(codes, weights=(use & (ev > 0)).astype(np.float64), minlength=G)
        hopeless = (tot < rules.peak_min_events) | (act < rules.peak_min_active_days)
    for gi in range(G):
        if hopeless[gi]:
            reason[gi] = "insufficient_data"
            continue
        x = v[starts[gi] : ends[gi]]
        d = day[starts[gi] : ends[gi]]
        keep = ~np.isnan(x)
        x, d = x[keep], d[keep]
        n = x.size
        if n < 2 * min_size:
            reason[gi] = "too_short"
            continue
        lag = noise_lag if n > 2 * noise_lag + 2 else 1
        d2 = x[2 * lag :] - 2 * x[lag:-lag] + x[: -2 * lag]
        sigma = 1.4826 * np.median(np.abs(d2 - np.median(d2))) / np.sqrt(6.0)
        sigma = max(sigma, 0.01 * float(np.std(x)), 1e-9)
        pen = pen_scale * sigma**2 * np.log(n)
        pens[gi] = pen
        algo = rpt.Pelt(custom_cost=cost_cls(), min_size=min_size, jump=jump) if fast else rpt.Pelt(
            model="clinear", min_size=min_size, jump=jump
        )
        bkps = algo.fit(x).predict(pen=pen)
        nb[gi] = len(bkps) - 1
        vert = np.array([0] + [b - 1 for b in bkps], dtype=np.int64)  # vertices of the fit
        vert = np.unique(vert)
        if vert.size < 3:
            continue
        slopes = np.diff(x[vert]) / np.diff(vert)
        turn = np.flatnonzero((slopes[:-1] > 0) & (slopes[1:] < 0)) + 1
        if turn.size:
            j = turn[np.argmax(x[vert[turn]])]
            t_dec[gi] = d[vert[j]]
            reason[gi] = "ok"
    out = keys.copy()
    out["t_decay"] = t_dec
    out["n_bkps"] = nb
    out["pen"] = pens
    reason = _apply_peak_evidence(out, reason, codes, starts, counts, day, ev, obs, _peak_rows(codes, day, G, t_dec),
                                  rules, smooth_window)
    out["reason"] = reason.astype(str)
    return out


# --------------------------------------------------------------------------------------------
# Early warning (causal)
# --------------------------------------------------------------------------------------------
def _causal_level(history, value_col, window, pair_cols, day_col, observed_col, count_cols=BEHAVIOURS, rules=None):
    """Trailing level, its running maximum and (causal) evidence per history row.

    ``enough`` is True on a row when the pair's events and active days *up to that day* reach
    ``rules.min_events`` / ``rules.min_active_days`` (all True when ``history`` has no counts).
    """
    _check_causal_col(value_col)
    rules = _ev.resolve_rules(rules)
    keys, codes, starts, counts, day, v, ev, obs = _series_events(
        history, value_col, pair_cols, day_col, observed_col, count_cols, None, "history"
    )
    gaps = np.diff(day)
    same = np.ones(len(day), dtype=bool)
    same[starts] = False
    if np.any(gaps[same[1:]] != 1):
        raise ValueError("history must have contiguous days per pair (one row per day, as in the panel)")
    level = _trailing_mean(v, codes, starts, window)
    run_max = pd.Series(np.where(np.isnan(level), -np.inf, level)).groupby(codes).cummax().to_numpy()
    if ev is None:
        enough = np.ones(len(day), dtype=bool)
    else:
        e = np.where(obs, ev, 0.0)
        ce = np.cumsum(e)
        ca = np.cumsum((e > 0).astype(np.float64))
        base_e = np.concatenate([[0.0], ce])[starts][codes]
        base_a = np.concatenate([[0.0], ca])[starts][codes]
        enough = ~_ev.insufficient_mask(ce - base_e, ca - base_a, rules)
    return keys, codes, starts, day, level, run_max, enough


def _alert_reason(alert_day, enough, armed, codes, G):
    """Per pair: ``"ok"`` (alerted), ``"insufficient_data"`` (never enough events),
    ``"below_min_level"`` (enough events, never armed by the level), ``"no_alert"``."""
    def any_g(m):
        return np.bincount(codes, weights=np.asarray(m, dtype=np.float64), minlength=G) > 0

    return _ev.first_reason(G, [
        (np.isfinite(alert_day), "ok"),
        (~any_g(enough), "insufficient_data"),
        (~any_g(armed), "below_min_level"),
    ], default="no_alert")


def early_warning_baseline(
    history: pd.DataFrame,
    *,
    value_col: str = "interest",
    window: int = 7,
    margin: float = 0.3,
    min_level: float = 1.0,
    persistence: int = 1,
    pair_cols: Sequence[str] = PAIR_COLS,
    day_col: str = "day",
    observed_col: str | None = "observed",
    return_flags: bool = False,
    count_cols: Sequence[str] | None = BEHAVIOURS,
    rules: EvidenceRules | None = None,
):
    """Model-free causal early warning: the trailing mean turns down by a margin after a rise.

    On each day ``d`` (using days ``<= d`` only): ``level_d`` = mean of the observed days among
    the last ``window`` days (undefined until the pair has ``window`` days of history); ``M_d`` = running maximum of ``level`` up to ``d``. Alert on the first day
    with ``M_d >= min_level`` (the series has risen to a meaningful level) and
    ``level_d <= (1 - margin) * M_d``, held for ``persistence`` consecutive days. Because the
    trailing mean lags, this baseline alerts *after* the peak: it is the bar a forecasting
    model has to beat.

    Parameters
    ----------
    history : DataFrame
        The daily panel (contiguous days per pair): pair columns, ``day``, ``value_col``,
        ``observed``. ``interest_smooth`` is rejected (it is centered: uses future days).
    min_level : float
        Minimum trailing level (score units per day) the series must have reached.
    count_cols, rules
        Evidence (:mod:`decaylib.decay.evidence`, rule 5): a pair is armed on day ``d`` only once it
        has at least ``rules.min_events`` events and ``rules.min_active_days`` active days up
        to ``d`` (causal: counted from the pair's first day to ``d``). Needs the count columns
        in ``history`` (the panel has them); without them only the level rule arms.

    Returns
    -------
    DataFrame, or (DataFrame, DataFrame) with ``return_flags``
        ``pair_cols, alert_day`` (float, NaN = never), ``n_days``, ``reason`` (``"ok"`` = an
        alert was raised, ``"insufficient_data"`` = never enough events to be armed,
        ``"below_min_level"``, ``"no_alert"`` = armed but the rule never fired); the flags
        table has one row per (pair, day): ``level, run_max, armed, alert``.

    Notebook 05.
    """
    if not 0 < margin < 1:
        raise ValueError(f"margin must be in (0, 1), got {margin}")
    if window < 1 or persistence < 1:
        raise ValueError("window and persistence must be >= 1")
    keys, codes, starts, day, level, run_max, enough = _causal_level(
        history, value_col, window, pair_cols, day_col, observed_col, count_cols, rules
    )
    armed = (run_max >= min_level) & enough
    cond = armed & (level <= (1 - margin) * run_max)
    cond = _run_length_ok(cond, codes, starts, persistence)
    out = keys.copy()
    G = len(keys)
    out["alert_day"] = _first_day(cond, codes, day, G)
    out["n_days"] = np.bincount(codes, minlength=G).astype(np.int64)
    out["reason"] = _alert_reason(out["alert_day"].to_numpy(), enough, armed, codes, G).astype(str)
    if return_flags:
        flags = keys.iloc[codes].reset_index(drop=True)
        flags[day_col] = day.astype(np.int64)
        flags["level"] = level
        flags["run_max"] = np.where(np.isfinite(run_max), run_max, np.nan)
        flags["armed"] = armed
        flags["alert"] = cond
        return out, flags
    return out


def early_warning(
    forecasts: pd.DataFrame,
    history: pd.DataFrame,
    *,
    rule: str = "mean_below_level",
    horizon: int | None = None,
    value_col: str = "interest",
    window: int = 7,
    margin: float = 0.1,
    min_level: float = 1.0,
    persistence: int = 1,
    pair_cols: Sequence[str] = PAIR_COLS,
    day_col: str = "day",
    observed_col: str | None = "observed",
    return_flags: bool = False,
    count_cols: Sequence[str] | None = BEHAVIOURS,
    rules: EvidenceRules | None = None,
):
    """Model-based causal early warning from forecast paths.

    Convention: the path with ``origin_day = d`` was made with data up to and including day
    ``d``; ``horizon h`` forecasts day ``d + h``. At origin ``d`` the rule sees that path and the
    history up to ``d`` only, so an alert at ``d`` cannot depend on anything later (the caller
    must make sure the forecasts themselves are causal).

    ``level_d`` = mean of ``value_col`` over the observed days among the last ``window`` days up
    to ``d`` (undefined, so no alert, before the pair has ``window`` days of history); ``armed_d`` = its running maximum has reached ``min_level`` (the series has risen).
    Rules:

    * ``"mean_below_level"`` (default): the forecast mean over horizons ``1..horizon`` is below
      ``(1 - margin) * level_d``.
    * ``"path_turns"``: the forecast path (prefixed with ``level_d``) reaches its maximum
      before its end and ends at least ``margin`` below that maximum: the model predicts the
      turn itself, which can fire *before* the peak.

    An alert is the first origin where ``armed`` and the rule hold for ``persistence``
    consecutive origins.

    Parameters
    ----------
    forecasts : DataFrame
        ``user_id, category, origin_day, horizon, interest_pred`` (score units).
    history : DataFrame
        The daily panel (contiguous days per pair) with ``value_col`` and ``observed``.
        ``interest_smooth`` is rejected (centered, uses the future).
    horizon : int, optional
        Use horizons ``1..horizon`` (default all).
    count_cols, rules
        Evidence, as in :func:`early_warning_baseline`: armed only once the pair has
        ``rules.min_events`` events and ``rules.min_active_days`` active days in ``history``
        up to the origin.

    Returns
    -------
    DataFrame, or (DataFrame, DataFrame) with ``return_flags``
        ``pair_cols, alert_day`` (float, NaN = never), ``n_origins``, ``reason`` (as in
        :func:`early_warning_baseline`); one row per pair of ``forecasts``. The flags table has
        one row per (pair, origin): ``level, fc_mean, armed, alert``.

    Notebooks 05 and 07.
    """
    check_choice("rule", rule, {"mean_below_level", "path_turns"})
    if not 0 < margin < 1:
        raise ValueError(f"margin must be in (0, 1), got {margin}")
    if window < 1 or persistence < 1:
        raise ValueError("window and persistence must be >= 1")
    pair_cols = list(pair_cols)
    check_frame(forecasts, FORECAST_COLS, "forecasts")
    H = int(forecasts["horizon"].max()) if horizon is None else int(horizon)
    if H < 1:
        raise ValueError("horizon must be >= 1")
    hkeys, hcodes, hstarts, hday, level, run_max, enough = _causal_level(
        history, value_col, window, pair_cols, day_col, observed_col, count_cols, rules
    )
    lev = hkeys.iloc[hcodes].reset_index(drop=True)
    lev["origin_day"] = hday.astype(np.int64)
    lev["level"] = level
    lev["level_ok"] = run_max >= min_level
    lev["enough"] = enough
    lev["armed"] = lev["level_ok"].to_numpy() & enough

    fc = forecasts.loc[forecasts["horizon"].between(1, H), list(FORECAST_COLS)]
    if fc.duplicated(pair_cols + ["origin_day", "horizon"]).any():
        raise ValueError("forecasts has duplicate (user_id, category, origin_day, horizon) rows")
    wide = fc.set_index(pair_cols + ["origin_day", "horizon"])["interest_pred"].unstack("horizon")
    wide = wide.reindex(columns=range(1, H + 1)).sort_index()
    P = wide.to_numpy(dtype=np.float64, na_value=np.nan)
    org = wide.index.to_frame(index=False)
    org = org.merge(lev, on=pair_cols + ["origin_day"], how="left")
    lvl = org["level"].to_numpy(dtype=np.float64, na_value=np.nan)
    armed = org["armed"].to_numpy(dtype=bool, na_value=False)  # origins without history: not armed
    enough_o = org["enough"].to_numpy(dtype=bool, na_value=False)
    fc_mean = np.mean(P, axis=1)
    with np.errstate(invalid="ignore"):
        if rule == "mean_below_level":
            rule_ok = fc_mean < (1 - margin) * lvl
        else:
            path = np.column_stack([lvl, P])
            pmax = np.max(path, axis=1)
            amax = np.argmax(np.where(np.isnan(path), -np.inf, path), axis=1)
            rule_ok = (amax < H) & (path[:, -1] <= (1 - margin) * pmax)
    cond = armed & np.nan_to_num(rule_ok, nan=0).astype(bool) & np.isfinite(fc_mean) & np.isfinite(lvl)
    # pair codes over the (sorted) origins
    new = np.ones(len(org), dtype=bool)
    new[1:] = np.logical_or.reduce([org[c].to_numpy()[1:] != org[c].to_numpy()[:-1] for c in pair_cols])
    starts = np.flatnonzero(new)
    codes = np.cumsum(new) - 1
    cond = _run_length_ok(cond, codes, starts, persistence)
    out = org.iloc[starts][pair_cols].reset_index(drop=True)
    odays = org["origin_day"].to_numpy(dtype=np.float64)
    out["alert_day"] = _first_day(cond, codes, odays, len(out))
    out["n_origins"] = np.bincount(codes, minlength=len(out)).astype(np.int64)
    out["reason"] = _alert_reason(out["alert_day"].to_numpy(), enough_o, armed, codes, len(out)).astype(str)
    if return_flags:
        flags = org[pair_cols + ["origin_day"]].copy()
        flags["level"] = lvl
        flags["fc_mean"] = fc_mean
        flags["armed"] = armed
        flags["alert"] = cond
        return out, flags
    return out


def tune_early_warning(forecasts: pd.DataFrame, history: pd.DataFrame, truth, *, windows=(5, 7, 10, 14),
                       margins=(0.1, 0.2, 0.3), min_levels=(1.0,), max_too_early: float = 0.10,
                       early_margin: int = 3, pair_cols: Sequence[str] = PAIR_COLS):
    """Choose the :func:`early_warning` window, margin and arming level on **tuning** pairs.

    Every (window, margin, min_level) of the grid is scored with :func:`alert_metrics` against ``truth``
    (pair columns and ``t_peak``).  The choice: among settings with a share of too-early alerts
    at most ``max_too_early``, the one with the smallest median delay (ties: more alerts within
    the margin); if none qualifies, the one with the fewest too-early alerts.  Pass tuning pairs
    only and report on other pairs: choosing thresholds on the evaluation pairs would flatter
    the result.

    ``min_level`` is the level (trailing mean, in score units) a pair must have reached before
    it can raise an alert: low-volume pairs are mostly noise, and their "turns" are the false
    alarms.  Raising it trades a few never-alerted quiet pairs for fewer premature alerts.

    Returns ``(best, table)``: ``best`` is a dict with ``window``, ``margin`` and ``min_level``;
    ``table`` has one row per setting.

    Notebook 05.
    """
    if not len(windows) or not len(margins) or not len(min_levels):
        raise ValueError("windows, margins and min_levels must be non-empty")
    truth_df = truth if isinstance(truth, pd.DataFrame) else truth.rename("t_peak").reset_index()
    keys = truth_df[list(pair_cols)]
    fc = forecasts.merge(keys, on=list(pair_cols))
    hist = history.merge(keys, on=list(pair_cols))
    if fc.empty or hist.empty:
        raise ValueError("no forecasts or history for the tuning pairs")
    rows = []
    for lv in min_levels:
        for w in windows:
            for m in margins:
                alerts = early_warning(fc, hist, window=int(w), margin=float(m), min_level=float(lv), pair_cols=pair_cols)
                met = alert_metrics(alerts, truth_df, early_margin=early_margin, pair_cols=pair_cols)
                rows.append({"window": int(w), "margin": float(m), "min_level": float(lv), **{k: met[k] for k in
                             ("median_delay", "share_too_early", "share_within", "share_never")}})
    table = pd.DataFrame(rows)
    ok = table[table["share_too_early"] <= max_too_early]
    if len(ok):
        best = ok.sort_values(["median_delay", "share_within", "share_too_early"], ascending=[True, False, True]).iloc[0]
    else:
        best = table.sort_values(["share_too_early", "median_delay"]).iloc[0]
    return {"window": int(best["window"]), "margin": float(best["margin"]), "min_level": float(best["min_level"])}, table
