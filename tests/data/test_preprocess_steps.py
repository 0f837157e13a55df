import numpy as np
import pandas as pd
import pytest

from decaylib.checks import EventSchemaError
from decaylib.data.clean import (
    CleaningReport,
    detect_bots,
    detect_outage_days,
    drop_duplicates,
    validate_events,
)
from decaylib.data.panel import (
    build_panel,
    expected_score,
    interest_score,
    moving_mean,
    moving_median,
)
from decaylib.forecast.features import Standardizer, log_transform
from decaylib.schema import COUNT_COLUMNS, PANEL_COLUMNS


def _events(rows):
    return pd.DataFrame(rows, columns=["user_id", "item_id", "category", "ts", "event"])


def tiny_events():
    return _events(
        [
            (1, 10, 0, "2026-01-01 10:00", "view"),
            (1, 10, 0, "2026-01-01 10:00", "view"),  # exact duplicate
            (1, 11, 0, "2026-01-03 09:00", "click"),
            (1, 12, 1, "2026-01-02 12:00", "purchase"),
            (2, 10, 0, "2026-01-04 08:00", "cart"),
        ]
    )


# ---- validation ---------------------------------------------------------------------------
def test_validate_accepts_strings_and_returns_canonical_types():
    out = validate_events(tiny_events())
    assert pd.api.types.is_datetime64_any_dtype(out["ts"])
    assert out["user_id"].dtype == "int64"


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda df: df.drop(columns="event"), "missing required column"),
        (lambda df: df.iloc[:0], "empty"),
        (lambda df: df.assign(ts=["2026-01-01", "not a date", "2026-01-02", "2026-01-02", "x"]), r"2 value\(s\) that are not dates.*row 1: 'not a date', row 4: 'x'"),
        (lambda df: df.assign(ts=[1511848894] * 5), r"1511848894 is 2017-11-28 .* as seconds, 1970-01-18 .* as ms"),
        (lambda df: df.assign(event=["view", "view", "like", "click", "cart"]), "unknown event name"),
        (lambda df: df.assign(user_id=["a", 1, 1, 1, 2]), "integer ids"),
        (lambda df: df.assign(item_id=[1.5, 1, 1, 1, 2]), "integer ids"),
        (lambda df: df.assign(category=[None, 1, 1, 1, 2]), "missing value"),
    ],
)
def test_validate_errors_name_the_problem(mutate, message):
    with pytest.raises(EventSchemaError, match=message):
        validate_events(mutate(tiny_events()))


def test_validate_rejects_non_dataframe():
    with pytest.raises(EventSchemaError, match="DataFrame"):
        validate_events([1, 2, 3])


# ---- cleaning steps -----------------------------------------------------------------------
def test_drop_duplicates_reports_removed_rows():
    rep = CleaningReport()
    out = drop_duplicates(validate_events(tiny_events()), rep)
    assert len(out) == 4
    assert rep.removed("drop_duplicates") == 1
    with pytest.raises(KeyError, match="no cleaning step"):
        rep.removed("nope")


def test_bot_detector_finds_the_injected_bots(small_sim):
    ev = validate_events(small_sim.events)
    bots = detect_bots(ev)
    assert sorted(bots.loc[bots["is_bot"], "user_id"]) == small_sim.bot_users


def test_preprocess_end_to_end(small_sim, small_pre):
    res = small_pre
    assert res.bot_users == small_sim.bot_users
    assert res.outage_days == small_sim.outage_days
    steps = res.report.to_frame()
    assert list(steps["step"]) == ["validate", "drop_duplicates", "remove_bots", "aggregate"]
    assert (steps["removed"] >= 0).all() and steps.loc[3, "removed"] == 0  # aggregating removes nothing
    assert steps.loc[3, "rows_after"] == len(res.panel)
    assert steps.loc[1, "removed"] == small_sim.n_duplicates or steps.loc[1, "removed"] >= small_sim.n_duplicates * 0.9
    panel = res.panel
    assert list(panel.columns) == list(PANEL_COLUMNS)
    assert not panel.isna().any().any()
    assert not panel["user_id"].isin(small_sim.bot_users).any()
    # days contiguous per pair, up to the last day of the window
    g = panel.groupby(["user_id", "category"])["day"]
    assert ((g.max() - g.min() + 1) == g.size()).all()
    assert (g.max() == small_sim.config.n_days - 1).all()
    # the score tracks the truth
    m = panel.merge(small_sim.truth_daily.rename(columns={"interest": "true_interest"}), on=["user_id", "category", "day"])
    m = m[m["observed"]]
    r_raw = np.corrcoef(m["interest"], expected_score(m))[0, 1]
    r_smooth = np.corrcoef(m["interest_smooth"], expected_score(m))[0, 1]
    assert r_raw > 0.7 and r_smooth > r_raw


def test_zero_fill_and_counts():
    ev = validate_events(tiny_events())
    ev = drop_duplicates(ev)
    panel = build_panel(ev, outage_days=[])
    p0 = panel[(panel.user_id == 1) & (panel.category == 0)]
    assert p0["day"].tolist() == [0, 1, 2, 3]  # zero-filled to the end of the window (day 3)
    assert p0["view"].tolist() == [1, 0, 0, 0] and p0["click"].tolist() == [0, 0, 1, 0]
    assert p0["interest"].tolist() == [1.0, 0.0, 2.0, 0.0]
    short = build_panel(ev, outage_days=[], until="last_activity")
    assert short[(short.user_id == 1) & (short.category == 0)]["day"].tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="until"):
        build_panel(ev, until="forever")


def test_outage_detection_from_shares():
    rows = []
    for pair in range(30):
        for d in range(40):
            if d != 20:
                rows.append({"user_id": pair, "category": 0, "day": d, "view": 1, "click": 0, "cart": 0, "purchase": 0, "impression": 0})
            else:
                rows.append({"user_id": pair, "category": 0, "day": d, "view": 0, "click": 0, "cart": 0, "purchase": 0, "impression": 0})
    panel = pd.DataFrame(rows)
    assert detect_outage_days(panel) == [20]


def test_interest_score_weights():
    counts = pd.DataFrame({"view": [1, 0], "click": [0, 1], "cart": [0, 0], "purchase": [1, 0]})
    np.testing.assert_allclose(interest_score(counts), [6.0, 2.0])
    np.testing.assert_allclose(interest_score(counts, {"view": 1, "purchase": 10}), [11.0, 0.0])
    with pytest.raises(ValueError, match="unknown behaviour"):
        interest_score(counts, {"like": 1})
    with pytest.raises(ValueError, match="non-negative"):
        interest_score(counts, {"view": -1})


def test_filters_within_pairs():
    panel = pd.DataFrame({"user_id": [1] * 5 + [2] * 3, "category": 0, "interest": [0, 0, 9, 0, 0, 3, 3, 3.0]})
    med = moving_median(panel, window=3)
    assert med[:5].tolist() == [0, 0, 0, 0, 0]  # the spike is removed by the median
    mean = moving_mean(panel, window=3)
    assert mean[1] == pytest.approx(3.0) and mean[4] == pytest.approx(0.0)
    assert mean[5:].tolist() == [3, 3, 3]  # no bleed across pairs
    causal = moving_mean(panel, window=3, center=False)
    assert causal[2] == pytest.approx(3.0) and causal[1] == pytest.approx(0.0)  # sees no future days


def test_log_transform_handles_zero_and_rejects_negative():
    assert log_transform([0.0])[0] == 0.0
    assert log_transform([np.e - 1])[0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="negative"):
        log_transform([-1.0])


def test_standardizer_fitted_on_training_users_only(small_pre):
    panel = small_pre.panel
    users = sorted(panel["user_id"].unique())
    train = users[: len(users) // 2]
    st = Standardizer.fit(panel, train, ["view", "interest"])
    other = panel.copy()
    other.loc[~other["user_id"].isin(train), "view"] += 1000  # change only non-training users
    st2 = Standardizer.fit(other, train, ["view", "interest"])
    np.testing.assert_allclose(st.mean, st2.mean)
    z = st.transform(panel[panel["user_id"].isin(train)])
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-9)
    np.testing.assert_allclose(st.inverse_transform(st.transform(panel)), panel[["view", "interest"]].to_numpy(), atol=1e-9)
    assert Standardizer.from_dict(st.to_dict()).to_dict() == st.to_dict()
    with pytest.raises(KeyError, match="not in the panel"):
        Standardizer.fit(panel, [-1], ["view"])
    with pytest.raises(KeyError, match="missing required column"):
        Standardizer.fit(panel, train, ["nope"])


@pytest.mark.parametrize("how", ["mean", "median"])
@pytest.mark.parametrize("center", [True, False])
def test_rolling_matches_pandas_groupby_rolling(how, center):
    """The vectorized moving filters give pandas' groupby-rolling windows exactly (NaN skipped,
    groups not contiguous, every window length up to 9)."""
    from decaylib.data.panel import _rolling

    rng = np.random.default_rng(0)
    n = 2000
    u, c = rng.integers(0, 40, n), rng.integers(0, 3, n)
    x = rng.poisson(3, n).astype(float)
    x[rng.random(n) < 0.2] = np.nan
    for w in range(1, 10):
        r = pd.Series(x).groupby([u, c], sort=False).rolling(w, center=center, min_periods=1)
        ref = (r.mean() if how == "mean" else r.median()).reset_index(level=[0, 1], drop=True).sort_index().to_numpy()
        got = _rolling(pd.Series(x), [pd.Series(u), pd.Series(c)], w, center, how)
        np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
        np.testing.assert_allclose(got[~np.isnan(ref)], ref[~np.isnan(ref)], rtol=1e-12, atol=1e-12)
        # the same rows sorted by pair (groups contiguous, as in a panel): no reordering, same values
        o = np.lexsort((c, u))
        sorted_got = _rolling(pd.Series(x[o]), [pd.Series(u[o]), pd.Series(c[o])], w, center, how)
        np.testing.assert_array_equal(sorted_got, got[o])


def test_panel_from_counts_sorted_or_shuffled():
    """The SQL engines hand sorted daily counts (pairs found by a scan); any other order takes the
    groupby path: the same panel, every active pair-day with its counts, zeros elsewhere."""
    from decaylib.data.panel import _panel_from_counts

    rng = np.random.default_rng(1)
    rows = pd.DataFrame({"user_id": rng.integers(0, 30, 400), "category": rng.integers(0, 4, 400),
                         "day": rng.integers(0, 60, 400)}).drop_duplicates(["user_id", "category", "day"])
    for col in COUNT_COLUMNS:
        rows[col] = rng.poisson(2, len(rows)).astype("int64")
    keys = ["user_id", "category", "day"]
    srt = rows.sort_values(keys).reset_index(drop=True)
    a = _panel_from_counts(srt, 70, outage_days=[])
    b = _panel_from_counts(rows.sample(frac=1, random_state=0).reset_index(drop=True), 70, outage_days=[])
    pd.testing.assert_frame_equal(a, b)
    got = a.merge(srt[keys], on=keys)  # the active pair-days
    pd.testing.assert_frame_equal(got[keys + list(COUNT_COLUMNS)].reset_index(drop=True), srt[keys + list(COUNT_COLUMNS)])
    first = srt.groupby(["user_id", "category"])["day"].min()
    assert len(a) == int((70 - first + 1).sum()) and a[list(COUNT_COLUMNS)].to_numpy().sum() == srt[list(COUNT_COLUMNS)].to_numpy().sum()
    with pytest.raises(ValueError, match="more than one row"):
        _panel_from_counts(pd.concat([srt, srt.iloc[:1]]).sort_values(keys).reset_index(drop=True), 70, outage_days=[])
    # a mapping of NumPy arrays (what the SQL engines hand over) gives the same panel
    pd.testing.assert_frame_equal(_panel_from_counts({k: srt[k].to_numpy() for k in srt.columns}, 70, outage_days=[]), a)
    # outage days: not observed, interest imputed from the smoothed neighbours, the same both ways
    c = _panel_from_counts(srt, 70, outage_days=[5, 6, 40])
    pd.testing.assert_frame_equal(c, _panel_from_counts(rows.sample(frac=1, random_state=2), 70, outage_days=[5, 6, 40]))
    lost = ~c["observed"]
    assert set(c.loc[lost, "day"]) == {5, 6, 40}
    # no smoothing at all: the smoothed column is still a column of its own
    raw = _panel_from_counts(srt, 70, outage_days=[], median_window=1, mean_window=1)
    np.testing.assert_array_equal(raw["interest_smooth"], raw["interest"])
    assert not np.shares_memory(raw["interest_smooth"].to_numpy(), raw["interest"].to_numpy())
    np.testing.assert_array_equal(c.loc[lost, "interest"], c.loc[lost, "interest_smooth"])


def test_smooth_interest_sorted_panel_equals_the_general_path():
    """A panel in (user, category, day) order smooths with its pairs numbered once
    (_smooth_grouped); any other row order takes the general path: the same numbers, bit for bit."""
    from decaylib.data.panel import smooth_interest

    rng = np.random.default_rng(3)
    n_pairs, days = 40, 25
    panel = pd.DataFrame({"user_id": np.repeat(np.arange(n_pairs) // 4, days), "category": np.repeat(np.arange(n_pairs) % 4, days),
                          "day": np.tile(np.arange(days), n_pairs)})
    panel["interest"] = rng.poisson(3, len(panel)).astype(float)
    panel["observed"] = ~panel["day"].isin([3, 4, 5, 6, 7, 8, 9, 10, 11])  # longer than a window: the fill-forward too
    # pairs in another order (the rows of a pair still in day order: rolling windows follow the rows)
    order = (rng.permutation(n_pairs)[:, None] * days + np.arange(days)).ravel()
    for mw, aw in ((3, 7), (5, 4), (1, 7), (3, 1)):
        a = smooth_interest(panel, mw, aw)
        b = np.empty(len(panel))
        b[order] = smooth_interest(panel.iloc[order].reset_index(drop=True), mw, aw)
        np.testing.assert_array_equal(a, b)
        assert not np.isnan(a).any()
    with pytest.raises(ValueError, match="window"):
        smooth_interest(panel, 0, 7)


def busy_buyer_log(n_users: int = 30, busy=(90, 91), buyers=(90,)):
    """``n_users`` users with one view on each of 3 days (so the MAD of the bot rule is 0); each
    ``busy`` user: 11 events in 68 minutes, the last a purchase for ``buyers`` (a real log's
    paying customer), a view for the others."""
    t0 = pd.Timestamp("2026-03-02 09:00")
    rows = [(u, 100 + u, u % 4, t0 + pd.Timedelta(days=d, minutes=u), "view") for u in range(n_users) for d in range(3)]
    for u in busy:
        kinds = ["view"] * 6 + ["click"] * 3 + ["cart"] + ["purchase" if u in buyers else "view"]
        rows += [(u, 200 + k, k % 3, t0 + pd.Timedelta(minutes=round(68 * k / 10)), e) for k, e in enumerate(kinds)]
    return _events(rows)


def test_fallback_bot_rule_never_removes_a_buyer():
    from decaylib.checks import DataWarning
    from decaylib.data.clean import MIN_FALLBACK_SCALE
    from decaylib.data.preprocess import preprocess

    ev = validate_events(busy_buyer_log())
    with pytest.warns(DataWarning, match="flagged user\\(s\\) with purchases kept"):
        bots = detect_bots(ev).set_index("user_id")
    assert bots.attrs["scale_rule"] == "floor" and bots.attrs["scale"] == pytest.approx(MIN_FALLBACK_SCALE)
    # both users are flagged by the numbers: z = log(11) / 0.576 = 4.16 > 4
    assert bots.loc[[90, 91], "robust_z"].tolist() == pytest.approx([np.log(11) / MIN_FALLBACK_SCALE] * 2)
    assert bots.loc[[90, 91], "is_bot"].all() and bots["is_bot"].sum() == 2
    assert bots.loc[90, "n_purchases"] == 1 and bots.loc[91, "n_purchases"] == 0
    assert bots.loc[90, "buyer_kept"] and not bots.loc[91, "buyer_kept"]
    assert "kept: 1 purchase(s), and the MAD was 0" in bots.loc[90, "reason"]
    assert "kept" not in bots.loc[91, "reason"]

    with pytest.warns(DataWarning):
        res = preprocess(ev)
    assert res.bot_users == [91] and res.flagged_bots == [90, 91]
    assert 90 in set(res.panel["user_id"]) and 91 not in set(res.panel["user_id"])
    rec = res.bots.set_index("user_id")
    assert not rec.loc[90, "removed"] and rec.loc[91, "removed"]
    assert res.bots.attrs["n_removable"] == 1 and res.bots.attrs["bot_z"] == 4.0
    assert "1 flagged buyer(s) kept" in res.report.to_frame().set_index("step").loc["remove_bots", "reason"]
    assert res.bot_reasons()[90].startswith("user 90 was flagged as a bot but kept: 11 events per active day")
    assert "max_bot_share" not in res.bot_reasons()[90]


def test_a_buyer_is_still_removed_when_the_mad_is_not_0():
    from decaylib.data.preprocess import preprocess

    # users at 1..6 events a day (MAD > 0); user 90 buys, at 1,000 events a day: the robust rule removes it
    t0 = pd.Timestamp("2026-03-02")
    rows = [(u, 100 + k, k % 3, t0 + pd.Timedelta(days=d, minutes=k), "view")
            for u in range(24) for d in range(3) for k in range(1 + u % 6)]
    rows += [(90, 100 + k % 50, k % 3, t0 + pd.Timedelta(days=d, seconds=k), "purchase" if k == 0 else "view")
             for d in range(3) for k in range(1000)]
    res = preprocess(_events(rows))
    assert res.bots.attrs["scale_rule"] == "mad"
    assert res.bot_users == [90] and not res.bots["buyer_kept"].any()
