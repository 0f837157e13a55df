r"""λ from sufficient statistics, for logs too big for a dense panel and for events that stream in.

The Poisson decay fit :math:`\mu_t = A e^{-\lambda t}` over a pair's decay phase needs only a few
numbers per pair: with the level :math:`A` profiled out, the log-likelihood is

.. math:: \ell(\lambda) = -\lambda S - Y \log E(\lambda),\qquad
          Y = \sum_t y_t,\quad S = \sum_t t\,y_t,\quad E(\lambda) = \sum_{t\ \text{observed}} e^{-\lambda t},

and :math:`E` over the contiguous days ``t0 .. t_last`` is a geometric sum minus the terms of the
outage days (global to the log, few). So a pair is summarized by its **statistics**
(:func:`phase_stats`): ``t0, t_last, Y, S`` plus ``active_days``, ``first_event`` and
``last_event`` (for the evidence rules and the existence of the estimate), computed from a sparse
table of daily counts (days without events are never materialized), and
:func:`lambda_from_stats` gives exactly the table of :func:`decaylib.decay.rate.fit_poisson_mle`
(same λ, standard error, profile-likelihood interval, reasons) from them, in time independent of
how many days each phase has.

:class:`DecayState` keeps those statistics for every pair and adds one day of counts at a time
(:meth:`DecayState.update`): the cost of an update is proportional to the pairs with an event that
day, never to the history. Its decay-start rule: a pair's phase starts on the day of its highest
daily count so far (a strictly higher count restarts the phase), the streaming form of "decay from
the peak"; :meth:`DecayState.lam` equals the batch fit from the same starts.

The statistics are what a SQL engine computes in one ``GROUP BY`` (see :mod:`decaylib.data.engine`
where installed), so the same λ comes out of DuckDB or Spark without a dense panel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from decaylib.decay import evidence as _ev
from decaylib.decay.evidence import EvidenceRules
from decaylib.decay.rate import _with_uncertainty
from decaylib.schema import PAIR_COLS

__all__ = ['STATS_COLUMNS', 'peak_starts', 'phase_stats', 'lambda_from_stats', 'DecayState']

#: Columns of a statistics table (one row per pair).
STATS_COLUMNS = ("user_id", "category", "t0", "t_last", "Y", "S", "active_days", "first_event", "last_event")


_SERIES_EPS = 3e-3  # |n x| below which the moments use their series expansion (no cancellation)


def _check_counts(daily: pd.DataFrame, count_col: str) -> None:
    if not isinstance(daily, pd.DataFrame):
        raise TypeError(f"daily_counts must be a DataFrame, got {type(daily).__name__}")
    missing = [c for c in (*PAIR_COLS, "day", count_col) if c not in daily.columns]
    if missing:
        raise ValueError(f"daily_counts is missing column(s) {missing}; it has {list(daily.columns)}")
    for c in (*PAIR_COLS, "day"):
        if not pd.api.types.is_integer_dtype(daily[c]):
            raise TypeError(f"daily_counts[{c!r}] must hold integers, got {daily[c].dtype}")
    y = daily[count_col].to_numpy(dtype=float)
    if not np.all(np.isfinite(y)) or np.any(y < 0):
        raise ValueError(f"daily_counts[{count_col!r}] must be finite and >= 0")
    if daily.duplicated([*PAIR_COLS, "day"]).any():
        raise ValueError("daily_counts has repeated (user_id, category, day) rows; sum them first")


def peak_starts(daily_counts: pd.DataFrame, *, count_col: str = "count") -> pd.DataFrame:
    """Each pair's decay start: the day of its highest daily count (the earliest such day).

    Notebook 09.
    """
    _check_counts(daily_counts, count_col)
    d = daily_counts.loc[daily_counts[count_col].to_numpy() > 0, [*PAIR_COLS, "day", count_col]]
    d = d.sort_values([*PAIR_COLS, count_col, "day"], ascending=[True, True, False, True], kind="stable")
    return d.drop_duplicates(list(PAIR_COLS))[[*PAIR_COLS, "day"]].rename(columns={"day": "t0"}).reset_index(drop=True)


def phase_stats(daily_counts: pd.DataFrame, starts: pd.DataFrame, *, t_last=None, count_col: str = "count",
                outage_days=()) -> pd.DataFrame:
    """Statistics of each pair's decay phase ``[t0, t_last]`` from sparse daily counts.

    ``daily_counts``: ``user_id, category, day`` and ``count_col`` (only days with events need a
    row); ``starts``: ``user_id, category, t0``; ``t_last``: the last day of every phase (an int,
    or a frame ``user_id, category, t_last``; default: the last day of ``daily_counts``).
    ``outage_days``: days without information; their counts are ignored. Returns one row per pair
    of ``starts`` with :data:`STATS_COLUMNS` (``first_event``/``last_event`` NaN without an event).

    Notebook 09.
    """
    _check_counts(daily_counts, count_col)
    for c in (*PAIR_COLS, "t0"):
        if c not in starts.columns:
            raise ValueError(f"starts is missing column {c!r}")
    st = starts[[*PAIR_COLS, "t0"]].drop_duplicates(list(PAIR_COLS)).sort_values(list(PAIR_COLS)).reset_index(drop=True)
    if t_last is None:
        t_last = int(daily_counts["day"].max())
    if isinstance(t_last, pd.DataFrame):
        st = st.merge(t_last[[*PAIR_COLS, "t_last"]], on=list(PAIR_COLS), how="left")
        if st["t_last"].isna().any():
            raise ValueError("t_last has no row for some pairs of starts")
    else:
        st["t_last"] = int(t_last)
    st["t0"] = st["t0"].astype(np.int64)
    st["t_last"] = st["t_last"].astype(np.int64)
    d = daily_counts[[*PAIR_COLS, "day", count_col]].merge(st, on=list(PAIR_COLS), how="inner")
    day = d["day"].to_numpy()
    keep = (day >= d["t0"].to_numpy()) & (day <= d["t_last"].to_numpy())
    if len(outage_days):
        keep &= ~np.isin(day, np.asarray(outage_days))
    d = d.loc[keep & (d[count_col].to_numpy() > 0)]
    y = d[count_col].to_numpy(dtype=float)
    t = (d["day"] - d["t0"]).to_numpy(dtype=float)
    g = pd.MultiIndex.from_frame(st[list(PAIR_COLS)]).get_indexer(pd.MultiIndex.from_frame(d[list(PAIR_COLS)]))
    G = len(st)
    out = st.copy()
    out["Y"] = np.bincount(g, weights=y, minlength=G)
    out["S"] = np.bincount(g, weights=t * y, minlength=G)
    out["active_days"] = np.bincount(g, minlength=G).astype(np.int64)
    first = np.full(G, np.inf)
    last = np.full(G, -np.inf)
    np.minimum.at(first, g, d["day"].to_numpy(dtype=float))
    np.maximum.at(last, g, d["day"].to_numpy(dtype=float))
    out["first_event"] = np.where(np.isfinite(first), first, np.nan)
    out["last_event"] = np.where(np.isfinite(last), last, np.nan)
    return out[list(STATS_COLUMNS)]


# --------------------------------------------------------------------------------------------
# Moments of t under weights e^{x t} on the observed days of [0, n-1]
# --------------------------------------------------------------------------------------------
def _full_moments(x, n):
    """log Σ e^{xt}, mean and variance of t over t = 0..n-1 (weights e^{xt}), any sign of x, stable."""
    x = np.asarray(x, dtype=float)
    n = np.asarray(n, dtype=float)
    nx = n * x
    small = np.abs(nx) < _SERIES_EPS
    xs = np.where(small, 1.0, x)  # placeholders where the series is used
    # log-sum: shift by the largest term
    pos = xs > 0
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        log_s = np.where(pos, (n - 1) * xs + np.log(-np.expm1(-n * xs)) - np.log(-np.expm1(-xs)),
                         np.log(-np.expm1(n * xs)) - np.log(-np.expm1(xs)))
        # mean = n/(1-e^{-nx}) - 1/(1-e^{-x}); var = 1/(4 sinh^2(x/2)) - n^2/(4 sinh^2(nx/2))
        mean = n / (-np.expm1(-n * xs)) - 1.0 / (-np.expm1(-xs))
        var = 0.25 / np.sinh(xs / 2.0) ** 2 - 0.25 * n ** 2 / np.sinh(n * xs / 2.0) ** 2
    xm = np.where(small, x, 0.0)
    log_s_ser = np.log(n) + xm * (n - 1) / 2.0 + xm ** 2 * (n ** 2 - 1) / 24.0
    mean_ser = (n - 1) / 2.0 + xm * (n ** 2 - 1) / 12.0 - xm ** 3 * (n ** 4 - 1) / 720.0
    var_ser = (n ** 2 - 1) / 12.0 - xm ** 2 * (n ** 4 - 1) / 240.0
    # far tails: mean/var limits (a point mass at an end) when the closed form loses everything
    return (np.where(small, log_s_ser, log_s), np.where(small, mean_ser, mean),
            np.where(small, var_ser, np.maximum(var, 0.0)))


class _Moments:
    """Observed-day moments of t for every pair, given x (= -λ) per pair."""

    def __init__(self, n, gap_code, gap_t, G):
        self.n, self.gap_code, self.gap_t, self.G = n, gap_code, gap_t, G

    def __call__(self, x, idx=None):
        """Moments at ``x`` for every pair, or (``idx``: sorted positions) for those pairs only."""
        if idx is None:
            n, gc, gt, G = self.n, self.gap_code, self.gap_t, self.G
        else:
            n, G = self.n[idx], len(idx)
            pos = np.full(self.G, -1, dtype=np.int64)
            pos[idx] = np.arange(G)
            sel = pos[self.gap_code] >= 0 if len(self.gap_code) else np.zeros(0, bool)
            gc, gt = pos[self.gap_code[sel]], self.gap_t[sel]
        log_s, mean, var = _full_moments(x, n)
        if len(gc) == 0:
            return log_s, mean, var
        w = np.exp(x[gc] * gt - log_s[gc])
        w0 = np.bincount(gc, weights=w, minlength=G)
        w1 = np.bincount(gc, weights=w * gt, minlength=G)
        w2 = np.bincount(gc, weights=w * gt ** 2, minlength=G)
        frac = np.maximum(1.0 - w0, 1e-300)
        m1 = (mean - w1) / frac
        m2 = (var + mean ** 2 - w2) / frac
        return log_s + np.log(frac), m1, np.maximum(m2 - m1 ** 2, 0.0)


def lambda_from_stats(stats: pd.DataFrame, outage_days=(), *, rules: EvidenceRules | None = None, min_days: int = 3,
                      max_iter: int = 100, level: float | None = None) -> pd.DataFrame:
    """Poisson maximum-likelihood λ of every pair from its statistics alone.

    Returns the table of :func:`decaylib.decay.rate.fit_poisson_mle` (``user_id, category, lam_hat``, the
    uncertainty columns with the profile-likelihood interval, ``log_a, n_days, total_count,
    n_active_days, iterations, converged, reason``) with the same λ, standard errors and reasons
    on the same data; the work per pair does not depend on the length of its phase. The MLE
    solves :math:`E_\\lambda[t] = S/Y` (the weighted mean day under weights :math:`e^{-\\lambda t}`
    on the observed days equals the count-weighted mean day) by Newton's method inside a bracket.

    Notebook 09.
    """
    from scipy.stats import chi2

    missing = [c for c in STATS_COLUMNS if c not in stats.columns]
    if missing:
        raise ValueError(f"stats is missing column(s) {missing} (use phase_stats)")
    if min_days < 2:
        raise ValueError("min_days must be >= 2")
    rules = _ev.resolve_rules(rules)
    level = rules.interval_level if level is None else float(level)
    G = len(stats)
    t0 = stats["t0"].to_numpy(dtype=np.int64)
    tl = stats["t_last"].to_numpy(dtype=np.int64)
    if np.any(tl < t0):
        raise ValueError("stats has t_last < t0")
    Y = stats["Y"].to_numpy(dtype=float)
    S = stats["S"].to_numpy(dtype=float)
    active = stats["active_days"].to_numpy(dtype=np.int64)
    n_range = (tl - t0 + 1).astype(float)
    outs = np.unique(np.asarray(list(outage_days), dtype=np.int64))
    gc, gt = [], []
    for o in outs:  # outage days: few
        g = np.flatnonzero((t0 <= o) & (o <= tl))
        gc.append(g)
        gt.append((o - t0[g]).astype(float))
    gap_code = np.concatenate(gc).astype(np.int64) if gc else np.zeros(0, np.int64)
    gap_t = np.concatenate(gt) if gt else np.zeros(0)
    n_obs = n_range - np.bincount(gap_code, minlength=G)
    # first / last observed day of each phase (t units)
    tmin_obs = np.zeros(G)
    tmax_obs = n_range - 1.0
    if len(outs):
        for _ in range(len(outs)):  # walk past outage days at either end
            at_lo = np.zeros(G, bool)
            at_hi = np.zeros(G, bool)
            at_lo[gap_code[gap_t == tmin_obs[gap_code]]] = True
            at_hi[gap_code[gap_t == tmax_obs[gap_code]]] = True
            if not (at_lo.any() or at_hi.any()):
                break
            tmin_obs = np.where(at_lo, tmin_obs + 1, tmin_obs)
            tmax_obs = np.where(at_hi, tmax_obs - 1, tmax_obs)
    fe = stats["first_event"].to_numpy(dtype=float) - t0
    le = stats["last_event"].to_numpy(dtype=float) - t0
    with np.errstate(invalid="ignore"):
        reason = _ev.first_reason(G, [
            (n_obs <= 0, "no_observed_days"),
            (Y <= 0, "all_zero"),
            (n_obs < min_days, "too_few_days"),
            (_ev.insufficient_mask(Y, active, rules), "insufficient_data"),
            (~((le > tmin_obs) & (fe < tmax_obs)), "mle_not_finite"),
        ])
    fit = reason == "ok"
    mom = _Moments(n_range, gap_code, gap_t, G)
    target = np.where(fit, S / np.where(Y > 0, Y, 1.0), 0.0)
    # Newton on g(x) = mean(x) - target (increasing in x), safeguarded by a bracket [lo, hi]
    x = np.zeros(G)
    lo = np.full(G, -np.inf)
    hi = np.full(G, np.inf)
    iterations = np.zeros(G, dtype=np.int64)
    converged = ~fit
    for _ in range(max_iter):
        todo = ~converged
        if not todo.any():
            break
        idx = np.flatnonzero(todo)
        m = np.zeros(G)
        v = np.ones(G)
        _, m[idx], v[idx] = mom(x[idx], idx)
        gval = np.where(todo, m - target, 0.0)
        lo = np.where(todo & (gval < 0), x, lo)
        hi = np.where(todo & (gval > 0), x, hi)
        with np.errstate(invalid="ignore", divide="ignore"):
            step = -gval / v
        new = x + np.where(np.isfinite(step), step, 0.0)
        inside = (new > lo) & (new < hi)
        both = np.isfinite(lo) & np.isfinite(hi)
        with np.errstate(invalid="ignore"):
            bis = np.where(both, 0.5 * (np.where(both, lo, 0.0) + np.where(both, hi, 0.0)),
                           np.where(np.isfinite(lo), x + np.maximum(1.0, np.abs(x)), x - np.maximum(1.0, np.abs(x))))
        new = np.where(inside, new, bis)
        iterations[todo] += 1
        done = todo & ((np.abs(new - x) <= 1e-12 * (1.0 + np.abs(x))) | (np.abs(gval) <= 1e-13 * (1.0 + target)))
        x = np.where(todo, new, x)
        converged |= done
    reason = np.where(fit & ~converged, "not_converged", reason)
    ok = reason == "ok"
    log_s, m, v = mom(x)
    with np.errstate(invalid="ignore", divide="ignore"):
        se = 1.0 / np.sqrt(Y * v)
    # profile-likelihood interval: D(x) = 2(l(x_hat) - l(x)) = q on both sides
    q = float(chi2.ppf(level, 1))
    l_hat = x * S - Y * log_s

    def dev(xx, idx):
        ls, mm, _ = mom(xx[idx], idx)
        d = np.full(G, np.inf)
        dd = np.zeros(G)
        d[idx] = 2.0 * (l_hat[idx] - (xx[idx] * S[idx] - Y[idx] * ls))
        dd[idx] = 2.0 * (Y[idx] * mm - S[idx])
        return d, dd

    bounds = {}
    z = float(np.sqrt(q))
    base = np.where(ok & np.isfinite(se) & (se > 0), 2.0 * z * se, 1e-3 * (1.0 + np.abs(x)))
    for sign in (-1.0, 1.0):
        stp = base.copy()
        found = ~ok
        for _ in range(60):
            d, _ = dev(x + sign * stp, np.flatnonzero(~found))
            found |= d >= q
            if found.all():
                break
            stp = np.where(found, stp, 2.0 * stp)
        inner, outer = x.copy(), x + sign * stp  # D(inner) < q <= D(outer)
        xb = outer.copy()
        todo = found & ok
        for _ in range(100):
            if not todo.any():
                break
            d, dd = dev(xb, np.flatnonzero(todo))
            below = d < q
            inner = np.where(todo & below, xb, inner)
            outer = np.where(todo & ~below, xb, outer)
            with np.errstate(invalid="ignore", divide="ignore"):
                nxt = xb - (d - q) / dd
            lo_b, hi_b = np.minimum(inner, outer), np.maximum(inner, outer)
            nxt = np.where(np.isfinite(nxt) & (nxt > lo_b) & (nxt < hi_b), nxt, 0.5 * (inner + outer))
            fin = np.abs(nxt - xb) <= 1e-13 * (1.0 + np.abs(xb))
            xb = np.where(todo, nxt, xb)
            todo &= ~fin
        bounds[sign] = np.where(ok, np.where(found, xb, sign * np.inf), np.nan)
    lam = -x
    out = stats[list(PAIR_COLS)].copy().reset_index(drop=True)
    out["lam_hat"] = np.where(ok, lam, np.nan)
    out = _with_uncertainty(out, lam, se, ok, rules, -bounds[1.0], -bounds[-1.0])
    with np.errstate(divide="ignore", invalid="ignore"):
        out["log_a"] = np.where(ok, np.log(Y) - log_s, np.nan)
    out["n_days"] = n_obs.astype(np.int64)
    out["total_count"] = Y
    out["n_active_days"] = active
    out["iterations"] = iterations
    out["converged"] = converged & fit
    out["reason"] = reason.astype(str)
    return out


# --------------------------------------------------------------------------------------------
# Streaming
# --------------------------------------------------------------------------------------------
class DecayState:
    """Sufficient statistics of every pair's decay phase, updated one day at a time.

    Pairs are integer codes ``0 .. n-1`` (grown as new codes appear; map your ids once, e.g. with
    ``pd.MultiIndex.get_indexer``). A pair's phase starts on the day of its highest daily count so
    far; a strictly higher count restarts it there. ``update(day, codes, counts)`` costs time
    proportional to ``len(codes)``; days must come in increasing order; a day can be marked an
    outage (``outage=True``: its counts are ignored and it carries no information).

    Notebook 09.
    """

    def __init__(self, capacity: int = 0):
        self.keys = None  # optional: user_id, category of each code (set by replay)
        self.n = 0
        self.day = None
        self.outage_days: list[int] = []
        self._alloc(max(int(capacity), 16))

    def _alloc(self, cap):
        old = getattr(self, "_cap", 0)
        fields = {"t0": np.int64, "Y": float, "S": float, "active": np.int64, "peak": float, "first": float,
                  "last": float, "seen": bool}
        for f, dt in fields.items():
            arr = np.zeros(cap, dtype=dt)
            if f in ("first", "last"):
                arr[:] = np.nan
            if old:
                arr[:old] = getattr(self, "_" + f)[:old]
            setattr(self, "_" + f, arr)
        self._cap = cap

    def update(self, day: int, codes, counts, *, outage: bool = False) -> None:
        """Add one day's counts (``codes``: pair codes, unique; ``counts``: their counts, > 0 or 0)."""
        day = int(day)
        if self.day is not None and day <= self.day:
            raise ValueError(f"days must increase: got {day} after {self.day}")
        self.day = day
        if outage:
            self.outage_days.append(day)
            return
        codes = np.asarray(codes, dtype=np.int64)
        y = np.asarray(counts, dtype=float)
        if codes.shape != y.shape:
            raise ValueError("codes and counts must have the same length")
        if len(codes) == 0:
            return
        if codes.min() < 0:
            raise ValueError("pair codes must be >= 0")
        if not np.all(np.isfinite(y)) or np.any(y < 0):
            raise ValueError("counts must be finite and >= 0")
        keep = y > 0
        codes, y = codes[keep], y[keep]
        if len(codes) == 0:
            return
        top = int(codes.max()) + 1
        if top > self._cap:
            self._alloc(max(top, 2 * self._cap))
        self.n = max(self.n, top)
        new_peak = ~self._seen[codes] | (y > self._peak[codes])
        # restart the phase at a new maximum
        c = codes[new_peak]
        self._t0[c] = day
        self._Y[c] = 0.0
        self._S[c] = 0.0
        self._active[c] = 0
        self._peak[c] = y[new_peak]
        self._first[c] = np.nan
        self._seen[c] = True
        self._Y[codes] += y
        self._S[codes] += (day - self._t0[codes]) * y
        self._active[codes] += 1
        self._first[codes] = np.where(np.isnan(self._first[codes]), day, self._first[codes])
        self._last[codes] = day

    @classmethod
    def replay(cls, daily_counts: pd.DataFrame, *, count_col: str = "count", outage_days=(), last_day: int | None = None):
        """Feed a table of daily counts to a new state day by day, as a live system would see it.

        ``daily_counts``: ``user_id, category, day, count_col``. Pairs are coded in order of
        appearance (``state.keys`` maps codes back to ``user_id, category``). Returns the state.
        """
        _check_counts(daily_counts, count_col)
        d = daily_counts.loc[daily_counts[count_col].to_numpy() > 0].sort_values("day", kind="stable")
        keys = d[list(PAIR_COLS)].drop_duplicates().reset_index(drop=True)
        code = pd.MultiIndex.from_frame(keys).get_indexer(pd.MultiIndex.from_frame(d[list(PAIR_COLS)]))
        state = cls(len(keys))
        days = d["day"].to_numpy()
        y = d[count_col].to_numpy(dtype=float)
        bounds = np.searchsorted(days, np.arange(int(days.min()), int(days.max()) + 2))
        outs = set(int(o) for o in outage_days)
        end = int(days.max()) if last_day is None else int(last_day)
        for i, day in enumerate(range(int(days.min()), end + 1)):
            lo, hi = (bounds[i], bounds[i + 1]) if i + 1 < len(bounds) else (len(days), len(days))
            state.update(day, code[lo:hi], y[lo:hi], outage=day in outs)
        state.keys = keys
        return state

    def stats(self) -> pd.DataFrame:
        """The statistics table of the pairs seen so far, sorted (user_id = the code and category = 0 unless ``keys`` maps codes to pairs)."""
        idx = np.flatnonzero(self._seen[: self.n])
        if self.keys is not None:
            uid, cat = self.keys["user_id"].to_numpy()[idx], self.keys["category"].to_numpy()[idx]
        else:
            uid, cat = idx.astype(np.int64), np.zeros(len(idx), np.int64)
        out = pd.DataFrame({"user_id": uid, "category": cat,
                             "t0": self._t0[idx], "t_last": np.full(len(idx), self.day, dtype=np.int64),
                             "Y": self._Y[idx], "S": self._S[idx], "active_days": self._active[idx],
                             "first_event": self._first[idx], "last_event": self._last[idx]})
        return out.sort_values(list(PAIR_COLS), ignore_index=True)

    def lam(self, **kw) -> pd.DataFrame:
        """λ of every pair seen so far (:func:`lambda_from_stats` on :meth:`stats`)."""
        if self.day is None or not self._seen[: self.n].any():
            raise ValueError("no event has been added yet")
        return lambda_from_stats(self.stats(), self.outage_days, **kw)
