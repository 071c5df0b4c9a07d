"""Compose a run's configuration with Hydra's compose API and validate it."""

from __future__ import annotations

from typing import Any

from vlabench import registry
from vlabench.registry import ConfigError


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


def _searchpath_override() -> list[str]:
    extra = registry.config_dirs()[:-1]
    if not extra:
        return []
    return ["hydra.searchpath=[" + ",".join(f"file://{p}" for p in extra) + "]"]


def _check_group_choices(overrides: list[str]) -> None:
    """Unknown plugin names get our one-line error before Hydra's longer one."""
    for o in overrides:
        key, sep, value = o.lstrip("+~").partition("=")
        if sep and key in registry.GROUPS:
            registry.entry(key, value)


def compose(overrides: list[str] | None = None, config_name: str = "config") -> Any:
    """The composed, validated DictConfig for `overrides` (plain Hydra override strings)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    overrides = list(overrides or [])
    _check_group_choices(overrides)
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(str(registry.BUILTIN_CONFIGS), version_base="1.3"):
            cfg = hydra_compose(config_name, overrides=overrides + _searchpath_override())
    except (HydraException, OmegaConfBaseException) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"bad override: {first}") from None
    finally:
        GlobalHydra.instance().clear()
    OmegaConf.resolve(cfg)
    validate(cfg)
    return cfg


def validate(cfg: Any) -> None:
    """Range checks that Hydra cannot express; raises ConfigError with the valid values."""
    run, suite = cfg.run, cfg.suite
    for key in ("episodes_per_task", "max_steps"):
        v = run.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v <= 0):
            raise ConfigError(f"run.{key} must be a positive integer or null, got {v!r}")
    n = suite.get("num_tasks")
    tasks = suite.get("tasks")
    if tasks is not None and n is not None:
        tasks = list(tasks) if not isinstance(tasks, int) else [tasks]
        bad = [t for t in tasks if not isinstance(t, int) or not 0 <= t < n]
        if bad or not tasks:
            raise ConfigError(
                f"suite.tasks={tasks} is invalid for {suite.name}: task ids are 0..{n - 1}"
            )
        if len(set(tasks)) != len(tasks):
            raise ConfigError(f"suite.tasks={tasks} lists a task twice")
    dev = str(run.get("device", "auto"))
    if dev not in ("auto", "cpu", "cuda", "meta") and not dev.startswith("cuda:"):
        raise ConfigError(f"run.device={dev!r} is invalid; valid: auto, cpu, cuda, cuda:N")
