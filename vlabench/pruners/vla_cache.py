"""VLA-Cache (Xu et al., NeurIPS 2025), Sec. 3, as its official code runs it (siyuhsu/vla-cache
@ a490988: `src/openvla/...` for OpenVLA, `src/openvla-oft/...` for OpenVLA-OFT;
`experiments/robot/vla_cache_utils.py`, `experiments/robot/openvla_utils.py` `get_vla_action`,
and the transformers forks siyuhsu/transformers@vla-cache-openvla[-oft], whose
`LlamaModel.forward` survives in MINT-SJTU/VLA-Pruner @ 3d156ee src/openvla-oft/transformers/
src/transformers/models/llama/modeling_llama.py: `pruning_loc = [2, 6, 9, 11]`, the
`proportion_attn_var` schedule, and `cache_position` appended to the returned attentions).

At each model call after the first of an episode, the keys/values of visual patches that stayed
static since the previous call are reused instead of recomputed:
- static patches (`find_static_patches`): per camera, the 224x224 images the towers saw are
  cut into 14x14 patches (a 16x16 grid); the cosine similarity of each patch's raw pixels between
  the previous call's frame and the current one is thresholded (>= 0.996) and the
  `static_top_k` most similar patches are candidates: 130 on OpenVLA (`openvla_utils.py` L395
  `top_k=130`), 150 per camera on OFT (L771-772);
- task relevance (`task_relevant_selection`, `token_attention_merge(layer_id=15)`): the
  previous call's attention at layer 15, averaged over heads and over the text rows, ranks each
  camera's patches; its top `attention_top_k` are always recomputed: 120 on OpenVLA (the
  default of `task_relevant_selection`, L151), 100 on OFT;
- reused = static candidates minus task-relevant ones, ordered by sequence position (primary
  camera first), as `task_relevant_selection` sorts them;
- layer-adaptive reuse (`get_layer_mask_schedule`, the fork's `LlamaModel.forward`): from the
  previous call's attention at every layer (`attentions[:-1]`, the last entry being the query
  positions), the mean token entropy (rows renormalised, heads averaged) is min-max normalised
  over layers, reuse = 1 - entropy, and upward steps are damped by `growth_factor` = 0.55. At
  each layer of `reuse_layers` = [2, 6, 9, 11] the first max(1, int(reuse[l] * n)) reusable
  patches switch to the cached KV from that layer on (the set only grows); earlier layers
  recompute them. FLOPs and latency count only the rows recomputed at each layer.

Readings (`pruner.reading`, listed in `readings`):
- text rows: the code averages the rows whose position lies in a fixed span right after the
  image tokens, 35 on OpenVLA ([257, 292): the prompt, cut after 35 tokens) and 34 on OFT
  ([513, 547): the proprio token, the prompt and, when the prompt is shorter than 33 tokens,
  the first action placeholders); the paper's text-to-vision attention averages the prompt
  tokens (kind TEXT). Default `code`.
- previous frame on OFT: the OFT evaluation appends the current frame to `replay_images` before
  it reads `replay_images[-1]` as the previous one (run_libero_eval.py L340-351), so every patch
  is compared with itself; a bug, not reproduced: both readings compare with the previous
  call's frame, as the OpenVLA evaluation does (L211-214, one call per step).
Choices: layers 15 and [2, 6, 9, 11] are scaled to the model's depth (on the tiny 4-layer models:
2 and [0, 1]); per-model constants are chosen by `ModelInfo.autoregressive` (OpenVLA) and may be
overridden with a plain number. Every layer's attention is probed, as the official code runs
with `output_attentions=True`. On the meta device (FLOPs only) there are no frames to compare,
so nothing is reused and FLOPs equal the unpruned model's: VLA-Cache's saving is data-dependent.

pi0 (`ModelInfo.flow_steps` > 0; VLA-Pruner App. B.4, Table 4's VLA-Cache rows): VLA-Cache's
paper and code cover OpenVLA and OpenVLA-OFT only (siyuhsu/vla-cache @ a490988 has no pi0
path, nor a pi0 constant), and VLA-Pruner did not release its pi0 baseline code, so pi0 runs
VLA-Cache as its paper describes under both readings: the task-relevance rows are the prompt
tokens (kind TEXT; pi0's prefix is [512 image tokens, BOS, prompt], so the code's fixed span
after the image has no counterpart). The per-camera constants are OFT's (150 static candidates,
100 always-recomputed relevant patches per camera): OFT is the official setting nearest pi0
(two 224 px cameras of 256 patches each, a non-autoregressive action chunk); a `pi0:` entry in
a per-model mapping overrides them. Layers 15 and [2, 6, 9, 11] scale to Gemma 2B's 18 layers
as 8 and [1, 3, 5, 6]. The previous frame is the previous call's (5 steps back with
`model.execute` = 5, as OFT's chunk of 8 is 8 steps back). The reused prefix KV is also what
the action expert attends to at each layer (`vlabench/models/pi0/expert.py`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vlabench.pruners.base import TEXT, LayerView, ModelInfo, Pruner, VisualTokens
from vlabench.config import cfg_get
from vlabench.pruners.common import is_meta, scale_layer
from vlabench.pruners.readings import Reading
from vlabench.pruners.selection import patch_cosine_similarity, top_k_ids

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


def patch_cosine(prev: np.ndarray, cur: np.ndarray, patch: int) -> torch.Tensor:
    """Cosine similarity of co-located patch x patch pixel blocks of two HxWx3 uint8 images,
    row-major over the patch grid (official `calculate_patch_similarity` on raw pixels)."""
    return patch_cosine_similarity(torch.from_numpy(np.array(prev)), torch.from_numpy(np.array(cur)), patch)


def static_patches(sim: torch.Tensor, threshold: float, top_k: int) -> torch.Tensor:
    """Patch indices with similarity >= threshold, the top_k most similar, ascending."""
    idx = torch.nonzero(sim >= threshold).flatten()
    return top_k_ids(sim[idx], idx, top_k)


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
