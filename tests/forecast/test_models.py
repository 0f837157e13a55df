"""Unit tests of decaylib.forecast.models: shapes, config round trip, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from decaylib.forecast.models import CELLS, Forecaster, build_model, count_parameters


@pytest.mark.parametrize("cell", CELLS)
def test_output_shape_and_cell_type(cell):
    m = Forecaster(n_features=6, hidden_size=8, num_layers=2, dropout=0.1, horizon=7, cell=cell)
    out = m(torch.randn(5, 14, 6))
    assert out.shape == (5, 7) and out.dtype == torch.float32
    assert isinstance(m.rnn, {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}[cell])
    assert m.rnn.batch_first and m.rnn.num_layers == 2 and m.rnn.hidden_size == 8
    assert m(torch.randn(1, 3, 6)).shape == (1, 7)  # any sequence length


def test_uses_last_time_step_only_of_a_causal_rnn():
    torch.manual_seed(0)
    m = Forecaster(n_features=2, hidden_size=4, horizon=3, cell="gru").eval()
    x = torch.randn(4, 6, 2)
    full = m(x)
    y = x.clone()
    y[:, :3] += 1.0  # changing early steps changes the output (the state carries them)
    assert not torch.allclose(m(y), full)
    with torch.no_grad():
        out, _ = m.rnn(x)
        np.testing.assert_allclose(m.head(out[:, -1]).numpy(), full.detach().numpy(), rtol=1e-6)


def test_config_rebuilds_same_architecture_and_seeded_init():
    m = build_model({"cell": "gru", "n_features": 3, "hidden_size": 16, "num_layers": 2,
                     "dropout": 0.2, "horizon": 4}, seed=5)
    assert m.config == {"cell": "gru", "n_features": 3, "hidden_size": 16, "num_layers": 2,
                        "dropout": 0.2, "horizon": 4}
    m2 = build_model(dict(m.config), seed=5)
    sd1, sd2 = m.state_dict(), m2.state_dict()
    assert sd1.keys() == sd2.keys() and all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    m3 = build_model(dict(m.config), seed=6)
    assert not torch.equal(m3.state_dict()["head.weight"], sd1["head.weight"])
    # the seeded build does not disturb the global RNG
    torch.manual_seed(1)
    a = torch.rand(3)
    torch.manual_seed(1)
    build_model({"n_features": 3, "horizon": 2}, seed=9)
    assert torch.equal(torch.rand(3), a)
    assert count_parameters(build_model({"n_features": 1, "horizon": 1, "hidden_size": 2, "cell": "rnn"})) == (
        2 * 1 + 2 * 2 + 2 + 2 + 2 + 1
    )


def test_defaults_and_case_insensitive_cell():
    m = Forecaster(n_features=6, cell="LSTM")
    assert m.config == {"cell": "lstm", "n_features": 6, "hidden_size": 32, "num_layers": 1,
                        "dropout": 0.0, "horizon": 7}


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match=r"cell.*'gru'.*'lstm'.*'rnn'"):
        Forecaster(n_features=3, cell="transformer")
    with pytest.raises(ValueError, match="hidden_size"):
        Forecaster(n_features=3, hidden_size=0)
    with pytest.raises(TypeError, match="num_layers"):
        Forecaster(n_features=3, num_layers=1.5)
    with pytest.raises(ValueError, match="dropout"):
        Forecaster(n_features=3, dropout=1.0)
    with pytest.raises(ValueError, match="unknown model config key"):
        build_model({"n_features": 3, "horizon": 2, "hiden_size": 8})
    with pytest.raises(ValueError, match="missing required key"):
        build_model({"cell": "lstm"})
    m = Forecaster(n_features=3, horizon=2)
    with pytest.raises(ValueError, match=r"\[batch, seq_length, n_features=3\].*\(4, 3\)"):
        m(torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"got shape \(2, 5, 4\)"):
        m(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="batch_first"):
        m(torch.randn(5, 2, 4))  # [seq, batch, features] with the wrong last axis
    with pytest.raises(TypeError, match="torch.as_tensor"):
        m(np.zeros((2, 5, 3), dtype=np.float32))
