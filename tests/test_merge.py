"""Shards and `vlabench merge`: two shards merged equal the single-process run, and what merging
refuses (conflicting duplicates, different configs), on the simulator-free test suite."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vlabench.core.errors import ConfigError
from vlabench.core.schema import CALL_COLUMNS, EPISODE_COLUMNS, MEASURED_CALL_COLUMNS
from vlabench.launch.compose import compose
from vlabench.records.files import RecordsError, read_rows
from vlabench.records.merge import merge_cli, merge_runs
from vlabench.run.runner import run_from_config

BASE = ["model=test-zero", "suite=test-fast", "run.quiet=true", "suite.episodes_per_task=5"]
EPISODE_TIMING = {"wall_s", "sim_s", "policy_s"}


def run(tmp: Path, *extra: str) -> None:
    run_from_config(compose(BASE + [f"run.output_dir={tmp}", *extra]))


def shard(tmp: Path, i: int, n: int, name: str = "full", *extra: str) -> Path:
    run(tmp, f"run.shard={i}/{n}", f"run.name={name}.shard-{i}-of-{n}", *extra)
    return tmp / f"{name}.shard-{i}-of-{n}"


def results(run_dir: Path) -> tuple[list[dict], list[dict]]:
    """episodes.csv without timing columns, calls.csv without latency/queue columns."""
    eps = [{k: v for k, v in r.items() if k not in EPISODE_TIMING}
           for r in read_rows(run_dir / "episodes.csv", EPISODE_COLUMNS)]
    calls = [{k: v for k, v in r.items() if k not in MEASURED_CALL_COLUMNS}
             for r in read_rows(run_dir / "calls.csv", CALL_COLUMNS)]
    order = lambda r: (int(r["task_id"]), int(r["episode"]), int(r.get("call") or 0))  # noqa: E731
    return sorted(eps, key=order), sorted(calls, key=order)


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def test_two_shards_split_every_task_and_merge_into_the_single_process_run(tmp_path):
    run(tmp_path, "run.name=full")
    a, b = shard(tmp_path / "s", 1, 2), shard(tmp_path / "s", 2, 2)
    # 2 tasks x 5 episodes in (task, episode) order, alternating: shard 1 has flat positions 0,2,..
    assert [(r["task_id"], r["episode"]) for r in read_rows(a / "episodes.csv", EPISODE_COLUMNS)] == \
        [("0", "0"), ("0", "2"), ("0", "4"), ("1", "1"), ("1", "3")]
    assert len(read_rows(b / "episodes.csv", EPISODE_COLUMNS)) == 5
    out, status, n = merge_runs([a, b], None)
    assert out == (tmp_path / "s" / "full").resolve() and status == "complete" and n == 10
    assert results(out) == results(tmp_path / "full")
    m = manifest(out)
    assert m["status"] == "complete" and m["episodes_per_task"] == {"0": 5, "1": 5}
    assert [s["shard"] for s in m["merged_from"]] == ["1/2", "2/2"]
    assert [s["records"] for s in m["merged_from"]] == [manifest(a)["records"], manifest(b)["records"]]
    cfg = (out / "config.yaml").read_text()
    assert "shard: null" in cfg and "name: full\n" in cfg


def test_the_merged_run_is_one_run_for_the_report_and_the_shards_are_skipped(tmp_path):
    from vlabench.report.runs import RunSet, find_run_dirs

    a, b = shard(tmp_path, 1, 2), shard(tmp_path, 2, 2)
    merge_runs([a, b], None)
    assert find_run_dirs([str(tmp_path)]) == [(tmp_path / "full").resolve()]
    runs = RunSet.load([str(tmp_path)]).runs
    assert len(runs) == 1 and runs[0].status == "complete" and len(runs[0].episodes) == 10
    assert find_run_dirs([str(a)]) == [a.resolve()]   # named explicitly: still readable


def test_merging_again_is_idempotent_and_one_shard_gives_a_partial_run(tmp_path, capsys):
    a, b = shard(tmp_path, 1, 2), shard(tmp_path, 2, 2)
    out, status, n = merge_runs([a], None)
    assert (status, n) == ("partial", 5) and manifest(out)["status"] == "partial"
    out, status, n = merge_runs([a, b], None)
    assert (status, n) == ("complete", 10)
    before = {f: (out / f).read_bytes() for f in ("episodes.csv", "calls.csv", "config.yaml", "summary.csv")}
    assert merge_cli([str(tmp_path / "full.shard-*")], None) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"merged 10 episodes into {out} (status complete)"
    assert {f: (out / f).read_bytes() for f in before} == before
    assert manifest(out)["records"] == manifest(out)["records"] and manifest(out)["status"] == "complete"


def test_vlabench_run_with_the_same_config_resumes_a_partial_merge(tmp_path):
    run(tmp_path / "ref", "run.name=full")
    a = shard(tmp_path, 1, 2)
    out, status, _ = merge_runs([a], None)
    assert status == "partial"
    kept = read_rows(out / "episodes.csv", EPISODE_COLUMNS)
    run(tmp_path, "run.name=full")     # resumes: runs only shard 2's episodes
    rows = read_rows(out / "episodes.csv", EPISODE_COLUMNS)
    assert rows[:5] == kept and len(rows) == 10
    assert manifest(out)["status"] == "complete"
    assert results(out) == results(tmp_path / "ref" / "full")


def test_an_existing_single_process_run_takes_part_in_the_dedup(tmp_path):
    run(tmp_path, "run.name=full")
    a = shard(tmp_path, 1, 2)
    before = (tmp_path / "full" / "episodes.csv").read_bytes()
    out, status, n = merge_runs([a], None)
    assert out == (tmp_path / "full").resolve() and (status, n) == ("complete", 10)
    assert (out / "episodes.csv").read_bytes() == before   # the identical duplicates kept once


def test_a_conflicting_duplicate_is_one_error_naming_task_episode_column_and_both_dirs(tmp_path):
    a = shard(tmp_path, 1, 2)
    b = shard(tmp_path / "other", 1, 2)
    text = (b / "episodes.csv").read_text().splitlines(keepends=True)
    cells = text[2].split(",")   # task 0 episode 2
    i = EPISODE_COLUMNS.index("steps")
    cells[i] = "3"
    text[2] = ",".join(cells)
    (b / "episodes.csv").write_text("".join(text))
    # re-seal b's records so that only the conflict (not the edit) is what merge sees
    _reseal(b)
    with pytest.raises(RecordsError) as e:
        merge_runs([a, b], str(tmp_path / "merged"))
    msg = str(e.value)
    assert "task 0 episode 2" in msg and "steps" in msg and str(a.resolve()) in msg and str(b.resolve()) in msg
    assert "\n" not in msg and not (tmp_path / "merged").exists()


def _reseal(run_dir: Path) -> None:
    from vlabench.records.files import sha256
    from vlabench.records.provenance import seal

    m = manifest(run_dir)
    for f in ("episodes.csv", "calls.csv"):
        data = (run_dir / f).read_bytes()
        m["records"][f] = {"bytes": len(data), "sha256": sha256(data)}
    m.pop("seal")
    (run_dir / "manifest.json").write_text(json.dumps(seal(m)))


def test_mismatched_configs_are_refused_naming_the_keys(tmp_path):
    a = shard(tmp_path, 1, 2)
    b = shard(tmp_path / "o", 2, 2, "full", "run.seed=8", "run.env_workers=1")
    with pytest.raises(ConfigError) as e:
        merge_runs([a, b], str(tmp_path / "m"))
    assert "run.seed" in str(e.value) and "shard" not in str(e.value).split("differ in")[1]
    assert not (tmp_path / "m").exists()


def test_an_edited_shard_is_refused_and_nothing_is_written(tmp_path):
    a, b = shard(tmp_path, 1, 2), shard(tmp_path, 2, 2)
    with open(b / "episodes.csv", "a") as f:
        f.write(",".join(["x"] * len(EPISODE_COLUMNS)) + "\n")
    with pytest.raises(RecordsError, match="rows were added"):
        merge_runs([a, b], None)
    assert not (tmp_path / "full").exists()


def test_shards_of_different_runs_need_into(tmp_path):
    a = shard(tmp_path, 1, 2, "one")
    b = shard(tmp_path, 2, 2, "two")
    with pytest.raises(ConfigError, match="--into"):
        merge_runs([a, b], None)
    out, status, _ = merge_runs([a, b], str(tmp_path / "both"))
    assert status == "complete" and "name: both\n" in (out / "config.yaml").read_text()


def test_a_missing_input_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        merge_cli([str(tmp_path / "nope")], None)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="not a run directory"):
        merge_cli([str(tmp_path / "empty")], None)


def test_a_merge_killed_after_its_journal_is_finished_by_the_next_writer(tmp_path):
    from vlabench.records.merge import build_files, read_part
    from vlabench.records.rundir import MERGE_JOURNAL, RunDirClaim, remove_temporaries
    from vlabench.report.runs import load_run

    a, b = shard(tmp_path, 1, 2), shard(tmp_path, 2, 2)
    out, _, _ = merge_runs([a], None)
    files = build_files(out, read_part(out), [read_part(b)], "vlabench merge")
    staged = {}
    for name, data in files.items():   # as commit_files stages them, then "killed" mid-rename
        (out / f".{name}.1.tmp").write_bytes(data)
        staged[name] = f".{name}.1.tmp"
    (out / MERGE_JOURNAL).write_text(json.dumps({"files": staged}))
    (out / ".episodes.csv.1.tmp").replace(out / "episodes.csv")
    with pytest.raises(RecordsError, match="interrupted"):
        load_run(out)
    claim = RunDirClaim(out)
    claim.open()
    remove_temporaries(out)
    claim.close()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".vlabench.lock"]
    assert load_run(out).status == "complete"


def test_a_merge_killed_before_its_journal_leaves_the_old_run(tmp_path):
    from vlabench.report.runs import load_run

    a, b = shard(tmp_path, 1, 2), shard(tmp_path, 2, 2)
    out, _, _ = merge_runs([a], None)
    (out / ".episodes.csv.1.tmp").write_text("half")
    assert len(load_run(out).episodes) == 5
    merge_runs([a, b], None)
    assert not (out / ".episodes.csv.1.tmp").exists() and len(load_run(out).episodes) == 10


def test_a_copied_shard_merges_like_the_original(tmp_path):
    a, b = shard(tmp_path / "node1", 1, 2), shard(tmp_path / "node2", 2, 2)
    here = tmp_path / "here"
    here.mkdir()
    shutil.copytree(a, here / a.name)
    shutil.copytree(b, here / b.name)
    out, status, n = merge_runs([here / a.name, here / b.name], None)
    assert out == (here / "full").resolve() and (status, n) == ("complete", 10)


def test_shards_from_different_machines_are_merged_with_a_deviation(tmp_path):
    from vlabench.records.provenance import seal

    a, b = shard(tmp_path, 1, 2), shard(tmp_path, 2, 2)
    m = manifest(b)
    m["machine"] = {"cpu": "Other CPU", "cpu_cores": 64, "system": "Linux", "gpu": None}
    m.pop("seal")
    (b / "manifest.json").write_text(json.dumps(seal(m)))
    out, status, _ = merge_runs([a, b], None)
    devs = manifest(out)["deviations"]
    assert status == "complete" and any("different machines" in d and "Other CPU" in d for d in devs)
    assert [s["machine"]["cpu"] for s in manifest(out)["merged_from"]][1] == "Other CPU"


def test_shards_merged_one_at_a_time_are_complete_only_with_the_last(tmp_path):
    dirs = [shard(tmp_path, i, 3) for i in (1, 2, 3)]
    assert [merge_runs([d], None)[1] for d in dirs] == ["partial", "partial", "complete"]
    out = tmp_path / "full"
    assert manifest(out)["episodes_per_task"] == {"0": 5, "1": 5}
    assert [s["shard"] for s in manifest(out)["merged_from"]] == ["1/3", "2/3", "3/3"]


def test_shards_of_a_grown_run_grow_the_merged_run(tmp_path):
    run(tmp_path / "ref", "run.name=full", "run.episodes_per_task=7")
    merge_runs([shard(tmp_path, 1, 2), shard(tmp_path, 2, 2)], None)
    before = read_rows(tmp_path / "full" / "episodes.csv", EPISODE_COLUMNS)
    a, b = (shard(tmp_path, i, 2, "full", "run.episodes_per_task=7") for i in (1, 2))  # each resumes, grown
    out, status, n = merge_runs([a, b], None)
    assert (status, n) == ("complete", 14) and manifest(out)["episodes_per_task"] == {"0": 7, "1": 7}
    assert "episodes_per_task: 7" in (out / "config.yaml").read_text()
    rows = read_rows(out / "episodes.csv", EPISODE_COLUMNS)
    assert [r for r in rows if int(r["episode"]) < 5] == before   # nothing re-run or lost
    assert results(out) == results(tmp_path / "ref" / "full")
    c = shard(tmp_path / "small", 1, 2, "full", "run.episodes_per_task=3")
    with pytest.raises(ConfigError, match="only grows"):
        merge_runs([c], str(out))
    d = shard(tmp_path / "seed", 1, 2, "full", "run.seed=9")
    with pytest.raises(ConfigError, match="differs from .* in run.seed"):
        merge_runs([d], str(out))
