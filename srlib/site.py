"""The course as a static web site: the executed notebooks rendered to HTML, readable offline.

    python -m srlib.site --notebooks build/notebooks/standard --out build/site     (make site)

Each executed notebook that ``make course`` wrote (``build/notebooks/<profile>/NN_*.ipynb``) becomes
``NN_*.html`` through nbconvert's JupyterLab template, with its figures embedded as data URIs;
``index.html`` lists them (and the notebooks not executed yet) and ``claims.html`` shows
``figures/claims.md``. Everything a page loads comes from the site folder: the equations are
typeset by MathJax 3 (the ``tex-svg-full`` component, which draws glyphs as SVG paths and so needs
no web fonts) from the copy the ``django-static-mathjax`` package ships, copied to
``<site>/mathjax/``; the template's require.js and mermaid loaders, which would fetch from a CDN,
are left out (the course has neither widgets with saved state nor mermaid diagrams; widget
state is dropped, so the explorer of notebook 07 shows its static view). Open ``index.html`` from
disk or serve the folder with any static file server.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
MATHJAX_DIR = "mathjax"
MATHJAX_URL = f"{MATHJAX_DIR}/tex-svg-full.js"
TEMPLATE_NAME = "srlib_site.html.j2"

# The lab template, minus everything it would load from the network.
_TEMPLATE = r"""
{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block jupyter_widgets %}{% endblock jupyter_widgets %}
{%- block html_head_js_mathjax -%}
<script>
window.MathJax = {
  tex: { inlineMath: [["$", "$"], ["\\(", "\\)"]], displayMath: [["$$", "$$"], ["\\[", "\\]"]],
         processEscapes: true, processEnvironments: true, tags: "ams" },
  svg: { fontCache: "global" },
  options: { ignoreHtmlClass: "tex2jax_ignore", processHtmlClass: "tex2jax_process" }
};
</script>
<script src="{{ resources.mathjax_url }}" defer></script>
{%- endblock html_head_js_mathjax -%}
{%- block body_header -%}
{{ super() }}
<nav class="srlib-nav" style="padding: 8px 16px; border-bottom: 1px solid #ddd; font-family: sans-serif;">
{{ resources.srlib_nav }}
</nav>
{%- endblock body_header -%}
"""

_PAGE_CSS = """
body { font-family: -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; max-width: 60em;
       margin: 2em auto; padding: 0 1em; line-height: 1.5; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 4px 8px; vertical-align: top; text-align: left; }
th { background: #f3f3f3; }
.missing { color: #888; }
"""


class SiteError(RuntimeError):
    """The site cannot be built (no executed notebooks, MathJax not installed)."""


@dataclass(frozen=True)
class Page:
    source: Path
    html_name: str
    title: str


def mathjax_source() -> Path:
    """The MathJax 3 ``es5`` folder shipped by the ``django-static-mathjax`` package (MathJax 3.2.2,
    no dependencies; only its files are used here)."""
    try:
        import mathjax
    except ImportError as exc:
        raise SiteError("MathJax for the site comes from the django-static-mathjax package, which is not "
                        "installed: `make setup` (or pip install -e '.[course]')") from exc
    root = Path(mathjax.__file__).resolve().parent / "static" / "mathjax" / "es5"
    if not (root / "tex-svg-full.js").is_file():
        raise SiteError(f"no tex-svg-full.js under {root}: reinstall django-static-mathjax")
    return root


def notebook_title(nb) -> str:
    """The first Markdown heading of a notebook (without the ``#``), or its file name."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            m = re.search(r"^#\s+(.+)$", cell.source, flags=re.M)
            if m:
                return m.group(1).strip()
    return ""


def _exporter():
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exp = HTMLExporter(template_name="lab", extra_loaders=[DictLoader({TEMPLATE_NAME: _TEMPLATE})])
    exp.template_file = TEMPLATE_NAME
    exp.mathjax_url = MATHJAX_URL
    exp.embed_images = True
    return exp


def _nav(pages: list[Page], i: int | None) -> str:
    links = ['<a href="index.html">course index</a>', '<a href="claims.html">claims</a>']
    if i is not None:
        if i > 0:
            links.append(f'<a href="{pages[i - 1].html_name}">previous: {html.escape(pages[i - 1].title)}</a>')
        if i + 1 < len(pages):
            links.append(f'<a href="{pages[i + 1].html_name}">next: {html.escape(pages[i + 1].title)}</a>')
    return " &middot; ".join(links)


def _export(exp, nb, title: str, nav: str) -> str:
    body, _ = exp.from_notebook_node(nb, resources={"metadata": {"name": title}, "srlib_nav": nav})
    return body


def build_site(notebooks_dir: str | Path, out_dir: str | Path, *,
               claims_md: str | Path | None = REPO_ROOT / "figures" / "claims.md",
               sources_dir: str | Path | None = REPO_ROOT / "notebooks", log=print) -> list[Path]:
    """Render every executed ``NN_*.ipynb`` of ``notebooks_dir`` into ``out_dir``; returns the pages.

    ``out_dir`` is emptied first (only the files this function writes are ever in it).
    ``sources_dir``: the course notebooks; those without an executed copy are listed on the index
    as not executed. ``claims_md``: rendered as ``claims.html`` when it exists.
    """
    import nbformat

    start = time.time()
    notebooks_dir, out_dir = Path(notebooks_dir), Path(out_dir)
    executed = sorted(notebooks_dir.glob("[0-9][0-9]_*.ipynb"))
    if not executed:
        raise SiteError(f"no executed notebooks in {notebooks_dir}: run `make course` (PROFILE=standard, "
                        f"or the profile you want) first; it writes build/notebooks/<profile>/")
    mj = mathjax_source()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    shutil.copytree(mj, out_dir / MATHJAX_DIR)

    nbs = [nbformat.read(p, as_version=4) for p in executed]
    pages = [Page(p, p.stem + ".html", notebook_title(nb) or p.stem) for p, nb in zip(executed, nbs)]
    exp = _exporter()
    written = []
    for i, (page, nb) in enumerate(zip(pages, nbs)):
        nb.metadata.pop("widgets", None)  # static pages: no widget manager to load
        (out_dir / page.html_name).write_text(_export(exp, nb, page.title, _nav(pages, i)), encoding="utf-8")
        written.append(out_dir / page.html_name)
        log(f"  {page.html_name}: {page.title}")

    claims_path = Path(claims_md) if claims_md else None
    if claims_path and claims_path.is_file():
        text = claims_path.read_text()
    else:
        text = "# The course's claims\n\nNo `figures/claims.md` yet: run `python -m srlib.claims build`."
    claims_nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(text)])
    (out_dir / "claims.html").write_text(_export(exp, claims_nb, "The course's claims", _nav(pages, None)),
                                         encoding="utf-8")
    written.append(out_dir / "claims.html")

    profile = _profile_of(notebooks_dir, nbs)
    done = {p.source.stem for p in pages}
    missing = sorted(p.stem for p in Path(sources_dir).glob("[0-9][0-9]_*.ipynb")
                     if p.stem not in done) if sources_dir and Path(sources_dir).is_dir() else []
    (out_dir / "index.html").write_text(_index(pages, missing, profile), encoding="utf-8")
    written.insert(0, out_dir / "index.html")
    log(f"site: {len(pages)} notebooks, {out_dir / 'index.html'} ({time.time() - start:.1f} s)")
    return written


def _profile_of(notebooks_dir: Path, nbs) -> str:
    for nb in nbs:
        params = nb.metadata.get("papermill", {}).get("parameters", {})
        if "profile" in params:
            return str(params["profile"])
    return notebooks_dir.name


def _index(pages: list[Page], missing: list[str], profile: str) -> str:
    entries = [(p.source.stem, f'<tr><td>{html.escape(p.source.stem[:2])}</td><td><a href="{p.html_name}">'
                               f"{html.escape(p.title)}</a></td></tr>") for p in pages]
    entries += [(m, f'<tr class="missing"><td>{html.escape(m[:2])}</td><td>{html.escape(m)} '
                    f"(not executed: <code>make course ONLY={html.escape(m[:2])}</code>)</td></tr>")
                for m in missing]
    rows = "\n".join(row for _, row in sorted(entries))
    note = ("" if profile == "standard" else
            f"<p><strong>These notebooks ran at the {html.escape(profile)} profile: their numbers only show "
            "that the code runs.</strong> The course's results come from the standard profile.</p>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>GAN-based image super-resolution: the course</title><style>{_PAGE_CSS}</style></head>
<body><main>
<h1>GAN-based image super-resolution: a notebook course</h1>
<p>The executed notebooks of the course (profile <strong>{html.escape(profile)}</strong>), with every
figure and table as <code>make course</code> produced them, and the
<a href="claims.html">claims table</a>: each claim of the five source texts, the paper's number,
ours, and whether it held.</p>
{note}
<table><thead><tr><th>#</th><th>notebook</th></tr></thead><tbody>
{rows}
</tbody></table>
<p>Built by <code>make site</code> (<code>python -m srlib.site</code>); everything on these pages is
served from this folder.</p>
</main></body></html>
"""


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m srlib.site", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="standard", help="which executed notebooks: build/notebooks/<profile>")
    ap.add_argument("--notebooks", type=Path, default=None,
                    help="folder of executed notebooks (default: build/notebooks/<profile>)")
    ap.add_argument("--out", type=Path, default=REPO_ROOT / "build" / "site", help="the site folder")
    ap.add_argument("--claims", type=Path, default=REPO_ROOT / "figures" / "claims.md")
    args = ap.parse_args(argv)
    src = args.notebooks or REPO_ROOT / "build" / "notebooks" / args.profile
    try:
        build_site(src, args.out, claims_md=args.claims)
    except SiteError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
