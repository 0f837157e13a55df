"""Execute the tutorial's notebooks headlessly with papermill, safely.

papermill silently ignores a parameter that the notebook's ``parameters`` cell does not define
(it only logs a warning), so a typo such as ``n_user=50`` would run the defaults and look fine.
:func:`execute_notebook` rejects unknown names before anything runs.

Command line (used by the Makefile)::

    python -m decaylib.runner run [--build build] [--notebooks notebooks] [--only 01 02]
    python -m decaylib.runner report --user-id 17 42 [--build build] [--report-data-dir DIR]
    python -m decaylib.runner metrics [--data-dir data/generated]
"""

from __future__ import annotations

import argparse
import html
import json
import os
import sys
import time
from pathlib import Path

__all__ = [
    "UnknownParameterError",
    "notebook_parameters",
    "check_parameters",
    "execute_notebook",
    "to_html",
    "list_notebooks",
    "build_index",
    "metrics_summary",
    "main",
]

REPORT_NOTEBOOK = "07_user_report.ipynb"


class UnknownParameterError(ValueError):
    """A parameter name that the notebook's ``parameters`` cell does not define."""


def notebook_parameters(path) -> dict:
    """The names and defaults of a notebook's ``parameters`` cell (via papermill)."""
    import papermill as pm

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"notebook {path} does not exist")
    params = pm.inspect_notebook(str(path))
    if not params:
        raise ValueError(f"notebook {path.name} has no cell tagged 'parameters'")
    return {name: info.get("default") for name, info in params.items()}


def check_parameters(path, parameters: dict | None) -> None:
    """Raise :class:`UnknownParameterError` naming every parameter the notebook does not define."""
    if not parameters:
        return
    known = notebook_parameters(path)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise UnknownParameterError(
            f"{Path(path).name} has no parameter(s) {unknown}; its parameters are {sorted(known)}"
        )


def execute_notebook(path, output_path, parameters: dict | None = None, cwd=None, kernel_name: str = "python3",
                     log_output: bool = False, progress_bar: bool = False, timeout: int | None = None):
    """Run ``path`` with ``parameters`` into ``output_path`` (atomically) and return the notebook.

    ``cwd`` defaults to the notebook's own folder, so relative paths such as
    ``data_dir="../data/generated"`` resolve as they do in JupyterLab.
    """
    import papermill as pm

    path = Path(path)
    check_parameters(path, parameters)
    output_path = Path(output_path)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = output_path.with_name(f".{output_path.name}.partial.ipynb")
    try:
        nb = pm.execute_notebook(
            str(path), str(tmp), parameters=dict(parameters or {}), kernel_name=kernel_name,
            cwd=str(cwd or path.parent), log_output=log_output, progress_bar=progress_bar,
            execution_timeout=timeout,
        )
    except BaseException:
        # Keep the failed copy for debugging next to the output, never under the final name.
        if tmp.exists():
            os.replace(tmp, output_path.with_name(output_path.stem + ".failed.ipynb"))
        raise
    os.replace(tmp, output_path)
    return nb


def to_html(ipynb_path, html_path, no_input: bool = False) -> Path:
    """Render an executed notebook to HTML (``no_input`` hides code cells, for reports)."""
    import nbformat
    from nbconvert import HTMLExporter

    from .io import atomic_write

    exporter = HTMLExporter()
    exporter.exclude_input = no_input
    exporter.exclude_input_prompt = no_input
    exporter.exclude_output_prompt = no_input
    body, _ = exporter.from_notebook_node(nbformat.read(str(ipynb_path), as_version=4))
    with atomic_write(html_path) as tmp:
        Path(tmp).write_text(body, encoding="utf-8")
    return Path(html_path)


def list_notebooks(notebooks_dir, only=None) -> list[Path]:
    """The numbered tutorial notebooks in reading order (``NN_name.ipynb``)."""
    nbs = sorted(p for p in Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb") if not p.name.endswith(".failed.ipynb"))
    if only:
        prefixes = tuple(str(o) for o in only)
        nbs = [p for p in nbs if p.name.startswith(prefixes)]
        if not nbs:
            raise ValueError(f"no notebook matches {list(only)} in {notebooks_dir}")
    return nbs


def build_index(build_dir) -> Path:
    """Write ``build_dir/index.html`` linking every executed notebook and report."""
    build_dir = Path(build_dir)
    items = []
    for h in sorted(build_dir.glob("*.html")):
        if h.name != "index.html":
            items.append(f'<li><a href="{html.escape(h.name)}">{html.escape(h.stem)}</a></li>')
    reports = [f'<li><a href="reports/{html.escape(h.name)}">{html.escape(h.stem)}</a></li>'
               for h in sorted((build_dir / "reports").glob("*.html"))]
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>Interest decay tutorial</title></head><body>"
        "<h1>User interest decay in e-commerce: executed notebooks</h1>"
        f"<h2>Notebooks</h2><ol>{''.join(items)}</ol>"
        + (f"<h2>Per-user reports</h2><ul>{''.join(reports)}</ul>" if reports else "")
        + f"<p>Built {time.strftime('%Y-%m-%d %H:%M')}.</p></body></html>"
    )
    from .io import atomic_write

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


def metrics_summary(data_dir, max_per_notebook: int = 12) -> str:
    """A short text summary of every ``metrics/*.json`` in ``data_dir``."""
    lines = []
    for f in sorted((Path(data_dir) / "metrics").glob("*.json")):
        data = json.loads(f.read_text(encoding="utf-8"))
        headline = data.get("headline", data)
        pairs = list(_flatten(headline))[:max_per_notebook]
        lines.append(f"{f.stem}:")
        lines.extend(f"  {k} = {v:.4g}" if isinstance(v, float) else f"  {k} = {v}" for k, v in pairs)
    return "\n".join(lines) if lines else f"no metrics found in {data_dir}/metrics"


def _inline_figures() -> None:
    # A non-interactive MPLBACKEND (e.g. Agg) in the environment would stop the kernels from
    # embedding figures in the executed notebooks and HTML.
    os.environ.pop("MPLBACKEND", None)


def _run(args) -> int:
    _inline_figures()
    nb_dir, build = Path(args.notebooks), Path(args.build)
    for nb in list_notebooks(nb_dir, args.only):
        if nb.name == REPORT_NOTEBOOK and args.skip_report:
            continue
        t0 = time.time()
        out = build / nb.name
        print(f"[run] {nb.name} ...", flush=True)
        execute_notebook(nb, out, cwd=nb_dir, log_output=False)
        to_html(out, build / (nb.stem + ".html"))
        if nb.name == REPORT_NOTEBOOK:  # the default user's report, as an analyst would read it
            user = notebook_parameters(nb).get("user_id")
            to_html(out, build / "reports" / f"user_{user}.html", no_input=True)
        print(f"[run] {nb.name} done in {time.time() - t0:.1f} s", flush=True)
    build_index(build)
    print(f"\nOpen {build / 'index.html'}\n\nHeadline metrics:\n{metrics_summary(args.data_dir)}")
    return 0


def _report(args) -> int:
    _inline_figures()
    nb_dir, build = Path(args.notebooks), Path(args.build)
    nb = nb_dir / REPORT_NOTEBOOK
    ids = [u for chunk in args.user_id for u in str(chunk).replace(",", " ").split()]
    if not ids:
        raise SystemExit("give at least one user id: make report USER_ID=17 (or USER_ID='17 42')")
    for uid in ids:
        try:
            user = int(uid)
        except ValueError:
            raise SystemExit(f"user id {uid!r} is not an integer") from None
        out = build / "reports" / f"user_{user}.ipynb"
        print(f"[report] user {user} ...", flush=True)
        params = {"user_id": user}
        if args.report_data_dir:
            params["data_dir"] = str(Path(args.report_data_dir).resolve())
        try:
            execute_notebook(nb, out, params, cwd=nb_dir)
        except Exception as exc:  # papermill wraps the notebook's own error: show its message only
            msg = getattr(exc, "evalue", None) or str(exc).strip().splitlines()[-1]
            print(f"[report] user {user} failed: {msg}", file=sys.stderr)
            return 1
        to_html(out, out.with_suffix(".html"), no_input=True)
        print(f"[report] wrote {out.with_suffix('.html')}")
    build_index(build)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m decaylib.runner", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("run", "report"):
        s = sub.add_parser(name)
        s.add_argument("--notebooks", default="notebooks")
        s.add_argument("--build", default="build")
        s.add_argument("--data-dir", default="data/generated")
        if name == "run":
            s.add_argument("--only", nargs="*", help="notebook number prefixes, e.g. 01 02")
            s.add_argument("--skip-report", action="store_true")
        else:
            s.add_argument("--user-id", nargs="+", required=True)
            s.add_argument("--report-data-dir", default=None,
                           help="artifacts to report on (default: the notebook's own data_dir)")
    m = sub.add_parser("metrics")
    m.add_argument("--data-dir", default="data/generated")
    args = p.parse_args(argv)
    if args.cmd == "run":
        return _run(args)
    if args.cmd == "report":
        return _report(args)
    print(metrics_summary(args.data_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
