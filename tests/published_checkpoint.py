"""Writes checkpoint directories in the published OpenVLA / OpenVLA-OFT layout from one of our
models (tests): config.json as the HF export writes it, sharded safetensors with
`model.safetensors.index.json`, dataset_statistics.json, a word-level tokenizer, and for OFT
`action_head--150000_checkpoint.pt` / `proprio_projector--150000_checkpoint.pt` with DDP's
`module.` prefix. Names come from `checkpoint_names.unmap` (the inverse of the loader's remap)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from vlabench.models.checkpoint_names import DINO, unmap
from vlabench.models.dims import PrismaticDims, published_config

WORDS = "In : What action should the robot take to pick up the black bowl ? Out".split()
STATS = {"libero_spatial_no_noops": {
    "action": {"q01": [-0.5] * 7, "q99": [0.5] * 7, "mask": [True] * 6 + [False]},
    "proprio": {"q01": [-1.0] * 8, "q99": [1.0] * 8, "mask": [True] * 8}}}
STEP = 150000


def source_model(d: PrismaticDims, oft: bool, seed: int = 0):
    """A random float32 model that the published layout can hold exactly (DINOv2 class-token
    position row zero, as timm's no_embed_class has it), with non-trivial norm/scale weights."""
    from vlabench.models.prismatic import build_random

    model = build_random(d, oft, "cpu", torch.float32, seed=seed)
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and not name.endswith("bias"):
                p.mul_(1 + 0.1 * torch.randn(p.shape, generator=g))
        model.vision_backbone.featurizer.embeddings.position_embeddings[:, 0].zero_()
    return model


def write_tokenizer(path: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{w: 100 + i for i, w in enumerate(WORDS)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    tok.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>",
         "unk_token": "<unk>"}))


def write_published(path: Path, model, d: PrismaticDims, oft: bool, shards: int = 2,
                    config: dict[str, Any] | None = None,
                    stats: dict[str, Any] | None = None) -> dict[str, torch.Tensor]:
    """Write `model` to `path` in the published layout; returns the published state dict."""
    from safetensors.torch import save_file

    path.mkdir(parents=True, exist_ok=True)
    pub = {k: v.detach().contiguous().clone() for k, v in unmap(model.state_dict()).items()}
    heads = {s: {f"module.{k[len(s) + 1:]}": pub.pop(k) for k in list(pub) if k.startswith(s + ".")}
             for s in ("action_head", "proprio_projector")}
    names = sorted(pub)
    weight_map = {}
    for i in range(shards):
        fname = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {k: pub[k] for k in names[i::shards]}
        save_file(part, str(path / fname), metadata={"format": "pt"})
        weight_map.update({k: fname for k in part})
    total = sum(v.numel() * v.element_size() for v in pub.values())
    (path / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": total}, "weight_map": weight_map}, indent=2))
    (path / "config.json").write_text(json.dumps(config or published_config(d), indent=2))
    (path / "dataset_statistics.json").write_text(json.dumps(stats or STATS))
    write_tokenizer(path)
    if oft:
        for stem, sd in heads.items():
            assert sd, stem
            torch.save(sd, path / f"{stem}--{STEP}_checkpoint.pt")
    assert any(k.startswith(DINO) for k in pub)
    return pub
