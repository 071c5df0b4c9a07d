"""EfficientVLA (Yang et al., NeurIPS 2025, arXiv 2506.10100), Sec. 3.2-3.3: its language-
module layer pruning and its task-relevance + diversity visual token pruning (the diffusion-
head caching of Sec. 3.4 has no counterpart in OpenVLA / OpenVLA-OFT).

Defaults follow SpecPrune-VLA's re-implementation on OpenVLA-OFT (SpecPrune-VLA App. 10.2:
"we retain 28 transformer layers and 56 visual tokens throughout inference"); EfficientVLA's
code is not public, so the rest follows the paper's description:
- Layer pruning (Sec. 3.2): a layer's importance is 1 - mean cosine similarity between its
  input and output hidden states; the least important layers are removed (32 - 28 = 4 here,
  scaled to the model's depth). The paper calibrates offline; here the first call of each
  episode runs unskipped and probes every layer to calibrate, and the episode's later calls
  skip the chosen layers (`mode()` = "calibrate" on that call). Layer 0 (its input is not
  exposed by the hooks) and the attention layer are never skipped. `skip_layers` pins a list.
- Token pruning (Sec. 3.3): task relevance of each visual token = attention from the prompt
  (text) queries at one layer, averaged over heads and queries; the `key_tokens` most relevant
  are kept, then of the remaining budget a fraction `alpha` by relevance and the rest by
  diversity: the candidates least similar (max cosine similarity of hidden states) to the
  tokens already kept. Pruning applies from the layer after `attention_layer`.
Choices: `attention_layer` = 2 (prune from layer 3 as FastV's K=3), key_tokens = 4, alpha = 0.5
(the paper's description leaves the layer and the split to the implementation). On meta
builds the skipped layers stand in as the deepest ones before the last (same FLOPs).
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.pruners.base import TEXT, LayerView, ModelInfo, Pruner, VisualTokens
from vlabench.config import cfg_get
from vlabench.pruners.common import REF_LAYERS, check_layer, is_meta, meta_keep
from vlabench.registry import ConfigError


def task_relevant_diverse(score: torch.Tensor, feats: torch.Tensor, ids: torch.Tensor,
                          budget: int, key: int, alpha: float) -> torch.Tensor:
    """EfficientVLA's selection: `key` top-score ids, then round(alpha * rest) more by score,
    then the rest by lowest max cosine similarity to the ids kept so far. Sorted ids."""
    n = ids.numel()
    budget = min(budget, n)
    key = min(key, budget)
    n_task = int(alpha * (budget - key) + 0.5)
    order = torch.argsort(score.float(), descending=True, stable=True)
    first = order[: key + n_task]
    rest = order[key + n_task:]
    n_div = budget - first.numel()
    if n_div > 0 and rest.numel():
        x = torch.nn.functional.normalize(feats.float(), dim=-1)
        sim = (x[rest] @ x[first].T).amax(1) if first.numel() else torch.zeros(rest.numel())
        first = torch.cat([first, rest[torch.topk(-sim, n_div).indices]])
    return torch.sort(ids[first]).values


def layer_importance(inputs: torch.Tensor, outputs: torch.Tensor) -> float:
    """1 - mean cosine similarity of a layer's input and output rows (Sec. 3.2)."""
    return float(1.0 - torch.nn.functional.cosine_similarity(inputs.float(), outputs.float(), dim=-1).mean())


class EfficientVLA(Pruner):
    name = "efficientvla"

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.tokens_kept = int(cfg_get(cfg, "tokens_kept", 56))
        self.layers_kept = int(cfg_get(cfg, "layers_kept", 28))
        self.ref_layers = int(cfg_get(cfg, "ref_layers", REF_LAYERS))
        self.attn_layer = int(cfg_get(cfg, "attention_layer", 2))
        self.key_tokens = int(cfg_get(cfg, "key_tokens", 4))
        self.alpha = float(cfg_get(cfg, "alpha", 0.5))
        pinned = cfg_get(cfg, "skip_layers", None)
        self.pinned = None if pinned is None else frozenset(int(x) for x in pinned)
        self.n_skip = 0
        self.skip: frozenset[int] | None = None
        self.calibrating = False
        self._prev: tuple[torch.Tensor, torch.Tensor] | None = None   # (positions, hidden)
        self._importance: dict[int, float] = {}

    def bind(self, info: ModelInfo) -> None:
        super().bind(info)
        check_layer("pruner.attention_layer", self.attn_layer, info.num_layers)
        if not 0 < self.layers_kept <= self.ref_layers:
            raise ConfigError(f"pruner.layers_kept must lie in 1..{self.ref_layers}, got {self.layers_kept}")
        removed = self.ref_layers - self.layers_kept
        self.n_skip = int(removed * info.num_layers / self.ref_layers + 0.5)
        if self.pinned is not None and not all(0 < x < info.num_layers for x in self.pinned):
            raise ConfigError(f"pruner.skip_layers={sorted(self.pinned)} out of 1..{info.num_layers - 1}")
        self.reset()

    def reset(self) -> None:
        self.skip = self.pinned
        self.calibrating = False
        self._prev, self._importance = None, {}
        self.attention_layers = frozenset({self.attn_layer})

    def before_llm(self, tokens: VisualTokens) -> torch.Tensor | None:
        if self.skip is None:
            if is_meta(tokens.embeddings):                          # no values: stand-in layers
                last = self.info.num_layers - 1
                self.skip = frozenset(range(last - self.n_skip, last))
            else:                                                   # calibrate on this call
                self.calibrating = True
                self.attention_layers = frozenset(range(self.info.num_layers))
        return None

    def skip_layer(self, layer: int) -> bool:
        return not self.calibrating and self.skip is not None and layer in self.skip

    def mode(self) -> str | None:
        return "calibrate" if self.calibrating else None

    def end_of_step(self, actions, stats) -> None:
        if self.calibrating:
            cands = {l: v for l, v in self._importance.items() if l != self.attn_layer}
            self.skip = frozenset(sorted(cands, key=lambda l: (cands[l], l))[: self.n_skip])
            self.calibrating = False
            self.attention_layers = frozenset({self.attn_layer})
            self._prev = None

    def after_layer(self, view: LayerView) -> torch.Tensor | None:
        if view.phase != "prefill":
            return None
        if self.calibrating and not is_meta(view.hidden):
            pos = view.query_positions.to(view.hidden.device)
            if self._prev is not None and view.layer > 0:
                ppos, ph = self._prev
                common = torch.isin(pos, ppos)
                prev_rows = torch.isin(ppos, pos)
                self._importance[view.layer] = layer_importance(ph[prev_rows], view.hidden[common])
            self._prev = (pos, view.hidden.clone())
        if view.layer != self.attn_layer:
            return None
        ids = view.visual_ids()
        k = min(ids.numel(), self.tokens_kept)
        if k >= ids.numel():
            return None
        if view.attn is None or is_meta(view.attn):
            return meta_keep(k)
        dev = view.attn.device
        rows = (view.query_kinds == TEXT).to(dev)
        cols = (view.key_visual_ids >= 0).to(dev)
        score = view.attn.mean(0)[rows][:, cols].mean(0)
        key_ids = view.key_visual_ids.to(dev)[cols]
        q_ids = view.query_visual_ids.to(dev)
        q_rows = torch.nonzero(q_ids >= 0).flatten()
        feats = view.hidden[q_rows[torch.argsort(q_ids[q_rows])]]    # rows by ascending id
        order = torch.argsort(key_ids)
        return task_relevant_diverse(score[order], feats, key_ids[order], k, self.key_tokens, self.alpha)
