"""The papers' table layouts, filled from a RunSet (and the published numbers on request).

SpecPrune-VLA Tables 1-4, VLA-Pruner Tables 1, 2, 4 and SP-VLA Tables 1 and 3 here; VLA-Pruner
Tables 3, 5, 6 in tables_vp.py, SP-VLA Tables 2 and 6-11 in tables_sp.py (which config keys
make which row: settings.py). Same columns, row order and number formats as printed, one
table per model; LAYOUTS lists them all.

Which runs go where (the rule, per table):
- A table holds runs of its paper's model families on its columns (suites, or tasks of a
  suite), and only of the methods that paper compared in it (SPEC_ORDER, VP_ORDER, SP_T1_ORDER,
  SP_T3_ORDER; no SpecPrune-VLA row in VLA-Pruner's table). Other runs are in the statistics
  tables only; runs of an ablation or sensitivity setting (settings.main_setting: SP-VLA
  without a module or with a moved parameter, VLA-Pruner at K != 3) only in their own tables.
- A comparison table (SpecPrune-VLA 1, VLA-Pruner 1-2, SP-VLA 1 and 3) appears when it holds
  at least one of those methods other than vanilla: a baseline alone fills nothing.
- SpecPrune-VLA Table 2 (ablation) appears when SpecPrune-VLA runs on LIBERO-Spatial include
  an ablation variant (`+pruner.variant=tech1` ...); Table 3 (pruning ratio) when SpecPrune-VLA
  runs on LIBERO-Object hold at least two values of `pruner.alpha`; Table 4 (pruned tokens
  per suite) when SpecPrune-VLA runs fill one of its suites.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from vlabench.report.cells import Col, flops_note
from vlabench.report.grid import (
    GOAL, GOOGLE_VA, GOOGLE_VM, LIBERO, LONG, OBJECT, SPATIAL, GRow, Grid, averages, ident, method_label, model_name,
    paper_ident, paper_only_rows, paper_values, run_cells, run_notes, suite_cells,
)
from vlabench.report.grid import locs as _locs
from vlabench.report.grid import models_of as _models
from vlabench.report.reference import Reference, RefRow
from vlabench.report import tables_sp, tables_vp
from vlabench.report.settings import main_setting, user_variant
from vlabench.report.tables_sp import SP_T3
from vlabench.report.runs import Method, Run, RunSet, model_family


SPEC_ORDER = ["none", "sparsevlm", "vla-cache", "efficientvla", "specprune"]
VP_ORDER = ["none", "fastv", "sparsevlm", "divprune", "vla-cache", "vla-pruner"]
# SP-VLA Table 1 (+R / +S adaptations: the baselines' YAML options) and Table 3
SP_T1_ORDER = ["none", "sparsevlm", "fopru", "prumerge", "fastvlm", "visionzip", "sp-vla"]
SP_T3_ORDER = ["none", "random", "fopru", "fastv", "fastvlm", "vla-cache", "efficientvla", "sp-vla"]
SP_ORDER = ["none", "sparsevlm", "random", "fopru", "prumerge", "fastv", "fastvlm", "visionzip", "vla-cache",
            "efficientvla", "sp-vla"]


def _ordered(methods: list[Method], order: list[str]) -> list[Method]:
    def key(m: Method) -> tuple:
        pos = order.index(m.pruner) if m.pruner in order else len(order)
        return (pos, m.pruner, -(m.retention or 1.0), m.variant)
    return sorted(methods, key=key)


def _listed(rs: RunSet, model: str, suites: list[str], order: list[str]) -> dict[Method, dict[str, Run]]:
    """The rows of a comparison table: the runs of the methods the paper compared in it (its
    order list), by method in its row order and suite, without the runs of an ablation or
    sensitivity table (settings.main_setting). A run's row is (pruner, retention, pruner.variant);
    only where two such runs would share a cell does the RunSet's disambiguated variant (run
    name or protocol) tell them apart."""
    cands = [r for r in rs.runs if r.model == model and r.suite in suites and r.pruner in order
             and main_setting(r)]
    count = Counter((r.pruner, r.retention, user_variant(r), r.suite) for r in cands)
    rows: dict[Method, dict[str, Run]] = {}
    for r in sorted(cands, key=lambda r: r.name):
        base = Method(r.pruner, r.retention, user_variant(r))
        m = base if count[(*base, r.suite)] == 1 else r.method
        rows.setdefault(m, {})[r.suite] = r
    return {m: rows[m] for m in _ordered(list(rows), order)}


def _filled(g: Grid) -> bool:
    """A comparison table is worth printing when it holds one of our pruned rows."""
    return any(r.ours is not None and r.ident.get("pruner") != "none" for r in g.rows)


def _grid_rows(rs: RunSet, ref: Reference | None, g: Grid, model: str, cols: list[Col],
               order: list[str], summary: Callable[[list[dict]], tuple[list[dict], list[str]]],
               paper: str, table: str, use_retention: bool, summary_suite: str = "") -> set[RefRow]:
    """One row per method of `model` on `cols` (plus the paper's rows); the reference rows used."""
    used: set[RefRow] = set()
    locs = _locs(cols, len(g.headers) - len(cols), summary_suite)
    for m, by_suite in _listed(rs, model, list({c.suite for c in cols}), order).items():
        per, runs, mark = run_cells(rs, [by_suite.get(c.suite) for c in cols], cols)
        if not runs:
            continue
        extra, amark = summary(per)
        base_label = model_name(model) if m.pruner == "none" else method_label(m)
        key = RefRow(paper, table, m.pruner, model_family(model),
                     m.retention if use_retention else None, m.variant)
        pv = paper_values(ref, key, locs)
        if pv is not None:
            used.add(key)
        g.rows.append(GRow(base_label, per + extra, pv, ref.labels[key] if pv is not None else "",
                           marks=mark + amark + run_notes(runs), ident=ident(model, m, runs), locs=locs))
    return used


# ---------------------------------------------------------------- SpecPrune-VLA

def specprune_t1(rs: RunSet, ref: Reference | None) -> list[Grid]:
    """SpecPrune-VLA Table 1: SR / latency (speedup) per LIBERO suite, average speedup, FLOPs."""
    grids = []
    for model in _models(rs, LIBERO, {"openvla-oft"}):
        g = Grid(f"specprune-vla-table1-{model}",
                 f"SpecPrune-VLA Table 1 ({model_name(model)}): success rate (%) / latency (ms) (speedup)",
                 [c.header for c in LIBERO] + ["Average Speedup", "FLOPs"],
                 ["{success_rate:.1f} / {latency_ms:~3} ({speedup:.2f}×)"] * 4
                 + ["{avg_speedup:.2f}×", "{flops_pct:.0f}%"])
        g.note("Average Speedup and FLOPs: means of the per-suite values (speedups unrounded)")
        g.note(flops_note("specprune-vla"))

        def summary(per: list[dict]) -> tuple[list[dict], list[str]]:
            avg, mark = averages(per, {"avg_speedup": "speedup", "flops_pct": "flops_pct"})
            return [avg, avg], mark

        used = _grid_rows(rs, ref, g, model, LIBERO, SPEC_ORDER, summary, "specprune-vla", "1", False)
        paper_only_rows(ref, g, "specprune-vla", "1", model, used, _locs(LIBERO, 2))
        if _filled(g):
            grids.append(g)
    return grids


def _specprune_runs(rs: RunSet, model: str, suite: str) -> list[Method]:
    return [m for m in rs.methods(model, [suite]) if m.pruner == "specprune"]


def _ablation_variant(run: Run | None) -> bool:
    """The run sets `pruner.variant` (an ablation such as tech1), not only a tag of ours."""
    v = (run.config.get("pruner") or {}).get("variant") if run is not None else None
    if isinstance(v, dict):
        v = v.get(run.suite, v.get(run.suite.removeprefix("libero_")))
    return v not in (None, "")


def specprune_t2(rs: RunSet, ref: Reference | None) -> list[Grid]:
    """SpecPrune-VLA Table 2: ablation on LIBERO-Spatial (variants: +pruner.variant=tech1 ...)."""
    grids = []
    for model in _models(rs, [SPATIAL], {"openvla-oft"}):
        methods = _specprune_runs(rs, model, SPATIAL.suite)
        if not any(_ablation_variant(rs.get(model, m, SPATIAL.suite)) for m in methods):
            continue
        g = Grid(f"specprune-vla-table2-{model}",
                 f"SpecPrune-VLA Table 2 ({model_name(model)}): ablation on LIBERO-Spatial",
                 ["SR (%)", "Latency (ms)", "Speedup"],
                 ["{success_rate:.1f}", "{latency_ms:~3}", "{speedup:.2f}×"])
        used: set[RefRow] = set()
        rows = [Method("none", None, "")] + sorted(methods, key=lambda m: (m.variant, m.retention or 0))
        for m in rows:
            per, runs, mark = suite_cells(rs, model, m, [SPATIAL])
            if not runs:
                continue
            variant = "tech1+2+3" if m.pruner == "specprune" and not m.variant else m.variant
            key = RefRow("specprune-vla", "2", m.pruner, model_family(model), None, variant)
            pv = paper_values(ref, key, [(SPATIAL.suite, "")] * 3)
            used |= {key} if pv is not None else set()
            label = "None" if m.pruner == "none" else method_label(m)
            g.rows.append(GRow(label, per * 3, pv, ref.labels[key] if pv is not None else "",
                               marks=mark + run_notes(runs), ident=ident(model, m, runs),
                               locs=[(SPATIAL.suite, "")] * 3))
        paper_only_rows(ref, g, "specprune-vla", "2", model, used, [(SPATIAL.suite, "")] * 3)
        grids.append(g)
    return grids


def specprune_t3(rs: RunSet, ref: Reference | None) -> list[Grid]:
    """SpecPrune-VLA Table 3: pruning ratio alpha on LIBERO-Object (pruner.alpha)."""
    grids = []
    for model in _models(rs, [OBJECT], {"openvla-oft"}):
        methods = _specprune_runs(rs, model, OBJECT.suite)
        if not methods:
            continue
        g = Grid(f"specprune-vla-table3-{model}",
                 f"SpecPrune-VLA Table 3 ({model_name(model)}): pruning ratio on LIBERO-Object",
                 ["Pruned Tokens", "SR (%)", "Latency(ms) / Speedup"],
                 ["{pruned_tokens:.0f}", "{success_rate:.1f}", "{latency_ms:~3} / {speedup:.2f}×"],
                 first="Prune Ratio (α)")
        used: set[RefRow] = set()
        runs_ = [r for r in (rs.get(model, m, OBJECT.suite) for m in methods) if r and r.alpha is not None]
        if len({r.alpha for r in runs_}) < 2:
            continue
        for run in sorted(runs_, key=lambda r: -(r.alpha or 0)):
            per, runs, mark = suite_cells(rs, model, run.method, [OBJECT])
            alpha = f"{run.alpha:.1f}"
            key = RefRow("specprune-vla", "3", "specprune", model_family(model), None, f"alpha={alpha}")
            pv = paper_values(ref, key, [(OBJECT.suite, "")] * 3)
            used |= {key} if pv is not None else set()
            tag = run.variant if run.variant and not run.variant.startswith("alpha=") else ""
            label = alpha + (f" [{tag}]" if tag else "")
            g.rows.append(GRow(label, per * 3, pv, ref.labels[key] if pv is not None else "",
                               marks=mark + run_notes(runs), ident=ident(model, run.method, runs),
                               locs=[(OBJECT.suite, "")] * 3))
        paper_only_rows(ref, g, "specprune-vla", "3", model, used, [(OBJECT.suite, "")] * 3)
        grids.append(g)
    return grids


def specprune_t4(rs: RunSet, ref: Reference | None) -> list[Grid]:
    """SpecPrune-VLA Table 4: visual tokens pruned per call (tokens_in - tokens_kept) per suite."""
    cols = [SPATIAL, GOAL, OBJECT, LONG]
    grids = []
    for model in _models(rs, cols, {"openvla-oft"}):
        methods = [m for m in rs.methods(model, [c.suite for c in cols]) if m.pruner == "specprune"]
        if not methods:
            continue
        g = Grid(f"specprune-vla-table4-{model}",
                 f"SpecPrune-VLA Table 4 ({model_name(model)}): pruned visual tokens per call",
                 [c.header for c in cols] + ["Average"], ["{pruned_tokens:.0f}"] * 4 + ["{avg_pruned_tokens:.0f}"],
                 first="Benchmark")
        g.note("pruned tokens: mean of tokens_in - tokens_kept (visual tokens at the last layer) over "
               "the model calls; Average: mean of the suites' values")

        def summary(per: list[dict]) -> tuple[list[dict], list[str]]:
            avg, mark = averages(per, {"avg_pruned_tokens": "pruned_tokens"})
            for m in mark:   # a table of one row, typically: said under it
                g.note(m)
            return [avg], []

        used = _grid_rows(rs, ref, g, model, cols, ["specprune"], summary, "specprune-vla", "4", False)
        paper_only_rows(ref, g, "specprune-vla", "4", model, used, _locs(cols, 1))
        grids.append(g)
    return grids


# ---------------------------------------------------------------- VLA-Pruner

def _retention_group(r: float | None, pruner: str) -> tuple[float, str]:
    if pruner == "none":
        return (2.0, "Upper bound (100%)")
    if r is None:
        return (-1.0, "Other settings")
    return (r, f"Retain {100 * r:g}% tokens")


def vlapruner_t1(rs: RunSet, ref: Reference | None) -> list[Grid]:
    """VLA-Pruner Table 1: per suite SR (relative accuracy), Acc., FLOPs, latency (speedup)."""
    def grid(model: str) -> Grid:
        g = Grid(f"vla-pruner-table1-{model}",
                 f"VLA-Pruner Table 1 ({model_name(model)}): success rate (%) (relative accuracy), "
                 "FLOPs (T), latency (ms) (speedup)",
                 [c.header for c in LIBERO] + ["Acc.(%)", "FLOPs(T)", "Latency(ms)"],
                 ["{success_rate:.1f} ({rel_acc:.1f}%)"] * 4
                 + ["{avg_rel_acc:.2f}", "{flops_t:.3f} ({flops_pct:.2f}%)", "{latency_ms:.2f} ({speedup:.2f}×)"])
        g.note("Acc.(%) is the mean of the four per-suite relative accuracies; FLOPs and latency "
               "are means over the suites (the paper's Acc.(%) is not always the mean of its own "
               "per-suite figures)")
        g.note(flops_note("vla-pruner"))
        return g
    return _by_retention(rs, ref, "1", {"openvla", "openvla-oft"}, grid, 3,
                         {"avg_rel_acc": "rel_acc", "flops_t": "flops_t", "flops_pct": "flops_pct",
                          "latency_ms": "latency_ms", "speedup": "speedup"})


def vlapruner_t4(rs: RunSet, ref: Reference | None) -> list[Grid]:
    """VLA-Pruner Table 4 (App. B.4): pi0 on LIBERO per retention: SR per suite, Avg., Acc.,
    latency, speedup, FLOP ratio. Filled by runs of a pi0-family model (`model=pi0`, or
    `pi0-tiny` as a table of its own; preset configs/experiment/vla-pruner-table4.yaml);
    `--with-reference` alone shows nothing, as for every table."""
    def grid(model: str) -> Grid:
        g = Grid(f"vla-pruner-table4-{model}",
                 f"VLA-Pruner Table 4 ({model_name(model)}): success rate (%), relative accuracy, "
                 "latency, speedup and FLOP ratio on LIBERO",
                 [c.header for c in LIBERO] + ["Avg. (%)", "Acc. (%)", "Latency(ms)", "Speedup (×)",
                                               "FLOP ratio (%)"],
                 ["{success_rate:.2f}"] * 4 + ["{avg_success_rate:.2f}", "{avg_rel_acc:.2f}",
                                               "{latency_ms:.2f}", "{speedup:.3f}", "{flops_pct:.1f}"])
        g.note("Avg. is the mean success rate and Acc. the mean relative accuracy over the suites; "
               "latency, speedup and FLOP ratio are means over the suites")
        g.note(flops_note("vla-pruner"))
        return g
    return _by_retention(rs, ref, "4", {"pi0"}, grid, 5,
                         {"avg_success_rate": "success_rate", "avg_rel_acc": "rel_acc",
                          "latency_ms": "latency_ms", "speedup": "speedup", "flops_pct": "flops_pct"})


def _by_retention(rs: RunSet, ref: Reference | None, table: str, families: set[str],
                  make: Callable[[str], Grid], n_summary: int, avg_keys: dict[str, str]) -> list[Grid]:
    """VLA-Pruner's tables grouped by retention (Tables 1 and 4): one grid per model."""
    grids = []
    locs = _locs(LIBERO, n_summary)
    for model in _models(rs, LIBERO, families):
        g = make(model)
        groups: dict[tuple[float, str], list[Method]] = {}
        listed = _listed(rs, model, [c.suite for c in LIBERO], VP_ORDER)
        for m in listed:
            groups.setdefault(_retention_group(m.retention, m.pruner), []).append(m)
        paper_keys = ref.rows("vla-pruner", table, model_family(model)) if ref else []
        for key in paper_keys:
            groups.setdefault(_retention_group(key.retention, key.method), [])
        matched: set[RefRow] = set()
        for gkey in sorted(groups, reverse=True):
            g.rows.append(GRow(gkey[1], group=True))
            for m in _ordered(groups[gkey], VP_ORDER):
                per, runs, mark = run_cells(rs, [listed[m].get(c.suite) for c in LIBERO], LIBERO)
                if not runs:
                    continue
                avg, amark = averages(per, avg_keys)
                key = RefRow("vla-pruner", table, m.pruner, model_family(model), m.retention, m.variant)
                pv = paper_values(ref, key, locs)
                matched |= {key} if pv is not None else set()
                label = "Vanilla" if m.pruner == "none" else method_label(m, with_retention=False)
                g.rows.append(GRow(label, per + [avg] * n_summary, pv, ref.labels[key] if pv is not None else "",
                                   marks=mark + amark + run_notes(runs), ident=ident(model, m, runs),
                                   locs=locs))
            for key in paper_keys:
                if key not in matched and _retention_group(key.retention, key.method) == gkey:
                    g.rows.append(GRow("", paper=paper_values(ref, key, locs), paper_label=ref.labels[key],
                                       ident=paper_ident(key), locs=locs))
        if _filled(g):
            grids.append(g)
    return grids


VP_T2 = [Col("Move Near (VA)", GOOGLE_VA, "movenear", ("movenear",)),
         Col("Pick Coke Can (VA)", GOOGLE_VA, "pickcan", ("coke",)),
         Col("Open/Close Drawer (VM)", GOOGLE_VM, "drawer", ("drawer",), ("apple",))]


def vlapruner_t2(rs: RunSet, ref: Reference | None) -> list[Grid]:
    """VLA-Pruner Table 2: SIMPLER task success (relative to vanilla) and overall."""
    grids = []
    for model in _models(rs, VP_T2, {"openvla"}):
        g = Grid(f"vla-pruner-table2-{model}",
                 f"VLA-Pruner Table 2 ({model_name(model)}): SIMPLER success rate (relative to vanilla)",
                 [c.header for c in VP_T2] + ["Overall"],
                 ["{success_rate:.1f}% ({rel_acc:.1f}%)"] * 3 + ["{avg_success_rate:.1f}% ({avg_rel_acc:.1f}%)"])

        def summary(per: list[dict]) -> tuple[list[dict], list[str]]:
            avg, mark = averages(per, {"avg_success_rate": "success_rate", "avg_rel_acc": "rel_acc"})
            return [avg], mark

        used = _grid_rows(rs, ref, g, model, VP_T2, VP_ORDER, summary, "vla-pruner", "2", True)
        paper_only_rows(ref, g, "vla-pruner", "2", model, used, _locs(VP_T2, 1))
        if _filled(g):
            grids.append(g)
    return grids


# ---------------------------------------------------------------- SP-VLA

SP_T1_COLS = [GOAL, OBJECT, SPATIAL, LONG]
SP_CELL = "{success_rate:.2f} / {speedup:.2f}"
SP_AVG = "{avg_success_rate:.2f} / {avg_speedup:.2f}"


def _sp_summary(per: list[dict]) -> tuple[list[dict], list[str]]:
    """Average SR / speedup over the task or suite columns, and mean FLOPs %."""
    avg, mark = averages(per, {"avg_success_rate": "success_rate", "avg_speedup": "speedup",
                               "flops_pct": "flops_pct"})
    return [avg, avg], mark


def spvla_t1(rs: RunSet, ref: Reference | None) -> list[Grid]:
    """SP-VLA Table 1: SR / speedup per LIBERO suite, averages, FLOPs (%)."""
    grids = []
    for model in _models(rs, SP_T1_COLS, {"openvla"}):
        g = Grid(f"sp-vla-table1-{model}",
                 f"SP-VLA Table 1 ({model_name(model)}): success rate (%) / speedup on LIBERO",
                 [c.header for c in SP_T1_COLS] + ["Average", "FLOPs (%)"],
                 [SP_CELL] * 4 + [SP_AVG, "{flops_pct:.2f}"])
        g.note(flops_note("sp-vla"))
        used = _grid_rows(rs, ref, g, model, SP_T1_COLS, SP_T1_ORDER, _sp_summary,
                          "sp-vla", "1", False)
        paper_only_rows(ref, g, "sp-vla", "1", model, used, _locs(SP_T1_COLS, 2))
        if _filled(g):
            grids.append(g)
    return grids


def spvla_t3(rs: RunSet, ref: Reference | None) -> list[Grid]:
    """SP-VLA Table 3: SIMPLER per-task SR / speedup, per setting average and FLOPs."""
    grids = []
    for part, (title, settings, tasks) in SP_T3.items():
        all_cols = [Col(h, s, t, inc, exc) for _, s in settings for h, t, inc, exc in tasks]
        for model in _models(rs, all_cols, None):
            g = Grid(f"sp-vla-table3-{part}-{model}",
                     f"SP-VLA Table 3 ({model_name(model)}, {title}): success rate (%) / speedup on SIMPLER",
                     [h for h, *_ in tasks] + ["Average", "FLOPs (%)"],
                     [SP_CELL] * len(tasks) + [SP_AVG, "{flops_pct:.2f}"])
            g.note(flops_note("sp-vla"))
            for setting, suite in settings:
                cols = [Col(h, suite, t, inc, exc) for h, t, inc, exc in tasks]
                if not any(r.suite == suite and r.model == model for r in rs.runs):
                    continue
                g.rows.append(GRow(setting, group=True))
                used = _grid_rows(rs, ref, g, model, cols, SP_T3_ORDER, _sp_summary, "sp-vla", "3",
                                  False, summary_suite=suite)
                paper_only_rows(ref, g, "sp-vla", "3", model, used, _locs(cols, 2, suite))
                if g.rows[-1].group:  # no row of a compared method in this setting
                    g.rows.pop()
            if _filled(g):
                grids.append(g)
    return grids


LAYOUTS: dict[str, Callable[[RunSet, Reference | None], list[Grid]]] = {
    "specprune-vla/1": specprune_t1, "specprune-vla/2": specprune_t2, "specprune-vla/3": specprune_t3,
    "specprune-vla/4": specprune_t4,
    "vla-pruner/1": vlapruner_t1, "vla-pruner/2": vlapruner_t2, "vla-pruner/3": tables_vp.vlapruner_t3,
    "vla-pruner/4": vlapruner_t4,
    "vla-pruner/5": tables_vp.vlapruner_t5, "vla-pruner/6": tables_vp.vlapruner_t6,
    "sp-vla/1": spvla_t1, "sp-vla/2": tables_sp.spvla_t2, "sp-vla/3": spvla_t3,
    "sp-vla/6": tables_sp.spvla_t6, "sp-vla/7": tables_sp.spvla_t7, "sp-vla/8": tables_sp.spvla_t8,
    "sp-vla/9": tables_sp.spvla_t9, "sp-vla/10": tables_sp.spvla_t10, "sp-vla/11": tables_sp.spvla_t11,
}
