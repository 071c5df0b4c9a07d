"""FastV (Chen et al., ECCV 2024, "An Image is Worth 1/2 Tokens After Layer 2"), Sec. 4, as
VLA-Pruner's baselines ran it (the runs behind VLA-Pruner Table 1).

FastV as its code runs it (pkunlp-icler/FastV @ d165972, src/transformers/src/transformers/
models/llama/modeling_llama.py:736-747): at `idx == AGG_LAYER` (K) it reads `layer_outputs[1]`
of layer K-1, averages the heads, takes the last token's row (`last_layer_attention_avg[-1]`)
over the image span and keeps the top `round(image_len * (1 - R))`: layers 0..K-1 see every
token. FastV's Sec. 4 text instead scores by "the average attention-score one token received
from all other tokens" (the code/paper gap is FastV issues #14, #44, #48); `pruner.score_rows=all`
runs that. Hook mapping: layers are 0-based; a keep decision returned from `after_layer(L)`
applies from layer L+1 on. K=3 (VLA-Pruner's scripts: `fastv_k 3`).

OpenVLA: VLA-Pruner's FastV baseline is FastV's code (MINT-SJTU/VLA-Pruner @ fa5bfed,
src/openvla/transformers/src/transformers/models/llama/modeling_llama.py:1074-1123: at
`layer_idx == FASTV_k` it scores with layer K-1's `last_layer_attention_avg[-1]`, the last
prompt token, and keeps `round(256 (1 - r))`; scripts vla_pruner_srcipts/run_fastv/*.sh run it
with `--use_temporal False`), so both readings below coincide there.

OpenVLA-OFT: VLA-Pruner's OFT baseline (MINT-SJTU/VLA-Pruner @ 3d156ee, src/openvla-oft/
transformers/src/transformers/models/llama/modeling_llama.py, scripts
vla_pruner_srcipts/run_fastv/run_*_fastv.sh: `--use_fastv True --fastv_attention_source prefill
--fastv_k 3`) differs from FastV's code in three points, each a `Reading` (default `code`, the
runs behind Table 1's OFT columns; `pruner.reading=paper` runs FastV as FastV's code does):
1. score rows: `_fastv_scores` with source "prefill" averages the rows [0, action_token_start)
   (BOS, both images, proprio, prompt; `_build_action_token_metadata` in modeling_prismatic.py),
   not the last token (which on OFT is the stop token after the action placeholders);
2. layer: `fastv_forward` prunes when `layer_idx == fastv_k` *after* running that layer, with
   its own attention (`_estimate_pruned_forward_flops`: full_layers = pruning_layer + 1), so
   layers 0..K run in full (4 full layers) and layer K's attention scores;
3. budget: `_fastv_pruning_indices` splits the visual span per image (`_visual_token_spans`)
   and keeps `int(round(256 (1 - r)))` of each camera's tokens by its own top-k.
`pruner.score_rows` (last | prefill | all) overrides point 1 alone. The attention read on OFT
is the bidirectional attention the model computes (decoder.py). Budgets here round half up
(`keep_count`); Python's `round` halves to even: they differ only on exact halves, never at
Table 1's ratios. Exact score ties go to the lowest id (`top_k_ids`).

pi0 (`ModelInfo.flow_steps` > 0; VLA-Pruner App. B.4, Table 4's FastV rows): no FastV code for
pi0 was released (VLA-Pruner's repository has only its OpenVLA and OpenVLA-OFT forks), so pi0
runs FastV as FastV defines it under both readings: layer K-1's attention scores, layers
0..K-1 see every token (App. A.2 Eq. 12: K full layers), one top-k over all M = 512 visual
tokens, scored by the last prefix token (the prompt's final token; FastV's
`last_layer_attention_avg[-1]`) over the bidirectional PaliGemma prefix. The OFT points above
(prefill rows, layer K, per-camera pools) belong to the OFT fork and do not apply.
`pruner.score_rows` still overrides the rows.
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.config import cfg_get
from vlabench.pruners.attn_scores import PREFILL_KINDS, last_row, rows_of_kinds
from vlabench.pruners.base import LayerView, ModelInfo, Pruner
from vlabench.pruners.common import (camera_pools, check_layer, is_meta, meta_keep,
                                     oft_score_layer, retention_of)
from vlabench.pruners.readings import Reading
from vlabench.pruners.selection import keep_count, top_k_ids
from vlabench.registry import ConfigError

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
        self.score_layer = oft_score_layer(self.k, info.num_layers) if oft else self.k - 1
        self.pools = len(info.cameras) if oft else 1
        self.rows = self.score_rows_cfg or ("prefill" if oft else "last")
        check_layer("pruner.k" if oft else "pruner.k - 1", self.score_layer, info.num_layers)
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
