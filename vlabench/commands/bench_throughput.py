"""`vlabench bench bench.throughput=true`: policy calls per second at batch 1, 2, 4, 8, 16.

B slot views of one policy (`fork`, each with its own pruner and episode state, as run.batch
serves B simulator workers) call the model together through `act_lanes`; every lane sees its
own synthetic episode. The batch sizes are interleaved round by round in one process (round r
runs every size, in an order rotated by r) so machine drift spreads over all of them; each
batched call's wall time (CUDA synchronised by the call's clock) gives calls/s = B / time.
These are throughput figures: a batched call's time is not the per-call latency the papers
print (that is `vlabench bench`, at batch 1). "pruner share" is the part of a batched call spent
in the pruners' hooks, which run per sample (a loop over the lanes). The result is also saved
as the throughput record `vlabench plan` reads (vlabench.records.throughput).
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

from vlabench.core.errors import ConfigError

DEFAULT_BATCHES = (1, 2, 4, 8, 16)


def batch_sizes(b: Any) -> list[int]:
    raw = b.get("batches") or DEFAULT_BATCHES
    sizes = list(raw) if not isinstance(raw, int) else [raw]
    if not sizes or any(not isinstance(s, int) or isinstance(s, bool) or not 1 <= s <= 256 for s in sizes):
        raise ConfigError(f"bench.batches={sizes!r} is invalid; valid: a list of integers from 1 to 256")
    return sorted(set(sizes))


def bench_throughput(cfg: Any) -> dict[str, Any]:
    from vlabench.commands.bench_status import status, write_out
    from vlabench.core.contracts import TaskInfo
    from vlabench.core.registry import build_plugin
    from vlabench.models.synthetic import synthetic_episode
    from vlabench.records import throughput
    from vlabench.records.machine import machine

    b = cfg.get("bench") or {}
    sizes = batch_sizes(b)
    rounds = int(b.get("calls", 20))
    if "privileged" in list(cfg.model.get("needs") or ()):
        raise ConfigError(f"bench.throughput=true times model calls on synthetic observations; "
                          f"{cfg.model.name} reads the live simulator (valid: a VLA model, e.g. "
                          f"model=openvla-oft-tiny)")
    status(f"building {cfg.model.name} + {cfg.pruner.name} (device {cfg.run.device})")
    policy = build_plugin(cfg, "model", pruner=build_plugin(cfg, "pruner"), suite_cfg=cfg.suite,
                          device=cfg.run.device)
    if policy.device == "meta":
        raise ConfigError(f"bench.throughput=true times real calls: {cfg.model.name} with "
                          f"model.checkpoint=null is on the meta device here (no GPU); use "
                          f"model={cfg.model.name}-tiny, or run it on a GPU")
    if max(sizes) > 1 and not getattr(policy, "batchable", False):
        raise ConfigError(f"bench.throughput=true: {cfg.model.name} has no batched forward; valid: "
                          f"bench.batches=[1]")
    views = [policy] + [policy.fork(build_plugin(cfg, "pruner")) for _ in range(max(sizes) - 1)]
    episodes = [synthetic_episode(rounds + 1, seed=int(b.get("seed", 0)) + lane) for lane in range(len(views))]
    for v, eps in zip(views, episodes):
        v.reset(TaskInfo(0, "bench", eps[0].instruction))
        v.pruner.reset()
    status(f"warm-up, then {rounds} round(s) of batches {sizes} (interleaved)")
    for s in sizes:   # warm-up per size (allocator, kernels); unrecorded
        policy.act_lanes(views[:s], [eps[0] for eps in episodes[:s]])
    times: dict[int, list[float]] = {s: [] for s in sizes}
    kept: dict[int, list[int]] = {s: [] for s in sizes}
    pruner_share: dict[int, list[float]] = {s: [] for s in sizes}   # of the batched call's time
    for r in range(rounds):
        order = sizes[r % len(sizes):] + sizes[: r % len(sizes)]
        for s in order:
            t0 = time.perf_counter()
            outs = policy.act_lanes(views[:s], [eps[r + 1] for eps in episodes[:s]])
            times[s].append(time.perf_counter() - t0)
            kept[s].extend(o.stats.tokens_kept or 0 for o in outs)
            lat = outs[0].stats.latency_ms
            if lat.get("total"):
                pruner_share[s].append(lat.get("pruner", 0.0) / lat["total"])
        status(f"round {r + 1}/{rounds}")
    base = rounds / sum(times[1]) if 1 in times else None
    rows = []
    for s in sizes:
        t = np.asarray(times[s])
        cps = s * len(t) / float(t.sum())
        rows.append({"batch": s, "calls_per_s": cps, "batch_ms_p50": float(np.median(t) * 1e3),
                     "ms_per_call": float(t.sum() / (s * len(t)) * 1e3),
                     "vs_batch_1": cps / base if base else None,
                     "tokens_kept_mean": float(np.mean(kept[s])) if kept[s] else None,
                     "pruner_share": float(np.median(pruner_share[s])) if pruner_share[s] else None})
    result = {"model": cfg.model.name, "pruner": cfg.pruner.name, "device": str(policy.device),
              "dtype": str(policy.dtype).removeprefix("torch."), "rounds": rounds,
              "order": "interleaved: round r runs every batch size, the order rotated by r",
              "load_average": list(os.getloadavg()), "machine": machine(policy.device),
              "throughput": rows}
    write_out(b.get("out"), result)
    print_throughput(result)
    saved = throughput.save(cfg.run.output_dir, result)
    status(f"saved {saved}: `vlabench plan ... run.batch=B` reads it for runs in {cfg.run.output_dir}")
    return result


def print_throughput(result: dict[str, Any]) -> None:
    print(f"{result['model']} + {result['pruner']} on {result['device']} ({result['dtype']}), "
          f"{result['rounds']} interleaved rounds, load average "
          f"{' '.join(f'{x:.2f}' for x in result['load_average'])}")
    print(f"{'batch':>5}  {'calls/s':>9}  {'x batch 1':>9}  {'ms/batch p50':>12}  {'ms/call':>8}  "
          f"{'pruner share':>12}")
    for r in result["throughput"]:
        vs = f"{r['vs_batch_1']:.2f}" if r["vs_batch_1"] else "-"
        share = f"{100 * r['pruner_share']:.1f}%" if r["pruner_share"] is not None else "-"
        print(f"{r['batch']:>5}  {r['calls_per_s']:>9.2f}  {vs:>9}  {r['batch_ms_p50']:>12.1f}  "
              f"{r['ms_per_call']:>8.1f}  {share:>12}")
    print("throughput only: a batched call's time is not the per-call latency the papers print "
          "(`vlabench bench` measures that at batch 1)")
