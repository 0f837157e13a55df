"""Sliding windows over the daily panel, feature scaling and leakage-free splits.

This is the bridge between the daily panel (see ``decaylib.data.preprocess``) and the recurrent
forecaster (``decaylib.forecast.models`` / ``decaylib.forecast.train``).

A *window* is ``seq_length`` consecutive days of one (user, category) pair that ends at its
forecast **origin** day ``t`` (inclusive).  Its target is the interest score on days
``t+1 ... t+horizon``.  A window never contains a day after its origin.

Scaling (fitted on TRAINING USERS ONLY, so nothing leaks from validation/test users):

* input features: ``z = (log1p(x) - mean) / std`` per feature column;
* target: the same transform applied to the ``interest`` column,
  ``z = (log1p(interest) - mean) / std``, with the exact inverse
  ``interest = expm1(z * std + mean)`` (:meth:`Standardizer.inverse_transform`).

Both are :class:`Standardizer` objects whose ``to_dict()`` holds only plain lists/strings, so
they fit in a ``weights_only`` PyTorch checkpoint.

Typical use::

    train_u, val_u, test_u = split_users(panel["user_id"], val_frac=0.15, test_frac=0.15, seed=0)
    fstats = fit_feature_stats(panel, train_u)
    tstats = fit_target_transform(panel, train_u)
    train = build_windows(panel, fstats, tstats, seq_length=14, horizon=7, users=train_u)
    latest = build_windows(panel, fstats, seq_length=14, with_target=False, latest_only=True)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from decaylib.checks import InsufficientDataError, MemoryBudgetError, check_frame, check_int
from decaylib.forecast.features import Standardizer, _as_user_array, _user_rows
from decaylib.schema import FEATURE_COLUMNS, PANEL_KEY_COLUMNS

__all__ = ['FEATURE_COLUMNS', 'TARGET_COLUMN', 'fit_feature_stats', 'fit_target_transform', 'WINDOW_MEMORY_BUDGET', 'check_window_memory', 'WindowSet', 'WindowDataset', 'build_windows', 'split_users', 'user_folds', 'split_by_time', 'build_split_windows', 'split_for_update']


#: The panel column that the model forecasts.
TARGET_COLUMN: str = "interest"


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------
# --------------------------------------------------------------------------------------------
# scaling
# --------------------------------------------------------------------------------------------
def fit_feature_stats(
    panel: pd.DataFrame, users, columns: Sequence[str] = FEATURE_COLUMNS
) -> Standardizer:
    """Fit the input-feature :class:`Standardizer` on the panel rows of TRAINING ``users`` only.

    Parameters
    ----------
    panel : DataFrame
        Daily panel (see the data contract).
    users : array-like of int
        Training user ids. Every id must be in the panel (``KeyError`` otherwise).
    columns : sequence of str
        Feature columns, default :data:`FEATURE_COLUMNS`.

    Notebooks 03 and 03b.
    """
    return Standardizer.fit(panel, users, columns)


def fit_target_transform(panel: pd.DataFrame, users, column: str = TARGET_COLUMN) -> Standardizer:
    """Fit the target transform ``(log1p(interest) - mean) / std`` on TRAINING ``users`` only.

    Its :meth:`Standardizer.inverse_transform` maps model outputs back to panel interest units.

    Notebooks 03 and 03b.
    """
    if not isinstance(column, str):
        raise TypeError(f"column must be a string, got {type(column).__name__}")
    return Standardizer.fit(panel, users, (column,))


# --------------------------------------------------------------------------------------------
# memory budget
# --------------------------------------------------------------------------------------------
#: Most bytes one dense array cut from windows may take (``WindowSet.X``, ``Y``, ``y_raw``, a long
#: forecast table of windows x horizon rows): beyond it :class:`~decaylib.checks.MemoryBudgetError`
#: names the parameter to change, instead of a killed kernel.  Training and prediction never need
#: such an array: they slice windows batch by batch from the per-row arrays (:class:`WindowDataset`).
#: 2 GiB, or ``DECAYLIB_MEMORY_BUDGET_GIB`` from the environment (read at import).
WINDOW_MEMORY_BUDGET: int = int(float(os.environ.get("DECAYLIB_MEMORY_BUDGET_GIB", "2")) * 1024**3)

#: Windows sliced per step when a dense array is filled (bounds the temporary index arrays).
_CHUNK_WINDOWS = 1 << 16
#: Panel rows scaled per step (bounds the float64 temporaries of the transform).
_CHUNK_ROWS = 1 << 20


def check_window_memory(nbytes: int, what: str, fix: str, budget: int | None = None) -> None:
    """Raise :class:`~decaylib.checks.MemoryBudgetError` when ``nbytes`` exceed ``budget`` (default
    :data:`WINDOW_MEMORY_BUDGET`); the message says what needed them and ``fix``, the parameter to
    change.

    Notebooks 03 and 09.
    """
    limit = WINDOW_MEMORY_BUDGET if budget is None else int(budget)
    if nbytes > limit:
        raise MemoryBudgetError(
            f"{what} would take {nbytes / 2**30:.2f} GiB, above the budget of {limit / 2**30:.2f} GiB "
            f"(DECAYLIB_MEMORY_BUDGET_GIB, decaylib.forecast.sequences.WINDOW_MEMORY_BUDGET); {fix}")


# --------------------------------------------------------------------------------------------
# windows
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class _WindowSource:
    """The contiguous per-row arrays that windows index into, shared by a WindowSet and its subsets.

    ``feats`` float32 ``[R + P, F]``: scaled features of the ``R`` panel rows, sorted by pair and
    day, with ``P`` rows of scaled zeros before each pair when padded; ``user``, ``category``,
    ``day`` int64 ``[R]``; ``interest`` float64 ``[R]`` (raw target column); ``target`` float32
    ``[R]`` (scaled target, filled on rows that are some window's target day) or None;
    ``observed`` bool ``[R]`` or None (every day observed).
    """

    feats: np.ndarray
    user: np.ndarray
    category: np.ndarray
    day: np.ndarray
    interest: np.ndarray
    target: np.ndarray | None
    observed: np.ndarray | None


class WindowSet:
    """Windows cut from the panel, ready for the forecaster, held as index arrays.

    A window is not copied out of the panel: the set keeps the panel's rows once, as contiguous
    per-pair arrays, and two integers per window (where its first input day and its origin day
    are).  Training and prediction slice batches from them (:class:`WindowDataset`), so memory
    grows with the panel's rows, not with windows x ``seq_length``.  The dense arrays below are
    built on demand (each read builds them again; ``meta`` is kept once built) and refused with a
    :class:`~decaylib.checks.MemoryBudgetError` above :data:`WINDOW_MEMORY_BUDGET`.

    Attributes
    ----------
    X : torch.Tensor
        float32 ``[N, seq_length, n_features]``, scaled features; ``X[i, -1]`` is the origin day.
    Y : torch.Tensor or None
        float32 ``[N, horizon]``, scaled target on days ``origin+1 ... origin+horizon``
        (None for inference windows built with ``with_target=False``).
    meta : DataFrame
        One row per window: ``user_id``, ``category``, ``origin_day`` (int64) and
        ``origin_interest`` (raw interest on the origin day, for a persistence baseline).
    y_raw : numpy.ndarray or None
        float64 ``[N, horizon]``, the target in panel interest units (exact, not round-tripped).
    target_observed : numpy.ndarray or None
        bool ``[N, horizon]``; False where a target day is a logging-outage day (panel column
        ``observed``); all True if the panel has no ``observed`` column.
    seq_length, horizon : int
    feature_columns : tuple of str
    n_pairs : int
        Pairs considered (after the ``users`` filter).
    n_skipped_pairs : int
        Pairs too short to give a single window (fewer than ``seq_length + horizon`` days, or
        ``seq_length`` days when ``with_target=False``); they contribute no window.

    Notebooks 03 and 03b.
    """

    def __init__(self, source: _WindowSource, origin_row: np.ndarray, x_start: np.ndarray, *, seq_length: int,
                 horizon: int, feature_columns: Sequence[str], with_target: bool, n_pairs: int = 0,
                 n_skipped_pairs: int = 0, extra: dict | None = None):
        self._source = source
        self.origin_row = np.asarray(origin_row, dtype=np.int64)
        self.x_start = np.asarray(x_start, dtype=np.int64)
        self.seq_length, self.horizon = int(seq_length), int(horizon)
        self.feature_columns = tuple(feature_columns)
        self.with_target = bool(with_target)
        self.n_pairs, self.n_skipped_pairs = int(n_pairs), int(n_skipped_pairs)
        self.extra = dict(extra or {})
        self._meta = None

    def __len__(self) -> int:
        return int(self.origin_row.size)

    def __repr__(self) -> str:
        n, f = len(self), len(self.feature_columns)
        y = f"({n}, {self.horizon})" if self.with_target else "None"
        users = np.unique(self._source.user[self.origin_row]).size
        return (
            f"WindowSet(n={n}, X={(n, self.seq_length, f)}, Y={y}, seq_length={self.seq_length}, "
            f"horizon={self.horizon}, users={users}, pairs={self.n_pairs}, skipped_pairs={self.n_skipped_pairs})"
        )

    # ---- dense arrays, built on demand ---------------------------------------------------------
    def _gather(self, values: np.ndarray, start: np.ndarray, width: int, dtype, what: str, fix: str) -> np.ndarray:
        """``out[i] = values[start[i] : start[i] + width]`` for every window, filled in chunks."""
        n = len(self)
        shape = (n, width) + values.shape[1:]
        check_window_memory(int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize, what, fix)
        out = np.empty(shape, dtype=dtype)
        offs = np.arange(width, dtype=np.int64)
        for a in range(0, n, _CHUNK_WINDOWS):
            b = min(a + _CHUNK_WINDOWS, n)
            out[a:b] = values[start[a:b, None] + offs]
        return out

    def _fix(self) -> str:
        return ("pass a smaller max_train_windows, seq_length or horizon, or take fewer windows first "
                "(.sample(n), .for_users(users)); training and prediction never need it (they slice batches)")

    @property
    def X(self) -> torch.Tensor:
        """float32 ``[N, seq_length, n_features]`` (built on demand)."""
        x = self._gather(self._source.feats, self.x_start, self.seq_length, np.float32,
                         f"X of {len(self):,} windows x seq_length={self.seq_length} x {len(self.feature_columns)} features",
                         self._fix())
        return torch.from_numpy(x)

    @property
    def Y(self) -> torch.Tensor | None:
        """float32 ``[N, horizon]`` scaled targets (built on demand), or None."""
        if not self.with_target:
            return None
        y = self._gather(self._source.target, self.origin_row + 1, self.horizon, np.float32,
                         f"Y of {len(self):,} windows x horizon={self.horizon}", self._fix())
        return torch.from_numpy(y)

    @property
    def y_raw(self) -> np.ndarray | None:
        """float64 ``[N, horizon]`` targets in interest units (built on demand), or None."""
        if not self.with_target:
            return None
        return self._gather(self._source.interest, self.origin_row + 1, self.horizon, np.float64,
                            f"y_raw of {len(self):,} windows x horizon={self.horizon}", self._fix())

    @property
    def target_observed(self) -> np.ndarray | None:
        """bool ``[N, horizon]`` (built on demand), or None."""
        if not self.with_target:
            return None
        if self._source.observed is None:
            return np.ones((len(self), self.horizon), dtype=bool)
        return self._gather(self._source.observed, self.origin_row + 1, self.horizon, bool,
                            f"target_observed of {len(self):,} windows x horizon={self.horizon}", self._fix())

    def key_arrays(self, *names: str) -> dict[str, np.ndarray]:
        """``user_id``, ``category``, ``origin_day`` (int64) and ``origin_interest`` (float64) per
        window, as arrays (``meta`` without the DataFrame); ``names`` picks some of them."""
        s, r = self._source, self.origin_row
        get = {"user_id": s.user, "category": s.category, "origin_day": s.day, "origin_interest": s.interest}
        unknown = [n for n in names if n not in get]
        if unknown:
            raise KeyError(f"unknown key array(s) {unknown}; the keys are {list(get)}")
        return {n: get[n][r] for n in (names or get)}

    @property
    def meta(self) -> pd.DataFrame:
        """One row per window (built once, then kept)."""
        if self._meta is None:
            self._meta = pd.DataFrame(self.key_arrays())
        return self._meta

    @property
    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(X, Y)`` for :func:`decaylib.forecast.train.train_model`; ValueError without targets."""
        if not self.with_target:
            raise ValueError("this WindowSet has no targets (built with with_target=False)")
        return self.X, self.Y

    def dataset(self, device: str | torch.device = "cpu") -> "WindowDataset":
        """A :class:`WindowDataset` over these windows, its arrays on ``device``."""
        return WindowDataset(self, device=device)

    # ---- selections: index arrays only, the rows are shared --------------------------------
    def subset(self, index) -> "WindowSet":
        """Windows selected by a boolean mask or integer positions (order kept)."""
        idx = np.asarray(index)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"boolean mask must have shape ({len(self)},), got {idx.shape}")
            idx = np.flatnonzero(idx)
        elif idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"index must be a boolean mask or integer positions, got dtype {idx.dtype}")
        idx = idx.astype(np.int64)
        rows = self.origin_row[idx]
        n_pairs = (pd.DataFrame({"u": self._source.user[rows], "c": self._source.category[rows]})
                   .groupby(["u", "c"]).ngroups) if rows.size else 0
        return WindowSet(self._source, rows, self.x_start[idx], seq_length=self.seq_length, horizon=self.horizon,
                         feature_columns=self.feature_columns, with_target=self.with_target, n_pairs=n_pairs,
                         n_skipped_pairs=0, extra=self.extra)

    def sample(self, n: int | None, seed: int = 0) -> "WindowSet":
        """At most ``n`` windows drawn without replacement (seeded; original order kept).

        ``None`` or ``n >= len(self)`` returns ``self``: subsampling trades a little accuracy
        for training time on small machines.  Only window positions are drawn: nothing is copied.
        """
        if n is None or n >= len(self):
            return self
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer or None, got {n!r}")
        idx = np.sort(np.random.default_rng(seed).choice(len(self), size=int(n), replace=False))
        return self.subset(idx)

    def for_users(self, users) -> "WindowSet":
        """Windows of ``users`` only (ids without any window raise ``KeyError``)."""
        u = _as_user_array(users)
        have = self._source.user[self.origin_row]
        unknown = u[~np.isin(u, have)]
        if unknown.size:
            raise KeyError(f"{unknown.size} users have no window in this WindowSet, e.g. {unknown[:5].tolist()}")
        return self.subset(np.isin(have, u))


class WindowDataset(Dataset):
    """A :class:`WindowSet` as a torch ``Dataset``: windows sliced on demand from its per-row arrays.

    ``ds[i]`` is ``(x, y)`` (``x`` ``[seq_length, n_features]``, ``y`` ``[horizon]``; ``x`` alone
    without targets); :meth:`batch` slices a whole mini-batch at once from index tensors, which the
    training loop uses (one gather per batch, no per-sample Python).  The per-row arrays go to
    ``device`` once; a window's days are never stored ``seq_length`` times.

    Notebooks 03 and 03b.
    """

    def __init__(self, windows: WindowSet, device: str | torch.device = "cpu"):
        if not isinstance(windows, WindowSet):
            raise TypeError(f"windows must be a WindowSet, got {type(windows).__name__}")
        src = windows._source
        self.with_target = windows.with_target
        self.device = torch.device(device)
        self.feats = torch.from_numpy(src.feats).to(self.device)
        self.x_start = torch.from_numpy(windows.x_start).to(self.device)
        self._x_offs = torch.arange(windows.seq_length, device=self.device)
        if self.with_target:
            self.target = torch.from_numpy(src.target).to(self.device)
            self.y_start = torch.from_numpy(windows.origin_row + 1).to(self.device)
            self._y_offs = torch.arange(windows.horizon, device=self.device)

    def __len__(self) -> int:
        return int(self.x_start.shape[0])

    def batch_x(self, idx: torch.Tensor) -> torch.Tensor:
        """Inputs ``[B, seq_length, n_features]`` of windows ``idx`` (a 1-D int64 tensor on ``device``)."""
        return self.feats[self.x_start[idx].unsqueeze(1) + self._x_offs]

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(X [B, L, F], Y [B, H])`` of windows ``idx``; ValueError without targets."""
        if not self.with_target:
            raise ValueError("these windows have no targets (built with with_target=False)")
        return self.batch_x(idx), self.target[self.y_start[idx].unsqueeze(1) + self._y_offs]

    def __getitem__(self, i):
        i = int(i)
        if not -len(self) <= i < len(self):
            raise IndexError(f"window {i} out of range for {len(self)} windows")
        idx = torch.tensor([i % len(self)], device=self.device)
        if self.with_target:
            x, y = self.batch(idx)
            return x[0], y[0]
        return self.batch_x(idx)[0]


def _panel_rows(panel: pd.DataFrame, users) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]:
    """Rows of ``users`` sorted by (user_id, category, day): ``(take, user, category, day)``.

    ``take`` are the panel positions (None: all rows, already sorted), so that each further column
    is read once, for those rows only, instead of copying the whole panel.
    """
    keys = []
    for name in PANEL_KEY_COLUMNS:
        arr = panel[name].to_numpy()
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"panel column {name!r} must be integer, got dtype {arr.dtype}")
        keys.append(arr)
    take = None if users is None else np.flatnonzero(_user_rows(panel, users))
    if take is not None:
        keys = [k[take] for k in keys]
    user, cat, day = keys
    if len(user) > 1:
        du, dc, dd = np.diff(user), np.diff(cat), np.diff(day)
        ordered = (du > 0) | ((du == 0) & ((dc > 0) | ((dc == 0) & (dd > 0))))
        if not ordered.all():
            order = np.lexsort((day, cat, user))  # stable, like sort_values(kind="stable")
            take = order if take is None else take[order]
            user, cat, day = user[order], cat[order], day[order]
    return take, user.astype(np.int64, copy=False), cat.astype(np.int64, copy=False), day.astype(np.int64, copy=False)


def _column(panel: pd.DataFrame, name: str, take: np.ndarray | None, dtype) -> np.ndarray:
    """``panel[name]`` as ``dtype`` for the rows ``take`` (all rows when None)."""
    arr = panel[name].to_numpy()
    if arr.dtype.kind not in "biuf":  # extension or object dtype: convert once, as to_numpy(dtype) would
        arr = panel[name].to_numpy(dtype=dtype)
    if take is not None:
        arr = arr[take]
    return arr.astype(dtype, copy=False)


def _pair_layout(user: np.ndarray, cat: np.ndarray, day: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pair ids, position within pair and pair length per row (sorted rows; vectorized)."""
    n = len(user)
    new_pair = np.ones(n, dtype=bool)
    new_pair[1:] = (user[1:] != user[:-1]) | (cat[1:] != cat[:-1])
    same = ~new_pair[1:]
    step = np.diff(day)
    bad = same & (step != 1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        kind = "duplicate" if step[i] == 0 else "missing"
        raise ValueError(
            f"panel days must be contiguous and unique per (user_id, category) (zero-filled); "
            f"pair ({user[i]}, {cat[i]}) has a {kind} day after day {day[i]}"
        )
    pair_id = np.cumsum(new_pair) - 1
    starts = np.flatnonzero(new_pair)
    lengths = np.diff(np.append(starts, n))
    pos = np.arange(n) - starts[pair_id]
    return pair_id, pos, lengths[pair_id]


def _scaled_features(panel, features, take, n_rows, stats: Standardizer, dest, out) -> None:
    """``out[dest[r]] = stats.transform(panel row r)`` (float32), in chunks of rows."""
    cols = []
    for c in features:
        arr = panel[c].to_numpy()
        cols.append(arr if arr.dtype.kind in "biuf" else panel[c].to_numpy(dtype=np.float64))
    raw = np.empty((min(_CHUNK_ROWS, n_rows), len(features)), dtype=np.float64)
    for a in range(0, n_rows, _CHUNK_ROWS):
        b = min(a + _CHUNK_ROWS, n_rows)
        sel = slice(a, b) if take is None else take[a:b]
        chunk = raw[: b - a]
        for j, col in enumerate(cols):
            chunk[:, j] = col[sel]
        if not np.isfinite(chunk).all():
            raise ValueError(f"non-finite values in panel feature columns {list(features)}")
        scaled = stats.transform(chunk).astype(np.float32)
        if dest is None:
            out[a:b] = scaled
        else:
            out[dest[a:b]] = scaled


def build_windows(
    panel: pd.DataFrame,
    feature_stats: Standardizer,
    target_transform: Standardizer | None = None,
    *,
    seq_length: int = 14,
    horizon: int = 7,
    users=None,
    with_target: bool = True,
    latest_only: bool = False,
    pad_start: bool = False,
    name: str = "the panel",
) -> WindowSet:
    """Every window of ``seq_length`` days ending at an origin day, as index arrays (vectorized).

    Memory grows with the panel rows of ``users`` (their scaled features are kept once, as
    contiguous per-pair arrays), not with the number of windows times ``seq_length``: a window
    is two integers until a batch or :attr:`WindowSet.X` slices it.

    Parameters
    ----------
    panel : DataFrame
        Daily panel: ``user_id``, ``category``, ``day`` and the feature columns of
        ``feature_stats`` (plus ``interest``). Days must be contiguous per pair; the rows are
        taken in (user_id, category, day) order whatever the panel's order.
    feature_stats : Standardizer
        From :func:`fit_feature_stats` (fitted on training users); its ``columns`` are the
        features, in order.
    target_transform : Standardizer, optional
        From :func:`fit_target_transform`; required when ``with_target=True``.
    seq_length : int
        Days per window (the origin day included), >= 1.
    horizon : int
        Days forecast after the origin, >= 1.
    users : array-like of int, optional
        Restrict to these users (``KeyError`` if some are not in the panel).
    with_target : bool
        True: only origins with ``horizon`` future days; ``Y``/``y_raw`` filled.
        False: every origin with ``seq_length`` past days, including the last day of each pair
        (for inference); ``Y``/``y_raw`` are None.
    latest_only : bool
        Keep only the latest valid origin per pair.
    pad_start : bool
        Treat the ``seq_length - 1`` days before each pair's first panel day as days with zero
        counts (true by construction: the panel starts at the pair's first event), so that
        windows, and forecasts, exist from the first active day on.  Without it a pair gets its
        first forecast only after ``seq_length`` days, too late to warn about a fast peak.
    name : str
        What the rows are, for the error message (e.g. ``"the 9 test users"``).

    Returns
    -------
    WindowSet
        Windows ordered by (user_id, category, origin_day). Pairs too short for a single window
        are counted in ``n_skipped_pairs``. :class:`~decaylib.checks.InsufficientDataError` (a
        ``ValueError``) naming ``seq_length`` / ``horizon`` if no window at all can be made.

    Notebooks 03 and 03b.
    """
    seq_length = check_int("seq_length", seq_length)
    horizon = check_int("horizon", horizon)
    if not isinstance(feature_stats, Standardizer):
        raise TypeError(
            f"feature_stats must be a Standardizer (fit_feature_stats(...)), got {type(feature_stats).__name__}"
        )
    if with_target:
        if target_transform is None:
            raise ValueError(
                "with_target=True needs target_transform (fit_target_transform(panel, train_users)); "
                "use with_target=False for inference windows"
            )
        if not isinstance(target_transform, Standardizer) or target_transform.n_features != 1:
            raise TypeError("target_transform must be a one-column Standardizer (fit_target_transform(...))")
    features = list(feature_stats.columns)
    target_col = target_transform.columns[0] if target_transform is not None else TARGET_COLUMN
    check_frame(panel, [*PANEL_KEY_COLUMNS, *features, target_col], "panel")

    take, user, cat, day = _panel_rows(panel, users)
    if len(user) == 0:
        raise InsufficientDataError(f"no window can be made from {name}: it has no panel rows")
    pair_id, pos, plen = _pair_layout(user, cat, day)
    n_pairs = int(pair_id[-1]) + 1

    need_future = horizon if with_target else 0
    lead = 0 if pad_start else seq_length - 1  # history days a pair needs before its first origin
    origin = (pos >= lead) & (pos <= plen - 1 - need_future)
    if latest_only:
        origin &= pos == plen - 1 - need_future
    first_rows = pos == 0
    n_skipped = int(np.count_nonzero(first_rows & (plen < lead + 1 + need_future)))
    rows = np.flatnonzero(origin)
    if rows.size == 0:
        need = lead + 1 + need_future
        what = ("1 + horizon" if pad_start else "seq_length + horizon") if with_target else (
            "1" if pad_start else "seq_length")
        raise InsufficientDataError(
            f"no window can be made from {name}: every one of its {n_pairs} (user, category) pairs has fewer "
            f"than {what} = {need} days (longest: {int(plen.max())}); pass a smaller seq_length or horizon"
        )
    del origin, first_rows, pos, plen

    n_rows = len(user)
    pad = seq_length - 1 if pad_start else 0
    feats = np.empty((n_rows + n_pairs * pad, len(features)), dtype=np.float32)
    dest = None
    x_start = rows - (seq_length - 1)
    if pad:
        # seq_length - 1 rows of scaled zeros before every pair: row r moves to r + (pair + 1) * pad
        feats[:] = feature_stats.transform(np.zeros((1, len(features)))).astype(np.float32)
        dest = np.arange(n_rows) + (pair_id + 1) * pad
        x_start = dest[rows] - (seq_length - 1)
    _scaled_features(panel, features, take, n_rows, feature_stats, dest, feats)
    del dest, pair_id

    interest = _column(panel, target_col, take, np.float64)
    target = observed = None
    if with_target:
        # rows that are some window's target day: origin + 1 ... origin + horizon
        cover = np.zeros(n_rows + 1, dtype=np.int32)
        cover[rows + 1] += 1
        cover[rows + 1 + horizon] -= 1
        used = np.cumsum(cover[:n_rows]) > 0
        y_used = interest[used]
        if not np.isfinite(y_used).all():
            raise ValueError(f"non-finite values in panel column {target_col!r}")
        target = np.zeros(n_rows, dtype=np.float32)
        target[used] = target_transform.transform(y_used).astype(np.float32)
        del cover, used, y_used
        if "observed" in panel.columns:
            observed = _column(panel, "observed", take, bool)
    source = _WindowSource(feats=feats, user=user, category=cat, day=day, interest=interest, target=target,
                           observed=observed)
    return WindowSet(source, rows, x_start, seq_length=seq_length, horizon=horizon, feature_columns=features,
                     with_target=with_target, n_pairs=n_pairs, n_skipped_pairs=n_skipped)


# --------------------------------------------------------------------------------------------
# splits
# --------------------------------------------------------------------------------------------
def _check_frac(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name} must be a number in [0, 1), got {value!r}")
    if not 0.0 <= float(value) < 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def split_users(
    user_ids, val_frac: float = 0.15, test_frac: float = 0.15, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Split the unique ``user_ids`` into disjoint train/val/test user arrays (each sorted).

    Deterministic given ``seed``. A non-zero fraction gets at least one user; train always
    keeps at least one. Splitting by USER keeps all of a user's windows on one side.

    Notebooks 03 and 03b.
    """
    u = _as_user_array(user_ids, "user_ids")
    val_frac = _check_frac("val_frac", val_frac)
    test_frac = _check_frac("test_frac", test_frac)
    if val_frac + test_frac >= 1.0:
        raise ValueError(f"val_frac + test_frac must be < 1, got {val_frac + test_frac}")
    n = u.size
    n_val = int(round(n * val_frac))
    n_test = int(round(n * test_frac))
    n_val = max(n_val, 1) if val_frac > 0 else 0
    n_test = max(n_test, 1) if test_frac > 0 else 0
    if n - n_val - n_test < 1:
        raise InsufficientDataError(
            f"too few users ({n}) for val_frac={val_frac} and test_frac={test_frac}: no training user left "
            f"(a split by user needs at least {1 + (val_frac > 0) + (test_frac > 0)} users)"
        )
    rng = np.random.default_rng(seed)
    perm = rng.permutation(u)
    val = np.sort(perm[:n_val])
    test = np.sort(perm[n_val : n_val + n_test])
    train = np.sort(perm[n_val + n_test :])
    return train, val, test


def user_folds(user_ids, n_folds: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """K-fold split by user: a list of ``(train_users, val_users)``, each user validated once.

    Deterministic given ``seed``; fold sizes differ by at most one user.

    Notebook 05.
    """
    u = _as_user_array(user_ids, "user_ids")
    n_folds = check_int("n_folds", n_folds, minimum=2)
    if n_folds > u.size:
        fix = f"pass n_folds={u.size}" if u.size >= 2 else "cross-validation by user needs at least 2 users"
        raise InsufficientDataError(f"n_folds={n_folds} is larger than the number of users ({u.size}); {fix}")
    perm = np.random.default_rng(seed).permutation(u)
    parts = np.array_split(perm, n_folds)
    return [
        (np.sort(np.concatenate(parts[:k] + parts[k + 1 :])), np.sort(parts[k])) for k in range(n_folds)
    ]


def split_by_time(windows: WindowSet, cutoff: int) -> tuple[WindowSet, WindowSet]:
    """Split windows at day ``cutoff``: ``(before, after)``.

    ``before``: every target day is <= ``cutoff`` (``origin_day + horizon <= cutoff``).
    ``after``: every target day is > ``cutoff`` (``origin_day >= cutoff``); its inputs may
    include days up to ``cutoff``, which were known at that time. Windows whose targets straddle
    the cutoff are in neither, so no target day is shared.

    Notebooks 03 and 03b.
    """
    if not isinstance(windows, WindowSet):
        raise TypeError(f"windows must be a WindowSet, got {type(windows).__name__}")
    if isinstance(cutoff, bool) or not isinstance(cutoff, (int, np.integer)):
        raise TypeError(f"cutoff must be an int day index, got {cutoff!r}")
    origin = windows.meta["origin_day"].to_numpy()
    before = origin + windows.horizon <= cutoff
    after = origin >= cutoff
    return windows.subset(before), windows.subset(after)


# --------------------------------------------------------------------------------------------
# splits that can fail on small or short logs: clear errors instead of empty window sets
# --------------------------------------------------------------------------------------------
def build_split_windows(
    panel: pd.DataFrame,
    feature_stats: Standardizer,
    target_transform: Standardizer,
    splits: dict,
    *,
    seq_length: int = 14,
    horizon: int = 7,
    **kwargs,
) -> dict[str, WindowSet]:
    """:func:`build_windows` for each group of users in ``splits`` (name -> user ids).

    Returns ``{name: WindowSet}`` in the order of ``splits``. A group whose users have no window
    at all (every pair shorter than ``seq_length + horizon`` days: common on a short or sparse
    log) raises :class:`~decaylib.checks.InsufficientDataError` naming the group, its number of
    users and the window parameters, instead of failing later on an empty set.

    Notebooks 03 and 03b.
    """
    if not isinstance(splits, dict) or not splits:
        raise TypeError("splits must be a non-empty dict mapping a name to user ids, e.g. {'train': train_u}")
    out = {}
    for name, users in splits.items():
        if not isinstance(users, (str, bytes)) and np.size(users) == 0:
            raise InsufficientDataError(f"the {name} split has no users; the data has too few users for this split")
        u = _as_user_array(users, f"users of {name!r}")
        out[name] = build_windows(panel, feature_stats, target_transform, seq_length=seq_length, horizon=horizon,
                                  users=u, name=f"the {u.size} {name} users", **kwargs)
    return out


def split_for_update(train: WindowSet, val: WindowSet, test: WindowSet, *, first_day: int, last_day: int,
                     update_days: int) -> dict:
    """Windows for an "update with new days" experiment (notebook 03, section 9).

    Today is ``T1 = last_day - 2 * horizon`` (so that test forecasts made from ``T1`` on have
    their targets inside the data); the model was trained at ``T0 = T1 - update_days``. Returns
    a dict with ``T0``, ``T1`` and the window sets

    * ``old_train`` / ``old_val``: every target day ``<= T0`` (what the stale model saw);
    * ``upto_T1`` / ``new_val``: every target day ``<= T1`` (a full retrain at ``T1``);
    * ``new_train``: the windows of ``upto_T1`` whose targets include a day after ``T0``;
    * ``later_test``: test windows with origin ``>= T1`` (scored after the update).

    The data must span ``seq_length + 3 * horizon + update_days`` days (a window and its targets
    before ``T0``, ``update_days`` new days, and ``2 * horizon`` days after ``T1``); a shorter
    span, or a split left without windows, raises :class:`~decaylib.checks.InsufficientDataError`
    saying which parameter to change.
    """
    for n, w in (("train", train), ("val", val), ("test", test)):
        if not isinstance(w, WindowSet):
            raise TypeError(f"{n} must be a WindowSet, got {type(w).__name__}")
        if w.Y is None:
            raise ValueError(f"{n} has no targets (built with with_target=False)")
    if (val.seq_length, val.horizon) != (train.seq_length, train.horizon) or (
            test.seq_length, test.horizon) != (train.seq_length, train.horizon):
        raise ValueError("train, val and test windows must have the same seq_length and horizon")
    update_days = check_int("update_days", update_days)
    first_day, last_day = check_int("first_day", first_day, None), check_int("last_day", last_day, None)
    s, h = train.seq_length, train.horizon
    span = last_day - first_day + 1
    need = s + 3 * h + update_days
    if span < need:
        room = span - s - 3 * h
        fix = f"pass update_days={room}" if room >= 1 else "pass a smaller seq_length or horizon"
        raise InsufficientDataError(
            f"the data spans {span} days; the update demo needs seq_length + 3 x horizon + update_days = "
            f"{s} + 3 x {h} + {update_days} = {need}; {fix}, or run_update_demo=False")
    T1 = last_day - 2 * h
    T0 = T1 - update_days
    old_train, _ = split_by_time(train, T0)
    upto_T1, _ = split_by_time(train, T1)
    target_end = upto_T1.meta["origin_day"].to_numpy() + h
    parts = {
        "old_train": old_train,
        "new_train": upto_T1.subset(target_end > T0),
        "upto_T1": upto_T1,
        "old_val": split_by_time(val, T0)[0],
        "new_val": split_by_time(val, T1)[0],
        "later_test": split_by_time(test, T1)[1],
    }
    empty = [k for k, w in parts.items() if len(w) == 0]
    if empty:
        raise InsufficientDataError(
            f"the update demo (T0 = day {T0}, T1 = day {T1}) has no {', '.join(empty)} windows: too few users are "
            f"active early enough; pass a smaller update_days or seq_length, or run_update_demo=False")
    return {"T0": int(T0), "T1": int(T1), **parts}
