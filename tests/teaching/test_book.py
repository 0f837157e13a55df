"""The HTML book (decaylib.teaching.book): links, offline math, navigation, stderr, and a real browser.

The book is built once per module from the committed notebooks (already executed: nothing runs).
"""

import html
import os
import re
import shutil
import subprocess
import time
from html.parser import HTMLParser
from urllib.parse import unquote

import nbformat
import pytest

from decaylib.teaching.book import build_book, collect_pages, stderr_view
from tests.conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"
CDN_HOSTS = ("cdn.jsdelivr", "cdnjs", "unpkg", "mathjax.org")
ATTR = re.compile(r"""(?<![\w-])(href|src)\s*=\s*(["'])(.*?)\2""", re.I | re.S)


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    t0 = time.time()
    index = build_book(NOTEBOOKS, out)
    print(f"book built in {time.time() - t0:.1f} s")
    assert index == out / "index.html"
    return out


def _pages(out):
    return sorted(out.glob("*.html")) + sorted((out / "solutions").glob("*.html"))


def _attrs(text):
    return [(m[1].lower(), html.unescape(m[3]).strip()) for m in ATTR.finditer(text)]


@pytest.mark.slow
def test_every_notebook_and_solution_is_a_page(book):
    pages = collect_pages(NOTEBOOKS)
    nbs = sorted(p for p in NOTEBOOKS.glob("[0-9][0-9]*_*.ipynb")
                 if re.match(r"^[0-9]{2}[a-z]?_", p.name) and not p.name.endswith(".failed.ipynb"))
    assert [p.stem for p in pages if p.kind == "notebook"] == [p.stem for p in nbs]
    assert [p.stem for p in pages if p.kind == "solution"] == sorted(p.stem for p in (NOTEBOOKS / "solutions").glob("*.md"))
    for p in pages:
        assert (book / p.rel).is_file(), p.rel
    assert not list(book.glob("*.failed.html"))
    first = next(p for p in pages if p.kind == "notebook")
    assert re.match(r"^\d\d[a-z]? · ", first.title) and first.title.startswith(first.stem[:2])  # the first '# ' heading
    assert f"<title>{html.escape(first.title)}</title>" in (book / first.rel).read_text()


@pytest.mark.slow
def test_no_ipynb_links_and_every_relative_link_resolves(book):
    checked = 0
    for page in _pages(book):
        text = page.read_text(encoding="utf-8")
        for attr, url in _attrs(text):
            if attr == "href":
                assert not url.split("#")[0].endswith(".ipynb") and ".ipynb#" not in url, f"{page.name}: {url}"
            if not url or url.startswith(("#", "data:", "mailto:", "javascript:")) or re.match(r"^[a-z][a-z0-9+.-]*:", url, re.I):
                continue
            target = (page.parent / unquote(url.split("#")[0].split("?")[0])).resolve()
            assert target.exists(), f"{page.relative_to(book)}: {attr}={url!r} does not resolve"
            checked += 1
        assert "output_stderr" not in text, page.name
    assert checked > 100


@pytest.mark.slow
def test_solution_links_and_solution_back_links(book):
    text = (book / "04_decay_rate.html").read_text()
    assert 'href="solutions/04_decay_rate.html"' in text
    assert 'href="03_forecasting.html"' in text and 'href="05_decay_points.html"' in text
    sol = (book / "solutions" / "04_decay_rate.html").read_text()
    assert 'href="../index.html"' in sol and 'href="../04_decay_rate.html"' in sol
    assert 'src="../_static/mathjax/MathJax.js' in sol


@pytest.mark.slow
def test_offline_no_cdn(book):
    for page in _pages(book):
        text = page.read_text(encoding="utf-8")
        for src in re.findall(r"""<script[^>]*\bsrc\s*=\s*["']([^"']+)""", text, re.I):
            assert not src.startswith(("http://", "https://", "//")), f"{page.name}: {src}"
        for _, url in _attrs(text):
            assert not any(h in url for h in CDN_HOSTS), f"{page.name}: {url}"
        assert not re.search(r"import\(\s*[\"']https?://", text), page.name  # no module loaded from the web
    mathjax = book / "_static" / "mathjax"
    assert (mathjax / "MathJax.js").is_file() and (mathjax / "config" / "TeX-AMS-MML_HTMLorMML-full.js").is_file()
    assert not (mathjax / "localization").exists()  # only what the pages use


@pytest.mark.slow
def test_index_lists_every_page_in_order(book):
    index = (book / "index.html").read_text()
    pages = collect_pages(NOTEBOOKS)
    hrefs = [url for attr, url in _attrs(index) if attr == "href"]
    main = index.split("<main", 1)[1]
    positions = [main.index(f'href="{p.rel}"') for p in pages if p.kind == "notebook"]
    assert positions == sorted(positions)
    for p in pages:
        assert p.rel in hrefs, p.rel
        assert html.escape(p.title) in index
    assert "<style" in index and "<h1>" in index


class _Links(HTMLParser):
    """``(rel, href)`` of the links inside the top Previous/Next bar; the sidebar's link texts."""

    def __init__(self):
        super().__init__()
        self.where, self.nav, self.toc, self.in_a = None, [], [], False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        classes = (a.get("class") or "").split()
        if tag == "nav" and "book-nav-top" in classes:
            self.where = "nav"
        elif tag == "nav" and "book-toc" in classes:
            self.where = "toc"
        elif tag == "a" and self.where == "nav":
            self.nav.append((a.get("rel"), a.get("href")))
        elif tag == "a" and self.where == "toc" and "book-brand" not in classes:
            self.in_a = True
            self.toc.append("")

    def handle_endtag(self, tag):
        if tag == "nav":
            self.where = None
        self.in_a = self.in_a and tag != "a"

    def handle_data(self, data):
        if self.in_a:
            self.toc[-1] += data


def _nav(text):
    p = _Links()
    p.feed(text)
    links = dict(p.nav)
    return links.get("prev"), links.get("next"), [h for _, h in p.nav], p.toc


@pytest.mark.slow
def test_previous_next_on_first_middle_last(book):
    pages = collect_pages(NOTEBOOKS)
    i = len(pages) // 2
    first, middle, last = pages[0], pages[i], pages[-1]
    rel = lambda p, frm: os.path.relpath(p.rel, os.path.dirname(frm.rel) or ".")  # noqa: E731
    prev, nxt, hrefs, _ = _nav((book / first.rel).read_text())
    assert prev is None and nxt == pages[1].rel and "index.html" in hrefs
    prev, nxt, _, toc = _nav((book / middle.rel).read_text())
    assert prev == rel(pages[i - 1], middle) and nxt == rel(pages[i + 1], middle)
    assert toc == [p.title for p in pages]  # the sidebar lists every page, in order
    prev, nxt, hrefs, _ = _nav((book / last.rel).read_text())
    assert nxt is None and prev == rel(pages[-2], last)
    assert ("../index.html" if "/" in last.rel else "index.html") in hrefs


def test_stderr_view():
    assert stderr_view("\r  0%|          | 0/5 [00:00<?, ?it/s]\r100%|##########| 5/5 [00:01<00:00, 4.9it/s]\n") == \
        ("progress", "100%|##########| 5/5 [00:01<00:00, 4.9it/s]")
    assert stderr_view("UserWarning: careful\n") == ("log", "UserWarning: careful\n")


def test_links_stderr_and_dead_links_on_a_small_book(tmp_path):
    """Link forms the committed notebooks may not use today, and stderr outputs."""
    nbdir = tmp_path / "notebooks"
    (nbdir / "solutions").mkdir(parents=True)
    for n, name in ((1, "01_a"), (2, "02_b")):
        nb = nbformat.v4.new_notebook()
        md = (f"# {n:02d} · Page {name}\n\n[a](./01_a.ipynb#sec) [b](../notebooks/02_b.ipynb) [c](02_b.ipynb) "
              f"[s](solutions/{name}.md) [dead](99_missing.ipynb) [web](https://example.org/x.ipynb)")
        code = nbformat.v4.new_code_cell("pass")
        code.outputs = [nbformat.v4.new_output("stream", name="stderr", text="\r 50%|#  | 1/2 [00:00, 9it/s]\r100%|##| 2/2 [00:00, 9it/s]"),
                        nbformat.v4.new_output("stream", name="stderr", text="a log line\n")]
        nb.cells = [nbformat.v4.new_markdown_cell(md), code]
        nbformat.write(nb, nbdir / f"{name}.ipynb")
        (nbdir / "solutions" / f"{name}.md").write_text(f"# Solutions · {name}\n\nBack to [it](../{name}.ipynb), $$x^2$$\n")
    (nbdir / "01_a.failed.ipynb").write_text("{}")
    out = tmp_path / "out"
    build_book(nbdir, out)
    a = (out / "01_a.html").read_text()
    assert 'href="01_a.html#sec"' in a and a.count('href="02_b.html"') >= 2 and 'href="solutions/01_a.html"' in a
    assert 'data-source-href="99_missing.ipynb"' in a and 'href="https://example.org/x.ipynb"' in a
    assert "output_stderr" not in a and 'data-mime-type="application/vnd.jupyter.stderr"' not in a
    assert 'book-progress' in a and "100%|##| 2/2" in a and " 50%|" not in a
    assert 'book-log' in a and "a log line" in a
    sol = (out / "solutions" / "02_b.html").read_text()
    assert 'href="../02_b.html"' in sol and "$$x^2$$" in sol
    assert not (out / "01_a.failed.html").exists()
    # make run: the freshly executed copy wins over the committed one; reports are listed in the index
    executed = tmp_path / "executed"
    executed.mkdir()
    nb = nbformat.read(nbdir / "02_b.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("freshly executed"))
    nbformat.write(nb, executed / "02_b.ipynb")
    (out / "reports").mkdir()
    (out / "reports" / "user_7.html").write_text("<html></html>")
    index = build_book(nbdir, out, executed_dir=executed).read_text()
    assert "freshly executed" in (out / "02_b.html").read_text() and "freshly executed" not in (out / "01_a.html").read_text()
    assert 'href="reports/user_7.html"' in index


# --- a real browser: MathJax typesets the formulas offline ------------------------------------

def _install_chromium():
    """Debian's chromium, installed with apt-get when missing (root only); None with the reason."""
    found = shutil.which("chromium") or (os.path.exists("/usr/bin/chromium") and "/usr/bin/chromium")
    if found:
        return found, None
    if not shutil.which("apt-get"):
        return None, "chromium is not installed and apt-get is not available"
    if os.geteuid() != 0:
        return None, "chromium is not installed (apt-get install chromium needs root)"
    try:
        for cmd in (["apt-get", "install", "-y", "-qq", "chromium"],
                    ["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "chromium"]):
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                               env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
            if cmd[1] == "install" and r.returncode == 0:
                break
    except (subprocess.TimeoutExpired, OSError) as exc:
        return None, f"chromium is not installed and apt-get failed: {exc}"
    found = shutil.which("chromium")
    return (found, None) if found else (None, "chromium is not installed and apt-get install chromium failed "
                                              f"(no network or package?): {r.stderr.strip()[-300:]}")


@pytest.fixture(scope="session")
def chromium():
    path, why = _install_chromium()
    if path is None:
        pytest.skip(f"browser test skipped: {why}")
    return path


class _VisibleText(HTMLParser):
    """Text a reader sees: outside <script>, <style>, <code> and <pre> (code may show '$')."""

    SKIP = {"script", "style", "code", "pre", "textarea"}

    def __init__(self):
        super().__init__()
        self.depth, self.parts, self.body = 0, [], False

    def handle_starttag(self, tag, attrs):
        self.body |= tag == "body"
        if tag in self.SKIP:
            self.depth += 1

    def handle_endtag(self, tag):
        if tag in self.SKIP and self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.body and not self.depth:
            self.parts.append(data)


def _math_page(book):
    preferred = book / "04_decay_rate.html"
    if preferred.exists():
        return preferred
    for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"):
        if "$$" in p.read_text() and (book / f"{p.stem}.html").exists():
            return book / f"{p.stem}.html"
    pytest.skip("no page with display math")


@pytest.mark.slow
def test_browser_typesets_math_offline(book, chromium, tmp_path):
    page = _math_page(book)
    source = page.read_text().split("<main", 1)[1]  # the page's content, not the MathJax configuration
    display = re.findall(r"\$\$(.+?)\$\$", source, re.S)
    assert display, "the page should have display math ($$...$$) in its source"
    t0 = time.time()
    r = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'profile'}",
                        "--virtual-time-budget=15000", "--dump-dom", page.as_uri()],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "<body" in r.stdout, r.stderr[-2000:]
    dom = r.stdout
    print(f"chromium: {time.time() - t0:.1f} s")
    # MathJax 2 HTML-CSS (this book) / CommonHTML, MathJax 3, or KaTeX output
    markers = ('class="MathJax_Display"', 'class="MathJax"', 'class="MathJax_CHTML"', "mjx-chtml", "<mjx-container", 'class="katex"')
    assert any(m in dom for m in markers), "MathJax did not typeset anything"
    assert dom.count('type="math/tex; mode=display"') >= len(display)  # every display formula was processed
    parser = _VisibleText()
    parser.feed(dom)
    visible = re.sub(r"\s+", " ", "".join(parser.parts))
    assert "$$" not in visible, "raw $$ source is still visible"
    for tex in display:
        snippet = re.sub(r"\s+", " ", html.unescape(tex)).strip()[:30]
        assert snippet not in visible, f"formula source {snippet!r} is still visible as text"
    assert "Math Processing Error" not in visible and "[Math Processing Error]" not in dom
