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
from vlabench.report.runs import Method, Run, RunSet

SR = "{success_rate:.1f}"
MODE_ORDER = {"sync": 0, "async": 1}


def _tag_order(tag: str) -> tuple:
    """sync before async; constant latencies by value, then measured and profiles by name."""
    mode, _, latency = tag.partition("@")
    ms = float(latency[:-2]) if latency.endswith("ms") and latency[:-2].replace(".", "", 1).isdigit() \
        else float("inf")
    return MODE_ORDER.get(mode, 2), ms, latency


def _mean(run: Run, column: str, successes_only: bool = False) -> float:
    if column not in run.episodes:
        return math.nan
    eps = run.episodes
    if successes_only:
        eps = eps[eps["success"] == 1]
    values = pd.to_numeric(eps[column], errors="coerce").dropna()
    return float(values.mean()) if len(values) else math.nan


def _method(r: Run) -> Method:
    """The run's method without the protocol tag that tells a timed run apart elsewhere
    (runs.py gives `variant` = its protocol when it shares a cell with a frozen run)."""
    variant = r.variant
    if r.timing and r.protocol and variant.endswith(str(r.protocol)):
        variant = variant[: -len(str(r.protocol))].removesuffix("@")
    return Method(r.pruner, r.retention, variant)


def _rows(runs: list[Run]) -> list[tuple]:
    """(method, deviations, {timing tag: run}, run name or "") per table row."""
    out = []
    keys = sorted({(_method(r), tuple(r.deviations)) for r in runs},
                  key=lambda k: (k[0].pruner != "none", k[0].pruner, k[0].retention or 0.0, k[0].variant, k[1]))
    for method, deviations in keys:
        mine = sorted((r for r in runs if _method(r) == method and tuple(r.deviations) == deviations),
                      key=lambda r: r.name)
        tags = [r.timing for r in mine]
        if len(set(tags)) == len(tags):
            out.append((method, deviations, {r.timing: r for r in mine}, ""))
            continue
        shared = {r.timing: r for r in mine if tags.count(r.timing) == 1}
        for r in mine:   # several runs of one mode: a row per such run, the others on each row
            if tags.count(r.timing) > 1:
                out.append((method, deviations, {**shared, r.timing: r}, r.name))
    return out


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
        # a row per method; runs of one method and mode that differ otherwise (e.g. another step
        # limit) get a row each, named by run
        for method, deviations, by_tag, named in _rows(runs):
            mine = list(by_tag.values())
            row, values = [method_label(method) + (f" [{named}]" if named else "")], [{}]
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
            t.add(row, marks=[f"deviation: {d}" for d in deviations] + [
                      f"{r.name}: run {r.status}, {len(r.episodes)} episodes so far"
                      for r in mine if r.status != "complete"],
                  values=values, ids={"model": model, "suite": suite, "pruner": method.pruner,
                                      "retention": method.retention, "variant": method.variant,
                                      "runs": [r.name for r in mine]})
        out.append(t)
    return out
