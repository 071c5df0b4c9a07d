"""LIBERO's placement RNG stream, drawn exactly as the reference evaluation draws it.

What the reference does (openvla-oft @ 213c5ff, experiments/robot/libero/run_libero_eval.py; the
openvla and SpecPrune-VLA copies are the same): `set_seed_everywhere(7)` once (eval_libero:468),
then per task `get_libero_env` builds the env and calls `env.seed(0)` (libero_utils.py:23), and
each episode calls `env.reset()` (:293) and `env.set_init_state(initial_states[episode_idx])`
(:297), never reseeding. Episode i's placement is therefore the (i+1)-th reset draw of one stream
that starts at `env.seed(0)` when the task's env is built.

Which RNG that is (checked on the installed LIBERO and robosuite 1.4):
- LIBERO's `env.seed(s)` is `np.random.seed(s)` (libero/libero/envs/bddl_base_domain.py `seed`);
  its region and object-property samplers draw from numpy's global RNG
  (envs/regions/base_region_sampler.py, object_property_sampler.py), robosuite 1.4 keeps no
  RNG of its own, and neither uses Python's `random` on LIBERO scenes.
- A (hard) `env.reset()` re-places the fixtures (cabinet, stove, rack, microwave) by writing
  `sim.model.body_pos` (bddl_base_domain.py `_reset_internal`); `set_init_state` restores only the
  MuJoCo state (qpos/qvel), so the fixtures stay where the reset's draw put them (0.9-2.2 cm
  apart from one draw to the next).
- `set_init_state` and `env.step` draw nothing: the reset is the stream's only consumer
  (pinned by tests/test_libero_stream.py).

`ResetStream` keeps that stream apart from numpy's global state, which the runner reseeds before
every episode for policies and pruners: each reset runs with the stream's state swapped in and
leaves the global state as it found it. A resumed run, or an environment rebuilt after a crash,
starts a fresh stream and fast-forwards it by replaying the skipped episodes' resets, so episode
i gets the same placement as in an uninterrupted run (about one second per replayed reset on CPU).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np


class ResetStream:
    """The placement stream of one task environment (`env.seed(seed)` at build, one draw per reset)."""

    def __init__(self, env: Any, seed: int):
        self._env = env
        self._seed = int(seed)
        self._state: Any = None
        self.position = 0
        self.restart()

    def restart(self) -> None:
        """Back to the start of the stream: `env.seed(seed)` as the reference calls it at build."""
        with self._swapped():
            self._env.seed(self._seed)
        self.position = 0

    def reset(self, position: int) -> Any:
        """`env.reset()` as the reference's episode `position` (0-based) runs it; returns its result.

        Resets the stream did not make yet (a resumed run, a rebuilt env) are replayed first; an
        earlier position restarts the stream."""
        if position < self.position:
            self.restart()
        while self.position < position:
            self._draw()
        return self._draw()

    def _draw(self) -> Any:
        with self._swapped():
            out = self._env.reset()
        self.position += 1
        return out

    @contextmanager
    def _swapped(self) -> Iterator[None]:
        """Run the body on the stream's numpy state; the global state outside is left untouched."""
        outside = np.random.get_state()
        if self._state is not None:
            np.random.set_state(self._state)
        try:
            yield
        finally:
            self._state = np.random.get_state()
            np.random.set_state(outside)
