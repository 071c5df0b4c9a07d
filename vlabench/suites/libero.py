"""LIBERO suites (spatial / object / goal / 10 / 90) on the real simulator.

Runs LIBERO episodes as the OpenVLA / OpenVLA-OFT evaluation code does, so that success rates
compare with the published ones: one environment per task, seeded once and never reseeded
(placements from `libero_stream`); episode i starts from stored init state i, waits a few no-op
steps, then runs at most `max_steps` policy steps and succeeds at the first `done`. Every
constant comes from the suite's YAML; `suite.protocol=specprune` runs SpecPrune-VLA's own loop
instead. Only the cameras a policy declares in `needs` are rendered; a policy that needs no
image gets a physics-only environment, about 10x faster on CPU.

Details: docs/protocols.md#libero
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from vlabench.core.contracts import IMAGE_KEYS, PRIVILEGED_KEY, EpisodeSpec, Observation, TaskInfo
from vlabench.core.errors import ConfigError
from vlabench.suites.chatter import captured, ignore_half_built_contexts
from vlabench.suites.common import close_quietly, select_tasks
from vlabench.suites.libero_setup import ensure_libero_ready
from vlabench.suites.libero_stream import ResetStream

PROPRIO_KEYS = {"eef_pos": "robot0_eef_pos", "eef_quat": "robot0_eef_quat",
                "gripper_qpos": "robot0_gripper_qpos"}


PROTOCOL_DEFAULTS = {"unexecuted_first_steps": 0}


def protocol_settings(cfg: Any) -> dict[str, Any]:
    """The suite's settings under `cfg.protocol`: the base keys, then the entry of
    `cfg.protocols[protocol]` over them (`max_steps`, `unexecuted_first_steps`)."""
    name = str(cfg.get("protocol") or "openvla-oft")
    table = dict(cfg.get("protocols") or {"openvla-oft": {}})
    if name not in table:
        raise ConfigError(f"suite.protocol={name!r} is not a protocol of {cfg.name}; valid: {sorted(table)}")
    out: dict[str, Any] = {**PROTOCOL_DEFAULTS, "max_steps": cfg.max_steps}
    out.update(dict(table[name] or {}))
    unknown = sorted(set(out) - set(PROTOCOL_DEFAULTS) - {"max_steps"})
    if unknown:
        raise ConfigError(f"suite.protocols.{name} sets unknown keys {unknown}; "
                          f"valid: {sorted(PROTOCOL_DEFAULTS) + ['max_steps']}")
    return out


class LiberoEnv:
    """One task's simulator environment, built for a given set of observation needs."""

    def __init__(self, suite: LiberoSuite, task: TaskInfo, needs: Iterable[str]):
        from libero.libero.envs.env_wrapper import ControlEnv

        ignore_half_built_contexts()
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
        self.stream = ResetStream(self.env, int(cfg.env_seed))
        self.rendered = render
        self._init_states = suite.init_states(task.id)
        self._raw: dict[str, Any] = {}
        self._done = False

    def reset(self, episode: EpisodeSpec) -> Observation:
        """The reference's episode start: reset (the stream's draw for this episode), restore the
        episode's init state, run the wait steps."""
        cfg = self.suite.cfg
        self.stream.reset(episode.index)
        raw = self.env.set_init_state(self._init_states[episode.init_state])
        wait = np.asarray(cfg.wait_action, dtype=np.float64)
        done = False
        for _ in range(int(cfg.wait_steps)):
            raw, _, done, _ = self.env.step(wait.tolist())
        self._raw, self._done = raw, bool(done)
        return self._observation(raw, step=0)

    def step(self, action: np.ndarray, step: int) -> tuple[Observation, bool]:
        """Apply policy step `step` (1-based) of a 7-d action; returns the next observation and
        LIBERO's done flag. Under a protocol with `unexecuted_first_steps` = n, steps 1..n leave
        the simulator alone (SpecPrune-VLA's action adapter)."""
        if step > self.suite.setting("unexecuted_first_steps"):
            raw, _reward, done, _info = self.env.step(np.asarray(action, dtype=np.float64).tolist())
            self._raw, self._done = raw, bool(done)
        return self._observation(self._raw, step=step), self._done

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
        with captured("libero"):   # its "[info] using task orders ..." line
            self.benchmark = table[cfg.benchmark]()
        self._init_cache: dict[int, Any] = {}
        self.protocol = protocol_settings(cfg)

    success_mode = "first_done"  # the first step whose done flag is set ends the episode

    def setting(self, key: str) -> int:
        """An integer protocol setting of the chosen `suite.protocol` (see `protocol_settings`)."""
        return int(self.protocol[key])

    def max_steps(self, task: TaskInfo) -> int:
        """The protocol's policy-step limit (the same for every task of a LIBERO suite)."""
        return self.setting("max_steps")

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
