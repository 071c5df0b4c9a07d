"""DivPrune (Alvar et al., CVPR 2025), Sec. 3 / Algorithm 1: visual token pruning as a Max-Min
Diversity Problem, solved greedily before the LLM. Official code: vbdi/divprune @ 799e2d9,
`LLaVA/llava/model/llava_arch.py` (`DivPrune()` L152-171, its use L352-385).

Distances are 1 - cosine similarity between the projected visual tokens (the LLM-input image
features, as DivPrune prunes LLaVA's visual embeddings after the projector, L371-375). The first
token is the one whose nearest other token is farthest (`DivPrune()`: column-wise second
smallest distance, argmax); then each step adds the token whose distance to its nearest selected
token is largest. Budget: `pruner.retention` of the M visual tokens (round half up; the code's
`int(round(r * M))` agrees on every budget the papers use). The kept tokens stay in sequence
order (`keep_indexs.sort()`, L379).

Readings (`pruner.reading`, see `readings`):
- positions: the official code feeds the shortened sequence with `position_ids=None` (L349-350,
  L382-383 only gathers ids that are None at inference), so the LLM numbers the kept tokens
  0..n'-1 and decoding continues from n' (`code`, default: the code behind DivPrune's tables;
  the decoder does it through `Pruner.contiguous_positions`); the paper does not discuss
  positions, and `paper` keeps each token's original rotary position (vlabench's convention).
Choice: both OFT cameras form one pool (the max-min problem over all visual tokens of the call),
not a per-camera split.

pi0 (VLA-Pruner App. B.4, Table 4's DivPrune rows): no DivPrune code for pi0 was released, so pi0
runs DivPrune's paper mechanism as above on PaliGemma's projected image tokens (one pool over
both cameras' 512), before the Gemma prefix. Under `code` the kept image tokens, BOS and prompt
are renumbered 0..n'-1 and the action expert's suffix positions continue from n' (pi0's own
positions count the tokens present: openpi src/openpi/models/pi0.py L236 `cumsum(prefix_mask)
- 1`, L259 the suffix from `sum(prefix_mask)`; a shortened prefix is numbered the same way).
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.pruners.base import Pruner, VisualTokens
from vlabench.pruners.common import is_meta, meta_keep, retention_of
from vlabench.pruners.readings import Reading
from vlabench.pruners.selection import (cosine_distance_matrix, first_by_nearest_other, greedy_maxmin,
                                       keep_count)

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
