"""Tables as data (display strings and the numbers behind them), and their markdown and HTML
renderings (LaTeX: latex.py; tidy CSV and JSON: tidy.py)."""

from __future__ import annotations

import html
import math
import string
from dataclasses import dataclass, field
from typing import Any

NA = "n/a"


@dataclass
class Table:
    """A table: display cells per row, and beside them what tidy outputs need.

    Footnotes are report-wide (notes.number_notes numbers them): a row lists the texts of the
    notes it carries in `marks`; `notes` holds what the table says about itself (definitions),
    printed under it without a number. After numbering, `row_marks` holds each row's own
    numbers (what differs between rows) and `shared` those every data row carries.
    """

    key: str                    # file stem, e.g. "specprune-vla-table1-openvla-oft"
    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)   # ours | paper | delta | group
    notes: list[str] = field(default_factory=list)
    marks: list[list[str]] = field(default_factory=list)
    values: list[list[dict[str, float]]] = field(default_factory=list)  # per row, per column
    ids: list[dict[str, Any]] = field(default_factory=list)           # per row: model, pruner ...
    locs: list[list[tuple[str, str]]] = field(default_factory=list)   # per row, per column: (suite, task)
    mark_col: int = 0
    row_marks: list[list[int]] = field(default_factory=list)
    shared: list[int] = field(default_factory=list)
    key_cols: int = 0           # leading columns naming the row, repeated where LaTeX splits it
    breaks: list[int] = field(default_factory=list)   # columns where a split part may start

    def key_width(self) -> int:
        """The identifying columns: `key_cols`, at least up to the marked column."""
        return max(self.key_cols, self.mark_col + 1)

    def add(self, cells: list[str], kind: str = "ours", marks: list[str] | None = None,
            values: list[dict[str, float]] | None = None, ids: dict[str, Any] | None = None,
            locs: list[tuple[str, str]] | None = None) -> None:
        if len(cells) != len(self.header):
            raise ValueError(f"{self.key}: row has {len(cells)} cells, header {len(self.header)}")
        self.rows.append(cells)
        self.kinds.append(kind)
        self.marks.append(list(dict.fromkeys(marks or [])))
        self.values.append(values if values is not None else [{} for _ in cells])
        self.ids.append(ids or {})
        self.locs.append(locs or [("", "")] * len(cells))

    def note(self, text: str) -> None:
        """Add a note about the whole table (printed under it, once)."""
        if text not in self.notes:
            self.notes.append(text)

    def display(self, i: int) -> list[str]:
        """Row i's cells, its own footnote numbers after the marked column ("FastV [2][5]")."""
        cells = list(self.rows[i])
        own = self.row_marks[i] if i < len(self.row_marks) else []
        if own:
            j = self.mark_col
            cells[j] = f"{cells[j]} " + "".join(f"[{n}]" for n in own)
        return cells

    def footer(self) -> list[str]:
        """The lines under the table: the notes every row shares (by number), then its own."""
        lines = []
        if self.shared:
            lines.append("All rows: " + "".join(f"[{n}]" for n in self.shared))
        return lines + self.notes


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fields(template: str) -> list[str]:
    """The metric names a cell template shows, in order."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name]


# a metric's 95% interval, where cells.metrics computes one
CI = {"success_rate": ("sr_ci_low", "sr_ci_high"), "speedup": ("speedup_ci_low", "speedup_ci_high")}


def shown(template: str, values: dict[str, float]) -> dict[str, float]:
    """The numbers behind a cell: `values` restricted to the template's fields (NaN if absent),
    plus the interval of a shown metric when `values` has one."""
    names = fields(template)
    names += [c for k in names for c in CI.get(k, ()) if c in values and c not in names]
    return {k: math.nan if _missing(values.get(k)) else float(values[k]) for k in names}


def fill(template: str, values: dict[str, float], delta: bool = False) -> str:
    """Format `template` ("{success_rate:.1f} / {speedup:.2f}×") with `values`.

    A missing value prints "n/a"; `delta` prints signed numbers (for ours - paper rows).
    """
    out = []
    unit_after_na = False
    for literal, name, spec, _conv in string.Formatter().parse(template):
        if unit_after_na and literal[:1] in ("×", "%"):
            literal = literal[1:]  # "n/a", not "n/a×"
        out.append(literal)
        if name is None:
            continue
        v = values.get(name)
        unit_after_na = _missing(v)
        if unit_after_na:
            out.append(NA)
        else:
            out.append(_format(float(v), spec or "", delta))
    return "".join(out)


def _format(v: float, spec: str, delta: bool) -> str:
    """format() plus "~N": N significant digits without exponent (109, 85.3, 1234)."""
    if spec.startswith("~") and delta:
        spec = ".1f"
    elif spec.startswith("~"):
        digits = int(spec[1:])
        mag = math.floor(math.log10(abs(v))) + 1 if v else 1
        spec = f".{max(0, digits - mag)}f"
    if delta and not spec.startswith("+"):
        spec = "+" + spec
    text = format(v, spec)
    return text[1:] if delta and not text.strip("+-0.") else text  # "0.0", not "-0.0"


def markdown(t: Table) -> str:
    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    lines = [f"### {t.title}", "", "| " + " | ".join(esc(h) for h in t.header) + " |",
             "|" + "|".join("---" for _ in t.header) + "|"]
    for i, kind in enumerate(t.kinds):
        cells = t.display(i)
        if kind == "group":
            cells = [f"*{cells[0]}*"] + cells[1:]
        lines.append("| " + " | ".join(esc(c) for c in cells) + " |")
    foot = t.footer()
    if foot:
        lines.append("")
        lines += [f"{n}  " for n in foot]
    return "\n".join(lines) + "\n"


def markdown_notes(notes: list[str]) -> str:
    """The report-wide footnotes, each once."""
    if not notes:
        return ""
    return "Notes:\n\n" + "".join(f"[{i}] {n}  \n" for i, n in enumerate(notes, 1)) + "\n"


def _links(numbers: list[int]) -> str:
    return "".join(f'<a href="#note-{n}">[{n}]</a>' for n in numbers)


def html_table(t: Table) -> str:
    """The table as HTML; footnote marks link to the page's notes (anchors note-N)."""
    e = html.escape
    parts = [f"<h3>{e(t.title)}</h3>", "<table>", "<thead><tr>"
             + "".join(f"<th>{e(h)}</th>" for h in t.header) + "</tr></thead>", "<tbody>"]
    for i, kind in enumerate(t.kinds):
        cells = [e(c) for c in t.rows[i]]
        own = t.row_marks[i] if i < len(t.row_marks) else []
        if own:
            cells[t.mark_col] += " " + _links(own)
        if kind == "group":
            parts.append(f'<tr class="group"><td colspan="{len(t.header)}">{cells[0]}</td></tr>')
        else:
            parts.append(f'<tr class="{kind}">' + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    parts.append("</tbody></table>")
    foot = ([f"All rows: {_links(t.shared)}"] if t.shared else []) + [e(n) for n in t.notes]
    if foot:
        parts.append('<ul class="notes">' + "".join(f"<li>{n}</li>" for n in foot) + "</ul>")
    return "\n".join(parts)
