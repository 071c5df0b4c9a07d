"""SpecPrune-VLA's action-aware controller and frame interval, under both readings.

The controller picks the coarse or fine pruning budget from the robot's recent motion (the
code's per-action hysteresis rule, or the paper's per-call rule), and the frame interval picks
how far back the reference frame for the patch comparison lies. Paper: "SpecPrune-VLA:
Accelerating Vision-Language-Action Models via Action-Aware Self-Speculative Pruning"
(arXiv:2509.05614). Public code: alexwhz-sjtu/SpecPrune-VLA@d3b06ed.

Details, readings and reference citations: docs/methods/specprune.md
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

FINE, COARSE = "fine", "coarse"


def frame_interval(v: float) -> int:
    """Paper Sec. 4.2: T = floor(-16/3 * v/6 + 22/3) + 4 frames back (at least 1)."""
    return max(1, math.floor(-16.0 / 3.0 * v / 6.0 + 22.0 / 3.0) + 4)


def code_prev_t(v: float) -> int:
    """run_libero_eval.py L381-382: prev_T = min(int(-16/3 * v/6 + 22/3) + 3, 6) (int truncates
    toward zero). The code's comment says "prev_T ~ (2, 6)"; below 2 it compares a frame with
    itself (prev_T = 1) or indexes from the episode's start (prev_T <= 0): a bug, not reproduced
    (clamped to 2)."""
    return max(2, min(int(-16.0 / 3.0 * v / 6.0 + 22.0 / 3.0) + 3, 6))


def code_frames_back(v: float) -> int:
    """Steps between the current frame and the code's reference `replay_images[-prev_T]`."""
    return code_prev_t(v) - 1


def controller_mode(action: np.ndarray | None, vt_th: float, vr_th: float) -> str:
    """Paper Sec. 6.2 / Algorithm 1 lines 2-7: fine iff v_t < v_t^th and v_r < v_r^th and
    dz <= 0 (coarse before the first action)."""
    if action is None:
        return COARSE
    a = np.asarray(action, dtype=np.float64)
    v_t, v_r, dz = float(np.linalg.norm(a[:3])), float(np.linalg.norm(a[3:6])), float(a[2])
    return FINE if (v_t < vt_th and v_r < vr_th and dz <= 0.0) else COARSE


@dataclass
class CodeController:
    """The code's per-step controller (docs/methods/specprune.md). `step` returns True for a replan."""

    vt_th: float = 0.4       # VELOCITY_THRES
    vr_th: float = 0.2       # ROT_THRES
    xy_th: float = 0.1       # XY_THRES
    z_th: float = 0.1        # Z_THRES
    exit_z: float = 0.2      # L443 literal
    exit_rot: float = 0.3    # L443 literal
    fine: bool = False       # precise_mode, False at episode start (L47)
    previous: bool = True    # cur_mode, True at episode start (L48)

    def step(self, action: np.ndarray, chunk_used_up: bool) -> bool:
        """Update after one executed action; True when entering fine mode with actions left."""
        a = np.asarray(action, dtype=np.float64)
        v_t, v_xy = float(np.linalg.norm(a[:3])), float(np.linalg.norm(a[:2]))
        v_r, dz = float(np.linalg.norm(a[3:6])), float(a[2])
        replan = False
        if self.fine:
            self.fine = not (dz > self.exit_z or (v_r > self.exit_rot and chunk_used_up))
        else:
            self.fine = v_t < self.vt_th or (v_xy < self.xy_th and dz < self.z_th and v_r < self.vr_th)
            replan = (not self.previous) and self.fine and not chunk_used_up
        self.previous = self.fine
        return replan

    @property
    def mode(self) -> str:
        return FINE if self.fine else COARSE
