"""Prismatic's fused vision backbone and projector, from transformers building blocks.

Facts (OpenVLA `prismatic/models/backbones/vision/dinosiglip_vit.py` and the HF export
`modeling_prismatic.py`): each 224 px image goes through DINOv2-L/14-reg4 and SigLIP-So400m/14;
both towers return the patch tokens (prefix tokens dropped) of their second-to-last block
(timm `get_intermediate_layers(n={depth - 2})`, unnormalised), concatenated per patch
(1024 + 1152 = 2176 channels, 256 patches). DINOv2 sees ImageNet-normalised pixels, SigLIP
pixels normalised with mean = std = 0.5; the 6-channel input stacks the two. The fused MLP
projector is fc1 (2176 -> 4 x 2176) GELU fc2 (-> LLM width) GELU fc3 (LLM width -> LLM width).

The last block of each tower is kept (the checkpoint has it) but not run: its output is
discarded by the published code, so running it would only inflate latency and FLOPs.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import (
    Dinov2WithRegistersConfig,
    Dinov2WithRegistersModel,
    SiglipVisionConfig,
    SiglipVisionModel,
)

from vlabench.models.dims import PrismaticDims

DINO_MEAN = (0.485, 0.456, 0.406)
DINO_STD = (0.229, 0.224, 0.225)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)


def dino_config(d: PrismaticDims) -> Dinov2WithRegistersConfig:
    cfg = Dinov2WithRegistersConfig(
        hidden_size=d.dino_hidden, num_hidden_layers=d.dino_layers,
        num_attention_heads=d.dino_heads, mlp_ratio=d.dino_mlp // d.dino_hidden,
        image_size=d.image_size, patch_size=d.patch_size, num_register_tokens=d.dino_registers,
        layer_norm_eps=1e-6, hidden_act="gelu", layerscale_value=1e-5,
    )
    cfg._attn_implementation = "sdpa"
    return cfg


def siglip_config(d: PrismaticDims) -> SiglipVisionConfig:
    cfg = SiglipVisionConfig(
        hidden_size=d.siglip_hidden, num_hidden_layers=d.siglip_layers,
        num_attention_heads=d.siglip_heads, intermediate_size=d.siglip_mlp,
        image_size=d.image_size, patch_size=d.patch_size, layer_norm_eps=1e-6,
        hidden_act="gelu", vision_use_head=True,
    )
    cfg._attn_implementation = "sdpa"
    return cfg


class FusedVisionBackbone(nn.Module):
    """DINOv2 (`featurizer`) + SigLIP (`fused_featurizer`) patch features, concatenated."""

    def __init__(self, d: PrismaticDims):
        super().__init__()
        self.dims = d
        self.featurizer = Dinov2WithRegistersModel._from_config(dino_config(d))
        self.fused_featurizer = SiglipVisionModel._from_config(siglip_config(d))
        self.n_prefix = 1 + d.dino_registers

    def forward(
        self, pixels: torch.Tensor, want_attention: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """pixels (B, 6, H, W) -> features (B, 256, 2176) and, when asked, the SigLIP
        attention probabilities of the feature layer (B, heads, 256, 256)."""
        dino_px, siglip_px = pixels[:, :3], pixels[:, 3:]
        h = self.featurizer.embeddings(dino_px)
        for layer in self.featurizer.encoder.layer[:-1]:
            h = layer(h)
        dino = h[:, self.n_prefix:]

        vm = self.fused_featurizer
        s = vm.embeddings(siglip_px)
        layers = vm.encoder.layers[:-1]
        probs = None
        for i, layer in enumerate(layers):
            if want_attention and i == len(layers) - 1:
                probs = siglip_attention_probs(layer, s)
            s = layer(s, attention_mask=None)
        return torch.cat([dino, s], dim=-1), probs


def siglip_attention_probs(layer: nn.Module, h: torch.Tensor) -> torch.Tensor:
    """Softmax(QK^T / sqrt(d)) of a SigLIP encoder layer on input `h` (a side computation:
    the layer's own output is still computed by its normal kernel)."""
    attn = layer.self_attn
    x = layer.layer_norm1(h)
    b, n, _ = x.shape
    q = attn.q_proj(x).view(b, n, attn.num_heads, attn.head_dim).transpose(1, 2)
    k = attn.k_proj(x).view(b, n, attn.num_heads, attn.head_dim).transpose(1, 2)
    return torch.softmax(torch.matmul(q, k.transpose(-1, -2)) * attn.scale, dim=-1, dtype=torch.float32)


class FusedMLPProjector(nn.Module):
    """Prismatic `FusedMLPProjector`: fc1 -> GELU -> fc2 -> GELU -> fc3."""

    def __init__(self, vision_dim: int, llm_dim: int):
        super().__init__()
        self.fc1 = nn.Linear(vision_dim, 4 * vision_dim, bias=True)
        self.fc2 = nn.Linear(4 * vision_dim, llm_dim, bias=True)
        self.fc3 = nn.Linear(llm_dim, llm_dim, bias=True)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc3(self.act(self.fc2(self.act(self.fc1(x)))))
