"""Figures with one consistent look across the notebooks.

Call :func:`use_style` once at the top of a notebook.  Every function returns the matplotlib
``Axes`` (or ``Figure``) it drew on, so a notebook can add a title or an annotation.
"""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from decaylib.checks import check_choice, check_int
from decaylib.decay.rate import log_ratio_experiment
from decaylib.runtime import in_notebook

__all__ = ['PALETTE', 'METHOD_COLORS', 'use_style', 'plot_pair', 'plot_pairs', 'plot_hist', 'log_bins', 'readable_log_axis', 'day_axis', 'plot_scatter_truth', 'plot_cleaning', 'plot_log_ratio_demo', 'log_ratio_explorer', 'show_table']

PALETTE = ["#1b6ca8", "#e07b39", "#3a9d5d", "#c03b3b", "#7a5195", "#8c8c8c", "#d4a017", "#2bb3b1"]

METHOD_COLORS = {}


def use_style() -> None:
    """A clean, readable style (bigger fonts for projectors, no top/right spines).

    Notebooks 00-09 (every notebook).
    """
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

    Notebook 05.
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
    """A grid of :func:`plot_pair` panels; ``frames`` holds ``(title, daily, t_peak)`` tuples.

    Notebook 01.
    """
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
    """A histogram, optionally on log-spaced bins (for rates and half-lives).

    ``bins``: a number of bins, or the bin edges themselves (pass the same edges, e.g. from
    :func:`log_bins`, to compare two histograms). On a log axis the ticks are plain numbers at
    1-2-5 steps (``0.5, 1, 2, 5, 10, ...``), never crowded ``3×10⁰ 4×10⁰`` minor labels.

    Notebooks 01 and 04.
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if log:
        v = v[v > 0]
        if np.ndim(bins) == 0:
            bins = np.geomspace(v.min(), v.max(), int(bins) + 1) if len(v) else bins
        ax.set_xscale("log")
        readable_log_axis(ax.xaxis)
    ax.hist(v, bins=bins, alpha=0.75, label=label, **kw)
    if xlabel:
        ax.set_xlabel(xlabel)
    ax.set_ylabel("count")
    return ax


def log_bins(*arrays, bins: int = 30) -> np.ndarray:
    """Log-spaced bin edges covering the positive finite values of all ``arrays`` (shared bins).

    Notebook 04.
    """
    v = np.concatenate([np.asarray(a, dtype=float).ravel() for a in arrays]) if arrays else np.array([])
    v = v[np.isfinite(v) & (v > 0)]
    if v.size == 0:
        raise ValueError("log_bins needs at least one positive finite value")
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        lo, hi = lo / 1.5, hi * 1.5
    return np.geomspace(lo, hi, int(bins) + 1)


def readable_log_axis(axis) -> None:
    """Plain-number ticks at 1-2-5 steps on a log axis, and no minor tick labels.

    Notebooks 01 and 04.
    """
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
    axis.set_minor_formatter(NullFormatter())


class _WholeDayLocator(mdates.AutoDateLocator):
    """matplotlib's date locator (days, weeks, months or years by the span), except that a span too
    short for its day ticks gets one tick a day at midnight instead of hours."""

    def get_locator(self, dmin, dmax):
        locator = super().get_locator(dmin, dmax)
        if self._freq > mdates.DAILY:  # HOURLY, MINUTELY, ...: finer than a day
            self._freq = mdates.DAILY
            locator = mdates.DayLocator(tz=self.tz)
            locator.set_axis(self.axis)
        return locator


#: Tick labels by level (years, months, days; hours and finer never occur): "Mar 02", "Apr", "2027".
_DAY_FORMATS = ["%Y", "%b", "%b %d", "%b %d", "%b %d", "%b %d"]
_DAY_ZERO_FORMATS = ["", "%Y", "%b %d", "%b %d", "%b %d", "%b %d"]
_DAY_OFFSET_FORMATS = ["", "%Y", "%Y", "%Y", "%Y", "%Y"]


def day_axis(ax, which: str = "x", max_ticks: int = 7):
    """Ticks of whole days, never hours, on a date axis of daily data: one a day for a few days,
    then every few days, weeks (1st, 8th, 15th, 22nd), months or years as the span grows (3 days to
    years).  Labels are short (``"Mar 02"``; ``"Apr"`` and ``"2027"`` on longer spans) with the year
    beside the axis.  The locator works at draw time, so call it before or after plotting.

    ``which``: ``"x"`` or ``"y"``; ``max_ticks``: at most this many ticks (at least 3).  The axis must
    hold dates (datetimes, ``pd.Timestamp``), not day numbers: plot ``start + pd.to_timedelta(day,
    unit="D")``.  Returns ``ax``.

    Notebook 07.
    """
    check_choice("which", which, ("x", "y"))
    max_ticks = check_int("max_ticks", max_ticks, minimum=3)
    axis = ax.xaxis if which == "x" else ax.yaxis
    converter = axis.get_converter()
    if converter is None and ax.has_data():
        raise ValueError(f"day_axis: the {which} axis (which={which!r}) holds numbers, not dates: plot dates on it "
                         f"(start + pd.to_timedelta(day, unit='D'))")
    if converter is not None and type(converter).__module__ != mdates.__name__:  # pandas' and numpy's dates use these too
        raise ValueError(f"day_axis: the {which} axis (which={which!r}) holds {type(converter).__name__} values, not dates")
    if converter is None:
        ax.xaxis_date() if which == "x" else ax.yaxis_date()
    locator = _WholeDayLocator(minticks=3, maxticks=max_ticks, interval_multiples=True)
    axis.set_major_locator(locator)
    axis.set_major_formatter(mdates.ConciseDateFormatter(
        locator, formats=_DAY_FORMATS, zero_formats=_DAY_ZERO_FORMATS, offset_formats=_DAY_OFFSET_FORMATS))
    axis.set_minor_locator(mpl.ticker.NullLocator())
    return ax


def plot_scatter_truth(ax, true, est, label: str | None = None, log: bool = True, **kw):
    """Estimated against true values with the identity line.

    Notebook 04.
    """
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
    """Rows removed by each cleaning step (a horizontal bar chart, each bar labelled with its count).

    Notebook 02.
    """
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    r = report_frame[report_frame["step"] != "aggregate"]
    ax.barh(r["step"], r["removed"], color=PALETTE[1])
    top = max(int(r["removed"].max()) if len(r) else 0, 1)
    for y, v in enumerate(r["removed"]):
        ax.text(v, y, f" {v:,}", va="center", fontsize=8)
    ax.set_xlim(0, top * 1.3)  # room for the labels
    ax.xaxis.set_major_locator(MaxNLocator(4, integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:,.0f}"))
    ax.set_xlabel("rows removed")
    ax.invert_yaxis()
    return ax


def plot_log_ratio_demo(I0: float = 100.0, lam: float = 0.1, noise: float = 0.3, dt: float = 3.0, *, t: float = 5.0,
                        days: int = 40, seed: int = 0):
    """The article's formula on noisy data: left, the true curve :math:`I_0e^{-\\lambda t}` with one noisy pair of
    observations at ``t`` and ``t + dt`` and the curve they imply; right, the estimate over many draws
    against the true λ (:func:`decaylib.decay.rate.log_ratio_experiment`). Returns the figure.

    Notebooks 01 and 04.
    """
    import matplotlib.pyplot as plt

    res = log_ratio_experiment(I0, lam, noise, dt, t=t, seed=seed)
    a, b = res["one_draw"]
    est = res["lam_hat"][0]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    grid = np.linspace(0, days, 200)
    axes[0].plot(grid, I0 * np.exp(-lam * grid), color="k", lw=1.5, label=f"true: λ = {lam:g}")
    axes[0].plot([t, t + dt], [a, b], "o", color=PALETTE[3], ms=7, label="two noisy observations")
    axes[0].plot(grid, a * np.exp(-est * (grid - t)), "--", color=PALETTE[3], label=f"implied: λ̂ = {est:.3f}")
    axes[0].set(xlabel="day t", ylabel="interest I(t)", title=f"One draw (noise σ = {noise:g}, Δt = {dt:g} days)",
                ylim=(0, max(I0, a, b) * 1.15))
    axes[0].legend(fontsize=8, loc="upper right")
    lo, hi = np.percentile(res["lam_hat"], [0.5, 99.5])
    axes[1].hist(res["lam_hat"], bins=np.linspace(min(lo, lam), max(hi, lam), 50), color=PALETTE[0], alpha=0.75)
    axes[1].axvline(lam, color="k", lw=1.5, label="true λ")
    axes[1].set(xlabel="λ̂ from the log-ratio formula", ylabel="draws",
                title=f"{len(res['lam_hat']):,} draws: sd {res['sd']:.3f} (theory σ√2/Δt = {res['sd_theory']:.3f})")
    axes[1].legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def _live_frontend() -> bool:
    """True in a kernel attached to a live front end (JupyterLab), False in a script or a headless run
    (:func:`decaylib.workflow.runner.execute_notebook` and the nbval test set ``DECAYLIB_HEADLESS=1``)."""
    import os

    return os.environ.get("DECAYLIB_HEADLESS") != "1" and in_notebook()


def log_ratio_explorer(I0: float = 100.0, lam: float = 0.1, noise: float = 0.3, dt: float = 3.0, *,
                       interactive: bool | None = None):
    """Sliders for I0, λ, noise and Δt over :func:`plot_log_ratio_demo` in JupyterLab (``ipywidgets``).

    Headless (papermill, the HTML book, a script) or with ``interactive=False`` it draws the static
    figure at the given values instead, so every rendering of the notebook shows a figure.
    Returns the widget, or the figure.

    Notebooks 01 and 04.
    """
    if interactive is None:
        interactive = _live_frontend()
    if not interactive:
        return plot_log_ratio_demo(I0, lam, noise, dt)
    import ipywidgets as W
    import matplotlib.pyplot as plt

    def show(I0, lam, noise, dt):
        plot_log_ratio_demo(I0, lam, noise, dt)
        plt.show()

    return W.interact(show,
                      I0=W.FloatSlider(value=I0, min=1, max=500, step=1, description="I0"),
                      lam=W.FloatSlider(value=lam, min=0.0, max=0.5, step=0.01, description="λ"),
                      noise=W.FloatSlider(value=noise, min=0.0, max=1.0, step=0.05, description="noise σ"),
                      dt=W.FloatSlider(value=dt, min=1, max=20, step=1, description="Δt (days)"))


def show_table(df: pd.DataFrame, *, wrap=(), precision: int | None = None) -> None:
    """Display ``df`` as an HTML table without its index (columns in ``wrap``, or all when ``wrap=True``,
    left-aligned and wrapping), with the plain text of the table as its text fallback.

    A pandas ``Styler`` shown directly carries ``<pandas.io.formats.style.Styler at 0x...>`` as its
    plain-text form, which readers of a text rendering (and the notebook checks) see as noise.

    Notebooks 00 and 07.
    """
    from IPython.display import display

    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"show_table needs a DataFrame, got {type(df).__name__}")
    styler = df.style.hide(axis="index")
    if precision is not None:
        styler = styler.format(precision=precision)
    cols = list(df.columns) if wrap is True else [c for c in wrap]
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise KeyError(f"wrap names column(s) {missing} that the table does not have: {list(df.columns)}")
    if cols:
        styler = styler.set_properties(subset=cols, **{"text-align": "left", "white-space": "normal"})
    with pd.option_context("display.max_colwidth", None, "display.precision", precision or 6):
        text = df.to_string(index=False)
    display({"text/html": styler.to_html(), "text/plain": text}, raw=True)
