"""SpecPrune-VLA: action-aware self-speculative visual token pruning.

Before the LLM, patches that barely changed since a reference frame are marked static; after
the first two decoder layers the static tokens are dropped unless those layers' text attention
ranks them high, and a controller driven by the executed actions switches between a coarse and
a fine budget. Paper: "SpecPrune-VLA: Accelerating Vision-Language-Action Models via
Action-Aware Self-Speculative Pruning" (arXiv:2509.05614). Public code:
alexwhz-sjtu/SpecPrune-VLA@d3b06ed.

Details, readings and reference citations: docs/methods/specprune.md
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch

from vlabench.core.config import as_dict, cfg_get
from vlabench.core.errors import ConfigError
from vlabench.core.readings import Reading
from vlabench.pruners.attn_scores import query_to_visual, scatter_scores, visual_block
from vlabench.pruners.base import (
    ACTION,
    BOS,
    PROPRIO,
    STOP,
    TEXT,
    VISUAL,
    LayerView,
    ModelInfo,
    Pruner,
    VisualTokens,
)
from vlabench.pruners.common import camera_pools, meta_keep
from vlabench.pruners.selection import keep_count, patch_cosine, top_k_ids
from vlabench.pruners.specprune_controller import (
    COARSE,
    FINE,
    CodeController,
    code_frames_back,
    controller_mode,
    frame_interval,
)
from vlabench.pruners.specprune_layers import (
    code_rank_weights,
    code_retain,
    ema,
    layer_confidence,
    rank_weights,
)

__all__ = ["COARSE", "FINE", "SpecPrune", "code_k", "controller_mode", "dynamic_ids", "ema",
           "frame_interval", "layer_confidence", "rank_weights", "static_ids"]

REPO = "alexwhz-sjtu/SpecPrune-VLA @ d3b06ed"
TAIL = (PROPRIO, TEXT, ACTION, STOP)          # the code's rows "position >= 513"

READINGS = (
    Reading("dynamic tokens: floor or cap",
            "Sec. 4.2 Eq. 3: keep the Low-K_D patches among those with similarity < tau (a cap; K_D "
            "not given, 256 - 200 / 256 - 220 used)",
            f"{REPO} spec_prune_vla.py:128-155, openvla_utils.py:776-780: prune the 200 (coarse) / "
            "220 (fine) MOST similar patches among those with similarity >= 0.986, keep the rest "
            "(56 / 36 are floors)", "code",
            "the code produced Table 1; Table 4's 304-333 pruned tokens (179-208 visual kept) need floors"),
    Reading("static pruning steps",
            "Sec. 4.2, Algorithm 1: one pruning after the first two layers, V_local = top-K of each",
            f"{REPO} modeling_llama.py L1101-1164: after layer 0 keep non-static U top-3K(layer 0); "
            "after layer 1 non-static U top-K(layer 0) U top-K(layer 1)", "code", "the code produced Table 1"),
    Reading("Eq. 1 text rows",
            "Sec. 4.2: the m task-relevant text tokens (the prompt after the template)",
            f"{REPO} modeling_llama.py L1301-1303, L1314: layer 0 prompt tokens 9..P-2, layer 1 "
            "prompt tokens 10..P-1 (0-based after BOS)", "code", "the code produced Table 1"),
    Reading("K per camera",
            "App. 10.2: K = alpha x 24 (coarse) / 40 (fine), alpha per suite, both cameras",
            f"{REPO} spec_prune_constants.py:2-12: int(20 r) / int(15 r) coarse, int(40 r^2) / "
            "int(30 r^2) fine, r = 0.8 for every suite: 16 / 12 and 25 / 19", "code",
            "the code produced Table 1 (its libero_spatial log at 00ed266, 98.2%, used exactly these K)"),
    Reading("V_global",
            "Sec. 4.2: top-K_G of the previous call's last-layer task attention",
            f"{REPO} openvla_utils.py:67,142: prev_attn_indices = [] (at 00ed266 computed, then "
            "overwritten with []): empty", "code", "the code produced Table 1"),
    Reading("layer-level pruning",
            "Sec. 5.1, App. 10.1: sigmoid-rank x confidence EMA, 10% of the visual tokens at {5,10,15,20}",
            f"{REPO} run_libero_eval.py:107: dynamic_prune = False (off); its implementation "
            "(modeling_llama.py L1091-1268, `pruner.layer_prune=true`): linspace(10, 0.1) rank weights "
            "at layers 0, 1, 12, keep max(int(0.8 L), 60 + P + 58) tokens at {5,10,15,20,25} until the floor",
            "code", "the released code; the authors' logs at 00ed266 (libero_spatial 98.2% = 393/400, goal "
            "97.7%, long 94.0%) ran with layer_prune: True and per-suite ratios (0.8 / 1.0 / 0.9)"),
    Reading("controller",
            "Sec. 6.2, Algorithm 1: fine iff v_t < 0.4 and v_r < 0.2 and dz <= 0, from the last "
            "action, per call",
            f"{REPO} run_libero_eval.py:441-456: after every executed action; enter iff v_t < 0.4 or "
            "(v_xy < 0.1 and dz < 0.1 and v_r < 0.2); leave iff dz > 0.2 or (v_r > 0.3 and chunk "
            "used up); entering fine mode discards the rest of the chunk (replan)", "code",
            "the code produced Table 1 (Table 2's Tech. 3 'action adapter')"),
    Reading("frame interval",
            "Sec. 4.2: T = floor(-16/3 v/6 + 22/3) + 4 frames back",
            f"{REPO} run_libero_eval.py:381-389: prev_T = min(int(-16/3 v/6 + 22/3) + 3, 6), "
            "frame replay_images[-prev_T], i.e. prev_T - 1 steps back", "code", "the code produced Table 1"),
    Reading("reference frame without history",
            "Sec. 4.2: a previous frame is compared; the first call has none",
            f"{REPO} run_libero_eval.py:384-386: compares the current frame with itself (first call, "
            "fewer than prev_T frames, prev_T = 1) or indexes from the episode start (prev_T <= 0): "
            "a bug; not reproduced", "paper", "a frame compared with itself marks every patch static"),
    Reading("layer-1 top-K ids",
            "Sec. 4.2: V(2) = the top-K visual tokens of layer 2",
            f"{REPO} modeling_llama.py L1318-1322: returns the rank among the alive tokens of a camera "
            "plus the camera offset, not the token's id: a bug; not reproduced", "paper",
            "the ids it returns are unrelated to the attention"),
    Reading("layer-level score indices",
            "Sec. 5.1: each token's own score",
            f"{REPO} modeling_llama.py L1215-1227: original positions index the compacted score "
            "vector, and BOS (score 0) is dropped at the first prune layer: a bug; not reproduced "
            "(BOS kept, one visual token fewer so the length matches)", "paper",
            "the scores it updates belong to other tokens"),
)


def code_k(ratio: float) -> dict[str, tuple[int, int]]:
    """spec_prune_constants.py:5-12: attention top-K per camera (agentview, wrist) per mode."""
    if ratio <= 1.0:
        fine = (int(40 * ratio ** 2), int(30 * ratio ** 2))
    else:
        fine = (int(40 * ratio), int(30 * ratio))
    return {COARSE: (int(20 * ratio), int(15 * ratio)), FINE: fine}


def _numpy1_argpartition(values: np.ndarray, kth: int) -> list[int]:
    """`np.argpartition(values, kth)` (1-D) as numpy 1.x, the code's numpy, computes it: its
    scalar introselect (numpy/core/src/npysort/selection.cpp), transcribed; independent of the
    installed numpy, which on AVX2 / AVX-512 CPUs (numpy >= 2) orders equal values differently
    (docs/methods/specprune.md, "Similarity arithmetic"). Pure Python: a camera's <= 256 values."""
    v = [float(x) for x in values]               # float32 -> float64 is exact: same order
    t = list(range(len(v)))
    _introselect(v, t, 0, len(v), kth + len(v) if kth < 0 else kth)
    return t


def _less(a: float, b: float) -> bool:
    return a < b or (math.isnan(b) and not math.isnan(a))     # numpy's float order: NaN last


def _introselect(v: list[float], t: list[int], base: int, num: int, kth: int) -> None:
    """numpy 1.x `introselect_<arg>` on t[base:base + num] (positions relative to base), no pivot
    stack (one kth)."""
    def val(i: int) -> float:
        return v[t[base + i]]

    def swap(i: int, j: int) -> None:
        t[base + i], t[base + j] = t[base + j], t[base + i]

    low, high = 0, num - 1
    if kth - low < 3:                            # dumb_select_: kth + 1 passes of a minimum search
        for i in range(kth + 1):
            m = i
            for j in range(i + 1, num):
                if _less(val(j), val(m)):
                    m = j
            swap(i, m)
        return
    if kth == num - 1:                           # the maximum: the last of equal maxima
        m = low
        for j in range(low + 1, num):
            if not _less(val(j), val(m)):
                m = j
        swap(kth, m)
        return
    depth = 2 * (num.bit_length() - 1)           # 2 npy_get_msb(num)
    while low + 1 < high:
        ll, hh = low + 1, high
        if depth > 0 or hh - ll < 5:             # median3_swap_: median to low, minimum to low + 1
            mid = low + (high - low) // 2
            if _less(val(high), val(mid)):
                swap(high, mid)
            if _less(val(high), val(low)):
                swap(high, low)
            if _less(val(low), val(mid)):
                swap(low, mid)
            swap(mid, low + 1)
        else:
            swap(ll + _median_of_median5(v, t, base + ll, hh - ll), low)
            ll, hh = ll - 1, hh + 1
        depth -= 1
        pivot = val(low)
        while True:                              # unguarded_partition_
            ll += 1
            while _less(val(ll), pivot):
                ll += 1
            hh -= 1
            while _less(pivot, val(hh)):
                hh -= 1
            if hh < ll:
                break
            swap(ll, hh)
        swap(low, hh)
        if hh >= kth:
            high = hh - 1
        if hh <= kth:
            low = ll
    if high == low + 1 and _less(val(high), val(low)):
        swap(high, low)


def _median_of_median5(v: list[float], t: list[int], base: int, num: int) -> int:
    """numpy 1.x `median_of_median5_`: the medians of each group of 5 moved to the front, then
    their median selected; returns its position relative to base."""
    def val(i: int) -> float:
        return v[t[base + i]]

    def swap(i: int, j: int) -> None:
        t[base + i], t[base + j] = t[base + j], t[base + i]

    nmed = num // 5
    for i in range(nmed):
        g = 5 * i                                # median5_ on t[g:g + 5], same swaps
        for a, b in ((1, 0), (4, 3), (3, 0), (4, 1), (2, 1)):
            if _less(val(g + a), val(g + b)):
                swap(g + a, g + b)
        if _less(val(g + 3), val(g + 2)):
            m = 1 if _less(val(g + 3), val(g + 1)) else 3
        else:
            m = 2
        swap(g + m, i)
    if nmed > 2:
        _introselect(v, t, base, nmed, nmed // 2)
    return nmed // 2


def _per_camera_patches(current: dict[str, np.ndarray], reference: dict[str, np.ndarray] | None,
                        cameras: tuple[str, ...], grid: int,
                        pick: Callable[[np.ndarray], np.ndarray]) -> torch.Tensor:
    """Visual ids of the patches `pick(similarity)` chooses in each camera's frame-vs-reference
    patch similarities (patch ids within the camera). No reference: none. The similarity is the
    code's arithmetic (`calculate_patch_similarity`, spec_prune_vla.py:32-44, the same function
    as VLA-Cache's) under both readings: the paper's cosine similarity is the same formula."""
    out = [torch.empty(0, dtype=torch.long)]
    if reference is None:
        return out[0]
    for c, cam in enumerate(cameras):
        sim = patch_cosine(current[cam], reference[cam], np.asarray(current[cam]).shape[0] // grid)
        out.append(torch.as_tensor(np.sort(pick(sim)), dtype=torch.long) + c * grid * grid)
    return torch.cat(out)


def static_ids(current: dict[str, np.ndarray], reference: dict[str, np.ndarray] | None,
               cameras: tuple[str, ...], grid: int, tau: float, top: int) -> torch.Tensor:
    """Code (get_similarity_indices, spec_prune_vla.py:128-155): per camera, the `top` most
    similar patches among those with similarity >= tau (float32 comparison), as numpy 1.x's
    `argpartition(sim, -k)[-k:]` chooses among equal values; these are pruned. No reference:
    none."""
    def pick(sim: np.ndarray) -> np.ndarray:
        cand = np.flatnonzero(sim >= np.float32(tau))
        k = min(int(top), cand.size)
        if k <= 0:          # top = 0 (never in the code, whose [-0:] would take every candidate): none
            return cand[:0]
        return cand[_numpy1_argpartition(sim[cand], -k)[-k:]]

    return _per_camera_patches(current, reference, cameras, grid, pick)


def dynamic_ids(current: dict[str, np.ndarray], reference: dict[str, np.ndarray] | None,
                cameras: tuple[str, ...], grid: int, tau: float, k: int) -> torch.Tensor:
    """Paper Sec. 4.2 Eq. 2-3: per camera, the k lowest-similarity patches among those below
    tau (ties: lowest id); these are kept. No reference: none."""
    def pick(sim: np.ndarray) -> np.ndarray:
        cand = np.flatnonzero(sim < np.float32(tau))
        return top_k_ids(-torch.from_numpy(sim[cand]), torch.from_numpy(cand), k).numpy()

    return _per_camera_patches(current, reference, cameras, grid, pick)


def text_rows(view: LayerView, start: int, stop: int | None) -> torch.Tensor:
    """Bool mask over the query rows: the prompt (TEXT) rows [start:stop] in sequence order."""
    text = torch.nonzero(view.query_kinds == TEXT).flatten()
    mask = torch.zeros(view.query_kinds.numel(), dtype=torch.bool, device=view.query_kinds.device)
    mask[text[start:stop]] = True
    return mask


def _tail_rows(view: LayerView) -> torch.Tensor:
    """Bool mask over the query rows after the visual block (proprio, prompt, placeholders, stop)."""
    return torch.isin(view.query_kinds, torch.tensor(TAIL, device=view.query_kinds.device))


class SpecPrune(Pruner):
    """SpecPrune-VLA's two-level pruning with its action-aware controller (docs/methods/specprune.md)."""

    name = "specprune"
    observes_frames = True   # the reference frame may fall between model calls
    readings = READINGS

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.suite = str(cfg_get(cfg, "suite", ""))
        self.alpha = float(as_dict(cfg_get(cfg, "alpha", {})).get(self.suite, cfg_get(cfg, "alpha_default", 1.0)))
        self.k_base = {COARSE: int(cfg_get(cfg, "k_coarse", 24)), FINE: int(cfg_get(cfg, "k_fine", 40))}
        self.k_code = code_k(float(cfg_get(cfg, "static_ratio", 0.8)))
        top = as_dict(cfg_get(cfg, "static_top", {}))
        self.static_top = {COARSE: int(top.get(COARSE, 200)), FINE: int(top.get(FINE, 220))}
        self.tau = float(cfg_get(cfg, "tau", 0.986))
        self.template = int(cfg_get(cfg, "template_tokens", 9))
        ctl = as_dict(cfg_get(cfg, "controller", {}))
        self.ctl = {k: float(ctl.get(k, v)) for k, v in dict(vt_th=0.4, vr_th=0.2, xy_th=0.1, z_th=0.1,
                                                               exit_z=0.2, exit_rot=0.3).items()}
        lp = cfg_get(cfg, "layer_prune", None)       # None: off under code (d3b06ed), on under paper
        self.layer_prune = (self.reading == "paper") if lp is None else bool(lp)
        self.unexecuted = int(cfg_get(cfg, "unexecuted_first_steps", 0) or 0)
        self.local_layers = (0, 1)
        # code's layer level
        self.score_layers = tuple(int(x) for x in cfg_get(cfg, "code_score_layers", [0, 1, 12]))
        self.code_prune_layers = tuple(int(x) for x in cfg_get(cfg, "code_prune_layers", [5, 10, 15, 20, 25]))
        self.retain_ratio = float(cfg_get(cfg, "code_retain_ratio", 0.8))
        self.min_retain = int(cfg_get(cfg, "code_min_retain", 60))
        # paper's layer level
        self.dynamic_layers = tuple(int(x) for x in cfg_get(cfg, "dynamic_layers", [5, 10, 15, 20]))
        self.prune_fraction = float(cfg_get(cfg, "layer_prune_fraction", 0.1))
        self.beta = float(cfg_get(cfg, "beta", 0.2))
        self.rank_k = float(cfg_get(cfg, "rank_k", 0.1))
        self.eps = float(cfg_get(cfg, "eps", 1e-6))
        self.last_layer = -1
        self.placeholder_scores = False
        self.attention_layers = frozenset()
        self.reset()

    # ------------------------------------------------------------ lifecycle
    def bind(self, info: ModelInfo) -> None:
        super().bind(info)
        n = info.num_layers
        if n < 3:
            raise ConfigError(f"specprune needs decoder layers 0, 1 and a later one; {info.name} has {n}")
        self.last_layer = n - 1
        self.per_image = info.grid * info.grid
        if self.reading == "code":
            self.score_layers = tuple(l for l in self.score_layers if l < n)
            self.code_prune_layers = tuple(l for l in self.code_prune_layers if 1 < l < n)
            extra = (self.score_layers + self.code_prune_layers) if self.layer_prune else ()
            self.attention_layers = frozenset(self.local_layers + extra)
        else:
            self.dynamic_layers = tuple(l for l in self.dynamic_layers if 1 < l < self.last_layer)
            extra = self.dynamic_layers if self.layer_prune else ()
            self.attention_layers = frozenset(self.local_layers + extra + (self.last_layer,))

    def reset(self) -> None:
        self.controller = CodeController(**self.ctl)
        self._chunk: np.ndarray | None = None
        self._call_step = 0
        self._done = 0                                  # chunk actions accounted (executed)
        self._translation = np.zeros(3)                 # sum of executed translations since the call
        self._last_action: np.ndarray | None = None
        self._frames: deque[tuple[int, dict[str, np.ndarray]]] = deque(maxlen=16)
        self._global: torch.Tensor | None = None        # previous call's Eq. 1 scores (paper)
        self._step: int | None = None
        self._replan = False
        self._mode = COARSE
        self._calls = 0
        self._begin_call()

    def _begin_call(self) -> None:
        self._static = torch.empty(0, dtype=torch.long)    # code: pruned unless re-kept
        self._dynamic = torch.empty(0, dtype=torch.long)   # paper: kept
        self._local: list[torch.Tensor] = []
        self._top_l0 = torch.empty(0, dtype=torch.long)
        self._scores: torch.Tensor | None = None
        self._next_global: torch.Tensor | None = None
        self._layer_active = self.layer_prune

    def mode(self) -> str | None:
        return self._mode

    def k_per_camera(self) -> tuple[int, ...]:
        """The attention top-K of each camera in the current mode."""
        n = len(self.info.cameras) if self.info else 2
        if self.reading == "code":
            ks = self.k_code[self._mode]
            return tuple(ks[min(c, len(ks) - 1)] for c in range(n))
        return (int(self.alpha * self.k_base[self._mode]),) * n

    # ------------------------------------------------------------ hooks
    def _account(self, step: int) -> bool:
        """Feed the actions executed before `step` to the controller; True asks for a replan."""
        replan = False
        if self._chunk is None:
            return replan
        upto = min(step - self._call_step, len(self._chunk))
        while self._done < upto:
            a, at = self._chunk[self._done], self._call_step + self._done
            self._done += 1
            if at < self.unexecuted:        # not executed (suite.protocol=specprune): ignored
                continue
            self._translation += a[:3]
            self._last_action = a
            # the code evaluates from acting step 11: the first executed one is not (L442)
            first_executed = self.unexecuted > 0 and at == self.unexecuted
            if self.reading == "code" and not first_executed:
                replan = self.controller.step(a, self._done == len(self._chunk)) or replan
        return replan

    def observe_frame(self, step: int, images: dict[str, np.ndarray]) -> None:
        self._replan = self._account(step)
        self._remember(step, images)

    def replan(self) -> bool:
        out, self._replan = self._replan, False
        return out

    def skip_call(self, obs: Any) -> None:
        self._step = int(getattr(obs, "step", 0))
        return None

    def before_llm(self, tokens: VisualTokens) -> None:
        info = self.info
        step = self._step if self._step is not None else tokens.call * info.chunk
        self._step = None
        self._account(step)
        self._begin_call()
        v = float(np.linalg.norm(self._translation))
        if self.reading == "code":
            self._mode = self.controller.mode
            ref = self._reference_frame(step, code_frames_back(v))
            self._static = static_ids(tokens.images, ref, info.cameras, info.grid, self.tau,
                                      self.static_top[self._mode])
        else:
            self._mode = controller_mode(self._last_action, self.ctl["vt_th"], self.ctl["vr_th"])
            ref = self._reference_frame(step, frame_interval(v))
            self._dynamic = dynamic_ids(tokens.images, ref, info.cameras, info.grid, self.tau,
                                        self.per_image - self.static_top[self._mode])
        self._remember(step, tokens.images)
        self._translation = np.zeros(3)
        self._call_step, self._done, self._chunk = step, 0, None
        return None

    def after_layer(self, view: LayerView) -> torch.Tensor | None:
        if view.phase != "prefill":
            return None
        return self._after_code(view) if self.reading == "code" else self._after_paper(view)

    def end_of_step(self, actions: np.ndarray, stats: Any) -> None:
        a = np.asarray(actions, dtype=np.float64)
        self._chunk = a.reshape(-1, a.shape[-1])
        self._done = 0
        self._calls += 1
        if self._next_global is not None:
            self._global = self._next_global

    # ------------------------------------------------------------ code reading
    def _after_code(self, view: LayerView) -> torch.Tensor | None:
        out = None
        l = view.layer
        if l == 0:
            ids, sc = self._scores_of(view, text_rows(view, self.template, -1))
            ks = self.k_per_camera()
            self._top_l0 = self._per_camera_topk(ids, sc, ks)
            top3 = self._per_camera_topk(ids, sc, tuple(3 * k for k in ks))
            out = self._code_keep(view, [top3])
        elif l == 1:
            ids, sc = self._scores_of(view, text_rows(view, self.template + 1, None))
            top1 = self._per_camera_topk(ids, sc, self.k_per_camera())
            out = self._code_keep(view, [self._top_l0, top1])
        if self._layer_active and l in self.score_layers:
            self._code_score(view)
        if self._layer_active and l in self.code_prune_layers:
            out = self._code_layer_prune(view)
        return out

    def _code_keep(self, view: LayerView, rekeep: list[torch.Tensor]) -> torch.Tensor:
        alive = view.visual_ids().long().cpu()
        keep = alive[~torch.isin(alive, self._static)]
        return torch.unique(torch.cat([keep] + rekeep))

    def _code_score(self, view: LayerView) -> None:
        """high_attn_score + the EMA update (modeling_llama.py L1207-1227), per camera."""
        if self._scores is None:
            self._scores = torch.zeros(self.info.num_visual)
        ids, sc = self._scores_of(view, _tail_rows(view))
        for m in self._camera_masks(ids):
            w = code_rank_weights(sc[m], view.layer)
            self._scores[ids[m]] = ema(self._scores[ids[m]], w, 0.2)

    def _code_layer_prune(self, view: LayerView) -> torch.Tensor | None:
        kinds = view.query_kinds.cpu()
        tail = int((~torch.isin(kinds, torch.tensor((BOS, VISUAL)))).sum())
        bos = int((kinds == BOS).sum())
        retain, floor = code_retain(kinds.numel(), tail, self.retain_ratio, self.min_retain)
        if floor:
            self._layer_active = False
        ids = view.visual_ids().long().cpu()
        k = max(0, retain - tail - bos)
        if k >= ids.numel():
            return None
        scores = self._scores if self._scores is not None else torch.zeros(self.info.num_visual)
        return top_k_ids(scores[ids], ids, k)

    # ------------------------------------------------------------ paper reading
    def _after_paper(self, view: LayerView) -> torch.Tensor | None:
        out = None
        if view.layer in self.local_layers:
            ids, sc = self._scores_of(view, text_rows(view, self.template, None))
            self._local.append(self._per_camera_topk(ids, sc, self.k_per_camera()))
            if view.layer == self.local_layers[-1]:
                out = self._paper_static_keep()
        elif self.layer_prune and view.layer in self.dynamic_layers:
            out = self._paper_layer_prune(view)
        if view.layer == self.last_layer:
            ids, sc = query_to_visual(view, text_rows(view, self.template, None))
            if sc is not None:
                self._next_global = scatter_scores(ids, sc, self.info.num_visual)
        return out

    def _global_ids(self) -> torch.Tensor:
        if self._global is None:
            return torch.empty(0, dtype=torch.long)
        ids = torch.nonzero(self._global > 0).flatten()
        return self._per_camera_topk(ids, self._global[ids], self.k_per_camera())

    def _paper_static_keep(self) -> torch.Tensor:
        self._scores = torch.zeros(self.info.num_visual)
        return torch.unique(torch.cat(self._local + [self._global_ids(), self._dynamic]))

    def _paper_layer_prune(self, view: LayerView) -> torch.Tensor:
        ids, block = visual_block(view, _tail_rows(view))
        k = keep_count(ids.numel(), 1.0 - self.prune_fraction)
        if block is None:
            return meta_keep(k)
        if self._scores is None:
            self._scores = torch.zeros(self.info.num_visual)
        head_scores = block.mean(dim=1) if block.shape[1] else torch.zeros(block.shape[0], block.shape[2])
        s = rank_weights(head_scores.cpu(), self.rank_k) * layer_confidence(block, self.eps)
        idx = ids.long().cpu()
        self._scores[idx] = ema(self._scores[idx], s, self.beta)
        return top_k_ids(self._scores[idx], idx, k)

    # ------------------------------------------------------------ pieces
    def _remember(self, step: int, images: Mapping[str, np.ndarray]) -> None:
        """Keep the step's frames; a lazy mapping (observed steps) stays lazy: only the frames
        `_reference_frame` hands out are ever prepared."""
        frame = images if set(images) == set(self.info.cameras) else {c: images[c] for c in self.info.cameras}
        if self._frames and self._frames[-1][0] == step:
            self._frames.pop()
        self._frames.append((step, frame))

    def _reference_frame(self, step: int, back: int) -> dict[str, np.ndarray] | None:
        """The frame `back` steps before `step`; the oldest earlier one when fewer are kept;
        None before any earlier frame."""
        earlier = [(s, f) for s, f in self._frames if s < step]
        if not earlier:
            return None
        old_enough = [f for s, f in earlier if s <= step - back]
        return old_enough[-1] if old_enough else earlier[0][1]

    def _scores_of(self, view: LayerView, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(alive visual ids, Eq. 1 scores from `rows`); seeded stand-in scores on the meta device."""
        ids, sc = query_to_visual(view, rows)
        ids = ids.long().cpu()
        if sc is None:
            self.placeholder_scores = True
            g = torch.Generator().manual_seed(1000 * self._calls + view.layer)
            return ids, torch.rand(self.info.num_visual, generator=g)[ids]
        return ids, sc.float().cpu()

    def _camera_masks(self, ids: torch.Tensor) -> list[torch.Tensor]:
        return camera_pools(ids, self.per_image, len(self.info.cameras))

    def _per_camera_topk(self, ids: torch.Tensor, scores: torch.Tensor, ks: tuple[int, ...]) -> torch.Tensor:
        picks = [top_k_ids(scores[m], ids[m], ks[c]) for c, m in enumerate(self._camera_masks(ids))]
        return torch.cat(picks)
