"""VisionZip as SP-VLA's Table 1 "VisionZip + R + S": dominant plus contextual visual tokens.
Before the LLM, each image keeps its most-attended patches (dominant) and merges the others by
similarity into a few contextual tokens (default 72 + 13: VisionZip's largest setting scaled to
256 patches), with SP-VLA's +R and +S. Paper: "VisionZip: Longer is Better but Not Necessary in
Vision Language Models" (CVPR 2025, arXiv:2412.04467). Public code: dvlab-research/VisionZip @
3151f6d.

Details, readings and reference citations: docs/methods/visionzip.md
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.core.config import cfg_get
from vlabench.core.errors import ConfigError
from vlabench.pruners.selection import top_k_indices
from vlabench.pruners.sp_adapt import AdaptedBaseline, Plan, received_attention


def contextual_merge(x: torch.Tensor, keys: torch.Tensor, rest: torch.Tensor,
                     contextual: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(target ids, contextual tokens (c, d)) from the `rest` ids (ascending): targets every
    step-th, the others averaged into their most key-similar target, added to it."""
    step = max(1, rest.numel() // contextual)
    pick = torch.arange(0, rest.numel(), step)[:contextual]
    targets = rest[pick]
    is_t = torch.zeros(rest.numel(), dtype=torch.bool)
    is_t[pick] = True
    others = rest[~is_t]
    dev = x.device
    kn = torch.nn.functional.normalize(keys.float(), dim=-1)
    xf = x.float()
    out = xf[targets.to(dev)].clone()
    if others.numel():
        sim = kn[others.to(dev)] @ kn[targets.to(dev)].T           # (n_others, c)
        assign = torch.argmax(sim, dim=1)                         # first maximum on ties
        sums = torch.zeros_like(out).index_add_(0, assign, xf[others.to(dev)])
        counts = torch.bincount(assign, minlength=targets.numel()).clamp_min(1).to(out.dtype)
        out = out + sums / counts[:, None]
    return targets, out


class VisionZip(AdaptedBaseline):
    name = "visionzip"

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.dominant = int(cfg_get(cfg, "dominant", 72))
        self.contextual = int(cfg_get(cfg, "contextual", 13))
        if self.dominant < 0 or self.contextual < 0 or self.dominant + self.contextual < 1:
            raise ConfigError(f"pruner.dominant={self.dominant} and pruner.contextual="
                              f"{self.contextual} must be >= 0 with at least one token kept")

    def budget(self, per: int) -> int:
        return self.dominant + self.contextual

    def plan(self, attn, feats, emb) -> Plan | None:
        per = emb.shape[0]
        if self.dominant + self.contextual >= per:
            return None
        a = received_attention(attn).cpu()
        dom = torch.sort(top_k_indices(a, self.dominant)).values
        rest = torch.nonzero(~torch.isin(torch.arange(per), dom)).flatten()
        if self.contextual == 0:
            return Plan(dom)
        targets, ctx = contextual_merge(emb, feats, rest, self.contextual)
        anchors = torch.cat([dom, targets])
        embeds = torch.cat([emb[dom.to(emb.device)].float(), ctx]).to(emb.dtype)
        return Plan(anchors, embeds)
