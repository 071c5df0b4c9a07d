"""calls.csv's `queue_wait_ms` column (run.env_workers): run directories written before it was
added still read, resume in their own layout and load in the report."""

from __future__ import annotations

import pytest

from vlabench.core.contracts import CallStats
from vlabench.core.schema import CALL_COLUMNS, EPISODE_COLUMNS
from vlabench.metrics.summary import load_run_frames
from vlabench.records.files import RecordsError, RunFiles, call_row, format_rows, read_rows

OLD_CALLS = CALL_COLUMNS[:CALL_COLUMNS.index("queue_wait_ms")]   # the layout before queue_wait_ms


def episode(task: int, ep: int, calls: int) -> dict:
    row = {c: "" for c in EPISODE_COLUMNS}
    row.update(run_id="r", model="m", pruner="none", suite="s", task_id=task, task_name="t",
               episode=ep, init_state=ep, seed=7, success=True, steps=3, policy_calls=calls,
               model_calls=calls, wall_s=0.1, sim_s=0.05, policy_s=0.01)
    return row


def calls(task: int, ep: int, n: int, wait: float | None = None) -> list[dict]:
    return [call_row(task, ep, i, i, CallStats(latency_ms={"total": 5.0}, tokens_in=8), wait)
            for i in range(n)]


def old_run(d) -> None:
    """A run directory as written before queue_wait_ms existed: one episode of two calls."""
    (d / "episodes.csv").write_text(format_rows(EPISODE_COLUMNS, [episode(0, 0, 2)], header=True))
    old = [{k: v for k, v in c.items() if k in OLD_CALLS} for c in calls(0, 0, 2)]
    (d / "calls.csv").write_text(format_rows(OLD_CALLS, old, header=True))


def test_the_new_column_follows_the_old_ones_and_is_filled_from_the_call_row():
    assert CALL_COLUMNS[len(OLD_CALLS)] == "queue_wait_ms" and CALL_COLUMNS[:len(OLD_CALLS)] == OLD_CALLS
    assert calls(0, 0, 1, 12.5)[0]["queue_wait_ms"] == 12.5
    assert calls(0, 0, 1)[0]["queue_wait_ms"] is None


def test_an_older_calls_csv_reads_with_the_new_cells_empty(tmp_path):
    old_run(tmp_path)
    rows = read_rows(tmp_path / "calls.csv", CALL_COLUMNS)
    assert len(rows) == 2 and [r["queue_wait_ms"] for r in rows] == ["", ""]
    assert rows[0]["lat_total_ms"] == "5.0" and rows[1]["call"] == "1"


def test_a_resumed_older_run_appends_in_its_own_layout_and_loads_in_the_report(tmp_path):
    old_run(tmp_path)
    files = RunFiles(tmp_path)
    assert files.open() == {(0, 0)}
    files.append_episode(episode(0, 1, 3), calls(0, 1, 3, wait=4.0))   # the new cell is dropped
    lines = (tmp_path / "calls.csv").read_text().splitlines()
    assert lines[0].split(",") == OLD_CALLS and len(lines) == 6
    assert all(len(line.split(",")) == len(OLD_CALLS) for line in lines)
    assert RunFiles(tmp_path).open() == {(0, 0), (0, 1)}
    eps, frame = load_run_frames(tmp_path)
    assert len(eps) == 2 and len(frame) == 5


def test_a_new_run_writes_the_wait(tmp_path):
    files = RunFiles(tmp_path)
    files.open()
    files.append_episode(episode(0, 0, 1), calls(0, 0, 1, wait=4.0))
    assert [r["queue_wait_ms"] for r in read_rows(tmp_path / "calls.csv", CALL_COLUMNS)] == ["4.0"]


def test_other_header_changes_are_still_refused(tmp_path):
    bad = [c for c in OLD_CALLS if c != "mode"]
    (tmp_path / "calls.csv").write_text(",".join(bad) + "\n")
    with pytest.raises(RecordsError, match="expected"):
        read_rows(tmp_path / "calls.csv", CALL_COLUMNS)
    swapped = OLD_CALLS[1:2] + OLD_CALLS[:1] + OLD_CALLS[2:]
    (tmp_path / "calls.csv").write_text(",".join(swapped) + "\n")
    with pytest.raises(RecordsError, match="expected"):
        read_rows(tmp_path / "calls.csv", CALL_COLUMNS)
