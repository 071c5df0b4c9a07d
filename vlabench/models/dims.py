"""Sizes of the Prismatic/OpenVLA architecture: the published full size and a tiny variant.

Full-size facts (OpenVLA paper; prismatic `vit_large_patch14_reg4_dinov2` and
`vit_so400m_patch14_siglip_224` timm definitions; Llama-2-7B config):
DINOv2-L/14 with 4 registers (1024 wide, 24 blocks, 16 heads, MLP 4096, layer scale), SigLIP
So400m/14 (1152 wide, 27 blocks, 16 heads, MLP 4304, exact GELU as timm's default), 224 px
images -> 16x16 = 256 patches per image; fused feature 1024 + 1152 = 2176; Llama-2-7B (4096
wide, 32 layers, 32 heads, MLP 11008, vocabulary 32000 padded to 32064, RMSNorm eps 1e-5).
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class PrismaticDims:
    dino_hidden: int = 1024
    dino_layers: int = 24
    dino_heads: int = 16
    dino_mlp: int = 4096
    dino_registers: int = 4
    siglip_hidden: int = 1152
    siglip_layers: int = 27
    siglip_heads: int = 16
    siglip_mlp: int = 4304
    image_size: int = 224
    patch_size: int = 14
    llm_hidden: int = 4096
    llm_layers: int = 32
    llm_heads: int = 32
    llm_kv_heads: int = 32
    llm_mlp: int = 11008
    vocab_size: int = 32064        # 32000 + pad_to_multiple_of 64
    pad_to_multiple_of: int = 64
    rms_eps: float = 1e-5
    max_positions: int = 4096
    rope_theta: float = 10000.0
    action_dim: int = 7
    chunk: int = 8                 # OFT: NUM_ACTIONS_CHUNK for LIBERO
    proprio_dim: int = 8           # OFT: eef pos (3) + axis-angle (3) + gripper qpos (2)
    head_blocks: int = 2           # OFT L1 regression head: MLPResNet blocks
    n_action_bins: int = 256       # OpenVLA discrete action bins

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def patches(self) -> int:
        return self.grid * self.grid

    @property
    def vision_dim(self) -> int:
        return self.dino_hidden + self.siglip_hidden

    @property
    def head_hidden(self) -> int:
        return self.llm_hidden


FULL = PrismaticDims()

# Same architecture (both towers, 256 patches per 224 px image, vocabulary, heads), small widths.
TINY = replace(
    FULL,
    dino_hidden=64, dino_layers=2, dino_heads=2, dino_mlp=128,
    siglip_hidden=64, siglip_layers=2, siglip_heads=2, siglip_mlp=128,
    llm_hidden=256, llm_layers=4, llm_heads=4, llm_kv_heads=4, llm_mlp=688,
)

SIZES = {"full": FULL, "tiny": TINY}


def dims_for(size: str, overrides: dict | None = None) -> PrismaticDims:
    """The named size, with optional field overrides from the model config."""
    base = SIZES[size]
    return replace(base, **(overrides or {}))
