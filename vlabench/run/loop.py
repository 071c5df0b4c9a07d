"""The episode loop: one (policy, pruner) rolled out on one suite, one episode at a time.

`Runner.run_episode` is the only code that steps a simulator against a policy: re-seed, reset
the environment, the pruner and the policy, then step until success or the step limit, calling
the policy whenever its open-loop action queue is empty (suite.timing=sync|async: when
vlabench.run.timing's schedule says, with simulated latency). An exception inside an episode becomes
the episode's record (error type and message), never a crash. `run_serial` runs every pending
episode in this process and commits each one before the next starts; with run.env_workers > 1
the same `run_episode` runs inside each simulator worker (vlabench.run.workers).
"""

from __future__ import annotations

import random
import sys
import time
from collections import deque
from typing import Any

import numpy as np

from vlabench.core.contracts import IMAGE_KEYS, STATE_KEYS, EpisodeSpec, TaskInfo
from vlabench.core.errors import one_line
from vlabench.core.timing import is_timed
from vlabench.records.files import RunFiles, call_row
from vlabench.records.summary import write_summary
from vlabench.run import stopping, video
from vlabench.run.progress import RunProgress
from vlabench.run.timing import Schedule, Timing


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


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
        self.pool: Any = None       # run.env_workers > 1: the vlabench.run.workers.WorkerPool
        self.on_step: Any = None    # called with the step count after every step (progress)
        self.logger: Any = None     # run.logger: a vlabench.run.loggers.RunLogger
        mode = video.mode_of(cfg)
        self.frames = video.EpisodeFrames(mode) if mode != "none" else None
        if self.frames is not None:   # rendered for the video (rendering cost, same results)
            self.needs = self.needs | {video.CAMERA}
        self.pending_video: video.Pending | None = None   # the last episode's, until committed
        self.timing = Timing(cfg) if is_timed(cfg) else None   # None: frozen, the papers' protocol

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
        sched: Schedule | None = None
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
            if self.timing is not None:   # suite.timing=sync|async (vlabench.run.timing)
                sched = self._schedule(task, ep, calls, observe, replan)
                sched.record(obs)
            while steps < max_steps:
                stopping.check()   # a Ctrl-C the simulator's code swallowed (stopping.py)
                tp = time.perf_counter()
                if sched is not None:
                    action = sched.action(obs, steps)
                    policy_s += time.perf_counter() - tp
                else:
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
                if sched is not None:
                    sched.record(obs)
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
        if sched is not None:
            row.update(sched.summary(steps, success))
        if rec is not None:
            self.pending_video = rec.take(task.id, ep.index, success)
        return row, calls

    def _schedule(self, task: TaskInfo, ep: EpisodeSpec, calls: list[dict], observe: Any,
                  replan: Any) -> Schedule:
        """The episode's sync/async schedule; its policy calls append their calls.csv rows."""
        def call(obs: Any, step: int) -> tuple[Any, dict]:
            out = self.policy.act(obs)
            calls.append(call_row(task.id, ep.index, len(calls), step, out.stats))
            return out, calls[-1]

        return Schedule(self.timing, self.policy, call, observe, replan)

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

    def run_serial(self, done: set[tuple[int, int]], progress: RunProgress,
                   plan: dict[int, list[EpisodeSpec]], tasks: list[TaskInfo]) -> None:
        """Every pending episode of `plan`, in this process, task by task."""
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
