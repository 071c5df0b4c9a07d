"""run.launcher=ray: a run split into shards on a local Ray, merged, equals the single-process
run; an unreachable cluster is one line and nothing written."""

from __future__ import annotations

import json

import pytest
from test_merge import BASE, results, run

from vlabench.core.errors import ConfigError
from vlabench.launch.compose import compose
from vlabench.launch.jobs import Job
from vlabench.launch.launchers import launch


def job(*overrides: str) -> Job:
    ov = tuple(BASE + list(overrides))
    return Job(ov, compose(list(ov)))


@pytest.mark.slow   # starts a local Ray (about 10 s) and two worker processes
def test_a_ray_launched_run_equals_the_single_process_run(tmp_path, capsys):
    run(tmp_path / "ref", "run.name=full")
    j = job(f"run.output_dir={tmp_path / 'ray'}", "run.name=full", "run.launcher=ray", "run.shards=2")
    assert launch([j], []) == 0
    out = tmp_path / "ray" / "full"
    assert results(out) == results(tmp_path / "ref" / "full")
    m = json.loads((out / "manifest.json").read_text())
    assert m["status"] == "complete" and [s["shard"] for s in m["merged_from"]] == ["1/2", "2/2"]
    assert sorted(p.name for p in (tmp_path / "ray").iterdir()) == \
        ["full", "full.shard-1-of-2", "full.shard-2-of-2"]
    assert "2 shards merged, 10 episodes" in capsys.readouterr().out
    # the same command again: the run is complete, nothing is launched or rewritten
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()}
    assert launch([j], []) == 0 and {f.name: f.read_bytes() for f in out.iterdir() if f.is_file()} == before
    assert "full: already complete" in capsys.readouterr().out


@pytest.mark.parametrize("address", ["ray://127.0.0.1:1", "127.0.0.1:1", "auto"])
def test_an_unreachable_ray_cluster_is_one_line_and_nothing_is_written(tmp_path, address):
    j = job(f"run.output_dir={tmp_path / 'out'}", "run.launcher=ray", f"ray.address={address}")
    with pytest.raises(ConfigError) as e:
        launch([j], [])
    assert "cannot" in str(e.value) and "ray.address" in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "out").exists()


def test_run_shard_and_ray_together_are_refused(tmp_path):
    j = job(f"run.output_dir={tmp_path}", "run.launcher=ray", "run.shard=1/2")
    with pytest.raises(ConfigError, match="run.shards=N"):
        launch([j], [])


@pytest.mark.slow   # two local Ray sessions
def test_a_failed_shard_keeps_the_others_episodes_and_the_same_command_completes_the_run(tmp_path, capsys):
    j = job(f"run.output_dir={tmp_path}", "run.name=full", "run.launcher=ray", "run.shards=2")
    (tmp_path / "full.shard-2-of-2").mkdir()
    (tmp_path / "full.shard-2-of-2" / "notes.txt").write_text("in the way")   # shard 2 refuses
    assert launch([j], []) == 1
    err = capsys.readouterr().err
    assert "full shard 2/2 failed: ConfigError" in err and "not a vlabench run directory" in err
    m = json.loads((tmp_path / "full" / "manifest.json").read_text())
    assert m["status"] == "partial" and [s["shard"] for s in m["merged_from"]] == ["1/2"]
    assert m["merged_from"][0]["host"]
    (tmp_path / "full.shard-2-of-2" / "notes.txt").unlink()
    assert launch([j], []) == 0
    m = json.loads((tmp_path / "full" / "manifest.json").read_text())
    assert m["status"] == "complete" and [s["shard"] for s in m["merged_from"]] == ["1/2", "2/2"]


def test_a_shard_directory_the_driver_cannot_see_is_named(tmp_path):
    from vlabench.launch.ray_launcher import check_visible

    (tmp_path / "manifest.json").write_text("{}")
    check_visible({"host": "n1", "dir": str(tmp_path)}, tmp_path, "shard 1/2 of r")   # visible: fine
    with pytest.raises(ConfigError, match="shard 2/2 of r ran on host n7 and wrote /scratch/r, .*every Ray node shares"):
        check_visible({"host": "n7", "dir": "/scratch/r"}, tmp_path / "missing", "shard 2/2 of r")


@pytest.mark.slow   # a local Ray session, slowed episodes
def test_a_shard_worker_killed_mid_run_is_retried_and_resumes_without_losing_or_doubling(tmp_path):
    import os
    import signal
    import threading
    import time

    from vlabench.core.schema import EPISODE_COLUMNS
    from vlabench.records.files import read_rows

    run(tmp_path / "ref", "run.name=full", "suite.step_sleep_s=0.1")
    d = tmp_path / "full.shard-1-of-2"
    killed: list[int] = []

    def kill_when_two_episodes_are_done() -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if (d / "episodes.csv").exists() and len(read_rows(d / "episodes.csv", EPISODE_COLUMNS)) >= 2:
                try:
                    pid = json.loads((d / ".vlabench.lock").read_text())["pid"]
                except (ValueError, KeyError):   # the holder is writing its name: look again
                    continue
                os.kill(pid, signal.SIGKILL)   # the Ray worker running shard 1 (it holds the lock)
                killed.append(pid)
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=kill_when_two_episodes_are_done)
    watcher.start()
    j = job(f"run.output_dir={tmp_path}", "run.name=full", "run.launcher=ray", "run.shards=2",
            "suite.step_sleep_s=0.1")
    rc = launch([j], [])
    watcher.join()
    assert killed and rc == 0
    assert json.loads((d / "manifest.json").read_text()).get("resumed_at")   # the retry resumed it
    rows = read_rows(d / "episodes.csv", EPISODE_COLUMNS)
    assert len(rows) == len({(r["task_id"], r["episode"]) for r in rows}) == 5
    assert results(tmp_path / "full") == results(tmp_path / "ref" / "full")
