"""Synthetic LIBERO-like observations for benchmarks and tests (no simulator needed)."""

from __future__ import annotations

import numpy as np

from vlabench.core.contracts import Observation

# libero_spatial task 0, the instruction the FLOPs figures are quoted with
DEFAULT_INSTRUCTION = "pick up the black bowl between the plate and the ramekin and place it on the plate"


def synthetic_observation(seed: int = 0, step: int = 0,
                          instruction: str = DEFAULT_INSTRUCTION, size: int = 256) -> Observation:
    """Random 256x256 agentview and wrist images and a plausible proprio state."""
    rng = np.random.default_rng(seed)
    quat = rng.normal(size=4)
    quat /= np.linalg.norm(quat)
    return Observation(
        instruction=instruction, step=step,
        images={"agentview": rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
                "wrist": rng.integers(0, 256, (size, size, 3), dtype=np.uint8)},
        proprio={"eef_pos": rng.uniform(-0.3, 0.3, 3), "eef_quat": quat,
                 "gripper_qpos": np.array([0.03, -0.03])},
    )


def synthetic_episode(n: int, seed: int = 0, instruction: str = DEFAULT_INSTRUCTION) -> list[Observation]:
    """n observations of a mostly static scene: smooth random backgrounds, one 40 px square
    moving 6 px per step in each camera, a slowly drifting end effector (so that methods that
    compare frames or read the last action see something plausible)."""
    rng = np.random.default_rng(seed)
    base = {}
    for cam in ("agentview", "wrist"):
        coarse = rng.integers(0, 256, (16, 16, 3)).astype(np.float64)
        base[cam] = np.kron(coarse, np.ones((16, 16, 1))).astype(np.uint8)
    out = []
    for t in range(n):
        images = {}
        for i, cam in enumerate(("agentview", "wrist")):
            img = base[cam].copy()
            x = (20 + 6 * t + 50 * i) % 200
            img[100:140, x:x + 40] = (255, 40, 40)
            images[cam] = img
        out.append(Observation(
            instruction=instruction, step=t, images=images,
            proprio={"eef_pos": np.array([0.0, 0.1, 0.9]) + 0.004 * t,
                     "eef_quat": np.array([0.0, 1.0, 0.0, 0.02]) / np.linalg.norm([0.0, 1.0, 0.0, 0.02]),
                     "gripper_qpos": np.array([0.039, -0.039])}))
    return out
