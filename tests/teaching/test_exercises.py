"""The exercise checks (decaylib.teaching.exercises) and the student release (decaylib.teaching.student)."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from decaylib.teaching import exercises as X
from decaylib.teaching.student import BEGIN, END, solution_blocks, strip_solutions

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


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
    from decaylib.forecast.baselines import fit_linear_ar

    x = np.random.default_rng(1).gamma(2, 2, (200, 5))
    ar = fit_linear_ar(x, np.column_stack([x[:, -1], x[:, -2]]))
    assert X.check_ar_size(12, ar)
    assert not X.check_ar_size(10, ar)
    assert "intercepts" in _said(capsys).splitlines()[-1]
    from decaylib.decay.rate import cramer_rao_lambda

    t7, t30 = np.arange(7.0), np.arange(30.0)
    r = float(cramer_rao_lambda(50 * np.exp(-0.1 * t7), t7)) / float(cramer_rao_lambda(50 * np.exp(-0.1 * t30), t30))
    assert X.check_crlb_ratio(r, I0=50, lam=0.1, short_days=7, long_days=30)
    assert not X.check_crlb_ratio(1 / r, I0=50, lam=0.1, short_days=7, long_days=30)
    assert "inverted" in _said(capsys).splitlines()[-1]


def test_trailing_corr_needs_the_truth(capsys):
    day = np.arange(30)
    one = pd.DataFrame({"user_id": 1, "category": 0, "day": day, "interest": np.r_[np.arange(15), np.arange(15, 0, -1)] * 1.0,
                        "true_score": np.r_[np.arange(15), np.arange(15, 0, -1)] * 1.0 + 0.5})
    from decaylib.data.panel import moving_mean

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


def test_events_for_rel_sd_and_pairs_with_lambda(capsys):
    from decaylib.decay.rate import cramer_rao_lambda
    from decaylib.decay.stream import DecayState

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


# ---------------------------------------------------------------------------------------------
# 05-09: checks that recompute their answer from the library
# ---------------------------------------------------------------------------------------------
def _rejects(capsys, res, *must, secret: float | None = None):
    out = _said(capsys).splitlines()[-1]
    assert not res and out.startswith("✗ not yet"), out
    for text in must:
        assert text in out, out
    if secret is not None:
        for fmt in ("{:.2f}", "{:.3f}", "{:.4f}", "{:.1%}", "{:.0%}", "{:g}"):
            assert fmt.format(secret) not in out, (fmt, out)


def _none_and_strict(monkeypatch, capsys, call):
    assert not call(None)
    assert _said(capsys).startswith("… not answered yet")
    monkeypatch.setenv("DECAYLIB_STRICT_CHECKS", "1")
    with pytest.raises(AssertionError, match="not answered"):
        call(None)
    monkeypatch.delenv("DECAYLIB_STRICT_CHECKS")


def test_05_precision_and_extra_points(small_sim, small_pre, capsys, monkeypatch):
    from decaylib.decay.evidence import EvidenceRules
    from decaylib.decay.points import find_decay_point
    from decaylib.evaluation.detection import decay_point_metrics

    panel = small_pre.panel
    peaks = small_sim.truth.loc[~small_sim.truth["is_bot"], ["user_id", "category", "t_peak"]]
    m = decay_point_metrics(find_decay_point(panel, prominence=0.1), peaks, margin=3)
    check = lambda a: X.check_precision_at_prominence(a, panel, peaks, prominence=0.1, margin=3,  # noqa: E731
                                                      usual_prominence=0.5)
    assert check(m["precision"])
    if abs(m["recall"] - m["precision"]) > 1e-3:
        _rejects(capsys, check(m["recall"]), "recall", secret=m["precision"])
    usual = decay_point_metrics(find_decay_point(panel, prominence=0.5), peaks, margin=3)["precision"]
    if abs(usual - m["precision"]) > 1e-3:
        _rejects(capsys, check(usual), "prominence 0.5", secret=m["precision"])
    _rejects(capsys, check(min(m["precision"] + 0.1, 0.99) if m["precision"] < 0.85 else 0.5), secret=m["precision"])
    _rejects(capsys, check(100 * m["precision"]), "percentage", secret=m["precision"])
    _none_and_strict(monkeypatch, capsys, check)

    default = int((find_decay_point(panel)["reason"] == "ok").sum())
    relaxed = int((find_decay_point(panel, rules=EvidenceRules(noise_k=1.0))["reason"] == "ok").sum())
    more = X.check_extra_decay_points
    assert more(relaxed - default, panel, noise_k=1.0)
    if relaxed != 2 * default:
        _rejects(capsys, more(relaxed, panel, noise_k=1.0), "subtract")
    _rejects(capsys, more(relaxed - default + 7, panel, noise_k=1.0), "too large")
    _none_and_strict(monkeypatch, capsys, lambda a: more(a, panel, noise_k=1.0))


def test_06_decay_aware_ndcg(small_pre, capsys, monkeypatch):
    from decaylib.evaluation import ranking as E
    from decaylib.recommend import strategies as R

    panel = small_pre.panel
    T, h = int(panel["day"].max()) - 14, 14
    lam_T, points_T = R.decay_inputs_at_cutoff(panel, T)
    relevant = E.relevant_items(panel, T, h)
    ranking = R.rank_decay_aware(panel, T, 10, lam=lam_T, decay_points=points_T, n_fresh=2, horizon=h).assign(strategy="x")
    truth = float(E.graded_ndcg_at_k(ranking, relevant, 10).mean())
    check = lambda a: X.check_decay_aware_ndcg(a, panel, T, relevant, k=10, lam=lam_T, decay_points=points_T,  # noqa: E731
                                               n_fresh=2, horizon=h, usual={"n_fresh": 1}, name="ndcg_fresh2")
    assert check(truth)
    binary = float(E.ndcg_at_k(ranking, relevant, 10).mean())
    if abs(binary - truth) > 1e-4:
        _rejects(capsys, check(binary), "binary", secret=truth)
    one = R.rank_decay_aware(panel, T, 10, lam=lam_T, decay_points=points_T, n_fresh=1, horizon=h).assign(strategy="x")
    own = float(E.graded_ndcg_at_k(one, relevant, 10).mean())
    if abs(own - truth) > 1e-4:
        _rejects(capsys, check(own), "notebook's own ranking", secret=truth)
    _rejects(capsys, check(truth * 0.8), "too small", secret=truth)
    _none_and_strict(monkeypatch, capsys, check)


def test_07_changed_actions_and_days_since(capsys, monkeypatch):
    from decaylib.recommend.advice import category_actions
    from tests.panels import make_panel

    fading = [20] * 5 + [20 * np.exp(-0.3 * i) for i in range(1, 25)]
    p = make_panel({(1, 10): (0, list(np.linspace(1, 20, 30).round())), (1, 11): (0, [max(1, round(v)) for v in fading]),
                    (1, 13): (0, [30] * 3 + [0] * 27), (1, 14): (0, [20] * 10 + [6] * 20)}, end_day=29)
    settings = dict(lam=pd.DataFrame({"user_id": [1], "category": [11], "lam_hat": [0.3]}),
                    decay_points=pd.DataFrame({"user_id": [1, 1, 1], "category": [11, 13, 14], "t_decay": [4, 1, 9]}))
    today = 29
    base = category_actions(p, 1, today, **settings)
    higher = category_actions(p, 1, today, stop_ratio=0.45, **settings).set_index("category")["action"]
    truth = [c for c, a in zip(base["category"], base["action"]) if higher[c] != a]
    assert truth == [14]  # re-engage -> stop: its level is 30% of its highest
    check = lambda a: X.check_changed_actions(a, base, p, 1, today, stop_ratio=0.45, **settings)  # noqa: E731
    assert check(truth) and check(list(reversed(truth))) and check(np.array(truth, dtype=int))
    if truth:
        _rejects(capsys, check(truth[1:]), "missing")
    _rejects(capsys, check(sorted(set(base["category"]) - set(truth))[:1] + truth), "same action")
    _rejects(capsys, check([999]), "not this user's categories")
    _rejects(capsys, check("10"), "list of category codes")
    _none_and_strict(monkeypatch, capsys, check)

    days = today - base["last_event_day"]
    assert X.check_days_since(days, base, today) and X.check_days_since(days.to_numpy(), base, today)
    _rejects(capsys, X.check_days_since(-days, base, today), "sign")
    _rejects(capsys, X.check_days_since(days + 1, base, today), "one day too many")
    _rejects(capsys, X.check_days_since(days.iloc[:1], base, today), "one per category")
    _none_and_strict(monkeypatch, capsys, lambda a: X.check_days_since(a, base, today))


def test_08_share_of_repeat_pairs(capsys, monkeypatch):
    rng = np.random.default_rng(5)
    n = 3000
    orders = pd.DataFrame({"CustomerID": rng.integers(1, 60, n),
                           "StockCode": [f"{a}{b}{c}" for a, b, c in rng.integers(1, 4, (n, 3))],
                           "InvoiceDate": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 90 * 24, n), unit="h")})
    cols = {"CustomerID": "user_id", "StockCode": "item_id", "InvoiceDate": "ts"}

    def share(chars, by_days=True):
        fam = orders["StockCode"].str[:chars]
        g = orders.assign(fam=fam, date=orders["InvoiceDate"].dt.floor("D")).groupby(["CustomerID", "fam"])
        return float(((g["date"].nunique() if by_days else g.size()) >= 5).mean())

    truth = share(2)
    check = lambda a: X.check_share_repeat_pairs(a, orders, cols, n_chars=2)  # noqa: E731
    assert check(truth)
    if abs(share(3) - truth) > 1e-3:
        _rejects(capsys, check(share(3)), "three-character", secret=truth)
    if abs(share(2, by_days=False) - truth) > 1e-3:
        _rejects(capsys, check(share(2, by_days=False)), "purchase lines", secret=truth)
    _rejects(capsys, check(truth * 100), "percentage")
    _none_and_strict(monkeypatch, capsys, check)


def test_09_outage_changes(capsys, monkeypatch):
    from decaylib.decay import stream as ST
    from tests.panels import make_log

    sparse, starts, _, _, last = make_log()
    stats = ST.phase_stats(sparse, starts, t_last=last)
    before, after = ST.lambda_from_stats(stats), ST.lambda_from_stats(stats, [30])
    same_reason = before["reason"].to_numpy() == after["reason"].to_numpy()
    moved = ~np.isclose(after["lam_hat"], before["lam_hat"], rtol=1e-12, atol=0.0, equal_nan=True) | ~same_reason
    truth = int(moved.sum())
    check = lambda a: X.check_outage_changes(a, stats, outage_days=[30])  # noqa: E731
    assert check(truth) and check(float(truth))
    nan_changed = int((~np.isclose(after["lam_hat"], before["lam_hat"], rtol=1e-12, atol=0.0) | ~same_reason).sum())
    if nan_changed != truth:
        _rejects(capsys, check(nan_changed), "NaN")
    _rejects(capsys, check(truth + 0.5), "whole number")
    _none_and_strict(monkeypatch, capsys, check)


def test_06_ndcg_without_relevant_users(small_pre, capsys):
    from decaylib.recommend import strategies as R

    panel = small_pre.panel
    T = int(panel["day"].max()) - 14
    lam_T, points_T = R.decay_inputs_at_cutoff(panel, T)
    from decaylib.evaluation.ranking import relevant_items

    none_relevant = relevant_items(panel, T, 14).iloc[:0]
    kw = dict(k=10, lam=lam_T, decay_points=points_T, n_fresh=1, horizon=14)
    assert X.check_decay_aware_ndcg(float("nan"), panel, T, none_relevant, **kw)
    assert "undefined" in _said(capsys)
    assert not X.check_decay_aware_ndcg(0.5, panel, T, none_relevant, **kw)


# ---------------------------------------------------------------------------------------------
# 04b: the self-exciting model
# ---------------------------------------------------------------------------------------------
def _hawkes_fit(alpha=0.2, beta=0.3, interval=(0.25, 0.36), types=("view",)):
    from decaylib.decay.hawkes import HawkesFit

    k = len(types)
    return HawkesFit(types=tuple(types), mu=np.full(k, 0.05), alpha=np.full((k, k), alpha), satiation=np.zeros(k),
                     satiation_decay=0.0, beta=beta, r=5.0, beta_interval=interval, loglik=0.0, n_pairs=10,
                     n_events=100.0, converged=True, message="")


def test_04b_half_life_and_its_interval(capsys, monkeypatch):
    fit = _hawkes_fit()
    ln2 = math.log(2)
    hl, iv = ln2 / 0.3, (ln2 / 0.36, ln2 / 0.25)
    assert X.check_half_life_interval(hl, iv, fit) and X.check_half_life_interval(hl, list(iv), fit)
    assert X.check_half_life_interval(fit.half_life, fit.half_life_interval, fit)  # the library agrees
    _rejects(capsys, X.check_half_life_interval(1 / 0.3, iv, fit), "not 1 / β", secret=hl)
    _rejects(capsys, X.check_half_life_interval(0.3, iv, fit), "β itself", secret=hl)
    _rejects(capsys, X.check_half_life_interval(hl, iv[::-1], fit), "swapped")
    _rejects(capsys, X.check_half_life_interval(hl, (0.25, 0.36), fit), "β's interval")
    _rejects(capsys, X.check_half_life_interval(hl, (1 / 0.36, 1 / 0.25), fit), "ln 2 / β at each end")
    _rejects(capsys, X.check_half_life_interval(hl, (iv[0], iv[1] * 1.5), fit), "high end", secret=iv[1])
    _rejects(capsys, X.check_half_life_interval(hl, 2.0, fit), "two numbers")
    assert not X.check_half_life_interval(hl, None, fit)
    assert "not answered yet: set half_life_interval" in _said(capsys)
    _none_and_strict(monkeypatch, capsys, lambda a: X.check_half_life_interval(a, iv, fit))
    with pytest.raises(ValueError, match="interval='profile'"):
        X.check_half_life_interval(hl, iv, _hawkes_fit(interval=(float("nan"), float("nan"))))


def test_04b_extra_events_of_one_event(capsys, monkeypatch):
    a, beta = 0.2, 0.3
    q = math.exp(-beta)
    fit = _hawkes_fit(alpha=a, beta=beta)
    m = a * q / (1 - q)
    assert fit.branching_ratio == pytest.approx(m)  # the formula is the library's value for one type
    assert X.check_extra_events(m, fit)
    _rejects(capsys, X.check_extra_events(a / (1 - q), fit), "day after", secret=m)
    _rejects(capsys, X.check_extra_events(a / beta, fit), "continuous time", secret=m)
    _rejects(capsys, X.check_extra_events(m / (1 - m), fit), "offspring's offspring", secret=m)
    _rejects(capsys, X.check_extra_events(a * q, fit), "next day only", secret=m)
    _rejects(capsys, X.check_extra_events(a, fit), "α alone", secret=m)
    _rejects(capsys, X.check_extra_events(m * 5, fit), "too large", secret=m)
    _none_and_strict(monkeypatch, capsys, lambda ans: X.check_extra_events(ans, fit))
    with pytest.raises(ValueError, match="one event type"):
        X.check_extra_events(m, _hawkes_fit(types=("view", "cart")))


def test_04b_branching_without_excitation(capsys, monkeypatch):
    from decaylib.data.synth import simulate_self_exciting
    from decaylib.decay.hawkes import fit_hawkes

    sim0 = simulate_self_exciting(60, 2, 60, types=("view",), mu=[0.05], alpha=[[0.0]], seed=1)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit0 = fit_hawkes(sim0.panel, types=["view"], satiation=False, interval=None)
    assert X.check_branching_without_excitation(fit0.branching_ratio, sim0)
    assert X.check_branching_without_excitation(fit0.branching_ratio, sim0)  # the same fit every time
    if not math.isclose(float(fit0.alpha.max()), fit0.branching_ratio, rel_tol=0.02):
        _rejects(capsys, X.check_branching_without_excitation(float(fit0.alpha.max()), sim0), "largest α")
    excited = simulate_self_exciting(60, 2, 60, types=("view",), mu=[0.05], alpha=[[0.1]], seed=1)
    _rejects(capsys, X.check_branching_without_excitation(0.0, excited), "np.zeros((1, 1))")
    _none_and_strict(monkeypatch, capsys, lambda ans: X.check_branching_without_excitation(ans, sim0))
    assert not X.check_branching_without_excitation(0.1, None)
    assert _said(capsys).splitlines()[-1] == "… not answered yet: set sim0"  # the student edition's starter
    with pytest.raises(TypeError, match="simulate_self_exciting"):
        X.check_branching_without_excitation(0.0, sim0.panel)
