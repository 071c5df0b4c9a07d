"""One self-contained HTML page: a table of contents, the tables and the figures (PNG embedded
as base64), each figure with its caption.

Tables and figures sit in boxes that scroll sideways rather than squeeze; a figure is shown at
its drawn size (100 pixels per inch of the matplotlib figure: fonts as drawn), its caption read
from the PNG (figstyle.save) unless `captions` gives one. Runs recorded with run.video get a
Videos section: per run, links to its episode videos (the first failure shown inline).
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from vlabench.report import pngmeta
from vlabench.report.figstyle import DPI
from vlabench.report.render import Table, html_table

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; line-height: 1.4; }
nav.toc { background: #f7f7f7; border: 1px solid #ddd; padding: 0.5em 1.5em; margin: 1em 0;
          display: inline-block; }
nav.toc ol { margin: 0.2em 0; }
.scroll { overflow-x: auto; max-width: 100%; }
table { border-collapse: collapse; margin: 0.5em 0 0.3em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: center; white-space: nowrap; }
td:first-child, th:first-child { text-align: left; }
tr.paper td { color: #555; font-style: italic; }
tr.delta td { color: #06c; font-size: 0.85em; }
tr.group td { background: #f3f3f3; font-style: italic; text-align: left; }
.notes { font-size: 0.8em; color: #555; white-space: normal; }
figure { margin: 1.5em 0; }
figure img { max-width: none; height: auto; border: 1px solid #eee; }
figcaption { max-width: 60em; font-size: 0.9em; color: #444; }
ol.report-notes { font-size: 0.9em; max-width: 60em; }
a.top { font-size: 0.8em; font-weight: normal; margin-left: 0.8em; }
ul.videos { columns: 18em; font-size: 0.85em; }
video { display: block; margin: 0.5em 0; max-width: 100%; }
"""
# (run name, [(label, href)]): a run's videos, hrefs relative to the page or file:// URIs
Videos = list[tuple[str, list[tuple[str, str]]]]
_SCALE = DPI / 100  # PNG pixels per CSS pixel


def _ids(names: list[str], prefix: str) -> list[str]:
    """Unique HTML ids from names."""
    out: list[str] = []
    for n in names:
        base = f"{prefix}-" + (re.sub(r"[^A-Za-z0-9_-]+", "-", n).strip("-") or "x")
        i, cand = 2, base
        while cand in out:
            cand, i = f"{base}-{i}", i + 1
        out.append(cand)
    return out


def _figure(fid: str, number: int, img: Path, caption: str | None) -> str:
    e = html.escape
    data = img.read_bytes()
    try:
        meta, (w, h) = pngmeta.text(data), pngmeta.size(data)
    except ValueError:
        meta, (w, h) = {}, (0, 0)
    title = meta.get("Title") or img.stem
    caption = caption or meta.get("Description") or title
    dims = f' width="{round(w / _SCALE)}" height="{round(h / _SCALE)}"' if w else ""
    b64 = base64.b64encode(data).decode("ascii")
    return (f'<figure id="{fid}"><div class="scroll"><img alt="{e(title)}"{dims} '
            f'src="data:image/png;base64,{b64}"></div>'
            f"<figcaption><b>Figure {number}.</b> {e(caption)}</figcaption></figure>")


def _videos(runs: Videos, top: str) -> list[str]:
    """The Videos section: a sub-heading per run, its videos as links, the first failure inline."""
    e = html.escape
    parts = [f'<h2 id="videos">Videos{top}</h2>']
    for rid, (run, links) in zip(_ids([r for r, _ in runs], "videos"), runs, strict=True):
        parts.append(f'<section id="{rid}"><h3>{e(run)}</h3>')
        failures = [h for label, h in links if "failure" in label]
        if failures:
            parts.append(f'<video controls preload="metadata" src="{e(failures[0])}"></video>')
        parts.append('<ul class="videos">' + "".join(
            f'<li><a href="{e(h)}">{e(label)}</a></li>' for label, h in links) + "</ul></section>")
    return parts


def page(title: str, preamble: list[str], tables: list[Table], images: list[Path],
         captions: dict[str, str] | None = None, notes: list[str] | None = None,
         videos: Videos | None = None) -> str:
    """The whole page; images are read and embedded, so the file stands alone (videos are
    linked, not embedded). `captions` maps an image's file stem to its caption (default: the
    caption stored in the PNG); `notes` are the report's numbered footnotes ([1] is notes[0],
    anchor `note-1`); `videos` lists each run's episode videos."""
    e = html.escape
    captions = captions or {}
    tids, fids = _ids([t.key for t in tables], "table"), _ids([p.stem for p in images], "figure")
    toc = ['<nav class="toc" id="contents"><b>Contents</b><ol>']
    if notes:
        toc.append('<li><a href="#notes">Notes</a></li>')
    if tables:
        toc.append('<li><a href="#tables">Tables</a><ol>' + "".join(
            f'<li><a href="#{i}">{e(t.title)}</a></li>' for i, t in zip(tids, tables, strict=True))
            + "</ol></li>")
    if images:
        toc.append('<li><a href="#figures">Figures</a><ol>' + "".join(
            f'<li><a href="#{i}">Figure {n}: {e(_title(p))}</a></li>'
            for n, (i, p) in enumerate(zip(fids, images, strict=True), 1)) + "</ol></li>")
    if videos:
        toc.append('<li><a href="#videos">Videos</a></li>')
    toc.append("</ol></nav>")
    top = '<a class="top" href="#contents">↑ contents</a>'
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{e(title)}</title><style>{STYLE}</style></head><body>", f"<h1>{e(title)}</h1>"]
    parts += [f"<p>{e(p)}</p>" for p in preamble]
    parts += toc
    if notes:
        parts.append(f'<h2 id="notes">Notes{top}</h2><ol class="report-notes">' + "".join(
            f'<li id="note-{i}">{e(n)}</li>' for i, n in enumerate(notes, 1)) + "</ol>")
    if tables:
        parts.append(f'<h2 id="tables">Tables{top}</h2>')
    for tid, t in zip(tids, tables, strict=True):
        parts.append(f'<section id="{tid}"><div class="scroll">\n{html_table(t)}\n</div></section>')
    if images:
        parts.append(f'<h2 id="figures">Figures{top}</h2>')
    for n, (fid, img) in enumerate(zip(fids, images, strict=True), 1):
        parts.append(_figure(fid, n, img, captions.get(img.stem)))
    if videos:
        parts += _videos(videos, top)
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _title(img: Path) -> str:
    try:
        return pngmeta.text(img.read_bytes()).get("Title") or img.stem
    except ValueError:
        return img.stem
