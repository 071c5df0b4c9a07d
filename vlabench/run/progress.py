"""Progress display for a run: a rich bar on terminals, one line per task in quiet mode.

The top line counts episodes (done / total), the running success rate of the episodes finished
in this invocation, the elapsed time and an ETA; below it one line per running episode (one per
environment worker with run.env_workers > 1) advances with its steps (step / the episode's step
limit). `step` is called by the episode loop at every control step: it only stores the count
and redraws at most REFRESH_S apart, so a step costs a clock read and a dict store.

The top line's clock is drawn at every refresh, so it ticks through resets too. A resumed run
first says how many episodes were done before and their successes; its ETA counts only this
invocation's episodes. `StartupStatus` shows what the start-up does (imports, simulator, model)
with a ticking clock before the bar appears.
"""

from __future__ import annotations

import csv
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REFRESH_S = 0.25    # the fastest the step lines are updated (rich redraws at 10 Hz)
ETA_AFTER_S = 2.0   # no ETA before this much time has passed (the first rates are noise)


def eta_s(elapsed: float, finished: int, running: list[float], remaining: float) -> float | None:
    """Seconds left: `remaining` episodes (not finished) at the rate of the `finished` ones plus
    the fractions of the `running` ones (steps / step limit); None before any progress."""
    units = finished + sum(running)
    if units <= 0 or elapsed < ETA_AFTER_S:
        return None
    return elapsed / units * max(0.0, remaining - sum(running))


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    s = int(round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def earlier_successes(episodes_csv: Path, keys: Iterable[tuple[int, int]]) -> int:
    """Successes among the recorded episodes `keys` ((task_id, episode)) of episodes.csv."""
    wanted = set(keys)
    try:
        with open(episodes_csv, newline="", encoding="utf-8") as f:
            return sum(1 for r in csv.DictReader(f)
                       if str(r.get("success", "")).strip().lower() in ("1", "true", "1.0")
                       and (int(r["task_id"]), int(r["episode"])) in wanted)
    except (OSError, ValueError, KeyError, csv.Error):
        return 0


def resume_line(title: str, done: int, total: int, successes: int) -> str:
    """The first line of a run: what earlier invocations finished, and their successes."""
    if not done:
        return f"{title}: {done}/{total} episodes already done"
    return f"{title}: resuming: {done}/{total} episodes already done (SR {successes}/{done})"


class StartupStatus:
    """What the start-up is doing ("loading the model ..."), with a ticking clock, on a terminal
    only and transient: gone once the run's own progress starts, so a start-up error stays the
    one line on stderr."""

    def __init__(self, quiet: bool, title: str):
        self.quiet, self.title, self._bar, self._task = quiet, title, None, None
        self.text = ""

    def __enter__(self) -> StartupStatus:
        if not self.quiet and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                                 console=Console(stderr=True), transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task(f"{self.title}: starting", total=None)
        return self

    def phase(self, text: str) -> None:
        self.text = text
        if self._bar is not None:
            self._bar.update(self._task, description=f"{self.title}: {text}")

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)


class RunProgress:
    """Episodes done / total, running success rate, ETA, and each running episode's steps."""

    def __init__(self, total: int, already_done: int, quiet: bool, title: str,
                 already_successes: int = 0):
        self.total = total
        self.done = already_done
        self.already_successes = already_successes
        self.successes = 0
        self.finished_now = 0
        self.quiet = quiet
        self.title = title
        self.t0 = time.perf_counter()
        self._bar: Any = None
        self._task_id: Any = None
        self._slots: dict[int, list] = {}   # slot -> [rich task id, steps, step limit]
        self._next_draw = 0.0

    def __enter__(self) -> RunProgress:
        resumed = resume_line(self.title, self.done, self.total, self.already_successes)
        if self.quiet:
            print(f"[vlabench] {resumed}", file=sys.stderr, flush=True)
            return self
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn
        from rich.text import Text

        progress = self

        class InfoColumn(ProgressColumn):
            """The episodes line's SR / elapsed / ETA drawn at every refresh (a clock that ticks
            through resets); the step lines' own text."""

            def render(self, task: Any) -> Text:
                mine = task.id == progress._task_id
                return Text(progress._info() if mine else str(task.fields.get("info", "")))

        console = Console(stderr=True)
        console.print(f"[bold]{resumed if self.done else self.title}[/bold]", highlight=False)
        self._bar = Progress(
            TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
            InfoColumn(), console=console, transient=False,
        )
        self._bar.__enter__()
        self._task_id = self._bar.add_task("episodes", total=self.total, completed=self.done,
                                           info=self._info())
        return self

    def _info(self) -> str:
        sr = f"{100.0 * self.successes / self.finished_now:.1f}%" if self.finished_now else "-"
        el = time.perf_counter() - self.t0
        running = [min(1.0, s / n) for _, s, n in self._slots.values() if n]
        eta = eta_s(el, self.finished_now, running, self.total - self.done)
        return f"SR {sr}  elapsed {clock(el)}  ETA {clock(eta)}"

    def episode_start(self, slot: int, label: str, max_steps: int) -> None:
        """Slot `slot` (0 in-process; the worker's index otherwise) starts an episode."""
        if self._bar is None:
            return
        desc = f"  {label}"
        if slot in self._slots:
            entry = self._slots[slot]
            entry[1], entry[2] = 0, max_steps
            self._bar.reset(entry[0], total=max_steps, description=desc)
        else:
            tid = self._bar.add_task(desc, total=max_steps, info="steps")
            self._slots[slot] = [tid, 0, max_steps]

    def step(self, slot: int, steps: int) -> None:
        """The episode in `slot` has executed `steps` steps (cheap; redraws are throttled)."""
        entry = self._slots.get(slot)
        if entry is None:
            return
        entry[1] = steps
        now = time.perf_counter()
        if now >= self._next_draw:
            self._next_draw = now + REFRESH_S
            self._draw()

    def _draw(self) -> None:
        for tid, steps, _ in self._slots.values():
            self._bar.update(tid, completed=steps)
        self._bar.update(self._task_id, info=self._info())

    def episode_done(self, success: bool, label: str, slot: int = 0) -> None:
        self.done += 1
        self.finished_now += 1
        self.successes += int(success)
        if self._bar is None:
            return
        entry = self._slots.get(slot)
        if entry is not None:
            entry[1], entry[2] = 0, 0
        self._bar.update(self._task_id, advance=1, info=self._info())

    def slot_done(self, slot: int) -> None:
        """Slot `slot` has no more episodes: its line goes."""
        entry = self._slots.pop(slot, None)
        if entry is not None and self._bar is not None:
            self._bar.remove_task(entry[0])

    def task_done(self, label: str, successes: int, episodes: int) -> None:
        if self.quiet:
            rate = 100.0 * successes / episodes if episodes else float("nan")
            el = time.perf_counter() - self.t0
            print(f"[vlabench] {label}: {successes}/{episodes} success ({rate:.1f}%), "
                  f"{self.done}/{self.total} episodes, {el:.0f} s elapsed", file=sys.stderr, flush=True)

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            for tid, _, _ in self._slots.values():   # the final display: the episodes line
                self._bar.remove_task(tid)
            self._slots = {}
            self._bar.update(self._task_id, info=self._info())
            self._bar.__exit__(*exc)
