"""`vlabench bench bench.preprocess=true`: the camera-frame preprocessing alone, before and after.

The LIBERO image pipeline of OpenVLA / OpenVLA-OFT (`models.preprocess.policy_image`: TF's JPEG
round trip, lanczos3 resize to 224, 90% centre crop resized back) in two implementations that
give the same pixels (checked on every frame here): "before", the numpy reference kernels
(`tf_image.reference_*`, the pipeline until issue 22), and "after", the compiled kernels that
`policy_image` runs. Each frame goes through both, interleaved in ABBA order in one process
(frame i: before then after for even i, after then before for odd i) so that machine drift
cancels, stage by stage, timed in thread CPU time (`time.thread_time`: the calling thread's own
work, which the other processes of a loaded machine do not inflate) and in wall time.

Per frame is the sum of the three stages; per call, the frames one model call prepares: 2 for
OpenVLA-OFT (agentview + wrist; 1 for OpenVLA), and 16 for SpecPrune-VLA as vlabench runs it
today (every frame of the 8-step open-loop chunk, through `observe`): 16 x the per-frame figure.
The frames are `synthetic_episode`'s (bench.calls observations x 2 cameras, 256x256); the load
average is recorded beside the figures.
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np

STAGES = ("jpeg", "resize", "crop")
CALLS = {"OFT call (2 frames)": 2, "SpecPrune call (16 frames)": 16}   # frames one model call prepares
ORDER_NOTE = ("interleaved ABBA per frame (before, after for even frames; after, before for odd), "
              "one process, one thread")


def pipelines() -> dict[str, tuple[Any, Any, Any]]:
    """name -> (jpeg round trip, resize to 224, centre crop) of the LIBERO pipeline."""
    from vlabench.models import tf_image as T

    return {"before": (T.jpeg_round_trip, T.reference_resize_uint8, T.reference_center_crop_uint8),
            "after": (T.jpeg_round_trip, T.resize_uint8, T.center_crop_uint8)}


def _run(stages: tuple[Any, Any, Any], img: np.ndarray) -> tuple[np.ndarray, dict[str, tuple[float, float]]]:
    """One frame through the three stages: (output, {stage: (thread ms, wall ms)})."""
    jpeg, resize, crop = stages
    times = {}
    x = img
    for name, fn in zip(STAGES, (jpeg, lambda a: resize(a, 224), lambda a: crop(a, 0.9))):
        c0, w0 = time.thread_time(), time.perf_counter()
        x = fn(x)
        times[name] = ((time.thread_time() - c0) * 1e3, (time.perf_counter() - w0) * 1e3)
    return x, times


def _pct(v: list[float]) -> dict[str, float]:
    a = np.asarray(v, dtype=np.float64)
    return {"p50": float(np.median(a)), "mean": float(a.mean()), "p95": float(np.percentile(a, 95)),
            "n": int(a.size)}


def time_frames(frames: list[np.ndarray]) -> dict[str, Any]:
    """Time `frames` through both pipelines, interleaved; per stage and per frame (thread CPU and
    wall ms), the per-frame speedup (median of before/after over the frames) and per call."""
    impl = pipelines()
    for name in impl:                                   # compile / warm both, untimed
        _run(impl[name], frames[0])
    rec: dict[str, dict[str, list[float]]] = {n: {} for n in impl}
    for i, img in enumerate(frames):
        outs = {}
        for name in (("before", "after") if i % 2 == 0 else ("after", "before")):
            outs[name], t = _run(impl[name], img)
            for stage, (cpu, wall) in t.items():
                rec[name].setdefault(f"{stage}_thread_ms", []).append(cpu)
                rec[name].setdefault(f"{stage}_wall_ms", []).append(wall)
            rec[name].setdefault("frame_thread_ms", []).append(sum(c for c, _ in t.values()))
            rec[name].setdefault("frame_wall_ms", []).append(sum(w for _, w in t.values()))
        if not np.array_equal(outs["before"], outs["after"]):
            raise AssertionError(f"frame {i}: the kernels and the numpy reference disagree")
    out: dict[str, Any] = {n: {k: _pct(v) for k, v in r.items()} for n, r in rec.items()}
    ratio = np.asarray(rec["before"]["frame_thread_ms"]) / np.asarray(rec["after"]["frame_thread_ms"])
    out["speedup_per_frame_thread"] = float(np.median(ratio))
    out["per_call_thread_ms"] = {
        label: {n: n_frames * out[n]["frame_thread_ms"]["mean"] for n in impl}
        for label, n_frames in CALLS.items()}
    return out


def bench_preprocess(cfg: Any) -> dict[str, Any]:
    """`bench.calls` synthetic observations' frames through both pipelines; print and return."""
    from vlabench.commands.bench_status import write_out
    from vlabench.models.synthetic import synthetic_episode
    from vlabench.records.machine import cpu_model

    b = cfg.get("bench") or {}
    obs = synthetic_episode(int(b.get("calls", 20)), seed=int(b.get("seed", 0)))
    frames = [o.images[c] for o in obs for c in ("agentview", "wrist")]
    load_before = os.getloadavg()
    res = time_frames(frames)
    res.update(frames=len(frames), frame_shape=list(frames[0].shape), order=ORDER_NOTE,
               cpu=cpu_model(), cpu_cores=os.cpu_count(),
               load_average={"before": list(load_before), "after": list(os.getloadavg())})
    write_out(b.get("out"), res)
    print_preprocess(res)
    return res


def print_preprocess(r: dict[str, Any], console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    con = console or Console()
    t = Table(title=f"Image preprocessing of {r['frames']} frames {tuple(r['frame_shape'])}: "
                    "thread CPU ms, mean (p50)")
    for c in ("", "before", "after", "before/after"):
        t.add_column(c, justify="left" if not c else "right", no_wrap=True)
    for key, label in [(f"{s}_", s) for s in STAGES] + [("frame_", "per frame")]:
        bq, aq = r["before"][key + "thread_ms"], r["after"][key + "thread_ms"]
        t.add_row(label, f"{bq['mean']:.2f} ({bq['p50']:.2f})", f"{aq['mean']:.2f} ({aq['p50']:.2f})",
                  f"{bq['mean'] / aq['mean']:.2f}×")
    for label, v in r["per_call_thread_ms"].items():
        t.add_row(label, f"{v['before']:.2f}", f"{v['after']:.2f}", f"{v['before'] / v['after']:.2f}×")
    con.print(t)
    la = r["load_average"]
    wall = r["after"]["frame_wall_ms"]["p50"], r["before"]["frame_wall_ms"]["p50"]
    con.print(f"{r['order']}; per-frame speedup (median over frames) {r['speedup_per_frame_thread']:.2f}×; "
              f"wall ms per frame p50: before {wall[1]:.2f}, after {wall[0]:.2f}; per call = frames x "
              f"the per-frame mean; {r['cpu']} x {r['cpu_cores']} cores, load average "
              f"{la['before'][0]:.2f} / {la['before'][1]:.2f} / {la['before'][2]:.2f} (1/5/15 min) at "
              f"the start, {la['after'][0]:.2f} at the end; identical pixels on every frame")
