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
