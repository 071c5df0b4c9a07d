"""Checks of the command-line options of `report`, `compare` and `bench` (one line, exit 2)."""

from __future__ import annotations

from typing import Any

from vlabench.core.errors import ConfigError


def check_report_out(out: str | None) -> None:
    """`report --out DIR`: a directory that exists or can be made, and is writable."""
    import os
    import tempfile
    from pathlib import Path

    if out is None:
        return
    p = Path(out)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"report --out {out}: is a file; give a directory for the report, "
                          f"runs.csv and plots")
    made: list[Path] = []
    try:   # make (and then remove) what is missing: the only sure test of writability
        for d in reversed([q for q in [p, *p.parents] if not q.exists()]):
            d.mkdir()
            made.append(d)
        fd, probe = tempfile.mkstemp(dir=p, prefix=".vlabench-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ConfigError(f"report --out {out}: cannot write there ({e.strerror}); give a "
                          f"writable directory") from None
    finally:
        for d in reversed(made):
            try:
                d.rmdir()
            except OSError:
                pass


def check_compare_options(max_sr_drop: float, max_latency_increase: float, alpha: float) -> None:
    """`compare` thresholds: alpha in (0, 1), non-negative tolerances."""
    import math

    if not (0 < alpha < 1):
        raise ConfigError(f"compare --alpha {alpha:g} is invalid; valid: a significance level in (0, 1)")
    for name, v in (("--max-sr-drop", max_sr_drop), ("--max-latency-increase", max_latency_increase)):
        if math.isnan(v) or v < 0:
            raise ConfigError(f"compare {name} {v:g} is invalid; valid: a number >= 0")


def check_output_file(key: str, path: Any) -> None:
    """An option naming a file to write (`bench.out`): not a directory, in a writable one."""
    import os
    from pathlib import Path

    if path is None:
        return
    p = Path(str(path))
    if not str(path).strip() or p.is_dir():
        raise ConfigError(f"{key}={str(path)!r} is not a file name; give a path such as {key}=bench.json")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{key}={path}: {parent} is not a writable directory")
