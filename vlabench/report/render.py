"""Tables as data, and their markdown / LaTeX / CSV / HTML renderings."""

from __future__ import annotations

import csv
import html
import io
import math
import string
from dataclasses import dataclass, field

NA = "n/a"


@dataclass
class Table:
    """A rendered table: header, rows of strings, row kinds and footnotes."""

    key: str                    # file stem, e.g. "specprune-vla-table1-openvla-oft"
    title: str
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)   # ours | paper | delta | group
    notes: list[str] = field(default_factory=list)

    def add(self, cells: list[str], kind: str = "ours") -> None:
        if len(cells) != len(self.header):
            raise ValueError(f"{self.key}: row has {len(cells)} cells, header {len(self.header)}")
        self.rows.append(cells)
        self.kinds.append(kind)

    def note(self, text: str) -> str:
        """Add a footnote once; return its marker ('[1]', ...)."""
        if text not in self.notes:
            self.notes.append(text)
        return f"[{self.notes.index(text) + 1}]"


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


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
    for cells, kind in zip(t.rows, t.kinds, strict=True):
        if kind == "group":
            cells = [f"*{cells[0]}*"] + cells[1:]
        lines.append("| " + " | ".join(esc(c) for c in cells) + " |")
    if t.notes:
        lines.append("")
        lines += [f"[{i}] {n}  " for i, n in enumerate(t.notes, 1)]
    return "\n".join(lines) + "\n"


_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
        "×": r"$\times$", "±": r"$\pm$", "≈": r"$\approx$", "▲": r"$\blacktriangle$",
        "▼": r"$\blacktriangledown$", "α": r"$\alpha$", "Δ": r"$\Delta$", "↓": r"$\downarrow$",
        "↑": r"$\uparrow$", "→": r"$\rightarrow$", "–": "--", "—": "---"}


def tex_escape(s: str) -> str:
    return "".join(_TEX.get(ch, ch) for ch in s)


def latex(t: Table) -> str:
    cols = "l" + "c" * (len(t.header) - 1)
    lines = [r"\begin{table}[t]", r"\centering", r"\small",
             f"\\caption{{{tex_escape(t.title)}}}", f"\\begin{{tabular}}{{{cols}}}", r"\toprule",
             " & ".join(tex_escape(h) for h in t.header) + r" \\", r"\midrule"]
    for cells, kind in zip(t.rows, t.kinds, strict=True):
        if kind == "group":
            lines.append(f"\\multicolumn{{{len(t.header)}}}{{l}}{{\\textit{{{tex_escape(cells[0])}}}}} \\\\")
        else:
            lines.append(" & ".join(tex_escape(c) for c in cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    if t.notes:
        lines.append(r"\par\footnotesize " + " ".join(
            f"[{i}] {tex_escape(n)}" for i, n in enumerate(t.notes, 1)))
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


def csv_text(t: Table) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["kind", *t.header])
    for cells, kind in zip(t.rows, t.kinds, strict=True):
        w.writerow([kind, *cells])
    for i, n in enumerate(t.notes, 1):
        w.writerow(["note", f"[{i}] {n}"] + [""] * (len(t.header) - 1))
    return buf.getvalue()


def html_table(t: Table) -> str:
    e = html.escape
    parts = [f"<h3>{e(t.title)}</h3>", "<table>", "<thead><tr>"
             + "".join(f"<th>{e(h)}</th>" for h in t.header) + "</tr></thead>", "<tbody>"]
    for cells, kind in zip(t.rows, t.kinds, strict=True):
        if kind == "group":
            parts.append(f'<tr class="group"><td colspan="{len(t.header)}">{e(cells[0])}</td></tr>')
        else:
            parts.append(f'<tr class="{kind}">' + "".join(f"<td>{e(c)}</td>" for c in cells) + "</tr>")
    parts.append("</tbody></table>")
    if t.notes:
        parts.append('<ol class="notes">' + "".join(f"<li>{e(n)}</li>" for n in t.notes) + "</ol>")
    return "\n".join(parts)


RENDERERS = {"md": markdown, "latex": latex, "csv": csv_text}
