"""LLaVA-PruMerge as SP-VLA's Table 1 "PruMerge + R": keep attention outliers, merge the rest in.
Before the LLM, each image keeps its most-attended patches (a fixed count matching Table 1's
FLOPs by default, or the paper's adaptive IQR outliers; PruMerge+ adds spatial samples), adds to
each kept token its 32 most similar tokens weighted by attention, and appends one token for the
pruned ones. Paper: "LLaVA-PruMerge: Adaptive Token Reduction for Efficient Large Multimodal
Models" (arXiv:2403.15388). Public code: 42Shawn/LLaVA-PruMerge @ 1ca8b2b.

Details, readings and reference citations: docs/methods/prumerge.md
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vlabench.core.config import cfg_get
from vlabench.pruners.common import retention_of
from vlabench.pruners.selection import top_k_indices
from vlabench.pruners.sp_adapt import AdaptedBaseline, Plan, received_attention


def iqr_outlier_ratio(scores: torch.Tensor) -> float:
    """Share of scores above Q3 + 1.5 IQR (numpy's linear percentiles, as the code)."""
    a = scores.detach().float().cpu().numpy().ravel()
    q1, q3 = np.percentile(a, 25), np.percentile(a, 75)
    return float(np.count_nonzero(a > q3 + 1.5 * (q3 - q1))) / a.size


def spatial_samples(ratio: float, n: int) -> torch.Tensor:
    """PruMerge+'s uniform samples: ids 0, s, 2s, ... below n - 1 with s = int(int(1/ratio)/3)."""
    step = max(1, int(int(1.0 / ratio) / 3)) if ratio > 0 else 1
    return torch.arange(0, n - 1, step)


def fixed_count(n: int, retention: float) -> int:
    """int(N * ratio) patches (floored, at least one), as the code's `torch.topk(cls_attn,
    int(N*reduction_ratio))` (42Shawn/LLaVA-PruMerge @ 1ca8b2b clip_encoder.py L116)."""
    return max(1, min(n, int(n * retention)))


def prumerge_tokens(x: torch.Tensor, keys: torch.Tensor, a: torch.Tensor, kept: torch.Tensor,
                    neighbours: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(merged kept tokens (k, d), the extra token (d,)): kept token i -> x_i + sum a_j x_j over
    its `neighbours` most key-similar other tokens; extra = sum a_j x_j over the pruned ones."""
    n = x.shape[0]
    xf, af = x.float(), a.float().to(x.device)
    kn = torch.nn.functional.normalize(keys.float(), dim=-1)
    kept = kept.to(x.device)
    sim = kn[kept] @ kn.T                                        # (k, n)
    sim[torch.arange(kept.numel(), device=x.device), kept] = float("-inf")   # not itself
    m = min(neighbours, n - 1)
    nb = torch.sort(sim, dim=1, descending=True, stable=True).indices[:, :m]
    merged = xf[kept] + (af[nb][..., None] * xf[nb]).sum(1)
    pruned = torch.ones(n, dtype=torch.bool, device=x.device)
    pruned[kept] = False
    extra = (af[pruned][:, None] * xf[pruned]).sum(0)
    return merged, extra


class PruMerge(AdaptedBaseline):
    name = "prumerge"

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.retention = retention_of(cfg, 0.665)
        self.adaptive = bool(cfg_get(cfg, "adaptive", False))
        self.plus = bool(cfg_get(cfg, "plus", False))
        self.neighbours = int(cfg_get(cfg, "neighbours", 32))

    def budget(self, per: int) -> int:
        # shape-only builds have no attention: the fixed count (+ the extra token); adaptive
        # counts are content-dependent and priced at the fixed retention
        return fixed_count(per, self.retention) + 1

    def plan(self, attn, feats, emb) -> Plan | None:
        per = emb.shape[0]
        a = received_attention(attn).cpu()
        if self.adaptive:
            ratio = iqr_outlier_ratio(a)
            k = max(1, int(per * ratio))
        else:
            ratio = self.retention
            k = fixed_count(per, self.retention)
            if k >= per:
                return None
        order = top_k_indices(a, k)                              # descending a (the code's order)
        if self.plus:
            extra_ids = spatial_samples(ratio, per)
            order = torch.cat([order, extra_ids[~torch.isin(extra_ids, order)]])
        if order.numel() >= per:
            return None
        merged, extra = prumerge_tokens(emb, feats, a, order, self.neighbours)
        free = torch.nonzero(~torch.isin(torch.arange(per), order)).flatten()
        anchors = torch.cat([order, free[-1:]])
        return Plan(anchors, torch.cat([merged, extra[None]]).to(emb.dtype))
