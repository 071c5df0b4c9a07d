"""Action conversion between the models' 7-d output and SIMPLER's robot controllers.

vlabench's policies emit LIBERO-convention actions `[dx, dy, dz, r1, r2, r3, g]` (Euler angle
deltas for the OpenVLA family, gripper -1 = open, +1 = close), while SIMPLER's controllers take
a translation, an axis-angle rotation and a robot-specific gripper command. This module converts
one into the other: Euler -> axis-angle, the WidowX gripper as +1 open / -1 close, and for the
Google robot the model's continuous open fraction, which the sticky gripper reads (SimplerEnv's
OpenVLA variant or CogACT's, per the model). Pure numpy/scipy, no simulator import.

Details: docs/protocols.md#simpler-actions
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation


ROTATIONS = ("euler_xyz", "axis_angle")
GRIPPERS = ("close_positive", "open_positive", "open_fraction")
PREV_UPDATES = ("every_step", "on_latch")   # when StickyGripper's previous open value is updated


def euler_xyz_to_axis_angle(rpy: np.ndarray) -> np.ndarray:
    """(roll, pitch, yaw) about the static x, y, z axes (R = Rz(yaw) Ry(pitch) Rx(roll)) ->
    rotation vector axis * angle with angle in [0, pi] (transforms3d `euler2axangle` 'sxyz')."""
    return Rotation.from_euler("xyz", np.asarray(rpy, dtype=np.float64).reshape(3)).as_rotvec()


def widowx_gripper(g: float, convention: str = "close_positive") -> float:
    """Model gripper value -> WidowX controller command (+1 open, -1 close), binarised.

    close_positive: LIBERO convention (-1 open, +1 close; what vlabench's OpenVLA-family adapters
    emit): +1 iff g < 0. open_positive: g already means open (>0) / close: +1 iff g > 0.
    open_fraction: g is the model's raw `open` (1 = open): SimplerEnv's `2 * (open > 0.5) - 1`."""
    g = float(g)
    if convention == "close_positive":
        return 1.0 if g < 0.0 else -1.0
    if convention == "open_positive":
        return 1.0 if g > 0.0 else -1.0
    if convention == "open_fraction":
        return 1.0 if g > 0.5 else -1.0
    raise ValueError(f"unknown gripper convention {convention!r}; valid: {', '.join(GRIPPERS)}")


@dataclass(frozen=True)
class ActionConvention:
    """How the policy's 7-d action is read (the suite YAML's `action_convention`)."""

    rotation: str = "euler_xyz"        # what the model's dims 3..5 are: euler_xyz | axis_angle
    gripper: str = "close_positive"    # close_positive (LIBERO: -1 open, +1 close) | open_positive | open_fraction
    scale: float = 1.0                 # SimplerEnv's action_scale (translation and rotation)

    def __post_init__(self) -> None:
        if self.rotation not in ROTATIONS:
            raise ValueError(f"action_convention.rotation={self.rotation!r}; valid: {', '.join(ROTATIONS)}")
        if self.gripper not in GRIPPERS:
            raise ValueError(f"action_convention.gripper={self.gripper!r}; valid: {', '.join(GRIPPERS)}")

    @classmethod
    def from_cfg(cls, node: Mapping[str, Any] | None) -> ActionConvention:
        node = dict(node or {})
        return cls(rotation=str(node.get("rotation", "euler_xyz")),
                   gripper=str(node.get("gripper", "close_positive")),
                   scale=float(node.get("scale", 1.0)))


def _arm(action: np.ndarray, conv: ActionConvention, robot: str) -> tuple[np.ndarray, np.ndarray]:
    """(the 7-d action as float64, translation + axis-angle (6,) scaled), after validation."""
    a = np.asarray(action, dtype=np.float64).reshape(-1)
    if a.shape[0] != 7:
        raise ValueError(f"SIMPLER {robot} expects a 7-d action, got {a.shape[0]} values")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"non-finite action {a.tolist()}")
    rot = a[3:6] if conv.rotation == "axis_angle" else euler_xyz_to_axis_angle(a[3:6])
    return a, np.concatenate([a[:3] * conv.scale, rot * conv.scale])


def to_widowx(action: np.ndarray, conv: ActionConvention = ActionConvention()) -> np.ndarray:
    """One policy action (7,) -> the WidowX controller action (7,) float32:
    [dx, dy, dz (m), axis-angle (3, rad), gripper (+1 open / -1 close)]."""
    a, arm = _arm(action, conv, "WidowX")
    out = np.empty(7, dtype=np.float32)
    out[:6] = arm
    out[6] = widowx_gripper(a[6], conv.gripper)
    return out


class StickyGripper:
    """Google-robot gripper of SimplerEnv's policies (`google_robot` setup).

    The controller takes a *relative* command `rel = prev_open - open` (+ = close, - = open; 0 on
    the episode's first step). When |rel| > 0.5 and no sticky action is running, `rel` is latched
    and sent for `repeat` steps, whatever the model says meanwhile; then released. Outside a
    sticky action the continuous `rel` is sent as is. `prev_update` says when `prev_open` moves:
    - "every_step": after every step (DelinQu/SimplerEnv-OpenVLA@2905379
      simpler_env/policies/openvla/openvla_model.py L117-138, repeat 15), so a gradual close
      sends small steps (0.3, 0.3, ...) and never latches;
    - "on_latch": on the first step and when a command is latched only (microsoft/CogACT@b174a1b
      sim_cogact/cogact_policy.py:166-191, repeat 10 at :58), so `rel` is measured from the last
      latched value and a gradual close latches once the drift passes 0.5.
    `open` is the model's continuous value under the `open_fraction` convention (as SimplerEnv);
    under the binarised conventions it is recovered as (1 -+ g) / 2, which is only 0 or 1.
    One instance per episode: call `reset()` at episode start."""

    def __init__(self, repeat: int, prev_update: str):
        if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 1:
            raise ValueError(f"sticky_gripper.repeat={repeat!r}; valid: an integer >= 1")
        if prev_update not in PREV_UPDATES:
            raise ValueError(f"sticky_gripper.prev_update={prev_update!r}; valid: {', '.join(PREV_UPDATES)}")
        self.repeat, self.prev_update = repeat, prev_update
        self.reset()

    def reset(self) -> None:
        self.prev_open: float | None = None
        self.sticky_on = False
        self.count = 0
        self.sticky_value = 0.0

    def __call__(self, g: float, convention: str = "close_positive") -> float:
        if convention == "open_fraction":
            open_ = float(g)
        elif convention == "close_positive":
            open_ = (1.0 - float(g)) / 2.0
        elif convention == "open_positive":
            open_ = (1.0 + float(g)) / 2.0
        else:
            raise ValueError(f"unknown gripper convention {convention!r}; valid: {', '.join(GRIPPERS)}")
        first = self.prev_open is None
        rel = 0.0 if first else self.prev_open - open_
        if first or self.prev_update == "every_step":
            self.prev_open = open_
        if abs(rel) > 0.5 and not self.sticky_on:
            self.sticky_on, self.sticky_value = True, rel
            self.prev_open = open_
        if self.sticky_on:
            self.count += 1
            rel = self.sticky_value
        if self.count == self.repeat:
            self.sticky_on, self.count, self.sticky_value = False, 0, 0.0
        return float(rel)


def to_google_robot(action: np.ndarray, sticky: StickyGripper,
                    conv: ActionConvention = ActionConvention()) -> np.ndarray:
    """One policy action (7,) -> Google robot controller action (7,) float64, as SimplerEnv's
    evaluator concatenates it (maniskill2_evaluator.py: world_vector, rot_axangle, gripper):
    translation, axis-angle, sticky relative gripper (+ close / - open)."""
    a, arm = _arm(action, conv, "Google robot")
    return np.concatenate([arm, [sticky(a[6], conv.gripper)]])
