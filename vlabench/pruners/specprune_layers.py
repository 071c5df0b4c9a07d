"""SpecPrune-VLA's layer-level (dynamic) pruning: the paper's scoring and the code's.

At a few fixed decoder layers, visual tokens are dropped by a running importance score: the
paper's sigmoid-rank weight times a layer-confidence term, or the code's linear rank weights,
each folded in by an exponential moving average. Paper: "SpecPrune-VLA: Accelerating
Vision-Language-Action Models via Action-Aware Self-Speculative Pruning" (arXiv:2509.05614).
Public code: alexwhz-sjtu/SpecPrune-VLA@d3b06ed.

Details, readings and reference citations: docs/methods/specprune.md
"""

from __future__ import annotations

import torch


def rank_weights(head_scores: torch.Tensor, k: float) -> torch.Tensor:
    """Paper Sec. 5.1: per head, w_i = sigmoid(-k rank_i) / sum_j sigmoid(-k rank_j) (rank 0 =
    most attended); averaged over heads. head_scores (heads, n) -> (n,)."""
    h, n = head_scores.shape
    order = torch.argsort(head_scores, dim=-1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n, device=order.device).expand(h, n))
    w = torch.sigmoid(-k * rank.float())
    return (w / w.sum(dim=-1, keepdim=True)).mean(dim=0)


def layer_confidence(attn: torch.Tensor, eps: float) -> float:
    """Paper Sec. 5.1: w_conf = mu_attn / (sigma_attn + eps) over the layer's attention weights."""
    a = attn.float().flatten()
    if a.numel() == 0:
        return 0.0
    return float(a.mean() / (a.std(unbiased=False) + eps))


def ema(previous: torch.Tensor, current: torch.Tensor, beta: float) -> torch.Tensor:
    """Paper Sec. 5.1: S^(l) = (1 - beta) S^(l-1) + beta s^(l) (the code's S + 0.2 (w - S))."""
    return (1.0 - beta) * previous + beta * current


def code_rank_weights(scores: torch.Tensor, layer: int) -> torch.Tensor:
    """Code L1210-1216: the token ranked r-th (0 = most attended) of n gets
    linspace(10, 0.1, n)[r] * sigmoid(10 (32 - layer)); returned in the input's order."""
    n = scores.numel()
    w = torch.zeros(n, dtype=torch.float32)
    if n:
        order = torch.argsort(scores.float().cpu(), descending=True, stable=True)
        w[order] = torch.linspace(10.0, 0.1, n)
    return w * float(torch.sigmoid(torch.tensor(10.0 * (32 - layer))))


def code_retain(alive: int, tail: int, ratio: float = 0.8, min_retain: int = 60) -> tuple[int, bool]:
    """Code L1242-1245: (tokens the sequence keeps, whether this reached the floor and turns
    layer pruning off). `tail` counts the non-visual tokens after the visual block."""
    floor = min_retain + tail
    retain = max(int(ratio * alive), floor)
    return retain, retain == floor
