"""GPU kernel time of one call: the sum of the durations of the kernels (and device copies) it
launched, from torch.profiler with CUDA activity only.

This is the busy time of the GPU, which VLA-Pruner Table 5's "CUDA Time" most likely is
(51.43 ms for OpenVLA, whose latency in its Table 1 is 236.41 ms: an autoregressive decode
leaves the GPU idle between kernel launches). The CUDA-event span in calls.csv `cuda_ms`
(metrics/memory.py) counts those idle gaps. The profiler slows the call it watches, so
`vlabench bench` runs it on one extra call (like `flops_counted_one_call`), never on a timed one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _self_device_us(event: Any) -> float:
    """Self device time (µs) of a profiler key average, across torch versions."""
    for name in ("self_device_time_total", "self_cuda_time_total"):
        v = getattr(event, name, None)
        if v is not None:
            return float(v)
    return 0.0


def kernel_ms(fn: Callable[[], T]) -> tuple[T, float]:
    """(fn(), milliseconds of GPU kernel time fn caused)."""
    import torch
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        out = fn()
        torch.cuda.synchronize()
    return out, sum(_self_device_us(e) for e in prof.key_averages()) / 1000.0
