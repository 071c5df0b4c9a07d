"""A recording policy for the LIBERO placement-stream tests (never shipped as a model)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from vlabench.core.contracts import CallStats, Observation, PolicyOutput, TaskInfo


class RecorderPolicy:
    """Plays `actions` (one per step, chunk 1) and saves what it sees to `dump_dir`.

    Each process records under `dump_dir/session<n>/` (n: sessions already there), one
    `reset<k>_step<s>.npz` per call (k: resets in this process) holding both camera frames and
    the fixtures' body positions. With `exit_at_reset` = k, the first session dies abruptly
    (`os._exit`, no cleanup, like SIGKILL) at its k-th reset, before that episode records anything."""

    def __init__(self, cfg: Any, pruner: Any = None, suite_cfg: Any = None, device: str = "cpu"):
        self.cfg = cfg
        self.needs = frozenset(cfg.needs)
        self.device = "cpu"
        self.actions = np.asarray(cfg.actions, dtype=np.float64)
        root = Path(cfg.dump_dir)
        root.mkdir(parents=True, exist_ok=True)
        self.session = len(list(root.glob("session*")))
        self.dir = root / f"session{self.session}"
        self.dir.mkdir()
        self.resets = -1

    def reset(self, task: TaskInfo) -> None:
        self.resets += 1
        if self.session == 0 and self.resets == self.cfg.get("exit_at_reset"):
            os._exit(137)

    def act(self, obs: Observation) -> PolicyOutput:
        env = obs.privileged["env"].env
        fixtures = {name: env.sim.model.body_pos[env.sim.model.body_name2id(f.root_body)].copy()
                    for name, f in env.fixtures_dict.items()}
        np.savez(self.dir / f"reset{self.resets}_step{obs.step}.npz", **obs.images,
                 **{f"fixture_{k}": v for k, v in fixtures.items()})
        a = self.actions[min(obs.step, len(self.actions) - 1)][None]
        return PolicyOutput(a, CallStats(latency_ms={"total": 1.0}, tokens_in=1, tokens_kept=1, mode="fixed"))
