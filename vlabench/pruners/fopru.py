"""FoPru (Jiang et al. 2024, arXiv 2411.14164), as SP-VLA's Table 1 baseline "FoPru + R".

FoPru ranks visual tokens by a significance score from the vision encoder's attention and keeps
a fixed share of them before the LLM (abstract; Sec. 3): token significance is taken from the
penultimate encoder layer's attention map averaged over heads, then over one axis of the map
(the axis whose averaged vector varies more); the "rank" strategy keeps the globally top-scored
tokens, the "row" strategy keeps the top tokens of every row of the patch grid ("preserving
continuous key information from a local perspective"; read here as an equal share per grid
row); the kept tokens are finally put back in their original order. No public code of FoPru
was found, nor SP-VLA's (github.com/ChildTang/SP-VLA is not public); this follows the text.

On OpenVLA: the attention is SigLIP's feature layer (vlabench/pruners/sp_adapt.py says why it
stands for the CLS/penultimate attention). Each softmax row sums to 1, so averaging over keys
gives the constant 1/P (zero variance) and the variance rule always picks the other axis: the
attention each patch receives, averaged over heads and queries (`received_attention`).
SP-VLA Sec. A.4: FoPru "already incorporates mechanisms for extracting spatial information",
so Table 1 runs it with +R only (`pruner.keep_positions=true`, `pruner.edge_tokens=false`).
FoPru keeps the original order itself, so +R changes only the rotary positions (original
instead of renumbered 0..n'-1).

Retention: neither paper gives SP-VLA's setting. The default 0.715 (183 of 256 patches) is the
token count whose full-size OpenVLA FLOPs per call come closest to Table 1's 77.20% (77.3%;
182 tokens measured 77.0% with `vlabench bench model=openvla model.checkpoint=null`, each token
about 0.31% of a call).
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.config import cfg_get
from vlabench.pruners.common import retention_of
from vlabench.pruners.selection import keep_count, top_k_ids
from vlabench.pruners.sp_adapt import AdaptedBaseline, Plan, received_attention
from vlabench.registry import ConfigError

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
