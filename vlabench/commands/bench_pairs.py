"""Interleaved timing of a pruned policy against its unpruned baseline (`vlabench bench`).

Timing the two back to back lets machine drift (another process, thermal state, a GPU clock
change) show up as speedup. Here the calls alternate in ABBA order: call i of the pruned
policy (A) and call i of the baseline (B) form pair i, run as A,B for even i and B,A for odd i,
on the same observation and the same weights. Each pair gives one ratio per stage (baseline
ms / pruned ms: above 1 the pruned policy is faster); the summary is the median of those
ratios with a percentile-bootstrap 95% interval of the median and the interquartile range.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

# the baseline does no pruning work: its "pruner" time is the empty hooks, so no ratio
NO_RATIO_STAGES = ("pruner",)
ORDER = "ABBA"


def order(i: int) -> str:
    """Which policy runs first in pair i: "AB" (pruned first) for even i, "BA" for odd i."""
    return "AB" if i % 2 == 0 else "BA"


def summarise_ratios(ratios: list[float], n_boot: int = 2000, seed: int = 0) -> dict[str, Any]:
    """Median, bootstrap 95% interval of the median, and IQR of per-pair ratios (deterministic)."""
    a = np.asarray(ratios, dtype=np.float64)
    a = a[np.isfinite(a)]
    if a.size == 0:
        return {"median": None, "ci95": None, "iqr": None, "n_pairs": 0}
    rng = np.random.default_rng(seed)
    boots = np.median(a[rng.integers(0, a.size, (n_boot, a.size))], axis=1)
    lo, hi = np.quantile(boots, [0.025, 0.975])
    q1, q3 = np.percentile(a, [25, 75])
    return {"median": float(np.median(a)), "ci95": [float(lo), float(hi)],
            "iqr": [float(q1), float(q3)], "n_pairs": int(a.size)}


def pair_ratios(pairs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per stage: the summary of baseline/pruned latency over the pairs where both ran the model."""
    stages = sorted({k for p in pairs for k in p["ours"]} & {k for p in pairs for k in p["none"]})
    out = {}
    for s in stages:
        if s in NO_RATIO_STAGES:
            continue
        r = [p["none"][s] / p["ours"][s] for p in pairs
             if p["ours"].get(s, 0) > 0 and p["none"].get(s, 0) > 0]
        out[s] = summarise_ratios(r)
    return out


def interleave(ours: Callable[[Any], dict[str, float] | None],
               base: Callable[[Any], dict[str, float] | None], observations: list) -> list[dict[str, Any]]:
    """Call `ours` and `base` (one policy call each, returning its latency by stage, or None for
    a call served without the model) on each observation in ABBA order. Returns the pairs
    where both ran the model: {"order", "ours", "none"}."""
    pairs = []
    for i, obs in enumerate(observations):
        if order(i) == "AB":
            o = ours(obs)
            n = base(obs)
        else:
            n = base(obs)
            o = ours(obs)
        if o is not None and n is not None:
            pairs.append({"order": order(i), "ours": o, "none": n})
    return pairs
