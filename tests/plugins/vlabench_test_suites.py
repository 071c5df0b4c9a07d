"""A simulator-free suite used only by the tests: fast episodes to drive the runner end to end.

Options (tests/configs/suite/test-fast.yaml): `success_every` (episode i succeeds at step 2
when i % success_every == 0), `step_sleep_s` (slows each step, for interrupt tests),
`build_sleep_s` (slows the suite's construction: an interrupt during start-up) and
`fail_on_build` (the start fails after the run directory was prepared). The environment
variables VLABENCH_TEST_BUILD_SLEEP and VLABENCH_TEST_FAIL_BUILD do the same without changing
the config (a resume of the same run).

Synchronisation points for signal tests (no wall-clock sleeps as synchronisation): with
VLABENCH_TEST_HOLD=<where> and VLABENCH_TEST_HOLD_MARKER=<file>, the process creates the marker
file when it reaches <where> and then waits there while the marker exists (up to 600 s): the
test signals it there, or deletes the marker to let it go on. <where>
is `build` (inside the suite's construction, after the run directory is locked) or
`step:<task>:<episode>:<step>` (inside that environment step).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from vlabench.core.contracts import EpisodeSpec, Observation, TaskInfo
from vlabench.suites.common import select_tasks


def hold(where: str) -> None:
    """Announce reaching `where` (the marker file) and wait there when a test asked to."""
    if os.environ.get("VLABENCH_TEST_HOLD") != where:
        return
    marker = os.environ["VLABENCH_TEST_HOLD_MARKER"]
    with open(marker, "w") as f:
        f.write(f"{os.getpid()} {where}\n")
    deadline = time.monotonic() + 600.0
    while os.path.exists(marker) and time.monotonic() < deadline:
        time.sleep(0.02)


class FastEnv:
    def __init__(self, cfg: Any, task: TaskInfo):
        self.cfg, self.task, self.ep = cfg, task, None

    def reset(self, episode: EpisodeSpec) -> Observation:
        self.ep = episode
        return Observation(self.task.instruction, 0)

    def step(self, action: np.ndarray, step: int) -> tuple[Observation, bool]:
        time.sleep(float(self.cfg.get("step_sleep_s") or 0.0))
        hold(f"step:{self.task.id}:{self.ep.index}:{step}")
        every = int(self.cfg.get("success_every") or 2)
        return Observation(self.task.instruction, step), step == 2 and self.ep.index % every == 0

    def close(self) -> None:
        pass


class FastSuite:
    success_mode = "first_done"

    def __init__(self, cfg: Any):
        self.cfg = cfg
        if cfg.get("fail_on_build") or os.environ.get("VLABENCH_TEST_FAIL_BUILD"):
            raise RuntimeError("scripted start-up failure")
        time.sleep(float(cfg.get("build_sleep_s") or os.environ.get("VLABENCH_TEST_BUILD_SLEEP") or 0.0))
        hold("build")

    def max_steps(self, task: TaskInfo) -> int:
        return int(self.cfg.max_steps)

    def all_tasks(self) -> list[TaskInfo]:
        return [TaskInfo(i, f"task {i}", f"do task {i}") for i in range(int(self.cfg.num_tasks))]

    def tasks(self) -> list[TaskInfo]:
        return select_tasks(self.all_tasks(), self.cfg)

    def episodes(self, task: TaskInfo, count: int | None, seed: int) -> list[EpisodeSpec]:
        count = int(self.cfg.episodes_per_task) if count is None else count
        return [EpisodeSpec(task.id, i, i, seed) for i in range(count)]

    def make_env(self, task: TaskInfo, needs: Iterable[str]) -> FastEnv:
        return FastEnv(self.cfg, task)
