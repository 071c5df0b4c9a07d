"""What every suite shares: task selection by `suite.tasks`, closing a crashed simulator."""

from __future__ import annotations

from typing import Any

from vlabench.core.contracts import TaskInfo
from vlabench.core.errors import ConfigError


def select_tasks(every: list[TaskInfo], cfg: Any) -> list[TaskInfo]:
    """The tasks `cfg.tasks` names (an id or a list of ids, in the order given; null: all)."""
    sel = cfg.get("tasks")
    if sel is None:
        return every
    ids = [sel] if isinstance(sel, int) else list(sel)
    bad = [i for i in ids if not 0 <= i < len(every)]
    if bad:
        raise ConfigError(f"suite.tasks has ids {bad}; {cfg.name} task ids are 0..{len(every) - 1}")
    return [every[i] for i in ids]


def close_quietly(env: Any) -> None:
    """Close a simulator; one that crashed may fail to close, and there is nothing to save."""
    if env is None:
        return
    try:
        env.close()
    except Exception:
        pass
