"""Tests for decaylib.recommend.advice: user ids, per-category actions and the reasons the report prints."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decaylib.recommend import advice as A
from tests.panels import make_panel, random_panel


def test_check_user_names_the_problem():
    p = random_panel(seed=0)
    assert A.check_user(p, 3) == 3
    with pytest.raises(A.UnknownUserError, match=r"unknown user_id 999: not in the data; valid ids include \[0, 1, 2, 3, 4\]"):
        A.check_user(p, 999)
    with pytest.raises(A.UnknownUserError, match="must be an integer"):
        A.check_user(p, "abc")
    assert str(A.UnknownUserError("plain message")) == "plain message"


def test_category_actions_rules():
    rising = list(np.linspace(1, 20, 30).round())
    fading = [20] * 5 + [20 * np.exp(-0.3 * i) for i in range(1, 25)]
    turning = [10] * 20 + [7, 7, 7, 7, 7, 7, 7, 7, 7, 6]
    gone = [0] * 0 + [30] * 3 + [0] * 27
    p = make_panel({(1, 10): (0, rising), (1, 11): (0, [max(1, round(v)) for v in fading]), (1, 12): (0, turning),
                    (1, 13): (0, gone), (1, 14): (0, [20] * 10 + [6] * 20), (2, 10): (0, rising)}, end_day=29)
    points = pd.DataFrame({"user_id": [1, 1, 1, 1], "category": [11, 12, 13, 14], "t_decay": [4, 19, 1, 9]})
    lam = pd.DataFrame({"user_id": [1, 1], "category": [11, 12], "lam_hat": [0.3, 0.05]})
    out = A.category_actions(p, 1, 29, lam=lam, decay_points=points).set_index("category")
    assert out.loc[10, "action"] == "keep recommending"
    assert out.loc[12, "action"] == "time a promotion"
    assert out.loc[11, "action"] == "stop recommending"
    assert out.loc[13, "action"] == "dormant: no recent interest"  # no event in the last 7 days
    assert out.loc[14, "action"] == "re-engage with fresh items"
    assert out.loc[11, "half_life"] == pytest.approx(np.log(2) / 0.3)
    assert all(isinstance(r, str) and len(r) > 20 for r in out["reason"])
    # an alert after the cutoff is ignored (it is the future)
    late = pd.DataFrame({"user_id": [1], "category": [10], "alert_day": [40]})
    assert A.category_actions(p, 1, 29, alerts=late).set_index("category").loc[10, "action"] == "keep recommending"
    with pytest.raises(A.UnknownUserError):
        A.category_actions(p, 7, 29)
    with pytest.raises(ValueError, match="stop_ratio"):
        A.category_actions(p, 1, 29, stop_ratio=0.6, promo_ratio=0.5)


def _report_state(seed: int):
    """One user's panel with categories of every shape, a cutoff, and λ / decay-point / alert tables."""
    rng = np.random.default_rng(seed)
    end = int(rng.integers(15, 60))
    shapes = []
    for c in range(int(rng.integers(3, 10))):
        n = int(rng.integers(1, end + 1))
        kind = rng.choice(["rise", "flat", "decay", "gone", "spiky", "empty_tail"])
        t = np.arange(n)
        mu = {"rise": 0.5 + 10 * t / max(n, 1), "flat": np.full(n, rng.uniform(0.2, 8)),
              "decay": 15 * np.exp(-rng.uniform(0.01, 0.5) * t), "gone": np.where(t < 3, 10.0, 0.0),
              "spiky": rng.uniform(0, 1, n) * (rng.uniform(0, 1, n) < 0.2) * 30,
              "empty_tail": np.where(t < n - rng.integers(1, 12), rng.uniform(1, 9), 0.0)}[kind]
        vals = rng.poisson(mu)
        if vals.sum() == 0:
            vals[0] = 1
        shapes.append(((0, 100 + c), (end + 1 - n, list(vals))))
    panel = make_panel(dict(shapes), end_day=end)
    T = int(rng.integers(max(1, end - 5), end + 1))
    cats = sorted(panel["category"].unique())
    pick = lambda: [c for c in cats if rng.uniform() < 0.5]  # noqa: E731
    lam_cats = pick()
    lam_hat = rng.uniform(-0.05, 0.6, len(lam_cats))
    reason = rng.choice(["ok", "ok", "insufficient_data", "not_a_peak"], len(lam_cats))
    se = rng.uniform(0.01, 0.2, len(lam_cats))
    lam = pd.DataFrame({"user_id": 0, "category": lam_cats, "lam_hat": np.where(reason == "ok", lam_hat, np.nan),
                        "se_lam": np.where(reason == "ok", se, np.nan), "reason": reason})
    if rng.uniform() < 0.5:  # with the evidence module's own interval columns
        lam["lam_lo"], lam["lam_hi"] = lam["lam_hat"] - 1.64 * lam["se_lam"], lam["lam_hat"] + 1.64 * lam["se_lam"]
    dp_cats = pick()
    points = pd.DataFrame({"user_id": 0, "category": dp_cats, "t_decay": rng.integers(0, end + 5, len(dp_cats))})
    al_cats = pick()
    alerts = pd.DataFrame({"user_id": 0, "category": al_cats, "alert_day": rng.integers(0, end + 5, len(al_cats)).astype(float)})
    return panel, T, lam, points, alerts


@pytest.mark.parametrize("seed", range(40))
def test_report_reasons_never_contradict_the_numbers(seed):
    import re

    panel, T, lam, points, alerts = _report_state(seed)
    w, promo, stop, h = 7, 0.5, 0.15, 14
    rng = np.random.default_rng(1000 + seed)
    forecast = None
    if seed % 4:  # with a count forecast of the next h days (most seeds), or without
        keys = panel.loc[panel["day"] <= T, ["user_id", "category"]].drop_duplicates()
        forecast = keys.assign(expected=rng.uniform(0, 40, len(keys)) * (rng.uniform(size=len(keys)) < 0.8), method="sar")
        forecast.attrs["horizon"] = h
    start = pd.Timestamp("2021-03-01")
    out = A.category_actions(panel, 0, T, lam=lam, decay_points=points, alerts=alerts, level_window=w, forecast=forecast,
                             promo_ratio=promo, stop_ratio=stop, horizon=h, start_date=start)
    assert sorted(out["category"]) == sorted(panel.loc[panel["day"] <= T, "category"].unique())
    numbers = A.report_numbers(out, start)
    date = lambda d: str((start + pd.Timedelta(days=int(d))).date())  # noqa: E731
    for i, r in out.iterrows():
        mine = panel[(panel["category"] == r["category"]) & (panel["day"] <= T)].sort_values("day")
        # the numbers themselves, recomputed independently
        roll = pd.concat([pd.Series([0.0] * (w - 1)), mine["interest"]]).rolling(w).mean().iloc[w - 1:]
        assert r["level"] == pytest.approx(roll.iloc[-1]) and r["highest_level"] == pytest.approx(roll.max())
        assert r["ratio"] == pytest.approx(roll.iloc[-1] / roll.max() if roll.max() > 0 else 0.0)
        events = mine[["view", "click", "cart", "purchase"]].sum(axis=1)
        assert r["recent_events"] == events[mine["day"] > T - w].sum()
        if forecast is None:
            assert np.isnan(r["expected_next"]) and np.isnan(r["outlook"]) and r["effective_ratio"] == r["ratio"]
        else:
            exp = forecast.loc[forecast["category"] == r["category"], "expected"].iloc[0]
            assert r["expected_next"] == pytest.approx(exp)
            if r["recent_events"] > 0:
                assert r["outlook"] == pytest.approx((exp / h) / (r["recent_events"] / w))
                assert r["effective_ratio"] == pytest.approx(r["ratio"] * min(1.0, r["outlook"]))
        text, pct, eff = r["reason"], f"{r['ratio']:.0%}", f"{r['effective_ratio']:.0%}"
        # every percentage printed is the ratio or the effective ratio, as the table prints them
        assert set(re.findall(r"(\d+%) of its highest level(?! ahead)", text)) <= {pct}
        assert set(re.findall(r"(\d+%) of its highest level ahead", text)) <= {eff}
        assert numbers.loc[i, "level / highest"] == pct
        assert "rising" not in text
        if "at its highest level" in text:
            assert pct == "100%"
        if "near its highest level" in text:
            assert r["ratio"] >= A.NEAR_PEAK
        if re.search(r"expects \d+% of that pace", text):
            assert f"expects {r['outlook']:.0%} of that pace next ({r['expected_next']:.1f} events" in text
            assert r["outlook"] < 1
        if np.isfinite(r["expected_next"]):
            assert f"{r['expected_next']:.1f} event" in text and "sar)" in text
        # the action follows the rules and the reason says why; a turn older than the horizon is history
        current = any(np.isfinite(r[c]) and T - h <= r[c] <= T for c in ("t_decay", "alert_day"))
        assert r["current_turn"] == current
        e = r["effective_ratio"]
        if r["recent_events"] == 0:
            assert r["action"] == "dormant: no recent interest" and text.startswith(f"No events in the last {w} days")
            last = events[events > 0].index
            if len(last):
                d = int(mine.loc[last, "day"].max())
                assert f"the last one on {date(d)}, {T - d} days before" in text
        elif e >= promo and np.isfinite(r["expected_next"]) and r["expected_next"] < h / w:
            assert r["action"] == "re-engage with fresh items"
            assert f"expects {r['expected_next']:.1f} events over the next {h} days (sar), fewer than one every {w} days" in text
        elif e >= promo:
            assert r["action"] == ("time a promotion" if current else "keep recommending")
        elif e >= stop:
            assert r["action"] == "re-engage with fresh items"
            assert f"fallen to {pct}" in text or f"{eff} of its highest level ahead" in text
        else:
            assert r["action"] == "stop recommending"
            assert f"faded to {pct}" in text or f"{eff} of its highest level ahead" in text
        if r["action"] != "dormant: no recent interest":
            n = int(re.search(r"\((?:[^()]*, )?([\d,]+) events? in the last", text).group(1).replace(",", ""))
            assert n == r["recent_events"]
        # dates quoted are the table's, and only current ones are quoted as a turn
        for d in re.findall(r"peaked on (\d{4}-\d\d-\d\d)", text):
            assert d == date(r["t_decay"]) == numbers.loc[i, "decay point"] and T - r["t_decay"] <= h
        for d in re.findall(r"early warning fired on (\d{4}-\d\d-\d\d)", text):
            assert d == date(r["alert_day"]) == numbers.loc[i, "alert"] and T - r["alert_day"] <= h
        # a half-life only with evidence, with its interval, and the same as in the table
        row = lam[lam["category"] == r["category"]]
        if len(row) and row["reason"].iloc[0] == "ok":
            assert r["lam_reason"] == "ok" and r["lam_hat"] == pytest.approx(row["lam_hat"].iloc[0])
            assert f"Half-life: {r['half_life_text']}." in text and "interval" in r["half_life_text"]
        else:
            assert "Half-life" not in text and r["half_life_text"].startswith("not estimable (")
            assert np.isnan(r["half_life"]) and np.isnan(r["lam_lo"])
            assert r["lam_reason"] == (row["reason"].iloc[0] if len(row) else
                                       ("no_decay_phase" if np.isnan(r["t_decay"]) else "not_estimated"))
        assert numbers.loc[i, "half-life"] == r["half_life_text"]


def test_collapse_and_a_single_old_purchase_are_not_kept():
    """The real-log cases of issue 20: 41 -> 1 -> 0 events over the last three days, and one purchase 6 days ago."""
    p = make_panel({(1, 10): (0, [0] * 27 + [41, 1, 0]), (1, 11): (23, [1, 0, 0, 0, 0, 0, 0]),
                    (1, 12): (0, [3] * 30)}, end_day=29)
    fc = pd.DataFrame({"user_id": 1, "category": [10, 11, 12], "expected": [5.0, 0.2, 42.0], "method": "hawkes"})
    fc.attrs["horizon"] = 14
    out = A.category_actions(p, 1, 29, forecast=fc).set_index("category")
    assert out.loc[10, "ratio"] == pytest.approx(1.0)  # the 7-day level alone says "at its highest"
    assert out.loc[10, "outlook"] == pytest.approx((5 / 14) / (42 / 7))
    assert out.loc[10, "action"] == "stop recommending"
    assert "expects 6% of that pace next (5.0 events over 14 days, hawkes)" in out.loc[10, "reason"]
    assert out.loc[11, "action"] == "stop recommending"  # 1 event in 7 days, 0.2 expected in 14: 10% of that pace
    assert out.loc[12, "action"] == "keep recommending" and "42.0 events (hawkes)" in out.loc[12, "reason"]
    # without a forecast the 7-day level decides, as before
    assert A.category_actions(p, 1, 29).set_index("category").loc[10, "action"] == "keep recommending"
    with pytest.raises(ValueError, match="forecast is over 7 days but horizon=14"):
        fc.attrs["horizon"] = 7
        A.category_actions(p, 1, 29, forecast=fc)


def test_an_old_alert_is_history():
    p = make_panel({(1, 10): (0, [5] * 200)}, end_day=199)
    old = pd.DataFrame({"user_id": [1], "category": [10], "alert_day": [199 - 200 + 10]})
    r = A.category_actions(p, 1, 199, alerts=old).iloc[0]
    assert r["action"] == "keep recommending" and not r["current_turn"]
    assert "fired" not in r["reason"] and "no decay point or early warning in the last 14 days" in r["reason"]
    recent = old.assign(alert_day=190)
    r = A.category_actions(p, 1, 199, alerts=recent).iloc[0]
    assert r["action"] == "time a promotion" and "early warning fired on day 190" in r["reason"]


def test_action_backtest_orders_the_actions_on_a_simulated_shop():
    from decaylib.data.synth import simulate_self_exciting

    sim = simulate_self_exciting(n_users=300, n_categories=4, n_days=120, seed=3)
    panel = sim.panel.assign(interest=lambda d: d[["view", "cart", "purchase"]].sum(axis=1).astype(float))
    T = 120 - 15
    bt = A.action_backtest(panel, T, horizon=14, method="sar")
    assert list(bt["action"]) == [a for a in A.ACTIONS if a in set(bt["action"])]
    assert bt["categories"].sum() == panel.loc[panel["day"] <= T].groupby(["user_id", "category"]).ngroups
    acts = bt.attrs["actions"]
    for w in (7, 14):
        got = acts.groupby("action")[f"next_{w}"].mean()
        np.testing.assert_allclose(bt.set_index("action")[f"mean events next {w} days"], got.reindex(bt["action"]))
    act = bt.attrs["active"]
    assert act["categories"] == int((acts["recent_events"] > 0).sum())
    assert act["observed"] == acts.loc[acts["recent_events"] > 0, "next_14"].sum()
    assert bt.attrs["ordered"] is True, bt
    with pytest.raises(ValueError, match=r"cutoff_day=110 leaves 9 days to score, the back-test needs 14"):
        A.action_backtest(panel, 110, horizon=14, method="sar")


def test_dormant_never_reads_as_rising():
    """The real-log case of issue 8: 0% of its highest level advised as "still rising"."""
    p = make_panel({(5, 1): (0, [0, 4, 9, 3]), (5, 2): (0, [1] * 30)}, end_day=29)
    out = A.category_actions(p, 5, 29).set_index("category")
    assert out.loc[1, "action"] == "dormant: no recent interest"
    assert "0% of its highest" in out.loc[1, "reason"] and "rising" not in out.loc[1, "reason"]
    assert out.loc[2, "action"] == "keep recommending"
    assert out.loc[2, "reason"].startswith("Interest is at its highest level so far (100%, 7 events in the last 7 days)")
    assert list(A.category_actions(p, 5, 29)["category"]) == [2, 1]  # ordered by action


def test_half_life_text():
    assert A.half_life_text(np.log(2) / 0.1, np.log(2) / 0.15, np.log(2) / 0.05) == "6.9 days (90% interval 4.6 to 14 days)"
    assert A.half_life_text(20.0, 10.0, np.inf) == "20 days (90% interval 10 to no decay)"
    assert A.half_life_text(np.inf) == "no decay measured (λ ≤ 0)"
    assert A.half_life_text(np.inf, 30.0, np.inf) == "no decay measured (λ ≤ 0; 90% interval of the half-life: 30 to no decay)"
    assert A.half_life_text(np.inf, np.inf, np.inf) == "no decay measured (λ ≤ 0; 90% interval of the half-life: no decay)"
    assert A.half_life_text(np.nan, reason="insufficient_data") == "not estimable (insufficient_data)"
    assert A.half_life_text(12.0, reason="not_a_peak") == "not estimable (not_a_peak)"
    assert A.half_life_text(12.0) == "12 days"


def test_category_actions_interval_from_the_standard_error():
    p = make_panel({(1, 10): (0, [20] * 5 + [10] * 5)}, end_day=9)
    lam = pd.DataFrame({"user_id": [1], "category": [10], "lam_hat": [0.2], "se_lam": [0.05]})
    r = A.category_actions(p, 1, 9, lam=lam, decay_points=pd.DataFrame({"user_id": [1], "category": [10], "t_decay": [4]})).iloc[0]
    assert r["lam_lo"] == pytest.approx(0.2 - 1.6449 * 0.05, rel=1e-3) and r["lam_hi"] == pytest.approx(0.2 + 1.6449 * 0.05, rel=1e-3)
    assert r["half_life_lo"] == pytest.approx(np.log(2) / r["lam_hi"]) and r["half_life_hi"] == pytest.approx(np.log(2) / r["lam_lo"])
    assert r["half_life_text"] == f"3.5 days (90% interval {np.log(2) / r['lam_hi']:.1f} to {np.log(2) / r['lam_lo']:.1f} days)"


def test_check_user_with_own_ids_and_removed_bots():
    p = random_panel(seed=0)
    own = {u: f"C{1000 + u}" for u in range(100)}
    code_of = {v: k for k, v in own.items()}.__getitem__
    kw = {"code_of": code_of, "display": own.__getitem__, "removed": {50: "900 events per active day against a median of 2"}}
    assert A.check_user(p, "C1003", **kw) == 3
    with pytest.raises(A.UnknownUserError) as err:
        A.check_user(p, "X1", **kw)
    assert str(err.value) == ("unknown user_id X1: not in the event log; valid ids include "
                              "['C1000', 'C1001', 'C1002', 'C1003', 'C1004'] (12 users)")
    with pytest.raises(A.UnknownUserError, match=r"user_id C1050 has no report: cleaning \(notebook 02\) removed it as a bot "
                                                 r"\(900 events per active day against a median of 2\)"):
        A.check_user(p, "C1050", **kw)
    with pytest.raises(A.UnknownUserError, match="C1060 is in the event log but none of its events survived cleaning"):
        A.check_user(p, "C1060", **kw)
    # the simulator: integer ids, a removed bot explained too
    with pytest.raises(A.UnknownUserError, match="user_id 50 has no report: cleaning"):
        A.check_user(p, 50, removed={50: "x"})


def test_removed_users_reads_panel_meta():
    meta = {"bot_users": [7, 9], "bots": [{"user_id": 7, "removed": True, "reason": "500 events a day"},
                                           {"user_id": 8, "removed": False, "reason": "kept"}]}
    out = A.removed_users(meta)
    assert out[7] == "500 events a day" and 8 not in out and "bot rule" in out[9]
    assert A.removed_users({"bot_users": [3]}) == {3: A.removed_users({"bot_users": [3]})[3]}
    assert A.removed_users(None) == {}


def test_trailing_level_counts_days_before_the_first_event_as_zero():
    p = make_panel({(1, 10): (3, [7, 0, 0, 14]), (1, 11): (0, [7] * 4)}, end_day=6)
    p.loc[(p["category"] == 11) & (p["day"] == 2), "observed"] = False  # an outage day is left out
    lvl = A.trailing_level(p.iloc[::-1], window=7)[::-1]  # any row order
    a = lvl[p["category"].to_numpy() == 10]
    np.testing.assert_allclose(a, [1.0, 1.0, 1.0, 3.0])  # one event is not a spike of 7 on day 1
    b = lvl[p["category"].to_numpy() == 11]
    np.testing.assert_allclose(b[:4], [1.0, 2.0, 2 * 7 / 6, 3 * 7 / 6])


def _meta_of(res, tmp_path):
    """``panel_meta.json`` as the report reads it (written by save_panel, read back from disk)."""
    from decaylib.workflow.pipeline import save_panel

    return save_panel(res, tmp_path).json("panel_meta.json")


def _quiet_preprocess(ev, **kw):
    import warnings

    from decaylib.data.preprocess import preprocess

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return preprocess(ev, **kw)


def test_removed_bot_error_shows_the_rule_and_the_bot_z_that_keeps_it(tmp_path):
    from tests.data.test_preprocess_steps import busy_buyer_log

    res = _quiet_preprocess(busy_buyer_log())  # user 90 buys (kept), user 91 does not (removed)
    meta = _meta_of(res, tmp_path)
    recs = {b["user_id"]: b for b in meta["bots"]}
    assert recs[90]["removed"] is False and recs[90]["buyer_kept"] is True and "kept: 1 purchase(s)" in recs[90]["reason"]
    assert recs[91]["removed"] is True and recs[91]["n_purchases"] == 0
    assert meta["bot_rule"]["scale_rule"] == "floor" and meta["bot_rule"]["n_removable"] == 1
    out = A.removed_users(meta)
    assert list(out) == [91]
    with pytest.raises(A.UnknownUserError) as err:
        A.check_user(res.panel, 91, removed=out)
    msg = str(err.value)
    assert msg.startswith("user_id 91 has no report: cleaning (notebook 02) removed it as a bot (11 events per active day "
                          "against a median of 1 (11x; robust z 4.2 > 4)")
    assert "fallback scale 0.576, rule floor" in msg and "its robust z is 4.17" in msg
    assert "bot_z=4.2 or more (now 4;" in msg
    assert "max_bot_share cannot keep it: the rule removed 1 user(s)" in msg
    # the value it names does keep the user
    assert 91 in set(_quiet_preprocess(busy_buyer_log(), bot_z=4.2).panel["user_id"])
    assert 90 in set(res.panel["user_id"])  # the buyer was never refused
    assert A.check_user(res.panel, 90, removed=out) == 90


def test_removed_bots_error_names_a_max_bot_share_that_keeps_them(tmp_path):
    from tests.data.test_preprocess_steps import busy_buyer_log

    ev = busy_buyer_log(n_users=100, busy=(90 + 100, 91 + 100, 92 + 100), buyers=())  # 3 of 103 users: 2.9%
    res = _quiet_preprocess(ev)
    assert res.bot_users == [190, 191, 192]
    text = A.removed_users(_meta_of(res, tmp_path))[191]
    assert "preprocess(..., max_bot_share=0.029) (now 0.05): any value below 3/103 = 0.02913 keeps all 3 flagged users" in text
    kept = _quiet_preprocess(ev, max_bot_share=0.029)
    assert kept.bot_users == [] and {190, 191, 192} <= set(kept.panel["user_id"])


def test_removed_users_from_partial_records():
    """Records without the rule's numbers (an older panel_meta.json) give the reason alone."""
    meta = {"bots": [{"user_id": 5, "removed": True, "reason": "40 events per active day", "robust_z": 6.01}],
            "bot_rule": {"bot_z": 4.0, "scale_rule": "floor"}}
    text = A.removed_users(meta)[5]
    assert text.startswith("40 events per active day; to keep it, rebuild the panel with bot_z=6.1 or more (now 4;")
    assert "max_bot_share" not in text and "fallback scale" not in text
    assert A.removed_users({"bots": [{"user_id": 5, "reason": "x", "robust_z": 6.0}]}) == {5: "x"}


def test_report_forecast_and_its_note_on_a_small_shop():
    from decaylib.data.synth import simulate_self_exciting

    panel = simulate_self_exciting(n_users=200, n_categories=3, n_days=100, seed=5).panel
    panel = panel.assign(interest=panel[["view", "cart", "purchase"]].sum(axis=1).astype(float))
    f = A.report_forecast(panel, 99, 14, n_cutoffs=2, max_users=80)
    table = f.attrs["auto"]
    assert f.attrs["auto_users"] == (80, 200) and len(f) == panel.groupby(["user_id", "category"]).ngroups
    row = table.set_index("method").loc[f.attrs["picked"]]
    assert row["mean_deviance"] == table["mean_deviance"].min()
    note = A.forecast_note(f)
    assert f"the **{f.attrs['picked']}** model, the best of {len(table)} on this log" in note
    assert f"it predicted {row['predicted']:,.0f} events against {row['observed']:,.0f} observed for those users" in note
    assert "random sample of 80 of the log's 200 users" in note
    # the events forecast are the behaviours summed
    s = A.report_forecast(panel, 99, 14, method="constant")
    old = panel.groupby(["user_id", "category"])["day"].min() < 80  # pairs with the whole 14-day window
    recent = panel[panel["day"] > 99 - 14].groupby(["user_id", "category"])[["view", "cart", "purchase"]].sum().sum(axis=1)
    recent = recent[old.reindex(recent.index).to_numpy()]
    got = s.set_index(["user_id", "category"])["expected"]
    np.testing.assert_allclose(got.reindex(recent.index), recent.to_numpy(dtype=float), rtol=1e-9)
    assert "not back-tested here: method='constant'" in A.forecast_note(s)


def test_report_backtest_refuses_a_short_log():
    from decaylib.checks import InsufficientDataError

    p = random_panel(seed=1, end_day=40)
    with pytest.raises(InsufficientDataError, match="the log spans 41 days; replaying the advice 14 days before the report date needs 56 days"):
        A.report_backtest(p, 40)


def test_report_forecast_on_a_log_too_short_to_compare_methods():
    p = make_panel({(1, 10): (0, [3, 1]), (2, 10): (1, [2])}, end_day=1)
    f = A.report_forecast(p, 1, 14)
    assert f.attrs["picked"] == "constant" and "too short" in f.attrs["not_compared"]
    assert "no method could be compared on this log (the log spans 2 days" in A.forecast_note(f)
    assert A.report_forecast(p, 1, 14, method="sar").attrs["picked"] == "sar"  # a method named is used as it is
