r"""Forecasts of future counts from every decay model, and how to score them on held-back days.

The question users ask is predictive: how much will this user do in this category over the next
``horizon`` days? :func:`forecast_counts` answers it with one function for every model, using the
panel up to ``cutoff_day`` only; :func:`score_forecasts` compares the answer with what happened;
:func:`rolling_origin` repeats both at several cutoffs and :func:`paired_bootstrap` puts an
interval on the difference between two models (users resampled, so that a user's pairs stay
together).

The models (``method=``), each a statement about a pair's interest after the cutoff:

``"constant"``
    The recent mean rate goes on: mean of ``column`` over the pair's observed days among the last
    ``window`` days (default 14) up to the cutoff, times ``horizon``. No decay at all.
``"sar"``
    One global half-life for everybody (SAR): the pair's exponentially weighted sum of past values,
    :math:`s = \sum_{d \le T} x_d\, 2^{-(T-d)/H}`, times a scale :math:`\beta`; ``H`` and
    :math:`\beta` are tuned together on the days before the cutoff (scores at ``T - horizon``
    against the sums over ``(T - horizon, T]``, Poisson deviance, :math:`\beta` in closed form),
    over a grid of half-lives wide enough for the optimum to be interior (``attrs`` say if not).
``"mle"``
    The pair's own decay: Poisson maximum likelihood :math:`\mu_t = e^{a - \lambda t}`
    (:func:`decaylib.decay.rate.fit_poisson_mle`) on the days from its decay start to the cutoff, then
    :math:`\sum_{t} e^{a-\lambda t}` over the future days. Where the evidence rules do not support
    a fit (``reason`` names why), or where the fit is a rise (λ < 0: the decay model does not
    extrapolate growth, ``"constant_fallback: rising"``), the pair falls back to ``"constant"``.
``"shrunk"``
    The same decay, pooled (:mod:`decaylib.decay.shrinkage`): a population prior of λ and of the level
    fitted on all pairs at this cutoff, and each pair's posterior mean of the future sum.
``"shrunk_floor"``
    As ``"shrunk"`` with a pooled floor, :math:`I(t) = b + I_0 e^{-\lambda t}`, kept only where
    the likelihood supports it (the floor share is in ``attrs["prior"]``; 0 on the simulator).
``"hawkes"``
    Interest that events excite and time decays (:mod:`decaylib.decay.hawkes`): every event of
    the pair raises the next days' rate, which decays at a decay β shared by all pairs, on top of
    a baseline that differs between pairs (Gamma, as NBD); fitted by marginal likelihood on the
    days up to the cutoff. Several ``column`` values are modelled jointly (each excites the
    others) and their expected sums added. ``reason`` is ``"prior_only"`` for a pair whose own
    days carry less than :data:`~decaylib.decay.hawkes.PRIOR_ONLY_SHARE` of its forecast.
``"auto"``
    The method with the lowest mean Poisson deviance on rolling origins *before* the cutoff
    (:func:`rolling_cutoffs` on the panel up to ``cutoff_day``, scored on days up to the cutoff
    only), refitted at the cutoff. ``attrs["auto"]`` holds the table of candidates and their
    deviances, ``attrs["picked"]`` the winner and ``attrs["margin"]`` its relative lead over the
    runner-up; the table's ``predicted`` and ``observed`` are each candidate's totals over those
    origins (the events it expected and the events that came). Candidates: ``auto_methods`` (default :data:`AUTO_METHODS`, plus ``"lstm"`` when
    ``forecasts=`` is given).
``"lstm"``
    The sequence model's forecast paths (``forecasts=``, the artifact of notebook 03, whose
    horizon must cover ``horizon``) summed over the horizon, from the origin ``cutoff_day``; pairs
    without a path fall back to ``"constant"``. Only for ``column="interest"`` (what it forecasts).

**The decay start.** The decay models need the day the decay began, known at the cutoff: the day
of the pair's highest 7-day centred mean of ``column`` up to the cutoff (a window near the cutoff
uses the days it has). A pair that is still rising has its maximum at (or next to) the cutoff: it
is assumed to have just peaked, so its forecast decays from its current level at its own λ if its
days say so, and at the population's otherwise (``"shrunk"``); ``"mle"`` has too few decay days
for such a pair and uses ``"constant"``. A pair with one event has that day as its start.

All functions take the panel of :mod:`decaylib.data.preprocess` (``user_id, category, day``, the value
columns, ``observed``); days absent from the panel are days without events, days with
``observed == False`` are outages (no information).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from decaylib.checks import InsufficientDataError, check_int, column_names
from decaylib.data.panel import check_panel, column_sum, outage_days_of
from decaylib.decay import shrinkage as _sh
from decaylib.decay import hawkes as _hk
from decaylib.decay.evidence import EvidenceRules
from decaylib.decay.rate import fit_poisson_mle, sar_tuning_cutoff, sar_weight
from decaylib.evaluation.forecast import poisson_deviance, score_forecasts
from decaylib.schema import BEHAVIOURS, PAIR_COLS

__all__ = ['FORECAST_METHODS', 'AUTO_METHODS', 'SAR_GRID', 'forecast_counts', 'rolling_origin', 'rolling_cutoffs', 'shrunk_lambda_at']

#: The models of :func:`forecast_counts`.
FORECAST_METHODS: tuple[str, ...] = ("constant", "sar", "mle", "shrunk", "shrunk_floor", "lstm", "hawkes", "auto")

#: The candidates of ``method="auto"`` (``"lstm"`` joins them when forecast paths are given).
AUTO_METHODS: tuple[str, ...] = ("constant", "sar", "shrunk_floor", "hawkes")

#: Half-lives (days) tried by ``method="sar"``: from a day to five years.
SAR_GRID: tuple[float, ...] = tuple(float(x) for x in np.round(np.geomspace(0.5, 1825.0, 36), 3))

#: Expected sums are floored at this value when scored (a forecast of exactly 0 for a pair that
#: then has an event would have infinite Poisson deviance).

_PEAK_WINDOW = 7


# --------------------------------------------------------------------------------------------
# The panel up to the cutoff as a dense (pair x day) matrix
# --------------------------------------------------------------------------------------------
@dataclass
class _Dense:
    keys: pd.DataFrame      # pairs (sorted)
    first_day: int          # day of column 0
    X: np.ndarray           # (G, W) value of `column`, 0 on absent days
    obs: np.ndarray         # (W,) day observed (not an outage)
    first: np.ndarray       # (G,) column of the pair's first event
    cutoff: int

    @property
    def W(self) -> int:
        return self.X.shape[1]


def _dense(panel: pd.DataFrame, cutoff_day: int, cols: list[str]) -> _Dense:
    day = panel["day"].to_numpy()
    past = panel.loc[day <= cutoff_day]
    x = column_sum(past, cols)
    ev_cols = [c for c in BEHAVIOURS if c in past.columns]
    active = (x > 0) | (past[ev_cols].to_numpy(dtype=float).sum(axis=1) > 0 if ev_cols else False)
    if not active.any():
        raise ValueError(f"no pair has an event on or before cutoff_day={cutoff_day}: nothing to forecast")
    act = past.loc[active, [*PAIR_COLS, "day"]]
    keys = act[list(PAIR_COLS)].drop_duplicates().sort_values(list(PAIR_COLS)).reset_index(drop=True)
    first_day = int(act["day"].min())
    W = int(cutoff_day) - first_day + 1
    kc = pd.MultiIndex.from_frame(keys)
    code = kc.get_indexer(pd.MultiIndex.from_frame(past[list(PAIR_COLS)]))
    d = past["day"].to_numpy() - first_day
    keep = (code >= 0) & (d >= 0)
    X = np.zeros((len(keys), W))
    np.add.at(X, (code[keep], d[keep]), x[keep])
    first = np.full(len(keys), W, dtype=np.int64)
    acode = kc.get_indexer(pd.MultiIndex.from_frame(act[list(PAIR_COLS)]))
    np.minimum.at(first, acode, act["day"].to_numpy() - first_day)
    obs = np.ones(W, dtype=bool)
    for o in outage_days_of(panel):
        if first_day <= o <= cutoff_day:
            obs[o - first_day] = False
    return _Dense(keys, first_day, X, obs, first, int(cutoff_day))


def _rolling_mean_centered(X: np.ndarray, obs: np.ndarray, window: int) -> np.ndarray:
    """Centred moving mean over observed days (a window near an end uses the days it has)."""
    h = window // 2
    Xo = np.where(obs[None, :], X, 0.0)
    cs = np.concatenate([np.zeros((X.shape[0], 1)), np.cumsum(Xo, axis=1)], axis=1)
    co = np.concatenate([[0], np.cumsum(obs)])
    W = X.shape[1]
    lo = np.clip(np.arange(W) - h, 0, W)
    hi = np.clip(np.arange(W) + h + 1, 0, W)
    n = (co[hi] - co[lo]).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n[None, :] > 0, (cs[:, hi] - cs[:, lo]) / n[None, :], 0.0)


def _decay_start(dn: _Dense) -> np.ndarray:
    """Column of each pair's decay start: its highest centred 7-day mean up to the cutoff (first event if all 0)."""
    sm = _rolling_mean_centered(dn.X, dn.obs, _PEAK_WINDOW)
    cols = np.arange(dn.W)[None, :]
    sm = np.where(cols >= dn.first[:, None], sm, -np.inf)
    peak = np.argmax(sm, axis=1)
    return np.maximum(peak, dn.first)


def _phase_stats(dn: _Dense, start: np.ndarray) -> _sh.PairStats:
    """Sufficient statistics of the phases [start, cutoff] straight from the dense matrix."""
    G, W = dn.X.shape
    cols = np.arange(W)[None, :]
    t = cols - start[:, None]
    inph = (t >= 0) & dn.obs[None, :]
    Xp = np.where(inph, dn.X, 0.0)
    Y = Xp.sum(axis=1)
    S = (Xp * np.maximum(t, 0)).sum(axis=1)
    n_obs = inph.sum(axis=1).astype(float)
    n_active = (Xp > 0).sum(axis=1).astype(float)
    gaps = np.flatnonzero(~dn.obs)
    gc, gt = [], []
    for o in gaps:
        g = np.flatnonzero(start <= o)
        gc.append(g)
        gt.append((o - start[g]).astype(float))
    pg, pd_ = np.nonzero(Xp > 0)
    return _sh.PairStats(
        keys=dn.keys, Y=Y, S=S, tmin=np.zeros(G), tmax=(W - 1 - start).astype(float), n_obs=n_obs,
        n_active=n_active, gap_code=np.concatenate(gc).astype(np.int64) if gc else np.zeros(0, np.int64),
        gap_t=np.concatenate(gt) if gt else np.zeros(0), pos_code=pg.astype(np.int64),
        pos_t=(pd_ - start[pg]).astype(float), pos_y=Xp[pg, pd_])


def _constant(dn: _Dense, horizon: int, window: int) -> np.ndarray:
    W = dn.W
    lo = max(0, W - window)
    cols = np.arange(lo, W)
    use = dn.obs[lo:][None, :] & (cols[None, :] >= dn.first[:, None])
    n = use.sum(axis=1)
    tot = np.where(use, dn.X[:, lo:], 0.0).sum(axis=1)
    return np.where(n > 0, tot / np.maximum(n, 1), 0.0) * horizon


def _sar_dense(X: np.ndarray, obs: np.ndarray, half_life: float) -> np.ndarray:
    """SAR's score of every pair (row of ``X``, days in columns, the cutoff last): :func:`sar_weight` of
    each day's age, outage days weighted 0 (the frame version is ``recommend.strategies._sar_scores``)."""
    W = X.shape[1]
    return X @ (sar_weight(W - 1 - np.arange(W), half_life) * obs)


def _sar(dn: _Dense, horizon: int, grid: Sequence[float], tune_days: int | None = None):
    # Tuned on (T - tune, T]: scores at T - tune against the sums over those days. The window is the
    # horizon by default; a log shorter than two horizons (a classic calibration / holdout split of
    # equal halves) tunes on the longest window that leaves as many days before it, and the scale is
    # stretched to the horizon (the rate per day of the tuning window goes on).
    tune = (horizon if dn.W - horizon >= max(horizon, 1) else max(1, dn.W // 2)) if tune_days is None else tune_days
    tune = dn.cutoff - sar_tuning_cutoff(dn.cutoff, dn.first_day, tune, name="sar_tune_days", who="method 'sar'")
    inner = dn.W - tune  # columns < inner are known at the inner cutoff T - tune
    seen = dn.first < inner
    if not seen.any():
        raise ValueError(f"method 'sar': no pair has an event before day {dn.first_day + inner} to tune the half-life on")
    Xi = dn.X[seen, :inner]
    target = np.where(dn.obs[inner:][None, :], dn.X[seen, inner:], 0.0).sum(axis=1)
    best = None
    table = []
    for H in grid:
        s = _sar_dense(Xi, dn.obs[:inner], H)
        beta = target.sum() / s.sum() if s.sum() > 0 else 0.0
        dev = float(poisson_deviance(target, beta * s).mean())
        table.append((H, beta, dev))
        if best is None or dev < best[2]:
            best = (H, beta, dev)
    H, beta, _ = best
    at_edge = H in (grid[0], grid[-1])
    exp = beta * (horizon / tune) * _sar_dense(dn.X, dn.obs, H)
    return exp, {"half_life": float(H), "scale": float(beta * horizon / tune), "at_edge": bool(at_edge),
                 "tune_days": int(tune), "tuning": pd.DataFrame(table, columns=["half_life", "scale", "deviance"])}


def _mle(dn: _Dense, start: np.ndarray, horizon: int, rules, fallback: np.ndarray):

    G, W = dn.X.shape
    cols = np.arange(W)[None, :]
    t = cols - start[:, None]
    g, d = np.nonzero(t >= 0)
    long = pd.DataFrame({"g": g, "t": t[g, d].astype(float), "count": dn.X[g, d], "observed": dn.obs[d]})
    fit = fit_poisson_mle(long, pair_cols=["g"], rules=rules).set_index("g").reindex(np.arange(G))
    lam = fit["lam_hat"].to_numpy(dtype=float)
    log_a = fit["log_a"].to_numpy(dtype=float)
    ok = (fit["reason"] == "ok").to_numpy() & np.isfinite(lam) & np.isfinite(log_a)
    rising = ok & (lam < 0)  # a fitted rise: the decay model does not extrapolate growth
    ok &= ~rising
    t0 = (W - start).astype(float)  # first future day's phase index
    with np.errstate(over="ignore", invalid="ignore"):
        future = np.zeros(G)
        for h in range(horizon):
            future += np.exp(np.clip(log_a - lam * (t0 + h), -745, 700))
    why = np.where(rising, "rising", fit["reason"].fillna("no_decay_phase").astype(str).to_numpy())
    reason = np.where(ok, "ok", np.char.add("constant_fallback: ", why.astype(str)))
    return np.where(ok, future, fallback), reason, fit


def _lstm(dn: _Dense, horizon: int, forecasts, fallback):
    if forecasts is None:
        raise ValueError("method 'lstm' needs forecasts= (the forecast paths of notebook 03)")
    need = [*PAIR_COLS, "origin_day", "horizon", "interest_pred"]
    if not isinstance(forecasts, pd.DataFrame):
        raise TypeError(f"forecasts must be a DataFrame, got {type(forecasts).__name__}")
    missing = [c for c in need if c not in forecasts.columns]
    if missing:
        raise ValueError(f"forecasts is missing column(s) {missing}")
    hmax = int(forecasts["horizon"].max()) if len(forecasts) else 0
    if hmax < horizon:
        raise ValueError(f"method 'lstm': the forecaster's horizon is {hmax} days, shorter than horizon={horizon}; "
                         f"use a horizon of at most {hmax} or retrain notebook 03 with a longer one")
    f = forecasts.loc[(forecasts["origin_day"] == dn.cutoff) & (forecasts["horizon"] <= horizon)]
    if "split" in f.columns:  # one path per pair and origin: prefer the held-out ones
        f = f.sort_values("split").drop_duplicates([*PAIR_COLS, "horizon"], keep="first")
    s = f.groupby(list(PAIR_COLS))["interest_pred"].agg(["sum", "size"])
    s = s[s["size"] == horizon]
    got = pd.MultiIndex.from_frame(dn.keys).map(s["sum"].to_dict()) if len(s) else None
    vals = np.asarray(pd.Series(got, dtype=float)) if got is not None else np.full(len(dn.keys), np.nan)
    ok = np.isfinite(vals)
    return np.where(ok, np.maximum(vals, 0.0), fallback), np.where(ok, "ok", "constant_fallback: no_forecast")


def forecast_counts(panel: pd.DataFrame, cutoff_day: int, horizon: int, *, method: str, column="interest",
                    window: int = 14, rules: EvidenceRules | None = None, prior: _sh.DecayPrior | None = None,
                    forecasts: pd.DataFrame | None = None, sar_grid: Sequence[float] = SAR_GRID,
                    seed: int = 0, auto_methods: Sequence[str] | None = None, auto_cutoffs: int = 3,
                    sar_tune_days: int | None = None, auto_max_users: int | None = None) -> pd.DataFrame:
    """Expected sum of ``column`` over days ``cutoff_day+1 .. cutoff_day+horizon`` for every pair, from days <= cutoff.

    Parameters
    ----------
    panel : DataFrame
        The daily panel (``user_id, category, day``, ``column``, optionally ``observed``).
    cutoff_day, horizon : int
        The last known day and the number of days forecast.
    method : str
        One of :data:`FORECAST_METHODS` (the models are described in the module docstring).
    column : str or list of str
        The panel column to forecast, or several summed (``["purchase"]``, the event counts ...).
    window : int
        Days of the recent mean of ``"constant"`` (and of the fallbacks).
    rules : EvidenceRules
        Evidence thresholds of the ``"mle"`` fit (:mod:`decaylib.decay.evidence`).
    prior : DecayPrior
        ``"shrunk"`` / ``"shrunk_floor"``: a prior fitted before; default: fitted here on the
        pairs' decay phases at this cutoff (floor tried for ``"shrunk_floor"``).
    forecasts : DataFrame
        ``"lstm"``: the forecast paths (``user_id, category, origin_day, horizon, interest_pred``).
    sar_grid : sequence of float
        Half-lives tried by ``"sar"``.
    sar_tune_days : int
        ``"sar"``: the days before the cutoff its half-life and scale are tuned on (default: the
        horizon, or half the history when the history is shorter than two horizons; the scale is
        then stretched to the horizon). ``attrs["tune_days"]`` says which.
    auto_methods, auto_cutoffs : sequence of str, int
        ``"auto"``: the candidates (default :data:`AUTO_METHODS`) and the number of rolling origins
        before the cutoff they are scored on.
    auto_max_users : int
        ``"auto"``: compare the candidates on a random sample of at most this many users (``seed``;
        default: every user), so that choosing the method on a big log costs a bounded time; the
        chosen method is then fitted on every pair. ``attrs["auto_users"]`` says how many were used.

    Returns
    -------
    DataFrame
        ``user_id, category, expected, reason, method`` sorted by pair: every pair with an event
        on or before the cutoff. ``reason`` is ``"ok"`` or names the fallback used
        (``"constant_fallback: insufficient_data"`` ...). ``attrs`` hold what the model learnt
        (``"prior"``, SAR's ``"half_life"``, ``"scale"``, ``"at_edge"``, ``"tuning"``) and the
        decay start of every pair (``attrs["decay_start"]``, a day per pair).

    Notebooks 04 and 08.
    """
    if not isinstance(method, str) or method not in FORECAST_METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {list(FORECAST_METHODS)}")
    cols = column_names(column)
    check_panel(panel, cols)
    cutoff_day = check_int("cutoff_day", cutoff_day, minimum=0)
    horizon = check_int("horizon", horizon, minimum=1)
    window = check_int("window", window, minimum=1)
    lo, hi = int(panel["day"].min()), int(panel["day"].max())
    if not lo <= cutoff_day <= hi:
        raise ValueError(f"cutoff_day={cutoff_day} is outside the panel's days [{lo}, {hi}]")
    if method == "lstm" and cols != ["interest"]:
        raise ValueError(f"method 'lstm' forecasts the interest score only, not {cols}")
    if method == "auto":
        return _auto(panel, cutoff_day, horizon, cols, auto_methods, auto_cutoffs, auto_max_users, forecasts=forecasts,
                     window=window, rules=rules, sar_grid=sar_grid, seed=seed, sar_tune_days=sar_tune_days)
    dn = _dense(panel, cutoff_day, cols)
    start = _decay_start(dn)
    const = _constant(dn, horizon, window)
    attrs = {}
    reason = np.full(len(dn.keys), "ok", dtype=object)
    if method == "constant":
        expected = const
    elif method == "sar":
        expected, attrs = _sar(dn, horizon, tuple(float(h) for h in sar_grid), sar_tune_days)
    elif method == "mle":
        expected, reason, _ = _mle(dn, start, horizon, rules, const)
    elif method in ("shrunk", "shrunk_floor"):
        st = _phase_stats(dn, start)
        if prior is None:
            prior = _sh.fit_prior(st, floor=(method == "shrunk_floor"), seed=seed)
        elif not isinstance(prior, _sh.DecayPrior):
            raise TypeError(f"prior must be a DecayPrior, got {type(prior).__name__}")
        t0 = (dn.W - start).astype(float)
        expected = _sh.posterior_expected_sum(st, prior, t0, t0 + horizon - 1)
        attrs = {"prior": prior}
    elif method == "hawkes":
        expected, reason, attrs = _hawkes(panel, dn, cutoff_day, horizon, cols, seed)
    else:
        expected, reason = _lstm(dn, horizon, forecasts, const)
    out = dn.keys.copy()
    out["expected"] = np.maximum(np.asarray(expected, dtype=float), 0.0)
    out["reason"] = np.asarray(reason, dtype=str)
    out["method"] = method
    if not np.all(np.isfinite(out["expected"].to_numpy())):
        bad = int((~np.isfinite(out["expected"].to_numpy())).sum())
        raise FloatingPointError(f"method {method!r} produced {bad} non-finite forecasts")
    out.attrs.update(attrs)
    out.attrs["decay_start"] = pd.Series(dn.first_day + start, index=pd.MultiIndex.from_frame(dn.keys))
    out.attrs.update({"cutoff_day": cutoff_day, "horizon": horizon, "column": cols})
    return out


def _hawkes(panel, dn: _Dense, cutoff_day: int, horizon: int, cols, seed: int):
    ev = _hk.event_arrays(panel, cutoff_day, types=cols)
    fit = _hk.fit_hawkes(ev, satiation=None, interval=None, seed=seed)
    f = _hk.hawkes_forecast(ev, fit, horizon)
    # the same pairs as the other methods, in their order (a pair whose only events are in other
    # columns has nothing of ``cols`` to excite it: its baseline alone)
    got = pd.MultiIndex.from_frame(f[list(PAIR_COLS)])
    pos = got.get_indexer(pd.MultiIndex.from_frame(dn.keys))
    base = horizon * float(fit.mu.sum())
    expected = np.where(pos >= 0, f["expected"].to_numpy()[np.maximum(pos, 0)], base)
    reason = np.where(pos >= 0, f["reason"].to_numpy()[np.maximum(pos, 0)], "prior_only")
    return expected, reason, {"hawkes": fit}


def _auto(panel, cutoff_day, horizon, cols, methods, n_cutoffs, max_users, *, forecasts, **kw):
    if methods is None:
        methods = [*AUTO_METHODS, *(["lstm"] if forecasts is not None else [])]
    methods = list(methods)
    bad = [m for m in methods if m not in FORECAST_METHODS or m == "auto"]
    if bad or not methods:
        raise ValueError(f"auto_methods must be a non-empty list of {[m for m in FORECAST_METHODS if m != 'auto']}, "
                         f"got {methods!r}")
    n_cutoffs = check_int("auto_cutoffs", n_cutoffs, minimum=1)
    past = panel.loc[panel["day"].to_numpy() <= cutoff_day]
    users = np.unique(past["user_id"].to_numpy())
    n_users = len(users)
    if max_users is not None:
        max_users = check_int("auto_max_users", max_users, minimum=1)
        if n_users > max_users:
            keep = np.random.default_rng(kw.get("seed", 0)).choice(users, size=max_users, replace=False)
            past = past.loc[np.isin(past["user_id"].to_numpy(), keep)]
    h, cutoffs, note = rolling_cutoffs(past, horizon, n_cutoffs)
    rows = []
    for m in methods:
        devs, n, err, pred, obs = 0.0, 0, "", 0.0, 0.0
        for c in cutoffs:
            try:
                f = forecast_counts(past, c, h, method=m, column=cols, forecasts=forecasts, **kw)
            except (ValueError, InsufficientDataError) as e:  # a method that cannot run here is not a candidate
                err = str(e).splitlines()[0]
                break
            sc = score_forecasts(f, past, c, h, column=cols).per_pair
            devs += float(sc["deviance"].sum())
            pred += float(sc["expected"].sum())
            obs += float(sc["observed"].sum())
            n += len(sc)
        rows.append({"method": m, "mean_deviance": devs / n if n and not err else np.nan,
                     "pairs_scored": n if not err else 0, "predicted": pred if not err else np.nan,
                     "observed": obs if not err else np.nan, "note": err})
    table = pd.DataFrame(rows)
    ok = table.dropna(subset=["mean_deviance"]).sort_values("mean_deviance", kind="stable")
    if ok.empty:
        raise InsufficientDataError(f"method 'auto': no candidate could be scored before cutoff_day={cutoff_day}: "
                                    + "; ".join(f"{r.method}: {r.note}" for r in table.itertuples()))
    picked = str(ok["method"].iloc[0])
    margin = float(ok["mean_deviance"].iloc[1] / ok["mean_deviance"].iloc[0] - 1) if len(ok) > 1 else float("nan")
    out = forecast_counts(panel, cutoff_day, horizon, method=picked, column=cols, forecasts=forecasts, **kw)
    out["method"] = "auto"
    out.attrs.update({"auto": table, "picked": picked, "margin": margin, "auto_cutoffs": list(cutoffs),
                      "auto_users": (int(past["user_id"].nunique()), int(n_users)),
                      "auto_horizon": h, "auto_note": note})
    return out


def rolling_origin(panel: pd.DataFrame, cutoffs: Sequence[int], horizon: int, methods: Sequence[str] = FORECAST_METHODS[:5],
                   *, column="interest", **kw) -> pd.DataFrame:
    """Forecast and score every method at every cutoff: one row per (cutoff, method, pair).

    Columns: ``cutoff, method, user_id, category, expected, observed, deviance, abs_error, reason``.
    ``**kw`` go to :func:`forecast_counts` (``forecasts=`` for ``"lstm"``, ``window=`` ...).

    Notebooks 04 and 06.
    """
    cutoffs = [check_int("cutoff", c, minimum=0) for c in cutoffs]
    if not cutoffs:
        raise ValueError("cutoffs is empty")
    for m in methods:
        if m not in FORECAST_METHODS:
            raise ValueError(f"unknown method {m!r}; choose from {list(FORECAST_METHODS)}")
    rows = []
    for c in cutoffs:
        for m in methods:
            f = forecast_counts(panel, c, horizon, method=m, column=column, **kw)
            s = score_forecasts(f, panel, c, horizon, column=column).per_pair
            rows.append(s.assign(cutoff=c, method=m, reason=f["reason"].to_numpy()))
    out = pd.concat(rows, ignore_index=True)
    return out[["cutoff", "method", *PAIR_COLS, "expected", "observed", "deviance", "abs_error", "reason"]]


def rolling_cutoffs(panel: pd.DataFrame, horizon: int, n_cutoffs: int = 4, *, min_history: int = 14):
    """Cutoffs for a rolling-origin evaluation that fit the panel's days, and the horizon used.

    The last cutoff leaves ``horizon`` days to score; the others step back by ``horizon // 2``
    (at least a day); every cutoff keeps ``min_history`` days and one horizon before it (the SAR
    model tunes on the horizon before the cutoff). On a log too short for ``horizon``, the horizon
    is shortened to a third of the log's days. Returns ``(horizon_used, cutoffs, note)``, ``note``
    one line saying what was shortened ("" when nothing was). Raises
    :class:`~decaylib.checks.InsufficientDataError` when even that leaves no cutoff.

    Notebook 04.
    """

    horizon = check_int("horizon", horizon, minimum=1)
    n_cutoffs = check_int("n_cutoffs", n_cutoffs, minimum=1)
    min_history = check_int("min_history", min_history, minimum=1)
    first, last = int(panel["day"].min()), int(panel["day"].max())
    span = last - first + 1
    h, note = horizon, ""
    hist = min_history
    if first + hist + h > last - h:
        h = max(1, span // 3)
        hist = max(1, min(min_history, span - 2 * h - 1))
        note = (f"the log spans {span} days: a {horizon}-day horizon leaves no room to learn and score, so the "
                f"horizon is {h} days")
    latest = last - h
    earliest = first + hist + h
    if latest < earliest:
        raise InsufficientDataError(f"the log spans {span} days: too short for a rolling-origin evaluation "
                                    f"(a {h}-day horizon needs {hist + 2 * h + 1} days)")
    step = max(1, h // 2)
    cutoffs = sorted(range(latest, earliest - 1, -step)[:n_cutoffs])
    return h, cutoffs, note


def shrunk_lambda_at(panel: pd.DataFrame, cutoff_day: int | None = None, *, column=tuple(BEHAVIOURS),
                     floor: bool | float = False, prior: _sh.DecayPrior | None = None, seed: int = 0) -> pd.DataFrame:
    """Pooled λ of every pair from its decay start (as in :func:`forecast_counts`) to ``cutoff_day``.

    ``column`` default: the event counts (view + click + cart + purchase of the panel, those it
    has). ``cutoff_day`` default: the panel's last day. Returns the table of
    :func:`decaylib.decay.shrinkage.shrunk_lambda` plus ``t_decay`` (the decay start used); the prior
    is in ``attrs["prior"]``. Pairs that the evidence rules refuse a per-pair λ still get one
    here: the population's, moved as far as their own events allow (``data_weight``).

    Notebook 04.
    """
    cols = column_names(list(column) if isinstance(column, tuple) else column)
    cols = [c for c in cols if c in panel.columns] if isinstance(column, tuple) else cols
    if not cols:
        raise ValueError(f"panel has none of the count columns {list(column)}")
    check_panel(panel, cols)
    cutoff = int(panel["day"].max()) if cutoff_day is None else check_int("cutoff_day", cutoff_day, minimum=0)
    dn = _dense(panel, cutoff, cols)
    start = _decay_start(dn)
    out = _sh.shrunk_lambda(_phase_stats(dn, start), prior, floor=floor, seed=seed)
    out.insert(2, "t_decay", dn.first_day + start)
    return out
