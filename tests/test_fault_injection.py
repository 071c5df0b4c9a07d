"""Fault injection at every filesystem write, the way SQLite tests itself (issue 24).

Every write of vlabench goes through vlabench/records/fsio.py; tests/fault_shim.py fails the n-th
operation (EIO, ENOSPC, EROFS) or kills the process right after it, and tests/fault_sweep.py
checks each outcome (one line and exit 2, or exit 0; the re-run's records equal an uninterrupted
run's; nothing outside the target changed; unsynced appends cut to every shorter length recover).
Commands run in this process through the console entry point (kills in a fork; for torch models
in a new interpreter), LIBERO simulators shared across runs (tests/cli_runs.py), so the sweep
takes minutes rather than hours (the oracle's every-n sweep is most of it):
  - every n, every errno, a kill after every n: the oracle on one LIBERO task, 1 episode of
    8 steps (the cheapest real run), `vlabench merge` of two shards (into a new directory and
    into an earlier partial merge), and `report --out` of a run;
  - a seeded random sample of n (random.Random(24)): the tiny OFT with FastV, two environment
    workers, and one shard of a run (each run costs seconds to minutes).
Each test prints its summary line (fault points, failures) and appends it to
<pytest basetemp>/fault_injection_summary.txt.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from cli_runs import shared_libero_envs
from fault_shim import cli
from fault_sweep import ERRNOS, Scenario, Sweep
from test_merge import results

from vlabench.core.schema import SUMMARY_COLUMNS
from vlabench.records.files import read_rows

pytestmark = pytest.mark.libero

TASK = ["suite=libero_spatial", "suite.tasks=[0]", "run.quiet=true"]
ORACLE = ["model=oracle", *TASK, "run.episodes_per_task=1", "run.max_steps=8"]
TIMED = {"latency_mean_ms", "latency_p50_ms", "latency_p95_ms", "calls_hz", "mem_peak_mb_max",
         "cuda_ms_mean"}


def records(run_dir: Path) -> tuple:
    """episodes and calls without timing columns (tests/test_merge.py), and summary.csv's
    untimed columns."""
    summary = [{k: v for k, v in r.items() if k not in TIMED}
               for r in read_rows(run_dir / "summary.csv", SUMMARY_COLUMNS)]
    return (*results(run_dir), summary)


def run_scenario(name: str, *overrides: str) -> Scenario:
    """`vlabench run` of `overrides` into <workspace>/r (a model on torch: kills in a new
    interpreter, since a fork of a process that ran torch can deadlock)."""
    return Scenario(name, lambda ws: ["run", *overrides, f"run.output_dir={ws}", "run.name=r"],
                    lambda ws: ws / "r", records,
                    spawn_kills=not any(o == "model=oracle" for o in overrides))


@pytest.fixture
def report_line(tmp_path_factory, capsys):
    """Show a sweep's summary line on the terminal (whatever the capture mode) and append it to
    <pytest basetemp>/fault_injection_summary.txt."""
    def show(line: str) -> None:
        with (tmp_path_factory.getbasetemp() / "fault_injection_summary.txt").open("a") as f:
            f.write(line + "\n")
        with capsys.disabled():
            print("\n" + line)
    return show


@pytest.fixture(scope="module")
def libero():
    with shared_libero_envs() as envs:
        yield envs


def sweep_all(sweep: Sweep) -> None:
    """Every n with every errno, and a kill after every n."""
    for n in range(1, sweep.tally.operations + 1):
        for err in ERRNOS:
            sweep.fail(n, err)
        sweep.kill(n)


def sweep_sample(sweep: Sweep, faults: int, kills: int) -> None:
    """A seeded sample: `faults` (n, errno) pairs and `kills` kill points."""
    rng = random.Random(24)
    ops = range(1, sweep.tally.operations + 1)
    for n in rng.sample(ops, min(faults, len(ops))):
        sweep.fail(n, rng.choice(ERRNOS))
    for n in rng.sample(ops, min(kills, len(ops))):
        sweep.kill(n)


def test_every_write_of_an_oracle_run_fails_or_dies_and_the_run_recovers(libero, tmp_path, report_line):
    sweep = Sweep(run_scenario("oracle", *ORACLE), tmp_path)
    assert sweep.tally.operations > 20, sweep.log   # the config, lock, appends, manifests, summary
    sweep_all(sweep)
    line = sweep.tally.line("oracle run", "every n")
    report_line(line)
    assert not sweep.tally.problems, line + "\n" + "\n".join(sweep.tally.problems[:20])


@pytest.mark.parametrize("into", ["a new run", "a partial merge"])
def test_every_write_of_merging_two_shards_fails_or_dies_and_the_merge_recovers(libero, tmp_path,
                                                                                report_line, into):
    """Into a new directory, and into the run that merging shard 1 alone made (partial): the
    merge then replaces every file of an existing run (its journal must see it through)."""
    shards = tmp_path / "template" / "s"
    for i in (1, 2):
        res = cli(["run", "model=oracle", *TASK, "run.episodes_per_task=2", "run.max_steps=8",
                   f"run.shard={i}/2", f"run.output_dir={shards}", f"run.name=r.shard-{i}-of-2"])
        assert res.code == 0, res.stderr
    if into == "a partial merge":
        assert cli(["merge", str(shards / "r.shard-1-of-2")]).code == 0
    scn = Scenario("merge", lambda ws: ["merge", str(ws / "s" / "r.shard-1-of-2"),
                                        str(ws / "s" / "r.shard-2-of-2")],
                   lambda ws: ws / "s" / "r", records, template=tmp_path / "template")
    sweep = Sweep(scn, tmp_path / "sweep")
    assert len(sweep.expected[0]) == 2   # both shards' episodes
    sweep_all(sweep)
    line = sweep.tally.line(f"vlabench merge of 2 shards into {into}", "every n")
    report_line(line)
    assert not sweep.tally.problems, line + "\n" + "\n".join(sweep.tally.problems[:20])


def report_files(out: Path) -> dict[str, bytes]:
    """The report's text files (workspace path masked) and the names of its plots."""
    ws = str(out.parent).encode()
    return {p.name: p.read_bytes().replace(ws, b"WS") if p.suffix in (".md", ".csv") else b""
            for p in out.rglob("*") if p.is_file()}


def test_every_write_of_report_out_fails_or_dies_and_the_report_recovers(libero, tmp_path, report_line):
    res = cli(["run", *ORACLE, f"run.output_dir={tmp_path / 'template' / 'runs'}", "run.name=r"])
    assert res.code == 0, res.stderr
    scn = Scenario("report", lambda ws: ["report", str(ws / "runs"), "--out", str(ws / "rep")],
                   lambda ws: ws / "rep", report_files, template=tmp_path / "template")
    sweep = Sweep(scn, tmp_path / "sweep")
    assert {"report.md", "runs.csv"} <= set(sweep.expected) and len(sweep.expected) > 2   # plots
    sweep_all(sweep)
    line = sweep.tally.line("report --out", "every n")
    report_line(line)
    assert not sweep.tally.problems, line + "\n" + "\n".join(sweep.tally.problems[:20])


@pytest.mark.parametrize("name, extra, faults, kills", [
    ("shard 1/2 of a run", ("model=oracle", "run.episodes_per_task=3", "run.max_steps=8",
                            "run.shard=1/2"), 6, 2),
    ("tiny OFT + FastV", ("model=openvla-oft-tiny", "pruner=fastv", "run.episodes_per_task=1",
                          "run.max_steps=4"), 6, 2),
    ("2 environment workers", ("model=oracle", "run.episodes_per_task=2", "run.max_steps=8",
                               "run.env_workers=2"), 2, 1),
])
def test_a_sample_of_faults_in_heavier_runs_recovers(libero, tmp_path, report_line, name, extra,
                                                     faults, kills):
    sweep = Sweep(run_scenario(name.split()[0], *TASK, *extra), tmp_path)
    sweep_sample(sweep, faults, kills)
    line = sweep.tally.line(name, "seeded sample")
    report_line(line)
    assert not sweep.tally.problems, line + "\n" + "\n".join(sweep.tally.problems[:20])
