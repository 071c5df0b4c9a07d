"""Trajectory quality of one episode from the end-effector position at control rate.

LIBERO-LQ's execution-quality metrics (vla2026.github.io/libero-lq), pure numpy:
- jerk: |d^3 p / dt^3| by the third forward difference (p[k+3] - 3p[k+2] + 3p[k+1] - p[k]) / dt^3,
  exact for cubic trajectories; mean and 95th percentile over the episode, m/s^3;
- oscillation: direction reversals per second, the sign changes of each axis's velocity
  (samples slower than `deadband` m/s ignored, so a robot at rest does not count), summed over
  the axes and divided by the episode's duration;
- path length ratio: travelled length / straight-line distance from start to end.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

MOTION_KEYS = ("jerk_mean", "jerk_p95", "oscillation_hz", "path_ratio")


def jerk(positions: Any, dt: float) -> np.ndarray:
    """|third derivative| per sample (len(positions) - 3 values) of an (N, 3) trajectory."""
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 2 or len(p) < 4:
        return np.zeros(0)
    third = p[3:] - 3.0 * p[2:-1] + 3.0 * p[1:-2] - p[:-3]
    return np.linalg.norm(third, axis=1) / dt ** 3


def reversals(positions: Any, deadband: float, dt: float) -> int:
    """Sign changes of each axis's velocity between samples faster than `deadband` (m/s)."""
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 2 or len(p) < 3:
        return 0
    v = np.diff(p, axis=0) / dt
    count = 0
    for axis in v.T:
        signs = np.sign(axis[np.abs(axis) > deadband])
        count += int(np.count_nonzero(signs[1:] != signs[:-1]))
    return count


def path_ratio(positions: Any) -> float:
    """Travelled length over the start-to-end distance (nan when the end is the start)."""
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 2 or len(p) < 2:
        return math.nan
    travelled = float(np.linalg.norm(np.diff(p, axis=0), axis=1).sum())
    straight = float(np.linalg.norm(p[-1] - p[0]))
    return travelled / straight if straight > 0 else math.nan


def motion_metrics(positions: Any, control_hz: float, deadband: float) -> dict[str, float]:
    """MOTION_KEYS of an (N, 3) end-effector trajectory sampled at `control_hz` (nan if too short)."""
    dt = 1.0 / float(control_hz)
    p = np.asarray(positions, dtype=np.float64)
    j = jerk(p, dt)
    steps = max(len(p) - 1, 0)
    return {
        "jerk_mean": float(j.mean()) if j.size else math.nan,
        "jerk_p95": float(np.percentile(j, 95)) if j.size else math.nan,
        "oscillation_hz": reversals(p, deadband, dt) / (steps * dt) if steps else math.nan,
        "path_ratio": path_ratio(p),
    }
