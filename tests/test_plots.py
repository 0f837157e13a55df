import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

from decaylib import plots


def _pair():
    return pd.DataFrame({"day": np.arange(10), "interest": np.arange(10.0), "interest_smooth": np.arange(10.0),
                         "true_score": np.arange(10.0)})


def test_plot_pairs_draws_one_axis_per_pair_and_hides_the_rest():
    plots.use_style()
    fig = plots.plot_pairs([("a", _pair(), 4), ("b", _pair(), None)], ncols=3)
    visible = [ax for ax in fig.axes if ax.get_visible()]
    assert len(fig.axes) == 3 and len(visible) == 2
    assert visible[0].get_title() == "a"
    with pytest.raises(ValueError, match="no pairs"):
        plots.plot_pairs([])


def test_hist_and_scatter_ignore_non_finite_values():
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2)
    plots.plot_hist(a1, [1.0, 2.0, np.inf, np.nan, 10.0], bins=5, log=True)
    assert a1.get_xscale() == "log"
    plots.plot_scatter_truth(a2, [0.1, 0.2, np.nan], [0.1, -1.0, 0.3])
    assert len(a2.collections[0].get_offsets()) == 1  # only the finite, positive point is drawn
    plt.close("all")


def test_log_ratio_explorer_is_static_when_headless(monkeypatch):
    """Headless (papermill, the book) the explorer draws the figure instead of sliders."""
    import matplotlib.pyplot as plt

    from decaylib import plots

    monkeypatch.setenv("DECAYLIB_HEADLESS", "1")
    fig = plots.log_ratio_explorer(100, 0.1, 0.3, 3)
    assert fig is not None and len(fig.axes) == 2
    assert fig.axes[0].get_ylabel() == "interest I(t)" and "draws" in fig.axes[1].get_title()
    plt.close(fig)


def test_log_axis_ticks_are_plain_numbers():
    import matplotlib.pyplot as plt

    from decaylib import plots

    fig, ax = plt.subplots()
    plots.plot_hist(ax, np.geomspace(0.3, 300, 500), bins=plots.log_bins([0.3, 300], bins=20), log=True)
    fig.canvas.draw()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
    assert labels and all("10^" not in s and "×" not in s and "mathdefault" not in s for s in labels), labels
    assert len(ax.patches) == 20
    with pytest.raises(ValueError, match="positive"):
        plots.log_bins([-1, 0])
    plt.close(fig)


def test_show_table_gives_html_and_a_plain_text_fallback(monkeypatch):
    from decaylib import plots

    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj, raw=False: shown.append((obj, raw)))
    df = pd.DataFrame({"category": [7, 5], "reason": ["a long reason", "another"], "x": [0.123456, 2.0]})
    plots.show_table(df, wrap=["reason"], precision=2)
    (bundle, raw), = shown
    assert raw and "<table" in bundle["text/html"] and "white-space: normal" in bundle["text/html"]
    assert "at 0x" not in bundle["text/plain"] and "a long reason" in bundle["text/plain"] and "0.12" in bundle["text/plain"]
    with pytest.raises(KeyError, match="wrap names column"):
        plots.show_table(df, wrap=["nope"])
    with pytest.raises(TypeError, match="DataFrame"):
        plots.show_table([1, 2])


def _daily_figure(n_days: int, day_axis: bool, start="2026-03-02"):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(13 / 3, 3.2))  # one panel of notebook 07's grid
    t = pd.Timestamp(start) + pd.to_timedelta(np.arange(n_days), unit="D")
    ax.plot(t, np.arange(n_days, dtype=float), "o")
    if day_axis:
        assert plots.day_axis(ax) is ax
    fig.canvas.draw()
    labels = [lab.get_text() for lab in ax.get_xticklabels()]
    ticks = np.asarray(ax.get_xticks())
    plt.close(fig)
    return labels, ticks


def _shows_hours(labels) -> bool:
    """True unless every label is a day ("Mar 02"), a month ("Apr") or a year ("2027")."""
    import re

    return not all(re.fullmatch(r"[A-Z][a-z]{2} \d\d|[A-Z][a-z]{2}|\d{4}", lab) for lab in labels)


@pytest.mark.parametrize("n_days", [3, 5, 400])
def test_day_axis_ticks_whole_days_never_hours(n_days):
    labels, ticks = _daily_figure(n_days, day_axis=True)
    assert 2 <= len(labels) <= 7 and all(labels), labels
    assert not _shows_hours(labels), labels
    assert np.allclose(ticks, np.round(ticks)), "every tick at midnight"
    if n_days == 5:
        assert labels == ["Mar 02", "Mar 03", "Mar 04", "Mar 05", "Mar 06"]
    if n_days == 400:  # months, the year at January: no day-of-month labels on a long span
        assert "2027" in labels and all(lab in ("2026", "2027") or len(lab) == 3 for lab in labels), labels


def test_without_day_axis_a_short_daily_plot_shows_hours():
    """What day_axis fixes: matplotlib's own locator ticks a 3-day span every 12 hours."""
    labels, ticks = _daily_figure(3, day_axis=False)
    assert _shows_hours(labels) and not np.allclose(ticks, np.round(ticks)), labels


def test_day_axis_refuses_an_axis_of_numbers():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1, 2], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"which='x'\) holds numbers, not dates"):
        plots.day_axis(ax)
    with pytest.raises(ValueError, match="which"):
        plots.day_axis(ax, which="z")
    with pytest.raises(ValueError, match="max_ticks must be >= 3"):
        plots.day_axis(ax, which="y", max_ticks=2)
    fig2, ax2 = plt.subplots()
    plots.day_axis(ax2)  # before plotting: the dates come later
    ax2.plot(pd.date_range("2026-03-02", periods=6, freq="D"), np.arange(6.0))
    fig2.canvas.draw()
    assert [lab.get_text() for lab in ax2.get_xticklabels()][:2] == ["Mar 02", "Mar 03"]
    plt.close("all")
