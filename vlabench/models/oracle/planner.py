"""From a LIBERO task's goal to pick-and-place targets, using privileged simulator geometry.

The hand points down; a grasp is an eef position and a yaw: the start yaw (fingers closing
along world y) or that turned by 90 degrees (fingers along x), whichever clears the neighbours
better. Facts the plan relies on (measured): LIBERO's `in`/`on` predicates test body
origins (not centres), objects' collision geoms give their real extent, the hand's palm is
much wider along the finger axis than the finger opening, and bowls are wider than the
opening (pinch the rim instead).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vlabench.models.oracle.geometry import (Box, body_origin, body_parts, collision_box, geom_boxes,
                                            region_box)

SUPPORTED = ("in", "on")


class Unsupported(RuntimeError):
    """The task's goal needs a skill the oracle does not have (e.g. opening a drawer)."""


@dataclass(frozen=True)
class Transfer:
    """One pick-and-place: move `obj` so that `relation(obj, dest)` holds."""

    obj: str
    dest: str
    relation: str


@dataclass(frozen=True)
class Hand:
    """The gripper's outline relative to the eef point, fingers open: palm box and finger box."""

    palm_lo: np.ndarray
    palm_hi: np.ndarray
    fingers_lo: np.ndarray
    fingers_hi: np.ndarray
    opening: float  # free gap between the finger pads

    @classmethod
    def measure(cls, env: Any, eef: np.ndarray) -> Hand:
        sim = env.sim
        palm = collision_box(sim, sim.model.body_name2id("gripper0_right_gripper"), subtree=False)
        left = collision_box(sim, sim.model.body_name2id("gripper0_leftfinger"))
        right = collision_box(sim, sim.model.body_name2id("gripper0_rightfinger"))
        pad_l = collision_box(sim, sim.model.body_name2id("gripper0_finger_joint1_tip"))
        pad_r = collision_box(sim, sim.model.body_name2id("gripper0_finger_joint2_tip"))
        gap = max(pad_r.lo[1] - pad_l.hi[1], pad_l.lo[1] - pad_r.hi[1])
        return cls(palm.lo - eef, palm.hi - eef, np.minimum(left.lo, right.lo) - eef,
                   np.maximum(left.hi, right.hi) - eef, float(gap))

    def turned(self) -> Hand:
        """This outline yawed +90 degrees about world z: (x, y) -> (-y, x)."""
        def turn(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return np.r_[-hi[1], lo[0], lo[2]], np.r_[-lo[1], hi[0], hi[2]]

        palm, fingers = turn(self.palm_lo, self.palm_hi), turn(self.fingers_lo, self.fingers_hi)
        return Hand(*palm, *fingers, self.opening)


@dataclass(frozen=True)
class Grasp:
    point: np.ndarray  # eef target at the grasp
    rim: bool          # pinching a rim (bowls)
    yaw: float         # hand yaw from its start: 0 (fingers along y) or pi/2 (along x)
    hand: Hand         # the hand's outline at that yaw


def transfers(env: Any) -> list[Transfer]:
    """The goal's predicates as pick-and-place steps; raises Unsupported for other skills."""
    out = []
    for pred in env.parsed_problem["goal_state"]:
        rel = str(pred[0]).lower()
        if rel not in SUPPORTED or len(pred) != 3:
            raise Unsupported(f"the oracle has no plan for the goal predicate {pred!r} "
                              f"(it only picks and places: {', '.join(SUPPORTED)})")
        obj, dest = str(pred[1]), str(pred[2])
        if obj not in env.objects_dict:
            raise Unsupported(f"the oracle cannot pick {obj!r}: it is a fixture, not a movable object")
        out.append(Transfer(obj, dest, rel))
    return out


def unsupported_goal(problem: dict[str, Any]) -> str | None:
    """Why the planner has no plan for a parsed BDDL problem (libero's `robosuite_parse_problem`;
    None: it has one): the checks of `transfers`, before any environment is built."""
    movable = {str(n) for names in (problem.get("objects") or {}).values() for n in names}
    for pred in problem["goal_state"]:
        rel = str(pred[0]).lower()
        if rel not in SUPPORTED or len(pred) != 3:
            return (f"the oracle has no plan for the goal predicate {pred!r} "
                    f"(it only picks and places: {', '.join(SUPPORTED)})")
        if str(pred[1]) not in movable:
            return f"the oracle cannot pick {pred[1]!r}: it is a fixture, not a movable object"
    return None


def scene_boxes(env: Any) -> dict[str, Box]:
    """Collision boxes of every object, and of every body of each fixture.

    Fixtures are in obj_body_id only. A cabinet is split into its bodies (frame, drawers):
    one box around it all would also cover the open drawer's inside, where a bowl can sit.
    """
    out: dict[str, Box] = {}
    for name, bid in env.obj_body_id.items():
        if name in env.objects_dict:
            out[name] = collision_box(env.sim, bid)
        else:
            out.update(body_parts(env.sim, bid))
    return out


def dest_parent(env: Any, dest: str) -> str:
    """The body a goal region belongs to (the region itself when it is a body)."""
    site = env.object_sites_dict.get(dest)
    return str(site.parent_name) if site is not None else dest


def goal_point(env: Any, t: Transfer) -> tuple[np.ndarray, float]:
    """Where the object's origin must go (xy) and the surface z it will rest on."""
    if t.dest in env.object_sites_dict:
        box = region_box(env, t.dest)
        parent = dest_parent(env, t.dest)
        surface = box.bottom if t.relation == "in" else box.top
        if parent in env.obj_body_id:
            pbox = collision_box(env.sim, env.obj_body_id[parent])
            if t.relation == "in":
                surface = max(surface, pbox.bottom)
            else:
                surface = max(surface, min(pbox.top, box.top))
        return box.centre[:2].copy(), float(surface)
    bid = env.obj_body_id[t.dest]
    return body_origin(env.sim, bid)[:2], collision_box(env.sim, bid).top


def required_palm_z(point_xy: np.ndarray, hand: Hand, boxes: dict[str, Box], skip: set[str],
                    margin: float) -> float:
    """Lowest eef z at which the palm clears every box under its outline at `point_xy`."""
    lo = np.r_[point_xy, 0.0] + hand.palm_lo - margin
    hi = np.r_[point_xy, 0.0] + hand.palm_hi + margin
    z = -np.inf
    for name, b in boxes.items():
        if name not in skip and b.overlaps_xy(lo, hi):
            z = max(z, b.top - hand.palm_lo[2] + margin)
    return z


def fingers_blocked(point_xy: np.ndarray, z: float, hand: Hand, boxes: dict[str, Box],
                    skip: set[str], margin: float) -> bool:
    """Whether the open fingers at (point_xy, z) would land on a neighbour."""
    lo = np.r_[point_xy, 0.0] + hand.fingers_lo - margin
    hi = np.r_[point_xy, 0.0] + hand.fingers_hi + margin
    return any(name not in skip and b.overlaps_xy(lo, hi) and b.top > z + hand.fingers_lo[2]
               for name, b in boxes.items())


def plan_grasp(env: Any, t: Transfer, hand: Hand, boxes: dict[str, Box], p: Any) -> Grasp:
    """A grasp point and yaw on `t.obj` whose hand outline clears its neighbours.

    Objects narrower than the finger gap along the finger axis are grasped at their centre,
    `grip_depth` below the top (never lower than `min_tip_clearance` above their bottom);
    ones wider along both axes (bowls) are pinched at a rim, taken as round. Candidates shift
    along the other axis, at both yaws; the one that lets the hand go lowest (deepest grip)
    wins, and turning the hand costs `turn_cost` (it takes steps, and the start yaw is the
    better-tested one). Near the arm's reach the extended arm is slow and sags, so a hand
    farther than `reach_soft` from the robot's base, at the grasp or over the goal, costs
    `reach_cost` per metre beyond it.
    """
    box = boxes[t.obj]
    base = robot_base_xy(env)
    goal_xy, _ = goal_point(env, t)
    to_goal = goal_xy - body_origin(env.sim, env.obj_body_id[t.obj])[:2]  # the hand moves with it
    best: tuple[float, Grasp] | None = None
    for yaw, outline in ((0.0, hand), (np.pi / 2, hand.turned())):
        for cost, grasp in _grasp_candidates(box, t.obj, yaw, outline, boxes, p):
            xy = grasp.point[:2]
            reach = max(np.linalg.norm(xy - base), np.linalg.norm(xy + to_goal - base))
            cost += float(p.reach_cost) * max(0.0, float(reach) - float(p.reach_soft))
            if best is None or cost < best[0]:
                best = (cost, grasp)
    if best is None:  # nothing clears: grasp high at the centre and hope
        limit = max(box.top - float(p.rim_depth), box.top - float(p.min_grip))
        wide = bool(box.size[1] > finger_room(hand, p))
        return Grasp(np.array([box.centre[0], box.centre[1], limit]), wide, 0.0, hand)
    return best[1]


def robot_base_xy(env: Any) -> np.ndarray:
    """Where the arm stands (its base body), in the world's xy."""
    sim = env.sim
    base = sim.model.body_name2id(env.robots[0].robot_model.root_body)
    return np.asarray(sim.data.body_xpos[base], dtype=np.float64)[:2].copy()


def finger_room(hand: Hand, p: Any) -> float:
    """The widest object the open fingers take whole (else it is pinched, or taken across)."""
    return hand.opening - 2 * float(p.width_margin)


def _grasp_candidates(box: Box, name: str, yaw: float, hand: Hand, boxes: dict[str, Box],
                      p: Any) -> list[tuple[float, Grasp]]:
    """(cost, grasp) for every candidate point at one hand yaw whose palm lets the fingers reach."""
    skip = {name}
    margin = float(p.clearance)
    axis = 1 if yaw == 0.0 else 0  # the axis the fingers close along
    other = 1 - axis
    fits = finger_room(hand, p)
    wide = box.size[axis] > fits
    if wide and box.size[other] <= fits:
        return []  # long and narrow (a box, not a bowl): grasp it across, at the other yaw
    base_z = max(box.top - float(p.grip_depth), box.bottom - hand.fingers_lo[2] + float(p.min_tip_clearance))
    half = max(0.0, box.size[other] / 2 - float(p.edge_keep))
    radius = box.size[axis] / 2
    if wide:  # a round rim: pinch it where it is, off-centre too, but not where it turns away
        base_z = box.top - float(p.rim_depth)
        half = min(half, float(p.rim_shift) * radius)
        insets = [float(i) for i in p.rim_insets]
        sides = [(-1.0, i) for i in insets] + [(1.0, i) for i in insets]
        # a pinch nearer the outer edge holds only the lip: prefer the deepest inset
        penalty = [max(insets) - i for i in insets] * 2
    else:
        sides, penalty = [(0.0, 0.0)], [0.0]
    across = box.centre[other] + np.linspace(-half, half, 9)
    limit = max(base_z, box.top - float(p.min_grip))  # fingers must still reach the object
    turn = float(p.turn_cost) if yaw != 0.0 else 0.0
    out = []
    for (side, inset), pen in zip(sides, penalty, strict=True):
        for c in across:
            xy = np.zeros(2)
            edge = np.sqrt(max(radius**2 - (c - box.centre[other]) ** 2, 0.0)) if wide else 0.0
            xy[axis], xy[other] = box.centre[axis] + side * (edge - inset), c
            z = max(base_z, required_palm_z(xy, hand, boxes, skip, margin))
            if z > limit + 1e-9:
                continue  # the palm would keep the fingers above the object
            blocked = fingers_blocked(xy, z, hand, boxes, skip, margin)
            cost = (z - base_z) + 0.3 * abs(c - box.centre[other]) + pen + turn + (1.0 if blocked else 0.0)
            out.append((cost, Grasp(np.array([xy[0], xy[1], z]), wide, yaw, hand)))
    return out


def overhang_exit(env: Any, obj: str, p: Any) -> np.ndarray:
    """The horizontal shift (x, y) that slides `obj` out from under a fixture (zeros if none).

    A bowl in an open drawer sits partly under the cabinet's top: lifted straight up it would
    hit it. The fixture's geoms whose underside lies just above the object's top and over its
    footprint are the overhang; the object leaves along the axis direction that clears them
    in the shortest slide (plus `clearance`).
    """
    box = collision_box(env.sim, env.obj_body_id[obj])
    parts = [b for name, bid in env.obj_body_id.items() if name not in env.objects_dict
             for b in geom_boxes(env.sim, bid)]
    over = [b for b in parts if box.top - 0.003 <= b.bottom < box.top + float(p.lift_height)
            and b.overlaps_xy(box.lo, box.hi)]
    if not over:
        return np.zeros(2)
    lo = np.min([b.lo[:2] for b in over], axis=0)
    hi = np.max([b.hi[:2] for b in over], axis=0)
    moves = [(hi[0] - box.lo[0], np.array([1.0, 0.0])), (box.hi[0] - lo[0], np.array([-1.0, 0.0])),
             (hi[1] - box.lo[1], np.array([0.0, 1.0])), (box.hi[1] - lo[1], np.array([0.0, -1.0]))]
    dist, direction = min(moves, key=lambda m: m[0])
    return direction * (dist + 2 * float(p.clearance))


def corridor_top(a_xy: np.ndarray, b_xy: np.ndarray, half_width: float, boxes: dict[str, Box],
                 skip: set[str]) -> float:
    """Highest top among boxes within `half_width` of the straight segment a -> b (xy)."""
    top = 0.0
    d = b_xy - a_xy
    n = float(np.dot(d, d))
    for name, box in boxes.items():
        if name in skip:
            continue
        c = box.centre[:2]
        s = 0.0 if n == 0 else float(np.clip(np.dot(c - a_xy, d) / n, 0, 1))
        near = a_xy + s * d
        gap = np.maximum(np.abs(near - c) - box.size[:2] / 2, 0.0)
        if float(np.linalg.norm(gap)) < half_width:
            top = max(top, box.top)
    return top
