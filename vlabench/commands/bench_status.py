"""What every `vlabench bench` mode shares: the progress line on stderr (its tables go to
stdout) and the `bench.out` JSON file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from vlabench.records.files import write_json_file


def status(text: str) -> None:
    """One progress line on stderr."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)


def write_out(out: str | None, result: dict[str, Any]) -> None:
    """`bench.out`: the result as JSON at that path (its folder made, written atomically), when set."""
    if out:
        write_json_file(Path(out), result)
