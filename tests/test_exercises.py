"""The exercise checks (decaylib.exercises) and the student release (decaylib.student)."""
from __future__ import annotations

import math
import re
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

from decaylib import exercises as X
from decaylib.student import BEGIN, END, make_release, solution_blocks, strip_solutions

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


@pytest.fixture(autouse=True)
def lenient(monkeypatch):
    monkeypatch.delenv("DECAYLIB_STRICT_CHECKS", raising=False)


def _said(capsys):
    return capsys.readouterr().out.strip()


def test_a_check_never_prints_the_answer(capsys):
    truth = math.log(80 / 50) / 3
    assert X.check_log_ratio(truth, math.log(2) / truth, I_t=80, I_t_dt=50, dt=3)
    assert _said(capsys).startswith("✓ correct")
    for wrong, why in ((truth * 3, "not divided by Δt"), (-truth, "sign"), (math.log(2) / truth, "half-life, not λ"),
                       (truth * 1.5, "too large")):
        res = X.check_log_ratio(wrong, 1.0, I_t=80, I_t_dt=50, dt=3)
        out = _said(capsys)
        assert not res and out.startswith("✗ not yet") and why in out, out
        assert f"{truth:.3f}"[:5] not in out and f"{truth:.4g}" not in out
    assert not X.check_log_ratio(truth, 1 / truth, I_t=80, I_t_dt=50, dt=3)
    assert "ln 2 / λ, not 1 / λ" in _said(capsys)


def test_missing_and_malformed_answers(capsys):
    assert not X.check_number(None, 1.0, name="lam")
    assert _said(capsys) == "… not answered yet: set lam"
    assert not X.check_number("abc", 1.0)
    assert "should be a number" in _said(capsys)
    assert not X.check_number([1, 2], 1.0)
    assert "one number" in _said(capsys)
    assert not X.check_number(float("inf"), 1.0)
    assert "log of zero" in _said(capsys)
    assert not X.check_count(3.5, 3)
    assert "whole number" in _said(capsys)
    assert not X.check_share(45.0, 0.45)
    assert "not a percentage" in _said(capsys)


def test_strict_mode_raises(monkeypatch):
    monkeypatch.setenv("DECAYLIB_STRICT_CHECKS", "1")
    with pytest.raises(AssertionError, match="not yet"):
        X.check_number(2.0, 1.0)
    with pytest.raises(AssertionError, match="not answered"):
        X.check_number(None, 1.0)
    assert X.check_number(1.0, 1.0)


def test_day_below_and_same_lambda(capsys):
    assert X.check_day_below(24, half_life=7, share=0.1)
    assert not X.check_day_below(23, half_life=7, share=0.1)
    assert "one day early" in _said(capsys)
    lam = pd.Series([0.1, 0.2])
    assert X.check_same_lambda(lam * (1 + 1e-9), lam)
    assert not X.check_same_lambda([0.1], lam)
    assert not X.check_same_lambda(lam * 1.1, lam)
    assert "10%" in _said(capsys).splitlines()[-1]


def test_masked_mae_names_the_mistake(capsys):
    rng = np.random.default_rng(0)
    f, r = rng.random((50, 3)), rng.random((50, 3))
    mask = rng.random((50, 3)) > 0.2
    right = float(np.abs(f - r)[:, 2][mask[:, 2]].mean())
    assert X.check_masked_mae(right, f, r, mask, step=3)
    assert not X.check_masked_mae(float(np.abs(f - r)[:, 2].mean()), f, r, mask, step=3)
    assert "outage days" in _said(capsys).splitlines()[-1]
    assert not X.check_masked_mae(float(np.abs(f - r)[mask].mean()), f, r, mask, step=3)
    assert "every horizon" in _said(capsys).splitlines()[-1]


def test_ar_size_and_crlb_ratio(capsys):
    from decaylib.baselines import fit_linear_ar

    x = np.random.default_rng(1).gamma(2, 2, (200, 5))
    ar = fit_linear_ar(x, np.column_stack([x[:, -1], x[:, -2]]))
    assert X.check_ar_size(12, ar)
    assert not X.check_ar_size(10, ar)
    assert "intercepts" in _said(capsys).splitlines()[-1]
    from decaylib.decay import cramer_rao_lambda

    t7, t30 = np.arange(7.0), np.arange(30.0)
    r = float(cramer_rao_lambda(50 * np.exp(-0.1 * t7), t7)) / float(cramer_rao_lambda(50 * np.exp(-0.1 * t30), t30))
    assert X.check_crlb_ratio(r, I0=50, lam=0.1, short_days=7, long_days=30)
    assert not X.check_crlb_ratio(1 / r, I0=50, lam=0.1, short_days=7, long_days=30)
    assert "inverted" in _said(capsys).splitlines()[-1]


def test_trailing_corr_needs_the_truth(capsys):
    day = np.arange(30)
    one = pd.DataFrame({"user_id": 1, "category": 0, "day": day, "interest": np.r_[np.arange(15), np.arange(15, 0, -1)] * 1.0,
                        "true_score": np.r_[np.arange(15), np.arange(15, 0, -1)] * 1.0 + 0.5})
    from decaylib.preprocess import moving_mean

    c = float(np.corrcoef(moving_mean(one, "interest", 7, center=False), one["true_score"])[0, 1])
    assert X.check_trailing_corr(c, one, window=7)
    centered = float(np.corrcoef(moving_mean(one, "interest", 7), one["true_score"])[0, 1])
    assert not X.check_trailing_corr(centered, one, window=7)
    assert not X.check_trailing_corr(c, one.drop(columns="true_score"), window=7)
    assert "simulator" in _said(capsys).splitlines()[-1]


# ---------------------------------------------------------------------------------------------
# the student release
# ---------------------------------------------------------------------------------------------
def test_strip_solutions_keeps_the_cell_runnable():
    src = "x = 1\nif True:\n    ### BEGIN SOLUTION\n    a, b = 2, 3\n    c += 1\n    ### END SOLUTION\n    check(a)\n# NBVAL_CHECK_OUTPUT\n"
    out = strip_solutions(src)
    assert out == "x = 1\nif True:\n    # YOUR CODE HERE: set a, b, c\n    a = None\n    b = None\n    c = None\n    check(a)"
    compile(out, "<cell>", "exec")
    assert solution_blocks(src) == [["    a, b = 2, 3", "    c += 1"]]
    with pytest.raises(ValueError, match="without"):
        strip_solutions(f"{BEGIN}\nx = 1\n")
    with pytest.raises(ValueError, match="without"):
        solution_blocks(f"{END}\n")


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    make_release(NOTEBOOKS, out)
    return out


def test_the_release_has_no_solutions(release):
    released = sorted((release / "notebooks").glob("*.ipynb"))
    originals = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb") if not p.name.endswith(".failed.ipynb"))
    assert [p.name for p in released] == [p.name for p in originals]
    assert not (release / "solutions").exists() and not (release / "notebooks" / "solutions").exists()
    n_blocks = 0
    for orig, rel in zip(originals, released):
        solution_lines = set()
        for cell in nbformat.read(orig, as_version=4).cells:
            if cell.cell_type == "code":
                for block in solution_blocks(cell.source):
                    n_blocks += 1
                    solution_lines |= {ln.strip() for ln in block if len(ln.strip()) > 3 and not ln.strip().startswith("#")}
        text = rel.read_text(encoding="utf-8")
        nb = nbformat.read(rel, as_version=4)
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text and "NBVAL" not in text, rel.name
        assert not re.search(r"\(solutions/[^)]*\.md\)", text), rel.name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None
                leaked = [ln for ln in cell.source.splitlines() if ln.strip() in solution_lines]
                assert not leaked, (rel.name, leaked)
    assert n_blocks >= 10  # the checked exercises of the notebooks (00-04, 03b, 08, 09)


@pytest.mark.notebook
def test_a_student_notebook_runs_and_says_not_answered(release, tmp_path):
    """The released 01 runs top to bottom (small parameters) and its checks wait for answers."""
    from decaylib.runner import execute_notebook

    nb = execute_notebook(release / "notebooks" / "01_synthetic_events.ipynb", tmp_path / "01.ipynb",
                          {"data_dir": str(tmp_path / "data"), "n_users": 40, "n_days": 60},
                          cwd=release / "notebooks")
    outs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outs if o.get("output_type") == "error"]
    text = "".join(o.get("text", "") for o in outs if o.get("output_type") == "stream")
    assert text.count("… not answered yet") == 2 and "✓ correct" not in text


def test_events_for_rel_sd_and_pairs_with_lambda(capsys):
    from decaylib.decay import cramer_rao_lambda
    from decaylib.stream import DecayState

    lam, t = np.log(2) / 30, np.arange(60.0)
    shape = np.exp(-lam * t)
    rel = lambda n: float(cramer_rao_lambda(n * shape / shape.sum(), t)) / lam  # noqa: E731
    n = next(k for k in range(1, 1000) if rel(k) < 0.25)
    assert X.check_events_for_rel_sd(n, lam=lam, days=60, target=0.25)
    assert not X.check_events_for_rel_sd(n - 1, lam=lam, days=60, target=0.25)
    assert "one short" in _said(capsys).splitlines()[-1]

    rng = np.random.default_rng(3)
    rows = [(u, 0, d, float(rng.poisson(20 * np.exp(-0.1 * d)))) for u in range(30) for d in range(40)]
    daily = pd.DataFrame(rows, columns=["user_id", "category", "day", "count"])
    daily = daily[daily["count"] > 0]
    truth = int((DecayState.replay(daily[daily["day"] <= 19]).lam()["reason"] == "ok").sum())
    assert X.check_pairs_with_lambda(truth, daily, last_day=19)
    assert not X.check_pairs_with_lambda(truth + 3, daily, last_day=19)
