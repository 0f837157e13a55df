"""Decay-aware ranking of categories and its offline evaluation (notebook 06).

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
    The same with ``H`` tuned on a validation cutoff that lies before ``T``
    (:func:`tune_half_life`).
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
"""

from __future__ import annotations

import math
from functools import partial
import re
from collections.abc import Callable, Iterable, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from decaylib.utils import check_choice
from decaylib.utils import check_int

_check_int = partial(check_int, minimum=None)  # ids and days may be 0; callers pass a minimum where needed

__all__ = [
    "STRATEGIES",
    "SAR_DEFAULT_HALF_LIFE",
    "DEFAULT_HALF_LIFE_CANDIDATES",
    "REC_COLUMNS",
    "TuneResult",
    "sar_weight",
    "expected_decay_sum",
    "category_popularity",
    "estimate_lambda_causal",
    "rank_popularity",
    "rank_recency",
    "rank_no_decay",
    "rank_sar",
    "rank_sar_tuned",
    "rank_decay_aware",
    "rank_categories",
    "rank_many",
    "tune_half_life",
    "relevant_items",
    "hit_rate_at_k",
    "ndcg_at_k",
    "graded_ndcg_at_k",
    "UnknownUserError",
    "removed_users",
    "check_user",
    "resolve_user",
    "reason_legend",
    "ACTIONS",
    "trailing_level",
    "half_life_text",
    "category_actions",
    "report_numbers",
    "evaluation_window",
    "decay_inputs_at_cutoff",
    "coverage",
    "wasted_slots",
    "evaluate",
    "bootstrap_ci",
]

STRATEGIES: tuple[str, ...] = ("popularity", "recency", "no_decay", "sar_h30", "sar_tuned", "decay_aware")
SAR_DEFAULT_HALF_LIFE: float = 30.0
DEFAULT_HALF_LIFE_CANDIDATES: tuple[float, ...] = (3.0, 7.0, 14.0, 30.0, 60.0, 120.0)
REC_COLUMNS: list[str] = ["user_id", "strategy", "rank", "category", "score", "source"]

_PAIR = ["user_id", "category"]
_BASE_COLUMNS = ("user_id", "category", "day", "interest")
_EVENT_COLUMNS = ("view", "click", "cart", "purchase")


class TuneResult(NamedTuple):
    """Result of :func:`tune_half_life`: the best half-life and the metric of every candidate."""

    best_half_life: float
    table: pd.DataFrame


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------


def _require_frame(df, name: str, columns: Iterable[str], allow_empty: bool = False) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"{name} is missing column(s) {missing}; it has {list(df.columns)}")
    if df.empty and not allow_empty:
        raise ValueError(f"{name} is empty")


def _check_positive(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def _check_integer_column(df: pd.DataFrame, name: str, column: str) -> None:
    if not pd.api.types.is_integer_dtype(df[column]):
        raise TypeError(f"{name}.{column} must have an integer dtype, got {df[column].dtype}")


def _day_range(panel: pd.DataFrame) -> tuple[int, int]:
    day = panel["day"].to_numpy()
    return int(day.min()), int(day.max())


def _panel_upto(panel, cutoff_day, extra: Sequence[str] = ()) -> pd.DataFrame:
    """Validate ``panel`` and return its rows with ``day <= cutoff_day`` (a sorted copy).

    Only the day range of the full panel is read (to reject a cutoff outside it); every value
    used for scoring comes from the returned slice.
    """
    _require_frame(panel, "panel", (*_BASE_COLUMNS, *extra))
    cutoff_day = _check_int("cutoff_day", cutoff_day)
    for col in ("user_id", "category", "day"):
        _check_integer_column(panel, "panel", col)
    lo, hi = _day_range(panel)
    if not lo <= cutoff_day <= hi:
        raise ValueError(f"cutoff_day={cutoff_day} is outside the panel's days [{lo}, {hi}]")
    cols = [*_BASE_COLUMNS, *extra]
    if "observed" in panel.columns and "observed" not in cols:
        cols.append("observed")
    past = panel.loc[panel["day"].to_numpy() <= cutoff_day, cols]
    interest = past["interest"].to_numpy(dtype=float)
    if not np.all(np.isfinite(interest)):
        raise ValueError("panel.interest has NaN or infinite values up to the cutoff")
    if np.any(interest < 0):
        raise ValueError("panel.interest must be >= 0")
    if not _is_sorted(past):
        past = past.sort_values(["user_id", "category", "day"], kind="stable")
    return past.reset_index(drop=True)


def _is_sorted(df: pd.DataFrame) -> bool:
    """True when rows are sorted by (user_id, category, day) -- the contract's order."""
    if len(df) < 2:
        return True
    du, dc, dd = (np.diff(df[c].to_numpy()) for c in ("user_id", "category", "day"))
    return bool(np.all((du > 0) | ((du == 0) & ((dc > 0) | ((dc == 0) & (dd >= 0))))))


def _observed_mask(past: pd.DataFrame) -> np.ndarray:
    if "observed" in past.columns:
        return past["observed"].to_numpy(dtype=bool)
    return np.ones(len(past), dtype=bool)


def _run_positions(sorted_keys: np.ndarray) -> np.ndarray:
    """0-based position of each element inside its run of equal, adjacent keys."""
    n = len(sorted_keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    idx = np.arange(n, dtype=np.int64)
    starts = np.r_[True, sorted_keys[1:] != sorted_keys[:-1]]
    return idx - np.maximum.accumulate(np.where(starts, idx, 0))


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
    g = tmp.groupby(_PAIR, sort=True)
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
        pos = _run_positions(p_user)
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
        upos = _run_positions(uu)
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
    rank = _run_positions(u) + 1
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


# ---------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------


def sar_weight(age_days, half_life: float = SAR_DEFAULT_HALF_LIFE) -> np.ndarray:
    """SAR time-decay weight ``(1/2) ** (age / half_life)``; equals 0.5 when ``age == half_life``.

    Parameters
    ----------
    age_days : array_like
        ``T - t`` in days (``>= 0``).
    half_life : float
        ``H`` in days; the equivalent decay rate is ``ln 2 / H`` per day.
    """
    half_life = _check_positive("half_life", half_life)
    age = np.asarray(age_days, dtype=float)
    if np.any(age < 0):
        raise ValueError("age_days must be >= 0 (the weight is only defined up to the cutoff)")
    return np.exp2(-age / half_life)


def expected_decay_sum(lam, horizon: int) -> np.ndarray:
    """Closed form of ``sum_{k=1..h} exp(-lam * k)`` (``h`` when ``lam == 0``).

    ``exp(-lam) * (1 - exp(-lam h)) / (1 - exp(-lam))``, evaluated with ``expm1`` so that it is
    accurate for small ``|lam|``; negative ``lam`` (rising interest) is allowed.
    """
    horizon = _check_int("horizon", horizon, minimum=1)
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
    """
    check_choice("by", by, ("users", "interest"))
    if window is not None:
        window = _check_int("window", window, minimum=1)
    return _popularity_from_past(_panel_upto(panel, cutoff_day), int(cutoff_day), window, by)


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
    counts are small, so ``decaylib.decay`` (fitted with data up to ``T`` only) gives better λ.

    Evidence (:mod:`decaylib.evidence`, ``rules``): at least ``rules.min_events`` events
    (view+click+cart+purchase, when the panel has those columns) and ``rules.min_active_days``
    active days in the window; otherwise NaN with ``"insufficient_data"`` (``decay_aware``
    then uses its global λ for the pair).

    Returns
    -------
    DataFrame
        ``user_id, category, lam_hat``, the uncertainty columns of
        :func:`decaylib.evidence.uncertainty_columns` (``se_lam`` from the weighted residual
        variance, Wald interval), ``n_days``, ``reason`` (``"ok"``, ``"too_few_days"``: fewer
        than ``min_days`` observed days in the window, ``"all_zero"``: no positive interest
        there, ``"insufficient_data"``, ``"t_constant"``).  ``lam_hat`` is NaN unless ``"ok"``.
        Negative ``lam_hat`` means rising interest.
    """
    from . import evidence as _ev

    window = _check_int("window", window, minimum=2)
    min_days = _check_int("min_days", min_days, minimum=2)
    rules = _ev.resolve_rules(rules)
    past = _panel_upto(panel, cutoff_day)
    cutoff_day = int(cutoff_day)
    day = past["day"].to_numpy()
    mask = (day > cutoff_day - window) & _observed_mask(past)
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
    s = tmp.groupby(_PAIR, sort=True).sum()
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


# ---------------------------------------------------------------------------------------------
# strategies
# ---------------------------------------------------------------------------------------------


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
    """
    k = _check_int("k", k, minimum=1)
    check_choice("by", by, ("users", "interest"))
    if window is not None:
        window = _check_int("window", window, minimum=1)
    past = _panel_upto(panel, cutoff_day)
    users = np.unique(past["user_id"].to_numpy())
    order = _popularity_order(past, int(cutoff_day), window, by)
    if exclude_seen:
        stats = _pair_stats(past)
        seen = stats.loc[stats["seen"].to_numpy(), _PAIR]
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
    k = _check_int("k", k, minimum=1)
    past = _panel_upto(panel, cutoff_day)
    stats = _pair_stats(past)
    seen = stats.loc[stats["seen"].to_numpy()]
    score = pd.DataFrame({"user_id": seen["user_id"], "category": seen["category"], "score": seen[stat]})
    return _rank_personal(strategy, past, int(cutoff_day), k, score, backfill)


def rank_recency(panel: pd.DataFrame, cutoff_day: int, k: int = 10, *, backfill: bool = True) -> pd.DataFrame:
    """The user's categories by their last interaction day up to ``T`` (score = that day)."""
    return _rank_by_pair_stat("recency", "last_day", panel, cutoff_day, k, backfill)


def rank_no_decay(panel: pd.DataFrame, cutoff_day: int, k: int = 10, *, backfill: bool = True) -> pd.DataFrame:
    """The user's categories by their total interest score up to ``T`` (no decay)."""
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
    """
    k = _check_int("k", k, minimum=1)
    half_life = _check_positive("half_life", half_life)
    past = _panel_upto(panel, cutoff_day)
    label = name if name is not None else f"sar_h{half_life:g}"
    return _rank_personal(label, past, int(cutoff_day), k, _sar_scores(past, int(cutoff_day), half_life), backfill)


def rank_sar_tuned(
    panel: pd.DataFrame,
    cutoff_day: int,
    k: int = 10,
    *,
    half_life: float | None = None,
    tune_horizon: int = 14,
    candidates: Sequence[float] = DEFAULT_HALF_LIFE_CANDIDATES,
    metric: str = "ndcg@10",
    backfill: bool = True,
) -> pd.DataFrame:
    """SAR with a tuned half-life.

    With ``half_life=None`` the half-life is tuned by :func:`tune_half_life` at the validation
    cutoff ``T - tune_horizon`` with horizon ``tune_horizon``, i.e. on data up to ``T`` only.
    The chosen value is stored in ``result.attrs["half_life"]`` and the candidates' metrics in
    ``result.attrs["tuning"]`` (``pd.concat`` drops attrs: read them first).
    """
    k = _check_int("k", k, minimum=1)
    past = _panel_upto(panel, cutoff_day)
    table = None
    if half_life is None:
        tune_horizon = _check_int("tune_horizon", tune_horizon, minimum=1)
        val_cutoff = int(cutoff_day) - tune_horizon
        lo = int(past["day"].min())
        if val_cutoff < lo:
            raise ValueError(
                f"cannot tune: validation cutoff {val_cutoff} = cutoff_day - tune_horizon is before the panel's first day {lo}"
            )
        mk = _parse_metric(metric)[1]
        upto = panel.loc[panel["day"].to_numpy() <= int(cutoff_day)]
        half_life, table = tune_half_life(upto, val_cutoff, tune_horizon, candidates, k=max(k, mk), metric=metric)
    half_life = _check_positive("half_life", half_life)
    recs = _rank_personal("sar_tuned", past, int(cutoff_day), k, _sar_scores(past, int(cutoff_day), half_life), backfill)
    recs.attrs["half_life"] = float(half_life)
    if table is not None:
        recs.attrs["tuning"] = table
    return recs


def _check_contiguous(past: pd.DataFrame, cutoff_day: int) -> None:
    u = past["user_id"].to_numpy()
    c = past["category"].to_numpy()
    d = past["day"].to_numpy()
    same = (u[1:] == u[:-1]) & (c[1:] == c[:-1])
    if np.any(same & (d[1:] - d[:-1] != 1)):
        raise ValueError(
            "decay_aware needs a daily panel whose days are contiguous (zero-filled, no duplicates) per "
            "(user_id, category) pair; build it with decaylib.preprocess"
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
    """
    k = _check_int("k", k, minimum=1)
    horizon = _check_int("horizon", horizon, minimum=1)
    n_fresh = _check_int("n_fresh", n_fresh, minimum=0)
    if n_fresh > k:
        raise ValueError(f"n_fresh={n_fresh} cannot exceed k={k}")
    level_half_life = _check_positive("level_half_life", level_half_life)
    fresh_window = _check_int("fresh_window", fresh_window, minimum=1)
    infer_min_gap = _check_int("infer_min_gap", infer_min_gap, minimum=0)
    if not 0 < float(infer_ratio) <= 1:
        raise ValueError(f"infer_ratio must be in (0, 1], got {infer_ratio}")
    lo_b, hi_b = (float(b) for b in lam_bounds)
    if not lo_b <= hi_b:
        raise ValueError(f"lam_bounds must be (low, high) with low <= high, got {lam_bounds}")
    T = int(cutoff_day)
    past = _panel_upto(panel, cutoff_day)
    _check_contiguous(past, T)

    # causal level: running EWMA (unobserved days missing), value at T, and its running peak
    x = past["interest"].to_numpy(dtype=float)
    x = np.where(_observed_mask(past), x, np.nan)
    alpha = 1.0 - 0.5 ** (1.0 / level_half_life)
    tmp = pd.DataFrame({"user_id": past["user_id"].to_numpy(), "category": past["category"].to_numpy(), "x": x})
    ewm = tmp.groupby(_PAIR, sort=True)["x"].ewm(alpha=alpha, adjust=True, ignore_na=False).mean().to_numpy()
    ewm = np.nan_to_num(ewm, nan=0.0)  # pairs with no observed day yet have level 0
    tmp["level"] = ewm
    tmp["day"] = past["day"].to_numpy()
    g = tmp.groupby(_PAIR, sort=True)
    pairs = pd.DataFrame({"level": g["level"].last(), "peak": g["level"].max()}).reset_index()
    peak_idx = g["level"].idxmax().to_numpy()
    pairs["peak_day"] = tmp["day"].to_numpy()[peak_idx]
    stats = _pair_stats(past)
    pairs = pairs.loc[stats["seen"].to_numpy()].reset_index(drop=True)  # same sorted pair order

    # decay rates
    if lam is None:
        lam_df = estimate_lambda_causal(past, T, window=lam_window)
    else:
        _require_frame(lam, "lam", (*_PAIR, "lam_hat"), allow_empty=True)  # sparse logs: no pair estimable
        if lam.duplicated(_PAIR).any():
            raise ValueError("lam has duplicate (user_id, category) rows")
        lam_df = lam[[*_PAIR, "lam_hat"]]
    pairs = pairs.merge(lam_df[[*_PAIR, "lam_hat"]], on=_PAIR, how="left")
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
        _require_frame(decay_points, "decay_points", (*_PAIR, "t_decay"), allow_empty=True)
        td = decay_points[[*_PAIR, "t_decay"]]
        past_dp = td.loc[td["t_decay"].to_numpy(dtype=float) <= T, _PAIR].drop_duplicates()
        flag = pairs[_PAIR].merge(past_dp.assign(_d=True), on=_PAIR, how="left")["_d"]
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


_STRATEGY_FUNCS: dict[str, Callable[..., pd.DataFrame]] = {
    "popularity": rank_popularity,
    "recency": rank_recency,
    "no_decay": rank_no_decay,
    "sar_h30": rank_sar,
    "sar_tuned": rank_sar_tuned,
    "decay_aware": rank_decay_aware,
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
    """
    options = dict(options or {})
    unknown = set(options) - set(strategies)
    if unknown:
        raise ValueError(f"options given for strategies not requested: {sorted(unknown)}")
    frames = [rank_categories(s, panel, cutoff_day, k, **options.get(s, {})) for s in strategies]
    return pd.concat(frames, ignore_index=True)


# ---------------------------------------------------------------------------------------------
# evaluation
# ---------------------------------------------------------------------------------------------


def relevant_items(panel: pd.DataFrame, cutoff_day: int, horizon: int) -> pd.DataFrame:
    """Pairs with any view, click, cart or purchase in ``(T, T + horizon]``.

    Returns ``user_id, category, n_events`` (sum of the four counts in the window), sorted.
    The window must lie inside the panel's days.
    """
    _require_frame(panel, "panel", ("user_id", "category", "day", *_EVENT_COLUMNS))
    cutoff_day = _check_int("cutoff_day", cutoff_day)
    horizon = _check_int("horizon", horizon, minimum=1)
    lo, hi = _day_range(panel)
    if not lo <= cutoff_day <= hi:
        raise ValueError(f"cutoff_day={cutoff_day} is outside the panel's days [{lo}, {hi}]")
    if cutoff_day + horizon > hi:
        raise ValueError(
            f"evaluation window ({cutoff_day}, {cutoff_day + horizon}] runs past the panel's last day {hi}"
        )
    day = panel["day"].to_numpy()
    win = panel.loc[(day > cutoff_day) & (day <= cutoff_day + horizon)]
    counts = win[list(_EVENT_COLUMNS)].to_numpy().sum(axis=1)
    tmp = pd.DataFrame(
        {"user_id": win["user_id"].to_numpy(), "category": win["category"].to_numpy(), "n_events": counts}
    )
    out = tmp.groupby(_PAIR, sort=True)["n_events"].sum().reset_index()
    out = out.loc[out["n_events"].to_numpy() > 0].reset_index(drop=True)
    out["n_events"] = out["n_events"].astype(np.int64)
    return out


def _validate_recs(recs, need_strategy: bool = False) -> None:
    cols = ["user_id", "category", "rank"] + (["strategy"] if need_strategy else [])
    _require_frame(recs, "recs", cols)
    r = recs["rank"].to_numpy()
    if not pd.api.types.is_integer_dtype(recs["rank"]) or np.any(r < 1):
        raise ValueError("recs.rank must be integers starting at 1")
    keys = ["strategy"] if "strategy" in recs.columns else []
    if recs.duplicated([*keys, "user_id", "category"]).any():
        raise ValueError("recs has a category listed twice for the same user (and strategy)")
    if recs.duplicated([*keys, "user_id", "rank"]).any():
        raise ValueError("recs has two rows with the same rank for the same user (and strategy)")


def _validate_relevant(relevant) -> None:
    if not isinstance(relevant, pd.DataFrame):
        raise TypeError(f"relevant must be a pandas DataFrame, got {type(relevant).__name__}")
    missing = [c for c in _PAIR if c not in relevant.columns]
    if missing:
        raise KeyError(f"relevant is missing column(s) {missing}; it has {list(relevant.columns)}")


def _single_strategy(recs: pd.DataFrame) -> None:
    if "strategy" in recs.columns and recs["strategy"].nunique() > 1:
        raise ValueError(
            f"recs holds several strategies {list(pd.unique(recs['strategy']))}; filter one or use evaluate()"
        )


def _eval_users(recs: pd.DataFrame, relevant: pd.DataFrame, users) -> np.ndarray:
    rel_users = np.unique(relevant["user_id"].to_numpy())
    if users is None:
        return np.intersect1d(np.unique(recs["user_id"].to_numpy()), rel_users)
    users = np.unique(np.asarray(users, dtype=np.int64))
    bad = np.setdiff1d(users, rel_users)
    if len(bad):
        raise ValueError(f"{len(bad)} requested user(s) have no relevant items (metric undefined), e.g. {bad[:5].tolist()}")
    return users


def _hits(recs: pd.DataFrame, relevant: pd.DataFrame, k: int, users: np.ndarray) -> pd.DataFrame:
    top = recs.loc[(recs["rank"].to_numpy() <= k) & np.isin(recs["user_id"].to_numpy(), users), ["user_id", "category", "rank"]]
    rel = relevant[_PAIR].drop_duplicates()
    top = top.merge(rel, on=_PAIR, how="left", indicator=True)
    top["_rel"] = (top["_merge"] == "both").to_numpy()
    return top.drop(columns="_merge")


def hit_rate_at_k(recs: pd.DataFrame, relevant: pd.DataFrame, k: int, users=None) -> pd.Series:
    """Per-user hit rate: 1 if any of the top ``k`` categories is relevant, else 0.

    Users are those in ``recs`` with at least one relevant item (or the given ``users``, who
    must all have one; a user absent from ``recs`` scores 0).  ``recs`` must hold one strategy.
    Returns a Series indexed by ``user_id``; ``.mean()`` is HR@k.
    """
    k = _check_int("k", k, minimum=1)
    _validate_recs(recs)
    _validate_relevant(relevant)
    _single_strategy(recs)
    users = _eval_users(recs, relevant, users)
    top = _hits(recs, relevant, k, users)
    hit = top.loc[top["_rel"].to_numpy()].groupby("user_id").size()
    out = pd.Series((hit.reindex(users, fill_value=0).to_numpy() > 0).astype(float), index=pd.Index(users, name="user_id"))
    out.name = f"hr@{k}"
    return out


def ndcg_at_k(recs: pd.DataFrame, relevant: pd.DataFrame, k: int, users=None) -> pd.Series:
    """Per-user NDCG@k with binary relevance.

    ``DCG = sum over relevant items at rank r <= k of 1 / log2(r + 1)``;
    ``IDCG = sum_{i=1..min(k, n_relevant)} 1 / log2(i + 1)``.  Users as in :func:`hit_rate_at_k`.
    """
    k = _check_int("k", k, minimum=1)
    _validate_recs(recs)
    _validate_relevant(relevant)
    _single_strategy(recs)
    users = _eval_users(recs, relevant, users)
    top = _hits(recs, relevant, k, users)
    gain = np.where(top["_rel"].to_numpy(), 1.0 / np.log2(top["rank"].to_numpy(dtype=float) + 1.0), 0.0)
    dcg = pd.Series(gain, index=top["user_id"].to_numpy()).groupby(level=0).sum().reindex(users, fill_value=0.0)
    n_rel = relevant[_PAIR].drop_duplicates().groupby("user_id").size().reindex(users, fill_value=0).to_numpy()
    ideal = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2, dtype=float)))])
    idcg = ideal[np.minimum(n_rel, k)]
    out = pd.Series(dcg.to_numpy() / idcg, index=pd.Index(users, name="user_id"))
    out.name = f"ndcg@{k}"
    return out


def graded_ndcg_at_k(recs: pd.DataFrame, relevant: pd.DataFrame, k: int, users=None) -> pd.Series:
    """Per-user NDCG@k with graded relevance: gain ``log(1 + n_events)`` in the future window.

    Binary relevance ("any event in (T, T+h]") saturates when users have few categories and
    interest decays slowly: almost every past category has *some* event, so nearly any order of
    the user's own categories scores well.  Grading by how many events each category gets asks
    the harder question a recommender cares about: is the most wanted category on top?
    ``relevant`` must carry ``n_events`` (as :func:`relevant_items` returns).
    """
    k = _check_int("k", k, minimum=1)
    _validate_recs(recs)
    _validate_relevant(relevant)
    if "n_events" not in relevant.columns:
        raise KeyError("relevant has no 'n_events' column; build it with relevant_items()")
    _single_strategy(recs)
    users = _eval_users(recs, relevant, users)
    rel = relevant[[*_PAIR, "n_events"]].groupby(_PAIR, as_index=False)["n_events"].sum()
    rel["gain"] = np.log1p(rel["n_events"].to_numpy(dtype=float))
    top = recs.loc[(recs["rank"].to_numpy() <= k) & np.isin(recs["user_id"].to_numpy(), users), ["user_id", "category", "rank"]]
    top = top.merge(rel[[*_PAIR, "gain"]], on=_PAIR, how="left").fillna({"gain": 0.0})
    dcg = (top["gain"] / np.log2(top["rank"].to_numpy(dtype=float) + 1.0)).groupby(top["user_id"].to_numpy()).sum()
    ideal = rel[np.isin(rel["user_id"].to_numpy(), users)].sort_values(["user_id", "gain"], ascending=[True, False])
    pos = ideal.groupby("user_id").cumcount().to_numpy() + 1
    ideal = ideal[pos <= k].assign(d=lambda x: x["gain"] / np.log2(pos[pos <= k] + 1.0))
    idcg = ideal.groupby("user_id")["d"].sum().reindex(users)
    out = pd.Series(dcg.reindex(users, fill_value=0.0).to_numpy() / idcg.to_numpy(), index=pd.Index(users, name="user_id"))
    out.name = f"graded_ndcg@{k}"
    return out


def decay_inputs_at_cutoff(panel: pd.DataFrame, cutoff_day: int, *, prominence: float = 0.3,
                           min_days: int = 5, rules=None, with_reasons: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """λ per pair and decay points, computed from data up to ``cutoff_day`` only.

    The panel is cut at the cutoff and re-smoothed (the stored ``interest_smooth`` is centered
    and would look past the cutoff); decay points are the retrospective peaks of that truncated
    series (:func:`decaylib.detect.find_decay_point`), which at time ``T`` can only be peaks that
    have visibly fallen already; λ is the Poisson maximum-likelihood fit
    (:func:`decaylib.decay.fit_poisson_mle`) on the event counts from each peak to ``T``.
    Both apply the evidence rules (:mod:`decaylib.evidence`, ``rules``; counted on data up to
    ``T`` only), and only the pairs that pass are returned.
    Returns ``(lam, decay_points)`` ready for :func:`rank_decay_aware`: ``lam`` has
    ``user_id, category, lam_hat`` and the uncertainty columns (``se_lam, lam_lo, lam_hi,
    half_life, half_life_lo, half_life_hi``), ``decay_points`` has ``user_id, category,
    t_decay``.

    ``with_reasons=True`` (for reports): ``lam`` has one row for *every* pair of the panel with a
    ``reason`` column, NaN λ where it is not ``ok``; a pair without a supported decay point gets
    the decay point's reason (``insufficient_data``, ``not_a_peak``, ``peak_on_empty_day``, ...).
    """
    from .decay import decay_phase_table, fit_poisson_mle
    from .detect import find_decay_point
    from .preprocess import smooth_interest

    cutoff_day = _check_int("cutoff_day", cutoff_day, minimum=0)
    past = panel.loc[panel["day"].to_numpy() <= cutoff_day].copy()
    if past.empty:
        raise ValueError(f"no panel rows on or before cutoff_day={cutoff_day}")
    past["interest_smooth"] = smooth_interest(past)
    all_points = find_decay_point(past, prominence=prominence, rules=rules)
    points = all_points.loc[all_points["t_decay"].notna(), [*_PAIR, "t_decay"]].astype({"t_decay": "int64"})
    from .evidence import UNCERTAINTY_COLS

    cols = [*_PAIR, "lam_hat", *UNCERTAINTY_COLS]
    lam = pd.DataFrame({c: pd.Series(dtype="int64" if c in _PAIR else float) for c in cols})
    fit = None
    if len(points):
        phase = decay_phase_table(past, points, start_col="t_decay")
        fit = fit_poisson_mle(phase, min_days=min_days, rules=rules)
        lam = fit.loc[fit["reason"] == "ok", cols].reset_index(drop=True)
    if with_reasons:
        lam = all_points[[*_PAIR, "reason"]].copy()
        if fit is not None:
            lam = lam.merge(fit[[*cols, "reason"]], on=list(_PAIR), how="left", suffixes=("_point", ""))
            lam["reason"] = lam["reason"].fillna(lam.pop("reason_point"))
        for c in cols[2:]:
            if c not in lam.columns:
                lam[c] = np.nan
        lam = lam[[*cols, "reason"]].reset_index(drop=True)
    return lam, points.reset_index(drop=True)


def coverage(recs: pd.DataFrame, catalog, k: int | None = None) -> float:
    """Share of the catalog's categories that appear in any list (top ``k`` if given)."""
    _validate_recs(recs)
    cat = np.unique(np.asarray(catalog, dtype=np.int64))
    if len(cat) == 0:
        raise ValueError("catalog is empty")
    r = recs if k is None else recs.loc[recs["rank"].to_numpy() <= _check_int("k", k, minimum=1)]
    return float(np.isin(cat, r["category"].to_numpy()).mean())


def wasted_slots(
    recs: pd.DataFrame,
    truth_daily: pd.DataFrame,
    cutoff_day: int,
    threshold: float = 0.5,
    *,
    truth: pd.DataFrame | None = None,
    k: int | None = None,
) -> pd.Series:
    """Share of recommended slots spent on pairs whose true interest had already decayed at ``T``.

    A slot ``(user, category)`` (top ``k`` if given) is *wasted* when the pair has a true curve
    (a row in ``truth``), ``T > t_peak`` and the true latent interest at ``T``
    (``truth_daily.interest`` on ``day == T``) is below ``threshold * peak_interest``.  Slots on
    pairs without a true curve (never-interested categories, e.g. fresh ones) are not wasted.
    ``truth`` (``user_id, category, t_peak, peak_interest``) defaults to the per-pair maximum of
    ``truth_daily.interest`` and its first day.  The denominator is all slots of the strategy.

    Returns a Series indexed by strategy.
    """
    _validate_recs(recs, need_strategy=True)
    _require_frame(truth_daily, "truth_daily", ("user_id", "category", "day", "interest"))
    T = _check_int("cutoff_day", cutoff_day)
    threshold = _check_positive("threshold", threshold)
    if threshold > 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if truth is None:
        td = truth_daily.sort_values([*_PAIR, "day"], kind="stable").reset_index(drop=True)
        g = td.groupby(_PAIR, sort=True)["interest"]
        idx = g.idxmax()
        truth = pd.DataFrame(
            {"t_peak": td.loc[idx.to_numpy(), "day"].to_numpy(), "peak_interest": g.max().to_numpy()}, index=idx.index
        ).reset_index()
    else:
        _require_frame(truth, "truth", (*_PAIR, "t_peak", "peak_interest"))
    r = recs if k is None else recs.loc[recs["rank"].to_numpy() <= _check_int("k", k, minimum=1)]
    at_t = truth_daily.loc[truth_daily["day"].to_numpy() == T, [*_PAIR, "interest"]]
    m = r[["strategy", *_PAIR]].merge(truth[[*_PAIR, "t_peak", "peak_interest"]], on=_PAIR, how="left")
    m = m.merge(at_t, on=_PAIR, how="left")
    after = m["t_peak"].notna().to_numpy() & (T > m["t_peak"].to_numpy(dtype=float))
    missing = after & m["interest"].isna().to_numpy()
    if missing.any():
        raise ValueError(f"truth_daily has no row on day {T} for {int(missing.sum())} recommended pair(s) past their peak")
    wasted = after & (m["interest"].to_numpy(dtype=float) < threshold * m["peak_interest"].to_numpy(dtype=float))
    out = pd.Series(wasted.astype(float)).groupby(m["strategy"].to_numpy(), sort=False).mean()
    out.index.name = "strategy"
    out.name = "wasted_slots"
    return out


def evaluate(
    recs: pd.DataFrame,
    relevant: pd.DataFrame,
    k_list: Sequence[int] = (5, 10),
    *,
    catalog=None,
    n_boot: int = 0,
    seed: int = 0,
) -> pd.DataFrame:
    """HR@k, NDCG@k and coverage@k per strategy.

    Users evaluated: those in any strategy's lists with at least one relevant item (a strategy
    that lacks such a user scores 0 for him).  Users with lists but no relevant item are
    excluded and counted in ``n_users_no_relevant``.  ``catalog`` (all category ids; default:
    every category in ``recs`` or ``relevant``) is the denominator of coverage.  With
    ``n_boot > 0`` percentile bootstrap intervals over users are added (``hr_low`` ...).

    Returns
    -------
    DataFrame
        ``strategy, k, hr, ndcg, coverage, n_users, n_users_no_relevant`` (+ CI columns).
    """
    _validate_recs(recs, need_strategy=True)
    _validate_relevant(relevant)
    k_list = [_check_int("k", k, minimum=1) for k in k_list]
    if not k_list:
        raise ValueError("k_list is empty")
    n_boot = _check_int("n_boot", n_boot, minimum=0)
    if catalog is None:
        catalog = np.union1d(recs["category"].to_numpy(), relevant["category"].to_numpy())
    rec_users = np.unique(recs["user_id"].to_numpy())
    rel_users = np.unique(relevant["user_id"].to_numpy())
    users = np.intersect1d(rec_users, rel_users)
    if len(users) == 0:
        raise ValueError("no user in recs has a relevant item in the evaluation window")
    n_excl = int(len(np.setdiff1d(rec_users, rel_users)))
    rows = []
    for strat in pd.unique(recs["strategy"]):
        r = recs.loc[recs["strategy"].to_numpy() == strat]
        for k in k_list:
            hr = hit_rate_at_k(r, relevant, k, users=users)
            nd = ndcg_at_k(r, relevant, k, users=users)
            row = {
                "strategy": strat,
                "k": k,
                "hr": float(hr.mean()),
                "ndcg": float(nd.mean()),
                "coverage": coverage(r, catalog, k),
                "n_users": len(users),
                "n_users_no_relevant": n_excl,
            }
            if n_boot:
                row["hr_low"], row["hr_high"] = bootstrap_ci(hr, n_boot=n_boot, seed=seed)
                row["ndcg_low"], row["ndcg_high"] = bootstrap_ci(nd, n_boot=n_boot, seed=seed)
            rows.append(row)
    return pd.DataFrame(rows)


def bootstrap_ci(
    per_user_metric, n_boot: int = 1000, seed: int | np.random.Generator = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of a per-user metric.

    Resamples users with replacement ``n_boot`` times as an index matrix (in chunks of about
    two million entries to bound memory) and takes the ``alpha/2`` and ``1 - alpha/2``
    quantiles of the resampled means.  Deterministic for a given ``seed``.
    """
    values = np.asarray(per_user_metric, dtype=float).ravel()
    if values.size == 0:
        raise ValueError("per_user_metric is empty")
    if not np.all(np.isfinite(values)):
        raise ValueError("per_user_metric has NaN or infinite values")
    n_boot = _check_int("n_boot", n_boot, minimum=1)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(_check_int("seed", seed))
    n = values.size
    chunk = max(1, 2_000_000 // n)
    means = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[idx].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


# ---------------------------------------------------------------------------------------------
# tuning
# ---------------------------------------------------------------------------------------------


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
    """
    name, mk = _parse_metric(metric)
    k = _check_int("k", k, minimum=1)
    if mk > k:
        raise ValueError(f"metric {metric!r} needs lists of at least {mk} items but k={k}")
    val_cutoff = _check_int("val_cutoff", val_cutoff)
    horizon = _check_int("horizon", horizon, minimum=1)
    cands = [_check_positive("half_life candidate", h) for h in candidates]
    if not cands:
        raise ValueError("candidates is empty")
    _require_frame(panel, "panel", ("user_id", "category", "day", "interest", *_EVENT_COLUMNS))
    end = val_cutoff + horizon
    lo, hi = _day_range(panel)
    if end > hi:
        raise ValueError(f"validation window ({val_cutoff}, {end}] runs past the panel's last day {hi}")
    visible = panel.loc[panel["day"].to_numpy() <= end]
    relevant = relevant_items(visible, val_cutoff, horizon)
    if relevant.empty:
        raise ValueError(f"no user has relevant items in ({val_cutoff}, {end}]; cannot tune the half-life")
    fn = ndcg_at_k if name == "ndcg" else hit_rate_at_k
    past = _panel_upto(visible, val_cutoff)  # rank_sar(visible, val_cutoff, k, half_life=h), sharing the work
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
    return TuneResult(best_half_life=float(best), table=table)


class UnknownUserError(KeyError):
    """A user id that is not in the data; the message lists a few valid ids."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


def removed_users(panel_meta: dict | None) -> dict[int, str]:
    """``{user code: why it was removed}`` for the users that cleaning removed as bots.

    Reads the ``bots`` records that :func:`decaylib.pipeline.save_panel` writes into
    ``panel_meta.json`` (``user_id``, ``removed``, ``reason``: the bot rule's numbers); an older
    ``panel_meta.json`` with only the ``bot_users`` list gives a generic reason.
    """
    meta = panel_meta or {}
    out: dict[int, str] = {}
    for b in meta.get("bots") or []:
        if b.get("removed", True):
            out[int(b["user_id"])] = str(b.get("reason") or "flagged by the bot rule")
    for u in meta.get("bot_users") or []:
        out.setdefault(int(u), "flagged by the bot rule (events per active day far above the median user's)")
    return out


def _id_list(users: np.ndarray, display: Callable | None, n: int = 5) -> list:
    shown = users[:n].tolist()
    return [display(u) for u in shown] if display is not None else shown


def check_user(panel: pd.DataFrame, user_id, *, code_of: Callable | None = None, display: Callable | None = None,
               removed: dict | None = None) -> int:
    """The panel's integer code of ``user_id``, or :class:`UnknownUserError` with one clear line.

    Parameters
    ----------
    user_id:
        The id to report on: the panel's integer id (simulator), or, with ``code_of``, the user's
        own id as in their event file (a string such as ``"C12347"`` or an int).
    code_of:
        Maps the user's own id to the panel's code (e.g. :meth:`decaylib.pipeline.DataSource.user_code`);
        a ``KeyError`` or ``ValueError`` from it means "not in the event log". ``None``: ids are
        the panel's own integers.
    display:
        Maps a code back to the user's own id, to list valid ids in the form the user knows.
    removed:
        ``{code: reason}`` of users cleaning removed as bots (:func:`removed_users`): such an id
        gets that explanation instead of "not in the data".
    """
    if "user_id" not in panel.columns:
        raise KeyError("panel is missing required column 'user_id'")
    users = np.unique(panel["user_id"].to_numpy())
    removed = removed or {}
    valid = f"valid ids include {_id_list(users, display)} ({len(users):,} users"
    valid += f", ids {users.min()}-{users.max()})" if display is None and len(users) else ")"
    if code_of is None:
        try:
            uid = int(user_id)
            if uid != user_id and not isinstance(user_id, str):
                raise ValueError
        except (TypeError, ValueError):
            raise UnknownUserError(f"user_id must be an integer id, got {user_id!r}; {valid}") from None
        shown = uid
    else:
        shown = user_id
        try:
            uid = int(code_of(user_id))
        except (KeyError, ValueError, TypeError):
            raise UnknownUserError(f"unknown user_id {user_id}: not in the data; {valid}") from None
    if uid in removed:
        raise UnknownUserError(
            f"user_id {shown} has no report: cleaning (notebook 02) removed it as a bot ({removed[uid]}); {valid}")
    if uid not in set(users.tolist()):
        if code_of is not None:  # in the event log, but nothing of it survived cleaning
            raise UnknownUserError(f"user_id {shown} is in the event log but none of its events survived cleaning "
                                   f"(notebook 02: dropped event types, duplicates, far-off timestamps); {valid}")
        raise UnknownUserError(f"unknown user_id {uid}: not in the data; {valid}")
    return uid


def resolve_user(src, user_id) -> int:
    """The panel code of the report's ``user_id`` in a :class:`decaylib.pipeline.DataSource`.

    On the simulator ``user_id`` is the panel's integer id; on the user's own events it is their
    own id (``"C12347"``, or an int if their ids are ints), mapped with ``src.user_code``.
    Unknown ids, and ids that cleaning removed as bots (read from ``panel_meta.json``), raise
    :class:`UnknownUserError` with one line that lists a few valid ids in the user's own form.
    The runner calls this for every id before it writes any report; notebook 07 calls it first.
    """
    panel = src.panel()
    removed = removed_users(src.panel_meta())
    if src.synthetic:
        return check_user(panel, user_id, removed=removed)
    return check_user(panel, user_id, code_of=src.user_code, display=src.display_user, removed=removed)


def reason_legend(advice: pd.DataFrame) -> pd.DataFrame:
    """Why the half-life of some categories is not estimable: ``reason, categories, meaning``."""
    from .evidence import REASONS

    own = {"not_estimated": "the λ fit returned no estimate for this pair",
           "no_decay_phase": "no decay point up to the report date (or no observed day after it): nothing to fit"}
    counts = advice.loc[advice["lam_reason"] != "ok", "lam_reason"].value_counts()
    return pd.DataFrame({"reason": counts.index.astype(str), "categories": counts.to_numpy(),
                         "meaning": [own.get(r) or REASONS.get(r, r) for r in counts.index]})


#: The actions of the per-user report, in order of decreasing interest.
ACTIONS = ("keep recommending", "time a promotion", "re-engage with fresh items", "stop recommending",
           "dormant: no recent interest")
#: A level at least this share of its highest is called "near its highest level" in the reasons.
NEAR_PEAK = 0.9


def _pct(ratio: float) -> str:
    """The percentage the reasons print for a ratio (the same rounding everywhere)."""
    return f"{ratio:.0%}"


def _fmt_days(d: float) -> str:
    if not np.isfinite(d):
        return "∞"
    return f"{d:.1f}" if d < 10 else f"{d:.0f}"


def half_life_text(half_life: float, lo: float = np.nan, hi: float = np.nan, reason: str = "ok",
                   level: float = 0.90) -> str:
    """The half-life as the report shows it: with its interval when the evidence rules say
    ``ok``, otherwise ``"not estimable (<reason>)"``.

    ``"12 days (90% interval 7 to 30 days)"``; an interval that reaches λ <= 0 has an open upper
    end (``"7 to no decay"``); a fitted λ <= 0 is ``"no decay measured (λ ≤ 0)"`` (the fit found
    no fall after the decay point; the level may still be below its highest).
    """
    if reason != "ok" or np.isnan(half_life):
        return f"not estimable ({reason})"
    text = "no decay measured (λ ≤ 0)" if np.isinf(half_life) else f"{_fmt_days(half_life)} days"
    if np.isnan(lo) and np.isnan(hi):
        return text
    if np.isinf(lo):
        interval = "no decay"
    else:
        lower = _fmt_days(lo) if np.isfinite(lo) else "?"
        interval = f"{lower} to no decay" if np.isinf(hi) else f"{lower} to {_fmt_days(hi)} days"
    if np.isinf(half_life):
        return f"no decay measured (λ ≤ 0; {level:.0%} interval of the half-life: {interval})"
    return f"{text} ({level:.0%} interval {interval})"


def _lambda_columns(frame: pd.DataFrame | None, uid: int, cats: pd.DataFrame) -> pd.DataFrame:
    """λ, its interval and reason for each category of ``cats`` (NaN and a reason when missing)."""
    cols = ["lam_hat", "se_lam", "lam_lo", "lam_hi", "half_life", "half_life_lo", "half_life_hi"]
    if frame is None or frame.empty:
        out = cats[["category"]].copy()
        for c in cols:
            out[c] = np.nan
        out["lam_reason"] = None
        return out
    _require_frame(frame, "lam", ("user_id", "category", "lam_hat"))
    f = frame.loc[frame["user_id"].to_numpy() == uid].drop_duplicates("category")
    keep = ["category", *[c for c in cols if c in f.columns], *(["reason"] if "reason" in f.columns else [])]
    out = cats[["category"]].merge(f[keep], on="category", how="left")
    for c in cols:
        if c not in out.columns:
            out[c] = np.nan
    lam = out["lam_hat"].to_numpy(dtype=float)
    reason = out["reason"].to_numpy(dtype=object) if "reason" in out.columns else np.full(len(out), None, dtype=object)
    has_row = cats[["category"]].merge(f[["category"]].assign(_r=True), on="category", how="left")["_r"].notna().to_numpy()
    reason = np.where(np.isfinite(lam), np.where(pd.isna(reason), "ok", reason), reason)
    reason = np.where(has_row & pd.isna(reason), "not_estimated", reason)
    out["lam_reason"] = reason
    # ok estimates without an interval of their own: a Wald interval from se_lam when given
    wald = np.isfinite(lam) & ~np.isfinite(out["lam_lo"].to_numpy(dtype=float)) & np.isfinite(out["se_lam"].to_numpy(dtype=float))
    if wald.any():
        from .evidence import DEFAULT_RULES, wald_interval

        lo, hi = wald_interval(lam[wald], out["se_lam"].to_numpy(dtype=float)[wald], DEFAULT_RULES.interval_level)
        out.loc[wald, "lam_lo"], out.loc[wald, "lam_hi"] = lo, hi
    with np.errstate(divide="ignore"):
        hl = np.where(lam > 0, np.log(2) / np.where(lam > 0, lam, 1.0), np.inf)
    out["half_life"] = np.where(np.isfinite(lam), hl, np.nan)
    lo_l, hi_l = out["lam_lo"].to_numpy(dtype=float), out["lam_hi"].to_numpy(dtype=float)
    need = np.isfinite(lam) & ~np.isfinite(out["half_life_lo"].to_numpy(dtype=float)) & np.isfinite(lo_l) & np.isfinite(hi_l)
    if need.any():
        with np.errstate(divide="ignore", invalid="ignore"):
            out.loc[need, "half_life_lo"] = np.where(hi_l[need] > 0, np.log(2) / hi_l[need], np.inf)
            out.loc[need, "half_life_hi"] = np.where(lo_l[need] > 0, np.log(2) / lo_l[need], np.inf)
    bad = ~np.isfinite(lam)
    out.loc[bad, [c for c in cols if c != "lam_hat"]] = np.nan
    return out


def trailing_level(panel: pd.DataFrame, window: int = 7) -> np.ndarray:
    """The report's *level* on every panel row: the mean daily ``interest`` over the last
    ``window`` days of its (user, category) pair, aligned with ``panel``'s rows.

    The days before a pair's first row count as days with score 0 (the panel starts a pair at its
    first event, so the first days are not a spike: one event is one event in ``window`` days);
    days lost to a logging outage (``observed`` False) are left out of the mean. Rows must be
    one per day per pair, without gaps (the zero-filled panel of :mod:`decaylib.preprocess`).
    """
    window = _check_int("window", window, minimum=1)
    _require_frame(panel, "panel", ("user_id", "category", "day", "interest"), allow_empty=True)
    order = np.lexsort((panel["day"].to_numpy(), panel["category"].to_numpy(), panel["user_id"].to_numpy()))
    sp = panel.iloc[order]
    obs = sp["observed"].to_numpy(dtype=bool) if "observed" in sp.columns else np.ones(len(sp), dtype=bool)
    keys = [sp["user_id"].to_numpy(), sp["category"].to_numpy()]
    frame = pd.DataFrame({"x": np.where(obs, sp["interest"].to_numpy(dtype=float), 0.0), "o": obs.astype(float)})
    sums = frame.groupby(keys, sort=False).transform(lambda c: c.rolling(window, min_periods=1).sum())
    pos = frame.groupby(keys, sort=False).cumcount().to_numpy()
    days = sums["o"].to_numpy() + np.maximum(0, window - 1 - pos)
    with np.errstate(invalid="ignore", divide="ignore"):
        level = pd.Series(np.where(days > 0, sums["x"].to_numpy() / np.where(days > 0, days, 1.0), np.nan))
    level = level.groupby(keys, sort=False).ffill().fillna(0.0).to_numpy()  # a window of outage days: last level
    out = np.empty(len(panel))
    out[order] = level
    return out


def category_actions(panel: pd.DataFrame, user_id: int, cutoff_day: int, *, lam: pd.DataFrame | None = None,
                     decay_points: pd.DataFrame | None = None, alerts: pd.DataFrame | None = None,
                     horizon: int = 14, level_window: int = 7, promo_ratio: float = 0.5,
                     stop_ratio: float = 0.15, start_date=None, interval_level: float = 0.90) -> pd.DataFrame:
    """One recommended action per category of one user at ``cutoff_day``, with the reason in words.

    State of each (user, category) pair from data up to the cutoff: the current level (mean
    daily score over the last ``level_window`` days, :func:`trailing_level`), its highest value
    so far (same moving mean), the events in the last ``level_window`` days, λ with its interval and reason
    (``lam``: ``lam_hat`` and, when the evidence rules provide them, ``reason``, ``se_lam``,
    ``lam_lo``, ``lam_hi``, ``half_life_lo``, ``half_life_hi``), the decay point
    (``decay_points``: ``t_decay``) and the early-warning day (``alerts``: ``alert_day``, only
    days up to the cutoff count). With ``ratio = level / highest``:

    * no event in the last ``level_window`` days: **dormant: no recent interest** (the report
      never advises to keep pushing a category the user has stopped touching);
    * ``ratio >= promo_ratio`` with a decay point or an alert up to the cutoff: **time a
      promotion** (still substantial, about to fade); without: **keep recommending**;
    * ``stop_ratio <= ratio < promo_ratio``: **re-engage with fresh items**;
    * ``ratio < stop_ratio``: **stop recommending**.

    The reason sentence is built from the numbers in the same row, with the same rounding: the
    percentage it prints is ``ratio``; "at its highest level" only when ``ratio`` rounds to
    100 %, "near its highest level" only when ``ratio >= NEAR_PEAK``; the half-life it quotes is
    ``half_life_text`` (with its interval, or "not estimable (reason)"). ``start_date`` (the
    date of day 0) turns day numbers into dates in the sentences.

    Returns one row per category (ordered by action as in :data:`ACTIONS`, then by level, highest
    first): ``category, level, highest_level, ratio, recent_events,
    last_event_day, lam_hat, lam_lo, lam_hi, half_life, half_life_lo, half_life_hi, lam_reason,
    half_life_text, t_decay, alert_day, expected_next, action, reason``.
    """
    uid = check_user(panel, user_id)
    cutoff_day = _check_int("cutoff_day", cutoff_day, minimum=0)
    level_window = _check_int("level_window", level_window, minimum=1)
    horizon = _check_int("horizon", horizon, minimum=1)
    if not 0 < stop_ratio < promo_ratio < 1:
        raise ValueError(f"need 0 < stop_ratio < promo_ratio < 1, got stop_ratio={stop_ratio}, promo_ratio={promo_ratio}")
    p = panel.loc[(panel["user_id"].to_numpy() == uid) & (panel["day"].to_numpy() <= cutoff_day)]
    if p.empty:
        raise ValueError(f"user {uid} has no data on or before day {cutoff_day}")
    p = p.sort_values(["category", "day"])
    cat = p["category"].to_numpy()
    observed = p["observed"].to_numpy(dtype=bool) if "observed" in p.columns else np.ones(len(p), dtype=bool)
    roll = pd.Series(trailing_level(p, level_window), index=p.index)
    counts = [c for c in _EVENT_COLUMNS if c in p.columns]
    n_ev = (p[counts].sum(axis=1).to_numpy(dtype=float) if counts else (p["interest"].to_numpy(dtype=float) > 0) * 1.0)
    n_ev = np.where(observed, n_ev, 0.0)
    day = p["day"].to_numpy()
    state = pd.DataFrame({"category": cat, "level": roll.to_numpy(), "recent": np.where(day > cutoff_day - level_window, n_ev, 0.0),
                          "event_day": np.where(n_ev > 0, day, np.nan)})
    g = state.groupby("category")
    out = pd.DataFrame({"level": g["level"].last().fillna(0.0), "highest_level": g["level"].max().fillna(0.0),
                        "recent_events": g["recent"].sum(), "last_event_day": g["event_day"].max()}).reset_index()
    out["ratio"] = np.where(out["highest_level"] > 0, out["level"] / out["highest_level"].where(out["highest_level"] > 0, 1.0), 0.0)
    out = out[["category", "level", "highest_level", "ratio", "recent_events", "last_event_day"]]

    def _lookup(frame, col):
        if frame is None or frame.empty:
            return pd.Series(np.nan, index=out.index)
        f = frame.loc[frame["user_id"].to_numpy() == uid, ["category", col]].drop_duplicates("category")
        return out[["category"]].merge(f, how="left")[col].astype(float)

    lamc = _lambda_columns(lam, uid, out)
    for c in ("lam_hat", "lam_lo", "lam_hi", "half_life", "half_life_lo", "half_life_hi", "lam_reason"):
        out[c] = lamc[c].to_numpy()
    out["t_decay"] = _lookup(decay_points, "t_decay").to_numpy()
    out.loc[out["t_decay"] > cutoff_day, "t_decay"] = np.nan  # a decay point after the cutoff is the future
    no_lam = out["lam_reason"].isna().to_numpy()
    out.loc[no_lam, "lam_reason"] = np.where(out.loc[no_lam, "t_decay"].isna(), "no_decay_phase", "not_estimated")
    alert = _lookup(alerts, "alert_day").to_numpy()
    out["alert_day"] = np.where(alert <= cutoff_day, alert, np.nan)
    out["half_life_text"] = [half_life_text(h, lo, hi, r, interval_level) for h, lo, hi, r in
                             zip(out["half_life"], out["half_life_lo"], out["half_life_hi"], out["lam_reason"])]
    lam_use = np.where(out["lam_reason"].to_numpy() == "ok", out["lam_hat"].to_numpy(dtype=float), 0.0)
    out["expected_next"] = out["level"].to_numpy() * expected_decay_sum(np.clip(np.nan_to_num(lam_use), 0.0, None), horizon)

    def when(d) -> str:
        if start_date is None:
            return f"day {int(d)}"
        return f"{(pd.Timestamp(start_date) + pd.Timedelta(days=int(d))).date()}"

    actions, reasons = [], []
    for r in out.itertuples(index=False):
        share = _pct(r.ratio)
        hl = f" Half-life: {r.half_life_text}." if r.lam_reason == "ok" else ""
        if np.isfinite(r.t_decay):
            turn = f"it peaked on {when(r.t_decay)}"
        elif np.isfinite(r.alert_day):
            turn = f"the early warning fired on {when(r.alert_day)}"
        else:
            turn = "no decay point or early warning so far"
        if r.recent_events <= 0:
            last = (f"the last one on {when(r.last_event_day)}, {cutoff_day - int(r.last_event_day)} days before the report date"
                    if np.isfinite(r.last_event_day) else "none since it first appeared")
            actions.append(ACTIONS[4])
            reasons.append(f"No events in the last {level_window} days ({last}); its level is {share} of its highest. "
                           f"Leave it out of the lists unless the user comes back to it.{hl}")
            continue
        recent = f"{r.recent_events:,.0f} event{'s' if r.recent_events != 1 else ''} in the last {level_window} days"
        if r.ratio >= promo_ratio:
            if share == "100%":
                where = f"at its highest level so far ({share}, {recent})"
            elif r.ratio >= NEAR_PEAK:
                where = f"near its highest level ({share} of it, {recent})"
            else:
                where = f"at {share} of its highest level ({recent})"
            decaying = np.isfinite(r.t_decay) or np.isfinite(r.alert_day)
            if not decaying:
                actions.append(ACTIONS[0])
                reasons.append(f"Interest is {where}; {turn}.{hl}")
            else:
                actions.append(ACTIONS[1])
                reasons.append(f"Interest is {where}, but {turn}: a promotion in the next days catches it "
                               f"before it fades.{hl}")
        elif r.ratio >= stop_ratio:
            actions.append(ACTIONS[2])
            reasons.append(f"Interest has fallen to {share} of its highest level ({recent}); {turn}. Showing the same "
                           f"items again rarely helps; fresh items in this category may rekindle it.{hl}")
        else:
            actions.append(ACTIONS[3])
            reasons.append(f"Interest has faded to {share} of its highest level ({recent}); {turn}. Expected interest "
                           f"over the next {horizon} days is {r.expected_next:.1f} score points: use the slot for "
                           f"something else.{hl}")
    out["action"] = actions
    out["reason"] = reasons
    order = out["action"].map({a: i for i, a in enumerate(ACTIONS)}).to_numpy()
    out = out.iloc[np.lexsort((out["category"].to_numpy(), -out["level"].to_numpy(), order))].reset_index(drop=True)
    out.attrs["level_window"] = level_window
    return out


def report_numbers(advice: pd.DataFrame, start_date=None, category_names=None) -> pd.DataFrame:
    """The numbers behind the advice as an analyst reads them (no index, dates, rounded).

    ``category_names`` maps a category code to its name in the user's data (a dict, Series or
    callable); ``start_date`` turns day numbers into dates.
    """
    def day(d):
        if not np.isfinite(d):
            return ""
        return str((pd.Timestamp(start_date) + pd.Timedelta(days=int(d))).date()) if start_date is not None else str(int(d))

    if category_names is None:
        names = advice["category"].astype(str)
    elif callable(category_names):
        names = advice["category"].map(lambda c: str(category_names(c)))
    else:
        names = advice["category"].map(category_names).astype(str)
    return pd.DataFrame({
        "category": names.to_numpy(),
        "action": advice["action"].to_numpy(),
        "level": advice["level"].round(2).to_numpy(),
        "highest level": advice["highest_level"].round(2).to_numpy(),
        "level / highest": [_pct(r) for r in advice["ratio"]],
        f"events, last {advice.attrs.get('level_window', 7)} days": advice["recent_events"].astype(int).to_numpy(),
        "half-life": advice["half_life_text"].to_numpy(),
        "decay point": [day(d) for d in advice["t_decay"]],
        "alert": [day(d) for d in advice["alert_day"]],
        "expected next": advice["expected_next"].round(1).to_numpy(),
    })


def evaluation_window(first_day: int, last_day: int, horizon_days: int, cutoff_day: int | None = None,
                      tune: bool = True) -> tuple[int, int, str | None]:
    """The cutoff ``T`` and future window ``h`` of notebook 06's offline evaluation, fitted to the log.

    The evaluation needs ``(T, T + h]`` inside the log and, when ``tune`` (the SAR half-life is
    tuned on a validation cutoff ``T - h``), one more window before it with at least one day of
    history: ``first_day <= T - 2h``. When ``horizon_days`` does not fit, it is shrunk to
    ``max(1, (span - 1) // 3)`` (a third of the log per window) and a note says so; an explicit
    ``cutoff_day`` that does not fit stops with :class:`~decaylib.utils.InsufficientDataError`
    naming a value that does; a log too short for any window stops too.

    Returns ``(T, h, note)`` with ``note`` None when nothing was changed.
    """
    from .utils import InsufficientDataError

    first_day, last_day = int(first_day), int(last_day)
    h = _check_int("horizon_days", horizon_days, minimum=1)
    span = last_day - first_day + 1
    windows = 2 if tune else 1
    if span < windows + 1:
        raise InsufficientDataError(f"the log spans {span} day(s); the evaluation needs at least {windows + 1} "
                                    f"({windows} future window(s) of 1 day and 1 day of history)")
    note = None
    if cutoff_day is None:
        if first_day > last_day - windows * h:
            new_h = max(1, (span - 1) // (windows + 1))
            note = (f"The log spans {span} days: evaluating with horizon_days={new_h} instead of {h} "
                    f"(it needs {windows} windows of horizon_days plus history)")
            h = new_h
        return last_day - h, h, note
    T = _check_int("cutoff_day", cutoff_day, minimum=0)
    lo = first_day + (windows - 1) * h
    if not lo <= T <= last_day - h:
        fit_h = min(h, max(1, (span - 1) // (windows + 1)))
        raise InsufficientDataError(
            f"cutoff_day={T} does not fit: with horizon_days={h} the cutoff must lie in days {lo}-{last_day - h} "
            f"of a log that spans days {first_day}-{last_day}; pass cutoff_day={last_day - fit_h}"
            + (f", horizon_days={fit_h}" if fit_h != h else "") + " (or cutoff_day=None)")
    return T, h, note
