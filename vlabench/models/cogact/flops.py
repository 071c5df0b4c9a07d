"""Analytic FLOPs of CogACT's action model: DiT forwards x DDIM steps x the guidance batch.

Counted as `vlabench.models.flops` counts (2 FLOPs per multiply-add of matrix products and
attention; norms, activations, the sinusoidal embedding not counted): per sample, the timestep
MLP (256 -> h -> h), the cognition projection (token_size -> h), the action embedding
(chunk rows), and on chunk + 1 rows each block's qkv / out projections, QK^T and PV, the 4h
MLP, then the final linear. The VLM stages are OpenVLA's (the decoder trace).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from vlabench.models.cogact.dims import CogACTDims


def dit_forward_flops(d: CogACTDims) -> float:
    """One DiT forward of one sample."""
    h, a, n = d.dit_hidden, d.action_dim, d.chunk + 1
    embed = 2.0 * (d.dit_freq * h + h * h) + 2.0 * d.token_size * h + 2.0 * d.chunk * a * h
    block = 2.0 * n * h * 4 * h + 4.0 * n * n * h + 2.0 * n * h * d.dit_mlp * 2
    return embed + d.dit_layers * block + 2.0 * n * h * a


def dit_sampling_flops(d: CogACTDims, ddim_steps: int, cfg_batch: int) -> float:
    """The action head of one call: `ddim_steps` forwards of a `cfg_batch` batch."""
    return float(ddim_steps * cfg_batch) * dit_forward_flops(d)
