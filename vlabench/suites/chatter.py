"""Keep simulator chatter off the user's terminal.

LIBERO prints `[info] using task orders ...` on stdout whenever a benchmark is built, and
robosuite's render contexts, when a Ctrl-C lands while one is being built, leave half-made
objects whose destructors print "Exception ignored in MjRenderContext.__del__" tracebacks.
`captured()` sends what a simulator prints to the `vlabench.sim` logger (debug level; a run
directory's log handler, when one is attached, keeps it), and `ignore_half_built_contexts()`
drops exactly those destructor errors; every other unraisable exception is reported as before.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Iterator
from typing import Any

LOG = logging.getLogger("vlabench.sim")
# (class name in the destructor's qualified name, exception type): robosuite/mujoco render
# contexts whose __init__ was interrupted before the attribute their __del__ frees was set.
_HALF_BUILT = {("MjRenderContext", AttributeError), ("EGLGLContext", AttributeError),
               ("OSMesaGLContext", AttributeError), ("GLContext", AttributeError)}
_installed = False


@contextlib.contextmanager
def captured(source: str) -> Iterator[None]:
    """Run a block whose prints (stdout) go to the `vlabench.sim` log instead of the terminal."""
    buf = io.StringIO()
    try:
        with contextlib.redirect_stdout(buf):
            yield
    finally:
        for line in buf.getvalue().splitlines():
            if line.strip():
                LOG.debug("%s: %s", source, line)


def _is_half_built(unraisable: Any) -> bool:
    obj = getattr(unraisable, "object", None)
    owner = getattr(obj, "__qualname__", "") or ""
    cls = owner.split(".")[0]
    return any(cls == name and isinstance(unraisable.exc_value, exc) for name, exc in _HALF_BUILT)


def ignore_half_built_contexts() -> None:
    """Install (once) an unraisable hook that drops the destructor errors of half-built render
    contexts and passes everything else to the previous hook."""
    global _installed
    if _installed:
        return
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        if _is_half_built(unraisable):
            LOG.debug("ignored %s in %r (a render context interrupted while being built)",
                      type(unraisable.exc_value).__name__, unraisable.object)
            return
        previous(unraisable)

    sys.unraisablehook = hook
    _installed = True
