"""The prunable decoder loop shared by every Llama-backbone VLA.

It runs the decoder layers of a transformers `LlamaForCausalLM` itself, so that it owns what
pruning changes: the attention mask over the kept tokens (causal for OpenVLA, fully
bidirectional for OpenVLA-OFT), their original rotary positions, a KV cache with its own length
per layer, the hook points of `vlabench.core.pruning.Pruner`, and a per-layer trace from which
`vlabench.models.flops` derives the FLOPs. Attention runs through sdpa; at the layers a pruner
reads, the probabilities are computed beside it ("sdpa" probe mode, bit-identical output) or
the layer runs eager attention ("eager" probe mode, as the methods' reference code does).

Details: docs/models.md#decoder
"""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import dataclass, field

import torch

from vlabench.core.pruning import GENERATED, LayerView, Pruner
from vlabench.models.lanes import KV, LayerTrace, attend_lanes, build_mask, project_qkv  # noqa: F401


@dataclass
class DecoderTrace:
    prefill: list[LayerTrace | None] = field(default_factory=list)   # None: layer skipped
    decode: list[list[LayerTrace | None]] = field(default_factory=list)
    lm_head_rows: int = 0


_KV = KV   # the name the decoder's collaborators (pi0's expert, tests) have used


def _keep_rows(vid: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Row indices to keep: non-visual rows and visual rows whose id is in `keep`.

    A `keep` on the meta device (full-size shape-only builds) has no values: the first
    len(keep) alive visual rows stand in for the selection, which gives the same shapes and so
    the same FLOPs as the real selection."""
    is_vis = vid >= 0
    if keep.device.type == "meta":
        rank = torch.cumsum(is_vis.long(), 0) - 1
        keep_vis = is_vis & (rank < keep.numel())
    else:
        keep_vis = is_vis & torch.isin(vid, keep.to(vid.device))
    return torch.nonzero(~is_vis | keep_vis).flatten()


def _index_device(x: torch.Tensor) -> torch.device:
    """Where token metadata (positions, kinds, ids) lives: the model's device, or the CPU when
    the model is on the meta device (metadata needs values)."""
    return torch.device("cpu") if x.device.type == "meta" else x.device


def _view(i: int, phase: str, h: torch.Tensor, probs: torch.Tensor | None, q: _KV,
          keys: _KV, flow_step: int = -1) -> LayerView:
    """The after_layer view. Token metadata always has values (on the CPU when the model is
    on the meta device); a pruner whose scores are meta returns a meta keep tensor, which
    `_keep_rows` reads by its length."""
    col = torch.nonzero(keys.vid >= 0).flatten()
    return LayerView(i, phase, h[0], probs[0] if probs is not None else None,
                     q.kind, q.pos, q.vid, keys.kind, keys.pos, keys.vid,
                     visual_key_index=col.to(h.device), visual_key_ids=keys.vid[col],
                     flow_step=flow_step)


@dataclass
class _Lane:
    """One sample's state while `prefill_batch` runs: its rows, their metadata, its reuse plan."""

    dec: PrunableDecoder
    h: torch.Tensor
    meta: KV
    plan: dict[int, torch.Tensor]
    reusing: torch.Tensor
    past: KV | None = None


class PrunableDecoder:
    """Runs `lm` (a LlamaForCausalLM) layer by layer with a pruner's hooks; one per episode
    slot. `prefill` / `decode` run this decoder alone, `prefill_batch` / `decode_batch` several
    decoders of one model in one batched forward (vlabench/models/lanes.py)."""

    def __init__(self, lm: torch.nn.Module, pruner: Pruner, probe_mode: str = "sdpa",
                 causal: bool = True, clock=None):
        if probe_mode not in ("sdpa", "eager"):
            raise ValueError(f"probe_mode must be 'sdpa' or 'eager', got {probe_mode!r}")
        self.lm = lm
        self.layers = lm.model.layers
        self.pruner = pruner
        self.probe_mode = probe_mode
        self.causal = causal          # False: every token sees every token (OpenVLA-OFT)
        self.clock = clock
        self.hook_context = None      # batched calls: a context entered around every pruner hook
        self.caches: list[KV | None] = []
        self.skipped: set[int] = set()
        self.prev_visual: list[KV | None] | None = None   # previous call's visual KV (reuse)
        self.pos_offset = 0    # tokens dropped before layer 0 when positions are renumbered
        self.trace = DecoderTrace()

    # ----------------------------------------------------------------- helpers
    def _pruner_stage(self):
        return hook_stage(self.clock, self.hook_context)

    def reset(self) -> None:
        """Episode start: forget the previous call's KV."""
        self.prev_visual = None

    def _mask(self, meta: KV, keys_pos: torch.Tensor, dtype: torch.dtype, device) -> torch.Tensor | None:
        return build_mask(meta.pos, keys_pos, dtype).to(device) if self.causal else None

    def _probing(self, i: int) -> tuple[bool, bool]:
        probed = i in self.pruner.attention_layers
        return probed, probed and self.probe_mode == "eager"

    # ----------------------------------------------------------------- prefill
    def prefill(self, embeds: torch.Tensor, kinds: torch.Tensor, visual_ids: torch.Tensor,
                keep: torch.Tensor | None = None,
                reuse: torch.Tensor | dict[int, torch.Tensor] | None = None) -> tuple[torch.Tensor, KV]:
        """Run all layers over `embeds` (1, n, d), positions 0..n-1. `keep`: visual ids kept
        before the first layer; `reuse`: visual ids whose KV comes from the previous call, at
        every layer (a tensor) or from given layers on (a {layer: ids} plan whose reused set
        only grows, as VLA-Cache's layer schedule). Returns the final-norm hidden states of the
        rows still alive and their metadata."""
        return prefill_batch([self], [embeds], [kinds], [visual_ids], [keep], [reuse])[0]

    def _start(self, embeds: torch.Tensor, kinds: torch.Tensor, visual_ids: torch.Tensor,
               keep: torch.Tensor | None, reuse) -> _Lane:
        """The lane entering layer 0: `keep` applied, the input view shown, the reuse plan."""
        dev = _index_device(embeds)
        n = embeds.shape[1]
        meta = KV(embeds.new_zeros(0), embeds.new_zeros(0),
                  torch.arange(n, device=dev), kinds.to(dev), visual_ids.to(dev))
        h = embeds
        self.trace = DecoderTrace()
        self.caches, self.skipped = [], set()
        self.pos_offset = 0
        if keep is not None:
            rows = _keep_rows(meta.vid, keep)
            h, meta = h[:, rows.to(h.device)], meta.rows(rows)
            if self.pruner.contiguous_positions:   # renumber the kept sequence 0..n'-1 (DivPrune)
                self.pos_offset = n - meta.pos.numel()
                meta.pos = torch.arange(meta.pos.numel(), device=dev)
        if self.pruner.input_view:     # the LLM input as a view of "layer -1" (SparseVLM's raters)
            with self._pruner_stage():
                if self.pruner.after_layer(_view(-1, "prefill", h, None, meta, meta)) is not None:
                    raise RuntimeError("after_layer may not prune the input view (use before_llm)")
        plan = self._reuse_plan(reuse, dev) if embeds.device.type != "meta" else {}
        return _Lane(self, h, meta, plan, torch.empty(0, dtype=torch.long, device=dev))

    def _enter_layer(self, lane: _Lane, i: int) -> bool:
        """Before layer i: drop the rows served from the cache from here on, ask the pruner
        whether to skip the layer, find the reused keys. False: the layer is skipped."""
        if i in lane.plan and lane.plan[i].numel() >= lane.reusing.numel():
            lane.reusing = lane.plan[i]
            rows = torch.nonzero(~torch.isin(lane.meta.vid, lane.reusing)).flatten()
            lane.h, lane.meta = lane.h[:, rows.to(lane.h.device)], lane.meta.rows(rows)
        with self._pruner_stage():
            skip = self.pruner.skip_layer(i)
        if skip:
            self.skipped.add(i)
            self.caches.append(None)
            self.trace.prefill.append(None)
            return False
        lane.past = None
        if lane.reusing.numel():
            c = self.prev_visual[i]
            lane.past = c.rows(torch.nonzero(torch.isin(c.vid, lane.reusing)).flatten())
        return True

    def _leave_layer(self, lane: _Lane, i: int, out) -> None:
        """After layer i: keep its KV and trace, show the pruner the layer, apply its keep."""
        lane.h = out.h
        self.caches.append(out.new if lane.past is None else out.keys)
        self.trace.prefill.append(out.trace)
        if i not in self.pruner.attention_layers:
            return
        view = _view(i, "prefill", lane.h, out.probs, lane.meta, self.caches[-1])
        with self._pruner_stage():
            keep = self.pruner.after_layer(view)
        if keep is None:
            return
        dev = lane.meta.pos.device
        rows = _keep_rows(lane.meta.vid, keep)
        keep = keep if keep.device.type != "meta" else lane.meta.vid[rows][lane.meta.vid[rows] >= 0]
        lane.h, lane.meta = lane.h[:, rows.to(lane.h.device)], lane.meta.rows(rows)
        if lane.reusing.numel():   # a pruned token is neither computed nor reused
            lane.reusing = lane.reusing[torch.isin(lane.reusing, keep.to(dev))]
            lane.plan = {j: ids[torch.isin(ids, keep.to(dev))] for j, ids in lane.plan.items()}

    def _finish(self, lane: _Lane) -> tuple[torch.Tensor, KV]:
        if self.pruner.reuses_kv:
            self.prev_visual = [None if c is None else c.rows(torch.nonzero(c.vid >= 0).flatten())
                                for c in self.caches]
        return self.lm.model.norm(lane.h), lane.meta

    def _reuse_plan(self, reuse: torch.Tensor | dict[int, torch.Tensor] | None,
                    dev: torch.device) -> dict[int, torch.Tensor]:
        """{layer: ids} of reusable ids, restricted to what the previous call cached at every
        layer the plan reaches; empty without a previous call."""
        if reuse is None or self.prev_visual is None:
            return {}
        plan = reuse if isinstance(reuse, dict) else {0: reuse}
        out = {}
        for layer, ids in sorted(plan.items()):
            ids = ids.to(dev)
            for c in self.prev_visual[layer:]:
                if c is None:   # a layer skipped in the previous call has no cache to reuse
                    return {}
                ids = ids[torch.isin(ids, c.vid)]
            out[int(layer)] = ids
        return out

    # ----------------------------------------------------------------- decode
    def decode(self, embed: torch.Tensor, position: int) -> torch.Tensor:
        """One autoregressive step for token `embed` (1, 1, d) at original `position` (shifted
        down by the tokens dropped before layer 0 when the pruner renumbers positions);
        returns its final-norm hidden state (1, 1, d). Skips the layers skipped at prefill."""
        return decode_batch([self], [embed], [position])[0]


def prefill_lanes(decoders: list[PrunableDecoder], embeds: list[torch.Tensor], kinds: list[torch.Tensor],
                  visual_ids: list[torch.Tensor], keeps: list, reuses: list) -> list[tuple[torch.Tensor, KV]]:
    """One lane: its decoder's own `prefill` (which tools and tests may wrap); several:
    `prefill_batch`."""
    if len(decoders) == 1:
        return [decoders[0].prefill(embeds[0], kinds[0], visual_ids[0], keep=keeps[0], reuse=reuses[0])]
    return prefill_batch(decoders, embeds, kinds, visual_ids, keeps, reuses)


def decode_lanes(decoders: list[PrunableDecoder], embeds: list[torch.Tensor],
                 positions: list[int]) -> list[torch.Tensor]:
    """One lane: its decoder's own `decode`; several: `decode_batch`."""
    if len(decoders) == 1:
        return [decoders[0].decode(embeds[0], positions[0])]
    return decode_batch(decoders, embeds, positions)


def prefill_batch(decoders: list[PrunableDecoder], embeds: list[torch.Tensor],
                  kinds: list[torch.Tensor], visual_ids: list[torch.Tensor],
                  keeps: list[torch.Tensor | None], reuses: list) -> list[tuple[torch.Tensor, KV]]:
    """`PrunableDecoder.prefill` of several decoders of one model in one batched forward: each
    lane keeps its own pruner, kept tokens, skipped layers and caches; equal to calling each
    decoder's `prefill` alone (bit for bit on the CPU)."""
    first = decoders[0]
    if any(d.layers is not first.layers for d in decoders):
        raise ValueError("a batched prefill runs decoders of one model")
    lanes = [d._start(*args) for d, *args in zip(decoders, embeds, kinds, visual_ids, keeps, reuses)]
    rotary = first.lm.model.rotary_emb
    for i, layer in enumerate(first.layers):
        live = [lane for lane in lanes if lane.dec._enter_layer(lane, i)]
        if not live:
            continue
        masks, probed, eager = [], [], []
        for lane in live:
            keys_pos = lane.meta.pos if lane.past is None else torch.cat([lane.past.pos, lane.meta.pos])
            masks.append(lane.dec._mask(lane.meta, keys_pos, lane.h.dtype, lane.h.device))
            p, e = lane.dec._probing(i)
            probed.append(p)
            eager.append(e)
        outs = attend_lanes(layer, rotary, [lane.h for lane in live], [lane.meta for lane in live],
                            [lane.past for lane in live], masks, probed, eager)
        for lane, out in zip(live, outs):
            lane.dec._leave_layer(lane, i, out)
    return [lane.dec._finish(lane) for lane in lanes]


def decode_batch(decoders: list[PrunableDecoder], embeds: list[torch.Tensor],
                 positions: list[int]) -> list[torch.Tensor]:
    """`PrunableDecoder.decode` of several decoders in one batched step (equal to each alone)."""
    first = decoders[0]
    metas = []
    for d, e, p in zip(decoders, embeds, positions):
        dev = _index_device(e)
        metas.append(KV(e.new_zeros(0), e.new_zeros(0), torch.tensor([p - d.pos_offset], device=dev),
                        torch.tensor([GENERATED], device=dev), torch.tensor([-1], device=dev)))
    hs = list(embeds)
    traces: list[list[LayerTrace | None]] = [[] for _ in decoders]
    rotary = first.lm.model.rotary_emb
    for i, layer in enumerate(first.layers):
        live = [j for j, d in enumerate(decoders) if i not in d.skipped]
        for j, d in enumerate(decoders):
            if i in d.skipped:
                traces[j].append(None)
        if not live:
            continue
        flags = [decoders[j]._probing(i) for j in live]
        outs = attend_lanes(layer, rotary, [hs[j] for j in live], [metas[j] for j in live],
                            [decoders[j].caches[i] for j in live], [None] * len(live),
                            [f[0] for f in flags], [f[1] for f in flags])
        for j, out in zip(live, outs):
            d = decoders[j]
            past = d.caches[i]
            d.caches[i] = out.new if past is None else out.keys
            traces[j].append(out.trace)
            hs[j] = out.h
            if i in d.pruner.attention_layers:
                view = _view(i, "decode", out.h, out.probs, metas[j], d.caches[i])
                with d._pruner_stage():
                    if d.pruner.after_layer(view) is not None:
                        raise RuntimeError("after_layer may not prune during decoding")
    for d, tr in zip(decoders, traces):
        d.trace.decode.append(tr)
    return [d.lm.model.norm(h) for d, h in zip(decoders, hs)]


def hook_stage(clock, hook_context):
    """Around a pruner hook: the clock's "pruner" stage and, in a batched call, the lane's RNG
    (`hook_context()`, vlabench/run/lane_rng.py); the decoder's and pi0's expert's hooks alike."""
    stage = clock.stage("pruner") if clock is not None else nullcontext()
    return stage if hook_context is None else _both(stage, hook_context())


class _both:
    """Enters two context managers (the clock's stage, then the lane's RNG)."""

    def __init__(self, a, b):
        self.a, self.b = a, b

    def __enter__(self):
        self.a.__enter__()
        self.b.__enter__()
        return self

    def __exit__(self, *exc):
        try:
            self.b.__exit__(*exc)
        finally:
            self.a.__exit__(*exc)
        return False
