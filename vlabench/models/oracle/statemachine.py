"""The oracle's state machine: approach, descend, close, (slide), lift, carry, lower, release, retreat.

Position control `clip(gain * (error + integral * summed error), -1, 1)` (the sum only near the
target, so the arm's sag under a load or at far reach is taken out without wind-up), at least
`min_speed` until the waypoint, with the orientation held at its value when the plan was made
(after the protocol's wait steps) turned by the grasp's yaw. Targets are recomputed every step
from the simulator, so carrying corrects for slip: the eef moves until the *object's origin*
(what LIBERO's predicates test) is over the goal, and the carry height follows what still lies
between the object and the goal.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from vlabench.models.oracle.geometry import body_origin, collision_box
from vlabench.models.oracle.planner import (Grasp, Hand, Transfer, corridor_top, goal_point,
                                            overhang_exit, plan_grasp, scene_boxes, transfers)

OPEN, CLOSE = -1.0, 1.0


class PickPlaceMachine:
    """Runs a task's transfers one after another; one 7-d action per step."""

    def __init__(self, env: Any, eef: np.ndarray, quat_xyzw: np.ndarray, params: Any):
        self.env = env
        self.p = params
        self.todo: list[Transfer] = transfers(env)
        self.hand = Hand.measure(env, eef)
        self.q_ref = Rotation.from_quat(quat_xyzw)
        self.q_goal = self.q_ref  # the orientation the hand holds: q_ref yawed by the grasp's yaw
        self.ceiling = float(eef[2]) + float(params.max_rise)  # the arm's comfortable reach
        self.i = 0
        self.attempts = 0
        self.phase = "plan"
        self.count = 0
        self.grasp: Grasp | None = None
        self.travel_z = self.carry_z = self.release_z = 0.0
        self.hang = 0.0
        self.log: list[str] = []
        self.still = 0  # consecutive steps the eef has not moved
        self.err_sum = np.zeros(3)  # integral of the position error, per axis
        self.last_eef: np.ndarray | None = None

    # -- helpers ---------------------------------------------------------------------------
    def _go(self, phase: str) -> None:
        if self.log:
            self.log[-1] += f":{self.count}"
        if not {self.phase, phase} <= {"carry", "lower"}:  # placing keeps its integral
            self.err_sum = np.zeros(3)
        self.phase, self.count, self.still = phase, 0, 0
        self.log.append(phase)

    def _obj(self) -> np.ndarray:
        return body_origin(self.env.sim, self.env.obj_body_id[self.todo[self.i].obj])

    def _holds(self, t: Transfer) -> bool:
        try:
            return bool(self.env._eval_predicate([t.relation, t.obj, t.dest]))
        except Exception:  # a predicate LIBERO cannot evaluate alone: assume not yet
            return False

    def _plan(self, eef: np.ndarray) -> None:
        """Plan the current transfer from the scene as it is now."""
        t, p = self.todo[self.i], self.p
        boxes = scene_boxes(self.env)
        self.grasp = plan_grasp(self.env, t, self.hand, boxes, p)
        g, hand = self.grasp.point, self.grasp.hand
        self.q_goal = Rotation.from_euler("z", self.grasp.yaw) * self.q_ref
        palm_half = float(np.max(np.abs(np.r_[hand.palm_lo[:2], hand.palm_hi[:2]]))) + float(p.clearance)
        finger_half = (float(np.max(np.abs(np.r_[hand.fingers_lo[:2], hand.fingers_hi[:2]])))
                       + float(p.clearance))
        skip = {t.obj}
        palm_top = corridor_top(eef[:2], g[:2], palm_half, boxes, skip)
        finger_top = corridor_top(eef[:2], g[:2], finger_half, boxes, skip)
        self.travel_z = max(palm_top - hand.palm_lo[2], finger_top - hand.fingers_lo[2],
                            g[2] + float(p.approach_height)) + float(p.clearance)
        self.travel_z = min(self.travel_z, self.ceiling)
        box = boxes[t.obj]
        self.hang = g[2] - box.bottom
        goal_xy, surface = goal_point(self.env, t)
        self.goal_xy, self.surface = goal_xy, surface
        obj_half = float(np.max(box.size[:2])) / 2 + float(p.clearance)
        path_top = max(corridor_top(g[:2], goal_xy, obj_half, boxes, skip), surface)
        # a bowl pinched at its rim tilts about the pinch: its far edge hangs lower
        tilt = float(np.max(box.size[:2])) if self.grasp.rim else 0.0
        self.boxes, self.obj_half, self.tilt = boxes, obj_half, tilt
        self.carry_z = min(max(path_top + self.hang + tilt + float(p.carry_clearance),
                               g[2] + float(p.lift_height)), self.ceiling)
        self.release_z = surface + self.hang + float(p.drop_height)
        self.obj_z0 = box.bottom
        self.exit = overhang_exit(self.env, t.obj, p)  # slide out from under a fixture first
        self.lift_xy = g[:2].copy()

    def _carry_height(self, obj_xy: np.ndarray) -> float:
        """Eef height that carries the object over what still lies between it and the goal.

        Recomputed every step, so once the object has cleared a tall support (a cabinet top)
        the carry descends towards the goal while it travels instead of lowering at the end.
        """
        ahead = max(corridor_top(obj_xy, self.goal_xy, self.obj_half, self.boxes,
                                 {self.todo[self.i].obj}), self.surface)
        return min(self.carry_z, ahead + self.hang + self.tilt + float(self.p.carry_clearance))

    def _carry_speed(self) -> float:
        """A bowl pinched by its rim swings: carry it slower."""
        return float(self.p.rim_carry_speed) if self.grasp is not None and self.grasp.rim else 1.0

    def _move(self, eef: np.ndarray, quat_xyzw: np.ndarray, target: np.ndarray, grip: float,
              speed: float = 1.0) -> np.ndarray:
        a = np.zeros(7)
        err = target - eef
        # integral term, per axis and only near the target (no wind-up on the way): the
        # controller has none of its own and sags under a load or at the arm's far reach
        near = np.abs(err) < float(self.p.integral_zone)
        self.err_sum = np.clip(self.err_sum + np.where(near, err, 0.0), -0.5, 0.5)
        cmd = float(self.p.gain) * (err + float(self.p.integral) * self.err_sum)
        norm = float(np.linalg.norm(cmd))
        floor = float(self.p.min_speed)
        if floor > 0 and norm > 1e-9 and float(np.linalg.norm(err)) > 0.5 * float(self.p.tolerance):
            cmd *= max(1.0, floor / norm)  # proportional control crawls near a waypoint
        a[:2] = np.clip(cmd[:2], -speed, speed)  # a held bowl swings sideways, not up and down
        a[2] = np.clip(cmd[2], -1.0, 1.0)
        a[3:6] = np.clip(float(self.p.rot_gain) * self._rot_error(quat_xyzw), -1.0, 1.0)
        a[6] = grip
        return a

    def _rot_error(self, quat_xyzw: np.ndarray) -> np.ndarray:
        return (self.q_goal * Rotation.from_quat(quat_xyzw).inv()).as_rotvec()

    # -- the machine -----------------------------------------------------------------------
    def action(self, eef: np.ndarray, quat_xyzw: np.ndarray) -> np.ndarray:
        p = self.p
        self.count += 1
        tol = float(p.tolerance)
        moved = np.inf if self.last_eef is None else float(np.linalg.norm(eef - self.last_eef))
        moved_xy = np.inf if self.last_eef is None else float(np.linalg.norm(eef[:2] - self.last_eef[:2]))
        self.still = self.still + 1 if moved < float(p.stall_motion) else 0
        self.last_eef = eef.copy()
        stalled = self.still >= int(p.stall_steps) and self.count > int(p.stall_steps)
        if self.phase == "done":
            return self._move(eef, quat_xyzw, eef, OPEN)
        if self.phase == "plan":
            while self.i < len(self.todo) and self._holds(self.todo[self.i]):
                self.i += 1
            if self.i >= len(self.todo):
                self._go("done")
                return self._move(eef, quat_xyzw, eef, OPEN)
            self._plan(eef)
            self._go("approach")
        g = self.grasp.point
        if self.phase == "approach":
            if eef[2] < self.travel_z - 0.02 and np.linalg.norm(eef[:2] - g[:2]) > 0.02:
                target = np.r_[eef[:2], self.travel_z]
            else:
                target = np.r_[g[:2], max(self.travel_z, g[2])]
            over = np.linalg.norm(eef[:2] - g[:2]) < 1.5 * tol
            turned = float(np.linalg.norm(self._rot_error(quat_xyzw))) < float(p.yaw_tolerance)
            if (over and turned) or stalled or self.count > int(p.phase_limit):
                self._go("descend")
            return self._move(eef, quat_xyzw, target, OPEN)
        if self.phase == "descend":
            if np.linalg.norm(g - eef) < float(p.grasp_tolerance) or stalled or self.count > int(p.phase_limit):
                self._go("close")
            return self._move(eef, quat_xyzw, g, OPEN)
        if self.phase == "close":
            if self.count >= int(p.close_steps):
                self._go("slide" if np.any(self.exit) else "lift")
            return self._move(eef, quat_xyzw, g, CLOSE)
        if self.phase == "slide":  # drag the held object out from under an overhang
            target = np.r_[g[:2] + self.exit, g[2]]
            if np.linalg.norm(eef[:2] - target[:2]) < tol or stalled or self.count > int(p.phase_limit):
                self.lift_xy = eef[:2].copy()
                self._go("lift")
            return self._move(eef, quat_xyzw, target, CLOSE, self._carry_speed())
        if self.phase == "lift":
            target = np.r_[self.lift_xy, self.carry_z]
            if eef[2] > self.carry_z - tol or stalled or self.count > int(p.phase_limit):
                lifted = collision_box(self.env.sim, self.env.obj_body_id[self.todo[self.i].obj]).bottom
                if lifted < self.obj_z0 + 0.5 * (eef[2] - g[2]):  # the object stayed behind
                    self.attempts += 1
                    self._go("retreat")
                else:
                    self._go("carry")
            return self._move(eef, quat_xyzw, target, CLOSE)
        if self.phase in ("carry", "lower"):
            obj_xy = self._obj()[:2]
            off = self.goal_xy - obj_xy  # steer the object's origin, not the hand
        if self.phase == "carry":
            target = np.r_[eef[:2] + off, self._carry_height(obj_xy)]
            if np.linalg.norm(off) < float(p.place_tolerance) or self.count > 2 * int(p.phase_limit):
                self._go("lower")
            return self._move(eef, quat_xyzw, target, CLOSE, self._carry_speed())
        if self.phase == "lower":
            target = np.r_[eef[:2] + off, self.release_z]
            # release over the goal and nearly at rest: a hand still sliding throws the object
            aligned = np.linalg.norm(off) < float(p.place_tolerance) and moved_xy < float(p.release_motion)
            # a rim-held bowl tilts, so its bottom can reach the goal before the eef does
            bottom = collision_box(self.env.sim, self.env.obj_body_id[self.todo[self.i].obj]).bottom
            down = eef[2] < self.release_z + tol or bottom < self.surface + float(p.drop_height) + tol
            if (down or stalled) and aligned:
                self._go("release")
            elif self.count > int(p.phase_limit):  # pushed off the goal while lowering: realign
                self.attempts += 1
                self._go("carry" if self.attempts <= int(p.max_attempts) else "release")
            return self._move(eef, quat_xyzw, target, CLOSE, self._carry_speed())
        if self.phase == "release":
            if self.count >= int(p.open_steps):
                self._go("retreat")
            return self._move(eef, quat_xyzw, eef, OPEN)
        if self.phase == "retreat":
            up = max(self.travel_z, eef[2])
            target = np.r_[eef[:2], min(up, self.ceiling)]
            if self.count >= int(p.retreat_steps):
                self._go("plan")
            return self._move(eef, quat_xyzw, target, OPEN)
        raise RuntimeError(f"oracle state machine in an unknown phase {self.phase!r}")
