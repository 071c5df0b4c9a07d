"""SpecPrune-VLA's layer-level (dynamic) pruning: the paper's scoring and the code's.

Paper (Sec. 5.1, App. 10.1): s_i = w_rank,i * w_conf with w_rank,i = sigmoid(-k rank_i) /
sum_j sigmoid(-k rank_j) and w_conf = mu_attn / (sigma_attn + eps); S_i <- (1 - beta) S_i +
beta s_i (beta = 0.2); each layer in S = {5, 10, 15, 20} drops 10% of the visual tokens alive.

Code (alexwhz-sjtu/SpecPrune-VLA @ d3b06ed, `modeling_llama.py` L1091-1268, `high_attn_score`
L1330-1352): scores are updated at layers 0, 1 and 12 from the mean attention of every query
after the visual block (proprio, prompt, placeholders, stop; heads averaged) per camera: the
alive tokens of a camera sorted by it get w = linspace(10, 0.1, n) times sigmoid(10 (32 - l))
(= 1 in float for l < 32), and S <- S + 0.2 (w - S). At layers {5, 10, 15, 20, 25} the
sequence keeps retain = max(int(0.8 L), 60 + P + 58) tokens (L alive tokens, P prompt tokens,
58 = proprio + 56 placeholders + stop, DYNAMIC_PRUNE_RATIO = 0.8, MIN_RETAIN_TOKENS = 60), the
non-visual tail always (score +inf) and the best-scored others; the first layer whose retain
equals the floor turns layer pruning off for the rest of the call.
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
