"""Unit tests of decaylib.forecast.sequences: windows, scaling, splits (tiny synthetic panels, fast)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from decaylib.forecast.features import Standardizer
from decaylib.forecast.sequences import (
    WindowSet,
    build_windows,
    fit_feature_stats,
    fit_target_transform,
    split_by_time,
    split_users,
    user_folds,
)
from decaylib.schema import FEATURE_COLUMNS

SEQ, H = 5, 3


def make_panel(spans: dict[tuple[int, int], tuple[int, int]]) -> pd.DataFrame:
    """Panel whose counts encode the day: view = click = ... = interest = day, impression = pair tag.

    ``spans`` maps (user_id, category) -> (first_day, last_day) inclusive.
    """
    parts = []
    for (u, c), (d0, d1) in spans.items():
        days = np.arange(d0, d1 + 1, dtype=np.int64)
        parts.append(
            pd.DataFrame(
                {
                    "user_id": np.int64(u),
                    "category": np.int64(c),
                    "day": days,
                    "view": days,
                    "click": days,
                    "cart": days,
                    "purchase": days,
                    "impression": np.full(days.size, 100 * u + c, dtype=np.int64),
                    "interest": days.astype(np.float64),
                    "observed": np.ones(days.size, dtype=bool),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)


SPANS = {(1, 0): (0, 19), (1, 2): (4, 15), (2, 0): (3, 12), (3, 1): (0, 6), (4, 0): (10, 29)}
IDENTITY = Standardizer(FEATURE_COLUMNS, np.zeros(6), np.ones(6))
IDENTITY_T = Standardizer(("interest",), [0.0], [1.0])


def identity_windows(panel=None, **kw) -> WindowSet:
    return build_windows(make_panel(SPANS) if panel is None else panel, IDENTITY, IDENTITY_T,
                         seq_length=SEQ, horizon=H, **kw)


def expected_count(spans, need):
    return sum(max(0, d1 - d0 + 1 - need + 1) for d0, d1 in spans.values())


def test_shapes_dtypes_and_counts():
    ws = identity_windows()
    n = expected_count(SPANS, SEQ + H)
    assert len(ws) == n == 13 + 5 + 3 + 0 + 13
    assert ws.X.shape == (n, SEQ, 6) and ws.X.dtype == torch.float32
    assert ws.Y.shape == (n, H) and ws.Y.dtype == torch.float32
    assert ws.y_raw.shape == (n, H) and ws.target_observed.all()
    assert list(ws.meta.columns) == ["user_id", "category", "origin_day", "origin_interest"]
    assert ws.meta["origin_day"].dtype == np.int64
    assert ws.n_pairs == 5 and ws.n_skipped_pairs == 1  # pair (3, 1) has 7 < 8 days
    assert "skipped_pairs=1" in repr(ws)
    X, Y = ws.tensors  # built on demand from the per-row arrays: equal, not the same objects
    assert torch.equal(X, ws.X) and torch.equal(Y, ws.Y)


def test_windows_never_see_after_origin_and_targets_are_next_days():
    ws = identity_windows()
    days = np.rint(np.expm1(ws.X.numpy().astype(np.float64)))  # every count column == day
    origin = ws.meta["origin_day"].to_numpy()
    expected = origin[:, None] + np.arange(-SEQ + 1, 1)
    for j in range(4):  # view, click, cart, purchase
        np.testing.assert_array_equal(days[:, :, j], expected)
    np.testing.assert_array_equal(days[:, :, 5], expected)  # interest
    assert (days[:, :, :4] <= origin[:, None, None]).all()
    # a window never mixes pairs: the pair tag (impression) is constant along the window
    tag = days[:, :, 4]
    np.testing.assert_array_equal(tag, np.repeat(tag[:, :1], SEQ, axis=1))
    np.testing.assert_array_equal(tag[:, 0], 100 * ws.meta["user_id"] + ws.meta["category"])
    # targets are exactly days origin+1 .. origin+H
    np.testing.assert_array_equal(ws.y_raw, origin[:, None] + np.arange(1, H + 1))
    np.testing.assert_allclose(ws.Y.numpy(), np.log1p(ws.y_raw), rtol=1e-6)
    np.testing.assert_array_equal(ws.meta["origin_interest"], origin.astype(float))
    # first and last origins per pair
    g = ws.meta.groupby(["user_id", "category"])["origin_day"]
    assert g.min().to_dict() == {(1, 0): 4, (1, 2): 8, (2, 0): 7, (4, 0): 14}
    assert g.max().to_dict() == {(1, 0): 16, (1, 2): 12, (2, 0): 9, (4, 0): 26}


def test_inference_windows_reach_last_day_and_latest_only():
    ws = identity_windows(with_target=False)
    assert ws.Y is None and ws.y_raw is None and ws.target_observed is None
    assert len(ws) == expected_count(SPANS, SEQ) and ws.n_skipped_pairs == 0
    assert ws.meta.groupby(["user_id", "category"])["origin_day"].max().to_dict() == {
        (1, 0): 19, (1, 2): 15, (2, 0): 12, (3, 1): 6, (4, 0): 29,
    }
    latest = identity_windows(with_target=False, latest_only=True)
    assert len(latest) == 5
    assert latest.meta["origin_day"].tolist() == [19, 15, 12, 6, 29]
    last_days = np.rint(np.expm1(latest.X[:, -1, 0].double().numpy()))
    np.testing.assert_array_equal(last_days, latest.meta["origin_day"])
    with pytest.raises(ValueError, match="no targets"):
        _ = latest.tensors
    lt = identity_windows(latest_only=True)  # latest origin that still has H future days
    assert lt.meta["origin_day"].tolist() == [16, 12, 9, 26]


def test_unsorted_panel_gives_same_windows():
    p = make_panel(SPANS)
    shuffled = p.sample(frac=1.0, random_state=0).reset_index(drop=True)
    a, b = identity_windows(p), identity_windows(shuffled)
    assert torch.equal(a.X, b.X) and torch.equal(a.Y, b.Y)
    pd.testing.assert_frame_equal(a.meta, b.meta)


def test_target_observed_mask_follows_outages():
    p = make_panel(SPANS)
    p.loc[(p.user_id == 1) & (p.category == 0) & (p.day == 10), "observed"] = False
    ws = identity_windows(p)
    origin = ws.meta["origin_day"].to_numpy()
    sel = (ws.meta["user_id"] == 1).to_numpy() & (ws.meta["category"] == 0).to_numpy()
    expect = ~(sel[:, None] & (origin[:, None] + np.arange(1, H + 1) == 10))
    np.testing.assert_array_equal(ws.target_observed, expect)


def test_users_filter_subset_and_for_users():
    ws = identity_windows(users=[1, 4])
    assert set(ws.meta["user_id"]) == {1, 4} and len(ws) == 13 + 5 + 13
    full = identity_windows()
    sub = full.for_users([2])
    assert len(sub) == 3 and (sub.meta["user_id"] == 2).all()
    np.testing.assert_array_equal(sub.X.numpy(), full.X.numpy()[(full.meta.user_id == 2).to_numpy()])
    with pytest.raises(KeyError, match="no window"):
        full.for_users([3])  # user 3 exists but its only pair is too short


def test_feature_stats_use_training_users_only():
    p = make_panel(SPANS)
    train = [1, 2]
    fs = fit_feature_stats(p, train)
    rows = p["user_id"].isin(train)
    lx = np.log1p(p.loc[rows, list(FEATURE_COLUMNS)].to_numpy(float))
    np.testing.assert_allclose(fs.mean, lx.mean(axis=0))
    np.testing.assert_allclose(fs.std, lx.std(axis=0))
    ts = fit_target_transform(p, train)
    np.testing.assert_allclose(ts.mean, [lx[:, 5].mean()])
    # changing a test user's data changes nothing ...
    q = p.copy()
    q.loc[q.user_id == 4, list(FEATURE_COLUMNS)] = 999
    fs2, ts2 = fit_feature_stats(q, train), fit_target_transform(q, train)
    np.testing.assert_array_equal(fs2.mean, fs.mean)
    np.testing.assert_array_equal(fs2.std, fs.std)
    np.testing.assert_array_equal(ts2.mean, ts.mean)
    # ... while changing a training user's data does
    q.loc[q.user_id == 1, "view"] = 999
    assert fit_feature_stats(q, train).mean[0] != fs.mean[0]


def test_standardized_windows_and_constant_column():
    p = make_panel(SPANS)
    p["cart"] = 0  # constant -> std 1, no division by zero
    fs = fit_feature_stats(p, [1, 2, 3, 4])
    assert fs.std[2] == 1.0 and fs.mean[2] == 0.0
    ws = build_windows(p, fs, fit_target_transform(p, [1, 2, 3, 4]), seq_length=SEQ, horizon=H)
    assert torch.isfinite(ws.X).all()
    raw = ws.X.numpy().astype(np.float64) * fs.std + fs.mean
    np.testing.assert_allclose(np.expm1(raw[:, :, 0]), np.rint(np.expm1(raw[:, :, 0])), atol=1e-3)


def test_target_transform_exact_inverse_and_dict_round_trip():
    p = make_panel(SPANS)
    ts = fit_target_transform(p, [1, 2])
    y = np.array([[0.0, 1.0, 2.5], [17.0, 123.25, 4000.0]])
    np.testing.assert_allclose(ts.inverse_transform(ts.transform(y)), y, rtol=1e-12, atol=1e-12)
    z = ts.transform(y)
    np.testing.assert_allclose(z, (np.log1p(y) - ts.mean[0]) / ts.std[0])
    assert (ts.inverse_transform(np.full((2, 2), -50.0), clip=True) == 0).all()
    d = ts.to_dict()
    assert d["columns"] == ["interest"] and all(type(v) is float for v in d["mean"] + d["std"])
    back = Standardizer.from_dict(d)
    assert back.columns == ts.columns
    np.testing.assert_array_equal(back.mean, ts.mean)
    fs = fit_feature_stats(p, [1])
    fs2 = Standardizer.from_dict(fs.to_dict())
    np.testing.assert_array_equal(fs2.transform(p), fs.transform(p))
    np.testing.assert_allclose(fs.inverse_transform(fs.transform(p)), p[list(FEATURE_COLUMNS)].to_numpy(float))


def test_split_users_disjoint_deterministic():
    ids = np.repeat(np.arange(100, 200), 3)  # duplicates are fine (a panel column)
    tr, va, te = split_users(ids, val_frac=0.2, test_frac=0.1, seed=7)
    assert (len(tr), len(va), len(te)) == (70, 20, 10)
    assert not (set(tr) & set(va) or set(tr) & set(te) or set(va) & set(te))
    assert set(tr) | set(va) | set(te) == set(range(100, 200))
    again = split_users(ids, val_frac=0.2, test_frac=0.1, seed=7)
    for a, b in zip((tr, va, te), again):
        np.testing.assert_array_equal(a, b)
    other = split_users(ids, val_frac=0.2, test_frac=0.1, seed=8)
    assert not np.array_equal(va, other[1])
    tr0, va0, te0 = split_users(np.arange(3), val_frac=0.1, test_frac=0.1, seed=0)
    assert (len(tr0), len(va0), len(te0)) == (1, 1, 1)
    _, _, none = split_users(np.arange(10), val_frac=0.2, test_frac=0.0)
    assert none.size == 0


def test_user_folds_cover_each_user_once():
    ids = np.arange(23)
    folds = user_folds(ids, n_folds=5, seed=3)
    assert len(folds) == 5
    vals = np.concatenate([v for _, v in folds])
    np.testing.assert_array_equal(np.sort(vals), ids)
    for tr, va in folds:
        assert not set(tr) & set(va)
        np.testing.assert_array_equal(np.sort(np.concatenate([tr, va])), ids)
        assert len(va) in (4, 5)
    again = user_folds(ids, n_folds=5, seed=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    with pytest.raises(ValueError, match="n_folds"):
        user_folds(ids, n_folds=1)
    with pytest.raises(ValueError, match="larger than the number of users"):
        user_folds(np.arange(3), n_folds=4)


def test_split_by_time():
    ws = identity_windows()
    before, after = split_by_time(ws, cutoff=15)
    assert len(before) and len(after)
    assert (before.y_raw <= 15).all()  # target value == target day
    assert (before.meta["origin_day"] + H <= 15).all()
    assert (after.y_raw > 15).all() and (after.meta["origin_day"] >= 15).all()
    assert len(before) + len(after) < len(ws)  # straddling windows dropped


def test_bad_inputs_give_clear_errors():
    p = make_panel(SPANS)
    with pytest.raises(KeyError, match="cart"):
        build_windows(p.drop(columns="cart"), IDENTITY, IDENTITY_T)
    with pytest.raises(ValueError, match="empty"):
        build_windows(p.iloc[:0], IDENTITY, IDENTITY_T)
    with pytest.raises(ValueError, match="seq_length"):
        build_windows(p, IDENTITY, IDENTITY_T, seq_length=0)
    with pytest.raises(ValueError, match="horizon"):
        build_windows(p, IDENTITY, IDENTITY_T, horizon=0)
    with pytest.raises(TypeError, match="seq_length"):
        build_windows(p, IDENTITY, IDENTITY_T, seq_length=2.5)
    with pytest.raises(KeyError, match="not in the panel"):
        build_windows(p, IDENTITY, IDENTITY_T, users=[1, 99])
    with pytest.raises(KeyError, match="not in the panel"):
        fit_feature_stats(p, [42])
    with pytest.raises(ValueError, match="empty"):
        fit_feature_stats(p, [])
    with pytest.raises(ValueError, match="target_transform"):
        build_windows(p, IDENTITY, None)
    with pytest.raises(ValueError, match="no window can be made"):
        build_windows(p, IDENTITY, IDENTITY_T, seq_length=30, horizon=7)
    with pytest.raises(ValueError, match="contiguous"):
        build_windows(p.drop(index=5), IDENTITY, IDENTITY_T, seq_length=SEQ, horizon=H)
    with pytest.raises(ValueError, match="duplicate"):
        build_windows(pd.concat([p, p.iloc[[3]]]), IDENTITY, IDENTITY_T, seq_length=SEQ, horizon=H)
    with pytest.raises(TypeError, match="Standardizer"):
        build_windows(p, {"mean": 0}, IDENTITY_T)
    with pytest.raises(TypeError, match="DataFrame"):
        build_windows(p.to_numpy(), IDENTITY, IDENTITY_T)
    neg = p.copy()
    neg.loc[0, "view"] = -1
    with pytest.raises(ValueError, match="negative"):
        fit_feature_stats(neg, [1])
    nan = p.copy()
    nan["interest"] = nan["interest"].astype(float)
    nan.loc[2, "interest"] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        fit_target_transform(nan, [1])
    with pytest.raises(ValueError, match="val_frac"):
        split_users(np.arange(10), val_frac=1.5)
    with pytest.raises(ValueError, match="< 1"):
        split_users(np.arange(10), val_frac=0.5, test_frac=0.5)
    with pytest.raises(ValueError, match="no training user"):
        split_users(np.arange(2), val_frac=0.3, test_frac=0.3)
    with pytest.raises(TypeError, match="integer"):
        split_users(np.array(["a", "b", "c"]))
    with pytest.raises(ValueError, match="one entry per column"):
        Standardizer(("a", "b"), [0.0], [1.0])


def test_pad_start_gives_windows_from_the_first_day():
    from decaylib.forecast.features import Standardizer
    from decaylib.forecast.sequences import build_windows

    days = np.arange(10, 30)
    panel = pd.DataFrame({"user_id": 1, "category": 2, "day": days, "view": days - 9, "click": 0, "cart": 0,
                          "purchase": 0, "impression": 0, "interest": (days - 9).astype(float)})
    fs = Standardizer.fit(panel, [1], ["view", "interest"])
    ts = Standardizer.fit(panel, [1], ["interest"])
    plain = build_windows(panel, fs, ts, seq_length=5, horizon=2)
    padded = build_windows(panel, fs, ts, seq_length=5, horizon=2, pad_start=True)
    assert plain.meta["origin_day"].min() == 14 and padded.meta["origin_day"].min() == 10
    assert len(padded) == len(plain) + 4
    # the first padded window: four zero days, then day 10 (view 1)
    raw = fs.inverse_transform(padded.X[0].numpy().astype(np.float64))
    np.testing.assert_allclose(raw[:, 0], [0, 0, 0, 0, 1], atol=1e-5)
    # windows that exist in both are identical, and no window sees past its origin
    same = padded.meta["origin_day"] >= 14
    np.testing.assert_array_equal(padded.X[torch.from_numpy(same.to_numpy().copy())].numpy(), plain.X.numpy())
    last_view = fs.inverse_transform(padded.X[:, -1].numpy().astype(np.float64))[:, 0]
    np.testing.assert_allclose(last_view, padded.meta["origin_day"] - 9, atol=1e-4)


# --------------------------------------------------------------------------------------------
# lazy windows (issue 20): index arrays into per-row arrays, identical to windows cut eagerly
# --------------------------------------------------------------------------------------------
def eager_windows(panel, fs, ts, seq_length, horizon, with_target=True, pad_start=False):
    """The windows as the eager implementation cut them: every window copied out with
    ``sliding_window_view`` (the reference the lazy WindowSet must equal, bit for bit)."""
    from numpy.lib.stride_tricks import sliding_window_view

    p = panel.sort_values(["user_id", "category", "day"], kind="stable").reset_index(drop=True)
    pair = p.groupby(["user_id", "category"], sort=False).ngroup().to_numpy()
    pos = p.groupby(["user_id", "category"], sort=False).cumcount().to_numpy()
    plen = p.groupby(["user_id", "category"], sort=False)["day"].transform("size").to_numpy()
    lead = 0 if pad_start else seq_length - 1
    rows = np.flatnonzero((pos >= lead) & (pos <= plen - 1 - (horizon if with_target else 0)))
    feats = fs.transform(p[list(fs.columns)].to_numpy(dtype=np.float64)).astype(np.float32)
    wrows = rows
    if pad_start and seq_length > 1:
        pad = seq_length - 1
        zero = fs.transform(np.zeros((1, len(fs.columns)))).astype(np.float32)
        shift = (pair + 1) * pad
        padded = np.repeat(zero, len(feats) + (pair[-1] + 1) * pad, axis=0)
        padded[np.arange(len(feats)) + shift] = feats
        feats, wrows = padded, rows + shift[rows]
    X = np.ascontiguousarray(sliding_window_view(feats, seq_length, axis=0)[wrows - (seq_length - 1)].transpose(0, 2, 1))
    out = {"X": X, "user_id": p["user_id"].to_numpy()[rows], "origin_day": p["day"].to_numpy()[rows]}
    if with_target:
        y_raw = sliding_window_view(p["interest"].to_numpy(dtype=np.float64), horizon)[rows + 1]
        out.update(y_raw=y_raw, Y=ts.transform(y_raw).astype(np.float32),
                   observed=sliding_window_view(p["observed"].to_numpy(dtype=bool), horizon)[rows + 1])
    return out


@pytest.mark.parametrize("with_target", [True, False])
@pytest.mark.parametrize("pad_start", [False, True])
def test_lazy_windows_equal_eager_windows_bit_for_bit(with_target, pad_start):
    from tests.panels import random_panel

    panel = random_panel(seed=3, n_users=9)
    panel["observed"] = panel["day"] % 11 != 4
    shuffled = panel.sample(frac=1.0, random_state=0)  # the rows are sorted inside
    users = np.unique(panel["user_id"])[:7]
    fs, ts = fit_feature_stats(panel, users), fit_target_transform(panel, users)
    ws = build_windows(shuffled, fs, ts, seq_length=6, horizon=4, users=users, with_target=with_target,
                       pad_start=pad_start)
    ref = eager_windows(panel[panel["user_id"].isin(users)], fs, ts, 6, 4, with_target, pad_start)
    assert len(ws) == len(ref["X"]) > 0
    np.testing.assert_array_equal(ws.X.numpy(), ref["X"])
    np.testing.assert_array_equal(ws.meta["user_id"], ref["user_id"])
    np.testing.assert_array_equal(ws.meta["origin_day"], ref["origin_day"])
    if with_target:
        np.testing.assert_array_equal(ws.Y.numpy(), ref["Y"])
        np.testing.assert_array_equal(ws.y_raw, ref["y_raw"])
        np.testing.assert_array_equal(ws.target_observed, ref["observed"])
        assert not ws.target_observed.all()
        # the Dataset slices the same windows, one by one and by batch
        ds = ws.dataset()
        x3, y3 = ds[3]
        assert torch.equal(x3, ws.X[3]) and torch.equal(y3, ws.Y[3])
        idx = torch.tensor([5, 0, 7, 5])
        xb, yb = ds.batch(idx)
        assert torch.equal(xb, ws.X[idx]) and torch.equal(yb, ws.Y[idx])
    # a sample draws positions only: the same windows as sampling the eager arrays
    sub = ws.sample(10, seed=4)
    pick = np.sort(np.random.default_rng(4).choice(len(ws), size=10, replace=False))
    np.testing.assert_array_equal(sub.X.numpy(), ref["X"][pick])


def test_dense_arrays_above_the_budget_name_the_parameter(monkeypatch):
    from decaylib.checks import MemoryBudgetError
    from decaylib.forecast import sequences

    ws = identity_windows()
    monkeypatch.setattr(sequences, "WINDOW_MEMORY_BUDGET", 1000)
    with pytest.raises(MemoryBudgetError, match=r"X of 34 windows x seq_length=5 x 6 features .*max_train_windows"):
        ws.X  # 34 x 5 x 6 float32 = 4080 bytes
    assert ws.sample(2).X.shape == (2, SEQ, 6)  # 240 bytes: within the budget
    assert len(ws.Y) == 34  # 34 x 3 float32 = 408 bytes
