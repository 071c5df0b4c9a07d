"""Open a run directory for a fresh start or a resumption, and refuse what would mix runs.

`prepare_run_dir` creates or reopens the directory under its lock (vlabench/records/rundir.py), verifies
a resumed run's manifest and config.yaml, and compares the saved config with the new one: the
keys vlabench/records/runkeys.py calls neutral may differ; the growable ones (episodes per task, tasks)
may grow, never shrink: the run directory then holds more episodes and its config.yaml is
rewritten with the new values (see `_grow`); any other difference is refused, naming it.
"""

from __future__ import annotations

from typing import Any

from vlabench.core.errors import ConfigError
from vlabench.core.timing import is_timed
from vlabench.records.files import RecordsError, RunFiles, atomic_write_text, has_rows, sha256
from vlabench.records.provenance import seal, seal_ok
from vlabench.records.runkeys import is_growable, is_neutral


def _comparable(cfg_dict: dict[str, Any]) -> dict[str, Any]:
    """The saved or wanted config without the neutral keys (vlabench/records/runkeys.py)."""
    out: dict[str, Any] = {}
    for group, sub in cfg_dict.items():
        if is_neutral(f"{group}."):
            continue
        out[group] = ({k: v for k, v in sub.items() if not is_neutral(f"{group}.{k}")}
                      if isinstance(sub, dict) else sub)
    return out


def _diff_keys(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            out += _diff_keys(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


GROWN_SHA = "config_sha256_grown"   # config.yaml's digest while a grown config is being written


def _held(cfg: dict[str, Any]) -> tuple[int | None, list[int] | None]:
    """(episodes per task, task ids) a config asks for; the protocol's numbers where null."""
    run, suite = cfg.get("run") or {}, cfg.get("suite") or {}
    n = run.get("episodes_per_task")
    n = suite.get("episodes_per_task") if n is None else n
    tasks = suite.get("tasks")
    if tasks is None and suite.get("num_tasks") is not None:
        tasks = list(range(int(suite["num_tasks"])))
    tasks = [tasks] if isinstance(tasks, int) else tasks
    return n, (sorted(tasks) if tasks is not None else None)


def resume_problem(run_dir: Any, saved: dict[str, Any], wanted: dict[str, Any]) -> str | None:
    """Why the run saved in `run_dir` (its config.yaml, as a dict) cannot be resumed or grown
    with the `wanted` config; None when it can. Neutral keys may differ; the growable ones
    may grow; any other difference is named."""
    diff = _diff_keys(_comparable(saved), _comparable(wanted))
    other = [k for k in diff if not is_growable(k)]
    if other:
        shown = ", ".join(other[:6]) + (" ..." if len(other) > 6 else "")
        return (f"{run_dir} holds a run with a different config ({shown}); resume only with the "
                f"same settings, or choose another run.name, or pass run.overwrite=true")
    (n0, t0), (n1, t1) = _held(saved), _held(wanted)
    shrinks = (n0 is not None and (n1 is None or n1 < n0)) or \
              (t0 is not None and (t1 is None or not set(t0) <= set(t1)))
    if diff and shrinks:
        return (f"{run_dir} holds {n0} episodes per task of tasks {t0}; a run directory only grows: "
                f"give run.episodes_per_task >= {n0} and suite.tasks including {t0}, or choose "
                f"another run.name")
    return None


def _grow(files: RunFiles, old: dict[str, Any], text: str) -> None:
    """Rewrite config.yaml with the grown config. The manifest first learns the new digest
    (GROWN_SHA), so a crash between the two writes leaves a run that still verifies; the
    runner's next manifest records the new config_sha256."""
    if old:
        files.write_json(files.manifest_json, seal({**old, GROWN_SHA: sha256(text.encode("utf-8"))}))
    atomic_write_text(files.config_yaml, text)


def _old_manifest(files: RunFiles) -> dict[str, Any]:
    """The resumed run's manifest.json ({} when absent); refuses one that is damaged or edited."""
    import json

    if not files.manifest_json.exists():
        if has_rows(files.episodes_csv):
            raise RecordsError(f"{files.manifest_json} is missing but episodes.csv holds finished "
                               f"episodes, which can no longer be verified; restore it, or start "
                               f"over with run.overwrite=true")
        return {}
    try:
        old = json.loads(files.manifest_json.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise RecordsError(f"{files.manifest_json} is damaged ({type(e).__name__}); restore it, or "
                           f"start over with run.overwrite=true") from None
    if not isinstance(old, dict) or not seal_ok(old):
        raise RecordsError(f"{files.manifest_json} was edited by hand (its seal no longer matches); "
                           f"restore it, or start over with run.overwrite=true")
    return old


def prepare_run_dir(cfg: Any) -> tuple[RunFiles, dict[str, Any] | None, Any]:
    """Create (or reopen and lock) the run directory; refuse a different config, a directory that
    is not a run, or one another process is writing. Returns (files, old, claim): `old` is the
    resumed run's verified manifest ({} when it has none yet), None for a fresh start; the
    caller releases `claim` (close) when done, or undoes a failed fresh start (abandon)."""
    from omegaconf import OmegaConf

    from vlabench.records.rundir import RunDirClaim, remove_temporaries, run_dir_path

    run_dir = run_dir_path(cfg.run.output_dir, cfg.run.name)
    files = RunFiles(run_dir, timed=is_timed(cfg))
    claim = RunDirClaim(run_dir)
    claim.open()  # creates what is missing and takes the lock (RunDirLocked: one line, exit 2)
    try:
        remove_temporaries(run_dir)
        has_config = files.config_yaml.exists()
        if cfg.run.overwrite and has_config:
            claim.remove_records()   # the records only: a file the user put there stays
        elif not has_config:
            records, foreign = claim.records(), claim.foreign()
            if records:
                raise ConfigError(
                    f"{run_dir} holds records ({', '.join(records)}) but no config.yaml, so the "
                    f"config that produced them is unknown; restore config.yaml, or move the "
                    f"directory away (vlabench never deletes it)")
            if foreign:
                shown = ", ".join(foreign[:3]) + (" ..." if len(foreign) > 3 else "")
                raise ConfigError(f"{run_dir} exists and is not a vlabench run directory (it holds "
                                  f"{shown}); choose another run.name or run.output_dir")
        wanted = OmegaConf.to_container(cfg, resolve=True)
        text = OmegaConf.to_yaml(cfg, resolve=True)
        if has_config and not cfg.run.overwrite:
            raw = files.config_yaml.read_bytes()
            old = _old_manifest(files)
            recorded = old.get("config_sha256")
            if recorded and sha256(raw) not in (recorded, old.get(GROWN_SHA)):
                raise RecordsError(f"{files.config_yaml} was edited after the run started (its sha256 "
                                   f"differs from manifest.json's); restore it, or start over with "
                                   f"run.overwrite=true")
            try:
                saved = OmegaConf.to_container(OmegaConf.create(raw.decode("utf-8")), resolve=True)
            except Exception as e:
                raise RecordsError(f"{files.config_yaml} is damaged ({type(e).__name__}); restore it, "
                                   f"or start over with run.overwrite=true") from None
            problem = resume_problem(run_dir, saved, wanted)
            if problem:
                raise ConfigError(problem)
            if any(is_growable(k) for k in _diff_keys(_comparable(saved), _comparable(wanted))):
                _grow(files, old, text)
            return files, old, claim
        atomic_write_text(files.config_yaml, text)
    except BaseException:
        claim.abandon()
        raise
    return files, None, claim
