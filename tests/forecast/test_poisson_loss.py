"""loss="poisson" in decaylib.forecast.train: half the Poisson deviance of the forecasts in interest units."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from decaylib.evaluation.forecast import MIN_EXPECTED, poisson_deviance
from decaylib.forecast.features import Standardizer
from decaylib.forecast.models import build_model
from decaylib.forecast.train import (
    LOSSES,
    _loss_fn,
    cross_validate,
    poisson_loss,
    predict_interest,
    train_model,
)

FAST = {"device": "cpu", "progress": False}
TS = Standardizer(("interest",), [0.7], [0.9])  # z = (log1p(interest) - 0.7) / 0.9


def _z(interest, ts=TS):
    return torch.tensor(ts.transform(np.asarray(interest, dtype=float)), dtype=torch.float32)


def _numpy_reference(z_out, z_target, ts=TS, eps=MIN_EXPECTED):
    """Per element: m - y log m + y log y - y, m = max(expm1(z*std+mean), eps), y = expm1(...)."""
    mean, std = ts.mean[0], ts.std[0]
    m = np.maximum(np.expm1(np.asarray(z_out, dtype=float) * std + mean), eps)
    y = np.maximum(np.expm1(np.asarray(z_target, dtype=float) * std + mean), 0.0)
    ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)
    return m - y * np.log(m) + ylogy - y, m, y


def test_poisson_loss_matches_numpy_reference_and_half_deviance():
    z_out = torch.tensor([[-1.2, -0.3, 0.0, 0.4], [1.1, 2.0, -0.77, 0.25], [-2.5, 0.9, 1.6, -0.1]])
    target = _z([[0.0, 1.0, 3.0, 0.0], [2.0, 7.0, 0.0, 1.5], [0.0, 4.0, 12.0, 1.0]])
    ref, m, y = _numpy_reference(z_out.numpy(), target.numpy())
    assert (m == MIN_EXPECTED).any()  # z_out = -2.5 maps below 0: the floor is exercised
    got = poisson_loss(z_out, target, TS)
    np.testing.assert_allclose(got.item(), ref.mean(), rtol=1e-5)
    np.testing.assert_allclose(poisson_loss(z_out, target, TS, reduction="sum").item(), ref.sum(), rtol=1e-5)
    np.testing.assert_allclose(poisson_loss(z_out, target, TS, reduction="none").numpy(), ref, rtol=1e-5, atol=1e-6)
    # the added term in y makes it exactly half the evaluation's Poisson deviance (same floor)
    np.testing.assert_allclose(got.item(), 0.5 * poisson_deviance(y, m).mean(), rtol=1e-5)
    # 0 at a perfect forecast, positive otherwise
    assert abs(poisson_loss(target, target, TS).item()) < 1e-5
    assert got.item() > 0.05
    # train_model's loss function is the same function (reductions as F.mse_loss's)
    fn = _loss_fn("poisson", TS)
    assert fn(z_out, target).item() == got.item()
    assert fn(z_out, target, reduction="sum").item() == poisson_loss(z_out, target, TS, reduction="sum").item()


def test_poisson_gradients_are_finite_near_zero():
    # outputs that map to interest exactly 0, just above/below the floor, tiny, and far below 0
    out_interest = [0.0, 1e-8, MIN_EXPECTED, 1e-5, 1e-3]
    z = torch.cat([_z(out_interest), torch.tensor([-3.0, -20.0])])
    n = z.numel()
    for y_val in (0.0, 1.0, 5.0):
        out = z.clone().requires_grad_(True)
        loss = poisson_loss(out, _z([y_val] * n), TS)
        loss.backward()
        assert torch.isfinite(loss), (y_val, loss)
        assert torch.isfinite(out.grad).all(), (y_val, out.grad)
    # and a model trained on mostly-zero targets (outputs pushed towards 0) stays finite
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 6, 2, generator=g)
    counts = (torch.rand(64, 2, generator=g) < 0.1).double().numpy()
    Y = torch.tensor(TS.transform(counts), dtype=torch.float32)
    model = build_model({"cell": "gru", "n_features": 2, "hidden_size": 8, "horizon": 2}, seed=0)
    hist = train_model(model, (X, Y), epochs=40, batch_size=16, learning_rate=3e-2, loss="poisson",
                       target_transform=TS, seed=0, **FAST)
    assert np.isfinite(hist.train_loss).all()
    assert all(torch.isfinite(p).all() for p in model.parameters())


def _count_windows(n, seq, h, seed, ts=None):
    """Windows of a known truth: each series has its own rate lam; past and future days ~ Poisson(lam)."""
    rng = np.random.default_rng(seed)
    lam = np.exp(rng.normal(0.0, 0.8, size=n))  # rates around 1 event a day: many zero days
    past = rng.poisson(lam[:, None], size=(n, seq)).astype(float)
    future = rng.poisson(lam[:, None], size=(n, h)).astype(float)
    if ts is None:
        lp = np.log1p(past)
        ts = Standardizer(("interest",), [lp.mean()], [lp.std()])
    X = torch.tensor(ts.transform(past)[..., None], dtype=torch.float32)
    Y = torch.tensor(ts.transform(future), dtype=torch.float32)
    return X, Y, future, lam, ts


def test_poisson_training_beats_mse_on_heldout_poisson_deviance():
    seq, h = 14, 3
    Xtr, Ytr, _, _, ts = _count_windows(1500, seq, h, seed=0)
    Xva, Yva, yva, _, _ = _count_windows(500, seq, h, seed=100, ts=ts)
    Xte, _, yte, lam, _ = _count_windows(2000, seq, h, seed=200, ts=ts)
    dev, ratio = {}, {}
    for loss in ("mse", "poisson"):
        model = build_model({"cell": "lstm", "n_features": 1, "hidden_size": 16, "horizon": h}, seed=0)
        hist = train_model(model, (Xtr, Ytr), (Xva, Yva), epochs=30, batch_size=128, learning_rate=1e-2,
                           loss=loss, target_transform=ts, seed=0, patience=5, **FAST)
        mu = predict_interest(model, Xte, ts, device="cpu")
        dev[loss] = float(poisson_deviance(yte, mu).mean())
        ratio[loss] = float(mu.mean() / yte.mean())
        if loss == "poisson":  # validation / early stopping ran on the same loss: half the val deviance
            mu_va = predict_interest(model, Xva, ts, device="cpu")
            np.testing.assert_allclose(2 * hist.best_val_loss, poisson_deviance(yva, mu_va).mean(), rtol=1e-3)
    oracle = float(poisson_deviance(yte, np.broadcast_to(lam[:, None], yte.shape)).mean())
    print(f"held-out mean Poisson deviance: mse {dev['mse']:.4f}, poisson {dev['poisson']:.4f}, "
          f"truth {oracle:.4f}; mean forecast / mean observed: mse {ratio['mse']:.3f}, "
          f"poisson {ratio['poisson']:.3f}")
    assert oracle < dev["poisson"] < dev["mse"] - 0.02, (oracle, dev)
    # why: expm1 of a mean of log1p(y) is below the mean of y (Jensen); the Poisson loss fits the mean
    assert 0.9 < ratio["poisson"] < 1.1, ratio
    assert ratio["mse"] < 0.9, ratio


def test_unknown_or_incomplete_loss_gives_clear_errors():
    assert LOSSES == ("mse", "huber", "poisson")
    X, Y = torch.randn(8, 5, 2), torch.randn(8, 2)
    model = build_model({"cell": "rnn", "n_features": 2, "hidden_size": 4, "horizon": 2}, seed=0)
    with pytest.raises(ValueError, match=r"unknown loss 'poison'.*'huber'.*'mse'.*'poisson'"):
        train_model(model, (X, Y), loss="poison", epochs=1, **FAST)
    with pytest.raises(ValueError, match="needs target_transform"):
        train_model(model, (X, Y), loss="poisson", epochs=1, **FAST)
    with pytest.raises(TypeError, match="one-column Standardizer"):
        train_model(model, (X, Y), loss="poisson", target_transform={"mean": 0.0}, epochs=1, **FAST)
    with pytest.raises(ValueError, match="reduction"):
        poisson_loss(Y, Y, TS, reduction="avg")


def test_mse_and_huber_ignore_the_target_transform():
    X, Y = torch.randn(32, 5, 2, generator=torch.Generator().manual_seed(3)), torch.randn(32, 2)
    for loss in ("mse", "huber"):
        runs = []
        for ts in (None, TS):
            model = build_model({"cell": "gru", "n_features": 2, "hidden_size": 4, "horizon": 2}, seed=0)
            hist = train_model(model, (X, Y), loss=loss, target_transform=ts, epochs=3, batch_size=8, seed=0, **FAST)
            runs.append((hist.train_loss, [p.detach().clone() for p in model.parameters()]))
        assert runs[0][0] == runs[1][0]
        assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_cross_validate_passes_poisson_loss_with_each_folds_transform():
    from tests.forecast.test_train import small_panel

    p = small_panel()
    kw = {"n_folds": 3, "seq_length": 7, "horizon": 3, "epochs": 2, "batch_size": 64, "seed": 0, "device": "cpu"}
    cv = cross_validate(p, {"cell": "gru", "hidden_size": 8}, loss="poisson", **kw)
    assert len(cv) == 3 and np.isfinite(cv["train_loss"]).all() and (cv["train_loss"] >= 0).all()
    assert np.isfinite(cv["val_mae"]).all()
    mse = cross_validate(p, {"cell": "gru", "hidden_size": 8}, **kw)
    assert not np.allclose(cv["train_loss"], mse["train_loss"])  # a different loss was trained on
    with pytest.raises(ValueError, match="unknown loss 'l1'.*'poisson'"):
        cross_validate(p, loss="l1", **kw)
