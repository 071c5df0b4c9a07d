"""Throughput records: policy calls per second by batch size, as `vlabench bench
bench.throughput=true` measured them on this machine.

Saved beside the runs, `<run.output_dir>/throughput/<model>+<pruner>+<cpu|gpu>.json` (the
latest measurement of that model, pruner and device class), and read by `vlabench plan` to
estimate the policy hours of runs with `run.batch` > 1: a batched run's policy time is its
batch-1 time divided by the recorded gain, calls/s at the batch over calls/s at batch 1.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from vlabench.records.files import write_json_file

FOLDER = "throughput"


class BatchGain(NamedTuple):
    """Calls/s at `batch` over calls/s at batch 1, from one record."""

    gain: float
    batch: int           # the recorded batch size used (the largest <= the one asked for)
    other_pruner: bool   # True: measured with another pruner of the same model


def device_class(device: str) -> str:
    """"gpu" for a CUDA device ("cuda", "cuda:0"), else "cpu"."""
    return "gpu" if str(device).startswith("cuda") else "cpu"


def record_path(output_dir: Path | str, model: str, pruner: str, device: str) -> Path:
    return Path(output_dir) / FOLDER / f"{model}+{pruner}+{device_class(device)}.json"


def save(output_dir: Path | str, result: dict[str, Any]) -> Path:
    """Write a throughput result (bench_throughput's dict) as the record of its model, pruner
    and device class; its path."""
    path = record_path(output_dir, result["model"], result["pruner"], result["device"])
    write_json_file(path, result)
    return path


def load(roots: list[Path]) -> list[dict[str, Any]]:
    """Every readable throughput record under the given output folders (unreadable ones are
    skipped: a plan is an estimate)."""
    out = []
    for root in roots:
        folder = Path(root) / FOLDER
        for p in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            try:
                rec = json.loads(p.read_text(encoding="utf-8"))
                rows = {int(r["batch"]): float(r["calls_per_s"]) for r in rec["throughput"]}
                out.append({"model": str(rec["model"]), "pruner": str(rec["pruner"]),
                            "device": device_class(str(rec["device"])), "calls_per_s": rows})
            except (OSError, ValueError, KeyError, TypeError):
                continue
    return out


def batch_gain(records: list[dict[str, Any]], model: str, pruner: str, device: str,
               batch: int) -> BatchGain | None:
    """The throughput gain of `batch` over batch 1 for a model and pruner on a device class
    ("cpu" | "gpu"), from the records of that pruner, else of the same model with another;
    None when no record has batch 1 and a batch in 2..`batch`."""
    for other in (False, True):
        for rec in records:
            if rec["model"] != model or rec["device"] != device or (rec["pruner"] != pruner) != other:
                continue
            cps = rec["calls_per_s"]
            sizes = [b for b in cps if 1 < b <= batch]
            if 1 in cps and cps[1] > 0 and sizes:
                b = max(sizes)
                return BatchGain(cps[b] / cps[1], b, other)
    return None
