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


def pytest_collection_modifyitems(config, items):
    """Every test that executes a notebook is ``notebook`` and ``slow``; so is everything under
    ``tests/notebooks/``. ``pytest -m "not slow"`` is the quick inner loop (under a minute)."""
    folder = NOTEBOOKS.parent / "tests" / "notebooks"
    for item in items:
        if Path(str(item.fspath)).is_relative_to(folder):
            item.add_marker(pytest.mark.notebook)
        if item.get_closest_marker("notebook") is not None:
            item.add_marker(pytest.mark.slow)
