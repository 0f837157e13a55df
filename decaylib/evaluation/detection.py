"""Scores of decay-point detectors and early warnings against the truth (notebook 05)."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from decaylib.checks import bool_column, check_frame, pair_values
from decaylib.schema import BEHAVIOURS, PAIR_COLS

__all__ = ['decay_point_metrics', 'alert_metrics', 'peak_visible_pairs', 'lambda_eval_pairs']


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------
def _aligned(pred, truth, pred_col, truth_col, pair_cols):
    pair_cols = list(pair_cols)
    tr = pair_values(truth, pair_cols, truth_col, "truth")
    pr = pair_values(pred, pair_cols, pred_col, "detected")
    m = tr.merge(pr, on=pair_cols, how="left", suffixes=("_true", "_pred"))
    tcol = truth_col if truth_col != pred_col else truth_col + "_true"
    pcol = pred_col if truth_col != pred_col else pred_col + "_pred"
    t = m[tcol].to_numpy(dtype=np.float64, na_value=np.nan)
    p = m[pcol].to_numpy(dtype=np.float64, na_value=np.nan)
    return t, p


def decay_point_metrics(
    detected,
    truth,
    *,
    margin: int = 3,
    detected_col: str = "t_decay",
    truth_col: str = "t_peak",
    pair_cols: Sequence[str] = PAIR_COLS,
) -> dict:
    """Precision, recall and F1 of detected decay points within ±``margin`` days.

    The evaluation set is the pairs of ``truth`` (pairs in ``detected`` but not in ``truth`` are
    ignored; pairs of ``truth`` missing from ``detected`` count as "no detection"). A true
    point is a non-NaN ``t_peak`` (NaN = the pair has no decay point). A detection within
    ``margin`` days of the true point is a true positive; any other detection is a false
    positive (a late/early detection is thus both a FP and a FN).

    Parameters
    ----------
    detected, truth : DataFrame or Series
        Per pair: a DataFrame with the pair columns and ``detected_col`` / ``truth_col``, or a
        Series indexed by the pair columns.

    Returns
    -------
    dict
        ``precision, recall, f1, mae_days`` (mean |timing error| over true positives),
        ``n_pairs, n_true, n_detected, n_matched``. Precision is NaN with no detection, recall
        NaN with no true point, MAE NaN with no match.

    Notebook 05.
    """
    if margin < 0:
        raise ValueError("margin must be >= 0")
    t, p = _aligned(detected, truth, detected_col, truth_col, pair_cols)
    has_t = ~np.isnan(t)
    has_p = ~np.isnan(p)
    err = np.abs(p - t)
    match = has_t & has_p & (err <= margin)
    n_m, n_p, n_t = int(match.sum()), int(has_p.sum()), int(has_t.sum())
    prec = n_m / n_p if n_p else np.nan
    rec = n_m / n_t if n_t else np.nan
    f1 = 2 * prec * rec / (prec + rec) if n_p and n_t and (prec + rec) > 0 else (0.0 if n_p and n_t else np.nan)
    return {
        "precision": float(prec),
        "recall": float(rec),
        "f1": float(f1),
        "mae_days": float(err[match].mean()) if n_m else float("nan"),
        "n_pairs": int(len(t)),
        "n_true": n_t,
        "n_detected": n_p,
        "n_matched": n_m,
    }


def alert_metrics(
    alert_day,
    truth,
    *,
    early_margin: int = 3,
    alert_col: str = "alert_day",
    truth_col: str = "t_peak",
    pair_cols: Sequence[str] = PAIR_COLS,
) -> dict:
    """Timing of early-warning alerts against the true peak.

    ``delay = alert_day - t_peak`` (negative = ahead of the peak). Over the pairs of ``truth``
    (pairs missing from ``alert_day`` count as never alerted):

    Returns
    -------
    dict
        ``median_delay, mean_delay`` (over alerted pairs), ``share_too_early`` (alerted more
        than ``early_margin`` days before the peak: a false alarm), ``share_never``,
        ``share_within`` (alert within ±``early_margin`` days), ``n_pairs, n_alerted``.

    Notebook 05.
    """
    if early_margin < 0:
        raise ValueError("early_margin must be >= 0")
    t, a = _aligned(alert_day, truth, alert_col, truth_col, pair_cols)
    if np.any(np.isnan(t)):
        raise ValueError(f"truth[{truth_col!r}] has missing values; alert_metrics needs a true peak for every pair")
    n = len(t)
    alerted = ~np.isnan(a)
    delay = (a - t)[alerted]
    return {
        "median_delay": float(np.median(delay)) if delay.size else float("nan"),
        "mean_delay": float(np.mean(delay)) if delay.size else float("nan"),
        "share_too_early": float(np.mean(alerted & ((a - t) < -early_margin))),
        "share_never": float(np.mean(~alerted)),
        "share_within": float(np.mean(alerted & (np.abs(a - t) <= early_margin))),
        "n_pairs": int(n),
        "n_alerted": int(alerted.sum()),
    }

# --------------------------------------------------------------------------------------------
# Evaluation sets
# --------------------------------------------------------------------------------------------
TRUTH_COLS = ("user_id", "category", "t_start", "t_peak", "peak_interest", "lam", "is_bot")


def _truth_base(truth, truth_daily, panel, pair_cols):
    pair_cols = list(pair_cols)
    check_frame(truth, list(TRUTH_COLS), "truth")
    check_frame(truth_daily, pair_cols + ["day", "interest", "outage"] + [f"expected_{c}" for c in BEHAVIOURS], "truth_daily")
    check_frame(panel, pair_cols + ["day", "observed"], "panel")
    if truth.duplicated(pair_cols).any():
        raise ValueError("truth has more than one row for some pairs")
    tr = truth.loc[~bool_column(truth, "is_bot", "truth"), list(TRUTH_COLS)].reset_index(drop=True)
    pn = panel[pair_cols + ["day", "observed"]].merge(tr[pair_cols + ["t_peak"]], on=pair_cols, how="inner")
    pday = pn["day"].to_numpy(dtype=np.int64)
    ppk = pn["t_peak"].to_numpy(dtype=np.int64)
    pobs = bool_column(pn, "observed", "panel")
    cnt = pn[pair_cols].copy()
    cnt["obs_before"] = pobs & (pday < ppk)
    cnt["obs_after"] = pobs & (pday > ppk)
    agg = cnt.groupby(pair_cols).sum().reset_index()
    tr = tr.merge(agg, on=pair_cols, how="left")
    tr[["obs_before", "obs_after"]] = tr[["obs_before", "obs_after"]].fillna(0).astype(np.int64)
    td = truth_daily[pair_cols + ["day", "interest", "outage"]].copy()
    td["expected_events"] = truth_daily[[f"expected_{c}" for c in BEHAVIOURS]].sum(axis=1).to_numpy(dtype=np.float64)
    td = td.merge(tr[pair_cols + ["t_peak"]], on=pair_cols, how="inner")
    return tr, td


def peak_visible_pairs(
    truth: pd.DataFrame,
    truth_daily: pd.DataFrame,
    panel: pd.DataFrame,
    *,
    side_days: int = 7,
    ratio: float = 0.7,
    min_events: float = 20.0,
    pair_cols: Sequence[str] = PAIR_COLS,
) -> pd.DataFrame:
    """Non-bot pairs whose decay point can actually be seen (the evaluation set for detection).

    A pair qualifies when

    * it has at least ``side_days`` observed panel days before and after the true peak;
    * the true interest ``side_days`` days before and after the peak is at most ``ratio`` times
      the peak interest (a peak, not a plateau). A day missing from ``truth_daily`` counts as 0
      when it is before ``t_start`` and otherwise fails the test;
    * at least ``min_events`` expected events (view+click+cart+purchase) fall within
      ±``side_days`` days of the peak, counting non-outage days only (events lost in an
      outage cannot be seen).

    Returns the qualifying rows of ``truth`` (non-bot columns ``user_id, category, t_start,
    t_peak, peak_interest, lam, is_bot``) plus ``obs_before, obs_after, events_near_peak``.

    Notebook 05.
    """
    pair_cols = list(pair_cols)
    tr, td = _truth_base(truth, truth_daily, panel, pair_cols)
    d = td["day"].to_numpy(dtype=np.int64) - td["t_peak"].to_numpy(dtype=np.int64)
    near = (np.abs(d) <= side_days) & ~bool_column(td, "outage", "truth_daily")
    ev = td.loc[near, pair_cols].assign(events_near_peak=td["expected_events"].to_numpy()[near])
    ev = ev.groupby(pair_cols).sum().reset_index()
    tr = tr.merge(ev, on=pair_cols, how="left")
    tr["events_near_peak"] = tr["events_near_peak"].fillna(0.0)
    ivals = {}
    for side, off in (("before", -side_days), ("after", side_days)):
        sel = td.loc[d == off, pair_cols + ["interest"]].rename(columns={"interest": f"i_{side}"})
        m = tr[pair_cols + ["t_start", "t_peak"]].merge(sel, on=pair_cols, how="left")
        val = m[f"i_{side}"].to_numpy(dtype=np.float64, na_value=np.nan)
        pre = (m["t_peak"].to_numpy() + off) < m["t_start"].to_numpy()
        ivals[side] = np.where(np.isnan(val) & pre, 0.0, val)
    peak_i = tr["peak_interest"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore"):
        sharp = (ivals["before"] <= ratio * peak_i) & (ivals["after"] <= ratio * peak_i)
    keep = (
        (tr["obs_before"].to_numpy() >= side_days)
        & (tr["obs_after"].to_numpy() >= side_days)
        & sharp
        & (tr["events_near_peak"].to_numpy() >= min_events)
    )
    return tr.loc[keep].reset_index(drop=True)


def lambda_eval_pairs(
    truth: pd.DataFrame,
    truth_daily: pd.DataFrame,
    panel: pd.DataFrame,
    *,
    min_days: int = 7,
    min_events: float = 20.0,
    pair_cols: Sequence[str] = PAIR_COLS,
) -> pd.DataFrame:
    """Non-bot pairs whose λ can be estimated (the evaluation set for decay rates).

    A pair qualifies with at least ``min_days`` observed panel days after the true peak and at
    least ``min_events`` expected events (view+click+cart+purchase) on the non-outage days of
    its decay phase (``day >= t_peak``, up to the end of ``truth_daily``).

    Returns the qualifying rows of ``truth`` plus ``obs_after, events_decay``.

    Notebook 04.
    """
    pair_cols = list(pair_cols)
    tr, td = _truth_base(truth, truth_daily, panel, pair_cols)
    dec = (td["day"].to_numpy() >= td["t_peak"].to_numpy()) & ~bool_column(td, "outage", "truth_daily")
    ev = td.loc[dec, pair_cols].assign(events_decay=td["expected_events"].to_numpy()[dec])
    ev = ev.groupby(pair_cols).sum().reset_index()
    tr = tr.merge(ev, on=pair_cols, how="left")
    tr["events_decay"] = tr["events_decay"].fillna(0.0)
    keep = (tr["obs_after"].to_numpy() >= min_days) & (tr["events_decay"].to_numpy() >= min_events)
    return tr.loc[keep].drop(columns=["obs_before"]).reset_index(drop=True)
