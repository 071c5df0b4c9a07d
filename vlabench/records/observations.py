"""Recorded observations (`run.record_obs=K`): the sequence one episode's policy saw, on disk.

One compressed file per recorded episode, `<run dir>/obs/task<T>_ep<E>.npz`, written whole to a
temporary `.task<T>_ep<E>.npz.<pid>.tmp` and renamed into place (`files.atomic_write_bytes`). It holds, in call order,
the episode's first K `act` observations and the open-loop steps between them that reached
`observe` (each tagged "act" or "observe"), plus the task (id, name, instruction) and the episode
(index, init state, seed) that reset the policy. `vlabench bench --replay` reads them back.
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vlabench.core.contracts import EpisodeSpec, Observation, TaskInfo
from vlabench.records.files import RecordsError, atomic_write_bytes, make_dirs

OBS_DIR = "obs"
FORMAT = 1
KINDS = ("act", "observe")
_NAME = re.compile(r"^task(\d+)_ep(\d+)\.npz$")


def is_obs_file(name: str) -> bool:
    """A file vlabench writes in obs/: a recording or its temporary."""
    return bool(_NAME.match(name)) or (name.startswith(".task") and name.endswith(".tmp")
                                       and bool(_NAME.match(name[1:].split(".npz")[0] + ".npz")))


def episode_path(run_dir: Path, task_id: int, episode: int) -> Path:
    return Path(run_dir) / OBS_DIR / f"task{task_id}_ep{episode}.npz"


def recorded(run_dir: Path) -> dict[int, Path]:
    """task id -> its recording in `run_dir` (the smallest episode index if several)."""
    out: dict[int, tuple[int, Path]] = {}
    folder = Path(run_dir) / OBS_DIR
    for p in sorted(folder.iterdir()) if folder.is_dir() else []:
        m = _NAME.match(p.name)
        if m and p.is_file():
            t, e = int(m.group(1)), int(m.group(2))
            if t not in out or e < out[t][0]:
                out[t] = (e, p)
    return {t: p for t, (_, p) in sorted(out.items())}


@dataclass
class Recording:
    """One recorded episode: its task and episode, and the observations in call order."""

    task: TaskInfo
    episode: EpisodeSpec
    k: int                                      # the act calls asked for (run.record_obs)
    items: list[tuple[str, Observation]] = field(default_factory=list)

    @property
    def acts(self) -> int:
        return sum(1 for kind, _ in self.items if kind == "act")


def _pack(rec: Recording) -> bytes:
    arrays: dict[str, np.ndarray] = {}
    items = []
    for i, (kind, obs) in enumerate(rec.items):
        if kind not in KINDS:
            raise ValueError(f"an observation is tagged {kind!r}; valid: {KINDS}")
        for name, img in obs.images.items():
            arrays[f"i{i}_img_{name}"] = np.ascontiguousarray(img)
        for name, val in obs.proprio.items():
            arrays[f"i{i}_prop_{name}"] = np.asarray(val)
        items.append({"kind": kind, "step": int(obs.step), "instruction": obs.instruction,
                      "images": sorted(obs.images), "proprio": sorted(obs.proprio)})
    meta = {"format": FORMAT, "k": rec.k, "items": items,
            "task": {"id": rec.task.id, "name": rec.task.name, "instruction": rec.task.instruction},
            "episode": {"task_id": rec.episode.task_id, "index": rec.episode.index,
                        "init_state": rec.episode.init_state, "seed": rec.episode.seed}}
    buf = io.BytesIO()
    np.savez_compressed(buf, meta=np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8),
                        **arrays)
    return buf.getvalue()


def save(run_dir: Path, rec: Recording) -> Path:
    """Write `rec` to obs/task<T>_ep<E>.npz atomically (temporary file, fsync, rename)."""
    path = episode_path(run_dir, rec.task.id, rec.episode.index)
    make_dirs(path.parent)
    atomic_write_bytes(path, _pack(rec))
    return path


def load(path: Path) -> Recording:
    """A recording read back; a damaged or foreign file is one RecordsError line."""
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(bytes(z["meta"]).decode("utf-8"))
            if meta.get("format") != FORMAT:
                raise RecordsError(f"{path}: recording format {meta.get('format')!r}, this vlabench "
                                   f"reads {FORMAT}; record it again")
            items = []
            for i, it in enumerate(meta["items"]):
                obs = Observation(instruction=it["instruction"], step=int(it["step"]),
                                  images={n: z[f"i{i}_img_{n}"] for n in it["images"]},
                                  proprio={n: z[f"i{i}_prop_{n}"] for n in it["proprio"]})
                items.append((str(it["kind"]), obs))
    except RecordsError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise RecordsError(f"{path}: not a readable observation recording ({type(e).__name__}: "
                           f"{str(e).splitlines()[0] if str(e) else ''}); record it again") from None
    t, e = meta["task"], meta["episode"]
    return Recording(task=TaskInfo(int(t["id"]), str(t["name"]), str(t["instruction"])),
                     episode=EpisodeSpec(int(e["task_id"]), int(e["index"]), int(e["init_state"]),
                                         int(e["seed"])),
                     k=int(meta["k"]), items=items)


def recording_plan(k: int, existing: dict[int, Any], pending: dict[int, list[int]]) -> dict[str, Any]:
    """Which episodes this invocation records (the manifest's `record_obs`): per task without a
    recording yet, the smallest episode index it runs; tasks already recorded keep theirs."""
    targets = {str(t): min(eps) for t, eps in sorted(pending.items()) if eps and t not in existing}
    return {"k": int(k), "episodes": targets, "kept": sorted(int(t) for t in existing)}


def plan_targets(plan: dict[str, Any] | None) -> tuple[int, dict[int, int]]:
    """(K, {task id: episode}) of a manifest's `record_obs` (0, {} when none)."""
    if not plan or not int(plan.get("k") or 0):
        return 0, {}
    return int(plan["k"]), {int(t): int(e) for t, e in (plan.get("episodes") or {}).items()}
