"""Where the runs of a `vlabench run` (one, or a sweep's) execute: here, on Ray, or via SLURM.

- local (default): each run in order in this process, exactly as a plain `vlabench run`.
- `run.launcher=ray`: each run split into shards that run as Ray tasks (on this machine or a
  cluster), then merged into the run's directory (vlabench/launch/ray_launcher.py).
- `hydra/launcher=submitit_slurm` (or `submitit_local`): each run a job submitted through
  Hydra's submitit launcher plugin (vlabench/launch/submitit_launcher.py).
Ray and submitit are optional extras, imported only when chosen.
"""

from __future__ import annotations

from vlabench.launch.jobs import Job

SUBMITIT_LAUNCHERS = ("submitit_slurm", "submitit_local")


def hydra_launcher(hydra_overrides: list[str]) -> str | None:
    """The launcher chosen by a `hydra/launcher=NAME` override, if any."""
    chosen = None
    for o in hydra_overrides:
        key, _, value = o.lstrip("+~").partition("=")
        if key == "hydra/launcher":
            chosen = value.strip()
    return chosen


def run_local(jobs: list[Job]) -> int:
    """Each job's run in order in this process; a ConfigError or RecordsError stops the sweep."""
    from vlabench.run.runner import run_from_config

    rc = 0
    for job in jobs:
        if run_from_config(job.cfg) is None:
            rc = 1
    return rc


def launch(jobs: list[Job], hydra_overrides: list[str]) -> int:
    """Run `jobs` on the chosen launcher; the exit code (0: every run finished, 1: one failed)."""
    from vlabench.core.errors import ConfigError

    if not jobs:
        return 0
    chosen = hydra_launcher(hydra_overrides)
    if chosen is not None and chosen not in ("basic", *SUBMITIT_LAUNCHERS):
        raise ConfigError(f"hydra/launcher={chosen} is not supported; valid: "
                          f"{', '.join(SUBMITIT_LAUNCHERS)} (Ray: run.launcher=ray)")
    from vlabench.models.checkpoint_check import check_checkpoints

    check_checkpoints([j.cfg for j in jobs])   # every job's checkpoints at once, before any runs
    if chosen in SUBMITIT_LAUNCHERS:
        ray_jobs = [j for j in jobs if str(j.cfg.run.launcher) == "ray"]
        if ray_jobs:
            raise ConfigError(f"hydra/launcher={chosen} and run.launcher=ray both choose where runs "
                              f"execute; pick one")
        from vlabench.launch.submitit_launcher import launch_submitit

        return launch_submitit(jobs, hydra_overrides)
    local = [j for j in jobs if str(j.cfg.run.launcher) != "ray"]
    ray_jobs = [j for j in jobs if str(j.cfg.run.launcher) == "ray"]
    rc = 0
    if ray_jobs:
        from vlabench.launch.ray_launcher import launch_ray

        rc = launch_ray(ray_jobs)
    if local:
        rc = max(rc, run_local(local))
    return rc
