"""Shared fixtures: small simulations reused across tests (session-scoped, so built once)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# Exercise checks raise instead of printing "not yet" (decaylib.teaching.exercises): the notebooks executed by the
# tests run their solutions, and a solution that stops passing its check fails the test.
os.environ["DECAYLIB_STRICT_CHECKS"] = "1"

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"


@pytest.fixture(scope="session")
def small_sim():
    from decaylib.data.synth import simulate

    return simulate(n_users=60, n_categories=10, n_days=60, seed=7)


@pytest.fixture(scope="session")
def small_pre(small_sim):
    from decaylib.data.preprocess import preprocess

    cfg = small_sim.config
    return preprocess(small_sim.events, start_date=cfg.start_date, end_day=cfg.n_days - 1)


#: The longest test files, started first so that ``make test``'s workers (pytest-xdist, one file each)
#: end together instead of one waiting on the last long file.
LONGEST_FIRST = ("notebooks/test_real_notebooks.py", "notebooks/test_nbval.py", "notebooks/test_notebooks.py",
                 "data/test_engine.py", "data/test_spark_cluster.py", "test_lineage.py", "workflow/test_params.py", "forecast/test_distributed.py")


def pytest_collection_modifyitems(config, items):
    """Every test that executes a notebook is ``notebook`` and ``slow``; so is everything under
    ``tests/notebooks/``. ``pytest -m "not slow"`` is the quick inner loop (under a minute).
    The longest files go first (:data:`LONGEST_FIRST`); every file keeps its own order."""
    folder = NOTEBOOKS.parent / "tests" / "notebooks"
    rank = {str(NOTEBOOKS.parent / "tests" / f): i for i, f in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(str(item.fspath), len(rank)))
    for item in items:
        if Path(str(item.fspath)).is_relative_to(folder):
            item.add_marker(pytest.mark.notebook)
        if item.get_closest_marker("notebook") is not None:
            item.add_marker(pytest.mark.slow)
