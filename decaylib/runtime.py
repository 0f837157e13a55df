"""Seeds, devices and where the code runs (a Jupyter kernel or a plain process); notebooks 01, 03 and 03b."""

from __future__ import annotations

import os
import random

import numpy as np

__all__ = ['set_seed', 'resolve_device', 'in_notebook']


def set_seed(seed: int) -> np.random.Generator:
    """Seed Python, NumPy and (if installed and already imported or importable) PyTorch.

    Returns a fresh ``numpy.random.Generator`` seeded with ``seed`` for code that prefers an
    explicit generator (all of decaylib does).

    Notebooks 03 and 03b.
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

    Notebooks 03 and 03b.
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


def in_notebook() -> bool:
    """True inside a Jupyter kernel (JupyterLab, papermill), False in a plain Python process or a terminal IPython.

    Notebooks 01, 03 and 03b.
    """
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
