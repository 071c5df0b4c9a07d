"""calls.csv's memory / CUDA-time columns (mem_peak_mb, mem_kind, cuda_ms), its preprocessing
stage (lat_preprocess_ms) and summary.csv's efficiency columns: they round-trip, and run
directories written before them (calls.csv with or without queue_wait_ms, with or without the
memory columns, summary.csv without the new columns) still read, resume in their own layout and
load in the report."""

from __future__ import annotations

import pytest
from test_env_workers_records import episode

from vlabench.core.contracts import CallStats
from vlabench.core.schema import (
    CALL_COLUMNS,
    EPISODE_COLUMNS,
    MEASURED_CALL_COLUMNS,
    SUMMARY_COLUMNS,
)
from vlabench.metrics.summary import load_run_frames, summarize
from vlabench.records.files import RecordsError, RunFiles, call_row, format_rows, read_rows

NEW = ["mem_peak_mb", "mem_kind", "cuda_ms"]
PREPROCESS = ["lat_preprocess_ms"]
BEFORE_PREPROCESS = CALL_COLUMNS[:CALL_COLUMNS.index("lat_preprocess_ms")]   # with the memory columns
BEFORE_MEMORY = CALL_COLUMNS[:CALL_COLUMNS.index("mem_peak_mb")]              # with queue_wait_ms
BEFORE_QUEUE = CALL_COLUMNS[:CALL_COLUMNS.index("queue_wait_ms")]             # the first layout
SUMMARY_NEW = ["calls_hz", "tokens_pruned_mean", "mem_peak_mb_max", "mem_kind", "cuda_ms_mean"]


def calls(task: int, ep: int, n: int) -> list[dict]:
    s = CallStats(latency_ms={"total": 5.0, "preprocess": 2.5}, tokens_in=8, tokens_kept=6, mem_peak_mb=512.5,
                  mem_kind="rss", cuda_ms=None)
    return [call_row(task, ep, i, i, s, 1.5) for i in range(n)]


def test_the_new_columns_come_last_and_round_trip(tmp_path):
    later = ["sim_latency_ms", "delay_steps", "expired_actions", "batch"]   # issues 26 and 22
    assert CALL_COLUMNS[-4:] == later and CALL_COLUMNS[-8:-4] == NEW + PREPROCESS
    assert CALL_COLUMNS[:-8] == BEFORE_MEMORY
    assert SUMMARY_COLUMNS[-5:] == SUMMARY_NEW
    cuda = call_row(0, 0, 0, 0, CallStats(latency_ms={"total": 60.0}, mem_peak_mb=15104.0,
                                          mem_kind="cuda", cuda_ms=51.43))
    (tmp_path / "calls.csv").write_text(format_rows(CALL_COLUMNS, calls(0, 0, 1) + [cuda], header=True))
    rows = read_rows(tmp_path / "calls.csv", CALL_COLUMNS)
    assert [(r["mem_peak_mb"], r["mem_kind"], r["cuda_ms"], r["lat_preprocess_ms"]) for r in rows] == [
        ("512.5", "rss", "", "2.5"), ("15104.0", "cuda", "51.43", "")]
    blank = call_row(0, 0, 0, 0, CallStats())
    assert blank["mem_peak_mb"] is None and blank["mem_kind"] is None and blank["cuda_ms"] is None
    assert blank["lat_preprocess_ms"] is None


def old_run(d, columns: list[str]) -> None:
    """A run directory in an older calls.csv layout: one episode of two calls."""
    (d / "episodes.csv").write_text(format_rows(EPISODE_COLUMNS, [episode(0, 0, 2)], header=True))
    old = [{k: v for k, v in c.items() if k in columns} for c in calls(0, 0, 2)]
    (d / "calls.csv").write_text(format_rows(columns, old, header=True))


@pytest.mark.parametrize("layout", [BEFORE_QUEUE, BEFORE_MEMORY], ids=["before-queue", "before-memory"])
def test_an_older_calls_csv_reads_resumes_in_its_layout_and_summarises(tmp_path, layout):
    old_run(tmp_path, layout)
    rows = read_rows(tmp_path / "calls.csv", CALL_COLUMNS)
    assert [r["mem_peak_mb"] for r in rows] == ["", ""] and rows[1]["lat_total_ms"] == "5.0"
    files = RunFiles(tmp_path)
    assert files.open() == {(0, 0)}
    files.append_episode(episode(0, 1, 3), calls(0, 1, 3))       # the new cells are dropped
    lines = (tmp_path / "calls.csv").read_text().splitlines()
    assert lines[0].split(",") == layout and len(lines) == 6
    assert all(len(line.split(",")) == len(layout) for line in lines)
    assert RunFiles(tmp_path).open() == {(0, 0), (0, 1)}
    eps, frame = load_run_frames(tmp_path)
    table = summarize(eps, frame)
    suite = table[table["level"] == "suite"].iloc[0]
    assert suite["calls_hz"] == pytest.approx(1000.0 / 6.5)     # 2 of 5 ms, 3 of 5 + 2.5 (folded)
    assert suite["tokens_pruned_mean"] == pytest.approx(2.0)
    assert suite["mem_peak_mb_max"] != suite["mem_peak_mb_max"] and suite["mem_kind"] == ""


def test_a_calls_csv_before_lat_preprocess_ms_reads_and_resumes_in_its_layout(tmp_path):
    """Such a run timed the preprocessing inside lat_vision_ms / lat_total_ms (core/schema.py)."""
    old_run(tmp_path, BEFORE_PREPROCESS)
    rows = read_rows(tmp_path / "calls.csv", CALL_COLUMNS)
    assert [r["lat_preprocess_ms"] for r in rows] == ["", ""] and rows[0]["mem_peak_mb"] == "512.5"
    files = RunFiles(tmp_path)
    assert files.open() == {(0, 0)}
    files.append_episode(episode(0, 1, 3), calls(0, 1, 3))       # the new cell is dropped ...
    lines = (tmp_path / "calls.csv").read_text().splitlines()
    assert lines[0].split(",") == BEFORE_PREPROCESS and len(lines) == 6
    assert all(len(line.split(",")) == len(BEFORE_PREPROCESS) for line in lines)
    assert RunFiles(tmp_path).open() == {(0, 0), (0, 1)}
    # ... and folded back into the total, the meaning the run's older rows have
    rows = read_rows(tmp_path / "calls.csv", CALL_COLUMNS)
    assert [r["lat_total_ms"] for r in rows] == ["5.0", "5.0", "7.5", "7.5", "7.5"]
    eps, frame = load_run_frames(tmp_path)
    suite = summarize(eps, frame).query("level == 'suite'").iloc[0]
    assert suite["calls_hz"] == pytest.approx(1000.0 / 6.5)     # 2 calls of 5 ms, 3 of 7.5 ms


def test_the_report_loads_an_older_run_and_an_older_summary(tmp_path):
    from vlabench.report.runs import _check_summary, _load_calls

    old_run(tmp_path, BEFORE_QUEUE)
    frame = _load_calls(tmp_path / "calls.csv", (tmp_path / "calls.csv").read_bytes())
    assert len(frame) == 2 and list(frame["mem_peak_mb"]) == ["", ""]
    eps, c = load_run_frames(tmp_path)
    old = [c for c in SUMMARY_COLUMNS if c not in SUMMARY_NEW]
    summary = summarize(eps, c)
    (tmp_path / "summary.csv").write_text(summary[old].to_csv(index=False))
    assert read_rows(tmp_path / "summary.csv", SUMMARY_COLUMNS)[-1]["calls_hz"] == ""
    _check_summary(tmp_path, eps)
    (tmp_path / "summary.csv").write_text(summary.to_csv(index=False))
    assert float(read_rows(tmp_path / "summary.csv", SUMMARY_COLUMNS)[-1]["calls_hz"]) == pytest.approx(200.0)


def test_other_header_changes_are_still_refused(tmp_path):
    reordered = BEFORE_MEMORY + ["cuda_ms", "mem_peak_mb", "mem_kind"]
    (tmp_path / "calls.csv").write_text(",".join(reordered) + "\n")
    with pytest.raises(RecordsError, match="expected"):
        read_rows(tmp_path / "calls.csv", CALL_COLUMNS)
    (tmp_path / "calls.csv").write_text(",".join(CALL_COLUMNS + ["extra"]) + "\n")
    with pytest.raises(RecordsError, match="expected"):
        read_rows(tmp_path / "calls.csv", CALL_COLUMNS)


def test_memory_and_gpu_time_are_measurements_like_latency():
    """Tests comparing two runs of one config leave these cells out (they measure the machine)."""
    assert {"mem_peak_mb", "cuda_ms", "lat_total_ms", "lat_preprocess_ms", "queue_wait_ms"} <= MEASURED_CALL_COLUMNS
    assert MEASURED_CALL_COLUMNS <= set(CALL_COLUMNS) and "mem_kind" not in MEASURED_CALL_COLUMNS
