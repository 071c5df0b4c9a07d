"""Provenance of a run: package versions, git commit, environment, machine (CPU; GPU, driver,
CUDA and cuDNN when CUDA is used: `vlabench.records.machine`), protocol deviations."""

from __future__ import annotations

import datetime as _dt
import importlib.metadata as md
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from vlabench.core.schema import RECORDS_VERSION

PACKAGES = ("torch", "transformers", "mujoco", "robosuite", "libero", "mani-skill", "sapien",
            "numpy", "hydra-core")
SOURCE_DIR = Path(__file__).resolve().parent.parent


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out


def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the vlabench source tree, or (None, None) outside a git checkout."""
    try:
        commit = subprocess.run(["git", "-C", str(SOURCE_DIR), "rev-parse", "HEAD"],
                                capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(SOURCE_DIR), "status", "--porcelain", "--", "vlabench", "configs"],
                               capture_output=True, text=True, timeout=5, check=True).stdout.strip()
        return commit, bool(dirty)
    except (OSError, subprocess.SubprocessError):
        return None, None


def protocol_deviations(cfg: Any, num_tasks: int) -> list[str]:
    """How this run departs from the suite's published protocol (empty for a full run)."""
    run, suite = cfg.run, cfg.suite
    out = []
    per_task = suite.get("task_list")  # suites with per-task limits (SIMPLER: 60, eggplant 120)
    if run.max_steps is not None and per_task is not None:
        sel = suite.get("tasks")
        ids = range(len(per_task)) if sel is None else ([sel] if isinstance(sel, int) else list(sel))
        capped = [f"{i} ({per_task[i].max_steps})" for i in ids
                  if 0 <= i < len(per_task) and run.max_steps < per_task[i].max_steps]
        if capped:
            out.append(f"run.max_steps={run.max_steps} caps the protocol's policy steps of tasks "
                       f"{', '.join(capped)}")
    elif run.max_steps is not None:
        chosen = (suite.get("protocols") or {}).get(suite.get("protocol")) or {}  # suite.protocol's limit
        limit = chosen.get("max_steps", suite.max_steps)
        if run.max_steps < limit:
            out.append(f"run.max_steps={run.max_steps} caps the protocol's {limit} policy steps")
    if run.episodes_per_task is not None and run.episodes_per_task != suite.episodes_per_task:
        out.append(f"run.episodes_per_task={run.episodes_per_task} instead of the protocol's "
                   f"{suite.episodes_per_task}")
    if suite.get("tasks") is not None:
        out.append(f"suite.tasks={list(suite.tasks)} selects {len(suite.tasks)} of {num_tasks} tasks")
    return out


def manifest(cfg: Any, policy: Any, deviations: list[str], started_at: str) -> dict[str, Any]:
    """The manifest.json content at the start of a run (status "running")."""
    from vlabench import __version__
    from vlabench.records.machine import machine

    commit, dirty = git_state()
    device = getattr(policy, "device", None) or str(cfg.run.device)
    return {
        "vlabench_version": __version__,
        "records_version": RECORDS_VERSION,
        "protocol_version": cfg.suite.get("protocol_version"),
        "protocol": cfg.suite.get("protocol"),  # whose evaluation loop (LIBERO: openvla-oft | specprune)
        "run_name": cfg.run.name,
        "model": cfg.model.name, "pruner": cfg.pruner.name, "suite": cfg.suite.name,
        "suite_family": cfg.suite.get("family"),
        "git_commit": commit, "git_dirty": dirty,
        "host": socket.gethostname(),
        "python": sys.version.split()[0], "platform": platform.platform(),
        "packages": package_versions(),
        "device": device, "machine": machine(device),
        "mujoco_gl": os.environ.get("MUJOCO_GL"),
        "attn_implementation": getattr(policy, "attn_implementation", None),
        "deviations": deviations + list(getattr(policy, "deviations", []) or []),
        "command": " ".join(["vlabench"] + sys.argv[1:]),
        "started_at": started_at, "finished_at": None, "status": "running",
    }


def _canonical(obj: dict[str, Any]) -> bytes:
    import json

    plain = json.loads(json.dumps({k: v for k, v in obj.items() if k != "seal"}, default=str))
    return json.dumps(plain, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _seal_of(info: dict[str, Any]) -> str:
    import hashlib

    return hashlib.sha256(_canonical(info)).hexdigest()


def seal(info: dict[str, Any]) -> dict[str, Any]:
    """`info` with `seal`: the sha256 of its other fields, so a hand edit (a status changed to
    "complete", a count changed) is detected by `seal_ok`."""
    return {**info, "seal": _seal_of(info)}


def seal_ok(info: dict[str, Any]) -> bool:
    """True when `info` has no seal (older records) or its seal matches its content."""
    return "seal" not in info or info["seal"] == _seal_of(info)
