"""Result files of a run directory: schemas, crash-safe appends, loading.

Layout of `<run.output_dir>/<run.name>/`:
  config.yaml    the composed Hydra config (written once, compared on resume)
  manifest.json  provenance: versions, git commit, device, deviations, start/end time
  episodes.csv   one row per finished episode (EPISODE_COLUMNS); the commit record of resume
  calls.csv      one row per policy call (CALL_COLUMNS; `queue_wait_ms`: how long the call
                 waited for the policy behind other environment workers' calls, empty when
                 run.env_workers=1; `mem_peak_mb` / `mem_kind` / `cuda_ms`: the call's peak
                 memory in MiB, "cuda" (absolute peak of torch.cuda.max_memory_allocated) or
                 "rss" (peak RSS increase of the process during the call), and its GPU time
                 from CUDA events, empty where not measured: vlabench/metrics/memory.py)
  summary.csv    derived per task and per suite (SUMMARY_COLUMNS); never typed by hand

Crash safety: a row block is appended with a single `os.write` on an O_APPEND descriptor and
fsynced, so a SIGKILL leaves either the whole block or none of it (a write cut short by a full
disk is truncated back). calls.csv is written before episodes.csv; on resume `RunFiles.open()`
drops call rows whose episode never committed and a last line without its newline. Whole-file
writes (config, manifest, summary) go through a temporary file and `os.replace`. Every write
goes through vlabench/records/fsio.py; a failed one is one RecordsError line naming the file.

Integrity: after every commit manifest.json records the length and sha256 of episodes.csv and
calls.csv (`RunFiles.digest()`), the sha256 of config.yaml and a seal over itself; resume and
the report refuse records that no longer match (edited, emptied, rows removed or duplicated).
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io
import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from vlabench.core.schema import (ADDED_COLUMNS, CALL_COLUMNS, EPISODE_COLUMNS, LATENCY_STAGES,
                                  RECORDS_VERSION, layouts)
from vlabench.records import fsio


class RecordsError(RuntimeError):
    """A run directory is unreadable, inconsistent or not writable."""


class DiskFullError(RecordsError):
    """A records write ran out of disk space; finished episodes are kept (resumable)."""


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


def _disk_full(path: Path, needed: int, e: OSError) -> RecordsError:
    """The one-line error for a write that ran out of space (ENOSPC, EDQUOT)."""
    import shutil

    try:
        free = f"{shutil.disk_usage(path.parent).free} bytes free"
    except OSError:
        free = "free space unknown"
    return DiskFullError(
        f"disk full: writing {path} needs {needed} more bytes ({free}; {e.strerror}); finished "
        f"episodes are saved: free some space and re-run the same command to resume")


def _is_disk_full(e: OSError) -> bool:
    return e.errno in (errno.ENOSPC, errno.EDQUOT)


def write_error(path: Path, e: OSError, needed: int = 0) -> RecordsError:
    """The one-line error of a failed write to `path` (disk full: DiskFullError)."""
    if _is_disk_full(e):
        return _disk_full(path, needed, e)
    return RecordsError(f"cannot write {path}: {e.strerror or e} ({errno.errorcode.get(e.errno, e.errno)}); "
                        f"what was committed before is kept: fix the disk or directory and re-run "
                        f"the same command (a run resumes)")


@contextlib.contextmanager
def writing(path: Path, needed: int = 0) -> Iterator[None]:
    """Turn an OSError of the block (a write to `path`) into its one-line RecordsError."""
    try:
        yield
    except RecordsError:
        raise
    except OSError as e:
        raise write_error(path, e, needed) from None


def atomic_write_text(path: Path, text: str) -> None:
    """Write a whole text file atomically (UTF-8; see `atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a whole file so that readers see the old or the new content, never a mix.

    The temporary `.<name>.<pid>.tmp` is removed when the write fails; a failure is one
    RecordsError line naming the file (disk full: DiskFullError, with the space needed)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with writing(path, len(data)):
        try:
            fsio.write_file(tmp, data)
            fsio.replace(tmp, path)
        except BaseException:
            try:
                fsio.unlink(tmp, missing_ok=True)
            except OSError:
                pass
            raise


def write_json_file(path: Path, obj: Any) -> None:
    """`obj` as indented JSON at `path`, written atomically, its folder made."""
    make_dirs(path.parent)
    atomic_write_text(path, json.dumps(obj, indent=2) + "\n")


def remove_stale_temporaries(folder: Path) -> list[str]:
    """Delete the `.<name>.<pid>.tmp` files `atomic_write_bytes` left in `folder` when its writer
    was killed (that process no longer runs), so a re-run leaves the folder as an uninterrupted
    one would; their names. (A run directory's are removed under its lock: rundir.py.)"""
    gone = []
    for entry in sorted(os.listdir(folder)) if folder.is_dir() else []:
        m = re.match(r"^\.(.+)\.(\d+)\.tmp$", entry)
        if m is None or int(m.group(2)) == os.getpid() or not (folder / entry).is_file():
            continue
        try:
            os.kill(int(m.group(2)), 0)
            continue   # its writer still runs
        except ProcessLookupError:
            pass
        except OSError:
            continue
        with writing(folder / entry):
            fsio.unlink(folder / entry, missing_ok=True)
        gone.append(entry)
    return gone


def make_dirs(path: Path) -> list[Path]:
    """Create folder `path` and its missing parents (one RecordsError line on failure); the
    folders made."""
    with writing(path):
        return fsio.makedirs(path)


def append_block(path: Path, text: str) -> None:
    """Append `text` with one write() on an O_APPEND descriptor, then fsync.

    A failed or short write (disk full), or a failed fsync, is cut back to the old length, so
    no half row is left to glue onto the next append; the error is one RecordsError line."""
    data = text.encode("utf-8")
    with writing(path, len(data)):
        fd = fsio.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        try:
            size = os.fstat(fd).st_size
            try:
                written = fsio.write(fd, data)
                if written != len(data):
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                fsio.fsync(fd)
            except OSError:
                try:
                    fsio.truncate(fd, size)
                except OSError:
                    pass
                raise
        finally:
            fsio.close(fd)


def decode_text(path: Path, data: bytes) -> str:
    """`data` (the bytes of `path`) as UTF-8 text; binary garbage is one RecordsError line."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RecordsError(f"{path}: not UTF-8 text (byte {e.start}); the file is damaged "
                           f"(binary garbage?)") from None


def parse_rows(path: Path, text: str, columns: list[str]) -> list[dict[str, str]]:
    """Rows of records CSV `text` (read from `path`); checks the header and field counts."""
    if "\0" in text:
        raise RecordsError(f"{path}: holds NUL bytes; the file is damaged (binary garbage?)")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        head = next(reader)
    except StopIteration:
        return []
    except csv.Error as e:
        raise RecordsError(f"{path}:1: unreadable CSV ({e})") from None
    if head != columns and not is_older_layout(head, columns):
        raise RecordsError(
            f"{path} has columns {head}; expected {columns} (records version {RECORDS_VERSION})"
        )
    rows = []
    blank = {c: "" for c in columns}
    try:
        for r in reader:
            if len(r) != len(head):
                raise RecordsError(f"{path}:{reader.line_num}: expected {len(head)} fields, "
                                   f"found {len(r)}")
            rows.append({**blank, **dict(zip(head, r, strict=True))})
    except csv.Error as e:
        raise RecordsError(f"{path}:{reader.line_num}: unreadable CSV ({e})") from None
    return rows


def is_older_layout(head: list[str], columns: list[str]) -> bool:
    """True when `head` is `columns` without some of the later-added columns (ADDED_COLUMNS),
    the others in their order."""
    missing = set(columns) - set(head)
    return (bool(missing) and missing <= ADDED_COLUMNS and set(head) <= set(columns)
            and head == [c for c in columns if c in head])


def header_of(text: str, columns: list[str]) -> list[str]:
    """The columns of records CSV `text`: its header line when that is an older layout of
    `columns`, else `columns`."""
    first = next(csv.reader(io.StringIO(text.split("\n", 1)[0])), [])
    return first if is_older_layout(first, columns) else list(columns)


def read_rows(path: Path, columns: list[str]) -> list[dict[str, str]]:
    """Rows of a records CSV as strings; checks the header names `columns` exactly."""
    if not path.exists():
        return []
    return parse_rows(path, decode_text(path, path.read_bytes()), columns)


def has_rows(path: Path) -> bool:
    """True when the records CSV at `path` holds a row below its header (reads 64 KiB at most)."""
    try:
        with open(path, "rb") as f:
            return len(f.read(1 << 16).splitlines()) > 1
    except FileNotFoundError:
        return False


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_prefix(path: Path, data: bytes, rec: Mapping[str, Any], exact: bool) -> None:
    """Raise RecordsError unless `data` (the file at `path`) starts with (or, `exact`, is) the
    committed bytes that manifest.json records as {"bytes": n, "sha256": h}."""
    n, h = int(rec.get("bytes", 0)), str(rec.get("sha256", ""))
    fix = ("restore the file, or start over with run.overwrite=true (or another run.name)")
    if len(data) < n:
        what = "was emptied" if not data else f"was cut or edited ({len(data)} bytes now)"
        raise RecordsError(f"{path} {what} after it was committed (manifest.json records "
                           f"{n} bytes); {fix}")
    if sha256(data[:n]) != h:
        raise RecordsError(f"{path} was edited after it was committed (its first {n} bytes no "
                           f"longer match the sha256 in manifest.json); {fix}")
    if exact and len(data) != n:
        raise RecordsError(f"{path} has {len(data) - n} bytes more than the finished run "
                           f"committed (manifest.json records {n}); rows were added by hand?")


class _Committed:
    """The committed bytes of one append-only records file and their running sha256."""

    def __init__(self, data: bytes):
        self.size, self.hash = len(data), hashlib.sha256(data)

    def add(self, data: bytes) -> None:
        self.size += len(data)
        self.hash.update(data)

    def record(self) -> dict[str, Any]:
        return {"bytes": self.size, "sha256": self.hash.hexdigest()}


class RunFiles:
    """The CSV files of one run directory, opened for appending finished episodes.

    `digest()` is what manifest.json records after every commit: the length and sha256 of
    episodes.csv and calls.csv. `open()` checks a resumed directory against it, repairs what an
    interrupted write may leave (a last line without its newline, calls of an uncommitted
    episode) and refuses, in one line, records that were edited, emptied or duplicated."""

    def __init__(self, run_dir: Path, timed: bool = False):
        self.dir = run_dir
        self.episodes_csv = run_dir / "episodes.csv"
        self.calls_csv = run_dir / "calls.csv"
        self.summary_csv = run_dir / "summary.csv"
        self.manifest_json = run_dir / "manifest.json"
        self.config_yaml = run_dir / "config.yaml"
        self.repairs: list[str] = []
        self._committed: dict[str, _Committed] = {}
        # a new run's layout (suite.timing: with or without the timing columns); an older
        # run's layout when it is resumed
        self.episode_columns, self.call_columns = layouts(timed)

    def _load(self, path: Path, columns: list[str], rec: Mapping[str, Any] | None) -> tuple[bytes, str]:
        """(bytes on disk, committed text): verified against `rec`, torn last line dropped."""
        data = path.read_bytes() if path.exists() else b""
        on_disk = data
        n = 0
        if rec:
            n = int(rec.get("bytes", 0))
            if len(data) == n - 1 and data and sha256(data + b"\n") == rec.get("sha256"):
                self.repairs.append(f"{path.name}: added its missing final newline")
                data += b"\n"
            check_prefix(path, data, rec, exact=False)
        cut = max(n, data.rfind(b"\n", n) + 1)
        if cut < len(data):
            self.repairs.append(f"{path.name}: dropped an incomplete last line ({len(data) - cut} "
                                f"bytes without a newline: a write that never finished)")
        kept = data[:cut]
        try:
            text = kept.decode("utf-8")
        except UnicodeDecodeError as e:
            raise RecordsError(f"{path}: not UTF-8 text (byte {e.start}); the file is damaged; "
                               f"start over with run.overwrite=true") from None
        if not text:
            text = format_rows(columns, [], header=True)
        return on_disk, text

    def open(self, committed: Mapping[str, Any] | None = None) -> set[tuple[int, int]]:
        """Check and repair the records of a resumed run; return finished (task, episode).

        `committed`: the manifest's `records` digest of the last commit (None: not known)."""
        committed = committed or {}
        ep_raw, ep_text = self._load(self.episodes_csv, self.episode_columns, committed.get("episodes.csv"))
        episodes = parse_rows(self.episodes_csv, ep_text, EPISODE_COLUMNS)
        self.episode_columns = header_of(ep_text, EPISODE_COLUMNS)
        done: dict[tuple[int, int], int] = {}
        for i, r in enumerate(episodes, start=2):
            try:
                key = (int(r["task_id"]), int(r["episode"]))
            except ValueError:
                raise RecordsError(f"{self.episodes_csv}:{i}: task_id/episode are not integers; "
                                   f"the file was edited or damaged") from None
            if key in done:
                raise RecordsError(f"{self.episodes_csv}:{i}: task {key[0]} episode {key[1]} is "
                                   f"recorded twice (first on line {done[key]}); delete one of the "
                                   f"two lines, or start over with run.overwrite=true")
            done[key] = i
        c_raw, c_text = self._load(self.calls_csv, self.call_columns, committed.get("calls.csv"))
        calls = parse_rows(self.calls_csv, c_text, CALL_COLUMNS)
        self.call_columns = header_of(c_text, CALL_COLUMNS)
        kept = [r for r in calls if (_int(r["task_id"]), _int(r["episode"])) in done]
        check_call_counts(self.episodes_csv, episodes, self.calls_csv, kept)
        if len(kept) != len(calls):
            self.repairs.append(f"calls.csv: dropped {len(calls) - len(kept)} call rows of an "
                                f"episode that never committed")
            c_text = format_rows(self.call_columns, self._in_layout(kept), header=True)
        for path, raw, text in ((self.calls_csv, c_raw, c_text), (self.episodes_csv, ep_raw, ep_text)):
            data = text.encode("utf-8")
            if data != raw:
                atomic_write_text(path, text)
            self._committed[path.name] = _Committed(data)
        return set(done)

    def digest(self) -> dict[str, Any]:
        """{"episodes.csv": {"bytes", "sha256"}, "calls.csv": ...} of the committed records."""
        return {name: c.record() for name, c in sorted(self._committed.items())}

    def append_episode(self, episode: Mapping[str, Any], calls: list[Mapping[str, Any]]) -> None:
        """Commit one episode: its calls first, then the episode row that marks it done."""
        c_text = format_rows(self.call_columns, self._in_layout(calls), header=False) if calls else ""
        drop = set(EPISODE_COLUMNS) - set(self.episode_columns)   # not in this run's layout
        e_text = format_rows(self.episode_columns, [{k: v for k, v in episode.items() if k not in drop}],
                             header=False)
        if c_text:
            append_block(self.calls_csv, c_text)
        append_block(self.episodes_csv, e_text)
        if self._committed:
            self._committed["calls.csv"].add(c_text.encode("utf-8"))
            self._committed["episodes.csv"].add(e_text.encode("utf-8"))

    def _in_layout(self, calls: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """`calls` without the cells of columns an older run's calls.csv does not have. A run
        begun before `lat_preprocess_ms` existed counted preprocessing inside `lat_vision_ms`
        and `lat_total_ms`: its resumed rows keep that meaning, so one run never mixes two."""
        if len(self.call_columns) == len(CALL_COLUMNS):
            return calls
        keep = set(self.call_columns)
        fold = "lat_preprocess_ms" not in keep
        return [{k: v for k, v in (_fold_preprocess(c) if fold else c).items() if k in keep}
                for c in calls]

    def write_json(self, path: Path, obj: Any) -> None:
        atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def _fold_preprocess(call: Mapping[str, Any]) -> Mapping[str, Any]:
    """The call's preprocessing time added back into its vision and total latency (the
    meaning those columns had before preprocessing became its own stage)."""
    pre = call.get("lat_preprocess_ms")
    if not isinstance(pre, int | float) or pre != pre:
        return call
    out = dict(call)
    for key in ("lat_vision_ms", "lat_total_ms"):
        v = out.get(key)
        if isinstance(v, int | float) and v == v:
            out[key] = v + pre
    return out


def _int(v: str) -> int | None:
    try:
        return int(v)
    except ValueError:
        return None


def check_call_counts(ep_path: Path, episodes: list[Mapping[str, Any]], calls_path: Path,
                      calls: list[Mapping[str, Any]]) -> None:
    """Each episode's `policy_calls` must equal its rows in calls.csv (when recorded)."""
    have: dict[tuple, int] = {}
    for c in calls:
        k = (str(c["task_id"]), str(c["episode"]))
        have[k] = have.get(k, 0) + 1
    for r in episodes:
        want = str(r.get("policy_calls", "")).strip()
        if not want:
            continue
        k = (str(r["task_id"]), str(r["episode"]))
        if not want.isdigit() or int(want) != have.get(k, 0):
            raise RecordsError(
                f"{calls_path} has {have.get(k, 0)} rows for task {k[0]} episode {k[1]} but "
                f"{ep_path.name} records policy_calls={want}; calls.csv lost or gained rows "
                f"(edited or damaged); restore it, or start over with run.overwrite=true")


def call_row(task_id: int, episode: int, call: int, step: int, stats: Any,
             queue_wait_ms: float | None = None) -> dict[str, Any]:
    """One calls.csv row from a `CallStats` (`queue_wait_ms`: None when no queue was involved;
    the memory / CUDA-time cells are empty when the stats carry none)."""
    row: dict[str, Any] = {"queue_wait_ms": queue_wait_ms,
        "task_id": task_id, "episode": episode, "call": call, "step": step,
        "source": stats.source, "warmup": stats.warmup, "tokens_in": stats.tokens_in,
        "tokens_kept": stats.tokens_kept, "tokens_by_layer": stats.tokens_by_layer,
        "flops": stats.flops, "mode": stats.mode,
        "mem_peak_mb": getattr(stats, "mem_peak_mb", None), "mem_kind": getattr(stats, "mem_kind", None),
        "cuda_ms": getattr(stats, "cuda_ms", None), "batch": getattr(stats, "batch", 1),
    }
    unknown = set(stats.latency_ms) - set(LATENCY_STAGES)
    if unknown:
        raise ValueError(f"unknown latency stages {sorted(unknown)}; valid: {LATENCY_STAGES}")
    for stage in LATENCY_STAGES:
        row[f"lat_{stage}_ms"] = stats.latency_ms.get(stage)
    return row
