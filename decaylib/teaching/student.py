"""The student release: the notebooks without solutions, with their starter cells and checks.

``python -m decaylib.teaching.student --notebooks notebooks --out build/student`` (``make student``) writes
``build/student/notebooks/NN_name.ipynb`` for every tutorial notebook:

* every solution block of a code cell, the lines between ``### BEGIN SOLUTION`` and
  ``### END SOLUTION`` (nbgrader's markers), becomes ``# YOUR CODE HERE`` plus ``name = None`` for
  each name the block assigns, so the notebook still runs top to bottom and the check after it
  says "not answered yet";
* prose answers in markdown between ``<!-- BEGIN SOLUTION -->`` and ``<!-- END SOLUTION -->`` are
  removed;
* outputs and execution counts are cleared, ``# NBVAL_...`` test markers are removed;
* links to ``solutions/*.md`` are replaced by a note (the solutions folder is not released).

The release sits next to the repository's data: the notebooks find ``data/`` through
:func:`decaylib.workflow.params.project_path`, like the originals. Every file is written atomically.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import tempfile
from pathlib import Path

import nbformat

from decaylib.artifacts import atomic_write
from decaylib.teaching.book import list_notebooks

__all__ = ['BEGIN', 'END', 'solution_blocks', 'strip_solutions', 'student_notebook', 'make_release']

BEGIN = "### BEGIN SOLUTION"

END = "### END SOLUTION"

MD_BEGIN = "<!-- BEGIN SOLUTION -->"

MD_END = "<!-- END SOLUTION -->"

_NBVAL = re.compile(r"^\s*#\s*NBVAL_\w+\s*$")

_SOLUTION_LINK = re.compile(r"(Solutions?:\s*)?\[[^\]]*\]\((?:\./)?solutions/[^)]*\)")


def solution_blocks(source: str) -> list[list[str]]:
    """The lines of every solution block in a code cell's source (markers excluded).

    Notebooks 00-09 (every notebook's exercises).
    """
    blocks, current = [], None
    for line in source.splitlines():
        marker = line.strip()
        if marker == BEGIN:
            if current is not None:
                raise ValueError(f"nested {BEGIN!r}")
            current = []
        elif marker == END:
            if current is None:
                raise ValueError(f"{END!r} without {BEGIN!r}")
            blocks.append(current)
            current = None
        elif current is not None:
            current.append(line)
    if current is not None:
        raise ValueError(f"{BEGIN!r} without {END!r}")
    return blocks


def _assigned(lines: list[str]) -> list[str]:
    """Names a block assigns at its top level, in order (``a = ...``, ``a, b = ...``, ``a += ...``)."""
    import textwrap

    tree = ast.parse(textwrap.dedent("\n".join(lines)))
    names: list[str] = []

    def add(target):
        if isinstance(target, ast.Name) and target.id not in names:
            names.append(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for t in target.elts:
                add(t)

    for node in tree.body:
        if isinstance(node, ast.Assign):
            for t in node.targets:
                add(t)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
            add(node.target)
    return names


def strip_solutions(source: str) -> str:
    """A code cell's source with each solution block replaced by its starter.

    Notebooks 00-09 (every notebook's exercises).
    """
    out, block, indent = [], None, ""
    for line in source.splitlines():
        marker = line.strip()
        if marker == BEGIN:
            block, indent = [], line[: len(line) - len(line.lstrip())]
        elif marker == END:
            names = _assigned(block)
            out.append(f"{indent}# YOUR CODE HERE" + (f": set {', '.join(names)}" if names else ""))
            out.extend(f"{indent}{n} = None" for n in names)
            block = None
        elif block is not None:
            block.append(line)
        elif not _NBVAL.match(line):
            out.append(line)
    if block is not None:
        raise ValueError(f"{BEGIN!r} without {END!r}")
    return "\n".join(out)


def _strip_markdown(source: str) -> str:
    text = re.sub(re.escape(MD_BEGIN) + r".*?" + re.escape(MD_END), "", source, flags=re.S)
    return _SOLUTION_LINK.sub("Solutions: in the teacher's edition", text)


def student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of ``nb`` for students (see the module docstring).

    Notebooks 00-09 (every notebook's exercises).
    """
    out = nbformat.from_dict(nb)
    for cell in out.cells:
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source)
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("papermill", None)
            cell.metadata.pop("execution", None)
        elif cell.cell_type == "markdown":
            cell.source = _strip_markdown(cell.source)
    out.metadata.pop("papermill", None)
    return out


def make_release(notebooks_dir, out_dir) -> list[Path]:
    """Write the student edition of every tutorial notebook to ``out_dir/notebooks/``; return the paths.

    Notebooks 00-09 (every notebook's exercises).
    """

    notebooks_dir, out_dir = Path(notebooks_dir), Path(out_dir)
    nbs = list_notebooks(notebooks_dir)
    if not nbs:
        raise ValueError(f"no tutorial notebooks (NN_name.ipynb) in {notebooks_dir}")
    # Built in a temporary folder and swapped in whole: a failure leaves the previous release intact.
    target = out_dir / "notebooks"
    out_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".notebooks.", dir=out_dir))
    try:
        for path in nbs:
            nb = student_notebook(nbformat.read(path, as_version=4))
            nbformat.write(nb, str(work / path.name))
        old = out_dir / ".notebooks.old"
        if old.exists():
            shutil.rmtree(old)
        if target.exists():
            os.replace(target, old)
        os.replace(work, target)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    written = [target / p.name for p in nbs]
    with atomic_write(out_dir / "README.md") as tmp:
        Path(tmp).write_text(
            "# Interest decay tutorial: student edition\n\n"
            "The notebooks in `notebooks/` are the tutorial without the exercises' solutions. Each exercise "
            "has a starter cell (`# YOUR CODE HERE`, then `name = None`) and a check that says `✓ correct`, "
            "or what is wrong, without giving the answer. Run them in order from JupyterLab, in the "
            "repository's environment (`make lab`).\n", encoding="utf-8")
    return written


def main(argv=None) -> int:
    """Command line (``python -m decaylib.teaching.student``, ``make student``): write the student edition to
    ``--out`` (see :func:`make_release`) and print how many notebooks it holds; returns 0.

    Notebooks 00-09 (every notebook's exercises).
    """
    ap = argparse.ArgumentParser(description="Write the student edition of the notebooks (solutions stripped).")
    ap.add_argument("--notebooks", default="notebooks")
    ap.add_argument("--out", default="build/student")
    args = ap.parse_args(argv)
    paths = make_release(args.notebooks, args.out)
    print(f"[student] {len(paths)} notebooks in {Path(args.out) / 'notebooks'}")
    return 0

if __name__ == "__main__":
    raise SystemExit(main())
