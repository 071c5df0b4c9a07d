"""VTW, Visual Tokens Withdrawal (Lin et al., AAAI 2025, "Boosting Multimodal Large Language
Models with Visual Tokens Withdrawal for Rapid Inference", arXiv 2405.05803), as the baseline of
VLA-Pruner Table 3 / App. B.3 ("VTW", 55.17% FLOPs on OpenVLA).

Method (VTW Sec. 3; code lzhxmu/VTW @ a3d8cfc, llava/model/language_model/VTW.py): every visual
token is removed from the sequence when the decoder reaches layer K (`VTWLlamaModel.forward`
L305-316: at `layer_idx == K` the hidden states keep only the rows before and after the image
span, and their original position ids, `pe_type="keep"`), so layers 0..K-1 run on the full
sequence and layers K.. on the text alone; decoding keeps the visual KV of layers < K.
Hook mapping: `after_layer(K-1)` returns no visual id (pruned from layer K on); K is 0-based.

K by the KL criterion (VTW Sec. 3.3; code: VTW.py L234-262 runs the model once per candidate
K = 5..L-1 with the tokens withdrawn there, L102-107 takes nn.KLDivLoss between the full
model's last-token distribution and each variant's, lmms_eval/__main__.py L388-400 averages
over the calibration samples and picks the first K whose mean KL <= eta, eta = 0.003 for
LLaVA-1.5-7B): `choose_withdrawal_layer` is that rule. VLA-Pruner App. B.3 calibrates it on
100 LIBERO tasks but does not print the K it found; this harness cannot rerun the full model
once per candidate K inside one call, so K is a setting. Its default, 16 of 32 layers, gives
Table 3's FLOPs on OpenVLA best (LLM FLOPs 56.3% of the unpruned, printed 55.17%; K = 15: 53.6%) and
matches the "late withdrawal layer" B.3 reports. Other depths scale K to the same relative depth.

VLA mapping. VTW's "image span" is every visual token of the call: OpenVLA's 256, and both
OpenVLA-OFT cameras (512); BOS, the prompt, OFT's proprio token and action placeholders are
VTW's "text" and stay. The KL criterion's "last token" maps to the output that produces the
action: OpenVLA's first action token (the last prompt row, a distribution over the 256 action
bins as LLaVA's answer token over its vocabulary); on OFT the L1 head has no distribution, so a
calibration there compares the action chunks (`choose_withdrawal_layer` takes any divergence).
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.config import cfg_get
from vlabench.pruners.base import LayerView, ModelInfo, Pruner
from vlabench.pruners.common import REF_LAYERS
from vlabench.registry import ConfigError


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
