"""Saving and loading trained forecasters safely (notebooks 03 and 03b): weights only, with the config checked."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from decaylib.artifacts import atomic_write
from decaylib.forecast.models import Forecaster, build_model

__all__ = ['save_checkpoint', 'load_checkpoint']

_CKPT_FORMAT = "decaylib-forecaster"

_CKPT_VERSION = 1


# --------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------
def _plain(obj: Any, where: str) -> Any:
    """Convert to what ``torch.load(weights_only=True)`` accepts: tensors, dicts, lists, scalars, str."""
    if isinstance(obj, np.generic):  # first: np.float64 is a float subclass, but pickles as numpy
        return obj.item()
    if obj is None:
        return None
    for base in (bool, int, float, str):  # plain base types (an IntEnum/str subclass would pickle a class)
        if isinstance(obj, base):
            return base(obj)
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"checkpoint extra{where}: dict keys must be str or int, got {k!r}")
            out[k] = _plain(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    to_dict = getattr(obj, "to_dict", None)
    if callable(to_dict) and not isinstance(obj, (pd.DataFrame, pd.Series)):
        return _plain(to_dict(), where)
    raise TypeError(
        f"checkpoint extra{where} has type {type(obj).__name__}; store only tensors, dicts, lists, "
        "numbers, strings (or objects with to_dict())"
    )


def save_checkpoint(path, model: nn.Module, extra: dict | None = None) -> Path:
    """Write weights + ``model.config`` (+ ``extra``) to ``path`` atomically.

    The file is written to a temporary file in the same directory and moved into place with
    ``os.replace``: a failure leaves any previous file at ``path`` intact and no partial file.

    Parameters
    ----------
    path : str or Path
    model : nn.Module
        Must have a ``config`` dict (a :class:`~decaylib.forecast.models.Forecaster`).
    extra : dict, optional
        Plain data to keep with the weights, e.g. ``{"feature_stats": fstats.to_dict(),
        "target_transform": tstats.to_dict(), "seq_length": 14, "horizon": 7}``. NumPy arrays and
        scalars are converted to lists/numbers and objects with ``to_dict()`` to dicts.

    Returns
    -------
    Path

    Notebook 03.
    """
    config = getattr(model, "config", None)
    if not isinstance(model, nn.Module) or not isinstance(config, dict):
        raise TypeError("model must be a torch.nn.Module with a `config` dict (e.g. decaylib.forecast.models.Forecaster)")
    if extra is not None and not isinstance(extra, dict):
        raise TypeError(f"extra must be a dict or None, got {type(extra).__name__}")
    payload = {
        "format": _CKPT_FORMAT,
        "version": _CKPT_VERSION,
        "config": _plain(dict(config), "[config]"),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "extra": _plain(extra or {}, ""),
        "torch_version": str(torch.__version__),
    }

    path = Path(path)
    with atomic_write(path) as tmp:
        with open(tmp, "wb") as fh:
            torch.save(payload, fh)
    return path


def _config_diff(have: dict, want: dict, have_name: str, want_name: str, keys=None) -> list[str]:
    keys = sorted(set(want) if keys is None else keys, key=str)
    missing = object()
    diffs = []
    for k in keys:
        a, b = have.get(k, missing), want.get(k, missing)
        if a is missing or b is missing or a != b:
            a_s = "<absent>" if a is missing else repr(a)
            b_s = "<absent>" if b is missing else repr(b)
            diffs.append(f"{k}: {have_name} {a_s} vs {want_name} {b_s}")
    return diffs


def _unreadable(path: Path, exc: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused ``path``, without torch's advice to load it with
    ``weights_only=False`` (which would run whatever code the file's pickle names)."""
    text = str(exc)
    if "weights_only" not in text and "Unsupported global" not in text:
        return f"{path} is not a readable decaylib checkpoint: {text}"
    found = re.search(r"[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)", text)
    if found is None:  # not a pickle of objects: say what torch found, without its advice
        detail = re.search(r"WeightsUnpickler error:\s*(.*?)\s*(?:Check the documentation|$)", text, re.S)
        facts = [t for t in re.split(r"(?<=[.!?])\s+", detail.group(1) if detail else text.strip())
                 if t and not re.search(r"weights_only|trusted source|safe_globals|documentation|PyTorch 2\.6", t)]
        why = " ".join(" ".join(facts).split())[:300] or type(exc).__name__
        return (f"{path} is not a readable decaylib checkpoint: not a file of tensors and plain values as "
                f"decaylib.forecast.checkpoints.save_checkpoint writes (torch: {why})")
    return (f"{path} is not a readable decaylib checkpoint: it holds pickled Python objects besides tensors "
            f"(it names {found.group(1)}) and plain values. decaylib loads checkpoints with weights_only=True only: "
            "loading a pickle with weights_only=False can run arbitrary code on your machine (a pickle may name any "
            "function, os.system included), so a file that needs it is refused. Rebuild it with notebook "
            "03_forecasting (decaylib.forecast.checkpoints.save_checkpoint writes only tensors and plain values)")


def load_checkpoint(
    path,
    expected_config: dict | None = None,
    *,
    model: nn.Module | None = None,
    map_location: str = "cpu",
) -> tuple[Forecaster, dict]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``torch.load(weights_only=True)``.

    Parameters
    ----------
    path : str or Path
    expected_config : dict, optional
        Keys that must match the checkpoint's config (e.g. ``{"cell": "lstm", "hidden_size": 32}``);
        any difference raises ``ValueError`` naming the keys.
    model : nn.Module, optional
        Load into this model instead of building a new one; its ``config`` must equal the
        checkpoint's (``ValueError`` naming the differing keys otherwise).
    map_location : str
        Device for the loaded tensors.

    Returns
    -------
    (model, extra)
        The model (eval mode) and the ``extra`` dict given at save time.

    Notebooks 03 and 03b.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # unpickling errors come in several types
        raise ValueError(_unreadable(path, exc)) from None  # not chained: torch's text advises weights_only=False
    if not isinstance(payload, dict) or payload.get("format") != _CKPT_FORMAT:
        raise ValueError(f"{path} is not a decaylib forecaster checkpoint (format {_CKPT_FORMAT!r})")
    if payload.get("version") != _CKPT_VERSION:
        raise ValueError(f"{path}: unsupported checkpoint version {payload.get('version')!r}")
    config = payload["config"]
    if expected_config is not None:
        if not isinstance(expected_config, dict):
            raise TypeError(f"expected_config must be a dict, got {type(expected_config).__name__}")
        diffs = _config_diff(config, expected_config, "checkpoint", "expected")
        if diffs:
            raise ValueError(f"checkpoint {path.name} config differs from expected_config: " + "; ".join(diffs))
    if model is None:
        model = build_model(config)
    else:
        mconf = getattr(model, "config", None)
        if not isinstance(model, nn.Module) or not isinstance(mconf, dict):
            raise TypeError("model must be a torch.nn.Module with a `config` dict")
        diffs = _config_diff(config, mconf, "checkpoint", "model", keys=set(config) | set(mconf))
        if diffs:
            raise ValueError(f"checkpoint {path.name} does not fit this model: " + "; ".join(diffs))
    try:
        model.load_state_dict(payload["state_dict"], strict=True)
    except RuntimeError as exc:
        raise ValueError(f"checkpoint {path.name} weights do not fit the model: {exc}") from exc
    model.to(map_location)
    model.eval()
    return model, payload.get("extra", {})
