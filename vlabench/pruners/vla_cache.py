"""VLA-Cache: reuse the keys/values of static, task-irrelevant visual patches across calls.

From the second call of an episode, visual patches whose raw pixels barely changed since the
previous call, minus those the previous call's text attention ranks most relevant, take their
KV from the previous call at a per-layer, entropy-based share, so the decoder recomputes fewer
rows. Paper: "VLA-Cache: Towards Efficient Vision-Language-Action Model via Adaptive Token
Caching in Robotic Manipulation" (arXiv:2502.02175). Public code: siyuhsu/vla-cache@a490988.

Details, readings and reference citations: docs/methods/vla-cache.md
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vlabench.core.config import cfg_get
from vlabench.core.readings import Reading
from vlabench.pruners.base import TEXT, LayerView, ModelInfo, Pruner, VisualTokens
from vlabench.pruners.common import is_meta, scale_layer
from vlabench.pruners.selection import patch_cosine, top_k_ids

_REPO = "siyuhsu/vla-cache @ a490988"
READINGS = (
    Reading("text rows of the task-relevance attention",
            "Sec. 3.2: text-to-vision attention of the prompt tokens",
            f"{_REPO} vla_cache_utils.py `token_attention_merge` L101-109: rows at positions "
            "[257, 292) on OpenVLA (35 after the image), [513, 547) on OFT (proprio, prompt, and "
            "on short prompts the first action placeholders)",
            "code", "the official code produced VLA-Cache's tables and the baseline rows of "
            "SpecPrune-VLA and VLA-Pruner"),
    Reading("previous frame on OpenVLA-OFT",
            "Sec. 3.1: patches of consecutive frames are compared",
            f"{_REPO} src/openvla-oft/experiments/robot/libero/run_libero_eval.py L340-351: the "
            "current frame is appended before replay_images[-1] is read as the previous one, so "
            "each patch is compared with itself; a bug; not reproduced",
            "paper", "comparing a frame with itself is a bug the authors would not defend; both "
            "readings compare with the previous call's frame, as the OpenVLA evaluation does"),
)


def per_model(value: Any, info: ModelInfo) -> int:
    """A per-model constant: a number, or a mapping {openvla: n, openvla-oft: n[, pi0: n]} read
    by the model family (`ModelInfo.autoregressive` = OpenVLA; `flow_steps` > 0 = pi0, which
    takes OFT's entry unless the mapping has a `pi0` one)."""
    if hasattr(value, "keys"):
        if info.flow_steps > 0 and "pi0" in value:
            return int(value["pi0"])
        return int(value["openvla" if info.autoregressive else "openvla-oft"])
    return int(value)


def span_rows(positions: torch.Tensor, start: int, length: int) -> torch.Tensor:
    """Rows whose position lies in [start, start + length) (the official text span)."""
    return (positions >= start) & (positions < start + length)


def static_patches(sim: np.ndarray | torch.Tensor, threshold: float, top_k: int) -> torch.Tensor:
    """Patch indices with similarity >= threshold, the top_k most similar (ties: lowest index,
    as the official stable sort), ascending. The threshold is compared in float64, as numpy < 2
    (the official environment) compares a float32 scalar with a Python float."""
    s = np.asarray(sim, dtype=np.float32)
    idx = np.flatnonzero(s.astype(np.float64) >= float(threshold))
    return top_k_ids(torch.from_numpy(s[idx]), torch.from_numpy(idx), top_k)


def layer_reuse_schedule(entropies: torch.Tensor, growth_factor: float = 0.55) -> torch.Tensor:
    """Per-layer reuse proportions from per-layer mean attention entropies (official
    `get_layer_mask_schedule`): 1 - min-max normalised entropy, upward steps damped."""
    e = entropies.float()
    reuse = 1.0 - (e - e.min()) / (e.max() - e.min() + 1e-10)
    out = reuse.clone()
    for i in range(1, out.numel()):      # one step per layer (32), not per token
        delta = out[i] - out[i - 1]
        if delta > 0:
            out[i] = out[i - 1] + delta * growth_factor
    return out


def mean_token_entropy(attn: torch.Tensor) -> torch.Tensor:
    """Entropy of each query row of the head-averaged attention (rows renormalised), averaged."""
    a = attn.float().mean(0)
    a = torch.nan_to_num(a / (a.sum(-1, keepdim=True) + 1e-10))
    return (-(a * torch.log(a + 1e-10)).sum(-1)).mean()


class VLACache(Pruner):
    name = "vla-cache"
    reuses_kv = True
    readings = READINGS

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.threshold = float(cfg_get(cfg, "sim_threshold", 0.996))
        self._static_top_k = cfg_get(cfg, "static_top_k", {"openvla": 130, "openvla-oft": 150})
        self._attention_top_k = cfg_get(cfg, "attention_top_k", {"openvla": 120, "openvla-oft": 100})
        self._text_span = cfg_get(cfg, "text_span", {"openvla": 35, "openvla-oft": 34})
        self.static_top_k = self.attention_top_k = self.text_span = 0
        self.ref_layer = int(cfg_get(cfg, "attention_layer", 15))
        self.ref_reuse_layers = [int(x) for x in cfg_get(cfg, "reuse_layers", [2, 6, 9, 11])]
        self.growth_factor = float(cfg_get(cfg, "growth_factor", 0.55))
        self.patch = int(cfg_get(cfg, "patch_size", 14))
        self.layer = 0
        self.reuse_layers: list[int] = []
        self.prev_images: dict[str, np.ndarray] | None = None
        self.prev_scores: torch.Tensor | None = None     # (M,) text->vision attention, by id
        self.entropies: dict[int, torch.Tensor] = {}      # layer -> mean token entropy (prev call)

    def bind(self, info: ModelInfo) -> None:
        super().bind(info)
        self.static_top_k = per_model(self._static_top_k, info)
        self.attention_top_k = per_model(self._attention_top_k, info)
        self.text_span = per_model(self._text_span, info)
        self.layer = scale_layer(self.ref_layer, info.num_layers)
        self.reuse_layers = sorted({scale_layer(x, info.num_layers) for x in self.ref_reuse_layers})
        self.attention_layers = frozenset(range(info.num_layers))

    def reset(self) -> None:
        self.prev_images, self.prev_scores, self.entropies = None, None, {}

    def reusable(self, tokens: VisualTokens) -> torch.Tensor | None:
        """Static, not task-relevant visual ids (ascending), or None before a previous call."""
        prev, scores = self.prev_images, self.prev_scores
        self.prev_images, self.prev_scores = tokens.images, None
        if prev is None or scores is None or is_meta(tokens.embeddings):
            return None
        per = self.info.grid * self.info.grid
        out = []
        for i, cam in enumerate(self.info.cameras):               # one iteration per camera
            sim = patch_cosine(prev[cam], tokens.images[cam], self.patch)
            static = static_patches(sim, self.threshold, self.static_top_k)
            cam_scores = scores[i * per:(i + 1) * per]
            relevant = top_k_ids(cam_scores, torch.arange(per), self.attention_top_k)
            out.append(static[~torch.isin(static, relevant)] + i * per)
        return torch.sort(torch.cat(out)).values

    def reuse_kv(self, tokens: VisualTokens) -> dict[int, torch.Tensor] | None:
        ids = self.reusable(tokens)
        entropies, self.entropies = self.entropies, {}
        if ids is None or ids.numel() == 0 or len(entropies) != self.info.num_layers:
            return None
        per_layer = torch.stack([entropies[i] for i in range(self.info.num_layers)]).cpu()  # one transfer
        reuse = layer_reuse_schedule(per_layer, self.growth_factor)
        dev = tokens.embeddings.device
        return {l: ids[:max(1, int(float(reuse[l]) * ids.numel()))].to(dev) for l in self.reuse_layers}

    def after_layer(self, view: LayerView) -> torch.Tensor | None:
        if view.phase != "prefill" or view.attn is None or is_meta(view.attn):
            return None
        self.entropies[view.layer] = mean_token_entropy(view.attn)   # stays on device: no sync per layer
        if view.layer != self.layer:
            return None
        dev = view.attn.device
        if self.reading == "code" and not self.info.flow_steps:   # the span after BOS + M visual
            rows = span_rows(view.query_positions, 1 + self.info.num_visual, self.text_span).to(dev)
        else:                        # the prompt tokens (paper; pi0 under both readings)
            rows = (view.query_kinds == TEXT).to(dev)
        cols = (view.key_visual_ids >= 0).to(dev)
        score = view.attn.mean(0)[rows][:, cols].mean(0).float().cpu()
        full = torch.zeros(self.info.num_visual)
        full[view.key_visual_ids[view.key_visual_ids >= 0].cpu()] = score
        self.prev_scores = full
        return None
