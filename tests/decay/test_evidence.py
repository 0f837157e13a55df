"""Tests of decaylib.decay.evidence: each evidence rule on small frames built here, and its use by the
estimators of decaylib.decay.rate, decaylib.decay.points and decaylib.recommend.strategies."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decaylib.data.panel import smooth_interest
from decaylib.decay import evidence as E
from decaylib.decay import points as X
from decaylib.decay import rate as D
from decaylib.decay.evidence import EvidenceRules
from decaylib.evaluation import detection as EDT

LN2 = np.log(2.0)
OFF = EvidenceRules.disabled()


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------
def panel_from_counts(series, smooth=None, category=3):
    """Daily panel (the preprocess columns) from per-pair view counts, one pair per series."""
    rows = []
    for p, c in enumerate(series):
        c = np.asarray(c, dtype=np.int64)
        rows.append(pd.DataFrame({
            "user_id": np.int64(p), "category": np.int64(category), "day": np.arange(len(c), dtype=np.int64),
            "view": c, "click": np.int64(0), "cart": np.int64(0), "purchase": np.int64(0), "impression": np.int64(0),
            "interest": c.astype(float), "observed": True,
        }))
    df = pd.concat(rows, ignore_index=True)
    df["interest_smooth"] = smooth_interest(df) if smooth is None else np.concatenate(smooth)
    return df


def decaying(n=40, top=30.0, lam=0.1, peak=8, seed=None):
    """A rise to ``peak`` and an exponential decay after it (rounded, or Poisson with a seed)."""
    d = np.arange(n)
    mu = top * np.where(d <= peak, 0.2 + 0.8 * d / peak, np.exp(-lam * (d - peak)))
    return np.round(mu) if seed is None else np.random.default_rng(seed).poisson(mu)


def single_view(n=30):
    c = np.zeros(n, dtype=np.int64)
    c[0] = 1
    return c


def start_of(panel, days):
    keys = panel[["user_id", "category"]].drop_duplicates().reset_index(drop=True)
    return keys.assign(t_peak=np.asarray(days, dtype=np.int64))


# ------------------------------------------------------------------------------------------
# the rules object and the reason table
# ------------------------------------------------------------------------------------------
def test_rules_are_frozen_validated_and_documented():
    r = EvidenceRules()
    assert r is not E.DEFAULT_RULES and r == E.DEFAULT_RULES
    with pytest.raises(Exception):
        r.min_events = 3  # frozen
    assert r.replace(min_events=20).min_events == 20 and r.min_events == 10
    for bad in ({"min_events": -1}, {"min_active_days": 1.5}, {"noise_k": np.nan}, {"interval_level": 1.0},
                {"constant_tol": 0.0}, {"peak_search": -1}):
        with pytest.raises(ValueError, match="EvidenceRules"):
            EvidenceRules(**bad)
    with pytest.raises(TypeError, match="EvidenceRules"):
        E.resolve_rules({"min_events": 3})
    assert set(r.as_dict()) >= {"min_events", "min_active_days", "noise_k", "interval_level"}
    for code in E.REASONS:
        assert f"``{code}``" in E.__doc__, code  # every code is in the module's table


# ------------------------------------------------------------------------------------------
# rule 1: decay-phase minimums
# ------------------------------------------------------------------------------------------
def test_single_view_pair_is_insufficient_data_for_every_estimator():
    panel = panel_from_counts([single_view(), decaying()])
    start = start_of(panel, [0, 8])
    phase = D.decay_phase_table(panel, start)
    tables = {
        "raw endpoints": D.two_point_lambda(panel, start),
        "smooth endpoints": D.two_point_lambda(panel, start, value_col="interest_smooth"),
        "raw consecutive": D.two_point_lambda(panel, start, method="consecutive"),
        "smooth consecutive": D.two_point_lambda(panel, start, value_col="interest_smooth", method="consecutive"),
        "log1p": D.fit_least_squares(phase, transform="log1p"),
        "mle": D.fit_poisson_mle(phase),
    }
    for name, t in tables.items():
        assert t.loc[0, "reason"] == "insufficient_data", name
        assert t.loc[0, ["lam_hat", *E.UNCERTAINTY_COLS]].isna().all(), name
        assert t.loc[1, "reason"] == "ok", name
        assert t.loc[0, "n_events" if "n_events" in t else "total_count"] == 1, name
    # the pitfall the rule removes: log1p least squares turns one view and a run of zero-filled
    # days into an "ok" half-life of hundreds of days
    old = D.fit_least_squares(phase, transform="log1p", rules=OFF)
    assert old.loc[0, "reason"] == "ok" and old.loc[0, "half_life"] > 100
    assert X.find_decay_point(panel).loc[0, "reason"] == "insufficient_data"
    assert X.early_warning_baseline(panel).loc[0, "reason"] == "insufficient_data"
    # the change-point baseline skips such pairs (it never runs Pelt on them) and says why
    rup = X.ruptures_baseline(panel)
    assert rup.loc[0, "reason"] == "insufficient_data" and np.isnan(rup.loc[0, "pen"])
    assert rup.loc[1, "reason"] == "ok"


def test_minimums_count_events_and_active_days_on_observed_days_only():
    c = np.zeros(20, dtype=np.int64)
    c[[0, 1]] = 6  # 12 events on 2 active days
    panel = panel_from_counts([c, c.copy()])
    panel.loc[(panel.user_id == 1) & (panel.day == 5), "view"] = 1  # a third active day ...
    panel["interest"] = panel["view"].astype(float)
    start = start_of(panel, [0, 0])
    t = D.fit_poisson_mle(D.decay_phase_table(panel, start))
    assert list(t["reason"]) == ["insufficient_data", "ok"]
    assert list(t["n_active_days"]) == [2, 3]
    panel.loc[(panel.user_id == 1) & (panel.day == 5), "observed"] = False  # ... but on an outage day
    t = D.fit_poisson_mle(D.decay_phase_table(panel, start))
    assert list(t["reason"]) == ["insufficient_data", "insufficient_data"]
    # thresholds come from the rules object
    assert D.fit_poisson_mle(D.decay_phase_table(panel, start), rules=EvidenceRules(min_active_days=2))["reason"].tolist() == ["ok", "ok"]


def test_forecast_lambdas_apply_the_observed_minimums_when_given_the_panel():
    panel = panel_from_counts([single_view(40), decaying(40)])
    start = start_of(panel, [0, 8])
    rows = []
    for u in (0, 1):  # the forecaster extrapolates a clean decay for both pairs
        for o in range(36):
            for h in (1, 2, 3):
                rows.append((u, 3, o, h, 9.0 * np.exp(-0.1 * (o + h))))
    fc = pd.DataFrame(rows, columns=["user_id", "category", "origin_day", "horizon", "interest_pred"])
    for fn in (D.lambda_from_forecasts, D.lambda_from_forecast_levels, D.lambda_from_forecast_fit):
        blind = fn(fc, start)
        seen = fn(fc, start, panel=panel)
        assert list(blind["reason"]) == ["ok", "ok"], fn.__name__
        assert list(seen["reason"]) == ["insufficient_data", "ok"], fn.__name__
        assert seen.loc[1, "lam_hat"] == pytest.approx(0.1, rel=1e-6), fn.__name__
        assert np.isfinite(seen.loc[1, "se_lam"]) and np.isnan(seen.loc[0, "se_lam"]), fn.__name__
        assert seen.loc[0, "n_events"] == 1 and seen.loc[1, "n_active_days"] >= 3
    with pytest.raises(ValueError, match="start"):
        D.lambda_from_forecasts(fc, panel=panel)


# ------------------------------------------------------------------------------------------
# rule 2: a decay point is a peak in the events
# ------------------------------------------------------------------------------------------
def test_smoothed_peak_on_an_empty_day_is_moved_to_the_busiest_day_nearby():
    # the centred smoothing's edge effect: its maximum is on day 1, which has no event
    c = np.array([1, 0, 0, 4, 4, 0, 0, 0, 0, 0, 0, 0])
    panel = panel_from_counts([c])
    assert panel["interest_smooth"].to_numpy().argmax() == 1
    blind = X.find_decay_point(panel, count_cols=None)  # no event counts: the old behaviour
    assert blind.loc[0, "reason"] == "ok" and blind.loc[0, "t_decay"] == 1.0
    only_move = EvidenceRules(peak_min_events=0, peak_min_active_days=0, noise_k=0)
    r = X.find_decay_point(panel, rules=only_move)
    # days 3 and 4 both have 4 events: the closer one wins
    assert r.loc[0, "reason"] == "ok" and r.loc[0, "t_decay"] == 3.0 and r.loc[0, "peak_shift"] == 2.0
    # with the default rules 9 events are not enough around a peak
    assert X.find_decay_point(panel).loc[0, "reason"] == "insufficient_data"


def test_smoothed_peak_with_no_event_within_the_search_window_is_rejected():
    c = np.zeros(41, dtype=np.int64)
    c[[13, 14, 15, 16, 24, 25, 26, 27]] = 5  # 40 events within ±7 days of day 20, none within ±3
    sm = 10.0 * np.exp(-0.05 * np.abs(np.arange(41) - 20.0))  # a smoothing peaking on day 20
    panel = panel_from_counts([c], smooth=[sm])
    rules = EvidenceRules(noise_k=0)
    r = X.find_decay_point(panel, rules=rules)
    assert r.loc[0, "reason"] == "peak_on_empty_day" and np.isnan(r.loc[0, "t_decay"])
    # a wider search finds day 16 (or 24): the earlier of two equally busy, equally close days
    r = X.find_decay_point(panel, rules=rules.replace(peak_search=4))
    assert r.loc[0, "reason"] == "ok" and r.loc[0, "t_decay"] == 16.0 and r.loc[0, "peak_shift"] == -4.0


def test_short_sparse_series_never_get_an_ok_decay_point_on_an_empty_day():
    rng = np.random.default_rng(0)
    series = []
    for _ in range(200):
        c = np.zeros(12, dtype=np.int64)
        k = rng.integers(2, 6)
        c[rng.choice(12, size=k, replace=False)] = rng.integers(1, 6, size=k)
        c[0] = max(c[0], 1)  # a pair's panel starts with its first event
        series.append(c)
    panel = panel_from_counts(series)

    def on_empty(res):
        ok = res[res["reason"] == "ok"].merge(panel, left_on=["user_id", "category", "t_decay"],
                                              right_on=["user_id", "category", "day"])
        return int((ok["view"] == 0).sum()), len(ok)

    bad_blind, ok_blind = on_empty(X.find_decay_point(panel, count_cols=None))
    assert bad_blind > ok_blind / 3  # the edge effect the rule is about
    assert on_empty(X.find_decay_point(panel, rules=EvidenceRules(peak_min_events=0, peak_min_active_days=0,
                                                                   noise_k=0)))[0] == 0
    assert on_empty(X.find_peaks_baseline(panel, rules=OFF))[0] == 0


def test_flat_poisson_series_is_not_a_peak():
    rng = np.random.default_rng(3)
    panel = panel_from_counts([rng.poisson(8.0, 60) for _ in range(40)])
    # with the relative prominence off, the shape rule alone accepts most flat series ...
    blind = X.find_decay_point(panel, prominence=0.0, rules=OFF)
    assert (blind["reason"] == "ok").mean() > 0.7
    # ... the Poisson noise rule does not
    r = X.find_decay_point(panel, prominence=0.0)
    assert (r["reason"] == "ok").mean() < 0.2
    assert (r["reason"] == "not_a_peak").mean() > 0.6
    z = r.loc[r["reason"] == "not_a_peak", ["rise_z", "fall_z"]].min(axis=1)
    assert (z < EvidenceRules().noise_k).all()


def test_clear_noisy_peaks_pass_every_detector_near_the_true_day():
    peaks = [12, 18, 25, 30, 35, 22]
    series = [decaying(50, top=25.0, lam=0.12, peak=p, seed=i) for i, p in enumerate(peaks)]
    panel = panel_from_counts(series)
    truth = pd.DataFrame({"user_id": np.arange(len(peaks)), "category": 3, "t_peak": np.asarray(peaks, float)})
    for det in (X.find_decay_point, X.find_peaks_baseline, X.ruptures_baseline):
        res = det(panel)
        m = EDT.decay_point_metrics(res, truth, margin=3)
        assert m["recall"] >= 5 / 6, (det.__name__, res)
        ok = res["reason"] == "ok"
        assert (res.loc[ok, ["events_near_peak", "rise_z", "fall_z"]].notna()).all().all()
        assert (res.loc[ok, "rise_z"] >= 2.5).all() and (res.loc[~ok, "t_decay"].isna()).all()


def test_detectors_take_the_counts_from_events_for_forecast_levels():
    panel = panel_from_counts([single_view(40), decaying(40)])
    levels = panel[["user_id", "category", "day"]].assign(interest_pred=np.tile(decaying(40).astype(float), 2), observed=True)
    blind = X.find_decay_point(levels, value_col="interest_pred")
    assert list(blind["reason"]) == ["ok", "ok"] and blind["events_near_peak"].isna().all()
    seen = X.find_decay_point(levels, value_col="interest_pred", events=panel)
    assert list(seen["reason"]) == ["insufficient_data", "ok"]
    with pytest.raises(KeyError, match="events"):
        X.find_decay_point(levels, value_col="interest_pred", events=panel.drop(columns="view"))


# ------------------------------------------------------------------------------------------
# rule 3: not a constant of the method
# ------------------------------------------------------------------------------------------
def test_constant_mask_flags_a_value_shared_by_many_pairs_with_different_data():
    rules = EvidenceRules()
    lam = np.r_[np.full(10, np.log(1.2)), np.linspace(0.01, 0.3, 30)]
    fp = np.arange(40, dtype=np.uint64)
    ok = np.ones(40, dtype=bool)
    flagged = E.constant_mask(lam, ok, fp, rules)
    assert flagged[:10].all() and not flagged[10:].any()
    # pairs with identical data may share their value: they count once
    assert not E.constant_mask(lam, ok, np.r_[np.zeros(10, np.uint64), fp[10:]], rules).any()
    # a handful of coincidences is not a constant, nor are values of pairs that are not ok
    assert not E.constant_mask(lam, ok, fp, rules.replace(constant_max_pairs=10)).any()
    assert not E.constant_mask(lam, np.r_[np.zeros(10, bool), ok[10:]], fp, rules).any()
    assert not E.constant_mask(lam, ok, fp, OFF).any()
    # values equal to within the tolerance count as the same value
    assert E.constant_mask(lam + np.r_[np.linspace(0, 1e-11, 10), np.zeros(30)], ok, fp, rules)[:10].all()
    # fingerprints: order- and position-free, value-sensitive
    codes = np.array([0, 0, 1, 1, 2, 2])
    f = E.fingerprint(codes, 3, np.array([0, 1, 1, 0, 0, 1.0]), np.array([5, 3, 3, 5, 5, 4.0]))
    assert f[0] == f[1] != f[2]


def test_smoothing_constant_of_the_consecutive_log_ratio_is_caught():
    # real short logs: events on the pair's first day or two, then the zero-fill to the end of a
    # 10-day span; the smoothed series' shrinking edge window gives the same ratios to every pair
    rng = np.random.default_rng(1)
    series = []
    for _ in range(80):
        c = np.zeros(rng.integers(5, 11), dtype=np.int64)  # the pair's panel starts at its first event
        c[0] = rng.integers(1, 6)
        if rng.random() < 0.5:
            c[1] = rng.integers(1, 6)
        series.append(c)
    panel = panel_from_counts(series)
    start = start_of(panel, np.zeros(80))
    kw = dict(value_col="interest_smooth", method="consecutive")
    # without any rule the method returns λ = ln 1.2 = 0.182 for a third of the pairs
    raw = D.two_point_lambda(panel, start, count_cols=None, rules=OFF, **kw)
    top = raw["lam_hat"].round(9).value_counts()
    assert (raw["reason"] == "ok").all() and top.index[0] == pytest.approx(np.log(1.2)) and top.iloc[0] >= 20
    # the data-driven check alone (no counts, no minimums) flags the shared values ...
    data_only = D.two_point_lambda(panel, start, count_cols=None,
                                   rules=EvidenceRules(min_events=0, min_active_days=0), **kw)
    shared = raw["lam_hat"].round(9).isin(top.index[top > 3])
    assert (data_only.loc[shared.to_numpy(), "reason"] == "method_constant").all()
    # ... and with the event counts the structural rule and the minimums leave nothing "ok"
    assert (D.two_point_lambda(panel, start, **kw)["reason"] != "ok").all()
    # a smoothed series without its counts cannot be checked
    with pytest.raises(KeyError, match="event-count"):
        D.two_point_lambda(panel.drop(columns=["view"]), start, **kw)


def test_consecutive_steps_use_only_days_with_events():
    c = np.array([20, 16, 0, 12, 10, 0, 8, 6, 5, 4, 4, 3, 0, 0, 0, 0])
    sm = np.linspace(20, 1, 16)  # a smoothing that is positive on the empty days
    panel = panel_from_counts([c], smooth=[sm])
    start = start_of(panel, [0])
    r = D.two_point_lambda(panel, start, value_col="interest_smooth", method="consecutive", rules=OFF)
    steps = []
    for d in range(1, 16):
        if c[d] > 0 and c[d - 1] > 0:
            steps.append(-np.log(sm[d] / sm[d - 1]))
    assert r.loc[0, "lam_hat"] == pytest.approx(np.median(steps))
    assert r.loc[0, "se_lam"] == pytest.approx(1.2533141373155001 * np.std(steps, ddof=1) / np.sqrt(len(steps)))


def test_least_squares_log_zero_slope_constant_is_flagged():
    # active days that all have one event: "log" least squares gives exactly 0 whatever the days
    rng = np.random.default_rng(4)
    series = []
    for _ in range(30):
        c = np.zeros(40, dtype=np.int64)
        c[np.sort(rng.choice(40, size=12, replace=False))] = 1
        series.append(c)
    series += [decaying(40, top=30.0, lam=0.05 + 0.01 * i, seed=i) for i in range(20)]
    panel = panel_from_counts(series)
    phase = D.decay_phase_table(panel, start_of(panel, np.zeros(50)))
    ls = D.fit_least_squares(phase)
    assert (ls.loc[:29, "reason"] == "method_constant").all()
    assert (ls.loc[30:, "reason"] == "ok").all()


# ------------------------------------------------------------------------------------------
# rule 4: uncertainty
# ------------------------------------------------------------------------------------------
def test_mle_profile_interval_covers_the_truth_about_90_percent():
    rng = np.random.default_rng(2024)
    R, n, lam, a = 400, 25, 0.1, np.log(6.0)
    t = np.arange(n, dtype=float)
    mu = np.exp(a - lam * t)  # ~55 events per replicate
    df = pd.DataFrame({"user_id": np.repeat(np.arange(R), n), "category": 0, "t": np.tile(t, R),
                       "count": rng.poisson(np.tile(mu, R)).astype(float), "observed": True})
    res = D.fit_poisson_mle(df)
    ok = res["reason"] == "ok"
    assert ok.mean() > 0.95
    r = res[ok]
    cover = ((r["lam_lo"] <= lam) & (lam <= r["lam_hi"])).mean()
    assert 0.85 <= cover <= 0.95
    # interval and half-life ordering, and the interval is asymmetric (not a Wald interval)
    assert (r["lam_lo"] < r["lam_hat"]).all() and (r["lam_hat"] < r["lam_hi"]).all()
    assert (r["half_life_lo"] <= r["half_life"]).all() and (r["half_life"] <= r["half_life_hi"]).all()
    np.testing.assert_allclose(r["half_life"], LN2 / r["lam_hat"])
    np.testing.assert_allclose(r["half_life_lo"], LN2 / r["lam_hi"])
    assert not np.allclose(r["lam_hi"] - r["lam_hat"], r["lam_hat"] - r["lam_lo"], rtol=1e-3)
    # the 90 % Wald half-width is 1.645 se; the profile interval has about the same width
    width = (r["lam_hi"] - r["lam_lo"]) / (2 * 1.6448536269514722 * r["se_lam"])
    assert width.median() == pytest.approx(1.0, abs=0.05)
    # a wider level gives a wider interval
    wide = D.fit_poisson_mle(df.iloc[: 20 * n], rules=EvidenceRules(interval_level=0.99))
    narrow = res.iloc[:20]
    assert ((wide["lam_hi"] - wide["lam_lo"]) > (narrow["lam_hi"] - narrow["lam_lo"])).all()


def test_profile_interval_solves_the_deviance_equation():
    t = np.arange(12, dtype=float)
    y = np.array([9, 7, 8, 5, 6, 3, 4, 2, 3, 1, 2, 1], dtype=float)
    df = pd.DataFrame({"user_id": 0, "category": 0, "t": t, "count": y, "observed": True})
    r = D.fit_poisson_mle(df).iloc[0]

    def profile(lam):
        a = np.log(y.sum() / np.exp(-lam * t).sum())
        m = np.exp(a - lam * t)
        return float((y * np.log(m) - m).sum())

    from scipy.stats import chi2

    top = profile(r["lam_hat"])
    for end in (r["lam_lo"], r["lam_hi"]):
        assert 2 * (top - profile(end)) == pytest.approx(chi2.ppf(0.9, 1), abs=1e-6)


def test_half_life_interval_edges():
    hl, lo, hi = E.half_life_interval(np.array([0.1, 0.05, -0.02, np.nan]), np.array([0.05, -0.01, -0.05, np.nan]),
                                      np.array([0.2, 0.1, -0.01, np.nan]))
    np.testing.assert_allclose([hl[0], lo[0], hi[0]], [LN2 / 0.1, LN2 / 0.2, LN2 / 0.05])
    assert np.isfinite(lo[1]) and np.isinf(hi[1]) and lo[1] <= hl[1]  # reaches λ <= 0: no upper end
    assert np.isinf(hl[2]) and np.isinf(lo[2]) and np.isinf(hi[2])  # no decay at all
    assert np.isnan([hl[3], lo[3], hi[3]]).all()
    lo_w, hi_w = E.wald_interval(0.1, 0.01, 0.9)
    assert (lo_w, hi_w) == pytest.approx((0.1 - 0.016448536, 0.1 + 0.016448536))


def test_least_squares_standard_error_matches_its_spread():
    rng = np.random.default_rng(8)
    R, n = 400, 30
    t = np.arange(n, dtype=float)
    mu = 200.0 * np.exp(-0.05 * t)  # large counts: log least squares is nearly unbiased here
    df = pd.DataFrame({"user_id": np.repeat(np.arange(R), n), "category": 0, "t": np.tile(t, R),
                       "count": rng.poisson(np.tile(mu, R)).astype(float), "observed": True})
    ls = D.fit_least_squares(df)
    assert (ls["reason"] == "ok").all()
    assert ls["se_lam"].median() == pytest.approx(ls["lam_hat"].std(), rel=0.15)
    cover = ((ls["lam_lo"] <= 0.05) & (0.05 <= ls["lam_hi"])).mean()
    assert 0.85 <= cover <= 0.95


def test_uncertainty_is_nan_exactly_when_not_ok():
    panel = panel_from_counts([single_view(), decaying(), decaying(seed=3), np.zeros(30, int) + (np.arange(30) == 5)])
    start = start_of(panel, [0, 8, 8, 0])
    phase = D.decay_phase_table(panel, start)
    tables = [D.two_point_lambda(panel, start, method=m, value_col=v)
              for m in ("endpoints", "consecutive") for v in ("interest", "interest_smooth")]
    tables += [D.fit_least_squares(phase), D.fit_least_squares(phase, transform="log1p"), D.fit_poisson_mle(phase)]
    from decaylib.recommend.strategies import estimate_lambda_causal

    tables.append(estimate_lambda_causal(panel, 29, window=20))
    for t in tables:
        ok = (t["reason"] == "ok").to_numpy()
        vals = t[["lam_hat", "se_lam", "lam_lo", "lam_hi", "half_life", "half_life_lo", "half_life_hi"]]
        assert vals[ok].notna().all().all() and vals[~ok].isna().all().all()
        assert ok.any() and not ok.all()
        assert set(t["reason"]) <= set(E.REASONS)


# ------------------------------------------------------------------------------------------
# rule 5: alerts
# ------------------------------------------------------------------------------------------
def test_alert_reasons():
    rising = np.round(np.linspace(2, 20, 40))
    few = np.zeros(40, dtype=np.int64)
    few[[10, 11]] = 5  # 10 events on two days: a fall after a "rise" but not enough evidence
    quiet = np.zeros(40, dtype=np.int64)
    quiet[::3] = 1  # 14 events on 14 days: enough events, but the level never reaches 1 a day
    panel = panel_from_counts([decaying(40), rising, few, quiet])
    res = X.early_warning_baseline(panel)
    assert list(res["reason"]) == ["ok", "no_alert", "insufficient_data", "below_min_level"]
    assert np.isfinite(res.loc[0, "alert_day"]) and res.loc[1:, "alert_day"].isna().all()
    # without the count columns the old rule arms the sparse pair
    blind = X.early_warning_baseline(panel.drop(columns=["view"]))
    assert blind.loc[2, "reason"] == "ok"
    # the model-based warning has the same reasons
    rows = []
    for u, x in enumerate([decaying(40), rising, few, quiet]):
        for o in range(33):
            for h in range(1, 8):
                rows.append((u, 3, o, h, float(x[o + h])))
    fc = pd.DataFrame(rows, columns=["user_id", "category", "origin_day", "horizon", "interest_pred"])
    m = X.early_warning(fc, panel)
    assert m.loc[0, "reason"] == "ok" and m.loc[2, "reason"] == "insufficient_data"
    assert set(m["reason"]) <= set(E.REASONS)


def test_alert_evidence_is_causal():
    rng = np.random.default_rng(5)
    series = [rng.poisson(decaying(60, top=t, peak=p)) for t, p in ((4.0, 20), (8.0, 25), (2.0, 30), (12.0, 15))]
    panel = panel_from_counts(series)
    base = X.early_warning_baseline(panel, margin=0.2)
    for d in (18, 30, 45):
        p2 = panel.copy()
        late = p2["day"] > d
        p2.loc[late, "view"] = rng.poisson(30.0, int(late.sum()))
        p2["interest"] = p2["view"].astype(float)
        after = X.early_warning_baseline(p2, margin=0.2)
        a0, a1 = base["alert_day"].to_numpy(), after["alert_day"].to_numpy()
        np.testing.assert_array_equal(a0 <= d, a1 <= d)
        np.testing.assert_array_equal(a0[a0 <= d], a1[a1 <= d])
    assert np.isfinite(base["alert_day"]).sum() >= 2


# ------------------------------------------------------------------------------------------
# summaries
# ------------------------------------------------------------------------------------------
def test_reason_counts():
    t = pd.DataFrame({"reason": ["insufficient_data", "ok", "insufficient_data", "not_a_peak", "mystery"]})
    rc = E.reason_counts(t)
    assert list(rc.columns) == ["reason", "pairs", "share", "meaning"]
    assert list(rc["reason"]) == ["ok", "insufficient_data", "mystery", "not_a_peak"]
    assert list(rc["pairs"]) == [1, 2, 1, 1] and rc["share"].sum() == pytest.approx(1.0)
    assert rc.loc[1, "meaning"] == E.REASONS["insufficient_data"] and rc.loc[2, "meaning"] == ""
    stacked = pd.concat([t.assign(method="a"), pd.DataFrame({"reason": ["ok", "ok"], "method": "b"})])
    rb = E.reason_counts(stacked, by="method")
    assert list(rb.columns) == ["method", "reason", "pairs", "share", "meaning"]
    assert rb.loc[rb.method == "b", "share"].tolist() == [1.0]
    assert rb.groupby("method")["share"].sum().tolist() == pytest.approx([1.0, 1.0])
    with pytest.raises(KeyError, match="reason"):
        E.reason_counts(pd.DataFrame({"x": [1]}))
    with pytest.raises(ValueError, match="missing"):
        E.reason_counts(pd.DataFrame({"reason": ["ok", None]}))


def test_reason_summaries_by_method():
    tables = {"a": pd.DataFrame({"reason": ["ok", "insufficient_data", "ok", "not_a_peak"]}),
              "b": pd.DataFrame({"reason": ["insufficient_data"] * 3}),
              "c": pd.DataFrame({"reason": pd.Series([], dtype=object)})}
    by = E.reasons_by_method(tables)
    assert by == {"a": {"ok": 2, "insufficient_data": 1, "not_a_peak": 1}, "b": {"insufficient_data": 3}, "c": {}}
    assert list(by["a"]) == ["ok", "insufficient_data", "not_a_peak"]  # ok first, then by count
    s = E.reason_summary(tables)
    assert list(s.index) == ["a", "b", "c"]
    assert list(s.columns) == ["pairs", "ok", "share_ok", "insufficient_data", "not_a_peak"]  # most frequent first
    assert s.loc["a", "share_ok"] == 0.5 and s.loc["b", "insufficient_data"] == 3 and np.isnan(s.loc["c", "share_ok"])
    assert E.reason_line(tables["a"]) == "2 of 4 pairs ok; the others: insufficient_data 1, not_a_peak 1"
    assert E.reason_line(tables["a"], what="alerts", top=1) == (
        "2 of 4 alerts ok; the others: insufficient_data 1 and 1 more reason(s)")
    assert E.reason_line(tables["b"]) == "0 of 3 pairs ok; the others: insufficient_data 3"
    with pytest.raises(KeyError, match="reason"):
        E.reason_summary({"a": pd.DataFrame({"x": [1]})})
    with pytest.raises(ValueError, match="non-empty"):
        E.reasons_by_method({})


def _clean_forecasts(users, n_origins=36, lam=0.1):
    rows = [(u, 3, o, h, 9.0 * np.exp(-lam * (o + h))) for u in users for o in range(n_origins) for h in (1, 2, 3)]
    return pd.DataFrame(rows, columns=["user_id", "category", "origin_day", "horizon", "interest_pred"])


def test_forecast_fit_has_a_row_for_every_pair_even_without_levels():
    panel = panel_from_counts([decaying(40), decaying(40)])
    start = start_of(panel, [8, 8])
    t = D.lambda_from_forecast_fit(_clean_forecasts([1]), start, panel=panel)  # no forecast for pair 0
    assert list(t["reason"]) == ["no_paths_in_decay_phase", "ok"]
    assert np.isnan(t.loc[0, "lam_hat"]) and t.loc[1, "lam_hat"] == pytest.approx(0.1, rel=1e-6)
    none = D.lambda_from_forecast_fit(_clean_forecasts([0, 1], n_origins=5), start)  # every level before the start
    assert list(none["reason"]) == ["no_paths_in_decay_phase"] * 2
    assert none["n_days"].dtype.kind == "i" and none["converged"].dtype == bool


def test_lambda_by_method_covers_every_pair_with_its_reason():
    rng = np.random.default_rng(3)
    panel = panel_from_counts([rng.poisson(decaying(50, top=25.0, lam=0.08, peak=10)), single_view(50),
                               rng.poisson(np.full(50, 4.0))])
    det = X.find_decay_point(panel)
    assert list(det["reason"]) == ["ok", "insufficient_data", det.loc[2, "reason"]] and det.loc[2, "reason"] != "ok"
    start = det.loc[det["reason"] == "ok", ["user_id", "category", "t_decay"]].rename(columns={"t_decay": "t_peak"})
    fc = _clean_forecasts([0], n_origins=48, lam=0.08)
    est = D.lambda_by_method(panel, start, fc, upstream=det)
    assert list(est) == list(D.LAMBDA_METHODS)
    for m, t in est.items():
        assert list(t["user_id"]) == [0, 1, 2], m
        assert list(t["reason"]) == ["ok", "insufficient_data", det.loc[2, "reason"]], m  # the decay point's reason
        assert {"lam_hat", *E.UNCERTAINTY_COLS, "n_decay_days"} <= set(t.columns), m
        assert t.loc[1:, ["lam_hat", *E.UNCERTAINTY_COLS]].isna().all().all(), m
        assert t.loc[0, "lam_lo"] < t.loc[0, "lam_hat"] < t.loc[0, "lam_hi"], m
        assert t.loc[0, "n_decay_days"] == 50 - start["t_peak"].iloc[0] and list(t.loc[1:, "n_decay_days"]) == [0, 0], m
    direct = D.fit_poisson_mle(D.decay_phase_table(panel, start))
    assert est["poisson_mle"].loc[0, "lam_hat"] == direct.loc[0, "lam_hat"]
    assert est["poisson_mle"]["converged"].dtype == bool and est["poisson_mle"]["n_days"].dtype.kind == "i"
    # without forecasts the three forecast methods are left out; an empty start still gives every pair a row
    none = D.lambda_by_method(panel, start.iloc[:0], upstream=det[det["reason"] != "ok"])
    assert list(none) == ["log_ratio_raw", "log_ratio_smooth", "least_squares", "poisson_mle"]
    for t in none.values():
        assert list(t["reason"]) == ["insufficient_data", det.loc[2, "reason"]]
        assert t["lam_hat"].isna().all() and (t["n_decay_days"] == 0).all()
    # a pair the upstream calls ok without a start has no decay phase
    assert D.lambda_by_method(panel, start.iloc[:0], upstream=det)["poisson_mle"].loc[0, "reason"] == "no_decay_phase"
    with pytest.raises(KeyError, match="reason"):
        D.lambda_by_method(panel, start, upstream=det.drop(columns="reason"))
