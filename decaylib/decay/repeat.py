r"""Repeat buying: the customer-level data of a calibration / holdout split, the BG/NBD model, and a fair comparison.

The decay models of :mod:`decaylib.decay.counts` say that a customer's interest fades (to zero, or to a
floor). Marketing science has a standard model of the same data, the *buy-till-you-die* model
**BG/NBD** (Fader, Hardie & Lee 2005, "Counting your customers the easy way", *Marketing Science*
24(2)): while alive, a customer buys at a steady rate :math:`\lambda`; after each repeat purchase
she drops out for good with probability :math:`p`; across customers
:math:`\lambda \sim \mathrm{Gamma}(r, \alpha)` (shape ``r``, rate ``alpha``) and
:math:`p \sim \mathrm{Beta}(a, b)`. Its data per customer are three numbers from the calibration
period, and one from the holdout:

* ``frequency`` :math:`x`: repeat purchases (distinct purchase days in calibration, minus one);
* ``recency`` :math:`t_x`: days from the first to the last purchase day in calibration;
* ``T``: days from the first purchase day to the end of calibration;
* ``holdout``: distinct purchase days in ``(calibration_end, holdout_end]``.

A *transaction* is a distinct purchase day (several invoices on one day count once), so the decay
forecasts compared with it must count the same: :func:`customer_panel` builds the panel with one
row per (customer, purchase day) and ``purchase_day = 1``, which
``forecast_counts(panel, calibration_end, horizon, method=..., column="purchase_day")`` forecasts.

Functions:

* :func:`customer_panel`, :func:`customer_summary`: the data.
* :func:`bgnbd_loglik`, :func:`fit_bgnbd`, :func:`bgnbd_expected`, :func:`bgnbd_p_alive`: the model
  (SciPy only; the ``lifetimes`` package is unmaintained and is not needed).
* :func:`simulate_bgnbd`: customers drawn from the model (tests, exercises).
* :func:`compare_on_holdout`: Poisson deviance, MAE, totals and paired bootstrap intervals of
  several models' predictions of the same customers' holdout transactions;
  :func:`calibration_by_decile`: mean predicted against mean observed by decile of each prediction.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import optimize, special

from decaylib.checks import check_int
from decaylib.schema import PURCHASE

__all__ = ['customer_panel', 'customer_summary', 'BGNBDParams', 'bgnbd_loglik', 'fit_bgnbd', 'bgnbd_expected', 'bgnbd_p_alive', 'simulate_bgnbd']


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------
def customer_panel(events: pd.DataFrame, *, origin=None, category: int = 0) -> pd.DataFrame:
    """One row per (customer, purchase day): the panel that the decay forecasts of transactions use.

    ``events``: decaylib events (``user_id`` and ``ts``, optionally ``event``: only ``"purchase"``
    rows are used) or rows that already have an integer ``day``. ``origin``: the timestamp of day
    0 (default: the first event's calendar day). Returns ``user_id, category, day, purchase_day,
    observed`` with ``category`` one constant code for every customer, ``purchase_day = 1`` and
    ``observed = True`` (days without a row are days without a purchase), sorted by customer and day.

    Notebook 08.
    """
    if not isinstance(events, pd.DataFrame):
        raise TypeError(f"events must be a pandas DataFrame, got {type(events).__name__}")
    if "user_id" not in events.columns or not ({"ts", "day"} & set(events.columns)):
        raise ValueError(f"events needs a user_id column and a ts (or day) column; it has {list(events.columns)}")
    check_int("category", category, minimum=None)
    ev = events
    if "event" in ev.columns:
        ev = ev[ev["event"].astype(str) == PURCHASE]
    if ev.empty:
        raise ValueError("events has no purchase rows")
    if not pd.api.types.is_integer_dtype(ev["user_id"]):
        raise TypeError(f"events['user_id'] must hold integers (coded ids), got {ev['user_id'].dtype}")
    if "ts" in ev.columns:
        ts = pd.to_datetime(ev["ts"])
        if ts.isna().any():
            raise ValueError(f"events['ts'] has {int(ts.isna().sum())} missing timestamp(s)")
        start = ts.min().floor("D") if origin is None else pd.Timestamp(origin).floor("D")
        day = (ts.dt.floor("D") - start).dt.days.to_numpy()
        if (day < 0).any():
            raise ValueError(f"origin {start:%Y-%m-%d} is after {int((day < 0).sum())} event(s)")
    else:
        if not pd.api.types.is_integer_dtype(ev["day"]):
            raise TypeError(f"events['day'] must hold integers, got {ev['day'].dtype}")
        day = ev["day"].to_numpy()
    out = (pd.DataFrame({"user_id": ev["user_id"].to_numpy(dtype=np.int64), "day": day.astype(np.int64)})
           .drop_duplicates().sort_values(["user_id", "day"]).reset_index(drop=True))
    out.insert(1, "category", np.int64(category))
    out["purchase_day"] = 1
    out["observed"] = True
    return out


def customer_summary(data: pd.DataFrame, calibration_end: int, holdout_end: int | None = None, *,
                     column: str | None = None, origin=None) -> pd.DataFrame:
    """Frequency, recency, T and holdout transactions of every customer seen by ``calibration_end``.

    Parameters
    ----------
    data : DataFrame
        ``user_id`` and integer ``day``: one row per purchase (events with a ``day``, the panel of
        :func:`customer_panel`), or a daily panel with ``column`` (then only rows with
        ``column > 0`` are purchases, e.g. ``column="purchase"`` on the panel of
        :func:`decaylib.data.panel.build_panel`). Events with a ``ts`` and no ``day`` (e.g. from
        :func:`decaylib.data.load.load_online_retail`) go through :func:`customer_panel` first (only
        ``"purchase"`` events count; day 0 is ``origin``, default the first event's calendar day).
    calibration_end : int
        Last day of the calibration period (included).
    holdout_end : int, optional
        Last day of the holdout period (included); default: the last day in ``data``.

    Returns
    -------
    DataFrame
        One row per customer with a purchase on or before ``calibration_end``, sorted by
        ``user_id``: ``frequency`` (distinct purchase days in calibration - 1), ``recency`` (days
        from the first to the last of them), ``T`` (days from the first to ``calibration_end``),
        ``holdout`` (distinct purchase days in ``(calibration_end, holdout_end]``), ``first_day``.
        ``attrs``: ``calibration_end``, ``holdout_end``, ``holdout_days`` and
        ``new_in_holdout`` (customers whose first purchase falls in the holdout: left out, since
        no calibration-based model can forecast them).

        Read the columns with ``summary["T"]``: ``summary.T`` is pandas' transpose.

    Notebook 08.
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(f"data must be a pandas DataFrame, got {type(data).__name__}")
    if "day" not in data.columns and "ts" in data.columns:
        if column is not None:
            raise ValueError(f"column={column!r} applies to a daily panel (with a day column); events with ts "
                             "are counted by their purchase rows")
        data = customer_panel(data, origin=origin)
    elif origin is not None:
        raise ValueError("origin applies to events with a ts column; data already has integer days")
    need = ["user_id", "day"] + ([column] if column is not None else [])
    missing = [c for c in need if c not in data.columns]
    if missing:
        raise ValueError(f"data is missing column(s) {missing}; it has {list(data.columns)}")
    if data.empty:
        raise ValueError("data is empty")
    for c in ("user_id", "day"):
        if not pd.api.types.is_integer_dtype(data[c]):
            raise TypeError(f"data[{c!r}] must hold integers, got {data[c].dtype}")
    calibration_end = check_int("calibration_end", calibration_end, minimum=None)
    rows = data
    if column is not None:
        if not pd.api.types.is_numeric_dtype(data[column]):
            raise TypeError(f"data[{column!r}] must be numeric, got {data[column].dtype}")
        rows = data[data[column].to_numpy(dtype=float) > 0]
    last = int(data["day"].max())
    holdout_end = last if holdout_end is None else check_int("holdout_end", holdout_end, minimum=None)
    if holdout_end <= calibration_end:
        raise ValueError(f"holdout_end ({holdout_end}) must be after calibration_end ({calibration_end}): "
                         f"the holdout period would be empty")
    pdays = rows[["user_id", "day"]].drop_duplicates()
    cal = pdays[pdays["day"] <= calibration_end]
    if cal.empty:
        raise ValueError(f"no purchase on or before calibration_end={calibration_end} "
                         f"(the first is on day {int(pdays['day'].min()) if len(pdays) else 'none'})")
    g = cal.groupby("user_id")["day"]
    out = pd.DataFrame({"n_days": g.size(), "first_day": g.min(), "last_day": g.max()})
    hold = pdays[(pdays["day"] > calibration_end) & (pdays["day"] <= holdout_end)]
    out["holdout"] = hold.groupby("user_id").size().reindex(out.index, fill_value=0)
    out = out.sort_index()
    res = pd.DataFrame({
        "user_id": out.index.to_numpy(),
        "frequency": (out["n_days"] - 1).to_numpy(dtype=np.int64),
        "recency": (out["last_day"] - out["first_day"]).to_numpy(dtype=float),
        "T": (calibration_end - out["first_day"]).to_numpy(dtype=float),
        "holdout": out["holdout"].to_numpy(dtype=np.int64),
        "first_day": out["first_day"].to_numpy(dtype=np.int64),
    })
    new = np.setdiff1d(hold["user_id"].unique(), res["user_id"].to_numpy())
    res.attrs.update({"calibration_end": calibration_end, "holdout_end": holdout_end,
                      "holdout_days": holdout_end - calibration_end, "new_in_holdout": int(len(new))})
    return res


# --------------------------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BGNBDParams:
    """Fitted BG/NBD: purchase rate :math:`\\lambda \\sim \\mathrm{Gamma}(r, \\alpha)` (per day when
    times are in days; mean ``r / alpha``), dropout :math:`p \\sim \\mathrm{Beta}(a, b)` (mean
    ``a / (a + b)``), the total log-likelihood, the number of customers and whether the optimizer
    reported convergence.

    Notebook 08.
    """

    r: float
    alpha: float
    a: float
    b: float
    loglik: float = float("nan")
    n_customers: int = 0
    converged: bool = True

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def mean_rate(self) -> float:
        """Mean purchase rate of a live customer (transactions per time unit)."""
        return self.r / self.alpha

    @property
    def mean_dropout(self) -> float:
        """Mean probability of dropping out after a repeat purchase."""
        return self.a / (self.a + self.b)

    def describe(self) -> str:
        return (f"BG/NBD: r = {self.r:.3f}, alpha = {self.alpha:.3f}, a = {self.a:.3f}, b = {self.b:.3f} "
                f"(mean rate {self.mean_rate:.4f} per day, mean dropout {self.mean_dropout:.3f} per repeat purchase)")


def _rft(frequency, recency, T):
    x = np.asarray(frequency, dtype=float)
    tx = np.asarray(recency, dtype=float)
    T = np.asarray(T, dtype=float)
    try:
        x, tx, T = np.broadcast_arrays(x, tx, T)
    except ValueError as err:
        raise ValueError(f"frequency, recency and T must have the same length: {err}") from None
    if x.size == 0:
        raise ValueError("no customers: frequency is empty")
    for name, v in (("frequency", x), ("recency", tx), ("T", T)):
        if not np.all(np.isfinite(v)):
            raise ValueError(f"{name} has NaN or infinite values")
        if np.any(v < 0):
            raise ValueError(f"{name} must be >= 0")
    if np.any(x != np.round(x)):
        raise ValueError("frequency must hold whole numbers (repeat transactions)")
    if np.any(tx > T + 1e-9):
        raise ValueError(f"recency must be <= T ({int((tx > T + 1e-9).sum())} customer(s) have recency > T)")
    if np.any((x == 0) & (tx > 0)):
        raise ValueError("a customer with frequency 0 must have recency 0")
    return x, tx, T


def _params(params):
    if isinstance(params, BGNBDParams):
        vals = (params.r, params.alpha, params.a, params.b)
    elif isinstance(params, dict):
        try:
            vals = tuple(params[k] for k in ("r", "alpha", "a", "b"))
        except KeyError as err:
            raise ValueError(f"params needs r, alpha, a and b; missing {err}") from None
    else:
        try:
            vals = tuple(params)
        except TypeError:
            raise TypeError(f"params must be BGNBDParams, a dict or (r, alpha, a, b), got {type(params).__name__}") from None
        if len(vals) != 4:
            raise ValueError(f"params must be (r, alpha, a, b), got {len(vals)} values")
    vals = tuple(float(v) for v in vals)
    if not all(np.isfinite(v) and v > 0 for v in vals):
        raise ValueError(f"BG/NBD parameters r, alpha, a, b must be positive and finite, got {vals}")
    return vals


def _loglik(r, alpha, a, b, x, tx, T):
    """Per-customer log-likelihood, FHL (2005) eq. 6, in logs."""
    A1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    A2 = special.betaln(a, b + x) - special.betaln(a, b) - (r + x) * np.log(alpha + T)
    pos = x > 0
    A3 = np.full_like(x, -np.inf)
    xp = x[pos]
    A3[pos] = special.betaln(a + 1.0, b + xp - 1.0) - special.betaln(a, b) - (r + xp) * np.log(alpha + tx[pos])
    return A1 + np.logaddexp(A2, A3)


def bgnbd_loglik(params, frequency, recency, T) -> np.ndarray:
    r"""Log-likelihood of each customer under BG/NBD (Fader, Hardie & Lee 2005, eq. 6).

    .. math::
        L = \frac{B(a, b+x)}{B(a, b)} \frac{\Gamma(r+x)\,\alpha^r}{\Gamma(r)\,(\alpha+T)^{r+x}}
          + \delta_{x>0} \frac{B(a+1, b+x-1)}{B(a, b)} \frac{\Gamma(r+x)\,\alpha^r}{\Gamma(r)\,(\alpha+t_x)^{r+x}}

    ``params``: :class:`BGNBDParams`, a dict or ``(r, alpha, a, b)``. Returns an array, one value
    per customer (sum it for the total).

    Notebook 08.
    """
    r, alpha, a, b = _params(params)
    x, tx, T = _rft(frequency, recency, T)
    return _loglik(r, alpha, a, b, x.astype(float).ravel(), tx.ravel(), T.ravel()).reshape(x.shape)


def fit_bgnbd(frequency, recency, T, *, starts=None, max_iter: int = 2000) -> BGNBDParams:
    """Maximum-likelihood BG/NBD parameters, on the log scale with ``scipy.optimize.minimize``.

    Customers with the same ``(frequency, recency, T)`` are grouped (weights), so the cost grows
    with the distinct histories, not the customers. Where the data show no dropout, the fit runs
    to its boundary: ``a`` towards 0 and the likelihood nearly flat along ``b`` (a large ``b``:
    nobody drops out, the NBD limit; a tiny ``b``: a few drop out at once, the rest never), so
    ``a``, ``b`` and ``mean_dropout`` are then not identified, while the predictions nearly are. Deterministic: a few fixed starting points
    (``starts``: list of ``(r, alpha, a, b)``; default: rates around the data's mean purchase
    rate), L-BFGS-B from each then Nelder-Mead polish of the best. Raises ``RuntimeError`` if no
    start gives a finite likelihood.

    Notebook 08.
    """
    x, tx, T = _rft(frequency, recency, T)
    max_iter = check_int("max_iter", max_iter, minimum=10)
    x, tx, T = x.ravel(), tx.ravel(), T.ravel()
    key = np.stack([x, tx, T], axis=1)
    uniq, inv = np.unique(key, axis=0, return_inverse=True)
    w = np.bincount(inv.ravel(), minlength=len(uniq)).astype(float)
    ux, utx, uT = uniq[:, 0], uniq[:, 1], uniq[:, 2]

    def nll(theta):
        r, alpha, a, b = np.exp(np.clip(theta, -20, 20))
        ll = _loglik(r, alpha, a, b, ux, utx, uT)
        v = -float(w @ ll)
        return v if np.isfinite(v) else 1e300

    if starts is None:
        rate = max(float(x.sum() / max(T.sum(), 1e-9)), 1e-4)  # repeat purchases per day
        starts = [(1.0, 1.0 / rate, 1.0, 1.0), (0.5, 0.5 / rate, 0.5, 2.0), (2.0, 2.0 / rate, 2.0, 5.0)]
    best = None
    for s in starts:
        th0 = np.log(np.asarray(_params(s)))
        res = optimize.minimize(nll, th0, method="L-BFGS-B", options={"maxiter": max_iter})
        if np.isfinite(res.fun) and res.fun < 1e299 and (best is None or res.fun < best.fun):
            best = res
    if best is None:
        raise RuntimeError("BG/NBD fit failed: no starting point gives a finite likelihood")
    polish = optimize.minimize(nll, best.x, method="Nelder-Mead",
                               options={"maxiter": max_iter, "xatol": 1e-8, "fatol": 1e-10})
    if polish.fun <= best.fun:
        best_x, fun, conv = polish.x, polish.fun, bool(polish.success or best.success)
    else:
        best_x, fun, conv = best.x, best.fun, bool(best.success)
    r, alpha, a, b = np.exp(best_x)
    return BGNBDParams(float(r), float(alpha), float(a), float(b), loglik=float(-fun), n_customers=int(len(x)),
                       converged=conv)


def _expected_core(r, alpha, a, b, x, tx, T, t):
    """Conditional expectation, FHL eq. 10, with Euler's transformation of 2F1 where it is more stable."""
    if abs(a - 1.0) < 1e-6:  # the formula's 0/0 at a = 1: its limit, taken just beside
        a = 1.0 + 1e-6
    z = t / (alpha + T + t)
    c = a + b + x - 1.0
    with np.errstate(all="ignore"):
        # (1-z)^(r+x) 2F1(r+x, b+x; c; z) = (1-z)^(a-1) 2F1(a+b-1-r, a-1; c; z)   (Euler)
        h1 = np.exp((r + x) * np.log1p(-z)) * special.hyp2f1(r + x, b + x, c, z)
        h2 = np.exp((a - 1.0) * np.log1p(-z)) * special.hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
        h = np.where(np.isfinite(h2), h2, h1)
        num = c / (a - 1.0) * (1.0 - h)
        log_ratio = (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        den = 1.0 + np.where(x > 0, a / np.maximum(b + x - 1.0, 1e-300) * np.exp(np.minimum(log_ratio, 700.0)), 0.0)
        out = num / den
    return out


def bgnbd_expected(params, t, frequency, recency, T) -> np.ndarray:
    r"""Expected transactions of each customer in the next ``t`` days, given her history (FHL eq. 10).

    .. math::
        E[Y(t) \mid x, t_x, T] = \frac{\frac{a+b+x-1}{a-1}\left[1 - \left(\frac{\alpha+T}{\alpha+T+t}\right)^{r+x}
        {}_2F_1\!\left(r+x, b+x; a+b+x-1; \frac{t}{\alpha+T+t}\right)\right]}
        {1 + \delta_{x>0} \frac{a}{b+x-1} \left(\frac{\alpha+T}{\alpha+t_x}\right)^{r+x}}

    The hypergeometric term is evaluated through Euler's transformation
    (:math:`(1-z)^{a-1}\,{}_2F_1(a+b-1-r, a-1; a+b+x-1; z)`), finite where the direct form
    over- or underflows; ``a`` within 1e-6 of 1 (a removable 0/0) is moved just beside it.
    Raises ``FloatingPointError`` if a value is still not finite.

    Notebook 08.
    """
    r, alpha, a, b = _params(params)
    x, tx, T = _rft(frequency, recency, T)
    t = float(t)
    if not np.isfinite(t) or t < 0:
        raise ValueError(f"t must be a non-negative number of days, got {t}")
    out = _expected_core(r, alpha, a, b, x.astype(float), tx, T, t)
    bad = ~np.isfinite(out)
    if bad.any():
        raise FloatingPointError(f"BG/NBD conditional expectation is not finite for {int(bad.sum())} customer(s)")
    return np.maximum(out, 0.0)


def bgnbd_p_alive(params, frequency, recency, T) -> np.ndarray:
    r"""Probability that each customer is still alive at the end of calibration (FHL eq. 11):
    :math:`1 / (1 + \delta_{x>0} \frac{a}{b+x-1} (\frac{\alpha+T}{\alpha+t_x})^{r+x})`.

    Notebook 08.
    """
    r, alpha, a, b = _params(params)
    x, tx, T = _rft(frequency, recency, T)
    x = x.astype(float)
    with np.errstate(over="ignore", divide="ignore"):
        log_odds = np.log(a) - np.log(np.maximum(b + x - 1.0, 1e-300)) + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
    return np.where(x > 0, special.expit(-log_odds), 1.0)


def simulate_bgnbd(n_customers: int, params, T, holdout: float = 0.0, *, seed: int = 0) -> pd.DataFrame:
    """Customers drawn from BG/NBD (vectorized): ``frequency, recency, T, holdout`` and the true ``lam``, ``p``, ``alive``.

    Each customer makes her first purchase at time 0 and is watched until ``T`` (a number, or an
    array with one value per customer), then for ``holdout`` more days. While alive she buys at
    rate :math:`\\lambda`; after each repeat purchase she drops out with probability :math:`p`, so
    she makes :math:`K \\sim \\mathrm{Geometric}(p)` repeat purchases in all. Given the Poisson
    count :math:`n` of purchase opportunities in ``(0, T]``, ``frequency = min(n, K)`` and the
    recency is the ``frequency``-th of ``n`` uniform times (a Beta draw); the holdout count is
    ``min(Poisson(λ·holdout), K - n)`` for a customer still alive (``K > n``).

    Notebook 08.
    """
    n = check_int("n_customers", n_customers, minimum=1)
    r, alpha, a, b = _params(params)
    T = np.broadcast_to(np.asarray(T, dtype=float), (n,)).copy()
    if np.any(~np.isfinite(T)) or np.any(T < 0):
        raise ValueError("T must be finite and >= 0")
    holdout = float(holdout)
    if not np.isfinite(holdout) or holdout < 0:
        raise ValueError(f"holdout must be >= 0, got {holdout}")
    rng = np.random.default_rng(seed)
    lam = rng.gamma(r, 1.0 / alpha, size=n)
    p = np.clip(rng.beta(a, b, size=n), 1e-12, 1.0)
    K = rng.geometric(p)  # repeat purchases before dropping out (>= 1)
    m = rng.poisson(lam * T)
    x = np.minimum(m, K)
    safe = np.maximum(x, 1)
    tx = np.where(x > 0, T * rng.beta(safe, np.maximum(m - x + 1, 1)), 0.0)
    alive = K > m
    hold = np.where(alive, np.minimum(rng.poisson(lam * holdout), np.maximum(K - m, 0)), 0)
    return pd.DataFrame({"frequency": x.astype(np.int64), "recency": tx, "T": T, "holdout": hold.astype(np.int64),
                         "lam": lam, "p": p, "alive": alive})
