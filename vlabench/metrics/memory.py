"""Peak memory and GPU time of one policy call (calls.csv `mem_peak_mb`, `mem_kind`, `cuda_ms`).

`CallMeter(device)`: `start()` right before the call's timed region, `stop()` right after it;
both work outside the StageClock region, so the latency stages are not touched.

CUDA (`mem_kind` "cuda"): `torch.cuda.reset_peak_memory_stats(device)` before the call and
`torch.cuda.max_memory_allocated(device)` after, in MiB. That is the ABSOLUTE peak of memory
allocated by tensors on the device during the call, weights and KV included (VLA-Pruner
Table 5 "Max Memory (GB)": 14.75 GB for bf16 OpenVLA-7B, whose weights alone are ~14 GB, so
the paper's figure is the absolute peak). The caching allocator's reserved-but-free blocks are
not counted. `cuda_ms`: a CUDA event recorded at `start()` and one at `stop()`,
`elapsed_time` after synchronising on the end event: the span of the GPU timeline the call
covers. Note: VLA-Pruner Table 5 reports 51.43 ms "CUDA time" for OpenVLA whose latency in its
Table 1 is 236.41 ms, so the paper's figure is likely the sum of kernel times (profiler), not
this span; on a launch-bound call (OpenVLA's autoregressive decode) the span is close to the
wall latency, on a compute-bound one close to the kernel time.

CPU (`mem_kind` "rss"): the peak increase of the process's resident set during the call, in
MiB: Linux's high-water mark is reset to the current RSS at `start()` (write "5" to
/proc/self/clear_refs, Linux >= 4.0) and read at `stop()` (VmHWM in /proc/self/status), minus
the RSS at `start()`. Exact at page granularity, but process-wide: pages touched by any thread
count, pages that were already resident (a reused allocator block) do not, and memory that is
allocated but never written (torch.empty) is not resident. Where clear_refs cannot be written
a thread samples /proc/self/statm every `SAMPLE_S` instead (allocations that live shorter than
that can be missed; the thread costs the call some GIL time). Elsewhere (no /proc): None.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

MIB = 1024.0 * 1024.0
SAMPLE_S = 0.002
PROC = Path("/proc/self")
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _status_kib(field: str, proc: Path = PROC) -> int | None:
    """A `kB` field of /proc/self/status (VmRSS, VmHWM), or None."""
    try:
        m = re.search(rf"^{field}:\s+(\d+) kB", (proc / "status").read_text(), re.M)
    except OSError:
        return None
    return int(m.group(1)) if m else None


def _statm_rss(proc: Path = PROC) -> int | None:
    """Resident bytes from /proc/self/statm, or None."""
    try:
        return int((proc / "statm").read_text().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return None


class RssPeak:
    """Peak RSS increase over an interval (see the module docstring): `start()`, `stop()` -> MiB."""

    def __init__(self, proc: Path = PROC, sample_s: float = SAMPLE_S):
        self.proc, self.sample_s = proc, sample_s
        self.method: str | None = None      # "hwm", "sampled" or None (unavailable)
        self._base = 0
        self._peak = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _reset_hwm(self) -> bool:
        try:
            with open(self.proc / "clear_refs", "w") as f:
                f.write("5")
            return True
        except OSError:
            return False

    def start(self) -> None:
        if self.method in (None, "hwm") and self._reset_hwm():
            rss = _status_kib("VmRSS", self.proc)
            if rss is not None:
                self.method, self._base = "hwm", rss * 1024
                return
        base = _statm_rss(self.proc)
        if base is None:
            self.method = "none"
            return
        self.method, self._base, self._peak = "sampled", base, base
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(self.sample_s):
            rss = _statm_rss(self.proc)
            if rss is not None and rss > self._peak:
                self._peak = rss

    def stop(self) -> float | None:
        if self.method == "hwm":
            hwm = _status_kib("VmHWM", self.proc)
            return None if hwm is None else max(0, hwm * 1024 - self._base) / MIB
        if self.method == "sampled" and self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            last = _statm_rss(self.proc) or 0
            return max(0, max(self._peak, last) - self._base) / MIB
        return None


class CallMeter:
    """Peak memory and GPU time of one call: `start()`, `stop()` -> (mem_peak_mb, mem_kind,
    cuda_ms). `device` "meta" meters nothing."""

    def __init__(self, device: str):
        self.device = str(device)
        self.cuda = self.device.startswith("cuda")
        self.off = self.device == "meta"
        self.rss = RssPeak()
        self._ev: object | None = None

    def start(self) -> None:
        if self.off:
            return
        if self.cuda:
            import torch

            torch.cuda.reset_peak_memory_stats(self.device)
            self._ev = torch.cuda.Event(enable_timing=True)
            self._ev.record()  # type: ignore[attr-defined]
        else:
            self.rss.start()

    def stop(self) -> tuple[float | None, str | None, float | None]:
        if self.off:
            return None, None, None
        if self.cuda:
            import torch

            end = torch.cuda.Event(enable_timing=True)
            end.record()
            end.synchronize()
            ms = float(self._ev.elapsed_time(end))  # type: ignore[attr-defined]
            return torch.cuda.max_memory_allocated(self.device) / MIB, "cuda", ms
        mb = self.rss.stop()
        return mb, ("rss" if mb is not None else None), None
