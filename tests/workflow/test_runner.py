import os
import sys
from pathlib import Path

import nbformat
import pytest

from decaylib.workflow.params import UnknownParameterError
from decaylib.workflow.runner import (
    build_index,
    check_parameters,
    execute_notebook,
    list_notebooks,
    metrics_summary,
)


def _nb(tmp_path, body="y = x * 2\nprint(y)"):
    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("x = 1  # a knob")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "01_demo.ipynb"
    nbformat.write(nb, path)
    return path


def test_unknown_parameter_is_rejected(tmp_path):
    path = _nb(tmp_path)
    check_parameters(path, {"x": 3})
    with pytest.raises(UnknownParameterError, match=r"no parameter\(s\) \['xx'\]; its parameters are \['x'\]"):
        check_parameters(path, {"xx": 3})


@pytest.mark.slow
@pytest.mark.notebook
def test_execute_writes_output_atomically(tmp_path):
    path = _nb(tmp_path)
    out = tmp_path / "out" / "01_demo.ipynb"
    nb = execute_notebook(path, out, {"x": 21})
    assert out.exists()
    assert "42" in "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    bad = _nb(tmp_path, body="raise ValueError('clear message')")
    out2 = tmp_path / "out" / "bad.ipynb"
    with pytest.raises(Exception, match="clear message"):
        execute_notebook(bad, out2, {"x": 1})
    assert not out2.exists() and (tmp_path / "out" / "bad.failed.ipynb").exists()


def test_list_notebooks_and_index(tmp_path):
    _nb(tmp_path)
    assert [p.name for p in list_notebooks(tmp_path)] == ["01_demo.ipynb"]
    with pytest.raises(ValueError, match="no notebook matches"):
        list_notebooks(tmp_path, only=["09"])
    (tmp_path / "01_demo.html").write_text("<html></html>")
    index = build_index(tmp_path).read_text()
    assert 'href="01_demo.html"' in index
    assert "no metrics" in metrics_summary(tmp_path)


def test_parameter_lines_papermill_cannot_parse_are_errors(tmp_path):
    """papermill skips `x = 1  # K = 5` with only a log line; the parameter would then be ignored."""
    from decaylib.workflow.runner import notebook_parameters

    nb = nbformat.v4.new_notebook()
    p = nbformat.v4.new_code_cell("x = 1  # a knob\nk = 10  # metrics at K = 5 and 10")
    p.metadata["tags"] = ["parameters"]
    nb.cells = [p]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "01_demo.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match=r"cannot parse the parameter line\(s\) k \(line 2\)"):
        notebook_parameters(path)


def test_every_shipped_notebook_has_parseable_parameters():
    from decaylib.workflow.runner import notebook_parameters
    from tests.conftest import NOTEBOOKS

    for nb in list_notebooks(NOTEBOOKS):
        assert "data_dir" in notebook_parameters(nb), nb.name


def test_report_html_drops_tutorial_cells_code_and_stderr(tmp_path):
    from decaylib.workflow.runner import to_html

    nb = nbformat.v4.new_notebook()
    intro = nbformat.v4.new_markdown_cell("# 07 · Report\n**You will learn** things")
    intro.metadata["tags"] = ["tutorial"]
    code = nbformat.v4.new_code_cell("secret_code_line = 1")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="User 17: 3 categories\n"),
                    nbformat.v4.new_output("stream", name="stderr", text="DataWarning: noisy\n")]
    tail = nbformat.v4.new_markdown_cell("## Summary\n## Exercises\n1. try")
    tail.metadata["tags"] = ["tutorial"]
    nb.cells = [intro, nbformat.v4.new_markdown_cell("## Advice per category"), code, tail]
    path = tmp_path / "r.ipynb"
    nbformat.write(nb, path)
    report = to_html(path, tmp_path / "r.html", no_input=True).read_text()
    assert "Advice per category" in report and "User 17: 3 categories" in report
    for gone in ("You will learn", "Exercises", "secret_code_line", "DataWarning"):
        assert gone not in report, gone
    full = to_html(path, tmp_path / "full.html").read_text()  # the tutorial's own HTML keeps everything
    assert "You will learn" in full and "secret_code_line" in full


def external_refs(page: str) -> list[str]:
    """The ``src`` / ``href`` of every ``<script>`` and ``<link>`` of ``page`` that points at the network."""
    from html.parser import HTMLParser

    found = []

    class Refs(HTMLParser):
        def handle_starttag(self, tag, attrs):
            if tag in ("script", "link"):
                found.extend(v for k, v in attrs if k in ("src", "href") and v and v.strip().lower().startswith(
                    ("http://", "https://", "//")))

    Refs().feed(page)
    return found


def local_scripts(page: str, page_path: Path) -> list[Path]:
    """The files the ``<script src>`` of ``page`` load (relative URLs resolved from ``page_path``)."""
    import re

    return [(page_path.parent / src.split("?")[0]).resolve() for src in re.findall(r'<script[^>]*\ssrc="([^"]+)"', page)]


#: What a kernel writes into a page that the notebook did not print.
KERNEL_NOISE_TEXT = ("KeyboardInterrupt caught in kernel",)


def test_report_html_is_self_contained_and_free_of_kernel_noise(tmp_path):
    from decaylib.teaching.book import MATHJAX_DIR
    from decaylib.workflow.runner import to_html

    nb = nbformat.v4.new_notebook()
    math = nbformat.v4.new_markdown_cell(r"## Decay" "\n" r"Half-life: $\ln 2/\lambda$.")
    code = nbformat.v4.new_code_cell("print('advice')")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                           text="KeyboardInterrupt caught in kernel\nUser 17: 3 categories\n"),
                    nbformat.v4.new_output("stream", name="stdout", text="KeyboardInterrupt caught in kernel.\n"),
                    nbformat.v4.new_output("stream", name="stderr", text="KeyboardInterrupt caught in kernel\n")]
    nb.cells = [math, code]
    path = tmp_path / "r.ipynb"
    nbformat.write(nb, path)
    build = tmp_path / "build"
    page_path = build / "reports" / "shop" / "user_C1.html"
    for no_input in (True, False):
        page = to_html(path, page_path, no_input=no_input, static_dir=build).read_text()
        assert external_refs(page) == []
        for noise in KERNEL_NOISE_TEXT:
            assert noise not in page
        assert "User 17: 3 categories" in page and r"$\ln 2/\lambda$" in page
        # the formula is typeset by the book's local MathJax, found from the page's folder
        scripts = local_scripts(page, page_path)
        assert scripts == [(build / MATHJAX_DIR / "MathJax.js").resolve()] and scripts[0].is_file()
    # the default: MathJax beside the page
    alone = to_html(path, tmp_path / "alone" / "r.html", no_input=True).read_text()
    assert local_scripts(alone, tmp_path / "alone" / "r.html")[0].is_file() and external_refs(alone) == []
    # the page as nbconvert makes it by default would fail these checks (the test can fail)
    from nbconvert import HTMLExporter

    assert external_refs(HTMLExporter().from_filename(str(path))[0])


def test_safe_file_part():
    from decaylib.workflow.runner import safe_file_part

    assert safe_file_part("C12347") == "C12347" and safe_file_part(17) == "17"
    odd = [safe_file_part(u) for u in ("a/b", "a b", "a_b", "../x", "", "é")]
    assert all("/" not in o and " " not in o and not o.startswith(".") and o for o in odd)
    assert len(set(odd)) == len(odd)  # "a/b", "a b" and "a_b" stay apart


def test_report_rejects_bad_arguments_before_reading_anything(tmp_path, capsys, monkeypatch):
    from decaylib.workflow.runner import main

    base = ["report", "--build", str(tmp_path / "build"), "--report-data-dir", str(tmp_path / "data")]
    with pytest.raises(SystemExit, match="mapping file was given without an events file"):
        main([*base, "--user-id", "C1", "--mapping", str(tmp_path / "m.json")])
    with pytest.raises(SystemExit, match=r"events file '.*nope.csv' is not a file"):
        main([*base, "--user-id", "C1", "--events", str(tmp_path / "nope.csv")])
    assert main([*base, "--user-id", "C1\x07"]) == 1
    assert "contains control characters" in capsys.readouterr().err
    monkeypatch.setenv("DECAY_REPORT_IDS", "")
    with pytest.raises(SystemExit, match="give at least one user id"):
        main([*base, "--from-env"])
    assert not (tmp_path / "build").exists() and not (tmp_path / "data").exists()


def test_makefile_passes_ids_through_the_environment():
    """`make report` never puts USER_ID / EVENTS / MAPPING into the shell command line."""
    import shutil
    import subprocess

    from tests.conftest import ROOT

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    out = subprocess.run(["make", "-n", "report", "USER_ID=x'\"; touch /tmp/pwned_r8 #", "EVENTS=/tmp/a b.csv"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "pwned_r8" not in out.stdout and "a b.csv" not in out.stdout
    assert "decaylib.workflow.runner report --build build --from-env" in out.stdout


@pytest.mark.slow
@pytest.mark.parametrize("bad_id", ["22;touch {m}", "`touch {m}`", "$(touch {m})", "$(shell touch {m})", "22 $$(touch {m})"])
def test_make_report_runs_no_command_hidden_in_an_id(bad_id, tmp_path):
    """The real `make report` (not -n): the id is refused as invalid and nothing it hides runs."""
    import shutil
    import subprocess

    from tests.conftest import ROOT

    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    marker = tmp_path / "pwned"
    stamp = tmp_path / "stamp"  # stands in for the set-up virtual environment: make must not reinstall
    stamp.touch()
    out = subprocess.run(["make", "--no-print-directory", "report", f"USER_ID={bad_id.format(m=marker)}",
                          f"BIN={Path(sys.executable).parent}", f"STAMP={stamp}"],
                         cwd=ROOT, capture_output=True, text=True, env={**os.environ, "MAKEFLAGS": ""}, timeout=120)
    assert not marker.exists(), out.stdout + out.stderr
    assert out.returncode != 0
    assert "[report]" in out.stderr  # the runner's own one-line refusal, not a shell error


def test_index_lists_reports_in_subfolders(tmp_path):
    (tmp_path / "reports" / "shop").mkdir(parents=True)
    (tmp_path / "reports" / "user_17.html").write_text("<html></html>")
    (tmp_path / "reports" / "shop" / "user_C1.html").write_text("<html></html>")
    index = build_index(tmp_path).read_text()
    assert 'href="reports/user_17.html"' in index and 'href="reports/shop/user_C1.html"' in index


def test_run_in_order_respects_what_each_notebook_reads():
    import threading
    import time as _time

    from decaylib.workflow.runner import NOTEBOOK_NEEDS, notebook_key, run_in_order

    names = ["00_a", "01_b", "02_c", "03_d", "03b_e", "04_f", "05_g", "06_h", "07_i", "08_j", "09_k"]
    lock, events, live, peak = threading.Lock(), [], [0], [0]

    def run_one(path):
        with lock:
            events.append(("start", notebook_key(path)))
            live[0] += 1
            peak[0] = max(peak[0], live[0])
        _time.sleep(0.02)
        with lock:
            live[0] -= 1
            events.append(("end", notebook_key(path)))

    run_in_order([Path(n + ".ipynb") for n in names], run_one, jobs=2)
    assert peak[0] == 2  # side by side, never more than jobs
    ends = {k: i for i, (what, k) in enumerate(events) if what == "end"}
    starts = {k: i for i, (what, k) in enumerate(events) if what == "start"}
    assert set(starts) == {notebook_key(n) for n in names}
    for k, needs in NOTEBOOK_NEEDS.items():
        for need in needs:
            assert ends[need] < starts[k], (k, need, events)
    # one at a time is the plain reading order
    events.clear()
    run_in_order([Path(n + ".ipynb") for n in names], run_one, jobs=1)
    assert [k for what, k in events if what == "start"] == [notebook_key(n) for n in names]


def test_run_in_order_stops_at_the_first_failure():
    from decaylib.workflow.runner import run_in_order

    started = []

    def run_one(path):
        started.append(path.name)
        if path.name.startswith("02"):
            raise RuntimeError("02 broke")

    with pytest.raises(RuntimeError, match="02 broke"):
        run_in_order([Path(n) for n in ("01_a.ipynb", "02_b.ipynb", "03_c.ipynb", "04_d.ipynb")], run_one, jobs=1)
    assert started == ["01_a.ipynb", "02_b.ipynb"]  # nothing starts after a failure
    with pytest.raises(ValueError, match="jobs"):
        run_in_order([], run_one, jobs=0)
