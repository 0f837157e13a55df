"""Argument and frame checks shared by every room: errors that name the argument, the value and what is allowed (every notebook)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = ['EventSchemaError', 'DataWarning', 'InsufficientDataError', 'MemoryBudgetError', 'check_choice', 'check_int', 'check_frame']


def require_frame(df, name: str, columns: Iterable[str], allow_empty: bool = False) -> None:
    """Raise unless ``df`` is a DataFrame (``TypeError``) with ``columns`` (``KeyError`` naming the missing ones)
    that is not empty (``ValueError``; allowed with ``allow_empty``).

    Notebooks 02, 06 and 07.
    """
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise KeyError(f"{name} is missing column(s) {missing}; it has {list(df.columns)}")
    if df.empty and not allow_empty:
        raise ValueError(f"{name} is empty")


def check_positive(name: str, value) -> float:
    """``value`` as a float; ``TypeError`` unless it is a number (bools refused), ``ValueError`` naming ``name``
    unless it is finite and > 0.

    Notebook 06.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def check_integer_column(df: pd.DataFrame, name: str, column: str) -> None:
    """``TypeError`` naming ``name.column`` unless ``df[column]`` has an integer dtype.

    Notebooks 02 and 06.
    """
    if not pd.api.types.is_integer_dtype(df[column]):
        raise TypeError(f"{name}.{column} must have an integer dtype, got {df[column].dtype}")


# --------------------------------------------------------------------------------------------
# Small validation helpers (also used by decaylib.decay.points)
# --------------------------------------------------------------------------------------------
def numeric_column(df: pd.DataFrame, col: str, name: str) -> np.ndarray:
    """``df[col]`` as a float64 array (missing values as NaN); ``TypeError`` naming ``name`` unless the column is
    numeric (bools refused).

    Notebooks 04, 05, 07 and 09.
    """
    s = df[col]
    if s.dtype == bool or not pd.api.types.is_numeric_dtype(s):
        raise TypeError(f"{name}[{col!r}] must be numeric, got dtype {s.dtype}")
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


def bool_column(df: pd.DataFrame, col: str, name: str) -> np.ndarray:
    """``df[col]`` as a bool array; ``ValueError`` naming ``name`` if it has missing values, ``TypeError`` unless
    its dtype is boolean.

    Notebooks 04, 05, 07 and 09.
    """
    s = df[col]
    if s.isna().any():
        raise ValueError(f"{name}[{col!r}] contains missing values")
    if not (s.dtype == bool or pd.api.types.is_bool_dtype(s)):
        raise TypeError(f"{name}[{col!r}] must be boolean, got dtype {s.dtype}")
    return s.to_numpy(dtype=bool)


class EventSchemaError(ValueError):
    """An event table (or file) does not have the expected shape; the message says what is wrong
    and shows a few of the offending values with their row numbers.

    Notebooks 02 and 08.
    """


class DataWarning(UserWarning):
    """Something about the data limits what can be estimated (a short span, sparse pairs, a
    robust rule that had to fall back); the message gives the numbers. Shown once per message.

    Notebooks 02, 07 and 08.
    """


class InsufficientDataError(ValueError):
    """The data cannot support the requested step; the message says what the data lacks and
    which parameter to change.

    Notebooks 03 and 03b.
    """


class MemoryBudgetError(ValueError):
    """A step would hold more dense arrays in memory than its budget allows (instead of a raw
    ``MemoryError`` or a killed kernel); the message gives the sizes and the parameter to change
    (``max_train_windows``, ``seq_length``, ``horizon``, fewer users).

    Notebooks 03 and 09.
    """


def check_choice(name: str, value, choices) -> None:
    """Raise a ``ValueError`` naming ``name`` when ``value`` is not one of ``choices``.

    Notebooks 00-09 (every notebook), through the library functions that check their arguments.
    """
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; expected one of {sorted(choices)}")


def check_int(name: str, value, minimum: int | None = 1) -> int:
    """``value`` as an ``int``; ``TypeError`` if it is not an integer (bools are refused),
    ``ValueError`` naming ``name`` if it is below ``minimum`` (``None``: no lower bound).

    Notebooks 02-09, through the library functions that check their arguments.
    """
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

    Notebooks 02-09, through the library functions that check their arguments.
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise KeyError(f"{name} is missing required column(s) {missing}; it has {list(df.columns)}")
    if len(df) == 0:
        raise ValueError(f"{name} is empty (0 rows)")


def column_names(column) -> list[str]:
    """``column`` (a panel column name or a list of them) as a list; ``TypeError`` otherwise (notebooks 04, 08)."""
    cols = [column] if isinstance(column, str) else list(column) if isinstance(column, (list, tuple)) else None
    if not cols or not all(isinstance(c, str) for c in cols):
        raise TypeError(f"column must be a panel column name or a list of them, got {column!r}")
    return cols


def pair_values(obj, pair_cols: Sequence[str], col: str, name: str, allow_empty: bool = False) -> pd.DataFrame:
    """Normalise a per-pair value given as a DataFrame (pair columns + ``col``) or a Series
    indexed by the pair columns into a DataFrame with columns ``pair_cols + [col]``
    (an empty DataFrame is an error unless ``allow_empty``).

    Notebooks 04, 05 and 09.
    """
    pair_cols = list(pair_cols)
    if allow_empty and isinstance(obj, pd.DataFrame) and len(obj) == 0 and set(pair_cols + [col]) <= set(obj.columns):
        return obj[pair_cols + [col]]
    if isinstance(obj, pd.Series):
        if list(obj.index.names) != pair_cols:
            raise ValueError(
                f"{name} as a Series must be indexed by {pair_cols}, got index names {list(obj.index.names)}"
            )
        out = obj.rename(col).reset_index()
    elif isinstance(obj, pd.DataFrame):
        check_frame(obj, pair_cols + [col], name)
        out = obj[pair_cols + [col]]
    else:
        raise TypeError(f"{name} must be a DataFrame or a Series indexed by {pair_cols}, got {type(obj).__name__}")
    if out.duplicated(pair_cols).any():
        raise ValueError(f"{name} has more than one row for some pairs")
    return out
