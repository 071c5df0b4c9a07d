"""FastV (Chen et al., ECCV 2024, "An Image is Worth 1/2 Tokens After Layer 2"), Sec. 4.

After layer K the visual tokens least attended by the last token are dropped for the remaining
layers. The score is the attention of the sequence's last query, averaged over heads, at layer
K-1 (FastV's `modeling_llama.py`: at `idx == K` it reads `layer_outputs[1]` of layer K-1,
`mean(dim=1)[0][-1]` over the image span, and keeps `round(image_len * (1 - R))` by top-k).

Hook mapping: layers are 0-based; layers 0..K-1 see every token, so the hook reads layer K-1's
attention in `after_layer(K-1)` and its keep decision applies from layer K on. K=3 (VLA-Pruner's
baseline scripts, `--fastv_k 3`). Budget: `pruner.retention` of the visual tokens, rounded half
up (FastV: Python `round`, half to even; they differ only on exact halves).
Choice: on OpenVLA-OFT the last prefill token is the stop token after the action placeholders
(the last token, as FastV defines it); on OpenVLA it is the last prompt token.
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.pruners.base import LayerView, ModelInfo, Pruner
from vlabench.config import cfg_get
from vlabench.pruners.common import check_layer, is_meta, meta_keep, retention_of
from vlabench.pruners.selection import keep_count, top_k_ids


class FastV(Pruner):
    name = "fastv"
    scores_attention = True   # `select` reads the attention probabilities

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
        cols = view.key_visual_ids >= 0
        ids = view.key_visual_ids[cols]
        k = min(ids.numel(), keep_count(self.info.num_visual, self.retention))
        no_values = is_meta(view.hidden) or (self.scores_attention and (view.attn is None or is_meta(view.attn)))
        if no_values:   # meta device: the budget's count stands in for the selection
            return meta_keep(k)
        return self.select(view, cols, ids, k)

    def select(self, view: LayerView, cols: torch.Tensor, ids: torch.Tensor, k: int) -> torch.Tensor:
        """The k visual ids kept: the most attended by the last query, heads averaged."""
        score = view.attn[:, -1, :].mean(0)[cols.to(view.attn.device)]
        return top_k_ids(score, ids.to(score.device), k)
