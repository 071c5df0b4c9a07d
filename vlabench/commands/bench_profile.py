"""`vlabench bench --fit-profile FILE.yaml`: a latency profile from measured calls on this device.

Runs `bench.calls` calls of the chosen pruner and of `pruner=none` on the same weights,
alternating, on synthetic observations (warm-up excluded), records each model call's executed
LLM and vision FLOPs and its lat_total_ms, and fits L = a + b F_llm + c F_vision by least squares
(vlabench.metrics.latency_model). `timing.latency=profile:FILE.yaml` reads the file back.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from vlabench.core.errors import ConfigError
from vlabench.metrics.latency_model import LatencyProfile, fit, write_profile


def fit_profile(cfg: Any, path: Path) -> LatencyProfile:
    from vlabench.commands.bench import _start
    from vlabench.core.pruning import Pruner
    from vlabench.core.registry import build_plugin
    from vlabench.models.synthetic import synthetic_episode
    from vlabench.records.machine import machine

    if path.suffix not in (".yaml", ".yml"):
        raise ConfigError(f"--fit-profile {path}: valid: a file name ending in .yaml")
    n = int((cfg.get("bench") or {}).get("calls", 20))
    pruner = build_plugin(cfg, "pruner")
    policy = build_plugin(cfg, "model", pruner=pruner, suite_cfg=cfg.suite, device=cfg.run.device)
    if policy.device == "meta":
        raise ConfigError("--fit-profile measures latency: the model must run (a tiny model, or a "
                          "GPU for full size); valid: model=<name>-tiny, or run.device=cuda")
    policies = [policy]
    if cfg.pruner.name != "none":
        policies.append(type(policy)(policy.model, policy.dims, Pruner(), policy.tokenizer,
                                     policy.norm_stats, policy.device, policy.dtype, cfg=cfg.model,
                                     io=policy.io))
    obs = synthetic_episode(n, seed=int((cfg.get("bench") or {}).get("seed", 0)))
    warm = int(cfg.model.get("warmup_calls", 1) or 0)
    for p in policies:
        _start(p, obs, warm)
    llm, vision, latency = [], [], []
    for o in obs:
        for p in policies:
            out = p.act(o)
            if out.stats.source != "model":
                continue
            by = p.last_flops_by_stage
            llm.append(by.get("llm", 0.0))
            vision.append(by.get("vision", 0.0))
            latency.append(float(out.stats.latency_ms["total"]))
    meta = {"model": cfg.model.name, "pruners": sorted({cfg.pruner.name, "none"}),
            "device": str(policy.device), "machine": machine(policy.device),
            "flops": "executed (the policy's last_flops_by_stage)",
            "latency": "lat_total_ms of model calls (vision + pruner + llm + action head)",
            "source": "vlabench bench --fit-profile",
            "fitted_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    profile = fit(llm, vision, latency, path.stem, meta)
    write_profile(path, profile)
    print(f"latency profile {path}: L = {profile.a_ms:.4g} ms + {profile.b_ms_per_tflop:.4g} ms/TFLOP "
          f"x LLM + {profile.c_ms_per_tflop:.4g} ms/TFLOP x vision ({len(latency)} calls, rms "
          f"{profile.meta['rms_ms']:.3g} ms); use timing.latency=profile:{path}")
    return profile
