"""SP-VLA's "+R" and "+S" adaptations of image-VLM token reducers to a VLA (SP-VLA Table 1).
`AdaptedBaseline` runs a per-image reducer (FoPru, PruMerge, VisionZip, the FastVLM row) before
the LLM, as SP-VLA ran these baselines on OpenVLA: +R (`pruner.keep_positions`) keeps the kept
tokens in row-major order at their original rotary positions, and +S (`pruner.edge_tokens`)
also keeps every Canny-edge patch. Paper: "SP-VLA: A Joint Model Scheduling and Token Pruning
Approach for VLA Model Acceleration" (arXiv:2506.12723), Table 1, Sec. 4.1 and A.4. Public code:
none (github.com/ChildTang/SP-VLA is not public), so both options follow the text.

Details, readings and reference citations: docs/methods/sp-vla.md
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from vlabench.core.config import cfg_get
from vlabench.pruners.base import Pruner, VisualTokens
from vlabench.pruners.common import is_meta, meta_keep
from vlabench.pruners.sp_vla import accumulated_attention, canny_patch_ids


@dataclass
class Plan:
    """One image's reduction: `anchors` are local patch ids (0..P-1) in the order the method
    feeds them to the LLM; `embeds` their (k, d) merged embeddings, None for unchanged."""

    anchors: torch.Tensor
    embeds: torch.Tensor | None = None


def received_attention(probs: torch.Tensor) -> torch.Tensor:
    """The CLS-attention stand-in: attention each patch receives, mean over heads and queries."""
    return accumulated_attention(probs)


def arrange(plan: Plan, edges: torch.Tensor, emb: torch.Tensor,
            keep_positions: bool) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """(kept local ids, rows to write, their embeddings) for one image.

    +R: kept = anchors U edges in id order; merged embeddings are written at their anchors.
    Without +R: the method's tokens then the edge tokens not among them (id order) are written
    into slots 0..n-1, which are kept."""
    anchors = plan.anchors.to(torch.long).cpu()
    extra = edges[~torch.isin(edges, anchors)] if edges.numel() else edges
    if keep_positions:
        kept = torch.sort(torch.cat([anchors, extra])).values
        return kept, (anchors if plan.embeds is not None else None), plan.embeds
    first = plan.embeds if plan.embeds is not None else emb[anchors.to(emb.device)]
    seq = torch.cat([first, emb[torch.sort(extra).values.to(emb.device)]]) if extra.numel() else first
    n = seq.shape[0]
    slots = torch.arange(n)
    return slots, slots, seq.clone()


class AdaptedBaseline(Pruner):
    """A before-LLM image-token reducer with SP-VLA's +R / +S options; subclasses give `plan`
    (one image) and `budget` (tokens per image, for shape-only builds)."""

    vision_attention = True

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.keep_positions = bool(cfg_get(cfg, "keep_positions", True))
        self.edge_tokens = bool(cfg_get(cfg, "edge_tokens", False))
        self.canny = (float(cfg_get(cfg, "canny_low", 100)), float(cfg_get(cfg, "canny_high", 200)))
        self.contiguous_positions = not self.keep_positions

    def plan(self, attn: torch.Tensor | None, feats: torch.Tensor, emb: torch.Tensor) -> Plan | None:
        """The method on one image: attention (heads, P, P) (None unless `vision_attention`),
        features (P, F), embeddings (P, d). None keeps the image whole and unchanged."""
        raise NotImplementedError

    def budget(self, per: int) -> int:
        """Tokens the method keeps of one image of `per` patches (without +S edge tokens)."""
        raise NotImplementedError

    def before_llm(self, tokens: VisualTokens) -> torch.Tensor | None:
        info = self.info
        per = info.grid * info.grid
        att = tokens.vision_attention
        if is_meta(tokens.embeddings) or (self.vision_attention and (
                att is None or any(is_meta(a) for a in att.values()))):
            return meta_keep(len(info.cameras) * min(per, self.budget(per)))
        plans = []
        for c, cam in enumerate(info.cameras):
            rows = slice(c * per, (c + 1) * per)
            plans.append(self.plan(att[cam] if att is not None else None,
                                   tokens.features[rows], tokens.embeddings[rows]))
        if all(p is None for p in plans) and not self.edge_tokens:
            return None
        keep, writes = [], []
        for c, (cam, p) in enumerate(zip(info.cameras, plans)):
            rows = tokens.embeddings[c * per:(c + 1) * per]
            if p is None:
                p = Plan(torch.arange(per))
            edges = (canny_patch_ids(tokens.images[cam], info.grid, *self.canny)
                     if self.edge_tokens else torch.empty(0, dtype=torch.long))
            kept, at, vals = arrange(p, edges, rows, self.keep_positions)
            keep.append(kept + c * per)
            if at is not None:
                writes.append((at + c * per, vals))
        for at, vals in writes:          # after every plan has read the unmodified embeddings
            tokens.embeddings[at.to(tokens.embeddings.device)] = vals.to(tokens.embeddings.dtype)
        return torch.cat(keep).to(tokens.embeddings.device)
