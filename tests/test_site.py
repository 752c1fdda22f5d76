"""The course site: built from executed notebooks, it works in a real browser with no network.

The static checks run anywhere. The browser test opens the site in headless Chromium (Debian's
``chromium`` package; ``.ci/run`` installs it when missing) through playwright, serves the site
folder on 127.0.0.1, visits every page reachable from the index and fails on a page error, a
console error, an HTTP error, a broken image, a broken internal link or anchor, an equation MathJax
did not typeset, or any request that leaves the site (such requests are blocked and recorded). It
saves a screenshot of the index to ``build/site-index.png``.

Executed notebooks: ``$SRLIB_SITE_NOTEBOOKS`` (e.g. ``build/notebooks/standard`` after
``make course``) when set; otherwise notebook 07 (every course table, the claims, equations,
figures, the explorer's static view) runs at the smoke profile into a temporary folder, which keeps
the test near a minute on two free cores.
"""

import functools
import http.server
import os
import shutil
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import nbformat
import pytest

from srlib import course, site

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
SMOKE_NOTEBOOKS = ["07"]


def _fake_executed(folder: Path) -> None:
    """Two executed-looking notebooks: Markdown with equations and a link, a PNG output, widget state."""
    import base64
    import io

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [1, 0])
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    png = base64.b64encode(buf.getvalue()).decode()
    for name, title in (("00_a", "00 · First"), ("01_b", "01 · Second")):
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\nInline $x^2$ and\n\n$$\\sum_i a_i$$\n\n"
                                                  "[an external link](https://arxiv.org/abs/1609.04802)\n\n## Part"),
                    nbformat.v4.new_code_cell("plot()", outputs=[nbformat.v4.new_output(
                        "display_data", data={"image/png": png, "text/plain": "<Figure>"})])]
        nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}, "version_major": 2}}
        nbformat.write(nb, folder / f"{name}.ipynb")


def test_site_pages_load_nothing_from_outside(tmp_path):
    src = tmp_path / "executed"
    src.mkdir()
    _fake_executed(src)
    claims = tmp_path / "claims.md"
    claims.write_text("# Claims\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    pages = site.build_site(src, tmp_path / "site", claims_md=claims, sources_dir=None, log=lambda *a: None)
    names = [p.name for p in pages]
    assert names == ["index.html", "00_a.html", "01_b.html", "claims.html"]
    index = (tmp_path / "site" / "index.html").read_text()
    assert 'href="00_a.html">00 · First</a>' in index and 'href="claims.html"' in index
    assert (tmp_path / "site" / "mathjax" / "tex-svg-full.js").is_file()
    import re
    for p in pages:
        text = p.read_text()
        for attr in re.findall(r'<(?:script|img|link|iframe|source)\b[^>]*?\b(?:src|href)="([^"]*)"', text):
            assert not re.match(r"^(https?:)?//", attr), f"{p.name} loads {attr} from outside the site"
        assert "require.min.js" not in text and "mermaid" not in text.lower().split("</style>")[-1]
    assert "widget-state" not in (tmp_path / "site" / "00_a.html").read_text()


def test_site_without_executed_notebooks_says_what_to_run(tmp_path):
    with pytest.raises(site.SiteError, match="make course"):
        site.build_site(tmp_path, tmp_path / "site", sources_dir=None)


# ------------------------------------------------------------------------------ in a browser


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("site")
    src = os.environ.get("SRLIB_SITE_NOTEBOOKS")
    if src:
        src = Path(src)
    else:
        src = tmp / "executed"
        results = course.run_course(profile="smoke", only=SMOKE_NOTEBOOKS, figures_dir=tmp / "figures",
                                    out_dir=src, log=lambda *a: None)
        failed = [f"{r.notebook}: {r.error}" for r in results if not r.ok]
        assert not failed, f"notebooks failed at smoke: {failed}"
    out = tmp / "site"
    site.build_site(src, out, log=lambda *a: None)
    return out


@pytest.fixture(scope="module")
def served(built_site):
    handler = functools.partial(_QuietHandler, directory=str(built_site))
    server = _Server(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _Server(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # the browser dropping a connection it no longer needs is not a site defect


_PAGE_STATE = r"""() => {
  const clone = document.body.cloneNode(true);
  clone.querySelectorAll('pre, code, script, style, textarea, .jp-InputArea, mjx-container')
      .forEach(e => e.remove());
  const text = clone.textContent;
  const re = /\$\$[\s\S]+?\$\$|\\\([\s\S]+?\\\)|\\\[[\s\S]+?\\\]|\$[^$\n]*\\[a-zA-Z]+[^$\n]*\$/g;
  return {
    unrendered: (text.match(re) || []).slice(0, 5),
    rendered: document.querySelectorAll('mjx-container').length,
    math_errors: document.querySelectorAll('mjx-merror, [data-mjx-error]').length,
    broken_images: Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0))
        .map(i => (i.getAttribute('src') || '').slice(0, 60)),
    images: document.images.length,
    links: Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href')),
    ids: Array.from(document.querySelectorAll('[id], a[name]')).map(e => e.id || e.getAttribute('name')),
  };
}"""

_MATHJAX_DONE = """() => new Promise((resolve, reject) => {
  if (!document.querySelector('script[src*="mathjax"]')) { resolve(true); return; }  // a page without math
  const t0 = Date.now();
  const wait = () => {
    const mj = window.MathJax;
    if (mj && mj.startup && mj.startup.promise) { mj.startup.promise.then(() => resolve(true), reject); }
    else if (Date.now() - t0 > 30000) { resolve(false); }
    else { setTimeout(wait, 50); }
  };
  wait();
})"""


def _chromium_or_skip():
    missing = []
    if CHROMIUM is None:
        missing.append("Debian's chromium (apt-get install -y chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("playwright (pip install -e '.[test]')")
    if missing:
        msg = "the site test needs " + " and ".join(missing)
        if os.environ.get("CI"):
            pytest.fail(msg + "; .ci/run installs chromium, make setup installs playwright")
        pytest.skip(msg)


@pytest.mark.notebook
@pytest.mark.slow
def test_site_in_headless_chromium(served, built_site, tmp_path):
    _chromium_or_skip()
    from playwright.sync_api import sync_playwright

    base = served
    outside, problems, visited = [], [], []
    math_total = 0
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900})
        try:
            def route(r):
                url = r.request.url
                if url.startswith(base) or url.startswith(("data:", "blob:", "about:")):
                    r.continue_()
                else:
                    outside.append(url)
                    r.abort()
            ctx.route("**/*", route)
            page = ctx.new_page()
            page.on("pageerror", lambda e: problems.append(f"{page.url}: page error: {e}"))
            page.on("console", lambda m: m.type == "error" and problems.append(f"{page.url}: console error: {m.text}"))
            page.on("response", lambda r: r.status >= 400 and problems.append(f"{page.url}: HTTP {r.status} for {r.url}"))

            queue, pending_anchors, ids_of = [base + "index.html"], {}, {}
            while queue:
                url = queue.pop(0)
                if url in visited:
                    continue
                visited.append(url)
                page.goto(url, wait_until="load", timeout=60_000)
                if not page.evaluate(_MATHJAX_DONE):
                    problems.append(f"{url[len(base):]}: MathJax did not start within 30 s")
                st = page.evaluate(_PAGE_STATE)
                name = url[len(base):]
                math_total += st["rendered"]
                if st["unrendered"]:
                    problems.append(f"{name}: equations left as TeX: {st['unrendered']}")
                if st["math_errors"]:
                    problems.append(f"{name}: {st['math_errors']} MathJax errors")
                if st["broken_images"]:
                    problems.append(f"{name}: broken images {st['broken_images']}")
                if url == base + "index.html":
                    (REPO / "build").mkdir(exist_ok=True)
                    page.screenshot(path=str(REPO / "build" / "site-index.png"), full_page=True)
                ids_of[url] = {urllib.parse.unquote(i) for i in st["ids"] if i}
                for src_name, frag in pending_anchors.pop(url, ()):
                    if frag not in ids_of[url]:
                        problems.append(f"{src_name}: link to {name}#{frag}: no such anchor")
                for href in st["links"]:
                    if href.startswith(("http://", "https://", "mailto:")) and not href.startswith(base):
                        continue  # a link the reader may follow, not a request the page makes
                    doc, _, frag = urllib.parse.urljoin(url, href).partition("#")
                    frag = urllib.parse.unquote(frag)
                    if not doc.startswith(base):
                        problems.append(f"{name}: link {href!r} leaves the site")
                        continue
                    if doc != url:
                        try:
                            urllib.request.urlopen(doc, timeout=10).close()
                        except urllib.error.URLError as exc:
                            problems.append(f"{name}: broken link {href!r} ({exc})")
                            continue
                        if doc.endswith(".html") and doc not in visited:
                            queue.append(doc)
                    if frag:
                        if doc in ids_of:
                            if frag not in ids_of[doc]:
                                problems.append(f"{name}: link {href!r} to a missing anchor")
                        else:
                            pending_anchors.setdefault(doc, set()).add((name, frag))
        finally:
            ctx.close()

    pages = {u[len(base):] for u in visited}
    expected = {p.name for p in built_site.glob("*.html")}
    assert pages == expected, f"pages not reachable from the index: {sorted(expected - pages)}"
    assert not outside, f"requests that left the site: {outside[:10]}"
    assert not problems, "\n".join(problems[:30])
    assert math_total > 0, "no equation was typeset on any page (MathJax did not run)"
    assert (REPO / "build" / "site-index.png").stat().st_size > 1000
