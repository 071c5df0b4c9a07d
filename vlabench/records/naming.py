"""The default run name: one per distinct config, the same for a sweep's job and a typed run.

Format (used when the user does not set run.name):

    <model>-<pruner>-<suite>[__<k>=<v>,<k>=<v>...][~<hash8>][.shard-<i>-of-<n>]

- `<model>-<pruner>-<suite>`: the plugins' `name`s, as before this module existed.
- `__k=v,...`: every leaf that differs from the shipped defaults of the chosen plugins (or that
  the defaults lack, or `k=~` for one they have and the config dropped), sorted by dotted key,
  leaving out the keys that do not change what an episode means or that a run grows along
  (vlabench/records/runkeys.py NEUTRAL and GROWABLE), run.name and run.shard; a mapping that replaced
  a scalar (or the reverse) is one value. A key is written without its group (`retention`,
  `alpha.libero_spatial`) when no other group has that key, else whole (`run.max_steps`, since
  suite.max_steps exists too). Values: numbers as Python writes them, true/false, null, `~` for
  a dropped key, lists joined with `+` (`[1,2]` -> `1+2`), mappings as `k:v+k:v`.
- `~<hash8>`: the first 8 hex digits of the sha256 of the differing leaves (canonical JSON),
  added when a value had characters outside [A-Za-z0-9._+~-] (replaced by `_`) or the name would
  exceed MAX_CHARS (then the `__...` part is cut first); it keeps such names distinct.
- `.shard-<i>-of-<n>`: for run.shard="i/n" (vlabench.records.shards.shard_name); `vlabench merge`
  strips it (vlabench.records.shards.base_name) to find the merged run's name.

Example: `openvla-oft-tiny-fastv-libero_spatial__retention=0.25,run.max_steps=8`.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from vlabench.records.runkeys import NAME_KEY, SHARD_KEY, is_growable, is_neutral

MAX_CHARS = 160
SEP = "__"
SAFE = re.compile(r"[^A-Za-z0-9._+~-]")
_DROPPED = object()


def _plain(node: Any) -> Any:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    """Dotted key -> leaf value of a nested dict (lists and scalars are leaves)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        path = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(_flat(v, path + "."))
        else:
            out[path] = v
    return out


def _skipped(path: str) -> bool:
    skip = {".".join(NAME_KEY), ".".join(SHARD_KEY)}
    return path in skip or is_neutral(path) or is_growable(path)


def _diff(have: Any, base: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(have, dict) and isinstance(base, dict) and have:
        for k in sorted(set(have) | set(base), key=str):
            _diff(have.get(k, _DROPPED), base.get(k, _DROPPED), f"{prefix}{k}.", out)
        return
    path = prefix.rstrip(".")
    if have != base and not _skipped(path):
        out[path] = have


def differing(cfg: Any, shipped: Any) -> dict[str, Any]:
    """Dotted key -> value of the episode-defining settings where `cfg` leaves the shipped
    defaults (a mapping that replaced a scalar, or the reverse, is one value)."""
    out: dict[str, Any] = {}
    _diff(_plain(cfg), _plain(shipped), "", out)
    return dict(sorted(out.items()))


def _value(v: Any) -> str:
    if v is _DROPPED:
        return "~"
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list | tuple):
        return "+".join(_value(x) for x in v)
    if isinstance(v, dict):
        return "+".join(f"{k}:{_value(x)}" for k, x in sorted(v.items(), key=str))
    return str(v)


def _short_keys(paths: list[str], all_paths: set[str]) -> dict[str, str]:
    """Each path without its group when no other group has that key, else the whole path."""
    seen: dict[str, int] = {}
    for p in all_paths:
        rest = p.partition(".")[2]
        seen[rest] = seen.get(rest, 0) + 1
    return {p: (p.partition(".")[2] if seen.get(p.partition(".")[2], 0) <= 1 and "." in p else p)
            for p in paths}


def default_name(cfg: Any, shipped: Any) -> str:
    """The run name of `cfg` (composed) given the defaults of its chosen plugins (see above)."""
    base = f"{cfg.model.name}-{cfg.pruner.name}-{cfg.suite.name}"
    diff = differing(cfg, shipped)
    shard = cfg.run.get("shard")
    suffix = ""
    if shard is not None:
        from vlabench.core.config import shard_spec
        from vlabench.records.shards import shard_name

        suffix = shard_name("", *shard_spec(shard))
    if not diff:
        return base + suffix
    all_paths = set(_flat(_plain(cfg))) | set(_flat(_plain(shipped)))
    keys = _short_keys(list(diff), all_paths)
    raw = ",".join(f"{keys[p]}={_value(v)}" for p, v in diff.items())
    safe = ",".join(f"{SAFE.sub('_', keys[p])}={SAFE.sub('_', _value(v))}" for p, v in diff.items())
    text = f"{base}{SEP}{safe}"
    if safe != raw or len(text) + len(suffix) > MAX_CHARS:
        canon = json.dumps({p: ("~dropped~" if v is _DROPPED else v) for p, v in diff.items()},
                           sort_keys=True, default=str)
        tag = "~" + hashlib.sha256(canon.encode()).hexdigest()[:8]
        room = MAX_CHARS - len(suffix) - len(tag)
        text = text[:room].rstrip(",=") + tag
    return text + suffix


def unshard(name: str) -> str:
    """`name` without a `.shard-i-of-n` suffix (the merged run's name)."""
    from vlabench.records.shards import base_name

    return base_name(name) or name
