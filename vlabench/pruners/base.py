"""The pruner contract: a strategy that sees a model only through named hook points.

The base class is the `none` pruner: every hook is a no-op, so a model run with it is the
unmodified model. Methods subclass it and override the hooks they need.
"""

from __future__ import annotations

from typing import Any


class Pruner:
    """No pruning. Subclasses override hooks; `reset()` runs at every episode start."""

    name = "none"

    def __init__(self, cfg: Any = None) -> None:
        self.cfg = cfg

    def reset(self) -> None:
        """Forget per-episode state (history of attention, previous frames, actions)."""
