"""`hydra/launcher=submitit_slurm` (or `submitit_local`): each run a job of Hydra's submitit
launcher plugin (pip install "vlabench[slurm]"; hydra-submitit-launcher and submitit).

The launcher is Hydra's own: its config comes from vlabench's config tree plus the
`hydra/launcher=...` and `hydra.launcher.*` overrides (partition, timeout_min, gpus_per_node,
array_parallelism, ...), it submits one job per run with that run's overrides, and each job
composes the run's config with `vlabench.launch.compose.compose` (the same validation as `vlabench
run`) and runs it. Hydra's sweep folder, with submitit's logs and scripts, is
`<run.output_dir>/.submitit/<UTC time>`; the run directories are where `vlabench run` puts
them, so run.output_dir must be on a filesystem the cluster's nodes share (relative paths are
made absolute here). A job that is preempted or killed keeps its finished episodes; submitting
the same command again resumes each run.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from vlabench.core.errors import ConfigError
from vlabench.launch.jobs import Job


def run_job(hydra_cfg: Any) -> int:
    """The task function each submitit job runs: compose this job's overrides, run them."""
    from hydra.core.hydra_config import HydraConfig

    from vlabench.launch.compose import compose
    from vlabench.run.runner import run_from_config

    overrides = list(HydraConfig.get().overrides.task)
    return 0 if run_from_config(compose(overrides)) is not None else 1


def quote(value: str) -> str:
    """`value` as a quoted Hydra override value."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def job_overrides(job: Job) -> list[str]:
    """The job's overrides with run.output_dir made absolute (jobs may start elsewhere)."""
    out = [o for o in job.overrides if o.partition("=")[0].lstrip("+~") != "run.output_dir"]
    return out + [f"run.output_dir={quote(str(Path(str(job.cfg.run.output_dir)).resolve()))}"]


def launch_submitit(jobs: list[Job], hydra_overrides: list[str]) -> int:
    """Submit one job per run through Hydra's submitit launcher; wait; 0 when all finished."""
    import importlib.util

    if not all(importlib.util.find_spec(m) for m in ("submitit", "hydra_plugins.hydra_submitit_launcher")):
        raise ConfigError('hydra/launcher=submitit_* needs the submitit launcher: pip install '
                          '"vlabench[slurm]"') from None
    from hydra._internal.callbacks import Callbacks
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.plugins import Plugins
    from hydra.core.utils import JobStatus
    from hydra.errors import HydraException
    from hydra.types import HydraContext, RunMode
    from omegaconf.errors import OmegaConfBaseException
    from submitit.core.utils import UncompletedJobError

    from vlabench.core.registry import BUILTIN_CONFIGS
    from vlabench.launch.compose import _searchpath_override

    root = Path(str(jobs[0].cfg.run.output_dir)).resolve()
    sweep_dir = root / ".submitit" / time.strftime("%Y-%m-%dT%H-%M-%SZ", time.gmtime())
    given = {o.partition("=")[0] for o in hydra_overrides}
    extra = [] if "hydra.sweep.dir" in given else [f"hydra.sweep.dir={quote(str(sweep_dir))}"]
    extra += [] if "hydra.job.chdir" in given else ["hydra.job.chdir=false"]
    extra += _searchpath_override()   # VLABENCH_CONFIG_PATH's plugin configs, as compose does
    GlobalHydra.instance().clear()
    try:
        Plugins.instance()   # discovers the launcher plugin and registers its configs
        loader = ConfigLoaderImpl(config_search_path=create_config_search_path(str(BUILTIN_CONFIGS)))
        cfg = loader.load_configuration("config", overrides=list(hydra_overrides) + extra,
                                        run_mode=RunMode.MULTIRUN)
        context = HydraContext(config_loader=loader, callbacks=Callbacks(cfg))
        launcher = Plugins.instance().instantiate_launcher(hydra_context=context, task_function=run_job,
                                                           config=cfg)
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(f"bad launcher override: {str(e).strip().splitlines()[0]}") from None
    print(f"vlabench: submitting {len(jobs)} run(s) with {cfg.hydra.launcher._target_.rsplit('.', 1)[-1]}; "
          f"logs in {cfg.hydra.sweep.dir}", file=sys.stderr)
    try:
        returns = launcher.launch([job_overrides(j) for j in jobs], initial_job_idx=0)
    except UncompletedJobError as e:   # killed, preempted, out of time: episodes are saved
        print(f"vlabench: a job did not finish ({_line(e)}); finished episodes are saved: submit "
              f"the same command again to resume", file=sys.stderr)
        return 1
    except (RuntimeError, OSError) as e:   # before submission: no SLURM here, sbatch refused
        raise ConfigError(f"{cfg.hydra.launcher._target_.rsplit('.', 1)[-1]} could not submit the "
                          f"jobs: {_line(e)}") from None
    rc = 0
    for job, r in zip(jobs, returns, strict=True):
        value = getattr(r, "_return_value", None)
        if r.status != JobStatus.COMPLETED or value != 0:
            why = (f"{type(value).__name__}: {_line(value)}" if isinstance(value, BaseException)
                   else "stopped before finishing")
            print(f"vlabench: {job.name} failed: {why}", file=sys.stderr)
            rc = 1
        else:
            print(f"{job.name}: finished; records in {job.run_dir}")
    return rc


def _line(e: BaseException) -> str:
    return " ".join(str(e).split())[:300]
