"""Records: crash-safe appends, resume bookkeeping, header validation, summaries."""

from __future__ import annotations

import math

import pytest

from vlabench.core.contracts import CallStats
from vlabench.core.schema import CALL_COLUMNS, EPISODE_COLUMNS
from vlabench.metrics.stats import wilson_interval
from vlabench.metrics.summary import load_run_frames, summarize
from vlabench.records.files import RecordsError, RunFiles, call_row, format_rows, read_rows


def episode(task: int, ep: int, success: bool, **kw) -> dict:
    row = {c: "" for c in EPISODE_COLUMNS}
    row.update(run_id="r", model="m", pruner="none", suite="s", task_id=task, task_name=f"t{task}",
               episode=ep, init_state=ep, seed=7, success=success, steps=3, policy_calls=2,
               model_calls=2, wall_s=0.1, sim_s=0.05, policy_s=0.01)
    row.update(kw)
    return row


def calls_for(task: int, ep: int, n: int = 2) -> list[dict]:
    return [call_row(task, ep, i, i, CallStats(latency_ms={"total": 10.0 + i}, tokens_in=512,
                                                 tokens_kept=256, flops=1e9)) for i in range(n)]


def test_uncommitted_call_rows_are_dropped_on_reopen(tmp_path):
    files = RunFiles(tmp_path)
    assert files.open() == set()
    files.append_episode(episode(0, 0, True), calls_for(0, 0))
    # a kill between the calls append and the episode append leaves orphan call rows
    from vlabench.records.files import append_block
    append_block(files.calls_csv, format_rows(files.call_columns, calls_for(0, 1), header=False))
    assert len(read_rows(files.calls_csv, CALL_COLUMNS)) == 4
    done = RunFiles(tmp_path).open()
    assert done == {(0, 0)}
    rows = read_rows(files.calls_csv, CALL_COLUMNS)
    assert [(r["task_id"], r["episode"]) for r in rows] == [("0", "0"), ("0", "0")]


def test_truncated_csv_is_rejected_with_line_number(tmp_path):
    files = RunFiles(tmp_path)
    files.open()
    files.append_episode(episode(0, 0, True), [])
    text = files.episodes_csv.read_text()
    files.episodes_csv.write_text(text[: len(text) - 30])
    with pytest.raises(RecordsError, match=r"episodes.csv:2: expected"):
        read_rows(files.episodes_csv, EPISODE_COLUMNS)


def test_foreign_header_is_rejected(tmp_path):
    (tmp_path / "episodes.csv").write_text("a,b\n1,2\n")
    with pytest.raises(RecordsError, match="expected"):
        read_rows(tmp_path / "episodes.csv", EPISODE_COLUMNS)


def test_unknown_fields_and_latency_stages_are_errors():
    with pytest.raises(ValueError, match="unknown record fields"):
        format_rows(EPISODE_COLUMNS, [{"nope": 1}], header=False)
    with pytest.raises(ValueError, match="unknown latency stages"):
        call_row(0, 0, 0, 0, CallStats(latency_ms={"decode": 1.0}))


def test_summary_per_task_and_suite_with_wilson_interval(tmp_path):
    files = RunFiles(tmp_path)
    files.open()
    for ep in range(4):
        files.append_episode(episode(0, ep, ep < 3), calls_for(0, ep))
    for ep in range(4):
        files.append_episode(episode(1, ep, ep == 0, error_type="RuntimeError" if ep == 3 else "",
                                     error="boom" if ep == 3 else ""), calls_for(1, ep))
    table = summarize(*load_run_frames(tmp_path))
    assert list(table["level"]) == ["task", "task", "suite"]
    suite = table.iloc[2]
    assert (suite["episodes"], suite["successes"], suite["errors"]) == (8, 4, 1)
    lo, hi = wilson_interval(4, 8)
    assert suite["sr_ci_low"] == pytest.approx(lo) and suite["sr_ci_high"] == pytest.approx(hi)
    assert suite["latency_mean_ms"] == pytest.approx(10.5)
    assert suite["tokens_kept_mean"] == 256 and suite["flops_mean"] == 1e9
    assert table.iloc[0]["success_rate"] == 0.75


def test_warmup_and_extrapolated_calls_do_not_count_as_model_latency(tmp_path):
    files = RunFiles(tmp_path)
    files.open()
    rows = [call_row(0, 0, 0, 0, CallStats(latency_ms={"total": 900.0}, warmup=True)),
            call_row(0, 0, 1, 1, CallStats(latency_ms={"total": 20.0})),
            call_row(0, 0, 2, 2, CallStats(latency_ms={"total": 0.1}, source="extrapolator"))]
    files.append_episode(episode(0, 0, True), rows)
    table = summarize(*load_run_frames(tmp_path))
    assert table.iloc[1]["latency_mean_ms"] == 20.0
    assert table.iloc[1]["model_calls"] == 2


@pytest.mark.parametrize("k,n", [(0, 10), (10, 10), (3, 7), (45, 50), (1, 1)])
def test_wilson_interval_matches_reference_formula(k, n):
    from scipy.stats import binomtest

    lo, hi = wilson_interval(k, n)
    ci = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert lo == pytest.approx(ci.low, abs=1e-12) and hi == pytest.approx(ci.high, abs=1e-12)


def test_wilson_interval_of_nothing_is_nan():
    assert all(math.isnan(x) for x in wilson_interval(0, 0))
