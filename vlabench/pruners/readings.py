"""Readings: the points where a method's paper text and its public code disagree.

Each pruner class lists its points in `Pruner.readings`. A run picks one side for all of them
with `pruner.reading=code|paper`; the default is the side that produced the published tables
(usually `code`). `vlabench list --readings` prints every point of every method, and the README's
"Readings" table is generated from the same data (`vlabench list --readings --markdown`).
"""

from __future__ import annotations

from vlabench.core.readings import Reading

COLUMNS = ("method", "point", "paper", "code", "default", "evidence")   # of `cells`


def readings_rows() -> list[tuple[str, Reading]]:
    """(pruner config name, reading) for every registered pruner that declares readings."""
    from vlabench.core import registry

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


def method_doc(name: str) -> str:
    """The repository path of pruner `name`'s method page (docs/methods/<module>.md, the module
    of its class with `_` as `-`): its readings, reference citations and constants."""
    from vlabench.core import registry

    module = registry.entry("pruner", name).plugin.partition(":")[0].rsplit(".", 1)[-1]
    return f"docs/methods/{module.replace('_', '-')}.md"


def readings_markdown() -> str:
    """The README table of every reading, each method linked to its page."""
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for name, r in readings_rows():
        row = (f"[{name}]({method_doc(name)})", *cells(name, r)[1:])
        out.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in row) + " |")
    return "\n".join(out) + "\n"
