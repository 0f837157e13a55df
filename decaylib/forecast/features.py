"""Feature scaling for the forecaster (notebook 03): ``log1p`` and standardisation fitted on training users only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from decaylib.checks import check_frame

__all__ = ['log_transform', 'Standardizer']


def log_transform(x):
    """``log(1 + x)``: defined at zero (no ``1e-8`` patch), ~x for small x, ~log x for large x.

    Negative values are an error, not a NaN.

    Notebook 02.
    """
    arr = np.asarray(x, dtype=float)
    if (arr < 0).any():
        raise ValueError(f"log_transform got {int((arr < 0).sum())} negative value(s); counts and scores must be >= 0")
    return np.log1p(arr)


def _as_user_array(users, name: str = "users") -> np.ndarray:
    if isinstance(users, (str, bytes)) or np.isscalar(users):
        raise TypeError(f"{name} must be an array-like of user ids, got a scalar {users!r}")
    arr = np.asarray(users)
    if arr.ndim != 1:
        arr = arr.ravel()
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name} must hold integer user ids, got dtype {arr.dtype}")
    return np.unique(arr.astype(np.int64))


def _user_rows(panel: pd.DataFrame, users, name: str = "users") -> np.ndarray:
    """Boolean row mask of ``users`` in ``panel``; KeyError when some are not in the panel."""
    u = _as_user_array(users, name)
    panel_users = panel["user_id"].to_numpy()
    known = np.isin(u, panel_users)
    if not known.all():
        unknown = u[~known]
        raise KeyError(
            f"{unknown.size} of {u.size} {name} are not in the panel, e.g. {unknown[:5].tolist()}"
        )
    return np.isin(panel_users, u)


@dataclass(frozen=True)
class Standardizer:
    """``z = (log1p(x) - mean) / std`` per column, with the exact inverse.

    Attributes
    ----------
    columns : tuple of str
        Panel columns, in feature order.
    mean, std : numpy.ndarray
        Per-column mean and standard deviation of ``log1p(x)`` (float64, shape ``(n_columns,)``).
        A column that is constant on the fitting rows gets ``std = 1``.

    Notebook 02.
    """

    columns: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        cols = tuple(str(c) for c in self.columns)
        mean = np.asarray(self.mean, dtype=np.float64).reshape(-1)
        std = np.asarray(self.std, dtype=np.float64).reshape(-1)
        if len(cols) == 0:
            raise ValueError("Standardizer needs at least one column")
        if mean.shape != (len(cols),) or std.shape != (len(cols),):
            raise ValueError(
                f"mean/std must have one entry per column ({len(cols)}), got {mean.shape} and {std.shape}"
            )
        if not (np.isfinite(mean).all() and np.isfinite(std).all()) or (std <= 0).any():
            raise ValueError("Standardizer mean must be finite and std finite and > 0")
        object.__setattr__(self, "columns", cols)
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "std", std)

    @property
    def n_features(self) -> int:
        """Number of columns."""
        return len(self.columns)

    def _values(self, values) -> np.ndarray:
        if isinstance(values, pd.DataFrame):
            missing = [c for c in self.columns if c not in values.columns]
            if missing:
                raise KeyError(f"missing column(s) {missing} to transform")
            return values[list(self.columns)].to_numpy(dtype=np.float64)
        arr = np.asarray(values, dtype=np.float64)
        if self.n_features > 1 and (arr.ndim == 0 or arr.shape[-1] != self.n_features):
            raise ValueError(
                f"last axis must have {self.n_features} entries {list(self.columns)}, got shape {arr.shape}"
            )
        return arr

    def transform(self, values) -> np.ndarray:
        """Raw values (DataFrame with ``columns`` or array ``[..., n_columns]``) -> scaled float64.

        With a single column, any array shape is accepted (e.g. targets ``[N, horizon]``).
        Negative raw values raise ``ValueError`` (log1p is undefined below -1 and counts are >= 0).
        """
        x = self._values(values)
        if (x < 0).any():
            raise ValueError("values to transform must be >= 0 (counts / interest scores)")
        return (np.log1p(x) - self.mean) / self.std

    def inverse_transform(self, z, clip: bool = False) -> np.ndarray:
        """Scaled values -> raw units: ``expm1(z * std + mean)`` (float64).

        ``clip=True`` clips at 0 (a model output can map slightly below 0; raw data never does).
        """
        z = np.asarray(z, dtype=np.float64)
        if self.n_features > 1 and (z.ndim == 0 or z.shape[-1] != self.n_features):
            raise ValueError(f"last axis must have {self.n_features} entries, got shape {z.shape}")
        out = np.expm1(z * self.std + self.mean)
        return np.maximum(out, 0.0) if clip else out

    def to_dict(self) -> dict:
        """Plain-Python form (lists, strings) for JSON or a ``weights_only`` checkpoint."""
        return {
            "columns": list(self.columns),
            "mean": [float(v) for v in self.mean],
            "std": [float(v) for v in self.std],
            "transform": "log1p_standardize",
        }

    @classmethod
    def from_dict(cls, d: dict) -> "Standardizer":
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, dict):
            raise TypeError(f"expected a dict from Standardizer.to_dict(), got {type(d).__name__}")
        missing = [k for k in ("columns", "mean", "std") if k not in d]
        if missing:
            raise KeyError(f"Standardizer dict is missing key(s) {missing}")
        if d.get("transform", "log1p_standardize") != "log1p_standardize":
            raise ValueError(f"unknown transform {d['transform']!r}; expected 'log1p_standardize'")
        return cls(tuple(d["columns"]), np.asarray(d["mean"]), np.asarray(d["std"]))

    @classmethod
    def fit(cls, panel: pd.DataFrame, users, columns: Sequence[str]) -> "Standardizer":
        """Fit mean/std of ``log1p`` of ``columns`` on the rows of ``users`` only."""
        if isinstance(columns, str):
            columns = (columns,)
        columns = tuple(columns)
        if len(columns) == 0:
            raise ValueError("columns is empty")
        check_frame(panel, ["user_id", *columns], "panel")
        rows = _user_rows(panel, users)
        x = panel.loc[rows, list(columns)].to_numpy(dtype=np.float64)
        if not np.isfinite(x).all():
            raise ValueError(f"non-finite values in panel columns {list(columns)}")
        if (x < 0).any():
            bad = [c for c, b in zip(columns, (x < 0).any(axis=0)) if b]
            raise ValueError(f"negative values in panel column(s) {bad}; counts must be >= 0")
        lx = np.log1p(x)
        mean = lx.mean(axis=0)
        std = lx.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)
        return cls(columns, mean, std)
