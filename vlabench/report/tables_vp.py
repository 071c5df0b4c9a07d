"""VLA-Pruner's appendix tables (OpenVLA on LIBERO): Table 3, Table 5 and Table 6.

- Table 3 (App. B.3, "comparison under comparable performance"): VLA-Pruner at 25% retention,
  EfficientVLA without layer skipping ("w/o layer"), full EfficientVLA, VTW, FitPrune: SR per
  suite, average SR, FLOPs % and speedup (means of the per-suite values). HoloV is compared in
  the paper's Fig. 9 only, not in a table. Appears when a run of EfficientVLA, VTW or FitPrune
  fills it (VLA-Pruner's Table 1 runs alone do not).
- Table 5 (App. B.5.1): max memory (GB) and CUDA time (ms) per retention (50/25/12.5%) of
  FastV, SparseVLM, DivPrune, VLA-Cache, VLA-Pruner, and vanilla's (the paper's "Origin").
  Over the method's LIBERO runs: the largest per-call peak (calls.csv mem_peak_mb / 1024) and
  the mean CUDA time per model call. Appears when those runs recorded either; VLA-Cache has no
  retention setting in vlabench, so its rows are the paper's only.
- Table 6 (App. B.5.2): the pruning layer K (`pruner.prune_layer`) of VLA-Pruner at 25%:
  FLOPs % of vanilla, SR per suite, average SR. Appears with at least two values of K.
Which config keys make which row: vlabench/report/settings.py.
"""

from __future__ import annotations

import math

from vlabench.report import cells
from vlabench.report.cells import Col, flops_note
from vlabench.report.grid import (
    LIBERO, PRUNER_NAMES, GRow, Grid, averages, by_setting, locs, model_name, models_of,
    paper_ident, paper_values, run_cells, run_notes, setting_rows,
)
from vlabench.report.reference import Reference, RefRow
from vlabench.report.runs import Run, RunSet, model_family
from vlabench.report.settings import (
    EFFICIENTVLA_NO_LAYER, VP_DEFAULT_K, VP_T3_RETENTION, efficientvla_row, user_variant, vp_layer,
)

VP_T3_ORDER = [("vla-pruner", ""), ("efficientvla", EFFICIENTVLA_NO_LAYER), ("efficientvla", ""),
               ("vtw", ""), ("fitprune", "")]
VP_T5_ORDER = ["fastv", "sparsevlm", "divprune", "vla-cache", "vla-pruner"]
VP_T5_RETENTIONS = [0.5, 0.25, 0.125]
SUITES = [c.suite for c in LIBERO]


def _label(pruner: str, variant: str) -> str:
    return PRUNER_NAMES.get(pruner, pruner) + (f" ({variant})" if variant else "")


def _t3_row(run: Run) -> tuple[str, str] | None:
    if run.pruner == "vla-pruner":
        ok = run.retention == VP_T3_RETENTION and vp_layer(run) in (None, VP_DEFAULT_K)
        return ("vla-pruner", user_variant(run)) if ok else None
    if run.pruner == "efficientvla":
        return ("efficientvla", efficientvla_row(run) or user_variant(run))
    if run.pruner in ("vtw", "fitprune"):
        return (run.pruner, user_variant(run))
    return None


def _order(key: tuple[str, str]) -> tuple:
    return (VP_T3_ORDER.index(key) if key in VP_T3_ORDER else len(VP_T3_ORDER), key)


def vlapruner_t3(rs: RunSet, ref: Reference | None) -> list[Grid]:
    """VLA-Pruner Table 3: VLA-Pruner (25%) against EfficientVLA (w/o layer), EfficientVLA,
    VTW and FitPrune on LIBERO: SR per suite, Avg., FLOPs %, speedup."""
    grids = []
    for model in models_of(rs, LIBERO, {"openvla"}):
        rows, dup = by_setting(rs, model, {p for p, _ in VP_T3_ORDER}, SUITES, _t3_row)
        if not any(p != "vla-pruner" for p, _ in rows):
            continue
        g = Grid(f"vla-pruner-table3-{model}",
                 f"VLA-Pruner Table 3 ({model_name(model)}): comparison with EfficientVLA, VTW and "
                 "FitPrune on LIBERO, success rate (%)",
                 [c.header for c in LIBERO] + ["Avg. ↑", "FLOPs ↓", "Speedup ↑"],
                 ["{success_rate:.1f}"] * 4 + ["{avg_success_rate:.1f}", "{flops_pct:.2f}%", "{avg_speedup:.3f}×"])
        g.note("Avg., FLOPs and Speedup: means of the per-suite values")
        g.note(flops_note("vla-pruner"))
        for d in dup:
            g.note(d)

        def summary(per: list[dict]) -> tuple[list[dict], list[str]]:
            avg, mark = averages(per, {"avg_success_rate": "success_rate", "flops_pct": "flops_pct",
                                       "avg_speedup": "speedup"})
            return per + [avg] * 3, mark

        setting_rows(rs, ref, g, model, LIBERO, rows, sorted(rows, key=_order), "vla-pruner", "3",
                     lambda k: RefRow("vla-pruner", "3", k[0], model_family(model),
                                      VP_T3_RETENTION if k[0] == "vla-pruner" else None, k[1]),
                     lambda k: _label(*k), summary)
        grids.append(g)
    return grids


def _k_row(run: Run) -> int | None:
    if run.retention != VP_T3_RETENTION or user_variant(run):
        return None
    return vp_layer(run)


def vlapruner_t6(rs: RunSet, ref: Reference | None) -> list[Grid]:
    """VLA-Pruner Table 6: pruning layer K (pruner.prune_layer) at 25% retention."""
    grids = []
    for model in models_of(rs, LIBERO, {"openvla"}):
        rows, dup = by_setting(rs, model, {"vla-pruner"}, SUITES, _k_row)
        if len(rows) < 2:
            continue
        g = Grid(f"vla-pruner-table6-{model}",
                 f"VLA-Pruner Table 6 ({model_name(model)}): pruning layer K at 25% retention",
                 ["TFLOP (ratio %)"] + [c.header for c in LIBERO] + ["Avg"],
                 ["{flops_pct:.2f}"] + ["{success_rate:.1f}"] * 4 + ["{avg_success_rate:.2f}"])
        g.note("TFLOP (ratio %): mean over the suites of FLOPs per call as % of vanilla's")
        g.note(flops_note("vla-pruner"))
        for d in dup:
            g.note(d)

        def summary(per: list[dict]) -> tuple[list[dict], list[str]]:
            avg, mark = averages(per, {"avg_success_rate": "success_rate", "flops_pct": "flops_pct"})
            return [avg] + per + [avg], mark

        where = [("", "")] + locs(LIBERO, 1)
        used: set[RefRow] = set()
        for k in sorted(rows):
            per, runs, marks = run_cells(rs, [rows[k].get(s) for s in SUITES], LIBERO)
            vals, extra = summary(per)
            rkey = RefRow("vla-pruner", "6", "vla-pruner", model_family(model), VP_T3_RETENTION, f"K={k}")
            pv = paper_values(ref, rkey, where)
            used |= {rkey} if pv is not None else set()
            g.rows.append(GRow(f"K={k}", vals, pv, ref.labels[rkey] if pv is not None else "",
                               marks=marks + extra + run_notes(runs),
                               ident={**paper_ident(rkey), "model": model, "runs": [r.name for r in runs]},
                               locs=where))
        if ref is not None:
            for rkey in ref.rows("vla-pruner", "6", model_family(model)):
                if rkey not in used:
                    g.rows.append(GRow("", paper=paper_values(ref, rkey, where), paper_label=ref.labels[rkey],
                                       ident=paper_ident(rkey), locs=where))
        grids.append(g)
    return grids


def _efficiency(rs: RunSet, model: str, pruner: str, retention: float | None) -> tuple[dict, list[Run], set[str]]:
    """Max memory (GB) and mean CUDA time (ms) over a method's LIBERO runs, and memory kinds."""
    runs = [r for r in rs.runs if r.model == model and r.pruner == pruner and r.suite in SUITES
            and r.retention == retention and not user_variant(r)]
    mems, cudas, kinds = [], [], set()
    for r in sorted(runs, key=lambda r: r.name):
        m = cells.metrics(r, None, Col("", r.suite))
        mems.append(m["mem_gb"])
        cudas.append(m["cuda_ms"])
        kinds |= set(filter(None, cells.own(r, Col("", r.suite)).mem_kind.split("/")))
    mem = [v for v in mems if not math.isnan(v)]
    return ({"mem_gb": max(mem) if mem else math.nan, "cuda_ms": cells.average(cudas)[0] if runs else math.nan},
            runs, kinds)


def vlapruner_t5(rs: RunSet, ref: Reference | None) -> list[Grid]:
    """VLA-Pruner Table 5: max memory and CUDA time per retention (50/25/12.5%)."""
    grids = []
    for model in models_of(rs, LIBERO, {"openvla"}):
        g = Grid(f"vla-pruner-table5-{model}",
                 f"VLA-Pruner Table 5 ({model_name(model)}): max memory and CUDA time per call",
                 [f"{100 * r:g}%: {h}" for r in VP_T5_RETENTIONS for h in ("Max Memory (GB)", "CUDA Time (ms)")],
                 ["{mem_gb:.3f}", "{cuda_ms:.2f}"] * len(VP_T5_RETENTIONS))
        g.note("Max Memory: the largest per-call peak over the method's LIBERO runs (calls.csv "
               "mem_peak_mb / 1024); CUDA Time: mean CUDA time per model call; Vanilla (the paper's "
               "'Origin') has no retention: its figures repeat under each")
        where = [("", "")] * len(g.headers)
        filled, kinds = False, set()
        for pruner in ["none"] + VP_T5_ORDER:
            rets = [None] * 3 if pruner == "none" else VP_T5_RETENTIONS
            per, runs, pvals = [], [], []
            for ret in rets:
                vals, rr, kk = _efficiency(rs, model, pruner, ret)
                per += [vals, vals]
                runs += rr
                kinds |= kk
                filled |= pruner != "none" and not all(math.isnan(v) for v in vals.values())
                rkey = RefRow("vla-pruner", "5", pruner, model_family(model), ret, "")
                pv = ref.get(rkey, "") if ref is not None and rkey in ref.values else None
                pvals += [pv, pv]
            label = "Vanilla" if pruner == "none" else PRUNER_NAMES.get(pruner, pruner)
            paper = [p or {} for p in pvals] if any(p is not None for p in pvals) else None
            plabel = next((ref.labels[RefRow("vla-pruner", "5", pruner, model_family(model), r, "")]
                           for r in rets if ref is not None
                           and RefRow("vla-pruner", "5", pruner, model_family(model), r, "") in ref.values), "")
            ident = {"model": model, "pruner": pruner, "retention": None, "variant": "",
                     "runs": [r.name for r in runs]}
            g.rows.append(GRow(label, per if runs else None, paper, plabel, marks=run_notes(runs),
                               ident=ident, locs=where))
        g.rows = [r for r in g.rows if r.ours is not None or r.paper is not None]
        if "rss" in kinds:
            g.note("memory measured on the CPU (mem_kind rss: peak RSS delta per call), not GPU memory")
        if filled:
            grids.append(g)
    return grids

