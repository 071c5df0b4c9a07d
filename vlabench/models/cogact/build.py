"""Model config -> CogACT policy, the three builds of `vlabench/models/build.py`: tiny random
weights (`cogact-tiny`); full size with `checkpoint: null` (the GPU, else the meta device:
shapes and FLOPs); a CogACT checkpoint directory or HF id (`checkpoint.py`)."""

from __future__ import annotations

from typing import Any

from vlabench.core.config import cfg_get
from vlabench.core.errors import ConfigError
from vlabench.core.pruning import Pruner
from vlabench.models.build import build_settings, model_dtype
from vlabench.models.cogact.sampling import sampling_of
from vlabench.models.suite_io import SuiteIO


def stats_for(all_stats: dict[str, Any], key: str | None, suite: str, where: Any) -> dict[str, Any]:
    """The statistics of the unnorm key; LIBERO suites need LIBERO statistics (one line otherwise)."""
    if suite.startswith("libero") and not key:
        have = [k for k in (suite, f"{suite}_no_noops") if k in all_stats]
        if not have:
            raise ConfigError(f"cogact checkpoint {where} has no statistics for {suite} (found "
                              f"{', '.join(sorted(all_stats))}): it was not trained on LIBERO; run a "
                              f"SIMPLER suite or pass model.unnorm_key=<one of those>")
        key = have[0]
    if key is None and len(all_stats) == 1:
        key = next(iter(all_stats))
    if key not in all_stats:
        raise ConfigError(f"unnorm_key {key!r} is not in {where}/dataset_statistics.json; valid: "
                          f"{', '.join(sorted(all_stats))}")
    return all_stats[key]


def build_cogact(cfg: Any = None, pruner: Pruner | None = None, suite_cfg: Any = None,
                 device: str | None = "auto"):
    from vlabench.models.cogact.dims import DIT_TINY, cogact_dims, dit_fields
    from vlabench.models.cogact.policy import CogACTPolicy
    from vlabench.models.policy import identity_stats

    dev, size, overrides = build_settings(cfg, device)
    suite = str(cfg_get(suite_cfg, "name", "") or "")
    try:
        io = SuiteIO.from_suite(suite_cfg)
    except ValueError as e:
        raise ConfigError(str(e)) from None
    sampling, deviations = sampling_of(cfg, suite)
    ckpt = cfg_get(cfg, "checkpoint")
    dit_type = cfg_get(cfg, "action_model_type")
    if dit_type:
        dit_fields(str(dit_type))   # an unknown name: one line with the valid ones
    if ckpt is None:
        d = cogact_dims(size, dit_type or ("DiT-B" if size == "full" else DIT_TINY), overrides)
        if dev == "cpu" and size == "full":
            dev = "meta"
            deviations.append("full-size random weights on the meta device: FLOPs and shapes only")
        from vlabench.models.cogact.model import build_random_cogact
        from vlabench.models.tokenizer import WordTokenizer

        dtype = model_dtype(cfg, dev)
        model = build_random_cogact(d, dev, dtype, seed=int(cfg_get(cfg, "seed", 0)))
        tokenizer, stats = WordTokenizer(), {"action": identity_stats(d.action_dim)}
        deviations += [f"random weights ({size}); no checkpoint",
                       "stand-in word tokenizer (Llama-2 tokenizer files need the checkpoint)"]
    else:
        from vlabench.models.checkpoint import resolve_checkpoint
        from vlabench.models.cogact.checkpoint import load_cogact

        path = resolve_checkpoint(ckpt, suite, str(cfg_get(cfg, "name", "cogact")))
        dtype = model_dtype(cfg, dev)
        model, d, tokenizer, all_stats = load_cogact(path, dev, dtype, overrides, dit_type,
                                                     cfg_get(cfg, "tokenizer"))
        key = cfg_get(cfg, "unnorm_key") or cfg_get(suite_cfg, "unnorm_key")
        stats = stats_for(all_stats, key, suite, path)
    return CogACTPolicy(model, d, pruner, tokenizer, stats, dev, dtype, cfg=cfg or {},
                        deviations=deviations, io=io, sampling=sampling)
