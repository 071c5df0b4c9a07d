"""SpecPrune-VLA (Wang, Xu et al. 2025): action-aware self-speculative pruning.

Paper: ../shared/papers/specprune-vla.md. Per model call:

1. Action-aware controller (Sec. 6.2, Algorithm 1 lines 1-7): from the last executed action,
   v_t = ||(dx, dy, dz)||, v_r = ||(da, db, dg)||; fine-grained mode iff v_t < v_t^th and
   v_r < v_r^th and dz <= 0, else coarse. K_base = alpha * 40 (fine) or alpha * 24 (coarse)
   (App. 10.2), alpha per suite (App. 10.2: Long 1.0, Goal 0.8, Object 0.6, Spatial 0.6).
2. Static action-level pruning (Sec. 4.2), after decoder layer 2 (layers 1 and 2 see every
   token, as the FLOPs estimate of App. 10.1, "30/32 x 0.48", counts):
   V_global = top-K_G of the previous call's task attention (Eq. 1 at the last layer);
   V_dynamic = Low-K_D of the patches whose cosine similarity (Eq. 2) to the frame T steps
   back is below tau, T = floor(-16/3 * v/6 + 22/3) + 4 (Sec. 4.2);
   V_local = top-K_base(Eq. 1, layer 1) U top-K_base(Eq. 1, layer 2); keep the union.
3. Dynamic layer-level pruning (Sec. 5.1) at layers S = {5, 10, 15, 20} (App. 10.1):
   s_i = w_rank,i * w_conf with w_rank,i = sigmoid(-k rank_i) / sum_j sigmoid(-k rank_j),
   w_conf = mu_attn / (sigma_attn + eps); S_i <- (1 - beta) S_i + beta s_i, beta = 0.2,
   S^(0) = 0 after static pruning; each such layer then drops 10% of the visual tokens alive
   (App. 10.1: "an extra 10% pruning at the target layer", L_r' = 0.9 L_r).

Readings where the paper is ambiguous (public code: github.com/alexwhz-sjtu/SpecPrune-VLA):
- Layer indices are 0-based decoder indices: "layers 1 and 2" are 0 and 1, S = {5,10,15,20}
  as the code's `dynamic_prune_layers` (which also has 25; the appendix lists four).
- K_base, K_G (the appendix: both "controlled by a base threshold") and K_D apply per camera
  image, as the code selects per view; K_base = int(alpha * K) as the code's int(20 * ratio).
- Eq. 1's text tokens are the TEXT-kind queries (the prompt). Sec. 5's "attention score" is
  not defined; the code ranks by attention from every query after the visual block
  (proprio, text, action placeholders, stop), which is used; ranks are 0-based per head
  and the per-head weights averaged over heads; k (sigmoid slope) is not given: 0.1.
- The frame comparison is on raw pixel patches (14 x 14 x 3) of the 224 px images the towers
  saw, as the code's `get_similarity_indices`; tau = 0.986 (the code's threshold; the paper
  gives none); K_D = 26 coarse / 56 fine (the code's 256 - PRIMARY_TOPK{,_PRECISE}).
- v for T is the norm of the translation summed over the actions since the previous call,
  as the code's `history_action` (hence the /6); Sec. 4.2's "+4" is used (Algorithm 1 drops
  the /6; the code uses +3). Every control step's frame is kept (steps executed open-loop
  from OFT's chunk arrive through `observe_frame`); the reference is the frame T steps back,
  else the oldest one kept. The first call has no previous attention nor frame: V_global and
  V_dynamic are empty.
- Thresholds v_t^th = 0.4, v_r^th = 0.2 (the code's VELOCITY_THRES, ROT_THRES; the paper
  gives none); before the first action the mode is coarse (the code starts not precise).
- alpha per suite follows App. 10.2; Sec. 7.1 states a different assignment (Spatial 1.0,
  Object/Long 0.6) and Table 3 calls a larger alpha "more pruning", contradicting
  K_retain = alpha x K; the appendix formula is implemented. Suites the paper does not use
  take `alpha_default` (1.0).
- Meta device (no attention values): the static step keeps the budget's upper bound per
  camera, min(256, 2 K_base + K_G + |V_dynamic|) (K_G from the second call on), and each
  layer in S keeps 90%. Meta actions are zeros, so the controller is then in fine mode.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
import torch

from vlabench.pruners.attn_scores import query_to_visual, rows_of_kinds, scatter_scores, visual_block
from vlabench.pruners.base import ACTION, PROPRIO, STOP, TEXT, LayerView, ModelInfo, Pruner, VisualTokens
from vlabench.config import as_dict, cfg_get
from vlabench.pruners.selection import keep_count, patch_cosine_similarity, top_k_ids
from vlabench.registry import ConfigError

FINE, COARSE = "fine", "coarse"


def frame_interval(v: float) -> int:
    """Sec. 4.2: T = floor(-16/3 * v/6 + 22/3) + 4 frames back (at least 1)."""
    return max(1, math.floor(-16.0 / 3.0 * v / 6.0 + 22.0 / 3.0) + 4)


def controller_mode(action: np.ndarray | None, vt_th: float, vr_th: float) -> str:
    """Sec. 6.2 / Algorithm 1: fine iff v_t < v_t^th and v_r < v_r^th and dz <= 0."""
    if action is None:
        return COARSE
    a = np.asarray(action, dtype=np.float64)
    v_t, v_r, dz = float(np.linalg.norm(a[:3])), float(np.linalg.norm(a[3:6])), float(a[2])
    return FINE if (v_t < vt_th and v_r < vr_th and dz <= 0.0) else COARSE


def rank_weights(head_scores: torch.Tensor, k: float) -> torch.Tensor:
    """Sec. 5.1: per head, w_i = sigmoid(-k rank_i) / sum_j sigmoid(-k rank_j) (rank 0 = most
    attended); averaged over heads. head_scores (heads, n) -> (n,)."""
    h, n = head_scores.shape
    order = torch.argsort(head_scores, dim=-1, descending=True, stable=True)
    rank = torch.empty_like(order)
    rank.scatter_(1, order, torch.arange(n, device=order.device).expand(h, n))
    w = torch.sigmoid(-k * rank.float())
    return (w / w.sum(dim=-1, keepdim=True)).mean(dim=0)


def layer_confidence(attn: torch.Tensor, eps: float) -> float:
    """Sec. 5.1: w_conf = mu_attn / (sigma_attn + eps) over the layer's attention weights."""
    a = attn.float().flatten()
    if a.numel() == 0:
        return 0.0
    return float(a.mean() / (a.std(unbiased=False) + eps))


def ema(previous: torch.Tensor, current: torch.Tensor, beta: float) -> torch.Tensor:
    """Sec. 5.1: S^(l) = (1 - beta) S^(l-1) + beta s^(l)."""
    return (1.0 - beta) * previous + beta * current


def dynamic_ids(current: dict[str, np.ndarray], reference: dict[str, np.ndarray] | None,
                cameras: tuple[str, ...], grid: int, tau: float, k: int) -> torch.Tensor:
    """Sec. 4.2 Eq. 2-3: per camera, the k lowest-similarity patches among those below tau."""
    out = [torch.empty(0, dtype=torch.long)]
    if reference is None:
        return out[0]
    per = grid * grid
    for c, cam in enumerate(cameras):
        cur, ref = torch.as_tensor(np.array(current[cam])), torch.as_tensor(np.array(reference[cam]))
        sim = patch_cosine_similarity(cur, ref, cur.shape[0] // grid)
        cand = torch.nonzero(sim < tau).flatten()
        out.append(top_k_ids(-sim[cand], cand, k) + c * per)
    return torch.cat(out)


class SpecPrune(Pruner):
    """SpecPrune-VLA's two-level pruning with its action-aware controller (module docstring)."""

    name = "specprune"
    observes_frames = True   # the frame T steps back may fall between model calls (Sec. 4.2)

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.suite = str(cfg_get(cfg, "suite", ""))
        self.alpha = float(as_dict(cfg_get(cfg, "alpha", {})).get(self.suite, cfg_get(cfg, "alpha_default", 1.0)))
        self.k_base = {COARSE: int(cfg_get(cfg, "k_coarse", 24)), FINE: int(cfg_get(cfg, "k_fine", 40))}
        kd = as_dict(cfg_get(cfg, "k_dynamic", {}))
        self.k_dynamic = {COARSE: int(kd.get(COARSE, 26)), FINE: int(kd.get(FINE, 56))}
        self.tau = float(cfg_get(cfg, "tau", 0.986))
        self.vt_th = float(cfg_get(cfg, "vt_threshold", 0.4))
        self.vr_th = float(cfg_get(cfg, "vr_threshold", 0.2))
        self.local_layers = tuple(int(x) for x in cfg_get(cfg, "local_layers", [0, 1]))
        self.dynamic_layers = tuple(int(x) for x in cfg_get(cfg, "dynamic_layers", [5, 10, 15, 20]))
        self.prune_fraction = float(cfg_get(cfg, "layer_prune_fraction", 0.1))
        self.beta = float(cfg_get(cfg, "beta", 0.2))
        self.rank_k = float(cfg_get(cfg, "rank_k", 0.1))
        self.eps = float(cfg_get(cfg, "eps", 1e-6))
        self.attention_layers = frozenset(self.local_layers + self.dynamic_layers)
        self.last_layer = -1
        self.reset()

    # ------------------------------------------------------------ lifecycle
    def bind(self, info: ModelInfo) -> None:
        super().bind(info)
        if info.num_layers < 3 or max(self.local_layers) >= info.num_layers - 1:
            raise ConfigError(f"specprune needs decoder layers {list(self.local_layers)} and a "
                              f"later one; {info.name} has {info.num_layers}")
        self.last_layer = info.num_layers - 1
        self.dynamic_layers = tuple(l for l in self.dynamic_layers
                                    if max(self.local_layers) < l < self.last_layer)
        self.attention_layers = frozenset(self.local_layers + self.dynamic_layers + (self.last_layer,))
        self.per_image = info.grid * info.grid

    def reset(self) -> None:
        self._last_action: np.ndarray | None = None
        self._translation = 0.0                       # ||sum of translations since last call||
        self._frames: deque[tuple[int, dict[str, np.ndarray]]] = deque(maxlen=16)
        self._global: torch.Tensor | None = None      # previous call's Eq. 1 scores (M,)
        self._step: int | None = None
        self._mode = COARSE
        self._calls = 0
        self._begin_call()

    def _begin_call(self) -> None:
        self._local: list[torch.Tensor] = []
        self._dynamic = torch.empty(0, dtype=torch.long)
        self._scores: torch.Tensor | None = None
        self._next_global: torch.Tensor | None = None

    @property
    def k(self) -> int:
        return int(self.alpha * self.k_base[self._mode])

    def mode(self) -> str | None:
        return self._mode

    # ------------------------------------------------------------ hooks
    def observe_frame(self, step: int, images: dict[str, np.ndarray]) -> None:
        self._frames.append((step, {c: images[c] for c in self.info.cameras}))

    def skip_call(self, obs: Any) -> None:
        self._step = int(getattr(obs, "step", 0))
        return None

    def before_llm(self, tokens: VisualTokens) -> None:
        info = self.info
        step = self._step if self._step is not None else tokens.call * info.chunk
        self._step = None
        self._begin_call()
        self._mode = controller_mode(self._last_action, self.vt_th, self.vr_th)
        ref = self._reference_frame(step, frame_interval(self._translation))
        self._dynamic = dynamic_ids(tokens.images, ref, info.cameras, info.grid, self.tau,
                                    self.k_dynamic[self._mode])
        self._frames.append((step, {c: tokens.images[c] for c in info.cameras}))
        return None

    def after_layer(self, view: LayerView) -> torch.Tensor | None:
        if view.phase != "prefill":
            return None
        out = None
        if view.layer in self.local_layers:
            self._local_topk(view)
            if view.layer == self.local_layers[-1]:
                out = self._static_keep(view)
        elif view.layer in self.dynamic_layers:
            out = self._layer_prune(view)
        if view.layer == self.last_layer:
            ids, sc = query_to_visual(view, rows_of_kinds(view, (TEXT,)))
            if sc is not None:
                self._next_global = scatter_scores(ids, sc, self.info.num_visual)
        return out

    def end_of_step(self, actions: np.ndarray, stats: Any) -> None:
        a = np.asarray(actions, dtype=np.float64).reshape(-1, np.asarray(actions).shape[-1])
        self._last_action = a[-1]
        self._calls += 1
        self._translation = float(np.linalg.norm(a[:, :3].sum(axis=0)))
        if self._next_global is not None:
            self._global = self._next_global

    # ------------------------------------------------------------ pieces
    def _reference_frame(self, step: int, interval: int) -> dict[str, np.ndarray] | None:
        if not self._frames:
            return None
        old_enough = [f for s, f in self._frames if s <= step - interval]
        return old_enough[-1] if old_enough else self._frames[0][1]

    def _per_camera_topk(self, ids: torch.Tensor, scores: torch.Tensor, k: int) -> torch.Tensor:
        cam = ids.cpu() // self.per_image
        picks = [top_k_ids(scores.cpu()[cam == c], ids.cpu()[cam == c], k)
                 for c in range(len(self.info.cameras))]
        return torch.cat(picks) if picks else torch.empty(0, dtype=torch.long)

    def _local_topk(self, view: LayerView) -> None:
        ids, sc = query_to_visual(view, rows_of_kinds(view, (TEXT,)))
        if sc is not None:
            self._local.append(self._per_camera_topk(ids, sc, self.k))

    def _global_ids(self) -> torch.Tensor:
        if self._global is None:
            return torch.empty(0, dtype=torch.long)
        ids = torch.nonzero(self._global > 0).flatten()
        return self._per_camera_topk(ids, self._global[ids], self.k)

    def _static_keep(self, view: LayerView) -> torch.Tensor:
        self._scores = torch.zeros(self.info.num_visual)
        if not self._local:                                   # meta: the budget's bound
            kg = self.k if self._calls else 0                 # V_global from the 2nd call
            cam = self._dynamic // self.per_image
            n = sum(min(self.per_image, 2 * self.k + kg + int((cam == c).sum()))
                    for c in range(len(self.info.cameras)))
            return torch.empty(n, dtype=torch.long, device="meta")
        keep = torch.cat(self._local + [self._global_ids(), self._dynamic])
        return torch.unique(keep)

    def _layer_prune(self, view: LayerView) -> torch.Tensor:
        rows = rows_of_kinds(view, (PROPRIO, TEXT, ACTION, STOP))
        ids, block = visual_block(view, rows)
        k = keep_count(ids.numel(), 1.0 - self.prune_fraction)
        if block is None:
            return torch.empty(k, dtype=torch.long, device="meta")
        if self._scores is None:
            self._scores = torch.zeros(self.info.num_visual)
        head_scores = block.mean(dim=1) if block.shape[1] else torch.zeros(block.shape[0], block.shape[2])
        s = rank_weights(head_scores.cpu(), self.rank_k) * layer_confidence(block, self.eps)
        idx = ids.long().cpu()
        self._scores[idx] = ema(self._scores[idx], s, self.beta)
        return top_k_ids(self._scores[idx], idx, k)
