"""Build the documentation site: every notebook in nbs/ as an HTML page, README.md as index.html.

    python tools/build_site.py [--out _site]

nbdev's own docs need Quarto; this needs only nbconvert, which jupyterlab already brings. The notebooks are rendered
as committed (never executed), so the build takes seconds and shows exactly what is in git: the numbered notebooks
are committed clean, noise_study.ipynb with its outputs and figures. Every link is relative, so the folder can be
opened from disk or served from anywhere."""
import argparse
import html
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter, filters

ROOT = Path(__file__).resolve().parents[1]
# the experiment notebooks follow the numbered series, in the order the README's table lists them
EXPERIMENTS = ["train", "report", "your_idea", "noise_study"]   # the parameterised notebooks, after the series
SITE_NAME = "gptnb"

# the shared header: small, sticky, and styled here rather than in a stylesheet file so that every page stands alone
SITE_CSS = """
.site-nav { position: sticky; top: 0; z-index: 10; display: flex; gap: 1.2em; align-items: baseline; flex-wrap: wrap;
  padding: 0.55em 1.2em; background: #f6f8fa; border-bottom: 1px solid #d0d7de;
  font: 14px/1.4 -apple-system, BlinkMacSystemFont, "Segoe UI", Helvetica, Arial, sans-serif; }
.site-nav a { color: #0969da; text-decoration: none; }
.site-nav a:hover { text-decoration: underline; }
.site-nav .site-name { font-weight: 600; color: #1f2328; }
.site-nav .site-prev, .site-nav .site-next { white-space: nowrap; overflow: hidden; text-overflow: ellipsis;
  max-width: 40em; }
.site-nav .site-next { margin-left: auto; }
.site-nav .site-none { color: #8c959f; }
/* the lab template lets a figure grow to its full pixel width; keep it inside the page */
.jp-RenderedImage img { max-width: 100%; height: auto; }
body.jp-Notebook { max-width: 1100px; margin: 0 auto; }
/* code blocks in Markdown (the README's commands) get no box in the lab theme and run into the next paragraph */
.jp-RenderedMarkdown .highlight, .jp-RenderedMarkdown > pre {
  background: var(--jp-cell-editor-background, #f5f5f5); padding: 0.4em 0.8em; margin: 0.5em 0 1em;
  border: 1px solid var(--jp-cell-editor-border-color, #e0e0e0); border-radius: 3px; overflow-x: auto; }
.jp-RenderedMarkdown .highlight pre { background: transparent; border: 0; padding: 0; margin: 0; }
/* a notebook's name in code that links to its page should look like a link */
.jp-RenderedHTMLCommon a code { color: var(--jp-content-link-color, #0969da); }
"""


class Page:
    """One notebook's page: where it comes from, where it goes, and the title the navigation shows."""

    def __init__(self, path: Path):
        self.path, self.nb = path, for_readers(without_front_matter(nbformat.read(path, as_version=4)))
        self.stem, self.href, self.title = path.stem, f"{path.stem}.html", first_heading(self.nb) or path.stem


def without_front_matter(nb):
    """Drop raw cells holding nbdev/Quarto front matter (`---` YAML `---`, e.g. `skip_exec: true`): settings for
    nbdev's tools, not text for a reader, and the lab template would print them verbatim."""
    def front_matter(c):
        return c.cell_type == "raw" and re.fullmatch(r"---\n.*\n---", c.source.strip(), re.DOTALL) is not None
    nb.cells = [c for c in nb.cells if not front_matter(c)]
    return nb


EXPORTED = "gptnb-exported"   # the tag (and, as `celltag_…`, the CSS class) of a cell nbdev exports to the package
DIRECTIVE = re.compile(r"#\|\s*([\w-]+)(?::?\s*(.*))?")


def for_readers(nb):
    """What nbdev's own docs show of a notebook: the `#| ` directive lines at the top of a code cell removed, a cell
    marked `#| hide` dropped (and a cell left with neither code nor output, e.g. `#| default_exp`), `#| echo: false`
    showing the output alone and `#| output: false` the code alone; and no stderr output (warnings and progress
    bars are the machine talking, not the notebook; tools/check_outputs.py keeps them out of the numbered ones).
    An exported cell keeps what its directive told a reader, as a label naming the module (see exported_css)."""
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code": cells.append(cell); continue
        lines, directives = cell.source.splitlines(), {}
        while lines and (m := DIRECTIVE.fullmatch(lines[0].strip())):
            directives[m.group(1)] = (m.group(2) or "").strip(); lines.pop(0)
        if "hide" in directives: continue
        if "default_exp" in directives: nb.metadata["gptnb_module"] = directives["default_exp"]
        if directives.keys() & {"export", "exports", "exporti"}: cell.metadata.setdefault("tags", []).append(EXPORTED)
        cell.source = "" if directives.get("echo") == "false" else "\n".join(lines).strip("\n")
        cell.outputs = [] if directives.get("output") == "false" else \
            [o for o in cell.get("outputs", []) if not (o.output_type == "stream" and o.get("name") == "stderr")]
        if not cell.source and not cell.outputs: continue
        if not cell.source: cell.metadata.setdefault("transient", {})["remove_source"] = True
        cells.append(cell)
    nb.cells = cells
    return nb


def exported_css(nb) -> str:
    "The label on the code cells a notebook exports: a rule on the left and the module's name (from `default_exp`)."
    module = nb.metadata.get("gptnb_module")
    label = f"in gptnb.{module}" if module else "in the package"
    return (f'.celltag_{EXPORTED} .jp-InputArea-editor {{ border-left: 3px solid #0969da; position: relative; }}\n'
            f'.celltag_{EXPORTED} .jp-InputArea-editor::after {{ content: "{label}"; position: absolute; top: 2px; '
            f'right: 6px; font: 11px/1.2 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #57606a; }}')


def first_heading(nb) -> str:
    """The text of the notebook's first `# ` heading: each notebook names itself there, nowhere else."""
    for cell in nb.cells:
        if cell.cell_type != "markdown": continue
        for line in cell.source.splitlines():
            if line.startswith("# "): return line[2:].strip()
    return ""


def series_order(nbs: Path) -> list[Path]:
    """The numbered notebooks in number order, then the experiments, then anything else (so nothing is dropped)."""
    paths = sorted(nbs.glob("*.ipynb"))
    numbered = [p for p in paths if p.stem[:1].isdigit()]
    experiments = [nbs / f"{s}.ipynb" for s in EXPERIMENTS if (nbs / f"{s}.ipynb").exists()]
    return numbered + experiments + [p for p in paths if p not in numbered and p not in experiments]


def plain(title: str) -> str:
    """A heading as text for <title> and link labels: Markdown's backticks dropped, HTML escaped."""
    return html.escape(title.replace("`", ""))


def nav_bar(pages: list[Page], i: int | None) -> str:
    """The header every page shares: the index, and the previous and next notebook (i is None on the index)."""
    after = 0 if i is None else i + 1   # the index leads to the first notebook
    prev_page, next_page = pages[i - 1] if i else None, pages[after] if after < len(pages) else None

    def link(page, cls, arrow_left, arrow_right):
        if page is None: return f'<span class="{cls} site-none"></span>'
        return f'<a class="{cls}" href="{page.href}">{arrow_left}{plain(page.title)}{arrow_right}</a>'
    return ('<nav class="site-nav">'
            f'<a class="site-name" href="index.html">{SITE_NAME}</a>'
            f'{link(prev_page, "site-prev", "← ", "")}{link(next_page, "site-next", "", " →")}</nav>')


def inject(page_html: str, nav: str, css: str = "") -> str:
    """Put the site's CSS (and a page's own `css`) into <head> and the header straight after <body>: the template
    stays nbconvert's own."""
    page_html = page_html.replace("</head>", f"<style>{SITE_CSS}{css}</style>\n{MATHJAX_FONTS}\n</head>", 1)
    return re.sub(r"(<body[^>]*>)", lambda m: m.group(1) + "\n" + nav, page_html, count=1)


def rewrite_links(page_html: str, stems: set[str]) -> str:
    """Links to a notebook (nbs/X.ipynb, X.ipynb) go to its page; links to the README go to the index."""
    def href(m):
        target = m.group(2)
        name = re.fullmatch(r"(?:\.\./|\./)?(?:nbs/)?([\w.-]+)\.ipynb(#.*)?", target)
        if name and name.group(1) in stems: target = f"{name.group(1)}.html{name.group(2) or ''}"
        elif re.fullmatch(r"(?:\.\./)?README\.md", target): target = "index.html"
        return f'{m.group(1)}"{target}"'
    return re.sub(r'(href=)"([^"]*)"', href, page_html)


# what the study reproduces; README.md names it in its opening paragraph (without a link: the README is read offline)
POST_TITLE = "Writing an LLM from scratch, part 32i — Interventions: what is in the noise?"
POST_URL = "https://www.gilesthomas.com/2026/04/llm-from-scratch-32i-interventions-what-is-in-the-noise"
POST_PAGES = ("noise_study", "15_post")   # the pages about the post say so under their title
POST_MENTION = re.compile(r"Writing an LLM from scratch, part 32i\s+(?:—|--|&mdash;)\s+Interventions: what is in the noise\?")
SKIP = {"a", "pre", "script", "style", "title", "head", "textarea"}   # no link is made inside these


def mention_pattern(stems: set[str]) -> re.Pattern:
    """A notebook named in prose: `08_records`, `08_records.ipynb` or `nbs/08_records.ipynb`. A name that is also an
    ordinary word (`train`, `report`) counts only with its `.ipynb`; one with a digit or `_` counts bare."""
    def alternative(stem):
        plain = any(c.isdigit() or c == "_" for c in stem)
        return re.escape(stem) + (r"(?:\.ipynb)?" if plain else r"\.ipynb")
    names = "|".join(alternative(s) for s in sorted(stems, key=len, reverse=True))
    return re.compile(rf"(?<![\w/.-])(?:nbs/)?({names})(?!\.?[\w-])")


def linkify(page_html: str, stems: set[str], here: str | None = None) -> str:
    """Link what the prose names: each notebook mentioned (see mention_pattern) to its page, and the post's title to
    the post. Inline code counts when it is exactly a mention, or a bare notebook name alone in a table cell (the
    README's table of notebooks). Never inside a link, a code block or a page's own name for itself."""
    others = stems - {here}
    mention, parts = mention_pattern(others), [p for p in re.split(r"(<[^>]+>)", page_html) if p]
    def href(m): return f'{m.group(1).removesuffix(".ipynb")}.html'
    skip, out = 0, []
    for i, part in enumerate(parts):
        tag = re.match(r"<(/?)(\w+)", part)
        if tag and tag.group(2).lower() in SKIP: skip = max(0, skip + (-1 if tag.group(1) else 1))
        if tag or skip: out.append(part); continue
        if parts[i - 1] == "<code>" and parts[i + 1] == "</code>":   # inline code: all of it a name, or nothing
            m, alone_in_cell = mention.fullmatch(part), parts[i - 2] == "<td>" and parts[i + 2] == "</td>"
            target = href(m) if m else f"{part}.html" if alone_in_cell and part in others else None
            if target: out[-1], parts[i + 1] = f'<a href="{target}"><code>', "</code></a>"
            out.append(part); continue
        part = mention.sub(lambda m: f'<a href="{href(m)}">{m.group(0)}</a>', part)
        out.append(POST_MENTION.sub(lambda m: f'<a href="{POST_URL}">{m.group(0)}</a>', part))
    return "".join(out)


def with_post_line(nb):
    "A line under the notebook's title naming the post it reproduces, linked."
    for cell in nb.cells:
        if cell.cell_type == "markdown" and re.search(r"^# ", cell.source, re.MULTILINE):
            line = f"*Reproduces [{POST_TITLE}]({POST_URL}) (Giles Thomas, 7 April 2026).*"
            cell.source = re.sub(r"^(# .*)$", lambda m: f"{m.group(1)}\n\n{line}", cell.source, count=1, flags=re.MULTILINE)
            break
    return nb


def clean_html(text) -> str:
    """nbconvert's sanitizer, skipped for code cells: the lab template runs bleach over every code cell's pygments
    output, which pygments has already escaped, and that alone was about half of the build's time."""
    text = text.decode() if isinstance(text, bytes) else str(text)
    return text if re.match(r'<div class="\s*highlight', text) else filters.clean_html(text)


MATHJAX_DIR = "mathjax"
MATHJAX_URL = f"{MATHJAX_DIR}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"


def copy_mathjax(out: Path) -> None:
    """MathJax 2, as the jupyter-server-mathjax package ships it, into the site: formulas render with no network."""
    import jupyter_server_mathjax
    shutil.copytree(Path(jupyter_server_mathjax.__file__).parent / "static", out / MATHJAX_DIR)


# the package ships the STIX-Web fonts only; MathJax would otherwise look for its TeX fonts and fail on some symbols
MATHJAX_FONTS = ('<script type="text/x-mathjax-config">MathJax.Hub.Config({"HTML-CSS": {availableFonts: [], '
                 'webFont: "STIX-Web", imageFont: null}, SVG: {font: "STIX-Web"}});</script>')


def without_requirejs(page_html: str) -> str:
    """The lab template loads RequireJS from a CDN for interactive widgets; static pages have none, so drop it."""
    return re.sub(r'<script src="[^"]*require(?:\.min)?\.js"></script>\s*', "", page_html)


def exporter() -> HTMLExporter:
    """nbconvert's JupyterLab look; images embedded so each page is one self-contained file; no prompts, since the
    numbered notebooks are committed unexecuted and a column of `[ ]:` would only be noise; MathJax from the site."""
    exp = HTMLExporter(template_name="lab", embed_images=True, exclude_input_prompt=True,
                       exclude_output_prompt=True, mathjax_url=MATHJAX_URL)
    exp.register_filter("clean_html", clean_html)
    return exp


def render(nb, title: str, source_dir: Path, exp: HTMLExporter) -> str:
    """One notebook to HTML as committed: never executed. source_dir resolves relative image paths."""
    resources = {"metadata": {"name": plain(title), "path": str(source_dir)}}
    body, _ = exp.from_notebook_node(nb, resources=resources)
    return without_requirejs(body)


def contents_markdown(pages: list[Page]) -> str:
    """The index's navigation list: the numbered series in order, then the experiment notebooks."""
    series = [p for p in pages if p.stem not in EXPERIMENTS]
    rest = [p for p in pages if p.stem in EXPERIMENTS]
    lines = ["## Contents", "", "**The notebook series**", ""]
    lines += [f"1. [{p.title}]({p.href})" for p in series]
    lines += ["", "**The experiments**", ""] + [f"- [{p.title}]({p.href})" for p in rest]
    return "\n".join(lines)


def index_notebook(readme: str, pages: list[Page]):
    """README.md as a one-notebook page, the contents list after its opening (before its first `## ` section).

    Rendering it through the same exporter gives the index the notebooks' look, tables and code highlighting."""
    head, sep, tail = readme.partition("\n## ")
    cells = [head, contents_markdown(pages)] + ([sep.lstrip("\n") + tail] if sep else [])
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(c) for c in cells])


def copy_images(page_html: str, source_dir: Path, out: Path) -> list[Path]:
    """Images a page still references by relative path (embed_images inlines Markdown images, not <img> tags):
    copy each into the site at the same relative path, so the reference keeps working."""
    copied = []
    for src in re.findall(r'<img[^>]*\ssrc="([^"]+)"', page_html):
        if re.match(r"[a-z]+:|/|#", src) or ".." in Path(src).parts: continue   # URLs, data: URIs, outside the repo
        source = source_dir / src
        if source.is_file():
            (out / src).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, out / src)
            copied.append(out / src)
    return copied


def build(out: Path, root: Path = ROOT) -> list[Path]:
    """Write the whole site into out (replacing what was there) and return the files written, index first."""
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    copy_mathjax(out)
    pages, exp = [Page(p) for p in series_order(root / "nbs")], exporter()
    stems = {p.stem for p in pages}
    index = render(index_notebook((root / "README.md").read_text(), pages), SITE_NAME, root, exp)
    index = inject(linkify(rewrite_links(index, stems), stems), nav_bar(pages, None))
    (out / "index.html").write_text(index)
    written = [out / "index.html"] + copy_images(index, root, out)
    for i, page in enumerate(pages):
        nb = with_post_line(page.nb) if page.stem in POST_PAGES else page.nb
        body = linkify(rewrite_links(render(nb, page.title, page.path.parent, exp), stems), stems, page.stem)
        (out / page.href).write_text(inject(body, nav_bar(pages, i), exported_css(page.nb)))
        written += [out / page.href] + copy_images(body, page.path.parent, out)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "_site", help="the site's folder (default: _site/)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    written = build(args.out.resolve())
    for path in written: print(path.relative_to(args.out.resolve()))
    print(f"{len(written)} files written to {args.out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
