"""Notebook parameters: where relative paths start, and one check right after the parameters cell.

* :func:`project_path` resolves a relative path from the **repository root** (the folder with
  ``notebooks/`` and ``decaylib/``), so ``data_dir = "data/generated"`` means the same folder
  whether papermill runs from the repository root, from ``notebooks/`` or through
  :mod:`decaylib.workflow.runner`. Absolute paths (and ``~``) are kept as they are.
* :func:`check_parameters` is what every notebook runs in the cell after its ``parameters`` cell::

      from decaylib.workflow.params import check_parameters
      check_parameters(globals(), "03_forecasting")

  papermill injects the values it is given as a cell right after ``parameters`` and only logs a
  warning for a name the notebook does not define; this check stops the run there with the
  runner's message (``03_forecasting.ipynb has no parameter(s) ['n_user']; its parameters are
  [...]``), validates every parameter with a message that names it (``seed must be a non-negative
  integer, got -1``), and replaces the path parameters by absolute paths.

The rules of each notebook are in :data:`RULES`; a test keeps them in step with the notebooks'
``parameters`` cells.
"""

from __future__ import annotations

import ast
import math
import os
from pathlib import Path

from decaylib.data.synth import MIN_USERS
from decaylib.decay.counts import FORECAST_METHODS

__all__ = ['ParameterError', 'UnknownParameterError', 'REPO_ROOT', 'repo_root', 'project_path', 'RULES', 'validate', 'check_parameters']


class ParameterError(ValueError):
    """A notebook parameter with a value it cannot take; the message names the parameter.

    Notebooks 00-09 (every notebook's parameter check cell).
    """


class UnknownParameterError(ParameterError):
    """A parameter name that the notebook's ``parameters`` cell does not define.

    Notebooks 00-09 (every notebook's parameter check cell).
    """

#: The folder above the installed library: the repository root for an editable install.
REPO_ROOT = Path(__file__).resolve().parents[2]  # decaylib/workflow/params.py -> the repository

def _is_root(d: Path) -> bool:
    return (d / "notebooks").is_dir() and (d / "decaylib").is_dir()


def repo_root() -> Path | None:
    """The repository root: the library's own parent folder when it holds ``notebooks/`` and
    ``decaylib/`` (an editable install), else the first folder from the working directory upwards
    that does; None outside a checkout.

    Notebooks 00-09 (every notebook's path parameters).
    """
    if _is_root(REPO_ROOT):
        return REPO_ROOT
    cwd = Path.cwd()
    return next((d for d in (cwd, *cwd.parents) if _is_root(d)), None)


def project_path(path) -> Path:
    """``path`` as an absolute path: absolute (or ``~``) paths as given, relative ones from the
    repository root (:func:`repo_root`; the working directory outside a checkout).

    Notebook 09.
    """
    p = Path(os.fspath(path)).expanduser()
    if p.is_absolute():
        return p
    return Path(os.path.abspath((repo_root() or Path.cwd()) / p))

# ---- rules ---------------------------------------------------------------------------------------
# A rule is a function (name, value) -> value (paths come back resolved) that raises ParameterError.


def _is_int(v) -> bool:
    import numbers

    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v) -> bool:
    import numbers

    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(float(v))


def integer(minimum: int | None = None, why: str = ""):
    """An int (bools refused) of at least ``minimum``.

    Notebooks 01-09 (their parameter rules).
    """
    def rule(name, v):
        if minimum == 0:
            what = "a non-negative integer"
        elif minimum == 1:
            what = "a positive integer"
        else:
            what = "an integer"
        if not _is_int(v):
            raise ParameterError(f"{name} must be {what}, got {v!r}")
        if minimum is not None and v < minimum:
            if minimum in (0, 1):
                raise ParameterError(f"{name} must be {what}{why}, got {v}")
            raise ParameterError(f"{name} must be at least {minimum}{why}, got {v}")
        return v
    return rule


def number(low: float | None = None, high: float | None = None, low_open: bool = False, high_open: bool = False):
    """A finite real number in the interval given (``None``: unbounded on that side).

    Notebooks 00, 01 and 07.
    """
    def rule(name, v):
        ok = _is_number(v)
        if ok and low is not None:
            ok = v > low if low_open else v >= low
        if ok and high is not None:
            ok = v < high if high_open else v <= high
        if ok:
            return v
        if low is not None and high is not None:
            what = f"a number in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        elif low is not None:
            what = f"a number {'>' if low_open else '>='} {low}"
        else:
            what = f"a number {'<' if high_open else '<='} {high}"
        raise ParameterError(f"{name} must be {what}, got {v!r}")
    return rule

ratio = number(0, 1, low_open=True, high_open=True)

positive = number(0, low_open=True)


def choice(*values):
    """One of ``values``.

    Notebooks 03 and 03b.
    """
    def rule(name, v):
        if v not in values:
            raise ParameterError(f"{name} must be one of {list(values)}, got {v!r}")
        return v
    return rule


def boolean(name, v):
    """``True`` or ``False`` (no other value, not even 0 or 1).

    Notebook 03b.
    """
    if not isinstance(v, bool):
        raise ParameterError(f"{name} must be True or False, got {v!r}")
    return v


def device(name, v):
    """A torch device: ``'auto'``, ``'cpu'``, ``'cuda'`` (or ``'cuda:N'``) or ``'mps'``.

    Notebooks 03, 03b and 07.
    """
    base, sep, index = v.partition(":") if isinstance(v, str) else ("", "", "")
    if base not in ("auto", "cpu", "cuda", "mps") or (sep and not (base == "cuda" and index.isdigit())):
        raise ParameterError(f"{name} must be 'auto', 'cpu', 'cuda' (or 'cuda:N') or 'mps', got {v!r}")
    return v


def optional(rule):
    """``None`` or a value that passes ``rule``.

    Notebooks 02-07.
    """
    def wrapped(name, v):
        return None if v is None else rule(name, v)
    return wrapped


def list_of(rule):
    """A non-empty list (or tuple) whose every element passes ``rule``.

    Notebooks 03b and 05.
    """
    def wrapped(name, v):
        if not isinstance(v, (list, tuple)) or not v:
            raise ParameterError(f"{name} must be a non-empty list, got {v!r}")
        return [rule(f"{name}[{i}]", x) for i, x in enumerate(v)]
    return wrapped


def _path_text(name, v):
    if not isinstance(v, (str, os.PathLike)) or not str(v).strip():
        raise ParameterError(f"{name} must be a path (a non-empty string), got {v!r}")
    return project_path(v)


def _master(name, v):
    if not isinstance(v, str) or not v.strip():
        raise ParameterError(f"{name} must be a Spark master URL such as 'local[2]' or 'spark://host:7077', got {v!r}")
    return v


def _where(v) -> str:
    return "" if Path(os.fspath(v)).expanduser().is_absolute() else \
        f" (relative paths start at the repository root {repo_root() or Path.cwd()})"


def folder(name, v):
    """An output folder (created when needed): resolved, and not an existing file.

    Notebooks 00-09 (every notebook's ``data_dir``).
    """
    p = _path_text(name, v)
    if p.exists() and not p.is_dir():
        raise ParameterError(f"{name} {str(v)!r} is a file, not a folder: {p}")
    return str(p)


def input_file(name, v):
    """A file that must exist: resolved.

    Notebooks 02-08.
    """
    p = _path_text(name, v)
    if not p.is_file():
        state = "is a folder, not a file" if p.is_dir() else "does not exist"
        raise ParameterError(f"{name} {str(v)!r} {state}: {p}{_where(v)}")
    return str(p)


def mapping(name, v):
    """``events_mapping``: a dict, or a JSON file that must exist.

    Notebooks 00-09 (every notebook).
    """
    return v if isinstance(v, dict) else input_file(name, v)


def user_id(name, v):
    """A user id: an integer (bools refused) or a non-empty string.

    Notebook 07.
    """
    if _is_int(v) or (isinstance(v, str) and v.strip()):
        return v
    raise ParameterError(f"{name} must be an integer or a non-empty string id, got {v!r}")

_SEED = integer(0)

_SIM = {
    "seed": _SEED,
    "n_users": integer(MIN_USERS, " (fewer users leave too few pairs to split, fit and check)"),
    "n_categories": integer(1),
    "n_days": integer(30, " so that pairs can rise and decay"),
}

_SOURCE = {"data_dir": folder, "events_path": optional(input_file), "events_mapping": optional(mapping)}

#: Every notebook's parameters and the rule each value must pass.
#: the forecaster's parameters, shared by 03 and 03b
_FORECAST = {
    **_SOURCE, "seed": _SEED, "cell": choice("lstm", "gru", "rnn"),
    "seq_length": integer(2, " (days of history in a window)"), "horizon": integer(1), "hidden_size": integer(1),
    "num_layers": integer(1), "dropout": number(0, 1, high_open=True), "epochs": integer(1), "patience": integer(1),
    "batch_size": integer(1), "learning_rate": positive, "max_train_windows": optional(integer(1)),
    "device": device, "n_folds": integer(2, " (cross-validation needs two folds)"), "cv_epochs": integer(1),
}

RULES: dict[str, dict] = {
    "00_start_here": {"data_dir": folder},
    "01_synthetic_events": {"data_dir": folder, **_SIM, "pairs_per_user": number(1)},
    "02_preprocessing": {**_SOURCE, **_SIM, "bot_z": positive, "median_window": integer(1), "mean_window": integer(1)},
    "03_forecasting": _FORECAST,
    "03b_forecasting_advanced": {
        **_FORECAST,
        "compare_cells": boolean, "run_sweep": boolean, "sweep_hidden": list_of(integer(1)), "sweep_epochs": integer(1),
        "run_update_demo": boolean, "update_days": integer(1), "ar_lags": integer(1, " (days in the linear formula)"),
    },
    "04_decay_rate": {**_SOURCE, "seed": _SEED, "min_decay_days": integer(2), "min_events": number(0),
                      "mc_replicates": integer(2), "ebbinghaus_csv": input_file,
                      "forecast_horizon": integer(1), "n_cutoffs": integer(1), "n_boot": integer(10)},
    "04b_self_exciting": {
        "data_dir": folder, **_SIM, "horizon": integer(1), "retail_path": input_file,
        "holdout_days": integer(1), "n_boot": integer(10),
        "auto_methods": list_of(choice(*(m for m in FORECAST_METHODS if m not in ("lstm", "auto")))),
    },
    "05_decay_points": {
        **_SOURCE, "seed": _SEED, "margin_days": integer(0), "prominence": ratio, "max_too_early": ratio,
        "alert_windows": list_of(integer(1)), "alert_margins": list_of(ratio), "alert_min_levels": list_of(number(0)),
        "baseline_margin": ratio, "ahead_days": list_of(integer(1)), "reliability_days": integer(1),
    },
    "06_recommendations": {**_SOURCE, "seed": _SEED, "horizon_days": integer(1), "cutoff_day": optional(integer(0)),
                           "sar_tune_days": optional(integer(1)), "sar_half_lives": optional(list_of(positive)),
                           "k": integer(1), "n_fresh": integer(0), "n_boot": integer(1), "wasted_threshold": ratio},
    "07_user_report": {
        "user_id": user_id, **_SOURCE, "horizon": integer(1), "level_window": integer(1), "promo_ratio": ratio,
        "stop_ratio": ratio, "alert_window": integer(1), "alert_margin": ratio, "alert_min_level": number(0),
        "max_plots": integer(0), "device": device,
        "forecast_method": choice("auto", *(m for m in FORECAST_METHODS if m not in ("lstm", "auto"))),
        "backtest_cutoffs": integer(1), "retail_file": optional(input_file),
    },
    "08_real_data": {"data_dir": folder, "retail_file": input_file, "bot_z": positive, "max_gap_days": integer(1),
                     "holdout_days": integer(1), "year_split": boolean},
    "09_scaling_up": {"data_dir": folder, "n_events": integer(10_000), "threads": integer(1), "seed": _SEED,
                      "ddp_processes": integer(0), "spark_users": integer(0), "spark_master": _master,
                      "spark_cluster_workers": integer(0)},
}


def _cross_checks(notebook: str, v: dict) -> None:
    if notebook == "03b_forecasting_advanced" and v["ar_lags"] > v["seq_length"]:
        raise ParameterError(f"ar_lags must be at most seq_length = {v['seq_length']} (days in a window), got {v['ar_lags']}")
    if notebook == "04b_self_exciting" and v["horizon"] > v["n_days"] // 3:
        raise ParameterError(f"horizon must be at most n_days // 3 = {v['n_days'] // 3} (the models learn from the days "
                             f"before the held-back ones), got {v['horizon']}")
    if notebook == "06_recommendations" and v["n_fresh"] > v["k"]:
        raise ParameterError(f"n_fresh must be at most k = {v['k']} (slots in a list), got {v['n_fresh']}")


def validate(notebook: str, values: dict) -> dict:
    """``values`` checked against ``RULES[notebook]``: the values, paths made absolute.

    Raises :class:`ParameterError` naming the first bad parameter, :class:`UnknownParameterError`
    for names the notebook does not define.

    Notebooks 00-09 (every notebook's parameter check cell).
    """
    rules = RULES[notebook]
    unknown = sorted(set(values) - set(rules))
    if unknown:
        raise UnknownParameterError(f"{notebook}.ipynb has no parameter(s) {unknown}; its parameters are {sorted(rules)}")
    out = {name: rules[name](name, value) for name, value in values.items()}
    if set(out) == set(rules):
        _cross_checks(notebook, out)
    return out

# ---- the check cell ------------------------------------------------------------------------------
#: papermill's injected cell starts with this comment line.
_INJECTED_HEADER = "# Parameters"

_IPYTHON_NAMES = {"In", "Out", "exit", "quit", "get_ipython", "open"}


def _assigned(source: str) -> list[str]:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    return [t.id for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)]


def _given_names(ns: dict) -> list[str]:
    """Names passed to the notebook from outside: in a kernel, those assigned by papermill's
    injected cell when it is the cell run just before the check; in a plain namespace (a script, a
    test), every name that is not IPython's own, a module, a function or a class."""
    history = ns.get("In")
    if isinstance(history, list):
        prev = history[-2] if len(history) >= 2 else ""
        return _assigned(prev) if prev.lstrip().startswith(_INJECTED_HEADER) else []
    import inspect

    return [n for n, v in ns.items() if not n.startswith("_") and n not in _IPYTHON_NAMES
            and not (inspect.ismodule(v) or inspect.isclass(v) or callable(v))]


def check_parameters(ns: dict, notebook: str) -> None:
    """The check cell of every notebook (``check_parameters(globals(), "03_forecasting")``).

    Stops with :class:`UnknownParameterError` (the runner's message) when papermill passed a name
    the notebook does not define, with :class:`ParameterError` naming the parameter when a value is
    invalid, and replaces the path parameters in ``ns`` by absolute paths (relative ones start at
    the repository root). Names papermill adds itself (``PAPERMILL_INPUT_PATH`` ...) are allowed.

    Notebooks 00-09 (every notebook).
    """
    rules = RULES[notebook]
    unknown = sorted({n for n in _given_names(ns) if n not in rules and not n.startswith("PAPERMILL_")})
    if unknown:
        raise UnknownParameterError(f"{notebook}.ipynb has no parameter(s) {unknown}; its parameters are {sorted(rules)}")
    missing = [n for n in rules if n not in ns]
    if missing:
        raise NameError(f"parameter(s) {missing} are not defined: run the parameters cell of {notebook} first")
    ns.update(validate(notebook, {n: ns[n] for n in rules}))
