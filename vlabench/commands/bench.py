"""`vlabench bench`: latency per stage, FLOPs and tokens kept of N policy calls, no simulator.

The model is built once; the pruner under test and (with `bench.baseline`) `pruner=none` run
on the same weights in the same process, on the same synthetic observation sequence, their calls
interleaved in ABBA order so that machine drift cancels; the speedup of each stage is summarised
over the pairs (median, bootstrap 95% interval, IQR: `bench_pairs`). Warm-up calls (the model
config's `warmup_calls`) run first and are excluded. On the meta device (full size without a GPU) there are no values: the same
calls run for their shapes, and only FLOPs and token counts are reported. Methods with history
(VLA-Pruner's first w calls, SpecPrune's previous-call attention) reach their steady state
after a few calls: `flops_last_call` is that state, `flops_per_call` the mean over the calls.
Each model call's peak memory and CUDA time (`mem_peak_mb`, `cuda_ms`: metrics/memory.py) are
summarised beside the latency when measured; on CUDA one extra, profiled call gives the GPU
kernel time (`cuda_kernel_ms_one_call`, metrics/kernels.py: VLA-Pruner Table 5's "CUDA Time").

Token counts on the meta device (issue 11 item 17): a method whose choices need values (attention,
frames, actions) cannot choose there, and what its meta rule reports (a budget, an upper bound,
stand-in scores) is not what it keeps. So for any pruner other than `none`, the same calls also
run through a real-valued twin (`twin_counts`): the same model, pruner config and sequence
layout at full depth, with the tiny widths and random weights. The method's own code path
decides there, and each call's decoder trace (rows and keys per layer, skipped layers, decode
steps) is priced at full size. Those counts are the reported FLOPs and tokens
(`counts_source`); the meta rule's own figures stay under `meta_rule`.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from vlabench.core.errors import ConfigError
from vlabench.records.machine import machine

ORDER_NOTE = ("interleaved ABBA: pair i runs the pruned policy then the baseline for even i, the "
              "baseline first for odd i, on the same observation and weights")


def _pct(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)),
            "mean": float(a.mean()), "n": int(a.size)}


def _start(policy: Any, observations: list, warmup: int) -> None:
    """Reset, run the warm-up calls (none on the meta device), reset again."""
    from vlabench.core.contracts import TaskInfo

    task = TaskInfo(0, "bench", observations[0].instruction)
    policy.reset(task)
    policy.pruner.reset()
    policy.allow_shape_only_calls = True
    for obs in observations[:1] * (0 if policy.device == "meta" else warmup):
        policy.act(obs)
    policy.reset(task)
    policy.pruner.reset()


class _Calls:
    """The model calls of one policy: their stats and FLOPs by stage."""

    def __init__(self, policy: Any):
        self.policy, self.stats, self.flops_stage, self.served = policy, [], [], 0

    def __call__(self, obs: Any) -> dict[str, float] | None:
        """One policy call; its latency by stage, or None when served without the model."""
        out = self.policy.act(obs)
        if out.stats.source != "model":
            self.served += 1
            return None
        self.stats.append(out.stats)
        self.flops_stage.append(dict(self.policy.last_flops_by_stage))
        return dict(out.stats.latency_ms)


def measure(policy: Any, observations: list, warmup: int, count_once: bool = True) -> dict[str, Any]:
    """Run warm-up calls, then one call per observation; summarise stats (model calls only)."""
    _start(policy, observations, warmup)
    calls = _Calls(policy)
    for obs in observations:
        calls(obs)
    return _summary(calls, observations, count_once)


def measure_interleaved(policy: Any, base: Any, observations: list,
                        warmup: int) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """`measure` of both policies with their calls interleaved in ABBA order (see
    `bench_pairs`): (pruned summary, baseline summary, the pairs' latencies by stage)."""
    from vlabench.commands.bench_pairs import interleave

    _start(policy, observations, warmup)
    _start(base, observations, warmup)
    ours, none = _Calls(policy), _Calls(base)
    pairs = interleave(ours, none, observations)
    return _summary(ours, observations, True), _summary(none, observations, True), pairs


def _summary(calls: _Calls, observations: list, count_once: bool) -> dict[str, Any]:
    policy, stats, flops_stage = calls.policy, calls.stats, calls.flops_stage
    meta = policy.device == "meta"
    if not stats:
        raise ConfigError("the pruner served every call without the model; nothing to measure")
    counted = None
    if count_once:
        policy.count_flops = True
        try:
            counted = policy.act(observations[-1]).stats.flops
        finally:
            policy.count_flops = False
    kernels = None
    if count_once and str(policy.device).startswith("cuda"):
        from vlabench.metrics.kernels import kernel_ms

        kernels = kernel_ms(lambda: policy.act(observations[-1]))[1]
    res: dict[str, Any] = {
        "model_calls": len(stats), "served_without_model": calls.served,
        "cuda_kernel_ms_one_call": kernels,
        "flops_per_call": float(np.mean([s.flops for s in stats])),
        "flops_last_call": float(stats[-1].flops),
        "flops_counted_one_call": counted,
        "flops_by_stage": {k: float(np.mean([f.get(k, 0.0) for f in flops_stage])) for k in flops_stage[0]},
        "tokens_in": stats[0].tokens_in,
        "tokens_kept_mean": float(np.mean([s.tokens_kept for s in stats])),
        "tokens_by_layer_mean": [float(x) for x in np.mean([s.tokens_by_layer for s in stats], 0)],
        "sequence_length": policy.decoder.trace.prefill[0].n_q if policy.decoder.trace.prefill[0] else None,
        "text_tokens": getattr(policy, "last_text_tokens", None),
    }
    # the papers' convention (VLA-Pruner Table 1, FastV): LLM backbone only, multiply-adds
    res["llm_tmacs_papers_convention"] = res["flops_by_stage"]["llm"] / 2 / 1e12
    res["llm_tmacs_last_call"] = flops_stage[-1]["llm"] / 2 / 1e12
    if not meta:
        stages = sorted({k for s in stats for k in s.latency_ms})
        res["latency_ms"] = {k: _pct([s.latency_ms.get(k, 0.0) for s in stats]) for k in stages}
    res.update(_meter_summary(stats))
    return res


def _meter_summary(stats: list[Any]) -> dict[str, Any]:
    """Peak memory (MiB; max and percentiles, and its kind) and CUDA time (ms) of the model
    calls, where they were measured (metrics/memory.py)."""
    out: dict[str, Any] = {}
    mem = [s.mem_peak_mb for s in stats if s.mem_peak_mb is not None]
    if mem:
        kinds = sorted({s.mem_kind for s in stats if s.mem_kind})
        out["mem_peak_mb"] = {**_pct(mem), "max": float(max(mem)), "kind": "/".join(kinds)}
    cuda = [s.cuda_ms for s in stats if s.cuda_ms is not None]
    if cuda:
        out["cuda_ms"] = {**_pct(cuda), "max": float(max(cuda))}
    return out


TWIN_KEYS = ("flops_per_call", "flops_last_call", "flops_by_stage", "tokens_kept_mean",
             "tokens_by_layer_mean", "llm_tmacs_papers_convention", "llm_tmacs_last_call")


def twin_model_cfg(cfg: Any, dims: Any) -> Any:
    """The model config of the real-valued twin of `cfg.model`: tiny widths, float32, no
    checkpoint, and the full model's depth and sequence layout (`dims`)."""
    from omegaconf import OmegaConf

    keys = getattr(type(dims), "layout_fields", ("llm_layers", "chunk", "action_dim", "proprio_dim",
                                                 "image_size", "patch_size", "vocab_size"))
    layout = {k: getattr(dims, k) for k in keys}
    node = OmegaConf.to_container(cfg.model, resolve=True)
    node.update(size="tiny", checkpoint=None, dtype="float32", count_flops=False,
                dims={**dict(node.get("dims") or {}), **layout})
    return OmegaConf.create(node)


def twin_counts(cfg: Any, policy: Any, observations: list) -> dict[str, Any]:
    """Run `observations` through the real-valued twin with a fresh pruner of the same config;
    price each model call at the full model's dims (`policy.dims`)."""
    from omegaconf import OmegaConf

    from vlabench.core.registry import build_plugin

    tcfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    tcfg.model = twin_model_cfg(cfg, policy.dims)
    pruner = build_plugin(tcfg, "pruner")
    twin = build_plugin(tcfg, "model", pruner=pruner, suite_cfg=cfg.suite, device="cpu")
    twin.flops_dims = policy.dims
    res = measure(twin, observations, 0, count_once=False)
    return {**{k: res[k] for k in TWIN_KEYS}, "twin_model_calls": res["model_calls"]}


def bench_from_config(cfg: Any) -> dict[str, Any]:
    import torch

    from vlabench.core.pruning import Pruner
    from vlabench.models.synthetic import synthetic_episode

    b = cfg.get("bench") or {}
    n = int(b.get("calls", 20))
    if n <= 0:
        raise ConfigError(f"bench.calls must be a positive integer, got {n}")
    from vlabench.core.registry import build_plugin

    pruner = build_plugin(cfg, "pruner")
    policy = build_plugin(cfg, "model", pruner=pruner, suite_cfg=cfg.suite, device=cfg.run.device)
    obs = synthetic_episode(n, seed=int(b.get("seed", 0)))
    warm = int(cfg.model.get("warmup_calls", 1) or 0)
    result: dict[str, Any] = {
        "model": cfg.model.name, "pruner": cfg.pruner.name, "device": _device_name(policy.device),
        "model_size": cfg.model.get("size"), "dtype": str(policy.dtype).removeprefix("torch."),
        "parameters": int(sum(p.numel() for p in policy.model.parameters())),
        "attn_implementation": policy.attn_implementation, "calls": n, "warmup_calls_excluded": warm,
        "text_tokens_exact": bool(getattr(policy.tokenizer, "exact", False)),
        "deviations": list(policy.deviations), "torch": torch.__version__, "host": platform.node(),
        "machine": machine(policy.device),
    }
    base = None
    if b.get("baseline", True) and cfg.pruner.name != "none":
        base = type(policy)(policy.model, policy.dims, Pruner(), policy.tokenizer, policy.norm_stats,
                            policy.device, policy.dtype, cfg=cfg.model, io=policy.io)
        ours, result["baseline"], pairs = measure_interleaved(policy, base, obs, warm)
        result.update(ours)
    else:
        result.update(measure(policy, obs, warm))
    result["counts_source"] = "exact shapes" if policy.device != "meta" else "fixed (no pruning)"
    if policy.device == "meta" and cfg.pruner.name != "none":
        twin = twin_counts(cfg, policy, obs)
        result["meta_rule"] = {k: result[k] for k in TWIN_KEYS}
        result.update(twin)
        result["counts_source"] = ("the method's code path on a real-valued twin (full depth and layout, "
                                   "tiny widths, random weights), priced at full size")
    if base is not None:
        result["speedup"] = _speedup(result["baseline"], result, pairs)
        if "latency_ms" in result:
            result["timing"] = {"order": ORDER_NOTE, "pairs": len(pairs)}
            result["pairs_ms"] = pairs
    out = b.get("out")
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(result, indent=2) + "\n")
    from vlabench.commands.bench_table import print_result

    print_result(result)
    return result


def _speedup(base: dict[str, Any], new: dict[str, Any],
             pairs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """FLOPs ratios (pruned / baseline) and latency speedups (baseline / pruned): of the p50s,
    and per interleaved pair by stage (`bench_pairs.pair_ratios`)."""
    from vlabench.commands.bench_pairs import pair_ratios

    out: dict[str, Any] = {"flops_ratio": new["flops_per_call"] / base["flops_per_call"],
                           "flops_ratio_last_call": new["flops_last_call"] / base["flops_last_call"]}
    if "latency_ms" in base and "latency_ms" in new:
        out["latency_p50"] = base["latency_ms"]["total"]["p50"] / new["latency_ms"]["total"]["p50"]
        if pairs:
            out["latency_per_pair"] = pair_ratios(pairs)
    return out


def _device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return f"{device} ({torch.cuda.get_device_name(device)})"
    return device
