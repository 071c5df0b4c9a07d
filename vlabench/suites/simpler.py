"""SIMPLER Bridge/WidowX suite on ManiSkill 3 (`suite=simpler_bridge`).

Runs SimplerEnv's Bridge evaluation (carrot, spoon, cube, eggplant; 24 episodes per task on the
task's fixed placement grid) on ManiSkill 3's digital-twin tasks, every constant from the suite
YAML: 5 Hz control, 60 policy steps (eggplant 120), no early stop (success is the final step's
flag). The policy sees the real-background `3rd_view_camera` image and no proprio; its
LIBERO-convention actions go through `simpler_actions.to_widowx`. Assets are found by
`simpler_assets` (a one-line error instead of ManiSkill's interactive prompt); ManiSkill is
imported only when an environment is built.

Details: docs/protocols.md#simpler-bridge
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from vlabench.core.contracts import IMAGE_KEYS, PRIVILEGED_KEY, EpisodeSpec, Observation, TaskInfo
from vlabench.core.errors import ConfigError
from vlabench.suites.common import close_quietly, select_tasks
from vlabench.suites.simpler_actions import ActionConvention, to_widowx
from vlabench.suites.simpler_assets import (
    ensure_assets,
    export_asset_root,
    required_files,
    resolve_asset_root,
)


def _plain(node: Any) -> Any:
    try:
        from omegaconf import OmegaConf

        if OmegaConf.is_config(node):
            return OmegaConf.to_container(node, resolve=True)
    except ImportError:  # pragma: no cover - omegaconf is a core dependency
        pass
    return node


def _scalar(x: Any) -> Any:
    """A 1-element tensor/array (ManiSkill batches everything) -> Python scalar."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x).reshape(-1)[0].item()


def _image(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    img = np.asarray(x)
    if img.ndim == 4:
        img = img[0]
    return np.ascontiguousarray(img[..., :3], dtype=np.uint8)


class SimplerBridgeEnv:
    """One Bridge task's ManiSkill environment (CPU physics; rendering on the Vulkan device)."""

    def __init__(self, suite: SimplerBridgeSuite, task: TaskInfo, needs: Iterable[str]):
        cfg = suite.cfg
        self.suite = suite
        self.task = task
        self.spec = suite.spec(task.id)
        self.needs = frozenset(needs)
        cams = dict(_plain(cfg.cameras))
        wanted = [k for k in IMAGE_KEYS if k in self.needs]
        absent = [k for k in wanted if k not in cams]
        if absent:
            raise ConfigError(
                f"the policy needs camera(s) {absent} but {cfg.name} offers only {sorted(cams)} "
                f"(suite.cameras); the model must fall back to the cameras the suite has")
        self.cameras = {k: cams[k] for k in wanted}
        self.conv = ActionConvention.from_cfg(_plain(cfg.get("action_convention")))
        suite.prepare_assets(self.spec)

        import gymnasium as gym
        import mani_skill.envs  # noqa: F401  (registers the tasks)
        from mani_skill.utils import logging_utils

        logging_utils.logger.setLevel("ERROR")  # the CPU render-device fallback is expected here
        self.env = gym.make(
            self.spec["env_id"], obs_mode=str(cfg.obs_mode), num_envs=1,
            control_mode=str(cfg.controller), render_mode=None,
        )
        base = self.env.unwrapped
        hz, sim = int(base.control_freq), int(base.sim_freq)
        if hz != int(cfg.control_hz) or sim != int(cfg.sim_hz):
            raise RuntimeError(f"{self.spec['env_id']} runs at {hz} Hz control / {sim} Hz physics; "
                               f"the protocol needs {cfg.control_hz} / {cfg.sim_hz}")
        instr = str(base.get_language_instruction()[0])
        if instr != task.instruction:
            raise RuntimeError(f"{self.spec['env_id']} instruction is {instr!r}, the suite YAML says "
                               f"{task.instruction!r} (ManiSkill version change?)")
        self.render_device = str(getattr(base, "device", ""))

    def reset(self, episode: EpisodeSpec) -> Observation:
        import torch

        seed = int(self.suite.cfg.env_seed) + int(episode.init_state)
        raw, _info = self.env.reset(seed=seed, options={"episode_id": torch.tensor([episode.init_state])})
        return self._observation(raw, step=0)

    def step(self, action: np.ndarray, step: int) -> tuple[Observation, bool]:
        """Apply one policy action; returns the observation and this step's success flag."""
        a = to_widowx(action, self.conv)
        raw, _reward, _terminated, _truncated, info = self.env.step(a[None, :])
        return self._observation(raw, step=step), bool(_scalar(info["success"]))

    def _observation(self, raw: dict[str, Any], step: int) -> Observation:
        images = {k: _image(raw["sensor_data"][cam]["rgb"]) for k, cam in self.cameras.items()}
        privileged = None
        if PRIVILEGED_KEY in self.needs:
            privileged = {"raw_obs": raw, "env": self.env.unwrapped}
        return Observation(instruction=self.task.instruction, step=step, images=images,
                           proprio={}, privileged=privileged)

    def close(self) -> None:
        close_quietly(self.env)


class SimplerBridgeSuite:
    """The SIMPLER Bridge/WidowX suite configured by `configs/suite/simpler_bridge.yaml`."""

    family = "simpler"
    success_mode = "final_step"  # the last step's success flag decides the episode

    def __init__(self, cfg: Any):
        self.cfg = cfg
        self._specs = [dict(t) for t in _plain(cfg.task_list)]
        if int(cfg.num_tasks) != len(self._specs):
            raise ConfigError(f"{cfg.name}: num_tasks={cfg.num_tasks} but task_list has {len(self._specs)} tasks")
        self.asset_root = resolve_asset_root(cfg.get("asset_dir"))
        for t in self.tasks():  # fail fast, in one line, before any episode starts
            self.check_assets(self.spec(t.id))

    # ------------------------------------------------------------------ contract
    def spec(self, task_id: int) -> dict[str, Any]:
        return self._specs[task_id]

    def max_steps(self, task: TaskInfo) -> int:
        """The task's policy-step limit (60; eggplant 120)."""
        return int(self.spec(task.id)["max_steps"])

    def all_tasks(self) -> list[TaskInfo]:
        return [TaskInfo(i, str(s["name"]), str(s["instruction"])) for i, s in enumerate(self._specs)]

    def tasks(self) -> list[TaskInfo]:
        """The selected tasks (`suite.tasks`, default all)."""
        return select_tasks(self.all_tasks(), self.cfg)

    def episodes(self, task: TaskInfo, count: int | None, seed: int) -> list[EpisodeSpec]:
        """Episode i = ManiSkill episode_id i (count None: the protocol's 24)."""
        s = self.spec(task.id)
        count = int(s.get("episodes", self.cfg.episodes_per_task)) if count is None else int(count)
        grid = int(s["grid_size"])
        if count > grid:
            raise ConfigError(f"{count} episodes requested but task {task.id} of {self.cfg.name} has "
                              f"{grid} distinct initial placements; valid: run.episodes_per_task <= {grid}")
        return [EpisodeSpec(task.id, i, i, seed) for i in range(count)]

    def make_env(self, task: TaskInfo, needs: Iterable[str]) -> SimplerBridgeEnv:
        return SimplerBridgeEnv(self, task, needs)

    # ------------------------------------------------------------------ assets
    def files(self, spec: dict[str, Any]) -> list[str]:
        return required_files(str(spec["scene"]), str(spec["model_json"]), spec["objects"])

    def check_assets(self, spec: dict[str, Any]) -> None:
        ensure_assets(self.asset_root, str(spec["env_id"]), self.files(spec))

    def prepare_assets(self, spec: dict[str, Any]) -> None:
        """Check the files, then point ManiSkill at them (no download prompt, ever)."""
        self.check_assets(spec)
        export_asset_root(self.asset_root)
        os.environ.setdefault("MS_SKIP_ASSET_DOWNLOAD_PROMPT", "1")
