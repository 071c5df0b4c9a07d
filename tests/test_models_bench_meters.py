"""`vlabench bench` summarises and prints each model call's peak memory and CUDA time."""

from __future__ import annotations

from rich.console import Console

from vlabench.commands.bench import _meter_summary
from vlabench.commands.bench_table import meter_table, print_result
from vlabench.core.contracts import CallStats


def test_meter_summary_of_model_calls():
    stats = [CallStats(mem_peak_mb=m, mem_kind="cuda", cuda_ms=c)
             for m, c in ((14000.0, 50.0), (15104.0, 52.0), (14500.0, 60.0))]
    s = _meter_summary(stats)
    assert s["mem_peak_mb"]["max"] == 15104.0 and s["mem_peak_mb"]["p50"] == 14500.0
    assert s["mem_peak_mb"]["kind"] == "cuda" and s["mem_peak_mb"]["n"] == 3
    assert s["cuda_ms"]["p50"] == 52.0 and s["cuda_ms"]["max"] == 60.0
    assert _meter_summary([CallStats()]) == {}


def _result(**extra):
    return {"model": "openvla", "pruner": "fastv", "device": "cuda:0", "parameters": 7.5e9,
            "dtype": "bfloat16", "flops_by_stage": {"llm": 1e12}, "flops_per_call": 1e12,
            "flops_last_call": 1e12, **extra}


def test_the_table_shows_memory_and_cuda_time_beside_the_baseline():
    mem = {"p50": 14500.0, "p95": 15000.0, "max": 15104.0, "mean": 14500.0, "n": 3, "kind": "cuda"}
    cuda = {"p50": 29.0, "p95": 30.0, "max": 31.0, "mean": 29.0, "n": 3}
    r = _result(mem_peak_mb=mem, cuda_ms=cuda,
                baseline={"mem_peak_mb": {**mem, "p50": 15104.0}, "cuda_ms": {**cuda, "p50": 51.43}})
    con = Console(width=160, record=True)
    con.print(meter_table(r))
    text = con.export_text()
    assert "peak MiB (cuda)" in text and "15104.0" in text and "51.4" in text and "29.0" in text
    assert meter_table(_result()) is None


def test_print_result_notes_what_was_measured():
    con = Console(width=160, record=True)
    mem = {"p50": 6.0, "p95": 8.0, "max": 9.0, "mean": 6.5, "n": 4, "kind": "rss"}
    print_result(_result(mem_peak_mb=mem), con)
    text = con.export_text()
    assert "peak MiB (rss)" in text and "resident set" in text and "CUDA time" not in text


def test_kernel_time_sums_the_profiled_self_device_times(monkeypatch):
    import torch

    from vlabench.metrics import kernels

    class Avg:
        def __init__(self, us):
            self.self_device_time_total = us

    class Prof:
        def __enter__(self):
            return self

        def __exit__(self, *a):
            return False

        def key_averages(self):
            return [Avg(30000.0), Avg(21430.0), Avg(0.0)]

    seen = {}
    monkeypatch.setattr(torch.profiler, "profile", lambda activities: seen.setdefault("a", activities) and Prof())
    monkeypatch.setattr(torch.cuda, "synchronize", lambda: seen.setdefault("sync", True))
    out, ms = kernels.kernel_ms(lambda: "actions")
    assert out == "actions" and ms == 51.43 and seen["sync"]
    assert seen["a"] == [torch.profiler.ProfilerActivity.CUDA]


def test_the_table_shows_the_profiled_kernel_time():
    r = _result(cuda_kernel_ms_one_call=25.58, baseline={"cuda_kernel_ms_one_call": 51.43})
    con = Console(width=160, record=True)
    con.print(meter_table(r))
    text = con.export_text()
    assert "kernel time" in text and "25.6" in text and "51.4" in text
