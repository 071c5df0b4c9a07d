"""run.env_workers=N on the real LIBERO simulator: deterministic policies give the in-process
run's episodes (and calls), whichever worker ran which episode of a task (each worker's
environment replays the placement stream up to its episode); a worker killed from outside
is a recorded failure and the run finishes."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, cli_env, run_cli, vlabench_cmd
from test_env_workers import comparable, rows

pytestmark = [pytest.mark.libero, pytest.mark.slow]


def libero(out: Path, name: str, workers: int, *extra: str) -> list[str]:
    return ["run", "suite=libero_spatial", "suite.tasks=[0]", f"run.output_dir={out}",
            f"run.name={name}", f"run.env_workers={workers}", "run.quiet=true", *extra]


def test_the_oracle_on_two_workers_gives_the_in_process_episodes(tmp_path):
    extra = ("model=oracle", "run.episodes_per_task=3", "run.max_steps=40")
    one = run_cli(*libero(tmp_path, "one", 1, *extra))
    two = run_cli(*libero(tmp_path, "two", 2, *extra))
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    a, b = comparable(tmp_path / "one"), comparable(tmp_path / "two")
    assert len(a[0]) == 3 and a == b


@pytest.mark.parametrize("pruner", ["none", "fastv", "specprune"])
def test_the_tiny_oft_on_two_workers_gives_the_in_process_episodes_and_calls(tmp_path, pruner):
    """Also batched (run.batch=2): the workers prepare the frames, the policy batches both
    workers' calls; the records equal the in-process run's."""
    extra = ("model=openvla-oft-tiny", f"pruner={pruner}", "run.episodes_per_task=2",
             "run.max_steps=9")
    one = run_cli(*libero(tmp_path, "one", 1, *extra))
    two = run_cli(*libero(tmp_path, "two", 2, *extra))
    batched = run_cli(*libero(tmp_path, "b", 2, *extra, "run.batch=2", "run.batch_wait_ms=60000"))
    assert one.returncode == 0 and two.returncode == 0, two.stderr[-2000:]
    assert batched.returncode == 0, batched.stderr[-2000:]
    a, b, c = comparable(tmp_path / "one"), comparable(tmp_path / "two"), comparable(tmp_path / "b")
    assert len(a[0]) == 2 and len(a[1]) >= 4 and a == b == c   # tokens kept, FLOPs, steps
    sizes = {r["batch"] for r in rows(tmp_path / "b" / "calls.csv") if r["source"] == "model"}
    assert "2" in sizes   # the two workers' calls met in one forward pass
    pre = [float(r["lat_preprocess_ms"]) for r in rows(tmp_path / "two" / "calls.csv") if r["source"] == "model"]
    assert pre and all(p > 0 for p in pre)   # prepared in the worker, its time recorded


def _workers(pid: int) -> list[int]:
    """The spawned environment workers among `pid`'s children (not the resource tracker)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                cmd = Path(f"/proc/{child}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmd:
                found.append(int(child))
    return found


def test_a_worker_killed_from_outside_is_a_recorded_failure_and_the_run_finishes(tmp_path):
    # 4 episodes on 2 workers: after the first commit both workers hold an episode (the one
    # that committed was given the next at once), so the killed one was running an episode
    extra = ("model=oracle", "run.episodes_per_task=4", "run.max_steps=40")
    proc = subprocess.Popen(vlabench_cmd(*libero(tmp_path, "k", 2, *extra)), cwd=ROOT,
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = None
    for _ in range(6000):
        if len(rows(tmp_path / "k" / "episodes.csv") if (tmp_path / "k" / "episodes.csv").exists() else []) >= 1:
            victim = min(_workers(proc.pid))
            break
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        time.sleep(0.05)
    assert victim is not None
    subprocess.run(["kill", "-KILL", str(victim)], check=True)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-2000:]
    eps = rows(tmp_path / "k" / "episodes.csv")
    assert sorted(r["episode"] for r in eps) == ["0", "1", "2", "3"]   # none lost, none doubled
    dead = [r for r in eps if r["error_type"]]
    assert len(dead) == 1 and dead[0]["error_type"] == "EnvWorkerDied"
    assert f"(pid {victim}) died: killed by signal 9 (SIGKILL)" in dead[0]["error"]
    again = run_cli(*libero(tmp_path, "k", 2, *extra))
    assert again.returncode == 0 and "4/4 episodes already done" in again.stderr
    assert len(rows(tmp_path / "k" / "episodes.csv")) == 4
