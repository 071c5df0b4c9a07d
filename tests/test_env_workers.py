"""run.env_workers=N on simulator-free episodes: the same records as the in-process run, a
killed worker's episode recorded as failed, SIGTERM stopping every worker (resumable), and
the scheduler's hand-worked choices. Real-simulator checks: tests/test_env_workers_libero.py."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time
from collections import deque
from pathlib import Path

import pytest
from conftest import ROOT, cli_env, run_cli, vlabench_cmd

from vlabench.core.contracts import EpisodeSpec, TaskInfo
from vlabench.launch.compose import compose
from vlabench.run.runner import run_from_config
from vlabench.run.workers import Block, Scheduler, Slot, exit_reason

TIMING = {"run_id", "wall_s", "sim_s", "policy_s", "queue_wait_ms", "mem_peak_mb", "cuda_ms",
          "batch"}   # and lat_*


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def comparable(run_dir: Path) -> tuple[list[tuple], list[tuple]]:
    """episodes.csv and calls.csv without timing columns, in (task, episode, call) order."""
    def strip(r):
        return tuple((k, v) for k, v in r.items() if k not in TIMING and not k.startswith("lat_"))

    eps = sorted(strip(r) for r in rows(run_dir / "episodes.csv"))
    calls = sorted((int(r["task_id"]), int(r["episode"]), int(r["call"]), strip(r))
                   for r in rows(run_dir / "calls.csv"))
    return eps, calls


def args(out: Path, name: str, workers: int, *extra: str) -> list[str]:
    return ["run", "model=test-draw", "suite=test-draw", f"run.output_dir={out}", f"run.name={name}",
            f"run.env_workers={workers}", "run.quiet=true", *extra]


def run_here(out: Path, name: str, workers: int, *extra: str) -> None:
    """The run in this process (its workers are spawned as the CLI's are)."""
    run_from_config(compose(args(out, name, workers, *extra)[1:]))


def test_three_workers_give_the_in_process_episodes_and_calls(tmp_path):
    run_here(tmp_path, "one", 1)
    run_here(tmp_path, "three", 3)
    a, b = comparable(tmp_path / "one"), comparable(tmp_path / "three")
    assert len(a[0]) == 6 and len(a[1]) > 6
    assert a == b   # the policy's draws, observed steps and per-episode counters match
    waits = [r["queue_wait_ms"] for r in rows(tmp_path / "three" / "calls.csv")]
    assert all(float(w) >= 0 for w in waits)
    assert {r["queue_wait_ms"] for r in rows(tmp_path / "one" / "calls.csv")} == {""}


def test_batched_calls_give_the_in_process_episodes_and_calls(tmp_path):
    run_here(tmp_path, "one", 1)
    run_here(tmp_path, "batched", 3, "run.batch=3", "run.batch_wait_ms=500", "suite.step_sleep_s=0.01")
    assert comparable(tmp_path / "one") == comparable(tmp_path / "batched")
    sizes = [int(r["batch"]) for r in rows(tmp_path / "batched" / "calls.csv")]
    assert max(sizes) > 1 and set(sizes) <= {1, 2, 3}   # calls were batched, never over run.batch
    assert {r["batch"] for r in rows(tmp_path / "one" / "calls.csv")} == {"1"}


def test_batched_shards_merge_into_the_in_process_run(tmp_path):
    run_here(tmp_path, "full", 1)
    batched = ("run.batch=3", "run.batch_wait_ms=300", "suite.step_sleep_s=0.01")
    parts = []
    for i in (1, 2):
        run_here(tmp_path / "s", f"full.shard-{i}-of-2", 3, f"run.shard={i}/2", *batched)
        parts.append(tmp_path / "s" / f"full.shard-{i}-of-2")
    from vlabench.records.merge import merge_runs

    out, status, n = merge_runs(parts, None)
    assert status == "complete" and n == 6
    assert comparable(out) == comparable(tmp_path / "full")


def test_a_pruner_that_replans_gets_every_open_loop_step_with_the_in_process_draws(tmp_path):
    run_here(tmp_path, "one", 1, "pruner=test-replan")
    run_here(tmp_path, "two", 2, "pruner=test-replan")
    a, b = comparable(tmp_path / "one"), comparable(tmp_path / "two")
    steps = sorted(int(dict(c[3])["step"]) for c in a[1])
    assert a == b and any(s % 3 for s in steps)   # some calls came early: a replan


@pytest.mark.parametrize("batch", [[], ["run.batch=2", "run.batch_wait_ms=200"]], ids=["batch1", "batch2"])
def test_a_killed_worker_records_its_episode_as_failed_and_the_run_finishes(tmp_path, capsys, batch):
    kill = "suite.kill_at=[0,1,2]"   # the worker running task 0 episode 1 SIGKILLs itself at step 2
    run_here(tmp_path, "k", 2, kill, *batch)
    assert "died: killed by signal 9 (SIGKILL); restarting it" in capsys.readouterr().err
    eps = rows(tmp_path / "k" / "episodes.csv")
    keys = [(r["task_id"], r["episode"]) for r in eps]
    assert sorted(keys) == [(t, e) for t in "01" for e in "012"]   # none lost, none doubled
    dead = [r for r in eps if r["error_type"]]
    assert [(r["task_id"], r["episode"], r["error_type"]) for r in dead] == [("0", "1", "EnvWorkerDied")]
    assert "killed by signal 9 (SIGKILL)" in dead[0]["error"] and dead[0]["success"] == "0"
    # the other episodes are the in-process run's
    run_here(tmp_path, "ref", 1)
    ok = [r for r in comparable(tmp_path / "k")[0] if ("episode", "1") not in r or ("task_id", "1") in r]
    want = [r for r in comparable(tmp_path / "ref")[0] if ("episode", "1") not in r or ("task_id", "1") in r]
    assert ok == want and len(ok) == 5
    run_here(tmp_path, "k", 2, kill, *batch)
    assert "6/6 episodes already done" in capsys.readouterr().err
    assert len(rows(tmp_path / "k" / "episodes.csv")) == 6


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out |= {int(x) for x in (task / "children").read_text().split()}
        except OSError:
            pass
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "batch"), [(signal.SIGTERM, 1), (signal.SIGTERM, 3), (signal.SIGKILL, 3)],
                         ids=["sigterm", "sigterm-batch3", "sigkill-main-batch3"])
def test_sigterm_stops_every_worker_and_the_run_resumes_to_the_in_process_records(tmp_path, sig, batch):
    """SIGTERM (or SIGKILL of the main process) in the middle of a run, batched or not: no
    worker outlives it, and the resumed run's records are the in-process run's."""
    slow = ["suite.step_sleep_s=0.1", "suite.num_tasks=3", f"run.batch={batch}", "run.batch_wait_ms=300"]
    proc = subprocess.Popen(vlabench_cmd(*args(tmp_path, "t", 2, *slow)), cwd=ROOT, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    eps_csv = tmp_path / "t" / "episodes.csv"
    workers: set[int] = set()
    for _ in range(1200):   # until two episodes are committed, with the workers known
        workers |= _children(proc.pid)
        if eps_csv.exists() and len(eps_csv.read_text().splitlines()) >= 3:
            break
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(0.05)
    workers |= _children(proc.pid)
    assert len(workers) >= 2
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == (143 if sig == signal.SIGTERM else -9), err[-2000:]
    for _ in range(100):   # reparented children are reaped by init shortly after
        if not [p for p in workers if _alive(p)]:
            break
        time.sleep(0.05)
    assert not [p for p in workers if _alive(p)]
    manifest = json.loads((tmp_path / "t" / "manifest.json").read_text())
    assert manifest["status"] == ("interrupted" if sig == signal.SIGTERM else "running")
    done = len(rows(eps_csv))
    assert 2 <= done < 9
    res = run_cli(*args(tmp_path, "t", 2, *slow))
    assert res.returncode == 0 and f"{done}/9 episodes already done" in res.stderr, res.stderr[-2000:]
    assert run_cli(*args(tmp_path, "ref", 1, *slow[:2])).returncode == 0
    assert comparable(tmp_path / "t") == comparable(tmp_path / "ref")


def _eps(task: int, *idx: int) -> tuple[TaskInfo, list[EpisodeSpec]]:
    return TaskInfo(task, f"t{task}", "x"), [EpisodeSpec(task, i, i, 0) for i in idx]


def test_scheduler_gives_whole_tasks_first_then_steals_the_back_half_of_the_longest_block():
    sched = Scheduler([_eps(0, 0, 1, 2, 3, 4), _eps(1, 0, 1)])
    a, b, c = Slot(0), Slot(1), Slot(2)
    slots = [a, b, c]
    assert (sched.next(a, slots)[0].id, sched.next(a, slots)[1].index) == (0, 1)
    assert sched.next(b, slots)[1].index == 0 and b.block.task.id == 1
    # c: no untouched task; a's block holds 2, 3, 4 -> c takes the back half [4]... of len 3: 1
    t, ep = sched.next(c, slots)
    assert (t.id, ep.index) == (0, 4) and list(e.index for e in a.block.eps) == [2, 3]
    assert [e.index for e in (sched.next(a, slots)[1], sched.next(a, slots)[1])] == [2, 3]
    assert sched.next(b, slots)[1].index == 1
    assert sched.next(a, slots) is None and sched.next(b, slots) is None


def test_stealing_takes_half_of_a_long_block_in_ascending_order():
    sched = Scheduler([_eps(0, *range(8))])
    a, b = Slot(0), Slot(1)
    sched.next(a, [a, b])
    sched.next(b, [a, b])
    assert [e.index for e in a.block.eps] == [1, 2, 3, 4] and [e.index for e in b.block.eps] == [6, 7]
    assert b.block.task.id == 0 and isinstance(b.block, Block) and isinstance(b.block.eps, deque)


def test_exit_reason_names_the_signal_or_the_exit_code():
    assert exit_reason(-9) == "killed by signal 9 (SIGKILL)"
    assert exit_reason(-11) == "killed by signal 11 (SIGSEGV)"
    assert exit_reason(3) == "exit code 3"
