"""SP-VLA's Table 1 "FastVLM + R + S" row: FastVLM's fixed token-count reduction on OpenVLA.
FastVLM is an encoder (FastViTHD) that emits fewer, coarser tokens; OpenVLA cannot swap its
towers without retraining, so each image's 16x16 token grid is average-pooled over `pool` x
`pool` patches (default 2: 64 tokens per image), with SP-VLA's +R and +S. Paper: "FastVLM:
Efficient Vision Encoding for Vision Language Models" (CVPR 2025, arXiv:2412.13303). Public
code: apple/ml-fastvlm (no commit pinned; SP-VLA's own code is not public).

Details, readings and reference citations: docs/methods/fastvlm.md
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.core.config import cfg_get
from vlabench.core.errors import ConfigError
from vlabench.pruners.base import ModelInfo
from vlabench.pruners.sp_adapt import AdaptedBaseline, Plan


def pool_grid(emb: torch.Tensor, grid: int, pool: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(anchor ids, pooled tokens): row-major `pool` x `pool` block means of a (grid^2, d)
    row-major token grid, anchored at each block's top-left patch."""
    g = grid // pool
    d = emb.shape[-1]
    x = emb.float().reshape(g, pool, g, pool, d).mean(dim=(1, 3)).reshape(g * g, d)
    r, c = torch.meshgrid(torch.arange(g), torch.arange(g), indexing="ij")
    return (r * pool * grid + c * pool).reshape(-1), x


class FastVLM(AdaptedBaseline):
    name = "fastvlm"
    vision_attention = False

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.pool = int(cfg_get(cfg, "pool", 2))
        if self.pool < 1:
            raise ConfigError(f"pruner.pool must be >= 1, got {self.pool}")

    def bind(self, info: ModelInfo) -> None:
        super().bind(info)
        if info.grid % self.pool:
            raise ConfigError(f"fastvlm pools {self.pool}x{self.pool} patches; {info.name}'s "
                              f"{info.grid}x{info.grid} grid is not divisible (valid: a divisor of {info.grid})")

    def budget(self, per: int) -> int:
        return per // (self.pool * self.pool)

    def plan(self, attn, feats, emb) -> Plan | None:
        if self.pool == 1:
            return None
        anchors, pooled = pool_grid(emb, self.info.grid, self.pool)
        return Plan(anchors, pooled.to(emb.dtype))
