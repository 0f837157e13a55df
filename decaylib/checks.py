"""Argument and frame checks shared by every room: errors that name the argument, the value and what is allowed (every notebook)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

__all__ = ['show_value', 'EventSchemaError', 'DataWarning', 'InsufficientDataError', 'MemoryBudgetError', 'check_choice', 'check_int', 'check_frame',
           'FLOAT_ID_MAX', 'ROWS_NOTE', 'row_examples', 'check_float_ids', 'check_unique_columns', 'check_unique_rows',
           'check_finite']

#: The largest id a float64 stores exactly: float ids beyond it are refused (2**60 + 1 reads as 2**60).
FLOAT_ID_MAX = 2**53

#: What the row numbers in error messages mean.
ROWS_NOTE = "rows are 0-based data row numbers, the header not counted"


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


# --------------------------------------------------------------------------------------------
# Rules on values, written once for load_events, preprocess (pandas and SQL) and the estimators
# --------------------------------------------------------------------------------------------
def show_value(v) -> str:
    """One offending value as error messages print it (NumPy scalars as Python values, timestamps as dates).

    Notebooks 02 and 08.
    """
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, (pd.Timestamp, np.datetime64)):
        return str(pd.Timestamp(v))
    return repr(v)


def row_examples(values, rows, mask=None, k: int = 5, total: int | None = None) -> str:
    """``row 3: 'x', row 9: 'y', ... (12 in all)`` for the rows where ``mask`` holds (``total``: the count
    when ``values`` hold only the first few of them).

    Notebooks 02 and 08.
    """
    values = np.asarray(values, dtype=object)
    idx = np.flatnonzero(mask) if mask is not None else np.arange(len(values))
    n = len(idx) if total is None else int(total)
    shown = ", ".join(f"row {int(rows[i])}: {show_value(values[i])}" for i in idx[:k])
    return shown + (f", ... ({n:,} in all)" if n > min(k, len(idx)) else "")


def check_float_ids(x, column: str, rows, *, total: int | None = None) -> np.ndarray:
    """Ids stored as floats -> int64, or an :class:`EventSchemaError` naming ``column``, the bad values
    and their ``rows``: missing or infinite, not whole, or beyond :data:`FLOAT_ID_MAX` (a float cannot
    hold them exactly, and beyond int64 they would wrap: two users would become one).  ``total``: how
    many bad values there are when ``x`` holds only a few of them (the SQL engines fetch those).

    The one rule for float ids: :func:`decaylib.data.load.load_events` and ``preprocess`` (pandas,
    DuckDB, Spark) call it.  Notebooks 02 and 08.
    """
    x = np.asarray(x, dtype=float)
    fix = ("; read the column as integers or strings (e.g. pd.read_csv(..., dtype={...: str}) and "
           "decaylib.data.load.load_events, which codes ids of any size)")
    bad = ~np.isfinite(x)
    if bad.any():
        raise EventSchemaError(f"column {column!r} has {int(total or bad.sum()):,} missing or infinite id(s): "
                               f"{row_examples(x, rows, bad, total=total)} ({ROWS_NOTE})")
    big = np.abs(x) > FLOAT_ID_MAX
    if big.any():
        raise EventSchemaError(
            f"column {column!r} holds {int(total or big.sum()):,} id(s) above 2**53 as floating-point numbers, which "
            f"cannot store them exactly (beyond int64 they would even wrap, merging users): "
            f"{row_examples(x, rows, big, total=total)} ({ROWS_NOTE}){fix}")
    frac = x != np.floor(x)
    if frac.any():
        raise EventSchemaError(
            f"column {column!r} must hold integer ids (or strings); {int(total or frac.sum()):,} value(s) are not whole "
            f"numbers: {row_examples(x, rows, frac, total=total)} ({ROWS_NOTE})")
    return x.astype("int64")


def check_unique_columns(names, where: str) -> None:
    """:class:`EventSchemaError` naming the column names that ``where`` (a file or table) has more than once.

    Notebooks 02 and 08.
    """
    names = list(names)
    dup = list(dict.fromkeys(c for i, c in enumerate(names) if c in names[:i]))
    if dup:
        shown = "; ".join(f"{c!r} twice (columns {[i for i, n in enumerate(names) if n == c]})" for c in dup[:5])
        raise EventSchemaError(f"{where} names a column more than once: {shown}; only one would be read and the other "
                               f"silently ignored: rename or drop the duplicate")


def check_unique_rows(df: pd.DataFrame, keys: Sequence[str], name: str) -> None:
    """``ValueError`` naming how many rows of ``df`` repeat the ``keys`` of another row (one row per
    pair and day) and an example, instead of summing or picking one silently.

    Notebooks 04, 05 and 08.
    """
    keys = list(keys)
    dup = df.duplicated(keys, keep=False).to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        first = {k: df[k].to_numpy()[i] for k in keys}  # column by column: a row of ints and floats would show 1.0
        same = np.flatnonzero(dup & np.logical_and.reduce([df[k].to_numpy() == v for k, v in first.items()]))
        ex = ", ".join(f"{k}={show_value(v)}" for k, v in first.items())
        n = int(df.duplicated(keys).sum())
        raise ValueError(f"{name} has {n:,} duplicated ({', '.join(keys)}) row(s), e.g. {ex} at rows {same[:5].tolist()} "
                         f"(0-based positions): one row per ({', '.join(keys)}) is expected; sum or drop the repeats first")


def check_finite(values, column: str, name: str, *, nonnegative: bool = True, mask=None) -> None:
    """``ValueError`` naming ``name[column]`` and how many of ``values`` (where ``mask``) are NaN, infinite or
    (with ``nonnegative``) negative, with the first rows.

    Notebooks 04, 05 and 09.
    """
    v = np.asarray(values, dtype=np.float64)
    use = np.ones(len(v), dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    parts = []
    for what, bad in (("missing (NaN)", np.isnan(v)), ("infinite", np.isinf(v)),
                      ("negative", (v < 0) & np.isfinite(v) if nonnegative else np.zeros(len(v), dtype=bool))):
        bad = bad & use
        if bad.any():
            parts.append(f"{int(bad.sum()):,} {what} (rows {np.flatnonzero(bad)[:5].tolist()})")
    if parts:
        need = "finite numbers >= 0" if nonnegative else "finite numbers"
        where = " on observed days" if mask is not None else ""
        raise ValueError(f"{name}[{column!r}] must hold {need}{where}; it has {', '.join(parts)} "
                         f"(0-based positions): fix or drop those rows")
