"""The single-writer rule of a run directory: an exclusive OS lock held for the whole run.

`fcntl.flock` on `<run dir>/.vlabench.lock`: the kernel drops it when the process dies (also on
SIGKILL), so no stale lock is ever left behind and nothing has to be cleaned by hand. The lock
file names its holder (PID, host, start time) so that a second process can say who holds it.
Every writer of a run directory (a run, a resume, run.overwrite, future workers and shards)
takes this lock first.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from vlabench.core.errors import ConfigError
from vlabench.records import fsio

LOCK_NAME = ".vlabench.lock"


class RunDirLocked(ConfigError):
    """Another process holds the run directory's lock (one line naming it)."""


def _holder(path: Path) -> str:
    """'PID n on host h since t' from the lock file (the holder writes it right after locking)."""
    for _ in range(10):
        try:
            info = json.loads(path.read_text() or "{}")
        except (OSError, ValueError):
            info = {}
        if info.get("pid"):
            return f"PID {info['pid']} on host {info.get('host', '?')} (since {info.get('since', '?')})"
        time.sleep(0.05)
    return "an unknown process"


class RunLock:
    """An exclusive, non-blocking lock on one run directory (which must exist)."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_NAME
        self.fd: int | None = None
        self.created = False
        self.previous = b""   # the holder line found on acquiring (a finished run's)

    def acquire(self) -> None:
        """Take the lock or raise RunDirLocked naming the holder; OSError if unwritable."""
        while True:
            existed = self.path.exists()
            fd = fsio.open(self.path, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RunDirLocked(
                    f"{self.path.parent} is in use by {_holder(self.path)}: another vlabench process "
                    f"is writing this run; wait for it to finish or stop it (its lock dies with it)"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            try:   # the file may have been unlinked by a holder that gave up: lock the live one
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        self.fd, self.created = fd, not existed
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        self.previous = os.pread(fd, 4096, 0)
        try:
            fsio.truncate(fd, 0)
            fsio.write(fd, (json.dumps(info) + "\n").encode(), offset=0)
        except BaseException:   # an unwritable lock file: no lock, the file as it was found
            self.release(remove=True)
            raise

    def release(self, remove: bool = False) -> None:
        """Drop the lock. `remove` undoes this process's claim: it deletes the lock file when
        this process made it, else puts back the holder line that was there (a refused start
        leaves an existing run's lock file as it found it)."""
        if self.fd is None:
            return
        if remove and self.created:
            try:
                fsio.unlink(self.path)
            except OSError:
                pass
        elif remove:
            try:
                fsio.truncate(self.fd, 0)
                fsio.write(self.fd, self.previous, offset=0)
            except OSError:
                pass
        os.close(self.fd)  # closing the descriptor releases the flock
        self.fd = None

