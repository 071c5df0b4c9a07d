"""Rewrite the README's readings table from the pruners' `readings` (run after changing one).

Usage: .venv/bin/python scripts/update_readings_table.py
"""

from __future__ import annotations

from pathlib import Path

from vlabench.pruners.readings import readings_markdown

START, END = "<!-- readings:start -->\n", "<!-- readings:end -->"


def main() -> None:
    readme = Path(__file__).resolve().parents[1] / "README.md"
    text = readme.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(head + START + readings_markdown() + END + tail)


if __name__ == "__main__":
    main()
