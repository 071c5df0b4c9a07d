"""`run.logger=none|wandb|tensorboard`: per-episode and summary metrics to the user's tracker.

Off by default; the tracker's package is imported only when chosen (`check` at config time
finds it without importing it, or says which pip install is missing). Per committed episode:
success, steps, policy and model calls, mean latency (model calls, warm-up excluded) and mean
tokens kept, at step = the episode's position in the run's commit order; at the end the suite
summary row and the run's config. wandb: `wandb.init` with the run's name and config (project
from WANDB_PROJECT, default "vlabench"; WANDB_MODE=offline and WANDB_DIR are honoured).
tensorboard: event files in `<run dir>/tensorboard/` (torch.utils.tensorboard when torch and the
`tensorboard` package are there, else tensorboardX). A tracker that fails mid-run is one line on
stderr and is dropped; the run and its records go on.
"""

from __future__ import annotations

import importlib.util
import math
import os
import sys
from pathlib import Path
from typing import Any

from vlabench.core.errors import ConfigError

LOGGERS = ("none", "wandb", "tensorboard")
TB_DIR = "tensorboard"


def name_of(cfg: Any) -> str:
    v = cfg.run.get("logger") if cfg is not None else None
    return "none" if v is None or v is False else str(v)


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _torch_tb() -> bool:
    """torch.utils.tensorboard is usable: torch and the tensorboard package are installed."""
    return _has("torch") and _has("tensorboard")


def check(value: Any) -> bool:
    """RANGES test of run.logger: False for an unknown name; ConfigError (naming the pip
    install) when the chosen tracker's package is missing."""
    v = "none" if value is None else str(value)
    if v not in LOGGERS:
        return False
    if v == "wandb" and not _has("wandb"):
        raise ConfigError("run.logger=wandb needs the wandb package: pip install wandb")
    if v == "tensorboard" and not (_torch_tb() or _has("tensorboardX")):
        raise ConfigError("run.logger=tensorboard needs the tensorboard package: pip install tensorboard")
    return True


def episode_metrics(row: dict, calls: list[dict]) -> dict[str, float]:
    """The numbers logged for one episode (NaN-free: a metric without data is left out)."""
    model = [c for c in calls if c.get("source") == "model" and not c.get("warmup")]
    out = {"success": float(bool(row["success"])), "steps": float(row["steps"]),
           "policy_calls": float(row.get("policy_calls", len(calls))),
           "model_calls": float(row.get("model_calls", len(model))),
           "wall_s": float(row.get("wall_s", 0.0))}
    lat = [float(c["lat_total_ms"]) for c in model if c.get("lat_total_ms") is not None]
    kept = [float(c["tokens_kept"]) for c in model if c.get("tokens_kept") is not None]
    if lat:
        out["latency_mean_ms"] = sum(lat) / len(lat)
    if kept:
        out["tokens_kept_mean"] = sum(kept) / len(kept)
    out["error"] = float(bool(row.get("error_type")))
    return out


def summary_metrics(table: Any) -> dict[str, float]:
    """The suite row of summary.csv as numbers (empty without one)."""
    if table is None or getattr(table, "empty", True):
        return {}
    rows = table[table["level"] == "suite"]
    if rows.empty:
        return {}
    out = {}
    for k, v in rows.iloc[0].items():
        try:
            x = float(v)
        except (TypeError, ValueError):
            continue
        if not math.isnan(x):
            out[str(k)] = x
    return out


class Tracker:
    """What the runner calls; subclasses talk to one tracker."""

    def episode(self, index: int, task_id: int, metrics: dict[str, float]) -> None:
        raise NotImplementedError

    def finish(self, summary: dict[str, float], status: str) -> None:
        raise NotImplementedError


class WandbTracker(Tracker):
    def __init__(self, cfg_dict: dict, run_name: str):
        import wandb

        self.wandb = wandb
        # console="off": wandb does not wrap the terminal (the progress bar owns it)
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "vlabench"), name=run_name,
                              config=cfg_dict, settings=wandb.Settings(console="off", quiet=True))

    def episode(self, index: int, task_id: int, metrics: dict[str, float]) -> None:
        self.run.log({**{f"episode/{k}": v for k, v in metrics.items()}, "episode/task_id": task_id,
                      "episode/index": index}, step=index)

    def finish(self, summary: dict[str, float], status: str) -> None:
        for k, v in summary.items():
            self.run.summary[f"summary/{k}"] = v
        self.run.summary["status"] = status
        self.run.finish(exit_code=0 if status == "complete" else 1)


class TensorboardTracker(Tracker):
    def __init__(self, cfg_yaml: str, log_dir: Path):
        if _torch_tb():
            from torch.utils.tensorboard import SummaryWriter
        else:
            from tensorboardX import SummaryWriter
        self.writer = SummaryWriter(log_dir=str(log_dir))
        self.writer.add_text("config", "```\n" + cfg_yaml + "\n```", 0)

    def episode(self, index: int, task_id: int, metrics: dict[str, float]) -> None:
        for k, v in metrics.items():
            self.writer.add_scalar(f"episode/{k}", v, index)
        self.writer.add_scalar("episode/task_id", task_id, index)
        self.writer.flush()

    def finish(self, summary: dict[str, float], status: str) -> None:
        for k, v in summary.items():
            self.writer.add_scalar(f"summary/{k}", v, 0)
        self.writer.add_text("status", status, 0)
        self.writer.close()


class RunLogger:
    """The runner's side: counts committed episodes, forwards them, survives tracker errors."""

    def __init__(self, tracker: Tracker | None, start_index: int = 0):
        self.tracker = tracker
        self.index = start_index

    def _guard(self, what: str, fn: Any, *args: Any) -> None:
        if self.tracker is None:
            return
        try:
            fn(*args)
        except Exception as e:   # the tracker is optional: the run goes on without it
            print(f"vlabench: run.logger stopped ({what}: {type(e).__name__}: {e})",
                  file=sys.stderr, flush=True)
            self.tracker = None

    def episode(self, row: dict, calls: list[dict]) -> None:
        if self.tracker is None:
            return
        self.index += 1
        self._guard("episode", self.tracker.episode, self.index, int(row["task_id"]),
                    episode_metrics(row, calls))

    def finish(self, table: Any, status: str) -> None:
        if self.tracker is not None:
            self._guard("finish", self.tracker.finish, summary_metrics(table), status)


def make(cfg: Any, run_dir: Path, start_index: int = 0) -> RunLogger:
    """The run's logger (a RunLogger without tracker for run.logger=none)."""
    from omegaconf import OmegaConf

    name = name_of(cfg)
    if name == "none":
        return RunLogger(None)
    if name not in LOGGERS:
        raise ConfigError(f"run.logger={name!r} is invalid; valid: {', '.join(LOGGERS)}")
    check(name)
    try:
        if name == "wandb":
            tracker: Tracker = WandbTracker(OmegaConf.to_container(cfg, resolve=True),
                                            str(cfg.run.name))
        else:
            tracker = TensorboardTracker(OmegaConf.to_yaml(cfg, resolve=True), Path(run_dir) / TB_DIR)
    except Exception as e:
        hint = "; set WANDB_MODE=offline to log locally" if name == "wandb" else ""
        raise ConfigError(f"run.logger={name} could not start: {type(e).__name__}: "
                          f"{' '.join(str(e).split())[:300]}{hint}") from None
    return RunLogger(tracker, start_index)
