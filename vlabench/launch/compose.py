"""Compose a run's configuration with Hydra's compose API and validate it.

`validate` is the one place where every option's type and range are checked, before anything
is created: an option whose shipped default is a boolean, an integer or a number must stay
one (booleans parse strictly: true/false, yes/no, on/off, 1/0), and `RANGES` holds the ranges.
A run composed without `run.name` gets its default name here (vlabench.records.naming).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from vlabench.core import registry
from vlabench.core.config import as_dict, is_int, is_number, shard_spec, strict_bool
from vlabench.core.errors import ConfigError


def _searchpath_override() -> list[str]:
    extra = registry.config_dirs()[:-1]
    if not extra:
        return []
    return ["hydra.searchpath=[" + ",".join(f"file://{p}" for p in extra) + "]"]


QUOTING_HINT = ("quote values with spaces, quotes or non-ASCII letters for Hydra, e.g. "
                "\"run.name='my run'\" (the double quotes are for the shell)")


def _group_choices(overrides: list[str]) -> list[str]:
    """The overrides that choose a plugin (`model=x`), which decide the shipped defaults."""
    return [o for o in overrides if o.partition("=")[0].lstrip("+~") in registry.GROUPS
            and "=" in o]


_PLAIN_SETTING = re.compile(r"^(?!hydra[.=])[A-Za-z_][\w.]*=")


def _plain_settings(overrides: list[str]) -> bool:
    """True when every override is a plugin choice or a plain `key=value` setting: then a job
    is its plugins' composed defaults with the settings applied (`_with_settings`)."""
    groups = set(_group_choices(overrides))
    return all(o in groups or _PLAIN_SETTING.match(o) for o in overrides)


def _with_settings(shipped: Any, settings: list[str]) -> Any:
    """`shipped` (a copy of the plugins' composed defaults) with `key=value` settings applied by
    Hydra's own parser and override step, as its compose applies them after the defaults list;
    a sweep composes each plugin combination once (tests/test_compose_sweep_fast_path.py)."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra.core.override_parser.overrides_parser import OverridesParser

    cfg = copy.deepcopy(shipped)
    ConfigLoaderImpl._apply_overrides_to_config(OverridesParser.create().parse_overrides(settings), cfg)
    return cfg


def _check_group_choices(overrides: list[str]) -> None:
    """Unknown plugin names get our one-line error (with the closest name) before Hydra's."""
    import difflib

    for o in _group_choices(overrides):
        key, _, value = o.lstrip("+~").partition("=")
        names = sorted(registry.entries(key))
        if value not in names:
            close = difflib.get_close_matches(value, names, n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]}?)" if close else ""
            raise ConfigError(f"unknown {key} {value!r}{hint}; valid: {', '.join(names)}")


def compose(overrides: list[str] | None = None, config_name: str = "config",
            shipped_cache: dict | None = None) -> Any:
    """The composed, validated DictConfig for `overrides` (plain Hydra override strings).
    `shipped_cache`: a dict that keeps the plugins' composed defaults between calls (a sweep)."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    overrides = list(overrides or [])
    _check_group_choices(overrides)
    GlobalHydra.instance().clear()
    shipped = None
    try:
        with initialize_config_dir(str(registry.BUILTIN_CONFIGS), version_base="1.3"):
            key = (config_name, *_group_choices(overrides), *_searchpath_override())
            if shipped_cache is None or key not in shipped_cache:
                shipped = hydra_compose(config_name, overrides=list(key[1:]))
                if shipped_cache is not None:
                    shipped_cache[key] = shipped
            shipped = copy.deepcopy(shipped_cache[key]) if shipped_cache is not None else shipped
            if shipped_cache is not None and _plain_settings(overrides):
                cfg = _with_settings(shipped, [o for o in overrides if o not in key[1:]])
            else:
                cfg = hydra_compose(config_name, overrides=overrides + _searchpath_override())
    except (HydraException, OmegaConfBaseException) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        missing = re.match(r"Could not override '([^']+)'", first)
        if missing and shipped is not None:
            raise unknown_key(missing.group(1), shipped) from None
        hint = f"; {QUOTING_HINT}" if "LexerNoViableAlt" in first or "mismatched input" in first else ""
        raise ConfigError(f"bad override: {first}{hint}") from None
    finally:
        GlobalHydra.instance().clear()
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as e:
        raise ConfigError(f"bad override: {str(e).strip().splitlines()[0]}") from None
    validate(cfg, shipped)
    apply_smoke(cfg)
    drop_frozen_timing(cfg, shipped)
    if not any(o.lstrip("+~").partition("=")[0] == "run.name" for o in overrides):
        from vlabench.records.naming import default_name

        cfg.run.name = default_name(cfg, shipped)
    return cfg


class UnknownKey(ConfigError):
    """An override names a setting the composed config does not have (`key`: dotted)."""

    def __init__(self, message: str, key: str):
        super().__init__(message)
        self.key = key


def unknown_key(key: str, shipped: Any) -> UnknownKey:
    """One line for an override of a missing setting: the closest valid key first, then the
    valid keys of its node (`shipped`: the composed defaults of the chosen plugins)."""
    import difflib

    from omegaconf import DictConfig

    parts = key.split(".")
    node, depth = shipped, 0   # the deepest existing mapping on the key's path
    for part in parts[:-1]:
        child = node.get(part) if isinstance(node, DictConfig) else None
        if not isinstance(child, DictConfig):
            break
        node, depth = child, depth + 1
    prefix = ".".join(parts[:depth])
    valid = [f"{prefix}.{k}" if prefix else str(k) for k in node.keys()]
    wanted = ".".join(parts[:depth + 1])
    close = difflib.get_close_matches(wanted, valid, n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]}?)" if close else ""
    where = f" for {prefix}={node.get('name')}" if prefix in registry.GROUPS and node.get("name") else ""
    return UnknownKey(f"unknown setting {key}{where}{hint}; valid: {', '.join(valid)}", key)


def _leaves(node: Any, prefix: str = ""):
    """(dotted key, key, value) of every leaf of a DictConfig that is not itself a mapping."""
    from omegaconf import DictConfig

    for k in node.keys():
        v = node._get_node(k)
        path = f"{prefix}{k}"
        if isinstance(v, DictConfig):
            yield from _leaves(v, path + ".")
        else:
            yield path, k, node[k]


def check_types(cfg: Any, shipped: Any) -> None:
    """Each option keeps the kind of its shipped default (bool, int, number); booleans given as
    words are converted in place. Options without a scalar default are checked by RANGES."""
    from omegaconf import DictConfig, OmegaConf

    for path, k, default in _leaves(shipped):
        if default is None or not isinstance(default, bool | int | float):
            continue
        node = OmegaConf.select(cfg, path.rsplit(".", 1)[0]) if "." in path else cfg
        if not isinstance(node, DictConfig) or k not in node:
            continue
        v = node[k]
        if v is None or isinstance(v, DictConfig):
            continue  # null, or a mapping that replaced a scalar (per-suite settings)
        if OmegaConf.is_list(node._get_node(k)):
            v = list(OmegaConf.to_container(node[k]))
        if isinstance(default, bool):
            b = strict_bool(path, v)
            if b is not v:
                node[k] = b
        elif is_int(default) and not is_int(v):
            raise ConfigError(f"{path}={v!r} is not an integer (the default is {default})")
        elif isinstance(default, float) and not is_number(v):
            raise ConfigError(f"{path}={v!r} is not a number (the default is {default})")


# dotted key -> (test of a non-null value, the valid values): the ranges Hydra cannot express
# (run.episodes_per_task, run.max_steps, run.device and suite.tasks: see `validate`).
RANGES: dict[str, tuple[Any, str]] = {
    "run.seed": (lambda v: is_int(v) and 0 <= v < 2**63, "an integer >= 0"),
    "run.output_dir": (lambda v: isinstance(v, str) and v.strip() != "" and "\0" not in v,
                       "a directory path"),
    "bench.calls": (lambda v: is_int(v) and v > 0, "a positive integer"),
    "bench.seed": (lambda v: is_int(v) and 0 <= v < 2**63, "an integer >= 0"),
    "pruner.retention": (lambda v: _retentions_ok(v), "a fraction in (0, 1], or one per suite"),
    "run.env_workers": (lambda v: is_int(v) and 1 <= v <= 256, "an integer from 1 to 256, or auto"),
    "run.batch": (lambda v: is_int(v) and 1 <= v <= 256, "an integer from 1 to 256"),
    "run.batch_wait_ms": (lambda v: is_number(v) and 0 <= v <= 60000, "a number of milliseconds from 0 to 60000"),
    "run.shard": (lambda v: shard_spec(v) is not None, "i/n with 1 <= i <= n, e.g. run.shard=1/4"),
    "run.shards": (lambda v: is_int(v) and 1 <= v <= 4096, "a positive integer, or null"),
    "run.launcher": (lambda v: v in LAUNCHERS, "local, ray (SLURM: hydra/launcher=submitit_slurm)"),
    "ray.address": (lambda v: isinstance(v, str) and v.strip() != "", "auto, ray://host:port, or null"),
    "ray.num_gpus": (lambda v: is_number(v) and v >= 0, "a number >= 0, or null"),
    "ray.num_cpus": (lambda v: is_number(v) and v > 0, "a number > 0"),
    "run.video": (lambda v: v in ("none", "failures", "all"), "none, failures, all"),
    "run.logger": (lambda v: _logger_ok(v), "none, wandb, tensorboard"),
    "run.record_obs": (lambda v: is_int(v) and v >= 0, "an integer >= 0 (0: record nothing)"),
    "run.smoke_steps": (lambda v: is_int(v) and v > 0, "a positive integer"),
}


LAUNCHERS = ("local", "ray")


def _logger_ok(v: Any) -> bool:
    """A known tracker whose package is installed (ConfigError naming the pip install if not)."""
    from vlabench.run.loggers import check

    return check(v)


def _retentions_ok(v: Any) -> bool:
    vals = list(as_dict(v).values()) if hasattr(v, "keys") else [v]
    return all(is_number(x) and 0 < x <= 1 for x in vals)


def check_ranges(cfg: Any) -> None:
    from omegaconf import OmegaConf

    for key, (ok, valid) in RANGES.items():
        v = OmegaConf.select(cfg, key, default=None)
        if v is not None and not ok(v):
            shown = as_dict(v) if hasattr(v, "keys") else v
            raise ConfigError(f"{key}={shown!r} is invalid; valid: {valid}")


def validate(cfg: Any, shipped: Any) -> None:
    """Types (against the `shipped` defaults) and ranges of every option; raises ConfigError
    (one line, naming the valid values) before anything is created."""
    resolve_auto_workers(cfg)
    check_types(cfg, shipped)
    for group in ("run", "bench", "ray", "timing"):   # fixed settings: a `+run.typo=1` is a typo, not a plugin key
        extra = sorted(set(cfg.get(group) or {}) - set(shipped.get(group) or {}))
        if extra:
            raise unknown_key(f"{group}.{extra[0]}", shipped)
    run, suite = cfg.run, cfg.suite
    for key in ("episodes_per_task", "max_steps"):
        v = run.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v <= 0):
            raise ConfigError(f"run.{key} must be a positive integer or null, got {v!r}")
    check_ranges(cfg)
    for key in ("quiet", "overwrite"):
        if key in run:
            run[key] = strict_bool(f"run.{key}", run[key])
    from vlabench.records.rundir import run_dir_path

    run_dir_path(run.get("output_dir"), run.get("name"))
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
    check_timing(cfg)
    check_batch(cfg)
    dev = str(run.get("device", "auto"))
    if dev not in ("auto", "cpu", "cuda", "meta") and not (dev.startswith("cuda:") and dev[5:].isdigit()):
        raise ConfigError(f"run.device={dev!r} is invalid; valid: auto, cpu, cuda, cuda:N")


def resolve_auto_workers(cfg: Any) -> None:
    """run.env_workers=auto: one simulator worker per core the process may use, less one for
    the policy's process, at most AUTO_WORKERS_MAX; says which on stderr."""
    run = cfg.get("run")
    if run is None or run.get("env_workers") != "auto":
        return
    import os
    import sys

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    run.env_workers = max(1, min(AUTO_WORKERS_MAX, cores - 1))
    print(f"vlabench: run.env_workers=auto -> {run.env_workers} ({cores} cores: one per core but "
          f"one, at most {AUTO_WORKERS_MAX})", file=sys.stderr)


AUTO_WORKERS_MAX = 16


def check_batch(cfg: Any) -> None:
    """run.batch > 1 batches the calls of several simulator workers."""
    run = cfg.run
    batch, workers = run.get("batch") or 1, run.get("env_workers") or 1
    if batch > 1 and workers < 2:
        raise ConfigError(f"run.batch={batch} batches the calls of several simulator workers: set "
                          f"run.env_workers >= 2 (or auto), or run.batch=1")
    if batch > 1 and "privileged" in list(cfg.model.get("needs") or ()):
        raise ConfigError(f"run.batch={batch}: {cfg.model.name} reads the live simulator, so each worker "
                          f"runs its own copy and there are no calls to batch; valid: run.batch=1")


def apply_smoke(cfg: Any) -> None:
    """run.smoke=true (lm-eval's --limit): the first selected task, one episode, at most
    run.smoke_steps steps; the episode count and step cap are recorded as deviations, as typed."""
    run = cfg.run
    if not strict_bool("run.smoke", run.get("smoke", False)):
        return
    tasks = cfg.suite.get("tasks")
    first = 0 if tasks is None else (tasks if isinstance(tasks, int) else list(tasks)[0])
    cfg.suite.tasks = [first]
    run.episodes_per_task = 1
    steps = int(run.smoke_steps)
    run.max_steps = min(steps, run.max_steps) if run.get("max_steps") else steps


def check_timing(cfg: Any) -> None:
    """suite.timing, timing.latency (a shipped or given profile must load), timing.hold."""
    from vlabench.core.timing import check_hold, check_mode, mode_of, parse_latency

    mode = check_mode(mode_of(cfg))
    timing = cfg.get("timing")
    if timing is None:
        return
    kind, value = parse_latency(timing.get("latency", "measured"))
    check_hold(timing.get("hold", "zero"))
    band = timing.get("deadband_mps")
    if band is not None and not (is_number(band) and band >= 0):
        raise ConfigError(f"timing.deadband_mps={band!r} is invalid; valid: a number >= 0 (m/s)")
    if mode != "frozen" and not (is_number(cfg.suite.get("control_hz")) and cfg.suite.control_hz > 0):
        raise ConfigError(f"suite.timing={mode} needs the suite's control rate; {cfg.suite.name} has no "
                          f"suite.control_hz; valid: suite.timing=frozen")
    if kind == "profile" and mode != "frozen":
        from vlabench.metrics.latency_model import load_profile

        load_profile(value)


def drop_frozen_timing(cfg: Any, shipped: Any) -> None:
    """A frozen run's config (and so its config.yaml, name and records) carries no timing keys:
    byte for byte a run made before suite.timing existed, and older runs resume unchanged."""
    from omegaconf import open_dict

    from vlabench.core.timing import mode_of

    if mode_of(cfg) != "frozen":
        return
    for node in (cfg, shipped):
        if node is None:
            continue
        with open_dict(node):
            node.pop("timing", None)
            if node.get("suite") is not None:
                node.suite.pop("timing", None)
