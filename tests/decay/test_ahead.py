"""Tests of decaylib.decay.ahead: the oracle CUSUM limit and the hazard of a decay point within k days."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decaylib.decay import ahead as A

LN2 = np.log(2.0)


# ------------------------------------------------------------------------------------------
# CUSUM on arrays
# ------------------------------------------------------------------------------------------
def test_cusum_on_arrays_hand_computed():
    # mu0 = 2, mu1 = 1: llr = y ln(1/2) - (1 - 2) = 1 - y ln 2
    y = np.array([2.0, 3.0, 1.0, 0.0])
    llr = A.poisson_llr(y, 2.0, 1.0)
    np.testing.assert_allclose(llr, [1 - 2 * LN2, 1 - 3 * LN2, 1 - LN2, 1.0])
    s = A.cusum_path(llr)
    # S = max(0, .): -0.386 -> 0, -1.079 -> 0, 0.307, 1.307
    np.testing.assert_allclose(s, [0.0, 0.0, 1 - LN2, 2 - LN2])
    assert A.first_crossing(s, 1.0) == 3
    assert A.first_crossing(s, 0.3) == 2
    assert A.first_crossing(s, 2.0) == -1
    # an unobserved (outage) day contributes 0: S stays at 0.307 on day 3
    llr_out = A.poisson_llr(y, 2.0, 1.0, observed=[True, True, True, False])
    assert llr_out[3] == 0.0
    assert A.first_crossing(A.cusum_path(llr_out), 1.0) == -1
    # vectorized over pairs: rows are independent
    both = A.cusum_path(np.vstack([llr, llr_out]))
    np.testing.assert_array_equal(A.first_crossing(both, 1.0), [3, -1])


def test_cusum_rejects_bad_input():
    with pytest.raises(ValueError, match="h must be"):
        A.first_crossing(np.zeros(3), 0.0)
    with pytest.raises(ValueError, match=">= 0"):
        A.poisson_llr([1.0], -1.0, 1.0)
    with pytest.raises(ValueError, match="finite"):
        A.cusum_path([np.inf])


# ------------------------------------------------------------------------------------------
# The oracle on frames: one pair computed by hand
# ------------------------------------------------------------------------------------------
def hand_case(observed=None, y=(1, 2, 4, 3, 1, 0)):
    """One pair: t_start 0, peak on day 2 at 4 expected views, rise x2/day (kappa = ln 2), lam = ln 2.

    True means (days 0..5): 1, 2, 4, 2, 1, 0.5. Plus a bot pair, which must be left out.
    """
    truth = pd.DataFrame({"user_id": [0, 1], "category": [0, 0], "t_start": [0, 0], "t_peak": [2, 0],
                          "peak_interest": [4.0, 9.0], "lam": [LN2, 0.0], "is_bot": [False, True]})
    mu = np.array([1.0, 2.0, 4.0, 2.0, 1.0, 0.5])
    td = pd.DataFrame({"user_id": 0, "category": 0, "day": np.arange(6), "interest": mu, "expected_view": mu})
    td = pd.concat([td, td.assign(user_id=1, interest=9.0, expected_view=9.0)], ignore_index=True)
    obs = np.ones(6, dtype=bool) if observed is None else np.asarray(observed)
    panel = pd.DataFrame({"user_id": 0, "category": 0, "day": np.arange(6), "view": np.asarray(y, dtype=np.int64),
                          "observed": obs})
    panel = pd.concat([panel, panel.assign(user_id=1, view=9)], ignore_index=True)
    return panel, truth, td


def test_oracle_delay_hand_computed_rise():
    panel, truth, td = hand_case()
    oc = A.oracle_cusum(panel, truth, td, column="view", pre="rise")
    assert len(oc.pairs) == 1  # the bot pair is left out
    # mu0 (rise continued) = 1, 2, 4, 8, 16, 32 ; mu1 (decay extended back) = 16, 8, 4, 2, 1, 0.5
    # llr = y ln(mu1/mu0) - (mu1 - mu0):
    #   day 0: ln 16 - 15 = -12.23; day 1: 2 ln 4 - 6 = -3.23; day 2: 0
    #   day 3: 3 ln(1/4) + 6 = 1.841; day 4: ln(1/16) + 15 = 12.227; day 5: 0 + 31.5
    expect = [np.log(16) - 15, 2 * np.log(4) - 6, 0.0, 3 * np.log(0.25) + 6, np.log(1 / 16) + 15, 31.5]
    np.testing.assert_allclose(oc.llr[0], expect, atol=1e-9)
    np.testing.assert_allclose(oc.S[0, :5], [0, 0, 0, 3 * np.log(0.25) + 6, 3 * np.log(0.25) + 6 + np.log(1 / 16) + 15])
    a = oc.alarms(1.0)
    assert a.loc[0, "alert_day"] == 3 and a.loc[0, "delay"] == 1
    assert oc.alarms(5.0).loc[0, "delay"] == 2
    # no pre-peak CUSUM mass: even share 0 gets the smallest threshold, alarm on day 3
    r = oc.at_share(0.0)
    assert r["share_before_peak"] == 0.0 and r["median_delay"] == 1.0 and r["n_pairs"] == 1


def test_oracle_delay_hand_computed_plateau_and_outage():
    panel, truth, td = hand_case()
    oc = A.oracle_cusum(panel, truth, td, column="view", pre="plateau")
    # mu0 = 1, 2, 4, 4, 4, 4: day 3: 3 ln(1/2) + 2 = -0.079 -> 0; day 4: ln(1/4) + 3 = 1.614; day 5: +3.5 = 5.114
    np.testing.assert_allclose(oc.S[0], [0, 0, 0, 0, np.log(0.25) + 3, np.log(0.25) + 6.5], atol=1e-9)
    assert oc.alarms(1.0).loc[0, "delay"] == 2
    assert oc.alarms(5.0).loc[0, "delay"] == 3
    # an outage on day 3 (rise): day 3 contributes 0, the alarm moves to day 4
    panel, truth, td = hand_case(observed=[True, True, True, False, True, True])
    oc = A.oracle_cusum(panel, truth, td, column="view")
    assert oc.llr[0, 3] == 0.0
    assert oc.alarms(1.0).loc[0, "alert_day"] == 4


def test_oracle_threshold_matches_share(small_sim, small_pre):
    from decaylib.evaluation.detection import peak_visible_pairs

    panel = small_pre.panel
    oc = A.oracle_cusum(panel, small_sim.truth, small_sim.truth_daily)
    pairs = peak_visible_pairs(small_sim.truth, small_sim.truth_daily, panel, min_events=10)
    assert len(pairs) > 5
    for q in (0.0, 0.2, 0.5):
        h = oc.threshold_for_share(q, pairs)
        share = oc.early_share(h, pairs)
        assert share <= q + 1e-12
        a = oc.alarms(h, pairs)
        assert np.mean(a["delay"] < 0) == pytest.approx(share)
        # the smallest such threshold: any lower candidate gives more early alarms
        lower = oc.max_before_peak(pairs)
        lower = lower[lower < h]
        if lower.size and lower.max() > 0:
            assert oc.early_share(lower.max(), pairs) > q
    # a higher threshold never alarms sooner
    d1 = oc.alarms(oc.threshold_for_share(0.5, pairs), pairs)["alert_day"].fillna(np.inf)
    d2 = oc.alarms(oc.threshold_for_share(0.0, pairs), pairs)["alert_day"].fillna(np.inf)
    assert (d2 >= d1).all()


def test_oracle_rejects_bad_input():
    panel, truth, td = hand_case()
    with pytest.raises(ValueError, match="pre must be"):
        A.oracle_cusum(panel, truth, td, column="view", pre="flat")
    with pytest.raises(ValueError, match="count column"):
        A.oracle_cusum(panel, truth, td, column="interest")
    with pytest.raises(ValueError, match="share must be"):
        A.oracle_cusum(panel, truth, td, column="view").threshold_for_share(1.5)


# ------------------------------------------------------------------------------------------
# Hazard
# ------------------------------------------------------------------------------------------
def test_hazard_features_are_causal(small_pre, small_sim):
    panel = small_pre.panel
    rng = np.random.default_rng(0)
    fc = panel[["user_id", "category", "day"]].rename(columns={"day": "origin_day"}).assign(horizon=1)
    fc["interest_pred"] = rng.gamma(2.0, 2.0, len(fc))
    d = 30
    base = A.hazard_features(panel, forecasts=fc)
    changed = panel.copy()
    late = changed["day"] > d
    for c in ("view", "click", "cart", "purchase"):
        changed.loc[late, c] = rng.poisson(5.0, late.sum())
    changed.loc[late, "interest"] = rng.gamma(2.0, 3.0, late.sum())
    changed.loc[late & (changed["day"] % 3 == 0), "observed"] = False
    fc2 = fc.copy()
    fc2.loc[fc2["origin_day"] > d, "interest_pred"] *= 7.0
    after = A.hazard_features(changed, forecasts=fc2)
    key = ["user_id", "category", "day"]
    b = base[base["day"] <= d].sort_values(key).reset_index(drop=True)
    a = after[after["day"] <= d].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert len(b) > 100 and np.isfinite(b[list(A.HAZARD_FEATURES)].to_numpy()).all()
    # and the later rows did change
    assert not after[after["day"] > d]["log_level"].equals(base[base["day"] > d]["log_level"])


def test_hazard_features_hand_case():
    panel = pd.DataFrame({"user_id": 0, "category": 0, "day": np.arange(5), "view": [0, 2, 4, 0, 1],
                          "click": 0, "cart": 0, "purchase": 0, "observed": [True, True, True, False, True]})
    f = A.hazard_features(panel, window=2)
    # rows start at the first event (day 1); the window-2 level skips the outage on day 3
    assert f["day"].tolist() == [1, 2, 3, 4]
    np.testing.assert_allclose(f["days_active"], [0, 1, 2, 3])
    np.testing.assert_allclose(f["log_level"], np.log(0.5 + np.array([1.0, 3.0, 4.0, 1.0])))
    np.testing.assert_allclose(f["log_cum_events"], np.log1p([2, 6, 6, 7]))
    np.testing.assert_allclose(f["days_since_max"], [0, 0, 0, 1])
    np.testing.assert_allclose(f["log_level_to_max"], [0, 0, 0, np.log(1.5 / 4.5)])


def test_hazard_rows_labels():
    f = pd.DataFrame({"user_id": 0, "category": 0, "day": np.arange(6)})
    for c in A.HAZARD_FEATURES:
        f[c] = 0.0
    truth = pd.DataFrame({"user_id": [0], "category": [0], "t_peak": [4], "is_bot": [False]})
    r = A.hazard_rows(f, truth, 2)
    assert r["day"].tolist() == [0, 1, 2, 3] and r["label"].tolist() == [0, 0, 1, 1]
    r = A.hazard_rows(f, truth, 2, at_risk_only=False)
    assert r["label"].tolist() == [0, 0, 1, 1, 0, 0]
    with pytest.raises(ValueError, match="k must be"):
        A.hazard_rows(f, truth, 0)


def test_brier_and_reliability():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 1000)
    assert A.brier_score(y.astype(float), y) == 0.0
    assert A.brier_score(np.full(1000, 0.5), y) == pytest.approx(0.25)
    p = rng.uniform(size=1000)
    t = A.reliability_table(p, y)
    assert len(t) == 10 and t["n"].sum() == 1000
    assert (t["n"] * t["mean_predicted"]).sum() == pytest.approx(p.sum())
    assert (t["n"] * t["observed"]).sum() == pytest.approx(y.sum())
    assert (np.diff(t["mean_predicted"]) > 0).all()
    with pytest.raises(ValueError, match="probabilities"):
        A.brier_score([1.5], [1])
    with pytest.raises(ValueError, match="0/1"):
        A.brier_score([0.5], [2])


def test_hazard_eval_beats_the_base_rate(small_sim, small_pre):
    from decaylib.forecast.sequences import user_folds

    panel = small_pre.panel
    f = A.hazard_features(panel)
    rows = A.hazard_rows(f, small_sim.truth, 7)
    tr_u, te_u = user_folds(panel["user_id"].unique(), n_folds=2, seed=0)[0]
    r = A.hazard_eval(rows, tr_u, te_u, features=[c for c in A.HAZARD_FEATURES if c not in ("fc_ratio", "has_forecast")])
    assert r["n_test"] == len(r["p"]) and r["reliability"]["n"].sum() == r["n_test"]
    assert 0 <= r["brier"] < r["brier_base"]
    assert r["skill"] == pytest.approx(1 - r["brier"] / r["brier_base"])
    with pytest.raises(ValueError, match="one label class"):
        A.fit_hazard(rows.assign(label=0))
