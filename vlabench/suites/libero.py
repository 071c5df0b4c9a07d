"""LIBERO suites (spatial / object / goal / 10 / 90) on the real simulator.

Protocol (../shared/notes/protocols.md, as the OpenVLA / OpenVLA-OFT evaluation code runs it),
with every constant read from the suite's YAML:
- episode i of a task restores stored init state i (`get_task_init_states(task)[i]`);
- `env.seed(env_seed)` once per task environment (the reference uses 0, not the global 7);
- after reset, `wait_steps` no-op steps (`wait_action`) let objects settle; they are not policy
  steps and a `done` during them does not count;
- at most `max_steps` policy steps; the first step whose `done` is True is a success and ends
  the episode (LIBERO's `done` is set on success only);
- images are `image_size` squared, both axes flipped (raw frames are upside down).

Only the cameras a policy declares in `needs` are rendered; a policy that needs no image gets a
physics-only environment (no offscreen renderer), which is about 10x faster on CPU.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from vlabench.contracts import IMAGE_KEYS, PRIVILEGED_KEY, EpisodeSpec, Observation, TaskInfo
from vlabench.suites.common import close_quietly, select_tasks
from vlabench.registry import ConfigError
from vlabench.suites.libero_setup import ensure_libero_ready

PROPRIO_KEYS = {"eef_pos": "robot0_eef_pos", "eef_quat": "robot0_eef_quat",
                "gripper_qpos": "robot0_gripper_qpos"}


class LiberoEnv:
    """One task's simulator environment, built for a given set of observation needs."""

    def __init__(self, suite: LiberoSuite, task: TaskInfo, needs: Iterable[str]):
        from libero.libero.envs.env_wrapper import ControlEnv

        cfg = suite.cfg
        self.suite = suite
        self.task = task
        self.needs = frozenset(needs)
        self.cameras = {k: cfg.cameras[k] for k in IMAGE_KEYS if k in self.needs}
        render = bool(self.cameras)
        self.env = ControlEnv(
            bddl_file_name=suite.bddl_file(task.id),
            camera_names=list(self.cameras.values()) or ["agentview"],
            camera_heights=int(cfg.image_size), camera_widths=int(cfg.image_size),
            has_renderer=False, has_offscreen_renderer=render, use_camera_obs=render,
        )
        self.env.seed(int(cfg.env_seed))
        self.rendered = render
        self._init_states = suite.init_states(task.id)

    def reset(self, episode: EpisodeSpec) -> Observation:
        """Restore the episode's init state and run the wait steps."""
        cfg = self.suite.cfg
        self.env.reset()
        raw = self.env.set_init_state(self._init_states[episode.init_state])
        wait = np.asarray(cfg.wait_action, dtype=np.float64)
        for _ in range(int(cfg.wait_steps)):
            raw, _, _, _ = self.env.step(wait.tolist())
        return self._observation(raw, step=0)

    def step(self, action: np.ndarray, step: int) -> tuple[Observation, bool]:
        """Apply one 7-d action; returns the next observation and LIBERO's done flag."""
        raw, _reward, done, _info = self.env.step(np.asarray(action, dtype=np.float64).tolist())
        return self._observation(raw, step=step), bool(done)

    def _observation(self, raw: dict[str, Any], step: int) -> Observation:
        flip = bool(self.suite.cfg.flip_images)
        images = {}
        for key, cam in self.cameras.items():
            img = raw[f"{cam}_image"]
            images[key] = np.ascontiguousarray(img[::-1, ::-1] if flip else img)
        proprio = {k: np.asarray(raw[v], dtype=np.float64) for k, v in PROPRIO_KEYS.items()}
        privileged = None
        if PRIVILEGED_KEY in self.needs:
            privileged = {"raw_obs": raw, "env": self.env}
        return Observation(instruction=self.task.instruction, step=step, images=images,
                           proprio=proprio, privileged=privileged)

    def close(self) -> None:
        close_quietly(self.env)


class LiberoSuite:
    """A LIBERO benchmark suite configured by `configs/suite/<name>.yaml`."""

    family = "libero"

    def __init__(self, cfg: Any):
        ensure_libero_ready()
        from libero.libero import benchmark

        self.cfg = cfg
        table = benchmark.get_benchmark_dict()
        if cfg.benchmark not in table:
            raise ConfigError(f"unknown LIBERO benchmark {cfg.benchmark!r}; valid: {sorted(table)}")
        self.benchmark = table[cfg.benchmark]()
        self._init_cache: dict[int, Any] = {}

    success_mode = "first_done"  # the first step whose done flag is set ends the episode

    def max_steps(self, task: TaskInfo) -> int:
        """The protocol's policy-step limit (the same for every task of a LIBERO suite)."""
        return int(self.cfg.max_steps)

    def all_tasks(self) -> list[TaskInfo]:
        return [TaskInfo(i, t.name, t.language)
                for i, t in enumerate(self.benchmark.get_task(i) for i in range(self.benchmark.n_tasks))]

    def tasks(self) -> list[TaskInfo]:
        """The selected tasks (`suite.tasks`, default all)."""
        return select_tasks(self.all_tasks(), self.cfg)

    def init_states(self, task_id: int) -> Any:
        if task_id not in self._init_cache:
            self._init_cache[task_id] = self.benchmark.get_task_init_states(task_id)
        return self._init_cache[task_id]

    def bddl_file(self, task_id: int) -> str:
        return self.benchmark.get_task_bddl_file_path(task_id)

    def episodes(self, task: TaskInfo, count: int | None, seed: int) -> list[EpisodeSpec]:
        """Episode i uses init state i (count None: the protocol's); more than stored is an error."""
        count = int(self.cfg.episodes_per_task) if count is None else count
        available = len(self.init_states(task.id))
        if count > available:
            raise ConfigError(
                f"{count} episodes requested but task {task.id} of {self.cfg.name} has "
                f"{available} init states; valid: run.episodes_per_task <= {available}"
            )
        return [EpisodeSpec(task.id, i, i, seed) for i in range(count)]

    def make_env(self, task: TaskInfo, needs: Iterable[str]) -> LiberoEnv:
        return LiberoEnv(self, task, needs)
