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

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from numpy.lib.stride_tricks import sliding_window_view

from decaylib.checks import InsufficientDataError, check_frame, check_int
from decaylib.forecast.features import Standardizer, _as_user_array, _user_rows
from decaylib.schema import FEATURE_COLUMNS, PAIR_COLS, PANEL_KEY_COLUMNS

__all__ = ['FEATURE_COLUMNS', 'TARGET_COLUMN', 'fit_feature_stats', 'fit_target_transform', 'WindowSet', 'build_windows', 'split_users', 'user_folds', 'split_by_time', 'build_split_windows', 'split_for_update']


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
# windows
# --------------------------------------------------------------------------------------------
@dataclass
class WindowSet:
    """Windows cut from the panel, ready for the forecaster.

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

    X: torch.Tensor
    Y: torch.Tensor | None
    meta: pd.DataFrame
    y_raw: np.ndarray | None
    target_observed: np.ndarray | None
    seq_length: int
    horizon: int
    feature_columns: tuple[str, ...]
    n_pairs: int = 0
    n_skipped_pairs: int = 0
    extra: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __repr__(self) -> str:
        y = "None" if self.Y is None else str(tuple(self.Y.shape))
        return (
            f"WindowSet(n={len(self)}, X={tuple(self.X.shape)}, Y={y}, seq_length={self.seq_length}, "
            f"horizon={self.horizon}, users={self.meta['user_id'].nunique()}, pairs={self.n_pairs}, "
            f"skipped_pairs={self.n_skipped_pairs})"
        )

    @property
    def tensors(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(X, Y)`` for :func:`decaylib.forecast.train.train_model`; ValueError without targets."""
        if self.Y is None:
            raise ValueError("this WindowSet has no targets (built with with_target=False)")
        return self.X, self.Y

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
        tidx = torch.from_numpy(idx)
        meta = self.meta.iloc[idx].reset_index(drop=True)
        return WindowSet(
            X=self.X.index_select(0, tidx),
            Y=None if self.Y is None else self.Y.index_select(0, tidx),
            meta=meta,
            y_raw=None if self.y_raw is None else self.y_raw[idx],
            target_observed=None if self.target_observed is None else self.target_observed[idx],
            seq_length=self.seq_length,
            horizon=self.horizon,
            feature_columns=self.feature_columns,
            n_pairs=int(meta.groupby(list(PAIR_COLS)).ngroups) if len(meta) else 0,
            n_skipped_pairs=0,
            extra=dict(self.extra),
        )

    def sample(self, n: int | None, seed: int = 0) -> "WindowSet":
        """At most ``n`` windows drawn without replacement (seeded; original order kept).

        ``None`` or ``n >= len(self)`` returns ``self``: subsampling trades a little accuracy
        for training time on small machines.
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
        have = self.meta["user_id"].to_numpy()
        unknown = u[~np.isin(u, have)]
        if unknown.size:
            raise KeyError(f"{unknown.size} users have no window in this WindowSet, e.g. {unknown[:5].tolist()}")
        return self.subset(np.isin(have, u))


def _pair_layout(panel: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, np.ndarray]:
    """Sort check, pair ids, position within pair and pair length per row (all vectorized)."""
    user = panel["user_id"].to_numpy()
    cat = panel["category"].to_numpy()
    day = panel["day"].to_numpy()
    for name, arr in (("user_id", user), ("category", cat), ("day", day)):
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"panel column {name!r} must be integer, got dtype {arr.dtype}")
    # sorted by (user_id, category, day)?  Sort (stable) only when needed.
    if len(panel) > 1:
        du, dc, dd = np.diff(user), np.diff(cat), np.diff(day)
        ordered = (du > 0) | ((du == 0) & ((dc > 0) | ((dc == 0) & (dd > 0))))
        if not ordered.all():
            panel = panel.sort_values(list(PANEL_KEY_COLUMNS), kind="stable").reset_index(drop=True)
            user = panel["user_id"].to_numpy()
            cat = panel["category"].to_numpy()
            day = panel["day"].to_numpy()
    n = len(panel)
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
    return panel, pair_id, pos, lengths[pair_id]


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
    """Cut every window of ``seq_length`` days ending at an origin day (vectorized).

    Parameters
    ----------
    panel : DataFrame
        Daily panel: ``user_id``, ``category``, ``day`` and the feature columns of
        ``feature_stats`` (plus ``interest``). Days must be contiguous per pair; the panel is
        sorted by (user_id, category, day) if it is not already.
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
    if users is not None:
        panel = panel.loc[_user_rows(panel, users)]

    panel, pair_id, pos, plen = _pair_layout(panel)
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

    raw = panel[features].to_numpy(dtype=np.float64)
    if not np.isfinite(raw).all():
        raise ValueError(f"non-finite values in panel feature columns {features}")
    feats = feature_stats.transform(raw).astype(np.float32)
    wrows = rows
    if pad_start and seq_length > 1:
        # Insert L - 1 rows of transformed zeros before every pair (vectorized).
        pad = seq_length - 1
        zero = feature_stats.transform(np.zeros((1, len(features)))).astype(np.float32)
        shift = (pair_id + 1) * pad  # new position of each original row
        padded = np.repeat(zero, len(feats) + n_pairs * pad, axis=0)
        padded[np.arange(len(feats)) + shift] = feats
        feats, wrows = padded, rows + shift[rows]
    # [R - L + 1, n_features, L] view; window w covers rows w .. w + L - 1, so origin r -> w = r - L + 1.
    X = sliding_window_view(feats, seq_length, axis=0)[wrows - (seq_length - 1)]
    X = np.ascontiguousarray(X.transpose(0, 2, 1))

    interest = panel[target_col].to_numpy(dtype=np.float64)
    meta = pd.DataFrame(
        {
            "user_id": panel["user_id"].to_numpy()[rows].astype(np.int64),
            "category": panel["category"].to_numpy()[rows].astype(np.int64),
            "origin_day": panel["day"].to_numpy()[rows].astype(np.int64),
            "origin_interest": interest[rows],
        }
    )
    Y = y_raw = observed = None
    if with_target:
        fut = sliding_window_view(interest, horizon)  # row w covers w .. w + H - 1
        y_raw = np.ascontiguousarray(fut[rows + 1])
        if not np.isfinite(y_raw).all():
            raise ValueError(f"non-finite values in panel column {target_col!r}")
        Y = torch.from_numpy(target_transform.transform(y_raw).astype(np.float32))
        if "observed" in panel.columns:
            obs = panel["observed"].to_numpy(dtype=bool)
            observed = np.ascontiguousarray(sliding_window_view(obs, horizon)[rows + 1])
        else:
            observed = np.ones_like(y_raw, dtype=bool)
    return WindowSet(
        X=torch.from_numpy(X),
        Y=Y,
        meta=meta,
        y_raw=y_raw,
        target_observed=observed,
        seq_length=seq_length,
        horizon=horizon,
        feature_columns=tuple(features),
        n_pairs=n_pairs,
        n_skipped_pairs=n_skipped,
    )


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
