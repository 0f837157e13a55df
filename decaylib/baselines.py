"""Simple forecasting baselines that any learned forecaster has to beat.

All functions take ``history``: an array ``[n_windows, seq_length]`` of the interest score in
panel units (oldest day first, the forecast origin last) and return ``[n_windows, horizon]``
forecasts in the same units.  They are vectorized over windows.

* :func:`persistence`: tomorrow (and every later day) equals today.
* :func:`moving_average`: the mean of the last ``window`` days.
* :func:`exponential_fit`: a per-window log-linear fit ``log(y + 0.5) = a + b t`` extrapolated,
  i.e. the model ``I(t) = I0 e^{-λt}`` fitted to the window alone.
"""

from __future__ import annotations

import numpy as np

__all__ = ["persistence", "moving_average", "exponential_fit", "BASELINES", "run_baselines"]


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
    """The last observed value, repeated for every horizon."""
    h = _check(history, horizon)
    return np.repeat(h[:, -1:], horizon, axis=1)


def moving_average(history, horizon: int, window: int = 7) -> np.ndarray:
    """The mean of the last ``window`` days, repeated for every horizon."""
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
    """Every baseline in ``names`` (default: all) on the same ``history``."""
    names = list(BASELINES) if names is None else list(names)
    unknown = sorted(set(names) - set(BASELINES))
    if unknown:
        raise ValueError(f"unknown baseline(s) {unknown}; expected some of {sorted(BASELINES)}")
    return {name: BASELINES[name](history, horizon) for name in names}
