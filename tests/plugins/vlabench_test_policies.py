"""Scripted policies used only by the tests to drive the runner (never shipped as models)."""

from __future__ import annotations

from typing import Any

import numpy as np

from vlabench.core.contracts import CallStats, Observation, PolicyOutput, TaskInfo


class ZeroPolicy:
    """Returns no-op chunks; optionally raises on a chosen (task, episode) to test error rows."""

    def __init__(self, cfg: Any, pruner: Any = None, suite_cfg: Any = None, device: str = "cpu"):
        self.cfg = cfg
        self.needs = frozenset(cfg.get("needs") or ())
        self.chunk = int(cfg.get("chunk", 1))
        self.crash_on = {tuple(x) for x in (cfg.get("crash_on") or [])}
        self.device = "cpu"
        self.task: TaskInfo | None = None
        self.episode = -1
        self.calls = 0

    def reset(self, task: TaskInfo) -> None:
        if self.task is None or self.task.id != task.id:
            self.episode = -1
        self.task, self.episode, self.calls = task, self.episode + 1, 0

    def act(self, obs: Observation) -> PolicyOutput:
        self.calls += 1
        if (self.task.id, self.episode) in self.crash_on and self.calls == 2:
            raise RuntimeError(f"scripted crash in task {self.task.id} episode {self.episode}")
        a = np.zeros((self.chunk, 7))
        a[:, 6] = -1.0
        lat = float(np.random.rand())  # RNG draw: resumed runs must reseed identically
        return PolicyOutput(a, CallStats(latency_ms={"total": lat}, tokens_in=10, tokens_kept=5,
                                         flops=1e6, mode="fixed"))


class PlaceBowlPolicy(ZeroPolicy):
    """At policy step `place_at`, moves libero_spatial task 0's bowl onto the plate (privileged)."""

    def act(self, obs: Observation) -> PolicyOutput:
        if obs.step == int(self.cfg.place_at):
            raw, env = obs.privileged["raw_obs"], obs.privileged["env"]
            q = env.sim.data.get_joint_qpos("akita_black_bowl_1_joint0").copy()
            q[:3] = raw["plate_1_pos"] + np.array([0.0, 0.0, 0.03])
            env.sim.data.set_joint_qpos("akita_black_bowl_1_joint0", q)
            env.sim.forward()
        return super().act(obs)
