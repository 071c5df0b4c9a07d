"""`run.env_workers=N`: N simulator processes feed one policy (the worker side: env_worker.py).

The main process holds the policy and serves the workers' calls one at a time, oldest first, so a
call's latency is never shared with another call, or with run.batch=B up to B pending calls as one
batched forward (`_gather`, `_serve_batch`); it is the only writer of records, committing each
episode as its worker reports it. Per-slot pruner state and RNG streams make a deterministic
policy give the in-process run's episodes and calls. A dead worker is restarted and its running
episode committed as failed (`EnvWorkerDied`); committed episodes are never lost or doubled.

Details (what runs where, scheduling, RNG, progress, videos, failures): docs/env-workers.md
"""

from __future__ import annotations

import signal
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from vlabench.core.contracts import PRIVILEGED_KEY, EpisodeSpec, TaskInfo
from vlabench.core.errors import one_line
from vlabench.run.lane_rng import LaneRng

START_ATTEMPTS = 3     # a slot whose worker dies this often before its first episode stops the run
STOP_GRACE_S = 5.0
VIDEO_GRACE_S = 120.0  # at the normal end: a worker may still be encoding its last video


def serves_in_main(policy: Any) -> bool:
    """True when the main process serves the policy (it can fork a per-slot view and does not
    need the live simulator); False: each worker builds its own copy."""
    return PRIVILEGED_KEY not in getattr(policy, "needs", ()) and callable(getattr(policy, "fork", None))


def step_hooks(policy: Any, pruner: Any) -> tuple[bool, bool]:
    """(observes, replans): whether the open-loop steps must reach the main process. The loop
    calls `observe` and then `pruner.replan`; both are skipped when neither does anything."""
    from vlabench.core.pruning import Pruner

    replans = getattr(pruner, "replan", None) is not None and not (
        isinstance(pruner, Pruner) and type(pruner).replan is Pruner.replan)
    has_observe = getattr(policy, "observe", None) is not None
    observes = has_observe and (bool(getattr(policy, "observes_steps", True)) or replans)
    return observes, replans and observes


def exit_reason(code: int | None) -> str:
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            return f"killed by signal {-code} ({signal.Signals(-code).name})"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class Block:
    task: TaskInfo
    eps: deque[EpisodeSpec]


@dataclass
class Slot:
    index: int
    policy: Any = None
    pruner: Any = None
    process: Any = None
    conn: Any = None
    pid: int | None = None
    ready: bool = False
    block: Block | None = None
    running: tuple[TaskInfo, EpisodeSpec] | None = None
    rng: Any = None              # the slot's LaneRng (vlabench/run/lane_rng.py)
    starts_without_episode: int = 0
    stopped: bool = False
    inbox: list[tuple[float, tuple]] = field(default_factory=list)


class Scheduler:
    """Which episode an idle worker runs next (see the module docstring)."""

    def __init__(self, pending: list[tuple[TaskInfo, list[EpisodeSpec]]]):
        self.untouched = deque(Block(t, deque(eps)) for t, eps in pending if eps)

    def next(self, slot: Slot, slots: list[Slot]) -> tuple[TaskInfo, EpisodeSpec] | None:
        if slot.block is None or not slot.block.eps:
            slot.block = self._new_block(slot, slots)
        if slot.block is None:
            return None
        return slot.block.task, slot.block.eps.popleft()

    def _new_block(self, slot: Slot, slots: list[Slot]) -> Block | None:
        if self.untouched:
            return self.untouched.popleft()
        held = [s.block for s in slots if s is not slot and s.block is not None and s.block.eps]
        if not held:
            return None
        victim = max(held, key=lambda b: len(b.eps))
        n = max(1, len(victim.eps) // 2)
        taken = deque(victim.eps.pop() for _ in range(n))
        taken.reverse()
        return Block(victim.task, taken)


class WorkerPool:
    """Runs the pending episodes of `runner`'s plan on `runner.cfg.run.env_workers` processes."""

    def __init__(self, runner: Any, progress: Any, pending: list[tuple[TaskInfo, list[EpisodeSpec]]]):
        from omegaconf import OmegaConf

        self.runner = runner
        self.progress = progress
        self.cfg_data = OmegaConf.to_container(runner.cfg, resolve=True)
        self.in_main = serves_in_main(runner.policy)
        observes, replans = step_hooks(runner.policy, runner.pruner) if self.in_main else (False, False)
        self.spec = {"needs": sorted(runner.needs), "local": not self.in_main,
                     "observes": observes, "replans": replans,
                     "steps": not getattr(progress, "quiet", True), "run_dir": str(runner.files.dir),
                     "frames": _recipe(runner.policy) if self.in_main else None}
        self.scheduler = Scheduler(pending)
        self.left = {t.id: len(eps) for t, eps in pending}
        self.size = dict(self.left)
        self.succ = {t.id: 0 for t, _ in pending}
        self.tasks = {t.id: t for t, _ in pending}
        total = sum(self.left.values())
        n = max(1, min(int(runner.cfg.run.env_workers), total))
        self.slots = [Slot(i) for i in range(n)]
        self.batch = min(n, int(runner.cfg.run.get("batch") or 1)) if self.in_main else 1
        self.batch_wait_s = float(runner.cfg.run.get("batch_wait_ms") or 0.0) / 1000.0
        import multiprocessing as mp

        self.ctx = mp.get_context("spawn")

    # ------------------------------------------------------------ processes
    def _start(self, slot: Slot) -> None:
        from vlabench.run.env_worker import worker_main

        here, there = self.ctx.Pipe()
        proc = self.ctx.Process(target=worker_main, args=(there, self.cfg_data, self.spec),
                                name=f"vlabench-env-{slot.index}", daemon=True)
        proc.start()
        there.close()
        slot.process, slot.conn, slot.pid, slot.ready = proc, here, proc.pid, False
        slot.inbox, slot.stopped = [], False
        if slot.rng is None:
            slot.rng = LaneRng()

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        """Stop every worker: a stop message, then SIGKILL after a grace period (workers ignore
        SIGINT and SIGTERM, which only the main process acts on); no orphans."""
        live = [s for s in self.slots if s.process is not None]
        for s in live:
            try:
                s.conn.send(("stop",))
            except (OSError, ValueError):
                pass
        deadline = time.monotonic() + grace
        for s in live:
            s.process.join(max(0.0, deadline - time.monotonic()))
            if s.process.is_alive():
                s.process.kill()
                s.process.join()
            s.conn.close()
            s.process = None

    # ------------------------------------------------------------ main loop
    def run(self) -> None:
        runner = self.runner
        if self.in_main:
            warm_up = getattr(runner.policy, "warm_up", None)
            if warm_up is not None:
                warm_up()
            from vlabench.core.registry import build_plugin

            for s in self.slots:
                if s.index == 0:
                    s.policy, s.pruner = runner.policy, runner.pruner
                else:
                    s.pruner = build_plugin(runner.cfg, "pruner")
                    s.policy = runner.policy.fork(s.pruner)
        try:
            for s in self.slots:
                self._start(s)
            while any(self.left.values()):
                self._pump()
        except BaseException:
            self.stop()
            raise
        self.stop(VIDEO_GRACE_S if runner.frames is not None else STOP_GRACE_S)

    def _pump(self) -> None:
        """Wait for messages, collect them, serve the oldest one (with run.batch > 1, an act
        call is served together with the other pending ones: `_gather`)."""
        from multiprocessing.connection import wait

        live = [s for s in self.slots if s.process is not None and not s.stopped]
        if not any(s.inbox for s in live):
            waitables = [s.conn for s in live] + [s.process.sentinel for s in live]
            if not waitables:
                raise RuntimeError("no environment worker is left while episodes are pending")
            wait(waitables)
        for s in live:
            self._collect(s)
        queued = [(m[0], s) for s in self.slots for m in s.inbox[:1]]
        if not queued:
            return
        _, slot = min(queued, key=lambda x: x[0])
        if self.batch > 1 and _is_act(slot.inbox[0][1]):
            self._serve_batch(self._gather())
            return
        _, msg = slot.inbox.pop(0)
        self._handle(slot, msg)

    def _gather(self) -> list[Slot]:
        """The slots whose next message is an act call, up to run.batch, oldest first. While
        fewer are pending and another worker is still stepping its simulator (so could send a
        call), wait up to run.batch_wait_ms for it, serving the other messages meanwhile."""
        from multiprocessing.connection import wait

        deadline = time.monotonic() + self.batch_wait_s
        while True:
            for s in self.slots:   # non-call messages first: an observe or a finished episode
                while s.inbox and not _is_act(s.inbox[0][1]) and s.process is not None:
                    _, msg = s.inbox.pop(0)
                    self._handle(s, msg)
            ready = sorted((s for s in self.slots if s.inbox and _is_act(s.inbox[0][1])),
                           key=lambda s: s.inbox[0][0])
            stepping = [s for s in self.slots if s.process is not None and not s.stopped
                        and s.running is not None and not s.inbox]
            left = deadline - time.monotonic()
            if len(ready) >= self.batch or not stepping or left <= 0:
                return ready[: self.batch]
            wait([s.conn for s in stepping] + [s.process.sentinel for s in stepping], left)
            for s in stepping:
                if s.process is not None:
                    self._collect(s)

    def _collect(self, slot: Slot) -> None:
        """Read what `slot`'s worker sent; a worker that died is handled here."""
        try:
            while slot.conn.poll():
                msg = slot.conn.recv()
                sent = msg[4] if msg[0] == "call" else time.monotonic()
                slot.inbox.append((sent, msg))
        except (EOFError, OSError):
            pass
        else:
            if slot.process.is_alive():
                return
        slot.process.join(1.0)
        if slot.process.is_alive():
            return
        self._died(slot)

    def _died(self, slot: Slot) -> None:
        code = slot.process.exitcode
        reason = f"environment worker {slot.index} (pid {slot.pid}) died: {exit_reason(code)}"
        slot.conn.close()
        slot.process, slot.inbox = None, [m for m in slot.inbox if m[1][0] == "episode"]
        for _, msg in slot.inbox:   # an episode it reported before dying is kept
            self._finished(slot, msg)
        slot.inbox = []
        if slot.running is not None:
            task, ep = slot.running
            row = self.runner.episode_row(task, ep, error_type="EnvWorkerDied", error=reason)
            self._commit(slot, row, [])
            slot.starts_without_episode = 0
        elif not slot.ready:
            slot.starts_without_episode += 1
            if slot.starts_without_episode >= START_ATTEMPTS:
                raise RuntimeError(f"{reason}, {START_ATTEMPTS} times before its first episode")
        if any(self.left.values()):
            print(f"vlabench: {reason}; restarting it", file=sys.stderr, flush=True)
            self._start(slot)

    def _handle(self, slot: Slot, msg: tuple) -> None:
        kind = msg[0]
        if kind == "ready":
            slot.ready = True
            slot.pid = msg[1]
            self._assign(slot)
        elif kind == "fatal":
            raise RuntimeError(f"environment worker {slot.index} could not start: {msg[1]}")
        elif kind == "call":
            self._serve(slot, msg)
        elif kind == "episode":
            self._finished(slot, msg)
            self._assign(slot)
        elif kind == "step":
            self.progress.step(slot.index, msg[1])

    def _assign(self, slot: Slot) -> None:
        nxt = self.scheduler.next(slot, self.slots)
        slot.running = nxt
        if nxt is None:
            slot.stopped = True
            slot.conn.send(("stop", True))   # True: its last episode is committed
            self.progress.slot_done(slot.index)
            return
        slot.conn.send(("episode", nxt[0], nxt[1]))
        self.progress.episode_start(slot.index, f"worker {slot.index}: task {nxt[0].id} episode "
                                    f"{nxt[1].index}", self.runner.max_steps(nxt[0]))

    def _finished(self, slot: Slot, msg: tuple) -> None:
        _, row, calls, overhead, steps = msg
        self.runner.overhead_s += overhead
        self.runner.steps_total += steps
        self._commit(slot, row, calls)

    def _commit(self, slot: Slot, row: dict, calls: list[dict]) -> None:
        from vlabench.records.summary import write_summary

        runner = self.runner
        tc = time.perf_counter()
        runner.files.append_episode(row, calls)
        runner._committed()
        runner.overhead_s += time.perf_counter() - tc
        slot.running = None
        tid = int(row["task_id"])
        self.left[tid] -= 1
        self.succ[tid] += int(bool(row["success"]))
        self.progress.episode_done(row["success"], f"task {tid}, {len(self.slots)} env workers",
                                   slot=slot.index)
        runner.after_commit(row, calls)
        if self.left[tid] == 0:
            self.progress.task_done(f"{runner.cfg.suite.name} task {tid}", self.succ[tid],
                                    self.size[tid])
            write_summary(runner.files)

    # ------------------------------------------------------------ policy calls
    def _serve(self, slot: Slot, msg: tuple) -> None:
        _, kind, payload, rng, sent = msg
        wait_ms = 1000.0 * max(0.0, time.monotonic() - sent)
        ok, value = True, None
        slot.rng.py_np = rng
        with slot.rng:   # the slot's streams around the whole call
            try:
                if kind == "act":
                    obs, begin = payload
                    if begin:
                        self._begin(slot)
                    out = slot.policy.act(obs)
                    value = (out.actions, out.stats)
                else:
                    slot.policy.observe(payload)
                    value = bool(slot.pruner.replan()) if self.spec["replans"] else False
            except Exception as e:   # the worker records it as the episode's error
                ok, value = False, (type(e).__name__, one_line(e))
        slot.conn.send(("reply", ok, value, slot.rng.py_np, wait_ms))

    def _serve_batch(self, slots: list[Slot]) -> None:
        """The act calls of `slots` as one batched forward (`act_lanes`); each slot's streams
        are installed around its own hooks and draws. An error fails every call of the batch
        (each episode records it): the forward pass is shared."""
        if len(slots) == 1:
            _, msg = slots[0].inbox.pop(0)
            self._serve(slots[0], msg)
            return
        now = time.monotonic()
        obs, waits = [], []
        for slot in slots:
            _, (_, _, (o, begin), rng, sent) = slot.inbox.pop(0)
            slot.rng.py_np = rng
            obs.append(o)
            waits.append(1000.0 * max(0.0, now - sent))
            if begin:
                with slot.rng:
                    self._begin(slot)
        try:
            outs = self.runner.policy.act_lanes([s.policy for s in slots], obs,
                                                contexts=[s.rng for s in slots])
            replies = [(True, (o.actions, o.stats)) for o in outs]
        except Exception as e:
            err = (type(e).__name__, f"in a batched call of {len(slots)}: {one_line(e)}")
            replies = [(False, err)] * len(slots)
        for slot, (ok, value), wait_ms in zip(slots, replies, waits):
            slot.conn.send(("reply", ok, value, slot.rng.py_np, wait_ms))

    def _begin(self, slot: Slot) -> None:
        """The episode's start on the main side, as the in-process loop orders it (after the
        environment's reset): torch seeded with the episode's seed, pruner and policy reset.
        Runs inside the slot's LaneRng, which keeps the seeded torch state for the slot."""
        task, ep = slot.running
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.manual_seed(ep.seed)
        slot.pruner.reset()
        slot.policy.reset(task)


def _recipe(policy: Any) -> Any:
    """The policy's FrameRecipe (its workers prepare the camera frames), or None."""
    recipe = getattr(policy, "frame_recipe", None)
    return recipe() if callable(recipe) else None


def _is_act(msg: tuple) -> bool:
    return msg[0] == "call" and msg[1] == "act"


def run_parallel(runner: Any, done: set[tuple[int, int]], progress: Any,
                 plan: dict[int, list[EpisodeSpec]], tasks: list[TaskInfo]) -> None:
    """`Runner.run` for run.env_workers > 1: the pending episodes on a WorkerPool."""
    pending = [(t, [ep for ep in plan[t.id] if (t.id, ep.index) not in done]) for t in tasks]
    pending = [(t, eps) for t, eps in pending if eps]
    if not pending:
        return
    pool = WorkerPool(runner, progress, pending)
    runner.pool = pool
    pool.run()
