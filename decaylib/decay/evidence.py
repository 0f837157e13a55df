r"""Evidence rules: when may a per-pair estimate be called ``"ok"``?

Every per-pair estimate of the tutorial (decay point, λ by each method, half-life, early-warning
alert) comes in a table with a ``reason`` column. ``"ok"`` is reserved for estimates that pass the
rules below; any other reason comes with NaN in the estimate's columns (but ``prior_only``, see
the table). The rules, their thresholds (:class:`EvidenceRules`) and every reason code
(:data:`REASONS`) are documented here, in one place; the estimators in
:mod:`decaylib.decay.rate`, :mod:`decaylib.decay.points` and :mod:`decaylib.recommend.strategies`
call the vectorized helpers of this module, and :func:`reason_counts` summarises a table ("how
many pairs were estimable, and why the others were not").

Why these rules
---------------
Real event logs are sparse: in public e-commerce logs 72-96 % of (user, category) pairs have a
single active day. Without rules the estimators still return numbers there, and those numbers
are artefacts: the centred smoothing puts the "peak" of a short series on a day with no events,
the smoothed consecutive log-ratio returns λ = ln 1.2 (a constant of the smoothing's edge
window) for almost every pair, and ``log1p`` least squares returns half-lives of hundreds of
days from one view followed by zero-filled days.

The rules
---------
**Events are counts.** Evidence is counted in *events* (``view + click + cart + purchase``,
:data:`BEHAVIOURS`: each is a Poisson count whose mean is proportional to the interest; the
weighted interest score and its smoothing are not counts) on *observed* days (logging outages
carry no information). An *active day* is an observed day with at least one event.

1. **Decay-phase minimums** (every λ table, the half-lives, the Poisson MLE, least squares, the
   log-ratios, and, when a panel is passed, the forecast-based λ's): at least
   ``min_events`` events and ``min_active_days`` active days in the pair's decay phase
   (``start <= day <= end``). Otherwise ``insufficient_data``.

   *Why 10 events:* for an exponential decay observed to its end, the Cramér-Rao bound on the
   relative standard deviation of λ is :math:`1/\sqrt{N}` with ``N`` events (the event times
   are exponential with variance :math:`1/\lambda^2`); 10 events give ±32 %, fewer give a λ
   that is mostly noise. *Why 3 active days:* two days define any line exactly (no check of the
   shape, and the MLE does not exist when all events fall on one day); three are the minimum
   with a residual.

   *Log least squares sees only the days with events* (it drops the zeros): the observed days
   after a pair's last day with events must not contradict its line. When the line puts more
   events on those all-zero days than the pair had in all, and at least :data:`ZERO_RUN_EVENTS`
   (the chance of none is then below 5 %), the fit describes the first days only:
   ``zeros_after_events`` (three rising days followed by four weeks of zeros gave λ = -0.11 with
   "ok"). The bar is the pair's own events, not the 5 % alone, because dropping zeros already
   props up the tail of an ordinary decay (its lines expect up to a fifth of the pair's events on
   the empty days at the end; tests/decay/test_evidence.py).

2. **A decay point is a peak in the events** (:func:`check_peaks`, used by every retrospective
   detector when event counts are available):

   * the decay point is a day with events. If the smoothed maximum falls on an empty day (the
     centred window's edge effect on short series), it is moved to the day with the most events
     within ``peak_search`` days (default: the smoothing half-window, ``smooth_window // 2``;
     ties go to the day closest to the smoothed maximum, then the earlier one); the shift is
     reported (``peak_shift``). No such day: ``peak_on_empty_day``;
   * at least ``peak_min_events`` events and ``peak_min_active_days`` active days within
     ±``peak_radius`` days of it, otherwise ``insufficient_data``;
   * the rise before it and the fall after it are larger than Poisson noise: with
     :math:`L_d` the centred ``smooth_window``-day mean of the event counts (observed days,
     :math:`n_d` of them) and :math:`L_{min}` its minimum before (after) the peak,
     :math:`z = (L_{peak} - L_{min}) / \sqrt{L_{peak}/n_{peak} + L_{min}/n_{min}}` (the
     difference of two Poisson window means in units of its standard deviation) must be at
     least ``noise_k`` on both sides, otherwise ``not_a_peak``. ``noise_k = 2.5``: the peak is
     the maximum of the series and the minimum is the minimum, so both are selected; on a flat
     Poisson series of 80 days (~11 independent 7-day windows) the typical z is ~2 on each side.
     2.5 is a one-sided 0.6 % test per side, ~5 % after that selection. Measured on flat Poisson
     series (mean 5 events/day, 80 days; 300 series): 67 % get a decay point without the rule,
     41 % with ``noise_k = 2``, 19 % with 2.5, 5 % with 3; on the simulator's visible peaks the
     F1 within ±3 days goes 0.906 -> 0.901 / 0.884 / 0.864 (600 users, 120 days). 2.5 trades
     ~2 points of F1 for rejecting most noise peaks; raise it for stricter detection.

3. **Not a constant of the method** (the log-ratio λ's and least squares):

   * *structural*: the consecutive log-ratio uses only steps between two successive observed
     days that both have events, and the endpoint log-ratio needs events in both of its
     windows (``zero_window`` otherwise), so that no λ comes from smoothing spill-over onto
     empty days or from the zero-fill; the consecutive method needs ``min_steps`` such steps
     (``too_few_positive_steps``);
   * *data-driven* (:func:`constant_mask`): a λ value (to ``constant_tol``) shared by more
     than ``constant_max_pairs`` pairs whose data differ (different fingerprints of the days
     and values used) *and* by at least ``constant_min_share`` of the table's otherwise-ok
     pairs is a constant of the method, not a measurement: ``method_constant``. (On real short
     logs the smoothed consecutive log-ratio gave ln 1.2 for 99.5 % of pairs and log least
     squares gave exactly 0 for every pair whose active days all had one event.) The Poisson
     MLE is exempt: it is a smooth function of its sufficient statistics (Σy, Σty), so equal
     values mean equal statistics, and its degenerate case is ``mle_not_finite``.

4. **An uncertainty beside every λ and half-life** (:func:`uncertainty_columns`): every λ table
   has ``se_lam``, ``lam_lo``, ``lam_hi``, ``half_life``, ``half_life_lo``, ``half_life_hi``,
   NaN exactly when the reason is not ``"ok"``. The interval level is ``interval_level``
   (default 90 %). The Poisson MLE uses the profile-likelihood interval (asymmetric, good
   coverage with few events) and the Fisher-information standard error; least squares the
   OLS residual variance and a Student-t interval; the other methods a Wald interval
   ``lam ± z·se`` from their own standard error (see each function). Half-life interval:
   :math:`[\ln 2/\lambda_{hi}, \ln 2/\lambda_{lo}]`; an interval that reaches λ <= 0 (no
   decay is compatible with the data) has an infinite upper end, and an interval entirely at
   λ <= 0 is ``[inf, inf]``.

5. **Alerts** (:func:`decaylib.decay.points.early_warning` and its baseline): a pair is *armed*
   on day ``d`` only when, up to ``d`` (causally), it has at least ``min_events`` events and
   ``min_active_days`` active days *and* its trailing level has reached ``min_level``.

Without event counts (a table of forecast levels, or a panel without the count columns) rule 2
cannot be checked; the detectors then apply only their shape rules, and accept ``events=`` (a
panel with the counts) to apply it. The forecast-based λ's accept ``panel=`` for rule 1.

Reason codes
------------
==========================  ====================================================================
reason                      meaning
==========================  ====================================================================
``ok``                      passed every rule; the estimate and its uncertainty are given
``insufficient_data``       too few events or active days (decay phase, around the peak, or up
                            to an alert day)
``not_a_peak``              rise or fall of the event counts not larger than Poisson noise
``peak_on_empty_day``       the smoothed maximum is on a day without events and no day within
                            ``peak_search`` days has any
``method_constant``         the value is shared by many pairs with different data: a constant
                            of the method (smoothing edge, zero-fill, log of 1), not data
``not_converged``           the Poisson MLE's Newton iterations did not converge
``no_decay_phase``          the pair has no observed day in its decay phase (or no decay start)
``no_data``                 the pair has no observed day at all
``no_rise`` / ``no_fall``   the series does not rise to / fall from its maximum by the
                            prominence threshold (shape rule)
``no_peak``                 ``find_peaks`` found no peak with the prominence
``no_turn`` / ``too_short`` ruptures found no rise-then-fall vertex / the series is too short
``too_few_days``            fewer observed days than the method needs (``min_days``, 2 windows)
``zero_window``             an endpoint window of the log-ratio has no day with events
``too_few_positive_steps``  fewer than ``min_steps`` consecutive steps between event days
``too_few_paths``           fewer than 2 forecast paths in the decay phase (no spread)
``no_paths_in_decay_phase`` no forecast origin in the decay phase
``all_paths_nonpositive``   every forecast path has a value <= 0 (log undefined)
``no_observed_days``        the decay phase has no observed day (fits)
``all_zero``                no event in the decay phase (fits)
``t_constant``              all usable days are the same day (no slope)
``mle_not_finite``          all events on the first or the last observed day: the likelihood
                            grows without bound as λ -> ±inf
``no_alert``                armed, but the alert rule never fired
``below_min_level``         enough events, but the trailing level never reached ``min_level``
``prior_only``              a pooled estimate that the pair's own data barely moved from the
                            population prior: less than ``prior_only_share`` of it is the
                            pair's own (:func:`decaylib.decay.shrinkage.shrunk_lambda`:
                            ``data_weight``, the share of the prior's variance of log λ its
                            events removed). The one reason that keeps its values: they are
                            the population's, not the pair's
==========================  ====================================================================
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from decaylib.checks import check_finite
from decaylib.schema import BEHAVIOURS

__all__ = ['BEHAVIOURS', 'UNCERTAINTY_COLS', 'ZERO_RUN_EVENTS', 'REASONS', 'EvidenceRules', 'DEFAULT_RULES', 'resolve_rules', 'event_counts', 'group_evidence', 'insufficient_mask', 'first_reason', 'fingerprint', 'constant_mask', 'centered_mean', 'check_peaks', 'wald_interval', 'half_life_interval', 'uncertainty_columns', 'reason_counts', 'reasons_by_method', 'reason_summary', 'reason_line']


#: The uncertainty columns every λ table carries (NaN when the reason is not "ok").
UNCERTAINTY_COLS: tuple[str, ...] = ("se_lam", "lam_lo", "lam_hi", "half_life", "half_life_lo", "half_life_hi")

#: Events the log least-squares line may expect on the all-zero days after a pair's last event
#: before ``zeros_after_events`` (a Poisson count with that mean is 0 with probability e**-3 < 5 %).
ZERO_RUN_EVENTS: float = 3.0

#: Every reason code an estimator can return, with its meaning (see the module docstring).
REASONS: dict[str, str] = {
    "ok": "passed every evidence rule; estimate and uncertainty given",
    "insufficient_data": "too few events or active days (decay phase, around the peak, or up to an alert)",
    "not_a_peak": "rise or fall of the event counts not larger than Poisson noise",
    "peak_on_empty_day": "smoothed maximum on a day without events, and no day with events nearby",
    "method_constant": "value shared by many pairs with different data: a constant of the method",
    "not_converged": "the Poisson MLE did not converge",
    "no_decay_phase": "no observed day in the decay phase, or no decay start",
    "no_data": "no observed day at all",
    "no_rise": "the series does not rise to its maximum by the prominence threshold",
    "no_fall": "the series does not fall from its maximum by the prominence threshold",
    "no_peak": "find_peaks found no peak with the prominence",
    "no_turn": "ruptures found no rise-then-fall vertex",
    "too_short": "series too short for ruptures",
    "too_few_days": "fewer observed days than the method needs",
    "zero_window": "an endpoint window of the log-ratio has no day with events",
    "too_few_positive_steps": "too few consecutive steps between days with events",
    "too_few_paths": "fewer than 2 forecast paths in the decay phase",
    "no_paths_in_decay_phase": "no forecast origin in the decay phase",
    "all_paths_nonpositive": "every forecast path has a value <= 0",
    "no_observed_days": "the decay phase has no observed day",
    "all_zero": "no event in the decay phase",
    "t_constant": "all usable days are the same day",
    "zeros_after_events": "log least squares: the line expects more events on the all-zero days after the last event than the pair had",
    "mle_not_finite": "all events on the first or last day: the MLE does not exist",
    "no_alert": "armed, but the alert rule never fired",
    "below_min_level": "enough events, but the trailing level never reached min_level",
    "prior_only": "pooled estimate barely moved from the population prior by the pair's own data (own share below prior_only_share); value kept",
}


@dataclass(frozen=True)
class EvidenceRules:
    """Thresholds of the evidence rules (see the module docstring for each rule and why).

    Attributes
    ----------
    min_events, min_active_days
        Decay phase (and alert arming): at least this many events and active days. 10 events
        bound the relative sd of λ at ~1/sqrt(10) = 32 %; 3 days are the fewest with a residual.
    peak_radius, peak_min_events, peak_min_active_days
        Around a decay point: at least ``peak_min_events`` events and ``peak_min_active_days``
        active days within ±``peak_radius`` days.
    noise_k
        The rise and the fall of the event-count window means must each be at least
        ``noise_k`` Poisson standard deviations.
    peak_search
        How far (days) an empty-day smoothed maximum may be moved to a day with events;
        ``None`` = the detector's smoothing half-window (``smooth_window // 2``).
    min_steps
        Consecutive log-ratio: at least this many steps between days with events.
    constant_tol, constant_max_pairs, constant_min_share
        The data-driven method-constant check: a value (to ``constant_tol``) shared by more
        than ``constant_max_pairs`` pairs with different data and by at least
        ``constant_min_share`` of the otherwise-ok pairs of the table.
    interval_level
        Level of every reported interval (λ and half-life), default 0.90.

    Notebook 05.
    """

    min_events: float = 10.0
    min_active_days: int = 3
    peak_radius: int = 7
    peak_min_events: float = 10.0
    peak_min_active_days: int = 3
    noise_k: float = 2.5
    peak_search: int | None = None
    min_steps: int = 3
    constant_tol: float = 1e-9
    constant_max_pairs: int = 3
    constant_min_share: float = 0.02
    interval_level: float = 0.90

    def __post_init__(self) -> None:
        for name in ("min_events", "peak_min_events", "noise_k", "constant_min_share"):
            v = getattr(self, name)
            if isinstance(v, bool) or not np.isfinite(float(v)) or float(v) < 0:
                raise ValueError(f"EvidenceRules.{name} must be a finite number >= 0, got {v!r}")
        for name in ("min_active_days", "peak_radius", "peak_min_active_days", "min_steps", "constant_max_pairs"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0:
                raise ValueError(f"EvidenceRules.{name} must be an int >= 0, got {v!r}")
        if self.peak_search is not None and (
            isinstance(self.peak_search, bool) or not isinstance(self.peak_search, (int, np.integer)) or self.peak_search < 0
        ):
            raise ValueError(f"EvidenceRules.peak_search must be None or an int >= 0, got {self.peak_search!r}")
        if not float(self.constant_tol) > 0:
            raise ValueError(f"EvidenceRules.constant_tol must be > 0, got {self.constant_tol!r}")
        if not 0 < float(self.interval_level) < 1:
            raise ValueError(f"EvidenceRules.interval_level must be in (0, 1), got {self.interval_level!r}")

    @classmethod
    def disabled(cls, interval_level: float = 0.90) -> "EvidenceRules":
        """No minimums, no noise rule, no constant check: only the methods' own mechanics.

        The structural rules stay (a decay point is moved to a day with events; log-ratio steps
        and windows need days with events): they are part of how the methods read counts. For
        model outputs that are not counts (forecast levels) and for tests of the mechanics;
        never for deciding what to show as "ok" on data.
        """
        return cls(min_events=0.0, min_active_days=0, peak_min_events=0.0, peak_min_active_days=0, noise_k=0.0,
                   min_steps=1, constant_max_pairs=np.iinfo(np.int64).max, interval_level=interval_level)

    def replace(self, **changes) -> "EvidenceRules":
        """A copy with some thresholds changed (``rules.replace(min_events=20)``)."""
        return replace(self, **changes)

    def as_dict(self) -> dict:
        """The thresholds as a plain dict (for metrics JSON)."""
        return asdict(self)

#: The rules every estimator uses unless given others.
DEFAULT_RULES = EvidenceRules()


def resolve_rules(rules) -> EvidenceRules:
    """``None`` -> :data:`DEFAULT_RULES`; an :class:`EvidenceRules` is returned as is.

    Notebooks 04-09.
    """
    if rules is None:
        return DEFAULT_RULES
    if not isinstance(rules, EvidenceRules):
        raise TypeError(f"rules must be an EvidenceRules (or None for the defaults), got {type(rules).__name__}")
    return rules


# --------------------------------------------------------------------------------------------
# Counting the evidence
# --------------------------------------------------------------------------------------------
def event_counts(df: pd.DataFrame, count_cols: Sequence[str] | None = BEHAVIOURS) -> np.ndarray | None:
    """Events per row (sum of ``count_cols``), or ``None`` when ``df`` lacks any of them.

    Negative or missing counts are an error (``ValueError`` naming the column).

    Notebooks 04-07.
    """
    if count_cols is None:
        return None
    cols = list(count_cols)
    if not cols or any(c not in df.columns for c in cols):
        return None
    out = np.zeros(len(df), dtype=np.float64)
    for c in cols:
        s = df[c]
        if s.dtype == bool or not pd.api.types.is_numeric_dtype(s):
            raise TypeError(f"count column {c!r} must be numeric, got dtype {s.dtype}")
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        check_finite(v, c, "count column")
        out += v
    return out


def group_evidence(codes: np.ndarray, counts: np.ndarray, G: int, observed: np.ndarray | None = None):
    """Events and active days per group: ``(events, active_days)``, float and int arrays of
    length ``G``. Rows with ``observed == False`` are ignored.

    Notebooks 04 and 09.
    """
    c = np.asarray(counts, dtype=np.float64)
    use = np.ones(c.shape, dtype=bool) if observed is None else np.asarray(observed, dtype=bool)
    events = np.bincount(codes, weights=np.where(use, c, 0.0), minlength=G)
    active = np.bincount(codes, weights=(use & (c > 0)).astype(np.float64), minlength=G).astype(np.int64)
    return events, active


def insufficient_mask(events, active_days, rules: EvidenceRules, *, peak: bool = False) -> np.ndarray:
    """True where the decay-phase (``peak=False``) or around-the-peak (``peak=True``) minimums
    of ``rules`` fail.

    Notebooks 04-07 and 09.
    """
    ev = np.asarray(events, dtype=np.float64)
    ad = np.asarray(active_days, dtype=np.float64)
    if peak:
        return (ev < rules.peak_min_events) | (ad < rules.peak_min_active_days)
    return (ev < rules.min_events) | (ad < rules.min_active_days)


def first_reason(G: int, checks, default: str = "ok") -> np.ndarray:
    """Per group, the code of the first check (in order) whose mask is True, else ``default``.

    ``checks`` is a sequence of ``(mask, code)``; masks are boolean arrays of length ``G``.
    The order is the precedence: put the most basic problem first.

    Notebooks 04-07 and 09.
    """
    reason = np.full(G, default, dtype=object)
    done = np.zeros(G, dtype=bool)
    for mask, code in checks:
        m = np.asarray(mask, dtype=bool) & ~done
        reason[m] = code
        done |= m
    return reason

# --------------------------------------------------------------------------------------------
# Constants of a method
# --------------------------------------------------------------------------------------------
_MIX = np.uint64(0x9E3779B97F4A7C15)


def fingerprint(codes: np.ndarray, G: int, *columns) -> np.ndarray:
    """An order-independent 64-bit fingerprint of each group's rows (``uint64`` per group).

    Rows are hashed from the given columns (e.g. days since the decay start and the values
    used) and the hashes summed per group (mod 2^64): two groups get the same fingerprint when
    they hold the same rows, whatever their order or their calendar position.

    Notebook 04.
    """
    if not columns:
        raise ValueError("fingerprint needs at least one column")
    h = np.full(len(codes), 0x2545F4914F6CDD1D, dtype=np.uint64)  # non-zero seed: hash(0) is 0
    with np.errstate(over="ignore"):
        for col in columns:
            v = np.asarray(col, dtype=np.float64)
            v = np.where(v == 0, 0.0, v)  # -0.0 and 0.0 are the same value
            h = pd.util.hash_array((h * _MIX) ^ pd.util.hash_array(v))  # rehash: the row's values together
    out = np.zeros(G, dtype=np.uint64)
    np.add.at(out, np.asarray(codes, dtype=np.int64), h)
    return out


def constant_mask(lam, ok, fp, rules: EvidenceRules) -> np.ndarray:
    """True for ok values that are constants of the method (the data-driven check).

    A value (rounded to ``rules.constant_tol``) is a constant when more than
    ``rules.constant_max_pairs`` distinct fingerprints ``fp`` (pairs with different data) share
    it *and* those pairs are at least ``rules.constant_min_share`` of the ok pairs. Pairs with
    identical data legitimately share a value and count once.

    Notebook 04.
    """
    lam = np.asarray(lam, dtype=np.float64)
    ok = np.asarray(ok, dtype=bool) & np.isfinite(lam)
    out = np.zeros(lam.shape, dtype=bool)
    n_ok = int(ok.sum())
    if n_ok == 0 or rules.constant_max_pairs >= n_ok:
        return out
    key = np.round(lam[ok] / float(rules.constant_tol))
    df = pd.DataFrame({"key": key, "fp": np.asarray(fp)[ok]})
    n_distinct = df.drop_duplicates().groupby("key")["fp"].size()
    n_pairs = df.groupby("key")["fp"].size()
    bad = n_distinct.index[(n_distinct > rules.constant_max_pairs).to_numpy()
                           & (n_pairs.reindex(n_distinct.index) >= rules.constant_min_share * n_ok).to_numpy()]
    if len(bad):
        out[np.flatnonzero(ok)[np.isin(key, bad.to_numpy())]] = True
    return out


# --------------------------------------------------------------------------------------------
# Peaks
# --------------------------------------------------------------------------------------------
def centered_mean(x: np.ndarray, codes: np.ndarray, starts: np.ndarray, counts: np.ndarray, window: int):
    """Centred ``window``-row mean of ``x`` within each group (rows sorted by group and day),
    skipping NaN; returns ``(mean, n)`` with ``n`` the non-NaN rows in the window (the mean is
    NaN where ``n == 0``). The window shrinks at the series' edges, as the panel's smoothing.

    Notebooks 04 and 05.
    """
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    half_lo = (window - 1) // 2
    half_hi = window - 1 - half_lo
    v = np.where(np.isnan(x), 0.0, x)
    k = (~np.isnan(x)).astype(np.float64)
    cv = np.concatenate([[0.0], np.cumsum(v)])
    ck = np.concatenate([[0.0], np.cumsum(k)])
    i = np.arange(n)
    lo = np.maximum(i - half_lo, starts[codes])
    hi = np.minimum(i + half_hi, starts[codes] + counts[codes] - 1)
    s = cv[hi + 1] - cv[lo]
    c = ck[hi + 1] - ck[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, s / np.where(c > 0, c, 1.0), np.nan), c


def _group_argmin(values: np.ndarray, mask: np.ndarray, codes: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Row of the smallest value among masked rows of each group (first on ties; -1 if none)."""
    n = len(values)
    v = np.where(mask & np.isfinite(values), values, np.inf)
    vmin = np.minimum.reduceat(v, starts) if n else np.zeros(0)
    is_min = mask & np.isfinite(values) & (v == vmin[codes])
    row = np.minimum.reduceat(np.where(is_min, np.arange(n), n), starts) if n else np.zeros(0, dtype=np.int64)
    return np.where(row < n, row, -1)


def check_peaks(
    codes: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
    day: np.ndarray,
    events: np.ndarray,
    observed: np.ndarray,
    peak_row: np.ndarray,
    rules: EvidenceRules,
    *,
    smooth_window: int = 7,
) -> dict:
    """Rule 2 (a decay point is a peak in the events), vectorized over all groups.

    Parameters
    ----------
    codes, starts, counts, day
        Rows sorted by group then day: group code per row, first row and number of rows of
        each group, day per row.
    events, observed
        Events per row (sum of :data:`BEHAVIOURS`) and the observed flag.
    peak_row
        Candidate decay-point row per group (``-1`` = no candidate).
    rules, smooth_window
        Thresholds; ``smooth_window`` is the centred window of the count means (and, with
        ``rules.peak_search=None``, twice the search radius for an empty-day peak plus one).

    Returns
    -------
    dict of per-group arrays
        ``row`` (the possibly moved peak row, -1 where none), ``shift`` (days moved),
        ``events_near_peak``, ``active_days_near_peak``, ``rise_z``, ``fall_z``, the masks
        ``insufficient``, ``on_empty``, ``noisy`` (each rule's failure, for callers that order
        them with their own reasons) and ``reason`` (in this precedence:
        ``"insufficient_data"``, ``"peak_on_empty_day"``, ``"not_a_peak"``, else ``"ok"``;
        ``""`` where there is no candidate).

    Notebooks 04 and 05.
    """
    G = len(starts)
    n = len(day)
    ev = np.where(np.asarray(observed, dtype=bool), np.asarray(events, dtype=np.float64), np.nan)
    has = np.asarray(peak_row) >= 0
    prow = np.where(has, peak_row, 0).astype(np.int64)
    search = (smooth_window // 2) if rules.peak_search is None else int(rules.peak_search)

    # 1. move an empty-day peak to the busiest day within `search` days
    ev0 = np.nan_to_num(ev, nan=0.0)
    empty = has & (ev0[prow] <= 0) if n else np.zeros(G, dtype=bool)
    best_row = prow.copy()
    best_ev = np.where(has, ev0[prow] if n else 0.0, 0.0)
    best_dist = np.zeros(G)
    for dist in range(1, search + 1):
        for sign in (-1, 1):  # earlier day first: ties at equal distance go to the earlier day
            r = prow + sign * dist
            inside = (r >= starts) & (r < starts + counts)
            rr = np.clip(r, 0, max(n - 1, 0))
            near = inside & (np.abs(day[rr] - day[prow]) <= search) if n else inside
            e = np.where(near, ev0[rr] if n else 0.0, -1.0)
            better = empty & (e > best_ev)  # strictly more events; closer days were seen first
            best_row = np.where(better, rr, best_row)
            best_ev = np.where(better, e, best_ev)
            best_dist = np.where(better, dist, best_dist)
    on_empty = has & (best_ev <= 0)
    row = np.where(has & ~on_empty, best_row, np.where(has, prow, -1))
    shift = np.where(has, day[np.maximum(row, 0)] - day[prow], np.nan) if n else np.full(G, np.nan)

    # 2. events and active days within ±peak_radius days
    key_day = np.asarray(day, dtype=np.float64)
    key_day = key_day - (key_day.min() if n else 0.0)
    big = (key_day.max() if n else 0.0) + 2.0 * rules.peak_radius + 2.0
    key = codes * big + key_day  # increasing: rows are sorted by group then day
    pr = np.maximum(row, 0)
    pday = key_day[pr] if n else np.zeros(G)
    g = np.arange(G)
    lo = np.searchsorted(key, g * big + pday - rules.peak_radius, side="left")
    hi = np.searchsorted(key, g * big + pday + rules.peak_radius, side="right")
    cev = np.concatenate([[0.0], np.cumsum(ev0)])
    cact = np.concatenate([[0.0], np.cumsum((ev0 > 0).astype(np.float64))])
    near_events = np.where(has, cev[hi] - cev[lo], np.nan)
    near_active = np.where(has, cact[hi] - cact[lo], np.nan)

    # 3. rise and fall of the count window means against Poisson noise
    L, nw = centered_mean(ev, codes, starts, counts, smooth_window)
    Lp = np.where(has, L[pr], np.nan) if n else np.full(G, np.nan)
    npk = np.where(has, nw[pr], np.nan) if n else np.full(G, np.nan)
    r_idx = np.arange(n)
    before = r_idx < np.maximum(row, 0)[codes] if n else np.zeros(0, bool)
    after = r_idx > np.maximum(row, 0)[codes] if n else np.zeros(0, bool)
    zs = []
    for side in (before, after):
        m = _group_argmin(L, side, codes, starts)
        Lm = np.where(m >= 0, L[np.maximum(m, 0)], np.nan) if n else np.full(G, np.nan)
        nm = np.where(m >= 0, nw[np.maximum(m, 0)], np.nan) if n else np.full(G, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            sd = np.sqrt(Lp / npk + Lm / nm)
            z = np.where(sd > 0, (Lp - Lm) / sd, np.where(Lp - Lm > 0, np.inf, 0.0))
        zs.append(np.where(has & (m >= 0), z, np.nan))
    rise_z, fall_z = zs
    with np.errstate(invalid="ignore"):
        noisy = (rules.noise_k > 0) & ~((rise_z >= rules.noise_k) & (fall_z >= rules.noise_k))
    insufficient = has & insufficient_mask(near_events, near_active, rules, peak=True)
    noisy = has & noisy
    reason = first_reason(G, [
        (~has, ""),
        (insufficient, "insufficient_data"),
        (on_empty, "peak_on_empty_day"),
        (noisy, "not_a_peak"),
    ])
    return {
        "row": row, "shift": shift, "events_near_peak": near_events, "active_days_near_peak": near_active,
        "rise_z": rise_z, "fall_z": fall_z, "insufficient": insufficient, "on_empty": on_empty, "noisy": noisy,
        "reason": reason,
    }


# --------------------------------------------------------------------------------------------
# Uncertainty
# --------------------------------------------------------------------------------------------
def _z(level: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(0.5 + level / 2.0))


def wald_interval(lam, se, level: float = 0.90):
    """``(lam - z·se, lam + z·se)`` with ``z`` the two-sided normal quantile of ``level``.

    Notebooks 04, 06, 07 and 09.
    """
    lam = np.asarray(lam, dtype=np.float64)
    se = np.asarray(se, dtype=np.float64)
    z = _z(level)
    return lam - z * se, lam + z * se


def half_life_interval(lam, lam_lo, lam_hi):
    r"""Half-life and its interval from λ and its interval: ``(hl, hl_lo, hl_hi)``.

    :math:`T_{1/2} = \ln 2/\lambda` is decreasing in λ, so ``hl_lo = ln2/lam_hi`` and
    ``hl_hi = ln2/lam_lo``. λ <= 0 (no decay) maps to ``inf``: an interval reaching λ <= 0 has
    ``hl_hi = inf``; one entirely at λ <= 0 is ``[inf, inf]``. NaN stays NaN. The order
    ``hl_lo <= hl <= hl_hi`` holds whenever ``lam_lo <= lam <= lam_hi``.

    Notebooks 04, 06 and 09.
    """
    def hl(x):
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(x > 0, np.log(2.0) / np.where(x > 0, x, 1.0), np.inf)
        return np.where(np.isnan(x), np.nan, out)

    return hl(lam), hl(lam_hi), hl(lam_lo)


def uncertainty_columns(lam, se, ok, rules: EvidenceRules, lam_lo=None, lam_hi=None) -> dict:
    """The :data:`UNCERTAINTY_COLS` arrays for a λ table: NaN where ``ok`` is False.

    Without ``lam_lo``/``lam_hi`` the interval is Wald's, ``lam ± z·se`` at
    ``rules.interval_level``.

    Notebooks 04, 06 and 09.
    """
    ok = np.asarray(ok, dtype=bool)
    lam = np.where(ok, np.asarray(lam, dtype=np.float64), np.nan)
    se = np.where(ok, np.asarray(se, dtype=np.float64), np.nan)
    if lam_lo is None or lam_hi is None:
        lo, hi = wald_interval(lam, se, rules.interval_level)
    else:
        lo = np.where(ok, np.asarray(lam_lo, dtype=np.float64), np.nan)
        hi = np.where(ok, np.asarray(lam_hi, dtype=np.float64), np.nan)
    hl, hl_lo, hl_hi = half_life_interval(lam, lo, hi)
    return {"se_lam": se, "lam_lo": lo, "lam_hi": hi, "half_life": hl, "half_life_lo": hl_lo, "half_life_hi": hl_hi}


# --------------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------------
def reason_counts(table: pd.DataFrame, by: str | Sequence[str] | None = None, *, reason_col: str = "reason") -> pd.DataFrame:
    """How many pairs were estimable, and why the others were not.

    Parameters
    ----------
    table : DataFrame
        A per-pair table with a ``reason`` column (any estimator of decaylib).
    by : str or list of str, optional
        Columns to summarise separately (e.g. ``"method"`` for a stacked table of methods).

    Returns
    -------
    DataFrame
        ``[by...], reason, pairs, share, meaning``: one row per reason (within each ``by``
        group), ``"ok"`` first, then by decreasing count; ``share`` is the fraction of the
        group's pairs. Unknown codes get an empty meaning.

    Notebook 04.
    """
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"table must be a DataFrame, got {type(table).__name__}")
    by = [] if by is None else ([by] if isinstance(by, str) else list(by))
    missing = [c for c in [reason_col, *by] if c not in table.columns]
    if missing:
        raise KeyError(f"table is missing column(s) {missing}; it has {list(table.columns)}")
    if table[reason_col].isna().any():
        raise ValueError(f"table[{reason_col!r}] has missing values: every pair needs a reason")
    keys = [*by, reason_col]
    out = table.groupby(keys, sort=False, dropna=False).size().rename("pairs").reset_index()
    total = out.groupby(by, sort=False)["pairs"].transform("sum") if by else out["pairs"].sum()
    out["share"] = out["pairs"] / total
    out["_not_ok"] = out[reason_col] != "ok"
    out = out.sort_values([*by, "_not_ok", "pairs", reason_col], ascending=[True] * len(by) + [True, False, True],
                          kind="stable").drop(columns="_not_ok")
    out["meaning"] = out[reason_col].map(REASONS).fillna("")
    out = out.rename(columns={reason_col: "reason"}) if reason_col != "reason" else out
    return out.reset_index(drop=True)


def _stack(tables: Mapping[str, pd.DataFrame], reason_col: str) -> pd.DataFrame:
    if not isinstance(tables, Mapping) or not tables:
        raise ValueError("tables must be a non-empty dict {method: per-pair table with a reason column}")
    parts = []
    for method, t in tables.items():
        if not isinstance(t, pd.DataFrame) or reason_col not in t.columns:
            raise KeyError(f"tables[{method!r}] must be a DataFrame with a {reason_col!r} column")
        parts.append(pd.DataFrame({"method": method, "reason": t[reason_col].to_numpy(dtype=object)}))
    return pd.concat(parts, ignore_index=True)


def reasons_by_method(tables: Mapping[str, pd.DataFrame], *, reason_col: str = "reason") -> dict:
    """``{method: {reason: pairs}}`` for a dict of per-pair tables (one per method), ``"ok"``
    first and then by decreasing count (the layout of the notebooks' metrics JSON). A method
    whose table has no rows maps to ``{}``.

    Notebooks 04 and 05.
    """
    rc = reason_counts(_stack(tables, reason_col), by="method")
    out = {m: {} for m in tables}
    for r in rc.itertuples(index=False):
        out[r.method][str(r.reason)] = int(r.pairs)
    return out


def reason_summary(tables: Mapping[str, pd.DataFrame], *, reason_col: str = "reason") -> pd.DataFrame:
    """One row per method: ``pairs``, ``ok``, ``share_ok`` and the number of pairs of every
    other reason (one column per reason, the most frequent over all methods first).

    How many pairs each method could estimate, and why it could not estimate the others.

    Notebooks 04 and 05.
    """
    by = reasons_by_method(tables, reason_col=reason_col)
    wide = pd.DataFrame.from_dict(by, orient="index").reindex(list(tables)).fillna(0).astype(np.int64)
    if "ok" not in wide.columns:
        wide["ok"] = 0
    others = wide.drop(columns="ok").sum().sort_values(ascending=False, kind="stable").index.tolist()
    out = pd.DataFrame({"pairs": wide.sum(axis=1), "ok": wide["ok"]})
    with np.errstate(invalid="ignore", divide="ignore"):
        out["share_ok"] = np.where(out["pairs"] > 0, out["ok"] / out["pairs"].clip(lower=1), np.nan)
    out = pd.concat([out, wide[others]], axis=1)
    out.index.name = "method"
    return out


def reason_line(table: pd.DataFrame, *, what: str = "pairs", top: int = 3, reason_col: str = "reason") -> str:
    """One line: how many ``what`` are ``"ok"`` and the ``top`` most frequent other reasons
    with their counts, e.g. ``"0 of 120 pairs ok; the others: insufficient_data 117, not_a_peak 3"``.

    Notebooks 04 and 05.
    """
    rc = reason_counts(table, reason_col=reason_col)
    n = int(rc["pairs"].sum())
    n_ok = int(rc.loc[rc["reason"] == "ok", "pairs"].sum())
    line = f"{n_ok:,} of {n:,} {what} ok"
    bad = rc[rc["reason"] != "ok"]
    if len(bad):
        shown = ", ".join(f"{r} {int(c):,}" for r, c in zip(bad["reason"].head(top), bad["pairs"].head(top)))
        more = len(bad) - min(top, len(bad))
        line += f"; the others: {shown}" + (f" and {more} more reason(s)" if more else "")
    return line
