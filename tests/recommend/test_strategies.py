"""Tests for decaylib.recommend.strategies: strategies, leakage, SAR tuning, decay inputs at a cutoff."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pandas.testing as pdt
import pytest

from decaylib.decay.rate import sar_weight
from decaylib.recommend import strategies as R
from tests.panels import add_wild_future, make_panel, random_panel

STRATEGY_KW = {
    "sar_tuned": {"horizon": 10, "candidates": (3.0, 10.0, 30.0)},
    "decay_aware": {"horizon": 7},
}


def test_sar_weight_half_life():
    assert sar_weight(30, 30) == pytest.approx(0.5)
    assert sar_weight(0, 30) == pytest.approx(1.0)
    assert sar_weight(60, 30) == pytest.approx(0.25)
    assert sar_weight(7, 7) == pytest.approx(0.5)
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
    recs = R.rank_categories("sar_tuned", panel, val_cutoff + horizon, 5, horizon=horizon, candidates=cands, metric="ndcg@5")
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


def _tuned_by_hand(panel, T, tune, cands, k=5):
    """rank_sar_tuned's half-life, re-derived: tune at T - tune on (T - tune, T], then rank with it at T."""
    res = R.tune_half_life(panel[panel["day"] <= T], T - tune, tune, cands, k=k, metric="ndcg@5")
    return res, R.rank_sar(panel, T, k, half_life=res.best_half_life, name="sar_tuned")


def test_sar_tune_days_defaults_to_the_horizon():
    panel = random_panel(seed=5, n_users=20)
    cands = (1.0, 3.0, 10.0, 60.0)
    default = R.rank_sar_tuned(panel, 45, 5, horizon=10, candidates=cands, metric="ndcg@5")
    same = R.rank_sar_tuned(panel, 45, 5, horizon=10, tune_days=10, candidates=cands, metric="ndcg@5")
    res, by_hand = _tuned_by_hand(panel, 45, 10, cands)
    pdt.assert_frame_equal(default, same)
    pdt.assert_frame_equal(default.attrs["tuning"], res.table)
    pdt.assert_frame_equal(default.reset_index(drop=True), by_hand.reset_index(drop=True))
    assert default.attrs["tune_days"] == 10 and default.attrs["half_life"] == res.best_half_life
    # a different window is a different tuning: the parameter is read
    short = R.rank_sar_tuned(panel, 45, 5, horizon=10, tune_days=3, candidates=cands, metric="ndcg@5")
    assert short.attrs["tune_days"] == 3
    pdt.assert_frame_equal(short.attrs["tuning"], _tuned_by_hand(panel, 45, 3, cands)[0].table)
    assert not short.attrs["tuning"].equals(default.attrs["tuning"])


def test_sar_tune_days_lets_a_long_horizon_run():
    # a classic calibration / holdout split: 546 days, horizon 273, cutoff at day 272
    rng = np.random.default_rng(0)
    series = {(u, 100 + c): (int(rng.integers(0, 200)), rng.poisson(rng.uniform(0.05, 0.6), size=546))
              for u in range(12) for c in rng.choice(5, size=3, replace=False)}
    series = {key: (start, counts[start:]) for key, (start, counts) in series.items()}
    panel = make_panel(series, 545)
    T, h = 272, 273
    first = int(panel["day"].min())
    with pytest.raises(ValueError, match=rf"tune_days=273 leaves no data to tune on.*start on day {first}.*at most {T - first}"):
        R.rank_sar_tuned(panel, T, 5, horizon=h, metric="ndcg@5")
    with pytest.raises(ValueError, match="tune_days=300 leaves no data"):
        R.rank_sar_tuned(panel, T, 5, horizon=h, tune_days=300, metric="ndcg@5")
    recs = R.rank_sar_tuned(panel, T, 5, horizon=h, tune_days=28, metric="ndcg@5")
    assert recs.attrs["tune_days"] == 28 and recs.attrs["half_life"] in R.DEFAULT_HALF_LIFE_CANDIDATES
    assert recs["user_id"].nunique() == 12 and (recs.groupby("user_id").size() == 5).all()
    pdt.assert_frame_equal(recs.attrs["tuning"], _tuned_by_hand(panel, T, 28, R.DEFAULT_HALF_LIFE_CANDIDATES)[0].table)


def test_sar_grid_is_a_parameter():
    panel = random_panel(seed=5, n_users=20)
    grid = (0.25, 4.0, 700.0)
    recs = R.rank_categories("sar_tuned", panel, 45, 5, horizon=10, candidates=grid, metric="ndcg@5")
    assert list(recs.attrs["tuning"]["half_life"]) == list(grid)
    assert recs.attrs["half_life"] in grid
    assert recs.attrs["half_life_at_edge"] == (recs.attrs["half_life"] in (0.25, 700.0))
    one = R.rank_sar_tuned(panel, 45, 5, horizon=10, candidates=[7.0], metric="ndcg@5")
    assert one.attrs["half_life"] == 7.0 and not one.attrs["half_life_at_edge"]
    with pytest.raises(ValueError, match=r"candidates\[1\] must be a finite number > 0, got -3"):
        R.rank_sar_tuned(panel, 45, 5, horizon=10, candidates=(2.0, -3.0))
    with pytest.raises(ValueError, match="candidates is empty"):
        R.rank_sar_tuned(panel, 45, 5, horizon=10, candidates=())
    with pytest.raises(TypeError, match="candidates must be a sequence"):
        R.rank_sar_tuned(panel, 45, 5, horizon=10, candidates=30.0)


def test_rank_predicted_orders_by_the_count_forecast():
    panel = random_panel(seed=3, n_users=25)
    T = 40
    recs = R.rank_categories("predicted_counts", panel, T, 5, horizon=7, n_fresh=0)
    from decaylib.decay.counts import forecast_counts

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


def test_decay_aware_accepts_empty_estimates():
    """A sparse log where no pair is estimable: every pair uses the global λ, nothing is demoted."""
    p = random_panel(seed=2)
    empty_lam = pd.DataFrame({"user_id": pd.Series(dtype="int64"), "category": pd.Series(dtype="int64"), "lam_hat": pd.Series(dtype=float)})
    empty_dp = pd.DataFrame({"user_id": pd.Series(dtype="int64"), "category": pd.Series(dtype="int64"), "t_decay": pd.Series(dtype="int64")})
    recs = R.rank_decay_aware(p, 45, 5, lam=empty_lam, decay_points=empty_dp)
    assert len(recs) and "decayed" not in set(recs["source"])
    assert recs.attrs["global_lam"] == pytest.approx(np.log(2) / 30)
