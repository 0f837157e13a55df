"""The tutorial as a small static HTML book that works offline (``build/index.html``).

:func:`build_book` renders every ``notebooks/NN_*.ipynb`` (and ``NNb_*.ipynb``, an inserted
chapter; already executed; ``*.failed.ipynb`` ignored) to ``out_dir/NN_name.html`` and every ``notebooks/solutions/*.md`` to
``out_dir/solutions/NN_name.html``, and writes ``out_dir/index.html``. Every page has the same
layout: a sidebar listing all pages in reading order (the notebooks, then the solutions; a page's
title is its first ``# `` heading), Previous / Next links to the neighbouring pages and a link
back to the index.

Design choices:

* **Template.** The notebooks go through nbconvert's ``HTMLExporter`` with a small Jinja template
  kept in this module (``jinja2.DictLoader`` in ``extra_loaders``) that extends nbconvert's own
  ``lab`` template and overrides only a few blocks: the page frame (sidebar, navigation, CSS),
  MathJax (the local copy), no require.js / mermaid / widget manager from a CDN (a widget view
  shows its text fallback), and stderr streams. Overriding
  blocks keeps nbconvert's rendering of cells and outputs (and its future fixes) and needs no
  template folder on disk. What a template cannot know, the links between pages, is rewritten
  afterwards on the HTML (:func:`rewrite_links`), the same code for notebooks and solutions.
* **Solutions** are Markdown: rendered with nbconvert's own ``markdown2html`` (mistune, the
  renderer of the notebooks' Markdown cells, so ``$...$`` / ``$$...$$`` survive for MathJax and
  code blocks get the same Pygments highlighting) into the same page frame.
* **Math offline.** MathJax 2.7 comes from the ``jupyter-server-mathjax`` package (a dependency;
  it is what Jupyter itself serves). Only what the pages use is copied to ``out_dir/_static/mathjax``
  (the ``TeX-AMS-MML_HTMLorMML-full`` combined configuration, the TeX input, the HTML-CSS output
  and its STIX-Web fonts; no localisations, no accessibility extensions), about 3 MB, and every
  page points at it with a relative URL (``../_static/...`` from the solutions). No page loads
  anything from the network.
* **Links.** Every relative ``href``: ``X.ipynb`` (with or without ``#anchor``, ``./`` or
  ``../notebooks/``) becomes ``X.html`` when that page is in the book, ``solutions/X.md`` becomes
  ``solutions/X.html``, a solution's link to a notebook becomes ``../X.html``. A relative link to
  something that is not in the build (a notebook that is not a page, a file of the repository)
  would be dead in the book: it loses its ``href`` (kept as ``data-source-href``, the text stays).
* **stderr.** A stderr stream is not shown as a red/pink error block: a progress bar (tqdm: the
  text contains ``\\r`` or ``it/s`` / ``%|``) is shown as its final line only (the finished bar),
  in a neutral ``book-progress`` style; any other stderr text (warnings, logs) as a plain grey
  ``book-log`` block. Errors (tracebacks) keep nbconvert's error style.

Every file is written with :func:`decaylib.artifacts.atomic_write`.

Command line (``make book``; ``make run`` executes the notebooks first, then calls this)::

    python -m decaylib.teaching.book --notebooks notebooks --out build [--executed build]
"""

from __future__ import annotations

import argparse
import html
import json
import posixpath
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from decaylib.artifacts import atomic_write

__all__ = ['Page', 'list_notebooks', 'collect_pages', 'copy_mathjax', 'mathjax_head', 'stderr_view', 'rewrite_links', 'write_index', 'build_book', 'main']

BOOK_TITLE = "User interest decay in e-commerce"

INTRO = (
    "A hands-on tutorial in Jupyter notebooks: simulate e-commerce events with a known ground truth, "
    "clean them into a daily interest panel, forecast interest, estimate how fast interest decays "
    "(the rate &lambda; and the half-life), find the decay points, turn all of it into recommendations "
    "and per-user reports, then check the model on real data and scale it up. Every notebook below "
    "was executed; the exercises' solutions follow the notebooks."
)

MATHJAX_DIR = "_static/mathjax"

MATHJAX_QUERY = "?config=TeX-AMS-MML_HTMLorMML-full,Safe"

#: What the pages need of jupyter_server_mathjax/static (paths relative to it; folders copied whole).
MATHJAX_PARTS = ("MathJax.js", "LICENSE", "config", "extensions", "fonts/HTML-CSS/STIX-Web/woff",
                 "jax/input", "jax/element", "jax/output/HTML-CSS")

MATHJAX_SKIP = ("extensions/a11y",)

SITE_CSS = """
:root { --book-side: 17rem; --book-accent: #2a6f97; --book-border: #dde3e8; }
body.book-page { margin: 0; padding: 0; background: #fff; color: #1d2329;
  font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; line-height: 1.55; }
.book-toc { position: fixed; top: 0; left: 0; bottom: 0; width: var(--book-side); overflow-y: auto;
  box-sizing: border-box; padding: 1.2rem 1rem 2rem; background: #f5f7f9; border-right: 1px solid var(--book-border);
  font-size: 0.88rem; }
.book-toc .book-brand { display: block; font-weight: 700; font-size: 1rem; margin-bottom: 1rem; color: #1d2329;
  text-decoration: none; }
.book-toc h2 { font-size: 0.75rem; text-transform: uppercase; letter-spacing: 0.06em; color: #5b6670;
  margin: 1.2rem 0 0.4rem; border: 0; padding: 0; }
.book-toc ol { list-style: none; margin: 0; padding: 0; }
.book-toc li { margin: 0; }
.book-toc li a { display: block; padding: 0.25rem 0.5rem; border-radius: 4px; color: #2b3640; text-decoration: none; }
.book-toc li a:hover { background: #e6ecf1; }
.book-toc li a.book-current { background: var(--book-accent); color: #fff; }
.book-content { margin-left: var(--book-side); padding: 0 2rem 3rem; max-width: 62rem; box-sizing: border-box; }
.book-nav { display: flex; justify-content: space-between; align-items: center; gap: 1rem;
  padding: 0.8rem 0; border-bottom: 1px solid var(--book-border); font-size: 0.9rem; }
.book-nav.book-nav-bottom { border-bottom: 0; border-top: 1px solid var(--book-border); margin-top: 2rem; }
.book-nav a { color: var(--book-accent); text-decoration: none; }
.book-nav a:hover { text-decoration: underline; }
.book-nav .book-prev, .book-nav .book-next { flex: 1 1 0; }
.book-nav .book-next { text-align: right; }
.book-nav .book-disabled { color: #9aa5ae; }
.book-content main { padding: 1rem 0; }
.book-article a { color: var(--book-accent); }
.book-article pre, .book-article code { font-family: SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.9em; }
.book-article pre { background: #f5f7f9; padding: 0.7rem 0.9rem; border-radius: 4px; overflow-x: auto; }
.book-article h1 { font-size: 1.8rem; line-height: 1.25; }
.book-article a.anchor-link { visibility: hidden; text-decoration: none; margin-left: 0.3em; font-weight: 400; }
.book-article :is(h1, h2, h3, h4):hover > a.anchor-link { visibility: visible; }
.book-progress pre, .book-log pre { margin: 0; }
.jp-OutputArea-output.book-progress { color: #5b6670; background: transparent; font-size: 0.85em; }
.jp-OutputArea-output.book-log { color: #3b4650; background: #f3f4f5; border-left: 3px solid #c5ccd3; padding: 0.2rem 0.5rem; }
.book-index ol.book-list { padding-left: 1.4rem; }
.book-index ol.book-list li { margin: 0.35rem 0; }
.book-index .book-sol { font-size: 0.85em; margin-left: 0.5rem; }
.book-index .book-built { color: #7a858e; font-size: 0.85em; margin-top: 2rem; }
@media (max-width: 900px) {
  .book-toc { position: static; width: auto; border-right: 0; border-bottom: 1px solid var(--book-border); }
  .book-content { margin-left: 0; padding: 0 1rem 2rem; }
}
@media print { .book-toc, .book-nav { display: none; } .book-content { margin-left: 0; } }
"""

#: Extends nbconvert's ``lab`` template; only these blocks change (see the module docstring).
NOTEBOOK_TEMPLATE = r"""
{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}
{{ resources.book.head }}
{%- endblock html_head_js_mathjax -%}
{% block extra_css %}<style type="text/css">{{ resources.book.css }}</style>{% endblock extra_css %}
{%- block body_header -%}
<body class="jp-Notebook book-page" data-jp-theme-light="true" data-jp-theme-name="JupyterLab Light">
{{ resources.book.toc }}
<div class="book-content">
{{ resources.book.nav_top }}
<main>
{%- endblock body_header -%}
{% block body_footer %}
</main>
{{ resources.book.nav_bottom }}
</div>
</body>
{% endblock body_footer %}
{% block stream_stderr -%}
{%- set view = output.text | book_stderr -%}
<div class="jp-RenderedText jp-OutputArea-output book-{{ view[0] }}" data-mime-type="text/plain">
<pre>
{{- view[1] | ansi2html -}}
</pre>
</div>
{%- endblock stream_stderr %}
"""


@dataclass(frozen=True)
class Page:
    """One page of the book: ``rel`` is its path in the output folder (``solutions/04_x.html``).

    Notebooks 00-09 and their solutions (every page of the book).
    """

    kind: str  # "notebook" or "solution"
    stem: str
    source: Path
    rel: str
    title: str


def _clean_title(line: str) -> str:
    text = line[2:].strip()
    text = re.sub(r"[`*_]{1,2}([^`*_]+)[`*_]{1,2}", r"\1", text)  # `code`, **bold**, *em*
    return re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)  # [text](link)


def _first_heading(markdown_sources, fallback: str) -> str:
    in_fence = False
    for source in markdown_sources:
        for line in source.splitlines():
            if line.lstrip().startswith("```"):
                in_fence = not in_fence
            elif not in_fence and line.startswith("# "):
                return _clean_title(line)
    return fallback


def _notebook_title(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    sources = ("".join(c["source"]) if isinstance(c.get("source"), list) else c.get("source", "")
               for c in nb.get("cells", []) if c.get("cell_type") == "markdown")
    return _first_heading(sources, path.stem)

#: A tutorial notebook: two digits, an optional letter for an inserted chapter (``03b_``), ``_name``.
NOTEBOOK_NAME = re.compile(r"^[0-9]{2}[a-z]?_.+\.ipynb$")


def list_notebooks(notebooks_dir) -> list[Path]:
    """The notebooks in reading order (``03_x`` before ``03b_y``); ``*.failed.ipynb`` ignored.

    Notebooks 00-09 (it lists them).
    """
    return sorted(p for p in Path(notebooks_dir).glob("[0-9][0-9]*.ipynb")
                  if NOTEBOOK_NAME.match(p.name) and not p.name.endswith(".failed.ipynb"))


def collect_pages(notebooks_dir) -> list[Page]:
    """The book's pages in reading order: the numbered notebooks, then their solutions.

    Notebooks 00-09 and their solutions (every page of the book).
    """
    notebooks_dir = Path(notebooks_dir)
    pages = [Page("notebook", p.stem, p, f"{p.stem}.html", _notebook_title(p)) for p in list_notebooks(notebooks_dir)]
    for md in sorted((notebooks_dir / "solutions").glob("*.md")):
        pages.append(Page("solution", md.stem, md, f"solutions/{md.stem}.html",
                          _first_heading([md.read_text(encoding="utf-8")], f"Solutions · {md.stem}")))
    return pages


def _write_text(path: Path, text: str) -> Path:

    with atomic_write(path) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    return path


def _mathjax_source() -> Path:
    try:
        import jupyter_server_mathjax
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise RuntimeError("the book needs the jupyter-server-mathjax package (MathJax offline): "
                           "pip install jupyter-server-mathjax") from exc
    return Path(jupyter_server_mathjax.__file__).parent / "static"


def copy_mathjax(out_dir) -> Path:
    """Copy the needed part of MathJax 2.7 to ``out_dir/_static/mathjax``; files already there
    with the same content are left alone. Returns the folder.

    Notebooks 00-09 and their solutions (every page of the book).
    """

    src, dest = _mathjax_source(), Path(out_dir) / MATHJAX_DIR
    for part in MATHJAX_PARTS:
        p = src / part
        files = [p] if p.is_file() else sorted(f for f in p.rglob("*") if f.is_file())
        for f in files:
            rel = f.relative_to(src).as_posix()
            if any(rel.startswith(skip + "/") for skip in MATHJAX_SKIP) or f.suffix == ".pyc":
                continue
            target = dest / rel
            data = f.read_bytes()
            if target.is_file() and target.stat().st_size == len(data) and target.read_bytes() == data:
                continue
            with atomic_write(target) as tmp:
                Path(tmp).write_bytes(data)
    return dest


def mathjax_head(prefix: str) -> str:
    """The ``<head>`` lines that load MathJax from the local copy (:func:`copy_mathjax`) at
    ``prefix + "_static/mathjax"`` (``prefix``: the way from the page up to the folder that holds
    ``_static``, e.g. ``"../"``), configured as nbconvert configures it (plus the web fonts).

    Notebooks 00-09 (every page of the book) and 07 (the per-user reports).
    """
    return (
        '<script type="text/x-mathjax-config">\n'
        "MathJax.Hub.Config({\n"
        "  TeX: {equationNumbers: {autoNumber: \"AMS\", useLabelIds: true}},\n"
        "  tex2jax: {inlineMath: [['$','$'], ['\\\\(','\\\\)']], displayMath: [['$$','$$'], ['\\\\[','\\\\]']],\n"
        "            processEscapes: true, processEnvironments: true},\n"
        "  'HTML-CSS': {availableFonts: [], imageFont: null, preferredFont: null, webFont: 'STIX-Web',\n"
        "               linebreaks: {automatic: true}},\n"
        "  displayAlign: 'center', messageStyle: 'none'\n"
        "});\n"
        "</script>\n"
        f'<script src="{prefix}{MATHJAX_DIR}/MathJax.js{MATHJAX_QUERY}"></script>'
    )


def _relative(target: str, from_rel: str) -> str:
    """``target`` (a path in the output folder) as seen from the page ``from_rel``."""
    return posixpath.relpath(target, posixpath.dirname(from_rel) or ".")


def _toc(pages: list[Page], current: str | None) -> str:
    def items(kind):
        out = []
        for p in pages:
            if p.kind == kind:
                cls = ' class="book-current" aria-current="page"' if p.rel == current else ""
                out.append(f'<li><a href="{html.escape(_relative(p.rel, current or "index.html"))}"{cls}>'
                           f"{html.escape(p.title)}</a></li>")
        return "".join(out)

    home = html.escape(_relative("index.html", current or "index.html"))
    return (f'<nav class="book-toc" aria-label="Contents"><a class="book-brand" href="{home}">{html.escape(BOOK_TITLE)}</a>'
            f"<h2>Notebooks</h2><ol>{items('notebook')}</ol>"
            + (f"<h2>Solutions</h2><ol>{items('solution')}</ol>" if any(p.kind == "solution" for p in pages) else "")
            + "</nav>")


def _nav(pages: list[Page], i: int, where: str) -> str:
    page = pages[i]

    def link(j, rel, arrow_left):
        if not 0 <= j < len(pages):
            return f'<span class="book-{rel} book-disabled"></span>'
        title = html.escape(pages[j].title)
        text = f"&larr; {title}" if arrow_left else f"{title} &rarr;"
        return (f'<a class="book-{rel}" rel="{rel}" href="{html.escape(_relative(pages[j].rel, page.rel))}">'
                f"{text}</a>")

    home = html.escape(_relative("index.html", page.rel))
    return (f'<nav class="book-nav book-nav-{where}" aria-label="Previous and next">{link(i - 1, "prev", True)}'
            f'<a class="book-home" href="{home}">Contents</a>{link(i + 1, "next", False)}</nav>')


def stderr_view(text: str) -> tuple[str, str]:
    """``("progress", final line)`` for a tqdm-style progress bar, else ``("log", text)``.

    Notebooks 00-09 (their stderr output in the book).
    """
    if "\r" in text or "it/s" in text or "%|" in text:
        lines = [seg for seg in re.split(r"[\r\n]+", text) if seg.strip()]
        return "progress", (lines[-1] if lines else "")
    return "log", text

_ATTR = re.compile(r"""(?<![\w-])(?P<attr>href)\s*=\s*(?P<q>["'])(?P<url>.*?)(?P=q)""", re.I | re.S)


def rewrite_links(page_html: str, page: Page, pages: list[Page], notebooks_dir, out_dir) -> str:
    """Point the page's relative links at the book's pages (see the module docstring).

    Notebooks 00-09 and their solutions (every page of the book).
    """
    notebooks_dir, out_dir = Path(notebooks_dir), Path(out_dir)
    nb_pages = {p.stem: p for p in pages if p.kind == "notebook"}
    sol_pages = {p.stem: p for p in pages if p.kind == "solution"}
    by_rel = {p.rel for p in pages} | {"index.html"}
    src_dir = "notebooks" if page.kind == "notebook" else "notebooks/solutions"

    def target(url: str) -> str | None:
        """The new URL; ``None``: leave the link alone; ``""``: a dead link."""
        if not url or url.startswith(("#", "/", "data:", "mailto:")) or re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*:", url):
            return None
        path, _, anchor = url.partition("#")
        path = unquote(path.split("?")[0])
        anchor = f"#{anchor}" if anchor else ""
        name = posixpath.basename(path)
        stem, ext = posixpath.splitext(name)
        where = posixpath.normpath(posixpath.join(src_dir, path))
        if ext == ".ipynb":
            hit = nb_pages.get(stem) if where in (f"notebooks/{name}", f"{src_dir}/{name}") or stem in nb_pages else None
            return _relative(hit.rel, page.rel) + anchor if hit else ""
        if ext == ".md" and where in (f"notebooks/solutions/{name}", f"{src_dir}/{name}") and stem in sol_pages:
            return _relative(sol_pages[stem].rel, page.rel) + anchor
        # any other relative link: fine when it reaches a page or a file of the build
        built = posixpath.normpath(posixpath.join(posixpath.dirname(page.rel), path))
        if built in by_rel or (not built.startswith("..") and (out_dir / built).exists()):
            return None
        return ""

    def sub(m):
        url = html.unescape(m["url"]).strip()
        new = target(url)
        if new is None:
            return m.group(0)
        if new == "":
            return f'data-source-href={m["q"]}{m["url"]}{m["q"]}'
        return f'{m["attr"]}="{html.escape(new)}"'

    return _ATTR.sub(sub, page_html)


def _frame(page: Page, pages: list[Page], i: int, body: str, extra_css: str = "") -> str:
    prefix = "../" * page.rel.count("/")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">\n'
        f"<title>{html.escape(page.title)}</title>\n"
        f'<style type="text/css">{SITE_CSS}{extra_css}</style>\n{mathjax_head(prefix)}\n</head>\n'
        '<body class="book-page">\n'
        f"{_toc(pages, page.rel)}\n<div class=\"book-content\">\n{_nav(pages, i, 'top')}\n"
        f'<main class="book-article">\n{body}\n</main>\n{_nav(pages, i, "bottom")}\n</div>\n</body>\n</html>\n'
    )


def _exporter():
    import jinja2
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(template_name="lab", template_file="book.html.j2",
                            extra_loaders=[jinja2.DictLoader({"book.html.j2": NOTEBOOK_TEMPLATE})])
    exporter.register_filter("book_stderr", stderr_view)
    return exporter


def _render_notebook(exporter, page: Page, pages: list[Page], i: int, source: Path) -> str:
    import nbformat

    nb = nbformat.read(str(source), as_version=4)
    prefix = "../" * page.rel.count("/")
    resources = {
        "metadata": {"name": page.title},
        "book": {"head": mathjax_head(prefix), "css": SITE_CSS, "toc": _toc(pages, page.rel),
                 "nav_top": _nav(pages, i, "top"), "nav_bottom": _nav(pages, i, "bottom")},
    }
    body, _ = exporter.from_notebook_node(nb, resources=resources)
    return body


def _render_solution(page: Page, pages: list[Page], i: int) -> str:
    from nbconvert.filters import markdown2html
    from pygments.formatters import HtmlFormatter

    body = markdown2html(page.source.read_text(encoding="utf-8"))
    return _frame(page, pages, i, body, HtmlFormatter().get_style_defs(".highlight"))


def _reports(out_dir: Path) -> list[str]:
    reports = out_dir / "reports"
    return sorted(h.relative_to(out_dir).as_posix() for h in reports.rglob("*.html")) if reports.is_dir() else []


def write_index(out_dir, notebooks_dir) -> Path:
    """Write ``out_dir/index.html``: the notebooks in order with their titles, their solutions and
    the per-user reports under ``out_dir/reports``. Only pages that exist in ``out_dir`` are
    linked (``make report`` calls this without building the book).

    Notebooks 00-09 and their solutions (every page of the book).
    """
    out_dir = Path(out_dir)
    pages = [p for p in collect_pages(notebooks_dir) if (out_dir / p.rel).exists()]
    sols = {p.stem: p for p in pages if p.kind == "solution"}
    items = []
    for p in pages:
        if p.kind == "notebook":
            sol = sols.get(p.stem)
            extra = f' <a class="book-sol" href="{html.escape(sol.rel)}">solutions</a>' if sol else ""
            items.append(f'<li><a href="{html.escape(p.rel)}">{html.escape(p.title)}</a>{extra}</li>')
    sol_items = [f'<li><a href="{html.escape(p.rel)}">{html.escape(p.title)}</a></li>' for p in pages if p.kind == "solution"]
    reports = [f'<li><a href="{html.escape(r)}">{html.escape(r[len("reports/"):-len(".html")])}</a></li>'
               for r in _reports(out_dir)]
    body = (
        f"<h1>{html.escape(BOOK_TITLE)}</h1>\n<p>{INTRO}</p>\n"
        + (f'<h2>Notebooks</h2>\n<ol class="book-list">{"".join(items)}</ol>\n' if items else
           "<p>No notebook page has been built yet: <code>make book</code> or <code>make run</code>.</p>\n")
        + (f'<h2>Solutions to the exercises</h2>\n<ol class="book-list">{"".join(sol_items)}</ol>\n' if sol_items else "")
        + (f"<h2>Per-user reports</h2>\n<ul>{''.join(reports)}</ul>\n" if reports else "")
        + f'<p class="book-built">Built {time.strftime("%Y-%m-%d %H:%M")}.</p>'
    )
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">\n'
        f"<title>{html.escape(BOOK_TITLE)}</title>\n<style type=\"text/css\">{SITE_CSS}</style>\n</head>\n"
        f'<body class="book-page book-index">\n{_toc(pages, "index.html")}\n<div class="book-content">\n'
        f'<main class="book-article">\n{body}\n</main>\n</div>\n</body>\n</html>\n'
    )
    return _write_text(out_dir / "index.html", page)


def build_book(notebooks_dir, out_dir, executed_dir=None) -> Path:
    """Render the notebooks and solutions of ``notebooks_dir`` into ``out_dir``; returns the index.

    A notebook is taken from ``executed_dir/NN_name.ipynb`` when that file exists (what
    ``make run`` just executed), else from ``notebooks_dir`` (the committed, executed copy).
    Nothing is executed here.

    Notebooks 00-09 and their solutions (every page of the book).
    """
    notebooks_dir, out_dir = Path(notebooks_dir), Path(out_dir)
    pages = collect_pages(notebooks_dir)
    if not pages:
        raise ValueError(f"no NN_*.ipynb notebook in {notebooks_dir}")
    copy_mathjax(out_dir)
    exporter = _exporter()
    for i, page in enumerate(pages):
        if page.kind == "notebook":
            executed = Path(executed_dir) / page.source.name if executed_dir is not None else None
            source = executed if executed is not None and executed.is_file() else page.source
            text = _render_notebook(exporter, page, pages, i, source)
        else:
            text = _render_solution(page, pages, i)
        _write_text(out_dir / page.rel, rewrite_links(text, page, pages, notebooks_dir, out_dir))
    return write_index(out_dir, notebooks_dir)


def main(argv=None) -> int:
    """Command line (``python -m decaylib.teaching.book``): build the book from ``--notebooks`` into ``--out``
    (executed copies from ``--executed`` when there) and print the index's path; returns 0.

    Notebooks 00-09 and their solutions (every page of the book).
    """
    p = argparse.ArgumentParser(prog="python -m decaylib.teaching.book", description=__doc__.split("\n\n")[0])
    p.add_argument("--notebooks", default="notebooks", help="the NN_*.ipynb notebooks and solutions/*.md")
    p.add_argument("--out", default="build", help="output folder (index.html, NN_*.html, solutions/, _static/)")
    p.add_argument("--executed", default=None,
                   help="take NN_name.ipynb from this folder when it is there (default: the notebooks as they are)")
    args = p.parse_args(argv)
    t0 = time.time()
    index = build_book(args.notebooks, args.out, executed_dir=args.executed)
    print(f"[book] {index} ({time.time() - t0:.1f} s)")
    return 0

if __name__ == "__main__":
    sys.exit(main())
