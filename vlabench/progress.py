"""Progress display for a run: a rich bar on terminals, one line per task in quiet mode."""

from __future__ import annotations

import sys
import time
from typing import Any


class RunProgress:
    """Episodes done / total, running success rate and ETA."""

    def __init__(self, total: int, already_done: int, quiet: bool, title: str):
        self.total = total
        self.done = already_done
        self.successes = 0
        self.finished_now = 0
        self.quiet = quiet
        self.title = title
        self.t0 = time.perf_counter()
        self._bar: Any = None
        self._task_id: Any = None

    def __enter__(self) -> RunProgress:
        if self.quiet:
            print(f"[vlabench] {self.title}: {self.done}/{self.total} episodes already done",
                  file=sys.stderr, flush=True)
            return self
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("SR {task.fields[sr]}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), console=Console(stderr=True), transient=False,
        )
        self._bar.__enter__()
        self._task_id = self._bar.add_task(self.title, total=self.total, completed=self.done, sr="-")
        return self

    def episode_done(self, success: bool, label: str) -> None:
        self.done += 1
        self.finished_now += 1
        self.successes += int(success)
        sr = f"{100.0 * self.successes / self.finished_now:.1f}%"
        if self._bar is not None:
            self._bar.update(self._task_id, advance=1, sr=sr, description=f"{self.title} {label}")

    def task_done(self, label: str, successes: int, episodes: int) -> None:
        if self.quiet:
            rate = 100.0 * successes / episodes if episodes else float("nan")
            el = time.perf_counter() - self.t0
            print(f"[vlabench] {label}: {successes}/{episodes} success ({rate:.1f}%), "
                  f"{self.done}/{self.total} episodes, {el:.0f} s elapsed", file=sys.stderr, flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)
