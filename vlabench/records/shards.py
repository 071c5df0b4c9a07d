"""Shards: a run's episodes split into n parts that run anywhere and merge into one run.

`run.shard=i/n` keeps the i-th of n parts of the plan (see `select_shard`) and writes into its
own run directory, named `<run name>.shard-<i>-of-<n>` (`shard_name`); `vlabench merge`
(vlabench/records/merge.py) joins shard directories into the run, and the report skips shard
directories when it searches a folder (a merged run stands for them).
"""

from __future__ import annotations

import re
from typing import Any

from vlabench.core.config import shard_spec
from vlabench.core.contracts import EpisodeSpec


def select_shard(plan: dict[int, list[EpisodeSpec]], spec: Any) -> dict[int, list[EpisodeSpec]]:
    """The episodes of shard `spec` ("i/n"; None: all): those with (task id + episode index) % n
    == i - 1, so each shard holds a slice of every task, and a run that grows (more episodes,
    more tasks) keeps every existing episode in the shard that has it."""
    if spec is None:
        return plan
    i, n = shard_spec(spec)
    return {t: [ep for ep in eps if (t + ep.index) % n == i - 1] for t, eps in plan.items()}


SHARD_SUFFIX = re.compile(r"\.shard-(\d+)-of-(\d+)$")


def shard_name(name: str, i: int, n: int) -> str:
    """The run name of shard i of n of run `name` (the suffix `vlabench merge` strips)."""
    return f"{name}.shard-{i}-of-{n}"


def base_name(name: str) -> str | None:
    """The run's name without its shard suffix; None when `name` has none."""
    m = SHARD_SUFFIX.search(name)
    return name[:m.start()] if m else None


def config_shard(cfg: dict[str, Any]) -> tuple[int, int] | None:
    """(i, n) of a saved config (a plain dict) that ran one shard, else None."""
    spec = (cfg.get("run") or {}).get("shard") if isinstance(cfg, dict) else None
    return shard_spec(spec) if spec is not None else None
