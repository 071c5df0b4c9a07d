"""One decoder layer over a batch of "lanes": samples with their own token sets and KV.

A batched policy call runs B samples whose kept tokens, positions and cached keys differ (each
has its own pruner). The row-wise parts of a layer (norms, q/k/v/o projections, MLP) run once
over the samples' rows packed into one sequence; attention runs per sample, one sdpa call for
each group of samples with equal (query, key) lengths, so no padded row is ever computed. On
the CPU every packed and grouped kernel gives the per-sample result bit for bit, so a batched
call equals its batch-1 calls exactly (tests/test_batch_equality.py). `lanes=1` is the batch-1
path: the decoder and pi0's expert have no other.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb, repeat_kv


@dataclass
class LayerTrace:
    """What one decoder layer computed in one forward: n_q query rows against n_k keys."""

    n_q: int
    n_k: int
    probed: bool = False
    eager: bool = False
    visual: int = 0                # visual tokens among the keys


@dataclass
class KV:
    """Keys and values of a lane's rows at one layer, with the rows' metadata."""

    k: torch.Tensor                # (1, kv_heads, n, head_dim), rotary applied
    v: torch.Tensor
    pos: torch.Tensor              # (n,) original rotary positions
    kind: torch.Tensor
    vid: torch.Tensor

    def cat(self, o: KV) -> KV:
        return KV(torch.cat([self.k, o.k], 2), torch.cat([self.v, o.v], 2),
                  torch.cat([self.pos, o.pos]), torch.cat([self.kind, o.kind]),
                  torch.cat([self.vid, o.vid]))

    def rows(self, idx: torch.Tensor) -> KV:
        """The entries at `idx` (an index on the metadata device)."""
        if self.k.ndim < 4:  # metadata only (no keys/values attached)
            return KV(self.k, self.v, self.pos[idx], self.kind[idx], self.vid[idx])
        kv_idx = idx.to(self.k.device)
        return KV(self.k[:, :, kv_idx], self.v[:, :, kv_idx], self.pos[idx], self.kind[idx],
                  self.vid[idx])


@dataclass
class LaneResult:
    """One lane's output of `attend_lanes`."""

    h: torch.Tensor                # (1, n_q, d) the layer's output rows
    new: KV                        # this layer's keys/values of the query rows
    keys: KV                       # every key the rows attended to (past + new)
    trace: LayerTrace
    probs: torch.Tensor | None     # (1, heads, n_q, n_k) float32 when probed


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


def attend_lanes(layer, rotary, hs: list[torch.Tensor], metas: list[KV], pasts: list[KV | None],
                 masks: list[torch.Tensor | None], probed: list[bool],
                 eager: list[bool]) -> list[LaneResult]:
    """Run `layer` for every lane: `hs[i]` (1, n_i, d) rows with metadata `metas[i]`, attending
    to `pasts[i]` (cached or reused keys, or None) and to themselves under `masks[i]` (an
    additive float or a boolean (1, 1, n_q, n_k) mask, or None: every key visible). A probed
    lane also gets its softmax probabilities; an eager one takes its output from them."""
    attn = layer.self_attn
    sizes = [h.shape[1] for h in hs]
    x = hs[0] if len(hs) == 1 else torch.cat(hs, 1)
    pos = metas[0].pos if len(hs) == 1 else torch.cat([m.pos for m in metas])
    q, k, v = project_qkv(layer, x, pos, rotary)
    qs, ks, vs = q.split(sizes, 2), k.split(sizes, 2), v.split(sizes, 2)
    news = [KV(ks[i], vs[i], m.pos, m.kind, m.vid) for i, m in enumerate(metas)]
    keys = [n if p is None else p.cat(n) for n, p in zip(news, pasts)]
    groups: dict[tuple, list[int]] = {}
    for i, kv in enumerate(keys):
        m = masks[i]
        sig = (sizes[i], kv.k.shape[2], probed[i], eager[i], None if m is None else m.dtype)
        groups.setdefault(sig, []).append(i)
    outs: list[torch.Tensor | None] = [None] * len(hs)
    probs_of: list[torch.Tensor | None] = [None] * len(hs)
    for (_, _, is_probed, is_eager, _), idx in groups.items():
        out, probs = _attention(attn, [qs[i] for i in idx], [keys[i] for i in idx],
                                [masks[i] for i in idx], is_probed, is_eager)
        for j, i in enumerate(idx):
            outs[i] = out[j:j + 1]
            probs_of[i] = None if probs is None else probs[j:j + 1]
    o = torch.cat([t.transpose(1, 2).reshape(1, sizes[i], -1) for i, t in enumerate(outs)], 1)
    h = x + attn.o_proj(o)
    h = h + layer.mlp(layer.post_attention_layernorm(h))
    return [LaneResult(h_i, news[i], keys[i],
                       LayerTrace(n_q=sizes[i], n_k=keys[i].k.shape[2], probed=probed[i],
                                  eager=eager[i], visual=int((keys[i].vid >= 0).sum())),
                       probs_of[i])
            for i, h_i in enumerate(h.split(sizes, 1))]


def _attention(attn, qs: list[torch.Tensor], keys: list[KV], masks: list[torch.Tensor | None],
               probed: bool, eager: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Attention of lanes with equal shapes, stacked on the batch axis: (out, probs)."""
    q = qs[0] if len(qs) == 1 else torch.cat(qs, 0)
    kk = repeat_kv(_stack([kv.k for kv in keys]), attn.num_key_value_groups)
    vv = repeat_kv(_stack([kv.v for kv in keys]), attn.num_key_value_groups)
    mask = None if masks[0] is None else _stack(masks)
    probs = None
    if probed:
        scores = torch.matmul(q, kk.transpose(2, 3)) * attn.scaling
        if mask is not None:
            scores = (scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
                      if mask.dtype == torch.bool else scores + mask)
        probs = torch.softmax(scores, dim=-1, dtype=torch.float32)
    if eager:
        out = torch.matmul(probs.to(vv.dtype), vv)
    else:
        out = F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask, scale=attn.scaling)
    return out, probs


def _stack(ts: list[torch.Tensor]) -> torch.Tensor:
    return ts[0] if len(ts) == 1 else torch.cat(ts, 0)
