"""Reading a pruner's options from its config node (an OmegaConf node, a dict, or None)."""

from __future__ import annotations

from typing import Any


def option(cfg: Any, key: str, default: Any = None) -> Any:
    """`cfg[key]`, or `default` when the node or the key is missing, null, or an interpolation
    that does not resolve (a pruner node composed without the rest of the run config)."""
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
