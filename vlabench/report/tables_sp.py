"""SP-VLA's analysis tables: Tables 2, 6, 7 (5), 8, 9, 10 and 11.

- Table 2 (modules) and Table 9 (pruning rate / intuitive action rate of the same runs): the
  full method and its ablations (`pruner.prune/schedule/canny: false`) at the default settings.
  The paper ran them at its "Ours (Acc.)" setting, whose parameters it does not publish.
  Appear when an ablation run fills them.
- Table 6 (LIBERO, OpenVLA) and Table 7 (SIMPLER, CogACT): frequency (Hz) / latency (s) per
  policy call of vanilla and SP-VLA. Hz = 1000 / mean step latency (ms) of the policy calls,
  steps served by SP-VLA's extrapolator included (what "frequency" speeds up); Table 5 prints
  the Visual Matching and WidowX rows of Table 7, identical numbers, so Table 7 stands for both.
- Table 8 (sensitivity): one parameter of (V_min, V_max, tau, n) moved up or down from the
  centre (0.2, 0.5, 0.5, 6) per column; rows per LIBERO suite. Appears with a moved run.
- Table 10 (SR / speedup) and Table 11 (pruning / intuitive rates) "under different settings":
  one row per SP-VLA setting. The centre setting is the paper's Ours-1 (its Table 8 "0" rows
  print Ours-1's numbers); `+pruner.variant=ours-2` ... tags a run as another of the paper's
  rows (their parameters are not published). Appear with at least two settings.
Config keys per row: vlabench/report/settings.py.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

from vlabench.report.cells import Col, flops_note
from vlabench.report.grid import (
    BRIDGE, GOAL, GOOGLE_VA, GOOGLE_VM, LONG, OBJECT, SPATIAL, GRow, Grid, averages, by_setting,
    model_name, models_of, paper_ident, paper_values, run_cells, run_notes, setting_rows,
)
from vlabench.report.reference import Reference, RefRow
from vlabench.report.runs import Run, RunSet, model_family
from vlabench.report.settings import (
    SP_T8_PARAMS, sp_ablation, sp_setting_label, sp_t8_cell, user_variant,
)

SP_COLS = [GOAL, OBJECT, SPATIAL, LONG]
SP_CELL, SP_AVG = "{success_rate:.2f} / {speedup:.2f}", "{avg_success_rate:.2f} / {avg_speedup:.2f}"
RATES = "{pruning_rate:.2f} / {intuitive_rate:.2f}"
RATES_AVG = "{avg_pruning_rate:.2f} / {avg_intuitive_rate:.2f}"
HZ, HZ_AVG = "{hz:.2f} / {latency_s:.2f}", "{avg_hz:.2f} / {avg_latency_s:.2f}"
SP_T3 = {
    "google": ("Google robot", [
        ("Visual Matching", GOOGLE_VM), ("Visual Aggregation", GOOGLE_VA)],
        [("PickCan", "pickcan", ("coke",), ()), ("MoveNear", "movenear", ("movenear",), ()),
         ("Drawer", "drawer", ("drawer",), ("apple",)), ("DrawerApple", "drawerapple", ("apple",), ())]),
    "bridge": ("WidowX (Bridge)", [("WidowX", BRIDGE)],
               [("PutSpoon", "putspoon", ("spoon",), ()), ("PutCarrot", "putcarrot", ("carrot",), ()),
                ("StackBlock", "stackblock", ("stack", "cube"), ()),
                ("PutEggplant", "puteggplant", ("eggplant",), ())]),
}
ABLATION_ORDER = ["", "w/o Pruning", "w/o Scheduling", "w/o Canny"]   # the paper's row order
Summary = Callable[[list[dict]], tuple[list[dict], list[str]]]


def _summary(keys: dict[str, str], n: int) -> Summary:
    def summary(per: list[dict]) -> tuple[list[dict], list[str]]:
        avg, mark = averages(per, keys)
        return per + [avg] * n, mark
    return summary


SR_SPEED = _summary({"avg_success_rate": "success_rate", "avg_speedup": "speedup", "flops_pct": "flops_pct"}, 2)
RATE_SUM = _summary({"avg_pruning_rate": "pruning_rate", "avg_intuitive_rate": "intuitive_rate",
                     "avg_success_rate": "success_rate"}, 2)
HZ_SUM = _summary({"avg_hz": "hz", "avg_latency_s": "latency_s"}, 1)


def _plain(run: Run) -> bool:
    """An SP-VLA run at the centre settings with every module on and no tag."""
    return not sp_setting_label(run) and not sp_ablation(run) and not user_variant(run)


def _ablation_key(run: Run) -> tuple[str, str] | None:
    if run.pruner == "none":
        return None
    if sp_setting_label(run) or user_variant(run):
        return None
    return ("sp-vla", sp_ablation(run))


def _ablation_tables(rs: RunSet, ref: Reference | None, table: str) -> list[Grid]:
    grids = []
    for model in models_of(rs, SP_COLS, {"openvla"}):
        found, dup = by_setting(rs, model, {"sp-vla"}, [c.suite for c in SP_COLS], _ablation_key)
        if not any(v for _, v in found):
            continue
        if table == "2":
            g = Grid(f"sp-vla-table2-{model}", f"SP-VLA Table 2 ({model_name(model)}): the modules' "
                     "effects, success rate (%) / speedup on LIBERO",
                     [c.header for c in SP_COLS] + ["Average", "FLOPs (%)"],
                     [SP_CELL] * 4 + [SP_AVG, "{flops_pct:.2f}"])
            summary = SR_SPEED
            g.note(flops_note("sp-vla"))
        else:
            g = Grid(f"sp-vla-table9-{model}", f"SP-VLA Table 9 ({model_name(model)}): pruning rate (%) / "
                     "intuitive action rate (%) of the modules' runs on LIBERO",
                     [c.header for c in SP_COLS] + ["Average", "Average Acc. (%)"],
                     [RATES] * 4 + [RATES_AVG, "{avg_success_rate:.2f}"])
            summary = RATE_SUM
        g.note("run at vlabench's default SP-VLA settings (the paper's Ours-1); the paper's rows ran "
               "at its 'Ours (Acc.)' setting, whose parameters are not published")
        for d in dup:
            g.note(d)
        keys = sorted(found, key=lambda k: (ABLATION_ORDER.index(k[1]) if k[1] in ABLATION_ORDER else 9, k[1]))
        setting_rows(rs, ref, g, model, SP_COLS, found, keys, "sp-vla", table,
                     lambda k: RefRow("sp-vla", table, "sp-vla", model_family(model), None, k[1]),
                     lambda k: k[1] or "SP-VLA", summary)
        grids.append(g)
    return grids


def spvla_t2(rs: RunSet, ref: Reference | None) -> list[Grid]:
    """SP-VLA Table 2: the full method and its ablations (w/o pruning, scheduling, Canny)."""
    return _ablation_tables(rs, ref, "2")


def spvla_t9(rs: RunSet, ref: Reference | None) -> list[Grid]:
    """SP-VLA Table 9: pruning rate / intuitive action rate of Table 2's rows."""
    return _ablation_tables(rs, ref, "9")


def _freq_key(run: Run) -> str | None:
    return run.pruner if run.pruner == "none" or _plain(run) else None


def _label(model: str) -> Callable[[Hashable], str]:
    return lambda k: model_name(model) if k == "none" else "SP-VLA"


def spvla_t6(rs: RunSet, ref: Reference | None) -> list[Grid]:
    """SP-VLA Table 6: frequency (Hz) / latency (s) on LIBERO (OpenVLA)."""
    grids = []
    for model in models_of(rs, SP_COLS, {"openvla"}):
        found, dup = by_setting(rs, model, {"none", "sp-vla"}, [c.suite for c in SP_COLS], _freq_key)
        if "sp-vla" not in found:
            continue
        g = Grid(f"sp-vla-table6-{model}", f"SP-VLA Table 6 ({model_name(model)}): frequency (Hz) / "
                 "latency (s) per policy call on LIBERO", [c.header for c in SP_COLS] + ["Average"],
                 [HZ] * 4 + [HZ_AVG], first="Evaluation Indicator")
        g.note("Hz = 1000 / mean latency (ms) of the policy calls (warm-up excluded; steps served "
               "without a model call count with their own latency); Average: means of the suites' values")
        for d in dup:
            g.note(d)
        setting_rows(rs, ref, g, model, SP_COLS, found, [k for k in ("none", "sp-vla") if k in found],
                     "sp-vla", "6", lambda k: RefRow("sp-vla", "6", k, model_family(model), None, ""),
                     _label(model), HZ_SUM)
        grids.append(g)
    return grids


def spvla_t7(rs: RunSet, ref: Reference | None) -> list[Grid]:
    """SP-VLA Table 7 (and 5): frequency (Hz) / latency (s) per SIMPLER task."""
    grids = []
    for part, (title, settings, tasks) in SP_T3.items():
        all_cols = [Col(h, s, t, inc, exc) for _, s in settings for h, t, inc, exc in tasks]
        for model in models_of(rs, all_cols, None):
            g = Grid(f"sp-vla-table7-{part}-{model}", f"SP-VLA Table 7 ({model_name(model)}, {title}): "
                     "frequency (Hz) / latency (s) per policy call on SIMPLER",
                     [h for h, *_ in tasks] + ["Average"], [HZ] * len(tasks) + [HZ_AVG],
                     first="Evaluation Indicator")
            g.note("Hz = 1000 / mean latency (ms) of the policy calls, extrapolated steps included; "
                   "Table 5 prints the Visual Matching and WidowX rows of this table")
            for setting, suite in settings:
                cols = [Col(h, suite, t, inc, exc) for h, t, inc, exc in tasks]
                found, dup = by_setting(rs, model, {"none", "sp-vla"}, [suite], _freq_key)
                if "sp-vla" not in found:
                    continue
                g.rows.append(GRow(setting, group=True))
                for d in dup:
                    g.note(d)
                setting_rows(rs, ref, g, model, cols, found, [k for k in ("none", "sp-vla") if k in found],
                             "sp-vla", "7", lambda k: RefRow("sp-vla", "7", k, model_family(model), None, ""),
                             _label(model), HZ_SUM, summary_suite=suite)
            if g.rows:
                grids.append(g)
    return grids


T8_SUITES = [OBJECT, GOAL, SPATIAL, LONG]   # the paper's row order
T8_LABELS = {"0": "0", "up": "↑ [25%, 25%, 5/8, 8]", "down": "↓ [25%, 25%, 3/8, 4]"}


def _t8_key(run: Run) -> tuple[str, str] | None:
    if sp_ablation(run) or user_variant(run):
        return None
    return sp_t8_cell(run)


def spvla_t8(rs: RunSet, ref: Reference | None) -> list[Grid]:
    """SP-VLA Table 8: SR / speedup with one of V_min, V_max, tau, n moved up or down."""
    grids = []
    for model in models_of(rs, T8_SUITES, {"openvla"}):
        found, dup = by_setting(rs, model, {"sp-vla"}, [c.suite for c in T8_SUITES], _t8_key)
        if not any(k != ("0", "") for k in found):
            continue
        g = Grid(f"sp-vla-table8-{model}", f"SP-VLA Table 8 ({model_name(model)}): sensitivity to "
                 "V_min, V_max, τ and n, success rate (%) / speedup on LIBERO",
                 [h for h, *_ in SP_T8_PARAMS], ["{success_rate:.1f} / {speedup:.2f}"] * len(SP_T8_PARAMS),
                 first="Task / Scaling")
        g.note("each column moves one parameter from the centre (0.2, 0.5, 0.5, 6): ↑ to "
               "(0.25, 0.625, 5/8, 8), ↓ to (0.15, 0.375, 3/8, 4); row 0 is the centre run")
        for d in dup:
            g.note(d)
        for col in T8_SUITES:
            where = [(col.suite, key) for _, key, *_ in SP_T8_PARAMS]
            rows = []
            for direction, label in T8_LABELS.items():
                runs_ = [found.get((direction, "" if direction == "0" else key), {}).get(col.suite)
                         for _, key, *_ in SP_T8_PARAMS]
                cols = [col] * len(SP_T8_PARAMS)
                per, runs, marks = run_cells(rs, runs_, cols)
                rk = RefRow("sp-vla", "8", "sp-vla", model_family(model), None, direction)
                pv = paper_values(ref, rk, where)
                if not runs and pv is None:
                    continue
                rows.append(GRow(label if runs else "", per if runs else None, pv,
                                 ref.labels[rk] if pv is not None else "", marks=marks + run_notes(runs),
                                 ident={**paper_ident(rk), "model": model, "runs": [r.name for r in runs]},
                                 locs=where))
            if any(r.ours is not None for r in rows):
                g.rows += [GRow(col.header, group=True)] + rows
        grids.append(g)
    return grids


def _setting_key(run: Run) -> tuple[str, str] | None:
    if run.pruner == "none":
        return ("none", "")
    if sp_ablation(run):
        return None
    return (sp_setting_label(run), user_variant(run))


def _setting_ref(model: str, table: str) -> Callable[[Hashable], RefRow]:
    def key(k: Hashable) -> RefRow:
        label, variant = k
        if label == "none":
            return RefRow("sp-vla", table, "none", model_family(model), None, "")
        return RefRow("sp-vla", table, "sp-vla", model_family(model), None,
                      variant or ("ours-1" if not label else label))
    return key


def _setting_label(model: str) -> Callable[[Hashable], str]:
    def label(k: Hashable) -> str:
        setting, variant = k
        if setting == "none":
            return model_name(model)
        tags = ", ".join(t for t in (variant, setting) if t)
        return f"SP-VLA [{tags}]" if tags else "SP-VLA"
    return label


def _settings_tables(rs: RunSet, ref: Reference | None, table: str) -> list[Grid]:
    grids = []
    for model in models_of(rs, SP_COLS, {"openvla"}):
        found, dup = by_setting(rs, model, {"none", "sp-vla"}, [c.suite for c in SP_COLS], _setting_key)
        ours = sorted(k for k in found if k[0] != "none")
        if len(ours) < 2:
            continue
        if table == "10":
            g = Grid(f"sp-vla-table10-{model}", f"SP-VLA Table 10 ({model_name(model)}): settings, "
                     "success rate (%) / speedup on LIBERO", [c.header for c in SP_COLS] + ["Average", "FLOPs (%)"],
                     [SP_CELL] * 4 + [SP_AVG, "{flops_pct:.2f}"])
            keys, summary = ([("none", "")] if ("none", "") in found else []) + ours, SR_SPEED
            g.note(flops_note("sp-vla"))
        else:
            g = Grid(f"sp-vla-table11-{model}", f"SP-VLA Table 11 ({model_name(model)}): settings, pruning "
                     "rate (%) / intuitive action rate (%) on LIBERO",
                     [c.header for c in SP_COLS] + ["Average", "Average Acc."], [RATES] * 4 + [RATES_AVG,
                                                                                    "{avg_success_rate:.2f}"])
            keys, summary = ours, RATE_SUM
        g.note("the centre setting (vlabench's defaults) is the paper's Ours-1; +pruner.variant=ours-2 "
               "(-3, -4) tags a run as another of the paper's rows")
        for d in dup:
            g.note(d)
        setting_rows(rs, ref, g, model, SP_COLS, found, keys, "sp-vla", table, _setting_ref(model, table),
                     _setting_label(model), summary)
        grids.append(g)
    return grids


def spvla_t10(rs: RunSet, ref: Reference | None) -> list[Grid]:
    """SP-VLA Table 10: SR / speedup / FLOPs of each SP-VLA setting (and vanilla)."""
    return _settings_tables(rs, ref, "10")


def spvla_t11(rs: RunSet, ref: Reference | None) -> list[Grid]:
    """SP-VLA Table 11: pruning rate / intuitive action rate of each SP-VLA setting."""
    return _settings_tables(rs, ref, "11")
