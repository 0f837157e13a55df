"""Tests of decaylib.decay.rate: the formula, the estimators, the Cramér-Rao bound, the curve fits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decaylib.decay import curves as CV
from decaylib.decay import evidence as EV
from decaylib.decay import rate as D

LN2 = np.log(2.0)


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def long_table(lams, log_as, n_days=30, observed=None, counts=None):
    """Long decay-phase table with exact expected counts (or given counts)."""
    lams = np.asarray(lams, float)
    log_as = np.asarray(log_as, float)
    G = lams.size
    t = np.tile(np.arange(n_days, dtype=float), G)
    g = np.repeat(np.arange(G), n_days)
    mu = np.exp(log_as[g] - lams[g] * t)
    df = pd.DataFrame(
        {
            "user_id": g.astype(np.int64),
            "category": np.int64(7),
            "t": t,
            "count": mu if counts is None else counts,
            "expected_count": mu,
            "observed": np.ones(G * n_days, bool) if observed is None else observed,
        }
    )
    return df


# ------------------------------------------------------------------------------------------
# the article's formula and half-lives
# ------------------------------------------------------------------------------------------
def test_formula_exact_on_pure_exponential_half_life_30():
    lam = LN2 / 30.0
    t = np.arange(0, 60, 5.0)
    I = 80.0 * np.exp(-lam * t)
    for dt in (1, 5, 30):
        got = D.log_ratio_lambda(I[:-1] if dt == 5 else 80.0, I[1:] if dt == 5 else 80.0 * np.exp(-lam * dt), dt)
        np.testing.assert_allclose(got, lam, rtol=1e-12)
    assert D.log_ratio_lambda(100.0, 50.0, 30.0) == pytest.approx(0.0231049060, rel=1e-9)
    assert isinstance(D.log_ratio_lambda(100.0, 50.0, 30.0), float)


def test_formula_invariant_to_I0_and_vectorized():
    lam = np.array([0.01, 0.1, 0.5])
    dt = np.array([1.0, 2.0, 7.0])
    base = D.log_ratio_lambda(np.ones(3), np.exp(-lam * dt), dt)
    for I0 in (1e-3, 3.7, 1e6):
        np.testing.assert_allclose(D.log_ratio_lambda(I0 * np.ones(3), I0 * np.exp(-lam * dt), dt), base, rtol=1e-12)
    np.testing.assert_allclose(base, lam, rtol=1e-12)
    # growth gives a negative rate
    assert D.log_ratio_lambda(1.0, 2.0, 1.0) == pytest.approx(-LN2)


def test_half_life_relation_and_policy():
    for T in (0.5, 7.0, 30.0, 365.0):
        lam = D.lambda_from_half_life(T)
        assert D.half_life(lam) == pytest.approx(T, rel=1e-12)
        assert lam * T == pytest.approx(LN2)
    assert D.lambda_from_half_life(30) == pytest.approx(0.023104906, rel=1e-8)
    hl = D.half_life(np.array([0.0, -0.2, np.nan, LN2]))
    assert np.isinf(hl[0]) and np.isinf(hl[1]) and np.isnan(hl[2]) and hl[3] == pytest.approx(1.0)
    assert D.lambda_from_half_life(np.inf) == 0.0
    with pytest.raises(ValueError, match="half-life"):
        D.lambda_from_half_life(0.0)
    with pytest.raises(ValueError):
        D.lambda_from_half_life([10.0, -1.0])


def test_nonpositive_policy():
    a = np.array([10.0, 0.0, 5.0, -1.0, 4.0])
    b = np.array([5.0, 3.0, 0.0, 2.0, 2.0])
    with pytest.raises(ValueError, match="3 of 5"):
        D.log_ratio_lambda(a, b, 1.0)
    lam, ok = D.log_ratio_lambda(a, b, 1.0, policy="nan", return_mask=True)
    np.testing.assert_array_equal(ok, [True, False, False, False, True])
    assert np.all(np.isnan(lam[~ok]))
    assert not np.any(np.isinf(lam))
    assert lam[0] == pytest.approx(LN2)
    with pytest.raises(ValueError, match="policy"):
        D.log_ratio_lambda(a, b, 1.0, policy="clip")


@pytest.mark.parametrize("dt", [0.0, -1.0, np.nan, [1.0, 0.0]])
def test_dt_must_be_positive(dt):
    with pytest.raises(ValueError, match="dt"):
        D.log_ratio_lambda([2.0, 2.0], [1.0, 1.0], dt)


# ------------------------------------------------------------------------------------------
# least squares and Poisson MLE
# ------------------------------------------------------------------------------------------
LAMS = np.array([0.01, 0.0231, 0.1, 0.3, 0.05])
LOG_AS = np.log([5.0, 40.0, 12.0, 200.0, 0.8])


def test_least_squares_and_mle_exact_on_noise_free_counts():
    df = long_table(LAMS, LOG_AS)
    ls = D.fit_least_squares(df)
    ml = D.fit_poisson_mle(df)
    for res in (ls, ml):
        assert list(res["reason"]) == ["ok"] * 5
        np.testing.assert_allclose(res["lam_hat"], LAMS, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(res["log_a"], LOG_AS, rtol=1e-8, atol=1e-9)
    assert ml["converged"].all()
    assert ml["iterations"].max() <= 10
    np.testing.assert_array_equal(ml["user_id"], np.arange(5))
    # log1p is biased towards 0 (flattens small counts)
    lp = D.fit_least_squares(df, transform="log1p")
    assert np.all(lp["lam_hat"].to_numpy() < LAMS)


def test_estimators_skip_outage_days_and_any_time_origin():
    n = 30
    obs = np.ones(len(LAMS) * n, bool)
    obs[3::7] = False  # some outage days per pair
    df = long_table(LAMS, LOG_AS, n_days=n, observed=obs)
    df.loc[~df["observed"], "count"] = 0.0  # outage zeros are not real zeros
    df["t"] = df["t"] + 100.0  # t as a calendar day: lambda unchanged
    for res in (D.fit_least_squares(df), D.fit_poisson_mle(df)):
        np.testing.assert_allclose(res["lam_hat"], LAMS, rtol=1e-8)
        assert (res["n_days"] == obs.reshape(len(LAMS), n).sum(axis=1)).all()


def test_degenerate_pairs_give_nan_with_reason_not_exceptions():
    n = 10
    lams = [0.1, 0.1, 0.1, 0.1, 0.1]
    df = long_table(lams, np.log([10.0] * 5), n_days=n)
    y = df["count"].to_numpy().copy()
    y[df.user_id == 1] = 0.0  # all zero
    first_only = (df.user_id == 2).to_numpy()
    y[first_only] = np.where(df.t[first_only] == 0, 4.0, 0.0)  # MLE does not exist (lambda -> inf)
    df["count"] = y
    obs = df["observed"].to_numpy().copy()
    obs[(df.user_id == 3).to_numpy() & (df.t >= 2).to_numpy()] = False  # two days only
    obs[(df.user_id == 4).to_numpy()] = False  # nothing observed
    df["observed"] = obs
    # the estimator's own mechanics (evidence rules switched off) ...
    ml = D.fit_poisson_mle(df, rules=EV.EvidenceRules.disabled()).set_index("user_id")
    assert list(ml["reason"]) == ["ok", "all_zero", "mle_not_finite", "too_few_days", "no_observed_days"]
    assert ml.loc[0, "lam_hat"] == pytest.approx(0.1, rel=1e-8)
    assert ml.loc[1:, "lam_hat"].isna().all()
    # ... and with the default evidence rules: 4 events on a single day are not enough data
    ml = D.fit_poisson_mle(df).set_index("user_id")
    assert list(ml["reason"]) == ["ok", "all_zero", "insufficient_data", "too_few_days", "no_observed_days"]
    assert ml.loc[1:, ["lam_hat", "se_lam", "lam_lo", "lam_hi", "half_life"]].isna().all().all()
    ls = D.fit_least_squares(df).set_index("user_id")
    assert ls.loc[0, "lam_hat"] == pytest.approx(0.1, rel=1e-8)
    assert list(ls["reason"][1:]) == ["all_zero", "too_few_days", "too_few_days", "no_observed_days"]
    assert ls.loc[1:, "lam_hat"].isna().all()


def test_estimators_reject_bad_input():
    df = long_table([0.1], [1.0])
    with pytest.raises(KeyError, match="count"):
        D.fit_poisson_mle(df.drop(columns="count"))
    bad = df.copy()
    bad.loc[0, "count"] = -1.0
    with pytest.raises(ValueError, match="count"):
        D.fit_poisson_mle(bad)
    with pytest.raises(ValueError, match="empty"):
        D.fit_least_squares(df.iloc[:0])
    with pytest.raises(ValueError, match="transform"):
        D.fit_least_squares(df, transform="sqrt")
    with pytest.raises(TypeError):
        D.fit_poisson_mle(df.assign(observed=1.0))


def test_mle_spread_matches_cramer_rao_bound_monte_carlo():
    rng = np.random.default_rng(12345)
    R, n, lam, a = 500, 30, 0.08, np.log(25.0)
    t1 = np.arange(n, dtype=float)
    mu1 = np.exp(a - lam * t1)
    crb = D.cramer_rao_lambda(mu1, t1)
    counts = rng.poisson(np.tile(mu1, R)).astype(float)
    df = long_table(np.full(R, lam), np.full(R, a), n_days=n, counts=counts)
    res = D.fit_poisson_mle(df)
    assert (res["reason"] == "ok").all()
    sd = res["lam_hat"].std(ddof=1)
    assert sd == pytest.approx(crb, rel=0.15)
    assert abs(res["lam_hat"].mean() - lam) < 3 * crb / np.sqrt(R) + 0.002
    # the model's own standard error agrees with the bound on average
    assert res["se_lam"].median() == pytest.approx(crb, rel=0.1)


def test_mle_median_error_over_bound_near_efficient_value():
    rng = np.random.default_rng(7)
    G, n = 3000, 30
    lams = rng.uniform(0.02, 0.2, G)
    log_as = np.log(rng.uniform(10.0, 60.0, G))
    exact = long_table(lams, log_as, n_days=n)
    counts = rng.poisson(exact["count"].to_numpy()).astype(float)
    df = exact.assign(count=counts)
    res = D.fit_poisson_mle(df)
    crb = D.cramer_rao_table(df)
    ratio = D.error_vs_bound(res["lam_hat"].to_numpy(), lams, crb["crb_sd"].to_numpy())
    assert np.nanmedian(ratio) == pytest.approx(D.EFFICIENT_MEDIAN_RATIO, abs=0.06)
    # least squares on log counts is measurably less efficient
    ls = D.fit_least_squares(df)
    assert np.nanmedian(D.error_vs_bound(ls["lam_hat"].to_numpy(), lams, crb["crb_sd"].to_numpy())) > 0.8


def test_cramer_rao_matches_explicit_inverse_and_groups():
    rng = np.random.default_rng(0)
    mus, ts, gs = [], [], []
    expected = []
    for g in range(4):
        t = np.sort(rng.choice(60, size=12 + g, replace=False)).astype(float)
        mu = np.exp(rng.uniform(0, 3) - rng.uniform(0.01, 0.2) * t)
        F = np.array([[mu.sum(), -(mu * t).sum()], [-(mu * t).sum(), (mu * t * t).sum()]])
        expected.append(np.sqrt(np.linalg.inv(F)[1, 1]))
        mus.append(mu), ts.append(t), gs.append(np.full(t.size, g))
    got = D.cramer_rao_lambda(np.concatenate(mus), np.concatenate(ts), np.concatenate(gs))
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    assert D.cramer_rao_lambda(mus[0], ts[0]) == pytest.approx(expected[0], rel=1e-9)
    # no information from a single day, or from unobserved days
    assert np.isinf(D.cramer_rao_lambda([5.0], [3.0]))
    assert np.isinf(D.cramer_rao_lambda([5.0, 4.0], [0.0, 1.0], observed=[True, False]))
    with pytest.raises(ValueError):
        D.cramer_rao_lambda([1.0, -1.0], [0.0, 1.0])


def test_error_vs_bound():
    np.testing.assert_allclose(D.error_vs_bound([0.1, 0.2], [0.12, 0.2], [0.01, 0.05]), [2.0, 0.0])
    with pytest.raises(ValueError):
        D.error_vs_bound([0.1], [0.1], [0.0])


# ------------------------------------------------------------------------------------------
# lambda from forecasts and from the daily series
# ------------------------------------------------------------------------------------------
def forecast_table(lams, starts, n_origins=20, H=7, bad_pair=None):
    rows = []
    for p, (lam, s) in enumerate(zip(lams, starts)):
        for o in range(n_origins):
            for h in range(1, H + 1):
                d = o + h
                # rising before the start, exponential decay after it
                val = 50.0 * np.exp(-lam * (d - s)) if d >= s else 50.0 * np.exp(0.3 * (d - s))
                if p == bad_pair:
                    val = -1.0
                rows.append((p, 1, o, h, val))
    return pd.DataFrame(rows, columns=["user_id", "category", "origin_day", "horizon", "interest_pred"])


def test_lambda_from_forecasts_exact_in_decay_phase():
    lams = [0.05, 0.2, 0.1]
    fc = forecast_table(lams, starts=[5, 14, 3], bad_pair=2)
    start = pd.DataFrame({"user_id": [0, 1, 2, 3], "category": [1, 1, 1, 1], "t_peak": [5, 14, 3, 0]})
    for method in ("endpoints", "loglinear"):
        res = D.lambda_from_forecasts(fc, start, method=method).set_index("user_id")
        np.testing.assert_allclose(res.loc[[0, 1], "lam_hat"], lams[:2], rtol=1e-10)
        assert res.loc[0, "n_paths"] == 15 and res.loc[1, "n_paths"] == 6
        assert res.loc[2, "reason"] == "all_paths_nonpositive" and np.isnan(res.loc[2, "lam_hat"])
        assert res.loc[2, "n_bad_paths"] == 17
        assert res.loc[3, "reason"] == "no_paths_in_decay_phase" and res.loc[3, "n_paths"] == 0
    # using every origin (rising part included) would be wrong: the start filter matters
    allo = D.lambda_from_forecasts(fc).set_index("user_id")
    assert abs(allo.loc[1, "lam_hat"] - 0.2) > 0.01
    # a boolean column works as well, and a Series for the start
    fc2 = fc.assign(in_decay=fc["origin_day"] >= 14)
    res2 = D.lambda_from_forecasts(fc2, origin_col="in_decay").set_index("user_id")
    assert res2.loc[1, "lam_hat"] == pytest.approx(0.2, rel=1e-10)
    s = start.set_index(["user_id", "category"])["t_peak"]
    res3 = D.lambda_from_forecasts(fc, s, h_from=2, h_to=5)
    assert res3.loc[0, "lam_hat"] == pytest.approx(0.05, rel=1e-10)
    with pytest.raises(ValueError, match="h_from"):
        D.lambda_from_forecasts(fc, start, h_to=9)
    with pytest.raises(KeyError, match="interest_pred"):
        D.lambda_from_forecasts(fc.drop(columns="interest_pred"))


def panel_table(series, first_day=0, observed=None):
    rows = []
    for p, vals in enumerate(series):
        for i, v in enumerate(vals):
            rows.append((p, 2, first_day + i, float(v)))
    df = pd.DataFrame(rows, columns=["user_id", "category", "day", "interest"])
    df["observed"] = True if observed is None else observed
    return df


def test_two_point_lambda_exact_and_zero_handling():
    d = np.arange(40)
    exact = 30.0 * np.exp(-0.1 * np.clip(d - 10, 0, None)) * np.where(d < 10, d / 10, 1.0)
    zeros = np.where(d < 25, 8.0, 0.0)  # decays to a run of zeros
    panel = panel_table([exact, zeros])
    start = pd.DataFrame({"user_id": [0, 1], "category": [2, 2], "t_peak": [10, 10]})
    ep = D.two_point_lambda(panel, start)
    assert ep.loc[0, "lam_hat"] == pytest.approx(0.1, rel=1e-10)
    assert ep.loc[0, "n_days"] == 30
    assert ep.loc[1, "reason"] == "zero_window" and np.isnan(ep.loc[1, "lam_hat"])
    co = D.two_point_lambda(panel, start, method="consecutive")
    assert co.loc[0, "lam_hat"] == pytest.approx(0.1, rel=1e-10)
    assert co.loc[1, "lam_hat"] == pytest.approx(0.0)  # only the positive flat steps are used
    # an outage day (observed False, count 0) is skipped rather than read as a zero
    obs = np.ones(len(panel), bool)
    idx = panel.index[(panel.user_id == 0) & (panel.day == 20)]
    panel.loc[idx, "interest"] = 0.0
    obs[idx] = False
    panel["observed"] = obs
    for method in ("endpoints", "consecutive"):
        r = D.two_point_lambda(panel, start, method=method)
        assert r.loc[0, "lam_hat"] == pytest.approx(0.1, rel=1e-10)
    # end of the decay phase
    end = start.assign(t_end=[14, 14])
    r = D.two_point_lambda(panel, start, end=end, window=2)
    assert r.loc[0, "n_days"] == 5 and r.loc[0, "lam_hat"] == pytest.approx(0.1, rel=1e-10)
    assert D.two_point_lambda(panel, start, end=end, window=3).loc[0, "reason"] == "too_few_days"


def test_decay_phase_table():
    panel = panel_table([np.arange(10.0)], first_day=5)
    panel["view"], panel["click"], panel["cart"], panel["purchase"] = 1, 2, 0, 1
    start = pd.DataFrame({"user_id": [0], "category": [2], "t_peak": [9]})
    td = panel[["user_id", "category", "day"]].assign(
        expected_view=1.5, expected_click=0.5, expected_cart=0.0, expected_purchase=0.25
    )
    tab = D.decay_phase_table(panel, start, truth_daily=td)
    assert list(tab["day"]) == list(range(9, 15))
    assert list(tab["t"]) == list(range(6))
    assert (tab["count"] == 4).all() and (tab["expected_count"] == 2.25).all()
    with pytest.raises(ValueError, match="lacks"):
        D.decay_phase_table(panel, start, truth_daily=td.iloc[:-1])


# ------------------------------------------------------------------------------------------
# Ebbinghaus honesty helpers
# ------------------------------------------------------------------------------------------
EBB_HOURS = [0.33, 1, 8.8, 24, 48, 144, 744]
EBB_Q = [58.2, 44.2, 35.8, 33.7, 27.8, 25.4, 21.1]


def test_curve_fits_recover_parameters():
    t = np.linspace(0.5, 50, 20)
    e = CV.fit_exponential(t, 7.0 * np.exp(-0.08 * t))
    assert e.params["lam"] == pytest.approx(0.08, rel=1e-6) and e.params["A"] == pytest.approx(7.0, rel=1e-6)
    assert e.r2 == pytest.approx(1.0) and e.rmse < 1e-6
    assert e.params["half_life"] == pytest.approx(LN2 / 0.08, rel=1e-6)
    p = CV.fit_power_law(t, 3.0 * t**-0.4)
    assert p.params["b"] == pytest.approx(0.4, rel=1e-6) and p.params["A"] == pytest.approx(3.0, rel=1e-6)
    np.testing.assert_allclose(p.predict([1.0, 2.0]), [3.0, 3.0 * 2**-0.4], rtol=1e-6)
    with pytest.raises(ValueError):
        CV.fit_power_law([0.0, 1.0, 2.0], [1.0, 0.5, 0.3])


def test_ebbinghaus_power_law_beats_exponential():
    e = CV.fit_exponential(EBB_HOURS, EBB_Q)
    p = CV.fit_power_law(EBB_HOURS, EBB_Q)
    assert p.r2 > 0.95 and e.r2 < 0.6
    assert p.rmse < e.rmse / 3


def test_mixture_of_exponentials_looks_like_power_law():
    t = np.linspace(1, 200, 60)
    y = CV.mixture_of_exponentials(t, np.geomspace(1e-3, 1.0, 30))
    assert CV.mixture_of_exponentials(0.0, [0.1, 1.0], [2.0, 2.0]) == pytest.approx(1.0)
    assert CV.fit_power_law(t, y).r2 > CV.fit_exponential(t, y).r2 + 0.05
    np.testing.assert_allclose(
        CV.mixture_of_exponentials(t, [0.1, 0.5], [1, 3]), 0.25 * np.exp(-0.1 * t) + 0.75 * np.exp(-0.5 * t)
    )
    with pytest.raises(ValueError):
        CV.mixture_of_exponentials(t, [0.1, -0.2])


def test_lambda_from_forecast_levels_exact_on_exponential_levels():
    import pandas as pd

    from decaylib.decay.rate import lambda_from_forecast_levels

    lam, rows = 0.08, []
    for origin in range(0, 40):
        for h in range(1, 4):
            rows.append({"user_id": 1, "category": 2, "origin_day": origin, "horizon": h,
                         "interest_pred": 9.0 * np.exp(-lam * (origin + h))})
    ff = pd.DataFrame(rows)
    start = pd.DataFrame({"user_id": [1], "category": [2], "t_peak": [5]})
    out = lambda_from_forecast_levels(ff, start)
    assert out["lam_hat"].iloc[0] == pytest.approx(lam, rel=1e-9)
    with pytest.raises(ValueError, match="no rows with horizon"):
        lambda_from_forecast_levels(ff, start, horizon=9)
    with pytest.raises(KeyError, match="interest_pred"):
        lambda_from_forecast_levels(ff.drop(columns="interest_pred"), start)


def test_return_intervals_and_survival_curve():
    import pandas as pd

    from decaylib.decay.curves import return_intervals, survival_curve

    days = pd.DataFrame({"user_id": [1, 1, 1, 1, 2, 3, 3], "day": [0, 0, 3, 10, 5, 2, 4]})
    gaps = return_intervals(days)
    assert sorted(gaps.tolist()) == [2, 3, 7]
    s = survival_curve(gaps, max_days=8)
    assert s.loc[s.day == 0, "survival"].item() == 1.0
    assert s.loc[s.day == 2, "survival"].item() == pytest.approx(2 / 3)
    assert s.loc[s.day == 3, "survival"].item() == pytest.approx(1 / 3)
    assert s.loc[s.day == 7, "survival"].item() == 0.0
    # an exponential waiting time gives an exponential survival curve
    rng = np.random.default_rng(0)
    s2 = survival_curve(np.ceil(rng.exponential(10.0, 20000)), max_days=30)
    lam = -np.log(s2["survival"].iloc[1:31].to_numpy()) / s2["day"].iloc[1:31].to_numpy()
    assert np.median(lam) == pytest.approx(0.1, rel=0.1)
    with pytest.raises(ValueError, match="no intervals"):
        survival_curve([])
    with pytest.raises(KeyError, match="missing"):
        return_intervals(days.rename(columns={"day": "d"}))


def test_lambda_from_forecast_fit_exact_on_exponential_levels():
    import pandas as pd

    from decaylib.decay.rate import lambda_from_forecast_fit

    lam, rows = 0.06, []
    for origin in range(0, 50):
        for h in (1, 2):
            rows.append({"user_id": 1, "category": 2, "origin_day": origin, "horizon": h,
                         "interest_pred": 7.0 * np.exp(-lam * (origin + h))})
    ff = pd.DataFrame(rows)
    start = pd.DataFrame({"user_id": [1], "category": [2], "t_peak": [10]})
    out = lambda_from_forecast_fit(ff, start)
    assert out["lam_hat"].iloc[0] == pytest.approx(lam, rel=1e-8)
    late = lambda_from_forecast_fit(ff, start.assign(t_peak=500))  # no level in the decay phase
    assert late["reason"].tolist() == ["no_paths_in_decay_phase"] and np.isnan(late["lam_hat"].iloc[0])


def test_poisson_mle_in_blocks_is_identical(monkeypatch):
    """Large fits run in blocks of pairs; the blocks change nothing, whatever the row order."""
    rng = np.random.default_rng(5)
    n_pairs, days = 900, 12
    lam = rng.uniform(0.01, 0.5, n_pairs)
    t = np.tile(np.arange(days, dtype=float), n_pairs)
    pair = np.repeat(np.arange(n_pairs), days)
    df = pd.DataFrame({"user_id": pair // 3, "category": pair % 3, "t": t,
                       "count": rng.poisson(20 * np.exp(-lam[pair] * t)).astype(float),
                       "observed": rng.random(t.size) > 0.05})
    df = df.sample(frac=1.0, random_state=2)
    whole = D.fit_poisson_mle(df)
    monkeypatch.setattr(D, "_MLE_CHUNK_PAIRS", 250)
    blocks = D.fit_poisson_mle(df)
    assert blocks.index.equals(whole.index)
    pd.testing.assert_frame_equal(blocks, whole, check_exact=True)
    assert (whole["reason"] == "ok").sum() > 800


def test_log_ratio_experiment_matches_its_theory():
    """The formula's spread is σ√2/Δt whatever I0; without noise it is exact; bad input is named."""
    a = D.log_ratio_experiment(100.0, 0.1, 0.3, 3.0, n_draws=20000, seed=1)
    b = D.log_ratio_experiment(5.0, 0.1, 0.3, 3.0, n_draws=20000, seed=1)
    assert abs(a["sd"] / a["sd_theory"] - 1) < 0.03 and abs(a["median"] - 0.1) < 0.01
    np.testing.assert_allclose(a["lam_hat"], b["lam_hat"])  # I0 cancels
    wide = D.log_ratio_experiment(100.0, 0.1, 0.3, 12.0, n_draws=20000, seed=1)
    assert wide["sd"] < a["sd"] / 3 and wide["share_rising"] < a["share_rising"]
    exact = D.log_ratio_experiment(100.0, 0.1, 0.0, 3.0)
    np.testing.assert_allclose(exact["lam_hat"], 0.1)
    for kw, msg in (({"dt": 0}, "dt must be > 0"), ({"noise": -1}, "noise must be >= 0"), ({"I0": 0}, "I0 must be > 0")):
        args = {"I0": 100.0, "lam": 0.1, "noise": 0.3, "dt": 3.0, **kw}
        with pytest.raises(ValueError, match=msg):
            D.log_ratio_experiment(**args)


def test_sar_tuning_cutoff_names_the_parameter_and_the_numbers():
    from decaylib.decay.rate import sar_tuning_cutoff

    assert sar_tuning_cutoff(272, 0, 28) == 244
    assert sar_tuning_cutoff(272, 0, 272) == 0  # one day of history is enough
    with pytest.raises(ValueError, match=r"\(-1, 272\]: tune_days=273 leaves no data to tune on; it needs at least 274 days "
                                         r"of history up to cutoff_day=272, the data start on day 0 \(273 days\); "
                                         r"pass tune_days of at most 272"):
        sar_tuning_cutoff(272, 0, 273)
    with pytest.raises(ValueError, match=r"^method 'sar' tunes.*sar_tune_days=5 .*no value fits"):
        sar_tuning_cutoff(3, 3, 5, name="sar_tune_days", who="method 'sar'")
    with pytest.raises(ValueError, match="tune_days must be >= 1, got 0"):
        sar_tuning_cutoff(10, 0, 0)
    with pytest.raises(TypeError, match="tune_days must be an int"):
        sar_tuning_cutoff(10, 0, 2.5)
