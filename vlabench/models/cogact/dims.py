"""Sizes of CogACT: the Prismatic VLM of OpenVLA plus the DiT action model.

The VLM is `prism-dinosiglip-224px+7b` (microsoft/CogACT@b174a1b conf/vla.py:97-99), the same
fused DINOv2 + SigLIP towers and Llama-2 7B as `vlabench.models.dims.FULL`. The DiT sizes are
action_model/action_model.py:12-17 (DiT-S 6 x 384 x 4 heads, DiT-B 12 x 768 x 12, DiT-L
24 x 1024 x 16), MLP ratio 4 (models.py:132); the chunk is future_action_window_size + 1 = 16
(vla/cogactvla.py:48, sim_cogact/cogact_policy.py:31) actions of 7 dims; 100 training
diffusion steps with the squaredcos_cap_v2 schedule (action_model.py:30-31).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from vlabench.core.errors import ConfigError
from vlabench.models.dims import FULL, TINY, PrismaticDims, with_overrides

# action_model.py:12-17: name -> (depth, hidden, heads)
DIT_SIZES: dict[str, tuple[int, int, int]] = {
    "DiT-S": (6, 384, 4), "DiT-B": (12, 768, 12), "DiT-L": (24, 1024, 16),
}
DIT_TINY = "DiT-tiny"   # vlabench's tiny build (not an official size)
DIT_TINY_SIZE = (2, 64, 2)


@dataclass(frozen=True)
class CogACTDims(PrismaticDims):
    chunk: int = 16                # future_action_window_size (15) + 1
    dit_layers: int = 12
    dit_hidden: int = 768
    dit_heads: int = 12
    dit_mlp_ratio: float = 4.0
    dit_freq: int = 256            # TimestepEmbedder frequency_embedding_size (models.py:32)
    diffusion_steps: int = 100     # ActionModel diffusion_steps (action_model.py:30)

    layout_fields = ("llm_layers", "chunk", "action_dim", "image_size", "patch_size", "vocab_size",
                     "dit_layers")

    @property
    def dit_mlp(self) -> int:
        return int(self.dit_hidden * self.dit_mlp_ratio)

    @property
    def token_size(self) -> int:
        """Width of the cognition feature (the LLM width, cogactvla.py:235)."""
        return self.llm_hidden


def dit_fields(dit_type: str) -> dict[str, int]:
    """The DiT size fields of `dit_type` (one of DIT_SIZES, or the tiny build's)."""
    table = {**DIT_SIZES, DIT_TINY: DIT_TINY_SIZE}
    if dit_type not in table:
        raise ConfigError(f"model.action_model_type={dit_type!r}; valid: {', '.join(table)}")
    depth, hidden, heads = table[dit_type]
    return {"dit_layers": depth, "dit_hidden": hidden, "dit_heads": heads}


def dit_type_of(d: CogACTDims) -> str:
    """The name of `d`'s DiT size, or "custom"."""
    have = (d.dit_layers, d.dit_hidden, d.dit_heads)
    table = {**DIT_SIZES, DIT_TINY: DIT_TINY_SIZE}
    return next((k for k, v in table.items() if v == have), "custom")


def cogact_dims(size: str, dit_type: str, overrides: dict[str, Any] | None = None,
                base: PrismaticDims | None = None) -> CogACTDims:
    """CogACT dims of the named VLM size (or `base`) and DiT type, then `model.dims` overrides."""
    vlm = base if base is not None else {"full": FULL, "tiny": TINY}[size]
    d = CogACTDims(**{k: getattr(vlm, k) for k in PrismaticDims.__dataclass_fields__})
    d = replace(d, chunk=16, **dit_fields(dit_type))
    return with_overrides(d, overrides)
