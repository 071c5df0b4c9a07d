"""The pi0 module tree, named as lerobot 0.4.4's `PI0Pytorch` (openpi's PyTorch port), so that
its `model.safetensors` loads by name (`vlabench/models/pi0/checkpoint.py`):

  paligemma_with_expert.paligemma      transformers PaliGemmaForConditionalGeneration
                                       (SigLIP vision tower, linear projector, Gemma LM)
  paligemma_with_expert.gemma_expert   transformers GemmaForCausalLM without token embeddings
  state_proj, action_in_proj, action_out_proj, action_time_mlp_in, action_time_mlp_out

Built from transformers' building blocks on the sizes of `Pi0Dims`; vlabench runs the layers
itself (`expert.py`, `vlabench/models/decoder.py`), so the stock modules' forwards are unused.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import GemmaConfig, GemmaForCausalLM, PaliGemmaConfig, SiglipVisionConfig
from transformers import PaliGemmaForConditionalGeneration

from vlabench.models.pi0.dims import Pi0Dims
from vlabench.models.random_weights import build_seeded


def gemma_config(d: Pi0Dims, hidden: int, mlp: int) -> GemmaConfig:
    cfg = GemmaConfig(
        vocab_size=d.vocab_size, hidden_size=hidden, intermediate_size=mlp,
        num_hidden_layers=d.llm_layers, num_attention_heads=d.llm_heads,
        num_key_value_heads=d.llm_kv_heads, head_dim=d.head_dim, rms_norm_eps=d.rms_eps,
        rope_theta=d.rope_theta, hidden_activation="gelu_pytorch_tanh", max_position_embeddings=8192,
        pad_token_id=0, bos_token_id=2, eos_token_id=1)
    cfg._attn_implementation = "sdpa"
    return cfg


def paligemma_config(d: Pi0Dims) -> PaliGemmaConfig:
    vision = SiglipVisionConfig(
        hidden_size=d.siglip_hidden, intermediate_size=d.siglip_mlp,
        num_hidden_layers=d.siglip_layers, num_attention_heads=d.siglip_heads,
        image_size=d.image_size, patch_size=d.patch_size, projection_dim=d.llm_hidden,
        hidden_act="gelu_pytorch_tanh", vision_use_head=False)
    cfg = PaliGemmaConfig(vision_config=vision, text_config=gemma_config(d, d.llm_hidden, d.llm_mlp),
                          image_token_index=d.vocab_size, projection_dim=d.llm_hidden,
                          vocab_size=d.vocab_size)
    cfg._attn_implementation = "sdpa"
    cfg.vision_config._attn_implementation = "sdpa"
    cfg.text_config._attn_implementation = "sdpa"
    return cfg


class PaliGemmaWithExpert(nn.Module):
    def __init__(self, d: Pi0Dims):
        super().__init__()
        self.paligemma = PaliGemmaForConditionalGeneration(paligemma_config(d))
        self.gemma_expert = GemmaForCausalLM(gemma_config(d, d.expert_hidden, d.expert_mlp))
        self.gemma_expert.model.embed_tokens = None


class Pi0Model(nn.Module):
    """pi0's parameters (see the module docstring); `dims` records the sizes."""

    def __init__(self, d: Pi0Dims):
        super().__init__()
        self.dims = d
        self.paligemma_with_expert = PaliGemmaWithExpert(d)
        w = d.expert_hidden
        self.state_proj = nn.Linear(d.max_state_dim, w)
        self.action_in_proj = nn.Linear(d.max_action_dim, w)
        self.action_out_proj = nn.Linear(w, d.max_action_dim)
        self.action_time_mlp_in = nn.Linear(2 * w, w)
        self.action_time_mlp_out = nn.Linear(w, w)

    # the pieces vlabench's loops read
    @property
    def vision_tower(self) -> nn.Module:
        return self.paligemma_with_expert.paligemma.model.vision_tower

    @property
    def projector(self) -> nn.Module:
        return self.paligemma_with_expert.paligemma.model.multi_modal_projector

    @property
    def prefix_lm(self) -> nn.Module:
        """PaliGemma's Gemma (a GemmaModel: embed_tokens, layers, norm, rotary_emb)."""
        return self.paligemma_with_expert.paligemma.model.language_model

    @property
    def expert(self) -> nn.Module:
        return self.paligemma_with_expert.gemma_expert.model


def build_random_pi0(d: Pi0Dims, device: str, dtype: torch.dtype, seed: int = 0) -> Pi0Model:
    """Random weights on `device` (shapes only on "meta"); deterministic for a seed."""
    return build_seeded(lambda: Pi0Model(d), _reinit, device, dtype, seed)


@torch.no_grad()
def _reinit(model: nn.Module) -> None:
    """Small normal weights and zero biases; norm scales: SigLIP's LayerNorms multiply by w (set
    to 1), Gemma's RMSNorms by 1 + w (set to 0.1, so that the scale is exercised)."""
    for name, p in model.named_parameters():
        if name.endswith("bias"):
            p.zero_()
        elif p.ndim == 1:
            p.fill_(1.0 if "vision_tower" in name else 0.1)
        else:
            p.normal_(0.0, 0.02)
