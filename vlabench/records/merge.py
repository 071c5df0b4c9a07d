"""`vlabench merge`: join shard run directories (run anywhere, copied here) into one run.

Each input is verified as the report verifies a run (sealed manifest, config.yaml against its
sha256, records against their committed digest; a torn last line is left out, as a resume would
drop it). Their configs must be equal apart from run.shard, run.name and the neutral keys
(vlabench/records/runkeys.py); shards of a run that grew (more episodes or tasks: the growable keys)
grow the output's run as a resume would. Episodes are de-duplicated by (task, episode): duplicates equal in every
column but the run name and the timings (and their calls likewise) are kept once; any other
difference is an error naming the task, the episode, the column and both directories.

The output is an ordinary run directory, so `vlabench report` reads it as one run and `vlabench
run` with the same config resumes it: config.yaml (run.shard null), episodes.csv and calls.csv
in (task, episode) order, summary.csv, and a sealed manifest.json whose status is complete when
every planned episode is present (else partial) and whose `merged_from` lists each input. An
output that already holds records takes part in the de-duplication, so merging again changes
nothing. The output is locked while it is written, and written all or nothing: every file is
staged as a temporary, a journal commits them, renames put them in place (vlabench/records/rundir.py
finishes a merge killed after its journal, and drops the temporaries of one killed before).
"""

from __future__ import annotations

import glob
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Any

from vlabench.core.errors import ConfigError
from vlabench.core.schema import CALL_COLUMNS, EPISODE_COLUMNS, layouts
from vlabench.core.timing import is_timed
from vlabench.records.files import (
    RecordsError,
    check_call_counts,
    decode_text,
    format_rows,
    parse_rows,
    sha256,
)
from vlabench.records.runkeys import NAME_KEY, SHARD_KEY, is_neutral

# Columns that differ between two faithful runs of one episode: who ran it and how long it took.
EPISODE_FREE = frozenset({"run_id", "wall_s", "sim_s", "policy_s"})


def _call_free(column: str) -> bool:
    """A calls.csv column that is a measurement of time (latency, queueing), not a result."""
    return column.startswith("lat_") or "queue" in column


@dataclass
class Part:
    """One verified input run directory: its manifest, config and committed records."""

    path: Path
    manifest: dict[str, Any]
    config: dict[str, Any]
    config_raw: bytes
    episodes: list[dict[str, str]]
    calls: list[dict[str, str]]

    @property
    def shard(self) -> tuple[int, int] | None:
        from vlabench.records.shards import config_shard

        return config_shard(self.config)


def _committed_rows(path: Path, data: bytes | None, columns: list[str]) -> list[dict[str, str]]:
    """Rows of a records file's bytes, without a torn last line (a write that never finished)."""
    if data is None:
        return []
    return parse_rows(path, decode_text(path, data[:data.rfind(b"\n") + 1]), columns)


def _key(row: dict[str, str], path: Path) -> tuple[int, int]:
    try:
        return int(row["task_id"]), int(row["episode"])
    except ValueError:
        raise RecordsError(f"{path}: task_id/episode {row['task_id']!r}/{row['episode']!r} are not "
                           f"integers; the file was edited or damaged") from None


def read_part(run_dir: Path) -> Part:
    """Load and verify one run directory for merging (RecordsError: one line)."""
    from vlabench.records.verify import load_config, load_manifest, verify_records

    man = load_manifest(run_dir)
    if not (run_dir / "config.yaml").exists():
        raise RecordsError(f"{run_dir}: no config.yaml; a run's config is needed to merge it")
    cfg = load_config(run_dir, man)
    data = verify_records(run_dir, man)
    eps = _committed_rows(run_dir / "episodes.csv", data["episodes.csv"], EPISODE_COLUMNS)
    calls = _committed_rows(run_dir / "calls.csv", data["calls.csv"], CALL_COLUMNS)
    done: set[tuple[int, int]] = set()
    for r in eps:
        k = _key(r, run_dir / "episodes.csv")
        if k in done:
            raise RecordsError(f"{run_dir / 'episodes.csv'}: task {k[0]} episode {k[1]} is recorded "
                               f"twice; was it edited by hand?")
        done.add(k)
    calls = [c for c in calls if _key(c, run_dir / "calls.csv") in done]   # committed only
    check_call_counts(run_dir / "episodes.csv", eps, run_dir / "calls.csv", calls)
    return Part(run_dir, man, cfg, (run_dir / "config.yaml").read_bytes(), eps, calls)


def episode_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """A saved config without what shards of one run may differ in (shard, name, neutral keys)."""
    out: dict[str, Any] = {}
    for group, sub in cfg.items():
        if is_neutral(f"{group}."):
            continue
        if isinstance(sub, dict):
            sub = {k: v for k, v in sub.items()
                   if not is_neutral(f"{group}.{k}") and (group, k) not in (SHARD_KEY, NAME_KEY)}
        out[group] = sub
    return out


def config_diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two plain configs."""
    if isinstance(a, dict) and isinstance(b, dict):
        return [d for k in sorted(set(a) | set(b), key=str)
                for d in config_diff(a.get(k), b.get(k), f"{prefix}{k}.")]
    return [] if a == b else [prefix.rstrip(".")]


def expand_inputs(inputs: list[str]) -> list[Path]:
    """The run directories named by paths or globs (each must exist and be a run)."""
    out: list[Path] = []
    for pat in inputs:
        paths = sorted(Path(p) for p in glob.glob(pat)) if glob.has_magic(pat) else [Path(pat)]
        if not paths or not all(p.exists() for p in paths):
            raise ConfigError(f"merge: {pat} does not exist; give shard run directories (or globs)")
        for p in paths:
            if not (p / "manifest.json").exists():
                raise ConfigError(f"merge: {p} is not a run directory (it has no manifest.json)")
            out.append(p)
    unique = list(dict.fromkeys(p.resolve() for p in out))
    if not unique:
        raise ConfigError("merge: no input run directories given")
    return unique


def merged_target(parts: list[Part], into: str | None) -> tuple[Path, str]:
    """(output directory, run name): --into (named after its last part), else the shards' run
    name without `.shard-<i>-of-<n>`, under the output folder they were written to."""
    from vlabench.records.shards import base_name

    if into is not None:
        return Path(into).resolve(), Path(into).resolve().name
    found: dict[tuple[Path, str], Path] = {}
    for p in parts:
        name = str((p.config.get("run") or {}).get("name") or p.path.name)
        base = base_name(name)
        if base is None:
            raise ConfigError(f"merge: {p.path} (run.name={name!r}) has no shard suffix "
                              f"'.shard-<i>-of-<n>', so the merged run's name is unknown; pass --into DIR")
        n = len(PurePath(name).parts)
        root = Path(*p.path.parts[:-n]) if p.path.parts[-n:] == PurePath(name).parts else p.path.parent
        found.setdefault((root / base, base), p.path)
    if len(found) > 1:
        shown = ", ".join(f"{src} -> {dst}" for (dst, _), src in found.items())
        raise ConfigError(f"merge: the inputs name different runs ({shown}); pass --into DIR")
    return next(iter(found))


def check_configs(parts: list[Part]) -> None:
    """Every part ran the same episodes' config (one line naming the keys that differ)."""
    ref = parts[0]
    for p in parts[1:]:
        diff = config_diff(episode_config(ref.config), episode_config(p.config))
        if diff:
            shown = ", ".join(diff[:6]) + (" ..." if len(diff) > 6 else "")
            raise ConfigError(f"merge: {p.path} and {ref.path} are not shards of one run: their "
                              f"configs differ in {shown}")


def grows(out: Path, existing: Part, part: Part) -> bool:
    """Whether the inputs (like `part`) grow the output's run (more episodes or tasks: True),
    or run its config (False); any other difference, or a shrink, is one line."""
    from vlabench.records.resume import resume_problem
    from vlabench.records.runkeys import is_growable

    old, new = episode_config(existing.config), episode_config(part.config)
    diff = config_diff(old, new)
    other = [k for k in diff if not is_growable(k)]
    if other:
        shown = ", ".join(other[:6]) + (" ..." if len(other) > 6 else "")
        raise ConfigError(f"merge: {out} holds a run whose config differs from {part.path}'s in "
                          f"{shown}; merge into another directory (--into)")
    problem = resume_problem(out, old, new) if diff else None
    if problem:
        raise ConfigError(f"merge: {problem}")
    return bool(diff)


def _first_difference(a: dict[str, str], b: dict[str, str], free: Any) -> str | None:
    for col in a:
        if not free(col) and a.get(col, "") != b.get(col, ""):
            return col
    return None


def dedup(parts: list[Part]) -> tuple[list[dict[str, str]], list[dict[str, str]], dict]:
    """(episodes, calls, where) of all parts, each (task, episode) once, in (task, episode)
    order; `where` maps each kept episode to the part it came from. Conflicts: RecordsError."""
    episodes: dict[tuple[int, int], dict[str, str]] = {}
    calls: dict[tuple[int, int], list[dict[str, str]]] = {}
    where: dict[tuple[int, int], Part] = {}
    for part in parts:
        by_ep: dict[tuple[int, int], list[dict[str, str]]] = {}
        for c in part.calls:
            by_ep.setdefault(_key(c, part.path), []).append(c)
        for row in part.episodes:
            k = _key(row, part.path)
            mine = sorted(by_ep.get(k, []), key=lambda c: int(c["call"] or 0))
            if k not in episodes:
                episodes[k], calls[k], where[k] = row, mine, part
                continue
            col = _first_difference(episodes[k], row, lambda c: c in EPISODE_FREE)
            what = f"episodes.csv column {col}: {episodes[k][col]!r} vs {row[col]!r}" if col else None
            if what is None:
                for i, (a, b) in enumerate(zip(calls[k], mine)):
                    col = _first_difference(a, b, _call_free)
                    if col:
                        what = f"calls.csv call {i} column {col}: {a[col]!r} vs {b[col]!r}"
                        break
            if what:
                raise RecordsError(
                    f"merge: task {k[0]} episode {k[1]} differs between {where[k].path} and "
                    f"{part.path} ({what}); they are not the same episode: remove it from one run "
                    f"(or leave that directory out) and merge again")
    keys = sorted(episodes)
    return ([episodes[k] for k in keys], [c for k in keys for c in calls[k]], where)


def _plan_units(existing: Part | None, parts: list[Part]) -> list[tuple[Any, Any]]:
    """(shard spec or None, episodes per task) of everything merged: the inputs, the inputs of
    an earlier merge into the output, and the output itself unless it is a partial merge (a
    run's manifest, written by the runner, always holds the whole plan)."""
    units = [((p.config.get("run") or {}).get("shard"), p.manifest.get("episodes_per_task")) for p in parts]
    if existing is not None:
        merged = existing.manifest.get("merged_from")
        units += [(e.get("shard"), e.get("episodes_per_task")) for e in merged or [] if isinstance(e, dict)]
        if existing.manifest.get("status") != "partial":
            units.append((None, existing.manifest.get("episodes_per_task")))
    return units


def planned_counts(units: list[tuple[Any, Any]]) -> dict[str, int] | None:
    """Episodes per task of the whole run, when `units` (see `_plan_units`) say: a whole run
    (shard None), or all n shards of one split; None when unknown."""
    from vlabench.records.shards import shard_spec

    for spec, counts in units:
        if spec is None and isinstance(counts, dict):
            return {str(t): int(c) for t, c in counts.items()}
    by_n: dict[int, dict[int, dict]] = {}
    for spec, counts in units:
        ij = shard_spec(spec) if spec is not None else None
        if ij is not None and isinstance(counts, dict):
            by_n.setdefault(ij[1], {})[ij[0]] = counts
    for n, got in sorted(by_n.items()):
        if len(got) == n:
            total: dict[str, int] = {}
            for counts in got.values():
                for t, c in counts.items():
                    total[str(t)] = total.get(str(t), 0) + int(c)
            return total
    return None


def _source(p: Part, hosts: dict[Path, str]) -> dict[str, Any]:
    """One `merged_from` entry: where and when a part ran, and its committed records."""
    m = p.manifest
    return {"path": str(p.path), "run_name": m.get("run_name"), "shard": (p.config.get("run") or {}).get("shard"),
            "host": hosts.get(p.path) or m.get("host"), "device": m.get("device"),
            "machine": m.get("machine"), "status": m.get("status"),
            "started_at": m.get("started_at"), "finished_at": m.get("finished_at"),
            "episodes": len(p.episodes), "episodes_per_task": m.get("episodes_per_task"),
            "records": m.get("records")}


def mixed_machines(parts: list[Part]) -> str | None:
    """A deviation when the parts ran on different machines (their latencies mix them)."""
    from vlabench.records.machine import describe, differ

    machines = [p.manifest.get("machine") for p in parts]
    kinds = list(dict.fromkeys(describe(m) for m in machines if m))
    if any(differ(a, b) for a in machines for b in machines):
        return f"merged from shards run on different machines ({'; '.join(kinds)}): latencies mix them"
    return None


class _InMemoryRun:
    """A run directory whose records are strings: `run / "episodes.csv"` is a text buffer,
    which is all `load_run_frames` reads (so a merge writes nothing outside its output)."""

    def __init__(self, texts: dict[str, str]):
        self.texts = texts

    def __truediv__(self, name: str) -> io.StringIO:
        return io.StringIO(self.texts[name])


def _summary_text(episodes_text: str, calls_text: str) -> str:
    from vlabench.metrics.summary import load_run_frames, summarize

    eps, calls = load_run_frames(_InMemoryRun({"episodes.csv": episodes_text, "calls.csv": calls_text}))
    return summarize(eps, calls).to_csv(index=False, lineterminator="\n")


def _merged_config(part: Part, name: str, output_dir: str) -> bytes:
    """config.yaml of the merged run: the part's, with run.shard null and the merged name."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.create(part.config_raw.decode("utf-8"))
    cfg.run.shard, cfg.run.name, cfg.run.output_dir = None, name, output_dir
    return OmegaConf.to_yaml(cfg, resolve=True).encode("utf-8")


def build_files(out: Path, existing: Part | None, parts: list[Part], command: str,
                name: str | None = None, hosts: dict[Path, str] | None = None) -> dict[str, bytes]:
    """The merged run's files (name -> content), manifest last; `name`: the run name of a new
    output (default: its folder's name); `hosts`: the machine each input ran on, when known."""
    from vlabench.records.provenance import now, seal

    every = ([existing] if existing else []) + parts
    check_configs(parts)
    grown = existing is not None and grows(out, existing, parts[0])
    episodes, calls, _ = dedup(every)
    if existing is not None:
        name = str((existing.config.get("run") or {}).get("name") or out.name)
        root = str((existing.config.get("run") or {}).get("output_dir") or out.parent)
        # kept byte for byte (merging again changes nothing), unless the shards grew the run
        config_raw = _merged_config(parts[0], name, root) if grown else existing.config_raw
    else:
        name = name or out.name
        n = len(PurePath(name).parts)
        root = Path(*out.parts[:-n]) if out.parts[-n:] == PurePath(name).parts else out.parent
        config_raw = _merged_config(parts[0], name, str(root))
    for r in episodes:
        r["run_id"] = name
    ep_cols, call_cols = layouts(is_timed(parts[0].config))   # frozen: without the timing columns
    ep_text = format_rows(ep_cols, [{c: r.get(c) for c in ep_cols} for r in episodes], header=True)
    call_text = format_rows(call_cols, [{c: r.get(c) for c in call_cols} for r in calls], header=True)
    plan = planned_counts(_plan_units(None if grown else existing, parts))
    have: dict[str, int] = {}
    for r in episodes:
        have[r["task_id"]] = have.get(r["task_id"], 0) + 1
    complete = plan is not None and all(have.get(t, 0) >= c for t, c in plan.items())
    base = dict((existing or parts[0]).manifest)
    for key in ("seal", "resumed_at"):
        base.pop(key, None)
    earlier = list(existing.manifest.get("merged_from") or []) if existing else []
    sources = {e["path"]: e for e in earlier if isinstance(e, dict) and "path" in e}
    sources.update({str(p.path): _source(p, hosts or {}) for p in parts})
    starts = [str(p.manifest["started_at"]) for p in every if p.manifest.get("started_at")]
    max_steps: dict[str, Any] = {}
    deviations: list[str] = []
    for p in every:
        max_steps.update(p.manifest.get("max_steps") or {})
        deviations += [d for d in p.manifest.get("deviations") or [] if d not in deviations]
    note = mixed_machines(every)
    if note and note not in deviations:
        deviations.append(note)
    info = {
        **base, "run_name": name, "command": command, "deviations": deviations,
        "started_at": min(starts) if starts else now(), "status": "complete" if complete else "partial",
        "finished_at": (base.get("finished_at") if existing is not None and existing.manifest.get("status")
                        == "complete" and complete else now() if complete else None),
        "episodes_per_task": plan if plan is not None else dict(sorted(have.items())),
        "max_steps": max_steps, "config_sha256": sha256(config_raw),
        "records": {"calls.csv": _digest(call_text), "episodes.csv": _digest(ep_text)},
        "merged_from": list(sources.values()),
    }
    manifest = json.dumps(seal(info), indent=2, sort_keys=True, default=str) + "\n"
    return {"calls.csv": call_text.encode("utf-8"), "episodes.csv": ep_text.encode("utf-8"),
            "summary.csv": _summary_text(ep_text, call_text).encode("utf-8"),
            "config.yaml": config_raw, "manifest.json": manifest.encode("utf-8")}


def _digest(text: str) -> dict[str, Any]:
    data = text.encode("utf-8")
    return {"bytes": len(data), "sha256": sha256(data)}


def commit_files(out: Path, files: dict[str, bytes]) -> None:
    """Stage every file, write the journal (the commit point), rename them into place."""
    from vlabench.records import fsio
    from vlabench.records.files import atomic_write_text, writing
    from vlabench.records.rundir import MERGE_JOURNAL, finish_merge

    staged: dict[str, str] = {}
    for name, data in files.items():
        if (out / name).exists() and (out / name).read_bytes() == data:
            continue
        temp = f".{name}.{os.getpid()}.tmp"
        with writing(out / name, len(data)):
            fsio.write_file(out / temp, data)
        staged[name] = temp
    if staged:
        atomic_write_text(out / MERGE_JOURNAL, json.dumps({"files": staged}) + "\n")
        finish_merge(out)


def merge_runs(inputs: list[Path], into: str | None, command: str = "vlabench merge",
               name: str | None = None, hosts: dict[Path, str] | None = None) -> tuple[Path, str, int]:
    """Merge run directories `inputs` into one (`into`, else named after the shards); `name`:
    the merged run's name when `into` is given (default: its last part); `hosts`: the machine
    each input ran on (the launcher knows it). Returns (output, status, episodes)."""
    from vlabench.records.rundir import RunDirClaim, remove_temporaries

    parts = [read_part(Path(p).resolve()) for p in inputs]
    out, derived = merged_target(parts, into)
    name = name or derived
    parts = [p for p in parts if p.path != out]   # the output itself takes part as `existing`
    claim = RunDirClaim(out)
    claim.open()   # creates what is missing, takes the lock (another writer: one line, exit 2)
    try:
        remove_temporaries(out)   # finishes a merge killed after its journal
        existing = None
        if (out / "manifest.json").exists() or (out / "config.yaml").exists():
            existing = read_part(out)
            if existing.shard is not None:
                raise ConfigError(f"merge: {out} holds shard {existing.config['run']['shard']} of a "
                                  f"run, not a merged run; merge into another directory (--into)")
        else:
            held = claim.records() + claim.foreign()
            if held:
                raise ConfigError(f"merge: {out} exists and is not a run directory (it holds "
                                  f"{', '.join(held[:3])}); choose another directory with --into")
        if not parts:
            raise ConfigError(f"merge: no input besides the output {out}; give shard run directories")
        files = build_files(out, existing, parts, command, name,
                            {Path(k).resolve(): v for k, v in (hosts or {}).items()})
        commit_files(out, files)
        man = json.loads(files["manifest.json"])
    except BaseException:
        from vlabench.records.rundir import MERGE_JOURNAL

        if (out / MERGE_JOURNAL).exists():   # committed: the next writer finishes it
            claim.close()
        else:
            claim.abandon()
        raise
    claim.close()
    return out, str(man["status"]), len(episodes_of(files))


def episodes_of(files: dict[str, bytes]) -> list[dict[str, str]]:
    """The rows of a merged episodes.csv (as built by `build_files`)."""
    return parse_rows(Path("episodes.csv"), files["episodes.csv"].decode("utf-8"), EPISODE_COLUMNS)


def merge_cli(inputs: list[str], into: str | None) -> int:
    """`vlabench merge SHARD_DIRS... [--into DIR]`: merge, print one line, return the exit code."""
    import sys

    out, status, n = merge_runs(expand_inputs(inputs), into,
                                command=" ".join(["vlabench"] + sys.argv[1:]) or "vlabench merge")
    hint = ("" if status == "complete" else "; episodes are missing: run the missing shards (or "
            "`vlabench run` with the run's config, which resumes it) and merge again")
    print(f"merged {n} episodes into {out} (status {status}){hint}")
    return 0
