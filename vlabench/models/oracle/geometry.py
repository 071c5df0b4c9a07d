"""World-frame boxes of simulator bodies and goal regions (MuJoCo model/data only)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Box:
    """An axis-aligned world box."""

    lo: np.ndarray
    hi: np.ndarray

    @property
    def centre(self) -> np.ndarray:
        return (self.lo + self.hi) / 2

    @property
    def size(self) -> np.ndarray:
        return self.hi - self.lo

    @property
    def top(self) -> float:
        return float(self.hi[2])

    @property
    def bottom(self) -> float:
        return float(self.lo[2])

    def overlaps_xy(self, lo: np.ndarray, hi: np.ndarray) -> bool:
        return bool(np.all(self.lo[:2] < hi[:2]) and np.all(lo[:2] < self.hi[:2]))


def _subtree(model: Any, root: int) -> set[int]:
    out = {root}
    for b in range(root + 1, model.nbody):  # MuJoCo lists bodies in tree order
        if int(model.body_parentid[b]) in out:
            out.add(b)
    return out


def geom_boxes(sim: Any, body_id: int, subtree: bool = True) -> list[Box]:
    """World boxes of each collision geom of a body (and its descendants)."""
    m, d = sim.model._model, sim.data._data
    bodies = _subtree(m, body_id) if subtree else {body_id}
    out = []
    for g in range(m.ngeom):
        if int(m.geom_bodyid[g]) not in bodies or not (m.geom_contype[g] or m.geom_conaffinity[g]):
            continue
        rot = d.geom_xmat[g].reshape(3, 3)
        centre = d.geom_xpos[g] + rot @ m.geom_aabb[g, :3]
        half = np.abs(rot) @ m.geom_aabb[g, 3:]
        out.append(Box(centre - half, centre + half))
    return out


def _union(boxes: list[Box]) -> Box:
    return Box(np.min([b.lo for b in boxes], axis=0), np.max([b.hi for b in boxes], axis=0))


def collision_box(sim: Any, body_id: int, subtree: bool = True) -> Box:
    """Bounding box of the collision geoms of a body (and its descendants), not its origin."""
    boxes = geom_boxes(sim, body_id, subtree)
    if not boxes:
        p = sim.data._data.xpos[body_id].copy()
        return Box(p, p)
    return _union(boxes)


def body_parts(sim: Any, body_id: int) -> dict[str, Box]:
    """One box per body of a subtree that has collision geoms (a cabinet: frame, drawers)."""
    out = {}
    for b in sorted(_subtree(sim.model._model, body_id)):
        boxes = geom_boxes(sim, b, subtree=False)
        if boxes:
            out[sim.model.body_id2name(b)] = _union(boxes)
    return out


def region_box(env: Any, site_name: str) -> Box:
    """The box LIBERO's `in`/`on` predicates test for a region site (site pos +- |R @ size|)."""
    site = env.object_sites_dict[site_name]
    pos = np.asarray(env.sim.data.get_site_xpos(site_name), dtype=np.float64)
    mat = np.asarray(env.sim.data.get_site_xmat(site_name), dtype=np.float64)
    half = np.abs(mat @ np.asarray(site.size, dtype=np.float64))
    return Box(pos - half, pos + half)


def body_origin(sim: Any, body_id: int) -> np.ndarray:
    """The body frame origin: what LIBERO's predicates test (not the geometric centre)."""
    return np.asarray(sim.data._data.xpos[body_id], dtype=np.float64).copy()
