"""summary.csv's efficiency columns on a hand-worked frame: calls_hz = policy calls per second
of policy time (SP-VLA's Frequency = 1 / per-step latency), pruned tokens, memory, CUDA time."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vlabench.metrics.summary import efficiency, summarize


def frame(rows: list[tuple]) -> pd.DataFrame:
    cols = ["task_id", "source", "warmup", "lat_total_ms", "tokens_in", "tokens_kept",
            "mem_peak_mb", "mem_kind", "cuda_ms"]
    df = pd.DataFrame(rows, columns=cols)
    df["flops"] = 1e12
    return df


# task 0: a warm-up call (excluded from Hz / memory / CUDA time), two model calls of 200 ms and
# two steps served by the extrapolator (one records 0 ms, one records nothing: 0 ms);
# task 1: one model call of 250 ms
CALLS = frame([
    (0, "model", 1, 900.0, 256, 256, 9000.0, "cuda", 800.0),
    (0, "model", 0, 200.0, 256, 200, 14000.0, "cuda", 50.0),
    (0, "extrapolator", 0, 0.0, None, None, None, None, None),
    (0, "model", 0, 200.0, 256, 156, 15104.0, "cuda", 52.0),
    (0, "extrapolator", 0, None, None, None, None, None, None),
    (1, "model", 0, 250.0, 256, 256, 14500.0, "cuda", 60.0),
])


def test_task_zero_by_hand():
    e = efficiency(CALLS[CALLS["task_id"] == 0])
    # 4 policy calls (warm-up excluded) in 200 + 0 + 200 + 0 ms: 10 calls per second
    assert e["calls_hz"] == pytest.approx(10.0)
    # model calls, warm-up included: (0 + 56 + 100) / 3
    assert e["tokens_pruned_mean"] == pytest.approx(52.0)
    assert e["mem_peak_mb_max"] == 15104.0 and e["mem_kind"] == "cuda"
    assert e["cuda_ms_mean"] == pytest.approx(51.0)


def test_suite_row_pools_the_calls():
    eps = pd.DataFrame({"suite": "s", "task_id": [0, 1], "task_name": ["a", "b"], "episode": [0, 0],
                        "success": [1, 0], "error_type": ["", ""]})
    t = summarize(eps, CALLS)
    suite = t[t["level"] == "suite"].iloc[0]
    assert suite["calls_hz"] == pytest.approx(1000 * 5 / 650)     # 5 steps in 650 ms
    assert suite["cuda_ms_mean"] == pytest.approx(54.0)
    assert t[t["level"] == "task"]["calls_hz"].tolist() == pytest.approx([10.0, 4.0])


def test_paper_pairs_hz_is_one_over_latency():
    # SP-VLA Table 6, OpenVLA on Goal: 0.32 s per step -> 3.13 Hz (the paper rounds the latency)
    calls = frame([(0, "model", 0, 320.0, 256, 256, None, None, None)] * 3)
    assert efficiency(calls)["calls_hz"] == pytest.approx(3.125)


def test_records_without_the_columns_give_empty_cells():
    calls = CALLS.drop(columns=["mem_peak_mb", "mem_kind", "cuda_ms"])
    e = efficiency(calls)
    assert np.isnan(e["mem_peak_mb_max"]) and np.isnan(e["cuda_ms_mean"]) and e["mem_kind"] == ""
    assert e["calls_hz"] == pytest.approx(1000 * 5 / 650)


def test_mixed_kinds_are_named_both():
    calls = CALLS.copy()
    calls.loc[5, "mem_kind"] = "rss"
    assert efficiency(calls)["mem_kind"] == "cuda/rss"
