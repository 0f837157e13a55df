"""λ from sufficient statistics (decaylib.decay.stream): identical to the batch MLE, streaming = batch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decaylib.decay import rate as D
from decaylib.decay import stream as ST
from decaylib.decay.evidence import EvidenceRules
from tests.panels import make_log


@pytest.mark.parametrize("rules", [None, EvidenceRules(min_events=1, min_active_days=1)])
def test_same_table_as_the_batch_mle(rules):
    sparse, starts, phase, outages, last = make_log()
    batch = D.fit_poisson_mle(phase, rules=rules)
    st = ST.phase_stats(sparse, starts, t_last=last, outage_days=outages)
    fast = ST.lambda_from_stats(st, outages, rules=rules)
    assert fast["reason"].tolist() == batch["reason"].tolist()
    assert (batch["reason"] == "ok").sum() > 100
    if rules is None:
        assert (batch["reason"] != "ok").any()
    away = ~(np.abs(batch["lam_hat"]) < 1e-12)  # at λ = 0 the half-life is inf in one, 1e17 in the other
    np.testing.assert_allclose(fast["half_life"][away], batch["half_life"][away], rtol=1e-9, equal_nan=True)
    for col in ("lam_hat", "log_a", "se_lam"):
        np.testing.assert_allclose(fast[col], batch[col], rtol=1e-9, atol=1e-12, equal_nan=True, err_msg=col)
    for col in ("lam_lo", "lam_hi"):
        np.testing.assert_allclose(fast[col], batch[col], rtol=1e-6, atol=1e-9, equal_nan=True, err_msg=col)
    for col in ("n_days", "total_count", "n_active_days"):
        np.testing.assert_array_equal(fast[col].to_numpy(), batch[col].to_numpy())


def test_streaming_equals_batch_from_the_peak():
    sparse, _, _, outages, last = make_log(n_pairs=200, seed=3)
    codes = sparse["user_id"].to_numpy()
    state = ST.DecayState()
    for day in range(last + 1):
        sel = sparse["day"].to_numpy() == day
        state.update(day, codes[sel], sparse["count"].to_numpy()[sel], outage=day in outages)
    streamed = state.lam()
    one = sparse.assign(category=0)
    starts = ST.peak_starts(one)
    batch = ST.lambda_from_stats(ST.phase_stats(one, starts, t_last=last, outage_days=outages), outages)
    pd.testing.assert_frame_equal(streamed, batch)
    # the state restarts a phase at a new maximum
    s = ST.DecayState()
    s.update(0, [5], [2.0])
    s.update(1, [5], [1.0])
    s.update(2, [5], [4.0])
    s.update(3, [5], [1.0])
    row = s.stats().iloc[0]
    assert (row["t0"], row["Y"], row["S"], row["active_days"]) == (2, 5.0, 1.0, 2)


def test_the_moments_are_right_in_every_regime():
    for x in (-30.0, -1.0, -1e-2, -1e-5, 0.0, 1e-7, 1e-3, 0.5, 40.0):
        for n in (1, 2, 7, 365):
            t = np.arange(n, dtype=float)
            w = np.exp(x * t - (x * t).max())
            mean = (w * t).sum() / w.sum()
            var = (w * t * t).sum() / w.sum() - mean ** 2
            ls, m, v = ST._full_moments(np.array([x]), np.array([float(n)]))
            assert ls[0] == pytest.approx(np.log(w.sum()) + (x * t).max(), rel=1e-10, abs=1e-10), (x, n)
            assert m[0] == pytest.approx(mean, rel=1e-8, abs=1e-8), (x, n)
            assert v[0] == pytest.approx(var, rel=1e-6, abs=1e-8), (x, n)


def test_bad_input():
    sparse, starts, _, _, last = make_log(n_pairs=5)
    with pytest.raises(ValueError, match="missing"):
        ST.phase_stats(sparse.drop(columns="count"), starts)
    with pytest.raises(ValueError, match="repeated"):
        ST.phase_stats(pd.concat([sparse, sparse.head(1)]), starts)
    with pytest.raises(ValueError, match="missing column"):
        ST.lambda_from_stats(pd.DataFrame({"user_id": [1]}))
    s = ST.DecayState()
    s.update(3, [0], [1.0])
    with pytest.raises(ValueError, match="increase"):
        s.update(3, [0], [1.0])
    with pytest.raises(ValueError, match="no event"):
        ST.DecayState().lam()


def test_replay_equals_the_batch_from_the_peak():
    sparse, _, _, outages, last = make_log(n_pairs=150, seed=5)
    state = ST.DecayState.replay(sparse, outage_days=outages, last_day=last)
    batch = ST.lambda_from_stats(ST.phase_stats(sparse, ST.peak_starts(sparse[~sparse["day"].isin(outages)]), t_last=last,
                                                outage_days=outages), outages)
    pd.testing.assert_frame_equal(state.lam(), batch)
