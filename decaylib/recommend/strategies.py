"""Ranking strategies for categories, decay-aware and classical (notebook 06).

At a cutoff day ``T`` every strategy ranks, for every user seen up to ``T``, the categories to
recommend next.  Each strategy filters the panel to ``day <= T`` itself, so no strategy can look
past the cutoff; the events in ``(T, T + h]`` are then used to evaluate the lists.

Strategies (``rank_categories(strategy, ...)`` dispatches on the name):

``popularity``
    Global category popularity up to ``T``; the same list for everyone.
``recency``
    The user's categories by the day of their last interaction.
``no_decay``
    The user's categories by their summed interest score, without any decay.
``sar_h30``
    SAR-style global half-life decay (Microsoft Recommenders):
    ``score = sum_t interest_t * (1/2) ** ((T - t) / H)`` with ``H = 30`` days.
``sar_tuned``
    The same with ``H`` tuned on a validation cutoff ``T - tune_days`` (default ``tune_days`` = the
    horizon) over a grid of half-lives, ``candidates`` (:func:`rank_sar_tuned`, :func:`tune_half_life`,
    with the metrics of :mod:`decaylib.evaluation.ranking`).
``predicted_counts``
    Each pair's expected interest over the next ``h`` days from a count forecast of
    :func:`decaylib.decay.counts.forecast_counts` (default the pooled decay, ``method="shrunk"``); no
    demotion tier: a fading pair sinks by its own forecast (:func:`rank_predicted`).
``decay_aware``
    Each pair's expected interest over the next ``h`` days from its current (causal) level and
    its own decay rate, ``L * sum_{k=1..h} exp(-lam * k)``; pairs past their decay point are
    demoted and ``n_fresh`` slots go to categories the user never interacted with.

Personalised strategies fill lists shorter than ``k`` with the most popular categories the user
has not interacted with (``source == "backfill"``), so that every strategy offers the same number
of slots and the comparison is fair.

Every ranking is a DataFrame with columns ``user_id, strategy, rank, category, score, source``
(``rank`` starts at 1; ties are broken by the smaller category id).  ``score`` is comparable only
between rows of the same ``source``: ``personal``/``decayed`` rows carry the strategy's own score,
``fresh``/``backfill``/``popular`` rows the popularity that ordered them.

Leakage rules the caller must respect
-------------------------------------
* λ estimates (``lam``) and decay points (``decay_points``) passed to :func:`rank_decay_aware`
  must have been computed from data up to ``T`` only.  Retrospective decay points (found on the
  whole series) or λ fitted on the whole panel leak the future into the ranking.
  :func:`estimate_lambda_causal` is a simple built-in estimator that respects the cutoff.
* ``panel.interest_smooth`` is a CENTERED filter (it uses future days) and is never used here;
  the current level is a causal exponentially weighted mean of ``interest``.

Import flow (one way): ``decaylib.data.panel`` -> :mod:`decaylib.evaluation.ranking` (metrics) -> ``recommend``
(strategies and the tuning of SAR's half-life) -> :mod:`decaylib.recommend.advice` (the per-user report).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from decaylib.checks import check_choice, check_int, check_positive, require_frame
from decaylib.data.panel import (
    day_range,
    observed_mask,
    panel_upto,
    run_positions,
    smooth_interest,
)
from decaylib.decay import evidence as _ev
from decaylib.decay.counts import forecast_counts
from decaylib.decay.evidence import UNCERTAINTY_COLS
from decaylib.decay.points import find_decay_point
from decaylib.decay.rate import (
    SAR_DEFAULT_HALF_LIFE,
    decay_phase_table,
    fit_poisson_mle,
    sar_tuning_cutoff,
    sar_weight,
)
from decaylib.evaluation.ranking import hit_rate_at_k, ndcg_at_k, relevant_items
from decaylib.schema import BEHAVIOURS, PAIR_COLS

__all__ = ['STRATEGIES', 'DEFAULT_HALF_LIFE_CANDIDATES', 'REC_COLUMNS', 'expected_decay_sum', 'category_popularity', 'estimate_lambda_causal', 'rank_popularity', 'rank_recency', 'rank_no_decay', 'rank_sar', 'rank_sar_tuned', 'rank_decay_aware', 'rank_predicted', 'rank_categories', 'rank_many', 'decay_inputs_at_cutoff']

STRATEGIES: tuple[str, ...] = ("popularity", "recency", "no_decay", "sar_h30", "sar_tuned", "decay_aware", "predicted_counts")


#: Half-lives tried by the SAR tuning: half a day to a year, so that the optimum is normally interior
#: (``TuneResult.at_edge`` says when it is not).
DEFAULT_HALF_LIFE_CANDIDATES: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0, 5.0, 7.0, 10.0, 14.0, 21.0, 30.0, 45.0, 60.0, 90.0,
                                                  120.0, 180.0, 365.0)

REC_COLUMNS: list[str] = ["user_id", "strategy", "rank", "category", "score", "source"]


def _pair_stats(past: pd.DataFrame) -> pd.DataFrame:
    """Per (user, category) pair up to the cutoff: total interest, last interaction day."""
    inter = past["interest"].to_numpy(dtype=float)
    tmp = pd.DataFrame(
        {
            "user_id": past["user_id"].to_numpy(),
            "category": past["category"].to_numpy(),
            "interest": inter,
            "active_day": np.where(inter > 0, past["day"].to_numpy(dtype=float), np.nan),
        }
    )
    g = tmp.groupby(list(PAIR_COLS), sort=True)
    stats = pd.DataFrame({"total": g["interest"].sum(), "last_day": g["active_day"].max()}).reset_index()
    stats["seen"] = stats["total"].to_numpy() > 0
    return stats


def _assemble(
    strategy: str,
    users: np.ndarray,
    k: int,
    *,
    personal: pd.DataFrame | None = None,
    order: pd.DataFrame | None = None,
    n_fresh: int = 0,
    backfill: bool = True,
    exclude: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Build top-``k`` lists from a personal ranking and a global order of unseen categories.

    ``personal`` holds ``user_id, category, score, demoted`` (the user's seen categories),
    ``order`` holds ``category, score`` sorted best first.  The personal list is
    sorted non-demoted first, then by score (descending), then category id.  Slots are filled
    tier by tier: 0 = the first ``k - n_fresh`` personal items; 1 = ``n_fresh`` fresh (unseen)
    categories from ``order``; 2 = the rest of the personal list (reached only when there are
    not enough unseen categories); 3 = more unseen categories from ``order`` if ``backfill``.
    Unseen means not in ``personal`` and not in ``exclude`` (``user_id, category``).
    """
    users = np.asarray(users, dtype=np.int64)
    cols: dict[str, list[np.ndarray]] = {k_: [] for k_ in ("user_id", "category", "score", "tier", "order", "source")}
    p_user = np.zeros(0, dtype=np.int64)
    p_cat = np.zeros(0, dtype=np.int64)
    if personal is not None and len(personal):
        p_user = personal["user_id"].to_numpy(dtype=np.int64)
        p_cat = personal["category"].to_numpy(dtype=np.int64)
        score = personal["score"].to_numpy(dtype=float)
        demoted = personal["demoted"].to_numpy(dtype=bool)
        idx = np.lexsort((p_cat, -score, demoted, p_user))
        p_user, p_cat, score, demoted = p_user[idx], p_cat[idx], score[idx], demoted[idx]
        pos = run_positions(p_user)
        tier = np.where(pos < k - n_fresh, 0, 2)
        for name, arr in (
            ("user_id", p_user),
            ("category", p_cat),
            ("score", score),
            ("tier", tier),
            ("order", pos),
            ("source", np.where(demoted, "decayed", "personal").astype(object)),
        ):
            cols[name].append(arr)
    if order is not None and len(order) and (n_fresh > 0 or backfill):
        o_cat = order["category"].to_numpy(dtype=np.int64)
        o_score = order["score"].to_numpy(dtype=float)
        if exclude is not None and len(exclude):
            p_user = np.concatenate([p_user, exclude["user_id"].to_numpy(dtype=np.int64)])
            p_cat = np.concatenate([p_cat, exclude["category"].to_numpy(dtype=np.int64)])
        max_seen = int(np.bincount(np.searchsorted(users, p_user)).max()) if len(p_user) else 0
        m = min(len(o_cat), k + max_seen)
        uu = np.repeat(users, m)
        cc = np.tile(o_cat[:m], len(users))
        ss = np.tile(o_score[:m], len(users))
        if len(p_user):
            all_cats = np.unique(np.concatenate([o_cat, p_cat]))
            n_c = len(all_cats)
            key = np.searchsorted(users, uu) * n_c + np.searchsorted(all_cats, cc)
            seen_key = np.searchsorted(users, p_user) * n_c + np.searchsorted(all_cats, p_cat)
            keep = ~np.isin(key, seen_key)
            uu, cc, ss = uu[keep], cc[keep], ss[keep]
        upos = run_positions(uu)
        keep = (upos < k) & ((upos < n_fresh) | backfill)
        uu, cc, ss, upos = uu[keep], cc[keep], ss[keep], upos[keep]
        is_fresh = upos < n_fresh
        for name, arr in (
            ("user_id", uu),
            ("category", cc),
            ("score", ss),
            ("tier", np.where(is_fresh, 1, 3)),
            ("order", upos),
            ("source", np.where(is_fresh, "fresh", "backfill").astype(object)),
        ):
            cols[name].append(arr)
    if not cols["user_id"]:
        return _empty_recs()
    u = np.concatenate(cols["user_id"])
    c = np.concatenate(cols["category"])
    s = np.concatenate(cols["score"])
    t = np.concatenate(cols["tier"])
    o = np.concatenate(cols["order"])
    src = np.concatenate(cols["source"])
    idx = np.lexsort((c, o, t, u))
    u, c, s, src = u[idx], c[idx], s[idx], src[idx]
    rank = run_positions(u) + 1
    keep = rank <= k
    return _recs_frame(strategy, u[keep], rank[keep], c[keep], s[keep], src[keep])


def _recs_frame(strategy, user, rank, category, score, source) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "user_id": np.asarray(user, dtype=np.int64),
            "strategy": pd.array([strategy] * len(user), dtype="str"),
            "rank": np.asarray(rank, dtype=np.int64),
            "category": np.asarray(category, dtype=np.int64),
            "score": np.asarray(score, dtype=float),
            "source": pd.array(np.asarray(source, dtype=object), dtype="str"),
        }
    )


def _empty_recs() -> pd.DataFrame:
    return _recs_frame("", [], [], [], [], [])


def _popularity_order(past: pd.DataFrame, cutoff_day: int, window: int | None, by: str) -> pd.DataFrame:
    return _popularity_from_past(past, cutoff_day, window, by)[["category", "score"]]


def expected_decay_sum(lam, horizon: int) -> np.ndarray:
    """Closed form of ``sum_{k=1..h} exp(-lam * k)`` (``h`` when ``lam == 0``).

    ``exp(-lam) * (1 - exp(-lam h)) / (1 - exp(-lam))``, evaluated with ``expm1`` so that it is
    accurate for small ``|lam|``; negative ``lam`` (rising interest) is allowed.

    Notebook 06.
    """
    horizon = check_int("horizon", horizon, minimum=1)
    lam = np.asarray(lam, dtype=float)
    if not np.all(np.isfinite(lam)):
        raise ValueError("lam must be finite")
    small = np.abs(lam) < 1e-12
    safe = np.where(small, 1.0, lam)
    out = np.exp(-safe) * np.expm1(-safe * horizon) / np.expm1(-safe)
    return np.where(small, float(horizon), out)


def category_popularity(panel: pd.DataFrame, cutoff_day: int, window: int | None = None, by: str = "users") -> pd.DataFrame:
    """Category popularity from the panel rows with ``day <= cutoff_day``.

    Parameters
    ----------
    panel : DataFrame
        Daily panel (``user_id, category, day, interest``).
    cutoff_day : int
        ``T``; later rows are ignored.
    window : int, optional
        Count only the last ``window`` days ``(T - window, T]`` ("trending"); ``None`` = all days.
    by : {"users", "interest"}
        ``"users"``: number of distinct users with positive interest; ``"interest"``: summed
        interest score.  The other measure, then the all-time interest up to ``T``, then the
        smaller category id break ties.

    Returns
    -------
    DataFrame
        ``category, score, n_users, interest, rank`` sorted best first; every category seen up
        to ``T`` appears (with score 0 if it had no activity in the window).

    Notebook 06.
    """
    check_choice("by", by, ("users", "interest"))
    if window is not None:
        window = check_int("window", window, minimum=1)
    return _popularity_from_past(panel_upto(panel, cutoff_day), int(cutoff_day), window, by)


def _popularity_from_past(past: pd.DataFrame, cutoff_day: int, window: int | None, by: str) -> pd.DataFrame:
    inter = past["interest"].to_numpy(dtype=float)
    day = past["day"].to_numpy()
    in_win = np.ones(len(past), dtype=bool) if window is None else day > cutoff_day - window
    tmp = pd.DataFrame(
        {
            "category": past["category"].to_numpy(),
            "user_id": past["user_id"].to_numpy(),
            "win_interest": np.where(in_win, inter, 0.0),
            "all_interest": inter,
        }
    )
    g = tmp.groupby("category", sort=True)
    out = pd.DataFrame({"interest": g["win_interest"].sum(), "all_interest": g["all_interest"].sum()})
    active = tmp[tmp["win_interest"].to_numpy() > 0]
    n_users = active.groupby("category")["user_id"].nunique()
    out["n_users"] = n_users.reindex(out.index, fill_value=0).astype(np.int64)
    out = out.reset_index()
    primary, secondary = ("n_users", "interest") if by == "users" else ("interest", "n_users")
    idx = np.lexsort(
        (
            out["category"].to_numpy(),
            -out["all_interest"].to_numpy(),
            -out[secondary].to_numpy(dtype=float),
            -out[primary].to_numpy(dtype=float),
        )
    )
    out = out.iloc[idx].reset_index(drop=True)
    out["score"] = out[primary].to_numpy(dtype=float)
    out["rank"] = np.arange(1, len(out) + 1, dtype=np.int64)
    return out[["category", "score", "n_users", "interest", "rank"]]


def estimate_lambda_causal(panel: pd.DataFrame, cutoff_day: int, window: int = 14, min_days: int = 5,
                           rules=None) -> pd.DataFrame:
    """Per-pair decay rate from a trailing window ending at the cutoff (no future data).

    Fits ``log1p(interest_t) ~ a - lam * t`` by weighted least squares on the observed days in
    ``(T - window, T]`` with weights ``1 + interest_t`` (roughly the inverse variance of the
    log of a Poisson-like count), vectorized with grouped sums.  A simple fallback so that
    ``decay_aware`` runs without external estimates: ``log1p`` pulls the slope towards 0 when
    counts are small, so ``decaylib.decay.rate`` (fitted with data up to ``T`` only) gives better λ.

    Evidence (:mod:`decaylib.decay.evidence`, ``rules``): at least ``rules.min_events`` events
    (view+click+cart+purchase, when the panel has those columns) and ``rules.min_active_days``
    active days in the window; otherwise NaN with ``"insufficient_data"`` (``decay_aware``
    then uses its global λ for the pair).

    Returns
    -------
    DataFrame
        ``user_id, category, lam_hat``, the uncertainty columns of
        :func:`decaylib.decay.evidence.uncertainty_columns` (``se_lam`` from the weighted residual
        variance, Wald interval), ``n_days``, ``reason`` (``"ok"``, ``"too_few_days"``: fewer
        than ``min_days`` observed days in the window, ``"all_zero"``: no positive interest
        there, ``"insufficient_data"``, ``"t_constant"``).  ``lam_hat`` is NaN unless ``"ok"``.
        Negative ``lam_hat`` means rising interest.

    Notebook 06.
    """

    window = check_int("window", window, minimum=2)
    min_days = check_int("min_days", min_days, minimum=2)
    rules = _ev.resolve_rules(rules)
    past = panel_upto(panel, cutoff_day)
    cutoff_day = int(cutoff_day)
    day = past["day"].to_numpy()
    mask = (day > cutoff_day - window) & observed_mask(past)
    y_raw = past["interest"].to_numpy(dtype=float)[mask]
    ev = _ev.event_counts(past)
    ev = y_raw if ev is None else ev[mask]  # without count columns the score stands in for the counts
    x = (day[mask] - cutoff_day).astype(float)
    y = np.log1p(y_raw)
    w = 1.0 + y_raw
    tmp = pd.DataFrame(
        {
            "user_id": past["user_id"].to_numpy()[mask],
            "category": past["category"].to_numpy()[mask],
            "w": w,
            "wx": w * x,
            "wy": w * y,
            "wxx": w * x * x,
            "wxy": w * x * y,
            "wyy": w * y * y,
            "n": np.ones(len(x), dtype=np.int64),
            "pos": (y_raw > 0).astype(np.int64),
            "events": ev,
            "active": (ev > 0).astype(np.int64),
        }
    )
    s = tmp.groupby(list(PAIR_COLS), sort=True).sum()
    sw, swx, swy, swxx, swxy, swyy = (s[c].to_numpy() for c in ("w", "wx", "wy", "wxx", "wxy", "wyy"))
    n = s["n"].to_numpy()
    denom = sw * swxx - swx**2
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (sw * swxy - swx * swy) / denom
        icpt = (swy - slope * swx) / sw
        # weighted residual sum of squares from the sums: sum w (y - a - b x)^2
        rss = swyy - 2 * icpt * swy - 2 * slope * swxy + icpt**2 * sw + 2 * icpt * slope * swx + slope**2 * swxx
        se = np.sqrt(np.maximum(rss, 0.0) / (n - 2) * sw / denom)
    reason = _ev.first_reason(len(s), [
        (n < max(min_days, 3), "too_few_days"),
        (s["pos"].to_numpy() == 0, "all_zero"),
        (_ev.insufficient_mask(s["events"].to_numpy(dtype=float), s["active"].to_numpy(), rules), "insufficient_data"),
        (~(denom > 1e-12 * np.maximum(sw * swxx, 1.0)), "t_constant"),
    ])
    ok = reason == "ok"
    out = s.index.to_frame(index=False)
    out["lam_hat"] = np.where(ok, -slope, np.nan)
    for c, a in _ev.uncertainty_columns(-slope, se, ok, rules).items():
        out[c] = a
    out["n_days"] = n
    out["reason"] = reason.astype(str)
    return out


def rank_popularity(
    panel: pd.DataFrame,
    cutoff_day: int,
    k: int = 10,
    *,
    window: int | None = None,
    by: str = "users",
    exclude_seen: bool = False,
) -> pd.DataFrame:
    """Global popularity up to ``T`` (see :func:`category_popularity`); the same list for everyone.

    ``exclude_seen=True`` removes the categories each user already interacted with.

    Notebook 06.
    """
    k = check_int("k", k, minimum=1)
    check_choice("by", by, ("users", "interest"))
    if window is not None:
        window = check_int("window", window, minimum=1)
    past = panel_upto(panel, cutoff_day)
    users = np.unique(past["user_id"].to_numpy())
    order = _popularity_order(past, int(cutoff_day), window, by)
    if exclude_seen:
        stats = _pair_stats(past)
        seen = stats.loc[stats["seen"].to_numpy(), list(PAIR_COLS)]
        recs = _assemble("popularity", users, k, order=order, n_fresh=0, backfill=True, exclude=seen)
    else:
        top = order.iloc[:k]
        m = len(top)
        recs = _recs_frame(
            "popularity",
            np.repeat(users, m),
            np.tile(np.arange(1, m + 1), len(users)),
            np.tile(top["category"].to_numpy(), len(users)),
            np.tile(top["score"].to_numpy(dtype=float), len(users)),
            np.full(m * len(users), "popular", dtype=object),
        )
    recs["source"] = pd.array(np.full(len(recs), "popular", dtype=object), dtype="str")
    return recs.reset_index(drop=True)


def _rank_personal(
    strategy: str,
    past: pd.DataFrame,
    cutoff_day: int,
    k: int,
    score: pd.DataFrame,
    backfill: bool,
    order: pd.DataFrame | None = None,
) -> pd.DataFrame:
    users = np.unique(past["user_id"].to_numpy())
    if backfill and order is None:
        order = _popularity_order(past, cutoff_day, None, "users")
    return _assemble(strategy, users, k, personal=score.assign(demoted=False), order=order, n_fresh=0, backfill=backfill)


def _rank_by_pair_stat(strategy: str, stat: str, panel: pd.DataFrame, cutoff_day: int, k: int,
                       backfill: bool) -> pd.DataFrame:
    """Rank each user's seen categories by one column of :func:`_pair_stats` (data up to ``T``)."""
    k = check_int("k", k, minimum=1)
    past = panel_upto(panel, cutoff_day)
    stats = _pair_stats(past)
    seen = stats.loc[stats["seen"].to_numpy()]
    score = pd.DataFrame({"user_id": seen["user_id"], "category": seen["category"], "score": seen[stat]})
    return _rank_personal(strategy, past, int(cutoff_day), k, score, backfill)


def rank_recency(panel: pd.DataFrame, cutoff_day: int, k: int = 10, *, backfill: bool = True) -> pd.DataFrame:
    """The user's categories by their last interaction day up to ``T`` (score = that day).

    Notebook 06.
    """
    return _rank_by_pair_stat("recency", "last_day", panel, cutoff_day, k, backfill)


def rank_no_decay(panel: pd.DataFrame, cutoff_day: int, k: int = 10, *, backfill: bool = True) -> pd.DataFrame:
    """The user's categories by their total interest score up to ``T`` (no decay).

    Notebook 06.
    """
    return _rank_by_pair_stat("no_decay", "total", panel, cutoff_day, k, backfill)


def _pair_codes(past: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group code of each row of a pair-sorted frame, and the (user, category) of each code."""
    u = past["user_id"].to_numpy()
    c = past["category"].to_numpy()
    start = np.r_[True, (u[1:] != u[:-1]) | (c[1:] != c[:-1])] if len(u) else np.zeros(0, dtype=bool)
    return np.cumsum(start) - 1, u[start], c[start]


def _sar_scores(past: pd.DataFrame, cutoff_day: int, half_life: float, codes=None) -> pd.DataFrame:
    """SAR affinity of every pair with positive interest up to the cutoff (``past`` is pair-sorted)."""
    code, pu, pc = codes if codes is not None else _pair_codes(past)
    inter = past["interest"].to_numpy(dtype=float)
    w = sar_weight(cutoff_day - past["day"].to_numpy(), half_life)
    raw = np.bincount(code, weights=inter, minlength=len(pu))
    score = np.bincount(code, weights=inter * w, minlength=len(pu))
    seen = raw > 0
    return pd.DataFrame({"user_id": pu[seen], "category": pc[seen], "score": score[seen]})


def rank_sar(
    panel: pd.DataFrame,
    cutoff_day: int,
    k: int = 10,
    *,
    half_life: float = SAR_DEFAULT_HALF_LIFE,
    backfill: bool = True,
    name: str | None = None,
) -> pd.DataFrame:
    """SAR-style decayed affinity: ``sum_t interest_t * (1/2) ** ((T - t) / half_life)``.

    ``name`` labels the ``strategy`` column (default ``"sar_h<half_life>"``, e.g. ``sar_h30``).

    Notebook 06.
    """
    k = check_int("k", k, minimum=1)
    half_life = check_positive("half_life", half_life)
    past = panel_upto(panel, cutoff_day)
    label = name if name is not None else f"sar_h{half_life:g}"
    return _rank_personal(label, past, int(cutoff_day), k, _sar_scores(past, int(cutoff_day), half_life), backfill)


def rank_sar_tuned(
    panel: pd.DataFrame,
    cutoff_day: int,
    k: int = 10,
    *,
    half_life: float | None = None,
    horizon: int = 14,
    tune_days: int | None = None,
    candidates: Sequence[float] = DEFAULT_HALF_LIFE_CANDIDATES,
    metric: str = "ndcg@10",
    backfill: bool = True,
) -> pd.DataFrame:
    """SAR with a tuned half-life.

    With ``half_life=None`` the half-life is tuned by :func:`tune_half_life` over ``candidates``
    (default :data:`DEFAULT_HALF_LIFE_CANDIDATES`) at the validation cutoff ``T - tune_days``, scored
    on ``(T - tune_days, T]``, i.e. on data up to ``T`` only. ``tune_days`` defaults to ``horizon``
    (the evaluation window); a shorter one lets SAR tune on a log that has no room for two horizons
    (a 273-day horizon on a 546-day log), and one that leaves no day before the validation window
    raises ``ValueError`` naming ``tune_days`` (:func:`decaylib.decay.rate.sar_tuning_cutoff`, the
    same reading as ``sar_tune_days`` of the SAR count forecast).
    The chosen value is stored in ``result.attrs["half_life"]``, the candidates' metrics in
    ``result.attrs["tuning"]``, the window in ``result.attrs["tune_days"]`` and whether the choice is
    at an end of ``candidates`` in ``result.attrs["half_life_at_edge"]`` (``pd.concat`` drops attrs:
    read them first).

    Notebook 06.
    """
    k = check_int("k", k, minimum=1)
    past = panel_upto(panel, cutoff_day)
    table = None
    if half_life is None:
        horizon = check_int("horizon", horizon, minimum=1)
        tune_days = horizon if tune_days is None else tune_days
        val_cutoff = sar_tuning_cutoff(int(cutoff_day), int(past["day"].min()), tune_days, name="tune_days",
                                       who="sar_tuned")
        tune_days = int(cutoff_day) - val_cutoff
        mk = _parse_metric(metric)[1]
        upto = panel.loc[panel["day"].to_numpy() <= int(cutoff_day)]
        tuned = tune_half_life(upto, val_cutoff, tune_days, candidates, k=max(k, mk), metric=metric)
        half_life, table, at_edge = tuned.best_half_life, tuned.table, tuned.at_edge
    half_life = check_positive("half_life", half_life)
    recs = _rank_personal("sar_tuned", past, int(cutoff_day), k, _sar_scores(past, int(cutoff_day), half_life), backfill)
    recs.attrs["half_life"] = float(half_life)
    if table is not None:
        recs.attrs["tuning"] = table
        recs.attrs["tune_days"] = tune_days
        recs.attrs["half_life_at_edge"] = at_edge
    return recs


def _check_contiguous(past: pd.DataFrame, cutoff_day: int) -> None:
    u = past["user_id"].to_numpy()
    c = past["category"].to_numpy()
    d = past["day"].to_numpy()
    same = (u[1:] == u[:-1]) & (c[1:] == c[:-1])
    if np.any(same & (d[1:] - d[:-1] != 1)):
        raise ValueError(
            "decay_aware needs a daily panel whose days are contiguous (zero-filled, no duplicates) per "
            "(user_id, category) pair; build it with decaylib.data.preprocess"
        )
    last = np.r_[~same, True]
    if np.any(d[last] != cutoff_day):
        raise ValueError(
            "decay_aware needs every pair's rows to run up to the cutoff day (the panel is zero-filled to the "
            "end of the observation window); some pair stops before it"
        )


def rank_decay_aware(
    panel: pd.DataFrame,
    cutoff_day: int,
    k: int = 10,
    *,
    horizon: int = 14,
    lam: pd.DataFrame | None = None,
    decay_points: pd.DataFrame | None = None,
    n_fresh: int = 1,
    level_half_life: float = 3.0,
    lam_window: int = 14,
    global_lam: float | None = None,
    lam_bounds: tuple[float, float] = (-0.1, 2.0),
    infer_decay: bool = True,
    infer_ratio: float = 0.3,
    infer_min_gap: int = 7,
    fresh_window: int = 14,
    backfill: bool = True,
) -> pd.DataFrame:
    """Rank by expected interest over the next ``horizon`` days, demote decayed pairs, add fresh ones.

    For each (user, category) pair the user interacted with up to ``T``:

    * current level ``L``: causal exponentially weighted mean of ``interest`` at ``T`` (weights
      ``(1/2) ** ((T - t) / level_half_life)``, observed days only; never ``interest_smooth``);
    * ``score = L * sum_{k=1..h} exp(-lam * k)`` (:func:`expected_decay_sum`), with ``lam`` the
      pair's ``lam_hat`` from ``lam`` (columns ``user_id, category, lam_hat``; computed with data
      up to ``T`` only -- the caller's responsibility) or, when ``lam`` is None, from
      :func:`estimate_lambda_causal` with ``lam_window``.  Pairs without a finite estimate use
      ``global_lam`` (default: median of the available estimates, else ``ln 2 / 30``); all λ are
      clipped to ``lam_bounds``;
    * the pair is *decayed* when ``decay_points`` (columns ``user_id, category, t_decay``, also
      computed causally) has a ``t_decay <= T`` for it; when ``decay_points`` is None and
      ``infer_decay``, when its running causal level peaked at least ``infer_min_gap`` days
      before ``T`` and ``L <= infer_ratio * peak level``.

    List layout (``source`` column): the user's pairs, non-decayed (``personal``) before decayed
    (``decayed``), each by score, at most ``k - n_fresh`` of them; then ``n_fresh`` categories
    the user never interacted with, the most popular ones over the last ``fresh_window`` days
    (``fresh``); then, if ``backfill``, more unseen popular categories (``backfill``).  With a
    full list the fresh categories take the last ``n_fresh`` slots, and decayed pairs are pushed
    towards (or, for users with many pairs, out of) the end of the list.

    Notebook 06.
    """
    k = check_int("k", k, minimum=1)
    horizon = check_int("horizon", horizon, minimum=1)
    n_fresh = check_int("n_fresh", n_fresh, minimum=0)
    if n_fresh > k:
        raise ValueError(f"n_fresh={n_fresh} cannot exceed k={k}")
    level_half_life = check_positive("level_half_life", level_half_life)
    fresh_window = check_int("fresh_window", fresh_window, minimum=1)
    infer_min_gap = check_int("infer_min_gap", infer_min_gap, minimum=0)
    if not 0 < float(infer_ratio) <= 1:
        raise ValueError(f"infer_ratio must be in (0, 1], got {infer_ratio}")
    lo_b, hi_b = (float(b) for b in lam_bounds)
    if not lo_b <= hi_b:
        raise ValueError(f"lam_bounds must be (low, high) with low <= high, got {lam_bounds}")
    T = int(cutoff_day)
    past = panel_upto(panel, cutoff_day)
    _check_contiguous(past, T)

    # causal level: running EWMA (unobserved days missing), value at T, and its running peak
    x = past["interest"].to_numpy(dtype=float)
    x = np.where(observed_mask(past), x, np.nan)
    alpha = 1.0 - 0.5 ** (1.0 / level_half_life)
    tmp = pd.DataFrame({"user_id": past["user_id"].to_numpy(), "category": past["category"].to_numpy(), "x": x})
    ewm = tmp.groupby(list(PAIR_COLS), sort=True)["x"].ewm(alpha=alpha, adjust=True, ignore_na=False).mean().to_numpy()
    ewm = np.nan_to_num(ewm, nan=0.0)  # pairs with no observed day yet have level 0
    tmp["level"] = ewm
    tmp["day"] = past["day"].to_numpy()
    g = tmp.groupby(list(PAIR_COLS), sort=True)
    pairs = pd.DataFrame({"level": g["level"].last(), "peak": g["level"].max()}).reset_index()
    peak_idx = g["level"].idxmax().to_numpy()
    pairs["peak_day"] = tmp["day"].to_numpy()[peak_idx]
    stats = _pair_stats(past)
    pairs = pairs.loc[stats["seen"].to_numpy()].reset_index(drop=True)  # same sorted pair order

    # decay rates
    if lam is None:
        lam_df = estimate_lambda_causal(past, T, window=lam_window)
    else:
        require_frame(lam, "lam", (*PAIR_COLS, "lam_hat"), allow_empty=True)  # sparse logs: no pair estimable
        if lam.duplicated(list(PAIR_COLS)).any():
            raise ValueError("lam has duplicate (user_id, category) rows")
        lam_df = lam[[*PAIR_COLS, "lam_hat"]]
    pairs = pairs.merge(lam_df[[*PAIR_COLS, "lam_hat"]], on=list(PAIR_COLS), how="left")
    lam_vals = pairs["lam_hat"].to_numpy(dtype=float)
    finite = np.isfinite(lam_vals)
    if global_lam is None:
        global_lam = float(np.median(lam_vals[finite])) if finite.any() else math.log(2) / SAR_DEFAULT_HALF_LIFE
    elif not np.isfinite(float(global_lam)):
        raise ValueError(f"global_lam must be finite, got {global_lam}")
    lam_used = np.clip(np.where(finite, lam_vals, float(global_lam)), lo_b, hi_b)
    score = pairs["level"].to_numpy() * expected_decay_sum(lam_used, horizon)

    # decay points
    if decay_points is not None:
        require_frame(decay_points, "decay_points", (*PAIR_COLS, "t_decay"), allow_empty=True)
        td = decay_points[[*PAIR_COLS, "t_decay"]]
        past_dp = td.loc[td["t_decay"].to_numpy(dtype=float) <= T, list(PAIR_COLS)].drop_duplicates()
        flag = pairs[list(PAIR_COLS)].merge(past_dp.assign(_d=True), on=list(PAIR_COLS), how="left")["_d"]
        demoted = flag.notna().to_numpy()
    elif infer_decay:
        demoted = (
            (pairs["peak"].to_numpy() > 0)
            & (T - pairs["peak_day"].to_numpy() >= infer_min_gap)
            & (pairs["level"].to_numpy() <= float(infer_ratio) * pairs["peak"].to_numpy())
        )
    else:
        demoted = np.zeros(len(pairs), dtype=bool)

    personal = pd.DataFrame(
        {"user_id": pairs["user_id"].to_numpy(), "category": pairs["category"].to_numpy(), "score": score, "demoted": demoted}
    )
    users = np.unique(past["user_id"].to_numpy())
    order = _popularity_order(past, T, fresh_window, "users")
    recs = _assemble("decay_aware", users, k, personal=personal, order=order, n_fresh=n_fresh, backfill=backfill)
    recs.attrs["global_lam"] = float(global_lam)
    return recs


def rank_predicted(
    panel: pd.DataFrame,
    cutoff_day: int,
    k: int = 10,
    *,
    horizon: int = 14,
    method: str = "shrunk",
    column="interest",
    n_fresh: int = 1,
    fresh_window: int = 14,
    backfill: bool = True,
    **forecast_kw,
) -> pd.DataFrame:
    """Rank the user's categories by their predicted interest over the next ``horizon`` days.

    The score of a seen pair is :func:`decaylib.decay.counts.forecast_counts` with ``method``
    (default ``"shrunk"``: the pooled decay of :mod:`decaylib.decay.shrinkage`), the expected sum of
    ``column`` over ``(T, T + horizon]`` computed from days up to ``T`` only: a pair that is fading
    sinks by itself, at its own pace where its events show one, so no separate "decayed" tier is
    needed. The list layout is that of :func:`rank_decay_aware`: the user's pairs by score, at most
    ``k - n_fresh`` of them, then ``n_fresh`` popular categories the user never touched, then
    backfill. ``attrs`` carry the forecast's (``"prior"``, ...).

    Notebook 06.
    """

    k = check_int("k", k, minimum=1)
    n_fresh = check_int("n_fresh", n_fresh, minimum=0)
    if n_fresh > k:
        raise ValueError(f"n_fresh={n_fresh} cannot exceed k={k}")
    fresh_window = check_int("fresh_window", fresh_window, minimum=1)
    T = int(cutoff_day)
    past = panel_upto(panel, cutoff_day)
    f = forecast_counts(panel, T, horizon, method=method, column=column, **forecast_kw)
    personal = pd.DataFrame({"user_id": f["user_id"].to_numpy(), "category": f["category"].to_numpy(),
                             "score": f["expected"].to_numpy(dtype=float), "demoted": False})
    users = np.unique(past["user_id"].to_numpy())
    order = _popularity_order(past, T, fresh_window, "users")
    recs = _assemble("predicted_counts", users, k, personal=personal, order=order, n_fresh=n_fresh,
                     backfill=backfill)
    recs.attrs.update({key: v for key, v in f.attrs.items() if key in ("prior", "half_life", "scale", "at_edge")})
    return recs

_STRATEGY_FUNCS: dict[str, Callable[..., pd.DataFrame]] = {
    "popularity": rank_popularity,
    "recency": rank_recency,
    "no_decay": rank_no_decay,
    "sar_h30": rank_sar,
    "sar_tuned": rank_sar_tuned,
    "decay_aware": rank_decay_aware,
    "predicted_counts": rank_predicted,
}


def rank_categories(strategy: str, panel: pd.DataFrame, cutoff_day: int, k: int = 10, **kw) -> pd.DataFrame:
    """Rank categories for every user seen up to ``cutoff_day`` with the named strategy.

    ``strategy`` is one of :data:`STRATEGIES`; ``**kw`` go to the strategy's function
    (``rank_popularity``, ``rank_recency``, ``rank_no_decay``, ``rank_sar``,
    ``rank_sar_tuned``, ``rank_decay_aware``); an unknown keyword raises ``TypeError``.

    Returns
    -------
    DataFrame
        ``user_id, strategy, rank, category, score, source`` sorted by user and rank.

    Notebook 06.
    """
    check_choice("strategy", strategy, STRATEGIES)
    if strategy == "sar_h30":
        if "half_life" in kw:
            raise ValueError("sar_h30 has a fixed half-life of 30 days; use 'sar_tuned' or rank_sar(half_life=...)")
        return rank_sar(panel, cutoff_day, k, half_life=SAR_DEFAULT_HALF_LIFE, name="sar_h30", **kw)
    return _STRATEGY_FUNCS[strategy](panel, cutoff_day, k, **kw)


def rank_many(
    panel: pd.DataFrame,
    cutoff_day: int,
    k: int = 10,
    strategies: Sequence[str] = STRATEGIES,
    options: dict[str, dict] | None = None,
) -> pd.DataFrame:
    """Concatenate :func:`rank_categories` for several strategies.

    ``options`` maps a strategy name to its keyword arguments, e.g.
    ``{"decay_aware": {"lam": lam_df, "n_fresh": 2}}``.

    Notebook 06.
    """
    options = dict(options or {})
    unknown = set(options) - set(strategies)
    if unknown:
        raise ValueError(f"options given for strategies not requested: {sorted(unknown)}")
    frames = [rank_categories(s, panel, cutoff_day, k, **options.get(s, {})) for s in strategies]
    return pd.concat(frames, ignore_index=True)


def decay_inputs_at_cutoff(panel: pd.DataFrame, cutoff_day: int, *, prominence: float = 0.3,
                           min_days: int = 5, rules=None, with_reasons: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """λ per pair and decay points, computed from data up to ``cutoff_day`` only.

    The panel is cut at the cutoff and re-smoothed (the stored ``interest_smooth`` is centered
    and would look past the cutoff); decay points are the retrospective peaks of that truncated
    series (:func:`decaylib.decay.points.find_decay_point`), which at time ``T`` can only be peaks that
    have visibly fallen already; λ is the Poisson maximum-likelihood fit
    (:func:`decaylib.decay.rate.fit_poisson_mle`) on the event counts from each peak to ``T``.
    Both apply the evidence rules (:mod:`decaylib.decay.evidence`, ``rules``; counted on data up to
    ``T`` only), and only the pairs that pass are returned.
    Returns ``(lam, decay_points)`` ready for :func:`rank_decay_aware`: ``lam`` has
    ``user_id, category, lam_hat`` and the uncertainty columns (``se_lam, lam_lo, lam_hi,
    half_life, half_life_lo, half_life_hi``), ``decay_points`` has ``user_id, category,
    t_decay``.

    ``with_reasons=True`` (for reports): ``lam`` has one row for *every* pair of the panel with a
    ``reason`` column, NaN λ where it is not ``ok``; a pair without a supported decay point gets
    the decay point's reason (``insufficient_data``, ``not_a_peak``, ``peak_on_empty_day``, ...).

    Notebooks 06 and 07.
    """

    cutoff_day = check_int("cutoff_day", cutoff_day, minimum=0)
    past = panel.loc[panel["day"].to_numpy() <= cutoff_day].copy()
    if past.empty:
        raise ValueError(f"no panel rows on or before cutoff_day={cutoff_day}")
    past["interest_smooth"] = smooth_interest(past)
    all_points = find_decay_point(past, prominence=prominence, rules=rules)
    points = all_points.loc[all_points["t_decay"].notna(), [*PAIR_COLS, "t_decay"]].astype({"t_decay": "int64"})

    cols = [*PAIR_COLS, "lam_hat", *UNCERTAINTY_COLS]
    lam = pd.DataFrame({c: pd.Series(dtype="int64" if c in list(PAIR_COLS) else float) for c in cols})
    fit = None
    if len(points):
        phase = decay_phase_table(past, points, start_col="t_decay")
        fit = fit_poisson_mle(phase, min_days=min_days, rules=rules)
        lam = fit.loc[fit["reason"] == "ok", cols].reset_index(drop=True)
    if with_reasons:
        lam = all_points[[*PAIR_COLS, "reason"]].copy()
        if fit is not None:
            lam = lam.merge(fit[[*cols, "reason"]], on=list(list(PAIR_COLS)), how="left", suffixes=("_point", ""))
            lam["reason"] = lam["reason"].fillna(lam.pop("reason_point"))
        for c in cols[2:]:
            if c not in lam.columns:
                lam[c] = np.nan
        lam = lam[[*cols, "reason"]].reset_index(drop=True)
    return lam, points.reset_index(drop=True)


__all__ = ['TuneResult', 'tune_half_life']


class TuneResult(NamedTuple):
    """Result of :func:`tune_half_life`: the best half-life and the metric of every candidate.

    Notebook 06.
    """

    best_half_life: float
    table: pd.DataFrame
    at_edge: bool = False  #: the best half-life is the smallest or the largest candidate: widen ``candidates``


def _parse_metric(metric: str) -> tuple[str, int]:
    if not isinstance(metric, str):
        raise TypeError(f"metric must be a string such as 'ndcg@10', got {metric!r}")
    mt = re.fullmatch(r"(ndcg|hr|hit_rate)@(\d+)", metric.strip().lower())
    if not mt or int(mt.group(2)) < 1:
        raise ValueError(f"unknown metric {metric!r}; expected 'ndcg@K' or 'hr@K' with K >= 1")
    return ("hr" if mt.group(1) == "hit_rate" else mt.group(1)), int(mt.group(2))


def tune_half_life(
    panel: pd.DataFrame,
    val_cutoff: int,
    horizon: int,
    candidates: Sequence[float] = DEFAULT_HALF_LIFE_CANDIDATES,
    k: int = 10,
    metric: str = "ndcg@10",
) -> TuneResult:
    """Choose the SAR half-life that maximizes ``metric`` at a validation cutoff.

    Only panel rows with ``day <= val_cutoff + horizon`` are read: each candidate ranks with the
    data up to ``val_cutoff`` and is scored on ``relevant_items`` in
    ``(val_cutoff, val_cutoff + horizon]``.  Keep ``val_cutoff + horizon <= T`` (the test cutoff)
    so that tuning never sees test data.  Ties go to the earliest candidate in ``candidates``.

    Returns
    -------
    TuneResult
        ``best_half_life`` and ``table`` (``half_life, <metric>``).

    Notebook 06.
    """
    name, mk = _parse_metric(metric)
    k = check_int("k", k, minimum=1)
    if mk > k:
        raise ValueError(f"metric {metric!r} needs lists of at least {mk} items but k={k}")
    val_cutoff = check_int("val_cutoff", val_cutoff, minimum=None)
    horizon = check_int("horizon", horizon, minimum=1)
    if isinstance(candidates, (str, bytes)) or not hasattr(candidates, "__iter__"):
        raise TypeError(f"candidates must be a sequence of half-lives in days, got {candidates!r}")
    cands = [check_positive(f"candidates[{i}]", h) for i, h in enumerate(candidates)]
    if not cands:
        raise ValueError("candidates is empty: give at least one half-life (days) to try")
    require_frame(panel, "panel", ("user_id", "category", "day", "interest", *BEHAVIOURS))
    end = val_cutoff + horizon
    lo, hi = day_range(panel)
    if end > hi:
        raise ValueError(f"validation window ({val_cutoff}, {end}] runs past the panel's last day {hi}")
    visible = panel.loc[panel["day"].to_numpy() <= end]
    relevant = relevant_items(visible, val_cutoff, horizon)
    if relevant.empty:
        raise ValueError(f"no user has relevant items in ({val_cutoff}, {end}]; cannot tune the half-life")
    fn = ndcg_at_k if name == "ndcg" else hit_rate_at_k
    past = panel_upto(visible, val_cutoff)  # rank_sar(visible, val_cutoff, k, half_life=h), sharing the work
    order = _popularity_order(past, val_cutoff, None, "users")
    codes = _pair_codes(past)
    values = []
    for h in cands:
        score = _sar_scores(past, val_cutoff, h, codes)
        recs = _rank_personal(f"sar_h{h:g}", past, val_cutoff, k, score, True, order=order)
        per_user = fn(recs, relevant, mk)
        if per_user.empty:
            raise ValueError(f"no user ranked at {val_cutoff} has relevant items in ({val_cutoff}, {end}]")
        values.append(float(per_user.mean()))
    table = pd.DataFrame({"half_life": cands, metric: values})
    best = cands[int(np.argmax(values))]
    cands = table["half_life"].to_numpy(dtype=float) if "half_life" in table.columns else np.asarray([best])
    at_edge = bool(len(cands) > 1 and float(best) in (float(cands.min()), float(cands.max())))
    return TuneResult(best_half_life=float(best), table=table, at_edge=at_edge)
