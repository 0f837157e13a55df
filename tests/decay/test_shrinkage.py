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
    # two days of counts barely narrow the prior: an estimate (the population's), labelled as such
    assert post["reason"].tolist() == ["no_observed_days", "prior_only"]
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


# ------------------------------------------------------------------------------------------
# What the fit says about itself: prior-only pairs, EM convergence, the grid's edges
# ------------------------------------------------------------------------------------------
def _fit_quietly(df, **kw):
    """fit_prior with every warning recorded: (prior, [(category, message), ...])."""
    import warnings

    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        prior = S.fit_prior(df, **kw)
    return prior, [(r.category, str(r.message)) for r in rec]


def test_prior_only_for_a_pair_with_one_event_not_for_a_clear_decay():
    df, _, _ = simulate_phases(600, 20, seed=6)
    prior = S.fit_prior(df)
    t = np.arange(30.0)
    pairs = pd.concat([
        pd.DataFrame({"user_id": 0, "category": 0, "t": [0.0, 1.0], "count": [1.0, 0.0], "observed": True}),  # one event
        pd.DataFrame({"user_id": 1, "category": 0, "t": t, "count": np.round(20 * 0.5 ** (t / 7)), "observed": True}),
        pd.DataFrame({"user_id": 2, "category": 0, "t": [0.0], "count": [0.0], "observed": False}),
    ], ignore_index=True)
    post = S.shrunk_lambda(pairs, prior)
    assert post["reason"].tolist() == ["prior_only", "ok", "no_observed_days"]
    assert post.loc[0, "data_weight"] < S.PRIOR_ONLY_SHARE < 0.9 < post.loc[1, "data_weight"]
    assert post.loc[0, "lam_hat"] == pytest.approx(prior.lam_median, rel=0.2)  # near the population's λ, kept
    assert np.isfinite(post.loc[0, ["lam_hat", "lam_lo", "lam_hi"]].astype(float)).all()
    assert post.loc[1, "half_life"] == pytest.approx(7.0, rel=0.2)
    assert "prior_only" in EV.REASONS and "``prior_only``" in EV.__doc__
    # the share is a keyword: 0 turns the label off, 1 gives it to every pair not decided by its events alone
    assert S.shrunk_lambda(pairs, prior, prior_only_share=0.0)["reason"].tolist()[:2] == ["ok", "ok"]
    assert S.shrunk_lambda(pairs, prior, prior_only_share=1.0)["reason"].tolist()[:2] == ["prior_only", "prior_only"]
    for bad in (1.5, -0.1, True, "0.2", np.nan):
        with pytest.raises(ValueError, match="prior_only_share"):
            S.shrunk_lambda(pairs, prior, prior_only_share=bad)
    # on the simulator's pairs (20 decay days each) the events decide: no pair is prior-only
    assert (S.shrunk_lambda(df, prior)["reason"] == "ok").all()


def test_em_that_stops_at_max_iter_warns_with_the_numbers():
    from decaylib.checks import DataWarning

    df, _, _ = simulate_phases(300, 20, seed=6)
    prior, warned = _fit_quietly(df, max_iter=3)
    assert [c for c, _ in warned] == [S.ConvergenceWarning] and issubclass(S.ConvergenceWarning, DataWarning)
    msg = warned[0][1]
    assert "max_iter=3 iterations" in msg and "tol=1e-08" in msg and f"{prior.rel_change:.3g}" in msg
    assert not prior.converged and prior.n_iter == prior.iterations == 3 and prior.rel_change > 1e-8
    assert "NOT converged: stopped at 3 iterations" in prior.describe()
    # a fit that converges: no warning, recorded as such
    prior, warned = _fit_quietly(df)
    assert warned == [] and prior.converged and 3 < prior.n_iter < 300 and prior.rel_change <= 1e-8
    assert not prior.at_edge and f"EM converged in {prior.n_iter} iterations" in prior.describe()
    # the grid of an interior fit is the default one, untouched
    np.testing.assert_array_equal(prior.grid, np.linspace(*S.LOG_LAM_RANGE, 64))
    # a hand-made prior says so, and keeps working without the new fields
    assert "not fitted by EM" in flat_prior().describe() and not flat_prior().at_edge
    for bad, err in ((0, ValueError), (2.5, TypeError)):
        with pytest.raises(err, match="max_iter"):
            S.fit_prior(df, max_iter=bad)
    with pytest.raises(ValueError, match="tol"):
        S.fit_prior(df, tol=-1.0)


def test_very_fast_decay_widens_the_grid_then_warns_at_the_hard_limit():
    from decaylib.checks import DataWarning

    # half-life 1 hour on daily counts: every event on day 0, λ far above the default grid (0.1 day)
    df, _, _ = simulate_phases(300, 15, seed=1, hl=(1 / 24, 1 / 24 * 1.0001), level_median=5.0)
    prior, warned = _fit_quietly(df)
    edge = [m for c, m in warned if c is DataWarning]
    assert len(edge) == 1 and prior.at_edge
    step = prior.grid[1] - prior.grid[0]
    # widened on the fast side only, up to the hard limit (1 minute) with the grid's own spacing
    assert prior.grid[0] == S.LOG_LAM_RANGE[0] and prior.grid[-1] > S.LOG_LAM_RANGE[1] + 4.5
    assert S.LOG_LAM_LIMITS[1] - step < prior.grid[-1] <= S.LOG_LAM_LIMITS[1]
    np.testing.assert_allclose(np.diff(prior.grid), step, rtol=1e-9)
    slow, fast = prior.edge_weights()
    hl_edge = np.log(2) / np.exp(prior.grid[-1])
    assert slow < S.EDGE_SHARE
    assert f"{fast:.1%} of the population prior's weight sits on the two fastest points" in edge[0]
    assert f"edge half-life {hl_edge:.3g} days" in edge[0] and "1 minute" in edge[0]
    assert "AT ITS EDGE" in prior.describe() and "(widened)" in prior.describe()
    # the posterior of such a pair is bounded by the grid, and says so through the prior
    post = S.shrunk_lambda(df.loc[df["user_id"] < 5], prior)
    assert (post["half_life"] < 0.1).all()


def test_a_fast_minority_spread_over_the_widened_grid_is_still_on_the_edge():
    from decaylib.checks import DataWarning

    fast, _, _ = simulate_phases(180, 15, seed=1, hl=(1 / 24, 1 / 24 * 1.0001), level_median=5.0)
    rest, _, _ = simulate_phases(420, 15, seed=2, level_median=5.0)
    df = pd.concat([fast, rest.assign(user_id=rest["user_id"] + 180)], ignore_index=True)
    prior, warned = _fit_quietly(df)
    # a flat likelihood lets the smoothing spread the fast pairs evenly over the added points: the two
    # outermost hold less than EDGE_SHARE, but the weight does not fall off toward the edge
    n_added = len(prior.grid) - 64
    assert n_added > 20 and prior.edge_weights()[1] < S.EDGE_SHARE < prior.weights[-n_added:].sum()
    assert prior.at_edge and sum(c is DataWarning for c, _ in warned) == 1
    assert f"{prior.weights[-n_added:].sum():.1%} of the weight on the {n_added} points it added" in warned[0][1]


def test_slow_decay_beyond_the_grid_is_resolved_by_widening():
    # half-lives of 5 to 40 years, seen over 3,000 days: beyond the default grid (10 years), inside 100 years
    df, lam, _ = simulate_phases(200, 3000, seed=1, hl=(5 * 365, 40 * 365), level_median=20.0)
    prior, warned = _fit_quietly(df)
    assert warned == [] and not prior.at_edge
    assert prior.grid[0] < S.LOG_LAM_RANGE[0] - 2 and prior.grid[-1] == S.LOG_LAM_RANGE[1]
    assert prior.grid[0] >= S.LOG_LAM_LIMITS[0]
    assert prior.weights[prior.grid < S.LOG_LAM_RANGE[0]].sum() > 0.3  # the weight the old grid would have piled on its edge
    assert prior.half_life_median == pytest.approx(np.log(2) / np.median(lam), rel=0.5)
    # and decay phases far too short for such half-lives end on the edge of the hard limit
    short = df[df["t"] < 60]
    prior, warned = _fit_quietly(short)
    assert prior.at_edge and any("two slowest points" in m and "100 years" in m for _, m in warned)
