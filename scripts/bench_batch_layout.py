"""Packed rows + attention grouped by length (what run.batch runs) vs padding to the longest.

Times one batched decoder layer for B lanes whose sequence lengths differ (as when pruners keep
different numbers of tokens or prompts differ): "packed" is vlabench/models/lanes.py
`attend_lanes` (row-wise parts over the lanes' rows packed into one sequence, attention per
group of equal lengths); "padded" runs the same layer on a (B, n_max) batch with a key-padding
mask in one sdpa call. Interleaved per repetition (ABBA), medians in ms; the load average is
printed. Usage: python scripts/bench_batch_layout.py [--hidden 1024] [--batch 8] [--reps 20]
"""

from __future__ import annotations

import argparse
import os
import time

import torch
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaDecoderLayer, LlamaRotaryEmbedding, apply_rotary_pos_emb

from vlabench.models.lanes import KV, attend_lanes


def padded(layer, rotary, hs: list[torch.Tensor], pos: list[torch.Tensor]) -> torch.Tensor:
    """The same layer over a zero-padded (B, n_max, d) batch with a key-padding mask."""
    n = max(h.shape[1] for h in hs)
    x = torch.zeros(len(hs), n, hs[0].shape[2])
    p = torch.zeros(len(hs), n, dtype=torch.long)
    valid = torch.zeros(len(hs), n, dtype=torch.bool)
    for i, (h, q) in enumerate(zip(hs, pos)):
        x[i, : h.shape[1]] = h[0]
        p[i, : q.numel()] = q
        valid[i, : q.numel()] = True
    attn = layer.self_attn
    xn = layer.input_layernorm(x)
    b = x.shape[0]
    q = attn.q_proj(xn).view(b, n, -1, attn.head_dim).transpose(1, 2)
    k = attn.k_proj(xn).view(b, n, -1, attn.head_dim).transpose(1, 2)
    v = attn.v_proj(xn).view(b, n, -1, attn.head_dim).transpose(1, 2)
    cos, sin = rotary(xn, p)
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    mask = valid[:, None, None, :]
    out = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=attn.scaling)
    h = x + attn.o_proj(out.transpose(1, 2).reshape(b, n, -1))
    return h + layer.mlp(layer.post_attention_layernorm(h))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=20)
    a = ap.parse_args()
    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=a.hidden, intermediate_size=4 * a.hidden, num_attention_heads=a.hidden // 64,
                      num_key_value_heads=a.hidden // 64, num_hidden_layers=1)
    cfg._attn_implementation = "sdpa"
    layer, rotary = LlamaDecoderLayer(cfg, 0).eval(), LlamaRotaryEmbedding(cfg)
    for label, lengths in (("equal lengths (none, fixed-ratio pruners, one prompt)", [600] * a.batch),
                           ("different lengths (adaptive pruners, prompts)",
                            [600 - 45 * (i % 8) for i in range(a.batch)])):
        hs = [torch.randn(1, n, a.hidden) for n in lengths]
        pos = [torch.arange(n) for n in lengths]
        metas = [KV(torch.empty(0), torch.empty(0), q, torch.zeros_like(q), torch.full_like(q, -1)) for q in pos]
        times = {"packed": [], "padded": []}
        with torch.inference_mode():
            runs = {"packed": lambda: attend_lanes(layer, rotary, hs, metas, [None] * len(hs), [None] * len(hs),
                                                   [False] * len(hs), [False] * len(hs)),
                    "padded": lambda: padded(layer, rotary, hs, pos)}
            for r in range(a.reps + 1):
                for name in (("packed", "padded") if r % 2 == 0 else ("padded", "packed")):
                    t0 = time.perf_counter()
                    runs[name]()
                    if r:   # the first repetition warms up
                        times[name].append((time.perf_counter() - t0) * 1e3)
        med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
        print(f"{label}: B={a.batch}, rows {sum(lengths)} packed vs {a.batch * max(lengths)} padded; "
              f"packed {med['packed']:.1f} ms, padded {med['padded']:.1f} ms "
              f"({med['padded'] / med['packed']:.2f}x), load {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
