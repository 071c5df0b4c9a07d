"""`run.shard=i/n` from the command line: a bad spec writes nothing; a shard killed with SIGKILL
keeps every finished episode, merges as it is (partial) and completes when re-run."""

from __future__ import annotations

import json
import signal
import subprocess
import time

from conftest import ROOT, cli_env, run_cli, vlabench_cmd
from test_merge import BASE, results, run

from vlabench.core.contracts import EpisodeSpec
from vlabench.core.schema import EPISODE_COLUMNS
from vlabench.records.files import read_rows
from vlabench.records.merge import merge_runs
from vlabench.records.shards import base_name, select_shard, shard_name


def test_shard_names_round_trip_and_shards_partition_the_plan_stably_as_it_grows():
    assert shard_name("a/b-c", 2, 4) == "a/b-c.shard-2-of-4" and base_name("a/b-c.shard-2-of-4") == "a/b-c"
    assert base_name("plain") is None
    plan = {t: [EpisodeSpec(t, i, i, 7) for i in range(5)] for t in (0, 3)}
    parts = [select_shard(plan, f"{i}/3") for i in (1, 2, 3)]
    got = sorted((t, ep.index) for p in parts for t, eps in p.items() for ep in eps)
    assert got == sorted((t, i) for t in (0, 3) for i in range(5))   # every episode exactly once
    assert [[ep.index for ep in p[0]] for p in parts] == [[0, 3], [1, 4], [2]]
    assert [[ep.index for ep in p[3]] for p in parts] == [[0, 3], [1, 4], [2]]   # (3 + e) % 3
    grown = {t: [EpisodeSpec(t, i, i, 7) for i in range(8)] for t in (0, 3, 4)}
    for i in (1, 2, 3):   # more episodes and tasks: each shard keeps what it had
        kept = select_shard(grown, f"{i}/3")
        assert all(set(ep.index for ep in parts[i - 1][t]) <= set(ep.index for ep in kept[t]) for t in (0, 3))


def test_a_shard_spec_beyond_its_count_is_one_line_exit_2_and_nothing_written(tmp_path):
    r = run_cli("run", *BASE, f"run.output_dir={tmp_path / 'out'}", "run.shard=3/2")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "run.shard" in lines[0] and "1 <= i <= n" in lines[0]
    assert not (tmp_path / "out").exists()


def test_a_killed_shard_keeps_its_episodes_merges_partially_and_completes_on_rerun(tmp_path):
    run(tmp_path / "ref", "run.name=full")
    slow = ["suite.step_sleep_s=0.2", f"run.output_dir={tmp_path}"]
    shard1 = [*BASE, *slow, "run.shard=1/2", "run.name=full.shard-1-of-2"]
    d = tmp_path / "full.shard-1-of-2"
    p = subprocess.Popen(vlabench_cmd("run", *shard1), env=cli_env(), cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while len(read_rows(d / "episodes.csv", EPISODE_COLUMNS)) < 2 and p.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    finished = read_rows(d / "episodes.csv", EPISODE_COLUMNS)
    assert 2 <= len(finished) < 5, "the shard should have been killed mid-run"
    out, status, n = merge_runs([d], None)
    assert (status, n) == ("partial", len(finished))
    assert [r["episode"] for r in read_rows(out / "episodes.csv", EPISODE_COLUMNS)] == \
        [r["episode"] for r in finished]
    r = run_cli("run", *shard1)                     # resumes the killed shard
    assert r.returncode == 0, r.stderr
    rows = read_rows(d / "episodes.csv", EPISODE_COLUMNS)
    assert rows[:len(finished)] == finished and len(rows) == 5
    assert len({(r["task_id"], r["episode"]) for r in rows}) == 5   # none doubled
    run(tmp_path, "suite.step_sleep_s=0.2", "run.shard=2/2", "run.name=full.shard-2-of-2")
    out, status, n = merge_runs([d, tmp_path / "full.shard-2-of-2"], None)
    assert (status, n) == ("complete", 10)
    assert results(out) == results(tmp_path / "ref" / "full")
    assert json.loads((out / "manifest.json").read_text())["status"] == "complete"
