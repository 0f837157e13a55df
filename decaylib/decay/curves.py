"""Curve fits for "is it really exponential?" (notebook 04): exponential, power law, mixtures, return-time survival."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd

from decaylib.decay.rate import _as_float_array, half_life

__all__ = ['CurveFit', 'fit_exponential', 'fit_power_law', 'mixture_of_exponentials', 'return_intervals', 'survival_curve']


# --------------------------------------------------------------------------------------------
# Honesty section: exponential vs power law
# --------------------------------------------------------------------------------------------
@dataclass
class CurveFit:
    """Result of :func:`fit_exponential` / :func:`fit_power_law`.

    Attributes: ``model`` (name), ``params`` (dict), ``r2`` and ``rmse`` (on ``y`` in its own
    units), ``n`` (points), ``formula`` (text), and ``predict(t)``.

    Notebook 04.
    """

    model: str
    params: dict
    r2: float
    rmse: float
    n: int
    formula: str
    _f: Callable = field(repr=False, default=None)

    def predict(self, t) -> np.ndarray:
        """Fitted curve at ``t``."""
        return self._f(_as_float_array(t, "t"))


def _xy(t, y, positive_t: bool):
    t = _as_float_array(t, "t").ravel()
    y = _as_float_array(y, "y").ravel()
    if t.shape != y.shape:
        raise ValueError(f"t and y must have the same length, got {t.size} and {y.size}")
    if t.size < 3:
        raise ValueError("need at least 3 points to fit a 2-parameter curve")
    if np.any(~np.isfinite(t)) or np.any(~np.isfinite(y)):
        raise ValueError("t and y must be finite")
    if np.any(y <= 0):
        raise ValueError("y must be > 0 for the exponential / power-law fits")
    if positive_t and np.any(t <= 0):
        raise ValueError("t must be > 0 for a power law t**(-b)")
    return t, y


def _finish(model, f, params, t, y, formula):
    resid = y - f(t)
    ss_res = float(resid @ resid)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - ss_res / ss_tot if ss_tot > 0 else np.nan
    return CurveFit(model, params, r2, float(np.sqrt(ss_res / y.size)), int(y.size), formula, f)


def fit_exponential(t, y) -> CurveFit:
    r"""Least-squares fit of :math:`y = A e^{-\lambda t}` (in ``y``'s own units, started from
    the log-linear fit). Returns a :class:`CurveFit` with ``params = {"A", "lam", "half_life"}``.

    Notebooks 04 and 08.
    """
    from scipy.optimize import curve_fit

    t, y = _xy(t, y, positive_t=False)
    slope, icpt = np.polyfit(t, np.log(y), 1)

    def f(x, A, lam):
        return A * np.exp(-lam * x)

    (A, lam), _ = curve_fit(f, t, y, p0=(np.exp(icpt), -slope), maxfev=20000)
    params = {"A": float(A), "lam": float(lam), "half_life": float(half_life(lam))}
    return _finish("exponential", lambda x: f(x, A, lam), params, t, y, "y = A·exp(-λ t)")


def fit_power_law(t, y) -> CurveFit:
    r"""Least-squares fit of :math:`y = A t^{-b}` (``t > 0``; started from the log-log linear
    fit). Returns a :class:`CurveFit` with ``params = {"A", "b"}``.

    Notebooks 04 and 08.
    """
    from scipy.optimize import curve_fit

    t, y = _xy(t, y, positive_t=True)
    slope, icpt = np.polyfit(np.log(t), np.log(y), 1)

    def f(x, A, b):
        return A * np.power(x, -b)

    (A, b), _ = curve_fit(f, t, y, p0=(np.exp(icpt), -slope), maxfev=20000)
    return _finish("power_law", lambda x: f(x, A, b), {"A": float(A), "b": float(b)}, t, y, "y = A·t^(-b)")


def mixture_of_exponentials(t, lams, weights=None, *, normalize: bool = True) -> np.ndarray:
    r""":math:`\sum_k w_k e^{-\lambda_k t}`: many users each decaying exponentially at their own
    rate. With rates spread over orders of magnitude, the average curve falls fast at first and
    then very slowly, the signature of a power law (a Gamma mixture of rates gives exactly
    :math:`(1+t/\theta)^{-k}`).

    Parameters
    ----------
    t : array-like
        Times.
    lams : array-like
        Rates λ_k >= 0.
    weights : array-like, optional
        Non-negative weights (default equal). With ``normalize=True`` they are scaled to sum to
        1, so the curve is 1 at ``t = 0``.

    Notebook 04.
    """
    tt = _as_float_array(t, "t")
    lam = _as_float_array(lams, "lams").ravel()
    if lam.size == 0 or np.any(~np.isfinite(lam)) or np.any(lam < 0):
        raise ValueError("lams must be a non-empty array of finite rates >= 0")
    w = np.ones_like(lam) if weights is None else _as_float_array(weights, "weights").ravel()
    if w.shape != lam.shape:
        raise ValueError(f"weights must have the same length as lams ({lam.size}), got {w.size}")
    if np.any(~np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be finite, >= 0 and not all 0")
    if normalize:
        w = w / w.sum()
    return np.exp(-np.multiply.outer(tt, lam)) @ w


def return_intervals(days: pd.DataFrame, *, group_cols: Sequence[str] = ("user_id",), day_col: str = "day") -> np.ndarray:
    """Days between consecutive active days of each group (e.g. a customer's purchase days).

    ``days`` has one row per event or per active day; duplicates of a (group, day) count once.
    Returns a 1-D integer array of the gaps (groups with one active day contribute none).

    Notebook 08.
    """
    cols = [*group_cols, day_col]
    missing = [c for c in cols if c not in days.columns]
    if missing:
        raise KeyError(f"days is missing column(s) {missing}")
    if len(days) == 0:
        raise ValueError("days is empty")
    d = days[cols].drop_duplicates().sort_values(cols)
    gaps = d.groupby(list(group_cols), sort=False)[day_col].diff().dropna().to_numpy()
    return gaps.astype(np.int64)


def survival_curve(intervals, max_days: int | None = None) -> pd.DataFrame:
    """Empirical survival ``S(d) = P(interval > d)`` for ``d = 0 .. max_days``.

    For a constant "hazard" of coming back (a memoryless, exponential process) ``S`` is
    ``e^{-λd}``; a power-law-like ``S`` means the longer someone has been away, the less likely
    they are to return tomorrow.  Returns ``day``, ``survival`` and ``at_risk`` (intervals
    longer than ``d - 1``).

    Notebook 08.
    """
    x = np.asarray(intervals, dtype=float)
    if x.size == 0:
        raise ValueError("no intervals: every group has a single active day")
    if (x <= 0).any():
        raise ValueError("intervals must be positive numbers of days")
    top = int(x.max()) if max_days is None else int(max_days)
    d = np.arange(0, top + 1)
    xs = np.sort(x)
    longer = x.size - np.searchsorted(xs, d, side="right")
    at_risk = x.size - np.searchsorted(xs, d - 1, side="right")
    return pd.DataFrame({"day": d, "survival": longer / x.size, "at_risk": at_risk})
