"""`vlabench bench`: latency per stage, FLOPs and tokens kept of N policy calls, no simulator.

The pruner under test and `pruner=none` run on the same weights in one process, their calls
interleaved (ABBA) so machine drift cancels; each stage's speedup is summarised over the pairs
(bench_pairs.py). Warm-up calls are excluded; on the meta device (full size without a GPU) only
FLOPs and token counts are reported, with the method's token choices made on a real-valued twin
at full depth and priced at full size. `total` latency sums vision, pruner, llm and action head
(the papers' model call); `preprocess` is timed beside it. `bench.flops=executed|paper|both`
picks the FLOPs accounting, the published figure always printed beside ours.

Details (twin counts, memory and CUDA time, the accountings): docs/bench.md
"""

from __future__ import annotations

import platform
import time
from typing import Any

import numpy as np

from vlabench.core.config import strict_bool
from vlabench.commands.bench_status import status, write_out  # noqa: F401  (bench.status, as before)
from vlabench.core.errors import ConfigError
from vlabench.records.machine import machine

FLOPS_ACCOUNTINGS = ("executed", "paper", "both")

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


def paper_llm_macs(policy: Any) -> float:
    """The paper accounting of the policy's last call (`llm_paper_macs` of its decoder trace,
    priced at `policy.flops_dims`): LLM prefill multiply-adds as the authors' counters count."""
    from vlabench.models.flops import llm_paper_macs

    d = policy.flops_dims
    return llm_paper_macs(d.llm_hidden, d.llm_mlp, policy.decoder.trace)


def flops_accounting(b: Any) -> str:
    """`bench.flops`: executed (default), paper or both; anything else is a ConfigError."""
    v = str(b.get("flops", "executed") or "executed").strip().lower()
    if v not in FLOPS_ACCOUNTINGS:
        raise ConfigError(f"bench.flops must be one of {', '.join(FLOPS_ACCOUNTINGS)}; got {b.get('flops')!r}")
    return v


class _Calls:
    """The model calls of one policy: their stats and FLOPs by stage (both accountings); each
    call reports its progress (`status`) as `label: call i/total`."""

    def __init__(self, policy: Any, label: str = "", total: int = 0):
        self.policy, self.stats, self.flops_stage, self.served = policy, [], [], 0
        self.paper: list[float] = []
        self.label, self.total, self.done = label, total, 0

    def __call__(self, obs: Any) -> dict[str, float] | None:
        """One policy call; its latency by stage, or None when served without the model."""
        t0 = time.perf_counter()
        out = self.policy.act(obs)
        self.done += 1
        if self.label:
            status(f"{self.label}: call {self.done}/{self.total} ({time.perf_counter() - t0:.1f} s)")
        if out.stats.source != "model":
            self.served += 1
            return None
        self.stats.append(out.stats)
        self.flops_stage.append(dict(self.policy.last_flops_by_stage))
        self.paper.append(paper_llm_macs(self.policy))
        return dict(out.stats.latency_ms)


def measure(policy: Any, observations: list, warmup: int, count_once: bool = True,
            label: str = "") -> dict[str, Any]:
    """Run warm-up calls, then one call per observation; summarise stats (model calls only)."""
    _start(policy, observations, warmup)
    calls = _Calls(policy, label, len(observations))
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
    name = str(getattr(policy.pruner, "name", "") or "pruned")
    ours, none = _Calls(policy, name, len(observations)), _Calls(base, "none", len(observations))
    pairs = interleave(ours, none, observations)
    return _summary(ours, observations, True), _summary(none, observations, True), pairs


def _summary(calls: _Calls, observations: list, count_once: bool) -> dict[str, Any]:
    policy, stats, flops_stage, paper = calls.policy, calls.stats, calls.flops_stage, calls.paper
    meta = policy.device == "meta"
    if not stats:
        raise ConfigError("the pruner served every call without the model; nothing to measure")
    counted = None
    if count_once:
        if calls.label:
            status(f"{calls.label}: one more call under torch's FLOP counter")
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
    # executed LLM FLOPs in multiply-adds (the papers' unit; decode steps, LM head, probes included)
    res["llm_tmacs_papers_convention"] = res["flops_by_stage"]["llm"] / 2 / 1e12
    res["llm_tmacs_last_call"] = flops_stage[-1]["llm"] / 2 / 1e12
    # the paper accounting (LLM prefill layers, C(n) multiply-adds: models/flops.llm_paper_macs)
    res["paper_llm_tmacs_per_call"] = float(np.mean(paper)) / 1e12
    res["paper_llm_tmacs_last_call"] = paper[-1] / 1e12
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
             "tokens_by_layer_mean", "llm_tmacs_papers_convention", "llm_tmacs_last_call",
             "paper_llm_tmacs_per_call", "paper_llm_tmacs_last_call")


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
    res = measure(twin, observations, 0, count_once=False, label="real-valued twin (token counts)")
    return {**{k: res[k] for k in TWIN_KEYS}, "twin_model_calls": res["model_calls"]}


def bench_from_config(cfg: Any) -> dict[str, Any]:
    import torch

    from vlabench.core.pruning import Pruner
    from vlabench.models.synthetic import synthetic_episode

    b = cfg.get("bench") or {}
    if strict_bool("bench.preprocess", b.get("preprocess", False)):
        from vlabench.commands.bench_preprocess import bench_preprocess

        return bench_preprocess(cfg)
    if strict_bool("bench.throughput", b.get("throughput", False)):
        from vlabench.commands.bench_throughput import bench_throughput

        return bench_throughput(cfg)
    n, meta_n = int(b.get("calls", 20)), int(b.get("meta_calls", 2))
    if n <= 0 or meta_n <= 0:
        raise ConfigError(f"bench.calls and bench.meta_calls must be positive integers, got {n} and {meta_n}")
    accounting = flops_accounting(b)
    from vlabench.core.registry import build_plugin

    t0 = time.perf_counter()   # no line before the build: a bad setting stays one line on stderr
    pruner = build_plugin(cfg, "pruner")
    policy = build_plugin(cfg, "model", pruner=pruner, suite_cfg=cfg.suite, device=cfg.run.device)
    # FLOPs and token counts are deterministic on the meta device: a few calls, enough for a
    # method with a warm-start window (VLA-Pruner's w unpruned calls) to reach its steady state
    meta_n = max(meta_n, int(cfg.pruner.get("window") or 0) + 1)
    if policy.device == "meta" and n > meta_n:
        status(f"meta device: {meta_n} call(s) instead of bench.calls={n} (counts only; "
               f"bench.meta_calls={n} to run them all)")
        n = meta_n
    status(f"built {cfg.model.name} + {cfg.pruner.name} on {policy.device} in "
           f"{time.perf_counter() - t0:.1f} s; {n} call(s) each")
    obs = synthetic_episode(n, seed=int(b.get("seed", 0)))
    warm = int(cfg.model.get("warmup_calls", 1) or 0)
    result: dict[str, Any] = {
        "model": cfg.model.name, "pruner": cfg.pruner.name, "device": _device_name(policy.device),
        "model_size": cfg.model.get("size"), "dtype": str(policy.dtype).removeprefix("torch."),
        "parameters": int(sum(p.numel() for p in policy.model.parameters())),
        "attn_implementation": policy.attn_implementation, "calls": n, "warmup_calls_excluded": warm,
        "text_tokens_exact": bool(getattr(policy.tokenizer, "exact", False)),
        "deviations": list(policy.deviations), "torch": torch.__version__, "host": platform.node(),
        "machine": machine(policy.device), "flops_accounting": accounting,
        "published_flops": published_flops(cfg),
    }
    base = None
    if b.get("baseline", True) and cfg.pruner.name != "none":
        base = type(policy)(policy.model, policy.dims, Pruner(), policy.tokenizer, policy.norm_stats,
                            policy.device, policy.dtype, cfg=cfg.model, io=policy.io)
        ours, result["baseline"], pairs = measure_interleaved(policy, base, obs, warm)
        result.update(ours)
    else:
        result.update(measure(policy, obs, warm, label=str(cfg.pruner.name)))
    result["counts_source"] = "exact shapes" if policy.device != "meta" else "fixed (no pruning)"
    result["flops_source"] = ("counted (torch's FlopCounterMode around every call)"
                              if strict_bool("model.count_flops", cfg.model.get("count_flops", False))
                              else "analytic (shape formulas, vlabench/models/flops.py, of the shapes each call ran)")
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
    write_out(b.get("out"), result)
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
    if "llm" in base.get("flops_by_stage", {}) and base.get("llm_tmacs_last_call"):
        out["llm_flops_ratio"] = new["flops_by_stage"]["llm"] / base["flops_by_stage"]["llm"]
        out["llm_flops_ratio_last_call"] = new["llm_tmacs_last_call"] / base["llm_tmacs_last_call"]
    if base.get("paper_llm_tmacs_per_call"):
        out["paper_llm_ratio"] = new["paper_llm_tmacs_per_call"] / base["paper_llm_tmacs_per_call"]
        out["paper_llm_ratio_last_call"] = new["paper_llm_tmacs_last_call"] / base["paper_llm_tmacs_last_call"]
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


# pruner configs that stand for a paper's row other than their own name: (method, variant, (paper, table))
PRESET_ROWS = {
    "efficientvla": ("efficientvla", "", ("specprune-vla", "1")),          # SpecPrune-VLA T1 (L=28, T=112)
    "efficientvla-skip8": ("efficientvla", "", ("vla-pruner", "3")),       # VLA-Pruner T3 "EfficientVLA"
    "efficientvla-nolayer": ("efficientvla", "w/o layer", ("vla-pruner", "3")),
}


def published_flops(cfg: Any) -> list[dict[str, Any]]:
    """The papers' FLOPs % (of their vanilla) for this model family, method and retention, from
    results/reference: [{paper, table, label, flops_pct}], shown beside ours, never as ours.
    A row without a retention matches a config without one (or a PRESET_ROWS preset)."""
    from vlabench.records.files import RecordsError
    from vlabench.report.reference import Reference
    from vlabench.report.runs import model_family

    name = str(cfg.pruner.name)
    if name == "none":
        return []
    method, variant, table = PRESET_ROWS.get(name, (name, "", None))
    r = cfg.pruner.get("retention")
    if r is not None and not isinstance(r, (int, float)):
        return []          # a per-suite or per-reading mapping: no single published row
    ours = None if r is None else round(float(r), 6)
    try:
        ref = Reference.load()
    except RecordsError:   # no reference numbers installed: nothing to show beside ours
        return []
    out = []
    for key, cells in ref.values.items():
        v = cells.get(("", ""), {}).get("flops_pct")
        if v is None or key.method != method or key.variant != variant:
            continue
        if key.model != model_family(str(cfg.model.name)):
            continue
        if table is not None and (key.paper, key.table) != table:
            continue
        if key.retention != ours and not (key.retention is None and name in PRESET_ROWS):
            continue
        out.append({"paper": key.paper, "table": key.table, "label": ref.labels[key], "flops_pct": v})
    return out
