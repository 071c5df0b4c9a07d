"""The statistics tables: every run with its Wilson interval, paired test and latency spread."""

from __future__ import annotations

from typing import Any

import numpy as np

from vlabench.report import cells, replay
from vlabench.report.cells import Col
from vlabench.report.grid import method_label, protocol_note, run_notes
from vlabench.report.render import Table, fill, shown
from vlabench.report.runs import Method, Run, RunSet, numbers

HEADER = ["Model", "Method", "Suite", "Episodes", "SR % [95% CI]", "ΔSR vs vanilla (pts)",
          "McNemar p (pairs)", "Latency mean / p50 / p95 (ms)", "Speedup [95% CI]", "FLOPs %", "Status"]
EPISODES, SR = "{episodes:.0f}", "{success_rate:.1f} [{sr_ci_low:.1f}, {sr_ci_high:.1f}]"
D_SR, P_PAIRS = "{d_sr:+.1f}", "{mcnemar_p:.3g} ({pairs:.0f})"
LAT = "{latency_ms:.1f} / {latency_p50_ms:.1f} / {latency_p95_ms:.1f}"
SPEEDUP, FLOPS = "{speedup:.2f}× [{speedup_ci_low:.2f}, {speedup_ci_high:.2f}]", "{flops_pct:.1f}"
NO_LATENCY = "latency n/a: no model call after the warm-up calls"
# shown when some run's calls.csv records per-call memory or CUDA time (cells.py)
EFFICIENCY = ["Peak memory (GB)", "CUDA time (ms)", "Hz", "Pruned tokens"]
EFF_TEMPLATES = ["{mem_gb:.3f}", "{cuda_ms:.2f}", "{hz:.2f}", "{pruned_tokens:.0f}"]
RSS_NOTE = "memory measured on the CPU (mem_kind rss: peak RSS delta per call), not GPU memory"


def _measured(rs: RunSet) -> bool:
    """Some run's calls carry per-call memory or CUDA time."""
    for r in rs.runs:
        if replay.replay_of(r) is not None:   # a replay meters every call
            return True
        for c in ("mem_peak_mb", "cuda_ms"):
            if c in r.calls and not np.isnan(numbers(r.calls[c])).all():
                return True
    return False


def _ids(run: Run) -> dict[str, Any]:
    return {"model": run.model, "pruner": run.pruner, "retention": run.retention,
            "variant": run.variant, "suite": run.suite, "runs": [run.name], "status": run.status}


def runs_table(rs: RunSet) -> Table:
    """One row per run: success with Wilson 95% CI, McNemar vs vanilla, latency, speedup CI."""
    eff = _measured(rs)
    header = HEADER[:-1] + EFFICIENCY + HEADER[-1:] if eff else HEADER
    t = Table("runs", "All runs: success with 95% Wilson interval, paired test against the "
              "pruner=none run (McNemar exact), latency of model calls, speedup with 95% bootstrap "
              f"interval ({cells.RESAMPLED[rs.ci_unit]})", header, mark_col=1, key_cols=3,   # LaTeX splits it: statistics | latency | efficiency
              breaks=[header.index(HEADER[7])] + ([header.index(EFFICIENCY[0])] if eff else []))
    t.note("≈ within noise (McNemar p ≥ 0.05); ▲/▼ significantly better/worse than vanilla")
    t.note(cells.flops_note())
    if eff:
        t.note("Peak memory: the largest per-call peak (calls.csv mem_peak_mb / 1024); CUDA time: mean "
               "per model call; Hz: policy calls per second of policy time (1000 / mean step latency); "
               "pruned tokens: mean tokens_in - tokens_kept per model call")
    for run in sorted(rs.runs, key=lambda r: (r.model, r.suite, r.pruner != "none", r.pruner,
                                              r.retention or 0, r.variant)):
        base, why = rs.baseline(run.model, run.suite, run.protocol)
        m = cells.metrics(run, base, Col("", run.suite), boot=base is not None and base is not run,
                          unit=rs.ci_unit)
        marks = run_notes([run])
        if base is None:
            marks.append(why)
            d_sr, p_cell, sp_cell, fl = "n/a", "n/a", "n/a", "n/a"
            templates = ["", "", "", ""]
        elif base is run:
            d_sr, p_cell, sp_cell, fl = "(baseline)", "", "1.00×", "100"
            templates = ["", "", "{speedup:.2f}", "{flops_pct:.0f}"]
        else:
            mark = cells.noise_mark(m["mcnemar_p"], m["d_sr"])
            d_sr = fill(D_SR, m) + (f" {mark}" if mark else "")
            p_cell, sp_cell, fl = fill(P_PAIRS, m), fill(SPEEDUP, m), fill(FLOPS, m)
            templates = [D_SR, P_PAIRS, SPEEDUP, FLOPS]
        marks += replay.flags(run, base, m)   # a speedup beyond its FLOPs bound, or across machines
        if m["latency_ms"] != m["latency_ms"] and not replay.batched(run):  # NaN: only warm-up calls
            marks.append(NO_LATENCY)
        values = [{}, {}, {}, shown(EPISODES, m), shown(SR, m)] + [shown(tp, m) for tp in templates[:2]] \
            + [shown(LAT, m)] + [shown(tp, m) for tp in templates[2:]]
        row = [run.model, method_label(run.method), run.suite, fill(EPISODES, m), fill(SR, m), d_sr,
               p_cell, fill(LAT, m), sp_cell, fl]
        if eff:
            row += [fill(tp, m) for tp in EFF_TEMPLATES]
            values += [shown(tp, m) for tp in EFF_TEMPLATES]
            if "rss" in cells.own(run, Col("", run.suite)).mem_kind:
                marks.append(RSS_NOTE)
        t.add(row + [run.status], marks=marks, values=values + [{}], ids=_ids(run))
    return t


def speedup_table(rs: RunSet) -> Table:
    """Per model and method: speedup averaged over its suites, with a bootstrap interval."""
    t = Table("speedup", "Mean speedup over suites vs the pruner=none runs (95% bootstrap "
              f"interval, {cells.RESAMPLED[rs.ci_unit]} per suite)",
              ["Model", "Method", "Suites", "Mean SR (%)", "Mean speedup [95% CI]", "Mean FLOPs %"],
              mark_col=1)
    for model in rs.models():
        methods = {r.method for r in rs.runs if r.model == model and r.pruner != "none"}
        for method in sorted(methods, key=lambda m: (m.pruner, m.retention or 0, m.variant)):
            _speedup_row(rs, t, model, method)
    return t


def _speedup_row(rs: RunSet, t: Table, model: str, method: Method) -> None:
    pairs, cols, ms = [], [], []
    for run in [r for r in rs.runs if r.model == model and r.method == method]:
        base, _ = rs.baseline(model, run.suite, run.protocol)
        if base is not None:
            col = Col("", run.suite)
            pairs.append((base, run))
            cols.append(col)
            ms.append(cells.metrics(run, base, col))
    if not pairs:
        return
    lo, hi = cells.mean_speedup_ci(pairs, cols, rs.ci_unit)
    v = {"success_rate": cells.average([m["success_rate"] for m in ms])[0],
         "speedup_ci_low": lo, "speedup_ci_high": hi,
         "speedup": cells.average([m["speedup"] for m in ms])[0],
         "flops_pct": cells.average([m["flops_pct"] for m in ms])[0]}
    tps = ["{success_rate:.1f}", SPEEDUP, FLOPS]
    runs = [r for _, r in pairs]
    t.add([model, method_label(method), ", ".join(sorted(c.suite for c in cols))] + [fill(tp, v) for tp in tps],
          marks=[n for n in (protocol_note(r) for r in runs) if n],
          values=[{}, {}, {}] + [shown(tp, v) for tp in tps],
          ids={"model": model, "pruner": method.pruner, "retention": method.retention,
               "variant": method.variant, "suite": ", ".join(sorted(c.suite for c in cols)),
               "runs": [r.name for r in runs]})
