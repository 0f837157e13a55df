"""Tests for decaylib.evaluation.ranking: relevant items, HR and NDCG (binary and graded), coverage, wasted
slots, the bootstrap and the evaluation window."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from decaylib.evaluation import bootstrap as BS
from decaylib.evaluation import ranking as E
from tests.panels import make_panel


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
    lo, hi = BS.bootstrap_ci(vals, n_boot=1000, seed=7)
    assert lo < vals.mean() < hi
    assert (lo, hi) == BS.bootstrap_ci(vals, n_boot=1000, seed=7)
    assert (lo, hi) != BS.bootstrap_ci(vals, n_boot=1000, seed=8)
    se = vals.std() / math.sqrt(len(vals))
    assert hi - lo == pytest.approx(2 * 1.96 * se, rel=0.2)
    # chunked path (many users) gives a sensible interval too
    big = rng.normal(size=30_000)
    lo2, hi2 = BS.bootstrap_ci(big, n_boot=200, seed=0)
    assert lo2 < big.mean() < hi2
    with pytest.raises(ValueError, match="NaN"):
        BS.bootstrap_ci([1.0, np.nan])


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


def test_evaluation_window_fits_the_log():
    from decaylib.checks import InsufficientDataError

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


def test_evaluation_window_with_a_shorter_sar_tuning_window():
    from decaylib.checks import InsufficientDataError

    # the default tuning window is the horizon: sar_tune_days=None and sar_tune_days=h give the same windows
    assert E.evaluation_window(0, 59, 14, sar_tune_days=14) == E.evaluation_window(0, 59, 14) == (45, 14, None)
    assert E.evaluation_window(0, 59, 14, cutoff_day=30, sar_tune_days=14) == (30, 14, None)
    # a classic 39/39-week split (546 days, h = 273): without sar_tune_days the horizon is cut to a third
    T, h, note = E.evaluation_window(0, 545, 273)
    assert (T, h) == (364, 181) and "horizon_days=181 instead of 273" in note
    # with a 28-day tuning window the whole horizon fits, at cutoff 272
    assert E.evaluation_window(0, 545, 273, sar_tune_days=28) == (272, 273, None)
    assert E.evaluation_window(0, 545, 273, cutoff_day=272, sar_tune_days=28) == (272, 273, None)
    with pytest.raises(InsufficientDataError, match=r"cutoff_day=272 does not fit: with horizon_days=273 the cutoff.*"
                                                    r"or keep cutoff_day=272 with sar_tune_days of at most 272"):
        E.evaluation_window(0, 545, 273, cutoff_day=272)
    with pytest.raises(InsufficientDataError, match=r"cutoff_day=20 does not fit: with horizon_days=273 and sar_tune_days=28 .*days 28-272"):
        E.evaluation_window(0, 545, 273, cutoff_day=20, sar_tune_days=28)
    # a tuning window too long for the horizon: the horizon gives way and a note says so
    T, h, note = E.evaluation_window(0, 59, 14, sar_tune_days=50)
    assert (T, h) == (50, 9) and "sar_tune_days=50" in note and "horizon_days=9 instead of 14" in note
    with pytest.raises(InsufficientDataError, match=r"sar_tune_days=59 leaves no room: the log spans 60 days.*at most 58"):
        E.evaluation_window(0, 59, 14, sar_tune_days=59)
    with pytest.raises(ValueError, match="sar_tune_days must be >= 1, got 0"):
        E.evaluation_window(0, 59, 14, sar_tune_days=0)
    assert E.evaluation_window(0, 59, 14, tune=False, sar_tune_days=59) == E.evaluation_window(0, 59, 14, tune=False)


def test_ranking_choice_detects_a_single_category():
    one = make_panel({(u, 7): (u, [1, 0, 2, 3]) for u in range(5)}, 30)
    got = E.ranking_choice(one, 20)
    assert got.trivial and (got.n_categories, got.n_users, got.n_users_with_choice) == (1, 5, 0)
    assert "single category (id 7) for its 5 users" in got.note and "day 20" in got.note and "skipped" in got.note
    # only the users and categories seen up to the cutoff count: a second category after it changes nothing
    later = pd.concat([one, make_panel({(0, 8): (25, [4, 4])}, 30)], ignore_index=True)
    assert E.ranking_choice(later, 20) == got
    assert not E.ranking_choice(later, 26).trivial
    # two categories in the log, each user with one: with backfill every list can order both
    split = make_panel({(0, 7): (0, [3, 1]), (1, 8): (0, [2, 2]), (2, 8): (3, [1])}, 20)
    two = E.ranking_choice(split, 10)
    assert not two.trivial and two.note is None and (two.n_categories, two.n_users_with_choice) == (2, 3)
    # without backfill each user has only their own category: trivial, and the note counts them
    own = E.ranking_choice(split, 10, backfill=False)
    assert own.trivial and own.n_users_with_choice == 0 and "none of the 3 users" in own.note and "2 categories" in own.note
    # a user with two categories of their own is a choice
    both = pd.concat([split, make_panel({(0, 8): (5, [1])}, 20)], ignore_index=True)
    assert E.ranking_choice(both, 10, backfill=False).n_users_with_choice == 1
    with pytest.raises(ValueError, match="outside the panel"):
        E.ranking_choice(one, 99)
