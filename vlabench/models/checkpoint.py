"""Loading the published OpenVLA / OpenVLA-OFT checkpoints onto our module tree.

Published layout (OpenVLA HF export `modeling_prismatic.py`, timm 0.9 vision towers; OFT adds
`action_head--<step>_checkpoint.pt` and `proprio_projector--<step>_checkpoint.pt`, saved from
DDP with a `module.` prefix, and `dataset_statistics.json`):

  vision_backbone.featurizer.*        timm ViT-L/14 DINOv2-reg4: cls_token, reg_token,
                                      pos_embed (1, 256, 1024: no_embed_class), patch_embed.proj,
                                      blocks.N.{norm1, attn.qkv, attn.proj, ls1.gamma, norm2,
                                      mlp.fc1, mlp.fc2, ls2.gamma}, norm
  vision_backbone.fused_featurizer.*  timm ViT-So400m/14 SigLIP: pos_embed (1, 256, 1152),
                                      patch_embed.proj, blocks.N.*, norm, attn_pool.{latent, q,
                                      kv, proj, norm, mlp.fc1, mlp.fc2}
  projector.fc1/fc2/fc3               FusedMLPProjector
  language_model.model.* / lm_head    transformers Llama (same names as ours)

`remap()` maps those names onto ours (transformers Dinov2WithRegisters / Siglip modules): fused
qkv projections split into query/key/value, the SigLIP pooling head's q and kv merged into
`in_proj`, timm's patch-only DINOv2 position table padded with a zero row for the class token
(timm adds no position to the class token; transformers adds row 0), layer scales renamed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from vlabench.registry import ConfigError

DINO = "vision_backbone.featurizer."
SIGLIP = "vision_backbone.fused_featurizer."
# our parameters with no published counterpart (unused at inference): filled with zeros
OURS_ONLY = (DINO + "embeddings.mask_token",)

_DINO_BLOCK = {
    "norm1": "norm1", "attn.proj": "attention.o_proj", "ls1.gamma": "layer_scale1.lambda1",
    "norm2": "norm2", "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2", "ls2.gamma": "layer_scale2.lambda1",
}
_SIGLIP_BLOCK = {
    "norm1": "layer_norm1", "attn.proj": "self_attn.out_proj", "norm2": "layer_norm2",
    "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2",
}
_SIGLIP_POOL = {
    "attn_pool.proj": "head.attention.out_proj", "attn_pool.norm": "head.layernorm",
    "attn_pool.mlp.fc1": "head.mlp.fc1", "attn_pool.mlp.fc2": "head.mlp.fc2",
}


def _split3(t: torch.Tensor) -> list[torch.Tensor]:
    return list(torch.chunk(t, 3, dim=0))


def remap(published: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Published parameter names/tensors -> ours. Unknown names raise (nothing is dropped)."""
    out: dict[str, torch.Tensor] = {}
    pending_pool: dict[str, torch.Tensor] = {}
    for name, t in published.items():
        if name.startswith(DINO):
            _dino(name[len(DINO):], t, out)
        elif name.startswith(SIGLIP):
            key = name[len(SIGLIP):]
            if key.startswith(("attn_pool.q.", "attn_pool.kv.")):
                pending_pool[key] = t
            else:
                _siglip(key, t, out)
        elif name.startswith(("projector.", "language_model.", "action_head.", "proprio_projector.")):
            out[name] = t
        else:
            raise KeyError(f"unexpected checkpoint parameter {name!r}")
    for kind in ("weight", "bias"):
        q, kv = pending_pool.get(f"attn_pool.q.{kind}"), pending_pool.get(f"attn_pool.kv.{kind}")
        if q is not None and kv is not None:
            out[SIGLIP + f"head.attention.in_proj_{kind}"] = torch.cat([q, kv], 0)
    return out


def _dino(key: str, t: torch.Tensor, out: dict[str, torch.Tensor]) -> None:
    p = DINO
    simple = {"cls_token": "embeddings.cls_token", "reg_token": "embeddings.register_tokens",
              "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
              "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias",
              "norm.weight": "layernorm.weight", "norm.bias": "layernorm.bias"}
    if key in simple:
        out[p + simple[key]] = t
        return
    if key == "pos_embed":
        out[p + "embeddings.position_embeddings"] = torch.cat([torch.zeros_like(t[:, :1]), t], 1)
        return
    m = re.fullmatch(r"blocks\.(\d+)\.(.+)\.(weight|bias|gamma)", key)
    if not m:
        raise KeyError(f"unexpected DINOv2 parameter {key!r}")
    i, sub, kind = m.groups()
    base = f"{p}encoder.layer.{i}."
    if sub == "attn.qkv":
        for part, x in zip(("q_proj", "k_proj", "v_proj"), _split3(t), strict=True):
            out[f"{base}attention.{part}.{kind}"] = x
        return
    if kind == "gamma":
        out[base + _DINO_BLOCK[f"{sub}.gamma"]] = t
    else:
        out[f"{base}{_DINO_BLOCK[sub]}.{kind}"] = t


def _siglip(key: str, t: torch.Tensor, out: dict[str, torch.Tensor]) -> None:
    p = SIGLIP
    simple = {"patch_embed.proj.weight": "embeddings.patch_embedding.weight",
              "patch_embed.proj.bias": "embeddings.patch_embedding.bias",
              "norm.weight": "post_layernorm.weight", "norm.bias": "post_layernorm.bias",
              "attn_pool.latent": "head.probe"}
    if key in simple:
        out[p + simple[key]] = t
        return
    if key == "pos_embed":
        out[p + "embeddings.position_embedding.weight"] = t[0]
        return
    m = re.fullmatch(r"(attn_pool\.(?:proj|norm|mlp\.fc1|mlp\.fc2))\.(weight|bias)", key)
    if m:
        out[p + f"{_SIGLIP_POOL[m.group(1)]}.{m.group(2)}"] = t
        return
    m = re.fullmatch(r"blocks\.(\d+)\.(.+)\.(weight|bias)", key)
    if not m:
        raise KeyError(f"unexpected SigLIP parameter {key!r}")
    i, sub, kind = m.groups()
    base = f"{p}encoder.layers.{i}."
    if sub == "attn.qkv":
        for part, x in zip(("q_proj", "k_proj", "v_proj"), _split3(t), strict=True):
            out[f"{base}self_attn.{part}.{kind}"] = x
        return
    out[f"{base}{_SIGLIP_BLOCK[sub]}.{kind}"] = t


def strip_module_prefix(sd: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """OFT head files: drop DDP's `module.` and put the component's prefix in front."""
    return {prefix + k.removeprefix("module."): v for k, v in sd.items()}


# ---------------------------------------------------------------------------- resolution
def resolve_checkpoint(spec: Any, suite: str, model_name: str) -> Path:
    """A local directory for `spec` (a path, an HF id, or a {suite: HF id} map)."""
    tiny = model_name if model_name.endswith("-tiny") else f"{model_name}-tiny"
    hint = (f"use model={tiny} (random weights) or model.checkpoint=null (full-size shapes and "
            f"FLOPs)")
    if hasattr(spec, "items"):
        if suite not in spec:
            raise ConfigError(f"model {model_name!r} has no checkpoint for suite {suite!r} "
                              f"(known: {', '.join(sorted(spec))}); {hint}")
        spec = spec[suite]
    spec = str(spec)
    p = Path(spec).expanduser()
    if p.is_dir():
        return p
    try:
        from huggingface_hub import snapshot_download

        try:
            return Path(snapshot_download(spec, local_files_only=True))
        except Exception:
            return Path(snapshot_download(spec, etag_timeout=10))
    except Exception:
        raise ConfigError(f"checkpoint {spec!r} of model {model_name!r} is not available offline "
                          f"and could not be downloaded; {hint}") from None


# ---------------------------------------------------------------------------- loading
def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    files = sorted(path.glob("*.safetensors"))
    if not files:
        raise ConfigError(f"no *.safetensors files in checkpoint directory {path}")
    sd: dict[str, torch.Tensor] = {}
    for f in files:
        sd.update(load_file(str(f)))
    return sd


def _head_file(path: Path, stem: str) -> dict[str, torch.Tensor]:
    files = sorted(path.glob(f"{stem}--*checkpoint.pt"))
    if not files:
        raise ConfigError(f"OFT checkpoint {path} has no {stem}--*_checkpoint.pt file")
    return torch.load(files[-1], map_location="cpu", weights_only=True)


def read_norm_stats(path: Path) -> dict[str, Any]:
    """Dataset statistics: `dataset_statistics.json` (OFT), else config.json `norm_stats`."""
    f = path / "dataset_statistics.json"
    if f.exists():
        return json.loads(f.read_text())
    cfg = path / "config.json"
    if cfg.exists():
        stats = json.loads(cfg.read_text()).get("norm_stats")
        if stats:
            return stats
    raise ConfigError(f"checkpoint {path} has no dataset_statistics.json nor config.json norm_stats")


def load_checkpoint(path: Path, d, oft: bool, device: str, dtype: torch.dtype,
                    reader: Callable[[Path], dict[str, torch.Tensor]] = _read_safetensors):
    """(model, tokenizer, norm_stats) from a published checkpoint directory."""
    from vlabench.models.prismatic import PrismaticVLA
    from vlabench.models.tokenizer import HFTokenizer

    published = reader(path)
    if oft:
        published.update(strip_module_prefix(_head_file(path, "action_head"), "action_head."))
        published.update(strip_module_prefix(_head_file(path, "proprio_projector"), "proprio_projector."))
    ours = remap(published)
    with torch.device("meta"):
        model = PrismaticVLA(d, oft)
    expected = model.state_dict()
    for name in OURS_ONLY:
        ours.setdefault(name, torch.zeros(expected[name].shape))
    missing = sorted(set(expected) - set(ours))
    extra = sorted(set(ours) - set(expected))
    if missing or extra:
        raise ConfigError(f"checkpoint {path} does not match the architecture: "
                          f"missing {missing[:3]}..., unexpected {extra[:3]}...")
    model.load_state_dict({k: v.to(dtype) for k, v in ours.items()}, strict=True, assign=True)
    _reset_rotary(model, device)
    model = model.to(device=device, dtype=dtype).eval()
    tokenizer = HFTokenizer(path)
    stats = read_norm_stats(path)
    return model, tokenizer, stats


def _reset_rotary(model, device: str) -> None:
    """Non-persistent buffers stay on the meta device after assign-loading: rebuild them
    (Llama's rotary frequencies, SigLIP's position ids)."""
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    lm = model.language_model.model
    lm.rotary_emb = LlamaRotaryEmbedding(lm.config).to(device)
    emb = model.vision_backbone.fused_featurizer.embeddings
    emb.position_ids = torch.arange(emb.num_positions).expand((1, -1))
    left = [n for n, b in model.named_buffers() if b.device.type == "meta"]
    if left:
        raise RuntimeError(f"buffers left on the meta device after loading: {left}")
