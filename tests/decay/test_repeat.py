"""Repeat buying (decaylib.decay.repeat): customer summaries, the BG/NBD fit and forecast, the holdout comparison."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from decaylib.decay import repeat as R
from decaylib.decay.counts import forecast_counts
from decaylib.evaluation import forecast as EF

TRUE = {"r": 0.75, "alpha": 20.0, "a": 0.8, "b": 2.5}


@pytest.fixture(scope="module")
def sim():
    T = np.random.default_rng(100).uniform(30, 300, 5000)
    return R.simulate_bgnbd(5000, TRUE, T, holdout=91, seed=0)


@pytest.fixture(scope="module")
def fitted(sim):
    return R.fit_bgnbd(sim["frequency"], sim["recency"], sim["T"])


# ------------------------------------------------------------------------------ data
def _purchases():
    # customer 1: days 0, 0 (twice the same day), 4, 9 | holdout 12, 12, 15; customer 2: day 7 | none;
    # customer 3: only in the holdout (day 11)
    return pd.DataFrame({"user_id": [1, 1, 1, 1, 1, 1, 1, 2, 3], "day": [0, 0, 4, 9, 12, 12, 15, 7, 11]})


def test_customer_summary_by_hand():
    s = R.customer_summary(_purchases(), calibration_end=10, holdout_end=15)
    assert s["user_id"].tolist() == [1, 2]
    assert s["frequency"].tolist() == [2, 0]  # distinct days 0, 4, 9 -> 2 repeats
    assert s["recency"].tolist() == [9.0, 0.0]
    assert s["T"].tolist() == [10.0, 3.0]
    assert s["holdout"].tolist() == [2, 0]  # days 12 and 15
    assert s.attrs["new_in_holdout"] == 1 and s.attrs["holdout_days"] == 5
    # holdout_end cuts the holdout; default is the last day
    assert R.customer_summary(_purchases(), 10, 14)["holdout"].tolist() == [1, 0]
    assert R.customer_summary(_purchases(), 10).attrs["holdout_end"] == 15


def test_customer_summary_from_a_daily_panel_column():
    panel = pd.DataFrame({"user_id": [1, 1, 1, 1], "day": [0, 3, 5, 12], "purchase": [1, 0, 2, 1]})
    s = R.customer_summary(panel, 8, column="purchase")
    assert (s["frequency"].tolist(), s["recency"].tolist(), s["T"].tolist(), s["holdout"].tolist()) == ([1], [5.0], [8.0], [1])


@pytest.mark.parametrize(
    "kw, err, match",
    [
        ({"data": [1, 2]}, TypeError, "DataFrame"),
        ({"data": pd.DataFrame({"user_id": [1]})}, ValueError, r"missing column\(s\) \['day'\]"),
        ({"data": pd.DataFrame({"user_id": [1], "day": [0.5]})}, TypeError, "day"),
        ({"calibration_end": 20}, ValueError, "holdout_end .* must be after calibration_end"),
        ({"calibration_end": -1}, ValueError, "no purchase on or before calibration_end=-1"),
        ({"calibration_end": 2.5}, TypeError, "calibration_end"),
        ({"column": "purchase"}, ValueError, "purchase"),
    ],
)
def test_customer_summary_bad_input(kw, err, match):
    args = {"data": _purchases(), "calibration_end": 10, **kw}
    with pytest.raises(err, match=match):
        R.customer_summary(**args)


def test_customer_panel_counts_purchase_days_and_feeds_forecast_counts():
    ts = pd.to_datetime(["2020-01-01 09:00", "2020-01-01 17:00", "2020-01-03 10:00", "2020-01-02 08:00", "2020-01-06 00:00"])
    ev = pd.DataFrame({"user_id": [5, 5, 5, 7, 7], "ts": ts, "event": ["purchase"] * 4 + ["view"]})
    p = R.customer_panel(ev)
    assert list(p.columns) == ["user_id", "category", "day", "purchase_day", "observed"]
    assert p[["user_id", "day"]].values.tolist() == [[5, 0], [5, 2], [7, 1]]  # same day once; the view dropped
    assert (p["purchase_day"] == 1).all() and (p["category"] == 0).all()
    f = forecast_counts(p, 1, 1, method="constant", column="purchase_day")
    assert f["user_id"].tolist() == [5, 7] and np.all(f["expected"] >= 0)
    with pytest.raises(ValueError, match="no purchase rows"):
        R.customer_panel(ev[ev["event"] == "view"])
    with pytest.raises(ValueError, match="user_id column and a ts"):
        R.customer_panel(ev.drop(columns="ts"))


def test_customer_summary_from_events_with_timestamps():
    ts = pd.to_datetime(["2020-01-01 09:00", "2020-01-01 17:00", "2020-01-03 10:00", "2020-01-08 08:00",
                         "2020-01-02 08:00", "2020-01-06 00:00"])
    ev = pd.DataFrame({"user_id": [5, 5, 5, 5, 7, 7], "ts": ts, "event": ["purchase"] * 5 + ["view"]})
    s = R.customer_summary(ev, 4)  # days 0, 0, 2 | holdout 7 for customer 5; day 1 (the view dropped) for 7
    assert s[["user_id", "frequency", "recency", "T", "holdout"]].values.tolist() == [[5, 1, 2, 4, 1], [7, 0, 0, 3, 0]]
    same = R.customer_summary(R.customer_panel(ev), 4)
    pd.testing.assert_frame_equal(s, same)
    shifted = R.customer_summary(ev, 5, origin="2019-12-31")  # day 0 one day earlier
    assert shifted["T"].tolist() == [4.0, 3.0] and shifted["holdout"].tolist() == [1, 0]
    with pytest.raises(ValueError, match="column='purchase' applies to a daily panel"):
        R.customer_summary(ev, 4, column="purchase")
    with pytest.raises(ValueError, match="origin applies to events with a ts"):
        R.customer_summary(_purchases(), 10, origin="2020-01-01")


# ------------------------------------------------------------------------------ BG/NBD
def test_loglik_of_one_customer_matches_the_formula_by_hand():
    r, alpha, a, b = 0.243, 4.414, 0.793, 2.426  # Fader, Hardie & Lee's CDNOW estimates
    x, tx, T = 2, 30.43, 38.86
    B = lambda p, q: math.gamma(p) * math.gamma(q) / math.gamma(p + q)  # noqa: E731
    g = math.gamma(r + x) * alpha**r / math.gamma(r)
    L = B(a, b + x) / B(a, b) * g / (alpha + T) ** (r + x) + B(a + 1, b + x - 1) / B(a, b) * g / (alpha + tx) ** (r + x)
    got = R.bgnbd_loglik((r, alpha, a, b), [x, 0], [tx, 0.0], [T, T])
    assert got[0] == pytest.approx(math.log(L), rel=1e-12)
    L0 = B(a, b) / B(a, b) * alpha**r / (alpha + T) ** r  # x = 0: alive for sure
    assert got[1] == pytest.approx(math.log(L0), rel=1e-12)


def test_fit_recovers_the_simulated_parameters(fitted, sim):
    assert fitted.converged and fitted.n_customers == len(sim)
    assert fitted.r == pytest.approx(TRUE["r"], rel=0.15)
    assert fitted.alpha == pytest.approx(TRUE["alpha"], rel=0.2)
    assert fitted.a == pytest.approx(TRUE["a"], rel=0.3)
    assert fitted.b == pytest.approx(TRUE["b"], rel=0.3)
    assert fitted.mean_dropout == pytest.approx(TRUE["a"] / (TRUE["a"] + TRUE["b"]), rel=0.1)
    assert fitted.loglik == pytest.approx(R.bgnbd_loglik(fitted, sim["frequency"], sim["recency"], sim["T"]).sum())
    assert fitted.loglik >= R.bgnbd_loglik(TRUE, sim["frequency"], sim["recency"], sim["T"]).sum()
    again = R.fit_bgnbd(sim["frequency"], sim["recency"], sim["T"])
    assert again == fitted  # deterministic


def test_conditional_expectation_is_calibrated_on_the_holdout(fitted, sim):
    obs = sim["holdout"].mean()
    for params in (TRUE, fitted):
        e = R.bgnbd_expected(params, 91, sim["frequency"], sim["recency"], sim["T"])
        assert e.mean() == pytest.approx(obs, rel=0.05)
    # calibrated by frequency too: low vs high calibration buyers
    e = R.bgnbd_expected(fitted, 91, sim["frequency"], sim["recency"], sim["T"])
    hi = sim["frequency"].to_numpy() >= 3
    assert e[hi].mean() == pytest.approx(sim["holdout"][hi].mean(), rel=0.1)
    assert e[~hi].mean() == pytest.approx(sim["holdout"][~hi].mean(), rel=0.1)


def test_expectation_edge_cases():
    # x = 0, T = 0: the unconditional E[X(t)] (FHL eq. 9), checked by simulation
    s = R.simulate_bgnbd(40_000, TRUE, 0.0, holdout=60, seed=3)
    e = R.bgnbd_expected(TRUE, 60, [0], [0.0], [0.0])[0]
    assert e == pytest.approx(s["holdout"].mean(), rel=0.04)
    assert R.bgnbd_expected(TRUE, 0, [3], [10.0], [20.0])[0] == pytest.approx(0.0, abs=1e-12)
    # a = 1 exactly (a removable 0/0), a tiny a (no dropout) and a long history stay finite
    for a in (1.0, 1e-8):
        v = R.bgnbd_expected({**TRUE, "a": a}, 91, [0, 5, 60], [0.0, 50.0, 280.0], [100.0, 200.0, 282.0])
        assert np.all(np.isfinite(v)) and np.all(v >= 0)
    near = R.bgnbd_expected({**TRUE, "a": 1.0 + 1e-3}, 91, [5], [50.0], [200.0])
    assert R.bgnbd_expected({**TRUE, "a": 1.0}, 91, [5], [50.0], [200.0]) == pytest.approx(near, rel=1e-2)
    # more recent buyers are more likely alive, and expected to buy more
    pa = R.bgnbd_p_alive(TRUE, [3, 3, 0], [10.0, 190.0, 0.0], [200.0, 200.0, 200.0])
    assert pa[0] < pa[1] and pa[2] == 1.0


@pytest.mark.parametrize(
    "args, err, match",
    [
        (((1, 1, 1), [1], [2.0], [1.0]), ValueError, "recency must be <= T"),
        (((1, 1, 1), [0], [2.0], [5.0]), ValueError, "frequency 0 must have recency 0"),
        (((1, 1, 1), [1.5], [2.0], [5.0]), ValueError, "whole numbers"),
        (((1, 1, 1), [-1], [0.0], [5.0]), ValueError, "frequency must be >= 0"),
        (((1, 1, 1), [1, 2], [2.0, 1.0, 3.0], [5.0]), ValueError, "same length"),
        (((1, 1, 1), [], [], []), ValueError, "empty"),
    ],
)
def test_bgnbd_bad_input(args, err, match):
    p, *data = args
    with pytest.raises(err, match=match):
        R.bgnbd_loglik((*p, 1.0), *data)


def test_bad_params():
    with pytest.raises(ValueError, match="positive"):
        R.bgnbd_expected((0.5, -1.0, 1.0, 1.0), 10, [1], [1.0], [2.0])
    with pytest.raises(ValueError, match="missing"):
        R.bgnbd_expected({"r": 1.0}, 10, [1], [1.0], [2.0])
    with pytest.raises(ValueError, match="t must be"):
        R.bgnbd_expected(TRUE, -1, [1], [1.0], [2.0])


# ------------------------------------------------------------------------------ comparison
def test_compare_on_holdout(fitted, sim):
    y = sim["holdout"].to_numpy()
    good = R.bgnbd_expected(fitted, 91, sim["frequency"], sim["recency"], sim["T"])
    flat = np.full(len(y), y.mean())
    tab = EF.compare_on_holdout({"bgnbd": good, "flat": flat, "same": good.copy()}, y, reference="bgnbd",
                               n_boot=200, seed=1)
    assert tab["model"].tolist() == ["bgnbd", "flat", "same"]
    row = tab.set_index("model")
    assert row.loc["flat", "diff"] > 0 and row.loc["flat", "diff_lo"] > 0 and row.loc["flat", "excludes_zero"]
    assert row.loc["same", "diff"] == 0 and not row.loc["same", "excludes_zero"]
    assert row.loc["bgnbd", "deviance"] == pytest.approx(EF.poisson_deviance(y, good).mean())
    assert row.loc["flat", "mae"] == pytest.approx(np.abs(y - y.mean()).mean())
    assert row.loc["flat", "predicted_total"] == pytest.approx(y.sum())
    assert (tab["observed_total"] == y.sum()).all()
    again = EF.compare_on_holdout({"bgnbd": good, "flat": flat, "same": good}, y, reference="bgnbd", n_boot=200, seed=1)
    pd.testing.assert_frame_equal(tab, again)
    # deviance by hand
    assert EF.poisson_deviance([0, 2], [0.5, 1.0]) == pytest.approx([1.0, 2 * (2 * math.log(2) - 1)])


def test_calibration_by_decile():
    y = np.arange(20, dtype=float)
    cal = EF.calibration_by_decile({"exact": y, "flat": np.full(20, 3.0)}, y, n_bins=4)
    ex = cal[cal["model"] == "exact"]
    assert ex["n"].tolist() == [5, 5, 5, 5]
    assert ex["mean_expected"].tolist() == ex["mean_observed"].tolist() == [2.0, 7.0, 12.0, 17.0]
    flat = cal[cal["model"] == "flat"]
    assert (flat["mean_expected"] == 3.0).all() and flat["mean_observed"].mean() == pytest.approx(y.mean())
    with pytest.raises(ValueError, match="3 values for 20"):
        EF.calibration_by_decile({"a": [1.0, 2.0, 3.0]}, y)


@pytest.mark.parametrize(
    "preds, obs, ref, match",
    [
        ({}, [1], "a", "non-empty dict"),
        ({"a": [1.0, 2.0]}, [1], "a", "2 values for 1 customers"),
        ({"a": [1.0]}, [1], "b", "reference 'b'"),
        ({"a": [-1.0]}, [1], "a", "finite and >= 0"),
        ({"a": [1.0]}, [-1], "a", "observed must hold"),
    ],
)
def test_compare_bad_input(preds, obs, ref, match):
    with pytest.raises((ValueError, TypeError), match=match):
        EF.compare_on_holdout(preds, obs, reference=ref, n_boot=20)
