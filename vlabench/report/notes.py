"""Report-wide footnotes: each distinct note once, one number in every table.

A row carries the texts of its notes (an unfinished run, a non-default protocol, a protocol
deviation, a missing baseline ...). Numbering walks the tables in order: a note keeps the
number of its first use. Within a table, a note that every data row ("ours" rows) carries is
said once under the table ("All rows: [3]"); a row is marked only with what sets it apart.
"""

from __future__ import annotations

from vlabench.report.render import Table

DATA_KINDS = ("ours",)


def number_notes(tables: list[Table]) -> list[str]:
    """Number the notes of `tables` report-wide (sets row_marks and shared); return the texts,
    note n at index n - 1."""
    numbers: dict[str, int] = {}

    def num(text: str) -> int:
        return numbers.setdefault(text, len(numbers) + 1)

    for t in tables:
        data = [set(m) for m, k in zip(t.marks, t.kinds, strict=True) if k in DATA_KINDS]
        common = set.intersection(*data) if data else set()
        first = next((m for m, k in zip(t.marks, t.kinds, strict=True) if k in DATA_KINDS), [])
        t.shared = sorted(num(n) for n in first if n in common)
        t.row_marks = [[num(n) for n in m if n not in common] if k in DATA_KINDS else [num(n) for n in m]
                       for m, k in zip(t.marks, t.kinds, strict=True)]
    return list(numbers)
