"""Fabricate run directories (the records format of vlabench.records.files) from summary numbers.

Used by the report, stats and compare tests: a run whose success counts, latencies and FLOPs
reproduce a paper's figures, without running a model.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import yaml

from vlabench.core.schema import CALL_COLUMNS, EPISODE_COLUMNS, RECORDS_VERSION
from vlabench.records.files import atomic_write_text, format_rows


@dataclass
class TaskSpec:
    """One task of a fabricated run: k successes out of n episodes, per-call figures."""

    name: str
    k: int
    n: int
    latency_ms: float = 100.0
    flops: float = 1e12
    tokens_in: int = 512
    tokens_kept: int = 512
    jitter: float = 0.0          # +-jitter ms on alternate calls (mean unchanged)
    calls_per_episode: int = 1
    skipped_per_episode: int = 0  # extra policy calls served without a model call
    successes: list[int] | None = None  # explicit per-episode outcomes (else the first k)


def counts_for(pct: float, decimals: int, ns: range = range(400, 1001, 10)) -> tuple[int, int]:
    """(k, n), n from `ns`, whose 100k/n is closest to `pct` (and shows as `pct` when rounded)."""
    best = min(((abs(100 * round(pct * n / 100) / n - pct), n) for n in ns))
    n = best[1]
    k = round(pct * n / 100)
    if round(100 * k / n, decimals) != round(pct, decimals):
        raise ValueError(f"no k/n with n in {ns} gives {pct}")
    return k, n


def suite_tasks(k: int, n: int, n_tasks: int = 10, **kw) -> list[TaskSpec]:
    """n episodes spread evenly over n_tasks tasks, k successes spread as evenly as possible."""
    per = n // n_tasks
    assert per * n_tasks == n, (n, n_tasks)
    ks = [k // n_tasks + (1 if i < k % n_tasks else 0) for i in range(n_tasks)]
    return [TaskSpec(f"task {i}", ks[i], per, **kw) for i in range(n_tasks)]


def make_run(root: Path, name: str, *, model: str, pruner: str, suite: str,
             tasks: list[TaskSpec], retention: float | None = None, variant: str | None = None,
             alpha: float | None = None, status: str = "complete", protocol_version: int = 1,
             deviations: list[str] | None = None, device: str = "cuda:0",
             pruner_cfg: dict | None = None) -> Path:
    """Write config.yaml, manifest.json, episodes.csv and calls.csv of one run; return its dir."""
    d = Path(root) / name
    d.mkdir(parents=True, exist_ok=True)
    pcfg: dict = {"name": pruner, **(pruner_cfg or {})}
    for key, v in (("retention", retention), ("variant", variant), ("alpha", alpha)):
        if v is not None:
            pcfg[key] = v
    cfg = {"model": {"name": model}, "pruner": pcfg,
           "suite": {"name": suite, "family": suite.split("_")[0], "protocol_version": protocol_version},
           "run": {"name": name, "output_dir": str(root)}}
    (d / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    manifest = {"vlabench_version": "0.1.0", "records_version": RECORDS_VERSION,
                "protocol_version": protocol_version, "run_name": name, "model": model,
                "pruner": pruner, "suite": suite, "suite_family": cfg["suite"]["family"],
                "device": device, "status": status, "deviations": deviations or []}
    (d / "manifest.json").write_text(json.dumps(manifest, indent=2))
    episodes, calls = [], []
    for tid, t in enumerate(tasks):
        outcomes = t.successes if t.successes is not None else [1] * t.k + [0] * (t.n - t.k)
        assert len(outcomes) == t.n and sum(outcomes) == t.k, t
        for e, ok in enumerate(outcomes):
            episodes.append({"run_id": name, "model": model, "pruner": pruner, "suite": suite,
                             "task_id": tid, "task_name": t.name, "episode": e, "init_state": e,
                             "seed": 7, "success": ok, "steps": 10, "wall_s": 1.0})
            step = 0
            if tid == 0 and e == 0:  # a warm-up call with an absurd latency: must be excluded
                calls.append(_call(tid, e, 0, step, t, 50 * t.latency_ms, warmup=1))
            for c in range(t.calls_per_episode):
                sign = 1 if c % 2 == 0 else -1
                lat = t.latency_ms + sign * t.jitter if t.calls_per_episode % 2 == 0 else t.latency_ms
                calls.append(_call(tid, e, len(calls), step, t, lat))
                step += 1
            for _ in range(t.skipped_per_episode):
                calls.append({**_call(tid, e, len(calls), step, t, 0.0), "source": "extrapolator",
                              "flops": 0, "tokens_in": "", "tokens_kept": "", "lat_total_ms": 0.05})
                step += 1
    atomic_write_text(d / "episodes.csv", format_rows(EPISODE_COLUMNS, episodes, header=True))
    atomic_write_text(d / "calls.csv", format_rows(CALL_COLUMNS, calls, header=True))
    return d


def _call(tid: int, e: int, call: int, step: int, t: TaskSpec, lat: float, warmup: int = 0) -> dict:
    return {"task_id": tid, "episode": e, "call": call, "step": step, "source": "model",
            "warmup": warmup, "lat_total_ms": lat, "lat_llm_ms": 0.8 * lat,
            "tokens_in": t.tokens_in, "tokens_kept": t.tokens_kept, "flops": t.flops, "mode": ""}


def pct_close(a: float, b: float, tol: float) -> bool:
    return not math.isnan(a) and abs(a - b) <= tol


def runs_from_reference(root: Path, ref, paper: str, table: str, model: str, *,
                        tasks: dict[str, list[tuple[str, str]]] | None = None,
                        n_tasks: int = 1, base_latency: float = 100.0,
                        base_flops: float = 4e12, ref_model: str | None = None) -> list[Path]:
    """Runs whose records reproduce the rows of one published table.

    `ref`: the reference DataFrame (results/reference/*.csv). Per row and suite: success counts
    from the printed success rate; latency from latency_ms, else base_latency / speedup; FLOPs
    from flops_t, else flops_pct of base_flops; tokens kept from pruned_tokens. `tasks` maps a
    suite to its (task key, task name) columns for per-task tables (SIMPLER); `ref_model` is
    the paper's model whose rows are used (default: `model`).
    """
    sel = ref[(ref.paper == paper) & (ref.table == table) & (ref.model == (ref_model or model))]
    out = []
    for (method, ret, var, ref_model), rows in sel.groupby(["method", "retention", "variant", "model"]):
        per_model = rows[rows.suite == ""].set_index("metric")["value"].astype(float)
        for suite in sorted(set(rows.suite) - {""}):
            srows = rows[rows.suite == suite]
            suite_level = srows[srows.task == ""].set_index("metric")["value"].astype(float)
            figures = {**per_model.to_dict(), **suite_level.to_dict()}
            specs = []
            cols = tasks[suite] if tasks else [("", None)]
            for task_key, task_name in cols:
                tv = {**figures, **srows[srows.task == task_key].set_index("metric")["value"].astype(float).to_dict()}
                dec = len(srows[(srows.metric == "success_rate")].value.iloc[0].split(".")[-1]) \
                    if "." in srows[(srows.metric == "success_rate")].value.iloc[0] else 0
                lat = tv.get("latency_ms", base_latency / tv.get("speedup", 1.0))
                fl = base_flops * tv["flops_pct"] / 100 if "flops_pct" in tv else tv.get("flops_t", 1) * 1e12
                kept = 512 - int(tv.get("pruned_tokens", 0))
                kw = dict(latency_ms=lat, flops=fl, tokens_kept=kept)
                if task_name is None:
                    k, n = counts_for(tv["success_rate"], dec, range(20 * n_tasks, 1001, n_tasks))
                    specs += suite_tasks(k, n, n_tasks, **kw)
                else:
                    k, n = counts_for(tv["success_rate"], dec, range(20, 1001))
                    specs.append(TaskSpec(task_name, k, n, **kw))
            alpha = float(var.split("=")[1]) if var.startswith("alpha=") else None
            name = f"{ref_model}-{method}-{ret or 'full'}-{var or 'default'}-{suite}".replace("=", "")
            out.append(make_run(root, name, model=model, pruner=method, suite=suite, tasks=specs,
                                retention=float(ret) if ret else None,
                                variant=None if (not var or alpha is not None) else var, alpha=alpha))
    return out


def load_reference():
    """The published numbers as strings (as in the CSV files)."""
    import pandas as pd

    from vlabench.report.reference import REFERENCE_DIR

    frames = [pd.read_csv(f, comment="#", dtype=str, keep_default_na=False)
              for f in sorted(REFERENCE_DIR.glob("*.csv"))]
    return pd.concat(frames, ignore_index=True)
