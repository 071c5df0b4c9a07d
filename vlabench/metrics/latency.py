"""Per-stage latency of one policy call.

GPU: CUDA events recorded at every stage switch, one synchronisation at the end (the public
method repos time with `time.time()` without synchronising, which measures kernel launches,
not kernels). CPU: `time.perf_counter()` at every switch. Nested stages pause the outer one,
so the stages add up to the total, except the stages named in `outside_total`: they are timed
(and pause the stage around them) but left out of "total" (the policies leave out
"preprocess", core/schema.OUTSIDE_TOTAL_STAGES).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager


class StageClock:
    """`with clock.stage("vision"): ...`; `clock.finish()` -> {stage: ms, "total": ms}."""

    def __init__(self, device: str = "cpu", outside_total: tuple[str, ...] = ()):
        self.cuda = str(device).startswith("cuda")
        self.outside_total = frozenset(outside_total)
        self.marks: list[tuple[str | None, object]] = []
        self.current: str | None = None

    def _now(self) -> object:
        if self.cuda:
            import torch

            ev = torch.cuda.Event(enable_timing=True)
            ev.record()
            return ev
        return time.perf_counter()

    def start(self) -> None:
        self.marks = [(None, self._now())]
        self.current = None

    def switch(self, stage: str | None) -> None:
        """From now on, time goes to `stage` (None: to no stage, only the total)."""
        self.marks.append((self.current, self._now()))
        self.current = stage

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        prev = self.current
        self.switch(name)
        try:
            yield
        finally:
            self.switch(prev)

    def finish(self) -> dict[str, float]:
        """Stop and return milliseconds per stage plus "total" (first mark to now, less the
        stages outside the total)."""
        self.marks.append((self.current, self._now()))
        if self.cuda:
            import torch

            torch.cuda.synchronize()

            def ms(a: object, b: object) -> float:
                return float(a.elapsed_time(b))  # type: ignore[attr-defined]
        else:
            def ms(a: object, b: object) -> float:
                return (float(b) - float(a)) * 1000.0  # type: ignore[arg-type]
        out: dict[str, float] = {}
        for (_, t0), (stage, t1) in zip(self.marks, self.marks[1:]):
            if stage is not None:
                out[stage] = out.get(stage, 0.0) + ms(t0, t1)
        out["total"] = ms(self.marks[0][1], self.marks[-1][1]) - sum(
            out.get(s, 0.0) for s in self.outside_total)
        return out
