"""Empirical-Bayes λ (decaylib.decay.shrinkage): limits of the shrinkage, coverage, the floor, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decaylib.decay import evidence as EV
from decaylib.decay import rate as D
from decaylib.decay import shrinkage as S


def simulate_phases(n_pairs, n_days, seed, *, floor=0.0, level_median=4.0, hl=(3.0, 60.0), outage=0.0):
    """Decay phases with log-uniform half-lives and log-normal levels: y ~ Poisson(A (ρ + (1-ρ) e^{-λt}))."""
    rng = np.random.default_rng(seed)
    lam = np.log(2.0) / np.exp(rng.uniform(np.log(hl[0]), np.log(hl[1]), n_pairs))
    A = level_median * np.exp(0.6 * rng.standard_normal(n_pairs))
    g = np.repeat(np.arange(n_pairs), n_days)
    t = np.tile(np.arange(n_days, dtype=float), n_pairs)
    mu = A[g] * (floor + (1 - floor) * np.exp(-lam[g] * t))
    obs = rng.random(g.size) >= outage
    y = np.where(obs, rng.poisson(mu), 0).astype(float)
    df = pd.DataFrame({"user_id": g, "category": 0, "t": t, "count": y, "observed": obs})
    return df, lam, A


def flat_prior(alpha=1e-3, beta=1e-6, sd=None, centre=None, grid_size=400):
    grid = np.linspace(*S.LOG_LAM_RANGE, grid_size)
    w = np.ones_like(grid) if sd is None else np.exp(-0.5 * ((grid - centre) / sd) ** 2)
    return S.DecayPrior(grid=grid, weights=w / w.sum(), alpha=alpha, beta=beta)


def test_wide_prior_gives_back_the_mle():
    df, lam, _ = simulate_phases(50, 40, seed=1, level_median=20.0)
    mle = D.fit_poisson_mle(df)
    # a normal prior on log λ centred far from most pairs: the wider it is, the less it pulls
    # (distance in units of the MLE's standard error)
    errs = [np.median(np.abs(S.shrunk_lambda(df, flat_prior(sd=s, centre=np.log(0.3)))["lam_hat"] - mle["lam_hat"])
                      / mle["se_lam"]) for s in (0.1, 0.5, 10.0)]
    assert errs[0] > errs[1] > errs[2]
    assert errs[2] < 0.3  # wide prior: the posterior median is the MLE, up to the skew of its likelihood
    df, _, _ = simulate_phases(50, 60, seed=2, level_median=300.0)
    mle = D.fit_poisson_mle(df)
    rich = (mle["se_lam"] / mle["lam_hat"] < 0.05).to_numpy()
    assert rich.sum() >= 10
    flat = S.shrunk_lambda(df, flat_prior())  # flat in log λ, level prior vague
    np.testing.assert_allclose(flat["lam_hat"][rich], mle["lam_hat"][rich], rtol=0.01)


def test_no_information_gives_back_the_prior():
    # one observed day at t = 0: the likelihood does not depend on λ, the posterior is the prior
    df = pd.DataFrame({"user_id": [0, 1], "category": 0, "t": [0.0, 0.0], "count": [0.0, 3.0], "observed": True})
    prior = flat_prior(sd=0.7, centre=np.log(0.05), alpha=2.0, beta=0.5)
    post = S.shrunk_lambda(df, prior)
    np.testing.assert_allclose(post["lam_hat"], prior.lam_median, rtol=0.01)
    assert (post["data_weight"] < 0.01).all()
    # expected future sum with no information: E[A | y] x E[sum e^{-λt}] under the prior
    st = S.pair_stats(df)
    lam = np.exp(prior.grid)
    F = (np.exp(-lam * 1) + np.exp(-lam * 2))
    want0 = (0 + 2.0) / (1 + 0.5) * (prior.weights * F).sum()
    got = S.posterior_expected_sum(st, prior, np.array([1.0, 1.0]), np.array([2.0, 2.0]))
    assert got[0] == pytest.approx(want0, rel=0.02)
    assert got[1] > got[0]  # three events raise the level


def test_unobserved_only_pair_has_no_estimate():
    df = pd.DataFrame({"user_id": [0, 0, 1, 1], "category": 0, "t": [0.0, 1.0, 0.0, 1.0],
                       "count": [0.0, 0.0, 5.0, 2.0], "observed": [False, False, True, True]})
    post = S.shrunk_lambda(df, flat_prior(sd=1.0, centre=np.log(0.1)))
    assert post["reason"].tolist() == ["no_observed_days", "ok"]
    assert np.isnan(post.loc[0, "lam_hat"]) and np.isfinite(post.loc[1, "lam_hat"])


def test_coverage_and_error_on_simulated_pairs():
    df, lam, _ = simulate_phases(3000, 30, seed=3, outage=0.03)
    post = S.shrunk_lambda(df)
    cover = np.mean((post["lam_lo"] <= lam) & (lam <= post["lam_hi"]))
    assert 0.86 <= cover <= 0.94
    mle = D.fit_poisson_mle(df, rules=EV.EvidenceRules(min_events=1, min_active_days=1))
    ok = np.isfinite(mle["lam_hat"].to_numpy())
    rel_s = np.abs(post["lam_hat"].to_numpy() / lam - 1)[ok]
    rel_m = np.abs(mle["lam_hat"].to_numpy() / lam - 1)[ok]
    assert np.median(rel_s) < np.median(rel_m)
    prior = post.attrs["prior"]
    assert prior.floor == 0.0 and prior.converged
    # the population's median half-life is the simulator's (log-uniform 3..60: sqrt(180) = 13.4)
    assert prior.half_life_median == pytest.approx(np.sqrt(180.0), rel=0.15)


@pytest.mark.slow
def test_floor_found_where_it_exists_and_not_elsewhere():
    df, _, _ = simulate_phases(1500, 40, seed=4, floor=0.2, level_median=6.0)
    assert S.fit_prior(df, floor=True).floor == pytest.approx(0.2, abs=0.1)
    df0, _, _ = simulate_phases(1500, 40, seed=5, floor=0.0, level_median=6.0)
    assert S.fit_prior(df0, floor=True).floor == 0.0


def test_deterministic_and_subsample():
    df, _, _ = simulate_phases(600, 20, seed=6)
    a = S.fit_prior(df, max_fit_pairs=200, seed=1)
    b = S.fit_prior(df, max_fit_pairs=200, seed=1)
    np.testing.assert_array_equal(a.weights, b.weights)
    assert a.n_pairs == 200


def test_missing_rows_count_as_unobserved():
    full = pd.DataFrame({"user_id": 0, "category": 0, "t": np.arange(6.0), "count": [9, 0, 5, 4, 2, 1.0],
                         "observed": [True, False, True, True, True, True]})
    holed = full[full["observed"]]
    prior = flat_prior(sd=1.0, centre=np.log(0.2), alpha=1.0, beta=0.1)
    a, b = S.shrunk_lambda(full, prior), S.shrunk_lambda(holed, prior)
    assert a["lam_hat"].iloc[0] == pytest.approx(b["lam_hat"].iloc[0], rel=1e-9)


@pytest.mark.parametrize("kwargs, err", [
    ({"floor": 1.5}, ValueError), ({"grid_size": 3}, ValueError), ({"smooth": 0.7}, ValueError),
])
def test_bad_parameters(kwargs, err):
    df, _, _ = simulate_phases(20, 10, seed=0)
    with pytest.raises(err):
        S.fit_prior(df, **kwargs)


def test_bad_input():
    with pytest.raises(KeyError, match="missing"):
        S.fit_prior(pd.DataFrame({"user_id": [1], "t": [0.0]}))
    with pytest.raises(ValueError, match="empty|no rows"):
        S.fit_prior(pd.DataFrame({"user_id": [], "category": [], "t": [], "count": [], "observed": []}))
    with pytest.raises(ValueError, match="whole days"):
        S.fit_prior(pd.DataFrame({"user_id": [0], "category": 0, "t": [0.5], "count": [1.0], "observed": True}))
    df, _, _ = simulate_phases(20, 10, seed=0)
    with pytest.raises(TypeError, match="DecayPrior"):
        S.shrunk_lambda(df, prior={"weights": 1})


def test_thinning_keeps_the_truth_known():
    df, lam, A = simulate_phases(400, 20, seed=8, level_median=10.0)
    df["expected_count"] = np.repeat(A, 20) * np.exp(-np.repeat(lam, 20) * df["t"].to_numpy())
    thin = S.thin_phase(df, 0.25, seed=1)
    assert thin["count"].sum() == pytest.approx(0.25 * df["count"].sum(), rel=0.05)
    np.testing.assert_allclose(thin["expected_count"], 0.25 * df["expected_count"])
    assert (thin["count"] <= df["count"]).all()
    with pytest.raises(ValueError, match="share"):
        S.thin_phase(df, 0.0)


def test_compare_with_truth_by_band():
    df, lam, A = simulate_phases(1500, 25, seed=9, level_median=1.5)
    df["expected_count"] = np.repeat(A, 25) * np.exp(-np.repeat(lam, 25) * df["t"].to_numpy())
    truth = pd.DataFrame({"user_id": np.arange(1500), "category": 0, "lam": lam})
    per, table = S.compare_with_truth(df, truth)
    assert len(per) == 1500 and table.loc["all", "pairs"] == 1500
    sparse = table.drop(index="all")
    sparse = sparse[[iv.right <= 20 for iv in sparse.index] & sparse["mle"].notna().to_numpy()]
    assert len(sparse) >= 2
    assert (sparse["shrunk"] < sparse["mle"]).all() and (sparse["shrunk"] < sparse["global"]).all()
    assert 0.85 <= table.loc["all", "shrunk_coverage"] <= 0.95
