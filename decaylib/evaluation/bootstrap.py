"""Bootstrap intervals for metrics and for paired differences between methods (notebooks 04, 06 and 08)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from decaylib.checks import check_int

__all__ = ['bootstrap_ci', 'paired_bootstrap']


def bootstrap_ci(
    per_user_metric, n_boot: int = 1000, seed: int | np.random.Generator = 0, alpha: float = 0.05
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of a per-user metric.

    Resamples users with replacement ``n_boot`` times as an index matrix (in chunks of about
    two million entries to bound memory) and takes the ``alpha/2`` and ``1 - alpha/2``
    quantiles of the resampled means.  Deterministic for a given ``seed``.

    Notebook 06.
    """
    values = np.asarray(per_user_metric, dtype=float).ravel()
    if values.size == 0:
        raise ValueError("per_user_metric is empty")
    if not np.all(np.isfinite(values)):
        raise ValueError("per_user_metric has NaN or infinite values")
    n_boot = check_int("n_boot", n_boot, minimum=1)
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(check_int("seed", seed, minimum=None))
    n = values.size
    chunk = max(1, 2_000_000 // n)
    means = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = values[idx].mean(axis=1)
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)


def paired_bootstrap(scores: pd.DataFrame, reference: str, *, metric: str = "deviance", n_boot: int = 1000,
                     seed: int = 0, level: float = 0.95) -> pd.DataFrame:
    """Mean ``metric`` of each method and the bootstrap interval of its difference from ``reference``.

    ``scores``: the table of :func:`rolling_origin`. The difference is paired (the same pairs and
    cutoffs for both methods) and users are resampled with replacement (all of a user's pairs and
    cutoffs together, since they are not independent). ``diff = method - reference``: with the
    deviance, a positive difference means the method is worse than the reference.

    Notebooks 04 and 06.
    """
    need = ["method", "user_id", "category", "cutoff", metric]
    missing = [c for c in need if c not in scores.columns]
    if missing:
        raise ValueError(f"scores is missing column(s) {missing} (use rolling_origin)")
    methods = list(dict.fromkeys(scores["method"]))
    if reference not in methods:
        raise ValueError(f"reference {reference!r} is not among the scored methods {methods}")
    n_boot = check_int("n_boot", n_boot, minimum=10)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    wide = scores.pivot_table(index=["cutoff", "user_id", "category"], columns="method", values=metric, aggfunc="first")
    wide = wide.dropna()
    users = wide.index.get_level_values("user_id").to_numpy()
    uniq, ucode = np.unique(users, return_inverse=True)
    U = len(uniq)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, U, size=(n_boot, U))
    counts = np.zeros((n_boot, U))
    np.add.at(counts, (np.repeat(np.arange(n_boot), U), draws.ravel()), 1.0)
    n_rows_user = np.bincount(ucode, minlength=U).astype(float)
    q = (1 - level) / 2
    rows = []
    ref_sum = np.bincount(ucode, weights=wide[reference].to_numpy(), minlength=U)
    for m in methods:
        msum = np.bincount(ucode, weights=wide[m].to_numpy(), minlength=U)
        d_user = msum - ref_sum
        boot = (counts @ d_user) / (counts @ n_rows_user)
        diff = float(d_user.sum() / n_rows_user.sum())
        lo, hi = np.quantile(boot, [q, 1 - q])
        rows.append({"method": m, metric: float(msum.sum() / n_rows_user.sum()), "diff": diff,
                     "diff_lo": float(lo), "diff_hi": float(hi),
                     "excludes_zero": bool(m != reference and (lo > 0 or hi < 0)), "n_rows": int(len(wide)),
                     "n_users": int(U)})
    return pd.DataFrame(rows)
