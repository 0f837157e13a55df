"""What can be known ahead of a decay point (notebook 05, section 3).

Two measurements of the limits of early warning, both on the simulator (they need the truth):

* **The oracle limit** (:func:`oracle_cusum`): Page's CUSUM on the Poisson event counts, given each
  pair's *true* expected counts before and after its peak. No detector can hold more information
  about the turn short of being told the day, so its delay at a given share of alarms before the
  peak is the bar the LSTM alert is measured against.
* **A calibrated probability** (:func:`hazard_features`, :func:`hazard_rows`, :func:`fit_hazard`,
  :func:`hazard_eval`): the probability that the decay point falls within the next ``k`` days,
  from what the counts (and the forecasts) show up to day ``d``, scored by the Brier score against
  the base rate and a reliability table (:func:`brier_score`, :func:`reliability_table`).

The oracle's two curves
-----------------------
For a pair with peak day :math:`t_p`, expected count :math:`m_p` on that day, decay rate
:math:`\\lambda` and rise rate :math:`\\kappa` (the simulator's rise is exponential,
:math:`\\kappa = \\ln(m_p / m_{t_{start}}) / (t_p - t_{start})`, read off ``truth_daily``):

* ``mu0`` (no turn yet): the true mean up to the peak, then the rise continued,
  :math:`m_p e^{\\kappa (t - t_p)}` (``pre="rise"``, the process as it was before the change), or
  the peak level held, :math:`m_p` (``pre="plateau"``, a harder test: "interest stays where it is");
* ``mu1`` (the turn has come): the true mean from the peak on, and before it the decay curve
  extended backwards, :math:`m_p e^{-\\lambda (t - t_p)}`.

After the peak the counts follow ``mu1``, before it ``mu0``, so the log-likelihood ratio
:math:`\\ell_t = y_t \\ln(\\mu_{1t}/\\mu_{0t}) - (\\mu_{1t} - \\mu_{0t})` has a negative mean before the
peak and a positive one after. :math:`S_t = \\max(0, S_{t-1} + \\ell_t)` is the likelihood ratio of
"the decay curve has applied since some day" against "the pre-peak curve still applies",
maximised over the change day: the optimal sequential test for a change between two known
processes (Page 1954; Lorden 1971 for its optimality). The curves meet at the peak, so the
detector knows *where* a turn would be; what it cannot do is see it in the counts before they
change, and noise near the peak makes it either wait or raise alarms before the peak. Those are
the two quantities compared (:meth:`OracleCusum.at_share`: the delay at a matched share of
alarms before the peak).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from decaylib.checks import bool_column, check_frame, numeric_column
from decaylib.schema import BEHAVIOURS, PAIR_COLS

__all__ = ['poisson_llr', 'cusum_path', 'first_crossing', 'OracleCusum', 'oracle_cusum', 'HAZARD_FEATURES', 'hazard_features', 'hazard_rows', 'fit_hazard', 'predict_hazard', 'brier_score', 'reliability_table', 'hazard_eval']

_TINY = 1e-12


# --------------------------------------------------------------------------------------------
# CUSUM on arrays
# --------------------------------------------------------------------------------------------
def poisson_llr(y, mu0, mu1, observed=None) -> np.ndarray:
    """Poisson log-likelihood ratio of ``mu1`` against ``mu0`` for counts ``y`` (broadcasts).

    :math:`\\ell = y \\ln(\\mu_1/\\mu_0) - (\\mu_1 - \\mu_0)`. Means are floored at 1e-12 (a mean of 0
    is "no events possible"). Unobserved entries (``observed`` False, or ``y`` NaN: an outage or a
    day the pair has no row) contribute 0.

    Notebook 05.
    """
    y = np.asarray(y, dtype=np.float64)
    mu0 = np.asarray(mu0, dtype=np.float64)
    mu1 = np.asarray(mu1, dtype=np.float64)
    if np.any(mu0 < 0) or np.any(mu1 < 0):
        raise ValueError("mu0 and mu1 must be >= 0")
    if np.any(y[np.isfinite(y)] < 0):
        raise ValueError("counts y must be >= 0")
    m0 = np.maximum(np.nan_to_num(mu0, nan=_TINY), _TINY)
    m1 = np.maximum(np.nan_to_num(mu1, nan=_TINY), _TINY)
    ok = np.isfinite(y) & np.isfinite(mu0) & np.isfinite(mu1)
    if observed is not None:
        ok &= np.asarray(observed, dtype=bool)
    llr = np.where(ok, np.nan_to_num(y) * np.log(m1 / m0) - (m1 - m0), 0.0)
    return llr


def cusum_path(llr) -> np.ndarray:
    """Page's CUSUM along the last axis: ``S_t = max(0, S_{t-1} + llr_t)``, ``S_{-1} = 0``.

    ``llr`` is ``(T,)`` or ``(G, T)``: a loop over the T days, vectorized over the pairs.

    Notebook 05.
    """
    llr = np.asarray(llr, dtype=np.float64)
    if not np.all(np.isfinite(llr)):
        raise ValueError("llr must be finite (unobserved days contribute 0, see poisson_llr)")
    s = np.zeros(llr.shape, dtype=np.float64)
    prev = np.zeros(llr.shape[:-1], dtype=np.float64)
    for t in range(llr.shape[-1]):
        prev = np.maximum(0.0, prev + llr[..., t])
        s[..., t] = prev
    return s


def first_crossing(s, h: float) -> np.ndarray:
    """Index of the first ``t`` with ``s[..., t] >= h`` along the last axis; ``-1`` if never.

    ``h`` must be > 0 (``S`` is never negative, so ``h <= 0`` would alarm on the first day).

    Notebook 05.
    """
    h = float(h)
    if not np.isfinite(h) or h <= 0:
        raise ValueError(f"h must be a finite number > 0, got {h}")
    s = np.asarray(s, dtype=np.float64)
    hit = s >= h
    idx = np.argmax(hit, axis=-1)
    return np.where(hit.any(axis=-1), idx, -1)


# --------------------------------------------------------------------------------------------
# The oracle on a panel
# --------------------------------------------------------------------------------------------
def _count_cols(column) -> list[str]:
    cols = list(BEHAVIOURS) if column is None else ([column] if isinstance(column, str) else list(column))
    bad = [c for c in cols if c not in BEHAVIOURS]
    if not cols or bad:
        raise ValueError(f"column must be count column(s) among {list(BEHAVIOURS)} (the truth has their expected "
                         f"values), got {column!r}")
    return cols


def _dense(frame, pair_cols, day_col, name):
    """Pair codes and day indices of a long table: (keys, codes, day_index, days grid)."""
    if frame[pair_cols].isna().any().any():
        raise ValueError(f"{name} has missing values in the pair columns {pair_cols}")
    if frame.duplicated(pair_cols + [day_col]).any():
        raise ValueError(f"{name} has duplicate ({', '.join(pair_cols)}, {day_col}) rows")
    g = frame.groupby(pair_cols, sort=True)
    codes = g.ngroup().to_numpy()
    keys = g.size().reset_index()[pair_cols]
    day = numeric_column(frame, day_col, name)
    if np.any(~np.isfinite(day)) or np.any(day != np.round(day)):
        raise ValueError(f"{name}[{day_col!r}] must hold whole day numbers")
    day = day.astype(np.int64)
    return keys, codes, day


@dataclass
class OracleCusum:
    """CUSUM paths of the oracle detector, one row per pair (see :func:`oracle_cusum`).

    Attributes: ``pairs`` (pair columns, ``t_peak``), ``days`` (the day grid, ``(T,)``), ``S``
    (``(G, T)``, 0 on days a pair has no row), ``llr`` (``(G, T)``).

    Notebook 05.
    """

    pairs: pd.DataFrame
    days: np.ndarray
    S: np.ndarray
    llr: np.ndarray
    pair_cols: tuple = PAIR_COLS

    def _select(self, pairs):
        if pairs is None:
            return np.arange(len(self.pairs))
        pc = list(self.pair_cols)
        check_frame(pairs, pc, "pairs")
        idx = self.pairs[pc].reset_index().merge(pairs[pc].drop_duplicates(), on=pc, how="inner")["index"]
        if len(idx) == 0:
            raise ValueError("none of the given pairs is in the oracle's pairs")
        return np.sort(idx.to_numpy())

    def alarms(self, h: float, pairs: pd.DataFrame | None = None) -> pd.DataFrame:
        """Per pair: ``alert_day`` (first day with ``S >= h``, NaN = never), ``delay`` = alert_day − t_peak."""
        sel = self._select(pairs)
        i = first_crossing(self.S[sel], h)
        out = self.pairs.iloc[sel].reset_index(drop=True).copy()
        out["alert_day"] = np.where(i >= 0, self.days[np.maximum(i, 0)], np.nan).astype(np.float64)
        out["delay"] = out["alert_day"] - out["t_peak"].to_numpy(dtype=np.float64)
        return out

    def max_before_peak(self, pairs: pd.DataFrame | None = None) -> np.ndarray:
        """Per pair, the largest ``S_t`` on days before the true peak (0 if none): the pair alarms
        before its peak exactly when ``h`` is at most this value."""
        sel = self._select(pairs)
        before = self.days[None, :] < self.pairs["t_peak"].to_numpy()[sel, None]
        return np.max(np.where(before, self.S[sel], 0.0), axis=1, initial=0.0)

    def early_share(self, h: float, pairs: pd.DataFrame | None = None) -> float:
        """Share of pairs alarmed before their true peak at threshold ``h``."""
        return float(np.mean(self.max_before_peak(pairs) >= float(h)))

    def threshold_for_share(self, share: float, pairs: pd.DataFrame | None = None) -> float:
        """The smallest ``h > 0`` whose share of alarms before the peak is at most ``share``.

        Exact (no grid): the share is a step function of ``h`` that drops at each pair's
        :meth:`max_before_peak`. A lower ``h`` alarms sooner after the peak, so this is the
        earliest detector with no more early alarms than ``share`` allows.
        """
        share = float(share)
        if not 0 <= share <= 1:
            raise ValueError(f"share must be in [0, 1], got {share}")
        m = self.max_before_peak(pairs)
        cand = np.nextafter(np.unique(np.concatenate([[0.0], m])), np.inf)
        shares = np.mean(m[None, :] >= cand[:, None], axis=1)
        return float(cand[np.argmax(shares <= share + 1e-12)])

    def at_share(self, share: float, pairs: pd.DataFrame | None = None, *, early_margin: int = 3) -> dict:
        """The oracle at a matched share of alarms before the peak, on ``pairs``.

        Returns a dict: ``h``, ``share_before_peak`` (achieved), ``median_delay``, ``mean_delay``
        (over alarmed pairs), ``share_too_early`` (more than ``early_margin`` days before),
        ``share_within`` (within ±``early_margin``), ``share_never``, ``n_pairs`` and ``alarms`` (the
        per-pair table of :meth:`alarms`).
        """
        h = self.threshold_for_share(share, pairs)
        a = self.alarms(h, pairs)
        d = a["delay"].to_numpy()
        hit = np.isfinite(d)
        return {
            "h": h,
            "share_before_peak": float(np.mean(hit & (d < 0))),
            "median_delay": float(np.median(d[hit])) if hit.any() else float("nan"),
            "mean_delay": float(np.mean(d[hit])) if hit.any() else float("nan"),
            "share_too_early": float(np.mean(hit & (d < -early_margin))),
            "share_within": float(np.mean(hit & (np.abs(d) <= early_margin))),
            "share_never": float(np.mean(~hit)),
            "n_pairs": int(len(a)),
            "alarms": a,
        }


def oracle_cusum(
    panel: pd.DataFrame,
    truth: pd.DataFrame,
    truth_daily: pd.DataFrame,
    *,
    column: str | Sequence[str] | None = None,
    pre: str = "rise",
    pair_cols: Sequence[str] = PAIR_COLS,
    day_col: str = "day",
    observed_col: str | None = "observed",
) -> OracleCusum:
    """Page's CUSUM on each pair's counts, knowing its true expected counts (the oracle limit).

    Vectorized: one ``(pairs, days)`` array, a loop over the days only.

    Parameters
    ----------
    panel : DataFrame
        The daily panel: pair columns, ``day``, the count column(s), ``observed`` (False on outage
        days: they contribute 0). The CUSUM runs over the days each pair has rows (from its first
        event on): an alarm can only come once the pair has started.
    truth, truth_daily : DataFrame
        The simulator's truth (``t_start, t_peak, lam, is_bot`` per pair) and its daily expected
        counts (``expected_<column>`` per pair and day from ``t_start``). Bots are left out.
    column : str or list of str, optional
        Count column(s) summed into the observed count ``y_t``; default all events
        (``view + click + cart + purchase``). Their ``expected_*`` columns give the means.
    pre : {"rise", "plateau"}
        The no-turn curve ``mu0`` after the peak: the rise continued, or the peak level held (see
        the module docstring). Before the peak both use the true mean.

    Returns
    -------
    OracleCusum
        Paths ``S`` for every non-bot pair in both ``panel`` and ``truth``; use
        :meth:`OracleCusum.at_share` (matched early alarms) or :meth:`OracleCusum.alarms`.

    Notebook 05.
    """
    if pre not in ("rise", "plateau"):
        raise ValueError(f"pre must be 'rise' or 'plateau', got {pre!r}")
    pc = list(pair_cols)
    cols = _count_cols(column)
    check_frame(panel, pc + [day_col] + cols + ([observed_col] if observed_col else []), "panel")
    check_frame(truth, pc + ["t_start", "t_peak", "peak_interest", "lam", "is_bot"], "truth")
    check_frame(truth_daily, pc + [day_col, "interest"] + [f"expected_{c}" for c in cols], "truth_daily")
    if truth.duplicated(pc).any():
        raise ValueError("truth has more than one row for some pairs")
    tr = truth.loc[~bool_column(truth, "is_bot", "truth"), pc + ["t_start", "t_peak", "peak_interest", "lam"]]
    tr = tr.merge(panel[pc].drop_duplicates(), on=pc, how="inner").sort_values(pc, ignore_index=True)
    if tr.empty:
        raise ValueError("no non-bot pair of truth has rows in panel")
    pn = panel[pc + [day_col] + cols + ([observed_col] if observed_col else [])].merge(tr[pc], on=pc, how="inner")
    keys, codes, day = _dense(pn, pc, day_col, "panel")
    if len(keys) != len(tr) or not (keys.to_numpy() == tr[pc].to_numpy()).all():
        raise AssertionError("internal: panel pairs and truth pairs are not aligned")
    d0, d1 = int(day.min()), int(day.max())
    days = np.arange(d0, d1 + 1)
    G, T = len(keys), len(days)
    y = np.full((G, T), np.nan)
    yv = sum(numeric_column(pn, c, "panel") for c in cols)
    if observed_col:
        yv = np.where(bool_column(pn, observed_col, "panel"), yv, np.nan)
    y[codes, day - d0] = yv

    # true expected counts on the grid (0 before t_start), the peak mean and the rise rate
    td = truth_daily[pc + [day_col, "interest"] + [f"expected_{c}" for c in cols]].merge(tr[pc], on=pc, how="inner")
    tkeys, tcodes, tday = _dense(td, pc, day_col, "truth_daily")
    pos = keys.reset_index().merge(tkeys.reset_index().rename(columns={"index": "t"}), on=pc, how="left")
    tmap = np.full(len(tkeys), -1)
    ok_t = pos["t"].notna().to_numpy()
    tmap[pos.loc[ok_t, "t"].to_numpy(dtype=np.int64)] = pos.loc[ok_t, "index"].to_numpy()
    g_of = tmap[tcodes]
    inside = (g_of >= 0) & (tday >= d0) & (tday <= d1)
    ev = sum(numeric_column(td, f"expected_{c}", "truth_daily") for c in cols)
    if np.any(ev < 0) or not np.all(np.isfinite(ev)):
        raise ValueError("truth_daily expected counts must be finite and >= 0")
    mu = np.zeros((G, T))
    mu[g_of[inside], tday[inside] - d0] = ev[inside]

    t_peak = tr["t_peak"].to_numpy(dtype=np.float64)
    t_start = tr["t_start"].to_numpy(dtype=np.float64)
    lam = tr["lam"].to_numpy(dtype=np.float64)
    # peak mean and the mean on t_start, read from truth_daily (any day of the data window)
    def _mean_on(target):
        out = np.full(G, np.nan)
        hit = (g_of >= 0) & (tday == target[np.maximum(g_of, 0)])
        out[g_of[hit]] = ev[hit]
        return out

    m_pk = _mean_on(t_peak)
    m_st = _mean_on(t_start)
    if np.any(np.isnan(m_pk)):  # peak after the last day: the peak interest times the pair's events per unit
        iv = numeric_column(td, "interest", "truth_daily")
        num = np.bincount(g_of[g_of >= 0], ev[g_of >= 0], minlength=G)
        den = np.bincount(g_of[g_of >= 0], iv[g_of >= 0], minlength=G)
        with np.errstate(invalid="ignore", divide="ignore"):
            rate = np.where(den > 0, num / den, np.nan)
        m_pk = np.where(np.isnan(m_pk), tr["peak_interest"].to_numpy(dtype=np.float64) * rate, m_pk)
        if np.any(np.isnan(m_pk)):
            raise ValueError("truth_daily has no day with interest > 0 for some pairs: their peak mean is unknown")
    rise = np.maximum(t_peak - t_start, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        kappa = np.where((m_st > 0) & (t_peak > t_start), np.log(m_pk / m_st) / rise, 0.0)
    dt = days[None, :] - t_peak[:, None]
    after = dt > 0
    if pre == "rise":
        mu0 = np.where(after, m_pk[:, None] * np.exp(np.minimum(kappa[:, None] * dt, 50.0)), mu)
    else:
        mu0 = np.where(after, m_pk[:, None], mu)
    mu1 = np.where(dt < 0, m_pk[:, None] * np.exp(np.minimum(-lam[:, None] * dt, 50.0)), mu)
    llr = poisson_llr(y, mu0, mu1)
    S = cusum_path(llr)
    pairs = tr[pc + ["t_peak"]].copy()
    return OracleCusum(pairs=pairs, days=days, S=S, llr=llr, pair_cols=tuple(pc))

# --------------------------------------------------------------------------------------------
# Hazard: P(decay point within the next k days | data up to day d)
# --------------------------------------------------------------------------------------------
HAZARD_FEATURES = ("days_active", "log_level", "slope", "log_level_to_max", "days_since_max", "log_cum_events",
                   "fc_ratio", "has_forecast")


def _trail_mean(x, k, w, lag=0):
    """Trailing mean over columns [t-lag-w+1, t-lag] of the non-NaN values (NaN where none); (G, T)."""
    G, T = x.shape
    cx = np.concatenate([np.zeros((G, 1)), np.cumsum(np.nan_to_num(x), axis=1)], axis=1)
    ck = np.concatenate([np.zeros((G, 1)), np.cumsum(k, axis=1)], axis=1)
    t = np.arange(T)
    hi = np.clip(t - lag + 1, 0, T)
    lo = np.clip(t - lag - w + 1, 0, T)
    s = cx[:, hi] - cx[:, lo]
    c = ck[:, hi] - ck[:, lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, s / np.where(c > 0, c, 1.0), np.nan)


def hazard_features(
    panel: pd.DataFrame,
    *,
    column: str | Sequence[str] | None = None,
    window: int = 7,
    forecasts: pd.DataFrame | None = None,
    level_col: str = "interest",
    pair_cols: Sequence[str] = PAIR_COLS,
    day_col: str = "day",
    observed_col: str | None = "observed",
) -> pd.DataFrame:
    """Causal features per pair-day, from the pair's first event on (a row uses days ``<= d`` only).

    With ``y`` = the day's events (``column``, default all four counts; outage days skipped) and
    ``L_d`` = mean of ``y`` over the observed days among the last ``window`` days (days before the
    first event count as 0 events; a partial window at the start of the log):

    * ``days_active``: days since the pair's first event (how long the rise has been going on);
    * ``log_level``: ``ln(0.5 + L_d)``;
    * ``slope``: ``ln((0.5 + L_d) / (0.5 + L_{d-window}))``, the change over the last window;
    * ``log_level_to_max``: ``ln((0.5 + L_d) / (0.5 + max_{s<=d} L_s))`` (0 while still at its top);
    * ``days_since_max``: days since that running maximum was reached;
    * ``log_cum_events``: ``ln(1 + events so far)``;
    * ``fc_ratio``: ``ln((0.5 + F_d) / (0.5 + Lint_d))`` with ``F_d`` the mean forecast path made at
      ``d`` (``forecasts``: ``origin_day, horizon, interest_pred``, e.g. the cross-fitted LSTM) and
      ``Lint_d`` the trailing mean of ``level_col`` (the same units); 0 where there is no forecast;
    * ``has_forecast``: 1 where a forecast was made at ``d``.

    Returns pair columns, ``day`` and :data:`HAZARD_FEATURES`.

    Notebook 05.
    """
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be an int >= 1, got {window!r}")
    pc = list(pair_cols)
    cols = _count_cols(column)
    need_level = forecasts is not None
    check_frame(panel, pc + [day_col] + cols + ([observed_col] if observed_col else []) + ([level_col] if need_level else []),
                 "panel")
    keys, codes, day = _dense(panel, pc, day_col, "panel")
    d0, d1 = int(day.min()), int(day.max())
    G, T = len(keys), d1 - d0 + 1
    obs_row = bool_column(panel, observed_col, "panel") if observed_col else np.ones(len(panel), dtype=bool)
    yv = sum(numeric_column(panel, c, "panel") for c in cols)
    if np.any(yv[np.isfinite(yv)] < 0):
        raise ValueError("counts must be >= 0")
    y = np.zeros((G, T))  # a day without a row: no events (before the first event, or absent)
    obs = np.ones((G, T), dtype=bool)
    present = np.zeros((G, T), dtype=bool)
    ci = day - d0
    y[codes, ci] = np.where(obs_row, np.nan_to_num(yv), 0.0)
    obs[codes, ci] = obs_row & np.isfinite(yv)
    present[codes, ci] = True
    yo = np.where(obs, y, np.nan)
    k = obs.astype(np.float64)
    lev = _trail_mean(yo, k, window)
    prev = _trail_mean(yo, k, window, lag=window)
    cum = np.cumsum(np.where(obs, y, 0.0), axis=1)
    started = cum > 0
    first = np.where(started.any(axis=1), np.argmax(started, axis=1), T)
    t = np.arange(T)
    lev0 = np.nan_to_num(lev)
    run_max = np.maximum.accumulate(np.where(started, lev0, -np.inf), axis=1)
    # day the running maximum was last raised
    raised = started & (lev0 >= run_max)
    last_raise = np.maximum.accumulate(np.where(raised, t[None, :], -1), axis=1)
    feats = {
        "days_active": (t[None, :] - first[:, None]).astype(np.float64),
        "log_level": np.log(0.5 + lev0),
        "slope": np.log((0.5 + lev0) / (0.5 + np.nan_to_num(prev))),
        "log_level_to_max": np.log((0.5 + lev0) / (0.5 + np.where(np.isfinite(run_max), run_max, 0.0))),
        "days_since_max": (t[None, :] - np.maximum(last_raise, first[:, None])).astype(np.float64),
        "log_cum_events": np.log1p(cum),
    }
    fc_ratio = np.zeros((G, T))
    has_fc = np.zeros((G, T))
    if forecasts is not None:
        check_frame(forecasts, pc + ["origin_day", "horizon", "interest_pred"], "forecasts")
        iv = np.full((G, T), np.nan)
        iv[codes, ci] = np.where(obs_row, numeric_column(panel, level_col, "panel"), np.nan)
        lev_i = _trail_mean(iv, np.isfinite(iv).astype(np.float64), window)
        fc = forecasts.groupby(pc + ["origin_day"], sort=False)["interest_pred"].mean().reset_index()
        fc = fc.merge(keys.reset_index().rename(columns={"index": "_g"}), on=pc, how="inner")
        od = fc["origin_day"].to_numpy(dtype=np.int64)
        inw = (od >= d0) & (od <= d1)
        fmat = np.full((G, T), np.nan)
        fmat[fc["_g"].to_numpy()[inw], od[inw] - d0] = fc["interest_pred"].to_numpy(dtype=np.float64)[inw]
        good = np.isfinite(fmat) & np.isfinite(lev_i)
        fc_ratio = np.where(good, np.log((0.5 + np.maximum(np.nan_to_num(fmat), 0)) / (0.5 + np.nan_to_num(lev_i))), 0.0)
        has_fc = good.astype(np.float64)
    feats["fc_ratio"] = fc_ratio
    feats["has_forecast"] = has_fc
    keep = present & (t[None, :] >= first[:, None])
    g_idx, t_idx = np.nonzero(keep)
    out = keys.iloc[g_idx].reset_index(drop=True)
    out[day_col] = (t_idx + d0).astype(np.int64)
    for name in HAZARD_FEATURES:
        out[name] = feats[name][g_idx, t_idx]
    return out


def hazard_rows(features: pd.DataFrame, truth: pd.DataFrame, k: int, *, at_risk_only: bool = True,
                pair_cols: Sequence[str] = PAIR_COLS, day_col: str = "day") -> pd.DataFrame:
    """Attach the label "the true peak falls in ``(d, d + k]``" to the feature rows (non-bot pairs).

    ``at_risk_only`` (default) keeps the days before the pair's peak (``d < t_peak``): the
    discrete-time hazard, "given that interest has not turned yet, will it turn within ``k``
    days?". Otherwise every day is kept (days after the peak are negatives).

    Notebook 05.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an int >= 1, got {k!r}")
    pc = list(pair_cols)
    check_frame(truth, pc + ["t_peak", "is_bot"], "truth")
    check_frame(features, pc + [day_col] + list(HAZARD_FEATURES), "features")
    tr = truth.loc[~bool_column(truth, "is_bot", "truth"), pc + ["t_peak"]]
    rows = features.merge(tr, on=pc, how="inner")
    d = rows[day_col].to_numpy()
    tp = rows["t_peak"].to_numpy()
    rows["label"] = ((tp > d) & (tp <= d + k)).astype(np.int64)
    if at_risk_only:
        rows = rows[d < tp]
    return rows.reset_index(drop=True)


def fit_hazard(rows: pd.DataFrame, *, features: Sequence[str] = HAZARD_FEATURES, n_knots: int = 5, C: float = 1.0):
    """Logistic regression on cubic splines of the features (a small additive model).

    scikit-learn ``StandardScaler -> SplineTransformer -> LogisticRegression``: each feature's
    effect on the log-odds is a smooth curve (the chance of a turn is not linear in the days
    since the rise began). Returns the fitted pipeline; raises ValueError if the labels are all
    one class.

    Notebook 05.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import SplineTransformer, StandardScaler

    check_frame(rows, list(features) + ["label"], "rows")
    yv = rows["label"].to_numpy()
    if len(np.unique(yv)) < 2:
        raise ValueError("the training rows have only one label class: a hazard model cannot be fitted")
    X = rows[list(features)].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(X)):
        raise ValueError("features contain NaN or infinite values")
    model = make_pipeline(StandardScaler(), SplineTransformer(n_knots=n_knots, degree=3),
                          LogisticRegression(C=C, max_iter=5000))
    model.fit(X, yv)
    model.features_ = tuple(features)
    return model


def predict_hazard(model, rows: pd.DataFrame) -> np.ndarray:
    """Predicted probability of the label for ``rows`` (the features the model was fitted on).

    Notebook 05.
    """
    feats = list(getattr(model, "features_", HAZARD_FEATURES))
    check_frame(rows, feats, "rows")
    return model.predict_proba(rows[feats].to_numpy(dtype=np.float64))[:, 1]


def brier_score(p, y) -> float:
    """Mean squared difference between predicted probabilities ``p`` and 0/1 outcomes ``y``.

    Notebook 05.
    """
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if p.shape != y.shape or p.size == 0:
        raise ValueError(f"p and y must be non-empty and of the same shape, got {p.shape} and {y.shape}")
    if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise ValueError("p must be probabilities in [0, 1]")
    if not np.all((y == 0) | (y == 1)):
        raise ValueError("y must be 0/1 outcomes")
    return float(np.mean((p - y) ** 2))


def reliability_table(p, y, n_bins: int = 10) -> pd.DataFrame:
    """Reliability by quantile bin of the predicted probability (deciles by default).

    Rows are ranked by ``p`` and cut into ``n_bins`` groups of (nearly) equal size. Returns
    ``bin, n, mean_predicted, observed`` (share of positives), ``p_lo, p_hi``: a calibrated
    model has ``observed`` close to ``mean_predicted`` in every bin.

    Notebook 05.
    """
    p = np.asarray(p, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    brier_score(p, y)  # validates
    if isinstance(n_bins, bool) or not isinstance(n_bins, (int, np.integer)) or n_bins < 1:
        raise ValueError(f"n_bins must be an int >= 1, got {n_bins!r}")
    order = np.argsort(p, kind="stable")
    b = np.empty(p.size, dtype=np.int64)
    b[order] = np.arange(p.size) * min(n_bins, p.size) // p.size
    df = pd.DataFrame({"bin": b, "p": p, "y": y})
    out = df.groupby("bin").agg(n=("p", "size"), mean_predicted=("p", "mean"), observed=("y", "mean"),
                                p_lo=("p", "min"), p_hi=("p", "max")).reset_index()
    return out


def hazard_eval(rows: pd.DataFrame, train_users, test_users, *, features: Sequence[str] = HAZARD_FEATURES,
                n_bins: int = 10, user_col: str = "user_id") -> dict:
    """Fit :func:`fit_hazard` on ``train_users``' rows, score it on ``test_users``' rows.

    Returns a dict: ``brier`` (model), ``brier_base`` (the training base rate as a constant
    forecast), ``skill`` = 1 − brier / brier_base (Brier skill score; > 0 beats the base rate),
    ``base_rate_train``, ``base_rate_test``, ``auc`` (ranking), ``n_train``, ``n_test``,
    ``reliability`` (:func:`reliability_table` on the test rows), ``p`` (test predictions),
    ``test_rows`` and ``model``.

    Notebook 05.
    """
    from sklearn.metrics import roc_auc_score

    check_frame(rows, [user_col, "label"], "rows")
    tr = rows[rows[user_col].isin(np.asarray(train_users))]
    te = rows[rows[user_col].isin(np.asarray(test_users))].reset_index(drop=True)
    if tr.empty or te.empty:
        raise ValueError("no rows for the training or the test users")
    model = fit_hazard(tr, features=features)
    p = predict_hazard(model, te)
    yv = te["label"].to_numpy()
    base = float(tr["label"].mean())
    b = brier_score(p, yv)
    b0 = brier_score(np.full(len(yv), base), yv)
    return {
        "brier": b,
        "brier_base": b0,
        "skill": float(1 - b / b0) if b0 > 0 else float("nan"),
        "base_rate_train": base,
        "base_rate_test": float(yv.mean()),
        "auc": float(roc_auc_score(yv, p)) if 0 < yv.sum() < len(yv) else float("nan"),
        "n_train": int(len(tr)),
        "n_test": int(len(te)),
        "reliability": reliability_table(p, yv, n_bins),
        "p": p,
        "test_rows": te,
        "model": model,
    }
