"""Sweeps and paper presets: the command line's overrides -> the jobs to launch.

Hydra's override grammar and its basic sweeper's expansion (a cross product of the comma lists,
range(), choice() and glob() sweeps; a later override of a key replaces an earlier one) turn
`vlabench run -m ...` into jobs. Every job is composed and validated (vlabench.launch.compose.compose)
before any is launched: an unknown setting, a bad value or two jobs that would write into one
run directory is one error and nothing is written. A setting that some chosen plugins lack
(`pruner.retention` for `pruner=none`) is dropped from those jobs when at least one other job
has it, and the jobs that become identical run once (one note line says so).

`+experiment=NAME` expands a preset, configs/experiment/NAME.yaml (format in its header): a
union of cross products in the same grammar; the user's other overrides apply to every job and
replace the preset's value of the same key. The `experiment` node never reaches a run's config.

Overrides of `hydra/...` or `hydra....` (e.g. hydra/launcher=submitit_slurm) are launcher
settings, passed to vlabench.launch.launchers.launch; they are accepted with -m or a preset only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vlabench.core import registry
from vlabench.core.errors import ConfigError
from vlabench.launch.jobs import Job

EXPERIMENT_KEYS = ("experiment", "+experiment", "++experiment")


@dataclass
class Request:
    """A `run` (or `plan`) command line, taken apart."""

    overrides: list[str]                       # everything composed (no hydra.*, no experiment)
    hydra: list[str] = field(default_factory=list)
    experiment: str | None = None

    @property
    def is_plain(self) -> bool:
        return self.experiment is None and not self.hydra


def _key(override: str) -> str:
    return override.partition("=")[0].lstrip("+~")


def split_request(args: list[str]) -> Request:
    """Separate the launcher (`hydra...`) overrides and the preset from the config overrides."""
    req = Request([])
    for a in args:
        key = _key(a)
        if key.startswith(("hydra/", "hydra.")):
            req.hydra.append(a)
        elif a.partition("=")[0] in EXPERIMENT_KEYS:
            if req.experiment is not None:
                raise ConfigError("give one +experiment=NAME per command; valid: "
                                  + ", ".join(preset_names()))
            req.experiment = a.partition("=")[2].strip()
        else:
            req.overrides.append(a)
    return req


# ---------------------------------------------------------------- presets

def preset_dirs() -> list[Path]:
    return [d / "experiment" for d in registry.config_dirs()]


def preset_names() -> list[str]:
    return sorted({p.stem for d in preset_dirs() if d.is_dir() for p in d.glob("*.yaml")})


def load_preset(name: str) -> dict[str, Any]:
    """The `experiment` mapping of configs/experiment/NAME.yaml (paper, table, description,
    sweeps: a list of {key: value in sweep grammar})."""
    from omegaconf import OmegaConf

    path = next((d / f"{name}.yaml" for d in preset_dirs() if (d / f"{name}.yaml").is_file()), None)
    if path is None:
        raise ConfigError(f"unknown experiment {name!r}; valid: {', '.join(preset_names())}")
    data = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    exp = data.get("experiment") if isinstance(data, dict) else None
    sweeps = exp.get("sweeps") if isinstance(exp, dict) else None
    if not isinstance(sweeps, list) or not all(isinstance(s, dict) and s for s in sweeps):
        raise ConfigError(f"{path}: needs experiment.sweeps, a list of {{key: value}} mappings")
    return exp


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return "null" if v is None else str(v)


# ---------------------------------------------------------------- expansion

def _parser() -> Any:
    """Hydra's override parser, with a config loader so glob() sees the config groups."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.core.override_parser.overrides_parser import OverridesParser

    search = create_config_search_path(str(registry.BUILTIN_CONFIGS))
    for d in registry.config_dirs()[:-1]:
        search.append("vlabench", f"file://{d}")
    return OverridesParser.create(config_loader=ConfigLoaderImpl(config_search_path=search))


def parse(overrides: list[str]) -> list[Any]:
    """Hydra Override objects; a syntax error is one line."""
    from hydra.errors import HydraException

    try:
        return _parser().parse_overrides(overrides)
    except HydraException as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"bad override: {first}") from None


def sweeps_in(overrides: list[str]) -> list[str]:
    """The overrides that are sweeps (comma lists, range(), choice(), glob()); [] when the
    line does not parse (compose then reports the syntax error as before)."""
    from hydra.errors import HydraException

    try:
        return [o.input_line for o in _parser().parse_overrides(overrides) if o.is_sweep_override()]
    except HydraException:
        return []


def expand(overrides: list[str]) -> list[list[str]]:
    """The basic sweeper's jobs: one override list per point of the cross product."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.errors import HydraException

    parsed = parse(overrides)
    try:
        return BasicSweeper.split_arguments(parsed, None)[0]
    except HydraException as e:
        raise ConfigError(f"bad override: {str(e).strip().splitlines()[0]}") from None


def job_overrides(req: Request) -> list[list[str]]:
    """Every job's overrides: the preset's sweeps (each with the user's overrides, which win
    over the preset's value of a key) or the command line's own cross product."""
    if req.experiment is None:
        return expand(req.overrides)
    exp = load_preset(req.experiment)
    mine = {o.key_or_group for o in parse(req.overrides)}
    out: list[list[str]] = []
    for sweep in exp["sweeps"]:
        base = [f"{k}={_text(v)}" for k, v in sweep.items() if str(k).lstrip("+~") not in mine]
        out += expand(base + req.overrides)
    return out


# ---------------------------------------------------------------- composition

def _canonical(cfg: Any) -> str:
    from omegaconf import OmegaConf

    return json.dumps(OmegaConf.to_container(cfg, resolve=True), sort_keys=True, default=str)


def compose_jobs(job_lists: list[list[str]]) -> tuple[list[Job], list[str]]:
    """Compose and validate every job; (jobs, note lines). Raises ConfigError (one line) on a
    bad job or two jobs that would share a run directory; see the module docstring."""
    from vlabench.launch.compose import UnknownKey, compose

    cache: dict = {}
    composed: list[tuple[list[str], Any]] = []
    dropped: dict[str, list[int]] = {}
    kept: set[str] = set()
    first_error: dict[str, UnknownKey] = {}
    for i, overrides in enumerate(job_lists):
        overrides = list(overrides)
        while True:
            try:
                cfg = compose(overrides, shipped_cache=cache)
                break
            except UnknownKey as e:
                hit = [o for o in overrides if _key(o) == e.key]
                if not hit or len(job_lists) == 1:
                    raise
                overrides = [o for o in overrides if o not in hit]
                dropped.setdefault(e.key, []).append(i)
                first_error.setdefault(e.key, e)
        kept |= {_key(o) for o in overrides}
        composed.append((overrides, cfg))
    for key, err in first_error.items():
        if key not in kept:
            raise err
    jobs: list[Job] = []
    seen: dict[str, int] = {}
    duplicates = 0
    for overrides, cfg in composed:
        canon = _canonical(cfg)
        if canon in seen:
            duplicates += 1
            continue
        seen[canon] = len(jobs)
        jobs.append(Job(tuple(overrides), cfg))
    _check_collisions(jobs)
    notes = []
    if dropped or duplicates:
        parts = [f"{k} dropped from {len(v)} job(s) whose config has no such setting"
                 for k, v in sorted(dropped.items())]
        parts += [f"{duplicates} identical job(s) removed, each config runs once"] if duplicates else []
        notes.append("note: " + "; ".join(parts))
    return jobs, notes


def _check_collisions(jobs: list[Job]) -> None:
    where: dict[Path, int] = {}
    for i, job in enumerate(jobs):
        d = job.run_dir
        if d in where:
            j = where[d]
            raise ConfigError(
                f"jobs {j + 1} ({' '.join(jobs[j].overrides)}) and {i + 1} ({' '.join(job.overrides)}) "
                f"would both write to {d}; give them distinct run.name values, or leave run.name "
                f"unset (the default name is one per distinct config)")
        where[d] = i


def jobs_for(req: Request, multirun: bool) -> tuple[list[Job], list[str]]:
    """The composed jobs of a `run`/`plan` command line (see the module docstring)."""
    if not multirun and req.experiment is None:
        swept = sweeps_in(req.overrides)
        if swept:
            raise ConfigError(f"{swept[0]} is a sweep; use -m to sweep "
                              f"(vlabench run -m {' '.join(req.overrides)})")
        if req.hydra:
            raise ConfigError(f"{req.hydra[0]} is a launcher setting; it applies with -m "
                              f"(vlabench run -m ...) or +experiment=NAME")
    if not multirun and req.experiment is None:
        from vlabench.launch.compose import compose

        return [Job(tuple(req.overrides), compose(req.overrides))], []
    return compose_jobs(job_overrides(req))


# ---------------------------------------------------------------- output and launch

def cfg_text(jobs: list[Job], which: str, hydra: list[str]) -> str:
    """`--cfg job|all`: each job's composed config as YAML under a `# job i/N: ...` line
    (`all` adds the launcher overrides)."""
    from omegaconf import OmegaConf

    if which not in ("job", "all"):
        raise ConfigError(f"--cfg {which}: valid: job, all")
    out = []
    if which == "all":
        out.append(f"# launcher overrides: {' '.join(hydra) or '(none: local)'}\n")
    for i, job in enumerate(jobs, 1):
        out.append(f"# job {i}/{len(jobs)}: {' '.join(job.overrides) or '(defaults)'}\n")
        out.append(OmegaConf.to_yaml(job.cfg, resolve=True))
    return "".join(out)


def _defaults_list() -> list[str]:
    from omegaconf import OmegaConf

    data = OmegaConf.to_container(OmegaConf.load(registry.BUILTIN_CONFIGS / "config.yaml"))
    out = []
    for d in data.get("defaults", []):
        out += [f"{k}={v}" for k, v in d.items()] if isinstance(d, dict) else [str(d)]
    return out


def info_text(jobs: list[Job], hydra: list[str]) -> str:
    """`--info`: config search path, groups and choices, each job's defaults list, the jobs."""
    lines = ["Config search path:"]
    extra = registry.config_dirs()[:-1]
    lines += [f"  file://{d} (VLABENCH_CONFIG_PATH)" for d in extra]
    lines += [f"  file://{registry.BUILTIN_CONFIGS} (vlabench)", "Config groups:"]
    for group in registry.GROUPS:
        lines.append(f"  {group}: {', '.join(sorted(registry.entries(group)))}")
    lines.append(f"  +experiment: {', '.join(preset_names())}")
    lines.append(f"Launcher overrides: {' '.join(hydra) or '(none: local)'}")
    lines.append(f"Jobs ({len(jobs)}):")
    defaults = _defaults_list()
    for i, job in enumerate(jobs, 1):
        picked = {_key(o): o.partition("=")[2] for o in job.overrides if _key(o) in registry.GROUPS}
        chosen = [f"{g}={picked[g]}" if g in picked else d for d in defaults
                  for g in [d.partition("=")[0]]]
        lines.append(f"  {i}. {job.run_dir}")
        lines.append(f"     overrides: {' '.join(job.overrides) or '(none)'}")
        lines.append(f"     defaults list: {', '.join(chosen)}")
    return "\n".join(lines) + "\n"


def plan_lines(jobs: list[Job], hydra: list[str]) -> list[str]:
    """The line(s) printed before launching a sweep."""
    launcher = next((h.partition("=")[2] for h in hydra if _key(h) == "hydra/launcher"), None)
    launcher = launcher or str(jobs[0].cfg.run.get("launcher", "local"))
    lines = [f"sweep: {len(jobs)} run{'s' if len(jobs) != 1 else ''} (launcher: {launcher})"]
    lines += [f"  [{i}/{len(jobs)}] {job.run_dir}" for i, job in enumerate(jobs, 1)]
    return lines


def launch(jobs: list[Job], hydra: list[str]) -> int:
    """Run the jobs through vlabench.launch.launchers (local, Ray, submitit); the exit code."""
    from vlabench.launch.launchers import launch as launch_jobs

    return launch_jobs(jobs, hydra)
