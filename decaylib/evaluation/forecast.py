"""Forecast scores (notebooks 03, 04 and 08): regression metrics, comparisons with baselines, Poisson deviance of count forecasts and their calibration."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from decaylib.checks import check_int, column_names
from decaylib.data.panel import check_panel, column_sum, outage_days_of
from decaylib.schema import PAIR_COLS

__all__ = ['MIN_EXPECTED', 'poisson_deviance', 'compare_on_holdout', 'calibration_by_decile', 'ForecastScore', 'score_forecasts', 'by_decay_age', 'compare_forecasts', 'gain_over_baseline', 'regression_metrics']

# --------------------------------------------------------------------------------------------
# Comparison on the holdout
# --------------------------------------------------------------------------------------------
#: The smallest expected count a deviance is computed with (a forecast of 0 would make any event infinitely surprising).
MIN_EXPECTED: float = 1e-6


def poisson_deviance(observed, expected) -> np.ndarray:
    """Per-customer Poisson deviance :math:`2[y\\log(y/\\mu) - (y-\\mu)]`, :math:`\\mu` floored at
    :data:`decaylib.decay.counts.MIN_EXPECTED` (as :func:`decaylib.evaluation.forecast.score_forecasts`).

    Notebooks 03, 04 and 08.
    """
    y = np.asarray(observed, dtype=float)
    mu = np.maximum(np.asarray(expected, dtype=float), MIN_EXPECTED)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0) / mu), 0.0)
    return 2.0 * (t - (y - mu))


def compare_on_holdout(predictions: dict, observed, *, reference: str, n_boot: int = 1000, seed: int = 0,
                       level: float = 0.95) -> pd.DataFrame:
    """Score several models' predictions of the same customers' holdout counts, with paired bootstrap intervals.

    Parameters
    ----------
    predictions : dict
        Model name -> array of expected counts, one per customer, all aligned on ``observed``.
    observed : array
        What each customer did in the holdout (counts >= 0).
    reference : str
        The model that the others are compared with.
    n_boot, seed, level
        Bootstrap replicates (customers resampled with replacement, the same draws for every
        model: a paired comparison), their seed and the interval's coverage.

    Returns
    -------
    DataFrame
        One row per model, in the order given: ``model, deviance`` (mean Poisson deviance per
        customer), ``mae``, ``predicted_total``, ``observed_total``, ``diff`` (mean deviance
        minus the reference's: negative = better than the reference), ``diff_lo``, ``diff_hi``
        (the bootstrap interval), ``excludes_zero``, ``n_customers``.

    Notebook 08.
    """
    if not isinstance(predictions, dict) or not predictions:
        raise TypeError("predictions must be a non-empty dict: model name -> expected counts per customer")
    y = np.asarray(observed, dtype=float).ravel()
    if y.size == 0:
        raise ValueError("observed is empty")
    if not np.all(np.isfinite(y)) or np.any(y < 0):
        raise ValueError("observed must hold finite counts >= 0")
    if reference not in predictions:
        raise ValueError(f"reference {reference!r} is not among the models {list(predictions)}")
    n_boot = check_int("n_boot", n_boot, minimum=10)
    check_int("seed", seed, minimum=0)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    dev, mus = {}, {}
    for name, mu in predictions.items():
        mu = np.asarray(mu, dtype=float).ravel()
        if mu.shape != y.shape:
            raise ValueError(f"predictions[{name!r}] has {mu.size} values for {y.size} customers (align them on observed)")
        if not np.all(np.isfinite(mu)) or np.any(mu < 0):
            raise ValueError(f"predictions[{name!r}] must be finite and >= 0")
        mus[name] = mu
        dev[name] = poisson_deviance(y, mu)
    n = y.size
    rng = np.random.default_rng(seed)
    names = list(predictions)
    D = np.stack([dev[m] - dev[reference] for m in names], axis=1)  # (n, models)
    boot = np.empty((n_boot, len(names)))
    chunk = max(1, int(2e7 // max(n, 1)))
    for s in range(0, n_boot, chunk):
        k = min(chunk, n_boot - s)
        idx = rng.integers(0, n, size=(k, n))
        counts = np.zeros((k, n))
        np.add.at(counts, (np.repeat(np.arange(k), n), idx.ravel()), 1.0)
        boot[s:s + k] = counts @ D / n
    q = (1.0 - level) / 2.0
    lo, hi = np.quantile(boot, [q, 1.0 - q], axis=0)
    rows = []
    for j, m in enumerate(names):
        rows.append({"model": m, "deviance": float(dev[m].mean()), "mae": float(np.abs(y - mus[m]).mean()),
                     "predicted_total": float(mus[m].sum()), "observed_total": float(y.sum()),
                     "diff": float(D[:, j].mean()), "diff_lo": float(lo[j]), "diff_hi": float(hi[j]),
                     "excludes_zero": bool(m != reference and (lo[j] > 0 or hi[j] < 0)), "n_customers": int(n)})
    out = pd.DataFrame(rows)
    out.attrs.update({"reference": reference, "n_boot": n_boot, "level": level})
    return out


def calibration_by_decile(predictions: dict, observed, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted and mean observed count by bin of each model's prediction (equal-size bins).

    ``predictions``: model name -> expected counts aligned on ``observed``. Customers are ranked by
    the model's prediction (ties in their given order) and cut into ``n_bins`` bins of equal size, as
    :func:`decaylib.evaluation.forecast.score_forecasts` does. Returns ``model, bin, n, mean_expected,
    mean_observed``; a calibrated model has ``mean_observed`` close to ``mean_expected`` in every bin.

    Notebook 08.
    """
    if not isinstance(predictions, dict) or not predictions:
        raise TypeError("predictions must be a non-empty dict: model name -> expected counts per customer")
    n_bins = check_int("n_bins", n_bins, minimum=1)
    y = np.asarray(observed, dtype=float).ravel()
    n = y.size
    if n == 0:
        raise ValueError("observed is empty")
    rows = []
    for name, mu in predictions.items():
        mu = np.asarray(mu, dtype=float).ravel()
        if mu.shape != y.shape:
            raise ValueError(f"predictions[{name!r}] has {mu.size} values for {n} customers")
        bins = np.empty(n, dtype=np.int64)
        bins[np.argsort(mu, kind="stable")] = np.minimum((np.arange(n) * n_bins) // n, n_bins - 1)
        cnt = np.bincount(bins, minlength=n_bins)
        keep = cnt > 0
        me = np.bincount(bins, weights=mu, minlength=n_bins)[keep] / cnt[keep]
        mo = np.bincount(bins, weights=y, minlength=n_bins)[keep] / cnt[keep]
        rows.append(pd.DataFrame({"model": name, "bin": np.flatnonzero(keep) + 1, "n": cnt[keep],
                                  "mean_expected": me, "mean_observed": mo}))
    return pd.concat(rows, ignore_index=True)


# --------------------------------------------------------------------------------------------
# Scoring
# --------------------------------------------------------------------------------------------
@dataclass
class ForecastScore:
    """What :func:`score_forecasts` measured: ``summary`` (dict), ``per_pair`` and ``calibration`` (DataFrames).

    Notebooks 03, 04 and 08.
    """

    summary: dict
    per_pair: pd.DataFrame
    calibration: pd.DataFrame


def _observed_future(panel, keys, cutoff_day, horizon, cols):
    day = panel["day"].to_numpy()
    fut = panel.loc[(day > cutoff_day) & (day <= cutoff_day + horizon)]
    s = pd.Series(column_sum(fut, cols), index=pd.MultiIndex.from_frame(fut[list(PAIR_COLS)])).groupby(level=[0, 1]).sum()
    obs = pd.MultiIndex.from_frame(keys).map(s.to_dict()) if len(s) else None
    return np.nan_to_num(np.asarray(pd.Series(obs, dtype=float)), nan=0.0) if obs is not None else np.zeros(len(keys))


def score_forecasts(forecasts: pd.DataFrame, panel: pd.DataFrame, cutoff_day: int, horizon: int, *,
                    column="interest", n_bins: int = 10) -> ForecastScore:
    """Score forecasts of :func:`forecast_counts` against what happened in ``(cutoff_day, cutoff_day + horizon]``.

    ``observed`` is the sum of ``column`` over those days (absent days count 0). Days of the
    horizon lost to an outage (``observed == False`` anywhere in the panel that day) are left out
    of both sides: the expected sum is scaled by the share of the horizon that was observed.
    The panel must reach ``cutoff_day + horizon``.

    Returns a :class:`ForecastScore`: ``summary`` with the mean Poisson deviance per pair
    (:math:`2[y\\log(y/\\mu) - (y-\\mu)]`, :math:`\\mu` floored at :data:`MIN_EXPECTED`), the mean
    absolute error, ``n_pairs``, the predicted and observed totals; ``per_pair`` (pair,
    ``expected``, ``observed``, ``deviance``, ``abs_error``); ``calibration``: pairs in ``n_bins``
    bins of equal size by predicted value, with the mean predicted and mean observed of each bin.

    Notebook 04.
    """
    cols = column_names(column)
    check_panel(panel, cols)
    if not isinstance(forecasts, pd.DataFrame):
        raise TypeError(f"forecasts must be a DataFrame, got {type(forecasts).__name__}")
    missing = [c for c in (*PAIR_COLS, "expected") if c not in forecasts.columns]
    if missing:
        raise ValueError(f"forecasts is missing column(s) {missing} (use forecast_counts)")
    if forecasts.empty:
        raise ValueError("forecasts is empty")
    if forecasts.duplicated(list(PAIR_COLS)).any():
        raise ValueError("forecasts has more than one row per (user_id, category); score one method at a time")
    cutoff_day = check_int("cutoff_day", cutoff_day, minimum=0)
    horizon = check_int("horizon", horizon, minimum=1)
    n_bins = check_int("n_bins", n_bins, minimum=1)
    last = int(panel["day"].max())
    if cutoff_day + horizon > last:
        raise ValueError(f"the panel ends on day {last}: it cannot score a horizon of {horizon} days after "
                         f"cutoff_day={cutoff_day} (needs day {cutoff_day + horizon})")
    mu = forecasts["expected"].to_numpy(dtype=float)
    if not np.all(np.isfinite(mu)) or np.any(mu < 0):
        raise ValueError("forecasts['expected'] must be finite and >= 0")
    outages = outage_days_of(panel)
    share = 1.0 - sum(1 for o in outages if cutoff_day < o <= cutoff_day + horizon) / horizon
    keys = forecasts[list(PAIR_COLS)].reset_index(drop=True)
    y = _observed_future(panel, keys, cutoff_day, horizon, cols)
    mu = mu * share
    per = keys.copy()
    per["expected"] = mu
    per["observed"] = y
    per["deviance"] = poisson_deviance(y, mu)
    per["abs_error"] = np.abs(y - mu)
    n = len(per)
    order = np.argsort(mu, kind="stable")
    bins = np.empty(n, dtype=np.int64)
    bins[order] = np.minimum((np.arange(n) * n_bins) // n, n_bins - 1)
    cal = per.assign(bin=bins + 1).groupby("bin").agg(n=("expected", "size"), mean_expected=("expected", "mean"),
                                                      mean_observed=("observed", "mean")).reset_index()
    summary = {"deviance": float(per["deviance"].mean()), "mae": float(per["abs_error"].mean()), "n_pairs": int(n),
               "predicted_total": float(mu.sum()), "observed_total": float(y.sum()), "observed_share": float(share)}
    return ForecastScore(summary, per, cal)


def by_decay_age(forecasts: pd.DataFrame, score: ForecastScore, bins=(0, 1, 4, 8, 15, 31, np.inf)) -> pd.DataFrame:
    """Predicted against observed totals by the days since each pair's decay start at the cutoff.

    ``forecasts``: from :func:`forecast_counts` (its ``attrs["decay_start"]``); ``score``: its
    :func:`score_forecasts`. Rows: bins of ``cutoff - decay start`` (left-closed, in days; 0 = the
    pair's highest level is on the cutoff day, so it may still be rising), with ``pairs``,
    ``expected``, ``observed`` (sums) and the mean ``deviance``.

    Notebook 04.
    """
    if "decay_start" not in forecasts.attrs or "cutoff_day" not in forecasts.attrs:
        raise ValueError("forecasts has no decay_start in its attrs: use forecast_counts")
    start = forecasts.attrs["decay_start"]
    per = score.per_pair
    idx = pd.MultiIndex.from_frame(per[list(PAIR_COLS)])
    age = forecasts.attrs["cutoff_day"] - start.reindex(idx).to_numpy(dtype=float)
    if np.isnan(age).any():
        raise ValueError("score and forecasts do not hold the same pairs")
    band = pd.cut(age, list(bins), right=False)
    return (per.assign(days_since_start=band).groupby("days_since_start", observed=True)
            .agg(pairs=("expected", "size"), expected=("expected", "sum"), observed=("observed", "sum"),
                 deviance=("deviance", "mean")))


def compare_forecasts(predictions: dict, references: dict, mask=None, horizons=None) -> pd.DataFrame:
    """MAE and RMSE of every forecast against every reference, per horizon.

    ``predictions`` and ``references`` map names to ``[n_windows, horizon]`` arrays (for example
    ``{"lstm": ..., "persistence": ...}`` and ``{"observed": y_raw, "truth": true_targets(...)}``);
    ``mask`` (same shape, bool) drops entries such as logging-outage days.  Returns one row per
    (model, reference, horizon) with ``mae``, ``rmse`` and ``n``.

    Notebooks 03 and 03b.
    """
    if not predictions or not references:
        raise ValueError("need at least one prediction and one reference")
    shapes = {np.asarray(v).shape for v in [*predictions.values(), *references.values()]}
    if len(shapes) != 1:
        raise ValueError(f"all arrays must have the same shape, got {sorted(shapes)}")
    shape = shapes.pop()
    m = np.ones(shape, bool) if mask is None else np.asarray(mask, bool)
    if m.shape != shape:
        raise ValueError(f"mask has shape {m.shape}, expected {shape}")
    hs = range(1, shape[1] + 1) if horizons is None else horizons
    rows = []
    for model, pred in predictions.items():
        p = np.asarray(pred, float)
        for ref, y in references.items():
            e = p - np.asarray(y, float)
            for h in hs:
                if not 1 <= h <= shape[1]:
                    raise ValueError(f"horizon {h} outside 1..{shape[1]}")
                col = e[:, h - 1][m[:, h - 1]]
                rows.append({"model": model, "reference": ref, "horizon": int(h), "mae": float(np.mean(np.abs(col))),
                             "rmse": float(np.sqrt(np.mean(col**2))), "n": int(col.size)})
    return pd.DataFrame(rows)


def gain_over_baseline(table: pd.DataFrame, model: str, baseline: str = "persistence", *, reference: str,
                       horizon: int, tol: float = 1e-6) -> dict:
    """How far ``model``'s MAE sits below ``baseline``'s: ``1 - MAE(model) / MAE(baseline)``.

    ``table`` is a :func:`compare_forecasts` table; the row of each model for ``reference`` and
    ``horizon`` is used. Returns ``{"gain", "model_mae", "baseline_mae", "n", "reason", "note"}``
    (``note``: one line for a notebook to print) where ``reason`` is ``"ok"``, or one of these
    with ``gain`` NaN (a ratio the data cannot support):

    * ``"no_scored_days"``: no target day was scored (all masked, e.g. logging outages);
    * ``"baseline_exact"``: the baseline's MAE is at most ``tol``: on these windows it is already
      exact (on a sparse log: every origin and every target day is 0), so there is nothing to gain
      and the ratio would only measure rounding noise.

    Notebook 03.
    """
    need = {"model", "reference", "horizon", "mae", "n"}
    if not isinstance(table, pd.DataFrame) or not need <= set(table.columns):
        raise KeyError(f"table must be a compare_forecasts() table with columns {sorted(need)}")

    def row(name):
        r = table[(table["model"] == name) & (table["reference"] == reference) & (table["horizon"] == horizon)]
        if len(r) != 1:
            have = sorted(table[["model", "reference", "horizon"]].drop_duplicates().itertuples(index=False, name=None))
            raise KeyError(f"no single row for model={name!r}, reference={reference!r}, horizon={horizon}; "
                           f"the table has {have[:12]}")
        return r.iloc[0]

    m, b = row(model), row(baseline)
    out = {"gain": float("nan"), "model_mae": float(m["mae"]), "baseline_mae": float(b["mae"]), "n": int(b["n"])}
    where = f"against the {reference} score at horizon {horizon}"
    if out["n"] == 0:
        return {**out, "reason": "no_scored_days", "note": f"no target day was scored {where}: gain not estimable"}
    if not out["baseline_mae"] > tol:
        return {**out, "reason": "baseline_exact",
                "note": f"{baseline} is already exact {where} (MAE {out['baseline_mae']:.1e} on {out['n']:,} days: "
                        "every target day equals its origin day, e.g. all 0 on a sparse log): gain not estimable"}
    gain = 1.0 - out["model_mae"] / out["baseline_mae"]
    return {**out, "gain": gain, "reason": "ok",
            "note": f"{model} MAE {where}: {out['model_mae']:.3f}, {gain:.0%} below {baseline} ({out['baseline_mae']:.3f})"}


def regression_metrics(y_true, y_pred, mask=None) -> dict[str, float]:
    """MAE and RMSE over all entries (optionally only where ``mask`` is True): ``{"mae", "rmse", "n"}``.

    Notebooks 03, 04 and 08.
    """
    t = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    if t.shape != p.shape:
        raise ValueError(f"y_true shape {t.shape} != y_pred shape {p.shape}")
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != t.shape:
            raise ValueError(f"mask shape {m.shape} != y_true shape {t.shape}")
        t, p = t[m], p[m]
    if t.size == 0:
        raise ValueError("no values to score (empty input or all masked)")
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise ValueError("y_true / y_pred contain NaN or infinite values")
    err = p - t
    return {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err**2).mean())), "n": int(t.size)}
