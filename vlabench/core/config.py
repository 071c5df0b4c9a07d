"""Reading a composed config: keys of DictConfig or dict nodes, and the value checks every layer shares.

Nothing here imports Hydra, torch or a simulator; composing a run's config from overrides is
`vlabench.launch.compose`.
"""

from __future__ import annotations

from typing import Any

from vlabench.core.errors import ConfigError


def cfg_get(cfg: Any, key: str, default: Any = None) -> Any:
    """`cfg[key]` of a DictConfig, dict or None; `default` when the node or key is missing, null,
    or an interpolation that does not resolve (a node composed without the rest of the run)."""
    if cfg is None:
        return default
    try:
        v = cfg.get(key, default)
    except AttributeError:
        v = getattr(cfg, key, default)
    except Exception as e:                      # omegaconf's InterpolationResolutionError
        if type(e).__module__.startswith("omegaconf"):
            return default
        raise
    return default if v is None else v


def as_dict(node: Any) -> dict[str, Any]:
    """A plain dict of a mapping option (OmegaConf containers resolved)."""
    if node is None:
        return {}
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(node):
            return dict(OmegaConf.to_container(node, resolve=True))
    except ImportError:
        pass
    return dict(node)


BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True,
              "false": False, "no": False, "off": False, "0": False}


BOOL_VALID = "true/false, yes/no, on/off, 1/0"


def strict_bool(key: str, v: Any) -> bool:
    """`v` as a boolean: true/false, yes/no, on/off, 1/0 (any case); anything else refused."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int | str) and str(v).strip().lower() in BOOL_WORDS:
        return BOOL_WORDS[str(v).strip().lower()]
    raise ConfigError(f"{key}={v!r} is not a boolean; valid: {BOOL_VALID}")


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def shard_spec(v: Any) -> tuple[int, int] | None:
    """(i, n) of a shard spec "i/n" (1 <= i <= n), else None."""
    import re

    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(v)) if isinstance(v, str) else None
    if not m:
        return None
    i, n = int(m.group(1)), int(m.group(2))
    return (i, n) if 1 <= i <= n else None
