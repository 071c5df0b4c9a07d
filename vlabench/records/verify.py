"""Read a run directory back and verify it: manifest (sealed, versioned), config (its recorded
sha256) and records (the digest of their last commit). Damage is one RecordsError line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from vlabench.core import yamlio
from vlabench.records.files import RECORDS_VERSION, RecordsError, check_prefix, has_rows, sha256
from vlabench.records.provenance import seal_ok
from vlabench.records.rundir import MERGE_JOURNAL


def load_config(run_dir: Path, man: dict[str, Any]) -> dict[str, Any]:
    """config.yaml, checked against the sha256 the manifest recorded (when it did)."""
    path = run_dir / "config.yaml"
    if not path.exists():
        if man.get("config_sha256"):
            raise RecordsError(f"{path} is missing (the run recorded one); restore it")
        return {}
    raw = path.read_bytes()
    # config_sha256_grown: a run grown by a resume that stopped between its two writes (resume.py)
    if man.get("config_sha256") and sha256(raw) not in (man["config_sha256"], man.get("config_sha256_grown")):
        raise RecordsError(f"{path} was edited after the run started (its sha256 differs from "
                           f"manifest.json's); restore it")
    try:
        cfg = yamlio.safe_load(raw.decode("utf-8")) or {}
    except UnicodeDecodeError as e:
        raise RecordsError(f"{path}: not UTF-8 text (byte {e.start}); the file is damaged") from None
    except yaml.YAMLError as e:
        raise RecordsError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise RecordsError(f"{path}: not a config (a YAML mapping was expected)")
    return cfg


def verify_records(run_dir: Path, man: dict[str, Any]) -> dict[str, bytes | None]:
    """episodes.csv and calls.csv against the digest of their last commit in manifest.json: a
    complete run must match exactly; an unfinished one may have grown since by whole lines.
    Returns each file's bytes (None: absent), read once for the checks and the parsing."""
    digest = man.get("records") or {}
    out: dict[str, bytes | None] = {}
    for name in ("episodes.csv", "calls.csv"):
        path = run_dir / name
        out[name] = None
        if not path.exists():
            if name == "calls.csv" and (digest or has_rows(run_dir / "episodes.csv")):
                raise RecordsError(f"{path} is missing; the per-call records (latency, tokens, "
                                   f"FLOPs) of this run are lost: restore it")
            continue
        out[name] = data = path.read_bytes()
        if name in digest:
            check_prefix(path, data, digest[name], exact=man.get("status") == "complete")
    return out


def check_final_newlines(run_dir: Path, data: dict[str, bytes | None]) -> None:
    """A records file whose last row lacks its newline was cut or edited (vlabench writes
    whole lines); resume repairs it, the report refuses it."""
    for name, content in data.items():
        if content and not content.endswith(b"\n"):
            raise RecordsError(f"{run_dir / name} ends in an incomplete line (no final newline); "
                               f"re-run the run's command to repair and resume it")


def load_manifest(run_dir: Path) -> dict[str, Any]:
    """manifest.json of a run directory: JSON, sealed, of this records version, naming its
    model, pruner and suite (RecordsError otherwise)."""
    mpath = run_dir / "manifest.json"
    if (run_dir / MERGE_JOURNAL).exists():
        raise RecordsError(f"{run_dir}: a `vlabench merge` into it was interrupted; run the merge "
                           f"again (or `vlabench run` with its config) to finish it")
    try:
        man = json.loads(mpath.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise RecordsError(f"{run_dir}: no manifest.json; not a complete run directory") from None
    except UnicodeDecodeError as e:
        raise RecordsError(f"{mpath}: not UTF-8 text (byte {e.start}); the file is damaged") from None
    except json.JSONDecodeError as e:
        raise RecordsError(f"{mpath}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(man, dict):
        raise RecordsError(f"{mpath}: not a manifest (a JSON object was expected)")
    if not seal_ok(man):
        raise RecordsError(f"{mpath} was edited by hand (its seal no longer matches its content)")
    if man.get("records_version") != RECORDS_VERSION:
        raise RecordsError(f"{run_dir}: records version {man.get('records_version')!r}; "
                           f"this vlabench reads version {RECORDS_VERSION}")
    for key in ("model", "pruner", "suite"):
        if not man.get(key):
            raise RecordsError(f"{mpath}: missing {key!r}")
    return man
