"""Sizes of pi0: the published full size, a tiny variant, and what a lerobot config.json gives.

Full size (openpi `gemma.py: get_config`, lerobot 0.4.4 `modeling_pi0.py:get_gemma_config`):
PaliGemma = SigLIP So400m/14 at 224 px (1152 wide, 27 blocks, 16 heads, MLP 4304, 256 tokens
per image, projected to 2048) + Gemma 2B (2048 wide, 18 layers, 8 heads of 256, one KV head,
MLP 16384, vocabulary 257152); action expert = Gemma 300M (1024 wide, 18 layers, 8 heads of
256, one KV head, MLP 4096). State and actions are padded to 32 dims; chunk 50; 10 Euler steps;
prompt padded to 48 tokens; flow-time embedding periods 4e-3..4.0.
The tiny size keeps every structural fact (three 224 px image slots of 256 patches, one KV
head, the expert reading the prefix KV per layer, the 257152 vocabulary of the checkpoint
layout) with small widths and 4 layers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from vlabench.core.errors import ConfigError
from vlabench.models.dims import PatchGrid, with_overrides


@dataclass(frozen=True)
class Pi0Dims(PatchGrid):
    siglip_hidden: int = 1152
    siglip_layers: int = 27
    siglip_heads: int = 16
    siglip_mlp: int = 4304
    image_size: int = 224
    patch_size: int = 14
    llm_hidden: int = 2048          # PaliGemma's Gemma 2B
    llm_layers: int = 18
    llm_heads: int = 8
    llm_kv_heads: int = 1
    head_dim: int = 256
    llm_mlp: int = 16384
    expert_hidden: int = 1024       # Gemma 300M action expert
    expert_mlp: int = 4096
    vocab_size: int = 257152
    rms_eps: float = 1e-6
    rope_theta: float = 10000.0
    max_state_dim: int = 32
    max_action_dim: int = 32
    chunk: int = 50
    flow_steps: int = 10
    max_prompt_tokens: int = 48
    min_period: float = 4e-3
    max_period: float = 4.0
    action_dim: int = 7             # LIBERO: the first 7 of the 32 output dims
    state_dim: int = 8              # LIBERO: eef pos, axis-angle, gripper qpos
    image_slots: int = 3            # base, left wrist, right wrist (the LIBERO config masks the last)

    # the sequence layout a real-valued twin keeps at tiny widths (`vlabench bench` on meta)
    layout_fields = ("llm_layers", "chunk", "action_dim", "state_dim", "image_size", "patch_size",
                     "vocab_size", "flow_steps", "max_state_dim", "max_action_dim", "max_prompt_tokens")

    @property
    def q_dim(self) -> int:
        return self.llm_heads * self.head_dim

    @property
    def kv_dim(self) -> int:
        return self.llm_kv_heads * self.head_dim


FULL = Pi0Dims()
TINY = replace(FULL, siglip_hidden=32, siglip_layers=2, siglip_heads=2, siglip_mlp=64,
               llm_hidden=64, llm_layers=4, llm_heads=2, llm_kv_heads=1, head_dim=16,
               llm_mlp=128, expert_hidden=32, expert_mlp=64)
SIZES = {"full": FULL, "tiny": TINY}


def pi0_dims(size: str, overrides: dict[str, Any] | None = None) -> Pi0Dims:
    """The named size with `model.dims` overrides; an unknown field is a ConfigError."""
    return with_overrides(SIZES[size], overrides)


# lerobot's PI0Config names the two Gemma sizes by variant (configuration_pi0.py).
VARIANTS = {
    "gemma_2b": dict(llm_hidden=2048, llm_layers=18, llm_mlp=16384, llm_heads=8, llm_kv_heads=1,
                     head_dim=256),
    "gemma_300m": dict(expert_hidden=1024, expert_mlp=4096),
}


def dims_from_lerobot(cfg: dict[str, Any], overrides: dict[str, Any] | None = None) -> Pi0Dims:
    """Sizes from a lerobot pi0 `config.json` (PI0Config fields; unknown variants refused)."""
    d = FULL
    for key in ("paligemma_variant", "action_expert_variant"):
        v = cfg.get(key)
        if v is None:
            continue
        if v not in VARIANTS or (key == "paligemma_variant") != (v == "gemma_2b"):
            raise ConfigError(f"config.json {key}={v!r} is not a pi0 size vlabench knows "
                              f"(paligemma_variant: gemma_2b, action_expert_variant: gemma_300m)")
    res = cfg.get("image_resolution")
    if res is not None:
        d = replace(d, image_size=int(res[0]))
    for ours, theirs in (("chunk", "chunk_size"), ("flow_steps", "num_inference_steps"),
                         ("max_state_dim", "max_state_dim"), ("max_action_dim", "max_action_dim"),
                         ("max_prompt_tokens", "tokenizer_max_length"),
                         ("min_period", "min_period"), ("max_period", "max_period")):
        if cfg.get(theirs) is not None:
            d = replace(d, **{ours: type(getattr(d, ours))(cfg[theirs])})
    return with_overrides(d, overrides)
