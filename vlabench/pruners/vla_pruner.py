"""VLA-Pruner: temporal-aware dual-level visual token pruning at prefill.

Keeps the union of the top visual tokens by semantic attention (prefill queries) and by a
decayed window of past action-to-vision attention, then filters that union for diversity
(greedy max-min cosine distance), so tokens the action needs survive next to those the prompt
needs. Paper: "VLA-Pruner: Temporal-Aware Dual-Level Visual Token Pruning for Efficient
Vision-Language-Action Inference" (arXiv:2511.16449). Public code: MINT-SJTU/VLA-Pruner@fa5bfed
(OpenVLA) and MINT-SJTU/VLA-Pruner@3d156ee (OpenVLA-OFT).

Details, readings and reference citations: docs/methods/vla-pruner.md
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

import numpy as np
import torch

from vlabench.core.config import cfg_get
from vlabench.core.errors import ConfigError
from vlabench.core.readings import Reading
from vlabench.pruners.attn_scores import PREFILL_KINDS, has_values, last_row, query_to_visual, rows_of_kinds
from vlabench.pruners.base import ACTION, GENERATED, LayerView, ModelInfo, Pruner, VisualTokens
from vlabench.pruners.common import camera_pools, oft_score_layer, scale_layer
from vlabench.pruners.selection import (
    cosine_distance_matrix,
    first_by_nearest_other,
    greedy_maxmin,
    keep_count,
    top_k_ids,
)

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
    """VLA-Pruner's dual-level selection (docs/methods/vla-pruner.md)."""

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
