"""Per-episode-slot random streams for calls that share one process (run.env_workers, run.batch).

An in-process episode draws from one stream per library (Python's `random`, numpy's global
state, torch's CPU and CUDA generators), re-seeded at its start. When the main process serves
several slots, each slot's streams are kept here and installed around whatever draws on the
slot's behalf: a whole batch-1 call, or in a batched call each pruner hook and noise draw of
the slot's lane (vlabench/models/policy.py `act_lanes`). A slot's draws are then those of its
in-process episode, whatever else the process served in between.
"""

from __future__ import annotations

import random
import sys
from typing import Any

import numpy as np


def py_np_state() -> tuple[Any, Any]:
    """The process's (random, numpy) global state."""
    return random.getstate(), np.random.get_state()


def set_py_np_state(state: tuple[Any, Any]) -> None:
    random.setstate(state[0])
    np.random.set_state(state[1])


class LaneRng:
    """One slot's streams. `py_np`: the (random, numpy) state (None: the process's current one
    is left as it is); `torch_state`: the (CPU, CUDA) generator states, None until the slot's
    first call saves them (the first call then continues the process's torch stream, which the
    episode's start seeded). Calling the object gives the context that installs them."""

    def __init__(self, py_np: tuple[Any, Any] | None = None, torch_state: Any = None):
        self.py_np = py_np
        self.torch_state = torch_state

    def __call__(self) -> LaneRng:
        return self

    def __enter__(self) -> LaneRng:
        if self.py_np is not None:
            set_py_np_state(self.py_np)
        torch = sys.modules.get("torch")
        st = self.torch_state
        if torch is not None and st is not None:
            torch.set_rng_state(st[0])
            if st[1] is not None:
                torch.cuda.set_rng_state_all(st[1])
        return self

    def __exit__(self, *exc: Any) -> None:
        self.py_np = py_np_state()
        torch = sys.modules.get("torch")
        if torch is not None:
            cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None
            self.torch_state = (torch.get_rng_state(), cuda)
