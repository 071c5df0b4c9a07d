"""FitPrune (Ye et al., AAAI 2025, "Fit and Prune: Fast and Training-free Visual Token Pruning for
Multi-modal Large Language Models", arXiv 2409.10197), as the baseline of VLA-Pruner Table 3 /
App. B.3 ("FitPrune", 47.71% FLOPs on OpenVLA).

Method. A pruning recipe (how many visual tokens each layer removes) is fitted offline under a
FLOPs budget, then applied at inference by attention. Code ywh187/FitPrune @ d28e418:
- fitting, `LLaVA_1.5/llava/eval/statistical_analysis.py`: per layer, the head-max attention
  (L206) gives each visual token a cross score (attention from the text rows after the image,
  L208) and a self score (attention from the visual rows, L209); a binary search on alpha
  (L334-342) finds the recipe whose forecast FLOPs (L132-143) meet `reduction_ratio`; the
  recipe is the mean number removed per layer (L274);
- inference, `LLaVA_1.5/llava/model/language_model/modeling_llama.py` L357-405: at layer l,
  with `delete_scheme[l]` > 0, the head-max attention map scores each alive visual token by
  cross (sum over the rows after the image, L398) times self (mean over the visual rows, L395)
  and the `delete_scheme[l]` lowest are removed (L400-405).
`fitprune_drop` is that rule; exact score ties keep the lower id. Hook mapping: the code drops
the tokens inside layer l (after its attention, before its MLP); here `after_layer(l)` drops
them from layer l+1 on (their layer-l MLP still runs: a few MFLOPs per token).

Recipe. VLA-Pruner App. B.3 fits FitPrune "on 100 LIBERO tasks" but does not publish the recipe;
fitting needs the full model run layer by layer once per alpha on a calibration set, which the
hooks of one policy call cannot do. The default is therefore FitPrune's published LLaVA-1.5-7B
recipe for `reduction_ratio = 60` (modeling_llama.py L379-381; also the fitting script's
example, README "--reduction_ratio 0.6"), given in YAML as `scheme` (per-layer counts of
`scheme_tokens` = 576 tokens), scaled to the model's M visual tokens on the cumulative counts.
It comes closest to Table 3's FLOPs on OpenVLA (LLM FLOPs 49.7% of the unpruned; printed 47.71%;
recipe 55: about 54%). A recipe fitted on LIBERO replaces it with `pruner.scheme=[...]`. Other depths
map layer l to the same relative depth (a count landing on the last layer is void there).

VLA mapping. The image span is every visual token of the call (OpenVLA 256; both OpenVLA-OFT
cameras, 512, one pool as one image: the recipe counts tokens, not images). "Text" rows are the
rows after the image in the code: OpenVLA's prompt; on OpenVLA-OFT the proprio token, prompt,
action placeholders and stop token (BOS is LLaVA's system prompt side, before the image). The
OFT attention is bidirectional, so its "self" and "cross" sums see every key.
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.config import cfg_get
from vlabench.pruners.base import BOS, VISUAL, LayerView, ModelInfo, Pruner
from vlabench.pruners.common import REF_LAYERS, is_meta, meta_keep
from vlabench.pruners.selection import top_k_ids
from vlabench.registry import ConfigError


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
