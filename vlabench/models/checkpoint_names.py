"""Published OpenVLA / OpenVLA-OFT parameter names <-> ours: `remap` and its inverse `unmap`.

The published checkpoints use the HF export's names: timm 0.9 DINOv2 / SigLIP towers (layer
scales as `scale_factor`), a fused MLP projector and transformers' Llama; OFT's head files carry
a DDP `module.` prefix. Ours are transformers' Dinov2WithRegisters / Siglip modules, so `remap`
splits the fused qkv projections, merges the SigLIP pooling head's q and kv into `in_proj`, pads
timm's patch-only DINOv2 position table with a zero class-token row and renames the layer
scales; that lets a published checkpoint load onto our module tree unchanged.

Details: docs/models.md#checkpoint_names
"""

from __future__ import annotations

import re

import torch

DINO = "vision_backbone.featurizer."
SIGLIP = "vision_backbone.fused_featurizer."
PASS_THROUGH = ("projector.", "language_model.", "action_head.", "proprio_projector.")
# our parameters with no published counterpart (unused at inference): filled with zeros
OURS_ONLY = (DINO + "embeddings.mask_token",)

_DINO_SIMPLE = {
    "cls_token": "embeddings.cls_token", "reg_token": "embeddings.register_tokens",
    "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
    "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
    "norm.weight": "layernorm.weight", "norm.bias": "layernorm.bias",
}
_DINO_BLOCK = {  # published sub-name of blocks.N -> ours under encoder.layer.N
    "norm1": "norm1", "attn.proj": "attention.o_proj", "norm2": "norm2",
    "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2",
}
_DINO_SCALE = {"ls1": "layer_scale1.lambda1", "ls2": "layer_scale2.lambda1"}
_SIGLIP_SIMPLE = {
    "patch_embed.proj.weight": "embeddings.patch_embedding.weight",
    "patch_embed.proj.bias": "embeddings.patch_embedding.bias",
    "norm.weight": "post_layernorm.weight", "norm.bias": "post_layernorm.bias",
    "attn_pool.latent": "head.probe",
}
_SIGLIP_BLOCK = {
    "norm1": "layer_norm1", "attn.proj": "self_attn.out_proj", "norm2": "layer_norm2",
    "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2",
}
_SIGLIP_POOL = {
    "attn_pool.proj": "head.attention.out_proj", "attn_pool.norm": "head.layernorm",
    "attn_pool.mlp.fc1": "head.mlp.fc1", "attn_pool.mlp.fc2": "head.mlp.fc2",
}
_DINO_POS = "embeddings.position_embeddings"
_SIGLIP_POS = "embeddings.position_embedding.weight"
# per tower: prefix, label in errors, our layer list, our attention module, block table
_DINO_TOWER = (DINO, "DINOv2", "encoder.layer.", "attention.", _DINO_BLOCK)
_SIGLIP_TOWER = (SIGLIP, "SigLIP", "encoder.layers.", "self_attn.", _SIGLIP_BLOCK)


def remap(published: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Published parameter names/tensors -> ours. Unknown names raise KeyError (nothing is dropped)."""
    out: dict[str, torch.Tensor] = {}
    pool: dict[str, torch.Tensor] = {}
    for name, t in published.items():
        if name.startswith(DINO):
            _dino(name[len(DINO):], t, out)
        elif name.startswith(SIGLIP):
            key = name[len(SIGLIP):]
            if key.startswith(("attn_pool.q.", "attn_pool.kv.")):
                pool[key] = t
            else:
                _siglip(key, t, out)
        elif name.startswith(PASS_THROUGH):
            out[name] = t
        else:
            raise KeyError(f"unexpected checkpoint parameter {name!r}")
    for kind in ("weight", "bias"):
        q, kv = pool.get(f"attn_pool.q.{kind}"), pool.get(f"attn_pool.kv.{kind}")
        if q is not None and kv is not None:
            out[SIGLIP + f"head.attention.in_proj_{kind}"] = torch.cat([q, kv], 0)
    return out


def _block(tower: tuple[str, str, str, str, dict[str, str]], key: str, t: torch.Tensor,
           out: dict[str, torch.Tensor]) -> None:
    """A transformer block's `blocks.N.<sub>.(weight|bias)`: the fused qkv split into our q/k/v
    projections, the rest renamed through the tower's block table."""
    prefix, label, layers, attn, table = tower
    m = re.fullmatch(r"blocks\.(\d+)\.(.+)\.(weight|bias)", key)
    if not m or m.group(2) not in (*table, "attn.qkv"):
        raise KeyError(f"unexpected {label} parameter {key!r}")
    i, sub, kind = m.groups()
    base = f"{prefix}{layers}{i}."
    if sub == "attn.qkv":
        for part, x in zip(("q_proj", "k_proj", "v_proj"), torch.chunk(t, 3, dim=0), strict=True):
            out[f"{base}{attn}{part}.{kind}"] = x
    else:
        out[f"{base}{table[sub]}.{kind}"] = t


def _dino(key: str, t: torch.Tensor, out: dict[str, torch.Tensor]) -> None:
    if key in _DINO_SIMPLE:
        out[DINO + _DINO_SIMPLE[key]] = t
        return
    if key == "pos_embed":
        out[DINO + _DINO_POS] = torch.cat([torch.zeros_like(t[:, :1]), t], 1)
        return
    m = re.fullmatch(r"blocks\.(\d+)\.(ls[12])\.scale_factor", key)
    if m:
        out[f"{DINO}encoder.layer.{m.group(1)}.{_DINO_SCALE[m.group(2)]}"] = t
        return
    _block(_DINO_TOWER, key, t, out)


def _siglip(key: str, t: torch.Tensor, out: dict[str, torch.Tensor]) -> None:
    if key in _SIGLIP_SIMPLE:
        out[SIGLIP + _SIGLIP_SIMPLE[key]] = t
        return
    if key == "pos_embed":
        out[SIGLIP + _SIGLIP_POS] = t[0]
        return
    m = re.fullmatch(r"(attn_pool\.(?:proj|norm|mlp\.fc1|mlp\.fc2))\.(weight|bias)", key)
    if m:
        out[SIGLIP + f"{_SIGLIP_POOL[m.group(1)]}.{m.group(2)}"] = t
        return
    _block(_SIGLIP_TOWER, key, t, out)


# ---------------------------------------------------------------------------- inverse
def unmap(ours: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our names/tensors -> the published layout (what the HF export's safetensors and the OFT
    head files hold, heads still with their `action_head.` / `proprio_projector.` prefix).

    `remap(unmap(sd))` gives `sd` back without OURS_ONLY. The DINOv2 class token's position row
    has no published counterpart: it must be zero (ValueError otherwise)."""
    out: dict[str, torch.Tensor] = {}
    qkv: dict[str, dict[str, torch.Tensor]] = {}
    inv = {}   # tower -> (simple names, layer list, attention module, block table), inverted
    for (prefix, _, layers, attn, table), simple in ((_DINO_TOWER, _DINO_SIMPLE),
                                                     (_SIGLIP_TOWER, {**_SIGLIP_SIMPLE, **_SIGLIP_POOL})):
        inv[prefix] = ({v: k for k, v in simple.items()}, layers, attn, {v: k for k, v in table.items()})
    scale = {v: k for k, v in _DINO_SCALE.items()}
    for name, t in ours.items():
        if name in OURS_ONLY:
            continue
        if name.startswith(PASS_THROUGH):
            out[name] = t
            continue
        tower = DINO if name.startswith(DINO) else SIGLIP if name.startswith(SIGLIP) else None
        if tower is None:
            raise KeyError(f"unexpected parameter {name!r}")
        key = name[len(tower):]
        simple, layers, attn, block = inv[tower]
        stem, _, kind = key.rpartition(".")
        if key == _DINO_POS and tower == DINO:
            if torch.count_nonzero(t[:, 0]).item():
                raise ValueError("DINOv2 class-token position row is not zero: the published "
                                 "layout (timm no_embed_class) cannot hold it")
            out[tower + "pos_embed"] = t[:, 1:]
        elif key == _SIGLIP_POS and tower == SIGLIP:
            out[tower + "pos_embed"] = t[None]
        elif key in simple:
            out[tower + simple[key]] = t
        elif stem in simple:  # the pooling head's Linear / LayerNorm
            out[f"{tower}{simple[stem]}.{kind}"] = t
        elif key.startswith("head.attention.in_proj_"):
            d = t.shape[0] // 3
            kind = key.removeprefix("head.attention.in_proj_")
            out[f"{tower}attn_pool.q.{kind}"], out[f"{tower}attn_pool.kv.{kind}"] = t[:d], t[d:]
        elif m := re.fullmatch(rf"{re.escape(layers)}(\d+)\.(.+)", key):
            i, sub = m.groups()
            if tower == DINO and sub in scale:
                out[f"{tower}blocks.{i}.{scale[sub]}.scale_factor"] = t
            elif sub.startswith(attn) and sub.removeprefix(attn)[:6] in ("q_proj", "k_proj", "v_proj"):
                part, _, kind = sub.removeprefix(attn).partition(".")
                qkv.setdefault(f"{tower}blocks.{i}.attn.qkv.{kind}", {})[part] = t
            elif sub.rpartition(".")[0] in block:
                stem, _, kind = sub.rpartition(".")
                out[f"{tower}blocks.{i}.{block[stem]}.{kind}"] = t
            else:
                raise KeyError(f"unexpected parameter {name!r}")
        else:
            raise KeyError(f"unexpected parameter {name!r}")
    for name, parts in qkv.items():
        out[name] = torch.cat([parts["q_proj"], parts["k_proj"], parts["v_proj"]], 0)
    return out
