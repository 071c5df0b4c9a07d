"""The episode loop: the only place that rolls out policies and writes results.

For each selected task it builds the suite's environment once (rendering only what the
policy needs), and for each pending episode: re-seeds the global RNGs, restores the episode's
init state, resets the pruner and the policy, then steps until success or the step limit,
calling the policy whenever its open-loop action queue is empty (and showing the policy, if
it has an `observe` method, each observation it is not called on; the pruner's `replan()`
may then empty the queue, so the policy is called at that step). An exception inside an
episode (simulator or model) is recorded as a failed episode with its type and message, the
environment is rebuilt, and the run goes on. Each finished episode is committed to disk
before the next starts, so an interrupt or SIGKILL never loses it, and re-running the same
command skips it (resume); after each commit manifest.json records the records' digest. The
run directory is locked for the whole run (vlabench/locking.py: one writer, also for any future
worker or shard), and a start that fails or is interrupted undoes only what it created
(vlabench/rundir.py). With run.env_workers=N > 1 the episodes run on N simulator processes that
share the one policy (vlabench/workers.py); each runs `Runner.run_episode`, this same loop.
Around the loop: the progress display advances per step (vlabench/progress.py), simulator
chatter goes to the run directory's sim.log (vlabench/simlog.py), and after each commit the
episode's video is written (run.video, vlabench/video.py) and its metrics are sent to the
user's tracker (run.logger, vlabench/loggers.py); none of them is counted as harness overhead
except the per-step hooks themselves.
"""

from __future__ import annotations

import functools
import random
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from vlabench import registry, stopping, video
from vlabench.contracts import IMAGE_KEYS, STATE_KEYS, EpisodeSpec, TaskInfo
from vlabench.progress import RunProgress
from vlabench.provenance import manifest, now, protocol_deviations, seal
from vlabench.records import RecordsError, RunFiles, atomic_write_text, call_row, sha256
from vlabench.registry import ConfigError
from vlabench.resume import prepare_run_dir
from vlabench.shards import select_shard

ERROR_CHARS = 500


def build_plugin(cfg: Any, group: str, **kwargs: Any) -> Any:
    """Instantiate the plugin that the composed config's `group` node names, called with that
    node (and `kwargs`)."""
    node = cfg[group]
    return registry.Entry.from_mapping(group, str(node.get("name")), node, Path(".")).build(node, **kwargs)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:ERROR_CHARS]


class Runner:
    """Rolls out one (policy, pruner) on one suite and commits records per episode."""

    def __init__(self, cfg: Any, suite: Any, policy: Any, pruner: Any, files: RunFiles):
        self.cfg = cfg
        self.suite = suite
        self.policy = policy
        self.pruner = pruner
        self.files = files
        self.needs = frozenset(getattr(policy, "needs", frozenset(IMAGE_KEYS + STATE_KEYS)))
        self.step_cap = cfg.run.max_steps
        self.final_step_success = getattr(suite, "success_mode", "first_done") == "final_step"
        self.overhead_s = 0.0
        self.steps_total = 0
        self.on_commit: Any = None  # called after each committed episode (the manifest's digest)
        self.pool: Any = None       # run.env_workers > 1: the vlabench.workers.WorkerPool
        self.on_step: Any = None    # called with the step count after every step (progress)
        self.logger: Any = None     # run.logger: a vlabench.loggers.RunLogger
        mode = video.mode_of(cfg)
        self.frames = video.EpisodeFrames(mode) if mode != "none" else None
        if self.frames is not None:   # rendered for the video (rendering cost, same results)
            self.needs = self.needs | {video.CAMERA}
        self.pending_video: video.Pending | None = None   # the last episode's, until committed

    def max_steps(self, task: TaskInfo) -> int:
        """The suite's limit for `task`, capped by run.max_steps."""
        limit = self.suite.max_steps(task)
        return min(limit, self.step_cap) if self.step_cap is not None else limit

    def run_episode(self, env: Any, task: TaskInfo, ep: EpisodeSpec) -> tuple[dict, list[dict]]:
        """One episode; never raises for simulator or model errors (they become the record).

        Success is the first `done` (LIBERO) or, for suites whose `success_mode` is
        "final_step" (SIMPLER), the flag of the last step executed."""
        t0 = time.perf_counter()
        max_steps = self.max_steps(task)
        sim_s = policy_s = 0.0
        calls: list[dict] = []
        steps, success, err_type, err = 0, False, "", ""
        rec, on_step = self.frames, self.on_step
        if rec is not None:
            rec.begin(max_steps)
        try:
            seed_everything(ep.seed)
            ts = time.perf_counter()
            obs = env.reset(ep)
            sim_s += time.perf_counter() - ts
            if rec is not None:
                rec.add(obs, 0, None, None)
            self.pruner.reset()
            self.policy.reset(task)
            queue: deque = deque()
            observe = getattr(self.policy, "observe", None)
            replan = getattr(self.pruner, "replan", None)
            while steps < max_steps:
                stopping.check()   # a Ctrl-C the simulator's code swallowed (stopping.py)
                tp = time.perf_counter()
                if queue and observe is not None:   # a step served open-loop from the chunk
                    observe(obs)
                    if replan is not None and replan():   # the pruner discards the rest of the chunk
                        queue.clear()
                if not queue:
                    out = self.policy.act(obs)
                    calls.append(call_row(task.id, ep.index, len(calls), steps, out.stats))
                    queue.extend(out.actions)
                policy_s += time.perf_counter() - tp
                action = queue.popleft()
                ts = time.perf_counter()
                obs, done = env.step(action, steps + 1)
                sim_s += time.perf_counter() - ts
                steps += 1
                if rec is not None:
                    rec.add(obs, steps, action, calls[-1]["tokens_kept"] if calls else None)
                if on_step is not None:
                    on_step(steps)
                if self.final_step_success:
                    success = done
                elif done:
                    success = True
                    break
        except Exception as e:  # recorded, never fatal: the run goes on
            stopping.check()   # an error made of a swallowed Ctrl-C is not a failed episode
            err_type, err = type(e).__name__, one_line(e)
        wall = time.perf_counter() - t0
        self.overhead_s += max(0.0, wall - sim_s - policy_s)
        self.steps_total += steps
        row = self.episode_row(task, ep, success=success, steps=steps, calls=calls, wall_s=wall,
                               sim_s=sim_s, policy_s=policy_s, error_type=err_type, error=err)
        if rec is not None:
            self.pending_video = rec.take(task.id, ep.index, success)
        return row, calls

    def episode_row(self, task: TaskInfo, ep: EpisodeSpec, *, success: bool = False, steps: int = 0,
                    calls: list[dict] = (), wall_s: float = 0.0, sim_s: float = 0.0,
                    policy_s: float = 0.0, error_type: str = "", error: str = "") -> dict:
        """One episodes.csv row (an environment that failed to build: the defaults)."""
        return {
            "run_id": self.cfg.run.name, "model": self.cfg.model.name,
            "pruner": self.cfg.pruner.name, "suite": self.cfg.suite.name,
            "task_id": task.id, "task_name": task.name, "episode": ep.index,
            "init_state": ep.init_state, "seed": ep.seed, "success": success, "steps": steps,
            "policy_calls": len(calls),
            "model_calls": sum(1 for c in calls if c["source"] == "model"),
            "wall_s": round(wall_s, 4), "sim_s": round(sim_s, 4), "policy_s": round(policy_s, 4),
            "error_type": error_type, "error": error,
        }

    def _committed(self) -> None:
        if self.on_commit is not None:
            self.on_commit()

    def after_commit(self, row: dict, calls: list[dict]) -> None:
        """The episode is on disk: send its metrics to the tracker and, in-process, write its
        video (a worker writes its own, see env_worker.py)."""
        if self.logger is not None:
            self.logger.episode(row, calls)
        if self.files is not None and self.pending_video is not None:
            pending, self.pending_video = self.pending_video, None
            video.write(self.files.dir, pending)

    def run(self, done: set[tuple[int, int]], progress: RunProgress, plan: dict[int, list[EpisodeSpec]],
            tasks: list[TaskInfo]) -> None:
        if int(self.cfg.run.get("env_workers") or 1) > 1:   # N simulator processes (workers.py)
            from vlabench.workers import run_parallel

            run_parallel(self, done, progress, plan, tasks)
            return
        warm_up = getattr(self.policy, "warm_up", None)
        if warm_up is not None and any((t.id, ep.index) not in done for t in tasks for ep in plan[t.id]):
            warm_up()   # unrecorded: fresh and resumed runs record only warm calls
        for task in tasks:
            pending = [ep for ep in plan[task.id] if (task.id, ep.index) not in done]
            if not pending:
                continue
            env = None
            task_succ = 0
            try:
                for ep in pending:
                    if env is None:
                        try:
                            env = self.suite.make_env(task, self.needs)
                        except Exception as e:
                            stopping.check()   # a build cut by Ctrl-C is no failed episode
                            row = self.episode_row(task, ep, error_type=type(e).__name__,
                                                   error=one_line(e))
                            self.files.append_episode(row, [])
                            self._committed()
                            progress.episode_done(False, f"task {task.id}")
                            self.after_commit(row, [])
                            continue
                    progress.episode_start(0, f"task {task.id} episode {ep.index}", self.max_steps(task))
                    row, calls = self.run_episode(env, task, ep)
                    tc = time.perf_counter()
                    self.files.append_episode(row, calls)
                    self._committed()
                    self.overhead_s += time.perf_counter() - tc  # the commit is harness time too
                    task_succ += int(row["success"])
                    progress.episode_done(row["success"], f"task {task.id}")
                    self.after_commit(row, calls)
                    if row["error_type"]:
                        env.close()
                        env = None
            finally:
                if env is not None:
                    env.close()
            progress.task_done(f"{self.cfg.suite.name} task {task.id}", task_succ, len(pending))
            write_summary(self.files)


def write_summary(files: RunFiles) -> Any:
    from vlabench.metrics.summary import load_run_frames, summarize

    eps, calls = load_run_frames(files.dir)
    table = summarize(eps, calls)
    atomic_write_text(files.summary_csv, table.to_csv(index=False, lineterminator="\n"))
    return table


def run_from_config(cfg: Any) -> Any:
    """Run (or resume) the composed config; returns the summary table.

    The run directory is locked for the whole call. A start that fails or is interrupted
    before the first episode undoes only what this invocation created. Simulator chatter and
    Python warnings go to the run directory's sim.log meanwhile."""
    from vlabench.simlog import attached

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
    resumed = old is not None
    if resumed:   # damaged records refuse before any model is built
        done = files.open(old.get("records"))
        for line in files.repairs:
            print(f"vlabench: repaired {files.dir}/{line}", file=sys.stderr)
    suite = build_plugin(cfg, "suite")
    pruner = build_plugin(cfg, "pruner")
    policy = build_plugin(cfg, "model", pruner=pruner, suite_cfg=cfg.suite,
                          device=str(cfg.run.device))
    if getattr(policy, "shape_only", False):
        raise ConfigError(f"{cfg.model.name} with model.checkpoint=null on a machine without a GPU is "
                          f"built on the meta device (shapes and FLOPs only): use `vlabench bench`, "
                          f"or model={cfg.model.name}-tiny to run episodes")
    tasks = suite.tasks()
    runner = Runner(cfg, suite, policy, pruner, files)
    plan = {t.id: suite.episodes(t, cfg.run.episodes_per_task, int(cfg.run.seed)) for t in tasks}
    plan = select_shard(plan, cfg.run.get("shard"))   # run.shard=i/n: this shard's episodes
    if not resumed:   # a fresh run's record files appear just before its manifest
        done = files.open()
    info = manifest(cfg, policy, protocol_deviations(cfg, len(suite.all_tasks())), now())
    info["rendered_cameras"] = sorted(runner.needs & set(IMAGE_KEYS))
    info["max_steps"] = {t.id: runner.max_steps(t) for t in tasks}
    info["episodes_per_task"] = {t: len(eps) for t, eps in plan.items()}
    info["config_sha256"] = sha256(files.config_yaml.read_bytes())
    if old:
        info["started_at"] = old.get("started_at", info["started_at"])
        info["resumed_at"] = (old.get("resumed_at") or []) + [now()]
        if old.get("merged_from"):   # a merged run resumed: its shards stay named
            info["merged_from"] = old["merged_from"]
    return runner, plan, tasks, done, info


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
        raise

    runner.on_commit = commit
    total = sum(len(v) for v in plan.values())
    already = sum(1 for t, eps in plan.items() for ep in eps if (t, ep.index) in done)
    title = f"{cfg.model.name}/{cfg.pruner.name}/{cfg.suite.name}"
    try:
        from vlabench.loggers import make

        runner.logger = make(cfg, files.dir, start_index=already)
        with RunProgress(total, already, bool(cfg.run.quiet), title) as progress:
            if not progress.quiet:
                runner.on_step = functools.partial(progress.step, 0)
            runner.run(done, progress, plan, tasks)
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
    per_step = 1000.0 * runner.overhead_s / runner.steps_total if runner.steps_total else float("nan")
    lat = r["latency_p50_ms"]
    lat_text = f"latency p50 {lat:.1f} ms" if lat == lat else "latency n/a (warm-up calls only)"
    print(f"{r['suite']}: {int(r['successes'])}/{int(r['episodes'])} success "
          f"({100 * r['success_rate']:.1f}%, 95% CI {100 * r['sr_ci_low']:.1f}-{100 * r['sr_ci_high']:.1f}), "
          f"{int(r['errors'])} errors; {lat_text}; "
          f"harness overhead {per_step:.3f} ms/step; records in {run_dir}")
