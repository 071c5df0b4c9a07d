"""SparseVLM: text-guided visual token pruning, scored by the prompt tokens that rate the image.

Text tokens most relevant to the image act as raters; their attention ranks the visual tokens
and the rest are dropped. `reading=code` (default) runs it as VLA-Pruner's baseline did (one
step at layer K, no recycling); `reading=paper` runs SparseVLM's progressive schedule with
deleted tokens recycled by clustering. Paper: "SparseVLM: Visual Token Sparsification for
Efficient Vision-Language Model Inference" (arXiv:2410.04417). Public code: Gumpest/SparseVLMs
@ 26a5f48; the baseline as run: MINT-SJTU/VLA-Pruner@fa5bfed. Both rate with the LLM input
embeddings (`input_view`).

Details, readings and reference citations: docs/methods/sparsevlm.md
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.core.config import cfg_get
from vlabench.core.readings import Reading
from vlabench.pruners.base import TEXT, LayerView, ModelInfo, Pruner
from vlabench.pruners.common import check_layer, is_meta, meta_keep, retention_of, scale_layer
from vlabench.pruners.selection import keep_count, top_k_ids, top_k_indices

OFFICIAL = {192: (300, 200, 110), 128: (303, 110, 36), 64: (66, 30, 17)}   # of 576 tokens

_VP = "MINT-SJTU/VLA-Pruner @ fa5bfed src/openvla/transformers/src/transformers/models/llama/modeling_llama.py"
_EVIDENCE = ("VLA-Pruner Table 1's SparseVLM rows were run with this code (scripts "
             "src/openvla/vla_pruner_srcipts/run_sparsevlm/*.sh)")
READINGS = (
    Reading("pruning schedule and recycling",
            "SparseVLM Sec. 3.3-3.4 (official pruning_loc [2, 6, 15]): progressive pruning at "
            "three layers, mean visual tokens over layers = budget, deleted tokens recycled by "
            "DPC-kNN merging",
            f"{_VP} L1074-1142: one step at layer K = 3 from layer 2's attention, round(M r) "
            "tokens kept for layers 3..31, no recycling",
            "code", _EVIDENCE),
    Reading("rater threshold",
            "SparseVLM Sec. 3.2 (official code): relevance > mean",
            f"{_VP} L1055-1057: relevance >= mean",
            "code", _EVIDENCE),
    Reading("rater candidates",
            "SparseVLM Sec. 3.2: every text token",
            f"{_VP} L1048-1051: text span [image_end + 1, seq_len - 1): the first token after "
            "the image and the sequence's last token are left out",
            "code", _EVIDENCE),
)


def stage_counts(m: int, num_layers: int, layers: list[int], shape: list[float],
                 retention: float) -> list[int]:
    """Visual tokens alive after each pruning layer so that the mean over all layers is
    retention * m: counts = clamp(s * shape * m, 1, m) with s found by bisection."""
    nxt = layers[1:] + [num_layers - 1]     # stage i's count holds for layers l_i+1 .. l_{i+1}
    spans = [n - l for l, n in zip(layers, nxt)]
    full = layers[0] + 1                    # layers 0..first pruning layer see all tokens
    target = retention * m * num_layers

    def counts(s: float) -> list[int]:
        out, prev = [], m
        for f in shape:
            prev = max(1, min(prev, int(s * f * m + 0.5)))
            out.append(prev)
        return out

    def total(s: float) -> float:
        return full * m + sum(c * n for c, n in zip(counts(s), spans))

    lo, hi = 0.0, 1.0
    while total(hi) < target and hi < 1e6:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if total(mid) < target else (lo, mid)
    return counts(hi)


def density_peak_clusters(x: torch.Tensor, n_clusters: int) -> tuple[torch.Tensor, torch.Tensor]:
    """DPC-kNN as SparseVLM's `cluster_and_merge`: returns (centre row indices, cluster index of
    every row). Density from the `n_clusters` nearest distances; centres maximise
    density * distance to the nearest denser row. The code breaks density ties with 1e-6 random
    noise; here a deterministic 1e-6 ramp favours the lower row."""
    n, c = x.shape
    d = torch.cdist(x.float(), x.float()) / c ** 0.5
    k = max(1, min(n_clusters, n))
    density = (-(torch.topk(d, k, dim=-1, largest=False).values ** 2).mean(-1)).exp()
    density = density + 1e-6 * torch.arange(n, 0, -1, device=x.device) / n   # ties: lower row
    denser = density[None, :] > density[:, None]
    dist = torch.where(denser, d, d.max()).min(-1).values
    centres = top_k_indices(dist * density, min(n_clusters, n))
    assign = d[centres].argmin(0)
    assign[centres] = torch.arange(centres.numel(), device=x.device)
    return centres, assign


def merge_clusters(x: torch.Tensor, assign: torch.Tensor, n_clusters: int) -> torch.Tensor:
    """Mean of the rows of each cluster (n_clusters, C)."""
    sums = torch.zeros(n_clusters, x.shape[1], dtype=x.dtype, device=x.device).index_add_(0, assign, x)
    cnt = torch.bincount(assign, minlength=n_clusters).clamp_min(1).to(x.dtype)
    return sums / cnt[:, None]


def rater_mask(vis_h: torch.Tensor, text_h: torch.Tensor, inclusive: bool = False) -> torch.Tensor:
    """Text tokens whose relevance to the image exceeds the mean relevance (SparseVLM's code),
    or reaches it (`inclusive`, VLA-Pruner's code)."""
    rel = (vis_h.float() @ text_h.float().T).softmax(1).mean(0)
    mask = rel >= rel.mean() if inclusive else rel > rel.mean()
    return mask if bool(mask.any()) else torch.ones_like(mask)    # all equal: every text token


def rater_candidates(kinds: torch.Tensor, positions: torch.Tensor, trim: bool,
                     trim_first: bool = True) -> torch.Tensor:
    """Rows that may rate: prompt tokens; with `trim` (VLA-Pruner's span) not the sequence's
    last token, nor, with `trim_first`, the first prompt token (on OpenVLA the token right after
    the image; on pi0 that token is BOS, never a candidate, so pi0 passes `trim_first=False`)."""
    text = kinds == TEXT
    if not trim or not bool(text.any()):
        return text
    out = text & (positions < positions.max())
    return out & (positions > positions[text].min()) if trim_first else out


class SparseVLM(Pruner):
    name = "sparsevlm"
    readings = READINGS
    input_view = True                               # raters come from the LLM input embeddings

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.retention = retention_of(cfg, 0.5)
        self.k = int(cfg_get(cfg, "k", 3))            # code: pruned from layer K, layer K-1 scores
        self.vla_pruner = self.reading == "code"
        self.ref_layers = [int(x) for x in cfg_get(cfg, "layers", [2, 6, 15])]
        self.recycle = float(cfg_get(cfg, "recycle_ratio", 0.3))
        self.per_cluster = int(cfg_get(cfg, "tokens_per_cluster", 10))
        self.merge = bool(cfg_get(cfg, "merge", True))
        self.layers: list[int] = []
        self.counts: list[int] = []
        self.raters: torch.Tensor | None = None     # original positions of this call's raters

    def bind(self, info: ModelInfo) -> None:
        super().bind(info)
        if self.vla_pruner:
            check_layer("pruner.k - 1", self.k - 1, info.num_layers)
            self.layers = [self.k - 1]
            self.counts = [keep_count(info.num_visual, self.retention)]
            self.attention_layers = frozenset(self.layers)
            return
        layers = sorted({scale_layer(x, info.num_layers) for x in self.ref_layers})
        self.layers = [x for x in layers if x < info.num_layers - 1]
        budget = min(OFFICIAL, key=lambda b: abs(b / 576 - self.retention))
        shape = [c / 576 for c in OFFICIAL[budget]][: len(self.layers)]
        self.counts = stage_counts(info.num_visual, info.num_layers, self.layers, shape, self.retention)
        self.attention_layers = frozenset(self.layers)

    def reset(self) -> None:
        self.raters = None

    def input_raters(self, view: LayerView) -> torch.Tensor:
        """Original positions of the text raters, from the LLM input embeddings (`view` of
        layer -1) of the visual and candidate text tokens, as both codes rate."""
        dev = view.hidden.device
        q_vis = (view.query_visual_ids >= 0).to(dev)
        q_text = rater_candidates(view.query_kinds, view.query_positions, self.vla_pruner,
                                  trim_first=not self.info.flow_steps).to(dev)
        mask = rater_mask(view.hidden[q_vis], view.hidden[q_text], inclusive=self.vla_pruner)
        return view.query_positions.to(dev)[q_text][mask]

    def after_layer(self, view: LayerView) -> torch.Tensor | None:
        if view.phase != "prefill":
            return None
        if view.layer < 0:                                           # the LLM input: raters
            self.raters = None if is_meta(view.hidden) else self.input_raters(view)
            return None
        if view.layer not in self.layers:
            return None
        stage = self.layers.index(view.layer)
        ids = view.visual_ids()
        target = self.counts[stage]
        meta = view.attn is None or is_meta(view.attn)
        dev = view.hidden.device
        if target >= ids.numel():
            return None
        if meta:
            return meta_keep(target)
        if self.raters is None:
            raise RuntimeError("sparsevlm: no text raters; the decoder must show the LLM input "
                               "(Pruner.input_view)")
        rows = torch.isin(view.query_positions.to(dev), self.raters)
        cols = (view.key_visual_ids >= 0).to(dev)
        score = view.attn.mean(0)[rows][:, cols].mean(0)          # (n_visual_keys,)
        key_ids = view.key_visual_ids.to(dev)[cols]
        n_del0 = ids.numel() - target
        merge = self.merge and not self.vla_pruner
        n_clusters = int((int(n_del0 * self.recycle) + 1) / self.per_cluster) + 1 if merge else 0
        n_clusters = min(n_clusters, target - 1)
        kept = top_k_ids(score, key_ids, target - n_clusters)
        if n_clusters <= 0:
            return kept
        deleted = ~torch.isin(key_ids, kept)
        del_ids, del_score = key_ids[deleted], score[deleted]
        n_cand = min(del_ids.numel(), int(del_ids.numel() * self.recycle) + 1)
        cand = top_k_ids(del_score, del_ids, n_cand)
        q_ids = view.query_visual_ids.to(dev)
        row_of = torch.nonzero(torch.isin(q_ids, cand)).flatten()    # query rows, ascending id
        order = torch.argsort(q_ids[row_of])
        row_of = row_of[order]
        x = view.hidden[row_of]
        centres, assign = density_peak_clusters(x, n_clusters)
        merged = merge_clusters(x.float(), assign, centres.numel()).to(view.hidden.dtype)
        view.hidden[row_of[centres]] = merged                        # recycled, merged tokens
        return torch.cat([kept, cand[centres]])
