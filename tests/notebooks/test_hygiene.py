"""The committed notebooks read cleanly: no error outputs, no stderr blocks, no stray object reprs.

A learner sees the committed outputs first (in JupyterLab and in the HTML book): a
``<matplotlib.legend.Legend at 0x7f...>`` line, a ``PosixPath('...')`` or a pink block of progress
bars and warnings is noise that hides the result. Each check names the notebook, the cell and the
offending text.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
ALL = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]*.ipynb") if not p.name.endswith(".failed.ipynb"))

#: an object's default repr (``<module.Class object at 0x...>``, ``<Axes: ...>``), a path repr
STRAY = re.compile(r"<[^<>\n]* at 0x[0-9a-fA-F]+>|<Axes[:\s][^>\n]*>|<Figure size [^>\n]*>|\b(?:Posix|Windows)Path\(")
#: a figure's own text fallback, noise only where the figure itself is missing
FIGURE_TEXT = re.compile(r"^<Figure size [^>\n]*>$")


def _texts(output) -> list[str]:
    if output.get("output_type") == "stream":
        return [output.get("text", "")]
    data = output.get("data", {})
    return [data["text/plain"]] if "text/plain" in data else []  # a text rendering shows it, even beside HTML


def _problems(path: Path) -> list[str]:
    nb = nbformat.read(path, as_version=4)
    found = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            where = f"{path.name} cell {i}"
            if out.get("output_type") == "error":
                found.append(f"{where}: error output {out.get('ename')}: {out.get('evalue', '')[:80]}")
            elif out.get("output_type") == "stream" and out.get("name") == "stderr":
                found.append(f"{where}: stderr output {out.get('text', '')[:120]!r}")
            for text in _texts(out):
                if "image/png" in out.get("data", {}) and FIGURE_TEXT.match(text.strip()):
                    continue
                m = STRAY.search(text)
                if m:
                    found.append(f"{where}: stray repr {m.group(0)!r}")
    return found


def test_there_are_notebooks():
    assert len(ALL) >= 9


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.stem)
def test_committed_notebook_has_no_noise(path):
    problems = _problems(path)
    assert not problems, "\n".join(problems)


def test_the_check_finds_noise(tmp_path):
    """The detector itself: each kind of noise is reported, clean output is not."""
    nb = nbformat.v4.new_notebook()
    cells = [nbformat.v4.new_code_cell("x") for _ in range(5)]
    cells[0].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "<matplotlib.legend.Legend at 0x7f3a2c>"})]
    cells[1].outputs = [nbformat.v4.new_output("stream", name="stdout", text="wrote PosixPath('data/x.parquet')\n")]
    cells[2].outputs = [nbformat.v4.new_output("stream", name="stderr", text="100%|##########| 5/5\n")]
    cells[3].outputs = [nbformat.v4.new_output("stream", name="stdout", text="λ = 0.12 (90% interval 0.10-0.14)\n")]
    cells[4].outputs = [nbformat.v4.new_output("display_data", {"text/html": "<table></table>",
                                                                "text/plain": "<pandas.io.formats.style.Styler at 0x7f78>"})]
    nb.cells = cells
    p = tmp_path / "01_x.ipynb"
    nbformat.write(nb, p)
    problems = _problems(p)
    assert len(problems) == 4 and "Legend" in problems[0] and "PosixPath" in problems[1] and "stderr" in problems[2]
    assert "Styler" in problems[3]
