"""Sizes of the Prismatic/OpenVLA architecture: the published full size, a tiny variant, and the
sizes a checkpoint's `config.json` gives (`dims_from_published`, with its inverse
`published_config`).

Full size: DINOv2-L/14 (4 registers) and SigLIP So400m/14 towers at 224 px (256 patches per
image, fused feature width 2176) feeding Llama-2-7B. Sizes a `config.json` leaves out take
transformers' LlamaConfig defaults, as the published checkpoints did: notably RMSNorm epsilon
1e-6, not the 1e-5 of Llama-2's own params file.

Details: docs/models.md#dims
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from vlabench.core.errors import ConfigError


class PatchGrid:
    """Patches of a square image: `image_size` // `patch_size` per side."""

    image_size: int
    patch_size: int

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def patches(self) -> int:
        return self.grid * self.grid


@dataclass(frozen=True)
class PrismaticDims(PatchGrid):
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
    rms_eps: float = 1e-6          # LlamaConfig default; the published text_config sets none
    max_positions: int = 2048      # LlamaConfig default (llm_max_length 2048 too)
    rope_theta: float = 10000.0
    action_dim: int = 7
    chunk: int = 8                 # OFT: NUM_ACTIONS_CHUNK for LIBERO
    proprio_dim: int = 8           # OFT: eef pos (3) + axis-angle (3) + gripper qpos (2)
    head_blocks: int = 2           # OFT L1 regression head: MLPResNet blocks
    n_action_bins: int = 256       # OpenVLA discrete action bins

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


def with_overrides(d: Any, over: dict[str, Any] | None) -> Any:
    """`d` (any dims dataclass) with the `model.dims` field overrides `over`; an unknown field
    is a ConfigError naming the known ones."""
    over = dict(over or {})
    known = [f.name for f in fields(d)]
    unknown = sorted(set(over) - set(known))
    if unknown:
        raise ConfigError(f"unknown model.dims field(s) {unknown}; known: {', '.join(known)}")
    return replace(d, **over)


def dims_for(size: str, overrides: dict | None = None) -> PrismaticDims:
    """The named size, with optional field overrides from the model config."""
    return with_overrides(SIZES[size], overrides)


# ---------------------------------------------------------------------------- config.json
class PublishedConfigError(ValueError):
    """A config.json vlabench cannot build (one line)."""


# transformers v4.40.1 `LlamaConfig.__init__` defaults (the fields the decoder depends on): what a
# published text_config that leaves a field out means.
LLAMA_DEFAULTS: dict[str, Any] = {
    "model_type": "llama", "vocab_size": 32000, "hidden_size": 4096, "intermediate_size": 11008,
    "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": None,
    "hidden_act": "silu", "max_position_embeddings": 2048, "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0, "rope_scaling": None, "attention_bias": False, "mlp_bias": False,
    "tie_word_embeddings": False,
}
# PrismaticConfig / OpenVLAConfig defaults (configuration_prismatic.py:76-90, 132-138)
PRISMATIC_DEFAULTS: dict[str, Any] = {"pad_to_multiple_of": 64, "n_action_bins": 256}

# configuration_prismatic.py:15-36: vision_backbone_id -> timm ids and image sizes (the fused
# DINOv2 + SigLIP ids only: the one architecture vlabench builds)
FUSED_BACKBONES: dict[str, tuple[tuple[str, str], tuple[int, int]]] = {
    "dinosiglip-vit-so-224px": (("vit_large_patch14_reg4_dinov2.lvd142m", "vit_so400m_patch14_siglip_224"),
                                (224, 224)),
    "dinosiglip-vit-so-384px": (("vit_large_patch14_reg4_dinov2.lvd142m", "vit_so400m_patch14_siglip_384"),
                                (384, 384)),
}
# timm id -> tower sizes (hidden, blocks, heads, MLP, registers, patch). timm 0.9
# `vit_large_patch14_reg4_dinov2` / `vit_so400m_patch14_siglip_*` definitions. The two
# `vlabench-tiny-*` ids name the towers of TINY, so tiny checkpoints in the published layout (tests,
# exports of `model=*-tiny`) go through the same loader as the real ones.
DINO_TOWERS: dict[str, tuple[int, int, int, int, int, int]] = {
    "vit_large_patch14_reg4_dinov2.lvd142m": (1024, 24, 16, 4096, 4, 14),
    "vlabench-tiny-dinov2-reg4": (64, 2, 2, 128, 4, 14),
}
SIGLIP_TOWERS: dict[str, tuple[int, int, int, int, int]] = {
    "vit_so400m_patch14_siglip_224": (1152, 27, 16, 4304, 14),
    "vit_so400m_patch14_siglip_384": (1152, 27, 16, 4304, 14),
    "vlabench-tiny-siglip": (64, 2, 2, 128, 14),
}


def _rope_theta(text: dict[str, Any]) -> float:
    """4.x writes `rope_theta` (+ `rope_scaling`), 5.x `rope_parameters`; only default RoPE is built."""
    params = text.get("rope_parameters") or {}
    if text.get("rope_scaling") or params.get("rope_type", "default") != "default":
        raise PublishedConfigError(f"text_config RoPE scaling {text.get('rope_scaling') or params} "
                                   f"is not supported (default RoPE only)")
    return float(params.get("rope_theta", text.get("rope_theta", LLAMA_DEFAULTS["rope_theta"])))


def _vision(cfg: dict[str, Any]) -> dict[str, int]:
    vid = cfg.get("vision_backbone_id")
    fused = cfg.get("use_fused_vision_backbone")
    if vid not in FUSED_BACKBONES and not (fused and cfg.get("timm_model_ids")):
        raise PublishedConfigError(f"vision_backbone_id {vid!r} is not a fused DINOv2 + SigLIP backbone "
                                   f"(supported: {', '.join(FUSED_BACKBONES)})")
    if fused is False:
        raise PublishedConfigError("use_fused_vision_backbone is false: vlabench builds the fused "
                                   "DINOv2 + SigLIP backbone only")
    # PretrainedConfig sets the json's own fields after PrismaticConfig derives them from the id
    ids, sizes = FUSED_BACKBONES.get(vid, (None, None))
    ids = list(cfg.get("timm_model_ids") or ids)
    sizes = list(cfg.get("image_sizes") or sizes)
    acts = list(cfg.get("timm_override_act_layers") or [None, None])
    if len(ids) != 2 or ids[0] not in DINO_TOWERS or ids[1] not in SIGLIP_TOWERS:
        raise PublishedConfigError(f"timm_model_ids {ids} are not a known DINOv2-reg4 + SigLIP pair "
                                   f"(known: {sorted(DINO_TOWERS)} + {sorted(SIGLIP_TOWERS)})")
    if any(a is not None for a in acts):
        raise PublishedConfigError(f"timm_override_act_layers {acts}: only the towers' own GELU is built")
    if len(sizes) != 2 or sizes[0] != sizes[1]:
        raise PublishedConfigError(f"image_sizes {sizes}: both towers must see the same image size")
    dh, dl, dn, dm, regs, dp = DINO_TOWERS[ids[0]]
    sh, sl, sn, sm, sp = SIGLIP_TOWERS[ids[1]]
    if dp != sp:
        raise PublishedConfigError(f"towers {ids} have different patch sizes ({dp}, {sp})")
    return dict(dino_hidden=dh, dino_layers=dl, dino_heads=dn, dino_mlp=dm, dino_registers=regs,
                siglip_hidden=sh, siglip_layers=sl, siglip_heads=sn, siglip_mlp=sm,
                image_size=int(sizes[0]), patch_size=dp)


def _llm(cfg: dict[str, Any]) -> dict[str, Any]:
    given = cfg.get("text_config") or {}
    if not isinstance(given, dict):
        raise PublishedConfigError("text_config is not a mapping")
    text = {**LLAMA_DEFAULTS, **given}
    if text["model_type"] != "llama":
        raise PublishedConfigError(f"text_config model_type {text['model_type']!r}: only Llama "
                                   f"language models are built")
    for key, want in (("hidden_act", "silu"), ("attention_bias", False), ("mlp_bias", False),
                      ("tie_word_embeddings", False)):
        if text[key] != want:
            raise PublishedConfigError(f"text_config {key}={text[key]!r} is not supported ({want!r} only)")
    heads = int(text["num_attention_heads"])
    hidden = int(text["hidden_size"])
    if text.get("head_dim") not in (None, hidden // heads) or hidden % heads:
        raise PublishedConfigError(f"text_config head_dim {text.get('head_dim')} != hidden_size / heads")
    return dict(llm_hidden=hidden, llm_layers=int(text["num_hidden_layers"]), llm_heads=heads,
                llm_kv_heads=int(text["num_key_value_heads"] or heads),
                llm_mlp=int(text["intermediate_size"]), vocab_size=int(text["vocab_size"]),
                rms_eps=float(text["rms_norm_eps"]),
                max_positions=int(text["max_position_embeddings"]), rope_theta=_rope_theta(text))


def dims_from_published(cfg: dict[str, Any], base: PrismaticDims = FULL) -> PrismaticDims:
    """The architecture an `OpenVLAConfig` / `PrismaticConfig` config.json describes.

    Read: `text_config` over transformers 4.40.1's LlamaConfig defaults (layers, width, heads,
    kv heads, MLP width, vocabulary, RMSNorm epsilon, max positions, RoPE theta), the towers from
    `timm_model_ids` (else derived from `vision_backbone_id`, as PrismaticConfig does),
    `image_sizes`, `pad_to_multiple_of`, `n_action_bins`. Fields config.json does not hold (OFT's
    chunk, action and proprio widths) stay as in `base`.
    """
    top = {**PRISMATIC_DEFAULTS, **{k: cfg[k] for k in PRISMATIC_DEFAULTS if cfg.get(k) is not None}}
    d = replace(base, **_vision(cfg), **_llm(cfg), pad_to_multiple_of=int(top["pad_to_multiple_of"]),
                n_action_bins=int(top["n_action_bins"]))
    if d.vocab_size <= d.pad_to_multiple_of:
        raise PublishedConfigError(f"text_config vocab_size {d.vocab_size} is not larger than "
                                   f"pad_to_multiple_of {d.pad_to_multiple_of}")
    return d


def published_config(d: PrismaticDims) -> dict[str, Any]:
    """config.json as the HF export writes it for `d` (inverse of `dims_from_published`).

    Like transformers' `to_json_file(use_diff=True)`, `text_config` holds only the fields that
    differ from LlamaConfig's defaults (the published one: vocab_size, pad_token_id, torch_dtype).
    """
    dino = (d.dino_hidden, d.dino_layers, d.dino_heads, d.dino_mlp, d.dino_registers, d.patch_size)
    siglip = (d.siglip_hidden, d.siglip_layers, d.siglip_heads, d.siglip_mlp, d.patch_size)
    dino_ids = [k for k, v in DINO_TOWERS.items() if v == dino]
    siglip_ids = [k for k, v in SIGLIP_TOWERS.items()
                  if v == siglip and (k.endswith(f"_{d.image_size}") or k.startswith("vlabench-"))]
    if not dino_ids or not siglip_ids:
        raise PublishedConfigError("no timm ids name these vision tower sizes")
    ids = [dino_ids[0], siglip_ids[0]]
    text = {"model_type": "llama", "vocab_size": d.vocab_size, "hidden_size": d.llm_hidden,
            "intermediate_size": d.llm_mlp, "num_hidden_layers": d.llm_layers,
            "num_attention_heads": d.llm_heads, "num_key_value_heads": d.llm_kv_heads,
            "max_position_embeddings": d.max_positions, "rms_norm_eps": d.rms_eps,
            "rope_theta": d.rope_theta}
    defaults = {**LLAMA_DEFAULTS, "num_key_value_heads": LLAMA_DEFAULTS["num_attention_heads"]}
    diff = {k: v for k, v in text.items() if k == "model_type" or v != defaults[k]}
    diff.update(pad_token_id=32000, torch_dtype="bfloat16")
    vid = next((k for k, (_, sizes) in FUSED_BACKBONES.items() if sizes[0] == d.image_size),
               "dinosiglip-vit-so-224px")
    return {
        "architectures": ["OpenVLAForActionPrediction"], "model_type": "openvla",
        "vision_backbone_id": vid, "llm_backbone_id": "llama2-7b-pure",
        "arch_specifier": "no-align+fused-gelu-mlp", "use_fused_vision_backbone": True,
        "timm_model_ids": ids, "timm_override_act_layers": [None, None],
        "image_sizes": [d.image_size, d.image_size], "image_resize_strategy": "resize-naive",
        "hf_llm_id": "meta-llama/Llama-2-7b-hf", "llm_max_length": 2048, "pad_token_id": 32000,
        "pad_to_multiple_of": d.pad_to_multiple_of, "n_action_bins": d.n_action_bins,
        "output_projector_states": False, "text_config": diff, "torch_dtype": "bfloat16",
        "transformers_version": "4.40.1",
    }
