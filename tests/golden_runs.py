"""Run directories whose records reproduce given per-column figures (golden tests of the
appendix tables): success counts, step latencies, skipped (extrapolated) steps, pruned tokens,
FLOPs, and the optional per-call memory / CUDA-time columns.

All of a task's calls sit in its episode 0 (a warm-up call with an absurd latency first, which
the report must exclude); the other episodes have none. `mem_peak_mb` / `cuda_ms` are written
to calls.csv where the records format has those columns, else set on the loaded calls table
(`load`), as the report reads them either way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from report_helpers import counts_for, make_run

from vlabench.core.schema import CALL_COLUMNS, EPISODE_COLUMNS
from vlabench.records.files import atomic_write_text, format_rows
from vlabench.report.grid import to_table
from vlabench.report.layouts import LAYOUTS
from vlabench.report.reference import Reference
from vlabench.report.runs import RunSet

EXTRA = ("mem_peak_mb", "mem_kind", "cuda_ms")
_INJECT: dict[str, dict[str, object]] = {}   # run name -> extra call values not in CALL_COLUMNS


@dataclass
class Task:
    """One task: k of n episodes succeed; episode 0 makes `model_calls` model calls and serves
    `skipped` steps without the model."""

    name: str
    k: int
    n: int
    model_calls: int = 1
    latency_ms: float = 100.0
    skipped: int = 0
    skip_latency_ms: float = 0.0
    flops: float = 1e12
    tokens_in: int = 512
    tokens_kept: int = 512
    extra: dict[str, object] = field(default_factory=dict)


def sr(pct: float, decimals: int = 1, name: str = "task 0", **kw) -> Task:
    """A task whose success rate prints as `pct`."""
    k, n = counts_for(pct, decimals, range(20, 5001))
    return Task(name, k, n, **kw)


def ratio(pct: float, most: int = 4000) -> tuple[int, int]:
    """(part, whole) with whole <= most whose 100 * part / whole is closest to `pct`."""
    f = Fraction(pct / 100).limit_denominator(most)
    return f.numerator, f.denominator


def write_run(root: Path, name: str, *, model: str, pruner: str, suite: str, tasks: list[Task],
              pruner_cfg: dict | None = None, retention: float | None = None) -> Path:
    """config.yaml, manifest.json, episodes.csv and calls.csv of one run."""
    d = make_run(root, name, model=model, pruner=pruner, suite=suite, retention=retention,
                 pruner_cfg=pruner_cfg, tasks=[])   # the directory, config and manifest
    episodes, calls = [], []
    for tid, t in enumerate(tasks):
        for e in range(t.n):
            episodes.append({"run_id": name, "model": model, "pruner": pruner, "suite": suite,
                             "task_id": tid, "task_name": t.name, "episode": e, "init_state": e,
                             "seed": 7, "success": int(e < t.k), "steps": 10, "wall_s": 1.0})
        rows = [_call(t, t.latency_ms * 50, warmup=1)] if tid == 0 else []
        rows += [_call(t, t.latency_ms) for _ in range(t.model_calls)]
        rows += [{**_call(t, t.skip_latency_ms), "source": "extrapolator", "flops": 0,
                  "tokens_in": "", "tokens_kept": ""} for _ in range(t.skipped)]
        for i, r in enumerate(rows):
            calls.append({**r, "task_id": tid, "episode": 0, "call": i, "step": i})
    extra = {k: v for t in tasks for k, v in t.extra.items()}
    if any(k not in CALL_COLUMNS for k in extra):
        _INJECT[name] = {k: v for k, v in extra.items() if k not in CALL_COLUMNS}
    atomic_write_text(d / "episodes.csv", format_rows(EPISODE_COLUMNS, episodes, header=True))
    atomic_write_text(d / "calls.csv", format_rows(CALL_COLUMNS, calls, header=True))
    return d


def _call(t: Task, lat: float, warmup: int = 0) -> dict:
    return {"source": "model", "warmup": warmup, "lat_total_ms": lat, "lat_llm_ms": 0.8 * lat,
            "tokens_in": t.tokens_in, "tokens_kept": t.tokens_kept, "flops": t.flops, "mode": "",
            **{k: v for k, v in t.extra.items() if k in CALL_COLUMNS}}


def load(root: Path) -> RunSet:
    """The runs under root, with the extra call columns the records format lacks set in."""
    rs = RunSet.load([str(root)])
    for run in rs.runs:
        for k, v in _INJECT.get(run.name, {}).items():
            run.calls[k] = v
            if k != "mem_kind":
                run.calls.loc[run.calls["source"] != "model", k] = float("nan")
    return rs


def paced(pct: float, decimals: int = 2, *, speedup: float = 1.0, hz: float | None = None,
          flops_pct: float = 100.0, intuitive: float = 0.0, pruning: float = 0.0,
          base_ms: float = 100.0, base_flops: float = 4e12, name: str = "task 0") -> Task:
    """A one-task run's figures: success rate `pct`; mean step latency base_ms / speedup (or
    1000 / hz); `intuitive` % of its policy calls served without the model (latency 0, no
    FLOPs); mean FLOPs per call `flops_pct` % of base_flops; `pruning` % of tokens pruned."""
    skipped, whole = ratio(intuitive)
    model = whole - skipped
    step = 1000.0 / hz if hz is not None else base_ms / speedup
    flops = base_flops * flops_pct / 100 * (model + 1 + skipped) / (model + 1)  # + the warm-up call
    t = sr(pct, decimals, name, model_calls=model, skipped=skipped, latency_ms=step * whole / model,
           flops=flops, tokens_in=10000, tokens_kept=10000 - round(100 * pruning))
    return t


def tables(root, with_reference=False):
    """Every paper table the report renders from the runs under `root`, by key."""
    rs = load(root)
    ref = Reference.load() if with_reference else None
    return {g.key: to_table(g) for layout in LAYOUTS.values() for g in layout(rs, ref)}


def ours(table):
    """A table's own rows (not the paper's or the difference) by label, footnote marks cut."""
    return {re.sub(r" (\[\d+\])+$", "", r[0]): r for r, k in zip(table.rows, table.kinds, strict=True)
            if k == "ours"}
