"""Forecasting on short, small or sparse logs (issue 8): clear errors naming the parameter to change,
and no ratio the data cannot support. Tiny panels built here; fast."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from decaylib.checks import InsufficientDataError
from decaylib.evaluation.forecast import compare_forecasts, gain_over_baseline
from decaylib.forecast.features import Standardizer
from decaylib.forecast.sequences import (
    build_split_windows,
    build_windows,
    split_for_update,
    split_users,
    user_folds,
)
from decaylib.forecast.train import cross_validate
from decaylib.schema import FEATURE_COLUMNS

IDENTITY = Standardizer(FEATURE_COLUMNS, np.zeros(6), np.ones(6))
IDENTITY_T = Standardizer(("interest",), [0.0], [1.0])


def make_panel(spans: dict[tuple[int, int], tuple[int, int]]) -> pd.DataFrame:
    """Panel with one row per day of each (user, category) span; counts = the day number."""
    parts = []
    for (u, c), (d0, d1) in spans.items():
        days = np.arange(d0, d1 + 1, dtype=np.int64)
        parts.append(pd.DataFrame({"user_id": np.int64(u), "category": np.int64(c), "day": days,
                                   **{f: days.astype(float) for f in FEATURE_COLUMNS}}))
    return pd.concat(parts, ignore_index=True)


# ---- splits by user on few users --------------------------------------------------------------
def test_split_users_with_too_few_users_says_how_many_are_needed():
    with pytest.raises(InsufficientDataError, match=r"too few users \(2\).*at least 3 users"):
        split_users([1, 2], val_frac=0.15, test_frac=0.15)
    train, val, test = split_users([1, 2, 3], val_frac=0.15, test_frac=0.15)
    assert (len(train), len(val), len(test)) == (1, 1, 1)


def test_user_folds_name_the_n_folds_that_fits():
    with pytest.raises(InsufficientDataError, match="n_folds=3 is larger than the number of users \\(2\\); pass n_folds=2"):
        user_folds([5, 6], n_folds=3)
    with pytest.raises(ValueError, match="at least 2 users"):  # an InsufficientDataError is a ValueError
        user_folds([5], n_folds=2)


# ---- windows per split ------------------------------------------------------------------------
def test_build_split_windows_names_the_group_without_windows():
    # users 1 and 2 have 12 days; user 3 (the "test" group) only 6: seq_length + horizon = 8 does not fit
    p = make_panel({(1, 0): (0, 11), (2, 0): (0, 11), (3, 0): (6, 11)})
    with pytest.raises(InsufficientDataError) as err:
        build_split_windows(p, IDENTITY, IDENTITY_T, {"train": [1], "val": [2], "test": [3]}, seq_length=5, horizon=3)
    msg = str(err.value)
    assert "no window can be made from the 1 test users" in msg
    assert "seq_length + horizon = 8 days (longest: 6)" in msg and "pass a smaller seq_length or horizon" in msg
    win = build_split_windows(p, IDENTITY, IDENTITY_T, {"train": [1], "val": [2], "test": [3]}, seq_length=3, horizon=2)
    assert list(win) == ["train", "val", "test"]
    assert [len(w) for w in win.values()] == [12 - 3 - 2 + 1, 8, 6 - 3 - 2 + 1]
    # windows are those of build_windows for the same users
    alone = build_windows(p, IDENTITY, IDENTITY_T, seq_length=3, horizon=2, users=[3])
    np.testing.assert_array_equal(win["test"].X.numpy(), alone.X.numpy())
    with pytest.raises(InsufficientDataError, match="the val split has no users"):
        build_split_windows(p, IDENTITY, IDENTITY_T, {"train": [1], "val": []}, seq_length=3, horizon=2)
    with pytest.raises(TypeError, match="splits"):
        build_split_windows(p, IDENTITY, IDENTITY_T, [[1]], seq_length=3, horizon=2)


def test_cross_validate_names_the_fold_without_windows():
    # two long users and two that are too short: with 4 folds, a fold holds a short user alone
    p = make_panel({(1, 0): (0, 19), (2, 0): (0, 19), (3, 0): (15, 19), (4, 0): (16, 19)})
    folds = [(np.array([1, 2, 4]), np.array([3])), (np.array([2, 3, 4]), np.array([1]))]
    with pytest.raises(InsufficientDataError, match=r"validation users of fold 1/2 \(try a smaller n_folds\)"):
        cross_validate(p, {"hidden_size": 4}, folds=folds, seq_length=5, horizon=3, epochs=1, device="cpu")


# ---- the update experiment --------------------------------------------------------------------
def _splits(last_day: int, seq_length=3, horizon=2):
    spans = {(u, 0): (0, last_day) for u in (1, 2, 3)}
    p = make_panel(spans)
    return build_split_windows(p, IDENTITY, IDENTITY_T, {"train": [1], "val": [2], "test": [3]},
                               seq_length=seq_length, horizon=horizon)


def test_split_for_update_sets_respect_the_cutoffs():
    w = _splits(last_day=29)  # 30 days, seq 3, horizon 2: needs 3 + 6 + update_days
    u = split_for_update(w["train"], w["val"], w["test"], first_day=0, last_day=29, update_days=10)
    assert (u["T1"], u["T0"]) == (29 - 4, 29 - 4 - 10)
    h = 2

    def target_end(ws):
        return ws.meta["origin_day"].to_numpy() + h

    assert (target_end(u["old_train"]) <= u["T0"]).all() and (target_end(u["old_val"]) <= u["T0"]).all()
    assert (target_end(u["upto_T1"]) <= u["T1"]).all() and (target_end(u["new_val"]) <= u["T1"]).all()
    assert (target_end(u["new_train"]) > u["T0"]).all() and (target_end(u["new_train"]) <= u["T1"]).all()
    assert (u["later_test"].meta["origin_day"] >= u["T1"]).all()
    # every training window up to T1 is either old or new
    assert len(u["old_train"]) + len(u["new_train"]) == len(u["upto_T1"])
    assert all(len(u[k]) > 0 for k in ("old_train", "new_train", "old_val", "new_val", "later_test"))


def test_split_for_update_on_a_short_span_says_which_parameter_to_change():
    w = _splits(last_day=17)  # 18 days; 3 + 3 x 2 + 14 = 23 do not fit, update_days=9 does
    with pytest.raises(InsufficientDataError) as err:
        split_for_update(w["train"], w["val"], w["test"], first_day=0, last_day=17, update_days=14)
    assert str(err.value) == ("the data spans 18 days; the update demo needs seq_length + 3 x horizon + update_days = "
                              "3 + 3 x 2 + 14 = 23; pass update_days=9, or run_update_demo=False")
    u = split_for_update(w["train"], w["val"], w["test"], first_day=0, last_day=17, update_days=9)
    assert len(u["old_train"]) == 1  # exactly one window fits before T0: the bound is tight
    w = _splits(last_day=7)  # 8 days: no update_days fits
    with pytest.raises(InsufficientDataError, match="pass a smaller seq_length or horizon, or run_update_demo=False"):
        split_for_update(w["train"], w["val"], w["test"], first_day=0, last_day=7, update_days=1)


def test_split_for_update_names_the_empty_sets():
    # the validation user starts late: no validation window before T0
    p = make_panel({(1, 0): (0, 29), (2, 0): (20, 29), (3, 0): (0, 29)})
    w = build_split_windows(p, IDENTITY, IDENTITY_T, {"train": [1], "val": [2], "test": [3]}, seq_length=3, horizon=2)
    with pytest.raises(InsufficientDataError, match="has no old_val windows: too few users are active early enough"):
        split_for_update(w["train"], w["val"], w["test"], first_day=0, last_day=29, update_days=10)


def test_split_for_update_checks_its_inputs():
    w = _splits(last_day=29)
    with pytest.raises(TypeError, match="val must be a WindowSet"):
        split_for_update(w["train"], None, w["test"], first_day=0, last_day=29, update_days=3)
    with pytest.raises(ValueError, match="update_days must be >= 1"):
        split_for_update(w["train"], w["val"], w["test"], first_day=0, last_day=29, update_days=0)
    other = _splits(last_day=29, seq_length=4)
    with pytest.raises(ValueError, match="same seq_length and horizon"):
        split_for_update(w["train"], other["val"], w["test"], first_day=0, last_day=29, update_days=3)


# ---- gain over a baseline ---------------------------------------------------------------------
def test_gain_over_baseline():
    y = np.array([[1.0, 2.0], [3.0, 0.0]])
    preds = {"net": y + 0.5, "persistence": y + 2.0}
    table = compare_forecasts(preds, {"observed": y})
    g = gain_over_baseline(table, "net", reference="observed", horizon=2)
    assert g["reason"] == "ok" and g["gain"] == pytest.approx(1 - 0.5 / 2.0)
    assert (g["model_mae"], g["baseline_mae"], g["n"]) == (0.5, 2.0, 2)
    assert "75% below persistence" in g["note"]


def test_gain_over_baseline_is_not_estimable_when_the_baseline_is_exact():
    # a sparse log: every origin and target is 0, so persistence is exact up to rounding
    y = np.zeros((4, 3))
    table = compare_forecasts({"net": y, "persistence": y + 4e-9}, {"observed": y})
    g = gain_over_baseline(table, "net", reference="observed", horizon=3)
    assert np.isnan(g["gain"]) and g["reason"] == "baseline_exact"
    assert "already exact" in g["note"] and "not estimable" in g["note"]
    mask = np.zeros((4, 3), bool)
    with np.errstate(invalid="ignore"), pytest.warns(RuntimeWarning):
        masked = compare_forecasts({"net": y + 1, "persistence": y + 2}, {"observed": y}, mask=mask)
    g = gain_over_baseline(masked, "net", reference="observed", horizon=3)
    assert np.isnan(g["gain"]) and g["reason"] == "no_scored_days"


def test_gain_over_baseline_names_a_missing_row():
    table = compare_forecasts({"net": np.ones((2, 2)), "persistence": np.zeros((2, 2))}, {"observed": np.ones((2, 2))})
    with pytest.raises(KeyError, match="reference='truth'"):
        gain_over_baseline(table, "net", reference="truth", horizon=2)
    with pytest.raises(KeyError, match="columns"):
        gain_over_baseline(table.drop(columns="n"), "net", reference="observed", horizon=2)
