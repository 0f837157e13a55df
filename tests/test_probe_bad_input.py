"""The bad-input rows of issue 21's probe table (benchmarks/probe_bad_input.py), one test per probe."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "probe_bad_input.py"
_spec = importlib.util.spec_from_file_location("probe_bad_input", _PATH)
probes = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(probes)


@pytest.mark.parametrize("name", list(probes.PROBES))
def test_bad_input_probe(name):
    probes.PROBES[name]()
