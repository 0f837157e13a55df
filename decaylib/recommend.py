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
    "check_user",
    "ACTIONS",
    "category_actions",
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


def _require_frame(df, name: str, columns: Iterable[str]) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"{name} is missing column(s) {missing}; it has {list(df.columns)}")
    if df.empty:
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


def estimate_lambda_causal(panel: pd.DataFrame, cutoff_day: int, window: int = 14, min_days: int = 5) -> pd.DataFrame:
    """Per-pair decay rate from a trailing window ending at the cutoff (no future data).

    Fits ``log1p(interest_t) ~ a - lam * t`` by weighted least squares on the observed days in
    ``(T - window, T]`` with weights ``1 + interest_t`` (roughly the inverse variance of the
    log of a Poisson-like count), vectorized with grouped sums.  A simple fallback so that
    ``decay_aware`` runs without external estimates: ``log1p`` pulls the slope towards 0 when
    counts are small, so ``decaylib.decay`` (fitted with data up to ``T`` only) gives better λ.

    Returns
    -------
    DataFrame
        ``user_id, category, lam_hat, n_days``; ``lam_hat`` is NaN for pairs with fewer than
        ``min_days`` observed days in the window or no positive interest there.  Negative
        ``lam_hat`` means rising interest.
    """
    window = _check_int("window", window, minimum=2)
    min_days = _check_int("min_days", min_days, minimum=2)
    past = _panel_upto(panel, cutoff_day)
    cutoff_day = int(cutoff_day)
    day = past["day"].to_numpy()
    mask = (day > cutoff_day - window) & _observed_mask(past)
    y_raw = past["interest"].to_numpy(dtype=float)[mask]
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
            "n": np.ones(len(x), dtype=np.int64),
            "pos": (y_raw > 0).astype(np.int64),
        }
    )
    s = tmp.groupby(_PAIR, sort=True).sum()
    sw, swx, swy, swxx, swxy = (s[c].to_numpy() for c in ("w", "wx", "wy", "wxx", "wxy"))
    denom = sw * swxx - swx**2
    ok = (s["n"].to_numpy() >= min_days) & (s["pos"].to_numpy() > 0) & (denom > 1e-12 * np.maximum(sw * swxx, 1.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (sw * swxy - swx * swy) / denom
    out = s.index.to_frame(index=False)
    out["lam_hat"] = np.where(ok, -slope, np.nan)
    out["n_days"] = s["n"].to_numpy()
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
        _require_frame(lam, "lam", (*_PAIR, "lam_hat"))
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
        _require_frame(decay_points, "decay_points", (*_PAIR, "t_decay"))
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
                           min_days: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """λ per pair and decay points, computed from data up to ``cutoff_day`` only.

    The panel is cut at the cutoff and re-smoothed (the stored ``interest_smooth`` is centered
    and would look past the cutoff); decay points are the retrospective peaks of that truncated
    series (:func:`decaylib.detect.find_decay_point`), which at time ``T`` can only be peaks that
    have visibly fallen already; λ is the Poisson maximum-likelihood fit
    (:func:`decaylib.decay.fit_poisson_mle`) on the event counts from each peak to ``T``.
    Returns ``(lam, decay_points)`` ready for :func:`rank_decay_aware`.
    """
    from .decay import decay_phase_table, fit_poisson_mle
    from .detect import find_decay_point
    from .preprocess import smooth_interest

    cutoff_day = _check_int("cutoff_day", cutoff_day, minimum=0)
    past = panel.loc[panel["day"].to_numpy() <= cutoff_day].copy()
    if past.empty:
        raise ValueError(f"no panel rows on or before cutoff_day={cutoff_day}")
    past["interest_smooth"] = smooth_interest(past)
    points = find_decay_point(past, prominence=prominence)
    points = points.loc[points["t_decay"].notna(), [*_PAIR, "t_decay"]].astype({"t_decay": "int64"})
    lam = pd.DataFrame({c: pd.Series(dtype="int64") for c in _PAIR}).assign(lam_hat=pd.Series(dtype=float))
    if len(points):
        phase = decay_phase_table(past, points, start_col="t_decay")
        fit = fit_poisson_mle(phase, min_days=min_days)
        lam = fit.loc[fit["lam_hat"].notna(), [*_PAIR, "lam_hat"]].reset_index(drop=True)
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


def check_user(panel: pd.DataFrame, user_id) -> int:
    """Return ``user_id`` as an int if the panel knows it, else raise :class:`UnknownUserError`."""
    if "user_id" not in panel.columns:
        raise KeyError("panel is missing required column 'user_id'")
    users = np.unique(panel["user_id"].to_numpy())
    try:
        uid = int(user_id)
        if uid != user_id and not isinstance(user_id, str):
            raise ValueError
    except (TypeError, ValueError):
        raise UnknownUserError(f"user_id must be an integer id, got {user_id!r}; valid ids include "
                               f"{users[:5].tolist()} ({len(users)} users)") from None
    if uid not in set(users.tolist()):
        raise UnknownUserError(f"unknown user_id {uid}: not in the data; valid ids include {users[:5].tolist()} "
                               f"({len(users)} users, ids {users.min()}-{users.max()})")
    return uid


#: The four actions of the per-user report, in order of decreasing interest.
ACTIONS = ("keep recommending", "time a promotion", "re-engage with fresh items", "stop recommending")


def category_actions(panel: pd.DataFrame, user_id: int, cutoff_day: int, *, lam: pd.DataFrame | None = None,
                     decay_points: pd.DataFrame | None = None, alerts: pd.DataFrame | None = None,
                     horizon: int = 14, level_window: int = 7, promo_ratio: float = 0.5,
                     stop_ratio: float = 0.15) -> pd.DataFrame:
    """One recommended action per category of one user at ``cutoff_day``, with the reason in words.

    State of each (user, category) pair from data up to the cutoff: the current level (mean
    score of the last ``level_window`` observed days), its highest value so far (same moving
    mean), λ and half-life (``lam``), the decay point (``decay_points``: ``t_decay``) and the
    early-warning day (``alerts``: ``alert_day``).  Rules, with ``ratio = level / highest``:

    * no decay point and no alert up to the cutoff: **keep recommending**;
    * turning or decaying and ``ratio >= promo_ratio``: **time a promotion** (still substantial,
      about to fade);
    * decaying and ``stop_ratio <= ratio < promo_ratio``: **re-engage with fresh items**;
    * decaying and ``ratio < stop_ratio``: **stop recommending**.

    Returns one row per category: ``category, level, highest_level, ratio, lam_hat, half_life,
    t_decay, alert_day, expected_next, action, reason``.
    """
    uid = check_user(panel, user_id)
    cutoff_day = _check_int("cutoff_day", cutoff_day, minimum=0)
    if not 0 < stop_ratio < promo_ratio < 1:
        raise ValueError(f"need 0 < stop_ratio < promo_ratio < 1, got stop_ratio={stop_ratio}, promo_ratio={promo_ratio}")
    p = panel.loc[(panel["user_id"].to_numpy() == uid) & (panel["day"].to_numpy() <= cutoff_day)]
    if p.empty:
        raise ValueError(f"user {uid} has no data on or before day {cutoff_day}")
    p = p.sort_values(["category", "day"])
    x = p["interest"].where(p["observed"]) if "observed" in p.columns else p["interest"]
    roll = x.groupby(p["category"].to_numpy()).transform(lambda s: s.rolling(level_window, min_periods=1).mean())
    state = pd.DataFrame({"category": p["category"].to_numpy(), "level": roll.to_numpy()})
    g = state.groupby("category")["level"]
    out = pd.DataFrame({"level": g.last(), "highest_level": g.max()}).reset_index()
    out["ratio"] = np.where(out["highest_level"] > 0, out["level"] / out["highest_level"], 0.0)

    def _lookup(frame, col):
        if frame is None or frame.empty:
            return pd.Series(np.nan, index=out.index)
        f = frame.loc[frame["user_id"].to_numpy() == uid, ["category", col]].drop_duplicates("category")
        return out[["category"]].merge(f, how="left")[col]

    out["lam_hat"] = _lookup(lam, "lam_hat").to_numpy()
    out["half_life"] = np.where(out["lam_hat"] > 0, np.log(2) / out["lam_hat"], np.inf)
    out.loc[out["lam_hat"].isna(), "half_life"] = np.nan
    out["t_decay"] = _lookup(decay_points, "t_decay").to_numpy()
    alert = _lookup(alerts, "alert_day").to_numpy()
    out["alert_day"] = np.where(alert <= cutoff_day, alert, np.nan)
    lam_use = out["lam_hat"].fillna(0.0).clip(lower=0.0).to_numpy()
    out["expected_next"] = out["level"].to_numpy() * expected_decay_sum(lam_use, horizon)
    decaying = (out["t_decay"].notna() & (out["t_decay"] <= cutoff_day)) | out["alert_day"].notna()

    actions, reasons = [], []
    for r, dec in zip(out.itertuples(index=False), decaying.to_numpy()):
        hl = f"a half-life of about {r.half_life:.0f} days" if np.isfinite(r.half_life) else "no measurable decay rate yet"
        share = f"{r.ratio:.0%} of its highest level"
        if not dec:
            actions.append(ACTIONS[0])
            reasons.append(f"Interest is still rising or at its peak ({share}); no decay point and no early warning so far.")
            continue
        since = (f"peaked on day {int(r.t_decay)}" if np.isfinite(r.t_decay) else
                 f"was flagged as turning on day {int(r.alert_day)}")
        if r.ratio >= promo_ratio:
            actions.append(ACTIONS[1])
            reasons.append(f"Interest {since} and is now falling, with {hl}; at {share} it is still strong: "
                           f"a promotion in the next days catches it before it fades.")
        elif r.ratio >= stop_ratio:
            actions.append(ACTIONS[2])
            reasons.append(f"Interest {since} and has fallen to {share} ({hl}); showing the same items again "
                           f"rarely helps, fresh items in this category may rekindle it.")
        else:
            actions.append(ACTIONS[3])
            reasons.append(f"Interest {since} and has faded to {share} ({hl}); expected interest over the next "
                           f"{horizon} days is {r.expected_next:.1f} score points: use the slot for something else.")
    out["action"] = actions
    out["reason"] = reasons
    return out
