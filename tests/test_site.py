"""The documentation site builds from the notebooks with one command, and reads as a site: a page per notebook, an
index that reaches them all, the shared header on every page, and no link that leaves the folder except to the web."""
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

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
