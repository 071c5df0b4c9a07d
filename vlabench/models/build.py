"""Model config -> policy: one code path, three builds.

- `size: tiny`, `checkpoint: null`: the architecture with small widths, random weights.
- `size: full`, `checkpoint: null`: full-size random weights, on the GPU when there is one,
  otherwise on the meta device (exact shapes, no memory: FLOPs only, no latency or actions).
- `checkpoint: <HF id | local dir | {suite: HF id}>`: the published weights, names remapped
  by `vlabench.models.checkpoint`; the architecture (depth, widths, vocabulary, RMSNorm epsilon,
  image size, towers) is the checkpoint's config.json, `size` is not used, and `dims` overrides
  (`+model.dims.chunk=...`) apply on top.
"""

from __future__ import annotations

from typing import Any

import torch

from vlabench.core.config import cfg_get
from vlabench.core.errors import ConfigError
from vlabench.core.pruning import Pruner
from vlabench.models.dims import FULL, dims_for
from vlabench.models.policy import PrismaticPolicy, identity_stats
from vlabench.models.prismatic import build_random
from vlabench.models.suite_io import SuiteIO
from vlabench.models.tokenizer import WordTokenizer

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_device(device: str | None) -> str:
    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"run.device={device} but no CUDA device is available; use run.device=cpu")
    return str(device)


def build_settings(cfg: Any, device: str | None) -> tuple[str, str, dict[str, Any]]:
    """(device, size, `model.dims` overrides) of a model config; CPU thread count applied."""
    dev = resolve_device(device)
    threads = cfg_get(cfg, "threads")
    if threads and dev == "cpu":
        torch.set_num_threads(int(threads))
    size = str(cfg_get(cfg, "size", "tiny"))
    if size not in ("tiny", "full"):
        raise ConfigError(f"model.size must be tiny or full, got {size!r}")
    return dev, size, dict(cfg_get(cfg, "dims", {}) or {})


def model_dtype(cfg: Any, dev: str) -> torch.dtype:
    """`model.dtype`, or float32 on the CPU / meta device and bfloat16 on a GPU."""
    return DTYPES[str(cfg_get(cfg, "dtype") or ("float32" if dev == "cpu" else "bfloat16"))]


def build_policy(cls: type[PrismaticPolicy], cfg: Any, pruner: Pruner | None,
                 suite_cfg: Any, device: str | None) -> PrismaticPolicy:
    dev, size, overrides = build_settings(cfg, device)
    oft = cls.model_name == "openvla-oft"
    name = str(cfg_get(cfg, "name", cls.model_name))
    ckpt = cfg_get(cfg, "checkpoint")
    suite_name = str(cfg_get(suite_cfg, "name", "") or "")
    unnorm_key = cfg_get(suite_cfg, "unnorm_key")
    deviations: list[str] = []
    if ckpt is None:
        d = dims_for(size, overrides)
        if dev == "cpu" and size == "full":
            dev = "meta"
            deviations.append("full-size random weights on the meta device: FLOPs and shapes only")
        dtype = model_dtype(cfg, dev)
        model = build_random(d, oft, dev, dtype, seed=int(cfg_get(cfg, "seed", 0)))
        tokenizer = WordTokenizer()
        stats = {"action": identity_stats(d.action_dim), "proprio": identity_stats(d.proprio_dim, False)}
        deviations.append(f"random weights ({size}); no checkpoint")
        deviations.append("stand-in word tokenizer (Llama-2 tokenizer files need the checkpoint)")
    else:
        from vlabench.models.checkpoint import load_checkpoint, resolve_checkpoint

        path = resolve_checkpoint(ckpt, suite_name, name)
        dtype = model_dtype(cfg, dev)
        model, d, tokenizer, all_stats = load_checkpoint(path, FULL, oft, dev, dtype, overrides)
        stats = pick_stats(all_stats, unnorm_key, suite_name)
    try:
        io = SuiteIO.from_suite(suite_cfg)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    return cls(model, d, pruner, tokenizer, stats, dev, dtype, cfg=cfg or {}, deviations=deviations,
               io=io)


def pick_stats(all_stats: dict[str, Any], key: str | None, suite: str) -> dict[str, Any]:
    """The normalisation statistics of the unnorm key (also tried: with/without `_no_noops`)."""
    tries = [k for k in (key, suite, f"{suite}_no_noops") if k]
    tries += [k.removesuffix("_no_noops") for k in tries]
    for k in tries:
        if k in all_stats:
            return all_stats[k]
    if len(all_stats) == 1:
        return next(iter(all_stats.values()))
    raise ConfigError(f"unnorm key {key!r} not in the checkpoint's statistics: {sorted(all_stats)}")


def build_openvla_oft(cfg: Any = None, pruner: Pruner | None = None, suite_cfg: Any = None,
                      device: str | None = "auto") -> PrismaticPolicy:
    from vlabench.models.openvla_oft import OpenVLAOFTPolicy

    return build_policy(OpenVLAOFTPolicy, cfg, pruner, suite_cfg, device)


def build_openvla(cfg: Any = None, pruner: Pruner | None = None, suite_cfg: Any = None,
                  device: str | None = "auto") -> PrismaticPolicy:
    from vlabench.models.openvla import OpenVLAPolicy

    return build_policy(OpenVLAPolicy, cfg, pruner, suite_cfg, device)
