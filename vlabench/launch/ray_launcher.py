"""`run.launcher=ray`: each run split into shards that run as Ray tasks, then merged.

Ray is imported only here (pip install "vlabench[ray]"). `ray.address` null starts Ray on this
machine (every CPU, the GPUs it finds, no dashboard); "auto" or "ray://host:port" joins a
running cluster (one that cannot be reached: one line, exit 2, nothing written). A run is split
into `run.shards` shards (null: one per GPU of the cluster, else 1); shard i of n is one Ray
task that runs `run.shard=i/n` into its own run directory `<run.name>.shard-<i>-of-<n>` next to
the run's, the same directory a hand-typed `run.shard=i/n` uses. When a run's shards are done,
`vlabench merge`'s code joins them into the run's directory; the report skips shard
directories. Every node writes its shard under `run.output_dir`, so that folder must be on a
filesystem all nodes share (NFS, Lustre, ...): a shard directory the driver cannot see is
reported by name. A shard that fails, or whose node dies (Ray retries such a task, which
resumes it), keeps its finished episodes: the merged run holds them (status partial), and
re-running the same command resumes each shard and merges again.
"""

from __future__ import annotations

import copy
import logging
import os
import socket
import sys
import warnings
from pathlib import Path
from typing import Any

from vlabench.core.errors import ConfigError
from vlabench.launch.jobs import Job

RETRIES = 2            # Ray re-runs a shard whose worker or node died (each retry resumes it)
CONNECT_TIMEOUT_S = 10.0
ENV_KEYS = ("VLABENCH_CONFIG_PATH", "MUJOCO_GL", "PYOPENGL_PLATFORM", "HF_HOME", "HF_HUB_OFFLINE")


def run_shard(cfg: Any) -> dict[str, Any]:
    """The Ray task: run (or resume) one shard; where it ran and whether it finished."""
    from vlabench.run.runner import run_from_config

    table = run_from_config(cfg)
    run_dir = Path(str(cfg.run.output_dir)) / str(cfg.run.name)
    return {"host": socket.gethostname(), "dir": str(run_dir), "ok": table is not None}


def _reachable(address: str) -> None:
    """Refuse a ray://host:port or host:port that does not accept connections (Ray itself
    would retry for minutes)."""
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        return   # "auto" and the like: ray.init says what is wrong
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise ConfigError(f"ray.address={address}: cannot reach the Ray cluster "
                          f"({e.strerror or type(e).__name__}); start it (`ray start --head`) "
                          f"or fix ray.address (auto, ray://host:port, or null for this machine)") from None


def connect(address: Any) -> None:
    """ray.init on this machine (address null) or on the cluster at `address`."""
    try:
        import ray
    except ImportError:
        raise ConfigError('run.launcher=ray needs Ray: pip install "vlabench[ray]"') from None
    env = {k: os.environ[k] for k in ENV_KEYS if os.environ.get(k)}
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING,
                              "log_to_driver": False}
    if address is None:
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)   # plugins import as here
        kwargs["num_cpus"] = os.cpu_count() or 1
    else:
        _reachable(str(address))
        kwargs["address"] = str(address)
    kwargs["runtime_env"] = {"env_vars": env}
    try:
        with warnings.catch_warnings():   # Ray's tips and client time-outs: our line says it
            warnings.simplefilter("ignore")
            ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as e:
        line = " ".join(str(e).split())[:300]
        raise ConfigError(f"ray.address={address}: cannot connect to the Ray cluster ({line}); "
                          f"start it (`ray start --head`) or fix ray.address") from None


def shard_count(cfg: Any, gpus: float) -> int:
    """run.shards, else one shard per GPU of the cluster (at least 1)."""
    n = cfg.run.get("shards")
    return int(n) if n is not None else max(1, int(gpus))


def shard_config(cfg: Any, i: int, n: int) -> Any:
    """The job's config for shard i of n: run.shard, its own run name, an absolute output_dir
    (workers may start elsewhere)."""
    from vlabench.records.shards import shard_name

    c = copy.deepcopy(cfg)
    c.run.shard = f"{i}/{n}"
    c.run.name = shard_name(str(cfg.run.name), i, n)
    c.run.output_dir = str(Path(str(cfg.run.output_dir)).resolve())
    return c


def _check_jobs(jobs: list[Job]) -> None:
    addresses = {str(j.cfg.ray.get("address")) for j in jobs}
    if len(addresses) > 1:
        raise ConfigError(f"ray.address differs between the runs ({', '.join(sorted(addresses))}); "
                          f"launch them separately")
    for j in jobs:
        if j.cfg.run.get("shard") is not None:
            raise ConfigError(f"run.shard={j.cfg.run.shard} with run.launcher=ray: Ray splits each "
                              f"run itself; set run.shards=N instead (or drop run.launcher=ray)")


def _overwrite(job: Job) -> None:
    """run.overwrite=true: the merged run's records go too (each shard overwrites its own)."""
    from vlabench.records.rundir import RunDirClaim

    if not (job.run_dir / "config.yaml").exists():
        return
    claim = RunDirClaim(job.run_dir)
    claim.open()
    try:
        claim.remove_records()
    finally:
        claim.close()


def already_complete(job: Job) -> bool:
    """The job's run directory holds the whole run of this config (nothing for Ray to do)."""
    import json

    from omegaconf import OmegaConf

    from vlabench.records.merge import config_diff, episode_config

    if job.cfg.run.get("overwrite"):
        return False
    try:
        man = json.loads((job.run_dir / "manifest.json").read_text(encoding="utf-8"))
        saved = OmegaConf.to_container(OmegaConf.load(job.run_dir / "config.yaml"), resolve=True)
    except Exception:   # absent or damaged: the shards and the merge say what is wrong
        return False
    wanted = OmegaConf.to_container(job.cfg, resolve=True)
    return man.get("status") == "complete" and not config_diff(episode_config(saved), episode_config(wanted))


def launch_ray(jobs: list[Job]) -> int:
    """Run every job's shards on Ray, then merge each job's shards into its run directory."""
    _check_jobs(jobs)
    done = [j for j in jobs if already_complete(j)]
    for j in done:
        print(f"{j.name}: already complete; records in {j.run_dir}")
    jobs = [j for j in jobs if j not in done]
    if not jobs:
        return 0
    connect(jobs[0].cfg.ray.get("address"))
    import ray

    try:
        gpus = float(ray.cluster_resources().get("GPU", 0))
        tasks: dict[Any, tuple[Job, int, int, Path]] = {}
        for job in jobs:
            n = shard_count(job.cfg, gpus)
            if job.cfg.run.get("overwrite"):
                _overwrite(job)
            per_gpu = job.cfg.ray.get("num_gpus")
            options = {"num_cpus": float(job.cfg.ray.num_cpus), "max_retries": RETRIES,
                       "num_gpus": float(per_gpu) if per_gpu is not None else (1.0 if gpus else 0.0)}
            remote = ray.remote(run_shard).options(**options)
            for i in range(1, n + 1):
                c = shard_config(job.cfg, i, n)
                tasks[remote.remote(c)] = (job, i, n, Path(str(c.run.output_dir)) / str(c.run.name))
        print(f"vlabench: {len(tasks)} shard tasks of {len(jobs)} run(s) on Ray "
              f"({int(ray.cluster_resources().get('CPU', 0))} CPUs, {int(gpus)} GPUs)", file=sys.stderr)
        failed: dict[str, list[str]] = {}
        hosts: dict[Path, str] = {}
        pending = list(tasks)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            job, i, n, path = tasks[ready[0]]
            try:
                out = ray.get(ready[0])
                problem = None if out["ok"] else "stopped before finishing"
                check_visible(out, path, f"shard {i}/{n} of {job.name}")
                hosts[path] = out["host"]
            except ray.exceptions.RayError as e:
                problem = _why(e)
            if problem:
                failed.setdefault(job.name, []).append(f"shard {i}/{n}: {problem}")
                print(f"vlabench: {job.name} shard {i}/{n} failed: {problem}", file=sys.stderr)
    finally:
        ray.shutdown()
    return _merge_all(jobs, tasks, failed, hosts)


def check_visible(out: dict[str, Any], path: Path, what: str) -> None:
    """A shard's directory must be visible here (a shared filesystem), else one line naming it."""
    if not (path / "manifest.json").exists():
        raise ConfigError(f"{what} ran on host {out['host']} and wrote {out['dir']}, which this "
                          f"machine ({socket.gethostname()}) cannot see: run.output_dir must be on "
                          f"a filesystem that every Ray node shares (NFS, Lustre, ...)")


def _why(e: Exception) -> str:
    """One line for a failed Ray task: the shard's own error, or the worker/node that died."""
    cause = getattr(e, "cause", None)
    text = f"{type(cause).__name__}: {cause}" if cause is not None else f"{type(e).__name__}: {e}"
    return " ".join(text.split())[:300]


def _merge_all(jobs: list[Job], tasks: dict[Any, tuple[Job, int, int, Path]],
               failed: dict[str, list[str]], hosts: dict[Path, str]) -> int:
    from vlabench.records.merge import merge_runs

    rc = 0
    for job in jobs:
        dirs = [p for (j, _, _, p) in tasks.values() if j is job and (p / "manifest.json").exists()]
        if not dirs:
            print(f"vlabench: {job.name}: no shard started; nothing to merge", file=sys.stderr)
            rc = 1
            continue
        out, status, count = merge_runs(dirs, str(job.run_dir), command=" ".join(["vlabench"] + sys.argv[1:]),
                                        name=job.name, hosts=hosts)
        note = ("" if status == "complete" else
                "; re-run the same command to resume the missing shards")
        print(f"{job.name}: {len(dirs)} shards merged, {count} episodes in {out} (status {status}){note}")
        if status != "complete" or job.name in failed:
            rc = 1
    return rc
