"""The HTML report: a table of contents whose links land, tables in boxes that scroll sideways,
figures at their drawn size, each with a caption saying what it shows."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from report_helpers import TaskSpec, make_run

from vlabench.report import pngmeta
from vlabench.report.figstyle import plt, save
from vlabench.report.html import STYLE, page
from vlabench.report.render import Table


class Tree(HTMLParser):
    """Ids, links, and for every <img>/<table> the chain of its enclosing elements."""

    VOID = {"meta", "img", "br", "hr", "link", "input"}

    def __init__(self, text: str):
        super().__init__()
        self.stack: list[tuple[str, dict]] = []
        self.ids: list[str] = []
        self.hrefs: list[str] = []
        self.found: dict[str, list[tuple[dict, list[tuple[str, dict]]]]] = {}
        self.captions: list[str] = []
        self._in_caption = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.append(a["id"])
        if tag == "a" and "href" in a:
            self.hrefs.append(a["href"])
        if tag in ("img", "table", "figcaption"):
            self.found.setdefault(tag, []).append((a, list(self.stack)))
        if tag == "figcaption":
            self._in_caption = True
            self.captions.append("")
        if tag not in self.VOID:
            self.stack.append((tag, a))

    def handle_endtag(self, tag):
        if tag == "figcaption":
            self._in_caption = False
        while self.stack:
            if self.stack.pop()[0] == tag:
                break

    def handle_data(self, data):
        if self._in_caption:
            self.captions[-1] += data


def _table(key: str, title: str, width: int = 3) -> Table:
    t = Table(key, title, ["Method"] + [f"column {i}" for i in range(width)])
    t.add(["FastV (50%)"] + ["97.1 [95.0, 98.3]"] * width)
    return t


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    out = tmp_path_factory.mktemp("img")
    paths = []
    for i, size in enumerate([(4.0, 3.0), (12.0, 4.0)]):
        fig, ax = plt().subplots(figsize=size)
        ax.plot([0, 1], [i, 1])
        paths.append(save(fig, out, f"fig{i}", f"Figure title {i}", f"What figure {i} shows."))
    return paths


def test_contents_link_every_table_and_figure_to_an_id_on_the_page(images):
    tables = [_table("runs", "All runs"), _table("runs", "All runs, again"), _table("t1", "Table 1")]
    html = page("r", ["intro"], tables, images, notes=["deviation one", "deviation two"])
    tree = Tree(html)
    assert len(tree.ids) == len(set(tree.ids))  # a repeated table key still gets its own id
    internal = [h for h in tree.hrefs if h.startswith("#")]
    assert internal and all(h[1:] in tree.ids for h in internal)
    toc = html[html.index('<nav class="toc"'):html.index("</nav>")]
    for t in tables:
        assert t.title in toc
    assert "Figure 1: Figure title 0" in toc and "Figure 2: Figure title 1" in toc
    assert len(re.findall(r'href="#table-', toc)) == 3 and len(re.findall(r'href="#figure-', toc)) == 2
    assert 'id="note-2">deviation two' in html and 'href="#notes"' in toc


def test_every_image_is_a_figure_with_its_caption(images):
    tree = Tree(page("r", [], [], images))
    imgs = tree.found["img"]
    assert len(imgs) == 2
    for attrs, parents in imgs:
        assert "figure" in [tag for tag, _ in parents]
        assert attrs["alt"].startswith("Figure title")
    assert [c.strip() for c in tree.captions] == ["Figure 1. What figure 0 shows.",
                                                 "Figure 2. What figure 1 shows."]
    assert "Other words." in page("r", [], [], images, captions={"fig1": "Other words."})


def test_figures_are_shown_at_their_drawn_size(images):
    tree = Tree(page("r", [], [], images))
    for (attrs, _), png in zip(tree.found["img"], images, strict=True):
        w, h = pngmeta.size(png.read_bytes())
        assert int(attrs["width"]) == round(w / 2) and int(attrs["height"]) == round(h / 2)
    wide = int(tree.found["img"][1][0]["width"])
    assert 900 < wide <= 1200  # a 12-inch figure (trimmed): about 100 CSS pixels per inch
    assert re.search(r"figure img \{[^}]*max-width: none", STYLE)


def test_tables_and_figures_scroll_sideways_instead_of_overflowing(images):
    tree = Tree(page("r", [], [_table("wide", "Wide", width=40)], images))
    assert re.search(r"\.scroll \{[^}]*overflow-x: auto", STYLE)
    for tag in ("table", "img"):
        for _, parents in tree.found[tag]:
            assert any("scroll" in a.get("class", "").split() for _, a in parents), tag


def test_report_html_has_contents_and_a_captioned_figure_per_plot(tmp_path):
    from vlabench.report.build import report

    for pruner, ret, lat in (("none", None, 100.0), ("fastv", 0.25, 60.0)):
        make_run(tmp_path / "runs", f"{pruner}", model="m", pruner=pruner, suite="libero_goal",
                 retention=ret, tasks=[TaskSpec("turn_on_the_stove", 3, 4, latency_ms=lat)])
    report([str(tmp_path / "runs")], "html", tmp_path / "out")
    html = (tmp_path / "out" / "report.html").read_text()
    tree = Tree(html)
    plots = sorted((tmp_path / "out" / "plots").glob("*.png"))
    assert len(tree.found["img"]) == len(plots) >= 3
    assert all(len(c) > 60 for c in tree.captions)
    assert all(h[1:] in tree.ids for h in tree.hrefs if h.startswith("#"))
    assert "LIBERO-Goal" in html
