"""Every job's checkpoints checked up front, in seconds: before any simulator or model is built.

For each job whose model has a `checkpoint`, the directory it names (a local path, or an HF
repo id's snapshot in the Hugging Face cache, found offline) must hold every file its loader
reads (`LAYOUTS`, per model family: vlabench/models/checkpoint.py, pi0/checkpoint.py). All
problems of all jobs are one ConfigError: "4 checkpoints missing: A (libero_spatial: 14 runs),
...; about 15.7 GB each; get them with `vlabench fetch ...`". No torch, no network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlabench.core.errors import ConfigError
from vlabench.models.checkpoint_spec import (
    download_command,
    locate,
    looks_local,
    per_suite,
)

WEIGHTS = "model.safetensors.index.json and the shards it lists, or model.safetensors"
TOKENIZER = "tokenizer.model or tokenizer.json, with tokenizer_config.json"
# what each family's loader reads (the plugin's function name -> the files, as people name them)
LAYOUTS: dict[str, tuple[str, ...]] = {
    "build_openvla": ("config.json", WEIGHTS, "dataset_statistics.json (or norm_stats in config.json)",
                      TOKENIZER),
    "build_openvla_oft": ("config.json", WEIGHTS, "dataset_statistics.json (or norm_stats in config.json)",
                          TOKENIZER, "one action_head--<step>_checkpoint.pt",
                          "one proprio_projector--<step>_checkpoint.pt"),
    "build_pi0": ("config.json", WEIGHTS),   # statistics may sit inside the weights; tokenizer: model.tokenizer
    "tokenizer": ("tokenizer.model or tokenizer.json",),
}


def family(model_cfg: Any) -> str:
    """The loader family of a model config (its plugin's function name)."""
    return str(model_cfg.get("plugin", "")).rpartition(":")[2]


def _has_one(path: Path, stem: str) -> bool:
    return len([f for f in path.glob(f"{stem}--*checkpoint.pt")]) == 1


def _weights_ok(path: Path) -> bool:
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            shards = set(json.loads(index.read_text()).get("weight_map", {}).values())
        except (OSError, ValueError, AttributeError):
            return False
        return bool(shards) and all((path / s).is_file() for s in shards)
    return (path / "model.safetensors").is_file() or any(path.glob("*.safetensors"))


def _stats_ok(path: Path) -> bool:
    if (path / "dataset_statistics.json").is_file():
        return True
    try:
        return bool(json.loads((path / "config.json").read_text()).get("norm_stats"))
    except (OSError, ValueError, AttributeError):
        return False


def missing_files(path: Path, kind: str) -> list[str]:
    """The layout's parts (`LAYOUTS[kind]`) that the directory `path` lacks."""
    checks = {
        "config.json": lambda: (path / "config.json").is_file(),
        WEIGHTS: lambda: _weights_ok(path),
        TOKENIZER: lambda: ((path / "tokenizer.model").is_file() or (path / "tokenizer.json").is_file())
        and (path / "tokenizer_config.json").is_file(),
        "tokenizer.model or tokenizer.json": lambda: any((path / f).is_file()
                                                         for f in ("tokenizer.model", "tokenizer.json")),
        "one action_head--<step>_checkpoint.pt": lambda: _has_one(path, "action_head"),
        "one proprio_projector--<step>_checkpoint.pt": lambda: _has_one(path, "proprio_projector"),
    }
    return [part for part in LAYOUTS.get(kind, ("config.json",))
            if not checks.get(part, lambda: _stats_ok(path))()]


@dataclass
class Needed:
    """One checkpoint value some jobs need, and what is wrong with it."""

    spec: str
    model: str
    kind: str
    suites: set[str] = field(default_factory=set)
    jobs: int = 0
    problem: str | None = None      # None: present and complete


def needed(cfgs: list[Any]) -> list[Needed]:
    """Every distinct checkpoint the configs need (in first-use order), each checked."""
    out: dict[str, Needed] = {}
    for cfg in cfgs:
        spec = cfg.model.get("checkpoint")
        if spec is None:
            continue
        suite = str(cfg.suite.get("name", ""))
        where = per_suite(spec)
        value = where.get(None, where.get(suite))
        if value is None:   # no checkpoint for this suite: resolve_checkpoint's own error says so
            continue
        n = out.setdefault(value, Needed(value, str(cfg.model.name), family(cfg.model)))
        n.suites.add(suite)
        n.jobs += 1
    for n in out.values():
        n.problem = problem(n.spec, n.kind)
    tokenizers = {str(c.model.get("tokenizer")): str(c.suite.get("name", "")) for c in cfgs
                  if family(c.model) == "build_pi0" and c.model.get("checkpoint") is not None
                  and c.model.get("tokenizer") not in (None, "stand-in")}
    for n in list(out.values()):   # pi0 without tokenizer files: model.tokenizer's repository
        path = locate(n.spec) if n.kind == "build_pi0" else None
        if path is None or any((path / f).is_file() for f in ("tokenizer.model", "tokenizer.json")):
            continue
        for repo, suite in tokenizers.items():
            if repo not in out and tokenizer_problem(repo):
                out[repo] = Needed(repo, "", "tokenizer", {suite}, n.jobs, tokenizer_problem(repo))
    return list(out.values())


def tokenizer_problem(spec: str) -> str | None:
    """What is wrong with a tokenizer source (a directory or an HF repo id) here, or None."""
    if looks_local(spec):
        p = Path(spec).expanduser()
        return None if p.is_dir() and not missing_files(p, "tokenizer") else "no tokenizer files there"
    from vlabench.models.checkpoint_spec import cached_file

    if any(cached_file(spec, f) for f in ("tokenizer.model", "tokenizer.json")):
        return None
    return "tokenizer files not in the Hugging Face cache"


def problem(spec: str, kind: str) -> str | None:
    """What is wrong with one checkpoint value here (None: every file of its layout is present)."""
    path = locate(spec)
    if path is None:
        return "directory not found" if looks_local(spec) else "not in the Hugging Face cache"
    gone = missing_files(path, kind)
    if not gone:
        return None
    if len(gone) == len(LAYOUTS.get(kind, ("config.json",))):
        return f"{path} holds none of the files the {kind.removeprefix('build_')} layout needs: " + "; ".join(gone)
    return f"{path} lacks " + "; ".join(gone)


def check_checkpoints(cfgs: list[Any], fetch_hint: str | None = None) -> None:
    """Raise one ConfigError naming every missing or incomplete checkpoint of `cfgs`."""
    bad = [n for n in needed(cfgs) if n.problem]
    if not bad:
        return
    from vlabench.models.checkpoint_size import size_text

    label = "checkpoint" if len(bad) == 1 else "checkpoints"
    parts = [f"{n.spec} ({', '.join(sorted(n.suites)) or 'all suites'}: {n.jobs} run{'s' * (n.jobs != 1)}; "
             f"{n.problem})" for n in bad]
    remote = [n.spec for n in bad if not looks_local(n.spec)]
    size = size_text({n.model for n in bad}, len(bad))
    get = []
    if remote:
        get.append(f"`{fetch_hint}`" if fetch_hint else "`vlabench fetch` with the same arguments")
        get.append("`" + " && ".join(download_command(r) for r in remote) + "`")
    how = f"; get them with {' or '.join(get)}" if get else ""
    local = "; pass existing directories with model.checkpoint=/path" if len(remote) < len(bad) else ""
    raise ConfigError(f"{len(bad)} {label} missing or incomplete: {', '.join(parts)}{size}{how}{local} "
                      f"(nothing was run)")
