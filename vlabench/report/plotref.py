"""The published points the figures draw beside ours (`report --with-reference`).

A run's point in a paper: the row of its method (pruner), model family and retention without a
variant, on its suite; the speedup is the suite's own where the paper prints one, else the row's
per-model figure (VLA-Pruner Table 1 prints one speedup per model), and 1.0 for vanilla.
"""

from __future__ import annotations

import math

from vlabench.report.reference import Reference
from vlabench.report.runs import Run, model_family


def published(ref: Reference | None, run: Run) -> list[tuple[str, float, float]]:
    """(paper, success rate %, speedup ×; NaN where not printed) per paper printing the run."""
    if ref is None:
        return []
    ret = None if run.retention is None else round(float(run.retention), 6)
    out: dict[str, tuple[str, float, float]] = {}
    for key in ref.values:
        if (key.method, key.model, key.retention, key.variant) != (run.pruner, model_family(run.model), ret, ""):
            continue
        vals = ref.get(key, run.suite)
        if "success_rate" not in vals:
            continue
        speed = vals.get("speedup", ref.get(key, "").get("speedup", 1.0 if run.pruner == "none" else math.nan))
        out.setdefault(key.paper, (key.paper, vals["success_rate"], speed))   # a paper's first table
    return sorted(out.values())
