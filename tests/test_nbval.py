"""nbval: re-run the committed notebooks (with their default parameters) in --nbval-lax mode.

Cells marked ``# NBVAL_CHECK_OUTPUT`` must reproduce their committed output exactly; every other
cell only has to run without error.  nbval runs in a subprocess so that its kernel and working
directory do not mix with the papermill tests.
"""

import os
import subprocess
import sys

import pytest

from decaylib.runner import list_notebooks
from tests.conftest import NOTEBOOKS, ROOT

pytestmark = pytest.mark.notebook


def test_committed_notebooks_pass_nbval():
    nbs = [str(p.relative_to(ROOT)) for p in list_notebooks(NOTEBOOKS)]
    assert nbs, "no notebooks found"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax", "--nbval-current-env",
         "--nbval-cell-timeout=600", *nbs],
        cwd=ROOT, capture_output=True, text=True, env={**os.environ, "DECAYLIB_HEADLESS": "1"},
    )
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
    assert proc.returncode == 0, f"nbval failed:\n{tail}"
