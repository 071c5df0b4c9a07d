"""DivPrune: visual token pruning as a Max-Min Diversity Problem, solved greedily before the LLM.
It keeps the `pruner.retention` share of the projected visual tokens chosen to be mutually far
apart (cosine distance), so the kept set covers the image with little redundancy; under the
default `pruner.reading=code` the kept tokens are renumbered as the official code does. Paper:
"DivPrune: Diversity-based Visual Token Pruning for Large Multimodal Models" (CVPR 2025,
arXiv:2503.02175), Sec. 3 / Algorithm 1. Public code: vbdi/divprune @ 799e2d9.

Details, readings and reference citations: docs/methods/divprune.md
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.core.readings import Reading
from vlabench.pruners.base import Pruner, VisualTokens
from vlabench.pruners.common import is_meta, meta_keep, retention_of
from vlabench.pruners.selection import (
    cosine_distance_matrix,
    first_by_nearest_other,
    greedy_maxmin,
    keep_count,
)

POSITIONS = Reading(
    point="rotary positions of the kept tokens",
    paper="Sec. 3 / Algorithm 1 select a subset of the visual tokens; positions are not discussed "
          "(the paper side keeps each token's original position)",
    code="vbdi/divprune @ 799e2d9 llava_arch.py L349-385: the pruned sequence enters the LLM with "
         "position_ids=None, so kept tokens are renumbered 0..n'-1 (order kept) and decoding "
         "continues from n'",
    default="code",
    evidence="the official code produced DivPrune's published tables; VLA-Pruner's DivPrune run "
             "is not public (MINT-SJTU/VLA-Pruner @ fa5bfed only declares a `divprune` flag)",
)


def divprune_select(features: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (pick order) of k rows of `features` chosen by DivPrune's greedy max-min."""
    d = cosine_distance_matrix(features)
    return greedy_maxmin(d, k, first_by_nearest_other(d))


class DivPrune(Pruner):
    name = "divprune"
    readings = (POSITIONS,)

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.retention = retention_of(cfg, 0.5)
        self.contiguous_positions = self.reading == "code"

    def before_llm(self, tokens: VisualTokens) -> torch.Tensor | None:
        m = tokens.embeddings.shape[0]
        k = keep_count(m, self.retention)
        if k >= m:
            return None
        if is_meta(tokens.embeddings):
            return meta_keep(k)
        return torch.sort(divprune_select(tokens.embeddings, k)).values
