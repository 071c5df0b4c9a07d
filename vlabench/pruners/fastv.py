"""FastV: one-shot visual token pruning after an early decoder layer.

After an early scoring layer (K-1 = 2; layer K on VLA-Pruner's OpenVLA-OFT fork), the visual
tokens that the scoring rows (by default the last token) attend to least are dropped for the
rest of the prefill, as VLA-Pruner's baselines ran it. Paper: "An Image is Worth 1/2 Tokens
After Layer 2: Plug-and-Play Inference Acceleration for Large Vision-Language Models"
(arXiv:2403.06764). Public code: pkunlp-icler/FastV@d165972; the baselines as run:
MINT-SJTU/VLA-Pruner@fa5bfed (OpenVLA) and MINT-SJTU/VLA-Pruner@3d156ee (OpenVLA-OFT).

Details, readings and reference citations: docs/methods/fastv.md
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.core.config import cfg_get
from vlabench.core.errors import ConfigError
from vlabench.core.readings import Reading
from vlabench.pruners.attn_scores import PREFILL_KINDS, last_row, rows_of_kinds
from vlabench.pruners.base import LayerView, ModelInfo, Pruner
from vlabench.pruners.common import (
    camera_pools,
    check_k,
    is_meta,
    meta_keep,
    oft_score_layer,
    retention_of,
)
from vlabench.pruners.selection import keep_count, top_k_ids

_OFT_CODE = ("MINT-SJTU/VLA-Pruner @ 3d156ee, src/openvla-oft/transformers/src/transformers/"
             "models/llama/modeling_llama.py")
_EVIDENCE = ("VLA-Pruner Table 1's OFT FastV rows come from these runs (scripts "
             "src/openvla-oft/vla_pruner_srcipts/run_fastv/run_*_fastv.sh); on OpenVLA both "
             "sides coincide")
SCORE_ROWS = ("last", "prefill", "all")


class FastV(Pruner):
    name = "fastv"
    scores_attention = True   # `select` reads the attention probabilities
    readings = (
        Reading("score rows (OpenVLA-OFT)",
                "FastV as its code runs it (pkunlp-icler/FastV @ d165972 modeling_llama.py:742 "
                "`last_layer_attention_avg[-1]`): the last token's attention, on OFT the stop "
                "token (FastV's Sec. 4 text: the mean attention received from all tokens, "
                "`pruner.score_rows=all`)",
                f"{_OFT_CODE} `_fastv_scores`, source 'prefill': mean over the rows before the "
                "action placeholders (BOS, images, proprio, prompt)",
                "code", _EVIDENCE),
        Reading("scoring layer (OpenVLA-OFT)",
                "FastV (code: layer K-1's attention at idx == K): pruned from layer K on, "
                "K full layers",
                f"{_OFT_CODE} `fastv_forward`: layer K's attention, pruned after it "
                "(full_layers = K + 1 = 4)",
                "code", _EVIDENCE),
        Reading("budget pools (OpenVLA-OFT)",
                "FastV: one top-k over the image span, round(M r) of all M = 512 tokens",
                f"{_OFT_CODE} `_fastv_pruning_indices`: per camera, round(256 r) of each "
                "camera's tokens by its own top-k",
                "code", _EVIDENCE),
    )

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.k = int(cfg_get(cfg, "k", 3))
        self.retention = retention_of(cfg, 0.5)
        self.score_rows_cfg = cfg_get(cfg, "score_rows", None)
        if self.score_rows_cfg not in (None, *SCORE_ROWS):
            raise ConfigError(f"pruner.score_rows={self.score_rows_cfg!r} is invalid; valid: "
                              f"{', '.join(SCORE_ROWS)} (or null: by pruner.reading)")
        self.score_layer = self.k - 1
        self.pools = 1
        self.rows = self.score_rows_cfg or "last"
        self.attention_layers = frozenset({self.score_layer})

    def bind(self, info: ModelInfo) -> None:
        super().bind(info)
        # VLA-Pruner's OFT fork; pi0 (flow_steps > 0) has no released code: FastV's layout
        oft = self.reading == "code" and not info.autoregressive and info.flow_steps == 0
        def layer_of(k: int) -> int:
            return oft_score_layer(k, info.num_layers) if oft else k - 1

        self.score_layer = layer_of(self.k)
        self.pools = len(info.cameras) if oft else 1
        self.rows = self.score_rows_cfg or ("prefill" if oft else "last")
        check_k(self.k, layer_of, info.num_layers)
        self.attention_layers = frozenset({self.score_layer})

    def budget(self) -> int:
        """Visual tokens kept in each pool."""
        return keep_count(self.info.num_visual // self.pools, self.retention)

    def after_layer(self, view: LayerView) -> torch.Tensor | None:
        if view.phase != "prefill" or view.layer != self.score_layer:
            return None
        cols = view.key_visual_ids >= 0
        vids = view.key_visual_ids
        masks = camera_pools(vids, self.info.num_visual // self.pools, self.pools)
        pools = [cols & m for m in masks]
        ks = [min(int(p.sum()), self.budget()) for p in pools]
        no_attn = view.attn is None or is_meta(view.attn)   # meta device: the budget's count
        if is_meta(view.hidden) or (self.scores_attention and no_attn):
            return meta_keep(sum(ks))
        picks = [self.select(view, p, vids[p], k) for p, k in zip(pools, ks)]
        return torch.sort(torch.cat(picks)).values

    def score_rows(self, view: LayerView) -> torch.Tensor:
        """Boolean mask of the query rows whose attention is averaged (`self.rows`)."""
        if self.rows == "prefill":
            return rows_of_kinds(view, PREFILL_KINDS)
        if self.rows == "all":
            return torch.ones_like(view.query_kinds, dtype=torch.bool)
        return last_row(view)

    def select(self, view: LayerView, cols: torch.Tensor, ids: torch.Tensor,
               k: int) -> torch.Tensor:
        """The k ids among `ids` (key columns `cols`) most attended by the score rows, averaged
        over heads and rows."""
        a = view.attn
        rows = torch.nonzero(self.score_rows(view).to(a.device)).flatten()
        c = torch.nonzero(cols.to(a.device)).flatten()
        score = a.index_select(1, rows).index_select(2, c).float().mean(dim=(0, 1))
        return top_k_ids(score, ids.to(score.device), k)
