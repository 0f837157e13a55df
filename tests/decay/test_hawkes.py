"""The pooled self-exciting model (decaylib.decay.hawkes) and its simulator mode."""

import warnings

import numpy as np
import pandas as pd
import pytest

from decaylib.checks import InsufficientDataError
from decaylib.data.synth import simulate_self_exciting
from decaylib.decay import hawkes as H
from decaylib.decay.counts import forecast_counts
from decaylib.evaluation.forecast import score_forecasts


@pytest.fixture(scope="module")
def sim():
    return simulate_self_exciting(300, 2, 100, seed=3)


@pytest.fixture(scope="module")
def fitted(sim):
    ev = H.event_arrays(sim.panel, types=sim.truth["types"])
    return ev, H.fit_hawkes(ev, satiation=False)


@pytest.mark.parametrize("sat", [False, True])
def test_gradient_matches_finite_differences(sim, sat):
    ev = H.event_arrays(sim.panel, types=sim.truth["types"])
    lay = H._Layout(ev.K, sat, ev.types.index("purchase") if sat else -1)
    x = H._start(ev, lay, 0.3) + np.random.default_rng(0).normal(0, 0.3, lay.size)
    _, g = H._objective(x, ev, lay)
    h = 1e-6
    num = np.array([(H._objective(x + e, ev, lay, False) - H._objective(x - e, ev, lay, False)) / (2 * h)
                    for e in np.eye(lay.size) * h])
    np.testing.assert_allclose(g, num, rtol=1e-4, atol=1e-3)


def test_fit_recovers_the_simulators_parameters(sim, fitted):
    ev, fit = fitted
    t = sim.truth
    lo, hi = fit.beta_interval
    assert lo < t["beta"] < hi, (fit.beta_interval, t["beta"])
    assert hi / lo < 1.3  # 30k events pin the decay down
    np.testing.assert_allclose(fit.mu, t["mu"], rtol=0.25)
    big = t["alpha"] >= 0.03
    np.testing.assert_allclose(fit.alpha[big], t["alpha"][big], rtol=0.3)
    assert np.all(fit.alpha[~big] < 0.02)
    assert fit.converged and not fit.at_edge
    assert "half-life" in fit.describe()
    assert fit.half_life == pytest.approx(np.log(2) / fit.beta)


def test_streaming_state_matches_the_batch_summaries(sim, fitted):
    ev, fit = fitted
    types = list(ev.types)
    G = ev.n_pairs
    code = pd.MultiIndex.from_frame(ev.keys).get_indexer(pd.MultiIndex.from_frame(sim.panel[["user_id", "category"]]))
    state = H.HawkesState(fit, n_pairs=G)
    for day in range(ev.cutoff + 1):
        rows = sim.panel["day"].to_numpy() == day
        y = np.zeros((G, len(types)))
        y[code[rows]] = sim.panel.loc[rows, types].to_numpy(dtype=float)
        state.step(y)
    Y, C, S, _, base = H._pair_summaries(ev, fit)
    np.testing.assert_allclose(state.Y, Y)
    np.testing.assert_allclose(state.base, base, rtol=1e-12)
    np.testing.assert_allclose(state.C, C, rtol=1e-9)
    np.testing.assert_allclose(state.S, S, rtol=1e-9, atol=1e-12)


def test_forecast_without_excitation_is_the_nbd_posterior_mean(sim):
    ev = H.event_arrays(sim.panel, types=sim.truth["types"])
    fit = H.fit_hawkes(ev, satiation=False, interval=None)
    fit.alpha = np.zeros_like(fit.alpha)
    fit.gamma = 0.0
    f = H.hawkes_forecast(ev, fit, 10)
    lik = ev.day > ev.first[ev.pair]
    Y = np.bincount(ev.pair, weights=np.where(lik, ev.y.sum(axis=1), 0.0), minlength=ev.n_pairs)
    fit.gamma = 0.0
    C = ev.n_days * fit.mu.sum()
    np.testing.assert_allclose(f["expected"], (fit.r + Y) / (fit.r + C) * fit.mu.sum() * 10, rtol=1e-10)
    assert set(f["reason"]) <= {"ok", "prior_only"}
    assert ((f["data_share"] < H.PRIOR_ONLY_SHARE) == (f["reason"] == "prior_only")).all()


def test_forecast_matches_monte_carlo_of_the_model():
    """The mean recursion is the expectation of the process it fits (θ known: r very large)."""
    sim = simulate_self_exciting(400, 1, 60, types=("view", "purchase"), mu=[0.1, 0.02],
                                 alpha=[[0.3, 0.05], [0.0, 0.2]], beta=0.5, r=1e6, seed=1)
    ev = H.event_arrays(sim.panel, types=("view", "purchase"))
    fit = H.fit_hawkes(ev, satiation=False, interval=None)
    fit.mu, fit.alpha, fit.beta, fit.r = np.array([0.1, 0.02]), np.array([[0.3, 0.05], [0.0, 0.2]]), 0.5, 1e12
    fit.gamma = 0.0
    _, _, S, _, _ = H._pair_summaries(ev, fit)
    exp = H.HawkesState(fit, S).expected(7, theta=np.ones(ev.n_pairs))
    rng = np.random.default_rng(0)
    tot = np.zeros_like(exp)
    n = 400
    for _ in range(n):
        s = S.copy()
        for _ in range(7):
            y = rng.poisson(fit.mu + s @ fit.alpha)
            tot += y
            s = np.exp(-0.5) * (s + y)
    np.testing.assert_allclose(tot.sum(axis=0) / n, exp.sum(axis=0), rtol=0.03)


def test_satiation_is_found_where_purchases_satiate():
    truth = dict(mu=[0.08, 0.03], alpha=[[0.2, 0.03], [0.0, 0.2]], satiation=[0.0, 1.0], satiation_decay=1.5)
    sim = simulate_self_exciting(500, 2, 120, types=("view", "purchase"), beta=0.4, r=50.0, seed=2, **truth)
    ev = H.event_arrays(sim.panel, types=("view", "purchase"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = H.fit_hawkes(ev, satiation=False, interval=None)
        sat = H.fit_hawkes(ev, satiation=True, interval=None)
    assert sat.loglik > plain.loglik + 5
    assert sat.satiation[1] > 0.5
    # never below the baseline: the satiated kernel is non-negative
    u = np.arange(1, 60)
    kern = sat.alpha[1, 1] * (np.exp(-sat.beta * u) - sat.satiation[1] * np.exp(-(sat.beta + sat.satiation_decay) * u))
    assert np.all(kern >= -1e-15)


def test_bad_input_is_refused_with_a_clear_message(sim):
    dup = pd.concat([sim.panel, sim.panel.iloc[:1]])
    with pytest.raises(ValueError, match="duplicated"):
        H.event_arrays(dup, types=("view", "cart", "purchase"))
    once = sim.panel.drop_duplicates(["user_id", "category"])
    with pytest.raises(InsufficientDataError, match="after its first day"):
        H.fit_hawkes(H.event_arrays(once, types=("view", "cart", "purchase")))
    with pytest.raises(ValueError, match="satiation"):
        H.fit_hawkes(sim.panel, types=("view", "cart"), satiation=True)
    with pytest.raises(ValueError, match="missing"):
        H.event_arrays(sim.panel, types=("click",))
    with pytest.raises(ValueError, match="explosive"):
        simulate_self_exciting(50, 1, 10, alpha=[[0.9, 0, 0], [0, 0, 0], [0, 0, 0]], beta=0.1)
    with pytest.raises(ValueError, match="interval"):
        H.fit_hawkes(sim.panel, interval="bootstrap")


def test_forecast_counts_hawkes_and_auto(sim):
    panel = sim.panel
    cut = int(panel["day"].max()) - 14
    cols = list(sim.truth["types"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hk = forecast_counts(panel, cut, 14, method="hawkes", column=cols)
        auto = forecast_counts(panel, cut, 14, method="auto", column=cols, auto_methods=["constant", "sar", "hawkes"])
    assert hk["method"].eq("hawkes").all() and np.isfinite(hk["expected"]).all()
    assert isinstance(hk.attrs["hawkes"], H.HawkesFit)
    table = auto.attrs["auto"]
    assert auto.attrs["picked"] == table.sort_values("mean_deviance")["method"].iloc[0]
    assert auto.attrs["margin"] >= 0
    assert max(auto.attrs["auto_cutoffs"]) + auto.attrs["auto_horizon"] <= cut  # learnt on days before the cutoff only
    # on its own process the self-exciting model wins the held-back days
    dev = {m: score_forecasts(forecast_counts(panel, cut, 14, method=m, column=cols), panel, cut, 14, column=cols)
           .summary["deviance"] for m in ("constant", "sar")}
    dev["hawkes"] = score_forecasts(hk, panel, cut, 14, column=cols).summary["deviance"]
    assert dev["hawkes"] < min(dev["constant"], dev["sar"])
    with pytest.raises(ValueError, match="auto_methods"):
        forecast_counts(panel, cut, 14, method="auto", column=cols, auto_methods=["auto"])


def test_continuous_time_fit_recovers_a_simulated_process():
    rng = np.random.default_rng(0)
    mu, a, b, T = 0.5, 0.4, 2.0, 2000.0
    # Ogata thinning for a univariate exponential-kernel Hawkes process
    t, times, lam_exc = 0.0, [], 0.0
    while True:
        bound = mu + lam_exc
        w = rng.exponential(1 / bound)
        lam_exc *= np.exp(-b * w)
        t += w
        if t > T:
            break
        if rng.uniform() * bound <= mu + lam_exc:
            times.append(t)
            lam_exc += a * b
    fit = H.fit_hawkes_continuous([np.array(times)], T)
    assert fit["mu"][0] == pytest.approx(mu, rel=0.2)
    assert fit["adjacency"][0, 0] == pytest.approx(a, rel=0.2)
    assert fit["decay"] == pytest.approx(b, rel=0.3)
