"""VLA-Pruner (2025): temporal-aware dual-level visual token pruning.

Paper: ../shared/papers/vla-pruner.md. At prefill, after decoder layer K-1 (the first K = 3
layers see every token, App. A.2 Eq. 12):

1. Semantic scores S_vl (Sec. 3.1 Eq. 2): attention of every vision-language query (BOS,
   visual, proprio, text: the M + N prefill tokens) to each visual token, averaged over heads
   and queries, from "last-layer prefill attention" (Sec. 4.2c), read as layer K-1, the last
   layer before pruning (as FastV, which the paper follows for K).
2. Action scores (Sec. 4.2a Eq. 7): S^_act^t = sum_{i=1..w} gamma^i S_act^{t-i}, w = 3,
   gamma = 0.8, where S_act^t (Eq. 4) is the action-to-vision attention of call t averaged
   over heads, action queries and the latter half of the layers (Sec. 4.2c): OpenVLA-OFT's
   56 action placeholders at prefill (App. B.1.1: its bidirectional chunk already attends to
   vision); OpenVLA's 7 action-generating queries (the last prompt row at prefill, then the
   6 cached decode steps). Visual tokens pruned at call t score 0 in S_act^t.
3. Combine-then-filter (Sec. 4.2b, Algorithm 2): C_dual = Top-M~(S_vl) U Top-M~(S^_act);
   Algorithm 1 on the patch embeddings E_v (the projected visual tokens before the LLM):
   cosine distances (Eq. 9), first token with the maximal second-nearest distance, then
   greedy max-min until M~ tokens.

The first w calls of an episode run unpruned to fill the history (Sec. 4.2c "warm-start").
Budget M~ = round(retention x M) (Table 1: 50%, 25%, 12.5% of 256 / 512 tokens).

Readings: the paper gives no rule for ties or for |C_dual| < 3 (second-nearest undefined);
ties take the lowest index (torch.argmax), and with fewer than 3 candidates the first one
starts. On the meta device (no attention values) the budget M~ gives the count.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import torch

from vlabench.pruners.attn_scores import has_values, query_to_visual, rows_of_kinds, scatter_scores
from vlabench.pruners.base import (ACTION, BOS, GENERATED, PROPRIO, TEXT, VISUAL, LayerView,
                                   ModelInfo, Pruner, VisualTokens)
from vlabench.config import cfg_get
from vlabench.pruners.selection import cosine_distance_matrix, greedy_maxmin, keep_count, top_k_ids
from vlabench.registry import ConfigError


def decaying_window(history: list[torch.Tensor], gamma: float) -> torch.Tensor:
    """Eq. 7: sum_i gamma^i S^{t-i}, `history` oldest first (its last entry is S^{t-1})."""
    out = torch.zeros_like(history[-1])
    for i, s in enumerate(reversed(history), start=1):
        out += gamma ** i * s
    return out


def second_nearest_first(distances: torch.Tensor) -> int:
    """Algorithm 1 lines 7-12: the row whose second-smallest distance to the others is largest."""
    n = distances.shape[0]
    if n < 3:
        return 0
    d = distances.clone()
    d.fill_diagonal_(float("inf"))
    return int(torch.argmax(d.kthvalue(2, dim=1).values))


def redundancy_filter(features: torch.Tensor, k: int) -> torch.Tensor:
    """Algorithm 1: row indices of `features` kept by greedy max-min cosine diversity."""
    n = features.shape[0]
    if n <= k:
        return torch.arange(n)
    d = cosine_distance_matrix(features)
    return greedy_maxmin(d, k, second_nearest_first(d))


def dual_level_select(s_vl: torch.Tensor, s_act: torch.Tensor, ids: torch.Tensor,
                      features: torch.Tensor, k: int) -> torch.Tensor:
    """Algorithm 2 over the candidate `ids` (their scores and feature rows aligned): ids kept."""
    if k >= ids.numel():
        return ids
    dual = torch.unique(torch.cat([top_k_ids(s_vl, ids, k), top_k_ids(s_act, ids, k)]))
    pos = torch.searchsorted(ids, dual)               # ids are sorted ascending
    return torch.sort(dual[redundancy_filter(features[pos], k)]).values


class VLAPruner(Pruner):
    """VLA-Pruner's dual-level selection at layer K (module docstring)."""

    name = "vla-pruner"

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.retention = float(cfg_get(cfg, "retention", 0.5))
        keep_count(1, self.retention)                  # validates (0, 1]
        self.prune_layer = int(cfg_get(cfg, "prune_layer", 3))
        self.window = int(cfg_get(cfg, "window", 3))
        self.gamma = float(cfg_get(cfg, "gamma", 0.8))
        self.attention_layers = frozenset({self.prune_layer - 1})
        self.budget = 0
        self.reset()

    def bind(self, info: ModelInfo) -> None:
        super().bind(info)
        if not 1 <= self.prune_layer < info.num_layers:
            raise ConfigError(f"vla-pruner prunes after layer K={self.prune_layer}, which "
                              f"{info.name} ({info.num_layers} layers) does not have")
        self.action_layers = frozenset(range(info.num_layers // 2, info.num_layers))
        self.attention_layers = frozenset({self.prune_layer - 1}) | self.action_layers
        self.budget = keep_count(info.num_visual, self.retention)

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
        if view.layer in self.action_layers:
            self._observe_action(view)
        if view.phase == "prefill" and view.layer == self.prune_layer - 1 \
                and len(self._history) == self.window:
            return self._select(view)
        return None

    def end_of_step(self, actions: np.ndarray, stats: Any) -> None:
        m = self.info.num_visual
        s = self._act_sum / self._act_n if self._act_n else torch.zeros(m)
        self._history.append(s)

    # ------------------------------------------------------------ pieces
    def _action_rows(self, view: LayerView) -> torch.Tensor:
        if not self.info.autoregressive:
            return rows_of_kinds(view, (ACTION,))
        if view.phase == "decode":
            return rows_of_kinds(view, (GENERATED,))
        rows = torch.zeros_like(view.query_kinds, dtype=torch.bool)
        rows[-1] = True                                # the row that emits the first action token
        return rows

    def _observe_action(self, view: LayerView) -> None:
        ids, sc = query_to_visual(view, self._action_rows(view))
        if sc is None:
            return
        v = scatter_scores(ids, sc, self.info.num_visual)
        self._act_sum = v if self._act_sum is None else self._act_sum + v
        self._act_n += 1

    def _select(self, view: LayerView) -> torch.Tensor:
        ids, s_vl = query_to_visual(view, rows_of_kinds(view, (BOS, VISUAL, PROPRIO, TEXT)))
        if s_vl is None or not has_values(self._features):
            return torch.empty(self.budget, dtype=torch.long, device="meta")
        ids, order = torch.sort(ids.long().cpu())
        s_vl = s_vl.cpu()[order]
        s_act = decaying_window(list(self._history), self.gamma)[ids]
        feats = self._features.detach().float().cpu()[ids]
        return dual_level_select(s_vl, s_act, ids, feats, self.budget)
