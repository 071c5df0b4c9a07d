"""The Prismatic VLA module tree (OpenVLA and OpenVLA-OFT share it).

Top-level names follow the published HF export (`modeling_prismatic.py`): `vision_backbone`
(`featurizer` = DINOv2, `fused_featurizer` = SigLIP), `projector`, `language_model` (a Llama
causal LM); OFT adds `proprio_projector` and `action_head` (separate checkpoint files upstream).
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from vlabench.models.dims import PrismaticDims
from vlabench.models.heads import L1RegressionActionHead, ProprioProjector
from vlabench.models.random_weights import build_seeded
from vlabench.models.vision import FusedMLPProjector, FusedVisionBackbone


def llama_config(d: PrismaticDims) -> LlamaConfig:
    cfg = LlamaConfig(
        vocab_size=d.vocab_size, hidden_size=d.llm_hidden, intermediate_size=d.llm_mlp,
        num_hidden_layers=d.llm_layers, num_attention_heads=d.llm_heads,
        num_key_value_heads=d.llm_kv_heads, max_position_embeddings=d.max_positions,
        rms_norm_eps=d.rms_eps, rope_theta=d.rope_theta, bos_token_id=1, eos_token_id=2,
        pad_token_id=32000, tie_word_embeddings=False,
    )
    cfg._attn_implementation = "sdpa"
    return cfg


class PrismaticVLA(nn.Module):
    """Vision backbone + projector + Llama, with the OFT heads when `oft` is set."""

    def __init__(self, d: PrismaticDims, oft: bool):
        super().__init__()
        self.dims = d
        self.oft = oft
        self.vision_backbone = FusedVisionBackbone(d)
        self.projector = FusedMLPProjector(d.vision_dim, d.llm_hidden)
        self.language_model = LlamaForCausalLM._from_config(copy.deepcopy(llama_config(d)))
        if oft:
            self.proprio_projector = ProprioProjector(d.llm_hidden, d.proprio_dim)
            self.action_head = L1RegressionActionHead(d.llm_hidden, d.head_hidden, d.action_dim,
                                                      d.head_blocks)


def build_random(d: PrismaticDims, oft: bool, device: str, dtype: torch.dtype,
                 seed: int = 0) -> PrismaticVLA:
    """Random weights: on `device` (tiny sizes), or shapes only when device is "meta"."""
    return build_seeded(lambda: PrismaticVLA(d, oft), _reinit, device, dtype, seed)


@torch.no_grad()
def _reinit(model: nn.Module) -> None:
    """Deterministic small random weights (transformers' init depends on init flags); 1-D
    parameters (norm scales, DINOv2 layer scales) are 1 so that signal flows."""
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.zero_()
        elif p.ndim == 1:
            p.fill_(1.0)
        else:
            p.normal_(0.0, 0.02)
