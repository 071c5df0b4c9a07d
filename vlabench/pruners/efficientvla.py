"""EfficientVLA: calibrated layer skipping plus task-relevant, diverse visual token pruning.

Layers whose output barely differs from their input are skipped, and after one layer the visual
tokens are cut to a budget chosen by text attention and by diversity; vlabench runs it as
SpecPrune-VLA re-implemented it on OpenVLA-OFT for its Table 1 (28 layers, 112 tokens). Paper:
"EfficientVLA: Training-Free Acceleration and Compression for Vision-Language-Action Models"
(arXiv:2506.10100). Public code: none from the authors; the layer skipping follows
alexwhz-sjtu/SpecPrune-VLA@d3b06ed.

Details, readings and reference citations: docs/methods/efficientvla.md
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.core.config import cfg_get
from vlabench.core.errors import ConfigError
from vlabench.core.readings import Reading
from vlabench.pruners.base import ACTION, TEXT, LayerView, ModelInfo, Pruner, VisualTokens
from vlabench.pruners.common import REF_LAYERS, check_layer, is_meta, meta_keep
from vlabench.pruners.selection import keep_count, top_k_indices

_SP = "alexwhz-sjtu/SpecPrune-VLA @ d3b06ed"
READINGS = (
    Reading("visual tokens kept",
            "SpecPrune-VLA App. 10.2: 'we retain 28 transformer layers and 56 visual tokens'",
            f"no EfficientVLA code in {_SP}; Table 1's row is 'EfficientVLA (L=28, T=112)' "
            "(Sec. 7.2)",
            "code", "112 tokens reproduce Table 1's 35% FLOPs (56 give 27.9%)"),
    Reading("which layers are skipped",
            "EfficientVLA Sec. 3.2: the lowest 1 - cos(input, output) over all tokens of a "
            "calibration set, removed for good",
            f"{_SP} modeling_prismatic.py L960-997: cos(input, output) over the action rows at "
            "the calls of steps 2..9 (OFT: the 2nd call); of the layers above 0.9 the SKIP_LAYER "
            "most similar, fixed for the episode",
            "code", "SpecPrune's Table 1 EfficientVLA rows ('four fixed layers') came from its "
            "re-implementation; this is the only layer skipping in its code"),
)


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
        first = torch.cat([first, rest[top_k_indices(sim, n_div, largest=False)]])
    return torch.sort(ids[first]).values


def layer_similarity(inputs: torch.Tensor, outputs: torch.Tensor) -> float:
    """Mean cosine similarity of a layer's input and output rows."""
    return float(torch.nn.functional.cosine_similarity(inputs.float(), outputs.float(), dim=-1).mean())


def layer_importance(inputs: torch.Tensor, outputs: torch.Tensor) -> float:
    """1 - mean cosine similarity of a layer's input and output rows (Sec. 3.2)."""
    return 1.0 - layer_similarity(inputs, outputs)


def choose_skipped(similarity: dict[int, float], n: int, threshold: float | None) -> frozenset[int]:
    """The n layers whose input and output are most similar (ties: the lower layer), among those
    above `threshold` when one is given (SpecPrune's code: > 0.9)."""
    cands = {l: s for l, s in similarity.items() if threshold is None or s > threshold}
    return frozenset(sorted(cands, key=lambda l: (-cands[l], l))[:n])


def by_reading(value: Any, reading: str) -> Any:
    """A per-reading default ({code: x, paper: y}) or a plain value."""
    return value[reading] if hasattr(value, "keys") else value


class EfficientVLA(Pruner):
    name = "efficientvla"
    readings = READINGS

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.tokens_kept = int(by_reading(cfg_get(cfg, "tokens_kept", {"code": 112, "paper": 56}),
                                          self.reading))
        ret = cfg_get(cfg, "retention", None)     # a fraction of M instead (VLA-Pruner Table 3)
        self.retention = None if ret is None else float(ret)
        if self.retention is not None and not 0.0 < self.retention <= 1.0:
            raise ConfigError(f"pruner.retention must lie in (0, 1] or be null, got {self.retention}")
        self.layers_kept = int(cfg_get(cfg, "layers_kept", 28))
        self.ref_layers = int(cfg_get(cfg, "ref_layers", REF_LAYERS))
        self.attn_layer = int(cfg_get(cfg, "attention_layer", 2))
        self.key_tokens = int(cfg_get(cfg, "key_tokens", 4))
        self.alpha = float(cfg_get(cfg, "alpha", 0.5))
        self.calibration_call = int(by_reading(cfg_get(cfg, "calibration_call",
                                                       {"code": 1, "paper": 0}), self.reading))
        thr = by_reading(cfg_get(cfg, "similarity_threshold", {"code": 0.9, "paper": None}),
                         self.reading)
        self.threshold = None if thr is None else float(thr)
        self.action_rows = self.reading == "code"
        pinned = cfg_get(cfg, "skip_layers", None)
        self.pinned = None if pinned is None else frozenset(int(x) for x in pinned)
        self.n_skip = 0
        self.skip: frozenset[int] | None = None
        self.calibrating = False
        self._prev: tuple[torch.Tensor, torch.Tensor] | None = None   # (positions, hidden)
        self._similarity: dict[int, float] = {}

    def bind(self, info: ModelInfo) -> None:
        super().bind(info)
        check_layer("pruner.attention_layer", self.attn_layer, info.num_layers)
        if not 0 < self.layers_kept <= self.ref_layers:
            raise ConfigError(f"pruner.layers_kept must lie in 1..{self.ref_layers}, got {self.layers_kept}")
        removed = self.ref_layers - self.layers_kept
        self.n_skip = int(removed * info.num_layers / self.ref_layers + 0.5)
        if self.retention is not None:
            self.tokens_kept = keep_count(info.num_visual, self.retention)
        if self.pinned is not None and not all(0 < x < info.num_layers for x in self.pinned):
            raise ConfigError(f"pruner.skip_layers={sorted(self.pinned)} out of 1..{info.num_layers - 1}")
        self.reset()

    def reset(self) -> None:
        self.skip = self.pinned if self.pinned is not None or self.n_skip else frozenset()
        self.calibrating = False
        self._prev, self._similarity = None, {}
        self.attention_layers = frozenset({self.attn_layer})

    def before_llm(self, tokens: VisualTokens) -> torch.Tensor | None:
        if self.skip is None:
            if is_meta(tokens.embeddings):                          # no values: stand-in layers
                last = self.info.num_layers - 1
                self.skip = frozenset(range(last - self.n_skip, last))
            elif tokens.call == self.calibration_call:              # calibrate on this call
                self.calibrating = True
                self.attention_layers = frozenset(range(self.info.num_layers))
        return None

    def skip_layer(self, layer: int) -> bool:
        return not self.calibrating and self.skip is not None and layer in self.skip

    def mode(self) -> str | None:
        return "calibrate" if self.calibrating else None

    def end_of_step(self, actions, stats) -> None:
        if self.calibrating:
            cands = {l: s for l, s in self._similarity.items() if l != self.attn_layer}
            self.skip = choose_skipped(cands, self.n_skip, self.threshold)
            self.calibrating = False
            self.attention_layers = frozenset({self.attn_layer})
            self._prev = None

    def _calibration_rows(self, view: LayerView) -> torch.Tensor:
        """Rows whose input/output similarity counts: every alive row (paper), or the action
        placeholders (code; on OpenVLA the last row)."""
        if not self.action_rows:
            return torch.ones_like(view.query_kinds, dtype=torch.bool)
        rows = view.query_kinds == ACTION
        if not bool(rows.any()):
            rows = view.query_positions == view.query_positions.max()
        return rows

    def _observe(self, view: LayerView) -> None:
        rows = self._calibration_rows(view)
        pos = view.query_positions[rows].to(view.hidden.device)
        hidden = view.hidden[rows.to(view.hidden.device)]
        if self._prev is not None and view.layer > 0:
            ppos, ph = self._prev
            common = torch.isin(pos, ppos)
            prev_rows = torch.isin(ppos, pos)
            self._similarity[view.layer] = layer_similarity(ph[prev_rows], hidden[common])
        self._prev = (pos, hidden.clone())

    def after_layer(self, view: LayerView) -> torch.Tensor | None:
        if view.phase != "prefill":
            return None
        if self.calibrating and not is_meta(view.hidden):
            self._observe(view)
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
