"""Readings: the points where a method's paper text and its public code disagree.

Each pruner class lists its points in `Pruner.readings`. A run picks one side for all of them
with `pruner.reading=code|paper`; the default is the side that produced the published tables
(usually `code`). `vlabench list --readings` prints every point of every method, and the README's
"Readings" table is generated from the same data (`vlabench list --readings --markdown`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vlabench.config import cfg_get
from vlabench.registry import ConfigError

READINGS = ("code", "paper")
COLUMNS = ("method", "point", "paper", "code", "default", "evidence")   # of `cells`


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


def readings_rows() -> list[tuple[str, Reading]]:
    """(pruner config name, reading) for every registered pruner that declares readings."""
    from vlabench import registry

    rows: list[tuple[str, Reading]] = []
    seen: set[type] = set()
    for name, e in sorted(registry.entries("pruner").items()):
        if e.missing():
            continue
        cls = e.load()
        if not isinstance(cls, type) or cls in seen:
            continue
        seen.add(cls)
        rows.extend((name, r) for r in getattr(cls, "readings", ()))
    return rows


def cells(name: str, r: Reading) -> tuple[str, ...]:
    """One row of the readings table (`COLUMNS`): the pruner config name, then the reading."""
    return (name, r.point, r.paper, r.code, r.default, r.evidence)


def readings_markdown() -> str:
    """The README table of every reading."""
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for name, r in readings_rows():
        row = cells(name, r)
        out.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in row) + " |")
    return "\n".join(out) + "\n"
