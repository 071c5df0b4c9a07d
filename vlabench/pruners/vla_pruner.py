"""VLA-Pruner (2025): temporal-aware dual-level visual token pruning.

Paper: ../shared/papers/vla-pruner.md. Public code: MINT-SJTU/VLA-Pruner, OpenVLA @ fa5bfed
(src/openvla/..., cited as OV:) and OpenVLA-OFT @ 3d156ee (src/openvla-oft/..., cited as OFT:;
functions named, that tree is not in our mirror). At prefill, after the scoring layer:

1. Semantic scores S_vl (Sec. 3.1 Eq. 2): attention of every prefill query before the action
   tokens (BOS, visual, proprio, text) to each visual token, averaged over heads and queries
   (OV: modeling_llama.py:1082 `last_layer_attention_avg.mean(dim=0)`, the prefill scripts'
   `--use_prefil_attention True`; OFT: `_vlapruner_image_indices`, rows [0, action_token_start)).
2. Action scores (Sec. 4.2a Eq. 7): S^_act^t = sum_{i=1..w} gamma^i S_act^{t-i}, w = 3,
   gamma = 0.8, where S_act^t (Eq. 4) is the action-to-vision attention of call t averaged
   over heads and action queries: OpenVLA-OFT's 56 action placeholders at prefill (App. B.1.1;
   OFT: `_update_action_attention_history`); OpenVLA's 7 action-generating queries (the last
   prompt row at prefill, then the 6 cached decode steps; OV: modeling_prismatic.py:640-700).
   Visual tokens pruned at call t score 0 in S_act^t (both codes scatter into zeros).
3. Combine-then-filter (Sec. 4.2b, Algorithm 2): C_dual = Top-M~(S_vl) U Top-M~(S^_act);
   Algorithm 1 on the patch embeddings E_v (the projected visual tokens, the LLM's inputs):
   cosine distances (Eq. 9), a first token, then greedy max-min until M~ tokens.

The first w calls of an episode run unpruned to fill the history (Sec. 4.2c "warm-start"; both
codes set the prune ratio to 0 until the history is full). Budget M~ = round(r x M) (Table 1:
50%, 25%, 12.5%). Exact ties (top-k, argmax) go to the lowest id/row (`selection.py`). Not
reproduced: the codes score and measure cosine distances in bf16 (vlabench: float32), and
their CUDA top-k breaks the resulting ties arbitrarily.

Readings (`pruner.reading`, default `code`: the released scripts behind Table 1):
- first token of Algorithm 1: paper, the maximal second-nearest distance (App. A Alg. 1 lines
  7-12); code, the maximal nearest-other distance (`_redundancy_minization`: `topk(2,
  largest=False).values[1]` over a column holding its own zero self-distance, i.e. the nearest
  other row in exact arithmetic; DivPrune's rule).
- action-attention layers: paper, the latter half of the layers (Sec. 4.2c); code, layer 15
  only (OV: modeling_prismatic.py:615 `layer_idx = 15`; OFT: `vla_pruner_layer=15`, scripts
  `--vla_pruner_layer 15`), at the same relative depth on shallower decoders.
- Eq. 7's window order: OV: modeling_prismatic.py:573-576 weights the newest call by
  gamma^(w-1) and the oldest by 1, the reverse of Eq. 7; OFT's `_build_historical_action_
  attention` weights them as Eq. 7. A bug; not reproduced (Eq. 7 under both readings).
- on OpenVLA-OFT, the scoring layer: paper, the first K = 3 layers see every token and layer
  K-1 scores ("last-layer prefill attention", App. A.2 Eq. 12; OV does so); code, OFT's
  `fastv_forward` scores with layer K's attention and prunes after it (4 full layers).
- on OpenVLA-OFT, the pools: paper, one Top-M~ over all M = 512 tokens (Alg. 2); code,
  `_fastv_pruning_indices` runs Algorithm 2 per camera with round(256 r) each.
On OpenVLA (one camera, OV fork) the last two coincide. On the meta device (no attention values)
the budget gives the count.

pi0 (`ModelInfo.flow_steps` > 0; App. B.1 "pi0 Model", App. B.4, Table 4): no VLA-Pruner code
for pi0 was released (the repository has only the OpenVLA and OpenVLA-OFT forks), so on pi0
both readings run the paper's side of every point above: layer K-1 scores and layers 0..K-1
see every token (Sec. 4.2c, App. A.2 Eq. 12), one Top-M~ and one filter over all M = 512
visual tokens (Alg. 2), Algorithm 1's second-nearest first token, Eq. 7's window order. S_vl
averages every prefix row (images, BOS, prompt: pi0's prefix has no proprio or action rows).
S_act^t comes from the action expert (Sec. 4.2c (iii): "we average action attention scores over
its flow-matching steps"): the attention of the 50 action queries (kind ACTION; the state
token is not an action query) to the alive prefix visual keys, averaged over heads and action
rows, at the expert layers of the latter half (Sec. 4.2c, `flow_attention_layers` = L/2..L-1
of the expert's L layers, one per prefix layer) and the flow steps of the latter half (App.
B.1: "averaged over the latter half of these integration steps", steps 5..9 of 10), then
averaged over those (step, layer) pairs. The prefix probes only the scoring layer.

`pruner.semantic_rows=last` scores C_vl by the last token's row instead (the OpenVLA scripts
without the `_prefil` suffix, "FastV's last-token attention selection criterion combined with
temporal guidance", OV: README_VLA_Pruner.md; modeling_llama.py:1081); the default `prefill` is
the paper's Eq. 2 and the `_prefil` scripts'.
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

import numpy as np
import torch

from vlabench.config import cfg_get
from vlabench.pruners.attn_scores import (PREFILL_KINDS, has_values, last_row, query_to_visual,
                                          rows_of_kinds)
from vlabench.pruners.base import ACTION, GENERATED, LayerView, ModelInfo, Pruner, VisualTokens
from vlabench.pruners.common import camera_pools, oft_score_layer, scale_layer
from vlabench.pruners.readings import Reading
from vlabench.pruners.selection import (cosine_distance_matrix, first_by_nearest_other, greedy_maxmin,
                                       keep_count, top_k_ids)
from vlabench.registry import ConfigError

CODE_ACTION_LAYER = 15      # OV: modeling_prismatic.py:615; OFT: vla_pruner_layer (of 32 layers)
_OV = "MINT-SJTU/VLA-Pruner @ fa5bfed src/openvla/"
_OFT = "MINT-SJTU/VLA-Pruner @ 3d156ee src/openvla-oft/"
_SCRIPTS = "the released scripts (vla_pruner_srcipts/run_vla_pruner/*.sh) run this code"


def decaying_window(history: list[torch.Tensor], gamma: float) -> torch.Tensor:
    """Eq. 7: sum_i gamma^i S^{t-i}, `history` oldest first (its last entry is S^{t-1})."""
    out = torch.zeros_like(history[-1])
    for i, s in enumerate(reversed(history), start=1):
        out += gamma ** i * s
    return out


def _off_diagonal(distances: torch.Tensor) -> torch.Tensor:
    d = distances.clone()
    d.fill_diagonal_(float("inf"))
    return d


def second_nearest_first(distances: torch.Tensor) -> int:
    """Algorithm 1 lines 7-12 (paper): the row whose second-smallest distance to the others is
    largest (lowest row on ties); with fewer than 3 rows, row 0."""
    if distances.shape[0] < 3:
        return 0
    return int(torch.argmax(_off_diagonal(distances).kthvalue(2, dim=1).values))


FirstRule = Callable[[torch.Tensor], int]


def redundancy_filter(features: torch.Tensor, k: int,
                      first: FirstRule = second_nearest_first) -> torch.Tensor:
    """Algorithm 1: row indices of `features` kept by greedy max-min cosine diversity."""
    n = features.shape[0]
    if n <= k:
        return torch.arange(n)
    d = cosine_distance_matrix(features)
    return greedy_maxmin(d, k, first(d))


def dual_level_select(s_vl: torch.Tensor, s_act: torch.Tensor, ids: torch.Tensor,
                      features: torch.Tensor, k: int,
                      first: FirstRule = second_nearest_first) -> torch.Tensor:
    """Algorithm 2 over the candidate `ids` (ascending; their scores and feature rows aligned)."""
    if k >= ids.numel():
        return ids
    dual = torch.unique(torch.cat([top_k_ids(s_vl, ids, k), top_k_ids(s_act, ids, k)]))
    pos = torch.searchsorted(ids, dual)
    return torch.sort(dual[redundancy_filter(features[pos], k, first)]).values


class VLAPruner(Pruner):
    """VLA-Pruner's dual-level selection (module docstring)."""

    name = "vla-pruner"
    readings = (
        Reading("Algorithm 1's first token",
                "App. A Alg. 1 lines 7-12: the maximal second-nearest distance",
                f"{_OV}transformers/.../llama/modeling_llama.py:950-971 `_redundancy_minization` "
                "(and OFT's copy): topk(2, largest=False).values[1] of a column that holds its "
                "own zero distance, i.e. the maximal nearest-other distance (DivPrune's rule)",
                "code", _SCRIPTS),
        Reading("action-attention layers",
                "Sec. 4.2c: averaged over the latter half of the layers",
                f"{_OV}prismatic/extern/hf/modeling_prismatic.py:615 `layer_idx = 15`; "
                f"{_OFT} `vla_pruner_layer` = 15 (scripts `--vla_pruner_layer 15`): layer 15 only",
                "code", _SCRIPTS),
        Reading("Eq. 7 window order",
                "Eq. 7: gamma^i weights S_act^{t-i}, the newest call the most",
                f"{_OV}prismatic/extern/hf/modeling_prismatic.py:573-576 weights the newest call "
                "by gamma^(w-1) and the oldest by 1: a bug; not reproduced",
                "paper", f"{_OFT} `_build_historical_action_attention` weights as Eq. 7"),
        Reading("scoring layer (OpenVLA-OFT)",
                "Sec. 4.2c / App. A.2 Eq. 12: layers 0..K-1 see every token, layer K-1 scores",
                f"{_OFT}transformers/.../llama/modeling_llama.py `fastv_forward`: layer K's "
                "attention scores and pruning follows it (full_layers = K + 1 = 4)",
                "code", f"{_SCRIPTS} (OFT: `--fastv_k 3`); on OpenVLA both sides are layer K-1"),
        Reading("budget pools (OpenVLA-OFT)",
                "Alg. 2: one Top-M~ and one filter over all M = 512 visual tokens",
                f"{_OFT}transformers/.../llama/modeling_llama.py `_fastv_pruning_indices`: "
                "Alg. 2 per camera, round(256 r) of each camera's tokens",
                "code", f"{_SCRIPTS}; OpenVLA has one camera"),
    )

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.retention = float(cfg_get(cfg, "retention", 0.5))
        keep_count(1, self.retention)                  # validates (0, 1]
        self.prune_layer = int(cfg_get(cfg, "prune_layer", 3))
        self.window = int(cfg_get(cfg, "window", 3))
        self.gamma = float(cfg_get(cfg, "gamma", 0.8))
        self.semantic_rows = str(cfg_get(cfg, "semantic_rows", "prefill"))
        if self.semantic_rows not in ("prefill", "last"):
            raise ConfigError(f"pruner.semantic_rows={self.semantic_rows!r} is invalid; "
                              "valid: prefill, last")
        self.first: FirstRule = (first_by_nearest_other if self.reading == "code"
                                 else second_nearest_first)
        self.score_layer = self.prune_layer - 1
        self.first_flow_step = 0
        self.action_layers: frozenset[int] = frozenset()
        self.attention_layers = frozenset({self.score_layer})
        self.pools = 1
        self.pool_budget = 0
        self.budget = 0
        self.reset()

    def bind(self, info: ModelInfo) -> None:
        super().bind(info)
        flow = info.flow_steps > 0                       # pi0: the paper under both readings
        code = self.reading == "code" and not flow
        oft = code and not info.autoregressive           # the OFT fork's layout
        self.first = first_by_nearest_other if code else second_nearest_first
        self.score_layer = (oft_score_layer(self.prune_layer, info.num_layers) if oft
                            else self.prune_layer - 1)
        if not 0 <= self.score_layer < info.num_layers - 1:
            raise ConfigError(f"vla-pruner prunes after layer K={self.prune_layer}, which "
                              f"{info.name} ({info.num_layers} layers) does not have")
        latter_half = frozenset(range(info.num_layers // 2, info.num_layers))
        # pi0: action scores from the expert (it has one layer per prefix layer)
        self.flow_attention_layers = latter_half if flow else frozenset()
        if flow:
            self.action_layers = frozenset()
        elif code:
            self.action_layers = frozenset({scale_layer(CODE_ACTION_LAYER, info.num_layers)})
        else:
            self.action_layers = latter_half
        self.first_flow_step = info.flow_steps // 2      # App. B.1: the latter half of the steps
        self.attention_layers = frozenset({self.score_layer}) | self.action_layers
        self.pools = len(info.cameras) if oft else 1
        self.pool_budget = keep_count(info.num_visual // self.pools, self.retention)
        self.budget = self.pools * self.pool_budget

    def reset(self) -> None:
        self._history: deque[torch.Tensor] = deque(maxlen=self.window)
        self._features: torch.Tensor | None = None
        self._act_sum: torch.Tensor | None = None
        self._act_n = 0

    # ------------------------------------------------------------ hooks
    def before_llm(self, tokens: VisualTokens) -> None:
        self._features = tokens.embeddings
        self._act_sum, self._act_n = None, 0
        return None

    def after_layer(self, view: LayerView) -> torch.Tensor | None:
        if view.phase == "flow":
            if view.layer in self.flow_attention_layers and view.flow_step >= self.first_flow_step:
                self._observe_action(view)
            return None
        if view.layer in self.action_layers:
            self._observe_action(view)
        if view.phase == "prefill" and view.layer == self.score_layer \
                and len(self._history) == self.window:
            return self._select(view)
        return None

    def end_of_step(self, actions: np.ndarray, stats: Any) -> None:
        m = self.info.num_visual
        s = (self._act_sum / self._act_n).cpu() if self._act_n else torch.zeros(m)
        self._history.append(s)

    # ------------------------------------------------------------ pieces
    def _action_rows(self, view: LayerView) -> torch.Tensor:
        if not self.info.autoregressive:                # OFT's placeholders; pi0's expert rows
            return rows_of_kinds(view, (ACTION,))
        if view.phase == "decode":
            return rows_of_kinds(view, (GENERATED,))
        return last_row(view)                          # the row that emits the first action token

    def _observe_action(self, view: LayerView) -> None:
        """Add this view's S_act (heads and action rows averaged; zeros at pruned ids) to the
        call's sum, on the attention's device (pi0 observes 5 steps x L/2 layers per call)."""
        ids, sc = query_to_visual(view, self._action_rows(view))
        if sc is None:
            return
        v = torch.zeros(self.info.num_visual, dtype=torch.float32, device=sc.device)
        v[ids.long().to(sc.device)] = sc.float()
        self._act_sum = v if self._act_sum is None else self._act_sum + v
        self._act_n += 1

    def _semantic_rows(self, view: LayerView) -> torch.Tensor:
        if self.semantic_rows == "prefill":
            return rows_of_kinds(view, PREFILL_KINDS)
        return last_row(view)

    def _select(self, view: LayerView) -> torch.Tensor:
        ids, s_vl = query_to_visual(view, self._semantic_rows(view))
        if s_vl is None or not has_values(self._features):
            return torch.empty(self.budget, dtype=torch.long, device="meta")
        ids, order = torch.sort(ids.long().cpu())
        s_vl = s_vl.cpu()[order]
        s_act = decaying_window(list(self._history), self.gamma)[ids]
        feats = self._features.detach().float().cpu()[ids]
        per = self.info.num_visual // self.pools
        picks = [dual_level_select(s_vl[m], s_act[m], ids[m], feats[m], self.pool_budget,
                                   self.first) for m in camera_pools(ids, per, self.pools)]
        return torch.cat(picks)
