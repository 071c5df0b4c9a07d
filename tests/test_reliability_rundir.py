"""Never lose a user's data: what a failed or interrupted start may remove, the run-directory
lock, SIGTERM. Runs the simulator-free `test-fast` suite (tests/configs/suite/test-fast.yaml)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from conftest import ROOT, cli_env, default_sigint, run_cli, vlabench_cmd

from vlabench.core.errors import ConfigError
from vlabench.launch.compose import compose
from vlabench.run.runner import run_from_config

FAST = ["model=test-zero", "suite=test-fast", "run.quiet=true"]


def fast_cfg(out: Path, *extra: str):
    return compose([*FAST, f"run.output_dir={out}", *extra])


def start(out: Path, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(vlabench_cmd("run", *FAST, f"run.output_dir={out}", *extra),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**cli_env(), **(env or {})}, cwd=ROOT, preexec_fn=default_sigint)


def start_held(out: Path, where: str, *extra: str) -> tuple[subprocess.Popen, Path]:
    """A run that announces reaching `where` (tests/plugins/vlabench_test_suites.py) and waits
    there: the test's signal lands at that point, whatever the machine's load."""
    marker = out.parent / f"{out.name}.reached-{where.replace(':', '-')}"   # outside the run dir
    marker.unlink(missing_ok=True)
    p = start(out, *extra, env={"VLABENCH_TEST_HOLD": where, "VLABENCH_TEST_HOLD_MARKER": str(marker)})
    return p, marker


def wait_for(cond, timeout: float = 60.0) -> None:
    t0 = time.time()
    while not cond():
        assert time.time() - t0 < timeout, "timed out"
        time.sleep(0.05)


def holder_pid(run_dir: Path) -> int | None:
    try:
        return json.loads((run_dir / ".vlabench.lock").read_text()).get("pid")
    except (OSError, ValueError):
        return None


def contents(d: Path) -> dict[str, bytes]:
    """Every file of a directory but the lock file (whose holder note changes per run)."""
    return {p.name: p.read_bytes() for p in d.iterdir() if p.name != ".vlabench.lock"}


def episodes(run_dir: Path) -> list[str]:
    return (run_dir / "episodes.csv").read_text().splitlines()[1:]


# ---- 1. a failed or interrupted start removes only what it created -------------------------

def test_a_users_directory_with_a_file_is_refused_and_left_intact(tmp_path):
    mine = tmp_path / "mydata"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    for extra in ([], ["suite.fail_on_build=true"], ["run.overwrite=true"]):
        with pytest.raises(ConfigError, match="not a vlabench run directory"):
            run_from_config(fast_cfg(tmp_path, "run.name=mydata", *extra))
        assert sorted(os.listdir(mine)) == ["notes.txt"] and (mine / "notes.txt").read_text() == "precious"


def test_a_run_directory_without_config_yaml_is_refused_and_left_intact(tmp_path):
    run_from_config(fast_cfg(tmp_path, "run.name=r"))
    d = tmp_path / "r"
    (d / "config.yaml").unlink()
    before = contents(d)
    for extra in ([], ["run.max_steps=3"], ["run.overwrite=true"], ["suite.fail_on_build=true"]):
        with pytest.raises(ConfigError, match="no config.yaml"):
            run_from_config(fast_cfg(tmp_path, "run.name=r", *extra))
        assert contents(d) == before


def test_a_failing_start_in_an_existing_empty_directory_keeps_the_directory(tmp_path):
    (tmp_path / "keep").mkdir()
    with pytest.raises(RuntimeError, match="scripted start-up failure"):
        run_from_config(fast_cfg(tmp_path, "run.name=keep", "suite.fail_on_build=true"))
    assert (tmp_path / "keep").is_dir() and os.listdir(tmp_path / "keep") == []


def test_a_failing_start_removes_the_folders_it_created_and_nothing_else(tmp_path):
    (tmp_path / "other.txt").write_text("x")
    with pytest.raises(RuntimeError, match="scripted start-up failure"):
        run_from_config(fast_cfg(tmp_path / "new" / "deeper", "run.name=r", "suite.fail_on_build=true"))
    assert sorted(os.listdir(tmp_path)) == ["other.txt"]


def test_a_failing_resume_keeps_every_record(tmp_path, monkeypatch):
    run_from_config(fast_cfg(tmp_path, "run.name=r", "run.episodes_per_task=1"))
    d = tmp_path / "r"
    before = contents(d)
    monkeypatch.setenv("VLABENCH_TEST_FAIL_BUILD", "1")
    with pytest.raises(RuntimeError, match="scripted start-up failure"):
        run_from_config(fast_cfg(tmp_path, "run.name=r", "run.episodes_per_task=1"))
    assert contents(d) == before


def test_a_refused_or_failing_start_leaves_the_lock_file_as_it_found_it(tmp_path, monkeypatch):
    """The holder line of the run that made the directory survives a start that gives up."""
    run_from_config(fast_cfg(tmp_path, "run.name=r", "run.episodes_per_task=1"))
    lock = tmp_path / "r" / ".vlabench.lock"
    line = lock.read_bytes()
    assert json.loads(line)["pid"] == os.getpid()
    refused = run_cli("run", *FAST, f"run.output_dir={tmp_path}", "run.name=r", "run.seed=1")
    assert refused.returncode == 2 and "run.seed" in refused.stderr
    assert lock.read_bytes() == line
    monkeypatch.setenv("VLABENCH_TEST_FAIL_BUILD", "1")
    with pytest.raises(RuntimeError, match="scripted start-up failure"):
        run_from_config(fast_cfg(tmp_path, "run.name=r", "run.episodes_per_task=1"))
    assert lock.read_bytes() == line


def test_run_device_cuda_on_a_cpu_machine_leaves_an_existing_directory_intact(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("needs a machine without CUDA")
    (tmp_path / "mydata").mkdir()
    res = run_cli("run", "model=openvla-oft-tiny", "suite=test-fast", "run.device=cuda",
                  f"run.output_dir={tmp_path}", "run.name=mydata")
    assert res.returncode == 2 and "no CUDA device" in res.stderr
    assert (tmp_path / "mydata").is_dir() and os.listdir(tmp_path / "mydata") == []


@pytest.mark.parametrize("pre", ["none", "empty", "run"])
def test_ctrl_c_during_start_up_removes_only_what_this_start_created(tmp_path, pre):
    d = tmp_path / "out" / "r"
    if pre == "empty":
        d.mkdir(parents=True)
    if pre == "run":
        run_from_config(fast_cfg(tmp_path / "out", "run.name=r", "run.episodes_per_task=1"))
        before = contents(d)
    p, reached = start_held(tmp_path / "out", "build", "run.name=r", "run.episodes_per_task=1")
    wait_for(reached.exists, timeout=300)
    assert holder_pid(d) == p.pid
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130 and "interrupted" in err
    if pre == "none":
        assert not (tmp_path / "out").exists()
    elif pre == "empty":
        assert d.is_dir() and os.listdir(d) == []
    else:
        assert contents(d) == before


@pytest.mark.parametrize("name", ["", " ", "..", ".", "../escape", "a/../../b", "/tmp/abs"])
def test_run_names_that_are_empty_or_escape_the_output_dir_are_refused(tmp_path, name):
    with pytest.raises(ConfigError, match="run.name"):
        run_from_config(fast_cfg(tmp_path / "out", f"run.name='{name}'"))
    assert not (tmp_path / "out").exists() and os.listdir(tmp_path) == []


# ---- 2. one writer per run directory --------------------------------------------------------

def test_a_second_run_on_a_locked_directory_exits_2_naming_the_holder(tmp_path):
    d = tmp_path / "r"
    same = ["run.name=r", "run.episodes_per_task=2"]
    first, reached = start_held(tmp_path, "step:0:0:1", *same)   # holds the lock, mid-episode
    try:
        wait_for(reached.exists, timeout=300)
        for extra in ([], ["run.overwrite=true"]):
            res = run_cli("run", *FAST, f"run.output_dir={tmp_path}", *same, *extra)
            assert res.returncode == 2, res.stderr
            lines = res.stderr.strip().splitlines()
            assert len(lines) == 1 and f"PID {first.pid} on host {socket.gethostname()}" in lines[0]
        assert first.poll() is None          # the lock was really contested
        reached.unlink()                     # let the first run go on
        _, err = first.communicate(timeout=300)
        assert first.returncode == 0, err
    finally:
        first.kill()
    rows = episodes(d)
    assert len(rows) == 4 and len(set(rows)) == 4


def test_a_sigkilled_holder_leaves_no_stale_lock_and_the_run_resumes(tmp_path):
    d = tmp_path / "r"
    first, reached = start_held(tmp_path, "step:1:0:1", "run.name=r")   # after task 0's 3 episodes
    wait_for(reached.exists, timeout=300)
    first.kill()
    first.wait()
    assert len(episodes(d)) == 3
    res = run_cli("run", *FAST, f"run.output_dir={tmp_path}", "run.name=r")
    assert res.returncode == 0, res.stderr
    keys = [tuple(r.split(",")[4:7:2]) for r in episodes(d)]
    assert len(keys) == 6 and len(set(keys)) == 6


def test_the_lock_is_exclusive_within_one_process_too(tmp_path):
    from vlabench.records.locking import RunDirLocked, RunLock

    a, b = RunLock(tmp_path), RunLock(tmp_path)
    a.acquire()
    with pytest.raises(RunDirLocked, match=f"PID {os.getpid()}"):
        b.acquire()
    a.release()
    b.acquire()
    b.release()


# ---- 3c. SIGTERM is an interrupt ------------------------------------------------------------

@pytest.mark.parametrize("sig,code,what", [(signal.SIGTERM, 143, "terminated (SIGTERM)"),
                                           (signal.SIGINT, 130, "interrupted")])
def test_sigterm_stops_like_ctrl_c_with_exit_143_and_the_run_resumes(tmp_path, sig, code, what):
    d = tmp_path / "r"
    p, reached = start_held(tmp_path, "step:0:1:3", "run.name=r")   # task 0, episode 1 running
    wait_for(reached.exists, timeout=300)
    p.send_signal(sig)
    _, err = p.communicate(timeout=60)
    assert p.returncode == code
    assert err.strip().splitlines()[-1] == (f"vlabench: {what}; finished episodes are "
                                            "saved, re-run the same command to resume")
    assert "Traceback" not in err
    assert json.loads((d / "manifest.json").read_text())["status"] == "interrupted"
    done = len(episodes(d))
    assert done == 1   # episode 0 of task 0; episode 1 was cut short and is not recorded
    res = run_cli("run", *FAST, f"run.output_dir={tmp_path}", "run.name=r")
    assert res.returncode == 0, res.stderr
    assert f"{done}/6 episodes already done" in res.stderr and len(episodes(d)) == 6
    assert json.loads((d / "manifest.json").read_text())["status"] == "complete"
