"""fit_hawkes_continuous against tick, a peer implementation of the same maximum likelihood.

tick (the ``peer`` extra: ``pip install -e ".[peer]"``) simulates a 2-type Hawkes process with an
exponential kernel and known baseline, adjacency and decay; both libraries then fit it by maximum
likelihood. Both maximise the same function (checked first: tick's ``score()`` is the
log-likelihood divided by the number of events, plus ``n_types * end_time / n_events``), so the two
estimates may differ only by where each optimiser stops; the log-likelihood of each at the other's
estimate says which stopped nearer the maximum.

What was found (seed 3, end time 2000, 3,289 events):

* decay fixed at the truth: ours and tick run to a tight tolerance (``tol=1e-10``) agree to
  1.0e-5 on every baseline and adjacency entry (tested at 1e-4); their log-likelihoods to 1.7e-7
  (tick's slightly higher: L-BFGS-B on finite-difference gradients stops a hair early). tick at its
  default tolerance (``tol=1e-5``, with the ``step=1e-3, max_iter=5000`` that avoids its "sum of
  the influence ... cannot be negative" error) stops early: 8e-4 away and 1.0e-3 of log-likelihood
  below ours.
* decay free: ours against tick's profile likelihood over the decay (one tick fit per decay,
  maximised over log decay): the decays agree to 4e-6 relative (tested at 1e-3), the other
  parameters to 5e-6 (tested at 1e-4), the log-likelihoods to 1e-7 (tick's higher); the decay is
  0.14% from the truth (sampling error).

Takes about 10 s, most of it in ours (a Python loop over the events per likelihood evaluation): ``slow``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import optimize

_REASON = 'tick is the peer library of this cross-check: pip install -e ".[peer]" (tick>=0.8, numpydoc, six)'
pytest.importorskip("tick", reason=_REASON)
pytest.importorskip("numpydoc", reason=_REASON)  # tick imports numpydoc and six without declaring them
pytest.importorskip("six", reason=_REASON)

from tick.hawkes import HawkesExpKern, SimuHawkesExpKernels  # noqa: E402

from decaylib.decay.hawkes import fit_hawkes_continuous  # noqa: E402

pytestmark = pytest.mark.slow

BASELINE = np.array([0.5, 0.3])
ADJACENCY = np.array([[0.3, 0.1], [0.2, 0.4]])  # [k, j]: effect of j on k (tick's convention); not symmetric
DECAY = 2.0
END_TIME, SEED = 2000.0, 3

#: Agreement of two maximisers of one likelihood (achieved: 1.0e-5 with the decay fixed, 5e-6 free).
PARAM_ATOL = 1e-4
#: Their log-likelihoods (achieved: 1.7e-7 fixed, 1e-7 free).
LOGLIK_ATOL = 1e-5
#: Relative agreement of the fitted decays (achieved: 4e-6).
DECAY_RTOL = 1e-3


@pytest.fixture(scope="module")
def events():
    sim = SimuHawkesExpKernels(adjacency=ADJACENCY, decays=DECAY, baseline=BASELINE, end_time=END_TIME,
                               seed=SEED, verbose=False)
    sim.simulate()
    ts = [np.asarray(t, dtype=float) for t in sim.timestamps]
    # tick's learners end the process at the last event (HawkesExpKern.fit takes no end time): so do we.
    end = max(float(t[-1]) for t in ts)
    return ts, end


def _loglik(ts, end, mu, adjacency, decay):
    """The log-likelihood written out, independently of both libraries (adjacency[k, j]: j excites k)."""
    t = np.concatenate(ts)
    k = np.concatenate([np.full(len(x), j) for j, x in enumerate(ts)])
    o = np.argsort(t, kind="stable")
    R = np.zeros(len(ts))  # R[j] = sum over earlier events of type j of decay * e^{-decay (t - t_i)}
    prev, s = 0.0, 0.0
    for ti, ki in zip(t[o], k[o]):
        R *= np.exp(-decay * (ti - prev))
        s += np.log(mu[ki] + adjacency[ki] @ R)
        R[ki] += decay
        prev = ti
    comp = mu.sum() * end + sum(adjacency[:, j].sum() * np.sum(-np.expm1(-decay * (end - x))) for j, x in enumerate(ts))
    return float(s - comp)


def _tick(ts, decay, **kw):
    """tick's likelihood fit without penalty (its default l2 penalty would move the estimate off the MLE)."""
    start = kw.pop("start", None)
    learner = HawkesExpKern(decay, gofit="likelihood", penalty="none", **kw)
    learner.fit(ts, start=start)
    return learner


def _tick_tight(ts, decay):
    # start=0.1: tick's default start (all ones) is explosive here and stops with "the sum of the influence
    # on someone cannot be negative"; from 0.1 its line-search AGD converges.
    return _tick(ts, decay, tol=1e-10, max_iter=10_000, start=0.1)


def _tick_loglik(learner, ts, end, mu=None, adjacency=None):
    """tick's score() turned back into the log-likelihood: score = (loglik + n_types * end) / n_events."""
    n = sum(len(x) for x in ts)
    return learner.score(baseline=mu, adjacency=adjacency) * n - len(ts) * end


@pytest.fixture(scope="module")
def fixed(events):
    ts, end = events
    return {"ours": fit_hawkes_continuous(ts, end, decay=DECAY), "tick": _tick_tight(ts, DECAY),
            "tick_default": _tick(ts, DECAY, step=1e-3, max_iter=5000)}


def test_tick_maximises_the_same_likelihood(events):
    ts, end = events
    learner = _tick_tight(ts, DECAY)
    other = np.array([[0.05, 0.35], [0.15, 0.2]])
    for mu, adj in [(BASELINE, ADJACENCY), (np.array([0.4, 0.35]), other)]:
        assert _tick_loglik(learner, ts, end, mu, adj) == pytest.approx(_loglik(ts, end, mu, adj, DECAY), rel=1e-10)
    # the convention is tested: the transpose is another likelihood
    assert abs(_loglik(ts, end, BASELINE, ADJACENCY.T, DECAY) - _loglik(ts, end, BASELINE, ADJACENCY, DECAY)) > 1.0


def test_fixed_decay_agrees_with_tick(events, fixed):
    ts, end = events
    ours, tk, tk0 = fixed["ours"], fixed["tick"], fixed["tick_default"]
    assert ours["converged"] and ours["decay"] == DECAY
    assert ours["mu"].shape == (2,) and ours["adjacency"].shape == (2, 2)
    np.testing.assert_allclose(ours["mu"], tk.baseline, rtol=0, atol=PARAM_ATOL)
    np.testing.assert_allclose(ours["adjacency"], tk.adjacency, rtol=0, atol=PARAM_ATOL)
    # the reported log-likelihood is the likelihood at the estimate
    assert ours["loglik"] == pytest.approx(_loglik(ts, end, ours["mu"], ours["adjacency"], DECAY), abs=1e-8)
    # each library's likelihood at both estimates: the two rank them alike, and they are within LOGLIK_ATOL
    ll = {name: {"ref": _loglik(ts, end, m, a, DECAY), "tick": _tick_loglik(tk, ts, end, m, a)}
          for name, m, a in [("ours", ours["mu"], ours["adjacency"]), ("tick", tk.baseline, tk.adjacency),
                             ("tick_default", tk0.baseline, tk0.adjacency)]}
    for v in ll.values():
        assert v["ref"] == pytest.approx(v["tick"], abs=1e-7)
    assert abs(ll["ours"]["ref"] - ll["tick"]["ref"]) < LOGLIK_ATOL
    # tick at its default tolerance stops early: lower likelihood than ours, farther from the maximum
    assert ll["tick_default"]["ref"] < ll["ours"]["ref"] - 1e-4
    assert np.abs(tk0.adjacency - tk.adjacency).max() > np.abs(ours["adjacency"] - tk.adjacency).max()
    # and both are near the truth (sampling error at 3,289 events, not an agreement tolerance)
    np.testing.assert_allclose(ours["mu"], BASELINE, atol=0.06)
    np.testing.assert_allclose(ours["adjacency"], ADJACENCY, atol=0.06)


def test_free_decay_agrees_with_ticks_profile_likelihood(events, fixed):
    ts, end = events
    ours = fit_hawkes_continuous(ts, end)
    assert ours["converged"]

    def neg_profile(log_decay):
        b = float(np.exp(log_decay))
        return -_tick_loglik(_tick_tight(ts, b), ts, end)

    # tick fits one decay at a time: a coarse grid of its profile likelihood, then Brent's bounded search
    grid = np.log(DECAY) + np.log(2.0) * np.arange(-3, 4)
    i = int(np.argmin([neg_profile(g) for g in grid]))
    assert 0 < i < len(grid) - 1
    res = optimize.minimize_scalar(neg_profile, bounds=(grid[i - 1], grid[i + 1]), method="bounded",
                                   options={"xatol": 1e-6})
    tick_decay = float(np.exp(res.x))
    tk = _tick_tight(ts, tick_decay)
    assert ours["decay"] == pytest.approx(tick_decay, rel=DECAY_RTOL)
    np.testing.assert_allclose(ours["mu"], tk.baseline, rtol=0, atol=PARAM_ATOL)
    np.testing.assert_allclose(ours["adjacency"], tk.adjacency, rtol=0, atol=PARAM_ATOL)
    assert abs(ours["loglik"] - (-res.fun)) < LOGLIK_ATOL
    assert ours["loglik"] >= fixed["ours"]["loglik"] - 1e-6  # freeing the decay cannot lose likelihood
    assert ours["decay"] == pytest.approx(DECAY, rel=0.1)  # the truth, within sampling error
