"""Tests of decaylib.decay.points: decay points, early warning, metrics and evaluation sets."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decaylib.decay import points as X
from decaylib.evaluation import detection as EDT

N_DAYS = 80


# ------------------------------------------------------------------------------------------
# synthetic series
# ------------------------------------------------------------------------------------------
def tent(peak, n=N_DAYS, up=0.15, down=0.08, top=40.0):
    """A tent in log space: log I rises linearly to ``peak`` and falls linearly after it."""
    d = np.arange(n, dtype=float)
    return top * np.exp(np.where(d <= peak, -up * (peak - d), -down * (d - peak)))


def smooth(x):
    """The panel's centered moving median(3) then mean(7)."""
    s = pd.Series(x).rolling(3, center=True, min_periods=1).median()
    return s.rolling(7, center=True, min_periods=1).mean().to_numpy()


def make_panel(series, raw=None, observed=None, first_day=0):
    rows = []
    for p, x in enumerate(series):
        n = len(x)
        rows.append(
            pd.DataFrame(
                {
                    "user_id": np.int64(p // 2),
                    "category": np.int64(p % 2),
                    "day": np.arange(first_day, first_day + n, dtype=np.int64),
                    "interest": x if raw is None else raw[p],
                    "interest_smooth": x if raw is not None else smooth(x),
                    "observed": True if observed is None else observed[p],
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def pair_truth(peaks):
    return pd.DataFrame(
        {"user_id": np.arange(len(peaks)) // 2, "category": np.arange(len(peaks)) % 2, "t_peak": np.asarray(peaks, float)}
    )


DETECTORS = [X.find_decay_point, X.find_peaks_baseline, X.ruptures_baseline]


# ------------------------------------------------------------------------------------------
# retrospective detectors
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("detector", DETECTORS)
def test_tent_peak_found_and_monotone_decay_has_none(detector):
    peaks = [20, 35, 50]
    series = [tent(p) for p in peaks] + [40.0 * np.exp(-0.05 * np.arange(N_DAYS))]
    panel = make_panel(series, raw=series)  # noise-free: no smoothing needed
    res = detector(panel)
    assert len(res) == 4
    got = res["t_decay"].to_numpy()
    tol = 1 if detector is X.ruptures_baseline else 0
    np.testing.assert_allclose(got[:3], peaks, atol=tol)
    assert np.isnan(got[3])
    assert res["reason"].iloc[3] != "ok" and (res["reason"].iloc[:3] == "ok").all()


@pytest.mark.parametrize("detector", DETECTORS)
def test_rows_order_does_not_matter(detector):
    series = [tent(25), tent(45)]
    panel = make_panel(series, raw=series)
    a = detector(panel)
    b = detector(panel.sample(frac=1.0, random_state=3))
    pd.testing.assert_frame_equal(a, b)


def test_noisy_tents_detected_near_true_peak():
    rng = np.random.default_rng(5)
    peaks = rng.integers(20, 60, 20)
    raw = [rng.poisson(tent(p, top=60.0)).astype(float) for p in peaks]
    panel = make_panel([smooth(x) for x in raw], raw=raw)
    truth = pair_truth(peaks)
    for detector in DETECTORS:
        m = EDT.decay_point_metrics(detector(panel), truth, margin=3)
        assert m["recall"] >= 0.8, (detector.__name__, m)
        assert m["mae_days"] <= 2.0


def test_noise_does_not_create_false_peaks():
    rng = np.random.default_rng(11)
    n_pairs = 40
    flat = [rng.poisson(60.0, N_DAYS).astype(float) for _ in range(n_pairs // 2)]
    decay = [rng.poisson(60.0 * np.exp(-0.04 * np.arange(N_DAYS))).astype(float) for _ in range(n_pairs // 2)]
    raw = flat + decay
    panel = make_panel([smooth(x) for x in raw], raw=raw)
    res = X.find_decay_point(panel)
    assert res["t_decay"].isna().all()
    assert X.find_peaks_baseline(panel)["t_decay"].isna().mean() >= 0.9
    # low counts: a relative rule alone is fooled; the noise-aware threshold is not (as often)
    low = [rng.poisson(5.0, N_DAYS).astype(float) for _ in range(60)]
    lp = make_panel([smooth(x) for x in low], raw=low)
    fp_rel = X.find_decay_point(lp)["t_decay"].notna().mean()
    fp_noise = X.find_decay_point(lp, noise_col="interest")["t_decay"].notna().mean()
    assert fp_noise < 0.3 and fp_noise < fp_rel


def test_outage_days_are_ignored():
    x = np.concatenate([np.linspace(5, 40, 30), np.full(15, 38.0)])  # rises, then flat: no decay
    x[35:37] = 0.0  # logging outage
    obs = np.ones(x.size, bool)
    obs[35:37] = False
    panel = make_panel([x], raw=[x], observed=[obs])
    assert np.isnan(X.find_decay_point(panel)["t_decay"].iloc[0])
    assert X.find_decay_point(panel, observed_col=None)["t_decay"].iloc[0] == 29.0  # reads the zeros as a fall


def test_prominence_rule_and_input_errors():
    x = tent(30, up=0.01, down=0.01)  # rises and falls by only ~26 %
    panel = make_panel([x], raw=[x])
    assert np.isnan(X.find_decay_point(panel, prominence=0.3)["t_decay"].iloc[0])
    assert X.find_decay_point(panel, prominence=0.2)["t_decay"].iloc[0] == 30
    assert np.isnan(X.find_decay_point(panel, prominence=0.2, min_prominence=100.0)["t_decay"].iloc[0])
    with pytest.raises(ValueError, match="prominence"):
        X.find_decay_point(panel, prominence=1.5)
    with pytest.raises(KeyError, match="interest_smooth"):
        X.find_decay_point(panel.drop(columns="interest_smooth"))
    with pytest.raises(ValueError, match="empty"):
        X.find_decay_point(panel.iloc[:0])
    with pytest.raises(ValueError, match="duplicate"):
        X.find_decay_point(pd.concat([panel, panel.iloc[:1]]))


def test_fast_clinear_cost_equals_ruptures_clinear():
    from ruptures.costs import CostCLinear

    rng = np.random.default_rng(0)
    x = rng.normal(size=60).cumsum()
    ref = CostCLinear().fit(x)
    fast = X._clinear_cumsum_cost()().fit(x)
    for start, end in [(0, 3), (0, 60), (1, 10), (5, 9), (17, 50), (57, 60)]:
        assert fast.error(start, end) == pytest.approx(ref.error(start, end), rel=1e-9, abs=1e-9)
    series = [tent(p) + rng.normal(0, 1, N_DAYS) for p in (25, 40, 55)]
    panel = make_panel(series, raw=series)
    a = X.ruptures_baseline(panel, fast=True)
    b = X.ruptures_baseline(panel, fast=False)
    np.testing.assert_array_equal(a["t_decay"], b["t_decay"])


# ------------------------------------------------------------------------------------------
# early warning
# ------------------------------------------------------------------------------------------
def perfect_forecasts(truth_series, H=7):
    rows = []
    for p, x in enumerate(truth_series):
        o = np.arange(len(x) - H)
        h = np.arange(1, H + 1)
        oo, hh = np.repeat(o, H), np.tile(h, o.size)
        rows.append(
            pd.DataFrame(
                {"user_id": np.int64(p // 2), "category": np.int64(p % 2), "origin_day": oo, "horizon": hh, "interest_pred": x[oo + hh]}
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_early_warning_timing_on_clean_tents():
    peaks = [25, 40, 55]
    series = [tent(p, down=0.05) for p in peaks]
    hist = make_panel(series, raw=series)
    truth = pair_truth(peaks)
    fc = perfect_forecasts(series)
    base = X.early_warning_baseline(hist)
    lvl = X.early_warning(fc, hist, rule="mean_below_level")
    turn = X.early_warning(fc, hist, rule="path_turns", margin=0.2)
    d_base = base["alert_day"].to_numpy() - peaks
    d_lvl = lvl["alert_day"].to_numpy() - peaks
    d_turn = turn["alert_day"].to_numpy() - peaks
    assert np.all(d_base > 0)  # a trailing mean can only see the fall after it happened
    assert np.all((d_lvl >= 0) & (d_lvl < d_base))  # the forecast sees it sooner
    assert np.all(d_turn <= 0) and np.all(d_turn >= -7)  # the path turns within the horizon
    m = EDT.alert_metrics(turn, truth)
    assert m["share_never"] == 0.0 and m["median_delay"] <= 0


def test_early_warning_no_alert_without_fall_and_persistence():
    rising = np.linspace(1, 50, N_DAYS)
    series = [rising, tent(40)]
    hist = make_panel(series, raw=series)
    fc = perfect_forecasts(series)
    r1 = X.early_warning(fc, hist)
    assert np.isnan(r1["alert_day"].iloc[0]) and not np.isnan(r1["alert_day"].iloc[1])
    r3 = X.early_warning(fc, hist, persistence=3)
    assert r3["alert_day"].iloc[1] == r1["alert_day"].iloc[1] + 2
    b1 = X.early_warning_baseline(hist)
    assert np.isnan(b1["alert_day"].iloc[0])
    # a series that never reaches min_level is never armed
    assert np.isnan(X.early_warning_baseline(hist, min_level=1e6)["alert_day"]).all()
    with pytest.raises(ValueError, match="centered"):
        X.early_warning_baseline(hist, value_col="interest_smooth")
    with pytest.raises(ValueError, match="rule"):
        X.early_warning(fc, hist, rule="oracle")
    with pytest.raises(ValueError, match="contiguous"):
        X.early_warning_baseline(hist[hist["day"] != 10])


def test_alerts_are_causal():
    rng = np.random.default_rng(2)
    peaks = rng.integers(15, 60, 16)
    series = [rng.poisson(tent(p, top=30.0)).astype(float) for p in peaks]
    hist = make_panel(series, raw=series)
    fc = perfect_forecasts([tent(p, top=30.0) for p in peaks])
    fc["interest_pred"] *= rng.uniform(0.8, 1.2, len(fc))
    base = X.early_warning_baseline(hist, margin=0.15)
    model = X.early_warning(fc, hist, margin=0.1)
    for d in (20, 35, 50):
        h2 = hist.copy()
        late = h2["day"] > d
        h2.loc[late, "interest"] = rng.poisson(80.0, int(late.sum())).astype(float)  # a different future
        f2 = fc.copy()
        late_f = f2["origin_day"] > d
        f2.loc[late_f, "interest_pred"] = rng.uniform(0.1, 100.0, int(late_f.sum()))
        for before, after in ((base, X.early_warning_baseline(h2, margin=0.15)), (model, X.early_warning(f2, h2, margin=0.1))):
            a0, a1 = before["alert_day"].to_numpy(), after["alert_day"].to_numpy()
            hit0, hit1 = a0 <= d, a1 <= d  # NaN compares False
            np.testing.assert_array_equal(hit0, hit1)
            np.testing.assert_array_equal(a0[hit0], a1[hit1])
    assert np.isfinite(base["alert_day"]).sum() >= 12  # the test exercises real alerts


# ------------------------------------------------------------------------------------------
# metrics
# ------------------------------------------------------------------------------------------
def test_decay_point_metrics_hand_computed():
    truth = pd.DataFrame({"user_id": [1, 2, 3, 4, 5], "category": 0, "t_peak": [10.0, 20.0, 30.0, np.nan, 50.0]})
    det = pd.DataFrame({"user_id": [1, 2, 3, 4, 9], "category": 0, "t_decay": [11.0, 25.0, np.nan, 5.0, 3.0]})
    m = EDT.decay_point_metrics(det, truth, margin=3)
    # pair 1 matched (err 1); pair 2 too far (FP + FN); pair 3 missed; pair 4 has no peak (FP);
    # pair 5 absent from det (missed); pair 9 not in the evaluation set (ignored)
    assert m["n_pairs"] == 5 and m["n_true"] == 4 and m["n_detected"] == 3 and m["n_matched"] == 1
    assert m["precision"] == pytest.approx(1 / 3)
    assert m["recall"] == pytest.approx(1 / 4)
    assert m["f1"] == pytest.approx(2 * (1 / 3) * (1 / 4) / (1 / 3 + 1 / 4))
    assert m["mae_days"] == pytest.approx(1.0)
    m5 = EDT.decay_point_metrics(det, truth, margin=5)
    assert m5["n_matched"] == 2 and m5["mae_days"] == pytest.approx(3.0)
    s = det.set_index(["user_id", "category"])["t_decay"]
    assert EDT.decay_point_metrics(s, truth) == m


def test_alert_metrics_hand_computed():
    truth = pd.DataFrame({"user_id": [1, 2, 3, 4], "category": 0, "t_peak": [10, 20, 30, 40]})
    alerts = pd.DataFrame({"user_id": [1, 2, 3, 4], "category": 0, "alert_day": [8.0, 25.0, np.nan, 30.0]})
    m = EDT.alert_metrics(alerts, truth, early_margin=3)
    assert m["median_delay"] == pytest.approx(-2.0)
    assert m["mean_delay"] == pytest.approx((-2 + 5 - 10) / 3)
    assert m["share_too_early"] == pytest.approx(0.25)
    assert m["share_never"] == pytest.approx(0.25)
    assert m["share_within"] == pytest.approx(0.25)
    assert m["n_alerted"] == 3
    with pytest.raises(KeyError, match="alert_day"):
        EDT.alert_metrics(alerts.rename(columns={"alert_day": "a"}), truth)


# ------------------------------------------------------------------------------------------
# evaluation sets
# ------------------------------------------------------------------------------------------
def eval_fixture():
    """Five pairs over days 0..59: good, bot, peak too early, too few events, flat plateau."""
    n = 60
    d = np.arange(n)
    spec = [  # (user, t_start, t_peak, I0, lam, bot, scale of expected events)
        (0, 10, 30, 10.0, 0.1, False, 1.0),
        (1, 10, 30, 10.0, 0.1, True, 1.0),
        (2, 0, 4, 10.0, 0.1, False, 1.0),
        (3, 10, 30, 10.0, 0.1, False, 0.01),
        (4, 10, 30, 10.0, 0.001, False, 1.0),
    ]
    truth, daily, panel = [], [], []
    for u, ts, tp, i0, lam, bot, sc in spec:
        rise = np.clip((d - ts) / max(tp - ts, 1), 0, 1)
        I = np.where(d <= tp, i0 * rise, i0 * np.exp(-lam * (d - tp)))
        if u == 4:
            I = np.where(d <= tp, i0 * rise, i0 * (1 - 0.001 * (d - tp)))
        truth.append((u, 0, ts, tp, i0, lam, np.log(2) / lam, bot))
        ev = sc * I
        daily.append(
            pd.DataFrame(
                {
                    "user_id": u, "category": 0, "day": d, "interest": I, "expected_view": 0.5 * ev,
                    "expected_click": 0.3 * ev, "expected_cart": 0.15 * ev, "expected_purchase": 0.05 * ev,
                    "expected_impression": 2 * ev, "outage": d == 45,
                }
            )
        )
        first = max(ts, 0)
        panel.append(pd.DataFrame({"user_id": u, "category": 0, "day": d[first:], "observed": d[first:] != 45}))
    truth = pd.DataFrame(truth, columns=["user_id", "category", "t_start", "t_peak", "peak_interest", "lam", "half_life", "is_bot"])
    return truth, pd.concat(daily, ignore_index=True), pd.concat(panel, ignore_index=True)


def test_peak_visible_pairs():
    truth, daily, panel = eval_fixture()
    vis = EDT.peak_visible_pairs(truth, daily, panel)
    assert list(vis["user_id"]) == [0]
    row = vis.iloc[0]
    assert row["obs_before"] == 20 and row["obs_after"] == 28  # day 45 is an outage
    assert row["events_near_peak"] >= 20
    # lowering the event threshold admits the sparse pair; the plateau and the early peak stay out
    assert list(EDT.peak_visible_pairs(truth, daily, panel, min_events=0.5)["user_id"]) == [0, 3]


def test_lambda_eval_pairs():
    truth, daily, panel = eval_fixture()
    ev = EDT.lambda_eval_pairs(truth, daily, panel)
    # pair 2 (early peak) is fine for lambda; the plateau pair 4 has events and days too
    assert list(ev["user_id"]) == [0, 2, 4]
    assert not ev["is_bot"].any()
    assert EDT.lambda_eval_pairs(truth, daily, panel, min_days=29)["user_id"].tolist() == [2]  # 54 days after
    with pytest.raises(KeyError, match="is_bot"):
        EDT.lambda_eval_pairs(truth.drop(columns="is_bot"), daily, panel)


def test_tune_early_warning_respects_the_false_alarm_cap():
    rng = np.random.default_rng(0)
    peaks = [25, 30, 35, 40, 45, 50]
    series = [tent(p, down=0.05) for p in peaks]
    raw = [rng.poisson(s).astype(float) for s in series]
    hist = make_panel(series, raw=raw)
    truth = pair_truth(peaks)
    fc = perfect_forecasts(series)
    best, table = X.tune_early_warning(fc, hist, truth, windows=(3, 7), margins=(0.05, 0.2, 0.4), min_levels=(1.0, 2.0))
    assert len(table) == 12 and {"window", "margin", "min_level", "median_delay", "share_too_early"} <= set(table.columns)
    assert best["min_level"] in (1.0, 2.0)
    ok = table[table["share_too_early"] <= 0.10]
    assert len(ok) and best["margin"] in set(ok["margin"]) and best["window"] in set(ok["window"])
    chosen = table[(table.window == best["window"]) & (table.margin == best["margin"]) & (table.min_level == best["min_level"])].iloc[0]
    assert chosen["median_delay"] == ok["median_delay"].min()
    with pytest.raises(ValueError, match="non-empty"):
        X.tune_early_warning(fc, hist, truth, windows=())
