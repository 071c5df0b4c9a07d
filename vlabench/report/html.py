"""One self-contained HTML page: the tables and the plots (PNG embedded as base64)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from vlabench.report.render import Table, html_table

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 0.3em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: center; white-space: nowrap; }
td:first-child, th:first-child { text-align: left; }
tr.paper td { color: #555; font-style: italic; }
tr.delta td { color: #06c; font-size: 0.85em; }
tr.group td { background: #f3f3f3; font-style: italic; text-align: left; }
ol.notes { font-size: 0.8em; color: #555; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
"""


def page(title: str, preamble: list[str], tables: list[Table], images: list[Path]) -> str:
    """The whole page; images are read and embedded, so the file stands alone."""
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>{e(title)}</title><style>{STYLE}</style></head><body>", f"<h1>{e(title)}</h1>"]
    parts += [f"<p>{e(p)}</p>" for p in preamble]
    parts += [html_table(t) for t in tables]
    if images:
        parts.append("<h2>Plots</h2>")
    for img in images:
        data = base64.b64encode(img.read_bytes()).decode("ascii")
        parts.append(f'<figure><img alt="{e(img.stem)}" src="data:image/png;base64,{data}">'
                     f"<figcaption>{e(img.stem)}</figcaption></figure>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
