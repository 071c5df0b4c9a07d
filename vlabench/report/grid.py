"""A paper-shaped table before rendering: rows of metric dicts under cell templates.

Layouts fill a Grid with our values (and the paper's, with --with-reference); `to_table`
turns it into a Table with "paper" and "Δ ours − paper" rows under each of ours.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

from vlabench.report import cells, replay
from vlabench.report.cells import Col
from vlabench.report.reference import Reference, RefRow
from vlabench.report.render import Table, fill, shown
from vlabench.report.runs import Method, Run, RunSet, model_family

PRUNER_NAMES = {
    "none": "Vanilla", "random": "Random", "fastv": "FastV", "sparsevlm": "SparseVLM",
    "divprune": "DivPrune", "vla-cache": "VLA-Cache", "efficientvla": "EfficientVLA",
    "specprune": "SpecPrune-VLA", "vla-pruner": "VLA-Pruner", "sp-vla": "SP-VLA",
    "vtw": "VTW", "fitprune": "FitPrune", "holov": "HoloV", "fopru": "FoPru", "prumerge": "PruMerge",
    "visionzip": "VisionZip", "fastvlm": "FastVLM",
}
SPATIAL, OBJECT = Col("Spatial", "libero_spatial"), Col("Object", "libero_object")
GOAL, LONG = Col("Goal", "libero_goal"), Col("Long", "libero_10")
LIBERO = [SPATIAL, OBJECT, GOAL, LONG]
GOOGLE_VA, GOOGLE_VM, BRIDGE = "simpler_google_va", "simpler_google_vm", "simpler_bridge"
MODEL_NAMES = {"openvla-oft": "OpenVLA-OFT", "openvla": "OpenVLA", "cogact": "CogACT", "pi0": "π0"}


def model_name(model: str) -> str:
    fam = model_family(model)
    name = MODEL_NAMES.get(fam, fam)
    return name if fam == model else f"{name} ({model.removeprefix(fam + '-')})"


def models_of(rs: RunSet, cols: list[Col], families: set[str] | None) -> list[str]:
    """The models with runs on the columns' suites, of the given published families."""
    return [m for m in rs.models([c.suite for c in cols])
            if families is None or model_family(m) in families]


def locs(cols: list[Col], n_summary: int, summary_suite: str = "") -> list[tuple[str, str]]:
    """Reference-CSV (suite, task) of each value column, then `n_summary` summary columns."""
    return [(c.suite, c.task) for c in cols] + [(summary_suite, "")] * n_summary


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
    marks: list[str] = field(default_factory=list)       # report-wide footnote texts (notes.py)
    ident: dict[str, Any] = field(default_factory=dict)  # model, pruner, retention, variant, runs
    locs: list[tuple[str, str]] = field(default_factory=list)  # (suite, task) per value column


@dataclass
class Grid:
    key: str
    title: str
    headers: list[str]
    templates: list[str]
    rows: list[GRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)   # about the table itself, unnumbered
    first: str = "Method"

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


def _cell(template: str, values: dict[str, float], delta: bool = False) -> str:
    return fill(template, values, delta) if values else "—"


def _values(templates: list[str], per: list[dict[str, float]]) -> list[dict[str, float]]:
    return [{}] + [shown(tp, v) if v else {} for tp, v in zip(templates, per, strict=True)]


def to_table(g: Grid) -> Table:
    t = Table(key=g.key, title=g.title, header=[g.first, *g.headers], notes=list(g.notes))
    for r in g.rows:
        if r.group:
            t.add([r.label] + [""] * len(g.headers), "group")
            continue
        locs = [("", "")] + (r.locs or [("", "")] * len(g.headers))
        if r.ours is not None:
            t.add([r.label] + [_cell(tp, v) for tp, v in zip(g.templates, r.ours, strict=True)],
                  marks=r.marks, values=_values(g.templates, r.ours), ids=r.ident, locs=locs)
        if r.paper is not None:
            label = f"paper: {r.paper_label}" if r.ours is not None else f"{r.paper_label} (paper only)"
            t.add([label] + [_cell(tp, v) for tp, v in zip(g.templates, r.paper, strict=True)], "paper",
                  values=_values(g.templates, r.paper), ids={**r.ident, "paper_label": r.paper_label},
                  locs=locs)
        if r.ours is not None and r.paper is not None:
            deltas = [{k: v[k] - p[k] for k in v.keys() & p.keys()} for v, p in zip(r.ours, r.paper, strict=True)]
            t.add(["Δ ours − paper"] + [_cell(tp, d, delta=True) for tp, d in zip(g.templates, deltas, strict=True)],
                  "delta", values=_values(g.templates, deltas), ids=r.ident, locs=locs)
    return t


def protocol_note(r: Run) -> str | None:
    """The footnote of a run under a protocol other than the default (unmarked) one."""
    if r.default_protocol:
        return None
    if r.timing:
        mode, _, latency = r.timing.partition("@")
        return (f"{r.timing}: latency-aware execution (suite.timing={mode}, timing.latency={latency}); "
                f"rows without this mark ran frozen, the papers' protocol")
    return (f"protocol {r.protocol}: run with suite.protocol={r.protocol} (see the suite's YAML); "
            f"rows without this mark ran the openvla-oft protocol")


def run_notes(runs: list[Run]) -> list[str]:
    """Footnote texts for incomplete runs, non-default protocols and deviations of a row's runs."""
    marks = []
    for r in runs:
        if r.status != "complete":
            marks.append(f"{r.name}: run {r.status}, {len(r.episodes)} episodes so far")
        if protocol_note(r):
            marks.append(protocol_note(r))
        marks += [f"deviation: {d}" for d in r.deviations]
        source = replay.source_note(r)   # latency from a batch-1 replay, or n/a (batched run)
        if source:
            marks.append(source)
    return list(dict.fromkeys(marks))


def ident(model: str, m: Method, runs: list[Run]) -> dict[str, Any]:
    """What identifies a row in tidy outputs."""
    return {"model": model, "pruner": m.pruner, "retention": m.retention, "variant": m.variant,
            "runs": list(dict.fromkeys(r.name for r in runs))}


def suite_cells(rs: RunSet, model: str, method: Method, cols: list[Col],
                boot: bool = False) -> tuple[list[dict[str, float]], list[Run], list[str]]:
    """Metrics per column of one method's row, the runs used, and n/a footnote texts."""
    return run_cells(rs, [rs.get(model, method, c.suite) for c in cols], cols, boot)


def run_cells(rs: RunSet, runs: list[Run | None], cols: list[Col],
              boot: bool = False) -> tuple[list[dict[str, float]], list[Run], list[str]]:
    """Metrics of the given run per column (None: an empty cell), runs used, n/a footnotes."""
    out, used, marks = [], [], []
    for run, col in zip(runs, cols, strict=True):
        if run is None:
            out.append({})
            continue
        base, why = rs.baseline(run.model, col.suite, run.protocol)
        if base is None:
            marks.append(why)
        out.append(cells.metrics(run, base, col, boot=boot, unit=rs.ci_unit))
        used.append(run)
    return out, used, list(dict.fromkeys(marks))


def by_setting(rs: RunSet, model: str, pruners: set[str], suites: list[str],
               classify: Callable[[Run], Hashable | None]) -> tuple[dict[Hashable, dict[str, Run]], list[str]]:
    """The runs of `model` and `pruners` on `suites`, by their setting (`classify`; None leaves
    a run out) and suite; footnotes where several runs fill one cell (the first name is used)."""
    found: dict[Hashable, dict[str, list[Run]]] = {}
    for r in sorted(rs.runs, key=lambda r: r.name):
        if r.model == model and r.pruner in pruners and r.suite in suites:
            key = classify(r)
            if key is not None:
                found.setdefault(key, {}).setdefault(r.suite, []).append(r)
    out, marks = {}, []
    for key, per in found.items():
        out[key] = {s: rr[0] for s, rr in per.items()}
        marks += [f"several runs fill one cell ({', '.join(r.name for r in rr)}); {rr[0].name} is shown"
                  for rr in per.values() if len(rr) > 1]
    return out, marks


PARTIAL = "average over the columns present (— cells are missing runs), not over the paper's full set"


def averages(per_col: list[dict[str, float]], keys: dict[str, str]) -> tuple[dict[str, float], list[str]]:
    """Row summary {avg_name: mean of per-column metric}; a note when columns are missing."""
    out, partial = {}, False
    for avg_key, key in keys.items():
        out[avg_key], miss = cells.average([c.get(key, math.nan) for c in per_col])
        partial |= miss and not math.isnan(out[avg_key])
    return out, [PARTIAL] if partial else []


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
            g.rows.append(GRow(label="", paper=paper_values(ref, key, locs), paper_label=ref.labels[key],
                               ident=paper_ident(key), locs=locs))


def paper_ident(key: RefRow) -> dict[str, Any]:
    return {"model": key.model, "pruner": key.method, "retention": key.retention,
            "variant": key.variant, "runs": []}


def setting_rows(rs: RunSet, ref: Reference | None, g: Grid, model: str, cols: list[Col], found: dict,
                 keys: list[Hashable], paper: str, table: str, ref_key: Callable[[Hashable], RefRow],
                 label: Callable[[Hashable], str],
                 summary: Callable[[list[dict]], tuple[list[dict], list[str]]],
                 summary_suite: str = "") -> None:
    """Our rows of a settings table (one per key, its runs per suite in `found[key]`, keys
    without runs left out), then the rows of `paper`'s table `table` that none of ours matched
    (with `summary_suite`, only those that have a value in that suite)."""
    where = locs(cols, len(g.headers) - len(cols), summary_suite)
    used: set[RefRow] = set()
    for k in keys:
        per, runs, marks = run_cells(rs, [found[k].get(c.suite) for c in cols], cols)
        if not runs:
            continue
        vals, extra = summary(per)
        rk = ref_key(k)
        pv = paper_values(ref, rk, where)
        used |= {rk} if pv is not None else set()
        g.rows.append(GRow(label(k), vals, pv, ref.labels[rk] if pv is not None else "",
                           marks=marks + extra + run_notes(runs),
                           ident={**paper_ident(rk), "model": model, "runs": [r.name for r in runs]},
                           locs=where))
    if ref is not None:
        for rk in ref.rows(paper, table, model_family(model)):
            if rk not in used and (summary_suite == "" or any(s == summary_suite for s, _ in ref.values[rk])):
                g.rows.append(GRow("", paper=paper_values(ref, rk, where), paper_label=ref.labels[rk],
                                   ident=paper_ident(rk), locs=where))
