"""Tests for decaylib.recommend: strategies, leakage, metrics, tuning, bootstrap."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from decaylib import advice as A, evaluate as E, recommend as R

EVENT_COLS = ["view", "click", "cart", "purchase", "impression"]


def make_panel(series: dict, end_day: int) -> pd.DataFrame:
    """Panel from {(user, category): (start_day, [interest per day ...])}; zero-filled to end_day.

    interest is put into ``view`` (so interest == view), other counts are 0.
    """
    rows = []
    for (u, c), (start, values) in series.items():
        vals = list(values) + [0] * (end_day - start + 1 - len(values))
        for i, v in enumerate(vals[: end_day - start + 1]):
            rows.append((u, c, start + i, int(v)))
    p = pd.DataFrame(rows, columns=["user_id", "category", "day", "view"])
    for col in ("click", "cart", "purchase", "impression"):
        p[col] = 0
    p[["user_id", "category", "day"] + EVENT_COLS] = p[["user_id", "category", "day"] + EVENT_COLS].astype("int64")
    p["interest"] = p["view"].astype(float)
    p["interest_smooth"] = p["interest"]
    p["observed"] = True
    return p.sort_values(["user_id", "category", "day"]).reset_index(drop=True)


def random_panel(seed: int = 0, n_users: int = 12, n_cats: int = 6, end_day: int = 59) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    series = {}
    for u in range(n_users):
        for c in rng.choice(n_cats, size=4, replace=False):
            start = int(rng.integers(0, 30))
            peak = start + int(rng.integers(0, 12))
            i0, lam = rng.uniform(1, 8), rng.uniform(0.02, 0.3)
            d = np.arange(start, end_day + 1)
            mu = np.where(d <= peak, i0 * (d - start + 1) / (peak - start + 1), i0 * np.exp(-lam * (d - peak)))
            series[(u, int(c) + 100)] = (start, rng.poisson(mu))
    return make_panel(series, end_day)


def add_wild_future(panel: pd.DataFrame, cutoff: int, seed: int = 1) -> pd.DataFrame:
    """Scramble every row after ``cutoff`` and append new pairs/users/days after it."""
    rng = np.random.default_rng(seed)
    p = panel.copy()
    after = p["day"].to_numpy() > cutoff
    wild = rng.integers(0, 500, size=after.sum())
    p.loc[after, "view"] = wild
    p.loc[after, "purchase"] = wild % 7
    p.loc[after, "interest"] = (wild + 5 * (wild % 7)).astype(float)
    p["interest_smooth"] = rng.uniform(0, 1e6, size=len(p))  # centered filter: must never be used
    end = int(p["day"].max())
    extra = []
    for u, c in [(0, 999), (777, 100), (3, 105)]:  # new pair, new user, maybe existing pair
        if ((p["user_id"] == u) & (p["category"] == c)).any():
            continue
        for d in range(cutoff + 1, end + 15):
            extra.append((u, c, d, 900, 0, 0, 50, 0))
    ext = pd.DataFrame(extra, columns=["user_id", "category", "day"] + EVENT_COLS).astype("int64")
    ext["interest"] = (ext["view"] + 5 * ext["purchase"]).astype(float)
    ext["interest_smooth"] = 0.0
    ext["observed"] = True
    return pd.concat([p, ext], ignore_index=True).sort_values(["user_id", "category", "day"]).reset_index(drop=True)


STRATEGY_KW = {
    "sar_tuned": {"tune_horizon": 10, "candidates": (3.0, 10.0, 30.0)},
    "decay_aware": {"horizon": 7},
}


# ----------------------------------------------------------------------------- metrics


def _recs(user, cats, strategy="s"):
    return pd.DataFrame(
        {"user_id": user, "strategy": strategy, "rank": np.arange(1, len(cats) + 1), "category": cats, "score": 0.0}
    )


def test_ndcg_hand_computed():
    recs = _recs(1, [10, 11, 12, 13, 14])
    rel = pd.DataFrame({"user_id": [1, 1], "category": [10, 12]})
    got = E.ndcg_at_k(recs, rel, 5)
    expected = (1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    assert got.loc[1] == pytest.approx(expected, rel=1e-12)
    # k truncates the list; IDCG uses min(k, n_relevant)
    assert E.ndcg_at_k(recs, rel, 2).loc[1] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    # a relevant item outside the list still counts in IDCG
    rel3 = pd.DataFrame({"user_id": [1, 1, 1], "category": [11, 98, 99]})
    exp3 = (1 / math.log2(3)) / (1 + 1 / math.log2(3) + 1 / math.log2(4))
    assert E.ndcg_at_k(recs, rel3, 5).loc[1] == pytest.approx(exp3)
    # perfect ranking -> 1
    assert E.ndcg_at_k(recs, pd.DataFrame({"user_id": [1], "category": [10]}), 5).loc[1] == pytest.approx(1.0)


def test_hit_rate_and_user_exclusion():
    recs = pd.concat([_recs(1, [10, 11, 12]), _recs(2, [10, 11, 12]), _recs(3, [10, 11, 12])], ignore_index=True)
    rel = pd.DataFrame({"user_id": [1, 3, 4], "category": [12, 99, 10]})  # user 2: none; user 4: no list
    hr2 = E.hit_rate_at_k(recs, rel, 2)
    hr3 = E.hit_rate_at_k(recs, rel, 3)
    assert list(hr3.index) == [1, 3]  # user 2 excluded (no relevant), user 4 has no list
    assert hr2.to_dict() == {1: 0.0, 3: 0.0}
    assert hr3.to_dict() == {1: 1.0, 3: 0.0}
    assert hr3.mean() == pytest.approx(0.5)

    two = pd.concat([recs, _recs(1, [12, 10, 11], strategy="t")], ignore_index=True)
    table = E.evaluate(two, rel, k_list=(1, 3), catalog=[10, 11, 12, 13])
    row = table.set_index(["strategy", "k"])
    assert row.loc[("s", 1), "hr"] == 0.0 and row.loc[("t", 1), "hr"] == pytest.approx(0.5)  # user 3 scores 0 in t
    assert row.loc[("t", 3), "ndcg"] == pytest.approx(0.5)
    assert (table["n_users"] == 2).all() and (table["n_users_no_relevant"] == 1).all()
    assert row.loc[("s", 1), "coverage"] == pytest.approx(0.25)
    assert row.loc[("s", 3), "coverage"] == pytest.approx(0.75)
    with pytest.raises(ValueError, match="several strategies"):
        E.hit_rate_at_k(two, rel, 3)


def test_relevant_items_window_and_events():
    p = make_panel({(1, 10): (0, [1, 0, 0, 0, 0, 0]), (1, 11): (0, [0, 0, 0, 3]), (2, 10): (0, [0, 0, 0, 0, 0, 2])}, 6)
    p.loc[(p["user_id"] == 1) & (p["category"] == 10) & (p["day"] == 2), "impression"] = 5  # impressions don't count
    p.loc[(p["user_id"] == 2) & (p["category"] == 10) & (p["day"] == 1), "cart"] = 1
    rel = E.relevant_items(p, 1, 3)  # days 2..4
    assert rel[["user_id", "category"]].values.tolist() == [[1, 11]]
    rel = E.relevant_items(p, 0, 5)  # days 1..5
    assert rel[["user_id", "category"]].values.tolist() == [[1, 11], [2, 10]]
    with pytest.raises(ValueError, match="past the panel"):
        E.relevant_items(p, 3, 4)


def test_wasted_slots():
    truth = pd.DataFrame(
        {"user_id": [1, 1, 1], "category": [10, 11, 12], "t_peak": [2, 2, 8], "peak_interest": [10.0, 10.0, 4.0]}
    )
    days = np.arange(0, 10)
    td = []
    for c, tp, i0, lam in [(10, 2, 10.0, 0.5), (11, 2, 10.0, 0.05), (12, 8, 4.0, 0.5)]:
        inter = np.where(days <= tp, i0 * (days + 1) / (tp + 1), i0 * np.exp(-lam * (days - tp)))
        td.append(pd.DataFrame({"user_id": 1, "category": c, "day": days, "interest": inter}))
    td = pd.concat(td, ignore_index=True)
    # at T=5: pair 10 at 10*e^-1.5=2.2 < 5 (wasted); 11 at 8.6 (not); 12 before its peak; 13 has no curve
    recs = _recs(1, [10, 11, 12, 13], strategy="a")
    out = E.wasted_slots(recs, td, 5, 0.5, truth=truth)
    assert out.loc["a"] == pytest.approx(0.25)
    assert E.wasted_slots(recs, td, 5, 0.5).loc["a"] == pytest.approx(0.25)  # truth derived from truth_daily
    assert E.wasted_slots(recs, td, 5, 0.5, truth=truth, k=1).loc["a"] == pytest.approx(1.0)
    assert E.wasted_slots(recs, td, 5, 0.1, truth=truth).loc["a"] == 0.0


def test_bootstrap_ci_contains_mean_and_is_deterministic():
    rng = np.random.default_rng(3)
    vals = rng.binomial(1, 0.3, size=400).astype(float)
    lo, hi = E.bootstrap_ci(vals, n_boot=1000, seed=7)
    assert lo < vals.mean() < hi
    assert (lo, hi) == E.bootstrap_ci(vals, n_boot=1000, seed=7)
    assert (lo, hi) != E.bootstrap_ci(vals, n_boot=1000, seed=8)
    se = vals.std() / math.sqrt(len(vals))
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.2)
    # chunked path (many users) gives a sensible interval too
    big = rng.normal(size=30_000)
    lo2, hi2 = E.bootstrap_ci(big, n_boot=200, seed=0)
    assert lo2 < big.mean() < hi2
    with pytest.raises(ValueError, match="NaN"):
        E.bootstrap_ci([1.0, np.nan])


# ----------------------------------------------------------------------------- building blocks


def test_sar_weight_half_life():
    assert R.sar_weight(30, 30) == pytest.approx(0.5)
    assert R.sar_weight(0, 30) == pytest.approx(1.0)
    assert R.sar_weight(60, 30) == pytest.approx(0.25)
    assert R.sar_weight(7, 7) == pytest.approx(0.5)
    p = make_panel({(1, 10): (0, [4, 0, 2, 0]), (1, 11): (2, [3, 0])}, 3)
    recs = R.rank_categories("sar_h30", p, 3, k=2)
    s = recs.set_index("category")["score"]
    assert s.loc[10] == pytest.approx(4 * 0.5 ** (3 / 30) + 2 * 0.5 ** (1 / 30))
    assert s.loc[11] == pytest.approx(3 * 0.5 ** (1 / 30))
    assert (recs["strategy"] == "sar_h30").all()


def test_expected_decay_sum_closed_form():
    for lam in (0.0, 1e-14, 0.05, 0.7, -0.08):
        brute = sum(math.exp(-lam * k) for k in range(1, 15))
        assert R.expected_decay_sum(lam, 14) == pytest.approx(brute, rel=1e-10)


def test_estimate_lambda_causal_recovers_rate():
    days = np.arange(40)
    series = {
        (1, 10): (0, np.round(5000 * np.exp(-0.1 * days))),
        (1, 11): (0, np.round(2000 * np.exp(0.03 * days))),
        (1, 12): (37, [5, 5, 5]),  # too few days
    }
    p = make_panel(series, 39)
    lam = R.estimate_lambda_causal(p, 39, window=14).set_index(["user_id", "category"])["lam_hat"]
    assert lam.loc[(1, 10)] == pytest.approx(0.1, rel=0.02)
    assert lam.loc[(1, 11)] == pytest.approx(-0.03, rel=0.02)
    assert np.isnan(lam.loc[(1, 12)])
    # only data up to the cutoff: a later collapse does not change the estimate
    p2 = p.copy()
    p2.loc[p2["day"] > 30, "interest"] = 0.0
    lam2 = R.estimate_lambda_causal(p2, 30, window=14).set_index(["user_id", "category"])["lam_hat"]
    lam3 = R.estimate_lambda_causal(p, 30, window=14).set_index(["user_id", "category"])["lam_hat"]
    pdt.assert_series_equal(lam2, lam3)


# ----------------------------------------------------------------------------- strategies


def test_no_data_after_cutoff_is_used():
    panel = random_panel()
    cutoff = 40
    wild = add_wild_future(panel, cutoff)
    assert wild["day"].max() > panel["day"].max()
    for strategy in R.STRATEGIES:
        kw = STRATEGY_KW.get(strategy, {})
        a = R.rank_categories(strategy, panel, cutoff, 5, **kw)
        b = R.rank_categories(strategy, wild, cutoff, 5, **kw)
        assert len(a) == 5 * panel.loc[panel["day"] <= cutoff, "user_id"].nunique()
        pdt.assert_frame_equal(a, b, check_like=False, obj=strategy)
    # the check can fail: the same scrambling one day earlier changes every personalised strategy
    leaky = add_wild_future(panel, cutoff - 1)
    for strategy in ("recency", "no_decay", "sar_h30", "sar_tuned", "decay_aware"):
        kw = STRATEGY_KW.get(strategy, {})
        a = R.rank_categories(strategy, panel, cutoff, 5, **kw)
        c = R.rank_categories(strategy, leaky, cutoff, 5, **kw)
        assert not a.equals(c), strategy


def test_output_schema_ties_and_backfill():
    p = make_panel({(1, 12): (0, [2, 2]), (1, 11): (0, [2, 2]), (2, 13): (0, [9, 9]), (2, 11): (1, [1])}, 1)
    recs = R.rank_categories("no_decay", p, 1, k=3)
    assert list(recs.columns) == R.REC_COLUMNS
    u1 = recs[recs["user_id"] == 1]
    assert u1["category"].tolist() == [11, 12, 13]  # tie 11/12 broken by id, then backfill
    assert u1["source"].tolist() == ["personal", "personal", "backfill"]
    assert u1["rank"].tolist() == [1, 2, 3]
    pop = R.rank_categories("popularity", p, 1, k=2)
    assert pop.groupby("user_id")["category"].apply(list).tolist() == [[11, 13], [11, 13]]
    pop_ex = R.rank_popularity(p, 1, k=2, exclude_seen=True)
    assert pop_ex[pop_ex["user_id"] == 1]["category"].tolist() == [13]
    rec = R.rank_categories("recency", make_panel({(1, 10): (0, [5, 0, 0]), (1, 11): (0, [0, 1, 0])}, 2), 2, k=2)
    assert rec["category"].tolist() == [11, 10]


def _decay_panel():
    T = 30
    series = {
        (1, 10): (0, [5] * 31),  # steady
        (1, 11): (0, [int(round(50 * math.exp(-0.08 * max(0, d - 10)))) if d >= 10 else 5 * d for d in range(31)]),
        (2, 12): (20, [6] * 11),
        (3, 12): (22, [4] * 9),
        (4, 12): (25, [3] * 6),
        (2, 13): (0, [9] * 10),  # popular long ago, not trending
        (3, 13): (0, [9] * 10),
        (4, 13): (0, [9] * 10),
        (4, 14): (28, [1, 1, 1]),
    }
    return make_panel(series, T), T


def test_decay_aware_demotes_decayed_pair_and_adds_fresh():
    p, T = _decay_panel()
    lam = pd.DataFrame({"user_id": [1, 1], "category": [10, 11], "lam_hat": [0.0, 0.08]})
    # without decay information pair 11 (level ~10 > 5) ranks first
    plain = R.rank_decay_aware(p, T, 3, lam=lam, n_fresh=0, infer_decay=False, backfill=False)
    assert plain[plain["user_id"] == 1]["category"].tolist() == [11, 10]
    dp = pd.DataFrame({"user_id": [1], "category": [11], "t_decay": [10]})
    recs = R.rank_categories("decay_aware", p, T, 3, lam=lam, decay_points=dp, n_fresh=1)
    u1 = recs[recs["user_id"] == 1]
    assert u1["category"].tolist() == [10, 11, 12]
    assert u1["source"].tolist() == ["personal", "decayed", "fresh"]
    # the fresh slot takes an unseen category, the recently trending one (12), not the old 13
    # with k=2 the fresh category pushes the decayed pair out of the list
    u1k2 = R.rank_decay_aware(p, T, 2, lam=lam, decay_points=dp)
    assert u1k2[u1k2["user_id"] == 1]["category"].tolist() == [10, 12]
    # a decay point in the future (t_decay > T) does not demote
    later = R.rank_decay_aware(p, T, 3, lam=lam, decay_points=dp.assign(t_decay=T + 1))
    assert later[later["user_id"] == 1]["category"].tolist()[:2] == [11, 10]
    # inferred decay point (no decay_points given): the causal level of pair 11 is ~0.33 of its
    # running peak, so a ratio of 0.4 demotes it; pair (2, 13) stopped 20 days ago -> decayed
    inferred = R.rank_decay_aware(p, T, 3, lam=lam, n_fresh=1, infer_ratio=0.4)
    assert inferred[inferred["user_id"] == 1]["source"].tolist() == ["personal", "decayed", "fresh"]
    src = inferred.set_index(["user_id", "category"])["source"]
    assert src.loc[(2, 13)] == "decayed" and src.loc[(2, 12)] == "personal"
    # users 2..4 never get a category they already interacted with in a fresh slot
    fresh = recs[recs["source"] == "fresh"]
    seen = set(map(tuple, p.loc[p["interest"] > 0, ["user_id", "category"]].drop_duplicates().values.tolist()))
    assert not any((u, c) in seen for u, c in fresh[["user_id", "category"]].values.tolist())


def test_decay_aware_score_and_global_lambda_fallback():
    p = make_panel({(1, 10): (0, [4] * 20), (1, 11): (0, [2] * 20), (2, 10): (0, [1] * 20)}, 19)
    lam = pd.DataFrame({"user_id": [1, 2], "category": [10, 10], "lam_hat": [0.2, np.nan]})
    recs = R.rank_decay_aware(p, 19, 2, horizon=5, lam=lam, n_fresh=0, global_lam=0.05)
    s = recs.set_index(["user_id", "category"])["score"]
    # constant interest: the causal level equals it exactly
    assert s.loc[(1, 10)] == pytest.approx(4 * R.expected_decay_sum(0.2, 5))
    assert s.loc[(1, 11)] == pytest.approx(2 * R.expected_decay_sum(0.05, 5))  # missing -> global
    assert s.loc[(2, 10)] == pytest.approx(1 * R.expected_decay_sum(0.05, 5))  # NaN -> global
    # default global lambda = median of available estimates (0.2 here)
    recs2 = R.rank_decay_aware(p, 19, 2, horizon=5, lam=lam, n_fresh=0)
    assert recs2.attrs["global_lam"] == pytest.approx(0.2)


def test_tune_half_life_never_reads_past_validation_window():
    panel = random_panel(seed=5, n_users=20)
    val_cutoff, horizon = 30, 10
    cands = (2.0, 10.0, 60.0)
    res = R.tune_half_life(panel, val_cutoff, horizon, cands, k=5, metric="ndcg@5")
    assert res.best_half_life in cands
    assert res.best_half_life == res.table["half_life"].iloc[int(res.table["ndcg@5"].argmax())]
    wild = add_wild_future(panel, val_cutoff + horizon)
    res2 = R.tune_half_life(wild, val_cutoff, horizon, cands, k=5, metric="ndcg@5")
    assert res2.best_half_life == res.best_half_life
    pdt.assert_frame_equal(res.table, res2.table)
    # sensitivity: the same scrambling inside the validation window changes the metrics
    res3 = R.tune_half_life(add_wild_future(panel, val_cutoff + horizon - 3), val_cutoff, horizon, cands, k=5, metric="ndcg@5")
    assert not res3.table.equals(res.table)
    with pytest.raises(ValueError, match="past the panel"):
        R.tune_half_life(panel, 55, 10, cands)
    with pytest.raises(ValueError, match="at least 10"):
        R.tune_half_life(panel, val_cutoff, horizon, cands, k=5, metric="ndcg@10")
    # sar_tuned tunes on (T - h, T] and records the choice
    recs = R.rank_categories("sar_tuned", panel, val_cutoff + horizon, 5, tune_horizon=horizon, candidates=cands, metric="ndcg@5")
    assert recs.attrs["half_life"] == res.best_half_life
    assert recs.attrs["half_life_at_edge"] == res.at_edge


def test_tune_half_life_says_when_the_optimum_is_at_an_edge():
    panel = random_panel(seed=5, n_users=20)
    full = R.tune_half_life(panel, 30, 10, (2.0, 10.0, 60.0), k=5, metric="ndcg@5")
    assert full.at_edge == (full.best_half_life in (2.0, 60.0))
    # a grid of one side of the optimum only: the best is the end of that grid
    best = full.best_half_life
    one_sided = R.tune_half_life(panel, 30, 10, (best * 4, best * 8, best * 16), k=5, metric="ndcg@5")
    assert one_sided.at_edge or one_sided.table["ndcg@5"].nunique() == 1
    assert R.DEFAULT_HALF_LIFE_CANDIDATES[0] <= 0.5 and R.DEFAULT_HALF_LIFE_CANDIDATES[-1] >= 365


def test_rank_predicted_orders_by_the_count_forecast():
    panel = random_panel(seed=3, n_users=25)
    T = 40
    recs = R.rank_categories("predicted_counts", panel, T, 5, horizon=7, n_fresh=0)
    from decaylib.predict import forecast_counts

    f = forecast_counts(panel, T, 7, method="shrunk").set_index(["user_id", "category"])["expected"]
    personal = recs[recs["source"] == "personal"]
    np.testing.assert_allclose(personal["score"].to_numpy(), f.loc[list(zip(personal["user_id"], personal["category"]))].to_numpy())
    # within a user, personal categories come in decreasing forecast
    assert (personal.groupby("user_id")["score"].apply(lambda s: bool((np.diff(s.to_numpy()) <= 1e-12).all()))).all()
    assert "prior" in recs.attrs
    other = R.rank_predicted(panel, T, 5, horizon=7, method="constant")
    assert set(other["strategy"]) == {"predicted_counts"}
    with pytest.raises(ValueError, match="unknown method"):
        R.rank_predicted(panel, T, 5, method="oracle")


# ----------------------------------------------------------------------------- errors


def test_errors():
    panel = random_panel(n_users=3)
    with pytest.raises(ValueError, match="decay_aware") as err:
        R.rank_categories("magic", panel, 20, 5)
    assert "popularity" in str(err.value) and "sar_tuned" in str(err.value)
    with pytest.raises(TypeError):
        R.rank_categories("recency", panel, 20, 5, bogus=1)
    with pytest.raises(KeyError, match="interest"):
        R.rank_categories("no_decay", panel.drop(columns="interest"), 20, 5)
    with pytest.raises(ValueError, match="empty"):
        R.rank_categories("no_decay", panel.iloc[:0], 20, 5)
    with pytest.raises(ValueError, match="outside"):
        R.rank_categories("popularity", panel, 500, 5)
    with pytest.raises(ValueError, match="outside"):
        R.rank_categories("popularity", panel, -1, 5)
    with pytest.raises(ValueError, match="k must be >= 1"):
        R.rank_categories("sar_h30", panel, 20, 0)
    with pytest.raises(TypeError, match="k must be an int"):
        R.rank_categories("sar_h30", panel, 20, 2.5)
    with pytest.raises(ValueError, match="n_fresh"):
        R.rank_decay_aware(panel, 20, 2, n_fresh=3)
    with pytest.raises(ValueError, match="contiguous"):
        R.rank_decay_aware(panel[panel["day"] != 10], 20, 2)
    with pytest.raises(ValueError, match="unknown metric"):
        R.tune_half_life(panel, 20, 5, metric="map@3")
    with pytest.raises(KeyError, match="t_decay"):
        R.rank_decay_aware(panel, 20, 2, decay_points=pd.DataFrame({"user_id": [0], "category": [100]}))


def test_graded_ndcg_hand_computed():
    recs = _recs(1, [10, 11, 12])
    rel = pd.DataFrame({"user_id": [1, 1], "category": [10, 12], "n_events": [1, 7]})
    g10, g12 = math.log(2), math.log(8)
    expected = (g10 / 1 + g12 / math.log2(4)) / (g12 / 1 + g10 / math.log2(3))
    assert E.graded_ndcg_at_k(recs, rel, 3).loc[1] == pytest.approx(expected, rel=1e-12)
    # the best order scores 1
    assert E.graded_ndcg_at_k(_recs(1, [12, 10, 11]), rel, 3).loc[1] == pytest.approx(1.0)
    with pytest.raises(KeyError, match="n_events"):
        E.graded_ndcg_at_k(recs, rel.drop(columns="n_events"), 3)


def test_decay_inputs_at_cutoff_ignore_the_future():
    p = random_panel(seed=3, end_day=59)
    lam1, pts1 = R.decay_inputs_at_cutoff(p, 45)
    lam2, pts2 = R.decay_inputs_at_cutoff(add_wild_future(p, 45), 45)
    pd.testing.assert_frame_equal(lam1, lam2)
    pd.testing.assert_frame_equal(pts1, pts2)
    assert (pts1["t_decay"] <= 45).all() and len(lam1) > 0
    assert set(lam1.columns) == {"user_id", "category", "lam_hat", "se_lam", "lam_lo", "lam_hi", "half_life",
                                 "half_life_lo", "half_life_hi"}
    assert lam1[["lam_hat", "se_lam", "lam_lo", "lam_hi"]].notna().all().all()  # only pairs that pass the rules


def test_decay_inputs_with_reasons_cover_every_pair():
    p = random_panel(seed=3, end_day=59)
    ok_only, _ = R.decay_inputs_at_cutoff(p, 45)
    lam, _ = R.decay_inputs_at_cutoff(p, 45, with_reasons=True)
    past_pairs = p.loc[p["day"] <= 45, ["user_id", "category"]].drop_duplicates()
    assert len(lam) == len(past_pairs) and lam["reason"].notna().all()
    ok = lam[lam["reason"] == "ok"].drop(columns="reason").reset_index(drop=True)
    pd.testing.assert_frame_equal(ok, ok_only)
    assert lam.loc[lam["reason"] != "ok", "lam_hat"].isna().all()
    assert set(lam["reason"]) - {"ok"}  # some pairs fail a rule, and say which


def test_check_user_names_the_problem():
    p = random_panel(seed=0)
    assert A.check_user(p, 3) == 3
    with pytest.raises(A.UnknownUserError, match=r"unknown user_id 999: not in the data; valid ids include \[0, 1, 2, 3, 4\]"):
        A.check_user(p, 999)
    with pytest.raises(A.UnknownUserError, match="must be an integer"):
        A.check_user(p, "abc")
    assert str(A.UnknownUserError("plain message")) == "plain message"


def test_category_actions_rules():
    rising = list(np.linspace(1, 20, 30).round())
    fading = [20] * 5 + [20 * np.exp(-0.3 * i) for i in range(1, 25)]
    turning = [10] * 20 + [7, 7, 7, 7, 7, 7, 7, 7, 7, 6]
    gone = [0] * 0 + [30] * 3 + [0] * 27
    p = make_panel({(1, 10): (0, rising), (1, 11): (0, [max(1, round(v)) for v in fading]), (1, 12): (0, turning),
                    (1, 13): (0, gone), (1, 14): (0, [20] * 10 + [6] * 20), (2, 10): (0, rising)}, end_day=29)
    points = pd.DataFrame({"user_id": [1, 1, 1, 1], "category": [11, 12, 13, 14], "t_decay": [4, 19, 1, 9]})
    lam = pd.DataFrame({"user_id": [1, 1], "category": [11, 12], "lam_hat": [0.3, 0.05]})
    out = A.category_actions(p, 1, 29, lam=lam, decay_points=points).set_index("category")
    assert out.loc[10, "action"] == "keep recommending"
    assert out.loc[12, "action"] == "time a promotion"
    assert out.loc[11, "action"] == "stop recommending"
    assert out.loc[13, "action"] == "dormant: no recent interest"  # no event in the last 7 days
    assert out.loc[14, "action"] == "re-engage with fresh items"
    assert out.loc[11, "half_life"] == pytest.approx(np.log(2) / 0.3)
    assert all(isinstance(r, str) and len(r) > 20 for r in out["reason"])
    # an alert after the cutoff is ignored (it is the future)
    late = pd.DataFrame({"user_id": [1], "category": [10], "alert_day": [40]})
    assert A.category_actions(p, 1, 29, alerts=late).set_index("category").loc[10, "action"] == "keep recommending"
    with pytest.raises(A.UnknownUserError):
        A.category_actions(p, 7, 29)
    with pytest.raises(ValueError, match="stop_ratio"):
        A.category_actions(p, 1, 29, stop_ratio=0.6, promo_ratio=0.5)


# ---------------------------------------------------------------------------------------------
# the per-user report: actions, reasons that agree with the numbers, ids
# ---------------------------------------------------------------------------------------------


def _report_state(seed: int):
    """One user's panel with categories of every shape, a cutoff, and λ / decay-point / alert tables."""
    rng = np.random.default_rng(seed)
    end = int(rng.integers(15, 60))
    shapes = []
    for c in range(int(rng.integers(3, 10))):
        n = int(rng.integers(1, end + 1))
        kind = rng.choice(["rise", "flat", "decay", "gone", "spiky", "empty_tail"])
        t = np.arange(n)
        mu = {"rise": 0.5 + 10 * t / max(n, 1), "flat": np.full(n, rng.uniform(0.2, 8)),
              "decay": 15 * np.exp(-rng.uniform(0.01, 0.5) * t), "gone": np.where(t < 3, 10.0, 0.0),
              "spiky": rng.uniform(0, 1, n) * (rng.uniform(0, 1, n) < 0.2) * 30,
              "empty_tail": np.where(t < n - rng.integers(1, 12), rng.uniform(1, 9), 0.0)}[kind]
        vals = rng.poisson(mu)
        if vals.sum() == 0:
            vals[0] = 1
        shapes.append(((0, 100 + c), (end + 1 - n, list(vals))))
    panel = make_panel(dict(shapes), end_day=end)
    T = int(rng.integers(max(1, end - 5), end + 1))
    cats = sorted(panel["category"].unique())
    pick = lambda: [c for c in cats if rng.uniform() < 0.5]  # noqa: E731
    lam_cats = pick()
    lam_hat = rng.uniform(-0.05, 0.6, len(lam_cats))
    reason = rng.choice(["ok", "ok", "insufficient_data", "not_a_peak"], len(lam_cats))
    se = rng.uniform(0.01, 0.2, len(lam_cats))
    lam = pd.DataFrame({"user_id": 0, "category": lam_cats, "lam_hat": np.where(reason == "ok", lam_hat, np.nan),
                        "se_lam": np.where(reason == "ok", se, np.nan), "reason": reason})
    if rng.uniform() < 0.5:  # with the evidence module's own interval columns
        lam["lam_lo"], lam["lam_hi"] = lam["lam_hat"] - 1.64 * lam["se_lam"], lam["lam_hat"] + 1.64 * lam["se_lam"]
    dp_cats = pick()
    points = pd.DataFrame({"user_id": 0, "category": dp_cats, "t_decay": rng.integers(0, end + 5, len(dp_cats))})
    al_cats = pick()
    alerts = pd.DataFrame({"user_id": 0, "category": al_cats, "alert_day": rng.integers(0, end + 5, len(al_cats)).astype(float)})
    return panel, T, lam, points, alerts


@pytest.mark.parametrize("seed", range(40))
def test_report_reasons_never_contradict_the_numbers(seed):
    import re

    panel, T, lam, points, alerts = _report_state(seed)
    w, promo, stop, h = 7, 0.5, 0.15, 14
    start = pd.Timestamp("2021-03-01")
    out = A.category_actions(panel, 0, T, lam=lam, decay_points=points, alerts=alerts, level_window=w,
                             promo_ratio=promo, stop_ratio=stop, horizon=h, start_date=start)
    assert sorted(out["category"]) == sorted(panel.loc[panel["day"] <= T, "category"].unique())
    numbers = A.report_numbers(out, start)
    date = lambda d: str((start + pd.Timedelta(days=int(d))).date())  # noqa: E731
    for i, r in out.iterrows():
        mine = panel[(panel["category"] == r["category"]) & (panel["day"] <= T)].sort_values("day")
        # the numbers themselves, recomputed independently
        roll = pd.concat([pd.Series([0.0] * (w - 1)), mine["interest"]]).rolling(w).mean().iloc[w - 1:]
        assert r["level"] == pytest.approx(roll.iloc[-1]) and r["highest_level"] == pytest.approx(roll.max())
        assert r["ratio"] == pytest.approx(roll.iloc[-1] / roll.max() if roll.max() > 0 else 0.0)
        events = mine[["view", "click", "cart", "purchase"]].sum(axis=1)
        assert r["recent_events"] == events[mine["day"] > T - w].sum()
        text, pct = r["reason"], f"{r['ratio']:.0%}"
        # every percentage printed is the ratio, as the table prints it
        assert set(re.findall(r"(\d+%) of its highest", text)) <= {pct}
        assert numbers.loc[i, "level / highest"] == pct
        assert "rising" not in text
        if "at its highest level" in text:
            assert pct == "100%"
        if "near its highest level" in text:
            assert r["ratio"] >= A.NEAR_PEAK
        # the action follows the rules and the reason says why
        decaying = (np.isfinite(r["t_decay"]) and r["t_decay"] <= T) or (np.isfinite(r["alert_day"]) and r["alert_day"] <= T)
        if r["recent_events"] == 0:
            assert r["action"] == "dormant: no recent interest" and text.startswith(f"No events in the last {w} days")
            last = events[events > 0].index
            if len(last):
                d = int(mine.loc[last, "day"].max())
                assert f"the last one on {date(d)}, {T - d} days before" in text
        elif r["ratio"] >= promo:
            assert r["action"] == ("time a promotion" if decaying else "keep recommending")
        elif r["ratio"] >= stop:
            assert r["action"] == "re-engage with fresh items" and f"fallen to {pct}" in text
        else:
            assert r["action"] == "stop recommending" and f"faded to {pct}" in text
            assert f"over the next {h} days is {r['expected_next']:.1f} score points" in text
        if r["action"] != "dormant: no recent interest":
            n = int(re.search(r"\((?:[^()]*, )?([\d,]+) events? in the last", text).group(1).replace(",", ""))
            assert n == r["recent_events"]
        # dates quoted are the table's
        for d in re.findall(r"peaked on (\d{4}-\d\d-\d\d)", text):
            assert d == date(r["t_decay"]) == numbers.loc[i, "decay point"]
        for d in re.findall(r"early warning fired on (\d{4}-\d\d-\d\d)", text):
            assert d == date(r["alert_day"]) == numbers.loc[i, "alert"]
        # a half-life only with evidence, with its interval, and the same as in the table
        row = lam[lam["category"] == r["category"]]
        if len(row) and row["reason"].iloc[0] == "ok":
            assert r["lam_reason"] == "ok" and r["lam_hat"] == pytest.approx(row["lam_hat"].iloc[0])
            assert f"Half-life: {r['half_life_text']}." in text and "interval" in r["half_life_text"]
        else:
            assert "Half-life" not in text and r["half_life_text"].startswith("not estimable (")
            assert np.isnan(r["half_life"]) and np.isnan(r["lam_lo"])
            assert r["lam_reason"] == (row["reason"].iloc[0] if len(row) else
                                       ("no_decay_phase" if np.isnan(r["t_decay"]) else "not_estimated"))
        assert numbers.loc[i, "half-life"] == r["half_life_text"]


def test_dormant_never_reads_as_rising():
    """The real-log case of issue 8: 0% of its highest level advised as "still rising"."""
    p = make_panel({(5, 1): (0, [0, 4, 9, 3]), (5, 2): (0, [1] * 30)}, end_day=29)
    out = A.category_actions(p, 5, 29).set_index("category")
    assert out.loc[1, "action"] == "dormant: no recent interest"
    assert "0% of its highest" in out.loc[1, "reason"] and "rising" not in out.loc[1, "reason"]
    assert out.loc[2, "action"] == "keep recommending"
    assert out.loc[2, "reason"].startswith("Interest is at its highest level so far (100%, 7 events in the last 7 days)")
    assert list(A.category_actions(p, 5, 29)["category"]) == [2, 1]  # ordered by action


def test_half_life_text():
    assert A.half_life_text(np.log(2) / 0.1, np.log(2) / 0.15, np.log(2) / 0.05) == "6.9 days (90% interval 4.6 to 14 days)"
    assert A.half_life_text(20.0, 10.0, np.inf) == "20 days (90% interval 10 to no decay)"
    assert A.half_life_text(np.inf) == "no decay measured (λ ≤ 0)"
    assert A.half_life_text(np.inf, 30.0, np.inf) == "no decay measured (λ ≤ 0; 90% interval of the half-life: 30 to no decay)"
    assert A.half_life_text(np.inf, np.inf, np.inf) == "no decay measured (λ ≤ 0; 90% interval of the half-life: no decay)"
    assert A.half_life_text(np.nan, reason="insufficient_data") == "not estimable (insufficient_data)"
    assert A.half_life_text(12.0, reason="not_a_peak") == "not estimable (not_a_peak)"
    assert A.half_life_text(12.0) == "12 days"


def test_category_actions_interval_from_the_standard_error():
    p = make_panel({(1, 10): (0, [20] * 5 + [10] * 5)}, end_day=9)
    lam = pd.DataFrame({"user_id": [1], "category": [10], "lam_hat": [0.2], "se_lam": [0.05]})
    r = A.category_actions(p, 1, 9, lam=lam, decay_points=pd.DataFrame({"user_id": [1], "category": [10], "t_decay": [4]})).iloc[0]
    assert r["lam_lo"] == pytest.approx(0.2 - 1.6449 * 0.05, rel=1e-3) and r["lam_hi"] == pytest.approx(0.2 + 1.6449 * 0.05, rel=1e-3)
    assert r["half_life_lo"] == pytest.approx(np.log(2) / r["lam_hi"]) and r["half_life_hi"] == pytest.approx(np.log(2) / r["lam_lo"])
    assert r["half_life_text"] == f"3.5 days (90% interval {np.log(2) / r['lam_hi']:.1f} to {np.log(2) / r['lam_lo']:.1f} days)"


def test_check_user_with_own_ids_and_removed_bots():
    p = random_panel(seed=0)
    own = {u: f"C{1000 + u}" for u in range(100)}
    code_of = {v: k for k, v in own.items()}.__getitem__
    kw = {"code_of": code_of, "display": own.__getitem__, "removed": {50: "900 events per active day against a median of 2"}}
    assert A.check_user(p, "C1003", **kw) == 3
    with pytest.raises(A.UnknownUserError) as err:
        A.check_user(p, "X1", **kw)
    assert str(err.value) == ("unknown user_id X1: not in the data; valid ids include "
                              "['C1000', 'C1001', 'C1002', 'C1003', 'C1004'] (12 users)")
    with pytest.raises(A.UnknownUserError, match=r"user_id C1050 has no report: cleaning \(notebook 02\) removed it as a bot "
                                                 r"\(900 events per active day against a median of 2\)"):
        A.check_user(p, "C1050", **kw)
    with pytest.raises(A.UnknownUserError, match="C1060 is in the event log but none of its events survived cleaning"):
        A.check_user(p, "C1060", **kw)
    # the simulator: integer ids, a removed bot explained too
    with pytest.raises(A.UnknownUserError, match="user_id 50 has no report: cleaning"):
        A.check_user(p, 50, removed={50: "x"})


def test_removed_users_reads_panel_meta():
    meta = {"bot_users": [7, 9], "bots": [{"user_id": 7, "removed": True, "reason": "500 events a day"},
                                           {"user_id": 8, "removed": False, "reason": "kept"}]}
    out = A.removed_users(meta)
    assert out[7] == "500 events a day" and 8 not in out and "bot rule" in out[9]
    assert A.removed_users({"bot_users": [3]}) == {3: A.removed_users({"bot_users": [3]})[3]}
    assert A.removed_users(None) == {}


def test_evaluation_window_fits_the_log():
    from decaylib.utils import InsufficientDataError

    assert E.evaluation_window(0, 59, 14) == (45, 14, None)
    T, h, note = E.evaluation_window(0, 9, 14)  # a 10-day log
    assert (T, h) == (6, 3) and "spans 10 days: evaluating with horizon_days=3 instead of 14" in note
    assert T - 2 * h >= 0  # the tuning window fits too
    assert E.evaluation_window(0, 59, 14, cutoff_day=30) == (30, 14, None)
    with pytest.raises(InsufficientDataError, match=r"cutoff_day=55 does not fit: .*pass cutoff_day=45"):
        E.evaluation_window(0, 59, 14, cutoff_day=55)
    with pytest.raises(InsufficientDataError, match=r"cutoff_day=8 does not fit.*pass cutoff_day=6, horizon_days=3"):
        E.evaluation_window(0, 9, 14, cutoff_day=8)
    with pytest.raises(InsufficientDataError, match="spans 2 day"):
        E.evaluation_window(0, 1, 14)
    assert E.evaluation_window(0, 1, 14, tune=False) == (0, 1, E.evaluation_window(0, 1, 14, tune=False)[2])


def test_decay_aware_accepts_empty_estimates():
    """A sparse log where no pair is estimable: every pair uses the global λ, nothing is demoted."""
    p = random_panel(seed=2)
    empty_lam = pd.DataFrame({"user_id": pd.Series(dtype="int64"), "category": pd.Series(dtype="int64"), "lam_hat": pd.Series(dtype=float)})
    empty_dp = pd.DataFrame({"user_id": pd.Series(dtype="int64"), "category": pd.Series(dtype="int64"), "t_decay": pd.Series(dtype="int64")})
    recs = R.rank_decay_aware(p, 45, 5, lam=empty_lam, decay_points=empty_dp)
    assert len(recs) and "decayed" not in set(recs["source"])
    assert recs.attrs["global_lam"] == pytest.approx(np.log(2) / 30)


def test_trailing_level_counts_days_before_the_first_event_as_zero():
    p = make_panel({(1, 10): (3, [7, 0, 0, 14]), (1, 11): (0, [7] * 4)}, end_day=6)
    p.loc[(p["category"] == 11) & (p["day"] == 2), "observed"] = False  # an outage day is left out
    lvl = A.trailing_level(p.iloc[::-1], window=7)[::-1]  # any row order
    a = lvl[p["category"].to_numpy() == 10]
    np.testing.assert_allclose(a, [1.0, 1.0, 1.0, 3.0])  # one event is not a spike of 7 on day 1
    b = lvl[p["category"].to_numpy() == 11]
    np.testing.assert_allclose(b[:4], [1.0, 2.0, 2 * 7 / 6, 3 * 7 / 6])
