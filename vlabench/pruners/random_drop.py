"""Random token dropping: the control every pruning paper should report (SP-VLA Table 2 has
it as "Random Dropping"; VLA-Pruner and SpecPrune-VLA argue against attention-free selection).

Uniformly random visual tokens are dropped at layer K with the same budget as FastV
(`pruner.retention` of the visual tokens, rounded half up; K=3 as FastV here), so the only
difference from FastV is how tokens are chosen. Randomness comes from torch's global CPU
generator, which the runner re-seeds at every episode start: runs are reproducible.
API note: `after_layer` only fires at layers in `attention_layers`, so the decoder also computes
the (unused) attention probabilities of layer K-1 -- the same probe FastV pays.
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.pruners.base import LayerView, ModelInfo, Pruner
from vlabench.pruners.common import cfg_get, check_layer, retention_of
from vlabench.pruners.selection import keep_count


class RandomDrop(Pruner):
    name = "random"

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.k = int(cfg_get(cfg, "k", 3))
        self.retention = retention_of(cfg, 0.5)
        self.attention_layers = frozenset({self.k - 1})

    def bind(self, info: ModelInfo) -> None:
        super().bind(info)
        check_layer("pruner.k - 1", self.k - 1, info.num_layers)

    def after_layer(self, view: LayerView) -> torch.Tensor | None:
        if view.phase != "prefill" or view.layer != self.k - 1:
            return None
        ids = view.visual_ids()
        k = min(ids.numel(), keep_count(self.info.num_visual, self.retention))
        pick = torch.randperm(ids.numel())[:k]          # global CPU generator (seeded per episode)
        return torch.sort(ids[pick.to(ids.device)]).values
