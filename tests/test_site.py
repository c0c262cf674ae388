"""The documentation site builds from the notebooks with one command, and reads as a site: a page per notebook, an
index that reaches them all, the shared header on every page, and no link that leaves the folder except to the web."""
import importlib.util
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from nbformat.v4 import new_code_cell, new_notebook, new_output

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (ROOT / "nbs").glob("*.ipynb"))


class Links(HTMLParser):
    """Every href and src on a page, and whether the shared header is there."""

    def __init__(self):
        super().__init__()
        self.targets, self.has_nav = [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "nav" and "site-nav" in (attrs.get("class") or "").split(): self.has_nav = True
        self.targets += [attrs[a] for a in ("href", "src") if attrs.get(a) is not None]


def links(path: Path) -> Links:
    parser = Links()
    parser.feed(path.read_text())
    return parser


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The site built by the command CI runs, into a fresh folder."""
    out = tmp_path_factory.mktemp("site") / "_site"
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "build_site.py"), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return out


def test_every_notebook_has_a_page(site):
    assert NOTEBOOKS and all((site / f"{name}.html").is_file() for name in NOTEBOOKS)


def test_the_index_links_to_every_page_and_lists_them_in_series_order(site):
    index = (site / "index.html").read_text()
    assert {f"{name}.html" for name in NOTEBOOKS} <= set(links(site / "index.html").targets)
    contents = Links()
    contents.feed(index[index.index('id="Contents"'):].split("<h2", 1)[0])   # the Contents section alone
    numbered = [n for n in NOTEBOOKS if n[0].isdigit()]
    assert [t for t in contents.targets if not t.startswith("#")] == \
        [f"{n}.html" for n in numbered] + ["train.html", "report.html", "your_idea.html", "noise_study.html"]


def test_every_page_has_the_shared_header(site):
    pages = sorted(site.glob("*.html"))
    assert len(pages) == len(NOTEBOOKS) + 1
    assert [p.name for p in pages if not links(p).has_nav] == []
    assert all("index.html" in links(p).targets for p in pages)


def test_no_link_leaves_the_site_except_to_the_web(site):
    outside = []
    for page in site.glob("*.html"):
        for target in links(page).targets:
            if target.startswith(("http://", "https://", "data:", "#")): continue
            local = (site / target.split("#")[0].split("?")[0]).resolve()   # a query (MathJax config) is no path
            if not (local.is_file() and local.is_relative_to(site.resolve())): outside.append(f"{page.name}: {target}")
    assert outside == []


def test_the_noise_study_page_embeds_its_figures(site):
    assert "data:image/png;base64" in (site / "noise_study.html").read_text()


def test_every_script_is_in_the_site_so_pages_render_offline(site):
    "MathJax ships with the site (no CDN); nothing loads a script from the web."
    remote = [f"{p.name}: {s}" for p in site.glob("*.html") for s in re.findall(r'<script[^>]*\ssrc="([^"]+)"', p.read_text())
              if s.startswith(("http://", "https://", "//"))]
    assert remote == []
    mathjax = re.search(r'<script[^>]*\ssrc="(mathjax/MathJax\.js[^"]*)"', (site / "12_stats.html").read_text())
    assert mathjax and (site / mathjax.group(1).split("?")[0]).is_file()


# --- what a reader sees: directives and stderr gone, cross-references and the post linked ---------------------------
_spec = importlib.util.spec_from_file_location("build_site", ROOT / "tools" / "build_site.py")
build_site = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(build_site)
STEMS = {"08_records", "10_train", "train", "report", "noise_study"}


def test_nbdev_directives_and_stderr_are_not_shown():
    nb = new_notebook(cells=[
        new_code_cell("#| default_exp export"),
        new_code_cell("#| export\n#| hide_line\ndef f(): return 1", outputs=[]),
        new_code_cell("#| hide\nsecret = 1"),
        new_code_cell("import tqdm\nf()", outputs=[new_output("stream", name="stderr", text="TqdmWarning: x\n"),
                                                 new_output("execute_result", data={"text/plain": "1"}, execution_count=1)]),
        new_code_cell("#| echo: false\nf()", outputs=[new_output("stream", name="stdout", text="shown\n")])])
    nb = build_site.for_readers(nb)
    cells = nb.cells
    assert [c.source for c in cells] == ["def f(): return 1", "import tqdm\nf()", ""]
    assert [c.metadata.get("tags", []) for c in cells] == [[build_site.EXPORTED], [], []]   # labelled instead
    assert 'content: "in gptnb.export"' in build_site.exported_css(nb)
    assert [[o.output_type for o in c.outputs] for c in cells] == [[], ["execute_result"], ["stream"]]
    assert cells[2].metadata["transient"] == {"remove_source": True}


def test_the_built_pages_show_no_directive_and_no_stderr(site):
    for page in site.glob("[0-9]*.html"):
        text = page.read_text()
        assert not re.search(r"#\|\s*(export|default_exp|hide)", text), page.name
        assert 'data-mime-type="application/vnd.jupyter.stderr"' not in text, page.name
    assert f"celltag_{build_site.EXPORTED}" in (site / "16_export.html").read_text()


def test_a_notebook_named_in_prose_links_to_its_page():
    html = ("<p>as in <code>08_records</code>, <code>nbs/10_train.ipynb</code> and 08_records.ipynb; see 10_train.</p>"
            "<p><code>train</code> is a function, train.ipynb a notebook, <code>report</code> a command</p>"
            "<table><tr><td><code>train</code></td><td><code>report</code> and more</td></tr></table>"
            "<pre><code>python nbs/10_train.ipynb 08_records</code></pre><a href='x'>08_records</a>"
            "<p>nbs_md/08_records.md, 08_records.md, x08_records and noise_study</p>")
    linked = build_site.linkify(html, STEMS, here="noise_study")
    assert re.findall(r'<a href="([\w.]+)">(.*?)</a>', linked) == [
        ("08_records.html", "<code>08_records</code>"), ("10_train.html", "<code>nbs/10_train.ipynb</code>"),
        ("08_records.html", "08_records.ipynb"), ("10_train.html", "10_train"), ("train.html", "train.ipynb"),
        ("train.html", "<code>train</code>")]
    assert "<pre><code>python nbs/10_train.ipynb 08_records</code></pre>" in linked   # code blocks stay code


def test_the_post_is_linked_from_its_title():
    html = '<p>the study in <em>"Writing an LLM from scratch, part 32i —\nInterventions: what is in the noise?"</em></p>'
    assert f'<a href="{build_site.POST_URL}">Writing an LLM' in build_site.linkify(html, STEMS)


def test_the_site_links_cross_references_and_the_post(site):
    assert "08_records.html" in links(site / "10_train.html").targets
    assert "12_stats.html" in links(site / "noise_study.html").targets
    for page in ("index.html", "noise_study.html", "15_post.html"):
        assert build_site.POST_URL in links(site / page).targets, page
