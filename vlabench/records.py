"""Result files of a run directory: schemas, crash-safe appends, loading.

Layout of `<run.output_dir>/<run.name>/`:
  config.yaml    the composed Hydra config (written once, compared on resume)
  manifest.json  provenance: versions, git commit, device, deviations, start/end time
  episodes.csv   one row per finished episode (EPISODE_COLUMNS); the commit record of resume
  calls.csv      one row per policy call (CALL_COLUMNS)
  summary.csv    derived per task and per suite (SUMMARY_COLUMNS); never typed by hand

Crash safety: a row block is appended with a single `os.write` on an O_APPEND descriptor and
fsynced, so a SIGKILL leaves either the whole block or none of it. calls.csv is written before
episodes.csv; on resume `RunFiles.open()` drops call rows whose episode never committed. Whole-
file writes (config, manifest, summary) go through a temporary file and `os.replace`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

# Bumped whenever a column's meaning changes; the report refuses to mix versions.
RECORDS_VERSION = 1

EPISODE_COLUMNS = [
    "run_id", "model", "pruner", "suite", "task_id", "task_name", "episode", "init_state",
    "seed", "success", "steps", "policy_calls", "model_calls", "wall_s", "sim_s", "policy_s",
    "error_type", "error",
]
CALL_COLUMNS = [
    "task_id", "episode", "call", "step", "source", "warmup",
    "lat_vision_ms", "lat_llm_ms", "lat_action_head_ms", "lat_pruner_ms", "lat_total_ms",
    "tokens_in", "tokens_kept", "tokens_by_layer", "flops", "mode",
]
SUMMARY_COLUMNS = [
    "level", "suite", "task_id", "task_name", "episodes", "successes", "success_rate",
    "sr_ci_low", "sr_ci_high", "errors", "latency_mean_ms", "latency_p50_ms", "latency_p95_ms",
    "model_calls", "flops_mean", "tokens_kept_mean",
]
LATENCY_STAGES = ("vision", "llm", "action_head", "pruner", "total")


class RecordsError(RuntimeError):
    """A run directory is unreadable, inconsistent or not writable."""


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool | np.bool_):
        return "1" if v else "0"
    if isinstance(v, float | np.floating):
        return "" if math.isnan(v) else repr(float(v))
    if isinstance(v, list | tuple):
        return ";".join(str(x) for x in v)
    return str(v)


def format_rows(columns: list[str], rows: Iterable[Mapping[str, Any]], header: bool) -> str:
    """CSV text for `rows` in `columns` order (unknown keys are an error, missing ones empty)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    if header:
        w.writerow(columns)
    for row in rows:
        extra = set(row) - set(columns)
        if extra:
            raise ValueError(f"unknown record fields {sorted(extra)}; columns are {columns}")
        w.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def atomic_write_text(path: Path, text: str) -> None:
    """Write a whole file so that readers see the old or the new content, never a mix."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def append_block(path: Path, text: str) -> None:
    """Append `text` with one write() on an O_APPEND descriptor, then fsync."""
    data = text.encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        written = os.write(fd, data)
        if written != len(data):
            raise RecordsError(f"short write to {path} ({written}/{len(data)} bytes)")
        os.fsync(fd)
    finally:
        os.close(fd)


def read_rows(path: Path, columns: list[str]) -> list[dict[str, str]]:
    """Rows of a records CSV as strings; checks the header names `columns` exactly."""
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        try:
            head = next(reader)
        except StopIteration:
            return []
        if head != columns:
            raise RecordsError(
                f"{path} has columns {head}; expected {columns} (records version {RECORDS_VERSION})"
            )
        rows = []
        for i, r in enumerate(reader, start=2):
            if len(r) != len(columns):
                raise RecordsError(f"{path}:{i}: expected {len(columns)} fields, found {len(r)}")
            rows.append(dict(zip(columns, r, strict=True)))
    return rows


class RunFiles:
    """The CSV files of one run directory, opened for appending finished episodes."""

    def __init__(self, run_dir: Path):
        self.dir = run_dir
        self.episodes_csv = run_dir / "episodes.csv"
        self.calls_csv = run_dir / "calls.csv"
        self.summary_csv = run_dir / "summary.csv"
        self.manifest_json = run_dir / "manifest.json"
        self.config_yaml = run_dir / "config.yaml"

    def open(self) -> set[tuple[int, int]]:
        """Create missing files, drop uncommitted call rows; return finished (task, episode)."""
        episodes = read_rows(self.episodes_csv, EPISODE_COLUMNS)
        done = {(int(r["task_id"]), int(r["episode"])) for r in episodes}
        calls = read_rows(self.calls_csv, CALL_COLUMNS)
        committed = [r for r in calls if (int(r["task_id"]), int(r["episode"])) in done]
        if len(committed) != len(calls) or not self.calls_csv.exists():
            atomic_write_text(self.calls_csv, format_rows(CALL_COLUMNS, committed, header=True))
        if not self.episodes_csv.exists():
            atomic_write_text(self.episodes_csv, format_rows(EPISODE_COLUMNS, [], header=True))
        return done

    def append_episode(self, episode: Mapping[str, Any], calls: list[Mapping[str, Any]]) -> None:
        """Commit one episode: its calls first, then the episode row that marks it done."""
        if calls:
            append_block(self.calls_csv, format_rows(CALL_COLUMNS, calls, header=False))
        append_block(self.episodes_csv, format_rows(EPISODE_COLUMNS, [episode], header=False))

    def write_json(self, path: Path, obj: Any) -> None:
        atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def call_row(task_id: int, episode: int, call: int, step: int, stats: Any) -> dict[str, Any]:
    """One calls.csv row from a `CallStats`."""
    row: dict[str, Any] = {
        "task_id": task_id, "episode": episode, "call": call, "step": step,
        "source": stats.source, "warmup": stats.warmup, "tokens_in": stats.tokens_in,
        "tokens_kept": stats.tokens_kept, "tokens_by_layer": stats.tokens_by_layer,
        "flops": stats.flops, "mode": stats.mode,
    }
    unknown = set(stats.latency_ms) - set(LATENCY_STAGES)
    if unknown:
        raise ValueError(f"unknown latency stages {sorted(unknown)}; valid: {LATENCY_STAGES}")
    for stage in LATENCY_STAGES:
        row[f"lat_{stage}_ms"] = stats.latency_ms.get(stage)
    return row
