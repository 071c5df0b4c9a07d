"""Loading a CogACT checkpoint directory (the layout of the CogACT/CogACT-* HF repositories).

microsoft/CogACT@b174a1b vla/load.py:119-216: `config.json` ({"vla": {"base_vlm": ...}}),
`dataset_statistics.json` (q01/q99/mask per unnorm key), and exactly one `checkpoints/*.pt`
whose "model" holds the Prismatic VLM's `vision_backbone` (dino_featurizer / siglip_featurizer,
timm names), `projector` (nn.Sequential 0/2/4), `llm_backbone` (`llm.` + transformers Llama)
and the `action_model` (vla/cogactvla.py:218-253). Those names are mapped onto the OpenVLA HF
export's (`prismatic_to_export`), then onto ours by `checkpoint_names.remap`. The DiT size is
read from the action model's shapes; a `model.action_model_type` that disagrees is an error.
The Llama-2 tokenizer: the directory's files, else `model.tokenizer` (an HF id).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from vlabench.core.errors import ConfigError
from vlabench.models.cogact.dims import (
    DIT_SIZES,
    DIT_TINY,
    DIT_TINY_SIZE,
    CogACTDims,
    cogact_dims,
)
from vlabench.models.dims import FULL, TINY

# base_vlm ids -> VLM sizes (conf/vla.py:99; the tiny id names vlabench's tiny towers and LLM)
BASE_VLMS = {"prism-dinosiglip-224px+7b": FULL, "vlabench-tiny-dinosiglip": TINY}
PARTS = ("vision_backbone", "projector", "llm_backbone", "action_model")
_PROJ = {"0": "fc1", "2": "fc2", "4": "fc3"}
_TOWERS = {"dino_featurizer.": "featurizer.", "siglip_featurizer.": "fused_featurizer."}


def prismatic_to_export(sd: dict[str, dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The .pt's per-part state dicts -> the OpenVLA HF export's names (+ `action_model.`)."""
    out: dict[str, torch.Tensor] = {}
    for k, t in sd["vision_backbone"].items():
        tower = next((p for p in _TOWERS if k.startswith(p)), None)
        if tower is None:
            raise ConfigError(f"unexpected vision_backbone parameter {k!r} (expected dino_featurizer.* / "
                              f"siglip_featurizer.*)")
        out["vision_backbone." + _TOWERS[tower] + k[len(tower):]] = t
    for k, t in sd["projector"].items():
        idx, _, rest = k.removeprefix("projector.").partition(".")
        if idx not in _PROJ:
            raise ConfigError(f"unexpected projector parameter {k!r}")
        out[f"projector.{_PROJ[idx]}.{rest}"] = t
    for k, t in sd["llm_backbone"].items():
        out["language_model." + k.removeprefix("llm.")] = t
    out.update({"action_model." + k: t for k, t in sd["action_model"].items()})
    return out


def export_to_prismatic(pub: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Inverse of `prismatic_to_export` (tests write checkpoints in the published layout)."""
    inv_t, inv_p = {v: k for k, v in _TOWERS.items()}, {v: k for k, v in _PROJ.items()}
    sd: dict[str, dict[str, torch.Tensor]] = {p: {} for p in PARTS}
    for k, t in pub.items():
        if k.startswith("vision_backbone."):
            rest = k.removeprefix("vision_backbone.")
            tower = next(p for p in inv_t if rest.startswith(p))
            sd["vision_backbone"][inv_t[tower] + rest[len(tower):]] = t
        elif k.startswith("projector."):
            name, _, rest = k.removeprefix("projector.").partition(".")
            sd["projector"][f"projector.{inv_p[name]}.{rest}"] = t
        elif k.startswith("language_model."):
            sd["llm_backbone"]["llm." + k.removeprefix("language_model.")] = t
        else:
            sd["action_model"][k.removeprefix("action_model.")] = t
    return sd


def _read_json(f: Path) -> dict[str, Any]:
    if not f.is_file():
        raise ConfigError(f"CogACT checkpoint {f.parent} has no {f.name}")
    try:
        return json.loads(f.read_text())
    except ValueError as e:
        raise ConfigError(f"{f} is not valid JSON: {str(e).splitlines()[0]}") from None


def read_parts(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    files = sorted((path / "checkpoints").glob("*.pt"))
    if len(files) != 1:
        raise ConfigError(f"CogACT checkpoint {path} needs exactly one checkpoints/*.pt (found "
                          f"{len(files)}{': ' + ', '.join(f.name for f in files) if files else ''})")
    try:
        blob = torch.load(files[0], map_location="cpu", weights_only=True)
    except Exception as e:
        raise ConfigError(f"cannot read {files[0]}: {type(e).__name__}") from None
    sd = blob.get("model") if isinstance(blob, dict) else None
    if not isinstance(sd, dict):
        raise ConfigError(f"{files[0]} holds no 'model' state dict")
    missing = [p for p in PARTS if p not in sd]
    if missing:
        raise ConfigError(f"{files[0]} lacks {', '.join(missing)} (found {', '.join(sorted(sd))}; a CogACT "
                          f"checkpoint holds {', '.join(PARTS)})")
    return sd


def dit_size_of(action_model: dict[str, torch.Tensor], want: str | None, where: Path) -> dict[str, int]:
    """(depth, hidden, heads) of the checkpoint's DiT, checked against `model.action_model_type`."""
    w = action_model.get("net.x_embedder.linear.weight")
    blocks = {k.split(".")[2] for k in action_model if k.startswith("net.blocks.")}
    table = {**DIT_SIZES, DIT_TINY: DIT_TINY_SIZE}
    found = next((n for n, (dp, h, _) in table.items()
                  if w is not None and (dp, h) == (len(blocks), int(w.shape[0]))), None)
    shape = f"{len(blocks)} blocks x width {None if w is None else int(w.shape[0])}"
    if found is None:
        raise ConfigError(f"{where}: the action model ({shape}) is no known DiT size; valid: "
                          + ", ".join(f"{n} ({dp} x {h})" for n, (dp, h, _) in DIT_SIZES.items()))
    if want and want != found:
        raise ConfigError(f"{where}: model.action_model_type={want} but the checkpoint's action model is "
                          f"{found} ({shape}); set model.action_model_type={found} (or null)")
    return {"dit_layers": table[found][0], "dit_hidden": table[found][1], "dit_heads": table[found][2]}


def load_cogact(path: Path, device: str, dtype: torch.dtype, overrides: dict[str, Any] | None,
                dit_type: str | None, tokenizer_id: str | None):
    """(model, dims, tokenizer, all statistics) from a CogACT checkpoint directory."""
    from vlabench.models.checkpoint import materialise
    from vlabench.models.checkpoint_names import remap
    from vlabench.models.cogact.model import CogACTVLA

    cfg = _read_json(path / "config.json").get("vla") or {}
    base = cfg.get("base_vlm")
    if base not in BASE_VLMS:
        raise ConfigError(f"{path / 'config.json'}: vla.base_vlm {base!r} is not supported; valid: "
                          f"{', '.join(BASE_VLMS)}")
    stats = _read_json(path / "dataset_statistics.json")
    parts = read_parts(path)
    size = dit_size_of(parts["action_model"], dit_type, path)
    d: CogACTDims = cogact_dims("full", "DiT-B", {**size, **(overrides or {})}, base=BASE_VLMS[base])
    pub = prismatic_to_export(parts)
    action = {k: pub.pop(k) for k in [k for k in pub if k.startswith("action_model.")]}
    try:
        ours = {**remap(pub), **action}
    except KeyError as e:
        raise ConfigError(f"checkpoint {path}: {e.args[0]}") from None
    with torch.device("meta"):
        model = CogACTVLA(d)
    model = materialise(path, ours, model, device, dtype)
    return model, d, _tokenizer(path, tokenizer_id), stats


def _tokenizer(path: Path, tokenizer_id: str | None):
    from vlabench.models.tokenizer import HFTokenizer

    local = any((path / f).is_file() for f in ("tokenizer.json", "tokenizer.model", "tokenizer_config.json"))
    src = path if local else tokenizer_id
    if not src:
        raise ConfigError(f"CogACT checkpoint {path} has no tokenizer files and model.tokenizer is null")
    try:
        return HFTokenizer(src)
    except Exception as e:
        raise ConfigError(f"cannot load the Llama-2 tokenizer from {src} ({type(e).__name__}); it is gated: "
                          f"`hf auth login` then `hf download {src}`, or copy its tokenizer files into "
                          f"{path}") from None
