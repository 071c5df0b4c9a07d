"""A paper-shaped table before rendering: rows of metric dicts under cell templates.

Layouts fill a Grid with our values (and the paper's, with --with-reference); `to_table`
turns it into a Table with "paper" and "Δ ours − paper" rows under each of ours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from vlabench.report import cells
from vlabench.report.cells import Col
from vlabench.report.reference import Reference, RefRow
from vlabench.report.render import Table, fill
from vlabench.report.runs import Method, Run, RunSet, model_family

PRUNER_NAMES = {
    "none": "Vanilla", "random": "Random", "fastv": "FastV", "sparsevlm": "SparseVLM",
    "divprune": "DivPrune", "vla-cache": "VLA-Cache", "efficientvla": "EfficientVLA",
    "specprune": "SpecPrune-VLA", "vla-pruner": "VLA-Pruner", "sp-vla": "SP-VLA",
}
MODEL_NAMES = {"openvla-oft": "OpenVLA-OFT", "openvla": "OpenVLA", "cogact": "CogACT"}


def model_name(model: str) -> str:
    fam = model_family(model)
    name = MODEL_NAMES.get(fam, fam)
    return name if fam == model else f"{name} ({model.removeprefix(fam + '-')})"


def method_label(m: Method, with_retention: bool = True) -> str:
    label = PRUNER_NAMES.get(m.pruner, m.pruner)
    if with_retention and m.retention is not None:
        label += f" ({100 * m.retention:g}%)"
    if m.variant:
        label += f" [{m.variant}]"
    return label


@dataclass
class GRow:
    label: str
    ours: list[dict[str, float]] | None = None
    paper: list[dict[str, float]] | None = None
    paper_label: str = ""
    group: bool = False


@dataclass
class Grid:
    key: str
    title: str
    headers: list[str]
    templates: list[str]
    rows: list[GRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    first: str = "Method"

    def note(self, text: str) -> str:
        if text not in self.notes:
            self.notes.append(text)
        return f"[{self.notes.index(text) + 1}]"


def _cell(template: str, values: dict[str, float], delta: bool = False) -> str:
    return fill(template, values, delta) if values else "—"


def to_table(g: Grid) -> Table:
    t = Table(key=g.key, title=g.title, header=[g.first, *g.headers], notes=list(g.notes))
    for r in g.rows:
        if r.group:
            t.add([r.label] + [""] * len(g.headers), "group")
            continue
        if r.ours is not None:
            t.add([r.label] + [_cell(tp, v) for tp, v in zip(g.templates, r.ours, strict=True)])
        if r.paper is not None:
            label = f"paper: {r.paper_label}" if r.ours is not None else f"{r.paper_label} (paper only)"
            t.add([label] + [_cell(tp, v) for tp, v in zip(g.templates, r.paper, strict=True)], "paper")
        if r.ours is not None and r.paper is not None:
            deltas = [{k: v[k] - p[k] for k in v.keys() & p.keys()} for v, p in zip(r.ours, r.paper, strict=True)]
            t.add(["Δ ours − paper"] + [_cell(tp, d, delta=True) for tp, d in zip(g.templates, deltas, strict=True)], "delta")
    return t


def protocol_note(r: Run) -> str | None:
    """The footnote of a run under a protocol other than the default (unmarked) one."""
    if r.default_protocol:
        return None
    return (f"protocol {r.protocol}: run with suite.protocol={r.protocol} (see the suite's YAML); "
            f"rows without this mark ran the openvla-oft protocol")


def run_notes(g: Grid, runs: list[Run]) -> str:
    """Footnote markers for incomplete runs, non-default protocols and deviations of a row's runs."""
    marks = []
    for r in runs:
        if r.status != "complete":
            marks.append(g.note(f"{r.name}: run {r.status}, {len(r.episodes)} episodes so far"))
        if protocol_note(r):
            marks.append(g.note(protocol_note(r)))
        for d in r.deviations:
            marks.append(g.note(f"deviation: {d}"))
    return "".join(dict.fromkeys(marks))


def labelled(label: str, *marks: str) -> str:
    """A row label with its footnote markers: "FastV [1][3]"."""
    joined = "".join(marks)
    return f"{label} {joined}" if joined else label


def suite_cells(rs: RunSet, g: Grid, model: str, method: Method, cols: list[Col],
                boot: bool = False) -> tuple[list[dict[str, float]], list[Run], str]:
    """Metrics per column of one method's row, the runs used, and n/a footnote markers."""
    out, used, marks = [], [], []
    for col in cols:
        run = rs.get(model, method, col.suite)
        if run is None:
            out.append({})
            continue
        base, why = rs.baseline(model, col.suite, run.protocol)
        if base is None:
            marks.append(g.note(why))
        out.append(cells.metrics(run, base, col, boot=boot))
        used.append(run)
    return out, used, "".join(dict.fromkeys(marks))


def averages(g: Grid, per_col: list[dict[str, float]], keys: dict[str, str]) -> tuple[dict[str, float], str]:
    """Row summary {avg_name: mean of per-column metric}; a note when columns are missing."""
    out, partial = {}, False
    for avg_key, key in keys.items():
        out[avg_key], miss = cells.average([c.get(key, math.nan) for c in per_col])
        partial |= miss and not math.isnan(out[avg_key])
    mark = ""
    if partial:
        mark = g.note("average over the columns present (— cells are missing runs), not over the paper's full set")
    return out, mark


def paper_values(ref: Reference | None, key: RefRow, locs: list[tuple[str, str]]) -> list[dict[str, float]] | None:
    if ref is None or key not in ref.values:
        return None
    return [ref.get(key, s, t) for s, t in locs]


def paper_only_rows(ref: Reference | None, g: Grid, paper: str, table: str, model: str,
                    used: set[RefRow], locs: list[tuple[str, str]]) -> None:
    """Append the paper's rows that none of ours matched (with --with-reference)."""
    if ref is None:
        return
    for key in ref.rows(paper, table, model_family(model)):
        if key not in used:
            g.rows.append(GRow(label="", paper=paper_values(ref, key, locs), paper_label=ref.labels[key]))
