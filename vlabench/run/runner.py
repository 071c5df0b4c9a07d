"""One run from its composed config: the run directory, the plugins, the episodes, the summary.

`run_from_config` claims and locks the run directory (vlabench.records.resume: a fresh start, a
resume or a refusal), builds the suite, pruner and policy, writes the manifest, then runs the
pending episodes in this process (vlabench.run.loop) or on run.env_workers simulator processes
(vlabench.run.workers). After each committed episode the manifest records the records' digest;
a start that fails or is interrupted undoes only what it created. Around the loop: the progress
display, sim.log for simulator chatter, videos and the user's tracker.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

from vlabench.core.contracts import IMAGE_KEYS
from vlabench.core.errors import ConfigError
from vlabench.core.registry import build_plugin
from vlabench.records.files import RecordsError, RunFiles, sha256
from vlabench.records.provenance import manifest, now, protocol_deviations, seal
from vlabench.records.resume import prepare_run_dir
from vlabench.records.shards import select_shard
from vlabench.records.summary import write_summary
from vlabench.run.loop import Runner
from vlabench.run.progress import RunProgress, StartupStatus, earlier_successes
from vlabench.run.suite_build import build_suite


def run_from_config(cfg: Any) -> Any:
    """Run (or resume) the composed config; returns the summary table.

    The run directory is locked for the whole call. A start that fails or is interrupted
    before the first episode undoes only what this invocation created. Simulator chatter and
    Python warnings go to the run directory's sim.log meanwhile."""
    from vlabench.run.simlog import attached

    files, old, claim = prepare_run_dir(cfg)
    try:
        with attached(files.dir) as simlog:
            table = _run_locked(cfg, files, old, claim)
        if simlog.count:
            print(f"vlabench: {simlog.count} simulator/library messages in {files.dir / 'sim.log'}",
                  file=sys.stderr, flush=True)
        return table
    finally:
        claim.close()


def _start(cfg: Any, files: RunFiles, old: dict[str, Any] | None) -> tuple[Any, ...]:
    """Build the plugins, check and repair the records; (runner, plan, tasks, done, info).
    `old`: the resumed run's manifest (prepare_run_dir), None for a fresh start."""
    from vlabench.models.checkpoint_check import check_checkpoints

    check_checkpoints([cfg])   # every checkpoint file, in seconds, before the slow setup below
    resumed = old is not None
    if resumed:   # damaged records refuse before any model is built
        done = files.open(old.get("records"))
        for line in files.repairs:
            print(f"vlabench: repaired {files.dir}/{line}", file=sys.stderr)
    title = f"{cfg.model.name}/{cfg.pruner.name}/{cfg.suite.name}"
    with StartupStatus(bool(cfg.run.quiet), title) as status:   # start-up takes minutes on a CPU
        status.phase(f"importing and building the simulator ({cfg.suite.name})")
        suite = build_suite(cfg)
        pruner = build_plugin(cfg, "pruner")
        status.phase(f"importing and loading the model ({cfg.model.name})")
        policy = build_plugin(cfg, "model", pruner=pruner, suite_cfg=cfg.suite,
                              device=str(cfg.run.device))
    if getattr(policy, "shape_only", False):
        raise ConfigError(f"{cfg.model.name} with model.checkpoint=null on a machine without a GPU is "
                          f"built on the meta device (shapes and FLOPs only): use `vlabench bench`, "
                          f"or model={cfg.model.name}-tiny to run episodes")
    check_batchable(cfg, policy, files)
    tasks = suite.tasks()
    runner = Runner(cfg, suite, policy, pruner, files)
    if runner.timing is not None:   # suite.timing=sync|async: refused here, before any record
        runner.timing.check(cfg, policy)
    plan = {t.id: suite.episodes(t, cfg.run.episodes_per_task, int(cfg.run.seed)) for t in tasks}
    plan = select_shard(plan, cfg.run.get("shard"))   # run.shard=i/n: this shard's episodes
    if not resumed:   # a fresh run's record files appear just before its manifest
        done = files.open()
    info = manifest(cfg, policy, protocol_deviations(cfg, len(suite.all_tasks())), now())
    info["rendered_cameras"] = sorted(runner.needs & set(IMAGE_KEYS))
    info["max_steps"] = {t.id: runner.max_steps(t) for t in tasks}
    info["episodes_per_task"] = {t: len(eps) for t, eps in plan.items()}
    info["config_sha256"] = sha256(files.config_yaml.read_bytes())
    if runner.timing is not None:   # a frozen run's manifest stays as before
        info["timing"] = runner.timing.describe()
    if old:
        info["started_at"] = old.get("started_at", info["started_at"])
        info["resumed_at"] = (old.get("resumed_at") or []) + [now()]
        if old.get("merged_from"):   # a merged run resumed: its shards stay named
            info["merged_from"] = old["merged_from"]
    _record_obs(cfg, files, runner, plan, done, info)
    return runner, plan, tasks, done, info


def _record_obs(cfg: Any, files: RunFiles, runner: Runner, plan: dict, done: set, info: dict) -> None:
    """run.record_obs=K: the manifest names the episodes recorded (vlabench/run/obs_recorder.py);
    in this process the runner records them, with env workers each worker does."""
    from vlabench.records.observations import recorded, recording_plan
    from vlabench.run.obs_recorder import install

    k = int(cfg.run.get("record_obs") or 0)
    if k:
        pending = {t: [ep.index for ep in eps if (t, ep.index) not in done] for t, eps in plan.items()}
        info["record_obs"] = recording_plan(k, recorded(files.dir), pending)
        if int(cfg.run.get("env_workers") or 1) <= 1:
            install(runner, files.dir, info["record_obs"])


def check_batchable(cfg: Any, policy: Any, files: RunFiles) -> None:
    """run.batch > 1 needs a policy the main process serves with a batched forward, and a
    calls.csv that records each call's batch size."""
    batch = int(cfg.run.get("batch") or 1)
    if batch <= 1:
        return
    if "batch" not in files.call_columns:
        raise ConfigError(f"run.batch={batch}: this run's calls.csv predates the batch column, so "
                          f"batched calls could not be told from batch-1 ones; resume it with run.batch=1")
    from vlabench.run.workers import serves_in_main

    if not serves_in_main(policy):
        raise ConfigError(f"run.batch={batch}: {cfg.model.name} reads the live simulator (or cannot "
                          f"fork per-worker views), so each worker runs its own copy and there are no "
                          f"calls to batch; valid: run.batch=1")
    if not getattr(policy, "batchable", False):
        raise ConfigError(f"run.batch={batch}: {cfg.model.name} has no batched forward yet; valid: "
                          f"run.batch=1 (batched: openvla, openvla-oft, pi0, cogact and their -tiny builds)")


def _run_locked(cfg: Any, files: RunFiles, old: dict[str, Any] | None, claim: Any) -> Any:
    def commit() -> None:
        info["records"] = files.digest()
        files.write_json(files.manifest_json, seal(info))

    try:
        runner, plan, tasks, done, info = _start(cfg, files, old)
        commit()
    except BaseException:
        if old is None:
            claim.abandon()
        else:   # a resume that failed before its first episode: the records stay as they were
            claim.lock.release(remove=True)
        raise

    runner.on_commit = commit
    total = sum(len(v) for v in plan.values())
    already = sum(1 for t, eps in plan.items() for ep in eps if (t, ep.index) in done)
    title = f"{cfg.model.name}/{cfg.pruner.name}/{cfg.suite.name}"
    try:
        from vlabench.run.loggers import make

        runner.logger = make(cfg, files.dir, start_index=already)
        wins = earlier_successes(files.episodes_csv, done) if already else 0
        with RunProgress(total, already, bool(cfg.run.quiet), title, wins) as progress:
            if not progress.quiet:
                runner.on_step = functools.partial(progress.step, 0)
            if int(cfg.run.get("env_workers") or 1) > 1:   # N simulator processes
                from vlabench.run.workers import run_parallel

                run_parallel(runner, done, progress, plan, tasks)
            else:
                runner.run_serial(done, progress, plan, tasks)
        table = write_summary(files)
    except BaseException:
        info["status"] = "interrupted"
        try:
            commit()
        except (OSError, RecordsError):  # disk full: the last good manifest stays (resumable)
            pass
        if runner.logger is not None:
            runner.logger.finish(None, "interrupted")
        raise
    info["status"], info["finished_at"] = "complete", now()
    commit()
    runner.logger.finish(table, "complete")
    _print_result(table, files.dir, runner)
    return table


def _print_result(table: Any, run_dir: Path, runner: Runner) -> None:
    row = table[table["level"] == "suite"]
    if row.empty:
        return
    r = row.iloc[0]
    per_step = (f"{1000.0 * runner.overhead_s / runner.steps_total:.3f} ms/step" if runner.steps_total
                else "n/a (no steps ran)")
    lat = r["latency_p50_ms"]
    lat_text = f"latency p50 {lat:.1f} ms" if lat == lat else "latency n/a (warm-up calls only)"
    print(f"{r['suite']}: {int(r['successes'])}/{int(r['episodes'])} success "
          f"({100 * r['success_rate']:.1f}%, 95% CI {100 * r['sr_ci_low']:.1f}-{100 * r['sr_ci_high']:.1f}), "
          f"{int(r['errors'])} errors; {lat_text}; "
          f"harness overhead {per_step}; records in {run_dir}")
