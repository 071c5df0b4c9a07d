"""A reading: one point where a method's paper text and its public code disagree.

Each pruner class lists its points in `Pruner.readings`; a run picks one side for all of them
with `pruner.reading=code|paper` (default `code`, the side behind the published tables).
The table of every method's readings: vlabench.pruners.readings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vlabench.core.config import cfg_get
from vlabench.core.errors import ConfigError

READINGS = ("code", "paper")


@dataclass(frozen=True)
class Reading:
    """One disagreement between a paper and its code."""

    point: str       # what differs, in a few words
    paper: str       # what the paper's text says (section / equation)
    code: str        # what the public code does (repository @ commit, file:line)
    default: str     # "code" or "paper": the side behind the published numbers
    evidence: str    # why that side is the default


def reading_of(cfg: Any) -> str:
    """`pruner.reading` (default `code`), checked to be one of READINGS."""
    r = str(cfg_get(cfg, "reading", "code"))
    if r not in READINGS:
        raise ConfigError(f"pruner.reading={r!r} is invalid; valid: {', '.join(READINGS)}")
    return r
