"""`vlabench plan`: the runs a `run` command would make, what exists, and the hours left.

Runs nothing and writes nothing. For each job: its run directory, tasks x episodes, the
episodes already recorded there (complete / partial / new) and whether the saved run can be
resumed (or grown) with this config (vlabench.records.resume.resume_problem). The estimate is an upper
bound: every episode left runs to its step limit. Simulator seconds per step come from the
recorded episodes (sim_s / steps) of earlier runs on the same suite; policy seconds per step
from their calls (mean lat_total_ms of the warm batch-1 calls x calls per step) of earlier runs
of the same model and pruner, else of the same model (marked `*`); without either, from the
built-in priors (marked `p`; vlabench/launch/plan_priors.py), else "?". A job with run.batch=B
divides its policy time by the throughput gain `vlabench bench bench.throughput=true` recorded
for min(B, run.env_workers) (marked `t`; vlabench.records.throughput). Wall hours: simulator +
policy with one worker; with N workers, the larger of simulator / min(N, cores) and policy.
Earlier runs and records are those beside the jobs' run directories (each job's
run.output_dir). Below the table: the weights, disk and GPU memory the jobs need and whether
their checkpoints are here.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vlabench.launch.jobs import Job
from vlabench.launch.plan_priors import cpu_only_lines, device_class, needs_lines, policy_prior, sim_prior
from vlabench.records import throughput


@dataclass
class Timing:
    """Recorded totals of one earlier run."""

    model: str
    pruner: str
    suite: str
    steps: float = 0.0
    sim_s: float = 0.0
    calls: int = 0          # policy calls recorded (calls.csv rows)
    lat_ms: float = 0.0     # summed lat_total_ms of the warm batch-1 calls
    warm: int = 0


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))
    except (OSError, UnicodeDecodeError, csv.Error):
        return []


def _num(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if x == x else None


def read_timing(run_dir: Path) -> Timing | None:
    """The timing totals of a recorded run (None when it holds no episodes)."""
    eps = _rows(run_dir / "episodes.csv")
    if not eps:
        return None
    t = Timing(eps[0].get("model", ""), eps[0].get("pruner", ""), eps[0].get("suite", ""))
    for r in eps:
        steps, sim = _num(r.get("steps")), _num(r.get("sim_s"))
        if steps is not None and sim is not None:
            t.steps += steps
            t.sim_s += sim
    for c in _rows(run_dir / "calls.csv"):
        t.calls += 1
        lat = _num(c.get("lat_total_ms"))
        batched = (_num(c.get("batch")) or 1.0) > 1   # its time is the batch's, not a call's
        if lat is not None and not batched and str(c.get("warmup", "0")) not in ("1", "true", "True"):
            t.lat_ms += lat
            t.warm += 1
    return t


def earlier_runs(jobs: list[Job]) -> list[Timing]:
    seen: set[Path] = set()
    out = []
    for root in {Path(str(j.cfg.run.output_dir)) for j in jobs}:
        if not root.is_dir():
            continue
        for d in sorted(root.iterdir()):
            if d.is_dir() and d.resolve() not in seen and (d / "episodes.csv").is_file():
                seen.add(d.resolve())
                t = read_timing(d)
                if t is not None:
                    out.append(t)
    return out


def sim_per_step(runs: list[Timing], suite: str) -> float | None:
    same = [t for t in runs if t.suite == suite and t.steps > 0]
    steps = sum(t.steps for t in same)
    return sum(t.sim_s for t in same) / steps if steps else None


def policy_per_step(runs: list[Timing], model: str, pruner: str) -> tuple[float | None, bool]:
    """(policy seconds per step, True when only runs of the same model but another pruner
    gave it)."""
    for pick, fallback in ((lambda t: t.model == model and t.pruner == pruner, False),
                           (lambda t: t.model == model, True)):
        same = [t for t in runs if pick(t) and t.warm > 0 and t.steps > 0]
        if same:
            lat_s = sum(t.lat_ms for t in same) / sum(t.warm for t in same) / 1000.0
            calls_per_step = sum(t.calls for t in same) / sum(t.steps for t in same)
            return lat_s * calls_per_step, fallback
    return None, False


def task_ids(cfg: Any) -> list[int]:
    tasks = cfg.suite.get("tasks")
    if tasks is None:
        return list(range(int(cfg.suite.get("num_tasks") or 0)))
    return [int(tasks)] if isinstance(tasks, int) else [int(t) for t in tasks]


def episodes_per_task(cfg: Any) -> int:
    n = cfg.run.get("episodes_per_task")
    return int(n if n is not None else cfg.suite.get("episodes_per_task") or 0)


def step_limit(cfg: Any) -> int:
    """The most policy steps an episode may take (the protocol's limit, capped by run.max_steps)."""
    from vlabench.core.config import as_dict, cfg_get

    suite = cfg.suite
    proto = as_dict(cfg_get(cfg_get(suite, "protocols", {}), str(cfg_get(suite, "protocol", "")), {}))
    limit = proto.get("max_steps", cfg_get(suite, "max_steps", 0))
    limit = max(as_dict(limit).values()) if hasattr(limit, "keys") else int(limit or 0)
    cap = cfg.run.get("max_steps")
    return min(int(limit), int(cap)) if cap is not None else int(limit)


def existing(job: Job) -> tuple[int, str]:
    """(episodes recorded among the planned ones, resumable: yes / no: why / -)."""
    from omegaconf import OmegaConf

    from vlabench.records.resume import resume_problem

    d = job.run_dir
    if not (d / "config.yaml").is_file():
        return 0, "-"
    planned = {(t, e) for t in task_ids(job.cfg) for e in range(episodes_per_task(job.cfg))}
    done = {(int(r["task_id"]), int(r["episode"])) for r in _rows(d / "episodes.csv")
            if str(r.get("task_id", "")).isdigit() and str(r.get("episode", "")).isdigit()}
    try:
        saved = OmegaConf.to_container(OmegaConf.load(d / "config.yaml"), resolve=True)
    except Exception as e:
        return len(done & planned), f"no: config.yaml unreadable ({type(e).__name__})"
    problem = resume_problem(d, saved, OmegaConf.to_container(job.cfg, resolve=True))
    if problem:
        return len(done & planned), "no: " + problem.partition("; ")[0].replace(f"{d} ", "")
    return len(done & planned), "yes"


def _retention(cfg: Any) -> str:
    from vlabench.core.config import as_dict

    v = cfg.pruner.get("retention")
    if v is None or cfg.pruner.get("name") == "none":
        return "-"
    return ",".join(f"{k}:{x:g}" for k, x in as_dict(v).items()) if hasattr(v, "keys") else f"{v:g}"


def wall_hours(sim: float | None, pol: float | None, workers: int) -> float | None:
    """Wall seconds of a job: simulator then policy with one worker; with N workers stepping in
    parallel (at most one per core) while the policy serves them, the larger of the two."""
    if sim is None or pol is None:
        return None
    if workers <= 1:
        return sim + pol
    return max(sim / min(workers, len(os.sched_getaffinity(0))), pol)


def _hours(seconds: float | None) -> str:
    return "?" if seconds is None else f"{seconds / 3600:.3g}"


def plan_text(jobs: list[Job]) -> str:
    """The plan table and the estimate (see the module docstring)."""
    runs = earlier_runs(jobs)
    header = ["#", "run", "model", "pruner", "retention", "suite", "tasks x eps", "done/planned",
              "state", "resumable", "sim h", "policy h", "wall h"]
    records = throughput.load(sorted({Path(str(j.cfg.run.output_dir)) for j in jobs}))
    rows, left_total = [], 0
    sim_total: float | None = None
    pol_total: float | None = None
    wall_total: float | None = None
    missing_sim, missing_pol, marked, used_prior = False, False, False, False
    unbatched: set[str] = set()   # batched jobs without a throughput record
    for i, job in enumerate(jobs, 1):
        cfg = job.cfg
        tasks, n = task_ids(cfg), episodes_per_task(cfg)
        planned = len(tasks) * n
        done, resumable = existing(job)
        state = "new" if resumable == "-" else ("complete" if done >= planned else "partial")
        left = planned - done
        steps = left * step_limit(cfg)
        sps = sim_per_step(runs, str(cfg.suite.name))
        pps, fallback = policy_per_step(runs, str(cfg.model.name), str(cfg.pruner.name))
        sim_from_prior, pol_from_prior = sps is None, pps is None
        sps = sim_prior(cfg) if sps is None else sps
        pps = policy_prior(cfg) if pps is None else pps
        sim = None if sps is None else steps * sps
        pol = None if pps is None else steps * pps
        workers, batch = int(cfg.run.get("env_workers") or 1), int(cfg.run.get("batch") or 1)
        gain = (throughput.batch_gain(records, str(cfg.model.name), str(cfg.pruner.name), device_class(cfg),
                                      min(batch, workers)) if min(batch, workers) > 1 else None)
        if gain is not None and pol is not None:
            pol /= gain.gain
        elif min(batch, workers) > 1 and left:
            unbatched.add(f"model={cfg.model.name} pruner={cfg.pruner.name} run.output_dir={cfg.run.output_dir}")
        wall = wall_hours(sim, pol, workers)
        used_prior |= bool(left) and ((sim_from_prior and sim is not None) or (pol_from_prior and pol is not None))
        if left:
            missing_sim |= sim is None
            missing_pol |= pol is None
            marked |= fallback and pol is not None
        left_total += left
        if sim is not None:
            sim_total = (sim_total or 0.0) + sim
        if pol is not None:
            pol_total = (pol_total or 0.0) + pol
        if wall is not None:
            wall_total = (wall_total or 0.0) + wall
        rows.append([str(i), job.name, str(cfg.model.name), str(cfg.pruner.name), _retention(cfg),
                     str(cfg.suite.name), f"{len(tasks)} x {n}", f"{done}/{planned}", state,
                     resumable, (_hours(sim) + ("p" if sim_from_prior and sim is not None else "")) if left else "0",
                     (_hours(pol) + ("*" if fallback and pol is not None else "")
                      + ("p" if pol_from_prior and pol is not None else "")
                      + ("t" if gain is not None and pol is not None else "")) if left else "0",
                     _hours(wall) if left else "0"])
    widths = [max(len(r[k]) for r in [header, *rows]) for k in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    total = sum(len(task_ids(j.cfg)) * episodes_per_task(j.cfg) for j in jobs)
    lines.append(f"{len(jobs)} run(s), {total} episodes planned, {left_total} left "
                 f"(output: {', '.join(sorted({str(j.cfg.run.output_dir) for j in jobs}))})")
    lines += needs_lines(jobs)
    if left_total:
        lines.append("estimate for what is left (upper bound: every episode to its step limit): "
                     f"simulator {_hours(sim_total)} h, policy {_hours(pol_total)} h, wall {_hours(wall_total)} h "
                     f"(runs one after another on this machine)"
                     + ("; some runs have no timing data (?), not counted" if missing_sim or missing_pol else ""))
        if not runs:
            lines.append("no timing data: no recorded runs beside these (run.output_dir)")
        if marked:
            lines.append("* policy time from runs of the same model with another pruner")
        if any(r[-2].endswith("t") for r in rows):
            lines.append("t: batched policy time, the batch-1 time over the calls/s gain `vlabench bench "
                         "bench.throughput=true` recorded here (throughput/ beside the runs; a pruner "
                         "without a record of its own takes the model's record with another pruner)")
        if unbatched:
            lines.append(f"run.batch > 1 without a throughput record: policy hours at batch 1 (an upper "
                         f"bound); on the machine that will run them, `vlabench bench bench.throughput=true "
                         f"{sorted(unbatched)[0]}`" + (f" (and {len(unbatched) - 1} more like it)"
                                                         if len(unbatched) > 1 else "") + " records the gain")
        if used_prior:
            lines.append("p: a prior, not a measurement of yours (configs/plan_priors.yaml): simulator "
                         "seconds per step measured on a 2-core CPU; policy time per call of the unpruned "
                         "model, on a CPU measured there, on a GPU the papers' published latency "
                         f"({', '.join(sorted({device_class(j.cfg) for j in jobs}))} here)")
        lines += cpu_only_lines(jobs)
    return "\n".join(lines) + "\n"
