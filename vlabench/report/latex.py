r"""Tables as LaTeX that pdflatex compiles in a one- or two-column paper.

Needs \usepackage{booktabs} (rules), \usepackage{amssymb} (▲ ▼ ≈ ✓ as math symbols) and
\usepackage{graphicx} (\resizebox); the report's first lines say so. Every character outside
ASCII is written as a LaTeX command, so no input encoding or font package is needed.

Width: a table that would print below MIN_PT in one column of a two-column paper (COLUMN_PT;
natural width from `width_pt`) is a `table*`, else a `table`; the tabular shrinks to \linewidth
only when wider. One that would still print below MIN_PT (\small is 9 pt) is split by columns
into floats that each repeat the row's key columns (`Table.key_cols`; the all-runs table:
statistics | latency | efficiency, at `Table.breaks`). Note markers are superscripts; each float
lists the notes it cites under it. Floats are placed [tbp] / [tp], never [h].
"""

from __future__ import annotations

import unicodedata

from vlabench.report.render import Table

PACKAGES = ("booktabs", "amssymb", "graphicx")
# Width estimate of a tabular at \small (9 pt in a 10 pt paper): CHAR_PT per character (a digit is
# 4.5 pt wide) plus 2 \tabcolsep (12 pt) per column; measured by pdflatex in tests/test_report_latex.py.
CHAR_PT, PAD_PT = 4.5, 12.0
COLUMN_PT, TEXT_PT = 229.5, 469.0   # \columnwidth and \textwidth of a two-column 10 pt article
BODY_PT, MIN_PT = 9.0, 7.0          # \small; the smallest a shrunk table may print
SPLIT_PT = TEXT_PT * BODY_PT / MIN_PT   # wider than this at \small: split by columns

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


def tex_prose(s: str) -> str:
    """Notes and captions: `tex_escape`, with `code` spans (Markdown backticks) in \\texttt."""
    parts = s.split("`")
    if len(parts) % 2 == 0:   # an unpaired backtick: plain text
        return tex_escape(s)
    return "".join(tex_escape(p) if i % 2 == 0 else f"\\texttt{{{tex_escape(p)}}}" for i, p in enumerate(parts))


def _col_widths(t: Table) -> list[int]:
    lines = [t.header] + [t.display(i) for i, k in enumerate(t.kinds) if k != "group"]
    return [max(len(r[j]) for r in lines) + 2 for j in range(len(t.header))]


def width_pt(t: Table, cols: list[int] | None = None) -> float:
    """Estimated natural width of the tabular (of columns `cols`) in pt at small size."""
    w = _col_widths(t)
    return sum(CHAR_PT * (w[j] - 2) + PAD_PT for j in (range(len(w)) if cols is None else cols))


def column_parts(t: Table) -> list[list[int]]:
    """The columns of each float `t` is printed as: all of them, or (a table that would shrink
    below MIN_PT) the key columns plus groups of the others, cut at `t.breaks` where it has them."""
    if width_pt(t) <= SPLIT_PT:
        return [list(range(len(t.header)))]
    w = [CHAR_PT * (c - 2) + PAD_PT for c in _col_widths(t)]
    key = list(range(t.key_width()))
    cuts = sorted({b for b in t.breaks if key[-1] < b < len(w)}) or list(range(len(key) + 1, len(w)))
    segments = [list(range(a, b)) for a, b in zip([len(key)] + cuts, cuts + [len(w)], strict=True)]
    parts: list[list[int]] = []
    for seg in segments:   # a segment wider than a float on its own is cut column by column
        pieces = [seg] if sum(w[j] for j in key + seg) <= SPLIT_PT else [[j] for j in seg]
        for piece in pieces:
            if parts and sum(w[j] for j in key + parts[-1] + piece) <= SPLIT_PT:
                parts[-1] += piece
            else:
                parts.append(list(piece))
    return [key + p for p in parts]


def _marks(numbers: list[int]) -> str:
    return f"\\textsuperscript{{{','.join(map(str, numbers))}}}" if numbers else ""


def latex(t: Table, notes: list[str] | None = None) -> str:
    """`t` as one float, or several (`column_parts`); `notes`: the report's numbered notes,
    those the table cites printed under each of its floats."""
    parts = column_parts(t)
    return "".join(_float(t, cols, k, len(parts), notes or []) for k, cols in enumerate(parts))


def _float(t: Table, cols: list[int], part: int, n_parts: int, notes: list[str]) -> str:
    wide = width_pt(t, cols) > COLUMN_PT * BODY_PT / MIN_PT   # one column unless below MIN_PT there
    env = "table*" if wide else "table"
    caption = t.title if n_parts == 1 else f"{t.title} (part {part + 1} of {n_parts})"
    label = t.key if n_parts == 1 else f"{t.key}-{part + 1}"
    lines = [rf"\begin{{{env}}}[{'tp' if wide else 'tbp'}]", r"\centering", r"\small",
             f"\\caption{{{tex_prose(caption)}}}", f"\\label{{tab:{label}}}",
             r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%",
             f"\\begin{{tabular}}{{l{'c' * (len(cols) - 1)}}}", r"\toprule",
             " & ".join(tex_escape(t.header[j]) for j in cols) + r" \\", r"\midrule"]
    for i, kind in enumerate(t.kinds):
        if kind == "group":
            lines.append(f"\\multicolumn{{{len(cols)}}}{{l}}{{\\textit{{{tex_escape(t.rows[i][0])}}}}} \\\\")
            continue
        own = t.row_marks[i] if i < len(t.row_marks) else []
        cells = [tex_escape(t.rows[i][j]) + (_marks(own) if j == t.mark_col else "") for j in cols]
        lines.append(" & ".join(cells) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}}"]
    foot = ([f"All rows: {_marks(t.shared)}"] if t.shared else []) + [tex_prose(n) for n in t.notes]
    cited = sorted(set(t.shared).union(*t.row_marks)) if t.row_marks else list(t.shared)
    foot += [f"{_marks([n])} {tex_prose(notes[n - 1])}" for n in cited if 0 < n <= len(notes)]
    if foot:
        lines.append(r"\par\smallskip{\footnotesize\raggedright " + r"\par ".join(foot) + r"\par}")
    lines.append(rf"\end{{{env}}}")
    return "\n".join(lines) + "\n"


def header(intro: list[str]) -> str:
    """The comment lines at the top: what the file needs, then the report's preamble."""
    lines = [f"% Needs in the document preamble: \\usepackage{{{','.join(PACKAGES)}}}",
             "% Wide tables are table* (both columns of a two-column paper); see vlabench/report/latex.py"]
    plain = ["% " + "".join(c if c.isascii() else tex_escape(c) for c in p) for p in intro]
    return "\n".join(lines + plain) + "\n\n"
