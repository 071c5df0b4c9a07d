"""SP-VLA: action-aware model scheduling plus spatial-semantic visual token pruning.
To cut a VLA's latency, steady slow steps are served by ridge-regression extrapolation of the
last actions instead of a model call, and model calls keep only the patches the vision encoder
attends to plus the Canny-edge patches, fewer the faster the arm moves (Eq. 7). Paper: "SP-VLA:
A Joint Model Scheduling and Token Pruning Approach for VLA Model Acceleration"
(arXiv:2506.12723), Sec. 3. Public code: none (github.com/ChildTang/SP-VLA is not public), so
this follows the paper's text.

Details, readings and reference citations: docs/methods/sp-vla.md
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any

import numpy as np
import torch

from vlabench.core.config import cfg_get
from vlabench.core.errors import ConfigError
from vlabench.pruners.base import ModelInfo, Pruner, VisualTokens
from vlabench.pruners.selection import keep_count, top_k_indices

INTUITIVE, DELIBERATIVE = "intuitive", "deliberative"


def retention_ratio(v: float, v_pmin: float, v_pmax: float) -> float:
    """Eq. 7: T_r(v) = 1 for v < v_pmin, else 1 - (v - v_pmin) / (v_pmax - v_pmin)."""
    if v < v_pmin:
        return 1.0
    return 1.0 - (v - v_pmin) / (v_pmax - v_pmin)


def ridge_fit(y: np.ndarray, lam: float) -> np.ndarray:
    """Eq. 3: beta = (X^T X + lambda I)^-1 X^T Y with X = [T, 1], T = 0..n-1; (2, l)."""
    n = y.shape[0]
    x = np.stack([np.arange(n, dtype=np.float64), np.ones(n)], axis=1)
    return np.linalg.solve(x.T @ x + lam * np.eye(2), x.T @ y)


def extrapolate(buffer: np.ndarray, lam: float) -> np.ndarray:
    """Eq. 4 at t = n for translation and rotation; the gripper repeats the last action."""
    beta = ridge_fit(buffer[:, :6], lam)
    out = buffer[-1].copy()
    out[:6] = np.array([len(buffer), 1.0]) @ beta
    return np.clip(out, -1.0, 1.0)


def lightweight_allowed(last: np.ndarray, generated: list[bool], n: int, v_min: float,
                        v_max: float, tau: float) -> bool:
    """Eq. 1: v_min < |a_i| < v_max for x, y, z and N_G / N_A > tau (with a full buffer)."""
    if len(generated) < n:
        return False
    t = np.abs(np.asarray(last[:3], dtype=np.float64))
    return bool(np.all((t > v_min) & (t < v_max)) and sum(generated) / len(generated) > tau)


def canny_patch_ids(image: np.ndarray, grid: int, low: float, high: float) -> torch.Tensor:
    """Row-major ids of the grid x grid patches holding at least one Canny edge pixel."""
    import cv2

    gray = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)
    edges = cv2.Canny(gray, low, high) > 0
    p = edges.shape[0] // grid
    hit = edges[: grid * p, : grid * p].reshape(grid, p, grid, p).any(axis=(1, 3))
    return torch.from_numpy(np.flatnonzero(hit.reshape(-1)))


def accumulated_attention(probs: torch.Tensor) -> torch.Tensor:
    """Eq. 6: the attention each token receives, averaged over queries and heads. (h, P, P)."""
    return probs.float().mean(dim=(0, 1))


def spatial_semantic_keep(accu: torch.Tensor, priority: torch.Tensor, k: int) -> torch.Tensor:
    """Every `priority` token (T_select), topped up to k with the others of highest AccuAttn;
    returned in original order."""
    k = min(max(k, int(priority.sum())), accu.numel())
    key = accu.float() + 2.0 * priority.float() * (1.0 + accu.abs().max())
    return torch.sort(top_k_indices(key, k)).values


class SPVLA(Pruner):
    """SP-VLA's action-type-aware scheduler and spatial-semantic pruning (docs/methods/sp-vla.md)."""

    name = "sp-vla"
    vision_attention = True

    def __init__(self, cfg: Any = None) -> None:
        super().__init__(cfg)
        self.n = int(cfg_get(cfg, "buffer", 6))
        self.tau = float(cfg_get(cfg, "tau", 0.5))
        self.v_min = float(cfg_get(cfg, "v_min", 0.2))
        self.v_max = float(cfg_get(cfg, "v_max", 0.5))
        self.lam = float(cfg_get(cfg, "ridge_lambda", 0.01))
        self.v_pmin = float(cfg_get(cfg, "v_pmin", self.v_min))
        self.v_pmax = float(cfg_get(cfg, "v_pmax", math.sqrt(3.0)))
        self.t_ks = float(cfg_get(cfg, "semantic_threshold", 1.0 / 256.0))
        self.canny = (float(cfg_get(cfg, "canny_low", 100)), float(cfg_get(cfg, "canny_high", 200)))
        self.schedule = bool(cfg_get(cfg, "schedule", True))
        self.prune = bool(cfg_get(cfg, "prune", True))
        self.edges = bool(cfg_get(cfg, "edges", True))
        self.reset()

    def bind(self, info: ModelInfo) -> None:
        super().bind(info)
        if info.action_dim != 7:
            raise ConfigError(f"sp-vla extrapolates 6-DoF + gripper actions; {info.name} "
                              f"has action_dim {info.action_dim}")

    def reset(self) -> None:
        self._actions: deque[np.ndarray] = deque(maxlen=self.n)
        self._generated: deque[bool] = deque(maxlen=self.n)
        self._served = False
        self._mode = DELIBERATIVE

    def mode(self) -> str | None:
        return self._mode

    # ------------------------------------------------------------ hooks
    def skip_call(self, obs: Any) -> np.ndarray | None:
        self._served = False
        if self.schedule and self._actions and lightweight_allowed(
                self._actions[-1], list(self._generated), self.n, self.v_min, self.v_max, self.tau):
            self._served, self._mode = True, INTUITIVE
            return extrapolate(np.stack(self._actions), self.lam)[None, :]
        self._mode = DELIBERATIVE
        return None

    def before_llm(self, tokens: VisualTokens) -> torch.Tensor | None:
        if not self.prune or not self._actions:
            return None
        ratio = retention_ratio(float(np.linalg.norm(self._actions[-1][:3])), self.v_pmin, self.v_pmax)
        if ratio >= 1.0:
            return None
        info = self.info
        per = info.grid * info.grid
        k = keep_count(per, min(1.0, max(ratio, 1.0 / per)))
        att = tokens.vision_attention
        if att is None or any(a.device.type == "meta" for a in att.values()):
            return torch.empty(k * len(info.cameras), dtype=torch.long, device="meta")
        keep = []
        for c, cam in enumerate(info.cameras):
            accu = accumulated_attention(att[cam]).cpu()
            prio = accu > self.t_ks
            if self.edges:
                prio[canny_patch_ids(tokens.images[cam], info.grid, *self.canny)] = True
            keep.append(spatial_semantic_keep(accu, prio, k) + c * per)
        return torch.cat(keep)

    def end_of_step(self, actions: np.ndarray, stats: Any) -> None:
        for a in np.asarray(actions, dtype=np.float64).reshape(-1, 7):
            self._actions.append(a)
            self._generated.append(not self._served)
        self._served = False

