"""VLA-Cache (Xu et al., NeurIPS 2025), Sec. 3, as its official code runs it (siyuhsu/vla-cache,
`experiments/robot/vla_cache_utils.py`, OFT variant).

At each model call after the first of an episode, the keys/values of visual patches that stayed
static since the previous call are reused instead of recomputed:
- static patches (`find_static_patches`): per camera, the 224x224 images the towers saw are
  cut into 14x14 patches; the cosine similarity of each patch's raw pixels between the previous
  and the current frame is thresholded (>= 0.996) and the `static_top_k` = 150 most similar
  patches are candidates;
- task relevance (`task_relevant_selection`, `token_attention_merge(layer_id=15)`): the
  previous call's attention at layer 15, averaged over heads and over text queries, ranks each
  camera's patches; its top `attention_top_k` = 100 are always recomputed;
- reused = static candidates minus task-relevant ones. The decoder takes their KV (every layer)
  from the previous call, so FLOPs and latency count only the recomputed rows.
Not expressible with the hooks: the layer-adaptive reuse proportion from attention entropy
(`get_layer_mask_schedule`); reuse here applies at every layer. Choices: text queries are the
prompt tokens (kind TEXT; the code's span 513..546 also covers OFT's proprio token); layer 15
is scaled to the model's depth (layer 2 of 4 on the tiny models).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vlabench.pruners.base import TEXT, LayerView, ModelInfo, Pruner, VisualTokens
from vlabench.pruners.common import cfg_get, is_meta, scale_layer
from vlabench.pruners.selection import patch_cosine_similarity, top_k_ids


def patch_cosine(prev: np.ndarray, cur: np.ndarray, patch: int) -> torch.Tensor:
    """Cosine similarity of co-located patch x patch pixel blocks of two HxWx3 uint8 images,
    row-major over the patch grid (official `calculate_patch_similarity` on raw pixels)."""
    return patch_cosine_similarity(torch.from_numpy(np.array(prev)), torch.from_numpy(np.array(cur)), patch)


def static_patches(sim: torch.Tensor, threshold: float, top_k: int) -> torch.Tensor:
    """Patch indices with similarity >= threshold, the top_k most similar, ascending."""
    idx = torch.nonzero(sim >= threshold).flatten()
    return top_k_ids(sim[idx], idx, top_k)


class VLACache(Pruner):
    name = "vla-cache"
    reuses_kv = True

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.threshold = float(cfg_get(cfg, "sim_threshold", 0.996))
        self.static_top_k = int(cfg_get(cfg, "static_top_k", 150))
        self.attention_top_k = int(cfg_get(cfg, "attention_top_k", 100))
        self.ref_layer = int(cfg_get(cfg, "attention_layer", 15))
        self.patch = int(cfg_get(cfg, "patch_size", 14))
        self.layer = 0
        self.prev_images: dict[str, np.ndarray] | None = None
        self.prev_scores: torch.Tensor | None = None     # (M,) text->vision attention, by id

    def bind(self, info: ModelInfo) -> None:
        super().bind(info)
        self.layer = scale_layer(self.ref_layer, info.num_layers)
        self.attention_layers = frozenset({self.layer})

    def reset(self) -> None:
        self.prev_images, self.prev_scores = None, None

    def reuse_kv(self, tokens: VisualTokens) -> torch.Tensor | None:
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
        return torch.cat(out).to(tokens.embeddings.device)

    def after_layer(self, view: LayerView) -> torch.Tensor | None:
        if view.phase != "prefill" or view.layer != self.layer or view.attn is None or is_meta(view.attn):
            return None
        dev = view.attn.device
        rows = (view.query_kinds == TEXT).to(dev)
        cols = (view.key_visual_ids >= 0).to(dev)
        score = view.attn.mean(0)[rows][:, cols].mean(0).float().cpu()
        full = torch.zeros(self.info.num_visual)
        full[view.key_visual_ids[view.key_visual_ids >= 0].cpu()] = score
        self.prev_scores = full
        return None
