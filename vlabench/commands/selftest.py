"""`vlabench selftest`: prove the simulator install and the protocol with the oracle policy.

The privileged-state oracle (`model=oracle`) solves LIBERO's pick-and-place tasks when the
simulator, its assets and the protocol constants are right. The selftest runs it on a small,
fixed sample of every suite it checks (every task not excluded, the first N init states, as
the suite's `selftest:` section says), compares the success rate with the minimum stored
there, prints a pass/fail table with the simulator package versions, and returns non-zero on
a failure. If the oracle fails, suspect the setup, not a model.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlabench.core.errors import ConfigError

DEFAULT_SUITES = ("libero_object",)
SIM_PACKAGES = ("mujoco", "robosuite", "libero")


@dataclass
class SuiteResult:
    """One suite's selftest outcome."""

    suite: str
    min_success: float
    rows: list[dict[str, Any]] = field(default_factory=list)  # one per task
    excluded: dict[int, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    @property
    def successes(self) -> int:
        return sum(r["successes"] for r in self.rows)

    @property
    def episodes(self) -> int:
        return sum(r["episodes"] for r in self.rows)

    @property
    def rate(self) -> float:
        return self.successes / self.episodes if self.episodes else 0.0

    @property
    def passed(self) -> bool:
        return self.episodes > 0 and self.rate >= self.min_success


def sim_versions() -> dict[str, str]:
    """Installed versions of the simulator packages (the manifest's reader)."""
    from vlabench.records.provenance import package_versions

    versions = package_versions()
    return {name: versions.get(name) or "not installed" for name in SIM_PACKAGES}


def split_overrides(overrides: list[str]) -> tuple[list[str], list[str], dict[str, Any]]:
    """(suite names from `suite=a,b` or `suite=all`, run overrides, `selftest.*` sample overrides).

    `selftest.tasks=[0,3]` and `selftest.episodes_per_task=1` shrink the sample (smoke tests).
    """
    import yaml

    from vlabench.core import registry

    suites: list[str] = []
    rest = []
    sample: dict[str, Any] = {}
    for o in overrides:
        key, sep, value = o.partition("=")
        if sep and key in ("selftest.tasks", "selftest.episodes_per_task"):
            sample[key.partition(".")[2]] = yaml.safe_load(value)
        elif sep and key == "suite":
            names = [v for v in value.strip("[]").split(",") if v]
            if names == ["all"]:
                names = [n for n, e in sorted(registry.entries("suite").items()) if _selftest_cfg(e.path)]
            suites += names
        elif key.split(".")[0] == "model" or key == "run.episodes_per_task" or key == "suite.tasks":
            raise ConfigError(f"selftest fixes {key}: it runs model=oracle on the sample in the "
                              f"suite config's selftest section")
        else:
            rest.append(o)
    return suites or list(DEFAULT_SUITES), rest, sample


def _selftest_cfg(path: Path) -> dict[str, Any] | None:
    from vlabench.core import yamlio

    return (yamlio.safe_load(path.read_text()) or {}).get("selftest")


def _suite_yaml(suite: str) -> dict[str, Any]:
    from vlabench.core import registry, yamlio

    return yamlio.safe_load(registry.entry("suite", suite).path.read_text()) or {}


def selftest_section(suite: str) -> dict[str, Any]:
    from vlabench.core import registry

    sec = _selftest_cfg(registry.entry("suite", suite).path)
    if not sec:
        raise ConfigError(f"suite {suite!r} has no selftest section; suites with one: "
                          + ", ".join(n for n, e in sorted(registry.entries("suite").items())
                                      if _selftest_cfg(e.path)))
    return sec


def run_suite(suite: str, rest: list[str], out_dir: Path, sample: dict[str, Any] | None = None) -> SuiteResult:
    """Run the oracle on one suite's selftest sample through the ordinary runner."""
    from vlabench.core.schema import EPISODE_COLUMNS
    from vlabench.launch.compose import compose
    from vlabench.records.files import read_rows
    from vlabench.run.runner import run_from_config

    sec = selftest_section(suite)
    excluded = {int(k): str(v) for k, v in (sec.get("exclude") or {}).items()}
    base = compose([f"suite={suite}"])
    sample = sample or {}
    wanted = sample.get("tasks")
    every = range(int(base.suite.num_tasks)) if wanted is None else [int(t) for t in wanted]
    tasks = [t for t in every if t not in excluded]
    if not tasks:
        raise ConfigError(f"selftest.tasks={wanted} leaves no task of {suite} to run (excluded: {sorted(excluded)})")
    n = int(sample.get("episodes_per_task") or sec["episodes_per_task"])
    cfg = compose(["model=oracle", f"suite={suite}", f"suite.tasks=[{','.join(map(str, tasks))}]",
                   f"run.episodes_per_task={n}", f"run.output_dir={out_dir}", "run.quiet=true",
                   "run.overwrite=true", f"run.name=selftest-{suite}", *rest])
    res = SuiteResult(suite, float(sec["min_success"]), excluded=excluded)
    run_from_config(cfg)
    run_dir = out_dir / f"selftest-{suite}"
    eps = read_rows(run_dir / "episodes.csv", EPISODE_COLUMNS)
    # the step limit each task ran under, as the runner recorded it
    limits = {int(t): int(n) for t, n in json.loads((run_dir / "manifest.json").read_text())["max_steps"].items()}
    limit = max(limits.values())
    by_task: dict[int, list[dict]] = {}
    for e in eps:
        by_task.setdefault(int(e["task_id"]), []).append(e)
    out_of_steps = errors = 0
    for tid in tasks:
        rows = by_task.get(tid, [])
        k = sum(int(r["success"]) for r in rows)
        failed = [r for r in rows if not int(r["success"])]
        errs = sorted({f"{r['error_type']}: {r['error']}" for r in failed if r["error_type"]})
        out_of_steps += sum(1 for r in failed if not r["error_type"] and int(r["steps"]) >= limits[tid])
        errors += sum(1 for r in failed if r["error_type"])
        res.rows.append({"task_id": tid, "task": rows[0]["task_name"] if rows else "?",
                         "successes": k, "episodes": len(rows), "errors": errs})
    shipped = int(_suite_yaml(suite)["max_steps"])  # the protocol as the suite config ships it
    if out_of_steps and limit < shipped:
        res.problems.append(f"{out_of_steps} episode(s) ran out of steps at the step limit of {limit}, "
                            f"below the protocol's {shipped}: the step limit is below what the tasks need")
    elif out_of_steps and not res.passed:
        res.problems.append(f"{out_of_steps} episode(s) ran out of steps at the protocol's limit of "
                            f"{limit}: the oracle could not finish (suspect the simulator's physics)")
    if errors:
        res.problems.append(f"{errors} episode(s) raised errors (see the table): check the "
                            f"simulator install (assets, mujoco version)")
    return res


def render(results: list[SuiteResult]) -> str:
    """The pass/fail table as text."""
    v = sim_versions()
    lines = ["vlabench selftest: oracle (privileged state) on LIBERO; "
             + ", ".join(f"{k} {v[k]}" for k in SIM_PACKAGES), ""]
    for r in results:
        lines.append(f"{r.suite}: {r.successes}/{r.episodes} = {100 * r.rate:.0f}% "
                     f"(minimum {100 * r.min_success:.0f}%)  {'PASS' if r.passed else 'FAIL'}")
        for row in r.rows:
            mark = "ok" if row["successes"] == row["episodes"] else "MISS"
            lines.append(f"  task {row['task_id']:>2} {row['successes']}/{row['episodes']} {mark:<4} {row['task']}")
            for err in row["errors"][:2]:
                lines.append(f"           error: {err[:160]}")
        for tid, why in sorted(r.excluded.items()):
            lines.append(f"  task {tid:>2} excluded: {why}")
        for p in r.problems:
            lines.append(f"  problem: {p}")
        lines.append("")
    ok = all(r.passed for r in results)
    lines.append("selftest PASSED" if ok else
                 "selftest FAILED: " + "; ".join(f"{r.suite} {100 * r.rate:.0f}% < {100 * r.min_success:.0f}%"
                                                 for r in results if not r.passed)
                 + ". The oracle does not depend on a model: suspect the simulator install or the protocol settings.")
    return "\n".join(lines)


def selftest(overrides: list[str]) -> int:
    """Run the selftest; returns the exit code (0 pass, 1 fail)."""
    suites, rest, sample = split_overrides(overrides)
    explicit = any(o.startswith("run.output_dir=") for o in rest)
    for s in suites:
        selftest_section(s)  # fail fast on a suite without a sample
    if explicit:
        out_dir = Path(next(o for o in rest if o.startswith("run.output_dir=")).partition("=")[2])
        rest = [o for o in rest if not o.startswith("run.output_dir=")]
    else:   # a temporary directory of our own, removed unless a failure needs its records
        out_dir = Path(tempfile.mkdtemp(prefix="vlabench-selftest-"))
    ok = False
    try:
        results = [run_suite(s, rest, out_dir, sample) for s in suites]
        print(render(results), flush=True)
        ok = all(r.passed for r in results)
    finally:
        if not explicit and (ok or sys.exc_info()[0] is not None):
            shutil.rmtree(out_dir, ignore_errors=True)
    if not ok:
        print(f"records: {out_dir}", flush=True)
    return 0 if ok else 1
