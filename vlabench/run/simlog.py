"""`<run dir>/sim.log`: where simulator chatter goes instead of the terminal.

While a run is in progress (`attached`), the `vlabench.sim` logger (what vlabench/suites/chatter.py
captures: LIBERO's prints, ignored render-context destructor errors) and every Python warning
(robosuite, mujoco, gym and the model libraries warn through `warnings`) are appended to
`sim.log` in the run directory, one timestamped line each, and are not shown on the terminal.
Each environment worker appends to the same file. A resumed run appends; `run.overwrite=true`
deletes it (vlabench/records/rundir.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

SIM_LOG = "sim.log"
LOG = logging.getLogger("vlabench.sim")
_FORMAT = "%(asctime)s pid %(process)d %(levelname)s %(message)s"


class _Counting(logging.FileHandler):
    """A file handler that counts the records it wrote."""

    def __init__(self, path: Path):
        super().__init__(path, mode="a", encoding="utf-8", delay=True)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1
        super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        """A log line that cannot be written (the directory of a start that was undone) is
        dropped silently: chatter never reaches the terminal."""


@contextlib.contextmanager
def attached(run_dir: Path | str) -> Iterator[_Counting]:
    """Send simulator chatter and Python warnings to `run_dir`/sim.log for the block; yields the
    handler (its `count`: lines written by this process)."""
    handler = _Counting(Path(run_dir) / SIM_LOG)
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.setLevel(logging.DEBUG)
    old_level, old_propagate = LOG.level, LOG.propagate
    LOG.addHandler(handler)
    LOG.setLevel(logging.DEBUG)
    LOG.propagate = False   # never to the terminal, whatever the root logger does
    old_show = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:  # noqa: ANN001
        LOG.warning("%s:%s: %s: %s", os.path.basename(str(filename)), lineno,
                    category.__name__, message)

    warnings.showwarning = show
    try:
        yield handler
    finally:
        warnings.showwarning = old_show
        LOG.removeHandler(handler)
        LOG.setLevel(old_level)
        LOG.propagate = old_propagate
        handler.close()
