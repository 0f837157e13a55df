r"""Decay rate λ, half-life and how precisely λ can be known (notebook 04).

The article models interest after its peak as :math:`I(t) = I_0 e^{-\lambda t}`, so that

.. math:: \lambda = -\frac{1}{\Delta t}\ln\frac{I(t+\Delta t)}{I(t)}, \qquad T_{1/2} = \frac{\ln 2}{\lambda}.

This module provides

* the article's formula, exactly and vectorized (:func:`log_ratio_lambda`), half-life conversions;
* λ from forecast paths of a sequence model (:func:`lambda_from_forecasts`) and from the raw or
  smoothed daily series (:func:`two_point_lambda`);
* two classical estimators on the observed counts of the decay phase, vectorized over *all* pairs
  at once with grouped sums (no optimizer call per pair): ordinary least squares on log counts
  (:func:`fit_least_squares`) and Poisson maximum likelihood by Newton's method with closed-form
  2x2 solves (:func:`fit_poisson_mle`);
* every method of notebook 04 at once on the same decay phases, with a row (and a reason) for
  every pair, also those whose decay phase could not start (:func:`lambda_by_method`);
* the Cramér-Rao lower bound for λ under Poisson counts (:func:`cramer_rao_lambda`,
  :func:`cramer_rao_table`) and the error in units of that bound (:func:`error_vs_bound`);
* curve fits for the "is it really exponential?" section: :func:`fit_exponential`,
  :func:`fit_power_law`, :func:`mixture_of_exponentials`.

Tables follow the data contract: pairs are identified by ``("user_id", "category")`` unless
``pair_cols`` says otherwise. Per-pair results are DataFrames sorted by the pair columns, with a
``reason`` column that is ``"ok"`` only when the estimate passes the evidence rules of
:mod:`decaylib.decay.evidence` (enough events and active days in the decay phase, not a constant of the
method, ...) and names the problem otherwise (the number is then NaN). Every λ table carries its
uncertainty beside λ: ``se_lam``, an interval ``lam_lo``/``lam_hi`` and the half-life with its
interval (``half_life``, ``half_life_lo``, ``half_life_hi``; see
:func:`decaylib.decay.evidence.uncertainty_columns`), NaN exactly when the reason is not ``"ok"``.
The thresholds are an :class:`~decaylib.decay.evidence.EvidenceRules` (``rules=``; ``None`` = the
defaults). Nothing fails with an exception half-way through a table because one pair is
degenerate.
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
    check_int,
    check_positive,
    check_unique_rows,
    numeric_column,
    pair_values,
)
from decaylib.decay import evidence as _ev
from decaylib.decay.evidence import UNCERTAINTY_COLS, EvidenceRules
from decaylib.schema import BEHAVIOURS, PAIR_COLS

__all__ = ['SAR_DEFAULT_HALF_LIFE', 'sar_weight', 'sar_tuning_cutoff', 'EFFICIENT_MEDIAN_RATIO', 'PAIR_COLS', 'log_ratio_experiment', 'log_ratio_lambda', 'half_life', 'lambda_from_half_life', 'lambda_from_forecasts', 'two_point_lambda', 'lambda_from_forecast_levels', 'lambda_from_forecast_fit', 'decay_phase_table', 'fit_least_squares', 'fit_poisson_mle', 'LAMBDA_METHODS', 'lambda_by_method', 'cramer_rao_lambda', 'cramer_rao_table', 'error_vs_bound']

#: Median of |Z| for a standard normal Z (= Φ⁻¹(0.75)): the median |error| / CRB-sd of an
#: efficient (unbiased, normally distributed, variance at the bound) estimator.
EFFICIENT_MEDIAN_RATIO: float = 0.6744897501960817


FORECAST_COLS: tuple[str, ...] = ("user_id", "category", "origin_day", "horizon", "interest_pred")


def _group_codes(df: pd.DataFrame, pair_cols: Sequence[str], name: str) -> tuple[np.ndarray, pd.DataFrame]:
    """Integer code per row (0..G-1, in sorted pair order) and the sorted pair keys."""
    pair_cols = list(pair_cols)
    if df[pair_cols].isna().any().any():
        raise ValueError(f"{name} has missing values in the pair columns {pair_cols}")
    g = df.groupby(pair_cols, sort=True)
    codes = g.ngroup().to_numpy(dtype=np.int64)
    keys = g.size().index.to_frame(index=False)
    return codes, keys


def _as_float_array(x, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be numeric (scalar or array-like): {exc}") from None
    return arr


def _scalar_or_array(arr: np.ndarray):
    return float(arr) if arr.ndim == 0 else arr


# --------------------------------------------------------------------------------------------
# The article's formula and half-lives
# --------------------------------------------------------------------------------------------
def log_ratio_experiment(I0: float, lam: float, noise: float, dt: float, *, t: float = 5.0, n_draws: int = 2000,
                         seed: int = 0) -> dict:
    r"""How well the article's formula recovers λ from two noisy observations, :math:`\Delta t` days apart.

    Interest follows :math:`I(t) = I_0 e^{-\lambda t}`; each observation is multiplied by a
    log-normal noise factor :math:`e^{\sigma\varepsilon - \sigma^2/2}` (mean 1, ``noise`` = σ,
    roughly the coefficient of variation of a day's score). The log-ratio estimate is drawn
    ``n_draws`` times. Its error does not depend on :math:`I_0` (the ratio cancels it) and has
    standard deviation :math:`\sigma\sqrt{2}/\Delta t`: a wider step helps, a single noisy day hurts.

    Returns a dict: ``lam_hat`` (the draws), ``median``, ``sd``, ``sd_theory``,
    ``median_abs_rel_error`` (median of :math:`|\hat\lambda/\lambda - 1|`, NaN when λ = 0),
    ``share_rising`` (the share of draws with :math:`\hat\lambda < 0`: interest that looks as if
    it grew), and ``one_draw`` (the first draw's two observations ``(I_t, I_t_dt)``).

    Notebook 04.
    """
    for name, v in (("I0", I0), ("lam", lam), ("noise", noise), ("dt", dt), ("t", t)):
        if not np.isfinite(v):
            raise ValueError(f"{name} must be finite, got {v!r}")
    if I0 <= 0:
        raise ValueError(f"I0 must be > 0, got {I0}")
    if noise < 0:
        raise ValueError(f"noise must be >= 0, got {noise}")
    if dt <= 0:
        raise ValueError(f"dt must be > 0 days, got {dt}")
    if int(n_draws) < 2:
        raise ValueError(f"n_draws must be at least 2, got {n_draws}")
    rng = np.random.default_rng(seed)
    n = int(n_draws)
    factor = np.exp(noise * rng.standard_normal((2, n)) - noise**2 / 2)
    obs_t = I0 * np.exp(-lam * t) * factor[0]
    obs_dt = I0 * np.exp(-lam * (t + dt)) * factor[1]
    lam_hat = log_ratio_lambda(obs_t, obs_dt, dt)
    rel = np.abs(lam_hat / lam - 1) if lam != 0 else np.full(n, np.nan)
    return {"lam_hat": lam_hat, "median": float(np.median(lam_hat)), "sd": float(np.std(lam_hat, ddof=1)),
            "sd_theory": float(noise * np.sqrt(2) / dt), "median_abs_rel_error": float(np.median(rel)),
            "share_rising": float(np.mean(lam_hat < 0)), "one_draw": (float(obs_t[0]), float(obs_dt[0]))}


def log_ratio_lambda(I_t, I_t_dt, dt, *, policy: str = "raise", return_mask: bool = False):
    r"""The article's decay-rate formula :math:`\lambda = -\ln(I(t+\Delta t)/I(t))/\Delta t`.

    Vectorized over NumPy broadcasting.

    Parameters
    ----------
    I_t, I_t_dt : float or array-like
        Interest at ``t`` and at ``t + dt`` (any positive unit: the ratio removes it, so the
        result does not depend on :math:`I_0`).
    dt : float or array-like
        Time step (days). Must be finite and strictly positive; otherwise ``ValueError``.
    policy : {"raise", "nan"}
        What to do with non-positive (or non-finite) interest values, where the logarithm is
        undefined. ``"raise"`` (default) raises a ``ValueError`` that says how many values are
        affected. ``"nan"`` returns NaN for them (never ``-inf``/``+inf``); use
        ``return_mask=True`` to get the validity mask back as the reason.
    return_mask : bool
        Also return a boolean array, True where the value is valid.

    Returns
    -------
    lam : float or ndarray
        λ per element (per day when ``dt`` is in days). Negative λ means interest grew.
    valid : ndarray of bool, optional
        Only with ``return_mask=True``.

    Examples
    --------
    >>> round(log_ratio_lambda(100.0, 50.0, 30.0), 6)   # half-life 30 days
    0.023105

    Notebooks 00 and 04.
    """
    check_choice("policy", policy, {"raise", "nan"})
    a = _as_float_array(I_t, "I_t")
    b = _as_float_array(I_t_dt, "I_t_dt")
    d = _as_float_array(dt, "dt")
    if np.any(~np.isfinite(d)) or np.any(d <= 0):
        n_bad = int(np.count_nonzero(~np.isfinite(d) | (d <= 0)))
        raise ValueError(f"dt must be finite and > 0; {n_bad} value(s) are not")
    a, b, d = np.broadcast_arrays(a, b, d)
    valid = np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
    n_bad = int(valid.size - np.count_nonzero(valid))
    if n_bad and policy == "raise":
        raise ValueError(
            f"{n_bad} of {valid.size} interest value pair(s) are non-positive or not finite, so "
            "ln(I(t+dt)/I(t)) is undefined; pass policy='nan' to get NaN for them"
        )
    lam = np.full(a.shape, np.nan)
    lam[valid] = -np.log(b[valid] / a[valid]) / d[valid]
    lam = _scalar_or_array(lam) if lam.ndim == 0 else lam
    if return_mask:
        return lam, (bool(valid) if valid.ndim == 0 else valid)
    return lam


def half_life(lam):
    r"""Half-life :math:`T_{1/2} = \ln 2/\lambda` (same time unit as ``1/λ``).

    Policy: λ <= 0 (no decay, or growth) gives ``inf`` — interest never halves; NaN stays NaN.

    Notebooks 00, 01, 04, 05, 06, 07 and 08.
    """
    lam = _as_float_array(lam, "lam")
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(lam > 0, np.log(2.0) / np.where(lam > 0, lam, 1.0), np.inf)
    out = np.where(np.isnan(lam), np.nan, out)
    return _scalar_or_array(out)


def lambda_from_half_life(T):
    r"""Decay rate :math:`\lambda = \ln 2 / T` from a half-life ``T``.

    ``T = inf`` gives 0 (no decay). ``T <= 0`` or NaN raises ``ValueError``.
    Example: SAR's default T = 30 days gives λ ≈ 0.0231 per day.

    Notebook 04.
    """
    T = _as_float_array(T, "T")
    if np.any(np.isnan(T)) or np.any(T <= 0):
        raise ValueError(f"half-life T must be > 0; {int(np.count_nonzero(np.isnan(T) | (T <= 0)))} value(s) are not")
    return _scalar_or_array(np.log(2.0) / T)


#: Microsoft Recommenders' SAR default: one global half-life T = 30 days (λ = ln 2 / 30 ≈ 0.0231 per day).
SAR_DEFAULT_HALF_LIFE: float = 30.0


def sar_weight(age_days, half_life: float = SAR_DEFAULT_HALF_LIFE) -> np.ndarray:
    """SAR time-decay weight ``(1/2) ** (age / half_life)``; equals 0.5 when ``age == half_life``.

    Parameters
    ----------
    age_days : array_like
        ``T - t`` in days (``>= 0``).
    half_life : float
        ``H`` in days; the equivalent decay rate is ``ln 2 / H`` per day.

    Notebooks 04 and 06.
    """
    half_life = check_positive("half_life", half_life)
    age = np.asarray(age_days, dtype=float)
    if np.any(age < 0):
        raise ValueError("age_days must be >= 0 (the weight is only defined up to the cutoff)")
    return np.exp2(-age / half_life)


def sar_tuning_cutoff(cutoff_day: int, first_day: int, tune_days, *, name: str = "tune_days",
                      who: str = "SAR") -> int:
    """The day ``cutoff_day - tune_days`` at which SAR's half-life is tuned, checked against the data.

    SAR's half-life (for count forecasts also its scale) is chosen by scoring the data up to
    ``cutoff_day - tune_days`` on the days ``(cutoff_day - tune_days, cutoff_day]``, so at least one
    day of data, ``first_day``, must lie before that window. The one reading of ``tune_days`` for the
    tuned SAR ranking (:func:`decaylib.recommend.strategies.rank_sar_tuned`) and the SAR count
    forecast (:func:`decaylib.decay.counts.forecast_counts`, ``sar_tune_days``); ``name`` is the
    argument's name in the caller, so that the error names what to change.

    Notebooks 04 and 06.
    """
    tune = check_int(name, tune_days, minimum=1)
    cutoff_day, first_day = int(cutoff_day), int(first_day)
    start = cutoff_day - tune
    if start < first_day:
        n_days = cutoff_day - first_day + 1
        fix = (f"pass {name} of at most {n_days - 1}" if n_days > 1
               else "no value fits: the data have a single day up to the cutoff")
        raise ValueError(f"{who} tunes its half-life on (cutoff_day - {name}, cutoff_day] = ({start}, {cutoff_day}]: "
                         f"{name}={tune} leaves no data to tune on; it needs at least {tune + 1} days of history up to "
                         f"cutoff_day={cutoff_day}, the data start on day {first_day} ({n_days} days); {fix}")
    return start


# --------------------------------------------------------------------------------------------
# λ from forecast paths and from the daily series
# --------------------------------------------------------------------------------------------
def _keys_codes(keys: pd.DataFrame, df: pd.DataFrame, pair_cols: Sequence[str]) -> np.ndarray:
    """Row -> position of its pair in ``keys`` (``-1`` if absent)."""
    pair_cols = list(pair_cols)
    if len(df) == 0:
        return np.zeros(0, dtype=np.int64)
    return pd.MultiIndex.from_frame(keys[pair_cols]).get_indexer(pd.MultiIndex.from_frame(df[pair_cols])).astype(np.int64)


def _panel_phase_evidence(panel, start, keys, *, end=None, start_col="t_peak", end_col="t_end", pair_cols=PAIR_COLS,
                          day_col="day", observed_col="observed", count_cols=BEHAVIOURS):
    """Events, active days and observed days of each pair of ``keys`` in its decay phase of
    ``panel`` (the evidence of rule 1 for estimators that do not read the panel themselves)."""
    pair_cols = list(pair_cols)
    cols = list(count_cols)
    missing = [c for c in cols if c not in panel.columns]
    if missing:
        raise KeyError(f"panel is missing the event-count column(s) {missing} needed for the evidence rules")
    obs_col = observed_col if (observed_col and observed_col in panel.columns) else None
    df, _ = _decay_rows(panel, start, end, start_col=start_col, end_col=end_col, pair_cols=pair_cols,
                        day_col=day_col, observed_col=obs_col, value_cols=cols, name="panel")
    codes = _keys_codes(keys, df, pair_cols)
    inside = codes >= 0
    obs = bool_column(df, obs_col, "panel") if obs_col else np.ones(len(df), dtype=bool)
    G = len(keys)
    events, active = _ev.group_evidence(codes[inside], _ev.event_counts(df, cols)[inside], G, obs[inside])
    n_obs = np.bincount(codes[inside], weights=obs[inside].astype(np.float64), minlength=G).astype(np.int64)
    return events, active, n_obs


def _with_uncertainty(out: pd.DataFrame, lam, se, ok, rules, lam_lo=None, lam_hi=None, after: str = "lam_hat") -> pd.DataFrame:
    """Insert :data:`~decaylib.decay.evidence.UNCERTAINTY_COLS` right after ``after``."""
    cols = _ev.uncertainty_columns(lam, se, ok, rules, lam_lo, lam_hi)
    pos = list(out.columns).index(after) + 1
    for i, c in enumerate(UNCERTAINTY_COLS):
        out.insert(pos + i, c, cols[c])
    return out


def lambda_from_forecasts(
    forecasts: pd.DataFrame,
    start=None,
    *,
    start_col: str = "t_peak",
    origin_col: str | None = None,
    method: str = "endpoints",
    h_from: int = 1,
    h_to: int | None = None,
    panel: pd.DataFrame | None = None,
    rules: EvidenceRules | None = None,
) -> pd.DataFrame:
    r"""λ per pair from a sequence model's forecast paths, aggregated by the median.

    For every forecast path (one ``(pair, origin_day)``) the article's formula is applied along
    the path, then the per-path λ's of a pair are summarised by their median (robust to the odd
    bad path).

    Parameters
    ----------
    forecasts : DataFrame
        Columns ``user_id, category, origin_day, horizon (1..H), interest_pred`` (interest-score
        units). One row per (pair, origin_day, horizon).
    start : DataFrame or Series, optional
        Per-pair first origin day of the decay phase (e.g. the detected or true peak): a
        DataFrame with the pair columns and ``start_col``, or a Series indexed by
        ``(user_id, category)``. Only origins with ``origin_day >= start`` are used and only
        pairs listed in ``start`` are returned (pairs without any forecast get NaN).
    start_col : str
        Column of ``start`` holding the day (default ``"t_peak"``).
    origin_col : str, optional
        Name of a boolean column of ``forecasts`` marking origins to use (combined with
        ``start`` by AND). With neither ``start`` nor ``origin_col`` every origin is used.
    method : {"endpoints", "loglinear"}
        ``"endpoints"``: the formula between horizons ``h_from`` and ``h_to``,
        :math:`-\ln(\hat I_{h_{to}}/\hat I_{h_{from}})/(h_{to}-h_{from})`.
        ``"loglinear"``: minus the least-squares slope of :math:`\ln \hat I_h` on ``h`` over
        ``h_from..h_to`` (uses every step; equals the endpoint formula on an exact exponential).
    h_from, h_to : int
        Horizon range (default 1 .. the largest horizon present).
    panel : DataFrame, optional
        The daily panel (with the event-count columns). With it (and ``start``), the
        decay-phase minimums of :mod:`decaylib.decay.evidence` are applied to the *observed* events
        from ``start`` on: a forecaster happily extrapolates a pair with one view, but the data
        cannot confirm its λ (``insufficient_data``, ``no_decay_phase``). Without it those
        rules are not checked: the reason then only speaks about the forecasts.
    rules : EvidenceRules, optional
        Thresholds (default :data:`decaylib.decay.evidence.DEFAULT_RULES`).

    Returns
    -------
    DataFrame
        ``user_id, category, lam_hat``, the uncertainty columns (``se_lam`` = robust spread of
        the per-path λ's, :math:`1.2533 \cdot sd/\sqrt{n_{paths}}`, the standard error of a
        median; overlapping paths are correlated, so it is optimistic; Wald interval),
        ``n_paths`` (paths used), ``n_bad_paths`` (dropped because a prediction in the range was
        <= 0 or missing, where the logarithm is undefined), with a panel ``n_events,
        n_active_days``, and ``reason`` (``"ok"``, ``"no_paths_in_decay_phase"``,
        ``"all_paths_nonpositive"``, ``"too_few_paths"``, with a panel ``"no_decay_phase"``,
        ``"insufficient_data"``).

    Notebook 04.
    """
    check_frame(forecasts, FORECAST_COLS, "forecasts")
    check_choice("method", method, {"endpoints", "loglinear"})
    rules = _ev.resolve_rules(rules)
    if panel is not None and start is None:
        raise ValueError("panel= needs start= (the decay phase whose events are counted)")
    pair_cols = list(PAIR_COLS)
    fc = forecasts
    horizons = fc["horizon"]
    if not pd.api.types.is_integer_dtype(horizons):
        raise TypeError(f"forecasts['horizon'] must be integer, got dtype {horizons.dtype}")
    H = int(horizons.max())
    h_to = H if h_to is None else int(h_to)
    h_from = int(h_from)
    if not 1 <= h_from < h_to <= H:
        raise ValueError(f"need 1 <= h_from < h_to <= {H} (largest horizon present); got h_from={h_from}, h_to={h_to}")
    sel = np.ones(len(fc), dtype=bool)
    if origin_col is not None:
        check_frame(fc, [origin_col], "forecasts")
        sel &= bool_column(fc, origin_col, "forecasts")
    keys = None
    if start is not None:
        st = pair_values(start, pair_cols, start_col, "start")
        keys = st[pair_cols].sort_values(pair_cols).reset_index(drop=True)
        merged = fc[pair_cols + ["origin_day"]].merge(st, on=pair_cols, how="left", validate="many_to_one")
        s_day = merged[start_col].to_numpy(dtype=np.float64, na_value=np.nan)
        sel &= np.isfinite(s_day) & (merged["origin_day"].to_numpy(dtype=np.float64) >= s_day)
    sub = fc.loc[sel & (horizons.to_numpy() >= h_from) & (horizons.to_numpy() <= h_to), list(FORECAST_COLS)]
    if keys is None:
        keys = fc[pair_cols].drop_duplicates().sort_values(pair_cols).reset_index(drop=True)
    if sub.duplicated(pair_cols + ["origin_day", "horizon"]).any():
        raise ValueError("forecasts has duplicate (user_id, category, origin_day, horizon) rows")

    if len(sub):
        wide = sub.set_index(pair_cols + ["origin_day", "horizon"])["interest_pred"].unstack("horizon")
        wide = wide.reindex(columns=range(h_from, h_to + 1))
        P = wide.to_numpy(dtype=np.float64, na_value=np.nan)
        ok = np.all(np.isfinite(P) & (P > 0), axis=1)
        lam_path = np.full(len(P), np.nan)
        if method == "endpoints":
            lam_path[ok] = -np.log(P[ok, -1] / P[ok, 0]) / (h_to - h_from)
        else:
            h = np.arange(h_from, h_to + 1, dtype=np.float64)
            hc = h - h.mean()
            lam_path[ok] = -(np.log(P[ok]) @ hc) / (hc @ hc)
        paths = wide.index.to_frame(index=False)[pair_cols]
        paths["lam"] = lam_path
        paths["ok"] = ok
        agg = paths.groupby(pair_cols, sort=True).agg(
            lam_hat=("lam", "median"), lam_sd=("lam", "std"), n_paths=("ok", "sum"), n_all=("ok", "size")
        ).reset_index()
    else:
        agg = pd.DataFrame({c: pd.Series(dtype=np.int64) for c in pair_cols})
        agg["lam_hat"], agg["lam_sd"], agg["n_paths"], agg["n_all"] = np.nan, np.nan, 0, 0
    out = keys.merge(agg, on=pair_cols, how="left")
    n_all = out["n_all"].fillna(0).astype(np.int64).to_numpy()
    n_paths = out["n_paths"].fillna(0).astype(np.int64).to_numpy()
    G = len(out)
    checks = []
    if panel is not None:
        events, active, n_obs = _panel_phase_evidence(panel, start, keys, start_col=start_col, pair_cols=pair_cols)
        checks += [(n_obs == 0, "no_decay_phase"), (_ev.insufficient_mask(events, active, rules), "insufficient_data")]
    checks += [(n_all == 0, "no_paths_in_decay_phase"), (n_paths == 0, "all_paths_nonpositive"),
               (n_paths < 2, "too_few_paths")]
    reason = _ev.first_reason(G, checks)
    ok = reason == "ok"
    lam = out["lam_hat"].to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = 1.2533141373155001 * out["lam_sd"].to_numpy(dtype=np.float64, na_value=np.nan) / np.sqrt(n_paths)
    res = out[pair_cols].copy()
    res["lam_hat"] = np.where(ok, lam, np.nan)
    res = _with_uncertainty(res, lam, se, ok, rules)
    res["n_paths"] = n_paths
    res["n_bad_paths"] = n_all - n_paths
    if panel is not None:
        res["n_events"] = events
        res["n_active_days"] = active
    res["reason"] = reason.astype(str)
    return res


def _decay_rows(panel, start, end, *, start_col, end_col, pair_cols, day_col, observed_col, value_cols, name):
    """Rows of a long per-day table inside each pair's decay phase [start, end]."""
    pair_cols = list(pair_cols)
    req = pair_cols + [day_col] + list(dict.fromkeys(value_cols)) + ([observed_col] if observed_col else [])
    check_frame(panel, req, name)
    st = pair_values(start, pair_cols, start_col, "start")
    df = panel[req].merge(st, on=pair_cols, how="inner", validate="many_to_one")
    keep = df[day_col].to_numpy(dtype=np.float64) >= df[start_col].to_numpy(dtype=np.float64, na_value=np.nan)
    if end is not None:
        en = pair_values(end, pair_cols, end_col, "end")
        df = df.merge(en, on=pair_cols, how="left", validate="many_to_one")
        e = df[end_col].to_numpy(dtype=np.float64, na_value=np.nan)
        keep &= ~(df[day_col].to_numpy(dtype=np.float64) > e)  # NaN end = open-ended
    keys = st[pair_cols].sort_values(pair_cols).reset_index(drop=True)
    return df.loc[keep].sort_values(pair_cols + [day_col]).reset_index(drop=True), keys

#: Value columns that are smoothings (they spread events onto empty days): the log-ratio on
#: them needs the event-count columns to know which days had events.
SMOOTHED_COLS: tuple[str, ...] = ("interest_smooth",)


def two_point_lambda(
    panel: pd.DataFrame,
    start,
    *,
    end=None,
    value_col: str = "interest",
    method: str = "endpoints",
    window: int = 3,
    start_col: str = "t_peak",
    end_col: str = "t_end",
    pair_cols: Sequence[str] = PAIR_COLS,
    day_col: str = "day",
    observed_col: str | None = "observed",
    count_cols: Sequence[str] | None = BEHAVIOURS,
    rules: EvidenceRules | None = None,
) -> pd.DataFrame:
    r"""The article's formula applied to a pair's own daily series over its decay phase.

    Use ``value_col="interest"`` for the raw daily scores and ``"interest_smooth"`` for the
    (centered, retrospective) smoothed ones. The decay phase of a pair is the days
    ``start <= day <= end`` (``end`` optional: to the end of the data) that are observed
    (outage days, ``observed == False``, are skipped; their zeros are not real).

    Methods
    -------
    ``"endpoints"`` (default)
        Mean of the first ``window`` phase days vs the mean of the last ``window`` phase days,
        :math:`\lambda = -\ln(\bar I_{last}/\bar I_{first})/(\bar d_{last}-\bar d_{first})` with
        :math:`\bar d` the windows' mean days. On an exact exponential with equal day spacing the
        window means are both inflated by the same factor, so the result is exact. Averaging over
        a window keeps real zero days (they are data) instead of dropping them. Each window must
        contain a day with events (``"zero_window"`` otherwise): a smoothed series is positive
        on empty days next to events (spill-over), and a ratio of spill-overs is a property of
        the smoothing, not of the data. ``se_lam`` is the Poisson delta-method standard error
        :math:`\sqrt{1/E_{first} + 1/E_{last}}/(\bar d_{last}-\bar d_{first})` with ``E`` the
        events in each window (for the weighted score and its smoothing an approximation).
    ``"consecutive"``
        Median over successive observed phase days of :math:`-\ln(I_{d'}/I_d)/(d'-d)`, using only
        steps where *both days have events* (on the raw score: both positive; on the smoothed
        score, positive values on empty days are spill-over and the zero-fill at a series' end
        makes the shrinking centred window produce constant ratios such as ln 1.2 = 0.182, so
        those steps are not used). At least ``max(rules.min_steps, 2)`` such steps, otherwise
        ``"too_few_positive_steps"``. Dropping zero days conditions on "an event happened",
        which biases λ towards 0 once counts are small; this is the pitfall the article's
        ``log(x + 1e-8)`` hides. ``se_lam`` = :math:`1.2533\,sd(steps)/\sqrt{n_{steps}}` (the
        standard error of a median).

    Evidence (:mod:`decaylib.decay.evidence`): at least ``rules.min_events`` events and
    ``rules.min_active_days`` active days in the decay phase (``"insufficient_data"``), and the
    value must not be shared by many pairs with different data (``"method_constant"``).
    Events are the sum of ``count_cols`` (default view+click+cart+purchase). A panel without
    those columns is read as a count series in ``value_col`` itself (right for a raw count
    series, not for a smoothing: a smoothed ``value_col`` without counts is an error unless
    ``rules=EvidenceRules.disabled()``).

    Returns
    -------
    DataFrame
        ``pair_cols, lam_hat``, the uncertainty columns (Wald interval at
        ``rules.interval_level``), ``n_days`` (observed phase days), ``n_events``,
        ``n_active_days``, ``reason`` (``"ok"``, ``"no_decay_phase"`` for pairs without an
        observed phase day, ``"too_few_days"``, ``"insufficient_data"``, ``"zero_window"``,
        ``"too_few_positive_steps"``, ``"method_constant"``). One row per pair of ``start``.

    Notebook 04.
    """
    check_choice("method", method, {"endpoints", "consecutive"})
    if not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be a positive int, got {window!r}")
    rules = _ev.resolve_rules(rules)
    pair_cols = list(pair_cols)
    check_frame(panel, pair_cols + [day_col, value_col], "panel")
    have_counts = count_cols is not None and len(count_cols) > 0 and all(c in panel.columns for c in count_cols)
    if not have_counts and value_col in SMOOTHED_COLS and (rules.min_events > 0 or rules.min_active_days > 0):
        raise KeyError(
            f"panel[{value_col!r}] is a smoothing, which is positive on days without events; the evidence rules need "
            f"the event-count columns {list(count_cols or BEHAVIOURS)} to know which days had events (the daily panel "
            "has them); or pass rules=EvidenceRules.disabled() to skip the rules"
        )
    ccols = list(count_cols) if have_counts else []
    df, keys = _decay_rows(
        panel, start, end, start_col=start_col, end_col=end_col, pair_cols=pair_cols, day_col=day_col,
        observed_col=observed_col, value_cols=[value_col] + ccols, name="panel",
    )
    if observed_col:
        df = df.loc[bool_column(df, observed_col, "panel")].reset_index(drop=True)
    v = numeric_column(df, value_col, "panel")
    if np.any(np.isnan(v)) or np.any(v < 0):
        raise ValueError(f"panel[{value_col!r}] has missing or negative values in the decay phase")
    cnt = _ev.event_counts(df, ccols) if have_counts else v
    day = df[day_col].to_numpy(dtype=np.float64)
    codes = _keys_codes(keys, df, pair_cols)
    G = len(keys)
    n = np.bincount(codes, minlength=G)
    events, active = _ev.group_evidence(codes, cnt, G)
    lam = np.full(G, np.nan)
    se = np.full(G, np.nan)
    starts = np.concatenate([[0], np.cumsum(n)[:-1]]).astype(np.int64)
    if method == "endpoints":
        pos = np.arange(len(df)) - starts[codes]
        first = pos < window
        last = pos >= (n[codes] - window)
        enough = n >= 2 * window
        m_first = np.bincount(codes, weights=np.where(first, v, 0.0), minlength=G) / window
        m_last = np.bincount(codes, weights=np.where(last, v, 0.0), minlength=G) / window
        e_first = np.bincount(codes, weights=np.where(first, cnt, 0.0), minlength=G)
        e_last = np.bincount(codes, weights=np.where(last, cnt, 0.0), minlength=G)
        d_first = np.bincount(codes, weights=np.where(first, day, 0.0), minlength=G) / window
        d_last = np.bincount(codes, weights=np.where(last, day, 0.0), minlength=G) / window
        good = enough & (m_first > 0) & (m_last > 0) & (e_first > 0) & (e_last > 0)
        dd = d_last - d_first
        lam[good] = -np.log(m_last[good] / m_first[good]) / dd[good]
        se[good] = np.sqrt(1.0 / e_first[good] + 1.0 / e_last[good]) / dd[good]
        method_fail = (enough & ~good, "zero_window")
        too_few = n < 2 * window
    else:
        same = np.zeros(len(df), dtype=bool)
        same[1:] = codes[1:] == codes[:-1]
        step = same.copy()
        step[1:] &= (v[1:] > 0) & (v[:-1] > 0) & (cnt[1:] > 0) & (cnt[:-1] > 0)
        idx = np.flatnonzero(step)
        steps = pd.DataFrame({"g": codes[idx], "lam": -np.log(v[idx] / v[idx - 1]) / (day[idx] - day[idx - 1])})
        agg = steps.groupby("g")["lam"].agg(["median", "std", "size"])
        gi = agg.index.to_numpy()
        n_steps = np.zeros(G, dtype=np.int64)
        n_steps[gi] = agg["size"].to_numpy()
        lam[gi] = agg["median"].to_numpy()
        se[gi] = 1.2533141373155001 * agg["std"].to_numpy() / np.sqrt(agg["size"].to_numpy())
        method_fail = (n_steps < max(rules.min_steps, 2), "too_few_positive_steps")
        too_few = n < 2
    reason = _ev.first_reason(G, [
        (n == 0, "no_decay_phase"),
        (too_few, "too_few_days"),
        (_ev.insufficient_mask(events, active, rules), "insufficient_data"),
        method_fail,
    ])
    ok0 = reason == "ok"
    if ok0.any():
        day0 = np.full(G, np.inf)
        np.minimum.at(day0, codes, day)
        fp = _ev.fingerprint(codes, G, day - day0[codes], v)
        reason[_ev.constant_mask(lam, ok0, fp, rules)] = "method_constant"
    ok = reason == "ok"
    out = keys.copy()
    out["lam_hat"] = np.where(ok, lam, np.nan)
    out = _with_uncertainty(out, lam, se, ok, rules)
    out["n_days"] = n.astype(np.int64)
    out["n_events"] = events
    out["n_active_days"] = active
    out["reason"] = reason.astype(str)
    return out


def _forecast_levels(forecasts: pd.DataFrame, horizon: int, pair_cols: Sequence[str]) -> pd.DataFrame:
    """The ``horizon``-step-ahead forecasts as a daily level series: pair columns, ``origin_day``,
    ``interest_pred`` and ``day = origin_day + horizon`` (each level uses data up to its origin)."""
    need = {*pair_cols, "origin_day", "horizon", "interest_pred"}
    missing = sorted(need - set(forecasts.columns))
    if missing:
        raise KeyError(f"forecasts is missing column(s) {missing}")
    if not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    lev = forecasts[forecasts["horizon"] == horizon]
    if lev.empty:
        raise ValueError(f"forecasts has no rows with horizon == {horizon}")
    return lev[[*pair_cols, "origin_day", "interest_pred"]].assign(day=lev["origin_day"] + horizon)


def _apply_panel_evidence(res, panel, start, start_col, pair_cols, rules, level_total):
    """Rule 1 on the observed decay phase for the forecast-level estimators, and ``se_lam``
    rescaled from forecast levels to the observed events (the plug-in Cramér-Rao bound scales as
    1/sqrt(total count) for a given curve shape)."""
    pair_cols = list(pair_cols)
    keys = res[pair_cols]
    events, active, n_obs = _panel_phase_evidence(panel, start, keys, start_col=start_col, pair_cols=pair_cols)
    reason = res["reason"].to_numpy(dtype=object).copy()
    fail = _ev.first_reason(len(res), [(n_obs == 0, "no_decay_phase"),
                                       (_ev.insufficient_mask(events, active, rules), "insufficient_data")], default="")
    upd = (reason == "ok") & (fail != "")
    reason[upd] = fail[upd]
    ok = reason == "ok"
    with np.errstate(invalid="ignore", divide="ignore"):
        scale = np.sqrt(np.asarray(level_total, dtype=np.float64) / events)
    lam = res["lam_hat"].to_numpy(dtype=np.float64)
    se = res["se_lam"].to_numpy(dtype=np.float64) * scale
    out = res.drop(columns=list(UNCERTAINTY_COLS))
    out["lam_hat"] = np.where(ok, lam, np.nan)
    out = _with_uncertainty(out, lam, se, ok, rules)
    out["n_events"] = events
    out["n_active_days"] = active
    out["reason"] = reason.astype(str)
    return out[[c for c in out.columns if c != "reason"] + ["reason"]]


def _level_totals(lev, start, start_col, pair_cols, keys):
    pair_cols = list(pair_cols)
    st = pair_values(start, pair_cols, start_col, "start")
    m = lev.merge(st, on=pair_cols)
    m = m[m["day"] >= m[start_col]]
    tot = m.groupby(pair_cols)["interest_pred"].sum().rename("tot").reset_index()
    return keys[pair_cols].merge(tot, on=pair_cols, how="left")["tot"].to_numpy(dtype=np.float64, na_value=np.nan)


def lambda_from_forecast_levels(forecasts: pd.DataFrame, start, *, horizon: int = 1, window: int = 3,
                                start_col: str = "t_peak", pair_cols: Sequence[str] = PAIR_COLS,
                                panel: pd.DataFrame | None = None, rules: EvidenceRules | None = None) -> pd.DataFrame:
    """The formula applied to a forecaster's ``horizon``-step-ahead *levels* over the decay phase.

    A single forecast path spans only ``H - 1`` days, so its log-ratio is noisy. Here the model is
    used as a causal denoiser instead: the forecast made at origin ``d`` for day ``d + horizon``
    is that day's level estimate, and :func:`two_point_lambda` (``"endpoints"``) compares the
    mean level of the first ``window`` and last ``window`` days of the decay phase, a long
    ``Δt``.  Each level uses data up to ``d`` only.

    ``forecasts`` has the ``forecasts.parquet`` columns (``user_id, category, origin_day,
    horizon, interest_pred``); ``start`` is as in :func:`two_point_lambda`.

    Evidence: the levels are model outputs, not counts, so the count rules cannot be checked
    on them. Pass ``panel`` (the daily panel with the event counts) to apply the decay-phase
    minimums to the observed events from ``start`` on (``insufficient_data``,
    ``no_decay_phase``) and to scale ``se_lam`` to the observed events. ``se_lam`` is the
    delta-method error of :func:`two_point_lambda` with the levels read as expected counts
    (rescaled by sqrt(level total / observed events) with a panel): the precision the data
    allow for this formula, not the forecaster's own error.

    Notebook 04.
    """
    rules = _ev.resolve_rules(rules)
    lev = _forecast_levels(forecasts, horizon, pair_cols).assign(observed=True)
    res = two_point_lambda(lev, start, value_col="interest_pred", method="endpoints", window=window,
                           start_col=start_col, pair_cols=pair_cols, count_cols=None,
                           rules=EvidenceRules.disabled(rules.interval_level))
    if panel is None:
        return res.drop(columns=["n_events", "n_active_days"])
    tot = _level_totals(lev, start, start_col, pair_cols, res)
    return _apply_panel_evidence(res.drop(columns=["n_events", "n_active_days"]), panel, start, start_col,
                                 pair_cols, rules, tot)

#: The :func:`fit_poisson_mle` columns of a pair without any forecast level in its decay phase.
_NO_PATH_FIT = {"lam_hat": np.nan, **dict.fromkeys(UNCERTAINTY_COLS, np.nan), "log_a": np.nan, "n_days": 0,
                "total_count": 0.0, "n_active_days": 0, "iterations": 0, "converged": False,
                "reason": "no_paths_in_decay_phase"}


def _fill_missing_pairs(keys: pd.DataFrame, table: pd.DataFrame | None, fill: dict) -> pd.DataFrame:
    """One row per pair of ``keys``: its row of ``table``, or ``fill`` (column -> value) for
    pairs ``table`` lacks. Integer and boolean columns keep their dtype."""
    pair_cols = list(keys.columns)
    out = keys.copy() if table is None else keys.merge(table, on=pair_cols, how="left")
    for col, value in fill.items():
        if col not in out.columns:
            out[col] = value
            continue
        dtype = table[col].dtype if table is not None and col in table.columns else None
        out[col] = out[col].fillna(value)
        if dtype is not None and dtype.kind in "iub":
            out[col] = out[col].astype(dtype)
    return out[pair_cols + [c for c in (table.columns if table is not None else fill) if c not in pair_cols]]


def lambda_from_forecast_fit(forecasts: pd.DataFrame, start, *, horizon: int = 1, start_col: str = "t_peak",
                             pair_cols: Sequence[str] = PAIR_COLS, min_days: int = 3,
                             panel: pd.DataFrame | None = None, rules: EvidenceRules | None = None) -> pd.DataFrame:
    """λ by fitting ``I0·e^{-λt}`` to a forecaster's ``horizon``-step-ahead levels over the decay phase.

    Like :func:`lambda_from_forecast_levels`, but instead of the two-point formula it fits the
    exponential to *every* level from the decay start on, with the Poisson log-likelihood as
    a weighting (a quasi-likelihood: the levels are model outputs, not counts, so the Cramér-Rao
    bound of :func:`cramer_rao_lambda` does not apply to them; it is only a yardstick).  Busy days
    weigh more, near-zero tails less, which is what a noisy exponential needs.
    Returns the :func:`fit_poisson_mle` table (``lam_hat``, the uncertainty columns,
    ``reason``, ...), one row per pair of ``start``: a pair without any level in its decay
    phase (no forecast, or none from ``start`` on) gets ``"no_paths_in_decay_phase"`` and NaN.
    ``se_lam`` and the interval treat the levels as expected counts (the
    plug-in Cramér-Rao bound of the fitted curve); with ``panel`` they are rescaled to the
    observed events of the decay phase, whose minimums are then applied as well (see
    :func:`lambda_from_forecast_levels`). The count-based columns (``total_count``,
    ``n_active_days``) are in level units unless a panel replaces them.

    Notebook 04.
    """
    rules = _ev.resolve_rules(rules)
    pair_cols = list(pair_cols)
    lev = _forecast_levels(forecasts, horizon, pair_cols)
    st = pair_values(start, pair_cols, start_col, "start")
    lev = lev.merge(st, on=pair_cols)
    lev = lev[lev["day"] >= lev[start_col]]
    keys = st[pair_cols].sort_values(pair_cols).reset_index(drop=True)
    res = None
    if len(lev):
        table = lev.assign(t=lev["day"] - lev[start_col], count=lev["interest_pred"].clip(lower=0.0), observed=True)
        res = fit_poisson_mle(table, min_days=min_days, pair_cols=pair_cols,
                              rules=EvidenceRules.disabled(rules.interval_level))
    res = _fill_missing_pairs(keys, res, _NO_PATH_FIT)
    if panel is None:
        return res
    tot = res["total_count"].to_numpy(dtype=np.float64)
    out = _apply_panel_evidence(res.drop(columns=["n_active_days"]), panel, start, start_col, pair_cols, rules, tot)
    return out


def decay_phase_table(
    panel: pd.DataFrame,
    start,
    *,
    end=None,
    start_col: str = "t_peak",
    end_col: str = "t_end",
    count_cols: Sequence[str] = BEHAVIOURS,
    truth_daily: pd.DataFrame | None = None,
    pair_cols: Sequence[str] = PAIR_COLS,
    day_col: str = "day",
    observed_col: str = "observed",
) -> pd.DataFrame:
    """Long table of each pair's decay phase, ready for the estimators and the bound.

    Returns one row per panel day with ``start <= day (<= end)``: the pair columns, ``day``,
    ``t = day - start`` (days since the decay start), ``count`` = sum of ``count_cols``
    (default view+click+cart+purchase, a Poisson count whose mean is proportional to the true
    interest; the weighted interest *score* is not Poisson), ``observed``, and, when
    ``truth_daily`` is given, ``expected_count`` = sum of the matching ``expected_*`` columns
    (the true Poisson mean, for :func:`cramer_rao_table`).

    Notebooks 04 and 09.
    """
    pair_cols = list(pair_cols)
    df, _ = _decay_rows(
        panel, start, end, start_col=start_col, end_col=end_col, pair_cols=pair_cols, day_col=day_col,
        observed_col=observed_col, value_cols=list(count_cols), name="panel",
    )
    out = df[pair_cols + [day_col]].copy()
    out["t"] = (df[day_col].to_numpy(dtype=np.float64) - df[start_col].to_numpy(dtype=np.float64))
    out["count"] = df[list(count_cols)].sum(axis=1).to_numpy(dtype=np.float64)
    out["observed"] = bool_column(df, observed_col, "panel")
    if truth_daily is not None:
        exp_cols = [f"expected_{c}" for c in count_cols]
        check_frame(truth_daily, pair_cols + [day_col] + exp_cols, "truth_daily")
        td = truth_daily[pair_cols + [day_col]].copy()
        td["expected_count"] = truth_daily[exp_cols].sum(axis=1).to_numpy(dtype=np.float64)
        out = out.merge(td, on=pair_cols + [day_col], how="left", validate="one_to_one")
        n_missing = int(out["expected_count"].isna().sum())
        if n_missing:
            raise ValueError(f"truth_daily lacks {n_missing} (pair, day) rows of the decay phase")
    return out.reset_index(drop=True)


# --------------------------------------------------------------------------------------------
# Classical estimators, vectorized over all pairs with grouped sums
# --------------------------------------------------------------------------------------------
def _prepare_long(data, pair_cols, t_col, count_col, observed_col, name="data"):
    pair_cols = list(pair_cols)
    req = pair_cols + [t_col, count_col] + ([observed_col] if observed_col else [])
    check_frame(data, req, name)
    codes, keys = _group_codes(data, pair_cols, name)
    check_unique_rows(data, pair_cols + [t_col], name)  # as find_decay_point: a repeated day would count twice
    t = numeric_column(data, t_col, name)
    y = numeric_column(data, count_col, name)
    obs = bool_column(data, observed_col, name) if observed_col else np.ones(len(data), dtype=bool)
    check_finite(t, t_col, name, nonnegative=False, mask=obs)
    check_finite(y, count_col, name, mask=obs)
    return codes, keys, t, y, obs


def _gsum(codes, w, G):
    return np.bincount(codes, weights=w, minlength=G)


def fit_least_squares(
    data: pd.DataFrame,
    *,
    transform: str = "log",
    min_days: int = 3,
    pair_cols: Sequence[str] = PAIR_COLS,
    t_col: str = "t",
    count_col: str = "count",
    observed_col: str | None = "observed",
    rules: EvidenceRules | None = None,
) -> pd.DataFrame:
    r"""λ by ordinary least squares of a log-transformed count on ``t``, all pairs at once.

    Fits :math:`\log y_t = \log a - \lambda t` per pair with closed-form grouped sums.

    Parameters
    ----------
    data : DataFrame
        Long table: pair columns, ``t`` (days since the decay start, or the day itself: only
        differences matter for λ), ``count`` (event counts, >= 0) and ``observed`` (outage days
        are skipped). :func:`decay_phase_table` builds it from the panel.
    transform : {"log", "log1p"}
        ``"log"``: :math:`\log y` over the *positive* days only (zero days are dropped). Known
        biases: :math:`E[\log y] < \log E[y]` (Jensen), and dropping zeros keeps only the late days
        that happened to have events, which props up the tail: λ is underestimated once
        counts are small. ``"log1p"``: :math:`\log(1+y)` over all observed days; keeps zeros but
        flattens small counts (:math:`\log(1+\mu)` decays slower than :math:`\log\mu`), so λ is
        biased towards 0 as well (one view followed by a run of zero-filled days gives a
        half-life of hundreds of days: the evidence minimums refuse it). Both are exact only on
        large noise-free counts (``"log"``).
    min_days : int
        Fewer usable days gives NaN with reason ``"too_few_days"`` (at least 3 are needed in
        any case: the standard error needs a residual).
    rules : EvidenceRules, optional
        Evidence thresholds (:mod:`decaylib.decay.evidence`): events and active days in the decay
        phase (``"insufficient_data"``) and the data-driven constant check
        (``"method_constant"``: e.g. ``"log"`` gives exactly λ = 0 for every pair whose active
        days all have one event, whatever the days).

    Returns
    -------
    DataFrame
        ``pair_cols, lam_hat``, the uncertainty columns (``se_lam`` from the OLS residual
        variance, :math:`\sqrt{s^2/S_{tt}}` with :math:`s^2 = RSS/(n-2)`; Student-t interval
        with ``n - 2`` degrees of freedom at ``rules.interval_level``; both describe the scatter
        about the fitted line and assume homoscedastic errors on the log scale, so they do not
        include the transform's bias), ``log_a`` (fitted log level at ``t = 0``, in the
        transform's units), ``n_days`` (days used), ``n_events``, ``n_active_days``, ``reason``
        (``"ok"``, ``"no_observed_days"``, ``"all_zero"``, ``"too_few_days"``,
        ``"insufficient_data"``, ``"t_constant"``, ``"zeros_after_events"``, ``"method_constant"``).
        ``"zeros_after_events"`` (``"log"`` only): the observed days after the pair's last day with
        events are all zero, yet the fitted line expects more events on them than the pair had in
        all (and at least :data:`~decaylib.decay.evidence.ZERO_RUN_EVENTS`): the line describes the
        first days only (a pair that stops after three rising days would get λ < 0).

    Notebook 04.
    """
    from scipy.stats import t as student_t

    check_choice("transform", transform, {"log", "log1p"})
    if min_days < 2:
        raise ValueError("min_days must be >= 2 (a line needs two points)")
    rules = _ev.resolve_rules(rules)
    codes, keys, t, y, obs = _prepare_long(data, pair_cols, t_col, count_col, observed_col)
    G = len(keys)
    if transform == "log":
        use = obs & (y > 0)
        z = np.log(np.where(use, y, 1.0))
    else:
        use = obs
        z = np.log1p(np.where(use, y, 0.0))
    w = use.astype(np.float64)
    n = _gsum(codes, w, G)
    n_obs = _gsum(codes, obs.astype(np.float64), G)
    events, active = _ev.group_evidence(codes, np.where(obs, y, 0.0), G, obs)
    with np.errstate(invalid="ignore", divide="ignore"):
        tbar = _gsum(codes, w * t, G) / n
        zbar = _gsum(codes, w * z, G) / n
        tc = np.where(use, t - tbar[codes], 0.0)
        sxx = _gsum(codes, tc * tc, G)
        sxz = _gsum(codes, tc * (z - zbar[codes]) * w, G)
        slope = sxz / sxx
        resid = np.where(use, z - zbar[codes] - slope[codes] * tc, 0.0)
        rss = _gsum(codes, resid * resid, G)
        se = np.sqrt(np.maximum(rss, 0.0) / (n - 2) / sxx)
    tail = np.zeros(G)
    if transform == "log":  # the zero days it drops must not contradict the line (evidence rule 1)
        last = np.full(G, -np.inf)
        np.maximum.at(last, codes[use], t[use])
        after = obs & (t > last[codes])
        with np.errstate(over="ignore", invalid="ignore"):
            mu = np.exp(np.minimum((zbar - slope * tbar)[codes] + slope[codes] * t, 700.0))
        tail = _gsum(codes, np.where(after & np.isfinite(mu), mu, 0.0), G)
    reason = _ev.first_reason(G, [
        (n_obs == 0, "no_observed_days"),
        (events <= 0, "all_zero"),
        (n < max(min_days, 3), "too_few_days"),
        (_ev.insufficient_mask(events, active, rules), "insufficient_data"),
        (sxx <= 1e-12 * np.maximum(1.0, n), "t_constant"),
    ])
    lam = -slope
    ok0 = reason == "ok"
    if ok0.any():
        t0 = np.full(G, np.inf)
        np.minimum.at(t0, codes[obs], t[obs])
        rows = obs & ok0[codes]
        fp = _ev.fingerprint(codes[rows], G, t[rows] - t0[codes[rows]], y[rows])
        reason[_ev.constant_mask(lam, ok0, fp, rules)] = "method_constant"
    reason[(reason == "ok") & (tail >= np.maximum(_ev.ZERO_RUN_EVENTS, events))] = "zeros_after_events"
    ok = reason == "ok"
    q = np.where(ok, student_t.ppf(0.5 + rules.interval_level / 2.0, np.maximum(n - 2, 1)), np.nan)
    out = keys.copy()
    out["lam_hat"] = np.where(ok, lam, np.nan)
    out = _with_uncertainty(out, lam, se, ok, rules, lam - q * se, lam + q * se)
    out["log_a"] = np.where(ok, zbar - slope * tbar, np.nan)
    out["n_days"] = n.astype(np.int64)
    out["n_events"] = events
    out["n_active_days"] = active
    out["reason"] = reason.astype(str)
    return out


def fit_poisson_mle(
    data: pd.DataFrame,
    *,
    min_days: int = 3,
    max_iter: int = 50,
    tol: float = 1e-9,
    pair_cols: Sequence[str] = PAIR_COLS,
    t_col: str = "t",
    count_col: str = "count",
    observed_col: str | None = "observed",
    rules: EvidenceRules | None = None,
) -> pd.DataFrame:
    r"""λ by Poisson maximum likelihood, :math:`\log\mu_t = a - \lambda t`, all pairs at once.

    Newton's method (= IRLS for the canonical log link) on the per-pair parameters, with the
    per-pair 2x2 systems solved in closed form from grouped sums (``np.bincount``), ``t``
    centred per pair for conditioning, a log-linear starting point and a vectorized
    step-halving safeguard so that the log-likelihood never decreases. Typically converges
    in 3-6 iterations. Counts need not be integers (the Poisson score equations only use the
    mean), so exact expected counts are recovered exactly.

    Parameters
    ----------
    data : DataFrame
        Long table: pair columns, ``t``, ``count`` (>= 0), ``observed`` (outage days skipped);
        see :func:`decay_phase_table`.
    min_days : int
        Minimum number of observed days (default 3).
    max_iter, tol : int, float
        Newton iterations and convergence tolerance on the parameter step.
    rules : EvidenceRules, optional
        Evidence thresholds (:mod:`decaylib.decay.evidence`): at least ``rules.min_events`` events and
        ``rules.min_active_days`` active days in the decay phase (``"insufficient_data"``), and
        the interval level. No constant check: the MLE is a smooth function of its sufficient
        statistics (Σy, Σty), and its one degenerate case is ``"mle_not_finite"``.

    Returns
    -------
    DataFrame
        ``pair_cols, lam_hat``, ``se_lam`` (asymptotic standard error from the Fisher
        information at the fit, :math:`1/\sqrt{\sum_t \hat\mu_t (t-\bar t_{\hat\mu})^2}`: the
        Cramér-Rao bound evaluated at the estimate), ``lam_lo, lam_hi`` (profile-likelihood
        interval at ``rules.interval_level``, default 90 %: the λ's whose profile deviance
        :math:`2(\ell(\hat\lambda) - \max_a \ell(a, \lambda))` is at most the
        :math:`\chi^2_1` quantile; asymmetric, and with few events it covers the truth more
        reliably than the Wald interval ``lam ± z·se``), ``half_life, half_life_lo,
        half_life_hi`` (:math:`\ln 2/\lambda` of the estimate and of the interval's ends; an
        interval that reaches λ <= 0 has an infinite upper half-life), ``log_a`` (log mean
        count at ``t = 0``), ``n_days``, ``total_count``, ``n_active_days``, ``iterations``,
        ``converged``, ``reason``. Reasons: ``"ok"``, ``"no_observed_days"``, ``"all_zero"``,
        ``"too_few_days"``, ``"insufficient_data"``, ``"mle_not_finite"`` (all events on the
        first or the last observed day: the likelihood keeps increasing as λ → ±∞),
        ``"not_converged"``. Whenever the reason is not ``"ok"``, ``lam_hat`` and the
        uncertainty columns are NaN.

    Notebooks 04 and 09.
    """
    if min_days < 2:
        raise ValueError("min_days must be >= 2")
    if max_iter < 1:
        raise ValueError("max_iter must be >= 1")
    rules = _ev.resolve_rules(rules)
    codes, keys, t, y, obs = _prepare_long(data, pair_cols, t_col, count_col, observed_col)
    G = len(keys)
    if G <= _MLE_CHUNK_PAIRS:
        return _poisson_mle_core(codes, keys, t, y, obs, min_days, max_iter, tol, rules)
    # Large fits run in blocks of pairs: every pair's fit is independent of the others and uses
    # its rows in the same order, so the result is identical, and the temporaries stay small
    # enough to be cache- and page-friendly (one pass over 30M rows at once is ~2x slower per pair).
    if not (codes[1:] >= codes[:-1]).all():
        order = np.argsort(codes, kind="stable")
        codes, t, y, obs = codes[order], t[order], y[order], obs[order]
    bounds = np.searchsorted(codes, np.arange(0, G + _MLE_CHUNK_PAIRS, _MLE_CHUNK_PAIRS).clip(max=G))
    parts = []
    for i, k0 in enumerate(range(0, G, _MLE_CHUNK_PAIRS)):
        k1 = min(k0 + _MLE_CHUNK_PAIRS, G)
        r0, r1 = bounds[i], bounds[i + 1]
        parts.append(_poisson_mle_core(codes[r0:r1] - k0, keys.iloc[k0:k1], t[r0:r1], y[r0:r1], obs[r0:r1],
                                       min_days, max_iter, tol, rules))
    return pd.concat(parts)

#: pairs per block in :func:`fit_poisson_mle` (results do not depend on it)
_MLE_CHUNK_PAIRS = 100_000


def _poisson_mle_core(codes, keys, t, y, obs, min_days, max_iter, tol, rules) -> pd.DataFrame:
    """The fit of :func:`fit_poisson_mle` on prepared arrays (pair codes 0..len(keys)-1)."""
    G = len(keys)
    y = np.where(obs, y, 0.0)
    w = obs.astype(np.float64)
    n = _gsum(codes, w, G)
    y_tot = _gsum(codes, y, G)
    _, active = _ev.group_evidence(codes, y, G, obs)

    # t range and where the events sit, for the existence check
    big = np.inf
    tmin = np.full(G, big)
    tmax = np.full(G, -big)
    np.minimum.at(tmin, codes[obs], t[obs])
    np.maximum.at(tmax, codes[obs], t[obs])
    pos = obs & (y > 0)
    tymin = np.full(G, big)
    tymax = np.full(G, -big)
    np.minimum.at(tymin, codes[pos], t[pos])
    np.maximum.at(tymax, codes[pos], t[pos])

    reason = _ev.first_reason(G, [
        (n == 0, "no_observed_days"),
        (y_tot <= 0, "all_zero"),
        (n < min_days, "too_few_days"),
        (_ev.insufficient_mask(y_tot, active, rules), "insufficient_data"),
        (~((tymax > tmin) & (tymin < tmax)), "mle_not_finite"),
    ])
    active_g = reason == "ok"

    # work only on rows of fit-able pairs, observed days
    rows = obs & active_g[codes]
    c = codes[rows]
    tt = t[rows]
    yy = y[rows]
    with np.errstate(invalid="ignore", divide="ignore"):
        tbar = _gsum(c, tt, G) / n
    tc = tt - tbar[c]

    # start: least squares on log(y + 0.5) (defined for zero days)
    z = np.log(yy + 0.5)
    with np.errstate(invalid="ignore", divide="ignore"):
        zbar = _gsum(c, z, G) / n
        sxx = _gsum(c, tc * tc, G)
        b = _gsum(c, tc * (z - zbar[c]), G) / sxx
    b = np.where(np.isfinite(b), b, 0.0)
    a = np.log(np.maximum(y_tot, 1e-300) / np.maximum(n, 1)) - np.log(
        np.maximum(_gsum(c, np.exp(np.clip(b[c] * tc, -700, 700)), G), 1e-300) / np.maximum(n, 1)
    )  # profile a given b: sum(mu) = sum(y)

    iterations = np.zeros(G, dtype=np.int64)
    converged = np.zeros(G, dtype=bool)
    # The iteration works on the pairs still iterating only, renumbered 0..m-1, with their rows;
    # both shrink as pairs converge, and step halving re-evaluates only the rows of the pairs
    # that need it. Every per-pair sum adds the same rows in the same order as a sum over all
    # pairs would, so the result does not depend on which other pairs are in the fit, and the cost
    # is linear in the number of pairs (no O(G) work per iteration once most pairs are done).
    idx = np.flatnonzero(active_g)
    sel = active_g[c]
    loc = np.full(G, -1, dtype=np.int64)
    loc[idx] = np.arange(idx.size)
    cl, ts, ys = loc[c[sel]], tc[sel], yy[sel]
    ai, bi = a[idx], b[idx]

    def loglik(a_, b_, cs, ts_, ys_, m):
        eta = np.clip(a_[cs] + b_[cs] * ts_, -745.0, 700.0)
        return _gsum(cs, ys_ * eta - np.exp(eta), m)

    for _ in range(max_iter):
        m = idx.size
        if m == 0:
            break
        eta = np.clip(ai[cl] + bi[cl] * ts, -745.0, 700.0)
        mu = np.exp(eta)
        r = ys - mu
        ll = _gsum(cl, ys * eta - mu, m)
        s0 = _gsum(cl, mu, m)
        mt = mu * ts
        s1 = _gsum(cl, mt, m)
        s2 = _gsum(cl, mt * ts, m)
        u0 = _gsum(cl, r, m)
        u1 = _gsum(cl, r * ts, m)
        det = s0 * s2 - s1 * s1
        with np.errstate(invalid="ignore", divide="ignore"):
            da = (s2 * u0 - s1 * u1) / det
            db = (s0 * u1 - s1 * u0) / det
        live = np.isfinite(da) & np.isfinite(db)   # a non-finite step ends the pair: not converged
        da = np.where(live, da, 0.0)
        db = np.where(live, db, 0.0)
        iterations[idx[live]] += 1
        step = np.ones(m)
        a_new, b_new = ai + da, bi + db
        ll_new = loglik(a_new, b_new, cl, ts, ys, m)
        # step halving where the log-likelihood went down, on those pairs' rows only
        for _h in range(40):
            worse = live & ~(ll_new >= ll - 1e-12 * np.abs(ll))
            if not worse.any():
                break
            step = np.where(worse, step * 0.5, step)
            a_new = np.where(worse, ai + step * da, a_new)
            b_new = np.where(worse, bi + step * db, b_new)
            rw = worse[cl]
            ll_w = loglik(a_new, b_new, cl[rw], ts[rw], ys[rw], m)
            ll_new = np.where(worse, ll_w, ll_new)
        ai = np.where(live, a_new, ai)
        bi = np.where(live, b_new, bi)
        done = live & (np.abs(step * da) < tol * (1 + np.abs(ai))) & (np.abs(step * db) < tol * (1 + np.abs(bi)))
        a[idx], b[idx] = ai, bi
        converged[idx[done]] = True
        keep = live & ~done
        if not keep.all():
            new_code = np.cumsum(keep) - 1
            rk = keep[cl]
            cl, ts, ys = new_code[cl[rk]], ts[rk], ys[rk]
            idx, ai, bi = idx[keep], ai[keep], bi[keep]

    # Fisher information at the fit -> standard error of lambda
    eta = np.clip(a[c] + b[c] * tc, -745.0, 700.0)
    mu = np.exp(eta)
    s0 = _gsum(c, mu, G)
    s1 = _gsum(c, mu * tc, G)
    s2 = _gsum(c, mu * tc * tc, G)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = np.sqrt(s0 / (s0 * s2 - s1 * s1))
    reason[active_g & ~converged] = "not_converged"
    ok = reason == "ok"
    b_lo, b_hi = _profile_interval(c, tc, yy, b, se, ok, G, rules.interval_level)
    out = keys.copy()
    out["lam_hat"] = np.where(ok, -b, np.nan)
    out = _with_uncertainty(out, -b, se, ok, rules, -b_hi, -b_lo)
    out["log_a"] = np.where(ok, a - b * tbar, np.nan)
    out["n_days"] = n.astype(np.int64)
    out["total_count"] = y_tot
    out["n_active_days"] = active
    out["iterations"] = iterations
    out["converged"] = converged
    out["reason"] = reason.astype(str)
    return out


def _profile_interval(c, tc, y, b_hat, se, ok, G, level, max_expand: int = 60, max_newton: int = 50):
    r"""Profile-likelihood interval for the slope ``b`` of :math:`\log\mu_t = a + b t`, all pairs at once.

    With ``a`` profiled out, :math:`\ell_p(b) = b\,S_{ty} - Y \log \sum_t e^{b t}` (+ const), a
    concave function of ``b``; the interval is where the deviance
    :math:`D(b) = 2(\ell_p(\hat b) - \ell_p(b))` is at most the :math:`\chi^2_1` quantile ``q`` of
    ``level``. On each side a point with ``D >= q`` is found by doubling a step that starts at two
    Wald half-widths; from there Newton's method on ``D(b) = q`` walks towards ``b_hat`` and,
    ``D`` being convex, never overshoots the root (quadratic convergence, vectorized over pairs).
    Rows: the pairs' observed days (``c`` codes, ``tc`` centred days, ``y`` counts). Returns
    ``(b_lo, b_hi)``, NaN where ``ok`` is False; ``∓inf`` where ``D`` never reaches ``q``.
    """
    from scipy.stats import chi2

    q = float(chi2.ppf(level, 1))
    b_lo = np.full(G, np.nan)
    b_hi = np.full(G, np.nan)
    if not ok.any():
        return b_lo, b_hi
    rows = ok[c]
    c, tc, y = c[rows], tc[rows], y[rows]
    Y = _gsum(c, y, G)
    sty = _gsum(c, y * tc, G)
    tmin = np.full(G, np.inf)
    tmax = np.full(G, -np.inf)
    np.minimum.at(tmin, c, tc)
    np.maximum.at(tmax, c, tc)
    tmin, tmax = np.where(ok, tmin, 0.0), np.where(ok, tmax, 0.0)
    bh = np.where(ok, b_hat, 0.0)

    def log_s(b):
        """log sum exp(b t) and the exp(b t)-weighted mean of t, per pair (shifted: no overflow)."""
        m = np.maximum(b * tmin, b * tmax)
        w = np.exp(b[c] * tc - m[c])
        s0 = np.maximum(_gsum(c, w, G), 1e-300)
        return m + np.log(s0), _gsum(c, w * tc, G) / s0

    ls_hat, _ = log_s(bh)

    def dev(b):
        ls, mean_t = log_s(b)
        return 2.0 * (Y * (ls - ls_hat) - (b - bh) * sty), 2.0 * (Y * mean_t - sty)

    z = float(np.sqrt(q))
    step = np.where(ok & np.isfinite(se) & (se > 0), 2.0 * z * se, 1e-3 * (1.0 + np.abs(bh)))
    for sign, out in ((-1.0, b_lo), (1.0, b_hi)):
        st = step.copy()
        found = ~ok
        for _ in range(max_expand):
            d, _ = dev(bh + sign * st)
            found |= d >= q
            if found.all():
                break
            st = np.where(found, st, 2.0 * st)
        b = bh + sign * st
        todo = found & ok
        for _ in range(max_newton):
            if not todo.any():
                break
            d, dd = dev(b)
            with np.errstate(invalid="ignore", divide="ignore"):
                delta = np.where(todo & (dd != 0), (d - q) / dd, 0.0)
            b = np.where(todo, b - delta, b)
            todo &= np.abs(delta) > 1e-12 * (1.0 + np.abs(b))
        out[:] = np.where(ok, np.where(found, b, sign * np.inf), np.nan)
    return b_lo, b_hi

# --------------------------------------------------------------------------------------------
# Every method at once (notebook 04)
# --------------------------------------------------------------------------------------------
#: The λ methods of notebook 04: name -> the call that :func:`lambda_by_method` makes.
LAMBDA_METHODS: dict[str, str] = {
    "log_ratio_raw": "two_point_lambda(panel, start, value_col='interest')",
    "log_ratio_smooth": "two_point_lambda(panel, start, value_col='interest_smooth')",
    "log_ratio_lstm": "lambda_from_forecasts(forecasts, start, panel=panel)",
    "log_ratio_lstm_level": "lambda_from_forecast_levels(forecasts, start, panel=panel)",
    "lstm_level_fit": "lambda_from_forecast_fit(forecasts, start, panel=panel)",
    "least_squares": "fit_least_squares(decay_phase_table(panel, start))",
    "poisson_mle": "fit_poisson_mle(decay_phase_table(panel, start))",
}

_FORECAST_METHODS = ("log_ratio_lstm", "log_ratio_lstm_level", "lstm_level_fit")


def lambda_by_method(
    panel: pd.DataFrame,
    start,
    forecasts: pd.DataFrame | None = None,
    *,
    start_col: str = "t_peak",
    upstream: pd.DataFrame | None = None,
    rules: EvidenceRules | None = None,
) -> dict[str, pd.DataFrame]:
    """λ of every pair by each method of :data:`LAMBDA_METHODS`, from the same decay phases.

    Parameters
    ----------
    panel : DataFrame
        The daily panel (with the event-count columns: every method applies the evidence rules
        to the observed events of the decay phase).
    start : DataFrame or Series
        Per-pair first day of the decay phase (pair columns and ``start_col``); may be empty.
    forecasts : DataFrame, optional
        Cross-fitted forecasts (``forecasts.parquet`` layout) for the three forecast-based
        methods; without them those methods are left out.
    upstream : DataFrame, optional
        A per-pair table with a ``reason`` whose ``"ok"`` pairs are the ones in ``start``, e.g.
        :func:`decaylib.decay.points.find_decay_point`'s. Its pairs that are not in ``start`` get a
        row in every table with NaN estimates and *its* reason (why the decay phase could not
        start: ``"insufficient_data"``, ``"not_a_peak"``, ...; ``"no_decay_phase"`` for a pair it
        calls ok without a start), so that every table covers every pair of ``upstream``.
    rules : EvidenceRules, optional
        Evidence thresholds, passed to every method.

    Returns
    -------
    dict
        Method name -> its table (one row per pair, sorted by the pair columns), as returned by
        the function of :data:`LAMBDA_METHODS`, plus ``n_decay_days`` (observed days in the
        pair's decay phase, 0 without one). Every table has ``lam_hat``, the uncertainty columns
        and ``reason``, also when ``start`` is empty.

    Notebook 04.
    """
    pair_cols = list(PAIR_COLS)
    st = pair_values(start, pair_cols, start_col, "start", allow_empty=True)
    methods = [m for m in LAMBDA_METHODS if forecasts is not None or m not in _FORECAST_METHODS]
    keys = st[pair_cols].sort_values(pair_cols).reset_index(drop=True)
    if len(st):
        phase = decay_phase_table(panel, st, start_col=start_col)
        fc = {"forecasts": forecasts, "start": st, "start_col": start_col, "panel": panel, "rules": rules}
        run = {
            "log_ratio_raw": lambda: two_point_lambda(panel, st, value_col="interest", start_col=start_col, rules=rules),
            "log_ratio_smooth": lambda: two_point_lambda(panel, st, value_col="interest_smooth", start_col=start_col,
                                                         rules=rules),
            "log_ratio_lstm": lambda: lambda_from_forecasts(**fc),
            "log_ratio_lstm_level": lambda: lambda_from_forecast_levels(**fc),
            "lstm_level_fit": lambda: lambda_from_forecast_fit(**fc),
            "least_squares": lambda: fit_least_squares(phase, rules=rules),
            "poisson_mle": lambda: fit_poisson_mle(phase, rules=rules),
        }
        tables = {m: run[m]() for m in methods}
        n_days = phase.loc[phase["observed"]].groupby(pair_cols).size().rename("n_decay_days").reset_index()
    else:
        tables = {m: None for m in methods}
        n_days = keys.assign(n_decay_days=np.int64(0))
    empty = {"lam_hat": np.nan, **dict.fromkeys(UNCERTAINTY_COLS, np.nan), "reason": "no_decay_phase"}
    rest = None
    if upstream is not None:
        check_frame(upstream, pair_cols + ["reason"], "upstream")
        rest = upstream[pair_cols + ["reason"]].merge(keys, on=pair_cols, how="left", indicator=True)
        rest = rest.loc[rest["_merge"] == "left_only", pair_cols + ["reason"]]
        rest["reason"] = rest["reason"].where(rest["reason"] != "ok", "no_decay_phase")
    out = {}
    for m, t in tables.items():
        t = _fill_missing_pairs(keys, t, empty)
        t = t.merge(n_days, on=pair_cols, how="left")
        t["n_decay_days"] = t["n_decay_days"].fillna(0).astype(np.int64)
        if rest is not None and len(rest):
            # pairs whose decay phase could not start: NaN (0 for counts, False for flags), upstream's reason
            add = rest.assign(**{c: (0 if t[c].dtype.kind in "iu" else False if t[c].dtype.kind == "b" else np.nan)
                                 for c in t.columns if c not in (*pair_cols, "reason")})
            t = pd.concat([t, add[t.columns].astype(t.dtypes.to_dict())], ignore_index=True)
        cols = [c for c in t.columns if c not in ("n_decay_days", "reason")]
        out[m] = t[cols + ["n_decay_days", "reason"]].sort_values(pair_cols, kind="stable").reset_index(drop=True)
    return out


# --------------------------------------------------------------------------------------------
# Cramér-Rao bound
# --------------------------------------------------------------------------------------------
def cramer_rao_lambda(expected_counts, t, groups=None, *, observed=None, n_groups: int | None = None):
    r"""Cramér-Rao lower bound on the standard deviation of an unbiased λ estimate.

    For Poisson counts with means :math:`\mu_t = e^{a-\lambda t}` the Fisher information for
    :math:`(a, \lambda)` is :math:`\sum_t \mu_t \begin{pmatrix}1 & -t\\ -t & t^2\end{pmatrix}`;
    the bound is the square root of the :math:`(\lambda,\lambda)` entry of its inverse,
    :math:`\sqrt{S_0/(S_0S_2-S_1^2)} = 1/\sqrt{\sum_t \mu_t (t-\bar t_\mu)^2}` with
    :math:`\bar t_\mu` the μ-weighted mean day (the form used here: it is numerically stable).

    Parameters
    ----------
    expected_counts : array-like
        True Poisson means μ_t of the counts the estimator sees (e.g. expected
        view+click+cart+purchase per day), >= 0.
    t : array-like
        Day of each value (any origin).
    groups : array-like of int, optional
        Pair code per value, integers in ``0 .. n_groups-1``. Without it all values are one pair
        and a float is returned.
    observed : array-like of bool, optional
        Days that the estimator sees (outage days carry no information).
    n_groups : int, optional
        Number of pairs (default ``max(groups) + 1``).

    Returns
    -------
    float or ndarray
        Bound on sd(λ̂) per pair; ``inf`` where there is no information (fewer than two days
        with μ > 0).

    Notebooks 04 and 08.
    """
    mu = _as_float_array(expected_counts, "expected_counts").ravel()
    tt = _as_float_array(t, "t").ravel()
    if mu.shape != tt.shape:
        raise ValueError(f"expected_counts and t must have the same length, got {mu.size} and {tt.size}")
    if mu.size == 0:
        raise ValueError("expected_counts is empty")
    if np.any(~np.isfinite(mu)) or np.any(mu < 0):
        raise ValueError("expected_counts must be finite and >= 0")
    if np.any(~np.isfinite(tt)):
        raise ValueError("t must be finite")
    if observed is not None:
        obs = np.asarray(observed, dtype=bool).ravel()
        if obs.shape != mu.shape:
            raise ValueError("observed must have the same length as expected_counts")
        mu = np.where(obs, mu, 0.0)
    scalar = groups is None
    if scalar:
        g = np.zeros(mu.size, dtype=np.int64)
        G = 1
    else:
        g = np.asarray(groups)
        if g.shape != mu.shape or not np.issubdtype(g.dtype, np.integer):
            raise ValueError("groups must be integer codes with the same length as expected_counts")
        if g.size and g.min() < 0:
            raise ValueError("groups must be >= 0")
        G = int(g.max()) + 1 if n_groups is None else int(n_groups)
        if g.max() >= G:
            raise ValueError(f"groups has codes >= n_groups={G}")
    s0 = np.bincount(g, weights=mu, minlength=G)
    with np.errstate(invalid="ignore", divide="ignore"):
        tbar = np.bincount(g, weights=mu * tt, minlength=G) / s0
        d = tt - np.where(np.isfinite(tbar), tbar, 0.0)[g]
        m2 = np.bincount(g, weights=mu * d * d, minlength=G)
        sd = np.where(m2 > 1e-300, 1.0 / np.sqrt(m2), np.inf)
    return float(sd[0]) if scalar else sd


def cramer_rao_table(
    data: pd.DataFrame,
    *,
    mu_col: str = "expected_count",
    t_col: str = "t",
    observed_col: str | None = "observed",
    pair_cols: Sequence[str] = PAIR_COLS,
) -> pd.DataFrame:
    """:func:`cramer_rao_lambda` per pair of a long table (e.g. from :func:`decay_phase_table`
    with ``truth_daily``). Returns ``pair_cols, crb_sd, expected_total`` (sum of μ over the
    observed days).

    Notebook 04.
    """
    pair_cols = list(pair_cols)
    req = pair_cols + [mu_col, t_col] + ([observed_col] if observed_col else [])
    check_frame(data, req, "data")
    codes, keys = _group_codes(data, pair_cols, "data")
    mu = numeric_column(data, mu_col, "data")
    obs = bool_column(data, observed_col, "data") if observed_col else None
    sd = cramer_rao_lambda(mu, numeric_column(data, t_col, "data"), codes, observed=obs, n_groups=len(keys))
    out = keys.copy()
    out["crb_sd"] = sd
    out["expected_total"] = np.bincount(codes, weights=mu if obs is None else np.where(obs, mu, 0.0), minlength=len(keys))
    return out


def error_vs_bound(lam_hat, lam_true, crb_sd):
    r"""Estimation error in units of the Cramér-Rao standard deviation, :math:`|\hat\lambda-\lambda|/\sigma_{CR}`.

    For an efficient estimator (unbiased, normal, variance at the bound) the median of this
    ratio over many pairs is :data:`EFFICIENT_MEDIAN_RATIO` ≈ 0.674; a larger median means the
    estimator leaves information on the table (or is biased). NaN inputs (failed fits) give
    NaN: summarise with ``np.nanmedian`` and report how many were NaN.

    Notebook 04.
    """
    a = _as_float_array(lam_hat, "lam_hat")
    b = _as_float_array(lam_true, "lam_true")
    s = _as_float_array(crb_sd, "crb_sd")
    try:
        a, b, s = np.broadcast_arrays(a, b, s)
    except ValueError:
        raise ValueError(f"lam_hat, lam_true and crb_sd have incompatible shapes {a.shape}, {b.shape}, {s.shape}") from None
    if np.any(s <= 0):
        raise ValueError("crb_sd must be > 0")
    return _scalar_or_array(np.abs(a - b) / s)
