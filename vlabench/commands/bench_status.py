"""The progress line every `vlabench bench` mode prints on stderr (its tables go to stdout)."""

from __future__ import annotations

import sys


def status(text: str) -> None:
    """One progress line on stderr."""
    print(f"[bench] {text}", file=sys.stderr, flush=True)
