"""FLOPs of a policy call: counted (FlopCounterMode) and analytic (from the decoder trace).

Counting: `torch.utils.flop_counter.FlopCounterMode` counts matrix products (mm, addmm, bmm,
convolution, SDPA kernels) at 2 FLOPs per multiply-add; norms, softmax, activations and
embedding lookups are not counted. On CPU, SDPA runs
`aten._scaled_dot_product_flash_attention_for_cpu`, which has no registered formula (it would
count zero): `register_cpu_sdpa_formula()` adds `sdpa_flop_count` for it. It counts on the
meta device too, which gives full-size FLOPs without memory.

Analytic: the same products, summed from what the decoder actually computed (rows per layer,
keys per layer, probed layers, skipped layers, reused KV), the vision towers (all but their last
block run) and the heads. It agrees with the count (tests/test_flops.py) and is cheap enough
to record for every call. The papers' per-layer formula `4nd^2 + 2n^2d + 2ndm` (FastV,
VLA-Pruner Appendix A.2) counts multiply-adds and a two-matrix FFN; ours counts FLOPs
(2 per multiply-add) and Llama's three-matrix SwiGLU FFN.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vlabench.models.decoder import DecoderTrace, LayerTrace
    from vlabench.models.dims import PrismaticDims

_REGISTERED = False


def register_cpu_sdpa_formula() -> None:
    """Give the CPU flash-attention kernel the standard SDPA FLOP formula (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    import torch
    from torch.utils.flop_counter import flop_registry, register_flop_formula, sdpa_flop_count

    op = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
    if op not in flop_registry and op.default not in flop_registry:
        @register_flop_formula(op)
        def _cpu_flash_sdpa(query, key, value, *args, out_shape=None, **kwargs) -> int:
            return sdpa_flop_count(query, key, value)

    _REGISTERED = True


def counter():
    """A silent FlopCounterMode with the CPU SDPA formula registered."""
    from torch.utils.flop_counter import FlopCounterMode

    register_cpu_sdpa_formula()
    return FlopCounterMode(display=False)


def _vit_layer(n: int, h: int, m: int) -> float:
    """One pre-norm ViT block on n tokens: QKV + out projections, QK^T and PV, 2-matrix MLP."""
    return 2.0 * n * h * 4 * h + 4.0 * n * n * h + 2.0 * n * h * m * 2


def vision_flops(d: PrismaticDims, n_images: int, probe: bool = False) -> float:
    """Both towers, all blocks but the last (the features are the second-to-last block's)."""
    patch_in = 3 * d.patch_size * d.patch_size
    p = d.patches
    n_dino = p + 1 + d.dino_registers
    dino = 2.0 * p * patch_in * d.dino_hidden + (d.dino_layers - 1) * _vit_layer(n_dino, d.dino_hidden, d.dino_mlp)
    sig = 2.0 * p * patch_in * d.siglip_hidden + (d.siglip_layers - 1) * _vit_layer(p, d.siglip_hidden, d.siglip_mlp)
    if probe:  # q, k projections and QK^T of SigLIP's feature layer, beside the layer itself
        sig += 2.0 * p * d.siglip_hidden * 2 * d.siglip_hidden + 2.0 * p * p * d.siglip_hidden
    return n_images * (dino + sig)


def projector_flops(d: PrismaticDims, rows: int) -> float:
    v, L = d.vision_dim, d.llm_hidden
    return 2.0 * rows * (v * 4 * v + 4 * v * L + L * L)


def llm_layer_flops(d: PrismaticDims, t: LayerTrace) -> float:
    """One Llama layer computing t.n_q rows against t.n_k keys."""
    h, m = d.llm_hidden, d.llm_mlp
    kv = d.llm_kv_heads * (h // d.llm_heads)
    proj = 2.0 * t.n_q * h * (2 * h + 2 * kv)
    mlp = 2.0 * t.n_q * h * m * 3
    attn = 4.0 * t.n_q * t.n_k * h
    probe = 2.0 * t.n_q * t.n_k * h if (t.probed and not t.eager) else 0.0
    return proj + mlp + attn + probe


def llm_flops(d: PrismaticDims, trace: DecoderTrace) -> float:
    total = sum(llm_layer_flops(d, t) for t in trace.prefill if t is not None)
    for step in trace.decode:
        total += sum(llm_layer_flops(d, t) for t in step if t is not None)
    return total + 2.0 * trace.lm_head_rows * d.llm_hidden * d.vocab_size


def oft_head_flops(d: PrismaticDims) -> float:
    """Proprio projector (one row) + L1 regression head (chunk rows)."""
    h, hh, a = d.llm_hidden, d.head_hidden, d.action_dim
    proprio = 2.0 * (d.proprio_dim * h + h * h)
    head = 2.0 * d.chunk * (a * h * hh + d.head_blocks * hh * hh + hh * a)
    return proprio + head


def llm_layer_flops_paper(n: int, d: int, m: int) -> float:
    """The papers' per-layer cost C(n) = 4nd^2 + 2n^2d + 2ndm (VLA-Pruner Eq. 10, after FastV)."""
    return 4.0 * n * d * d + 2.0 * n * n * d + 2.0 * n * d * m


# ---------------------------------------------------------------- the papers' accounting
# `vlabench bench bench.flops=paper` (docs/methods/vla-pruner.md, "FLOPs accounting"). What the
# authors' own counters count: MINT-SJTU/VLA-Pruner @ 3d156ee src/openvla-oft/transformers/src/transformers/models/
# llama/modeling_llama.py, `LlamaModel.forward` (FLOPs_current = 4*n*(d**2) + 2*(n**2)*d +
# 3*n*d*m per decoder layer, n = the rows that layer computes, forwards of one row skipped,
# printed as "Average TFLOPs") and `_estimate_decoder_layer_flops` (same formula), both taken
# from VLA-Cache's counter (siyuhsu/transformers @ 2302fce, same file). That is VLA-Pruner
# App. A.2 Eq. 10-13 with Llama's three-matrix FFN: the LLM backbone's prefill only (no decode
# steps, no LM head, no vision, no action head, no attention probe), multiply-adds as the unit,
# and the attention term on the rows computed (n^2, whatever the number of keys).

def paper_layer_macs(n: float, d: int, m: int) -> float:
    """C(n) = 4nd^2 + 2n^2d + 3ndm multiply-adds: one decoder layer on n rows as the authors'
    counter prices it (q, k, v, o projections as d x d; QK^T and PV on n x n; a three-matrix
    FFN)."""
    return 4.0 * n * d * d + 2.0 * n * n * d + 3.0 * n * d * m


def llm_paper_macs(hidden: int, mlp: int, trace: DecoderTrace) -> float:
    """The paper accounting of one call: C(n_q) summed over the prefill layers that ran (a
    skipped layer counts nothing), n_q = the rows the layer computed; decode steps, the LM head
    and everything outside the LLM are not counted. Multiply-adds."""
    return sum(paper_layer_macs(t.n_q, hidden, mlp) for t in trace.prefill if t is not None)


def paper_macs(d: PrismaticDims, trace: DecoderTrace) -> float:
    """`llm_paper_macs` at a Llama backbone's width (OpenVLA, OpenVLA-OFT)."""
    return llm_paper_macs(d.llm_hidden, d.llm_mlp, trace)
