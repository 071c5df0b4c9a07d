"""FitPrune as VLA-Pruner's Table 3 baseline: a fitted per-layer visual token removal recipe.
The recipe says how many visual tokens to drop after each layer; those with the lowest cross x
self head-max attention go. The recipe is fitted offline under a FLOPs budget, which one policy
call cannot do, so it is a setting: by default FitPrune's published LLaVA-1.5-7B reduction-60
recipe, scaled to the model. Paper: "Fit and Prune: Fast and Training-free Visual Token Pruning
for Multi-modal Large Language Models" (AAAI 2025, arXiv:2409.10197). Public code:
ywh187/FitPrune @ d28e418.

Details, readings and reference citations: docs/methods/fitprune.md
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.core.config import cfg_get
from vlabench.core.errors import ConfigError
from vlabench.pruners.base import BOS, VISUAL, LayerView, ModelInfo, Pruner
from vlabench.pruners.common import REF_LAYERS, is_meta, meta_keep
from vlabench.pruners.selection import top_k_ids


def scaled_scheme(scheme: list[int], scheme_tokens: int, num_visual: int, num_layers: int) -> dict[int, int]:
    """{layer: tokens removed after it} for a model with `num_visual` tokens and `num_layers`
    layers, from a recipe over `scheme_tokens` tokens and len(scheme) layers: cumulative counts
    scaled by num_visual / scheme_tokens (round half up), layer l moved to the same relative
    depth (round half up); counts landing on the last layer are left out (a drop after it is
    void)."""
    ref = len(scheme)
    cum, done, out = 0, 0, {}
    for l, n in enumerate(scheme):
        cum += int(n)
        target = min(num_visual, int(cum * num_visual / scheme_tokens + 0.5))
        layer = int(l * num_layers / ref + 0.5)
        if target > done and layer < num_layers - 1:
            out[layer] = out.get(layer, 0) + target - done
            done = target
    return out


def fitprune_drop(attn: torch.Tensor, rows_text: torch.Tensor, rows_visual: torch.Tensor,
                  cols: torch.Tensor, ids: torch.Tensor, n_drop: int) -> torch.Tensor:
    """FitPrune's keep set: of the visual keys `cols` (ids `ids`), all but the `n_drop` with the
    lowest cross * self score of the head-max attention `attn` (heads, n_q, n_k): cross = sum
    over `rows_text`, self = mean over `rows_visual`. Sorted ids."""
    a = attn.amax(dim=0).index_select(1, cols)
    cross = a[rows_text].sum(0)
    self_ = a[rows_visual].sum(0) / max(int(rows_visual.sum()), 1)
    return top_k_ids(cross * self_, ids, ids.numel() - n_drop)


class FitPrune(Pruner):
    name = "fitprune"

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        scheme = cfg_get(cfg, "scheme", None)
        if scheme is None or len(list(scheme)) == 0:
            raise ConfigError("pruner.scheme is missing: a list of visual tokens removed per layer "
                              "(configs/pruner/fitprune.yaml ships FitPrune's reduction-60 recipe)")
        self.scheme = [int(x) for x in scheme]
        if any(x < 0 for x in self.scheme):
            raise ConfigError(f"pruner.scheme counts must be >= 0, got {self.scheme}")
        self.scheme_tokens = int(cfg_get(cfg, "scheme_tokens", 576))
        if self.scheme_tokens <= 0:
            raise ConfigError(f"pruner.scheme_tokens must be > 0, got {self.scheme_tokens}")
        self.plan: dict[int, int] = {}

    def bind(self, info: ModelInfo) -> None:
        super().bind(info)
        if len(self.scheme) != REF_LAYERS and len(self.scheme) != info.num_layers:
            raise ConfigError(f"pruner.scheme has {len(self.scheme)} layers; valid: {REF_LAYERS} "
                              f"(the recipe's depth) or the model's {info.num_layers}")
        self.plan = scaled_scheme(self.scheme, self.scheme_tokens, info.num_visual, info.num_layers)
        self.attention_layers = frozenset(self.plan)

    def after_layer(self, view: LayerView) -> torch.Tensor | None:
        n = self.plan.get(view.layer, 0) if view.phase == "prefill" else 0
        ids = view.visual_key_ids
        if n <= 0 or ids.numel() == 0:
            return None
        n = min(n, ids.numel())
        if view.attn is None or is_meta(view.attn) or is_meta(view.hidden):
            return meta_keep(ids.numel() - n)
        dev = view.attn.device
        kinds = view.query_kinds.to(dev)
        rows_visual = kinds == VISUAL
        rows_text = (kinds != VISUAL) & (kinds != BOS)
        return fitprune_drop(view.attn.float(), rows_text, rows_visual,
                             view.visual_key_index.to(dev), ids.to(dev), n)
