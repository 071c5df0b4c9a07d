"""Derive the shipped latency profiles (configs/profiles/) from VLA-Pruner's published latencies.

VLA-Pruner (arXiv:2511.16449) Table 1 prints, per model, the latency of vanilla and of each
method at 50/25/12.5% retention on one RTX 4090 (results/reference/vla-pruner.csv). The
profile L = a + b F_llm (+ a per-method overhead) is fitted on vanilla and FastV, whose LLM
FLOPs we count exactly (`vlabench bench model=M model.checkpoint=null pruner=fastv
pruner.retention=R bench.flops=both bench.out=DIR/<prefix>R.json`); vision FLOPs are the same
in every row, so c = 0 and the vision time is part of a. Another method's overhead is its mean
residual, at our FastV count scaled by the paper's FLOPs ratio method / FastV at that retention.

    python scripts/derive_latency_profiles.py BENCH_DIR   # BENCH_DIR holds f0.5.json ... ov0.125.json
"""

from __future__ import annotations

import csv
import json
import math
import sys
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "results" / "reference" / "vla-pruner.csv"
OUT = ROOT / "configs" / "profiles"
MODELS = {"openvla-oft": ("f", "ms per action chunk (8 actions)"), "openvla": ("ov", "ms per action")}
SOURCE = ("VLA-Pruner: Temporal-Aware Dual-Level Visual Token Pruning for Efficient "
          "Vision-Language-Action Inference (arXiv:2511.16449), Table 1, latency (ms) and FLOPs (T) "
          "columns; one NVIDIA RTX 4090 (its Sec. 5.1)")


def published(model: str) -> dict[tuple[str, float | None], dict[str, float]]:
    rows: dict[tuple[str, float | None], dict[str, float]] = {}
    with open(REFERENCE, encoding="utf-8") as f:
        for r in csv.reader(line for line in f if not line.startswith("#")):
            if len(r) < 9 or r[1] != "1" or r[3] != model or r[4] or r[6] not in ("latency_ms", "flops_t"):
                continue
            key = (r[2], float(r[8]) if r[8] else None)
            rows.setdefault(key, {})[r[6]] = float(r[7])
    return rows


def ours(bench_dir: Path, prefix: str) -> dict[float | None, float]:
    """Our executed LLM TFLOPs: vanilla (None) and FastV at each retention."""
    out: dict[float | None, float] = {}
    for r in (0.5, 0.25, 0.125):
        d = json.loads((bench_dir / f"{prefix}{r}.json").read_text())
        out[r] = d["flops_by_stage"]["llm"] / 1e12
        out[None] = d["baseline"]["flops_by_stage"]["llm"] / 1e12
    return out


def derive(model: str, bench_dir: Path) -> dict:
    prefix, unit = MODELS[model]
    pub, llm = published(model), ours(bench_dir, prefix)
    fit_keys = [("none", None)] + [("fastv", r) for r in (0.5, 0.25, 0.125)]
    x = np.array([llm[r] for _, r in fit_keys])
    y = np.array([pub[k]["latency_ms"] for k in fit_keys])
    (a, b), *_ = np.linalg.lstsq(np.stack([np.ones_like(x), x], 1), y, rcond=None)
    points = [{"method": m, "retention": r, "llm_tflops": round(float(f), 4), "latency_ms": float(l)}
              for (m, r), f, l in zip(fit_keys, x, y)]
    overhead: dict[str, float] = {}
    for method in sorted({m for m, r in pub if m not in ("none", "fastv") and r is not None}):
        res = []
        for r in (0.5, 0.25, 0.125):
            if (method, r) not in pub or "flops_t" not in pub[(method, r)]:
                continue
            f = llm[r] * pub[(method, r)]["flops_t"] / pub[("fastv", r)]["flops_t"]
            res.append(pub[(method, r)]["latency_ms"] - (a + b * f))   # at the unrounded fit
            points.append({"method": method, "retention": r, "llm_tflops": round(float(f), 4),
                           "latency_ms": pub[(method, r)]["latency_ms"]})
        if res:
            overhead[method] = round(float(np.mean(res)), 3)
    a, b = round(float(a), 4), round(float(b), 4)   # the published coefficients, errors at them
    errors = [abs(a + b * p["llm_tflops"] + overhead.get(p["method"], 0.0) - p["latency_ms"]) for p in points]
    return {"name": f"{model}-rtx4090", "model": model, "device": "NVIDIA RTX 4090 (as published)",
            "flops": "executed LLM FLOPs of the call (vlabench's count, last_flops_by_stage['llm'])",
            "latency": unit, "source": SOURCE,
            "derivation": "scripts/derive_latency_profiles.py: a, b least squares on vanilla + FastV "
                          "50/25/12.5% at our FLOPs counts; c = 0 (vision FLOPs equal in every row, "
                          "in a); overhead = a method's mean residual (FLOPs: FastV's count x the "
                          "paper's method/FastV FLOPs ratio); methods without a row (SpecPrune-VLA, "
                          "SP-VLA) are priced by their FLOPs alone",
            "max_error_ms": math.ceil(1000 * max(errors)) / 1000, "points": points,
            "a_ms": a, "b_ms_per_tflop": b, "c_ms_per_tflop": 0.0,
            "overhead_ms": overhead}


def main() -> None:
    bench_dir = Path(sys.argv[1])
    OUT.mkdir(parents=True, exist_ok=True)
    for model in MODELS:
        if not (bench_dir / f"{MODELS[model][0]}0.125.json").exists():
            print(f"skipping {model}: no bench output in {bench_dir}")
            continue
        prof = derive(model, bench_dir)
        head = (f"# Latency profile of {model} on an RTX 4090, derived from published latencies.\n"
                f"# Generated by scripts/derive_latency_profiles.py; read by timing.latency=profile:{prof['name']}\n")
        (OUT / f"{prof['name']}.yaml").write_text(head + yaml.safe_dump(prof, sort_keys=False))
        print(f"{prof['name']}: a={prof['a_ms']} ms, b={prof['b_ms_per_tflop']} ms/TFLOP, "
              f"overhead {prof['overhead_ms']}, max error {prof['max_error_ms']} ms")


if __name__ == "__main__":
    main()
