import numpy as np
import pandas as pd
import pytest

from decaylib.data.synth import EVENT_RATES, SimConfig, simulate, true_interest
from decaylib.schema import BEHAVIOURS, EVENT_TYPES


def test_shapes_and_types(small_sim):
    ev, truth, daily = small_sim.events, small_sim.truth, small_sim.truth_daily
    assert list(ev.columns) == ["user_id", "item_id", "category", "ts", "event"]
    assert ev["user_id"].dtype == "int64" and ev["item_id"].dtype == "int64" and ev["category"].dtype == "int64"
    assert pd.api.types.is_datetime64_any_dtype(ev["ts"])
    assert set(ev["event"].unique()) <= set(EVENT_TYPES)
    assert list(truth.columns) == ["user_id", "category", "t_start", "t_peak", "peak_interest", "lam", "half_life", "is_bot"]
    assert not truth.duplicated(["user_id", "category"]).any()
    real = truth[~truth["is_bot"]]
    assert (real["t_peak"] > real["t_start"]).all()
    np.testing.assert_allclose(real["half_life"], np.log(2) / real["lam"])
    assert real["half_life"].between(3, 60).all()
    for col in ["interest", *[f"expected_{e}" for e in EVENT_TYPES], "outage"]:
        assert col in daily.columns
    # one daily row per pair and day from t_start to the last day
    expected_rows = (small_sim.config.n_days - truth["t_start"]).sum()
    assert len(daily) == expected_rows
    assert ev["ts"].min() >= pd.Timestamp(small_sim.config.start_date)


def test_determinism():
    a = simulate(n_users=25, n_days=40, seed=3)
    b = simulate(n_users=25, n_days=40, seed=3)
    c = simulate(n_users=25, n_days=40, seed=4)
    pd.testing.assert_frame_equal(a.events, b.events)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    pd.testing.assert_frame_equal(a.truth_daily, b.truth_daily)
    assert not a.events.equals(c.events)


def test_expected_counts_proportional_to_interest(small_sim):
    d = small_sim.truth_daily
    for b in BEHAVIOURS:
        np.testing.assert_allclose(d[f"expected_{b}"], EVENT_RATES[b] * d["interest"])


def test_empirical_counts_match_expected(small_sim):
    """Totals per event type agree with the Poisson means within 4 standard deviations."""
    d = small_sim.truth_daily
    d = d[~d["outage"]]
    ev = small_sim.events.drop_duplicates()
    for e in EVENT_TYPES:
        mu = d[f"expected_{e}"].sum()
        n = (ev["event"] == e).sum()
        assert abs(n - mu) < 4 * np.sqrt(mu) + 2, (e, n, mu)
    # and per pair for views (chi-square-like check on pairs with enough mass)
    obs = ev[ev["event"] == "view"].groupby(["user_id", "category"]).size()
    exp = d.groupby(["user_id", "category"])["expected_view"].sum()
    both = pd.concat([obs.rename("o"), exp.rename("e")], axis=1).fillna(0)
    both = both[both["e"] > 30]
    z = (both["o"] - both["e"]) / np.sqrt(both["e"])
    assert abs(z.mean()) < 0.5 and 0.6 < z.std() < 1.5


def test_lambda_recovered_exactly_from_expected_counts(small_sim):
    truth = small_sim.truth[~small_sim.truth["is_bot"]].set_index(["user_id", "category"])
    d = small_sim.truth_daily.merge(truth[["t_peak"]].reset_index(), on=["user_id", "category"])
    d = d[d["day"] >= d["t_peak"]].sort_values(["user_id", "category", "day"])
    ratio = d.groupby(["user_id", "category"])["expected_view"].transform(lambda s: s.shift(-1) / s)
    lam_hat = -np.log(ratio)
    got = lam_hat.groupby([d["user_id"], d["category"]]).median().dropna()  # pairs peaking at the end have no ratio
    assert len(got) > 0.8 * len(truth)
    np.testing.assert_allclose(got.to_numpy(), truth.loc[got.index, "lam"].to_numpy(), rtol=1e-9)


def test_true_interest_shape():
    days = np.arange(0, 40)
    i = true_interest(days, t_start=5, t_peak=12, peak_interest=4.0, lam=0.1, rise_floor=0.1)
    assert (i[:5] == 0).all()
    assert i[5] == pytest.approx(0.4)
    assert i.argmax() == 12 and i[12] == pytest.approx(4.0)
    assert i[22] == pytest.approx(4.0 * np.exp(-1.0))


def test_dirt_is_injected_and_labelled(small_sim):
    s = small_sim
    assert s.n_duplicates > 0
    assert s.events.duplicated().sum() >= s.n_duplicates * 0.9
    assert len(s.bot_users) >= 2
    per_user = s.events.groupby("user_id").size()
    assert per_user[s.bot_users].min() > 3 * per_user.drop(s.bot_users).median()
    assert len(s.outage_days) == s.config.n_outage_days
    days = (s.events["ts"].dt.floor("D") - pd.Timestamp(s.config.start_date)).dt.days
    assert not days.isin(s.outage_days).any()
    assert s.truth_daily.loc[s.truth_daily["day"].isin(s.outage_days), "outage"].all()


def test_unknown_parameter_and_bad_values():
    with pytest.raises(TypeError, match="unknown simulation parameter.*n_user"):
        simulate(n_user=10)
    with pytest.raises(ValueError, match="n_users"):
        SimConfig(n_users=0)
    with pytest.raises(ValueError, match="n_days"):
        SimConfig(n_days=10)
    with pytest.raises(ValueError, match="half_life_range"):
        SimConfig(half_life_range=(10.0, 2.0))


def test_a_simulation_too_big_for_memory_is_refused_up_front(monkeypatch):
    """Issue 21: ``n_users 100000000`` gave a raw MemoryError after 8 s, not naming the parameter."""
    import time

    from decaylib.checks import MemoryBudgetError
    from decaylib.data import synth

    t0 = time.monotonic()
    with pytest.raises(MemoryBudgetError, match=r"^n_users=1,000,000,000,000 would need about [\d,.]+ GiB of memory to "
                       r"simulate .* GiB is available: use n_users <= [\d,]+ \(or fewer n_days or pairs_per_user\)"):
        simulate(n_users=10**12)
    assert time.monotonic() - t0 < 1
    monkeypatch.setattr(synth, "_available_memory", lambda: 8 * 1024**3)  # the same on an 8 GiB machine, any day
    with pytest.raises(MemoryBudgetError, match=r"^n_users=100,000,000 would need about 33,5\d\d\.\d GiB .* but 8\.0 GiB "
                       r"is available: use n_users <= 2\d,\d\d\d "):
        simulate(n_users=100_000_000)
    need, per_user = synth.simulation_memory(SimConfig())
    assert 150 * 2**20 < need < 600 * 2**20 and per_user == pytest.approx(1800)  # 600 users: ~340 MiB measured
