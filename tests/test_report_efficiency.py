"""The statistics table shows per-call memory, CUDA time, Hz and pruned tokens when the
records hold memory or CUDA time (calls.csv mem_peak_mb / cuda_ms), and nothing new otherwise."""

from __future__ import annotations

from golden_runs import Task, load, write_run

from vlabench.report.runstable import EFFICIENCY, HEADER, runs_table


def _row(t, method):
    return next(r for r in t.rows if r[1] == method)


def test_runs_table_is_unchanged_without_memory_records(tmp_path):
    write_run(tmp_path, "none", model="openvla", pruner="none", suite="libero_goal", tasks=[Task("t", 8, 10)])
    assert runs_table(load(tmp_path)).header == HEADER


def test_runs_table_shows_memory_cuda_time_hz_and_pruned_tokens(tmp_path):
    mem = {"mem_peak_mb": 15104.0, "mem_kind": "cuda", "cuda_ms": 51.43}
    write_run(tmp_path, "none", model="openvla", pruner="none", suite="libero_goal",
              tasks=[Task("t", 8, 10, latency_ms=250.0, extra=mem)])
    # 40 model calls at 200 ms and 40 steps served at 0 ms: 100 ms per policy call, 10 Hz
    write_run(tmp_path, "sp", model="openvla", pruner="sp-vla", suite="libero_goal",
              tasks=[Task("t", 8, 10, model_calls=40, latency_ms=200.0, skipped=40, tokens_in=256,
                          tokens_kept=200, extra={**mem, "mem_kind": "rss", "mem_peak_mb": 512.0})])
    t = runs_table(load(tmp_path))
    assert t.header == HEADER[:-1] + EFFICIENCY + HEADER[-1:]
    i = t.header.index("Peak memory (GB)")
    assert _row(t, "Vanilla")[i:i + 4] == ["14.750", "51.43", "4.00", "0"]
    sp = _row(t, "SP-VLA")
    assert sp[i:i + 4] == ["0.500", "51.43", "10.00", "56"]
    assert any("rss" in n for n in t.marks[t.rows.index(sp)])
