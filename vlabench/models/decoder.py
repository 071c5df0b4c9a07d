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
from torch.nn import functional as F
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv

from vlabench.core.pruning import GENERATED, LayerView, Pruner


@dataclass
class LayerTrace:
    """What one decoder layer computed in one forward: n_q query rows against n_k keys."""

    n_q: int
    n_k: int
    probed: bool = False
    eager: bool = False
    visual: int = 0                # visual tokens among the keys


@dataclass
class DecoderTrace:
    prefill: list[LayerTrace | None] = field(default_factory=list)   # None: layer skipped
    decode: list[list[LayerTrace | None]] = field(default_factory=list)
    lm_head_rows: int = 0


@dataclass
class _KV:
    k: torch.Tensor                # (1, kv_heads, n, head_dim), rotary applied
    v: torch.Tensor
    pos: torch.Tensor              # (n,)
    kind: torch.Tensor
    vid: torch.Tensor

    def cat(self, o: _KV) -> _KV:
        return _KV(torch.cat([self.k, o.k], 2), torch.cat([self.v, o.v], 2),
                   torch.cat([self.pos, o.pos]), torch.cat([self.kind, o.kind]),
                   torch.cat([self.vid, o.vid]))

    def rows(self, idx: torch.Tensor) -> _KV:
        """The entries at `idx` (an index on the metadata device)."""
        if self.k.ndim < 4:  # metadata only (no keys/values attached)
            return _KV(self.k, self.v, self.pos[idx], self.kind[idx], self.vid[idx])
        kv_idx = idx.to(self.k.device)
        return _KV(self.k[:, :, kv_idx], self.v[:, :, kv_idx], self.pos[idx], self.kind[idx],
                   self.vid[idx])


def project_qkv(layer, h: torch.Tensor, pos: torch.Tensor, rotary) -> tuple[torch.Tensor, ...]:
    """A decoder layer's pre-norm q, k, v (batch, heads, n, head_dim) with the rotary embedding
    of original positions `pos` applied to q and k (Llama and Gemma layers alike)."""
    attn = layer.self_attn
    x = layer.input_layernorm(h)
    b, n, _ = x.shape
    q = attn.q_proj(x).view(b, n, -1, attn.head_dim).transpose(1, 2)
    k = attn.k_proj(x).view(b, n, -1, attn.head_dim).transpose(1, 2)
    v = attn.v_proj(x).view(b, n, -1, attn.head_dim).transpose(1, 2)
    cos, sin = rotary(x, pos[None].to(x.device))
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    return q, k, v


def build_mask(q_pos: torch.Tensor, k_pos: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Causal additive mask (1, 1, n_q, n_k): a key is visible iff its original position is <=
    the query's (gaps left by pruned tokens change nothing)."""
    allowed = k_pos[None, :] <= q_pos[:, None]
    mask = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)[None, None]


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


class PrunableDecoder:
    """Runs `lm` (a LlamaForCausalLM) layer by layer with a pruner's hooks."""

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
        self.caches: list[_KV | None] = []
        self.skipped: set[int] = set()
        self.prev_visual: list[_KV | None] | None = None   # previous call's visual KV (reuse)
        self.pos_offset = 0    # tokens dropped before layer 0 when positions are renumbered
        self.trace = DecoderTrace()

    # ----------------------------------------------------------------- helpers
    def _pruner_stage(self):
        return self.clock.stage("pruner") if self.clock is not None else nullcontext()

    def reset(self) -> None:
        """Episode start: forget the previous call's KV."""
        self.prev_visual = None

    def _attend(self, i: int, h: torch.Tensor, q_meta: _KV, past: _KV | None, phase: str,
                mask_needed: bool) -> tuple[torch.Tensor, _KV, LayerTrace, torch.Tensor | None]:
        layer = self.layers[i]
        attn = layer.self_attn
        q, k, v = project_qkv(layer, h, q_meta.pos, self.lm.model.rotary_emb)
        b, n, _ = h.shape
        new = _KV(k, v, q_meta.pos, q_meta.kind, q_meta.vid)
        keys = new if past is None else past.cat(new)
        kk = repeat_kv(keys.k, attn.num_key_value_groups)
        vv = repeat_kv(keys.v, attn.num_key_value_groups)
        mask = None
        if mask_needed and self.causal:
            mask = build_mask(q_meta.pos, keys.pos, q.dtype).to(q.device)
        probed = i in self.pruner.attention_layers
        eager = probed and self.probe_mode == "eager"
        probs = None
        if probed:
            scores = torch.matmul(q, kk.transpose(2, 3)) * attn.scaling
            if mask is not None:
                scores = scores + mask
            probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
        if eager:
            out = torch.matmul(probs.to(vv.dtype), vv)
        else:
            out = F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask, scale=attn.scaling)
        out = out.transpose(1, 2).reshape(b, n, -1)
        h = h + attn.o_proj(out)
        h = h + layer.mlp(layer.post_attention_layernorm(h))
        n_vis = int((keys.vid >= 0).sum())
        tr = LayerTrace(n_q=n, n_k=keys.k.shape[2], probed=probed, eager=eager, visual=n_vis)
        return h, new, tr, probs

    # ----------------------------------------------------------------- prefill
    def prefill(self, embeds: torch.Tensor, kinds: torch.Tensor, visual_ids: torch.Tensor,
                keep: torch.Tensor | None = None,
                reuse: torch.Tensor | dict[int, torch.Tensor] | None = None) -> tuple[torch.Tensor, _KV]:
        """Run all layers over `embeds` (1, n, d), positions 0..n-1. `keep`: visual ids kept
        before the first layer; `reuse`: visual ids whose KV comes from the previous call, at
        every layer (a tensor) or from given layers on (a {layer: ids} plan whose reused set
        only grows, as VLA-Cache's layer schedule). Returns the final-norm hidden states of the
        rows still alive and their metadata."""
        dev = _index_device(embeds)
        n = embeds.shape[1]
        meta = _KV(embeds.new_zeros(0), embeds.new_zeros(0),
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
        reusing = torch.empty(0, dtype=torch.long, device=dev)   # ids served from the cache
        for i in range(len(self.layers)):
            if i in plan and plan[i].numel() >= reusing.numel():
                reusing = plan[i]
                rows = torch.nonzero(~torch.isin(meta.vid, reusing)).flatten()
                h, meta = h[:, rows.to(h.device)], meta.rows(rows)
            with self._pruner_stage():
                skip = self.pruner.skip_layer(i)
            if skip:
                self.skipped.add(i)
                self.caches.append(None)
                self.trace.prefill.append(None)
                continue
            past = None
            if reusing.numel():
                c = self.prev_visual[i]
                past = c.rows(torch.nonzero(torch.isin(c.vid, reusing)).flatten())
            h, kv, tr, probs = self._attend(i, h, meta, past, "prefill", mask_needed=True)
            self.caches.append(kv if past is None else past.cat(kv))
            self.trace.prefill.append(tr)
            if i in self.pruner.attention_layers:
                view = _view(i, "prefill", h, probs, meta, self.caches[-1])
                with self._pruner_stage():
                    keep = self.pruner.after_layer(view)
                if keep is not None:
                    rows = _keep_rows(meta.vid, keep)
                    keep = keep if keep.device.type != "meta" else meta.vid[rows][meta.vid[rows] >= 0]
                    h, meta = h[:, rows.to(h.device)], meta.rows(rows)
                    if reusing.numel():   # a pruned token is neither computed nor reused
                        reusing = reusing[torch.isin(reusing, keep.to(dev))]
                        plan = {j: ids[torch.isin(ids, keep.to(dev))] for j, ids in plan.items()}
        if self.pruner.reuses_kv:
            self.prev_visual = [None if c is None else c.rows(torch.nonzero(c.vid >= 0).flatten())
                                for c in self.caches]
        return self.lm.model.norm(h), meta

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
        dev = _index_device(embed)
        position -= self.pos_offset
        meta = _KV(embed.new_zeros(0), embed.new_zeros(0), torch.tensor([position], device=dev),
                   torch.tensor([GENERATED], device=dev), torch.tensor([-1], device=dev))
        h = embed
        traces: list[LayerTrace | None] = []
        for i in range(len(self.layers)):
            if i in self.skipped:
                traces.append(None)
                continue
            past = self.caches[i]
            h, kv, tr, probs = self._attend(i, h, meta, past, "decode", mask_needed=False)
            self.caches[i] = kv if past is None else past.cat(kv)
            traces.append(tr)
            if i in self.pruner.attention_layers:
                view = _view(i, "decode", h, probs, meta, self.caches[i])
                with self._pruner_stage():
                    if self.pruner.after_layer(view) is not None:
                        raise RuntimeError("after_layer may not prune during decoding")
        self.trace.decode.append(traces)
        return self.lm.model.norm(h)
