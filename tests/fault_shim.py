"""Fault injection at vlabench's one filesystem-write layer (vlabench/records/fsio.py).

`Faults` replaces every operation of `fsio.OPERATIONS` (open, write, fsync, truncate, replace,
mkdir, unlink, rmdir) with a wrapper that counts the calls and, at the n-th one, either raises
OSError(errno) instead of performing it (`fail`) or performs it and ends the process at once
with os._exit (`kill`: a power cut right after that operation). Before dying it leaves a note
(outside any run directory) naming the operation, the file and the length the file had at its
last fsync, from which the caller derives the shorter lengths an unsynced file could have had.
`cli` runs the `vlabench` entry point in this process; `forked` runs it in a fork and `spawned`
in a new interpreter (for kills).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlabench.records import fsio

KILLED = 137   # the status a killed run's fork reports (128 + SIGKILL)


@dataclass
class Faults:
    """Count fsio operations; fail the `fail_at`-th with `errno`, or die after the `kill_at`-th."""

    fail_at: int | None = None
    errno: int = 5
    kill_at: int | None = None
    note: Path | None = None   # where a kill writes its note
    count: int = 0
    log: list[tuple[str, str]] = field(default_factory=list)
    _paths: dict[int, str] = field(default_factory=dict)
    _durable: dict[str, int] = field(default_factory=dict)

    def _path_of(self, op: str, args: tuple) -> str:
        if op in ("write", "fsync", "truncate"):
            return self._paths.get(args[0], "?")
        return str(args[1] if op == "replace" else args[0])

    def _wrap(self, op: str, real: Any) -> Any:
        def shimmed(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            path = self._path_of(op, args)
            self.log.append((op, path))
            if self.count == self.fail_at:
                raise OSError(self.errno, os.strerror(self.errno), path)
            if op == "open":   # the length at open counts as durable (written by an earlier run)
                existed = os.path.exists(path) and not (args[1] & os.O_TRUNC)
                self._durable[path] = os.path.getsize(path) if existed else 0
            out = real(*args, **kwargs)
            if op == "open":
                self._paths[out] = path
            elif op in ("fsync", "truncate") and path in self._durable:
                self._durable[path] = os.fstat(args[0]).st_size
            if self.count == self.kill_at:
                self._die(op, path)
            return out
        return shimmed

    def _die(self, op: str, path: str) -> None:
        size = os.path.getsize(path) if os.path.isfile(path) else None
        info = {"op": op, "path": path, "size": size, "durable": self._durable.get(path)}
        if self.note is not None:
            fd = os.open(self.note, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.write(fd, json.dumps(info).encode())
            os.close(fd)
        os._exit(KILLED)

    @contextlib.contextmanager
    def active(self):
        saved = {op: getattr(fsio, op) for op in fsio.OPERATIONS}
        for op, real in saved.items():
            setattr(fsio, op, self._wrap(op, real))
        try:
            yield self
        finally:
            for op, real in saved.items():
                setattr(fsio, op, real)


@dataclass
class Outcome:
    code: int | None
    stderr: str
    traceback: str | None   # an exception that escaped the entry point


def cli(argv: list[str], faults: Faults | None = None) -> Outcome:
    """`vlabench <argv>` through its console entry point, in this process."""
    from vlabench.commands.cli import main

    err, out = io.StringIO(), io.StringIO()
    saved_argv = sys.argv
    sys.argv = ["vlabench", *argv]
    code, tb = None, None
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out), \
                (faults.active() if faults else contextlib.nullcontext()):
            try:
                main()
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
            except BaseException:
                tb = traceback.format_exc()
    finally:
        sys.argv = saved_argv
    return Outcome(code, err.getvalue(), tb)


def forked(argv: list[str], faults: Faults) -> Outcome:
    """`cli` in a fork of this process (a kill ends the fork only); its exit status."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:   # the child: never returns into pytest
        code = 70
        try:
            res = cli(argv, faults)
            code = 99 if res.traceback else int(res.code or 0)
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return Outcome(os.waitstatus_to_exitcode(status), "", None)


CHILD = """import json, sys
sys.path[:0] = sys.argv[1:3]
from pathlib import Path
from fault_shim import Faults, cli
res = cli(json.loads(sys.argv[5]), Faults(kill_at=int(sys.argv[3]), note=Path(sys.argv[4])))
sys.exit(99 if res.traceback else int(res.code or 0))
"""


def spawned(argv: list[str], faults: Faults) -> Outcome:
    """`cli` in a new interpreter: for runs whose libraries do not survive a fork (torch's
    thread pool deadlocks a forked child); slower, as the child imports and builds everything."""
    here = Path(__file__).resolve().parent
    proc = subprocess.run([sys.executable, "-c", CHILD, str(here), str(here / "plugins"),
                           str(faults.kill_at), str(faults.note), json.dumps(argv)],
                          capture_output=True, text=True)
    return Outcome(proc.returncode, proc.stderr, None)


def tree(root: Path, skip: Path | None = None) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) under `root`, except under `skip`."""
    out: dict[str, bytes | None] = {}
    for dirpath, dirs, files in os.walk(root):
        d = Path(dirpath)
        if skip is not None and (d == skip or skip in d.parents):
            dirs[:] = []
            continue
        for name in dirs:
            if skip is None or d / name != skip:
                out[str((d / name).relative_to(root))] = None
        for name in files:
            out[str((d / name).relative_to(root))] = (d / name).read_bytes()
    return out
