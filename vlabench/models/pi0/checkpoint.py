"""pi0 checkpoints in lerobot's layout (`lerobot/pi0_libero`-style directory):

- config.json: lerobot's PI0Config (`type: pi0`, `paligemma_variant`, `action_expert_variant`,
  `chunk_size`, `num_inference_steps`, `max_state_dim`, ...); `vlabench_dims` (written by
  `save_lerobot_layout` for the tiny test sizes) overrides the variants' sizes;
- model.safetensors (or shards): `PI0Pytorch`'s parameters, with or without a leading "model."
  (lerobot 0.4 names; lerobot 0.3's `paligemma.language_model.model.*` names are mapped too);
- normalisation statistics: lerobot 0.4's `policy_preprocessor*normalizer*.safetensors`
  (`observation.state.mean/std`, `action.mean/std`), else openpi's `norm_stats.json`
  (anywhere below the directory), else lerobot 0.3's buffers inside model.safetensors;
- the PaliGemma tokenizer files, else `model.tokenizer` (default google/paligemma-3b-pt-224).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch

from vlabench.core.errors import ConfigError
from vlabench.models.checkpoint import _check_names_and_shapes, _load_file, _read_json, read_safetensors
from vlabench.models.dims import with_overrides
from vlabench.models.pi0.dims import Pi0Dims, dims_from_lerobot

_VISION_OURS = "paligemma.model.vision_tower."
_VISION_THEIRS = "paligemma.model.vision_tower.vision_model."
# lerobot 0.3 / transformers < 4.52 PaliGemma names -> lerobot 0.4 names
_OLD = (("paligemma.language_model.model.", "paligemma.model.language_model."),
        ("paligemma.language_model.lm_head.", "paligemma.lm_head."),
        ("paligemma.vision_tower.", "paligemma.model.vision_tower."),
        ("paligemma.multi_modal_projector.", "paligemma.model.multi_modal_projector."))
_TIED = "paligemma_with_expert.paligemma.lm_head.weight"
STAND_IN = "stand-in"   # model.tokenizer=stand-in: the word tokenizer of random builds
_NORM_BUFFERS = ("normalize_inputs.", "normalize_targets.", "unnormalize_outputs.")


def to_lerobot_names(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k.replace(_VISION_OURS, _VISION_THEIRS): v for k, v in sd.items()}


def from_lerobot_names(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out = {}
    for k, v in sd.items():
        k = k.removeprefix("model.")
        if k.startswith(_NORM_BUFFERS):
            continue
        for old, new in _OLD:
            k = k.replace(old, new)
        if k.startswith("time_mlp_"):   # openpi's pi0.5 naming of the action-time MLP
            k = "action_" + k
        out[k.replace(_VISION_THEIRS, _VISION_OURS)] = v
    return out


def read_config(path: Path) -> dict[str, Any]:
    f = path / "config.json"
    if not f.is_file():
        raise ConfigError(f"checkpoint directory {path} has no config.json (not a lerobot pi0 export)")
    cfg = _read_json(f)
    if cfg.get("type", "pi0") != "pi0":
        raise ConfigError(f"checkpoint {path} is a lerobot {cfg.get('type')!r} policy, not pi0")
    return cfg


def checkpoint_dims(cfg: dict[str, Any], overrides: dict[str, Any] | None) -> Pi0Dims:
    d = dims_from_lerobot(cfg)
    sizes = cfg.get("vlabench_dims")
    if sizes:
        d = dataclasses.replace(d, **{k: v for k, v in sizes.items()
                                      if k in {f.name for f in dataclasses.fields(Pi0Dims)}})
    return with_overrides(d, overrides)


def _stats_pair(flat: dict[str, Any], prefix: str) -> dict[str, list[float]] | None:
    mean, std = flat.get(f"{prefix}.mean"), flat.get(f"{prefix}.std")
    if mean is None or std is None:
        return None
    return {"mean": [float(x) for x in torch.as_tensor(mean).flatten()],
            "std": [float(x) for x in torch.as_tensor(std).flatten()]}


def read_norm_stats(path: Path, weights: dict[str, torch.Tensor]) -> dict[str, Any]:
    """{"state": {mean, std}, "actions": {mean, std}} (see the module docstring for the sources)."""
    flat: dict[str, Any] = {}
    for f in sorted(path.glob("*normalizer*.safetensors")):
        flat.update(_load_file(f))
    state, actions = _stats_pair(flat, "observation.state"), _stats_pair(flat, "action")
    if state and actions:
        return {"state": state, "actions": actions}
    for f in sorted(path.rglob("norm_stats.json")):
        ns = _read_json(f).get("norm_stats", {})
        if "state" in ns and "actions" in ns:
            return {k: {"mean": ns[k]["mean"], "std": ns[k]["std"]} for k in ("state", "actions")}
    old = {k.removeprefix("model.").split(".", 1)[1].replace("buffer_", "").replace("_", ".", 1): v
           for k, v in weights.items() if k.removeprefix("model.").startswith(_NORM_BUFFERS)}
    state, actions = _stats_pair(old, "observation.state"), _stats_pair(old, "action")
    if state and actions:
        return {"state": state, "actions": actions}
    raise ConfigError(f"checkpoint {path} has no normalisation statistics (looked for "
                      f"*normalizer*.safetensors, norm_stats.json, normalize_* buffers)")


def load_pi0(path: Path, device: str, dtype: torch.dtype, overrides: dict[str, Any] | None,
             tokenizer_id: str | None):
    """(model, dims, tokenizer, norm_stats) from a lerobot-layout pi0 directory."""
    from vlabench.models.checkpoint import _first_line
    from vlabench.models.pi0.inputs import Pi0HFTokenizer
    from vlabench.models.pi0.model import Pi0Model

    path = Path(path)
    cfg = read_config(path)
    d = checkpoint_dims(cfg, overrides)
    published = read_safetensors(path)
    stats = read_norm_stats(path, published)
    ours = from_lerobot_names(published)
    with torch.device("meta"):
        model = Pi0Model(d)
    expected = model.state_dict()
    if _TIED not in ours and "paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight" in ours:
        ours[_TIED] = ours["paligemma_with_expert.paligemma.model.language_model.embed_tokens.weight"]
    _check_names_and_shapes(path, ours, expected)
    # fresh, aligned storage per tensor (file-backed tensors can make CPU kernels sum in another
    # order: ~1e-7 differences from the same weights), one tensor at a time to bound the peak
    weights = {}
    for k in list(ours):
        weights[k] = ours.pop(k).to(dtype).clone()
    model.load_state_dict(weights, strict=True, assign=True)
    _reset_buffers(model, device)
    model = model.to(device=device, dtype=dtype).eval()
    if tokenizer_id == STAND_IN:
        from vlabench.models.pi0.inputs import Pi0WordTokenizer

        return model, d, Pi0WordTokenizer(), stats
    tok_src = str(path) if (path / "tokenizer.model").is_file() or (path / "tokenizer.json").is_file() \
        else (tokenizer_id or "google/paligemma-3b-pt-224")
    try:
        tokenizer = Pi0HFTokenizer(tok_src)
    except Exception as e:
        raise ConfigError(f"pi0 checkpoint {path}: cannot load the PaliGemma tokenizer from "
                          f"{tok_src} ({_first_line(e)}); put tokenizer.model in the directory or "
                          f"set model.tokenizer") from None
    return model, d, tokenizer, stats


def _reset_buffers(model, device: str) -> None:
    """Rebuild the non-persistent buffers assign-loading leaves on the meta device."""
    from transformers.models.gemma.modeling_gemma import GemmaRotaryEmbedding

    for lm in (model.prefix_lm, model.expert):
        lm.rotary_emb = GemmaRotaryEmbedding(lm.config).to(device)
    tok = model.prefix_lm.embed_tokens
    if isinstance(getattr(tok, "embed_scale", None), torch.Tensor):   # transformers 5 (unused here)
        tok.embed_scale = torch.tensor(model.prefix_lm.config.hidden_size ** 0.5)
    emb = model.vision_tower.embeddings
    emb.position_ids = torch.arange(emb.num_positions).expand((1, -1))
    left = [n for n, b in model.named_buffers() if b.device.type == "meta"]
    if left:
        raise RuntimeError(f"buffers left on the meta device after loading: {left}")


def save_lerobot_layout(model, dims: Pi0Dims, stats: dict[str, Any], out: Path) -> Path:
    """Write `model` as a lerobot 0.4 pi0 directory (config.json with `vlabench_dims`,
    model.safetensors, the normaliser statistics): what tests load back and hand to lerobot."""
    from safetensors.torch import save_file

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sd = {k: v.detach().to("cpu").contiguous().clone() for k, v in to_lerobot_names(model.state_dict()).items()}
    save_file(sd, str(out / "model.safetensors"))
    cfg = {"type": "pi0", "paligemma_variant": "gemma_2b", "action_expert_variant": "gemma_300m",
           "chunk_size": dims.chunk, "n_action_steps": dims.chunk,
           "num_inference_steps": dims.flow_steps, "max_state_dim": dims.max_state_dim,
           "max_action_dim": dims.max_action_dim, "tokenizer_max_length": dims.max_prompt_tokens,
           "image_resolution": [dims.image_size, dims.image_size],
           "vlabench_dims": dataclasses.asdict(dims)}
    (out / "config.json").write_text(json.dumps(cfg, indent=1))
    flat = {"observation.state.mean": stats["state"]["mean"], "observation.state.std": stats["state"]["std"],
            "action.mean": stats["actions"]["mean"], "action.std": stats["actions"]["std"]}
    save_file({k: torch.tensor(v, dtype=torch.float32) for k, v in flat.items()},
              str(out / "policy_preprocessor_step_3_normalizer_processor.safetensors"))
    return out
