"""The student release (``make student``, :mod:`decaylib.teaching.student`).

Built once per module into a temporary folder through the command line. Asserted: no solution
marker and no line of any solution block is left in any released notebook, no outputs, no
``NBVAL`` markers, no ``solutions/`` folder or link to it, every exercise keeps its check; and two
cheap released notebooks (00 and 09, small parameters) run top to bottom without errors, with every
check saying "not answered yet".
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys

import nbformat
import pytest

from decaylib.teaching.student import MD_BEGIN, MD_END, solution_blocks
from tests.conftest import NOTEBOOKS, ROOT

SOURCES = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb") if not p.name.endswith(".failed.ipynb"))
_CHECK_CALL = re.compile(r"^\s*check_(?!parameters\b)\w+\(", re.M)  # exercise checks, not check_parameters


def _trivial(line: str) -> bool:
    """Blank or punctuation-only lines (``)``, ``]``, ``else:``) that may appear anywhere."""
    s = line.strip()
    return len(s) <= 3 or not re.search(r"[A-Za-z0-9_]{2}", s) or s in {"else:", "try:", "finally:", "pass"}


def _solution_lines(nb) -> set[str]:
    lines = set()
    for cell in nb.cells:
        if cell.cell_type == "code":
            for block in solution_blocks(cell.source):
                lines |= {ln.strip() for ln in block if not _trivial(ln)}
        elif cell.cell_type == "markdown":
            for block in re.findall(re.escape(MD_BEGIN) + r"(.*?)" + re.escape(MD_END), cell.source, flags=re.S):
                lines |= {ln.strip() for ln in block.splitlines() if not _trivial(ln)}
    return lines


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    out = tmp_path_factory.mktemp("student") / "student"
    res = subprocess.run([sys.executable, "-m", "decaylib.teaching.student", "--notebooks", str(NOTEBOOKS), "--out", str(out)],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return out


@pytest.mark.slow
def test_every_notebook_is_released_and_nothing_else(release):
    released = sorted((release / "notebooks").glob("*.ipynb"))
    assert [p.name for p in released] == [p.name for p in SOURCES]
    assert not [p for p in release.rglob("*") if p.name == "solutions" or p.suffix == ".md" and p.parent.name == "solutions"]
    assert not list(release.rglob("*.failed.ipynb")) and not list(release.rglob(".*.ipynb"))
    assert (release / "README.md").exists()


@pytest.mark.slow
def test_no_solution_is_left(release):
    n_blocks = 0
    for src in SOURCES:
        orig = nbformat.read(src, as_version=4)
        n_blocks += sum(len(solution_blocks(c.source)) for c in orig.cells if c.cell_type == "code")
        secret = _solution_lines(orig)
        path = release / "notebooks" / src.name
        text = path.read_text(encoding="utf-8")
        assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text, src.name
        assert "NBVAL" not in text, src.name
        assert not re.search(r"\]\((?:\./)?solutions/", text), f"{src.name} links to the solutions folder"
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            leaked = [ln for ln in cell.source.splitlines() if ln.strip() in secret]
            assert not leaked, (src.name, leaked)
    assert n_blocks >= 10, "the notebooks should have checked exercises"


@pytest.mark.slow
def test_no_outputs_and_every_cell_still_parses(release):
    for path in sorted((release / "notebooks").glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert "papermill" not in nb.metadata, path.name
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            assert cell.outputs == [] and cell.execution_count is None, path.name
            if not cell.source.lstrip().startswith(("%", "!")):
                ast.parse(cell.source)  # a starter never leaves a broken cell


@pytest.mark.slow
def test_each_exercise_keeps_its_starter_and_check(release):
    for src in SOURCES:
        orig = nbformat.read(src, as_version=4)
        rel = nbformat.read(release / "notebooks" / src.name, as_version=4)
        assert len(orig.cells) == len(rel.cells), src.name
        for a, b in zip(orig.cells, rel.cells):
            if a.cell_type != "code" or not solution_blocks(a.source):
                continue
            assert b.source.count("# YOUR CODE HERE") == len(solution_blocks(a.source)), src.name
            assert len(_CHECK_CALL.findall(b.source)) == len(_CHECK_CALL.findall(a.source)), src.name
            assert re.search(r"^\s*\w+ = None$", b.source, re.M), (src.name, b.source)


def _stream(nb, name="stdout"):
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == name)


@pytest.mark.slow
@pytest.mark.notebook
@pytest.mark.parametrize("name, params", [
    ("00_start_here", {}),
    ("09_scaling_up", {"n_events": 40_000, "ddp_processes": 0, "spark_users": 0}),
])
def test_a_released_notebook_runs_and_waits_for_answers(release, tmp_path, monkeypatch, name, params):
    """Run from the release folder (it finds the repository's data through decaylib.workflow.params.project_path):
    no error, and each check says "not answered yet" (strict checks off, as in a classroom)."""
    from decaylib.workflow.runner import execute_notebook

    monkeypatch.delenv("DECAYLIB_STRICT_CHECKS", raising=False)
    path = release / "notebooks" / f"{name}.ipynb"
    defaults = nbformat.read(path, as_version=4)
    n_checks = sum(len(_CHECK_CALL.findall(c.source)) for c in defaults.cells if c.cell_type == "code")
    # only the knobs this notebook has (execute_notebook would refuse an unknown name)
    known = {k: v for k, v in params.items() if f"\n{k} =" in "\n" + next(
        c.source for c in defaults.cells if "parameters" in c.metadata.get("tags", []))}
    nb = execute_notebook(path, tmp_path / f"{name}.ipynb", {"data_dir": str(tmp_path / "data"), **known},
                          cwd=release / "notebooks")
    outs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outs if o.get("output_type") == "error"]
    text = _stream(nb)
    assert n_checks >= 1
    assert text.count("… not answered yet") == n_checks, text[-2000:]
    assert "✓ correct" not in text and "✗ not yet" not in text
