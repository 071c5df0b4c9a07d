"""The latency-aware table (suite.timing=sync|async runs among the inputs).

Per model and suite, one row per method: success under frozen execution and under each
latency-aware mode and latency present (`sync@400ms`, `async@profile:x`), each with its
change against the pruner=none run of the same mode and latency (McNemar exact on the shared
episodes), then the mode's completion time (simulated seconds to success, mean over the
successful episodes) and end-effector jerk (episode mean and p95, averaged over episodes).
"""

from __future__ import annotations

import math

import pandas as pd

from vlabench.report import cells
from vlabench.report.cells import Col
from vlabench.report.grid import method_label
from vlabench.report.render import Table
from vlabench.report.runs import Run, RunSet

SR = "{success_rate:.1f}"
MODE_ORDER = {"sync": 0, "async": 1}


def _tag_order(tag: str) -> tuple:
    mode, _, latency = tag.partition("@")
    return MODE_ORDER.get(mode, 2), latency


def _mean(run: Run, column: str, successes_only: bool = False) -> float:
    if column not in run.episodes:
        return math.nan
    eps = run.episodes
    if successes_only:
        eps = eps[eps["success"] == 1]
    values = pd.to_numeric(eps[column], errors="coerce").dropna()
    return float(values.mean()) if len(values) else math.nan


def _num(v: float, fmt: str) -> str:
    return "–" if v != v else format(v, fmt)


def _sr_cell(rs: RunSet, run: Run | None) -> tuple[str, dict[str, float]]:
    if run is None:
        return "–", {}
    base, _ = rs.baseline(run.model, run.suite, run.protocol)
    m = cells.metrics(run, base, Col("", run.suite))
    text = f"{m['success_rate']:.1f}"
    if base is not None and base is not run:
        mark = cells.noise_mark(m["mcnemar_p"], m["d_sr"])
        text += f" ({m['d_sr']:+.1f}{' ' + mark if mark else ''}, p={m['mcnemar_p']:.2g})"
    return text, {k: m[k] for k in ("success_rate", "d_sr", "mcnemar_p") if k in m}


def latency_tables(rs: RunSet) -> list[Table]:
    """One table per (model, suite) that has a latency-aware run."""
    out = []
    for model, suite in sorted({(r.model, r.suite) for r in rs.runs if r.timing}):
        runs = [r for r in rs.runs if r.model == model and r.suite == suite]
        tags = sorted({r.timing for r in runs if r.timing}, key=_tag_order)
        header = ["Method", "Frozen SR %"]
        for tag in tags:
            header += [f"{tag} SR %", f"{tag} completion (s)", f"{tag} jerk mean / p95 (m/s³)"]
        t = Table(f"latency-aware-{model}-{suite}", f"Latency-aware evaluation: {model} on {suite}",
                  header)
        t.note("SR: success rate under each execution mode; in brackets the change against the "
               "pruner=none run of the same mode and latency, McNemar exact p on the shared "
               "episodes (≈ within noise, ▲/▼ significant)")
        t.note("completion: simulated seconds to success (held steps included), mean over the "
               "successful episodes; jerk: |d³p/dt³| of the end-effector position at control rate, "
               "the episode's mean / 95th percentile averaged over the episodes")
        methods = sorted({r.method for r in runs},
                         key=lambda m: (m.pruner != "none", m.pruner, m.retention or 0.0, m.variant))
        for method in methods:
            by_tag = {r.timing: r for r in runs if r.method == method}
            row, values = [method_label(method)], [{}]
            text, v = _sr_cell(rs, by_tag.get(""))
            row.append(text)
            values.append(v)
            for tag in tags:
                run = by_tag.get(tag)
                text, v = _sr_cell(rs, run)
                done = _mean(run, "completion_s", successes_only=True) if run else math.nan
                jm = _mean(run, "jerk_mean") if run else math.nan
                jp = _mean(run, "jerk_p95") if run else math.nan
                row += [text, _num(done, ".2f"), f"{_num(jm, '.3g')} / {_num(jp, '.3g')}"]
                values += [v, {"completion_s": done}, {"jerk_mean": jm, "jerk_p95": jp}]
            t.add(row, values=values, ids={"model": model, "suite": suite, "pruner": method.pruner,
                                           "retention": method.retention, "variant": method.variant})
        out.append(t)
    return out
