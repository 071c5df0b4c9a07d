"""summary.csv: derived from a run directory's episodes and calls, never typed by hand."""

from __future__ import annotations

from typing import Any

from vlabench.metrics.summary import load_run_frames, summarize
from vlabench.records.files import RunFiles, atomic_write_text


def write_summary(files: RunFiles) -> Any:
    eps, calls = load_run_frames(files.dir)
    table = summarize(eps, calls)
    atomic_write_text(files.summary_csv, table.to_csv(index=False, lineterminator="\n"))
    return table
