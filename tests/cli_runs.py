"""Many short `vlabench run` invocations in one process, sharing one LIBERO simulator.

The CLI entry point runs in-process (`vlabench.commands.cli.app`), and LiberoSuite.make_env is memoised
per (suite, task, cameras) with its `close` deferred: building a simulator costs ~20 s, so the
pruner smoke tests build each one once. Used by the pruner integration and baseline CLI tests.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from vlabench.core.schema import CALL_COLUMNS, EPISODE_COLUMNS
from vlabench.records.files import read_rows


@contextlib.contextmanager
def shared_libero_envs() -> Iterator[dict]:
    """LiberoSuite.make_env memoised per (suite, task, cameras), `close` deferred to the end of
    the block, where every simulator is closed; yields the memo."""
    from vlabench.suites.libero import LiberoSuite

    envs: dict = {}
    original = LiberoSuite.make_env

    def shared_env(self, task, needs):
        key = (self.cfg.name, task.id, frozenset(needs))
        if key not in envs:
            env = original(self, task, needs)
            env._real_close, env.close = env.close, lambda: None
            envs[key] = env
        return envs[key]

    LiberoSuite.make_env = shared_env
    try:
        yield envs
    finally:
        LiberoSuite.make_env = original
        for env in envs.values():
            env._real_close()


def run_all(out: Path, runs: dict, common: list[str]) -> dict:
    """key -> (exit code, episodes, calls) for each `runs[key]` override list (+ `common`), the
    run named by its position; every simulator is closed at the end."""
    from vlabench.commands.cli import app

    results = {}
    with shared_libero_envs():
        for i, (key, overrides) in enumerate(runs.items()):
            args = ["run", *overrides, *common, f"run.output_dir={out}", "run.quiet=true",
                    f"run.name=r{i}"]
            try:
                rc = app(args, standalone_mode=False)
            except SystemExit as e:   # reported by the caller's assertion
                rc = e.code
            d = out / f"r{i}"
            results[key] = (rc, pd.DataFrame(read_rows(d / "episodes.csv", EPISODE_COLUMNS)),
                            pd.DataFrame(read_rows(d / "calls.csv", CALL_COLUMNS)))
    return results
