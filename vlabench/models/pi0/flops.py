"""Analytic FLOPs of a pi0 call (2 per multiply-add, matrix products only, as
`vlabench/models/flops.py`): SigLIP + projector per image, the prefix Gemma layers from the
decoder trace, the expert layers of every flow step from the expert's traces, and the expert's
small projections (state, action in/out, action-time MLP)."""

from __future__ import annotations

from vlabench.models.decoder import DecoderTrace, LayerTrace
from vlabench.models.flops import _vit_layer, llm_paper_macs
from vlabench.models.pi0.dims import Pi0Dims


def vision_flops(d: Pi0Dims, n_images: int) -> float:
    """Patch embedding, every SigLIP block (pi0 reads the last one), the linear projector."""
    p = d.patches
    patch = 2.0 * p * 3 * d.patch_size ** 2 * d.siglip_hidden
    blocks = d.siglip_layers * _vit_layer(p, d.siglip_hidden, d.siglip_mlp)
    proj = 2.0 * p * d.siglip_hidden * d.llm_hidden
    return n_images * (patch + blocks + proj)


def gemma_layer_flops(width: int, mlp: int, d: Pi0Dims, t: LayerTrace) -> float:
    """One Gemma layer: t.n_q rows against t.n_k keys (q/o of heads x head_dim, one KV head,
    the three-matrix GeGLU MLP), plus the probe's QK^T when probed beside SDPA."""
    proj = 2.0 * t.n_q * width * (2 * d.q_dim + 2 * d.kv_dim)
    attn = 4.0 * t.n_q * t.n_k * d.q_dim
    probe = 2.0 * t.n_q * t.n_k * d.q_dim if (t.probed and not t.eager) else 0.0
    return proj + attn + probe + 2.0 * t.n_q * width * mlp * 3


def prefix_flops(d: Pi0Dims, trace: DecoderTrace) -> float:
    return sum(gemma_layer_flops(d.llm_hidden, d.llm_mlp, d, t) for t in trace.prefill if t is not None)


def expert_flops(d: Pi0Dims, steps: list[list[LayerTrace]]) -> float:
    w, c = d.expert_hidden, d.chunk
    small = 2.0 * (d.max_state_dim * w + c * (d.max_action_dim * w + 2 * w * w + w * w + w * d.max_action_dim))
    layers = sum(gemma_layer_flops(w, d.expert_mlp, d, t) for step in steps for t in step)
    return layers + small * len(steps)


def paper_macs(d: Pi0Dims, trace: DecoderTrace) -> float:
    """The paper accounting (`vlabench.models.flops.llm_paper_macs`) of pi0: the Gemma 2B prefix
    layers only, C(n) = 4nd^2 + 2n^2d + 3ndm at d = 2048, m = 16384, as VLA-Pruner App. A.2
    writes it for any backbone (its 4nd^2 prices Gemma's one-KV-head k and v projections as
    full d x d ones); the action expert's flow steps are not counted. Multiply-adds."""
    return llm_paper_macs(d.llm_hidden, d.llm_mlp, trace)
