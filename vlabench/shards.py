"""Shards: a run's episodes split into n parts that run anywhere and merge into one run.

`run.shard=i/n` keeps the i-th of n parts of the plan (see `select_shard`).
"""

from __future__ import annotations

from typing import Any

from vlabench.config import shard_spec
from vlabench.contracts import EpisodeSpec


def select_shard(plan: dict[int, list[EpisodeSpec]], spec: Any) -> dict[int, list[EpisodeSpec]]:
    """The episodes of shard `spec` ("i/n"; None: all): every n-th episode of the plan in
    (task, episode) order, starting at the i-th, so each shard holds a slice of every task."""
    if spec is None:
        return plan
    i, n = shard_spec(spec)
    flat = [(t, ep) for t, eps in plan.items() for ep in eps]
    keep = {(t, ep.index) for k, (t, ep) in enumerate(flat) if k % n == i - 1}
    return {t: [ep for ep in eps if (t, ep.index) in keep] for t, eps in plan.items()}
