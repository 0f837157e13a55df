r"""Empirical-Bayes (pooled) decay rates: one population prior, a posterior λ for every pair.

A pair with three events in its decay phase says little about its own λ: the best possible
relative error is well above 100% (notebook 08). A single global half-life (SAR) ignores that
users differ. Between the two sits *pooling*: learn from all pairs what decay rates look like,
then let each pair's own events move its estimate away from the population as far as they can.

The model (for one pair, decay phase days :math:`t = 0, 1, \dots` from its decay start)

.. math::

    y_t \sim \text{Poisson}\big(A\, e_t(\lambda)\big),\qquad
    e_t(\lambda) = \rho + (1-\rho)\, e^{-\lambda t},\qquad
    A \sim \text{Gamma}(\alpha, \beta),\qquad \log\lambda \sim \pi,

* :math:`A` is the pair's level at the start of the decay (expected count on day 0); its Gamma
  prior is conjugate, so it is integrated out exactly:
  :math:`p(y\mid\lambda) \propto \beta^\alpha\,\Gamma(Y+\alpha)\,/\,\big(\Gamma(\alpha)\,(M(\lambda)+\beta)^{Y+\alpha}\big)
  \cdot \prod_t e_t(\lambda)^{y_t}` with :math:`Y=\sum y_t` and :math:`M(\lambda)=\sum_t e_t(\lambda)`
  over observed days. With :math:`\rho = 0` the last factor is :math:`e^{-\lambda \sum_t t y_t}`:
  the pair enters only through three sufficient statistics and a geometric sum, so every pair and
  every grid value of λ is evaluated at once without touching the daily rows again;
* :math:`\pi` is the population distribution of :math:`\log\lambda`, *nonparametric*: weights on
  a grid of log λ (half-lives from hours to years) fitted by maximum marginal likelihood with
  EM plus a light smoothing step (EMS, Silverman et al. 1990). It takes whatever shape the data
  have (the simulator's half-lives are log-uniform, real ones may be bimodal) instead of forcing
  a normal or Gamma shape;
* :math:`\rho` is an optional *floor*: the share of the peak level that never decays (repeat
  buyers: :math:`I(t) = b + I_0 e^{-\lambda t}` with :math:`b = \rho\,(b + I_0)`), one value
  pooled over all pairs, chosen on a grid by marginal likelihood and kept above 0 only when the
  likelihood-ratio test says the data support it (:func:`fit_prior` with ``floor=True``).

The hyperparameters (:math:`\pi, \alpha, \beta, \rho`) are fitted on at most ``max_fit_pairs``
pairs drawn with a fixed seed (thousands of pairs pin down a handful of population numbers); the
posteriors are then computed for every pair on a fine grid centred on each pair's own posterior,
so that pairs with plenty of events are not rounded to a coarse grid. Everything is vectorized
(no optimizer call per pair).

Functions: :func:`fit_prior` (the population), :func:`shrunk_lambda` (posterior λ per pair with
a credible interval, the same columns as the other λ tables of :mod:`decaylib.decay.rate`),
:func:`posterior_expected_sum` (posterior mean of the expected count over future days, used by
:func:`decaylib.decay.counts.forecast_counts`).

What the fit says about itself
------------------------------
* **Prior-only pairs.** Every pair with an observed day gets a posterior, but for a pair with one
  or two events that posterior is the population's prior, nearly untouched: on a sparse log one
  pooled value is then shared by half the pairs. The share of the estimate that is the pair's own
  is ``data_weight`` :math:`= 1 - \operatorname{Var}(\log\lambda \mid y) / \operatorname{Var}_\pi(\log\lambda)`,
  clipped to [0, 1]: how much the pair's events shrank the prior's variance of log λ (the
  information ratio). It is 0 for a pair whose data do not depend on λ (no day after its
  first one, the posterior *is* the prior) and close to 1 for a pair with a long, clear decay (a
  pair with 200 events over 30 days: 0.98). :func:`shrunk_lambda` gives the reason
  ``"prior_only"`` (not ``"ok"``) where ``data_weight < prior_only_share``, default
  :data:`PRIOR_ONLY_SHARE` = 0.2: the pair's events narrowed the population's spread of log λ by
  less than a fifth of its variance (its posterior sd is above ~89% of the population's). The
  values are kept (the pooled λ *is* the best estimate, and its interval is the population's,
  honest about it), but they describe the population, not the pair. The share measures how much
  the posterior narrowed, not how far it moved: a pair with one event and then four empty days
  moves its median half-life a little (13.4 to 9.7 days, in a population spread over 3.6 to 56
  days) without narrowing it, and is ``"prior_only"`` too.
* **EM convergence.** :func:`fit_prior` stops after ``max_iter`` EM iterations; when the relative
  change of the marginal log-likelihood :math:`|\ell_k - \ell_{k-1}| / (1 + |\ell_k|)` is still
  above ``tol`` it emits a :class:`ConvergenceWarning` (a :class:`~decaylib.checks.DataWarning`)
  with the iterations, that change and ``tol``; ``converged``, ``iterations`` (alias ``n_iter``)
  and ``rel_change`` are recorded on the :class:`DecayPrior` and shown by its ``describe()``.
* **Grid edges.** When more than :data:`EDGE_SHARE` (5%) of the prior's weight sits on the first
  or the last two points of its grid, the population reaches beyond the grid (a 3-hour half-life
  on daily data piles on 0.1 day, the fastest point of :data:`LOG_LAM_RANGE`). :func:`fit_prior`
  then refits once on a grid extended on that side by up to :data:`WIDEN_LOG` (5) units of log λ,
  with the same spacing, never beyond the hard limits :data:`LOG_LAM_LIMITS`: half-lives from
  1 minute to 100 years (36,525 days); from the default grid that reaches both limits (to within
  one grid step). The widened side is still *on the edge* when its two outermost points hold
  more than :data:`EDGE_SHARE`, or when the added points hold more than :data:`EDGE_SHARE` spread
  evenly out to the new edge (its two outermost points carry at least half the added points'
  mean weight): where the likelihood is flat, the smoothing spreads the weight evenly over the
  added points and the two outermost alone would understate it. Then :func:`fit_prior` emits a
  :class:`~decaylib.checks.DataWarning` (the weight on the edge and on the added points, the
  edge's half-life in days) and records ``at_edge=True``: the data cannot tell those pairs' λ
  apart from the grid's end (daily counts do not resolve half-lives much below a few hours, nor a
  log of weeks half-lives of decades), so their posteriors are bounded by the grid, not measured.
  Nothing is clipped silently.
  A fit that converges inside its grid is unchanged by these checks, bit for bit.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import digamma, gammaln, polygamma

from decaylib.checks import DataWarning, check_int
from decaylib.decay.evidence import UNCERTAINTY_COLS, EvidenceRules, resolve_rules
from decaylib.decay.evidence import EvidenceRules as _Rules
from decaylib.decay.rate import _prepare_long, cramer_rao_table, fit_poisson_mle
from decaylib.schema import PAIR_COLS

__all__ = ['LOG_LAM_RANGE', 'LOG_LAM_LIMITS', 'WIDEN_LOG', 'EDGE_SHARE', 'PRIOR_ONLY_SHARE', 'FLOOR_GRID', 'ConvergenceWarning',
           'PairStats', 'pair_stats', 'DecayPrior', 'fit_prior', 'shrunk_lambda', 'posterior_expected_sum', 'EVIDENCE_BANDS',
           'thin_phase', 'compare_with_truth']

LN2 = float(np.log(2.0))

#: log λ grid range: half-lives from 0.1 day to 10 years.
LOG_LAM_RANGE: tuple[float, float] = (float(np.log(LN2 / 3650.0)), float(np.log(LN2 / 0.1)))

#: Hard outer limits of log λ for a widened grid: half-lives from 1 minute (1/1440 day) to 100 years (36,525 days).
LOG_LAM_LIMITS: tuple[float, float] = (float(np.log(LN2 / 36525.0)), float(np.log(LN2 * 1440.0)))

#: A grid is widened on a side by at most this many units of log λ (a factor e^5 ≈ 148 in λ), within
#: :data:`LOG_LAM_LIMITS`.
WIDEN_LOG: float = 5.0

#: A prior with more than this share of its weight on the first (or last) two grid points is on the edge.
EDGE_SHARE: float = 0.05

#: ``shrunk_lambda`` reason ``"prior_only"`` where ``data_weight`` (1 - posterior / prior variance of log λ)
#: is below this share: the pair's own events narrowed the population prior by less than that.
PRIOR_ONLY_SHARE: float = 0.2

#: Floor shares ρ tried by ``fit_prior(floor=True)``.
FLOOR_GRID: tuple[float, ...] = (0.0, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5)

#: After widening, added points whose two outermost carry at least this share of their mean weight
#: (a prior not falling off toward the new edge) count as the edge too.
_FLAT_EDGE = 0.5

#: Half the 95% χ²(1) quantile: the log-likelihood gain a floor must bring to be kept.
_FLOOR_LR = 1.92


class ConvergenceWarning(DataWarning):
    """The EM of :func:`fit_prior` stopped at ``max_iter`` before its tolerance was met; the message
    gives the iterations, the last relative change of the marginal log-likelihood and ``tol``.

    Notebooks 04 and 08.
    """


# --------------------------------------------------------------------------------------------
# Per-pair sufficient statistics
# --------------------------------------------------------------------------------------------
@dataclass
class PairStats:
    """What the model needs of each pair's decay phase (one entry per pair, sorted by the pair columns).

    ``Y``: total count on observed days; ``S``: :math:`\\sum t\\,y_t`; ``tmin``, ``tmax``: first and
    last day of the phase (observed or not); ``n_obs``: observed days; the rows of unobserved or
    absent days inside ``[tmin, tmax]`` are kept in ``gap_code``/``gap_t`` (usually few), the rows
    with a positive count in ``pos_code``/``pos_t``/``pos_y`` (for the floor term).

    Notebook 08.
    """

    keys: pd.DataFrame
    Y: np.ndarray
    S: np.ndarray
    tmin: np.ndarray
    tmax: np.ndarray
    n_obs: np.ndarray
    n_active: np.ndarray
    gap_code: np.ndarray
    gap_t: np.ndarray
    pos_code: np.ndarray
    pos_t: np.ndarray
    pos_y: np.ndarray

    @property
    def n_pairs(self) -> int:
        return len(self.Y)

    def subset(self, idx: np.ndarray) -> "PairStats":
        """The pairs ``idx`` (sorted integer positions), renumbered."""
        idx = np.asarray(idx, dtype=np.int64)
        new = np.full(self.n_pairs, -1, dtype=np.int64)
        new[idx] = np.arange(len(idx))
        g = new[self.gap_code]
        p = new[self.pos_code]
        return PairStats(self.keys.iloc[idx].reset_index(drop=True), self.Y[idx], self.S[idx], self.tmin[idx],
                         self.tmax[idx], self.n_obs[idx], self.n_active[idx], g[g >= 0], self.gap_t[g >= 0],
                         p[p >= 0], self.pos_t[p >= 0], self.pos_y[p >= 0])


def pair_stats(data: pd.DataFrame, *, pair_cols=PAIR_COLS, t_col: str = "t", count_col: str = "count",
               observed_col: str | None = "observed") -> PairStats:
    """Sufficient statistics of each pair's decay phase from a long table (see :func:`decaylib.decay.rate.decay_phase_table`).

    ``t`` must be whole days (the phase day index); one row per pair and day.

    Notebook 09.
    """

    codes, keys, t, y, obs = _prepare_long(data, pair_cols, t_col, count_col, observed_col)
    if len(keys) == 0:
        raise ValueError("data has no rows: no decay phase to fit")
    if np.any(t != np.round(t)):
        raise ValueError(f"data[{t_col!r}] must hold whole days (the day index of the decay phase)")
    G = len(keys)
    dup = pd.DataFrame({"c": codes, "t": t}).duplicated()
    if dup.any():
        raise ValueError(f"data has {int(dup.sum())} repeated (pair, {t_col}) rows; one row per pair and day")
    y = np.where(obs, y, 0.0)
    Y = np.bincount(codes, weights=y, minlength=G)
    S = np.bincount(codes, weights=y * t, minlength=G)
    n_obs = np.bincount(codes, weights=obs.astype(float), minlength=G)
    n_active = np.bincount(codes, weights=(y > 0).astype(float), minlength=G)
    tmin = np.full(G, np.inf)
    tmax = np.full(G, -np.inf)
    np.minimum.at(tmin, codes, t)
    np.maximum.at(tmax, codes, t)
    # days inside [tmin, tmax] that are not observed: unobserved rows, plus absent days
    n_rows = np.bincount(codes, minlength=G)
    gap_c = [codes[~obs]]
    gap_t = [t[~obs]]
    holes = np.flatnonzero(n_rows < (tmax - tmin + 1))
    if len(holes):  # rare: a phase with missing rows; enumerate its absent days
        present = set(zip(codes.tolist(), t.astype(np.int64).tolist()))
        miss = [(g, d) for g in holes for d in range(int(tmin[g]), int(tmax[g]) + 1) if (g, d) not in present]
        if miss:
            m = np.asarray(miss)
            gap_c.append(m[:, 0])
            gap_t.append(m[:, 1].astype(float))
    pos = obs & (y > 0)
    return PairStats(keys, Y, S, tmin, tmax, n_obs, n_active, np.concatenate(gap_c).astype(np.int64),
                     np.concatenate(gap_t).astype(float), codes[pos], t[pos], y[pos])


def _geom_sum(lam: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """:math:`\\sum_{t=a}^{b} e^{-\\lambda t}` for λ > 0 (broadcast: lam (G, K), a and b (G, 1))."""
    m = b - a + 1.0
    return np.exp(-lam * a) * np.expm1(-lam * m) / np.expm1(-lam)


def _kernel(st: PairStats, lam: np.ndarray, rho: float, idx: np.ndarray | None = None):
    """``(D, M)``, both (G, K): :math:`D = \\sum_t y_t \\log e_t(\\lambda)`, :math:`M = \\sum_{obs} e_t(\\lambda)`."""
    a, b = st.tmin[:, None], st.tmax[:, None]
    E = _geom_sum(lam, a, b)
    if len(st.gap_code):
        np.subtract.at(E, st.gap_code, np.exp(-lam[st.gap_code] * st.gap_t[:, None]))
    E = np.maximum(E, 0.0)
    M = rho * st.n_obs[:, None] + (1.0 - rho) * E
    if rho == 0.0:
        D = -lam * st.S[:, None]
    else:
        D = np.zeros_like(lam)
        if len(st.pos_code):
            term = st.pos_y[:, None] * np.log(rho + (1.0 - rho) * np.exp(-lam[st.pos_code] * st.pos_t[:, None]))
            np.add.at(D, st.pos_code, term)
    return D, M


def _loglik(D, M, Y, alpha, beta, log_mb=None):
    """Per pair and grid value: log p(y | λ) with A integrated out (constants in y dropped).
    ``log_mb``: ``log(M + beta)`` when the caller has it already."""
    if log_mb is None:
        log_mb = np.log(M + beta)
    return (D + gammaln(Y + alpha)[:, None] - gammaln(alpha) + alpha * np.log(beta)
            - (Y + alpha)[:, None] * log_mb)


def _normalize_rows(logw):
    mx = logw.max(axis=1, keepdims=True)
    w = np.exp(logw - mx)
    s = w.sum(axis=1, keepdims=True)
    return w / s, (mx[:, 0] + np.log(s[:, 0]))


def _gamma_mle(mean_a: float, mean_log_a: float, alpha0: float) -> float:
    """Gamma shape from E[A] and E[log A] (Minka's fixed point + Newton)."""
    s = np.log(mean_a) - mean_log_a
    if not np.isfinite(s) or s <= 1e-10:
        return 1e6
    a = alpha0 if np.isfinite(alpha0) and alpha0 > 0 else 0.5 / s
    for _ in range(50):
        g = np.log(a) - digamma(a) - s
        h = 1.0 / a - polygamma(1, a)
        new = a - g / h
        if not np.isfinite(new) or new <= 0:
            new = a / 2.0
        if abs(new - a) < 1e-10 * a:
            a = new
            break
        a = new
    return float(min(max(a, 1e-4), 1e6))


# --------------------------------------------------------------------------------------------
# The population prior
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)  # compared by identity: pandas compares attrs, which hold priors
class DecayPrior:
    """A fitted population: weights of log λ on a grid, the Gamma prior of the level, the floor share.

    ``grid`` holds log λ values, ``weights`` sum to 1. ``alpha``, ``beta``: Gamma shape and rate of
    the level :math:`A` (prior mean ``alpha / beta`` events on the first decay day). ``floor``:
    the pooled floor share ρ (0: pure decay). ``loglik``: the marginal log-likelihood of the fitting
    pairs; ``floor_loglik``: the same for every floor tried (``floor=True``).

    How the fit went (all with defaults, so that a hand-made prior needs none of them):
    ``iterations`` (also ``n_iter``): EM iterations of the final fit; ``converged``: whether the
    relative change of the marginal log-likelihood met ``tol`` (a :class:`ConvergenceWarning`
    otherwise); ``rel_change``: that last relative change; ``at_edge``: more than
    :data:`EDGE_SHARE` of the weight on the first or last two grid points even after widening the
    grid (a :class:`~decaylib.checks.DataWarning` said so). A widened grid reaches beyond
    :data:`LOG_LAM_RANGE` on the side it was widened.

    Notebook 08.
    """

    grid: np.ndarray
    weights: np.ndarray
    alpha: float
    beta: float
    floor: float = 0.0
    n_pairs: int = 0
    loglik: float = float("nan")
    iterations: int = 0
    converged: bool = False
    floor_loglik: dict = field(default_factory=dict)
    rel_change: float = float("nan")
    at_edge: bool = False

    @property
    def n_iter(self) -> int:
        """EM iterations of the final fit (the same as ``iterations``)."""
        return self.iterations

    def edge_weights(self) -> tuple[float, float]:
        """The prior's weight on its two slowest (smallest λ) and its two fastest grid points."""
        return float(self.weights[:2].sum()), float(self.weights[-2:].sum())

    def quantile(self, q) -> np.ndarray:
        """Quantiles of λ under the prior."""
        cdf = np.cumsum(self.weights)
        return np.exp(np.interp(np.asarray(q, dtype=float), cdf - self.weights / 2, self.grid))

    @property
    def lam_median(self) -> float:
        """The population's median λ: the best single global λ these data support."""
        return float(self.quantile(0.5))

    @property
    def half_life_median(self) -> float:
        return LN2 / self.lam_median

    def log_density(self, u: np.ndarray) -> np.ndarray:
        """log prior density of log λ at ``u`` (piecewise-linear interpolation of the log weights)."""
        step = self.grid[1] - self.grid[0]
        logw = np.log(np.maximum(self.weights, 1e-300)) - np.log(step)
        return np.interp(u, self.grid, logw, left=-np.inf, right=-np.inf)

    def describe(self) -> str:
        lo, med, hi = LN2 / self.quantile([0.95, 0.5, 0.05])
        floor = f"; floor {self.floor:.3f} of the peak level" if self.floor > 0 else "; no floor"
        if self.iterations == 0:
            em = "; not fitted by EM"
        elif self.converged:
            em = f"; EM converged in {self.iterations} iterations"
        else:
            em = (f"; EM NOT converged: stopped at {self.iterations} iterations, last relative change of the "
                  f"log-likelihood {self.rel_change:.2g}")
        edge = ""
        widened = self.grid[0] < LOG_LAM_RANGE[0] - 1e-9 or self.grid[-1] > LOG_LAM_RANGE[1] + 1e-9
        if widened or self.at_edge:
            edge = (f"; grid of half-lives {_fmt_half_life(LN2 / np.exp(self.grid[-1]))} to "
                    f"{_fmt_half_life(LN2 / np.exp(self.grid[0]))}" + (" (widened)" if widened else ""))
        if self.at_edge:
            slow, fast = self.edge_weights()
            edge += f", AT ITS EDGE: {slow:.1%} of the weight on the slowest two points, {fast:.1%} on the fastest two"
        return (f"population of {self.n_pairs:,} pairs: median half-life {med:.1f} days (90% of pairs between "
                f"{lo:.1f} and {hi:.1f}); level on the first decay day Gamma(shape {self.alpha:.2f}, mean "
                f"{self.alpha / self.beta:.2f}){floor}{em}{edge}")


def _fmt_half_life(days: float) -> str:
    """A half-life in days, with minutes, hours or years beside it where days read badly."""
    if days < 1.0 / 24.0:
        return f"{days:.3g} days ({days * 1440.0:.3g} minutes)"
    if days < 1.0:
        return f"{days:.3g} days ({days * 24.0:.3g} hours)"
    if days >= 730.0:
        return f"{days:,.0f} days ({days / 365.25:.3g} years)"
    return f"{days:.3g} days"


def _check_floor(floor):
    if isinstance(floor, bool):
        return None if floor else 0.0
    f = float(floor)
    if not 0.0 <= f < 1.0:
        raise ValueError(f"floor must be True, False or a share in [0, 1), got {floor!r}")
    return f


def _em(st: PairStats, grid: np.ndarray, rho: float, max_iter: int, tol: float, smooth: float, init=None):
    """EM-with-smoothing for the grid weights and the Gamma level prior, fixed floor ρ.

    ``init``: ``(weights, alpha, beta)`` to start from (a warm start), else a broad bell on the grid
    and the level's moments from the data. Returns ``(weights, alpha, beta, loglik, iterations,
    converged, rel_change)``, ``rel_change`` the last :math:`|\\ell_k - \\ell_{k-1}| / (1 + |\\ell_k|)`.
    """
    K = len(grid)
    lam = np.broadcast_to(np.exp(grid)[None, :], (st.n_pairs, K))
    D, M = _kernel(st, lam, rho)
    Y = st.Y
    if init is not None:
        weights, alpha, beta = np.asarray(init[0], dtype=float).copy(), float(init[1]), float(init[2])
    else:
        centre = np.log(LN2 / 14.0)
        weights = np.exp(-0.5 * ((grid - centre) / 1.5) ** 2)
        weights /= weights.sum()
        rate = max(float(np.mean(Y / np.maximum(st.n_obs, 1.0))), 1e-3)
        alpha = 1.0
        beta = alpha / (2.0 * rate)
    kern = np.array([smooth, 1.0 - 2.0 * smooth, smooth]) if smooth > 0 else None
    prev = -np.inf
    ll = -np.inf
    it = 0
    converged = False
    rel = float("inf")
    for it in range(1, max_iter + 1):
        mb = M + beta  # (pairs x grid), used three times below: computed once per iteration
        log_mb = np.log(mb)
        L = _loglik(D, M, Y, alpha, beta, log_mb)
        w, lse = _normalize_rows(L + np.log(np.maximum(weights, 1e-300))[None, :])
        ll = float(lse.sum())
        # M-step: grid weights (then a light smoothing), level prior from E[A], E[log A]
        weights = w.mean(axis=0)
        if kern is not None:
            weights = np.convolve(np.pad(weights, 1, mode="edge"), kern, mode="valid")
            weights /= weights.sum()
        post_a = (Y + alpha)[:, None] / mb
        mean_a = float((w * post_a).sum(axis=1).mean())
        mean_log_a = float((w * (digamma(Y + alpha)[:, None] - log_mb)).sum(axis=1).mean())
        alpha = _gamma_mle(mean_a, mean_log_a, alpha)
        beta = alpha / mean_a
        rel = abs(ll - prev) / (1.0 + abs(ll))
        if abs(ll - prev) <= tol * (1.0 + abs(ll)):
            converged = True
            break
        prev = ll
    return weights, alpha, beta, ll, it, converged, float(rel)


def fit_prior(
    data: pd.DataFrame | PairStats,
    *,
    floor: bool | float = False,
    pair_cols=PAIR_COLS,
    t_col: str = "t",
    count_col: str = "count",
    observed_col: str | None = "observed",
    grid_size: int = 64,
    max_fit_pairs: int = 20_000,
    seed: int = 0,
    max_iter: int = 300,
    tol: float = 1e-8,
    smooth: float = 0.05,
) -> DecayPrior:
    """Fit the population prior of λ (and of the level, and the floor) by maximum marginal likelihood.

    Parameters
    ----------
    data : DataFrame or PairStats
        Long decay-phase table (pair columns, ``t``, ``count``, ``observed``; see
        :func:`decaylib.decay.rate.decay_phase_table`) or its :func:`pair_stats`.
    floor : bool or float
        ``False`` (default): pure decay. ``True``: try the floor shares of :data:`FLOOR_GRID` and keep
        the best one if it beats the pure decay by the likelihood-ratio rule (gain > 1.92, the 95%
        χ²(1) point); the log-likelihood of each is in ``floor_loglik`` (from a scan on at most 5,000
        of the fitting pairs, warm-started floor after floor, scaled to all of them). A number: that
        floor share.
    grid_size : int
        Points of the log λ grid over :data:`LOG_LAM_RANGE`.
    max_fit_pairs, seed : int
        The prior is fitted on at most this many pairs, drawn with ``seed`` (all pairs when fewer).
    max_iter, tol, smooth : EM iterations, relative tolerance on the marginal log-likelihood, and
        the weight of each neighbour in the smoothing step (0: plain EM, the spiky NPMLE).

    Warnings
    --------
    :class:`ConvergenceWarning` when the final EM stops at ``max_iter`` with a relative change of
    the marginal log-likelihood still above ``tol`` (the prior's ``converged`` is then False).
    When more than :data:`EDGE_SHARE` of the weight sits on the first or last two grid points, the
    grid is widened on that side (up to :data:`WIDEN_LOG` units of log λ, within
    :data:`LOG_LAM_LIMITS`) and the prior refitted once, warm-started, with the chosen floor (the
    floor scan's ``floor_loglik`` stays that of the first grid); a
    :class:`~decaylib.checks.DataWarning` and ``at_edge=True`` if it is still on an edge. See the
    module docstring.

    Notebook 08.
    """
    if not isinstance(grid_size, (int, np.integer)) or grid_size < 8:
        raise ValueError(f"grid_size must be an integer >= 8, got {grid_size!r}")
    if not isinstance(max_fit_pairs, (int, np.integer)) or max_fit_pairs < 10:
        raise ValueError(f"max_fit_pairs must be an integer >= 10, got {max_fit_pairs!r}")
    if not 0.0 <= float(smooth) < 0.5:
        raise ValueError(f"smooth must be in [0, 0.5), got {smooth!r}")
    max_iter = check_int("max_iter", max_iter, minimum=1)
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.integer, np.floating)) or not 0.0 <= float(tol) < np.inf:
        raise ValueError(f"tol must be a finite number >= 0, got {tol!r}")
    fixed = _check_floor(floor)
    st = data if isinstance(data, PairStats) else pair_stats(data, pair_cols=pair_cols, t_col=t_col,
                                                           count_col=count_col, observed_col=observed_col)
    use = st.n_obs > 0
    if not use.any():
        raise ValueError("no pair has an observed day in its decay phase: nothing to learn a prior from")
    idx = np.flatnonzero(use)
    if len(idx) > max_fit_pairs:
        idx = np.sort(np.random.default_rng(seed).choice(idx, size=max_fit_pairs, replace=False))
    fit_st = st.subset(idx)
    grid = np.linspace(*LOG_LAM_RANGE, int(grid_size))
    floors = FLOOR_GRID if fixed is None else (fixed,)
    results = {floors[0]: _em(fit_st, grid, float(floors[0]), max_iter, tol, float(smooth))}
    if len(floors) > 1:
        # the scan: each floor warm-started from the previous one, on at most 5,000 of the pairs and
        # with a looser tolerance; the chosen floor is then refitted on all the fitting pairs
        scan_st = fit_st if fit_st.n_pairs <= 5000 else fit_st.subset(
            np.sort(np.random.default_rng(seed + 1).choice(fit_st.n_pairs, size=5000, replace=False)))
        prev = None
        scan = {}
        for rho in floors:
            r = _em(scan_st, grid, float(rho), max_iter, max(tol, 1e-6), float(smooth), init=prev)
            scan[rho] = r[3]
            prev = r[:3]
        scale = fit_st.n_pairs / scan_st.n_pairs  # log-likelihoods on the scale of all fitting pairs
        lls = {rho: v * scale for rho, v in scan.items()}
        cand = max(lls, key=lls.get)
        best = cand if (cand > 0 and lls[cand] - lls[floors[0]] > _FLOOR_LR) else floors[0]
        if best != floors[0]:
            results[best] = _em(fit_st, grid, float(best), max_iter, tol, float(smooth), init=results[floors[0]][:3])
    else:
        best = floors[0]
        lls = {best: results[best][3]}
    weights, alpha, beta, ll, it, conv, rel = results[best]
    on_edge = _on_edge(weights)
    added = (0, 0)
    if any(on_edge):
        # the population reaches beyond the grid: widen it on that side and refit once (warm start,
        # the new points continuing the edge's weight)
        wide, added = _widen(grid, *on_edge)
        if any(added):
            init = np.concatenate([np.full(added[0], weights[0]), weights, np.full(added[1], weights[-1])])
            weights, alpha, beta, ll, it, conv, rel = _em(fit_st, wide, float(best), max_iter, tol, float(smooth),
                                                          init=(init / init.sum(), alpha, beta))
            grid = wide
            on_edge = _on_edge(weights, added)
    if any(on_edge):
        warnings.warn(_edge_message(grid, weights, on_edge, added), DataWarning, stacklevel=2)
    if not conv:
        warnings.warn(f"fit_prior: the EM fit of the population prior of λ stopped at max_iter={max_iter} iterations "
                      f"without converging: the last relative change of the marginal log-likelihood was {rel:.3g}, "
                      f"above tol={float(tol):g} ({len(idx):,} pairs, floor {float(best):g}); the prior may still move: "
                      f"raise max_iter or loosen tol (prior.converged is False)", ConvergenceWarning, stacklevel=2)
    return DecayPrior(grid=grid, weights=weights, alpha=float(alpha), beta=float(beta), floor=float(best),
                      n_pairs=len(idx), loglik=float(ll), iterations=int(it), converged=bool(conv),
                      floor_loglik={float(k): float(v) for k, v in lls.items()}, rel_change=float(rel),
                      at_edge=bool(any(on_edge)))


def _on_edge(weights: np.ndarray, added: tuple[int, int] = (0, 0)) -> tuple[bool, bool]:
    """(slow edge, fast edge): more than :data:`EDGE_SHARE` of the weight on the first / last two grid points;
    on a side widened by ``added`` points also: more than :data:`EDGE_SHARE` on the added points, spread so
    evenly that the two outermost carry at least :data:`_FLAT_EDGE` of the added points' mean weight."""
    out = []
    for n, w in ((added[0], weights), (added[1], weights[::-1])):
        edge = float(w[:2].sum())
        hit = edge > EDGE_SHARE
        if not hit and n >= 2:
            zone = float(w[:n].sum())
            hit = zone > EDGE_SHARE and edge / 2.0 >= _FLAT_EDGE * zone / n
        out.append(bool(hit))
    return out[0], out[1]


def _widen(grid: np.ndarray, slow: bool, fast: bool) -> tuple[np.ndarray, tuple[int, int]]:
    """``grid`` extended with its own spacing by up to :data:`WIDEN_LOG` on the slow (low λ) and/or the
    fast side, never beyond :data:`LOG_LAM_LIMITS`; returns the new grid and the points added on each side."""
    step = float(grid[1] - grid[0])

    def n_points(room: float) -> int:
        return max(int(np.floor(min(WIDEN_LOG, room) / step + 1e-9)), 0)

    lo = n_points(grid[0] - LOG_LAM_LIMITS[0]) if slow else 0
    hi = n_points(LOG_LAM_LIMITS[1] - grid[-1]) if fast else 0
    wide = np.concatenate([grid[0] - step * np.arange(lo, 0, -1), grid, grid[-1] + step * np.arange(1, hi + 1)])
    return wide, (lo, hi)


def _edge_message(grid: np.ndarray, weights: np.ndarray, on_edge: tuple[bool, bool], added: tuple[int, int]) -> str:
    """The warning of a prior still on an edge of its grid: the weight there and the edge's half-life."""
    step = float(grid[1] - grid[0])
    parts = []
    for side, (name, limit, why) in enumerate((
            ("slowest", "100 years", "decay more slowly than decay phases this short can measure"),
            ("fastest", "1 minute", "decay faster than daily counts can tell apart"))):
        if not on_edge[side]:
            continue
        w = float(weights[:2].sum() if side == 0 else weights[-2:].sum())
        edge = float(grid[0] if side == 0 else grid[-1])
        n = added[side]
        if n:
            zone = float(weights[:n].sum() if side == 0 else weights[-n:].sum())
            how = (f"after widening the grid once by {n * step:.2f} units of log λ (hard limit: {limit}), which put "
                   f"{zone:.1%} of the weight on the {n} points it added, not falling off toward the new edge")
        elif (LOG_LAM_LIMITS[1] - edge if side else edge - LOG_LAM_LIMITS[0]) < step:
            how = f"and the grid already reaches the hard limit ({limit})"
        else:
            how = "after the grid was widened on its other side"
        parts.append(f"{w:.1%} of the population prior's weight sits on the two {name} points of its grid "
                     f"(edge half-life {_fmt_half_life(LN2 / np.exp(edge))}), {how}: those pairs {why}")
    return ("fit_prior: " + "; ".join(parts) + f" (more than EDGE_SHARE={EDGE_SHARE:.0%} on an edge); their posterior λ is "
            "bounded by the grid, not measured (prior.at_edge is True)")


# --------------------------------------------------------------------------------------------
# Posteriors
# --------------------------------------------------------------------------------------------
def _posterior_grid(st: PairStats, prior: DecayPrior, fine: int = 41, chunk: int = 50_000):
    """Per pair: a fine grid of log λ around its posterior, with normalized posterior weights.

    Two passes: the prior's grid gives each pair's posterior mean and sd of log λ; then a grid of
    ``fine`` points over mean ± 6 sd (at least ± 3 coarse steps, inside the prior's range) is
    weighted again. Returns ``(u, w, D, M)`` (all (G, fine)).
    """
    G = st.n_pairs
    grid = prior.grid
    step = grid[1] - grid[0]
    logpi = np.log(np.maximum(prior.weights, 1e-300))
    out_u = np.empty((G, fine))
    out_w = np.empty((G, fine))
    out_D = np.empty((G, fine))
    out_M = np.empty((G, fine))
    for s in range(0, G, chunk):
        idx = np.arange(s, min(G, s + chunk))
        sub = st.subset(idx) if (s > 0 or len(idx) < G) else st
        lam = np.broadcast_to(np.exp(grid)[None, :], (len(idx), len(grid)))
        D, M = _kernel(sub, lam, prior.floor)
        w, _ = _normalize_rows(_loglik(D, M, sub.Y, prior.alpha, prior.beta) + logpi[None, :])
        mu = (w * grid).sum(axis=1)
        sd = np.sqrt(np.maximum((w * grid ** 2).sum(axis=1) - mu ** 2, 0.0))
        half = np.maximum(6.0 * sd, 3.0 * step)
        lo = np.maximum(mu - half, grid[0])
        hi = np.minimum(mu + half, grid[-1])
        u = lo[:, None] + (hi - lo)[:, None] * np.linspace(0.0, 1.0, fine)[None, :]
        D, M = _kernel(sub, np.exp(u), prior.floor)
        # posterior on the fine grid: likelihood x prior density (uniform spacing within a pair)
        w, _ = _normalize_rows(_loglik(D, M, sub.Y, prior.alpha, prior.beta) + prior.log_density(u))
        out_u[idx], out_w[idx], out_D[idx], out_M[idx] = u, w, D, M
    return out_u, out_w, out_D, out_M


def _weighted_quantile(u, w, q):
    """Per-row quantile ``q`` of the discrete distribution (u, w) on sorted u (midpoint interpolation)."""
    cdf = np.cumsum(w, axis=1) - w / 2.0
    G = u.shape[0]
    j = np.argmax(cdf >= q, axis=1)
    j = np.where(cdf[np.arange(G), j] >= q, j, u.shape[1] - 1)
    j0 = np.maximum(j - 1, 0)
    c0, c1 = cdf[np.arange(G), j0], cdf[np.arange(G), j]
    f = np.where(c1 > c0, (q - c0) / np.where(c1 > c0, c1 - c0, 1.0), 0.0)
    f = np.clip(f, 0.0, 1.0)
    return u[np.arange(G), j0] + f * (u[np.arange(G), j] - u[np.arange(G), j0])


def shrunk_lambda(
    data: pd.DataFrame | PairStats,
    prior: DecayPrior | None = None,
    *,
    floor: bool | float = False,
    rules: EvidenceRules | None = None,
    pair_cols=PAIR_COLS,
    t_col: str = "t",
    count_col: str = "count",
    observed_col: str | None = "observed",
    seed: int = 0,
    prior_only_share: float = PRIOR_ONLY_SHARE,
) -> pd.DataFrame:
    """Posterior (empirical-Bayes) λ of every pair, with a credible interval.

    ``prior``: a :class:`DecayPrior`; ``None`` fits one on these data (:func:`fit_prior` with
    ``floor`` and ``seed``). The result has the columns of the other λ tables of
    :mod:`decaylib.decay.rate`: the pair columns, ``lam_hat`` (the posterior **median** of λ, so that
    ``half_life`` is the posterior median half-life too), ``se_lam`` (posterior sd), ``lam_lo``,
    ``lam_hi`` (equal-tailed credible interval at ``rules.interval_level``, default 90%),
    ``half_life, half_life_lo, half_life_hi``, then ``lam_mean`` (posterior mean), ``data_weight``
    (how far the pair's own events narrowed its prior: 1 - posterior variance / prior variance of
    log λ; about 0 means "like the population", 1 means the events alone decide),
    ``total_count``, ``n_days`` (observed), ``n_active_days`` and ``reason``: ``"no_observed_days"``
    for a pair without an observed day in its decay phase (NaN values); ``"prior_only"`` where
    ``data_weight < prior_only_share`` (default :data:`PRIOR_ONLY_SHARE` = 0.2: the pair's events
    narrowed the prior's variance of log λ by less than a fifth; 0 turns the label off): the values
    are given, but they are the population's, not the pair's own; ``"ok"`` otherwise. A pair with
    few events is *not* refused here: its interval is honest about how little it knows, and
    ``data_weight`` says how much of the estimate is its own. The prior is in
    ``result.attrs["prior"]``.

    Notebook 08.
    """
    rules = resolve_rules(rules)
    if (isinstance(prior_only_share, bool) or not isinstance(prior_only_share, (int, float, np.integer, np.floating))
            or not 0.0 <= float(prior_only_share) <= 1.0):
        raise ValueError(f"prior_only_share must be a number in [0, 1] (a share of the prior's variance of log λ), "
                         f"got {prior_only_share!r}")
    st = data if isinstance(data, PairStats) else pair_stats(data, pair_cols=pair_cols, t_col=t_col,
                                                           count_col=count_col, observed_col=observed_col)
    if prior is None:
        prior = fit_prior(st, floor=floor, seed=seed)
    elif not isinstance(prior, DecayPrior):
        raise TypeError(f"prior must be a DecayPrior (from fit_prior), got {type(prior).__name__}")
    u, w, _, _ = _posterior_grid(st, prior)
    q = (1.0 - rules.interval_level) / 2.0
    med = np.exp(_weighted_quantile(u, w, 0.5))
    lo = np.exp(_weighted_quantile(u, w, q))
    hi = np.exp(_weighted_quantile(u, w, 1.0 - q))
    lam_w = np.exp(u)
    mean = (w * lam_w).sum(axis=1)
    sd = np.sqrt(np.maximum((w * lam_w ** 2).sum(axis=1) - mean ** 2, 0.0))
    mu_u = (w * u).sum(axis=1)
    var_u = np.maximum((w * u ** 2).sum(axis=1) - mu_u ** 2, 0.0)
    p = prior.weights
    prior_var = float((p * prior.grid ** 2).sum() - (p * prior.grid).sum() ** 2)
    ok = st.n_obs > 0
    out = st.keys.copy()
    nan = np.nan
    out["lam_hat"] = np.where(ok, med, nan)
    out["se_lam"] = np.where(ok, sd, nan)
    out["lam_lo"] = np.where(ok, lo, nan)
    out["lam_hi"] = np.where(ok, hi, nan)
    out["half_life"] = np.where(ok, LN2 / med, nan)
    out["half_life_lo"] = np.where(ok, LN2 / hi, nan)
    out["half_life_hi"] = np.where(ok, LN2 / lo, nan)
    out["lam_mean"] = np.where(ok, mean, nan)
    data_weight = np.clip(1.0 - var_u / max(prior_var, 1e-12), 0.0, 1.0)
    out["data_weight"] = np.where(ok, data_weight, nan)
    out["total_count"] = st.Y
    out["n_days"] = st.n_obs.astype(np.int64)
    out["n_active_days"] = st.n_active.astype(np.int64)
    out["reason"] = np.where(ok, np.where(data_weight < float(prior_only_share), "prior_only", "ok"), "no_observed_days")
    assert list(out.columns[len(st.keys.columns) + 1: len(st.keys.columns) + 7]) == list(UNCERTAINTY_COLS)
    out.attrs["prior"] = prior
    return out


def posterior_expected_sum(st: PairStats, prior: DecayPrior, t_from: np.ndarray, t_to: np.ndarray) -> np.ndarray:
    """Posterior mean of :math:`\\sum_{t=t_\\text{from}}^{t_\\text{to}} A\\,e_t(\\lambda)` for every pair.

    The expected count over the future days ``t_from .. t_to`` (phase day index, per pair), averaged
    over the posterior of λ and the level: :math:`E[A\\mid\\lambda, y] = (Y+\\alpha)/(M(\\lambda)+\\beta)`.

    Notebook 08.
    """
    t_from = np.asarray(t_from, dtype=float)
    t_to = np.asarray(t_to, dtype=float)
    if t_from.shape != (st.n_pairs,) or t_to.shape != (st.n_pairs,):
        raise ValueError("t_from and t_to need one value per pair")
    if np.any(t_to < t_from):
        raise ValueError("t_to must be >= t_from")
    u, w, _, M = _posterior_grid(st, prior)
    lam = np.exp(u)
    F = prior.floor * (t_to - t_from + 1.0)[:, None] + (1.0 - prior.floor) * _geom_sum(lam, t_from[:, None], t_to[:, None])
    level = (st.Y + prior.alpha)[:, None] / (M + prior.beta)
    return (w * level * F).sum(axis=1)

# --------------------------------------------------------------------------------------------
# Checking against the truth (simulator)
# --------------------------------------------------------------------------------------------
#: Bands of expected events in the decay phase (left-closed).
EVIDENCE_BANDS: tuple[float, ...] = (0.0, 5.0, 10.0, 20.0, 50.0, 100.0, np.inf)


def thin_phase(phase: pd.DataFrame, share: float, seed: int = 0) -> pd.DataFrame:
    """Keep each event of a decay-phase table with probability ``share`` (binomial thinning).

    Thinning a Poisson count gives a Poisson count with mean ``share`` times the old one, so the
    truth stays known (``expected_count`` is scaled too): the same pairs, with fewer events, as on
    a sparse real log.

    Notebook 04.
    """
    if not 0.0 < float(share) <= 1.0:
        raise ValueError(f"share must be in (0, 1], got {share!r}")
    for c in ("count", "expected_count"):
        if c not in phase.columns:
            raise ValueError(f"phase is missing column {c!r} (decay_phase_table with truth_daily=)")
    rng = np.random.default_rng(seed)
    y = phase["count"].to_numpy()
    if np.any(y != np.round(y)):
        raise ValueError("phase['count'] must hold whole counts to be thinned")
    out = phase.copy()
    out["count"] = rng.binomial(y.astype(np.int64), float(share)).astype(float)
    out["expected_count"] = phase["expected_count"].to_numpy(dtype=float) * float(share)
    return out


def compare_with_truth(phase: pd.DataFrame, truth: pd.DataFrame, *, bands=EVIDENCE_BANDS,
                       rules: EvidenceRules | None = None, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pooled λ against the per-pair MLE, one global λ and the Cramér-Rao bound, by evidence band.

    ``phase``: decay phases with the true expected counts (:func:`decaylib.decay.rate.decay_phase_table`
    with ``truth_daily``); ``truth``: the pair columns and the true ``lam``. Three estimates per pair:
    ``shrunk`` (posterior median, prior fitted on these phases), ``mle`` (Poisson maximum
    likelihood wherever it exists, no evidence threshold, so that it is judged on the sparse pairs
    too), ``global`` (the fitted population's median λ, one number: the best single half-life).

    Returns ``(per_pair, table)``. ``table`` has one row per band of expected events in the phase:
    ``pairs``, ``mle_exists`` (share of pairs with a finite MLE), the median relative error
    ``|λ̂/λ - 1|`` of each estimate on the pairs where the MLE exists (the same pairs for all
    three), ``shrunk_all`` (shrunk on every pair of the band), ``crb_rel`` (median Cramér-Rao
    bound / λ: the best relative sd an unbiased estimate can have), ``shrunk_coverage`` and
    ``mle_coverage`` (share of 90% intervals containing the true λ).

    Notebook 04.
    """

    for c in ("user_id", "category", "lam"):
        if c not in truth.columns:
            raise ValueError(f"truth is missing column {c!r}")
    rules = resolve_rules(rules)
    sh = shrunk_lambda(phase, rules=rules, seed=seed)
    raw = _Rules(min_events=1, min_active_days=1, interval_level=rules.interval_level)
    mle = fit_poisson_mle(phase, min_days=2, rules=raw)
    crb = cramer_rao_table(phase)
    prior = sh.attrs["prior"]
    keys = list(PAIR_COLS)
    per = (truth[[*keys, "lam"]].merge(crb, on=keys)
           .merge(sh[[*keys, "lam_hat", "lam_lo", "lam_hi", "data_weight"]].rename(
               columns={"lam_hat": "shrunk", "lam_lo": "shrunk_lo", "lam_hi": "shrunk_hi"}), on=keys)
           .merge(mle[[*keys, "lam_hat", "lam_lo", "lam_hi"]].rename(
               columns={"lam_hat": "mle", "lam_lo": "mle_lo", "lam_hi": "mle_hi"}), on=keys))
    per["global"] = prior.lam_median
    lam = per["lam"].to_numpy()
    for m in ("shrunk", "mle", "global"):
        per[f"rel_{m}"] = np.abs(per[m].to_numpy() / lam - 1.0)
    per["shrunk_covers"] = (per["shrunk_lo"] <= lam) & (lam <= per["shrunk_hi"])
    per["mle_covers"] = (per["mle_lo"] <= lam) & (lam <= per["mle_hi"])
    per["band"] = pd.cut(per["expected_total"], list(bands), right=False)
    exists = np.isfinite(per["mle"].to_numpy())

    def agg(d):
        e = np.isfinite(d["mle"].to_numpy())
        return pd.Series({
            "pairs": len(d), "mle_exists": float(e.mean()) if len(d) else np.nan,
            "shrunk": d.loc[e, "rel_shrunk"].median(), "mle": d.loc[e, "rel_mle"].median(),
            "global": d.loc[e, "rel_global"].median(), "shrunk_all": d["rel_shrunk"].median(),
            "crb_rel": float(np.median(d["crb_sd"] / d["lam"])) if len(d) else np.nan,
            "shrunk_coverage": d["shrunk_covers"].mean(), "mle_coverage": d.loc[e, "mle_covers"].mean(),
        })

    table = per.groupby("band", observed=True).apply(agg, include_groups=False)
    table.loc["all"] = agg(per)
    table["pairs"] = table["pairs"].astype(int)
    per.attrs["prior"] = prior
    per.attrs["mle_exists"] = float(exists.mean())
    return per, table
