"""Where a run's latency comes from: its own calls, or a batch-1 replay (`vlabench bench --replay`).

A run whose calls.csv records a call at batch > 1 (`batch` column; absent: 1) has no latency of
its own that the papers would print: its latency, Hz and speedup cells are n/a unless a replay
exists. A replay (replay.json + replay.csv in the run directory) ran the run's recorded
observations through its model and pruner and through `pruner=none` on the same weights, call by
call interleaved (ABBA), at batch 1: its cells come from there, speedup from its own pairs, and
every row says so. Flags: a speedup above 1 / FLOPs ratio of the stages a method changes (per
stage FLOPs of the replay; a pair of runs: their total FLOPs) beyond noise (the lower end of its
95% interval), and a pair of runs measured on different machines or devices.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vlabench.metrics.stats import Clusters, Sample, paired_ratio_draws
from vlabench.records.files import RecordsError, sha256
from vlabench.records.machine import describe, differ
from vlabench.report.runs import Run, episode_keys, numbers

REPLAY_CSV, REPLAY_JSON = "replay.csv", "replay.json"
N_BOOT = 1000
REL_EQUAL = 1e-9   # stage FLOPs equal to this relative precision: the stage is unchanged


@dataclass
class Replay:
    info: dict[str, Any]     # replay.json
    rows: pd.DataFrame       # replay.csv


def load_replay(run_dir: Path) -> Replay | None:
    """The replay of `run_dir` (None when there is none); damage is one RecordsError line."""
    jpath, cpath = Path(run_dir) / REPLAY_JSON, Path(run_dir) / REPLAY_CSV
    if not jpath.exists():
        return None
    try:
        info = json.loads(jpath.read_bytes().decode("utf-8"))
        data = cpath.read_bytes()
    except FileNotFoundError:
        raise RecordsError(f"{cpath} is missing but {jpath.name} names it; run `vlabench bench "
                           f"--replay {run_dir}` again") from None
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise RecordsError(f"{jpath}: unreadable ({type(e).__name__}); run `vlabench bench --replay "
                           f"{run_dir}` again") from None
    if not isinstance(info, dict) or info.get("csv_sha256") != sha256(data):
        raise RecordsError(f"{cpath} does not match {jpath.name} (edited or cut); run `vlabench bench "
                           f"--replay {run_dir}` again")
    import io

    rows = pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""],
                       dtype={"kind": str, "policy": str, "source": str, "mem_kind": str})
    return Replay(info, rows)


def replay_of(run: Run) -> Replay | None:
    """The run's replay when it replays this run's model and pruner (cached on the run)."""
    if "replay" not in run.cache:
        rp = load_replay(run.path)
        if rp is not None and (rp.info.get("model"), rp.info.get("pruner_config")) != (
                run.model, (run.config.get("pruner") or {}).get("name")):
            raise RecordsError(f"{run.path / REPLAY_JSON} replays {rp.info.get('model')}/"
                               f"{rp.info.get('pruner_config')}, not this run; run `vlabench bench "
                               f"--replay {run.path}` again")
        run.cache["replay"] = rp
    return run.cache["replay"]


def batched(run: Run) -> bool:
    """Some call of the run was made at batch > 1 (calls.csv `batch`; absent: batch 1). Cached."""
    if "batched" not in run.cache:
        run.cache["batched"] = "batch" in run.calls and bool((numbers(run.calls["batch"]) > 1).any())
    return run.cache["batched"]


def device_of(rp: Replay) -> str:
    return str(rp.info.get("device_name") or rp.info.get("device") or "?")


@dataclass
class Figures:
    """A replay's per-call figures on some tasks: the method's and the baseline's."""

    lat: np.ndarray          # method model calls' lat_total_ms
    step: np.ndarray         # method, per policy call (served calls: their own latency or 0)
    base_step: np.ndarray    # the baseline on the same observations (pairs with `step`)
    episode: np.ndarray      # episode_keys of the pairs
    cuda_ms: np.ndarray
    mem_mb: np.ndarray
    flops: dict[str, dict[str, float]]   # "method" / "baseline" -> stage -> mean FLOPs per call


def _step(rows: pd.DataFrame) -> np.ndarray:
    lat = pd.to_numeric(rows["lat_total_ms"], errors="coerce")
    return lat.where(rows["source"] == "model", lat.fillna(0.0)).fillna(0.0).to_numpy(float)


def figures(rp: Replay, task_ids: set[int] | None = None) -> Figures:
    acts = rp.rows[rp.rows["kind"] == "act"]
    if task_ids is not None:
        acts = acts[acts["task_id"].isin(task_ids)]
    key = ["task_id", "episode", "call"]
    m = acts[acts["policy"] == "method"].sort_values(key)
    b = acts[acts["policy"] == "baseline"].sort_values(key)
    model = m[m["source"] == "model"]
    stage_cols = [c for c in rp.rows.columns if c.startswith("flops_")]

    def stage_means(df: pd.DataFrame) -> dict[str, float]:
        return {c.removeprefix("flops_"): float(pd.to_numeric(df[c], errors="coerce").fillna(0.0).mean())
                for c in stage_cols} if len(df) else {}

    def col(df: pd.DataFrame, name: str) -> np.ndarray:
        return pd.to_numeric(df[name], errors="coerce").dropna().to_numpy(float) if name in df else np.empty(0)

    return Figures(lat=col(model, "lat_total_ms"), step=_step(m), base_step=_step(b), episode=episode_keys(m),
                   cuda_ms=col(model, "cuda_ms"), mem_mb=col(model, "mem_peak_mb"),
                   flops={"method": stage_means(m), "baseline": stage_means(b)})


def flops_bound(base: dict[str, float], new: dict[str, float]) -> tuple[float, list[str]]:
    """1 / FLOPs ratio of the stages whose FLOPs differ (the most a speedup can be if time
    scales with FLOPs), and those stages; (1.0, []) when no stage changed."""
    changed = [s for s in sorted(base) if abs(base[s] - new.get(s, 0.0)) > REL_EQUAL * max(abs(base[s]), 1.0)]
    b, n = sum(base[s] for s in changed), sum(new.get(s, 0.0) for s in changed)
    if not changed:
        return 1.0, []
    return (b / n if n > 0 else math.inf), changed


def _sample(values: np.ndarray, episode: np.ndarray, unit: str) -> Sample:
    return Clusters.of(values, episode) if unit == "episode" else values


def paired_speedup(base_step: np.ndarray, step: np.ndarray, boot: bool, episode: np.ndarray | None = None,
                   unit: str = "call") -> tuple[float, float, float]:
    """mean(base) / mean(method) over the pairs, with a paired bootstrap 95% interval that
    resamples pairs (`unit` "call") or the episodes they belong to (`episode`: a key per pair)."""
    if not step.size or step.mean() <= 0:
        return math.nan, math.nan, math.nan
    s = float(base_step.mean() / step.mean())
    if not boot:
        return s, math.nan, math.nan
    if unit == "episode" and episode is None:
        raise ValueError("an episode bootstrap needs the episode of each pair")
    keys = episode if episode is not None else np.empty(0)
    ratios = paired_ratio_draws(_sample(base_step, keys, unit), _sample(step, keys, unit), N_BOOT)
    lo, hi = np.quantile(ratios, [0.025, 0.975])
    return s, float(lo), float(hi)


def _task_ids(run: Run, col: Any) -> set[int] | None:
    if not getattr(col, "include", ()):
        return None
    return {int(t) for t in run.episodes[col.tasks(run.episodes)]["task_id"]}


def apply(run: Run, base: Run | None, col: Any, m: dict[str, float], boot: bool,
          unit: str = "episode") -> None:
    """Replace `m`'s latency, Hz, memory, CUDA time and speedup by the replay's where the run
    has one (its interval resampling `unit`s); set `latency_source`."""
    rp = replay_of(run)
    if rp is None:
        m["latency_source"] = "n/a (batched run)" if batched(run) else "run"
        return
    f = figures(rp, _task_ids(run, col))
    mean = float(f.step.mean()) if f.step.size else math.nan
    m.update(latency_ms=float(f.lat.mean()) if f.lat.size else math.nan,
             latency_p50_ms=float(np.quantile(f.lat, 0.5)) if f.lat.size else math.nan,
             latency_p95_ms=float(np.quantile(f.lat, 0.95)) if f.lat.size else math.nan,
             step_latency_ms=mean, latency_s=mean / 1000,
             hz=1000 / mean if mean > 0 else math.nan,
             cuda_ms=float(f.cuda_ms.mean()) if f.cuda_ms.size else math.nan,
             mem_gb=float(f.mem_mb.max()) / 1024 if f.mem_mb.size else math.nan)
    m["latency_source"] = f"replay on {device_of(rp)}"
    if base is not None and base is not run:
        m["speedup"], lo, hi = paired_speedup(f.base_step, f.step, boot, f.episode, unit)
        if boot:
            m["speedup_ci_low"], m["speedup_ci_high"] = lo, hi
        bound, _ = flops_bound(f.flops["baseline"], f.flops["method"])
        m["flops_bound"] = bound


def step_pair(run: Run, col: Any, unit: str = "call") -> tuple[Sample, Sample] | None:
    """(baseline, method) per-call step latencies of the run's replay on `col` (grouped by
    episode for `unit` "episode"); None without one."""
    rp = replay_of(run)
    if rp is None:
        return None
    f = figures(rp, _task_ids(run, col))
    return _sample(f.base_step, f.episode, unit), _sample(f.step, f.episode, unit)


def source_note(run: Run) -> str | None:
    """The label of a row's latency cells: from a replay, or n/a for a batched run."""
    rp = replay_of(run)
    if rp is not None:
        n = int(((rp.rows["kind"] == "act") & (rp.rows["policy"] == "method")).sum())
        return (f"{run.name}: latency, Hz and speedup from a replay on {device_of(rp)} ({n} recorded calls at "
                f"batch 1, each interleaved with pruner=none on the same observation), not from the run")
    if batched(run):
        return f"{run.name}: latency n/a (batched run: `vlabench bench --replay {run.path}`)"
    return None


def above(speedup: float, ci_low: float, bound: float) -> bool:
    """The speedup is above `bound` beyond noise: its 95% interval's lower end is (the point
    estimate where there is no interval)."""
    test = ci_low if ci_low == ci_low else speedup
    return test == test and test > bound


def _machine(run: Run) -> dict[str, Any] | None:
    try:
        return json.loads((run.path / "manifest.json").read_text()).get("machine")
    except (OSError, ValueError):
        return None


def flags(run: Run, base: Run | None, m: dict[str, float]) -> list[str]:
    """Warnings on a row's speedup: above its FLOPs bound; a pair of runs from two machines."""
    out: list[str] = []
    if base is None or base is run:
        return out
    s = m.get("speedup", math.nan)
    bound = m.get("flops_bound")
    how = "of the stages it changes, replay FLOPs"
    if bound is None and replay_of(run) is None and m.get("flops_pct", 0) > 0:
        bound, how = 100.0 / m["flops_pct"], "total FLOPs per call"
    if bound is not None and above(s, m.get("speedup_ci_low", math.nan), bound):
        out.append(f"{run.name}: speedup {s:.2f}× exceeds what its FLOPs allow ({bound:.2f}× = 1 / FLOPs "
                   f"ratio, {how}): the two measurements are not comparable (load, clocks, machine)")
    if replay_of(run) is None:
        a, b = _machine(run), _machine(base)
        if differ(a, b) or (run.device and base.device and run.device != base.device):
            out.append(f"{run.name}: speedup against {base.name} compares two machines or devices "
                       f"({run.device}, {describe(a)} vs {base.device}, {describe(b)})")
    return out
