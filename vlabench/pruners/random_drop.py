"""Random token dropping: the control every pruning paper should report (SP-VLA Table 2 has
it as "Random Dropping"; VLA-Pruner and SpecPrune-VLA argue against attention-free selection).

Uniformly random visual tokens are dropped at layer K with the same budget as FastV
(`pruner.retention` of the visual tokens, rounded half up; K=3 as FastV here): it is FastV with
the scoring replaced, so the only difference is how tokens are chosen (on OpenVLA-OFT under
`pruner.reading=code` also FastV's OFT drop point and per-camera budgets; on pi0 FastV's own
layout under both readings; see fastv.py).
Randomness comes from torch's global CPU generator, which the runner re-seeds at every episode
start: runs are reproducible. The decoder computes the scoring layer's (unused) attention
probabilities, the same probe FastV pays, so FLOPs match FastV's exactly.
"""

from __future__ import annotations

import torch

from vlabench.pruners.base import LayerView
from vlabench.pruners.fastv import FastV


class RandomDrop(FastV):
    name = "random"
    scores_attention = False
    readings = FastV.readings[1:]                   # FastV's score rows do not apply

    def select(self, view: LayerView, cols: torch.Tensor, ids: torch.Tensor, k: int) -> torch.Tensor:
        pick = torch.randperm(ids.numel())[:k]          # global CPU generator (seeded per episode)
        return torch.sort(ids[pick.to(ids.device)]).values
