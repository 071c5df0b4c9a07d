"""VTW as VLA-Pruner's Table 3 baseline: every visual token is withdrawn from layer K on.
Layers 0..K-1 run on the full sequence and later layers on the text alone. VTW picks K with a KL
criterion on calibration data (`choose_withdrawal_layer`), which one policy call cannot run, so K
is a setting (default 16 of 32, matching Table 3's FLOPs on OpenVLA). Paper: "Boosting
Multimodal Large Language Models with Visual Tokens Withdrawal for Rapid Inference" (AAAI 2025,
arXiv:2405.05803). Public code: lzhxmu/VTW @ a3d8cfc.

Details, readings and reference citations: docs/methods/vtw.md
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.core.config import cfg_get
from vlabench.core.errors import ConfigError
from vlabench.pruners.base import LayerView, ModelInfo, Pruner
from vlabench.pruners.common import REF_LAYERS


def choose_withdrawal_layer(divergence: dict[int, float], eta: float) -> int:
    """VTW's K: the first candidate layer (ascending) whose mean divergence between the full
    model's output and the output with visual tokens withdrawn there is <= eta; the last
    candidate when none is (lzhxmu/VTW lmms_eval/__main__.py L398-400)."""
    if not divergence:
        raise ValueError("no candidate layers")
    for k in sorted(divergence):
        if divergence[k] <= eta:
            return k
    return max(divergence)


class VTW(Pruner):
    name = "vtw"

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.k_ref = int(cfg_get(cfg, "k", 16))
        self.ref_layers = int(cfg_get(cfg, "ref_layers", REF_LAYERS))
        if not 1 <= self.k_ref <= self.ref_layers:
            raise ConfigError(f"pruner.k={self.k_ref} is out of range: valid 1..{self.ref_layers} "
                              f"(layers run with every visual token; {self.ref_layers} withdraws none)")
        self.k = self.k_ref
        self.attention_layers = frozenset({self.k - 1})

    def bind(self, info: ModelInfo) -> None:
        super().bind(info)
        # same relative depth (round half up); K = ref_layers stays "withdraw nothing"
        self.k = max(1, min(info.num_layers, int(self.k_ref * info.num_layers / self.ref_layers + 0.5)))
        self.attention_layers = (frozenset({self.k - 1}) if self.k < info.num_layers
                                 else frozenset())

    def after_layer(self, view: LayerView) -> torch.Tensor | None:
        if view.phase != "prefill" or view.layer != self.k - 1:
            return None
        dev = "meta" if view.hidden.device.type == "meta" else view.key_visual_ids.device
        return torch.empty(0, dtype=torch.long, device=dev)
