"""Every filesystem write vlabench makes, in one place: open, write, fsync, truncate, rename,
mkdir, unlink and rmdir, as thin functions over `os`.

Record appends, whole-file replacements, the lock file, merges, run-directory creation and
clean-up, and the report's output files all go through this module, so crash safety is reasoned
about (and tested) at one layer: tests/test_fault_injection*.py fail or kill the n-th operation
for every n. Callers use `fsio.name(...)`, never `from ... import name`, so that one replacement
of a module attribute reaches every caller. Errors are the plain OSError of `os`; the records
layer turns them into one line (vlabench/records/files.py: `writing`).
"""

from __future__ import annotations

import os
from pathlib import Path

# The operations a fault-injection test can fail (each function below performs exactly one).
OPERATIONS = ("open", "write", "fsync", "truncate", "replace", "mkdir", "unlink", "rmdir")


def open(path: Path | str, flags: int, mode: int = 0o644) -> int:
    """A descriptor of `path` opened for writing (`flags`: os.O_*)."""
    return os.open(path, flags, mode)


def write(fd: int, data: bytes, offset: int | None = None) -> int:
    """One write() (at `offset` with pwrite when given); returns the bytes written."""
    return os.write(fd, data) if offset is None else os.pwrite(fd, data, offset)


def fsync(fd: int) -> None:
    os.fsync(fd)


def truncate(fd: int, size: int) -> None:
    os.ftruncate(fd, size)


def replace(src: Path | str, dst: Path | str) -> None:
    os.replace(src, dst)


def mkdir(path: Path | str) -> None:
    os.mkdir(path)


def unlink(path: Path | str, missing_ok: bool = False) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        if not missing_ok:
            raise


def rmdir(path: Path | str) -> None:
    os.rmdir(path)


def close(fd: int) -> None:
    """Not an operation a test fails: the kernel frees the descriptor whatever close reports."""
    os.close(fd)


def write_all(fd: int, data: bytes) -> None:
    """`data` to `fd`, looping over short writes (each write() one operation)."""
    view = memoryview(data)
    while view:
        view = view[write(fd, view):]


def write_file(path: Path | str, data: bytes, sync: bool = True) -> None:
    """Create or overwrite `path` with `data` (fsynced when `sync`); not atomic: readers may see
    a partial file (whole-file replacement: vlabench/records/files.py `atomic_write_text`)."""
    fd = open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        write_all(fd, data)
        if sync:
            fsync(fd)
    finally:
        close(fd)


def sync_dir(path: Path | str) -> None:
    """fsync a directory, so that renames and removals in it reach the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        fsync(fd)
    finally:
        close(fd)


def makedirs(path: Path | str) -> list[Path]:
    """Create `path` and its missing parents; the folders made, outermost first."""
    p, missing = Path(path), []
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    made = []
    for d in reversed(missing):
        try:
            mkdir(d)
        except FileExistsError:
            continue
        made.append(d)
    return made
