"""Recurrent forecasters (LSTM, GRU or plain RNN) of multi-horizon interest.

Input ``[batch, seq_length, n_features]`` (``batch_first=True``), output ``[batch, horizon]``:
the scaled interest on the ``horizon`` days after the window's last (origin) day. The head is
a linear layer on the last time step's hidden state of the top layer.

Every :class:`Forecaster` carries a ``config`` dict (plain ints/floats/strings) from which
:func:`build_model` rebuilds it; checkpoints (``decaylib.forecast.train``) store exactly that dict.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from decaylib.checks import check_choice
from decaylib.checks import check_int as _pos_int

__all__ = ['CELLS', 'Forecaster', 'build_model', 'count_parameters']

#: Allowed recurrent cells.
CELLS: tuple[str, ...] = ("lstm", "gru", "rnn")

_RNN_CLASSES = {"lstm": nn.LSTM, "gru": nn.GRU, "rnn": nn.RNN}

_CONFIG_KEYS = ("cell", "n_features", "hidden_size", "num_layers", "dropout", "horizon")


class Forecaster(nn.Module):
    """Recurrent encoder + linear head: ``[B, L, F] -> [B, horizon]``.

    Parameters
    ----------
    n_features : int
        Features per day (``F``).
    hidden_size : int
        Hidden units per recurrent layer.
    num_layers : int
        Stacked recurrent layers.
    dropout : float
        Dropout in [0, 1): between recurrent layers (only when ``num_layers > 1``) and before
        the head.
    horizon : int
        Days forecast (``H``).
    cell : {"lstm", "gru", "rnn"}
        Recurrent cell (``"rnn"`` is the Elman RNN with tanh).

    Notebook 03.
    """

    def __init__(
        self,
        n_features: int,
        hidden_size: int = 32,
        num_layers: int = 1,
        dropout: float = 0.0,
        horizon: int = 7,
        cell: str = "lstm",
    ) -> None:
        super().__init__()
        if not isinstance(cell, str):
            raise TypeError(f"cell must be a string, one of {list(CELLS)}, got {cell!r}")
        cell = cell.lower()
        check_choice("cell", cell, CELLS)
        n_features = _pos_int("n_features", n_features)
        hidden_size = _pos_int("hidden_size", hidden_size)
        num_layers = _pos_int("num_layers", num_layers)
        horizon = _pos_int("horizon", horizon)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float, np.floating)):
            raise TypeError(f"dropout must be a float in [0, 1), got {dropout!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        dropout = float(dropout)

        self.config: dict[str, Any] = {
            "cell": cell,
            "n_features": n_features,
            "hidden_size": hidden_size,
            "num_layers": num_layers,
            "dropout": dropout,
            "horizon": horizon,
        }
        self.n_features = n_features
        self.horizon = horizon
        self.rnn = _RNN_CLASSES[cell](
            input_size=n_features,
            hidden_size=hidden_size,
            num_layers=num_layers,
            dropout=dropout if num_layers > 1 else 0.0,
            batch_first=True,
        )
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.head = nn.Linear(hidden_size, horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` float ``[batch, seq_length, n_features]`` -> ``[batch, horizon]``."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(
                f"Forecaster expects a torch.Tensor [batch, seq_length, {self.n_features}], got "
                f"{type(x).__name__}; convert with torch.as_tensor(x, dtype=torch.float32)"
            )
        if x.dim() != 3 or x.shape[2] != self.n_features or x.shape[1] < 1:
            raise ValueError(
                f"Forecaster expects input [batch, seq_length, n_features={self.n_features}] "
                f"(batch_first), got shape {tuple(x.shape)}"
            )
        out, _ = self.rnn(x)
        return self.head(self.drop(out[:, -1]))

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config.items())


def build_model(config: dict, seed: int | None = None) -> Forecaster:
    """Rebuild a :class:`Forecaster` from its ``config`` dict.

    ``config`` needs ``n_features`` and ``horizon``; ``cell``, ``hidden_size``, ``num_layers``
    and ``dropout`` default as in :class:`Forecaster`. Unknown keys raise ``ValueError``.
    With ``seed``, the initial weights are drawn from ``torch.manual_seed(seed)`` without
    disturbing the global random state.

    Notebooks 03 and 03b.
    """
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    unknown = sorted(set(config) - set(_CONFIG_KEYS))
    if unknown:
        raise ValueError(f"unknown model config key(s) {unknown}; allowed: {list(_CONFIG_KEYS)}")
    missing = [k for k in ("n_features", "horizon") if k not in config]
    if missing:
        raise ValueError(f"model config is missing required key(s) {missing}")
    if seed is None:
        return Forecaster(**config)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int or None, got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return Forecaster(**config)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters.

    Notebooks 03 and 03b.
    """
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
