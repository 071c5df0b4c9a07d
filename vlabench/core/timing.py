"""Latency-aware execution settings: `suite.timing` and `timing.latency`, parsed and checked.

`suite.timing` is frozen (the papers' protocol: the simulator waits for every policy call),
sync (the robot holds while a call computes) or async (the robot keeps consuming the current
chunk). `timing.latency` says how long a call takes in simulated time: `measured` (the call's
own lat_total_ms), a constant (`80ms`, `0.4s`) or `profile:NAME_OR_PATH` (a fitted latency
model, vlabench.metrics.latency_model). A frozen run carries no timing keys in its config, so
its records are those of a run made before these modes existed.
"""

from __future__ import annotations

import math
import re
from typing import Any

from vlabench.core.errors import ConfigError

MODES = ("frozen", "sync", "async")
HOLDS = ("zero", "repeat")
PROFILE_PREFIX = "profile:"
VALID_LATENCY = "measured, a duration such as 80ms or 0.4s (>= 0), or profile:NAME_OR_PATH"
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*(ms|s)\s*$")


def _get(node: Any, key: str) -> Any:
    return node.get(key) if node is not None and hasattr(node, "get") else None


def mode_of(cfg: Any) -> str:
    """The run's execution mode; a config without `suite.timing` (older runs) is frozen."""
    mode = _get(_get(cfg, "suite"), "timing")
    return "frozen" if mode is None else str(mode)


def is_timed(cfg: Any) -> bool:
    """True for sync and async runs, whose records carry the timing columns."""
    return mode_of(cfg) != "frozen"


def check_mode(mode: Any) -> str:
    if mode not in MODES:
        raise ConfigError(f"suite.timing={mode!r} is invalid; valid: {', '.join(MODES)}")
    return str(mode)


def parse_latency(spec: Any) -> tuple[str, Any]:
    """("measured", None), ("constant", milliseconds) or ("profile", name or path)."""
    text = str(spec).strip() if spec is not None else ""
    if text == "measured":
        return "measured", None
    if text.startswith(PROFILE_PREFIX) and text[len(PROFILE_PREFIX):].strip():
        return "profile", text[len(PROFILE_PREFIX):].strip()
    m = _DURATION.match(text)
    if m is None or isinstance(spec, bool):
        raise ConfigError(f"timing.latency={spec!r} is invalid; valid: {VALID_LATENCY}")
    value = float(m.group(1)) * (1000.0 if m.group(2) == "s" else 1.0)
    if not math.isfinite(value):
        raise ConfigError(f"timing.latency={spec!r} is invalid; valid: {VALID_LATENCY}")
    return "constant", value


def check_hold(hold: Any) -> str:
    if hold not in HOLDS:
        raise ConfigError(f"timing.hold={hold!r} is invalid; valid: {', '.join(HOLDS)}")
    return str(hold)


def latency_label(spec: Any) -> str:
    """A short label of `timing.latency` for tables (`400ms`, `measured`, `profile:x`)."""
    kind, value = parse_latency(spec)
    if kind == "constant":
        return f"{value:g}ms"
    return "measured" if kind == "measured" else f"profile:{value}"


def timing_tag(cfg: Any) -> str:
    """"sync@400ms" style tag of a timed run's config; "" for frozen (reports, names)."""
    if not is_timed(cfg):
        return ""
    latency = _get(_get(cfg, "timing"), "latency")
    return f"{mode_of(cfg)}@{latency_label('measured' if latency is None else latency)}"
