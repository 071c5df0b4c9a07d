"""Random token dropping: the attention-free control every pruning paper should report.
It is FastV with the scoring replaced: uniformly random visual tokens are dropped at FastV's
layer with FastV's budget and FLOPs, drawn from torch's CPU generator, which is re-seeded every
episode. SP-VLA reports it as "Random Dropping" in Table 2 ("SP-VLA: A Joint Model Scheduling
and Token Pruning Approach for VLA Model Acceleration", arXiv:2506.12723). Layout code: FastV's
(pkunlp-icler/FastV @ d165972), on OpenVLA-OFT VLA-Pruner's (MINT-SJTU/VLA-Pruner @ 3d156ee).

Details, readings and reference citations: docs/methods/random-drop.md
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
