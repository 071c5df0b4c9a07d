"""A run directory written before the package move (flat modules, commit 1f61b6d) still reads,
resumes and reports: the records' layout never depended on where the code lives."""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import run_cli

from vlabench.core.schema import EPISODE_COLUMNS
from vlabench.records.files import read_rows
from vlabench.records.verify import load_config, load_manifest, verify_records

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "previous_layout" / "test-zero-none-test-fast"
ARGS = ("model=test-zero", "suite=test-fast", "run.quiet=true")


def _copy(tmp_path: Path) -> Path:
    out = tmp_path / "runs"
    shutil.copytree(FIXTURE.parent, out)
    return out


def test_the_old_run_directory_verifies(tmp_path):
    run = _copy(tmp_path) / FIXTURE.name
    man = load_manifest(run)
    assert man["status"] == "complete"
    assert load_config(run, man)["model"]["name"] == "test-zero"
    assert set(verify_records(run, man)) == {"episodes.csv", "calls.csv"}


def test_the_old_run_directory_reports(tmp_path):
    runs = _copy(tmp_path)
    r = run_cli("report", str(runs), "--format", "md")
    assert r.returncode == 0, r.stderr
    assert "test-zero" in r.stdout and "test-fast" in r.stdout


def test_the_old_run_directory_resumes_as_done_and_grows(tmp_path):
    runs = _copy(tmp_path)
    run = runs / FIXTURE.name
    before = read_rows(run / "episodes.csv", EPISODE_COLUMNS)
    same = run_cli("run", *ARGS, "run.episodes_per_task=2", f"run.output_dir={runs}")
    assert same.returncode == 0, same.stderr
    assert read_rows(run / "episodes.csv", EPISODE_COLUMNS) == before   # nothing re-run
    grown = run_cli("run", *ARGS, "run.episodes_per_task=3", f"run.output_dir={runs}")
    assert grown.returncode == 0, grown.stderr
    after = read_rows(run / "episodes.csv", EPISODE_COLUMNS)
    assert after[:len(before)] == before
    assert sorted((r["task_id"], r["episode"]) for r in after) == [
        (t, e) for t in ("0", "1") for e in ("0", "1", "2")]
    assert run_cli("report", str(runs)).returncode == 0
