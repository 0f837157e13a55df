"""Figures with one consistent look across the notebooks.

Call :func:`use_style` once at the top of a notebook.  Every function returns the matplotlib
``Axes`` (or ``Figure``) it drew on, so a notebook can add a title or an annotation.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

__all__ = ["PALETTE", "METHOD_COLORS", "use_style", "plot_pair", "plot_pairs", "plot_hist", "plot_scatter_truth", "plot_cleaning"]

PALETTE = ["#1b6ca8", "#e07b39", "#3a9d5d", "#c03b3b", "#7a5195", "#8c8c8c", "#d4a017", "#2bb3b1"]
METHOD_COLORS = {}


def use_style() -> None:
    """A clean, readable style (bigger fonts for projectors, no top/right spines)."""
    mpl.rcParams.update(
        {
            "figure.figsize": (8, 4),
            "figure.dpi": 90,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.prop_cycle": mpl.cycler(color=PALETTE),
            "font.size": 11,
            "axes.titlesize": 12,
            "legend.frameon": False,
        }
    )


def plot_pair(ax, daily: pd.DataFrame, true_col: str | None = "true_score", observed_col: str = "interest",
              smooth_col: str | None = "interest_smooth", t_peak: float | None = None, title: str | None = None,
              extra_lines: dict | None = None):
    """One pair's daily history: observed score (dots), smoothed and true curves, the true peak.

    ``extra_lines`` maps a label to ``(day, style)``: vertical markers such as a detected point.
    """
    d = daily.sort_values("day")
    ax.plot(d["day"], d[observed_col], "o", ms=3, alpha=0.5, color=PALETTE[5], label="observed score")
    if smooth_col and smooth_col in d:
        ax.plot(d["day"], d[smooth_col], color=PALETTE[0], lw=1.8, label="smoothed")
    if true_col and true_col in d:
        ax.plot(d["day"], d[true_col], color=PALETTE[3], lw=1.5, ls="--", label="true (expected score)")
    if t_peak is not None and np.isfinite(t_peak):
        ax.axvline(t_peak, color=PALETTE[3], lw=1, alpha=0.6, label="true decay point")
    for i, (label, (day, style)) in enumerate((extra_lines or {}).items()):
        if day is not None and np.isfinite(day):
            ax.axvline(day, color=PALETTE[(i + 1) % len(PALETTE)], lw=1.5, ls=style, label=label)
    ax.set_xlabel("day")
    ax.set_ylabel("interest score")
    if title:
        ax.set_title(title)
    return ax


def plot_pairs(frames: list[tuple[str, pd.DataFrame, float | None]], ncols: int = 3, **kw):
    """A grid of :func:`plot_pair` panels; ``frames`` holds ``(title, daily, t_peak)`` tuples."""
    n = len(frames)
    if n == 0:
        raise ValueError("no pairs to plot")
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.2 * ncols, 3.0 * nrows), squeeze=False, sharey=False)
    for ax, (title, daily, t_peak) in zip(axes.ravel(), frames):
        plot_pair(ax, daily, t_peak=t_peak, title=title, **kw)
    for ax in axes.ravel()[n:]:
        ax.set_visible(False)
    axes.ravel()[0].legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def plot_hist(ax, values, bins=30, log: bool = False, label: str | None = None, xlabel: str | None = None, **kw):
    """A histogram, optionally on log-spaced bins (for rates and half-lives)."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if log:
        v = v[v > 0]
        bins = np.geomspace(v.min(), v.max(), bins + 1) if len(v) else bins
        ax.set_xscale("log")
    ax.hist(v, bins=bins, alpha=0.75, label=label, **kw)
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    return ax


def plot_scatter_truth(ax, true, est, label: str | None = None, log: bool = True, **kw):
    """Estimated against true values with the identity line."""
    t, e = np.asarray(true, float), np.asarray(est, float)
    ok = np.isfinite(t) & np.isfinite(e)
    if log:
        ok &= (t > 0) & (e > 0)
        ax.set_xscale("log")
        ax.set_yscale("log")
    ax.scatter(t[ok], e[ok], s=6, alpha=0.4, label=label, **kw)
    lo, hi = np.nanmin(t[ok]), np.nanmax(t[ok])
    ax.plot([lo, hi], [lo, hi], color="k", lw=1, ls=":")
    ax.set_xlabel("true")
    ax.set_ylabel("estimated")
    return ax


def plot_cleaning(ax, report_frame: pd.DataFrame):
    """Rows removed by each cleaning step (a horizontal bar chart)."""
    r = report_frame[report_frame["step"] != "aggregate"]
    ax.barh(r["step"], r["removed"], color=PALETTE[1])
    for y, v in enumerate(r["removed"]):
        ax.text(v, y, f" {v:,}", va="center")
    ax.set_xlabel("rows removed")
    ax.invert_yaxis()
    return ax
