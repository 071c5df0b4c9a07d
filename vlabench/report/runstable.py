"""The statistics table: every run with its Wilson interval, paired test and latency spread."""

from __future__ import annotations

from vlabench.report import cells
from vlabench.report.cells import Col
from vlabench.report.grid import method_label, protocol_note
from vlabench.report.render import Table, fill
from vlabench.report.runs import RunSet

HEADER = ["Model", "Method", "Suite", "Episodes", "SR % [95% CI]", "ΔSR vs vanilla (pts)",
          "McNemar p (pairs)", "Latency mean / p50 / p95 (ms)", "Speedup [95% CI]", "FLOPs %", "Status"]


def runs_table(rs: RunSet) -> Table:
    """One row per run: success with Wilson 95% CI, McNemar vs vanilla, latency, speedup CI."""
    t = Table("runs", "All runs: success with 95% Wilson interval, paired test against the "
              "pruner=none run (McNemar exact), latency of model calls, speedup with 95% bootstrap "
              "interval", HEADER)
    t.note("≈ within noise (McNemar p ≥ 0.05); ▲/▼ significantly better/worse than vanilla")
    for run in sorted(rs.runs, key=lambda r: (r.model, r.suite, r.pruner != "none", r.pruner,
                                              r.retention or 0, r.variant)):
        base, why = rs.baseline(run.model, run.suite, run.protocol)
        m = cells.metrics(run, base, Col("", run.suite), boot=base is not None and base is not run)
        notes = ([protocol_note(run)] if protocol_note(run) else []) + [f"deviation: {d}" for d in run.deviations]
        marks = "".join(dict.fromkeys(t.note(n) for n in notes))
        status = f"{run.status} {marks}".strip()
        if base is None:
            d_sr, p_cell, sp_cell, fl = f"n/a {t.note(why)}", "n/a", "n/a", "n/a"
        elif base is run:
            d_sr, p_cell, sp_cell, fl = "(baseline)", "", "1.00×", "100"
        else:
            mark = cells.noise_mark(m["mcnemar_p"], m["d_sr"])
            d_sr = fill("{d_sr:+.1f}", m) + (f" {mark}" if mark else "")
            p_cell = fill("{mcnemar_p:.3g}", m) + f" ({m['pairs']:.0f})"
            sp_cell = fill("{speedup:.2f}× [{speedup_ci_low:.2f}, {speedup_ci_high:.2f}]", m)
            fl = fill("{flops_pct:.1f}", m)
        lat = fill("{latency_ms:.1f} / {latency_p50_ms:.1f} / {latency_p95_ms:.1f}", m)
        if m["latency_ms"] != m["latency_ms"]:  # NaN: nothing but warm-up calls
            lat += " " + t.note("latency n/a: no model call after the warm-up calls")
        t.add([run.model, method_label(run.method), run.suite, f"{m['episodes']:.0f}",
               fill("{success_rate:.1f} [{sr_ci_low:.1f}, {sr_ci_high:.1f}]", m), d_sr, p_cell, lat,
               sp_cell, fl, status])
    return t


def speedup_table(rs: RunSet) -> Table:
    """Per model and method: speedup averaged over its suites, with a bootstrap interval."""
    t = Table("speedup", "Mean speedup over suites vs the pruner=none runs (95% bootstrap "
              "interval, latencies resampled per suite)",
              ["Model", "Method", "Suites", "Mean SR (%)", "Mean speedup [95% CI]", "Mean FLOPs %"])
    for model in rs.models():
        methods = {r.method for r in rs.runs if r.model == model and r.pruner != "none"}
        for method in sorted(methods, key=lambda m: (m.pruner, m.retention or 0, m.variant)):
            pairs, cols, ms = [], [], []
            for run in [r for r in rs.runs if r.model == model and r.method == method]:
                base, _ = rs.baseline(model, run.suite, run.protocol)
                if base is not None:
                    col = Col("", run.suite)
                    pairs.append((base, run))
                    cols.append(col)
                    ms.append(cells.metrics(run, base, col))
            if not pairs:
                continue
            marks = "".join(dict.fromkeys(t.note(n) for n in (protocol_note(r) for _, r in pairs) if n))
            lo, hi = cells.mean_speedup_ci(pairs, cols)
            v = {"sr": cells.average([m["success_rate"] for m in ms])[0], "lo": lo, "hi": hi,
                 "sp": cells.average([m["speedup"] for m in ms])[0],
                 "fl": cells.average([m["flops_pct"] for m in ms])[0]}
            t.add([model, f"{method_label(method)} {marks}".strip(), ", ".join(sorted(c.suite for c in cols)),
                   fill("{sr:.1f}", v), fill("{sp:.2f}× [{lo:.2f}, {hi:.2f}]", v), fill("{fl:.1f}", v)])
    return t
