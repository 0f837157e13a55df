"""Preprocessing on logs that are not simulated: date-only timestamps, a bot rule that degrades
loudly, far-off timestamps, short and sparse logs, and a panel whose size is checked first.

Every frame is built here, small, with the numbers the assertions expect worked out by hand.
"""

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from decaylib.checks import DataWarning, EventSchemaError
from decaylib.data import panel as PN
from decaylib.data.clean import (
    MIN_FALLBACK_SCALE,
    CleaningReport,
    detect_bots,
    detect_time_outliers,
    drop_duplicates,
    estimate_panel_rows,
    is_date_only,
    validate_events,
)
from decaylib.data.panel import PanelTooLargeError, build_panel
from decaylib.data.preprocess import preprocess
from decaylib.schema import COUNT_COLUMNS, PANEL_COLUMNS

COLS = ["user_id", "item_id", "category", "ts", "event"]


def _frame(rows):
    return pd.DataFrame(rows, columns=COLS)


def _rated(rates: dict, days: int = 10, start="2026-03-02", category=lambda u, k: k % 3, hour=True):
    """``rates[user] = events per active day``: that many views on each of ``days`` days."""
    rows = []
    t0 = pd.Timestamp(start)
    for u, r in rates.items():
        for d in range(days):
            for k in range(r):
                ts = t0 + pd.Timedelta(days=d) + (pd.Timedelta(minutes=10 + k) if hour else pd.Timedelta(0))
                rows.append((u, 100 + k, category(u, k), ts, "view"))
    return _frame(rows)


def _data_warnings(fn, *args, **kw):
    """Call ``fn`` and return (result, list of DataWarning messages), every warning recorded."""
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        out = fn(*args, **kw)
    return out, [str(w.message) for w in rec if issubclass(w.category, DataWarning)]


# ---- duplicates and date-only timestamps --------------------------------------------------
def _purchases(times: bool):
    day = ["2026-01-05", "2026-01-05", "2026-01-05", "2026-01-06", "2026-01-07"]
    ts = [d + (" 10:15" if times else "") for d in day]
    return validate_events(
        _frame([(1, 7, 0, ts[0], "purchase"), (1, 7, 0, ts[1], "purchase"), (1, 7, 0, ts[2], "purchase"),
                (2, 8, 1, ts[3], "purchase"), (3, 9, 1, ts[4], "view")])
    )


def test_date_only_repeats_are_kept_and_reported():
    ev = _purchases(times=False)
    assert is_date_only(ev["ts"])
    for flag, how in [(True, "date_only=True"), (None, "detected: every timestamp is at midnight")]:
        rep = CleaningReport()
        out = drop_duplicates(ev, rep, date_only=flag)
        assert len(out) == 5
        assert rep.removed("drop_duplicates") == 0
        reason = rep.to_frame().loc[0, "reason"]
        assert "dates only" in reason and how in reason and "2 identical row(s) kept" in reason
    res, _ = _data_warnings(preprocess, ev)  # date_only=None: detected
    assert res.date_only and len(res.events_clean) == 5 and res.report.removed("drop_duplicates") == 0
    assert "detected: every timestamp is at midnight" in res.report.to_frame().set_index("step").loc["drop_duplicates", "reason"]
    assert res.panel.loc[(res.panel.user_id == 1) & (res.panel.day == 0), "purchase"].item() == 3


def test_real_duplicates_with_times_are_removed():
    ev = _purchases(times=True)
    assert not is_date_only(ev["ts"])
    rep = CleaningReport()
    assert len(drop_duplicates(ev, rep, date_only=None)) == 3
    assert rep.removed("drop_duplicates") == 2 and "logging retries" in rep.to_frame().loc[0, "reason"]
    res, _ = _data_warnings(preprocess, ev)
    assert not res.date_only and res.report.removed("drop_duplicates") == 2
    # the caller's word wins: EventLog.date_only=False removes repeats even at midnight
    assert len(drop_duplicates(_purchases(times=False), date_only=False)) == 3


def test_date_only_detection_rules():
    one = pd.Series(pd.to_datetime(["2026-01-05"]))
    assert not is_date_only(one)  # one row: cannot tell (and nothing to deduplicate)
    assert not is_date_only(pd.Series([pd.Timestamp("2026-01-05"), pd.Timestamp("2026-01-06 00:00:01")]))
    with pytest.raises(TypeError, match="datetime64"):
        is_date_only(pd.Series(["2026-01-05", "2026-01-06"]))
    with pytest.raises(TypeError, match="date_only"):
        drop_duplicates(_purchases(times=False), date_only="yes")


# ---- bot rule that degrades loudly --------------------------------------------------------
def test_mad_zero_warns_names_the_fallback_and_spares_ordinary_users():
    # 95 users with 1 event a day, 5 with 4 a day: MAD = 0.  The old fallback (the standard
    # deviation, 0.30) made the five 4x users bots (z = 4.6); the new scale is the floor.
    rates = {u: 1 for u in range(95)} | {u: 4 for u in range(95, 100)}
    x = np.log(np.array(list(rates.values()), dtype=float))
    assert np.log(4) / x.std() > 4
    with pytest.warns(DataWarning, match="MAD of log"):
        assert not detect_bots(validate_events(_rated(rates, days=3)))["is_bot"].any()
    # with one user at 50 a day, only that one is a bot
    ev = validate_events(_rated(rates | {100: 50}, days=3))
    with pytest.warns(DataWarning, match=r"MAD of log\(events per active day\) is 0: 94% of 101 users have exactly the median rate") as rec:
        bots = detect_bots(ev)
    msg = str(rec[0].message)
    assert "mean absolute deviation" in msg and "floor log(10)/4" in msg and "at least 10x the median rate" in msg
    assert bots.attrs["scale_rule"] == "floor" and bots.attrs["scale"] == pytest.approx(MIN_FALLBACK_SCALE)
    assert bots.loc[bots["is_bot"], "user_id"].tolist() == [100]
    assert bots.attrs["warnings"] == [msg]


def test_mad_zero_with_a_wide_tail_uses_the_mean_absolute_deviation():
    # 6 of 11 users at 1 a day, 5 spread up to 100 a day: 1.2533 * mean |x - median| > the floor.
    rates = {u: 1 for u in range(6)} | {6: 5, 7: 20, 8: 40, 9: 60, 10: 100}
    ev = validate_events(_rated(rates, days=2))
    with pytest.warns(DataWarning, match="MAD of log"):
        bots = detect_bots(ev)
    x = np.log(bots["events_per_day"].to_numpy())
    assert bots.attrs["scale_rule"] == "mean_abs_dev"
    assert bots.attrs["scale"] == pytest.approx(1.2533 * np.mean(np.abs(x)))
    assert not bots["is_bot"].any()


def test_every_user_at_the_same_rate_flags_no_one():
    ev = validate_events(_rated({u: 2 for u in range(8)}, days=2))
    with pytest.warns(DataWarning, match="every user has the same rate, so no one is flagged"):
        bots = detect_bots(ev)
    assert bots.attrs["scale_rule"] == "constant" and not bots["is_bot"].any()
    with pytest.raises(ValueError, match="z_threshold"):
        detect_bots(ev, z_threshold=0)


def _with_bots(n_bots: int, n_normal: int = 24):
    # Normal users: 1..6 events a day, 4 users each (MAD > 0); bots 1,000 a day.
    rates = {u: 1 + u % 6 for u in range(n_normal)} | {1000 + b: 1000 for b in range(n_bots)}
    return _rated(rates, days=10, category=lambda u, k: k % 4)


def test_bot_share_cap_keeps_the_users_and_warns():
    ev = _with_bots(4)  # 4 of 28 users = 14%, more than 5%
    share_events = 4 * 1000 / (4 * 1000 + sum(1 + u % 6 for u in range(24)))
    with pytest.warns(DataWarning, match=r"the bot rule flagged 4 of 28 users \(14%, holding (\d+)% of events\), more than max_bot_share=5% of users: kept; pass max_bot_share=0.15") as rec:
        res = preprocess(ev)
    shown = re.search(r"holding (\d+)% of events", str(rec[0].message)).group(1)
    assert int(shown) == round(100 * share_events)
    assert res.report.removed("remove_bots") == 0
    assert "but kept" in res.report.to_frame().set_index("step").loc["remove_bots", "reason"]
    assert res.bot_users == [] and res.flagged_bots == [1000, 1001, 1002, 1003]
    assert res.panel["user_id"].isin(res.flagged_bots).any()
    assert any("flagged 4 of 28 users" in w for w in res.warnings)
    assert "flagged as a bot but kept" in res.bot_reasons()[1000]
    for cap in (0.15, None):
        res, msgs = _data_warnings(preprocess, ev, max_bot_share=cap)
        assert res.bot_users == [1000, 1001, 1002, 1003] and not any("bot rule flagged" in m for m in msgs)
        assert not res.panel["user_id"].isin(res.bot_users).any()
    # one or two bots in a tiny log are always removable (2 of 26 users is 7.7%)
    res, msgs = _data_warnings(preprocess, _with_bots(2))
    assert res.bot_users == [1000, 1001] and msgs == []
    with pytest.raises(ValueError, match="max_bot_share"):
        preprocess(ev, max_bot_share=1.5)


def test_bot_reason_sentence():
    ev = _with_bots(1)
    res, _ = _data_warnings(preprocess, ev)
    bots = res.bots.set_index("user_id")
    median = float(np.exp(np.median(np.log(bots["events_per_day"]))))
    assert median == 4  # the 13th of 25 rates: 1, 2, 3 (4 users each), then 4
    z = bots.loc[1000, "robust_z"]
    assert z == pytest.approx(np.log(250) / bots.attrs["scale"])
    expected = f"user 1000 was removed as a bot: 1,000 events per active day against a median of 4 (250x; robust z {z:.1f} > 4)"
    assert res.bot_reasons() == {1000: expected}
    assert bots.loc[1000, "ratio_to_median"] == pytest.approx(250)
    assert (bots.loc[bots.index != 1000, "reason"] == "").all()
    shown = res.bot_reasons(display={1000: "C-ROBOT"})
    assert shown[1000].startswith("user C-ROBOT was removed as a bot: 1,000 events per active day")


# ---- far-off timestamps -------------------------------------------------------------------
def _with_far_event(far="2036-03-10 09:00", early=False):
    ev = _rated({u: 1 + u % 3 for u in range(20)}, days=30, category=lambda u, k: u % 4)  # 2026-03-02 .. 2026-03-31
    extra = [(3, 555, 2, far, "view")]
    if early:
        extra.append((4, 556, 3, "2019-07-01 12:00", "click"))
    out = pd.concat([ev, _frame(extra)], ignore_index=True)
    # already-parsed datetimes: as strings, validate_events (like load_events) refuses a date more
    # than a year ahead outright; a parsed one reaches the far-off rule
    return out.assign(ts=pd.to_datetime(out["ts"]))


def test_far_off_event_is_dropped_with_its_span_and_rows_in_the_report():
    ev = _with_far_event(early=True)
    clean = validate_events(ev)
    main = clean[clean["ts"].between("2026-03-01", "2026-04-01")]
    rows_kept, rows_all = estimate_panel_rows(main), estimate_panel_rows(clean)
    assert rows_kept == 20 * 30 and rows_all > 100 * rows_kept
    with pytest.warns(DataWarning, match=r"2 event\(s\) lie more than max_gap_days=90 days from the main span of the log: 2019-07-01 \(1\), 2036-03-10 \(1\)") as rec:
        res = preprocess(ev)
    msg = str(rec[0].message)
    span_all = (pd.Timestamp("2036-03-10") - pd.Timestamp("2019-07-01")).days + 1
    assert "main span is 2026-03-02 to 2026-03-31 (30 days, " in msg
    assert f"the log would span {span_all:,} days (+{span_all - 30:,})" in msg
    assert f"about {rows_all:,} rows instead of {rows_kept:,} (+{rows_all - rows_kept:,}" in msg
    assert msg.endswith("dropped (time_outliers='drop'; pass 'keep' to keep them)")
    assert res.report.removed("time_outliers") == 2 and "2036-03-10" in res.report.to_frame().loc[1, "reason"]
    assert list(res.report.to_frame()["step"]) == ["validate", "time_outliers", "drop_duplicates", "remove_bots", "aggregate"]
    # the window comes from the kept events
    assert res.start_date == pd.Timestamp("2026-03-02") and res.panel["day"].max() == 29 and len(res.panel) == rows_kept
    assert len(res.time_outliers) == 2 and list(res.time_outliers.columns) == COLS
    assert res.warnings == [msg]


def test_far_off_event_error_and_keep():
    ev = _with_far_event(far="2027-01-01 08:00")  # 276 days after the main span
    with pytest.raises(EventSchemaError, match=r"1 event\(s\) lie more than max_gap_days=90 days.*2027-01-01 \(1\).*pass time_outliers='drop'"):
        preprocess(ev, time_outliers="error")
    with pytest.warns(DataWarning, match=r"2027-01-01 \(1\).*: kept \(time_outliers='keep'"):
        res = preprocess(ev, time_outliers="keep")
    assert res.report.removed("time_outliers") == 0 and len(res.time_outliers) == 1
    assert res.panel["day"].max() == (pd.Timestamp("2027-01-01") - pd.Timestamp("2026-03-02")).days
    assert len(res.panel) == estimate_panel_rows(validate_events(ev))
    # a larger max_gap_days joins it to the main span: nothing to report
    res, msgs = _data_warnings(preprocess, ev, max_gap_days=400)
    assert msgs == [] and "time_outliers" not in list(res.report.to_frame()["step"])
    with pytest.raises(ValueError, match="time_outliers"):
        preprocess(ev, time_outliers="ignore")


def test_time_outlier_rule():
    day = lambda s: pd.Series(pd.to_datetime(s))
    base = [f"2026-01-{d:02d}" for d in range(1, 31)] * 4  # 120 events in January
    out = detect_time_outliers(day(base + ["2030-01-01"]))
    assert out.sum() == 1 and out.iloc[-1] and out.name == "time_outlier"
    # a second season with 2% of the events is real data: kept
    assert not detect_time_outliers(day(base + ["2026-09-01"] * 3)).any()
    assert detect_time_outliers(day(base + ["2026-09-01"] * 3), max_share=0.05).sum() == 3
    # no gap longer than max_gap_days: nothing, however long the log
    steps = day([str(pd.Timestamp("2020-01-01") + pd.Timedelta(days=80 * k)) for k in range(40)])
    assert not detect_time_outliers(steps).any()
    # the main span is the block with the most events, wherever it is
    out = detect_time_outliers(day(["2001-05-05"] + base))
    assert out.tolist() == [True] + [False] * len(base)
    with pytest.raises(ValueError, match="max_gap_days"):
        detect_time_outliers(day(base), max_gap_days=0)
    with pytest.raises(ValueError, match="max_share"):
        detect_time_outliers(day(base), max_share=0.7)


# ---- short and sparse logs ----------------------------------------------------------------
def test_short_span_warning():
    ev = _rated({u: 1 + u % 4 for u in range(12)}, days=4)
    with pytest.warns(DataWarning, match=r"the log spans 4 day\(s\), fewer than the smoothing window mean_window=7.*at most 2\)"):
        res = preprocess(ev)
    assert any("the log spans 4 day(s)" in w for w in res.warnings)
    res, msgs = _data_warnings(preprocess, ev, mean_window=3)
    assert not any("the log spans" in m for m in msgs)


def test_sparse_pairs_warning_and_each_message_once():
    # 15 pairs active on one day, 5 pairs active on 8 days: 75% of 20 pairs have one active day.
    rows = [(u, 1, 0, f"2026-02-{2 + u % 9:02d} 11:00", "view") for u in range(15)]
    rows += [(100 + u, 1, 0, f"2026-02-{2 + d:02d} 12:00", "view") for u in range(5) for d in range(8)]
    res, msgs = _data_warnings(preprocess, _frame(rows))
    sparse = "75% of 20 (user, category) pairs have one active day: per-pair decay rates and decay points will mostly be not estimable"
    assert sparse in msgs
    assert len(msgs) == len(set(msgs)) and res.warnings == msgs
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="detect_bots: the MAD", category=DataWarning)  # all users: 1 event a day
        with pytest.warns(DataWarning, match=re.escape(sparse)):
            preprocess(_frame(rows))
    # the simulator's log is neither short nor sparse: no warning at all
    dense = _rated({u: 1 + u % 5 for u in range(10)}, days=20)
    assert _data_warnings(preprocess, dense)[1] == []


# ---- panel size ---------------------------------------------------------------------------
def test_panel_size_guard_raises_with_the_numbers(small_sim):
    ev = _with_far_event(far="2029-12-31 10:00")
    rows = estimate_panel_rows(validate_events(ev))
    lean = estimate_panel_rows(validate_events(ev), until="last_activity")
    assert lean == 20 * 30 + 1
    window = (pd.Timestamp("2029-12-31") - pd.Timestamp("2026-03-02")).days + 1
    pattern = (rf"the daily panel would have {rows:,} rows \(21 \(user, category\) pairs, each zero-filled from its first event "
               rf"to the end of a {window:,}-day window: {rows / len(ev):,.1f} rows per event\), "
               rf"about {rows * 81 / 1e6:.1f} MB \(81 bytes a row.*max_panel_rows=10,000.*until='last_activity' .*: {lean:,} rows\), "
               r"a shorter window with start_date / end_day")
    with pytest.warns(DataWarning, match="kept"), pytest.raises(PanelTooLargeError, match=pattern):
        preprocess(ev, time_outliers="keep", max_panel_rows=10_000)
    res, _ = _data_warnings(preprocess, ev, time_outliers="keep", max_panel_rows=10_000, until="last_activity")
    assert len(res.panel) == lean and res.rows_per_event == pytest.approx(lean / len(res.events_clean))
    with pytest.raises(ValueError, match="max_panel_rows"):
        preprocess(ev, max_panel_rows=0)
    assert issubclass(PanelTooLargeError, ValueError)


def test_estimate_matches_the_panel(small_sim):
    ev = drop_duplicates(validate_events(small_sim.events))
    start = small_sim.config.start_date
    for kw in [{}, {"until": "last_activity"}, {"start_date": start, "end_day": small_sim.config.n_days + 5}]:
        panel = build_panel(ev, outage_days=[], **kw)
        assert estimate_panel_rows(ev, **kw) == len(panel)


def _crosstab_counts(keys, event):
    """How build_panel counted events before: pd.crosstab(..., aggfunc=len)."""
    counts = (
        pd.crosstab([keys["user_id"], keys["category"], keys["day"]], event)
        .reindex(columns=list(COUNT_COLUMNS), fill_value=0)
        .astype("int64")
    )
    counts.columns.name = None
    return counts.reset_index()


def test_groupby_counts_give_the_same_panel_as_crosstab(small_sim, monkeypatch):
    ev = drop_duplicates(validate_events(small_sim.events))
    keys = pd.DataFrame({"user_id": ev["user_id"].to_numpy(), "category": ev["category"].to_numpy(),
                         "day": PN.event_days(ev["ts"])})
    new = PN._daily_counts(keys, ev["event"].to_numpy())
    pd.testing.assert_frame_equal(new, _crosstab_counts(keys, ev["event"].to_numpy()))
    assert list(new.columns) == ["user_id", "category", "day", *COUNT_COLUMNS]
    assert (new[list(COUNT_COLUMNS)].dtypes == "int64").all()
    # a log without some event types still has every count column, zero
    few = ev[ev["event"].isin(["view", "purchase"])].reset_index(drop=True)
    k2 = keys.loc[few.index]
    pd.testing.assert_frame_equal(PN._daily_counts(k2, few["event"].to_numpy()), _crosstab_counts(k2, few["event"].to_numpy()))
    panel = build_panel(ev)
    monkeypatch.setattr(PN, "_daily_counts", _crosstab_counts)
    pd.testing.assert_frame_equal(panel, build_panel(ev))
    assert list(panel.columns) == list(PANEL_COLUMNS)


def test_simulator_path_is_unchanged(small_sim, small_pre):
    assert small_pre.warnings == [] and small_pre.bot_users == small_sim.bot_users
    assert small_pre.flagged_bots == small_pre.bot_users and small_pre.bots.attrs["scale_rule"] == "mad"
    assert not small_pre.date_only and len(small_pre.time_outliers) == 0
    assert small_pre.start_date == pd.Timestamp(small_sim.config.start_date)
    assert small_pre.rows_per_event == pytest.approx(len(small_pre.panel) / len(small_pre.events_clean))
    assert set(small_pre.bot_reasons()) == set(small_sim.bot_users)
    assert all("was removed as a bot" in s for s in small_pre.bot_reasons().values())


def test_new_parameters_are_validated():
    ev = _purchases(times=True)
    with pytest.raises(TypeError, match="date_only"):
        preprocess(ev, date_only="yes")
    with pytest.raises(ValueError, match="bot_z"):
        preprocess(ev, bot_z=-1)
    with pytest.raises(ValueError, match="until"):
        preprocess(ev, until="forever")
    with pytest.raises(ValueError, match="max_outlier_share"):
        preprocess(ev, max_outlier_share=2)
