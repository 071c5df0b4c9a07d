"""Fabricate a paper-table-scale grid of finished run directories for benchmarking the report.

One model's tables: vanilla, 8 pruners at 4 retentions and 5 methods without a fixed ratio, on
the 4 LIBERO suites = 152 runs of 10 tasks x 50 episodes (76,000 episodes) with 20
policy calls each (1,520,000 calls.csv rows). Every run directory is valid as `vlabench run`
writes it: config.yaml, episodes.csv, calls.csv, summary.csv (metrics.summary) and a sealed
manifest.json recording the records' lengths and sha256 digests, so the report's checks pass.

    .venv/bin/python scripts/fabricate_grid.py OUT_DIR [--episodes 50] [--calls 20] [--seed 0]
    /usr/bin/time -v .venv/bin/vlabench report OUT_DIR --format md > /dev/null
    .venv/bin/vlabench compare OUT_DIR OTHER_DIR   # OTHER_DIR: the same with --seed 1

Measured on a 2-core CPU shared with other jobs, same grid (CPU = user + sys, /usr/bin/time -v):
before issue 23 report 60.4 s / 1.82 GB peak RSS, compare 35.0 s / 3.35 GB (load 12-20); with
calls resampled report 25 s / 336 MB, compare 11-13 s / 501 MB (load 1-3); with episodes resampled
(the default; --ci-unit call keeps the old intervals, 22 s) and leaner loading and per-run
figures, report 6.1-7.1 s / 239 MB, compare 7.8-9.2 s / 344 MB (load 1-3).
Of the report's ~6 s about 3.3 s are loading (130 MB of CSV, twice that for compare), 0.9 s the
bootstrap (370 resamplings of ~500 episodes x 1000: every run's speedup interval and the speedup
table's mean over suites, whose later pairs depend on the earlier draws), 0.8 s imports and the rest
the tables. --episode-sd S gives every episode's calls a shared latency offset (correlated calls).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from vlabench.core.schema import CALL_COLUMNS, EPISODE_COLUMNS, RECORDS_VERSION
from vlabench.metrics.summary import summarize
from vlabench.records.files import atomic_write_text, sha256
from vlabench.records.provenance import seal

MODEL = "openvla-oft"
SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10")
RETENTIONS = (0.5, 0.25, 0.125, 0.0625)
PRUNED = ("fastv", "sparsevlm", "divprune", "vla-pruner", "holov", "prumerge", "fopru", "random")
UNFIXED = ("vla-cache", "specprune", "sp-vla", "vtw", "efficientvla")   # one run per suite
PRUNER_CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "pruner"
TOKENS_IN = 512
BASE_MS, BASE_FLOPS = 120.0, 4.0e12


def methods() -> list[tuple[str, float | None]]:
    """(pruner, retention) of every run of one suite: 1 + 32 + 5 = 38."""
    return ([("none", None)] + [(p, r) for p in PRUNED for r in RETENTIONS]
            + [(p, None) for p in UNFIXED])


def _frames(name: str, pruner: str, retention: float | None, suite: str, episodes: int,
            calls_per_episode: int, rng: np.random.Generator,
            episode_sd: float = 0.0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """episodes.csv and calls.csv rows of one run (10 tasks); `episode_sd` > 0: every call of an
    episode shares one latency offset of that spread (correlated calls, as a scene makes them)."""
    kept_frac = retention if retention is not None else (1.0 if pruner == "none" else rng.uniform(0.3, 0.6))
    p_success = float(np.clip(0.97 - 0.25 * (1 - kept_frac) ** 2 + rng.normal(0, 0.02), 0.05, 1.0))
    speed = 1.0 / (0.35 + 0.65 * kept_frac)
    n_tasks = 10
    task_id = np.repeat(np.arange(n_tasks), episodes)
    episode = np.tile(np.arange(episodes), n_tasks)
    n_eps = task_id.size
    eps = pd.DataFrame({
        "run_id": name, "model": MODEL, "pruner": pruner, "suite": suite, "task_id": task_id,
        "task_name": [f"{suite} task {t}" for t in task_id], "episode": episode, "init_state": episode,
        "seed": 7, "success": (rng.random(n_eps) < p_success).astype(int),
        "steps": calls_per_episode * 8, "policy_calls": calls_per_episode,
        "model_calls": calls_per_episode, "wall_s": np.round(rng.uniform(20, 40, n_eps), 3),
        "sim_s": 10.0, "policy_s": 10.0, "error_type": "", "error": ""}, columns=EPISODE_COLUMNS)
    n = n_eps * calls_per_episode
    lat = rng.normal(BASE_MS / speed, 4.0, n)
    if episode_sd > 0:
        lat += np.repeat(rng.normal(0.0, episode_sd, n_eps), calls_per_episode)
    lat = np.round(lat.clip(1.0), 3)
    kept = round(TOKENS_IN * kept_frac)
    calls = pd.DataFrame({
        "task_id": np.repeat(task_id, calls_per_episode), "episode": np.repeat(episode, calls_per_episode),
        "call": np.tile(np.arange(calls_per_episode), n_eps),
        "step": np.tile(np.arange(calls_per_episode) * 8, n_eps), "source": "model", "warmup": 0,
        "lat_vision_ms": np.round(0.1 * lat, 3), "lat_llm_ms": np.round(0.8 * lat, 3),
        "lat_action_head_ms": np.round(0.05 * lat, 3), "lat_pruner_ms": 0.0 if pruner == "none" else 0.5,
        "lat_total_ms": lat, "tokens_in": TOKENS_IN, "tokens_kept": kept, "tokens_by_layer": "",
        "flops": BASE_FLOPS * (0.1 + 0.9 * kept / TOKENS_IN), "mode": "", "queue_wait_ms": np.nan,
        "mem_peak_mb": np.nan, "mem_kind": "", "cuda_ms": np.nan, "lat_preprocess_ms": 1.5},
        columns=CALL_COLUMNS)
    calls.loc[0, ["warmup", "lat_total_ms"]] = [1, 50 * BASE_MS]   # the run's warm-up call
    return eps, calls


def write_run(root: Path, pruner: str, retention: float | None, suite: str, episodes: int,
              calls_per_episode: int, rng: np.random.Generator, episode_sd: float = 0.0) -> Path:
    """One finished run directory, as `vlabench run` leaves it."""
    tag = f"__retention={retention:g}" if retention is not None else ""
    name = f"{MODEL}-{pruner}-{suite}{tag}"
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    pcfg: dict = yaml.safe_load((PRUNER_CONFIGS / f"{pruner}.yaml").read_text())
    if retention is not None:
        pcfg["retention"] = retention
    cfg = {"model": {"name": MODEL}, "pruner": pcfg,
           "suite": {"name": suite, "family": "libero", "protocol_version": 1, "protocol": "openvla-oft"},
           "run": {"name": name, "output_dir": str(root), "episodes_per_task": episodes}}
    cfg_text = yaml.safe_dump(cfg, sort_keys=False)
    eps, calls = _frames(name, pruner, retention, suite, episodes, calls_per_episode, rng, episode_sd)
    texts = {"episodes.csv": eps.to_csv(index=False, lineterminator="\n"),
             "calls.csv": calls.to_csv(index=False, lineterminator="\n")}
    atomic_write_text(d / "config.yaml", cfg_text)
    for file, text in texts.items():
        atomic_write_text(d / file, text)
    summary = summarize(eps, calls)
    atomic_write_text(d / "summary.csv", summary.to_csv(index=False, lineterminator="\n"))
    records = {f: {"bytes": len(t.encode()), "sha256": sha256(t.encode())} for f, t in texts.items()}
    manifest = {"vlabench_version": "0.1.0", "records_version": RECORDS_VERSION, "protocol_version": 1,
                "protocol": "openvla-oft", "run_name": name, "model": MODEL, "pruner": pruner,
                "suite": suite, "suite_family": "libero", "device": "cuda:0", "status": "complete",
                "deviations": [], "config_sha256": sha256(cfg_text.encode()), "records": records}
    atomic_write_text(d / "manifest.json", json.dumps(seal(manifest), indent=2, sort_keys=True) + "\n")
    return d


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--episodes", type=int, default=50, help="episodes per task (10 tasks)")
    ap.add_argument("--calls", type=int, default=20, help="policy calls per episode")
    ap.add_argument("--suites", default=",".join(SUITES))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--episode-sd", type=float, default=0.0,
                    help="latency offset (ms, sd) shared by the calls of one episode; 0: independent calls")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    runs = [write_run(args.out, p, r, s, args.episodes, args.calls, rng, args.episode_sd)
            for s in args.suites.split(",") for p, r in methods()]
    print(f"wrote {len(runs)} runs, {len(runs) * 10 * args.episodes} episodes, "
          f"{len(runs) * 10 * args.episodes * args.calls} calls under {args.out}")


if __name__ == "__main__":
    main()
