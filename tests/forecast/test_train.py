"""Unit tests of decaylib.forecast.train: training loop, prediction, checkpoints, cross-validation."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch

from decaylib.evaluation.forecast import regression_metrics
from decaylib.forecast.checkpoints import load_checkpoint, save_checkpoint
from decaylib.forecast.features import Standardizer
from decaylib.forecast.models import CELLS, build_model
from decaylib.forecast.sequences import (
    build_windows,
    fit_feature_stats,
    fit_target_transform,
)
from decaylib.forecast.train import (
    TrainHistory,
    cross_validate,
    forecast_frame,
    predict,
    predict_interest,
    torch_threads,
    train_model,
)

FAST = dict(device="cpu", progress=False)


def tiny_data(n=16, seq=6, f=3, h=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, seq, f, generator=g), torch.randn(n, h, generator=g)


def config(cell="lstm", hidden=16, f=3, h=2, **kw):
    return {"cell": cell, "n_features": f, "hidden_size": hidden, "horizon": h, **kw}


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("cell", CELLS)
def test_overfits_tiny_set_to_near_zero_loss(cell):
    X, Y = tiny_data()
    m = build_model(config(cell, hidden=32), seed=0)
    hist = train_model(m, (X, Y), epochs=300, batch_size=16, learning_rate=1e-2, seed=0, **FAST)
    assert hist.epochs_run == 300 and hist.best_epoch == 300
    assert hist.train_loss[0] > 0.5
    final = torch.mean((torch.as_tensor(predict(m, X, device="cpu")) - Y) ** 2).item()
    assert final < 1e-3, f"{cell} did not overfit: mse {final}"


def test_same_seed_same_weights_different_seed_differs():
    X, Y = tiny_data(n=40)
    Xv, Yv = tiny_data(n=12, seed=1)
    runs = []
    for seed in (3, 3, 4):
        m = build_model(config("gru", dropout=0.2, num_layers=2), seed=0)  # same init, dropout active
        train_model(m, (X, Y), (Xv, Yv), epochs=4, batch_size=8, seed=seed, patience=None, **FAST)
        runs.append(weights(m))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not all(torch.equal(runs[0][k], runs[2][k]) for k in runs[0])


def test_history_early_stopping_restores_best_weights():
    X, Y = tiny_data(n=32)
    Xv, Yv = tiny_data(n=32, seed=9)  # unrelated targets: validation loss soon rises
    m = build_model(config("lstm", hidden=32), seed=0)
    hist = train_model(m, (X, Y), (Xv, Yv), epochs=200, batch_size=8, learning_rate=1e-2,
                       seed=0, patience=3, **FAST)
    assert isinstance(hist, TrainHistory)
    n = hist.epochs_run
    assert hist.stopped_early and n < 200
    assert len(hist.val_loss) == len(hist.samples_per_sec) == len(hist.epoch_seconds) == n
    assert hist.best_epoch == int(np.argmin(hist.val_loss)) + 1 == n - 3
    assert hist.best_val_loss == min(hist.val_loss)
    assert all(s > 0 for s in hist.samples_per_sec) and hist.n_train == 32 and hist.n_val == 32
    pred = torch.as_tensor(predict(m, Xv, device="cpu"))
    assert torch.mean((pred - Yv) ** 2).item() == pytest.approx(hist.best_val_loss, rel=1e-4)
    frame = hist.to_frame()
    assert list(frame.columns) == ["epoch", "train_loss", "val_loss", "samples_per_sec", "seconds"]
    assert frame["epoch"].tolist() == list(range(1, n + 1))
    assert not m.training


def test_no_val_trains_all_epochs_and_progress_off_is_silent(capsys):
    X, Y = tiny_data()
    before = torch.get_num_threads()
    hist = train_model(build_model(config(), seed=0), (X, Y), epochs=3, batch_size=5, **FAST)
    assert hist.epochs_run == 3 and hist.best_epoch == 3 and hist.val_loss == []
    assert hist.best_val_loss is None and not hist.stopped_early
    assert hist.to_frame()["val_loss"].isna().all()
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
    assert torch.get_num_threads() == before  # thread setting restored
    hist = train_model(build_model(config(), seed=0), (X, Y), epochs=2, device="cpu", progress=True)
    assert "epoch 2/2" in capsys.readouterr().out  # progress goes to stdout as one line
    hist = train_model(build_model(config(), seed=0), (X.numpy(), Y.numpy()), epochs=1, loss="huber", **FAST)
    assert hist.epochs_run == 1


def test_torch_threads_sets_and_restores():
    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with torch_threads("auto", device="cpu", model=build_model(config(hidden=32))):
        assert torch.get_num_threads() == 1
    with torch_threads("auto", device="cpu", model=build_model(config(hidden=256))):
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="num_threads"):
        with torch_threads("many"):
            pass


def test_predict_restores_mode_and_predict_interest_inverts():
    X, _ = tiny_data(n=10)
    m = build_model(config(dropout=0.3), seed=0)
    m.train()
    z = predict(m, X, batch_size=3, device="cpu")
    assert isinstance(z, np.ndarray) and z.shape == (10, 2) and z.dtype == np.float32
    assert m.training
    np.testing.assert_allclose(z, predict(m, X, batch_size=100, device="cpu"), rtol=1e-5, atol=1e-7)
    ts = Standardizer(("interest",), [1.5], [0.5])
    y = predict_interest(m, X, ts, batch_size=3, device="cpu")
    np.testing.assert_allclose(y, np.maximum(np.expm1(z.astype(np.float64) * 0.5 + 1.5), 0), rtol=1e-12)
    assert y.dtype == np.float64 and (y >= 0).all()


def test_regression_metrics_known_values():
    m = regression_metrics([[0.0, 1.0], [2.0, 3.0]], [[1.0, 1.0], [2.0, 0.0]])
    assert m == {"mae": 1.0, "rmse": pytest.approx(np.sqrt(10 / 4)), "n": 4}
    m = regression_metrics([1.0, 5.0], [2.0, 0.0], mask=[True, False])
    assert m["mae"] == 1.0 and m["n"] == 1
    with pytest.raises(ValueError, match="shape"):
        regression_metrics([1.0], [1.0, 2.0])


# ------------------------------------------------------------------ checkpoints
def test_checkpoint_round_trip_identical_predictions(tmp_path):
    X, Y = tiny_data(n=20)
    m = build_model(config("gru", num_layers=2, dropout=0.1), seed=0)
    train_model(m, (X, Y), epochs=2, batch_size=8, **FAST)
    fs = Standardizer(("view", "interest"), np.array([0.5, 1.0]), np.array([2.0, 3.0]))
    extra = {"feature_stats": fs, "target_transform": fs.to_dict(), "seq_length": 6, "horizon": 2,
             "note": "x", "arr": np.arange(3), "scalar": np.float64(2.5), "t": torch.ones(2)}
    path = save_checkpoint(tmp_path / "sub" / "model.pt", m, extra=extra)
    assert path.is_file() and os.listdir(path.parent) == ["model.pt"]
    # plain torch.load with weights_only=True reads it (no pickled classes inside)
    raw = torch.load(path, weights_only=True)
    assert raw["config"] == m.config
    m2, extra2 = load_checkpoint(path, expected_config={"cell": "gru", "hidden_size": 16})
    assert m2.config == m.config and not m2.training
    np.testing.assert_array_equal(predict(m2, X, device="cpu"), predict(m, X, device="cpu"))
    fs2 = Standardizer.from_dict(extra2["feature_stats"])
    np.testing.assert_array_equal(fs2.mean, fs.mean)
    assert extra2["arr"] == [0, 1, 2] and extra2["scalar"] == 2.5 and extra2["note"] == "x"
    assert torch.equal(extra2["t"], torch.ones(2)) and extra2["seq_length"] == 6
    # loading into an existing model of the same configuration
    m3 = build_model(dict(m.config), seed=123)
    m3b, _ = load_checkpoint(path, model=m3)
    assert m3b is m3
    np.testing.assert_array_equal(predict(m3, X, device="cpu"), predict(m, X, device="cpu"))


def test_checkpoint_config_mismatch_names_keys(tmp_path):
    m = build_model(config("lstm", hidden=32), seed=0)
    path = save_checkpoint(tmp_path / "m.pt", m)
    with pytest.raises(ValueError, match=r"hidden_size: checkpoint 32 vs model 64"):
        load_checkpoint(path, model=build_model(config("lstm", hidden=64)))
    with pytest.raises(ValueError, match=r"cell: checkpoint 'lstm' vs expected 'gru'.*hidden_size"):
        load_checkpoint(path, expected_config={"cell": "gru", "hidden_size": 8})
    with pytest.raises(ValueError, match=r"seq_length: checkpoint <absent>"):
        load_checkpoint(path, expected_config={"seq_length": 14})
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable decaylib checkpoint"):
        load_checkpoint(bad)
    torch.save({"weights": torch.ones(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a decaylib forecaster checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(TypeError, match=r"extra\['df'\].*DataFrame"):
        save_checkpoint(tmp_path / "x.pt", m, extra={"df": pd.DataFrame({"a": [1]})})
    with pytest.raises(TypeError, match="config"):
        save_checkpoint(tmp_path / "x.pt", torch.nn.Linear(2, 2))


def test_atomic_save_keeps_previous_file_on_failure(tmp_path, monkeypatch):
    m = build_model(config(), seed=0)
    path = save_checkpoint(tmp_path / "m.pt", m, extra={"version": "old"})
    before = path.read_bytes()

    def boom(obj, f, *a, **k):
        f.write(b"partial garbage")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, build_model(config(), seed=1), extra={"version": "new"})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.pt"]  # no temp file left behind
    _, extra = load_checkpoint(path)
    assert extra == {"version": "old"}


# ------------------------------------------------------------------ bad inputs
def test_bad_inputs_give_clear_errors():
    X, Y = tiny_data()
    m = build_model(config(), seed=0)
    with pytest.raises(ValueError, match="X has 16 windows but Y has 15"):
        train_model(m, (X, Y[:15]), **FAST)
    with pytest.raises(ValueError, match=r"does not match targets \[n, 5\]"):
        train_model(m, (X, torch.zeros(16, 5)), **FAST)
    with pytest.raises(ValueError, match="n_features=3"):
        train_model(m, (torch.zeros(16, 6, 4), Y), **FAST)
    with pytest.raises(ValueError, match=r"X must be \[n, seq_length, n_features\]"):
        train_model(m, (torch.zeros(16, 6), Y), **FAST)
    Xn = X.clone()
    Xn[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        train_model(m, (Xn, Y), **FAST)
    with pytest.raises(ValueError, match="epochs"):
        train_model(m, (X, Y), epochs=0, **FAST)
    with pytest.raises(ValueError, match=r"unknown loss 'mae'"):
        train_model(m, (X, Y), loss="mae", **FAST)
    with pytest.raises(ValueError, match="learning_rate"):
        train_model(m, (X, Y), learning_rate=-1.0, **FAST)
    with pytest.raises(TypeError, match=r"WindowSet or a pair \(X, Y\)"):
        train_model(m, X, **FAST)
    with pytest.raises(ValueError, match="val shapes"):
        train_model(m, (X, Y), (torch.zeros(4, 7, 3), torch.zeros(4, 2)), **FAST)
    with pytest.raises(ValueError, match="empty"):
        train_model(m, (X[:0], Y[:0]), **FAST)
    with pytest.raises(ValueError, match="unknown device"):
        train_model(m, (X, Y), device="tpu", progress=False)
    with pytest.raises(TypeError, match="torch.nn.Module"):
        predict(lambda x: x, X)


# ------------------------------------------------------------------ windows end to end
def small_panel(n_users=12, days=30, seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for u in range(n_users):
        for c in (0, 1):
            d0 = int(rng.integers(0, 8))
            day = np.arange(d0, days, dtype=np.int64)
            mu = 8 * np.exp(-0.08 * (day - d0))
            counts = {k: rng.poisson(mu * s) for k, s in
                      (("view", 1.0), ("click", 0.4), ("cart", 0.1), ("purchase", 0.05))}
            parts.append(pd.DataFrame({"user_id": np.int64(u), "category": np.int64(c), "day": day,
                                       **counts, "impression": rng.poisson(5, day.size)}))
    p = pd.concat(parts, ignore_index=True)
    p["interest"] = (p.view + 2 * p.click + 3 * p.cart + 5 * p.purchase).astype(np.float64)
    return p


def test_windowset_training_forecast_frame_and_cross_validate():
    p = small_panel()
    train_u = np.arange(8)
    fs, ts = fit_feature_stats(p, train_u), fit_target_transform(p, train_u)
    tr = build_windows(p, fs, ts, seq_length=7, horizon=3, users=train_u)
    va = build_windows(p, fs, ts, seq_length=7, horizon=3, users=np.arange(8, 12))
    m = build_model({"n_features": 6, "horizon": 3, "hidden_size": 8}, seed=0)
    hist = train_model(m, tr, va, epochs=3, batch_size=64, **FAST)
    assert hist.n_train == len(tr) and hist.n_val == len(va)
    ff = forecast_frame(m, va, ts, device="cpu")
    assert list(ff.columns) == ["user_id", "category", "origin_day", "horizon", "day", "interest_pred", "actual"]
    assert len(ff) == 3 * len(va) and (ff["day"] == ff["origin_day"] + ff["horizon"]).all()
    np.testing.assert_array_equal(ff["actual"].to_numpy().reshape(-1, 3), va.y_raw)
    assert (ff["interest_pred"] >= 0).all()

    cv = cross_validate(p, {"cell": "rnn", "hidden_size": 8}, n_folds=3, seq_length=7, horizon=3,
                        epochs=1, batch_size=64, seed=0, device="cpu")
    assert len(cv) == 3 and cv["fold"].tolist() == [0, 1, 2]
    assert cv["n_val_users"].sum() == 12 and (cv["cell"] == "rnn").all()
    for col in ("val_mae", "val_rmse", "persistence_mae", "persistence_rmse"):
        assert np.isfinite(cv[col]).all() and (cv[col] > 0).all()
    assert (cv["val_rmse"] >= cv["val_mae"]).all()
    cv2 = cross_validate(p, {"cell": "rnn", "hidden_size": 8}, n_folds=3, seq_length=7, horizon=3,
                         epochs=1, batch_size=64, seed=0, device="cpu")
    pd.testing.assert_frame_equal(cv.drop(columns="seconds"), cv2.drop(columns="seconds"))
    with pytest.raises(ValueError, match="must not set 'horizon'"):
        cross_validate(p, {"horizon": 3})
    with pytest.raises(ValueError, match="both train and val"):
        cross_validate(p, folds=[(np.arange(6), np.arange(5, 12))], seq_length=7, horizon=3)
    one = cross_validate(p, {"hidden_size": 4}, folds=[(np.arange(6), np.arange(6, 12))], seq_length=7,
                         horizon=3, epochs=1, device="cpu")
    assert len(one) == 1 and one.loc[0, "n_train_users"] == 6 and one.loc[0, "cell"] == "lstm"


def test_cross_validate_out_of_fold_forecasts():
    from decaylib.forecast.sequences import user_folds

    p = small_panel()
    folds = user_folds(p["user_id"].unique(), n_folds=3, seed=1)
    cv, ff = cross_validate(p, {"cell": "gru", "hidden_size": 8}, folds=folds, seq_length=7, horizon=3, epochs=1,
                            batch_size=64, seed=0, device="cpu", max_train_windows=50, return_forecasts=True)
    assert (cv["n_train_windows"] <= 50).all()
    # every user is forecast exactly by the fold in which it was a validation user
    for k, (tr_u, va_u) in enumerate(folds):
        got = set(ff.loc[ff["fold"] == k, "user_id"])
        assert got == set(va_u) and not got & set(tr_u)
    # every origin with 7 days of history, including each pair's last day, has a full path
    last = p.groupby(["user_id", "category"])["day"].max()
    have = ff.groupby(["user_id", "category"])["origin_day"].max()
    pd.testing.assert_series_equal(have.sort_index(), last.sort_index(), check_names=False)
    assert (ff.groupby(["user_id", "category", "origin_day"]).size() == 3).all()
    assert (ff["interest_pred"] >= 0).all()


def test_permutation_importance_finds_the_feature_that_matters():
    from decaylib.forecast.train import permutation_importance

    p = small_panel()
    users = np.arange(12)
    fs, ts = fit_feature_stats(p, users), fit_target_transform(p, users)
    ws = build_windows(p, fs, ts, seq_length=7, horizon=3, users=users)
    m = build_model({"n_features": 6, "horizon": 3, "hidden_size": 16}, seed=0)
    train_model(m, ws, None, epochs=8, batch_size=32, learning_rate=0.01, seed=0, device="cpu", progress=False)
    imp = permutation_importance(m, ws, ts, n_repeats=2, seed=0, device="cpu")
    assert set(imp["feature"]) == set(ws.feature_columns) and imp.attrs["baseline_mae"] > 0
    # impressions are pure noise in this panel: scrambling them matters less than the top feature
    top = imp.set_index("feature")["mae_increase"]
    assert top.max() > 0 and top["impression"] < 0.5 * top.max()
    no_target = build_windows(p, fs, seq_length=7, horizon=3, users=users, with_target=False)
    with pytest.raises(ValueError, match="targets"):
        permutation_importance(m, no_target, ts)


def test_fine_tune_updates_a_copy():
    from decaylib.forecast.train import fine_tune

    X, Y = tiny_data(n=64, seed=1)
    m = build_model(config("gru"), seed=0)
    train_model(m, (X, Y), None, epochs=3, batch_size=16, learning_rate=0.01, seed=0, device="cpu", progress=False)
    before = weights(m)
    X2, Y2 = tiny_data(n=64, seed=2)
    loss_before = float(((predict(m, X2, device="cpu") - Y2.numpy()) ** 2).mean())
    new, hist = fine_tune(m, (X2, Y2), epochs=20, learning_rate=0.01, batch_size=16, seed=0, device="cpu", progress=False)
    after = weights(m)
    assert all(torch.equal(before[k], after[k]) for k in before)  # the original model is untouched
    loss_after = float(((predict(new, X2, device="cpu") - Y2.numpy()) ** 2).mean())
    assert new is not m and loss_after < loss_before
    with pytest.raises(TypeError, match="nn.Module"):
        fine_tune("not a model", (X2, Y2))


def test_epoch_progress_is_one_clean_line(capsys):
    """Outside a notebook: one line rewritten with \\r, ended by one newline; disabled: silent."""
    from decaylib.forecast.train import EpochProgress

    bar = EpochProgress(3, "lstm", enabled=True)
    for e in (1, 2, 3):
        bar.update(e, train="0.5000", val="0.6000", best=e)
    bar.close()
    out, err = capsys.readouterr()
    assert err == "" and out.count("\n") == 1 and out.count("\r") == 3
    last = out.split("\r")[-1]
    assert last.startswith("lstm: epoch 3/3 · train 0.5000 · val 0.6000 · best 3 · ") and last.endswith(" s\n")
    quiet = EpochProgress(3, "lstm", enabled=False)
    quiet.update(1, train="0.1")
    quiet.close()
    assert capsys.readouterr() == ("", "")


def test_fold_ensemble_is_the_mean_of_its_members():
    """cross_validate(return_models=True) gives the fold models; the ensemble averages their forecasts,
    each member through its own transforms, on users none of them saw."""
    from decaylib.forecast.train import FoldEnsemble

    p = small_panel(n_users=15)
    cv, ens = cross_validate(p, {"cell": "gru", "hidden_size": 8}, n_folds=3, users=np.arange(12), seq_length=7,
                             horizon=3, epochs=1, batch_size=64, seed=0, device="cpu", return_models=True)
    assert isinstance(ens, FoldEnsemble) and len(ens) == 3 and len(cv) == 3
    members, meta = ens.predict_members(p, np.arange(12, 15), device="cpu")
    mean, meta2 = ens.predict(p, np.arange(12, 15), device="cpu")
    assert set(meta["user_id"]) == {12, 13, 14} and meta.equals(meta2)
    assert all(m.shape == mean.shape == (len(meta), 3) for m in members)
    np.testing.assert_allclose(mean, np.mean(members, axis=0))
    assert not np.allclose(members[0], members[1])  # different folds, different models
    _, ff, ens2 = cross_validate(p, {"hidden_size": 4}, n_folds=2, seq_length=7, horizon=3, epochs=1, device="cpu",
                                 return_forecasts=True, return_models=True)
    assert len(ens2) == 2 and len(ff) > 0
    with pytest.raises(ValueError, match="at least one member"):
        FoldEnsemble([], seq_length=7, horizon=3)


# --------------------------------------------------------------------------------------------
# lazy windows (issue 20): training and prediction slice batches, with the same results
# --------------------------------------------------------------------------------------------
def test_training_on_lazy_windows_equals_training_on_their_tensors():
    from decaylib.forecast.sequences import build_windows, fit_feature_stats, fit_target_transform
    from tests.panels import random_panel

    panel = random_panel(seed=5, n_users=10)
    users = np.unique(panel["user_id"])
    fs, ts = fit_feature_stats(panel, users[:7]), fit_target_transform(panel, users[:7])
    tr = build_windows(panel, fs, ts, seq_length=6, horizon=3, users=users[:7]).sample(150, seed=1)
    va = build_windows(panel, fs, ts, seq_length=6, horizon=3, users=users[7:])
    cfg = {"n_features": 6, "horizon": 3, "cell": "gru", "hidden_size": 8}
    lazy, eager = build_model(cfg, seed=3), build_model(cfg, seed=3)
    h1 = train_model(lazy, tr, va, epochs=3, batch_size=32, seed=2, device="cpu", progress=False, patience=None)
    h2 = train_model(eager, tr.tensors, va.tensors, epochs=3, batch_size=32, seed=2, device="cpu", progress=False,
                     patience=None)
    assert h1.train_loss == h2.train_loss and h1.val_loss == h2.val_loss and h1.best_epoch == h2.best_epoch
    for a, b in zip(lazy.state_dict().values(), eager.state_dict().values()):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(predict(lazy, va, batch_size=7, device="cpu"),
                                  predict(lazy, va.X, batch_size=7, device="cpu"))


def test_cross_fitted_forecasts_above_the_budget_are_refused_before_training(monkeypatch):
    from decaylib.checks import MemoryBudgetError
    from decaylib.forecast import sequences
    from tests.panels import random_panel

    panel = random_panel(seed=5, n_users=10)
    monkeypatch.setattr(sequences, "WINDOW_MEMORY_BUDGET", 10_000)
    with pytest.raises(MemoryBudgetError, match=r"forecast rows .*pass a smaller horizon"):
        cross_validate(panel, {"hidden_size": 4}, n_folds=2, seq_length=6, horizon=3, epochs=1, device="cpu",
                       return_forecasts=True)


class _Evil:
    """A pickle that runs a command when loaded with ``weights_only=False``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_pickled_checkpoint_is_refused_without_suggesting_weights_only_false(tmp_path):
    """Issue 21: the refusal passed on torch's hint that ``weights_only=False`` "will likely succeed"."""
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    torch.save({"format": "x", "payload": _Evil(marker)}, path)
    with pytest.raises(ValueError) as err:
        load_checkpoint(path)
    text = str(err.value)
    assert text.startswith(f"{path} is not a readable decaylib checkpoint: it holds pickled Python objects besides tensors "
                           "(it names ") and "system) and plain values." in text
    assert "weights_only=False can run arbitrary code on your machine" in text and "Rebuild it with notebook 03" in text
    assert "likely succeed" not in text and "add_safe_globals" not in text and "trusted source" not in text
    assert err.value.__cause__ is None and err.value.__suppress_context__  # torch's advice is not chained either
    assert not marker.exists()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match=r"is not a readable decaylib checkpoint: not a file of tensors and plain values "
                       r"as decaylib\.forecast\.checkpoints\.save_checkpoint writes \(torch: ") as err:
        load_checkpoint(bad)
    assert "likely succeed" not in str(err.value) and err.value.__cause__ is None
