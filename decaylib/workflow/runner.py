"""Execute the tutorial's notebooks headlessly with papermill, safely.

papermill silently ignores a parameter that the notebook's ``parameters`` cell does not define
(it only logs a warning), so a typo such as ``n_user=50`` would run the defaults and look fine.
:func:`execute_notebook` rejects unknown names before anything runs.

Command line (used by the Makefile)::

    python -m decaylib.workflow.runner run [--build build] [--notebooks notebooks] [--only 01 02] [--jobs 2]
    python -m decaylib.workflow.runner report --user-id 17 42 [--build build] [--report-data-dir DIR]
    python -m decaylib.workflow.runner report --user-id C12347 --events shop.csv [--mapping shop.json]
    python -m decaylib.workflow.runner report --from-env   # ids, events, mapping in $DECAY_REPORT_IDS, _EVENTS, _MAPPING
    python -m decaylib.workflow.runner metrics [--data-dir data/generated]

``report`` checks every id against the data before it writes anything (an unknown id, or one that
cleaning removed as a bot, is one line on stderr and exit status 1). On your own events the ids
are your own (strings or ints as in the file) and the reports go to
``build/reports/<events file name>/user_<id>.html``. ``--from-env`` is what ``make report`` uses,
so that ids and paths never pass through a shell command line.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import html
import json
import os
import re
import sys
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

from decaylib.artifacts import atomic_write, metrics_lineage, read_manifest
from decaylib.checks import DataWarning, check_int
from decaylib.recommend.advice import UnknownUserError, resolve_user
from decaylib.teaching.book import build_book, copy_mathjax, mathjax_head, write_index
from decaylib.teaching.book import list_notebooks as book_notebooks
from decaylib.workflow.params import (
    RULES,
    UnknownParameterError,
    project_path,
    validate,
)
from decaylib.workflow.pipeline import open_source

__all__ = ['notebook_parameters', 'check_parameters', 'execute_notebook', 'to_html', 'list_notebooks', 'build_index', 'metrics_summary', 'main']

REPORT_NOTEBOOK = "07_user_report.ipynb"

#: The notebooks' default ``data_dir`` (relative to the repository root, see :mod:`decaylib.workflow.params`).
DEFAULT_DATA_DIR = "data/generated"


def _assigned_names(path: Path) -> list[tuple[str, int]]:
    """``(name, line)`` of every top-level assignment in the notebook's ``parameters`` cell."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code" and "parameters" in cell.metadata.get("tags", []):
            try:
                tree = ast.parse(cell.source)
            except SyntaxError:
                return []
            return [(t.id, node.lineno) for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign))
                    for t in (node.targets if isinstance(node, ast.Assign) else [node.target]) if isinstance(t, ast.Name)]
    return []


def notebook_parameters(path) -> dict:
    """The names and defaults of a notebook's ``parameters`` cell (via papermill).

    papermill skips, with only a log line, a parameter line it cannot parse (for example an
    ``=`` inside the comment), and then silently ignores that parameter when it is passed; such
    a line is an error here, naming the line.

    Notebooks 00-09 (every notebook the runner executes).
    """
    import papermill as pm

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"notebook {path} does not exist")
    params = pm.inspect_notebook(str(path))
    if not params:
        raise ValueError(f"notebook {path.name} has no cell tagged 'parameters'")
    missed = [(n, line) for n, line in _assigned_names(path) if n not in params]
    if missed:
        raise ValueError(f"{path.name}: papermill cannot parse the parameter line(s) "
                         f"{', '.join(f'{n} (line {line})' for n, line in missed)} of its parameters cell; "
                         f"keep one 'name = value  # comment' per line without '=' in the comment")
    return {name: info.get("default") for name, info in params.items()}


def check_parameters(path, parameters: dict | None) -> None:
    """Raise :class:`UnknownParameterError` naming every parameter the notebook does not define,
    and :class:`~decaylib.workflow.params.ParameterError` naming a value a tutorial notebook refuses.

    Notebooks 00-09 (every notebook).
    """
    if not parameters:
        return
    known = notebook_parameters(path)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise UnknownParameterError(
            f"{Path(path).name} has no parameter(s) {unknown}; its parameters are {sorted(known)}"
        )

    if Path(path).stem in RULES:  # a tutorial notebook: its values too, before a kernel starts
        validate(Path(path).stem, parameters)


def execute_notebook(path, output_path, parameters: dict | None = None, cwd=None, kernel_name: str = "python3",
                     log_output: bool = False, progress_bar: bool = False, timeout: int | None = None):
    """Run ``path`` with ``parameters`` into ``output_path`` (atomically) and return the notebook.

    ``cwd`` defaults to the notebook's own folder, as in JupyterLab; relative path parameters
    (``data_dir="data/generated"``) start at the repository root wherever the kernel runs
    (:func:`decaylib.workflow.params.project_path`).

    Notebooks 03, 03b and 07.
    """
    import papermill as pm

    path = Path(path)
    check_parameters(path, parameters)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_path.with_name(f".{output_path.name}.partial.ipynb")
    os.environ["DECAYLIB_HEADLESS"] = "1"  # the kernel inherits it: widgets fall back to static figures
    try:
        nb = pm.execute_notebook(
            str(path), str(tmp), parameters=dict(parameters or {}), kernel_name=kernel_name,
            log_output=log_output, progress_bar=progress_bar, execution_timeout=timeout,
            # the kernel starts in cwd (nbclient's resources path) without papermill's os.chdir, which
            # would move the whole process: make run executes notebooks side by side in threads
            resources={"metadata": {"path": str(Path(cwd or path.parent).resolve())}},
        )
    except BaseException:
        # Keep the failed copy for debugging next to the output, never under the final name.
        if tmp.exists():
            os.replace(tmp, output_path.with_name(output_path.stem + ".failed.ipynb"))
        raise
    os.replace(tmp, output_path)
    return nb

#: Cells with this tag are tutorial material (learning goals, navigation, summary, exercises):
#: shown in the tutorial, removed from a report's HTML.
TUTORIAL_TAG = "tutorial"


#: Lines the kernel itself writes into a cell's output (an interrupt it caught, not the notebook's
#: text): never part of a rendered page.
KERNEL_NOISE = (re.compile(r"^\s*KeyboardInterrupt caught in kernel\.?\s*$"),)

#: nbconvert's ``lab`` page without anything from a CDN: no require.js, mermaid or widget manager,
#: MathJax from the local copy (:func:`decaylib.teaching.book.copy_mathjax`), as the book does.
PAGE_TEMPLATE = r"""
{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}
{{ resources.page_head }}
{%- endblock html_head_js_mathjax -%}
"""


def _without_kernel_noise(outputs: list, keep_stderr: bool) -> list:
    """A cell's outputs without the kernel's own lines (:data:`KERNEL_NOISE`; a stream left empty
    goes) and, unless ``keep_stderr``, without stderr streams (warnings, logs)."""
    out = []
    for o in outputs:
        if o.get("output_type") == "stream":
            if o.get("name") == "stderr" and not keep_stderr:
                continue
            text = o.get("text", "")
            text = "".join(line for line in (text if isinstance(text, list) else text.splitlines(keepends=True))
                           if not any(p.match(line) for p in KERNEL_NOISE))
            if not text.strip():
                continue
            o = {**o, "text": text}
        out.append(o)
    return out


def to_html(ipynb_path, html_path, no_input: bool = False, remove_tags=None, static_dir=None) -> Path:
    """Render an executed notebook to an HTML page that loads nothing from the network.

    ``no_input=True`` renders a report for an analyst: code cells are hidden, cells tagged
    ``remove_tags`` (default: :data:`TUTORIAL_TAG`) are removed with nbconvert's
    ``TagRemovePreprocessor``, and warnings printed to stderr are left out.  Either way the
    kernel's own lines (:data:`KERNEL_NOISE`, e.g. ``"KeyboardInterrupt caught in kernel"``) are
    left out, and the page (:data:`PAGE_TEMPLATE`) has no require.js, mermaid or widget manager
    from a CDN: its math is typeset by the local MathJax of the book, copied into
    ``static_dir/_static/mathjax`` (default: the page's own folder; the runner passes the build
    folder, which the book shares) and loaded with a relative URL.  Moved away from that folder,
    the page still opens offline; its formulas then show as LaTeX.

    Notebook 07 (the per-user HTML reports).
    """
    import jinja2
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    if remove_tags is None:
        remove_tags = (TUTORIAL_TAG,) if no_input else ()
    html_path = Path(html_path)
    static_dir = html_path.parent if static_dir is None else Path(static_dir)
    copy_mathjax(static_dir)
    prefix = os.path.relpath(static_dir, html_path.parent).replace(os.sep, "/")
    prefix = "" if prefix == "." else prefix + "/"
    nb = nbformat.read(str(ipynb_path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.from_dict(o) for o in _without_kernel_noise(cell.outputs, keep_stderr=not no_input)]
    exporter = HTMLExporter(template_name="lab", template_file="page.html.j2",
                            extra_loaders=[jinja2.DictLoader({"page.html.j2": PAGE_TEMPLATE})])
    exporter.exclude_input = no_input
    exporter.exclude_input_prompt = no_input
    exporter.exclude_output_prompt = no_input
    if remove_tags:
        exporter.register_preprocessor(TagRemovePreprocessor(remove_cell_tags=set(remove_tags), enabled=True), enabled=True)
    body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": html_path.stem},
                                                         "page_head": mathjax_head(prefix)})
    with atomic_write(html_path) as tmp:
        Path(tmp).write_text(body, encoding="utf-8")
    return html_path


def list_notebooks(notebooks_dir, only=None) -> list[Path]:
    """The numbered tutorial notebooks in reading order (:func:`decaylib.teaching.book.list_notebooks`),
    only those whose names start with one of ``only`` when given (``--only 01 02``).

    Notebooks 00-09 (every notebook the runner executes).
    """
    nbs = book_notebooks(notebooks_dir)
    if only:
        prefixes = tuple(str(o) for o in only)
        nbs = [p for p in nbs if p.name.startswith(prefixes)]
        if not nbs:
            raise ValueError(f"no notebook matches {list(only)} in {notebooks_dir}")
    return nbs


def build_index(build_dir) -> Path:
    """Write ``build_dir/index.html`` linking every executed notebook and report.

    Notebooks 00-09 and the reports of notebook 07 (the pages it links).
    """
    build_dir = Path(build_dir)
    items = []
    for h in sorted(build_dir.glob("*.html")):
        if h.name != "index.html":
            items.append(f'<li><a href="{html.escape(h.name)}">{html.escape(h.stem)}</a></li>')
    reports = [f'<li><a href="{html.escape(h.relative_to(build_dir).as_posix())}">'
               f'{html.escape(h.relative_to(build_dir / "reports").with_suffix("").as_posix())}</a></li>'
               for h in sorted((build_dir / "reports").rglob("*.html"))]
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Interest decay tutorial</title></head><body>"
        "<h1>User interest decay in e-commerce: executed notebooks</h1>"
        f"<h2>Notebooks</h2><ol>{''.join(items)}</ol>"
        + (f"<h2>Per-user reports</h2><ul>{''.join(reports)}</ul>" if reports else "")
        + f"<p>Built {time.strftime('%Y-%m-%d %H:%M')}.</p></body></html>"
    )

    with atomic_write(build_dir / "index.html") as tmp:
        Path(tmp).write_text(page, encoding="utf-8")
    return build_dir / "index.html"


def _flatten(d, prefix=""):
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            yield from _flatten(v, key + ".")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            yield key, v


def _lineage_note(data_dir: Path, data: dict) -> str | None:
    """Why a metrics file's numbers are not those of the sets in ``data_dir`` now, or None when they are
    (or when it recorded no lineage: a notebook on data of its own)."""
    lineage = metrics_lineage(data)
    if not lineage:
        return None
    changed = []
    for stage, fp in lineage.items():
        m = read_manifest(data_dir, stage)
        now = m.get("fingerprint") if m else None
        if now != fp:
            changed.append(f"{stage} {fp[:8]}, the folder now holds " + (f"{now[:8]}" if now else "none that verifies"))
    return "; ".join(changed) or None


def metrics_summary(data_dir, max_per_notebook: int = 12) -> str:
    """A short text summary of every ``metrics/*.json`` in ``data_dir``.

    A notebook whose numbers were computed from other sets than those in ``data_dir`` now (its
    recorded lineage, see :func:`decaylib.artifacts.write_metrics`, differs from the manifests'
    fingerprints: another simulation, another panel) is marked ``[OTHER LINEAGE ...]`` with the
    stages that differ, and a last line says which notebooks to run again.

    Notebooks 00-06 and 08 (the metrics files they write).
    """
    lines, stale = [], []
    for f in sorted((Path(data_dir) / "metrics").glob("*.json")):
        data = json.loads(f.read_text(encoding="utf-8"))
        headline = data.get("headline", data)
        pairs = list(_flatten(headline))[:max_per_notebook]
        note = _lineage_note(Path(data_dir), data)
        lines.append(f"{f.stem}:" + (f"  [OTHER LINEAGE: computed from {note}]" if note else ""))
        stale += [f.stem] if note else []
        lines.extend(f"  {k} = {v:.4g}" if isinstance(v, float) else f"  {k} = {v}" for k, v in pairs)
    if stale:
        lines.append(f"{len(stale)} notebook(s) marked OTHER LINEAGE report numbers of other data than the sets in "
                     f"{data_dir} now: run {', '.join(stale)} again to compare like with like")
    return "\n".join(lines) if lines else f"no metrics found in {data_dir}/metrics"


def _inline_figures() -> None:
    # A non-interactive MPLBACKEND (e.g. Agg) in the environment would stop the kernels from
    # embedding figures in the executed notebooks and HTML.
    os.environ.pop("MPLBACKEND", None)


#: The notebooks whose artifacts each notebook reads (by number; make run starts a notebook once
#: these are done, and runs the others side by side). 00, 04b, 08 and 09 read nothing another one writes.
NOTEBOOK_NEEDS: dict[str, tuple[str, ...]] = {
    "02": ("01",), "03": ("02",), "03b": ("02",), "04": ("03",), "05": ("03",), "06": ("02",), "07": ("03",),
}


def notebook_key(path) -> str:
    """``"03b"`` for ``03b_forecasting_advanced.ipynb``: the number :data:`NOTEBOOK_NEEDS` uses.

    Notebooks 00-09 (the order ``make run`` executes them in).
    """
    return Path(path).name.split("_", 1)[0]


def run_in_order(paths, run_one, jobs: int = 1) -> None:
    """Call ``run_one(path)`` for every notebook, at most ``jobs`` at a time, each after the
    notebooks it needs (:data:`NOTEBOOK_NEEDS`, among ``paths``) have finished; among those ready, the
    first in reading order starts first. The first failure stops new starts and is raised once the
    running ones end.

    Notebooks 00-09 (``make run``).
    """
    jobs = check_int("jobs", jobs)
    todo = list(paths)
    keys = {notebook_key(p) for p in todo}
    done: set[str] = set()
    running: dict = {}
    error = None
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        while todo or running:
            while error is None and len(running) < jobs:
                ready = [p for p in todo if all(k in done or k not in keys for k in NOTEBOOK_NEEDS.get(notebook_key(p), ()))]
                if not ready:
                    break
                todo.remove(ready[0])
                running[pool.submit(run_one, ready[0])] = ready[0]
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for f in finished:
                path = running.pop(f)
                if f.exception() is not None and error is None:
                    error = f.exception()
                done.add(notebook_key(path))
    if error is not None:
        raise error


def _run(args) -> int:
    _inline_figures()
    nb_dir, build = Path(args.notebooks), Path(args.build)

    def run_one(nb: Path) -> None:
        t0 = time.time()
        out = build / nb.name
        print(f"[run] {nb.name} ...", flush=True)
        execute_notebook(nb, out, cwd=nb_dir, log_output=False)
        if nb.name == REPORT_NOTEBOOK:  # the default user's report, as an analyst would read it
            user = notebook_parameters(nb).get("user_id")
            to_html(out, build / "reports" / f"user_{user}.html", no_input=True, static_dir=build)
        print(f"[run] {nb.name} done in {time.time() - t0:.1f} s", flush=True)

    nbs = [nb for nb in list_notebooks(nb_dir, args.only) if not (nb.name == REPORT_NOTEBOOK and args.skip_report)]
    run_in_order(nbs, run_one, jobs=args.jobs)
    build_book(nb_dir, build, executed_dir=build)
    print(f"\nOpen {build / 'index.html'}\n\nHeadline metrics:\n{metrics_summary(_data_dir(args))}")
    return 0


#: Longest user id the report accepts (ids are file-name parts and notebook parameters).
MAX_ID_LENGTH = 200


def _split_ids(chunks) -> list[str]:
    """Ids from ``--user-id`` values or ``$DECAY_REPORT_IDS``: separated by spaces or commas."""
    return [u for chunk in chunks for u in re.split(r"[\s,]+", str(chunk)) if u]


def safe_file_part(user_id) -> str:
    """A file-name part for an id: letters, digits, ``.``, ``_`` and ``-`` kept, anything else
    replaced by ``_``; an id that had to change (or starts with a dot) gets a short hash of the
    original, so two different ids never share a file.

    Notebook 07 (the file names of its reports).
    """
    text = str(user_id)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", text)
    if safe != text or safe.startswith(".") or not safe:
        safe = f"{safe.lstrip('.')}-{hashlib.sha256(text.encode()).hexdigest()[:8]}"
    return safe


def _check_id_text(uid: str) -> str | None:
    if len(uid) > MAX_ID_LENGTH:
        return f"user id {uid[:40]!r}... is longer than {MAX_ID_LENGTH} characters"
    if not uid.isprintable():
        return f"user id {uid!r} contains control characters"
    return None


def _report_data_dir(args, nb: Path) -> Path:
    if args.report_data_dir:
        return Path(args.report_data_dir).resolve()
    default = ast.literal_eval(notebook_parameters(nb)["data_dir"])  # relative to the repository root
    return project_path(default).resolve()


def _data_dir(args) -> Path:
    """``--data-dir`` as given (relative to the working directory), else the notebooks' default."""
    return Path(args.data_dir) if args.data_dir else project_path(DEFAULT_DATA_DIR)


def _existing_file(value, what: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_file():
        raise SystemExit(f"{what} {str(value)!r} is not a file (looked from {Path.cwd()})")
    return path.resolve()


def _report(args) -> int:
    _inline_figures()
    nb_dir, build = Path(args.notebooks), Path(args.build)
    nb = nb_dir / REPORT_NOTEBOOK
    if args.from_env:
        args.user_id = [os.environ.get("DECAY_REPORT_IDS", "")]
        args.events = os.environ.get("DECAY_REPORT_EVENTS") or None
        args.mapping = os.environ.get("DECAY_REPORT_MAPPING") or None
    ids = _split_ids(args.user_id or [])
    if not ids:
        raise SystemExit("give at least one user id: make report USER_ID=17 (or USER_ID='17 42'; "
                         "your own ids with EVENTS=shop.csv)")
    if args.mapping and not args.events:
        raise SystemExit("a mapping file was given without an events file: pass --events (EVENTS=) too")
    bad = [msg for msg in map(_check_id_text, ids) if msg]
    if bad:
        print("\n".join(f"[report] {m}" for m in bad), file=sys.stderr)
        return 1
    events = _existing_file(args.events, "events file") if args.events else None
    mapping = _existing_file(args.mapping, "mapping file") if args.mapping else None
    data_dir = _report_data_dir(args, nb)

    # 1. every id against the data, before anything is written

    try:
        with warnings.catch_warnings():  # the report lists the data's limits itself
            warnings.simplefilter("ignore", DataWarning)
            src = open_source(data_dir, events, mapping, verbose=False)
            problems = []
            for uid in ids:
                try:
                    resolve_user(src, uid)
                except UnknownUserError as exc:
                    problems.append(str(exc))
    except Exception as exc:  # the data itself cannot be read: one line, no traceback
        print(f"[report] cannot read the data: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if problems:
        print("\n".join(f"[report] {p}" for p in problems), file=sys.stderr)
        return 1

    # 2. one report per id
    out_dir = build / "reports" if src.synthetic else build / "reports" / safe_file_part(events.name.split(".")[0])
    for uid in ids:
        user = int(uid) if src.synthetic else uid
        out = out_dir / f"user_{safe_file_part(uid)}.ipynb"
        print(f"[report] user {uid} ...", flush=True)
        params = {"user_id": user, "data_dir": str(data_dir), "retail_file": None}  # the tutorial's real-shop check is not the analyst's
        if events is not None:
            params.update(events_path=str(events), events_mapping=str(mapping) if mapping else None)
        try:
            execute_notebook(nb, out, params, cwd=nb_dir)
        except Exception as exc:  # papermill wraps the notebook's own error: show its message only
            msg = getattr(exc, "evalue", None) or str(exc).strip().splitlines()[-1]
            print(f"[report] user {uid} failed: {msg}", file=sys.stderr)
            return 1
        to_html(out, out.with_suffix(".html"), no_input=True, static_dir=build)
        print(f"[report] wrote {out.with_suffix('.html')}")

    write_index(build, nb_dir)  # the book's index, now listing the reports too
    return 0


def main(argv=None) -> int:
    """Command line (``python -m decaylib.workflow.runner``, used by the Makefile): ``run``, ``report`` or
    ``metrics`` (see the module docstring); returns the exit status.

    Notebooks 00-09 (``run``; ``report`` runs notebook 07).
    """
    p = argparse.ArgumentParser(prog="python -m decaylib.workflow.runner", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("run", "report"):
        s = sub.add_parser(name)
        s.add_argument("--notebooks", default="notebooks")
        s.add_argument("--build", default="build")
        s.add_argument("--data-dir", default=None, help=f"artifacts (default: the notebooks' {DEFAULT_DATA_DIR})")
        if name == "run":
            s.add_argument("--only", nargs="*", help="notebook number prefixes, e.g. 01 02")
            s.add_argument("--skip-report", action="store_true")
            s.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1),
                           help="notebooks run side by side, each after the ones it reads (default: 2, or 1 on one core)")
        else:
            s.add_argument("--user-id", nargs="+", help="ids (the simulator's, or your own with --events)")
            s.add_argument("--events", default=None, help="your own event log (CSV / Parquet); default: the simulator")
            s.add_argument("--mapping", default=None, help="JSON mapping of your columns and event names")
            s.add_argument("--from-env", action="store_true",
                           help="read the ids from $DECAY_REPORT_IDS, the events from $DECAY_REPORT_EVENTS and the mapping from "
                                "$DECAY_REPORT_MAPPING (what make report sets from USER_ID, EVENTS and MAPPING)")
            s.add_argument("--report-data-dir", default=None,
                           help="artifacts to report on (default: the notebook's own data_dir)")
    m = sub.add_parser("metrics")
    m.add_argument("--data-dir", default=None, help=f"artifacts (default: the notebooks' {DEFAULT_DATA_DIR})")
    args = p.parse_args(argv)
    if args.cmd == "run":
        return _run(args)
    if args.cmd == "report":
        return _report(args)
    print(metrics_summary(_data_dir(args)))
    return 0

if __name__ == "__main__":
    sys.exit(main())
