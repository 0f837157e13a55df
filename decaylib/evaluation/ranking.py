"""Offline evaluation of rankings on the days after a cutoff (notebook 06).

A category is relevant for a user when the panel has an event in ``(T, T + h]``
(:func:`relevant_items`); the lists of :mod:`decaylib.recommend.strategies` are scored with HR@K, binary and
graded NDCG@K (:func:`hit_rate_at_k`, :func:`ndcg_at_k`, :func:`graded_ndcg_at_k`), catalogue
coverage and wasted slots, all in one table with bootstrap intervals by :func:`evaluate`;
:func:`evaluation_window` places the cutoff so that the future window fits the log;
:func:`ranking_choice` says when there is nothing to rank (one category), so that a comparison of
strategies would only print 1.0 everywhere.

Import flow (one way): ``decaylib.data.panel`` -> ``evaluate`` -> ``recommend`` (its tuned SAR uses
these metrics) -> ``advice``. Nothing here ranks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from decaylib.checks import (
    InsufficientDataError,
    check_int,
    check_positive,
    require_frame,
)
from decaylib.data.panel import day_range, panel_upto
from decaylib.evaluation.bootstrap import bootstrap_ci
from decaylib.schema import BASE_COLUMNS, BEHAVIOURS, PAIR_COLS

__all__ = ['relevant_items', 'hit_rate_at_k', 'ndcg_at_k', 'graded_ndcg_at_k', 'coverage', 'wasted_slots', 'evaluate', 'evaluation_window', 'RankingChoice', 'ranking_choice']


def relevant_items(panel: pd.DataFrame, cutoff_day: int, horizon: int) -> pd.DataFrame:
    """Pairs with any view, click, cart or purchase in ``(T, T + horizon]``.

    Returns ``user_id, category, n_events`` (sum of the four counts in the window), sorted.
    The window must lie inside the panel's days.

    Notebook 06.
    """
    require_frame(panel, "panel", ("user_id", "category", "day", *BEHAVIOURS))
    cutoff_day = check_int("cutoff_day", cutoff_day, minimum=None)
    horizon = check_int("horizon", horizon, minimum=1)
    lo, hi = day_range(panel)
    if not lo <= cutoff_day <= hi:
        raise ValueError(f"cutoff_day={cutoff_day} is outside the panel's days [{lo}, {hi}]")
    if cutoff_day + horizon > hi:
        raise ValueError(
            f"evaluation window ({cutoff_day}, {cutoff_day + horizon}] runs past the panel's last day {hi}"
        )
    day = panel["day"].to_numpy()
    win = panel.loc[(day > cutoff_day) & (day <= cutoff_day + horizon)]
    counts = win[list(BEHAVIOURS)].to_numpy().sum(axis=1)
    tmp = pd.DataFrame(
        {"user_id": win["user_id"].to_numpy(), "category": win["category"].to_numpy(), "n_events": counts}
    )
    out = tmp.groupby(list(PAIR_COLS), sort=True)["n_events"].sum().reset_index()
    out = out.loc[out["n_events"].to_numpy() > 0].reset_index(drop=True)
    out["n_events"] = out["n_events"].astype(np.int64)
    return out


def _validate_recs(recs, need_strategy: bool = False) -> None:
    cols = ["user_id", "category", "rank"] + (["strategy"] if need_strategy else [])
    require_frame(recs, "recs", cols)
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
    missing = [c for c in list(PAIR_COLS) if c not in relevant.columns]
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
    rel = relevant[list(PAIR_COLS)].drop_duplicates()
    top = top.merge(rel, on=list(PAIR_COLS), how="left", indicator=True)
    top["_rel"] = (top["_merge"] == "both").to_numpy()
    return top.drop(columns="_merge")


def hit_rate_at_k(recs: pd.DataFrame, relevant: pd.DataFrame, k: int, users=None) -> pd.Series:
    """Per-user hit rate: 1 if any of the top ``k`` categories is relevant, else 0.

    Users are those in ``recs`` with at least one relevant item (or the given ``users``, who
    must all have one; a user absent from ``recs`` scores 0).  ``recs`` must hold one strategy.
    Returns a Series indexed by ``user_id``; ``.mean()`` is HR@k.

    Notebook 06.
    """
    k = check_int("k", k, minimum=1)
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

    Notebook 06.
    """
    k = check_int("k", k, minimum=1)
    _validate_recs(recs)
    _validate_relevant(relevant)
    _single_strategy(recs)
    users = _eval_users(recs, relevant, users)
    top = _hits(recs, relevant, k, users)
    gain = np.where(top["_rel"].to_numpy(), 1.0 / np.log2(top["rank"].to_numpy(dtype=float) + 1.0), 0.0)
    dcg = pd.Series(gain, index=top["user_id"].to_numpy()).groupby(level=0).sum().reindex(users, fill_value=0.0)
    n_rel = relevant[list(PAIR_COLS)].drop_duplicates().groupby("user_id").size().reindex(users, fill_value=0).to_numpy()
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

    Notebook 06.
    """
    k = check_int("k", k, minimum=1)
    _validate_recs(recs)
    _validate_relevant(relevant)
    if "n_events" not in relevant.columns:
        raise KeyError("relevant has no 'n_events' column; build it with relevant_items()")
    _single_strategy(recs)
    users = _eval_users(recs, relevant, users)
    rel = relevant[[*PAIR_COLS, "n_events"]].groupby(list(PAIR_COLS), as_index=False)["n_events"].sum()
    rel["gain"] = np.log1p(rel["n_events"].to_numpy(dtype=float))
    top = recs.loc[(recs["rank"].to_numpy() <= k) & np.isin(recs["user_id"].to_numpy(), users), ["user_id", "category", "rank"]]
    top = top.merge(rel[[*PAIR_COLS, "gain"]], on=list(PAIR_COLS), how="left").fillna({"gain": 0.0})
    dcg = (top["gain"] / np.log2(top["rank"].to_numpy(dtype=float) + 1.0)).groupby(top["user_id"].to_numpy()).sum()
    ideal = rel[np.isin(rel["user_id"].to_numpy(), users)].sort_values(["user_id", "gain"], ascending=[True, False])
    pos = ideal.groupby("user_id").cumcount().to_numpy() + 1
    ideal = ideal[pos <= k].assign(d=lambda x: x["gain"] / np.log2(pos[pos <= k] + 1.0))
    idcg = ideal.groupby("user_id")["d"].sum().reindex(users)
    out = pd.Series(dcg.reindex(users, fill_value=0.0).to_numpy() / idcg.to_numpy(), index=pd.Index(users, name="user_id"))
    out.name = f"graded_ndcg@{k}"
    return out


def coverage(recs: pd.DataFrame, catalog, k: int | None = None) -> float:
    """Share of the catalog's categories that appear in any list (top ``k`` if given).

    Notebooks 04 and 06.
    """
    _validate_recs(recs)
    cat = np.unique(np.asarray(catalog, dtype=np.int64))
    if len(cat) == 0:
        raise ValueError("catalog is empty")
    r = recs if k is None else recs.loc[recs["rank"].to_numpy() <= check_int("k", k, minimum=1)]
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

    Notebook 06.
    """
    _validate_recs(recs, need_strategy=True)
    require_frame(truth_daily, "truth_daily", BASE_COLUMNS)
    T = check_int("cutoff_day", cutoff_day, minimum=None)
    threshold = check_positive("threshold", threshold)
    if threshold > 1:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if truth is None:
        td = truth_daily.sort_values([*PAIR_COLS, "day"], kind="stable").reset_index(drop=True)
        g = td.groupby(list(PAIR_COLS), sort=True)["interest"]
        idx = g.idxmax()
        truth = pd.DataFrame(
            {"t_peak": td.loc[idx.to_numpy(), "day"].to_numpy(), "peak_interest": g.max().to_numpy()}, index=idx.index
        ).reset_index()
    else:
        require_frame(truth, "truth", (*PAIR_COLS, "t_peak", "peak_interest"))
    r = recs if k is None else recs.loc[recs["rank"].to_numpy() <= check_int("k", k, minimum=1)]
    at_t = truth_daily.loc[truth_daily["day"].to_numpy() == T, [*PAIR_COLS, "interest"]]
    m = r[["strategy", *PAIR_COLS]].merge(truth[[*PAIR_COLS, "t_peak", "peak_interest"]], on=list(PAIR_COLS), how="left")
    m = m.merge(at_t, on=list(PAIR_COLS), how="left")
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

    Notebook 06.
    """
    _validate_recs(recs, need_strategy=True)
    _validate_relevant(relevant)
    k_list = [check_int("k", k, minimum=1) for k in k_list]
    if not k_list:
        raise ValueError("k_list is empty")
    n_boot = check_int("n_boot", n_boot, minimum=0)
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


def evaluation_window(first_day: int, last_day: int, horizon_days: int, cutoff_day: int | None = None,
                      tune: bool = True, sar_tune_days: int | None = None) -> tuple[int, int, str | None]:
    """The cutoff ``T`` and future window ``h`` of notebook 06's offline evaluation, fitted to the log.

    The evaluation needs ``(T, T + h]`` inside the log and, when ``tune`` (the SAR half-life is
    tuned on a validation cutoff ``T - sar_tune_days``, scored on ``(T - sar_tune_days, T]``), that window
    too with at least one day of history before it: ``first_day <= T - sar_tune_days``. ``sar_tune_days``
    defaults to ``h``, and then a ``horizon_days`` that does not fit is shrunk to
    ``max(1, (span - 1) // 3)`` (a third of the log per window); with an explicit ``sar_tune_days`` it is
    shrunk to what ``sar_tune_days`` and a day of history leave, ``span - 1 - sar_tune_days``. A note says
    so. An explicit ``cutoff_day`` that does not fit stops with
    :class:`~decaylib.checks.InsufficientDataError` naming a value that does; a log too short for any
    window, or a ``sar_tune_days`` that leaves no day for the future window, stops too.

    Returns ``(T, h, note)`` with ``note`` None when nothing was changed.

    Notebook 06.
    """

    first_day, last_day = int(first_day), int(last_day)
    h = check_int("horizon_days", horizon_days, minimum=1)
    span = last_day - first_day + 1
    windows = 2 if tune else 1
    if span < windows + 1:
        raise InsufficientDataError(f"the log spans {span} day(s); the evaluation needs at least {windows + 1} "
                                    f"({windows} future window(s) of 1 day and 1 day of history)")
    if tune and sar_tune_days is not None:
        sar_tune_days = check_int("sar_tune_days", sar_tune_days, minimum=1)
        if sar_tune_days > span - 2:
            raise InsufficientDataError(
                f"sar_tune_days={sar_tune_days} leaves no room: the log spans {span} days and the evaluation needs sar_tune_days "
                f"days to tune SAR on, a day of history before them and a future window of at least one day; "
                f"pass sar_tune_days of at most {span - 2}")
    else:
        sar_tune_days = None  # the tuning window is the horizon (or there is no tuning)
    note = None
    if cutoff_day is None:
        if sar_tune_days is not None:
            if first_day > last_day - h - sar_tune_days:
                new_h = span - 1 - sar_tune_days
                note = (f"The log spans {span} days: evaluating with horizon_days={new_h} instead of {h} "
                        f"(it needs sar_tune_days={sar_tune_days} days of SAR tuning and a day of history before the window)")
                h = new_h
        elif first_day > last_day - windows * h:
            new_h = max(1, (span - 1) // (windows + 1))
            note = (f"The log spans {span} days: evaluating with horizon_days={new_h} instead of {h} "
                    f"(it needs {windows} windows of horizon_days plus history)")
            h = new_h
        return last_day - h, h, note
    T = check_int("cutoff_day", cutoff_day, minimum=0)
    lo = first_day + (sar_tune_days if sar_tune_days is not None else (windows - 1) * h)
    if not lo <= T <= last_day - h:
        extra = ""
        if sar_tune_days is not None:
            fit_h = min(h, span - 1 - sar_tune_days)
            hint = f" and sar_tune_days={sar_tune_days} (the SAR tuning window before the cutoff)"
        else:
            fit_h = min(h, max(1, (span - 1) // (windows + 1)))
            hint = ""
            if tune and first_day < T < lo and T <= last_day - h:  # only the tuning window (= the horizon) is too long
                extra = f"; or keep cutoff_day={T} with sar_tune_days of at most {T - first_day} (SAR's tuning window)"
        raise InsufficientDataError(
            f"cutoff_day={T} does not fit: with horizon_days={h}{hint}"
            + f" the cutoff must lie in days {lo}-{last_day - h} of a log that spans days {first_day}-{last_day}; "
            f"pass cutoff_day={last_day - fit_h}" + (f", horizon_days={fit_h}" if fit_h != h else "")
            + " (or cutoff_day=None)" + extra)
    return T, h, note


class RankingChoice(NamedTuple):
    """What :func:`ranking_choice` found: is there anything to rank at the cutoff?

    Notebook 06.
    """

    trivial: bool  #: no user has two categories to order: every strategy scores 1.0, comparing them says nothing
    n_categories: int  #: categories in the panel up to the cutoff (the catalogue every list draws from)
    n_users: int  #: users in the panel up to the cutoff
    n_users_with_choice: int  #: users with at least two candidate categories
    note: str | None  #: a sentence for the reader when ``trivial``, else None


def ranking_choice(panel: pd.DataFrame, cutoff_day: int, *, backfill: bool = True) -> RankingChoice:
    """Whether any user has two or more categories to rank at ``cutoff_day`` (data up to it only).

    A user's candidate categories are the ones a strategy of :mod:`decaylib.recommend.strategies`
    can put in the user's list: with ``backfill`` (the default of every strategy) every category of
    the panel up to the cutoff, the user's own first and popular ones after them; without it, only the
    categories the user has positive interest in. When no user has two candidates, every list holds
    the same single category, so HR, NDCG and coverage are 1.0 for every strategy (for every user
    with an event in the future window): ranking is trivial, and ``note`` says so with the counts.

    Returns
    -------
    RankingChoice
        ``trivial``, ``n_categories``, ``n_users``, ``n_users_with_choice``, ``note``.

    Notebook 06.
    """
    past = panel_upto(panel, cutoff_day)  # validates the panel and the cutoff
    cutoff_day = int(cutoff_day)
    users = np.unique(past["user_id"].to_numpy())
    cats = np.unique(past["category"].to_numpy())
    if backfill:
        per_user = np.full(len(users), len(cats), dtype=np.int64)
    else:
        own = past.loc[past["interest"].to_numpy(dtype=float) > 0, list(PAIR_COLS)].drop_duplicates()
        per_user = own.groupby("user_id").size().reindex(users, fill_value=0).to_numpy()
    with_choice = int(np.count_nonzero(per_user >= 2))
    trivial = with_choice == 0
    note = None
    if trivial:
        outcome = ("so hit rate, NDCG and coverage would be 1.0 for every strategy. Ranking is trivial, and the "
                   "comparison of strategies is skipped")
        if len(cats) == 1:
            note = (f"Up to the cutoff (day {cutoff_day}) the log has a single category (id {cats[0]}) for its "
                    f"{len(users):,} users: every strategy's list holds that category alone, {outcome}.")
        else:
            note = (f"Up to the cutoff (day {cutoff_day}) none of the {len(users):,} users has more than one category "
                    f"of their own to rank ({len(cats):,} categories in all, lists without backfill): every "
                    f"personal list holds the same category, {outcome}.")
    return RankingChoice(trivial, int(len(cats)), int(len(users)), with_choice, note)
