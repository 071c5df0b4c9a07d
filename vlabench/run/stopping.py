"""Stopping a run on Ctrl-C (SIGINT) or SIGTERM, even when simulator code swallows the signal.

Python turns SIGINT into a KeyboardInterrupt at the next bytecode, wherever that is. Inside
LIBERO and robosuite it can land in a bare `except:` (LIBERO's scene setup `except: continue`,
robosuite's observable check `except: raise ValueError(...)`) that a task's environment build and
every hard reset go through: the interrupt is lost, or becomes an error that would be recorded
as a failed episode. So the handlers installed by `install()` also remember the signal, and the
episode loop calls `check()` at every step and before recording an error: a stop that was
swallowed is raised again there, and an episode cut short by it is never recorded.
"""

from __future__ import annotations

import signal
from typing import Any


class Terminated(KeyboardInterrupt):
    """SIGTERM (`timeout`, a cluster's preemption): stops a run exactly like Ctrl-C."""


_requested: int | None = None


def _handler(signum: int, frame: Any) -> None:
    global _requested
    _requested = signum
    raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


def install() -> None:
    """Handle SIGINT and SIGTERM in this (main) process; SIGINT only when it is not ignored (a
    process started in the background by a shell without job control keeps ignoring it)."""
    signal.signal(signal.SIGTERM, _handler)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, _handler)


def requested() -> bool:
    return _requested is not None


def check() -> None:
    """Raise the stop a signal asked for (KeyboardInterrupt, or Terminated for SIGTERM)."""
    if _requested is not None:
        raise Terminated() if _requested == signal.SIGTERM else KeyboardInterrupt()


def clear() -> None:
    """Forget a handled stop (tests; a library caller that goes on after an interrupt)."""
    global _requested
    _requested = None
