"""nbval: re-run the committed notebooks (with their default parameters) in --nbval-lax mode.

Cells marked ``# NBVAL_CHECK_OUTPUT`` must reproduce their committed output exactly; every other
cell only has to run without error.  nbval runs in a subprocess so that its kernel and working
directory do not mix with the papermill tests.

Four notebooks are left to ``tests/notebooks/test_notebooks.py``, which runs them with small parameters: at
their defaults 03b trains five networks and a cross-validation (about a minute), 07 compares four forecast
methods on four earlier cutoffs twice and replays its advice on the shipped Online Retail too, 08 loads the complete
two-year Online Retail log (about a million invoice lines) and fits every repeat-buying model on it twice,
and 09 simulates a 2-million-event log, starts a JVM for Spark and two DDP processes. Their committed outputs are still
checked for errors, stderr and stray reprs by ``tests/notebooks/test_hygiene.py``; ``make run``
executes them at their defaults.
"""

import os
import subprocess
import sys

import pytest

from decaylib.workflow.runner import list_notebooks
from tests.conftest import NOTEBOOKS, ROOT

pytestmark = pytest.mark.notebook


#: run by tests/notebooks/test_notebooks.py with small parameters instead (see the module docstring)
HEAVY = {"03b_forecasting_advanced.ipynb", "07_user_report.ipynb", "08_real_data.ipynb", "09_scaling_up.ipynb"}


def test_committed_notebooks_pass_nbval():
    nbs = [str(p.relative_to(ROOT)) for p in list_notebooks(NOTEBOOKS) if p.name not in HEAVY]
    assert nbs, "no notebooks found"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
         "--nbval-cell-timeout=600", *nbs],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "DECAYLIB_HEADLESS": "1"},
    )
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
    assert proc.returncode == 0, f"nbval failed:\n{tail}"
