r"""Tables as LaTeX that pdflatex compiles in a one- or two-column paper.

Needs \usepackage{booktabs} (rules), \usepackage{amssymb} (▲ ▼ ≈ ✓ as math symbols) and
\usepackage{graphicx} (\resizebox); the report's first lines say so. Every character outside
ASCII is written as a LaTeX command, so no input encoding or font package is needed.

Width: a table whose estimated natural width exceeds one column of a two-column paper
(WIDE_CHARS characters at \small) is a `table*`, spanning both columns; a `table` otherwise
(in a one-column paper both are the page width). Inside either, the tabular is shrunk to
\linewidth only when it is still wider (never enlarged), so nothing spills into the other
column or the margin. Shrinking alone was rejected: an 11-column table scaled into one
column prints at about 4 pt. Floats are placed [tbp] / [tp], never [h], so LaTeX keeps them
apart.
"""

from __future__ import annotations

import unicodedata

from vlabench.report.render import Table

PACKAGES = ("booktabs", "amssymb", "graphicx")
WIDE_CHARS = 62   # ~ a 3.3 in column at \small, counting 2 characters of padding per column

_TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
        "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
        "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}",
        "×": r"$\times$", "±": r"$\pm$", "π": r"$\pi$", "≈": r"$\approx$", "▲": r"$\blacktriangle$",
        "▼": r"$\blacktriangledown$", "α": r"$\alpha$", "Δ": r"$\Delta$", "↓": r"$\downarrow$",
        "↑": r"$\uparrow$", "→": r"$\rightarrow$", "–": "--", "—": "---", "−": r"$-$",
        "≥": r"$\geq$", "≤": r"$\leq$", "≠": r"$\neq$", "✓": r"\checkmark{}", "✔": r"\checkmark{}",
        "✗": r"$\times$", "✘": r"$\times$", "·": r"$\cdot$", "…": r"\ldots{}", "µ": r"$\mu$",
        "μ": r"$\mu$", "°": r"$^\circ$", "²": r"$^2$", "³": r"$^3$", "‰": r"\textperthousand{}",
        "‘": "`", "’": "'", "“": "``", "”": "''", "\u00a0": "~", "•": r"$\bullet$",
        "β": r"$\beta$", "γ": r"$\gamma$", "σ": r"$\sigma$", "τ": r"$\tau$", "λ": r"$\lambda$"}


def tex_escape(s: str) -> str:
    """`s` as LaTeX text in plain ASCII: specials escaped, symbols as commands, accented
    letters without their accents, anything else as '?'."""
    out = []
    for ch in s:
        if ch in _TEX:
            out.append(_TEX[ch])
        elif ch.isascii():
            out.append(ch)
        else:
            plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append("".join(_TEX.get(c, c) for c in plain) or "?")
    return "".join(out)


def width_chars(t: Table) -> int:
    """Estimated natural width of the tabular in characters (cells plus column padding)."""
    lines = [t.header] + [t.display(i) for i, k in enumerate(t.kinds) if k != "group"]
    return sum(max(len(r[j]) for r in lines) + 2 for j in range(len(t.header)))


def latex(t: Table) -> str:
    wide = width_chars(t) > WIDE_CHARS
    env = "table*" if wide else "table"
    cols = "l" + "c" * (len(t.header) - 1)
    lines = [rf"\begin{{{env}}}[{'tp' if wide else 'tbp'}]", r"\centering", r"\small",
             f"\\caption{{{tex_escape(t.title)}}}", f"\\label{{tab:{t.key}}}",
             r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
             f"\\begin{{tabular}}{{{cols}}}", r"\toprule",
             " & ".join(tex_escape(h) for h in t.header) + r" \\", r"\midrule"]
    for i, kind in enumerate(t.kinds):
        cells = t.display(i)
        if kind == "group":
            lines.append(f"\\multicolumn{{{len(t.header)}}}{{l}}{{\\textit{{{tex_escape(cells[0])}}}}} \\\\")
        else:
            lines.append(" & ".join(tex_escape(c) for c in cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}"]
    foot = t.footer()
    if foot:
        lines.append(r"\par\smallskip{\footnotesize\raggedright " + r"\par ".join(tex_escape(n) for n in foot)
                     + r"\par}")
    lines.append(rf"\end{{{env}}}")
    return "\n".join(lines) + "\n"


def header(intro: list[str]) -> str:
    """The comment lines at the top: what the file needs, then the report's preamble."""
    lines = [f"% Needs in the document preamble: \\usepackage{{{','.join(PACKAGES)}}}",
             "% Wide tables are table* (both columns of a two-column paper); see vlabench/report/latex.py"]
    plain = ["% " + "".join(c if c.isascii() else tex_escape(c) for c in p) for p in intro]
    return "\n".join(lines + plain) + "\n\n"


def notes_block(notes: list[str]) -> str:
    """The report-wide footnotes, once, as a paragraph after the tables."""
    if not notes:
        return ""
    items = "".join(f"\\par\\noindent [{i}] {tex_escape(n)}" for i, n in enumerate(notes, 1))
    return f"\n{{\\footnotesize\\noindent\\textbf{{Notes to the tables.}}{items}\\par}}\n"
