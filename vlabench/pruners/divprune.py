"""DivPrune (Alvar et al., CVPR 2025), Sec. 3 / Algorithm 1: visual token pruning as a Max-Min
Diversity Problem, solved greedily before the LLM.

Distances are 1 - cosine similarity between the projected visual tokens (the LLM-input image
features, as DivPrune prunes LLaVA's `image_features` after the projector). The first token is
the one whose nearest other token is farthest (official `DivPrune()`: column-wise second
smallest distance, argmax); then each step adds the token whose distance to its nearest selected
token is largest. Budget: `pruner.retention` of the M visual tokens (round half up).
Choice: both OFT cameras form one pool (the max-min problem over all visual tokens of the call),
not a per-camera split.
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.pruners.base import Pruner, VisualTokens
from vlabench.pruners.common import is_meta, meta_keep, retention_of
from vlabench.pruners.selection import cosine_distance_matrix, greedy_maxmin, keep_count


def first_by_second_nearest(distances: torch.Tensor) -> int:
    """The row whose nearest other row (second smallest distance, the smallest being itself)
    is farthest."""
    if distances.shape[0] < 2:
        return 0
    second = torch.topk(distances, 2, dim=0, largest=False).values[1]
    return int(torch.argmax(second))


def divprune_select(features: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (pick order) of k rows of `features` chosen by DivPrune's greedy max-min."""
    d = cosine_distance_matrix(features)
    return greedy_maxmin(d, k, first_by_second_nearest(d))


class DivPrune(Pruner):
    name = "divprune"

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.retention = retention_of(cfg, 0.5)

    def before_llm(self, tokens: VisualTokens) -> torch.Tensor | None:
        m = tokens.embeddings.shape[0]
        k = keep_count(m, self.retention)
        if k >= m:
            return None
        if is_meta(tokens.embeddings):
            return meta_keep(k)
        return torch.sort(divprune_select(tokens.embeddings, k)).values
