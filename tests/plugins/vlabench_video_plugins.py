"""TEST ONLY: the test-fast episodes with a rendered agentview camera and simulator chatter.

`VideoSuite` renders `agentview` (a 64x48 frame whose red channel is the step number) only when
it is in the `needs` the runner passes, as LIBERO does; building an environment prints a line
through vlabench.suites.chatter and raises a Python warning, as LIBERO and robosuite do.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import Any

import numpy as np
from vlabench_test_suites import FastEnv, FastSuite

from vlabench.core.contracts import EpisodeSpec, Observation, TaskInfo
from vlabench.suites.chatter import captured


class VideoEnv(FastEnv):
    def __init__(self, cfg: Any, task: TaskInfo, needs: frozenset[str]):
        super().__init__(cfg, task)
        self.needs = needs

    def _images(self, step: int) -> dict[str, np.ndarray]:
        if "agentview" not in self.needs:
            return {}
        img = np.zeros((48, 64, 3), np.uint8)
        img[..., 0] = min(255, 10 * step)
        return {"agentview": img}

    def reset(self, episode: EpisodeSpec) -> Observation:
        obs = super().reset(episode)
        obs.images = self._images(0)
        return obs

    def step(self, action: np.ndarray, step: int) -> tuple[Observation, bool]:
        obs, done = super().step(action, step)
        obs.images = self._images(step)
        return obs, done


class VideoSuite(FastSuite):
    def make_env(self, task: TaskInfo, needs: Iterable[str]) -> VideoEnv:
        with captured("test-video"):
            print(f"[info] test chatter building task {task.id}")
        warnings.warn(f"test simulator warning for task {task.id}", UserWarning, stacklevel=1)
        return VideoEnv(self.cfg, task, frozenset(needs))
