"""The figures only a GPU gives, in one process (called by scripts/gpu_check.sh; issue 22 item 7).

1. Full-size random-weight OpenVLA-OFT latency per stage and speedup vs `none` (interleaved
   `vlabench bench`) for FastV 50/25/12.5 %, VLA-Pruner 25 %, SpecPrune, each beside its FLOPs
   bound (speedup x FLOPs ratio: 1.0 means the whole FLOPs cut became time).
2. Batched policy calls/s at batch 1/8/16/32 (`bench.throughput`) for none and FastV 25 %.
3. pi0 likewise (latency vs none for FastV 25 %, throughput for none).
4. LIBERO steps/s with 1/4/8 simulator workers rendering on EGL (tiny OFT, run.batch = workers).
`--dry-run`: the same code paths on the CPU with the tiny models and minimal counts, in about
a minute, so the script cannot rot (tests/test_gpu_check.py).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import os
import sys
import tempfile
import time
from pathlib import Path


def compose(args: list[str]):
    from vlabench.launch.compose import compose as _compose

    return _compose(args)


def quiet_call(fn, *a):
    """fn(*a) with its tables kept off stdout (this script prints its own summary)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        return fn(*a)


def latency_section(model: str, device: str, calls: int, pruners: list[list[str]]) -> None:
    from vlabench.commands.bench import bench_from_config

    print(f"\n== {model}: latency per call (ms, p50) and speedup vs none, {calls} interleaved pairs")
    print(f"{'pruner':<28} {'total':>8} {'llm':>8} {'vision':>8} {'speedup':>8} {'FLOPs ratio':>11} "
          f"{'bound used':>10}")
    for extra in pruners:
        cfg = compose([f"model={model}", f"run.device={device}", f"bench.calls={calls}", *extra])
        r = quiet_call(bench_from_config, cfg)
        lat = r.get("latency_ms", {})
        sp = r.get("speedup", {})
        total = lat.get("total", {}).get("p50", float("nan"))
        speed = sp.get("latency_p50", float("nan")) if sp else 1.0
        ratio = sp.get("flops_ratio", 1.0) if sp else 1.0
        label = " ".join(extra) or "pruner=none"
        print(f"{label:<28} {total:>8.1f} {lat.get('llm', {}).get('p50', float('nan')):>8.1f} "
              f"{lat.get('vision', {}).get('p50', float('nan')):>8.1f} {speed:>8.2f} {ratio:>11.3f} "
              f"{speed * ratio:>10.2f}")


def throughput_section(model: str, device: str, rounds: int, batches: list[int], pruners: list[list[str]],
                       records: str) -> None:
    """Calls/s by batch; each result is also saved as `vlabench plan`'s throughput record under `records`."""
    from vlabench.commands.bench_throughput import bench_throughput

    for extra in pruners:
        cfg = compose([f"model={model}", f"run.device={device}", f"bench.calls={rounds}", f"run.output_dir={records}",
                       f"bench.batches=[{','.join(map(str, batches))}]", *extra])
        r = quiet_call(bench_throughput, cfg)
        print(f"\n== {model} {' '.join(extra) or 'pruner=none'}: calls/s by batch ({rounds} interleaved rounds)")
        for row in r["throughput"]:
            print(f"batch {row['batch']:>3}: {row['calls_per_s']:8.2f} calls/s "
                  f"({row['vs_batch_1'] or 0:.2f}x batch 1, {row['batch_ms_p50']:.1f} ms per batch)")


def render_section(workers: list[int], episodes: int, steps: int, device: str) -> None:
    from vlabench.run.runner import run_from_config

    print(f"\n== LIBERO steps/s with N simulator workers (EGL, tiny OFT, run.batch = N, "
          f"{episodes} episodes x {steps} steps)")
    with tempfile.TemporaryDirectory() as out:
        for n in workers:
            cfg = compose(["model=openvla-oft-tiny", "suite=libero_spatial", "suite.tasks=[0]",
                           f"run.episodes_per_task={episodes}", f"run.max_steps={steps}",
                           f"run.env_workers={n}", f"run.batch={n}", f"run.device={device}",
                           "run.quiet=true", f"run.output_dir={out}", f"run.name=w{n}"])
            t0 = time.perf_counter()
            quiet_call(run_from_config, cfg)
            wall = time.perf_counter() - t0
            with open(Path(out) / f"w{n}" / "episodes.csv", newline="") as f:
                total = sum(int(r["steps"]) for r in csv.DictReader(f))
            print(f"{n:>2} worker(s): {total / wall:8.1f} steps/s ({total} steps in {wall:.1f} s, start-up included)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny models, minimal counts")
    a = ap.parse_args()
    dry = a.dry_run
    device = "cpu" if dry else "cuda"
    oft, pi0 = ("openvla-oft-tiny", "pi0-tiny") if dry else ("openvla-oft", "pi0")
    full = [] if dry else ["model.checkpoint=null"]
    calls = 2 if dry else 20
    batches = [1, 2] if dry else [1, 8, 16, 32]
    print(f"vlabench GPU check ({'dry run: CPU, tiny models' if dry else 'full-size random weights'}); "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not dry:
        import torch

        print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    latency_section(oft, device, calls, [full + p for p in (
        ["pruner=none"], ["pruner=fastv", "pruner.retention=0.5"], ["pruner=fastv", "pruner.retention=0.25"],
        ["pruner=fastv", "pruner.retention=0.125"], ["pruner=vla-pruner", "pruner.retention=0.25"],
        ["pruner=specprune"])])
    records = tempfile.mkdtemp() if dry else "results"   # results/throughput/: what `vlabench plan` reads
    throughput_section(oft, device, 1 if dry else 10, batches,
                       [full + ["pruner=none"], full + ["pruner=fastv", "pruner.retention=0.25"]], records)
    latency_section(pi0, device, calls, [full + ["pruner=fastv", "pruner.retention=0.25"]])
    throughput_section(pi0, device, 1 if dry else 10, batches, [full + ["pruner=none"]], records)
    render_section([1, 2] if dry else [1, 4, 8], 2 if dry else 8, 4 if dry else 64, device)
    print("\ngpu check: done")


if __name__ == "__main__":
    sys.exit(main())
