"""Derive summary.csv (per task and per suite) from episodes.csv and calls.csv.

Efficiency columns (empty where calls.csv lacks what they need, e.g. an older run):
- calls_hz: policy calls per second of policy time, warm-up excluded:
  1000 * n / sum(lat_total_ms) over the n policy calls, a step served without the model (SP-VLA's
  extrapolator) counting with its own lat_total_ms, 0 when not recorded. That is 1 / mean
  per-step latency in seconds: SP-VLA Tables 5-7 print Frequency (Hz) / Latency (s) pairs with
  Hz = 1 / latency (4.00 / 0.25, 9.09 / 0.11), latency averaged over every action step.
- tokens_pruned_mean: mean tokens_in - tokens_kept over model calls (SpecPrune-VLA Table 4).
- mem_peak_mb_max / mem_kind: the largest mem_peak_mb of model calls, warm-up excluded, and
  what it measured ("cuda", "rss"; "cuda/rss" if mixed): metrics/memory.py.
- cuda_ms_mean: mean cuda_ms of model calls, warm-up excluded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from vlabench.core.schema import SUMMARY_COLUMNS
from vlabench.metrics.stats import wilson_interval


def _latency(calls: pd.DataFrame) -> dict[str, float]:
    """Latency of real model calls, warm-up calls excluded."""
    real = calls[(calls["source"] == "model") & (calls["warmup"] != 1)]
    lat = pd.to_numeric(real["lat_total_ms"], errors="coerce").dropna()
    if lat.empty:
        return {"latency_mean_ms": np.nan, "latency_p50_ms": np.nan, "latency_p95_ms": np.nan}
    return {
        "latency_mean_ms": float(lat.mean()),
        "latency_p50_ms": float(lat.quantile(0.5)),
        "latency_p95_ms": float(lat.quantile(0.95)),
    }


def _num(calls: pd.DataFrame, col: str) -> pd.Series:
    """An optional calls column as numbers (all NaN when the records lack it)."""
    if col not in calls:
        return pd.Series(np.nan, index=calls.index, dtype=float)
    return pd.to_numeric(calls[col], errors="coerce")


def efficiency(calls: pd.DataFrame) -> dict[str, Any]:
    """calls_hz, tokens_pruned_mean, mem_peak_mb_max, mem_kind, cuda_ms_mean (module docstring)."""
    live = calls[calls["warmup"] != 1]
    model = live["source"] == "model"
    lat = _num(live, "lat_total_ms")
    step = lat.where(model, lat.fillna(0.0)).dropna()
    total = float(step.sum())
    every = calls[calls["source"] == "model"]
    pruned = (_num(every, "tokens_in") - _num(every, "tokens_kept")).dropna()
    mem = _num(live[model], "mem_peak_mb").dropna()
    cuda = _num(live[model], "cuda_ms").dropna()
    kinds = live.loc[model, "mem_kind"] if "mem_kind" in live else pd.Series([], dtype=object)
    kinds = sorted({str(k) for k in kinds if str(k) not in ("", "nan")})
    return {
        "calls_hz": 1000.0 * len(step) / total if total > 0 else np.nan,
        "tokens_pruned_mean": float(pruned.mean()) if len(pruned) else np.nan,
        "mem_peak_mb_max": float(mem.max()) if len(mem) else np.nan,
        "mem_kind": "/".join(kinds),
        "cuda_ms_mean": float(cuda.mean()) if len(cuda) else np.nan,
    }


def _group_row(level: str, suite: str, task_id: Any, task_name: str,
               eps: pd.DataFrame, calls: pd.DataFrame) -> dict[str, Any]:
    n = len(eps)
    k = int(eps["success"].astype(int).sum())
    lo, hi = wilson_interval(k, n)
    real = calls[calls["source"] == "model"]
    flops = pd.to_numeric(real["flops"], errors="coerce").dropna()
    kept = pd.to_numeric(real["tokens_kept"], errors="coerce").dropna()
    return {
        "level": level, "suite": suite, "task_id": task_id, "task_name": task_name,
        "episodes": n, "successes": k, "success_rate": k / n if n else np.nan,
        "sr_ci_low": lo, "sr_ci_high": hi,
        "errors": int((eps["error_type"].fillna("") != "").sum()),
        **_latency(calls), "model_calls": len(real),
        "flops_mean": float(flops.mean()) if len(flops) else np.nan,
        "tokens_kept_mean": float(kept.mean()) if len(kept) else np.nan,
        **efficiency(calls),
    }


def summarize(episodes: pd.DataFrame, calls: pd.DataFrame) -> pd.DataFrame:
    """One row per task ("task") and one for the whole suite ("suite")."""
    rows = []
    if episodes.empty:
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    suite = str(episodes["suite"].iloc[0])
    for tid, eps in episodes.groupby("task_id", sort=True):
        c = calls[calls["task_id"] == tid]
        rows.append(_group_row("task", suite, int(tid), str(eps["task_name"].iloc[0]), eps, c))
    rows.append(_group_row("suite", suite, "", "", episodes, calls))
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def load_run_frames(run_dir) -> tuple[pd.DataFrame, pd.DataFrame]:
    """episodes.csv and calls.csv of a run directory as DataFrames (empty cells -> NaN)."""
    eps = pd.read_csv(run_dir / "episodes.csv", keep_default_na=False, na_values=[""],
                      dtype={"error_type": str, "error": str, "task_name": str})
    eps["error_type"] = eps["error_type"].fillna("")
    calls = pd.read_csv(run_dir / "calls.csv", keep_default_na=False, na_values=[""],
                        dtype={"source": str, "mode": str, "tokens_by_layer": str, "mem_kind": str})
    return eps, calls
