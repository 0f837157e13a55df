"""Forecasts of future counts (decaylib.decay.counts): causality, the models, scoring, the bootstrap."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decaylib.decay import counts as P
from decaylib.decay.counts import forecast_counts as fc_from_decay
from decaylib.decay.evidence import EvidenceRules
from decaylib.evaluation import bootstrap as BS
from decaylib.evaluation import forecast as EF

METHODS = ["constant", "sar", "mle", "shrunk", "shrunk_floor"]


def toy_panel(n_pairs=120, n_days=60, seed=0, outage=(20,)):
    """Pairs that rise then decay (known curves), Poisson counts in an 'interest' column."""
    rng = np.random.default_rng(seed)
    rows = []
    peak = rng.integers(5, 40, n_pairs)
    lam = np.log(2) / np.exp(rng.uniform(np.log(3), np.log(40), n_pairs))
    level = np.exp(rng.normal(np.log(4.0), 0.5, n_pairs))
    for g in range(n_pairs):
        start = max(0, peak[g] - 5)
        d = np.arange(start, n_days)
        mu = np.where(d <= peak[g], level[g] * np.exp(-0.4 * (peak[g] - d)), level[g] * np.exp(-lam[g] * (d - peak[g])))
        rows.append(pd.DataFrame({"user_id": g // 3, "category": g % 3, "day": d, "interest": rng.poisson(mu).astype(float)}))
    p = pd.concat(rows, ignore_index=True)
    p["observed"] = ~p["day"].isin(outage)
    p.loc[~p["observed"], "interest"] = 0.0
    return p.sort_values(["user_id", "category", "day"], ignore_index=True)


@pytest.fixture(scope="module")
def panel():
    return toy_panel()


@pytest.mark.parametrize("method", [*METHODS, "lstm"])
def test_no_row_after_the_cutoff_is_used(panel, method):
    T = 40
    later = panel["day"] > T
    wild = panel.copy()
    wild.loc[later, "interest"] = np.random.default_rng(1).integers(0, 500, later.sum()).astype(float)
    wild.loc[later & (wild["day"] % 7 == 0), "observed"] = False
    extra = pd.DataFrame({"user_id": 999, "category": 0, "day": np.arange(T + 1, 60), "interest": 50.0, "observed": True})
    wild = pd.concat([wild, extra], ignore_index=True)
    kw = {}
    if method == "lstm":
        paths = panel[panel["day"] == T][["user_id", "category"]].merge(pd.DataFrame({"horizon": range(1, 8)}), how="cross")
        kw["forecasts"] = paths.assign(origin_day=T, interest_pred=1.5)
        wild_paths = pd.concat([kw["forecasts"], kw["forecasts"].assign(origin_day=T + 3, interest_pred=99.0)])
    h = 7 if method == "lstm" else 14
    a = P.forecast_counts(panel, T, h, method=method, **kw)
    if method == "lstm":
        kw["forecasts"] = wild_paths
    b = P.forecast_counts(wild, T, h, method=method, **kw)
    pd.testing.assert_frame_equal(a, b)
    assert (a["expected"] >= 0).all() and len(a) == a[["user_id", "category"]].drop_duplicates().shape[0]


def test_one_row_per_pair_with_an_event(panel):
    T = 30
    f = P.forecast_counts(panel, T, 14, method="constant")
    past = panel[(panel["day"] <= T) & (panel["interest"] > 0)][["user_id", "category"]].drop_duplicates()
    assert len(f) == len(past)
    assert list(f.columns) == ["user_id", "category", "expected", "reason", "method"]


def test_constant_is_the_recent_mean():
    p = pd.DataFrame({"user_id": 0, "category": 0, "day": np.arange(10), "interest": [0, 0, 4, 0, 2, 2, 0, 6, 0, 0.0],
                      "observed": [True] * 7 + [False] + [True] * 2})
    f = P.forecast_counts(p, 9, 5, method="constant", window=4)  # days 6..9, day 7 lost: (0 + 0 + 0) / 3
    assert f["expected"].iloc[0] == pytest.approx(0.0)
    f = P.forecast_counts(p, 6, 5, method="constant", window=4)  # days 3..6: (0+2+2+0)/4 * 5
    assert f["expected"].iloc[0] == pytest.approx(5.0)


def test_decay_models_recover_a_clean_decay():
    lam, A = 0.1, 50.0
    d = np.arange(40)
    p = pd.DataFrame({"user_id": 0, "category": 0, "day": d, "interest": A * np.exp(-lam * d), "observed": True})
    truth = (A * np.exp(-lam * np.arange(30, 44))).sum()
    for m in ("mle", "shrunk"):
        f = P.forecast_counts(p, 29, 14, method=m)
        assert f["expected"].iloc[0] == pytest.approx(truth, rel=0.15), m
        assert f.attrs["decay_start"].iloc[0] == 0


def test_shrunk_beats_the_baselines_on_decaying_pairs(panel):
    sc = P.rolling_origin(panel, [35, 42], 14, ["constant", "sar", "mle", "shrunk"])
    table = BS.paired_bootstrap(sc, "shrunk", n_boot=200, seed=0).set_index("method")
    assert table.loc["shrunk", "diff"] == 0
    for m in ("constant", "sar", "mle"):
        assert table.loc[m, "diff"] > 0, m


def test_sar_reports_its_tuning(panel):
    f = P.forecast_counts(panel, 40, 7, method="sar")
    assert f.attrs["half_life"] in P.SAR_GRID and f.attrs["scale"] > 0
    assert f.attrs["at_edge"] == (f.attrs["half_life"] in (P.SAR_GRID[0], P.SAR_GRID[-1]))
    edge = P.forecast_counts(panel, 40, 7, method="sar", sar_grid=(200.0, 400.0))
    assert edge.attrs["at_edge"]


def test_mle_falls_back_to_constant_with_a_reason():
    p = pd.DataFrame({"user_id": [0, 0, 1, 1, 1], "category": 0, "day": [0, 1, 0, 1, 2], "interest": [1.0, 0, 30, 20, 15],
                      "observed": True})
    f = P.forecast_counts(p, 2, 3, method="mle", rules=EvidenceRules(min_events=5, min_active_days=2))
    assert f["reason"].iloc[0].startswith("constant_fallback: ")
    const = P.forecast_counts(p, 2, 3, method="constant")
    assert f["expected"].iloc[0] == pytest.approx(const["expected"].iloc[0])


def test_score_by_hand():
    p = pd.DataFrame({"user_id": [0, 0, 0, 1, 1], "category": 0, "day": [0, 1, 2, 0, 2], "interest": [1.0, 2.0, 3.0, 1.0, 0.0],
                      "observed": True})
    f = pd.DataFrame({"user_id": [0, 1], "category": [0, 0], "expected": [2.0, 0.5]})
    s = EF.score_forecasts(f, p, 0, 2)
    y = np.array([5.0, 0.0])
    mu = np.array([2.0, 0.5])
    dev = 2 * (np.array([5 * np.log(5 / 2), 0.0]) - (y - mu))
    np.testing.assert_allclose(s.per_pair["deviance"], dev)
    assert s.summary["mae"] == pytest.approx((3 + 0.5) / 2)
    assert s.calibration["n"].sum() == 2
    # an outage day in the horizon: both sides leave it out
    p.loc[p["day"] == 2, "observed"] = False
    s2 = EF.score_forecasts(f, p, 0, 2)
    assert s2.summary["observed_share"] == 0.5
    np.testing.assert_allclose(s2.per_pair["expected"], mu / 2)


def test_bad_input(panel):
    with pytest.raises(ValueError, match="unknown method"):
        P.forecast_counts(panel, 30, 7, method="prophet")
    with pytest.raises(ValueError, match="missing column"):
        P.forecast_counts(panel.drop(columns="interest"), 30, 7, method="constant")
    with pytest.raises(ValueError, match="outside"):
        P.forecast_counts(panel, 500, 7, method="constant")
    with pytest.raises(ValueError, match="forecasts="):
        P.forecast_counts(panel, 30, 7, method="lstm")
    paths = pd.DataFrame({"user_id": [0], "category": [0], "origin_day": [30], "horizon": [1], "interest_pred": [1.0]})
    with pytest.raises(ValueError, match="horizon is 1"):
        P.forecast_counts(panel, 30, 7, method="lstm", forecasts=paths)
    with pytest.raises(ValueError, match="NaN"):
        P.forecast_counts(panel.assign(interest=np.nan), 30, 7, method="constant")
    with pytest.raises(ValueError, match="ends on day"):
        EF.score_forecasts(P.forecast_counts(panel, 55, 7, method="constant"), panel, 55, 7)
    with pytest.raises(TypeError, match="column"):
        P.forecast_counts(panel, 30, 7, method="constant", column=3)
    with pytest.raises(ValueError, match="needs at least 21 days.*sar_tune_days"):
        P.forecast_counts(panel, 8, 14, method="sar", sar_tune_days=20)


def test_sar_on_a_history_shorter_than_two_horizons_tunes_on_half_of_it():
    """A classic calibration / holdout split of equal halves: SAR tunes on the longest window the history allows
    and stretches its scale to the horizon."""
    rng = np.random.default_rng(0)
    rate = rng.gamma(2.0, 0.1, 400)
    y = rng.poisson(rate[:, None] * np.ones((1, 120)))
    u, d = np.nonzero(y)
    panel = pd.DataFrame({"user_id": u.astype(np.int64), "category": np.zeros(len(u), np.int64), "day": d.astype(np.int64),
                          "purchase": y[u, d].astype(float)})
    f = P.forecast_counts(panel, 59, 60, method="sar", column="purchase")
    assert f.attrs["tune_days"] == 30
    tuned = f.attrs["tuning"].set_index("half_life").loc[f.attrs["half_life"], "scale"]
    assert f.attrs["scale"] == pytest.approx(2 * tuned)
    short = P.forecast_counts(panel, 59, 30, method="sar", column="purchase")  # the same tuning, half the horizon
    np.testing.assert_allclose(f["expected"], 2 * short["expected"])


def test_other_columns_and_the_decay_alias(panel):
    p = panel.assign(purchase=(panel["interest"] > 3).astype(float))
    f = fc_from_decay(p, 40, 14, method="shrunk", column=["purchase"])
    assert f.attrs["column"] == ["purchase"] and np.isfinite(f["expected"]).all()


def test_rolling_cutoffs_fit_the_log(panel):
    h, cuts, note = P.rolling_cutoffs(panel, 14, 3)
    assert h == 14 and note == "" and len(cuts) == 3 and max(cuts) + 14 <= panel["day"].max()
    short = panel[panel["day"] < 10]
    h, cuts, note = P.rolling_cutoffs(short, 14)
    assert h < 14 and "spans 10 days" in note and max(cuts) + h <= 9
    from decaylib.checks import InsufficientDataError
    with pytest.raises(InsufficientDataError, match="too short"):
        P.rolling_cutoffs(panel[panel["day"] < 2], 14)


def test_shrunk_lambda_for_every_pair(panel):
    lam = P.shrunk_lambda_at(panel, 50, column="interest")
    f = P.forecast_counts(panel, 50, 7, method="shrunk")
    assert len(lam) == len(f) and set(lam["reason"]) <= {"ok", "prior_only"}
    # every pair gets a value; "prior_only" exactly where its events barely narrowed the population prior
    assert lam["lam_hat"].notna().all() and (lam["reason"] == "ok").mean() > 0.9
    np.testing.assert_array_equal(lam["reason"] == "prior_only", lam["data_weight"] < 0.2)
    np.testing.assert_array_equal(lam["t_decay"].to_numpy(), f.attrs["decay_start"].to_numpy())
    with pytest.raises(ValueError, match="none of the count columns"):
        P.shrunk_lambda_at(panel)  # the toy panel has no event-count columns


def test_by_decay_age_adds_up(panel):
    f = P.forecast_counts(panel, 45, 7, method="shrunk")
    s = EF.score_forecasts(f, panel, 45, 7)
    t = EF.by_decay_age(f, s)
    assert t["pairs"].sum() == len(f)
    assert t["expected"].sum() == pytest.approx(s.summary["predicted_total"])
    with pytest.raises(ValueError, match="decay_start"):
        EF.by_decay_age(pd.DataFrame(f.to_dict("list")), s)
