"""`vlabench bench --replay RUN_DIR`: batch-1 latency of a run, on the observations it recorded.

The run's config.yaml builds its model and pruner on this machine (`run.device=` may override the
device) and `pruner=none` as a fork of the same weights. Each recording (run.record_obs, one
episode per task: vlabench/records/observations.py) is replayed: both policies reset as the run
reset them (the episode's seed), then every recorded item in order: `act` on both, interleaved
ABBA call by call (bench_pairs.py), `observe` on both (and the pruner's `replan`, as the loop
asks it), so history-dependent methods see the sequence the run's policy saw. replay.csv (one
row per item and policy: latency per stage, CUDA time, memory, FLOPs per stage, tokens kept,
the run's tokens kept for the same call) and replay.json (machine, summary; written last) go into
the run directory under its lock. The report takes latency, Hz and speedup from them.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from vlabench.core.errors import ConfigError
from vlabench.core.schema import LATENCY_STAGES

COLUMNS = ["task_id", "episode", "item", "call", "kind", "step", "policy", "order", "source", "mode",
           *[f"lat_{s}_ms" for s in LATENCY_STAGES], "lat_observe_ms", "cuda_ms", "mem_peak_mb",
           "mem_kind", "tokens_in", "tokens_kept", "flops", "run_source", "run_tokens_kept"]
DEVICES = "auto, cpu, cuda, cuda:N"


def _overrides(args: list[str]) -> str | None:
    """The only override a replay takes: run.device (the device it measures on)."""
    device = None
    for a in args:
        key, eq, value = a.partition("=")
        if key.lstrip("+") != "run.device" or not eq:
            raise ConfigError(f"bench --replay takes only run.device=... ({DEVICES}); got {a!r}")
        if value not in ("auto", "cpu", "cuda") and not (value.startswith("cuda:") and value[5:].isdigit()):
            raise ConfigError(f"run.device={value!r} is invalid; valid: {DEVICES}")
        device = value
    return device


def _no_recordings(run_dir: Path, man: dict[str, Any]) -> ConfigError:
    cmd = man.get("command") or "vlabench run ..."
    return ConfigError(f"{run_dir} has no recorded observations (obs/): record them with `{cmd} "
                       f"run.record_obs=4 run.name=<a new run>` (a run records one episode per task "
                       f"among those it still has to run), then `vlabench bench --replay` that run")


def _run_calls(run_dir: Path) -> dict[tuple[int, int, int], tuple[str, str]]:
    """(task, episode, call) -> (source, tokens_kept) of the run's calls.csv."""
    import csv

    out = {}
    with open(run_dir / "calls.csv", newline="", encoding="utf-8") as f:
        for r in csv.DictReader(f):
            out[(int(r["task_id"]), int(r["episode"]), int(r["call"]))] = (r["source"], r["tokens_kept"])
    return out


class _Side:
    """One policy of the pair: its calls become rows."""

    def __init__(self, name: str, policy: Any):
        self.name, self.policy = name, policy

    def act(self, obs: Any) -> dict[str, Any]:
        out = self.policy.act(obs)
        s = out.stats
        row = {"policy": self.name, "source": s.source, "mode": s.mode, "cuda_ms": s.cuda_ms,
               "mem_peak_mb": s.mem_peak_mb, "mem_kind": s.mem_kind, "tokens_in": s.tokens_in,
               "tokens_kept": s.tokens_kept, "flops": s.flops}
        row.update({f"lat_{k}_ms": v for k, v in s.latency_ms.items()})
        if s.source == "model":
            row.update({f"flops_{k}": v for k, v in (getattr(self.policy, "last_flops_by_stage", None) or {}).items()})
        return row

    def observe(self, obs: Any) -> dict[str, Any]:
        t0 = time.perf_counter()
        observe = getattr(self.policy, "observe", None)
        if observe is not None:
            observe(obs)
            self.policy.pruner.replan()   # the loop asks after every observed step
        return {"policy": self.name, "source": "observe",
                "lat_observe_ms": 1000.0 * (time.perf_counter() - t0)}


def _replay_episode(rec: Any, sides: tuple[_Side, _Side], order_from: int, rows: list[dict],
                    run_calls: dict) -> int:
    """Replay one recording; returns the next pair index (ABBA runs over the whole replay)."""
    from vlabench.commands.bench_pairs import order
    from vlabench.run.loop import seed_everything

    seed_everything(rec.episode.seed)
    for side in sides:
        side.policy.pruner.reset()
        side.policy.reset(rec.task)
    pair, call = order_from, 0
    for i, (kind, obs) in enumerate(rec.items):
        ids = {"task_id": rec.task.id, "episode": rec.episode.index, "item": i, "kind": kind,
               "step": obs.step, "call": call if kind == "act" else None}
        if kind == "act":
            o = order(pair)
            first, second = sides if o == "AB" else sides[::-1]
            got = [first.act(obs), second.act(obs)]
            src, kept = run_calls.get((rec.task.id, rec.episode.index, call), (None, None))
            for r in got:
                rows.append({**ids, "order": o, "run_source": src, "run_tokens_kept": kept, **r})
            pair, call = pair + 1, call + 1
        else:
            for side in sides:
                rows.append({**ids, **side.observe(obs)})
    return pair


def _build(run_dir: Path, man: dict[str, Any], device: str | None) -> tuple[Any, Any, Any]:
    from omegaconf import OmegaConf

    from vlabench.core.contracts import PRIVILEGED_KEY
    from vlabench.core.pruning import Pruner
    from vlabench.core.registry import build_plugin
    from vlabench.records.verify import load_config

    cfg = OmegaConf.create(load_config(run_dir, man))
    if device is not None:
        cfg.run.device = device
    pruner = build_plugin(cfg, "pruner")
    policy = build_plugin(cfg, "model", pruner=pruner, suite_cfg=cfg.suite, device=str(cfg.run.device))
    if PRIVILEGED_KEY in getattr(policy, "needs", ()) or not callable(getattr(policy, "fork", None)):
        raise ConfigError(f"{cfg.model.name} reads the live simulator (or cannot share its weights "
                          f"with a pruner=none twin): it has no latency to replay")
    if getattr(policy, "shape_only", False):
        raise ConfigError(f"{cfg.model.name} builds on the meta device here (no GPU, no checkpoint): "
                          f"replay on a machine with a GPU (run.device=cuda)")
    return cfg, policy, policy.fork(Pruner())


def _device_name(device: str) -> str:
    if str(device).startswith("cuda"):
        import torch

        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def replay(run_dir: str, overrides: list[str] | None = None) -> dict[str, Any]:
    """Replay the run's recordings (module docstring); returns replay.json's content."""
    from vlabench.records import observations as store
    from vlabench.records.locking import RunLock
    from vlabench.records.verify import load_manifest

    device = _overrides(overrides or [])
    path = Path(run_dir)
    if not path.is_dir():
        raise ConfigError(f"bench --replay {run_dir}: no such run directory")
    man = load_manifest(path)
    files = store.recorded(path)
    if not files:
        raise _no_recordings(path, man)
    lock = RunLock(path)
    try:
        lock.acquire()   # one writer: not while the run (or another replay) writes this directory
    except OSError as e:
        raise ConfigError(f"bench --replay {run_dir}: cannot write there ({e.strerror})") from None
    try:
        return _replay_locked(path, man, files, device)
    finally:
        lock.release()


def _replay_locked(path: Path, man: dict[str, Any], files: dict[int, Path], device: str | None) -> dict[str, Any]:
    import platform

    import torch

    from vlabench import __version__
    from vlabench.commands.bench import ORDER_NOTE
    from vlabench.records import observations as store
    from vlabench.records.files import atomic_write_text, format_rows, sha256
    from vlabench.records.machine import machine
    from vlabench.records.provenance import git_state, now

    recs = [store.load(p) for p in files.values()]
    cfg, policy, base = _build(path, man, device)
    started = now()
    sides = (_Side("method", policy), _Side("baseline", base))
    warm = getattr(policy, "warm_up", None)
    if warm is not None:
        warm()
    first = next(obs for kind, obs in recs[0].items if kind == "act")
    for side in sides:   # one unrecorded call each: both code paths warm
        side.policy.reset(recs[0].task)
        side.policy.act(first)
    rows: list[dict] = []
    pair, run_calls = 0, _run_calls(path)
    for rec in recs:
        pair = _replay_episode(rec, sides, pair, rows, run_calls)
    extra = sorted({k for r in rows for k in r} - set(COLUMNS))   # flops_<stage> (and new stages)
    text = format_rows(COLUMNS + extra, rows, header=True)
    acts = [r for r in rows if r["kind"] == "act" and r["policy"] == "method"]
    compared = [r for r in acts if r["run_tokens_kept"] not in (None, "")]
    same = sum(1 for r in compared if str(r["tokens_kept"] if r["tokens_kept"] is not None else "")
               == r["run_tokens_kept"] and r["source"] == r["run_source"])
    commit, dirty = git_state()
    info = {
        "run": man.get("run_name"), "model": cfg.model.name, "pruner": man["pruner"],
        "pruner_config": cfg.pruner.name, "suite": man["suite"], "batch": 1,
        "device": str(policy.device), "device_name": _device_name(policy.device),
        "machine": machine(policy.device), "host": platform.node(), "torch": torch.__version__,
        "dtype": str(policy.dtype).removeprefix("torch."), "run_device": man.get("device"),
        "baseline": "pruner=none: a fork of the same policy (same weights, same process)",
        "order": ORDER_NOTE + "; observed open-loop steps reach both policies in order",
        "recordings": [{"file": f"{store.OBS_DIR}/{p.name}", "sha256": sha256(p.read_bytes()),
                        "task_id": r.task.id, "episode": r.episode.index, "acts": r.acts,
                        "observes": len(r.items) - r.acts} for p, r in zip(files.values(), recs, strict=True)],
        "selections": {"calls_compared": len(compared), "equal_to_run": same,
                       "what": "tokens_kept and source of each replayed call vs the run's calls.csv"},
        "vlabench_version": __version__, "git_commit": commit, "git_dirty": dirty,
        "started_at": started, "finished_at": now(), "csv_sha256": sha256(text.encode("utf-8")),
    }
    import json

    atomic_write_text(path / "replay.csv", text)
    atomic_write_text(path / "replay.json", json.dumps(info, indent=2, sort_keys=True, default=str) + "\n")
    _print(path, info, rows)
    return info


def _print(path: Path, info: dict[str, Any], rows: list[dict]) -> None:
    from vlabench.report.replay import above, figures, flops_bound, load_replay, paired_speedup

    f = figures(load_replay(path))
    s, lo, hi = paired_speedup(f.base_step, f.step, True, f.episode, "episode")   # as the report
    bound, changed = flops_bound(f.flops["baseline"], f.flops["method"])
    base_lat = np.asarray([r.get("lat_total_ms") for r in rows if r["kind"] == "act" and r["policy"] == "baseline"
                           and r["source"] == "model"], dtype=float)
    sel = info["selections"]
    print(f"replay of {path} on {info['device_name']}: {len(f.step)} recorded calls of "
          f"{len(info['recordings'])} episodes, batch 1, interleaved with pruner=none")
    print(f"  {info['pruner_config']}: latency mean {np.mean(f.lat) if f.lat.size else float('nan'):.2f} ms "
          f"(model calls {f.lat.size}); pruner=none: {np.mean(base_lat) if base_lat.size else float('nan'):.2f} ms")
    print(f"  speedup {s:.2f}x [95% CI {lo:.2f}, {hi:.2f}, episodes resampled]; FLOPs bound {bound:.2f}x "
          f"(stages changed: {', '.join(changed) or 'none'})" + ("; ABOVE THE BOUND beyond noise: not comparable" if above(s, lo, bound) else ""))
    print(f"  token selections equal to the run's: {sel['equal_to_run']}/{sel['calls_compared']} calls")
    print(f"  wrote {path / 'replay.csv'} and {path / 'replay.json'}", file=sys.stdout)
