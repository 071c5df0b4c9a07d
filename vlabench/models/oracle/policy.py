"""`model=oracle`: the privileged-state scripted policy as a vlabench plugin."""

from __future__ import annotations

import contextlib
import io
import sys
import time
from typing import Any

import numpy as np

from vlabench.core.contracts import PRIVILEGED_KEY, CallStats, Observation, PolicyOutput, TaskInfo
from vlabench.core.errors import ConfigError
from vlabench.core.pruning import Pruner
from vlabench.models.oracle.statemachine import PickPlaceMachine


class OraclePolicy:
    """Solves pick-and-place LIBERO tasks from simulator state; never sees an image.

    It plans at its first call of an episode, i.e. after the protocol's wait steps, when the
    objects have settled. A run that selects a task whose goal needs another skill (opening,
    turning on ...) is refused when the policy is built (`check_tasks`); where that check cannot
    run, such a goal raises `Unsupported`, recorded as the episode's error.
    """

    def __init__(self, cfg: Any, pruner: Any = None, suite_cfg: Any = None, device: str = "cpu"):
        self.cfg = cfg
        self.params = cfg.control
        self.needs = frozenset(cfg.get("needs") or (PRIVILEGED_KEY, "proprio"))
        if PRIVILEGED_KEY not in self.needs:
            raise ValueError("the oracle reads simulator state: its config must list 'privileged' in needs")
        if pruner is not None and type(pruner) is not Pruner:   # Pruner: the `none` pruner
            raise ConfigError(f"model=oracle reads simulator state, not image tokens: it cannot be "
                              f"pruned ({type(pruner).__name__}); use pruner=none, or a VLA model "
                              f"such as model=openvla-oft-tiny for pruners")
        check_tasks(suite_cfg)
        self.device = "cpu"
        self.machine: PickPlaceMachine | None = None
        self.task: TaskInfo | None = None

    def reset(self, task: TaskInfo) -> None:
        self.task = task
        self.machine = None

    def act(self, obs: Observation) -> PolicyOutput:
        t0 = time.perf_counter()
        if obs.privileged is None:
            raise RuntimeError("the oracle got no privileged state: the suite must pass it when "
                               "a policy's needs include 'privileged'")
        env = obs.privileged["env"].env  # the robosuite/LIBERO environment under the wrapper
        eef, quat = obs.proprio["eef_pos"], obs.proprio["eef_quat"]
        if self.machine is None:
            self.machine = PickPlaceMachine(env, eef, quat, self.params)
        action = self.machine.action(np.asarray(eef), np.asarray(quat))
        ms = 1000.0 * (time.perf_counter() - t0)
        return PolicyOutput(action[None, :], CallStats(latency_ms={"total": ms}, mode="oracle"))


def check_tasks(suite_cfg: Any) -> None:
    """ConfigError (one line) when the run selects a LIBERO task whose goal the planner has no
    plan for (`planner.unsupported_goal` on the task's BDDL file), naming why and the selected
    tasks it can run. Checked where the suite has loaded LIBERO (it is built first); elsewhere
    such a task still raises `Unsupported` in its episodes."""
    bench_mod = sys.modules.get("libero.libero.benchmark")
    if suite_cfg is None or bench_mod is None or not suite_cfg.get("benchmark"):
        return
    from libero.libero.envs.bddl_utils import robosuite_parse_problem

    from vlabench.models.oracle.planner import unsupported_goal

    with contextlib.redirect_stdout(io.StringIO()):   # its "[info] using task orders" line
        bench = bench_mod.get_benchmark_dict()[suite_cfg.benchmark]()
    tasks = suite_cfg.get("tasks")
    chosen = (list(range(bench.n_tasks)) if tasks is None
              else [int(t) for t in ([tasks] if isinstance(tasks, int) else tasks)])
    why = {t: unsupported_goal(robosuite_parse_problem(bench.get_task_bddl_file_path(t))) for t in chosen}
    bad = [t for t in chosen if why[t]]
    if not bad:
        return
    can = [t for t in chosen if not why[t]]
    hint = f"; it can run suite.tasks=[{','.join(map(str, can))}]" if can else ""
    raise ConfigError(f"model=oracle cannot solve {suite_cfg.get('name')} task{'s' if len(bad) > 1 else ''} "
                      f"{', '.join(map(str, bad))} ({'; '.join(f'task {t}: {why[t]}' for t in bad)}){hint}")
