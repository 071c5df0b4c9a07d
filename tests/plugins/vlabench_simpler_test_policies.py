"""Scripted policies for the SIMPLER suite tests (never shipped as models)."""

from __future__ import annotations

from typing import Any

import numpy as np

from vlabench.core.contracts import CallStats, Observation, PolicyOutput, TaskInfo


class HoldPolicy:
    """Keeps the arm still with the gripper open (LIBERO convention: -1 = open).

    Checks that every image it is given is an upright HxWx3 uint8 frame of `image_shape`."""

    def __init__(self, cfg: Any, pruner: Any = None, suite_cfg: Any = None, device: str = "cpu"):
        self.cfg = cfg
        self.needs = frozenset(cfg.get("needs") or ())
        self.chunk = int(cfg.get("chunk", 1))
        self.shape = tuple(cfg.get("image_shape") or ())
        self.device = "cpu"
        self.deviations = list(cfg.get("deviations") or [])
        self.task: TaskInfo | None = None
        self.episode = -1

    def reset(self, task: TaskInfo) -> None:
        if self.task is None or self.task.id != task.id:
            self.episode = -1
        self.task, self.episode = task, self.episode + 1

    def act(self, obs: Observation) -> PolicyOutput:
        for name, img in obs.images.items():
            if img.dtype != np.uint8 or (self.shape and img.shape != self.shape):
                raise AssertionError(f"image {name}: {img.dtype} {img.shape}, expected uint8 {self.shape}")
        if obs.instruction != self.task.instruction:
            raise AssertionError(f"instruction {obs.instruction!r} != {self.task.instruction!r}")
        a = np.zeros((self.chunk, 7))
        a[:, 6] = -1.0
        return PolicyOutput(a, CallStats(latency_ms={"total": 1.0}, tokens_in=1, tokens_kept=1, mode="fixed"))


class PlaceCarrotPolicy(HoldPolicy):
    """PutCarrotOnPlateInScene: at policy step `place_at` puts the carrot on the plate (privileged
    access to the ManiSkill env); in the episodes listed in `take_back` it moves the carrot off the
    plate again at step `take_back_at`, so only an earlier step saw success."""

    def act(self, obs: Observation) -> PolicyOutput:
        env = obs.privileged["env"]
        carrot = env.objs[env.source_obj_name]
        plate = env.objs[env.target_obj_name]
        if obs.step == int(self.cfg.place_at):
            self._move(carrot, plate.pose.p[0].cpu().numpy() + np.array([0.0, 0.0, 0.02]))
        if self.episode in set(self.cfg.get("take_back") or []) and obs.step == int(self.cfg.take_back_at):
            p = plate.pose.p[0].cpu().numpy()
            self._move(carrot, np.array([p[0] + 0.2, p[1], p[2] + 0.03]))
        return super().act(obs)

    @staticmethod
    def _move(actor: Any, xyz: np.ndarray) -> None:
        import torch
        from mani_skill.utils.structs.pose import Pose

        q = actor.pose.q
        actor.set_pose(Pose.create_from_pq(p=torch.tensor(xyz[None], dtype=torch.float32), q=q))
        actor.set_linear_velocity(torch.zeros(1, 3))
        actor.set_angular_velocity(torch.zeros(1, 3))
