"""One environment worker process of `run.env_workers=N` (the main side: vlabench/run/workers.py).

The worker builds the suite from the composed config and runs `Runner.run_episode`, the same
episode loop as the in-process run, on the episodes the main process sends it. The policy is
either a `RemotePolicy`, whose every call is a round trip to the main process (which holds the
one model and serves calls one at a time), or, for policies that read the live simulator
(`needs` contains "privileged", e.g. the oracle) or cannot fork per-slot copies, a copy built
in this process. The finished episode (row and call rows) goes back to the main process, the
only writer of records.

Simulator chatter goes to the run directory's sim.log (vlabench/run/simlog.py); the running
episode's step count goes to the main process's progress display at most every STEP_EVERY_S;
with run.video the worker writes the episode's video once the main process has committed it.

Messages, worker -> main: ("ready", pid), ("fatal", text), ("call", kind, payload, rng, sent_at)
with kind "act" or "observe", ("step", steps), ("episode", row, calls, overhead_s, steps).
Main -> worker: ("episode", task, spec), ("reply", ok, value, rng, queue_wait_ms), ("stop",)
and ("stop", True) (the last episode is committed: write its video, then stop).
`rng` is the process's (random, numpy) global state: it travels with each call, so the policy
draws from, and the simulator continues, the one stream an in-process episode has.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from typing import Any

from vlabench.core.contracts import Observation, PolicyOutput, TaskInfo
from vlabench.run.lane_rng import py_np_state as rng_state
from vlabench.run.lane_rng import set_py_np_state as set_rng_state

STEP_EVERY_S = 0.2   # the fastest a worker reports its step count


class RemoteError(Exception):
    """Base of the exceptions re-raised here for an error of the policy in the main process;
    each carries the original type's name, so the episode records what an in-process run does."""


def remote_error(type_name: str, message: str) -> RemoteError:
    cls = type(type_name, (RemoteError,), {})
    return cls(message)


class Link:
    """The worker's end of the pipe: one request, one reply, the RNG state travelling along."""

    def __init__(self, conn: Any):
        self.conn = conn

    def call(self, kind: str, payload: Any) -> tuple[Any, float]:
        """(value, queue_wait_ms) of the main process's answer; its error is raised here."""
        self.conn.send(("call", kind, payload, rng_state(), time.monotonic()))
        msg = self.conn.recv()
        if msg[0] != "reply":   # the run stops: leave the episode unrecorded (pending)
            raise SystemExit(0)
        _tag, ok, value, rng, wait_ms = msg
        set_rng_state(rng)
        if not ok:
            raise remote_error(*value)
        return value, wait_ms


class RemotePruner:
    """Stands in for the slot's pruner: the main process resets it (with the policy, at the
    episode's first call) and answers `replan` with the `observe` round trip."""

    def __init__(self, replans: bool):
        self.answer = False
        if not replans:
            self.replan = None   # type: ignore[assignment]  # the loop asks only when it exists

    def reset(self) -> None:
        self.answer = False

    def replan(self) -> bool:
        return self.answer


class RemotePolicy:
    """Stands in for the main process's policy view of this worker's slot."""

    def __init__(self, link: Link, pruner: RemotePruner, needs: frozenset[str], observes: bool,
                 frames: Any = None):
        self.link, self.pruner, self.needs = link, pruner, needs
        self.frames = frames   # the policy's FrameRecipe: frames are prepared here, not there
        self.begin = False
        self.waits: list[float] = []
        if observes:
            self.observe = self._observe

    def reset(self, task: TaskInfo) -> None:
        self.begin = True   # the main process resets the slot's pruner and policy at the next call
        self.waits = []

    def _prepared(self, obs: Observation) -> Observation:
        if self.frames is None:
            return obs
        from vlabench.models.frames import prepare_observation

        return prepare_observation(self.frames, obs)

    def act(self, obs: Observation) -> PolicyOutput:
        (actions, stats), wait = self.link.call("act", (self._prepared(obs), self.begin))
        self.begin = False
        self.waits.append(wait)
        return PolicyOutput(actions, stats)

    def _observe(self, obs: Observation) -> None:
        self.pruner.answer, _ = self.link.call("observe", self._prepared(obs))


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the main process dies (no orphans), best effort."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def step_reporter(conn: Any) -> Any:
    """The per-step hook: sends ("step", n) at most every STEP_EVERY_S."""
    due = [0.0]

    def on_step(steps: int) -> None:
        now = time.monotonic()
        if now >= due[0]:
            due[0] = now + STEP_EVERY_S
            conn.send(("step", steps))

    return on_step


def worker_main(conn: Any, cfg_data: dict, spec: dict) -> None:
    """The worker process: build, say ready, then run episodes until told to stop.

    `spec`: needs (the rendered keys), local (build the policy here), observes, replans,
    steps (report step counts), run_dir (sim.log, videos)."""
    from vlabench.run.simlog import attached

    with attached(spec["run_dir"]):
        _worker(conn, cfg_data, spec)


def _worker(conn: Any, cfg_data: dict, spec: dict) -> None:
    # Ctrl-C, or a SIGTERM sent to the whole process group (a scheduler's cancel): the main
    # process stops the workers, so no episode is recorded as a worker's death
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    from omegaconf import OmegaConf

    from vlabench.core.errors import one_line
    from vlabench.core.registry import build_plugin
    from vlabench.run.loop import Runner
    from vlabench.run.suite_build import build_suite

    try:
        cfg = OmegaConf.create(cfg_data)
        suite = build_suite(cfg)
        if spec["local"]:
            pruner = build_plugin(cfg, "pruner")
            policy = build_plugin(cfg, "model", pruner=pruner, suite_cfg=cfg.suite,
                                  device=str(cfg.run.device))
        else:
            pruner = RemotePruner(spec["replans"])
            policy = RemotePolicy(Link(conn), pruner, frozenset(spec["needs"]), spec["observes"],
                                  spec.get("frames"))
        runner = Runner(cfg, suite, policy, pruner, files=None)
        runner.needs = frozenset(spec["needs"])
        if int(cfg.run.get("record_obs") or 0):   # run.record_obs: this worker records its share
            from vlabench.run.obs_recorder import install, manifest_plan

            install(runner, spec["run_dir"], manifest_plan(spec["run_dir"]))
        if spec.get("steps"):
            runner.on_step = step_reporter(conn)
    except Exception as e:
        conn.send(("fatal", f"{type(e).__name__}: {one_line(e)}"))
        return
    conn.send(("ready", os.getpid()))
    warm_up = getattr(policy, "warm_up", None) if spec["local"] else None
    env, env_task = None, None
    from vlabench.run import video

    try:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                return   # the main process is gone
            pending, runner.pending_video = runner.pending_video, None
            if msg[0] == "episode" or msg[1:] == (True,):   # the last episode is committed
                video.write(spec["run_dir"], pending)
            if msg[0] != "episode":
                return
            _, task, ep = msg
            if warm_up is not None:
                warm_up()
                warm_up = None
            if env is not None and env_task != task.id:
                env.close()
                env = None
            if env is None:
                try:
                    env, env_task = suite.make_env(task, runner.needs), task.id
                except Exception as e:
                    conn.send(("episode", runner.episode_row(
                        task, ep, error_type=type(e).__name__, error=one_line(e)), [], 0.0, 0))
                    continue
            overhead, steps = runner.overhead_s, runner.steps_total
            row, calls = runner.run_episode(env, task, ep)
            for c, wait in zip(calls, getattr(policy, "waits", ()), strict=False):
                c["queue_wait_ms"] = round(wait, 3)
            conn.send(("episode", row, calls, runner.overhead_s - overhead, runner.steps_total - steps))
            if row["error_type"]:
                env.close()
                env = None
    except (BrokenPipeError, EOFError):
        return
    finally:
        if env is not None:
            env.close()
        sys.stdout.flush()
