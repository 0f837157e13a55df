"""Small shared helpers: seeding and device selection."""

from __future__ import annotations

import os
import random

import numpy as np

__all__ = ["DataWarning", "InsufficientDataError", "set_seed", "resolve_device", "check_choice", "check_int", "check_frame", "in_notebook"]


class DataWarning(UserWarning):
    """Something about the data limits what can be estimated (a short span, sparse pairs, a
    robust rule that had to fall back); the message gives the numbers. Shown once per message."""


class InsufficientDataError(ValueError):
    """The data cannot support the requested step; the message says what the data lacks and
    which parameter to change."""


def set_seed(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and (if installed and already imported or importable) PyTorch.

    Returns a fresh ``numpy.random.Generator`` seeded with ``seed`` for code that prefers an
    explicit generator (all of decaylib does).
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))
    os.environ.setdefault("PYTHONHASHSEED", str(seed))
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a hard dependency, but keep utils light
        pass
    else:
        torch.manual_seed(seed)
    return np.random.default_rng(seed)


def resolve_device(device: str = "auto") -> str:
    """Turn ``"auto"`` into ``"cuda"``, ``"mps"`` or ``"cpu"`` (in that order of preference).

    An explicit ``"cuda"``/``"mps"`` that is not available raises a clear ``RuntimeError``
    instead of failing deep inside PyTorch.
    """
    import torch

    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'auto', 'cpu' or 'cuda', got {device!r}")
    name = device.lower()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    base = name.split(":")[0]
    if base == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device='cuda' was requested but no CUDA GPU is available; use device='auto' or 'cpu'")
    if base == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise RuntimeError("device='mps' was requested but MPS is not available; use device='auto' or 'cpu'")
    if base not in {"cpu", "cuda", "mps"}:
        raise ValueError(f"unknown device {device!r}; expected 'auto', 'cpu', 'cuda' or 'mps'")
    return name


def check_choice(name: str, value, choices) -> None:
    """Raise a ``ValueError`` naming ``name`` when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {sorted(choices)}")


def check_int(name: str, value, minimum: int | None = 1) -> int:
    """``value`` as an ``int``; ``TypeError`` if it is not an integer (bools are refused),
    ``ValueError`` naming ``name`` if it is below ``minimum`` (``None``: no lower bound)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def check_frame(df, required, name: str = "data") -> None:
    """Raise a clear error unless ``df`` is a non-empty DataFrame with the ``required`` columns.

    ``TypeError`` for a non-DataFrame, ``KeyError`` naming the missing columns (and listing the
    present ones), ``ValueError`` for an empty frame.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise KeyError(f"{name} is missing required column(s) {missing}; it has {list(df.columns)}")
    if len(df) == 0:
        raise ValueError(f"{name} is empty (0 rows)")


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, papermill), False in a plain Python process or a terminal IPython."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
