"""The "FastVLM" row of SP-VLA's Table 1 ("FastVLM + R + S"): FastVLM's token-count reduction
applied to OpenVLA's visual tokens.

FastVLM (Vasu et al., CVPR 2025, arXiv 2412.13303; apple/ml-fastvlm) is not a pruning rule but
an encoder: FastViTHD, a hybrid convolution/transformer tower whose stages downsample the image
so that it emits fewer, coarser tokens (FastViTHD adds a further stride-2 stage to FastViT's
five-stage design), trained with its LLM. OpenVLA cannot swap its DINOv2 + SigLIP towers for FastViTHD without retraining,
and SP-VLA's code (github.com/ChildTang/SP-VLA) is not public; its text only says FastVLM
"retains a fixed number of tokens at each timestep" (Sec. A.4). The closest faithful reading on
OpenVLA is therefore FastVLM's reduction itself: the 16x16 token grid of each image is
average-pooled over `pool` x `pool` patches (a stride-`pool` downsampling stage), giving a fixed
(16/pool)^2 tokens per image, in row-major order.

What differs from FastVLM: no FastViTHD encoder (OpenVLA's towers still run at full cost, so
vision FLOPs are unchanged), the pooling acts on projected LLM-input tokens rather than inside
the encoder, and no weights were trained for the pooled tokens. With +R (SP-VLA Table 1) a
pooled token sits at the rotary position of its block's top-left patch; with +S every Canny-edge
patch is added with its own embedding (an edge patch that is a block's top-left patch is carried
by the pooled token). Default pool 2: one stride-2 stage, 64 tokens per image (a setting of
ours: SP-VLA gives no token count).
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.config import cfg_get
from vlabench.pruners.base import ModelInfo
from vlabench.pruners.sp_adapt import AdaptedBaseline, Plan
from vlabench.registry import ConfigError


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
