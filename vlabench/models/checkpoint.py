"""Loading a published OpenVLA / OpenVLA-OFT checkpoint directory onto our module tree.

Reads the directory the HF export writes (config.json, safetensors shards, dataset statistics,
tokenizer; for OFT also the action-head and proprio-projector files). Sizes come from
config.json, then the `model.dims` overrides; OFT's head widths and depth from the head files'
shapes. Names are remapped by `vlabench.models.checkpoint_names`. Every problem is one line
(ConfigError).

Details: docs/models.md#checkpoint
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from vlabench.core.errors import ConfigError
from vlabench.models.checkpoint_names import OURS_ONLY, remap
from vlabench.models.checkpoint_spec import cached_snapshot, download_command, hf_cache_dir, looks_local
from vlabench.models.dims import (
    PrismaticDims,
    PublishedConfigError,
    dims_from_published,
    with_overrides,
)

INDEX = "model.safetensors.index.json"


# ---------------------------------------------------------------------------- resolution
def no_weights_hint(model_name: str) -> str:
    """Commands that work without the published weights (each one tested to run on a CPU)."""
    from vlabench.core import registry

    base = model_name.removesuffix("-tiny")
    tiny = f"{base}-tiny"
    parts = []
    if tiny in registry.entries("model"):
        parts.append(f"model={tiny} runs episodes (random weights)")
    parts.append(f"`vlabench bench model={base} model.checkpoint=null` gives the full-size FLOPs and "
                 f"tokens kept")
    return "or, without weights: " + ", and ".join(parts)


def resolve_checkpoint(spec: Any, suite: str, model_name: str) -> Path:
    """A local directory for `spec` (a path, an HF id, or a {suite: HF id} map)."""
    hint = no_weights_hint(model_name)
    if hasattr(spec, "items"):
        if suite not in spec:
            raise ConfigError(f"model {model_name!r} has no checkpoint for suite {suite!r} "
                              f"(known: {', '.join(sorted(spec))}); pass one with "
                              f"model.checkpoint=<HF id or local directory>; {hint}")
        spec = spec[suite]
    spec = str(spec)
    p = Path(spec).expanduser()
    if p.is_dir():
        return p
    if looks_local(spec):
        if p.exists():
            raise ConfigError(f"checkpoint {spec} of model {model_name!r} is a file, not a directory; "
                              f"model.checkpoint takes the directory holding config.json; {hint}")
        raise ConfigError(f"checkpoint directory not found: {spec} (model.checkpoint of {model_name!r}); "
                          f"pass an existing directory; {hint}")
    cached = cached_snapshot(spec)
    if cached is not None:
        return cached
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(spec, cache_dir=hf_cache_dir(), etag_timeout=10))
    except Exception as e:
        why = _download_failure(e)
        raise ConfigError(f"checkpoint {spec!r} of model {model_name!r} is not in the Hugging Face cache "
                          f"and could not be downloaded ({why}); fetch it on a machine with network "
                          f"access with `{download_command(spec)}` (same HF_HOME), or pass a local "
                          f"directory with model.checkpoint=/path/to/dir; {hint}") from None


def _download_failure(e: Exception) -> str:
    """Why a download failed, in a few words."""
    names = {c.__name__ for c in type(e).__mro__}
    if "RepositoryNotFoundError" in names or "GatedRepoError" in names:
        return "no such public repository: check the id, or log in with `hf auth login`"
    if "ImportError" in names:
        return "huggingface_hub is not installed"
    return "no network?" if names & {"LocalEntryNotFoundError", "ConnectionError", "OfflineModeIsEnabled"} \
        else type(e).__name__


# ---------------------------------------------------------------------------- reading
def read_config(path: Path) -> dict[str, Any]:
    f = path / "config.json"
    if not f.is_file():
        raise ConfigError(f"checkpoint directory {path} has no config.json (not an OpenVLA HF export)")
    return _read_json(f)


def _read_json(f: Path) -> dict[str, Any]:
    """The JSON object in `f`; anything else is a one-line ConfigError."""
    try:
        data = json.loads(f.read_text())
    except (OSError, ValueError) as e:
        raise ConfigError(f"{f} is not valid JSON: {_first_line(e)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{f} does not hold a JSON object")
    return data


def checkpoint_dims(path: Path, cfg: dict[str, Any], base: PrismaticDims,
                    heads: dict[str, dict[str, torch.Tensor]] | None = None,
                    overrides: dict[str, Any] | None = None) -> PrismaticDims:
    """config.json's architecture, OFT head widths from the head files, then `overrides`."""
    try:
        d = dims_from_published(cfg, base)
    except PublishedConfigError as e:
        raise ConfigError(f"{path / 'config.json'}: {e}") from None
    if heads:
        head, proprio = heads["action_head"], heads["proprio_projector"]
        blocks = {k.split(".")[2] for k in head if k.startswith("model.mlp_resnet_blocks.")}
        if "model.fc2.weight" in head and "fc1.weight" in proprio:
            d = replace(d, action_dim=int(head["model.fc2.weight"].shape[0]), head_blocks=len(blocks),
                        proprio_dim=int(proprio["fc1.weight"].shape[1]))
    return with_overrides(d, overrides)


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e).strip() else type(e).__name__


def _load_file(f: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(f))
    except Exception as e:
        raise ConfigError(f"cannot read {f}: {_first_line(e)}") from None


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """All parameters: the shards `model.safetensors.index.json` lists (each name where the index
    says), else `model.safetensors`, else every `*.safetensors` file."""
    index = path / INDEX
    if index.is_file():
        weight_map = _read_json(index).get("weight_map")
        if not isinstance(weight_map, dict):
            raise ConfigError(f"{index} has no readable weight_map")
        missing = sorted({s for s in weight_map.values() if not (path / s).is_file()})
        if missing:
            raise ConfigError(f"checkpoint {path}: shard(s) {', '.join(missing)} listed in {INDEX} "
                              f"are missing (incomplete download?)")
        sd: dict[str, torch.Tensor] = {}
        for shard in sorted(set(weight_map.values())):
            sd.update(_load_file(path / shard))
        absent = sorted(set(weight_map) - set(sd))
        if absent:
            raise ConfigError(f"checkpoint {path}: {len(absent)} parameter(s) of {INDEX} are in no "
                              f"shard, e.g. {absent[0]}")
        return sd
    single = path / "model.safetensors"
    files = [single] if single.is_file() else sorted(path.glob("*.safetensors"))
    if not files:
        raise ConfigError(f"checkpoint directory {path} has no {INDEX} and no *.safetensors files")
    sd = {}
    for f in files:
        sd.update(_load_file(f))
    return sd


def read_head(path: Path, stem: str) -> dict[str, torch.Tensor]:
    """An OFT component file (`<stem>--<step>_checkpoint.pt`), DDP's `module.` dropped; exactly
    one must exist (openvla-oft `find_checkpoint_file`, openvla_utils.py:201-227)."""
    files = sorted(f for f in path.iterdir()
                   if f.name.startswith(f"{stem}--") and f.name.endswith("checkpoint.pt"))
    if len(files) != 1:
        found = f"{len(files)}: {', '.join(f.name for f in files)}" if files else "none"
        raise ConfigError(f"OFT checkpoint {path} needs exactly one {stem}--*_checkpoint.pt file "
                          f"(found {found})")
    try:
        sd = torch.load(files[0], map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConfigError(f"cannot read {files[0]}: {_first_line(e)}") from None
    return {k.removeprefix("module."): v for k, v in sd.items()}


def read_norm_stats(path: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """Dataset statistics: `dataset_statistics.json` (OFT), else the `norm_stats` of config.json
    (`cfg`, as `read_config` parsed it)."""
    f = path / "dataset_statistics.json"
    if f.exists():
        return _read_json(f)
    stats = cfg.get("norm_stats")
    if stats:
        return stats
    raise ConfigError(f"checkpoint {path} has no dataset_statistics.json nor config.json norm_stats")


# ---------------------------------------------------------------------------- loading
def load_checkpoint(path: Path, base: PrismaticDims, oft: bool, device: str, dtype: torch.dtype,
                    overrides: dict[str, Any] | None = None,
                    reader: Callable[[Path], dict[str, torch.Tensor]] = read_safetensors):
    """(model, dims, tokenizer, norm_stats) from a published checkpoint directory."""
    from vlabench.models.prismatic import PrismaticVLA
    from vlabench.models.tokenizer import HFTokenizer

    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"checkpoint directory not found: {path}")
    cfg = read_config(path)
    heads = {s: read_head(path, s) for s in ("action_head", "proprio_projector")} if oft else None
    d = checkpoint_dims(path, cfg, base, heads, overrides)
    stats = read_norm_stats(path, cfg)
    published = reader(path)
    for stem, sd in (heads or {}).items():
        published.update({f"{stem}.{k}": v for k, v in sd.items()})
    try:
        ours = remap(published)
    except KeyError as e:
        raise ConfigError(f"checkpoint {path}: {e.args[0]}") from None
    with torch.device("meta"):
        model = PrismaticVLA(d, oft)
    model = materialise(path, ours, model, device, dtype)
    try:
        tokenizer = HFTokenizer(path)
    except Exception as e:
        raise ConfigError(f"checkpoint {path}: cannot load its tokenizer ({type(e).__name__})") from None
    return model, d, tokenizer, stats


def materialise(path: Path, ours: dict[str, torch.Tensor], model: torch.nn.Module, device: str,
                dtype: torch.dtype) -> torch.nn.Module:
    """The remapped tensors `ours` loaded into `model` (built on the meta device): vlabench's own
    modules (OURS_ONLY) default to zeros, names and shapes are checked; on `device` in `dtype`."""
    expected = model.state_dict()
    for name in OURS_ONLY:
        ours.setdefault(name, torch.zeros(expected[name].shape))
    _check_names_and_shapes(path, ours, expected)
    model.load_state_dict({k: v.to(dtype) for k, v in ours.items()}, strict=True, assign=True)
    _reset_rotary(model, device)
    return model.to(device=device, dtype=dtype).eval()


def _check_names_and_shapes(path: Path, ours: dict[str, torch.Tensor],
                            expected: dict[str, torch.Tensor]) -> None:
    missing = sorted(set(expected) - set(ours))
    extra = sorted(set(ours) - set(expected))
    if missing or extra:
        raise ConfigError(f"checkpoint {path} does not match the architecture of its config.json: "
                          f"{len(missing)} missing (e.g. {missing[:2]}), {len(extra)} unexpected "
                          f"(e.g. {extra[:2]})")
    bad = [(k, tuple(ours[k].shape), tuple(v.shape)) for k, v in expected.items()
           if tuple(ours[k].shape) != tuple(v.shape)]
    if bad:
        k, got, want = bad[0]
        raise ConfigError(f"checkpoint {path}: {len(bad)} tensor(s) differ in shape from its "
                          f"config.json's architecture, e.g. {k}: {got} in the files, {want} expected")


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
