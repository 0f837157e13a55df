"""Checks for the notebooks' exercises: "correct", or what is wrong, never the answer.

Each exercise in a notebook has a starter cell and a check. In the teacher's edition (the committed
notebooks) the solution sits between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` lines;
:mod:`decaylib.teaching.student` replaces that block by ``name = None`` lines for the names it assigns, so
a student's notebook runs top to bottom and each check says ``… not answered yet``.

A check recomputes the right answer from the library and the notebook's own objects (never a
stored number), compares, and prints one line:

* ``✓ correct`` (with a short confirmation that does not add information),
* ``✗ not yet: <what is wrong>``, e.g. "about 2x too large: did you use the half-life instead of
  λ?", "expected one number per pair (a Series), got a list",
* ``… not answered yet: set <name>``.

It returns a :class:`Check` (truthy when correct). With the environment variable
``DECAYLIB_STRICT_CHECKS=1`` (the test suite sets it) a wrong or missing answer raises
:class:`AssertionError` instead, so a solution that stops passing fails the tests.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from decaylib.checks import DataWarning
from decaylib.data.load import load_events
from decaylib.data.panel import moving_mean
from decaylib.decay.evidence import EvidenceRules
from decaylib.decay.hawkes import HawkesFit, fit_hawkes
from decaylib.decay.points import find_decay_point
from decaylib.decay.rate import cramer_rao_lambda, log_ratio_lambda
from decaylib.decay.stream import DecayState, lambda_from_stats
from decaylib.evaluation import ranking as E
from decaylib.evaluation.detection import decay_point_metrics
from decaylib.recommend.advice import category_actions
from decaylib.recommend.strategies import rank_decay_aware
from decaylib.schema import PAIR_COLS, PURCHASE

__all__ = ['Check', 'strict', 'check_number', 'check_count', 'check_share', 'check_day_below', 'check_same_lambda', 'check_trailing_corr', 'check_masked_mae', 'check_ar_size', 'check_log_ratio', 'check_crlb_ratio', 'check_half_life_interval', 'check_extra_events', 'check_branching_without_excitation', 'check_precision_at_prominence', 'check_extra_decay_points', 'check_decay_aware_ndcg', 'check_changed_actions', 'check_days_since', 'check_events_for_rel_sd', 'check_share_repeat_pairs', 'check_pairs_with_lambda', 'check_outage_changes']


@dataclass(frozen=True)
class Check:
    """The outcome of a check: ``ok`` and the line that was printed.

    Notebook 07.
    """

    ok: bool
    message: str

    def __bool__(self) -> bool:
        return self.ok

    def __repr__(self) -> str:  # shown as the line itself if a cell ends with the call
        return self.message


def strict() -> bool:
    """True when failed checks must raise (``DECAYLIB_STRICT_CHECKS=1``, set by the tests).

    Notebooks 00-09 (every exercise check).
    """
    return os.environ.get("DECAYLIB_STRICT_CHECKS", "") == "1"


def _done(ok: bool, message: str) -> Check:
    print(message)
    if not ok and strict():
        raise AssertionError(message)
    return Check(ok, message)


def _correct(note: str = "") -> Check:
    return _done(True, "✓ correct" + (f": {note}" if note else ""))


def _wrong(why: str) -> Check:
    return _done(False, f"✗ not yet: {why}")


def _missing(name: str) -> Check:
    return _done(False, f"… not answered yet: set {name}")


def _unanswered(answer) -> bool:
    return answer is None or answer is Ellipsis


def _as_float(answer, name: str):
    if isinstance(answer, (bool, np.bool_)):
        return None, f"{name} should be a number, got {answer!r}"
    if isinstance(answer, (pd.Series, pd.DataFrame, list, tuple, np.ndarray)) and np.size(answer) != 1:
        return None, f"{name} should be one number, got {type(answer).__name__} of size {np.size(answer)}"
    try:
        value = float(np.asarray(answer, dtype=float).ravel()[0])
    except (TypeError, ValueError):
        return None, f"{name} should be a number, got {type(answer).__name__}"
    if not math.isfinite(value):
        return None, f"{name} is {value}: look for a log of zero or a division by zero"
    return value, None


def _compare(value: float, truth: float, *, rel: float, abs_tol: float, hints=()) -> str | None:
    """``None`` when ``value`` matches ``truth``; otherwise a description that does not reveal it."""
    if math.isclose(value, truth, rel_tol=rel, abs_tol=abs_tol):
        return None
    for factor, text in hints:
        if truth != 0 and math.isclose(value, truth * factor, rel_tol=max(rel, 0.02), abs_tol=abs_tol):
            return text
    if truth != 0 and value != 0 and np.sign(value) != np.sign(truth):
        return "the sign is wrong"
    if truth != 0:
        ratio = value / truth
        if ratio > 1:
            size = "a little" if ratio < 1.2 else ("about 2x" if ratio < 3 else "far")
            return f"{size} too large" if size != "far" else "far too large"
        size = "a little" if ratio > 0.83 else ("about 2x" if ratio > 0.33 else "far")
        return f"{size} too small" if size != "far" else "far too small"
    return "expected zero"


def _judge(answer, truth: float, *, name: str, rel: float, abs_tol: float = 1e-9, hints=()) -> str | None:
    """``None`` when ``answer`` is right, else the line to print (not answered / not yet ...)."""
    if _unanswered(answer):
        return f"… not answered yet: set {name}"
    value, problem = _as_float(answer, name)
    if problem:
        return f"✗ not yet: {problem}"
    why = _compare(value, float(truth), rel=rel, abs_tol=abs_tol, hints=hints)
    return None if why is None else f"✗ not yet: {name} is {why}"


def _verdict(*problems) -> Check:
    """Print the first problem, or ``✓ correct`` when there is none."""
    for line in problems:
        if line is not None:
            return _done(False, line)
    return _correct()


def check_number(answer, truth: float, *, name: str = "answer", rel: float = 1e-3, abs_tol: float = 1e-9,
                 hints=()) -> Check:
    """A number against ``truth`` (relative tolerance ``rel``); ``hints``: ``(factor, text)`` pairs naming
    a typical mistake that gives ``truth * factor``.

    Notebooks 01-06, 08 and 09 (03b included).
    """
    return _verdict(_judge(answer, truth, name=name, rel=rel, abs_tol=abs_tol, hints=hints))


def check_count(answer, truth: int, *, name: str = "answer", hints=()) -> Check:
    """A whole number, exactly.

    Notebooks 01, 03b, 05, 08 and 09.
    """
    if _unanswered(answer):
        return _missing(name)
    value, problem = _as_float(answer, name)
    if problem:
        return _wrong(problem)
    if value != round(value):
        return _wrong(f"{name} should be a whole number, got {value}")
    return check_number(int(value), int(truth), name=name, rel=0.0, abs_tol=0.0, hints=hints)


def check_share(answer, truth: float, *, name: str = "answer", abs_tol: float = 5e-4) -> Check:
    """A share in [0, 1] (not a percentage).

    Notebooks 05, 06 and 08.
    """
    if _unanswered(answer):
        return _missing(name)
    value, problem = _as_float(answer, name)
    if problem:
        return _wrong(problem)
    if value > 1 and 0 <= truth <= 1:
        return _wrong(f"{name} should be a share between 0 and 1, not a percentage")
    return check_number(value, truth, name=name, rel=0.0, abs_tol=abs_tol)


# ------------------------------------------------------------------------------------------------
# 01 · synthetic events
# ------------------------------------------------------------------------------------------------
def check_day_below(answer, *, half_life: float, share: float, name: str = "day_below") -> Check:
    """The first whole day after the peak on which :math:`I(t) = I_0 2^{-t/T_{1/2}}` is below ``share · I0``.

    Notebook 01.
    """
    if not (half_life > 0 and 0 < share < 1):
        raise ValueError(f"need half_life > 0 and 0 < share < 1, got {half_life}, {share}")
    days = np.arange(0, int(50 * half_life) + 2)
    curve = np.exp(-math.log(2) / half_life * days)  # I(t)/I0 after the peak
    truth = int(days[np.argmax(curve < share)])
    return check_count(answer, truth, name=name,
                       hints=[((truth - 1) / truth if truth else 1.0, "one day early: the curve must be *below* the share")])


def check_same_lambda(answer, truth_lam: pd.Series, *, name: str = "lam_purchase") -> Check:
    """λ per pair from the expected purchases: one number per pair, equal to the true λ.

    Notebook 01.
    """
    if _unanswered(answer):
        return _missing(name)
    if not isinstance(answer, (pd.Series, np.ndarray, list)):
        return _wrong(f"{name} should hold one λ per pair (a Series like lam_exact), got {type(answer).__name__}")
    a = np.asarray(answer, dtype=float)
    t = np.asarray(truth_lam, dtype=float)
    if a.shape != t.shape:
        return _wrong(f"{name} has {a.size} values; expected one per pair ({t.size})")
    if not np.isfinite(a).all():
        return _wrong(f"{name} has NaN or infinite values: a log of zero?")
    err = float(np.max(np.abs(a / t - 1)))
    if err < 1e-6:
        return _correct("every behaviour decays at the pair's λ")
    return _wrong(f"{name} differs from the true λ by up to {err:.0%}: use expected_purchase on the same two days")


# ------------------------------------------------------------------------------------------------
# 02 · preprocessing
# ------------------------------------------------------------------------------------------------
def check_trailing_corr(answer, one: pd.DataFrame, *, window: int, name: str = "corr_trailing") -> Check:
    """Correlation of the trailing ``window``-day mean of the example pair's score with its true score.

    Notebook 02.
    """

    if "true_score" not in one.columns:
        return _wrong("the example pair has no true score (your own events): this exercise needs the simulator")
    trailing = moving_mean(one, "interest", window, center=False)
    centered = moving_mean(one, "interest", window, center=True)
    truth = float(np.corrcoef(trailing, one["true_score"])[0, 1])
    hint = float(np.corrcoef(centered, one["true_score"])[0, 1])
    return check_number(answer, truth, name=name, rel=1e-3,
                        hints=[(hint / truth if truth else 1.0, "that is the centered mean: use center=False")])


# ------------------------------------------------------------------------------------------------
# 03 · forecasting
# ------------------------------------------------------------------------------------------------
def check_masked_mae(answer, forecast, reference, mask, *, step: int, name: str = "mae_persistence") -> Check:
    """MAE of ``forecast`` against ``reference`` at horizon ``step`` (1-based) over observed target days only.

    Notebook 03.
    """
    f = np.asarray(forecast, dtype=float)[:, step - 1]
    r = np.asarray(reference, dtype=float)[:, step - 1]
    m = np.asarray(mask, dtype=bool)[:, step - 1]
    truth = float(np.mean(np.abs(f - r)[m]))
    unmasked = float(np.mean(np.abs(f - r)))
    all_steps = float(np.mean(np.abs(np.asarray(forecast) - np.asarray(reference))[np.asarray(mask, dtype=bool)]))
    hints = []
    if not math.isclose(unmasked, truth, rel_tol=1e-6):
        hints.append((unmasked / truth, "outage days are in it: keep only target days where the mask is True"))
    if not math.isclose(all_steps, truth, rel_tol=1e-6):
        hints.append((all_steps / truth, f"that averages every horizon: take column {step - 1} (horizon {step}) only"))
    return check_number(answer, truth, name=name, rel=1e-6, hints=hints)


def check_ar_size(answer, ar, *, name: str = "n_coefficients") -> Check:
    """Number of fitted numbers in a :class:`decaylib.forecast.baselines.LinearAR` (weights and intercepts).

    Notebook 03b.
    """
    truth = ar.lags * ar.horizon + ar.horizon
    return check_count(answer, truth, name=name,
                       hints=[((ar.lags * ar.horizon) / truth, "the intercepts b (one per horizon) are missing"),
                              ((ar.lags + 1) / truth, "that is one horizon only: there is one set of weights per horizon")])


# ------------------------------------------------------------------------------------------------
# 04 · decay rate
# ------------------------------------------------------------------------------------------------
def check_log_ratio(lam, half_life, *, I_t: float, I_t_dt: float, dt: float) -> Check:
    """λ from the article's formula and the half-life ln 2/λ, for the given two observations.

    Notebooks 00 and 04.
    """

    truth = float(log_ratio_lambda(I_t, I_t_dt, dt))
    lam_problem = _judge(lam, truth, name="lam", rel=1e-4,
                         hints=[(dt, "not divided by Δt"), (-1.0, "the sign is wrong: λ > 0 when interest falls"),
                                (math.log(2) / truth ** 2 if truth else 1.0, "that is the half-life, not λ")])
    if lam_problem is not None:
        return _verdict(lam_problem)
    return _verdict(_judge(half_life, math.log(2) / truth, name="half_life", rel=1e-4,
                           hints=[(truth ** 2 / math.log(2), "that is λ again: the half-life is ln 2 / λ"),
                                  (1 / math.log(2), "use ln 2 / λ, not 1 / λ")]))


def check_crlb_ratio(answer, *, I0: float, lam: float, short_days: int, long_days: int, name: str = "ratio") -> Check:
    """Cramér-Rao bound on λ with ``short_days`` of decay over the bound with ``long_days`` (same I0, λ).

    Notebook 04.
    """

    def bound(days):
        t = np.arange(days, dtype=float)
        return float(np.asarray(cramer_rao_lambda(I0 * np.exp(-lam * t), t)).ravel()[0])

    truth = bound(short_days) / bound(long_days)
    return check_number(answer, truth, name=name, rel=1e-3,
                        hints=[(1 / truth ** 2 if truth else 1.0, "inverted: short over long, so the ratio is > 1")])


# ------------------------------------------------------------------------------------------------
# 04b · interest that events excite
# ------------------------------------------------------------------------------------------------
def _two_numbers(answer, name: str):
    """``(low, high)`` floats from a pair of numbers, or ``(None, problem)``."""
    if isinstance(answer, (str, bytes, dict)) or np.ndim(answer) != 1 or np.size(answer) != 2:
        return None, f"{name} should be two numbers (low, high), got {type(answer).__name__}"
    try:
        lo, hi = (float(v) for v in np.asarray(answer, dtype=float))
    except (TypeError, ValueError):
        return None, f"{name} should be two numbers (low, high), got {type(answer).__name__}"
    if math.isnan(lo) or math.isnan(hi):
        return None, f"{name} holds NaN: take both ends from fit.beta_interval"
    return (lo, hi), None


def check_half_life_interval(half_life, interval, fit: HawkesFit, *, name: str = "half_life",
                             interval_name: str = "half_life_interval") -> Check:
    """The half-life :math:`\\ln 2/\\beta` (days) of a :class:`~decaylib.decay.hawkes.HawkesFit` and its 90%
    interval ``(low, high)`` from ``fit.beta_interval``.

    Notebook 04b.
    """
    if not isinstance(fit, HawkesFit):
        raise TypeError(f"fit must be a HawkesFit, got {type(fit).__name__}")
    b_lo, b_hi = (float(v) for v in fit.beta_interval)
    if not (math.isfinite(b_lo) and math.isfinite(b_hi)):
        raise ValueError("the fit has no interval for beta: fit it with interval='profile' (or 'wald')")
    ln2, beta = math.log(2), float(fit.beta)
    truth = ln2 / beta
    problem = _judge(half_life, truth, name=name, rel=1e-4,
                     hints=[(1 / ln2, "use ln 2 / β, not 1 / β"),
                            (beta / truth, "that is β itself, a rate per day: the half-life is ln 2 / β")])
    if problem is not None:
        return _verdict(problem)
    if _unanswered(interval):
        return _missing(interval_name)
    pair, problem = _two_numbers(interval, interval_name)
    if problem:
        return _wrong(problem)
    want = (ln2 / b_hi, ln2 / b_lo)  # the larger β is the shorter half-life

    def same(a, b):
        return all(math.isclose(x, y, rel_tol=1e-4, abs_tol=1e-12) for x, y in zip(a, b))

    if same(pair, want):
        return _correct("a high β is a short half-life, so the ends trade places")
    for wrong, why in (((ln2 / b_lo, ln2 / b_hi), "the ends are swapped: the low end of the half-life comes from β's "
                                                  "high end"),
                       ((b_lo, b_hi), "that is β's interval: turn each end into a half-life"),
                       ((1 / b_hi, 1 / b_lo), "use ln 2 / β at each end, not 1 / β")):
        if same(pair, wrong) and not same(wrong, want):
            return _wrong(f"{interval_name}: {why}")
    for i, end in enumerate(("low", "high")):
        why = _compare(pair[i], want[i], rel=1e-4, abs_tol=1e-12)
        if why is not None:
            return _wrong(f"the {end} end of {interval_name} is {why}")
    return _correct()


def check_extra_events(answer, fit: HawkesFit, *, name: str = "extra_events") -> Check:
    """Expected extra events that one event brings over all the following days (at θ = 1, its own
    offspring only): :math:`\\alpha\\sum_{u\\ge1} e^{-\\beta u} = \\alpha e^{-\\beta}/(1-e^{-\\beta})`, for a
    fit of one event type, where it is the library's ``fit.branching_ratio``.

    Notebook 04b.
    """
    if not isinstance(fit, HawkesFit):
        raise TypeError(f"fit must be a HawkesFit, got {type(fit).__name__}")
    if np.shape(fit.alpha) != (1, 1):
        raise ValueError(f"this check needs a fit of one event type, got {list(fit.types)}: with several, one event "
                         f"excites each type by its own α")
    truth = float(fit.branching_ratio)
    a, beta = float(fit.alpha[0, 0]), float(fit.beta)
    q = math.exp(-beta)
    candidates = [(a / -math.expm1(-beta), "the excitation starts the day after the event: sum over u = 1, 2, ... "
                                           "(one factor e^(−β) fewer than that)"),
                  (a / beta, "α/β is the integral of a kernel in continuous time; over whole days the sum is geometric"),
                  (a * q, "that is the next day only: add every following day"),
                  (a, "that is α alone: the excitation lasts more than a day")]
    if truth < 1:
        candidates.insert(2, (truth / (1 - truth), "that counts the offspring's offspring too: the question asks for "
                                                    "the events that the one event brings itself"))
    hints = [(v / truth, text) for v, text in candidates
             if truth > 0 and math.isfinite(v) and not math.isclose(v, truth, rel_tol=0.02)]
    return check_number(answer, truth, name=name, rel=1e-4, hints=hints)


def check_branching_without_excitation(answer, sim, *, name: str = "branching0", sim_name: str = "sim0") -> Check:
    """The branching ratio of :func:`decaylib.decay.hawkes.fit_hawkes` (``satiation=False``) on ``sim``, a
    :func:`decaylib.data.synth.simulate_self_exciting` run in which nothing excites (``alpha`` all 0).

    Notebook 04b.
    """
    if _unanswered(answer):
        return _missing(name)
    if _unanswered(sim):
        return _missing(sim_name)
    if not (hasattr(sim, "panel") and isinstance(getattr(sim, "truth", None), dict)):
        raise TypeError(f"{sim_name} must be a simulate_self_exciting result, got {type(sim).__name__}")
    alpha = np.asarray(sim.truth["alpha"], dtype=float)
    if np.any(alpha != 0):
        k = alpha.shape[0]
        return _wrong(f"the simulation still has excitation: simulate with alpha=np.zeros(({k}, {k}))")
    with warnings.catch_warnings():  # a flat profile in β is the point of the exercise, not news
        warnings.simplefilter("ignore", DataWarning)
        fit = fit_hawkes(sim.panel, types=list(sim.truth["types"]), satiation=False, interval=None)
    truth = float(fit.branching_ratio)
    hints = [(float(fit.alpha.max()) / truth, "that is the largest α: the branching ratio also counts how long "
                                               "the excitation lasts (β)")] if truth > 0 else []
    hints = [(f, t) for f, t in hints if math.isfinite(f) and not math.isclose(f, 1.0, rel_tol=0.02)]
    return check_number(answer, truth, name=name, rel=1e-3, hints=hints)


# ------------------------------------------------------------------------------------------------
# 05 · decay points
# ------------------------------------------------------------------------------------------------
def _hint(value: float, candidates, *, rel: float = 1e-6, abs_tol: float = 1e-9) -> str | None:
    """The text of the first ``(number, text)`` candidate that ``value`` matches: a known mistake."""
    for number, text in candidates:
        if number is not None and math.isfinite(number) and math.isclose(value, number, rel_tol=rel, abs_tol=abs_tol):
            return text
    return None


def _share_with_hints(answer, truth: float, candidates, *, name: str, abs_tol: float = 5e-4) -> Check:
    """A share in [0, 1] against ``truth``, naming a known mistake when the answer matches one."""
    if _unanswered(answer):
        return _missing(name)
    value, problem = _as_float(answer, name)
    if problem:
        return _wrong(problem)
    if math.isclose(value, truth, rel_tol=0.0, abs_tol=abs_tol):
        return _correct()
    why = _hint(value, [(n, t) for n, t in candidates if n is not None and not math.isclose(n, truth, rel_tol=0.0, abs_tol=abs_tol)],
                rel=0.0, abs_tol=abs_tol / 5)
    if why:
        return _wrong(f"{name}: {why}")
    return check_share(value, truth, name=name, abs_tol=abs_tol)


def check_precision_at_prominence(answer, panel: pd.DataFrame, true_peaks: pd.DataFrame, *, prominence: float,
                                  margin: int, usual_prominence: float | None = None,
                                  name: str = "precision_low") -> Check:
    """Precision (a share) of :func:`decaylib.decay.points.find_decay_point` at ``prominence`` against
    ``true_peaks`` (``user_id, category, t_peak``) within ``margin`` days.

    Notebook 05.
    """

    def metrics(p):
        return decay_point_metrics(find_decay_point(panel, prominence=p), true_peaks, margin=margin)

    m = metrics(prominence)
    candidates = [(m["recall"], "that is the recall (matched true peaks / all true peaks), not the precision"),
                  (m["f1"], "that is the F1 score, not the precision")]
    if usual_prominence is not None:
        candidates.insert(0, (metrics(usual_prominence)["precision"],
                              f"that is the precision at prominence {usual_prominence:g}: rerun the detector with "
                              f"prominence={prominence:g}"))
    return _share_with_hints(answer, m["precision"], candidates, name=name)


def check_extra_decay_points(answer, panel: pd.DataFrame, *, noise_k: float, prominence: float = 0.3,
                             name: str = "n_more") -> Check:
    """How many more pairs get an ``"ok"`` decay point from :func:`decaylib.decay.points.find_decay_point`
    with ``EvidenceRules(noise_k=noise_k)`` than with the default rules (both at ``prominence``).

    Notebook 05.
    """

    default = int((find_decay_point(panel, prominence=prominence)["reason"] == "ok").sum())
    relaxed = int((find_decay_point(panel, prominence=prominence, rules=EvidenceRules(noise_k=noise_k))["reason"] == "ok").sum())
    truth = relaxed - default
    if _unanswered(answer):
        return _missing(name)
    value, problem = _as_float(answer, name)
    if problem:
        return _wrong(problem)
    why = _hint(value, [(relaxed, "that is the total with the relaxed rule: subtract the count with the default rules"),
                        (-truth, "the sign is wrong: relaxed minus default"),
                        (len(panel.groupby(list(PAIR_COLS)).size()) - default,
                         "that counts every pair without a point, not only those the relaxed rule accepts")])
    if why and value != truth:
        return _wrong(f"{name}: {why}")
    return check_count(value, truth, name=name)


# ------------------------------------------------------------------------------------------------
# 06 · recommendations
# ------------------------------------------------------------------------------------------------
def _ndcg_of(recs, relevant, k, graded=True) -> float:

    metric = E.graded_ndcg_at_k if graded else E.ndcg_at_k
    return float(metric(recs.assign(strategy="exercise"), relevant, k).mean())


def check_decay_aware_ndcg(answer, panel: pd.DataFrame, cutoff_day: int, relevant, *, k: int, lam, decay_points=None,
                           n_fresh: int, horizon: int, usual: dict | None = None, name: str = "ndcg") -> Check:
    """Mean graded NDCG@``k`` of :func:`decaylib.recommend.strategies.rank_decay_aware` with these inputs.

    ``usual``: the arguments (``lam``, ``decay_points``, ``n_fresh``) that the notebook itself used, if
    the exercise changes one of them: an answer equal to that ranking's NDCG is named as such.

    Notebook 06.
    """

    def run(**kw):
        args = dict(lam=lam, decay_points=decay_points, n_fresh=n_fresh, horizon=horizon) | kw
        return rank_decay_aware(panel, cutoff_day, k, **args)

    recs = run()
    truth = _ndcg_of(recs, relevant, k)
    if not math.isfinite(truth):  # no user has a relevant category in the window: NDCG is undefined
        if _unanswered(answer):
            return _missing(name)
        value = np.asarray(answer, dtype=float).ravel() if np.size(answer) == 1 else np.array([0.0])
        if not np.isfinite(value[0]):
            return _correct("undefined (NaN): no user has an event in the future window")
        return _wrong(f"{name}: no user has an event in the future window, so the mean NDCG is undefined (NaN)")
    candidates = [(_ndcg_of(recs, relevant, k, graded=False), "that is the binary NDCG: use graded_ndcg_at_k")]
    if usual:
        changed = ", ".join(f"{key}" for key in usual)
        candidates.insert(0, (_ndcg_of(run(**usual), relevant, k),
                              f"that is the notebook's own ranking: change {changed} as the exercise asks"))
    return _share_with_hints(answer, truth, candidates, name=name, abs_tol=1e-6)


# ------------------------------------------------------------------------------------------------
# 07 · user report
# ------------------------------------------------------------------------------------------------
def check_changed_actions(answer, baseline: pd.DataFrame, panel: pd.DataFrame, user, today: int, *,
                          name: str = "changed", **settings) -> Check:
    """The categories whose action in :func:`decaylib.recommend.advice.category_actions` (``settings``, e.g. a
    new ``stop_ratio``) differs from ``baseline`` (the notebook's ``advice``), as a list of codes.

    Notebook 07.
    """

    if _unanswered(answer):
        return _missing(name)
    if isinstance(answer, (str, bytes)) or not isinstance(answer, (list, tuple, set, np.ndarray, pd.Series, pd.Index)):
        return _wrong(f"{name} should be a list of category codes (an empty list if none changes), got {type(answer).__name__}")
    after = category_actions(panel, user, today, **settings).set_index("category")["action"]
    before = baseline.set_index("category")["action"]
    truth = {c for c in before.index if before[c] != after.get(c)}
    got = set(np.asarray(list(answer)).tolist())
    unknown = got - set(before.index)
    if unknown:
        return _wrong(f"{name} holds {len(unknown)} value(s) that are not this user's categories: give category codes")
    if got == truth:
        return _correct("empty, as it should be" if not truth else "")
    missing, extra = len(truth - got), len(got - truth)
    parts = ([f"{missing} categor{'y' if missing == 1 else 'ies'} whose action changes {'is' if missing == 1 else 'are'} missing"]
             if missing else []) + ([f"{extra} categor{'y' if extra == 1 else 'ies'} in it keep{'s' if extra == 1 else ''} "
                                     "the same action"] if extra else [])
    return _wrong(f"{name}: " + "; ".join(parts))


def check_days_since(answer, advice: pd.DataFrame, today: int, *, name: str = "days_since") -> Check:
    """Days from each category's last event (``advice["last_event_day"]``) to the report date, one per row.

    Notebook 07.
    """
    if _unanswered(answer):
        return _missing(name)
    if np.ndim(answer) != 1:
        return _wrong(f"{name} should hold one number per category (a Series like advice['level']), "
                      f"got {type(answer).__name__}")
    a = np.asarray(answer, dtype=float)
    last = advice["last_event_day"].to_numpy(dtype=float)
    if a.shape != last.shape:
        return _wrong(f"{name} has {a.size} values; expected one per category of the advice table ({last.size})")
    truth = today - last
    same = lambda x, y: bool(np.allclose(x, y, equal_nan=True))  # noqa: E731
    if same(a, truth):
        return _correct()
    for wrong, why in ((-truth, "the sign is wrong: the report date minus the last event day"),
                       (truth + 1, "one day too many everywhere: a category with an event today is 0 days away"),
                       (last, "that is the last event day itself, not the days since")):
        if same(a, wrong):
            return _wrong(f"{name}: {why}")
    return _wrong(f"{name} differs for {int(np.sum(~np.isclose(a, truth, equal_nan=True)))} of {a.size} categories")


# ------------------------------------------------------------------------------------------------
# 08 · real data
# ------------------------------------------------------------------------------------------------
def check_events_for_rel_sd(answer, *, lam: float, days: int, target: float, name: str = "n_events") -> Check:
    """The fewest expected events (a whole number) over ``days`` days of decay at rate ``lam`` for which the
    Cramér-Rao bound on the relative sd of λ is below ``target``.

    Notebook 08.
    """

    t = np.arange(days, dtype=float)
    shape = np.exp(-lam * t)

    def rel(total):
        return float(np.asarray(cramer_rao_lambda(total * shape / shape.sum(), t)).ravel()[0]) / lam

    n = max(1, math.ceil((rel(1.0) / target) ** 2) - 2)
    while rel(n) >= target:
        n += 1
    return check_count(answer, n, name=name, hints=[((n - 1) / n, "one short: the bound must be *below* the target")])


def check_share_repeat_pairs(answer, orders: pd.DataFrame, columns: dict, *, n_chars: int, min_days: int = 5,
                             name: str = "share_5_two") -> Check:
    """Share of (customer, family) pairs with purchases on at least ``min_days`` distinct days, where
    the family is the first ``n_chars`` characters of the item code (``load_events`` with ``columns``).

    Notebook 08.
    """

    def shares(chars):
        ev = load_events(orders, columns=columns, event_map=PURCHASE,
                         category=lambda df: df["item_id"].astype(str).str[:chars]).events
        g = ev.assign(day=ev["ts"].dt.floor("D")).groupby(list(PAIR_COLS))
        return float((g["day"].nunique() >= min_days).mean()), float((g.size() >= min_days).mean())

    truth, by_lines = shares(n_chars)
    usual = shares(3)[0] if n_chars != 3 else None
    return _share_with_hints(answer, truth, [
        (usual, f"that is the share with three-character families: use the first {n_chars} characters"),
        (by_lines, "that counts purchase lines, not distinct purchase days")], name=name)


# ------------------------------------------------------------------------------------------------
# 09 · scaling up
# ------------------------------------------------------------------------------------------------
def check_pairs_with_lambda(answer, daily_counts: pd.DataFrame, *, last_day: int, name: str = "n_with_lambda") -> Check:
    """Pairs whose λ is estimable (reason ``"ok"``) when the daily counts up to ``last_day`` are streamed
    into a :class:`decaylib.decay.stream.DecayState`.

    Notebook 09.
    """

    upto = daily_counts[daily_counts["day"] <= last_day]
    lam = DecayState.replay(upto).lam()
    truth = int((lam["reason"] == "ok").sum())
    every = len(DecayState.replay(daily_counts).lam())
    return check_count(answer, truth, name=name,
                       hints=[(len(lam) / truth if truth else 1.0, "that counts every pair seen: keep reason == 'ok'"),
                              (every / truth if truth else 1.0, "that uses every day, not the first half")])


def check_outage_changes(answer, stats: pd.DataFrame, *, outage_days, name: str = "n_changed") -> Check:
    """Pairs whose λ (``lam_hat``) or reason from :func:`decaylib.decay.stream.lambda_from_stats` changes
    when ``outage_days`` are marked as outages.

    Notebook 09.
    """

    before, after = lambda_from_stats(stats), lambda_from_stats(stats, list(outage_days))
    b, a = before["lam_hat"].to_numpy(dtype=float), after["lam_hat"].to_numpy(dtype=float)
    moved = ~np.isclose(a, b, rtol=1e-12, atol=0.0, equal_nan=True) | (before["reason"].to_numpy() != after["reason"].to_numpy())
    truth = int(moved.sum())
    if _unanswered(answer):
        return _missing(name)
    value, problem = _as_float(answer, name)
    if problem:
        return _wrong(problem)
    nan_as_change = int((~np.isclose(a, b, rtol=1e-12, atol=0.0) | (before["reason"].to_numpy() != after["reason"].to_numpy())).sum())
    if value != truth:
        why = _hint(value, [(nan_as_change, "pairs without a λ (NaN) count as changed: NaN != NaN, compare with "
                                            "np.isclose(..., equal_nan=True)"),
                            (len(stats), "that is every pair, changed or not")])
        if why and nan_as_change != truth:
            return _wrong(f"{name}: {why}")
    return check_count(value, truth, name=name)
