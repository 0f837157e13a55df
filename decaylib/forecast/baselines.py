"""Simple forecasting baselines that any learned forecaster has to beat.

All functions take ``history``: an array ``[n_windows, seq_length]`` of the interest score in
panel units (oldest day first, the forecast origin last) and return ``[n_windows, horizon]``
forecasts in the same units.  They are vectorized over windows.

* :func:`persistence`: tomorrow (and every later day) equals today.
* :func:`moving_average`: the mean of the last ``window`` days.
* :func:`exponential_fit`: a per-window log-linear fit ``log(y + 0.5) = a + b t`` extrapolated,
  i.e. the model ``I(t) = I0 e^{-λt}`` fitted to the window alone.

:func:`true_targets` looks up the true interest (in score units) on each forecast day, and
:func:`compare_forecasts` builds the comparison table (MAE and RMSE per model, horizon and
reference: observed score or true interest).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from decaylib.data.panel import expected_score
from decaylib.schema import PANEL_KEY_COLUMNS

__all__ = ['persistence', 'moving_average', 'exponential_fit', 'BASELINES', 'run_baselines', 'true_targets', 'LinearAR', 'fit_linear_ar']


def _check(history, horizon: int) -> np.ndarray:
    h = np.asarray(history, dtype=float)
    if h.ndim != 2 or h.shape[1] < 1:
        raise ValueError(f"history must be a 2-D array [n_windows, seq_length], got shape {h.shape}")
    if h.shape[0] == 0:
        raise ValueError("history is empty: no windows to forecast")
    if not isinstance(horizon, (int, np.integer)) or horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    if not np.isfinite(h).all():
        raise ValueError("history contains NaN or infinite values")
    if (h < 0).any():
        raise ValueError("history contains negative interest scores")
    return h


def persistence(history, horizon: int) -> np.ndarray:
    """The last observed value, repeated for every horizon.

    Notebook 03.
    """
    h = _check(history, horizon)
    return np.repeat(h[:, -1:], horizon, axis=1)


def moving_average(history, horizon: int, window: int = 7) -> np.ndarray:
    """The mean of the last ``window`` days, repeated for every horizon.

    Notebook 03.
    """
    h = _check(history, horizon)
    if not isinstance(window, (int, np.integer)) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    return np.repeat(h[:, -window:].mean(axis=1, keepdims=True), horizon, axis=1)


def exponential_fit(history, horizon: int, window: int | None = None, offset: float = 0.5,
                    max_rate: float = 0.2) -> np.ndarray:
    """Fit ``log(y + offset) = a + b·t`` on the last ``window`` days of each row and extrapolate.

    ``offset`` keeps days with zero events finite (the article's ``1e-8`` would give -18);
    the fitted growth/decay rate ``b`` is clipped to ``[-max_rate·5, max_rate]`` per day so that a
    short rising stretch does not explode into an absurd forecast.

    Notebook 03.
    """
    h = _check(history, horizon)
    if window is not None:
        h = h[:, -int(window):]
    n = h.shape[1]
    if n < 2:
        return persistence(h, horizon)
    t = np.arange(n, dtype=float)
    y = np.log(h + offset)
    tc = t - t.mean()
    b = (y - y.mean(axis=1, keepdims=True)) @ tc / (tc @ tc)
    b = np.clip(b, -5 * max_rate, max_rate)
    a = y.mean(axis=1) - b * t.mean()
    future = n - 1 + np.arange(1, horizon + 1, dtype=float)
    return np.maximum(np.exp(a[:, None] + b[:, None] * future[None, :]) - offset, 0.0)

BASELINES = {"persistence": persistence, "moving_average": moving_average, "exponential_fit": exponential_fit}


def run_baselines(history, horizon: int, names=None) -> dict[str, np.ndarray]:
    """Every baseline in ``names`` (default: all) on the same ``history``.

    Notebooks 03 and 03b.
    """
    names = list(BASELINES) if names is None else list(names)
    unknown = sorted(set(names) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; expected some of {sorted(BASELINES)}")
    return {name: BASELINES[name](history, horizon) for name in names}


def true_targets(meta: pd.DataFrame, truth_daily: pd.DataFrame, horizon: int, weights: dict | None = None) -> np.ndarray:
    """The true expected interest score on days ``origin_day + 1 ... origin_day + horizon``.

    ``meta`` has one row per window (``user_id``, ``category``, ``origin_day``); the result is
    ``[n_windows, horizon]`` in the units of the panel's ``interest`` column.  A forecast day
    missing from ``truth_daily`` (a pair the simulator does not know, e.g. a bot) is an error.

    Notebooks 03 and 03b.
    """
    need = {"user_id", "category", "origin_day"}
    if not need <= set(meta.columns):
        raise KeyError(f"meta is missing column(s) {sorted(need - set(meta.columns))}")
    score = pd.Series(expected_score(truth_daily, weights),
                      index=pd.MultiIndex.from_frame(truth_daily[list(PANEL_KEY_COLUMNS)]))
    n = len(meta)
    days = meta["origin_day"].to_numpy()[:, None] + np.arange(1, horizon + 1)[None, :]
    keys = pd.MultiIndex.from_arrays([
        np.repeat(meta["user_id"].to_numpy(), horizon),
        np.repeat(meta["category"].to_numpy(), horizon),
        days.reshape(-1),
    ])
    vals = score.reindex(keys).to_numpy()
    if np.isnan(vals).any():
        bad = int(np.isnan(vals).sum())
        raise KeyError(f"{bad} forecast day(s) have no true interest in truth_daily (unknown pairs or days)")
    return vals.reshape(n, horizon)


class LinearAR:
    r"""The article's "LSTM formula", :math:`\hat I(t+h) = \sum_{k=0}^{p-1} w_{h,k}\, I(t-k) + b_h`: a
    linear autoregression, one set of weights per horizon ``h`` (a direct multi-step forecast).

    It is what the article writes down, and it is not an LSTM: no hidden state, no gates, no
    non-linearity. Fitted by (ridge-stabilised) least squares on the training windows' raw
    interest history. ``weights`` is a DataFrame (rows ``h = 1..H``, columns ``lag 0`` = the
    last day, ``lag 1`` = the day before, ...), ``bias`` the intercepts.

    Notebook 03b.
    """

    def __init__(self, weights: np.ndarray, bias: np.ndarray):
        self._w = np.asarray(weights, dtype=float)  # [lags, H]
        self._b = np.asarray(bias, dtype=float)  # [H]

    @property
    def lags(self) -> int:
        return self._w.shape[0]

    @property
    def horizon(self) -> int:
        return self._w.shape[1]

    @property
    def weights(self) -> pd.DataFrame:
        return pd.DataFrame(self._w.T,
                            index=pd.Index(range(1, self.horizon + 1), name="h"),
                            columns=[f"lag {k}" for k in range(self.lags)])

    @property
    def bias(self) -> pd.Series:
        return pd.Series(self._b, index=pd.Index(range(1, self.horizon + 1), name="h"), name="bias")

    def predict(self, history) -> np.ndarray:
        """Forecasts ``[n, H]`` from raw interest histories ``[n, seq_length]`` (at least ``lags`` days)."""
        x = _check(history, self.horizon)
        if x.shape[1] < self.lags:
            raise ValueError(f"history has {x.shape[1]} days; this model needs at least {self.lags}")
        last = x[:, ::-1][:, : self.lags]  # lag 0 = the last day
        return last @ self._w + self._b


def fit_linear_ar(history, targets, *, lags: int | None = None, mask=None, ridge: float = 1e-6) -> LinearAR:
    """Fit :class:`LinearAR` on raw interest histories ``[n, seq_length]`` and targets ``[n, H]``.

    ``lags`` days of history are used (default: all of the window); ``mask`` ``[n, H]`` leaves out
    target days that were not observed (logging outages), per horizon; ``ridge`` is a tiny penalty
    that keeps the solve stable when lags are collinear (relative to the mean squared input).

    Notebook 03b.
    """
    x = _check(history, 1)
    y = np.asarray(targets, dtype=float)
    if y.ndim != 2 or y.shape[0] != x.shape[0]:
        raise ValueError(f"targets must be [n, H] with n = {x.shape[0]} rows, got shape {y.shape}")
    if not np.isfinite(y).all():
        raise ValueError("targets must be finite (mask outage days instead of setting them to NaN)")
    p = x.shape[1] if lags is None else int(lags)
    if not 1 <= p <= x.shape[1]:
        raise ValueError(f"lags must be between 1 and the window's {x.shape[1]} days, got {lags!r}")
    if ridge < 0:
        raise ValueError(f"ridge must be >= 0, got {ridge}")
    m = np.ones_like(y, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != y.shape:
        raise ValueError(f"mask must have the targets' shape {y.shape}, got {m.shape}")
    design = np.column_stack([x[:, ::-1][:, :p], np.ones(x.shape[0])])
    scale = float(np.mean(design[:, :p] ** 2)) or 1.0
    W, B = np.zeros((p, y.shape[1])), np.zeros(y.shape[1])
    for h in range(y.shape[1]):
        rows = m[:, h]
        if rows.sum() <= p + 1:
            raise ValueError(f"horizon {h + 1}: {int(rows.sum())} observed targets for {p + 1} coefficients")
        A = design[rows]
        pen = ridge * scale * rows.sum() * np.eye(p + 1)
        pen[-1, -1] = 0.0  # the intercept is not penalised
        coef = np.linalg.solve(A.T @ A + pen, A.T @ y[rows, h])
        W[:, h], B[h] = coef[:p], coef[p]
    return LinearAR(W, B)
