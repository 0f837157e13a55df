import numpy as np
import pytest

from decaylib.forecast.baselines import (
    exponential_fit,
    moving_average,
    persistence,
    run_baselines,
)


def test_persistence_and_moving_average():
    h = np.array([[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0, 8.0]])
    np.testing.assert_allclose(persistence(h, 3), [[4, 4, 4], [8, 8, 8]])
    np.testing.assert_allclose(moving_average(h, 2, window=2), [[3.5, 3.5], [4, 4]])


def test_exponential_fit_is_exact_on_a_pure_decay():
    lam = 0.1
    t = np.arange(14)
    y = 20 * np.exp(-lam * t) - 0.5  # so that log(y + 0.5) is exactly linear
    pred = exponential_fit(y[None, :], 5)
    truth = 20 * np.exp(-lam * (13 + np.arange(1, 6))) - 0.5
    np.testing.assert_allclose(pred[0], truth, rtol=1e-9)


def test_exponential_fit_growth_is_clipped():
    y = np.exp(np.arange(10.0))[None, :]  # growth of e per day
    pred = exponential_fit(y, 3, max_rate=0.2)
    assert pred[0, -1] < y[0, -1] * np.exp(0.2 * 3) + 1


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="2-D"):
        persistence(np.ones(5), 2)
    with pytest.raises(ValueError, match="NaN"):
        persistence(np.array([[1.0, np.nan]]), 2)
    with pytest.raises(ValueError, match="negative"):
        moving_average(np.array([[1.0, -1.0]]), 2)
    with pytest.raises(ValueError, match="horizon"):
        persistence(np.ones((2, 3)), 0)
    with pytest.raises(ValueError, match="unknown baseline"):
        run_baselines(np.ones((2, 3)), 2, names=["oracle"])
    assert set(run_baselines(np.ones((2, 3)), 2)) == {"persistence", "moving_average", "exponential_fit"}


def test_compare_forecasts_hand_computed():
    from decaylib.evaluation.forecast import compare_forecasts

    pred = {"a": np.array([[1.0, 2.0], [3.0, 4.0]])}
    ref = {"obs": np.array([[0.0, 2.0], [3.0, 0.0]])}
    t = compare_forecasts(pred, ref, mask=np.array([[True, True], [True, False]]))
    assert t.loc[t.horizon == 1, "mae"].item() == pytest.approx(0.5)
    assert t.loc[t.horizon == 2, "mae"].item() == pytest.approx(0.0)  # the masked 4-vs-0 is skipped
    assert t.loc[t.horizon == 1, "rmse"].item() == pytest.approx(np.sqrt(0.5))
    with pytest.raises(ValueError, match="same shape"):
        compare_forecasts({"a": np.ones((2, 2))}, {"b": np.ones((3, 2))})


def test_true_targets_lookup():
    import pandas as pd

    from decaylib.forecast.baselines import true_targets

    td = pd.DataFrame({"user_id": 1, "category": 2, "day": [5, 6, 7],
                       "expected_view": [1.0, 2.0, 3.0], "expected_click": 0.0, "expected_cart": 0.0,
                       "expected_purchase": 0.0})
    meta = pd.DataFrame({"user_id": [1], "category": [2], "origin_day": [5]})
    np.testing.assert_allclose(true_targets(meta, td, 2), [[2.0, 3.0]])
    with pytest.raises(KeyError, match="no true interest"):
        true_targets(meta, td, 3)


def test_linear_ar_recovers_a_known_autoregression():
    """The article's formula Σ w_k I(t-k) + b, fitted by least squares, gives back known weights."""
    from decaylib.forecast.baselines import fit_linear_ar

    rng = np.random.default_rng(0)
    x = rng.gamma(2.0, 2.0, size=(4000, 5))
    w1 = np.array([0.6, 0.2, 0.0, 0.0, 0.1])  # lag 0 (the last day) first
    y1 = x[:, ::-1] @ w1 + 0.5
    y2 = 0.8 * y1 + 0.1
    ar = fit_linear_ar(x, np.column_stack([y1, y2]))
    np.testing.assert_allclose(ar.weights.loc[1].to_numpy(), w1, atol=1e-4)
    np.testing.assert_allclose(ar.bias.to_numpy(), [0.5, 0.5], atol=1e-3)
    np.testing.assert_allclose(ar.predict(x), np.column_stack([y1, y2]), atol=1e-3)
    short = fit_linear_ar(x, np.column_stack([y1, y2]), lags=2)
    assert list(short.weights.columns) == ["lag 0", "lag 1"] and short.predict(x).shape == (4000, 2)


def test_linear_ar_rejects_bad_input():
    from decaylib.forecast.baselines import fit_linear_ar

    x = np.ones((10, 4))
    with pytest.raises(ValueError, match="targets must be"):
        fit_linear_ar(x, np.ones(10))
    with pytest.raises(ValueError, match="lags must be between"):
        fit_linear_ar(x, np.ones((10, 2)), lags=9)
    with pytest.raises(ValueError, match="observed targets"):
        fit_linear_ar(x, np.ones((10, 2)), mask=np.zeros((10, 2), dtype=bool))
    with pytest.raises(ValueError, match="NaN"):
        fit_linear_ar(np.full((10, 4), np.nan), np.ones((10, 2)))
