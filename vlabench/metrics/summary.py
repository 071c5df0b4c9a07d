"""Derive summary.csv (per task and per suite) from episodes.csv and calls.csv."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from vlabench.metrics.stats import wilson_interval
from vlabench.records import SUMMARY_COLUMNS


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
                        dtype={"source": str, "mode": str, "tokens_by_layer": str})
    return eps, calls
