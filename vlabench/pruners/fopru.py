"""FoPru as SP-VLA's Table 1 baseline "FoPru + R": keep visual tokens by encoder attention.
Before the LLM, each image keeps a fixed share of its patches (default 183 of 256, matching
Table 1's FLOPs), ranked by the attention they receive in the vision encoder, either globally
(`rank`) or per grid row (`row`), in original order. Paper: "FoPru: Focal Pruning for Efficient
Large Vision-Language Models" (arXiv:2411.14164). Public code: none found, neither FoPru's nor
SP-VLA's, so this follows the text.

Details, readings and reference citations: docs/methods/fopru.md
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.core.config import cfg_get
from vlabench.core.errors import ConfigError
from vlabench.pruners.common import retention_of
from vlabench.pruners.selection import keep_count, top_k_ids
from vlabench.pruners.sp_adapt import AdaptedBaseline, Plan, received_attention

STRATEGIES = ("rank", "row")


def rank_keep(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Rank strategy: the k top-scored patch ids, in original order (ties: lowest id)."""
    return top_k_ids(scores, torch.arange(scores.numel()), k)


def row_keep(scores: torch.Tensor, grid: int, k: int) -> torch.Tensor:
    """Row strategy: the top ceil-share of every grid row, so each row keeps k // grid tokens
    and the first k % grid rows one more; original order."""
    base, extra = divmod(k, grid)
    out = []
    for r in range(grid):
        ids = torch.arange(r * grid, (r + 1) * grid)
        out.append(top_k_ids(scores[ids], ids, base + (1 if r < extra else 0)))
    return torch.sort(torch.cat(out)).values


class FoPru(AdaptedBaseline):
    name = "fopru"

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.retention = retention_of(cfg, 0.715)
        self.strategy = str(cfg_get(cfg, "strategy", "rank"))
        if self.strategy not in STRATEGIES:
            raise ConfigError(f"pruner.strategy={self.strategy!r} is invalid; valid: {', '.join(STRATEGIES)}")

    def budget(self, per: int) -> int:
        return keep_count(per, self.retention)

    def plan(self, attn: torch.Tensor, feats: torch.Tensor, emb: torch.Tensor) -> Plan | None:
        per = emb.shape[0]
        k = self.budget(per)
        if k >= per:
            return None
        scores = received_attention(attn).cpu()
        if self.strategy == "row":
            return Plan(row_keep(scores, self.info.grid, k))
        return Plan(rank_keep(scores, k))
