"""VisionZip (Yang et al., CVPR 2025, arXiv 2412.04467), as SP-VLA's Table 1 "VisionZip + R + S".

Official code: dvlab-research/VisionZip @ 3151f6d, `visionzip/clip_encoder.py`
(`CLIPVisionTower_VisionZip.forward` L42-83) and `visionzip/utils.py` (the attention forward
returns the head-mean keys, L89, kept as the layer's `metric`). Per image, at the encoder's
second-to-last layer (the layer whose output LLaVA projects):
1. Dominant tokens (paper Sec. 3.2, L50-57): the top `dominant` patches by CLS attention summed
   over heads (L51-53), kept as they are, in sequence order (`masked_select`, L57).
2. Contextual tokens (Sec. 3.3, L59-80): the other patches, in sequence order; targets are every
   `step`-th of them, step = max(1, n_rest // contextual), the first `contextual` (L67-68); each
   non-target joins the target of highest key cosine similarity (L71-74); a contextual token is
   target + mean of its members (L75-80; a target with no members stays itself).
3. The LLM sees the dominant tokens then the contextual ones (L83), numbered 0..n'-1.
The README's settings on LLaVA-1.5 (576 patches): 54 + 10, 108 + 20, 162 + 30 (dominant counts
include the CLS token, which `visionzip()` removes with `dominant - 1`, `main.py`).

On a VLA (vlabench/pruners/sp_adapt.py): CLS attention -> attention each patch receives in
SigLIP's feature layer (VisionZip's rule for encoders without CLS); keys -> the fused vision
features; merging in the LLM-input space. Defaults: VisionZip's largest setting scaled to 256
patches, 162/576 -> 72 dominant and 30/576 -> 13 contextual (SP-VLA does not give its setting),
with +R and +S as Table 1 runs it. With +R a contextual token sits at its target's patch.
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.config import cfg_get
from vlabench.pruners.selection import top_k_indices
from vlabench.pruners.sp_adapt import AdaptedBaseline, Plan, received_attention
from vlabench.registry import ConfigError


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
