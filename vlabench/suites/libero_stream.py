"""LIBERO's placement RNG stream, drawn exactly as the reference evaluation draws it.

The reference evaluation seeds each task's environment once (`env.seed(0)`, numpy's global RNG)
and never reseeds, so episode i's fixture placement is the (i+1)-th `env.reset()` draw of one
stream. `ResetStream` keeps that stream apart from numpy's global state, which the runner
reseeds before every episode for policies and pruners, and fast-forwards a fresh stream by
replaying the skipped episodes' resets, so a resumed run or an environment rebuilt after a crash
gives episode i the same placement as an uninterrupted run.

Details: docs/protocols.md#libero-placement-stream
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
