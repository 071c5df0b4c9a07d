"""Test-only plugins for run.env_workers (tests/test_env_workers.py): a policy that can fork
per-slot views and draws from every global RNG, and a simulator-free suite whose steps draw
from numpy's global RNG and whose worker can kill itself (SIGKILL) at a chosen episode."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import time
from collections.abc import Iterable
from typing import Any

import numpy as np
from vlabench_test_suites import FastSuite

from vlabench.core.contracts import CallStats, EpisodeSpec, Observation, PolicyOutput, TaskInfo


class DrawPolicy:
    """Chunks of `chunk` actions; each call records draws of random, numpy and its own
    per-episode counter, so any mixing of RNG streams or episode state shows in calls.csv."""

    def __init__(self, cfg: Any, pruner: Any = None, suite_cfg: Any = None, device: str = "cpu"):
        self.cfg, self.pruner = cfg, pruner
        self.needs = frozenset(cfg.get("needs") or ())
        self.chunk = int(cfg.get("chunk", 2))
        self.calls = 0
        self.seen: list[int] = []

    def fork(self, pruner: Any) -> DrawPolicy:
        return DrawPolicy(self.cfg, pruner)

    def reset(self, task: TaskInfo) -> None:
        self.calls, self.seen = 0, []

    def observe(self, obs: Observation) -> None:
        self.seen.append(obs.step)

    batchable = True

    def act_lanes(self, views: list[DrawPolicy], obs: list[Observation],
                  contexts: list[Any] | None = None) -> list[PolicyOutput]:
        """run.batch: each lane's call inside its own RNG context, stats marked with the batch."""
        outs = []
        for v, o, c in zip(views, obs, contexts or [None] * len(views)):
            if c is None:
                out = v.act(o)
            else:
                with c():
                    out = v.act(o)
            out.stats.batch = len(views)
            outs.append(out)
        return outs

    def act(self, obs: Observation) -> PolicyOutput:
        self.calls += 1
        a = np.zeros((self.chunk, 7))
        a[:, 0] = np.random.rand()
        stats = CallStats(latency_ms={"total": 1.0}, tokens_in=random.randrange(10**6),
                          tokens_kept=self.calls * 1000 + len(self.seen),
                          flops=float(np.random.randint(10**6)), mode="draw")
        return PolicyOutput(a, stats)


class DrawEnv:
    def __init__(self, cfg: Any, task: TaskInfo):
        self.cfg, self.task, self.ep, self.x = cfg, task, None, 0.0

    def reset(self, episode: EpisodeSpec) -> Observation:
        self.ep, self.x = episode, float(np.random.rand())   # a reset that draws
        return Observation(self.task.instruction, 0)

    def step(self, action: np.ndarray, step: int) -> tuple[Observation, bool]:
        time.sleep(float(self.cfg.get("step_sleep_s") or 0.0))
        kill = self.cfg.get("kill_at")
        if (kill is not None and [self.task.id, self.ep.index, step] == list(kill)
                and multiprocessing.parent_process() is not None):
            os.kill(os.getpid(), signal.SIGKILL)
        self.x += float(action[0]) + float(np.random.rand())
        return Observation(self.task.instruction, step), self.x > float(self.cfg.done_above)

    def close(self) -> None:
        pass


class DrawSuite(FastSuite):
    """The fast suite's tasks and episodes, each episode with its own seed, and DrawEnv."""

    def episodes(self, task: TaskInfo, count: int | None, seed: int) -> list[EpisodeSpec]:
        count = int(self.cfg.episodes_per_task) if count is None else count
        return [EpisodeSpec(task.id, i, i, seed + 1000 * task.id + i) for i in range(count)]

    def make_env(self, task: TaskInfo, needs: Iterable[str]) -> DrawEnv:
        return DrawEnv(self.cfg, task)


def _pruner_base() -> type:
    from vlabench.pruners.base import Pruner

    return Pruner


class ReplanPruner(_pruner_base()):
    """Asks for a new model call at random open-loop steps (a numpy draw per step)."""

    name = "test-replan"

    def replan(self) -> bool:
        return bool(np.random.rand() < 0.4)
