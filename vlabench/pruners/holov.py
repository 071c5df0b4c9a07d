"""HoloV as VLA-Pruner's App. B.3 / Fig. 9 baseline: crop-wise visual token budgets, before the LLM.
Each image's tokens are split into crops; the budget goes to the crops by attention plus
similarity variance, then each crop keeps its most-attended tokens, so the kept set spans the
whole image rather than only its highlighted tokens. Paper: "Don't Just Chase 'Highlighted
Tokens' in MLLMs: Revisiting Visual Holistic Context Retention" (NeurIPS 2025, arXiv:2510.02912).
Public code: obananas/HoloV @ 1d2e65e.

Details, readings and reference citations: docs/methods/holov.md
"""

from __future__ import annotations

import math
from typing import Any

import torch

from vlabench.core.config import cfg_get
from vlabench.core.errors import ConfigError
from vlabench.core.readings import Reading
from vlabench.pruners.base import ModelInfo, Pruner, VisualTokens
from vlabench.pruners.common import is_meta, meta_keep, retention_of
from vlabench.pruners.selection import keep_count, top_k_indices

_CODE = "obananas/HoloV @ 1d2e65e llava/model/utils.py"
READINGS = (
    Reading("crops",
            "HoloV (abstract, method): the budget is distributed 'across different spatial "
            "crops'; their shape is not specified (read here as square blocks of the patch grid)",
            f"{_CODE} L32-50: the row-major token sequence cut into num_patches = 16 contiguous "
            "runs (16 rows of a 16x16 grid)",
            "code", "the public code produced HoloV's tables; VLA-Pruner's HoloV run is not public"),
    Reading("rotary positions of the kept tokens",
            "not discussed (the paper side keeps each token's original position)",
            "obananas/HoloV @ 1d2e65e llava_arch.py L239: the pruned features enter the LLM as a "
            "shorter sequence, positions 0..n'-1",
            "code", "the public code produced HoloV's tables"),
    Reading("order of the kept tokens",
            "not discussed (the paper side keeps the selected tokens in image order)",
            f"{_CODE} L114-131: crop by crop; a crop whose allocation covers it keeps its image "
            "order, the others descending [CLS] attention (torch.topk); this order takes "
            "positions 0..n'-1 (llava_arch.py L239, L358-359 position_ids=None)",
            "code", "the public code produced HoloV's tables"),
    Reading("a crop's allocation beyond its size",
            "not discussed (the paper side keeps the crop whole: fewer tokens than the budget)",
            f"{_CODE} L138-146: zero vectors appended after the last crop's tokens up to the "
            "budget; they enter the LLM as image tokens (the sequence has the budget's length)",
            "code", "the public code produced HoloV's tables"),
)


def row_crops(n: int, crops: int) -> list[torch.Tensor]:
    """The code's crops: `crops` contiguous runs of 0..n-1, the first n % crops one longer."""
    size, extra = divmod(n, crops)
    out, start = [], 0
    for c in range(crops):
        end = start + size + (1 if c < extra else 0)
        if end > start:
            out.append(torch.arange(start, end))
        start = end
    return out


def block_crops(grid: int, crops: int) -> list[torch.Tensor]:
    """Square crops: the grid x grid patches cut into sqrt(crops) x sqrt(crops) blocks, row-major
    ids, blocks in row-major order (sides as even as `row_crops` splits them)."""
    side = math.isqrt(crops)
    if side * side != crops:
        raise ConfigError(f"pruner.crops={crops} must be a square under reading=paper (4, 9, 16, ...)")
    bands = row_crops(grid, side)
    ids = torch.arange(grid * grid).reshape(grid, grid)
    return [ids[r][:, c].flatten() for r in bands for c in bands]


def token_scores(feats: torch.Tensor, attn: torch.Tensor, alpha: float, eps: float = 1e-6) -> torch.Tensor:
    """HoloV's token score in one crop: attention + alpha * (variance of the cosine similarities
    to the crop's other tokens, rescaled to the attention's mean magnitude)."""
    n = feats.shape[0]
    x = feats.float() / (feats.float().norm(dim=1, keepdim=True) + eps)
    s = (x @ x.T) * (1 - torch.eye(n, device=x.device))
    mean = s.sum(1) / (n - 1)
    var = ((s - mean[:, None]) ** 2).sum(1) / (n - 1)
    scale = attn.abs().mean() / (var.abs().mean() + eps)
    return attn + alpha * var * scale


def allocate(weights: torch.Tensor, budget: int) -> torch.Tensor:
    """floor(w * budget) per crop, then +1 to the highest-weighted crops (ties: lower crop) until
    the budget is met (HoloV code L102-112)."""
    alloc = torch.floor(weights * budget).long()
    rest = budget - int(alloc.sum())
    if rest > 0:
        alloc[top_k_indices(weights, min(rest, weights.numel()))] += 1
    return alloc


def holov_order(feats: torch.Tensor, attn: torch.Tensor, crops: list[torch.Tensor], budget: int,
                alpha: float, eps: float = 1e-6) -> torch.Tensor:
    """Indices of the tokens HoloV keeps among `feats` (n, d) with [CLS]-style attention `attn`
    (n,), in the order its code emits them (L114-131): crop by crop, a crop whose allocation
    covers it whole in image order, the others by descending attention (ties: lower index)."""
    attn = attn.float()
    crops = [c.to(attn.device) for c in crops]
    scores = []
    for c in crops:
        if c.numel() <= 1:
            scores.append(attn[c].mean() if c.numel() else attn.new_zeros(()))
        else:
            scores.append(token_scores(feats[c], attn[c], alpha, eps).mean())
    s = torch.stack(scores)
    alloc = allocate(s / (s.sum() + eps), budget)
    kept = [c if a >= c.numel() else c[top_k_indices(attn[c], int(a))]
            for c, a in zip(crops, alloc.tolist()) if a > 0]
    return torch.cat(kept)[:budget] if kept else torch.empty(0, dtype=torch.long, device=attn.device)


def holov_select(feats: torch.Tensor, attn: torch.Tensor, crops: list[torch.Tensor], budget: int,
                 alpha: float, eps: float = 1e-6) -> torch.Tensor:
    """The tokens of `holov_order`, sorted (image order)."""
    return torch.sort(holov_order(feats, attn, crops, budget, alpha, eps)).values


def code_sequence(feats: torch.Tensor, order: torch.Tensor, budget: int) -> torch.Tensor:
    """The (budget, d) image tokens HoloV's code feeds the LLM: the kept rows in emitted order,
    then zero vectors up to the budget (L138-146)."""
    seq = feats.new_zeros(budget, feats.shape[1])
    seq[:order.numel()] = feats[order.to(feats.device)]
    return seq


def received_attention(probs: torch.Tensor) -> torch.Tensor:
    """Stand-in for [CLS] attention on a tower without [CLS]: the attention each patch receives,
    averaged over heads and query patches. (heads, P, P) -> (P,)."""
    return probs.float().mean(dim=(0, 1))


class HoloV(Pruner):
    name = "holov"
    vision_attention = True
    readings = READINGS

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.retention = retention_of(cfg, 0.5)
        self.n_crops = int(cfg_get(cfg, "crops", 16))
        self.alpha = float(cfg_get(cfg, "alpha", 0.09))
        if self.n_crops < 1:
            raise ConfigError(f"pruner.crops must be >= 1, got {self.n_crops}")
        self.contiguous_positions = self.reading == "code"
        self.crops: list[torch.Tensor] = []

    def bind(self, info: ModelInfo) -> None:
        super().bind(info)
        per = info.grid * info.grid
        if info.num_visual != per * len(info.cameras):
            raise ConfigError(f"holov needs {info.name}'s visual tokens as one {info.grid}x{info.grid} "
                              f"patch grid per camera; it has {info.num_visual} for {len(info.cameras)} "
                              "camera(s)")
        self.crops = (row_crops(per, self.n_crops) if self.reading == "code"
                      else block_crops(info.grid, self.n_crops))

    def before_llm(self, tokens: VisualTokens) -> torch.Tensor | None:
        info = self.info
        per = info.grid * info.grid
        k = keep_count(per, self.retention)
        if k >= per:
            return None
        att = tokens.vision_attention
        if is_meta(tokens.embeddings) or att is None or any(is_meta(a) for a in att.values()):
            return meta_keep(k * len(info.cameras))
        keep, writes = [], []
        for c, cam in enumerate(info.cameras):
            feats = tokens.embeddings[c * per:(c + 1) * per]
            a = received_attention(att[cam]).to(feats.device)
            if self.reading == "paper":          # the selected tokens at their own positions
                keep.append(holov_select(feats, a, self.crops, k, self.alpha).to(feats.device) + c * per)
                continue
            # code: its sequence (emitted order, zero padding) written into this camera's first
            # k slots, which are kept and renumbered (`contiguous_positions`)
            order = holov_order(feats, a, self.crops, k, self.alpha)
            slots = torch.arange(k, device=feats.device) + c * per
            keep.append(slots)
            writes.append((slots, code_sequence(feats, order, k)))
        for slots, seq in writes:                # after every camera read its own rows
            tokens.embeddings[slots] = seq
        return torch.cat(keep)
