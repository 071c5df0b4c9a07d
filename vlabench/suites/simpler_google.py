"""SIMPLER Google-robot suites through the original SimplerEnv (`suite=simpler_google_vm|_va`).

Runs SimplerEnv's visual-matching and variant-aggregation evaluations of the Google robot (pick
coke can, move near, open / close drawer) over its scripts' episode grid, a new environment per
episode, the sticky gripper (the YAML's `sticky_gripper`, or the model config's
`suite_settings.<suite>`) on the model's continuous gripper value. The tasks exist only in
SimplerEnv's ManiSkill2_real2sim fork (not on PyPI): the suites `require` `simpler_env` and
`mani_skill2_real2sim` (`vlabench list` shows the install steps; `run` stops in one line). Run
once on a CPU (SimplerEnv@4ab7178, ManiSkill2_real2sim@ef7a4d4, SAPIEN 2.2.2 on Mesa lavapipe;
open drawer with cogact-tiny, 8 steps): docs/protocols.md#simpler-google-robot.

Details: docs/protocols.md#simpler-google-robot
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vlabench.core.contracts import IMAGE_KEYS, PRIVILEGED_KEY, EpisodeSpec, Observation, TaskInfo
from vlabench.core.errors import ConfigError
from vlabench.suites.common import close_quietly, select_tasks
from vlabench.suites.simpler import _image, _plain
from vlabench.suites.simpler_actions import ActionConvention, StickyGripper, to_google_robot

MODEL_SETTINGS = ("sticky_gripper",)   # what a model config may set for these suites (suite_settings)


def quat_mul(a: Sequence[float], b: Sequence[float]) -> np.ndarray:
    """Hamilton product a * b of (w, x, y, z) quaternions (sapien's `Pose(q=a) * Pose(q=b)`)."""
    aw, ax, ay, az = (float(v) for v in a)
    bw, bx, by, bz = (float(v) for v in b)
    return np.array([aw * bw - ax * bx - ay * by - az * bz,
                     aw * bx + ax * bw + ay * bz - az * by,
                     aw * by - ax * bz + ay * bw + az * bx,
                     aw * bz + ax * by - ay * bx + az * bw])


def euler2quat_sxyz(roll: float, pitch: float, yaw: float) -> np.ndarray:
    """transforms3d's `euler2quat(r, p, y)` (static x-y-z axes, R = Rz Ry Rx) as (w, x, y, z)."""
    def axis(i: int, angle: float) -> np.ndarray:
        q = np.zeros(4)
        q[0], q[1 + i] = math.cos(angle / 2.0), math.sin(angle / 2.0)
        return q

    return quat_mul(quat_mul(axis(2, yaw), axis(1, pitch)), axis(0, roll))


def robot_init_quat(rpy: Sequence[float], center: Sequence[float]) -> np.ndarray:
    """The robot's initial orientation as SimplerEnv sets it: euler2quat(rpy) * center (w, x, y, z)."""
    return quat_mul(euler2quat_sxyz(*rpy), center)


def env_builder() -> Callable[..., Any]:
    """SimplerEnv's `build_maniskill2_env` (imported only when an episode starts; tests replace it)."""
    from simpler_env.utils.env.env_builder import build_maniskill2_env

    return build_maniskill2_env


def real2sim_data() -> Path:
    """ManiSkill2_real2sim's data/ folder (scenes, overlays); imported only when an episode starts."""
    import mani_skill2_real2sim

    return Path(mani_skill2_real2sim.__file__).resolve().parent.parent / "data"


def require_scene(data: Path, scene: str) -> None:
    """SAPIEN only logs a missing scene file and builds the scene without its table, so the
    objects fall through the floor and the episode means nothing: refuse it instead. The
    drawer stations (`dummy*` scenes) are built from URDFs and need no stage file."""
    if scene.startswith("dummy"):
        return
    stage = data / "hab2_bench_assets" / "stages" / f"{scene}.glb"
    if not stage.is_file():
        raise FileNotFoundError(f"SimplerEnv scene {scene!r} is missing ({stage}): the task would run "
                                f"without its table; get ManiSkill2_real2sim's data/ folder complete "
                                f"(git clone --recurse-submodules https://github.com/simpler-env/SimplerEnv)")


def _linspace(spec: Any) -> list[float]:
    lo, hi, n = spec
    return [float(x) for x in np.linspace(float(lo), float(hi), int(n))]


def expand_task(task: dict[str, Any]) -> list[dict[str, Any]]:
    """All episodes of one Google task: dicts with env, build kwargs, robot init, object init."""
    envs = list(task["envs"])
    robots = []
    for r in task["robot_inits"]:
        for x, y in itertools.product(_linspace(r["x"]), _linspace(r["y"])):
            robots.append({"x": x, "y": y, "rpy": [float(v) for v in r.get("rpy", [0, 0, 0])],
                           "overlay": r.get("overlay")})
    variants = [{**dict(o), **dict(v)} for v, o in
                itertools.product(task.get("variants") or [{}], task.get("options") or [{}])]
    lay = task["layout"]
    if lay["type"] == "xy":
        layouts = [{"init_xy": [x, y]} for x, y in itertools.product(_linspace(lay["x"]), _linspace(lay["y"]))]
    elif lay["type"] == "episode":
        layouts = [{"episode_id": i} for i in range(int(lay["range"][0]), int(lay["range"][1]))]
    else:
        raise ConfigError(f"layout type {lay['type']!r}; valid: xy, episode")
    out = []
    for env, robot, var, obj in itertools.product(envs, robots, variants, layouts):
        var = dict(var)
        out.append({"env": var.pop("env", env), "scene": var.pop("scene", task["scene"]),
                    "kwargs": {**dict(task.get("kwargs") or {}), **var}, "robot": robot, "obj": obj})
    return out


class SimplerGoogleEnv:
    """One Google task; a new simulator environment for every episode, as SimplerEnv builds one."""

    def __init__(self, suite: SimplerGoogleSuite, task: TaskInfo, needs: Iterable[str]):
        cfg = suite.cfg
        self.suite, self.task, self.needs = suite, task, frozenset(needs)
        cams = dict(_plain(cfg.cameras))
        absent = [k for k in IMAGE_KEYS if k in self.needs and k not in cams]
        if absent:
            raise ConfigError(f"the policy needs camera(s) {absent} but {cfg.name} offers only {sorted(cams)}")
        self.cameras = {k: cams[k] for k in IMAGE_KEYS if k in self.needs}
        self.conv = ActionConvention.from_cfg(_plain(cfg.get("action_convention")))
        self.sticky = StickyGripper(**suite.sticky_gripper)
        self.episodes = suite.expanded(task.id)
        self.center = [float(v) for v in cfg.robot_init_rot_quat_center]
        self.env = None

    def _build(self, ep: dict[str, Any]) -> None:
        cfg = self.suite.cfg
        self.close()
        kwargs = dict(ep["kwargs"])
        overlay = ep["robot"]["overlay"]
        data = real2sim_data()
        require_scene(data, ep["scene"])
        if overlay is not None:  # YAML paths are relative to ManiSkill2_real2sim's data/ folder
            overlay = overlay if Path(overlay).is_absolute() else data / overlay
        self.env = env_builder()(
            ep["env"], obs_mode="rgbd", robot=str(cfg.robot), sim_freq=int(cfg.sim_hz),
            control_mode=str(cfg.controller), control_freq=int(cfg.control_hz),
            max_episode_steps=int(self.suite.max_steps(self.task)), scene_name=ep["scene"],
            camera_cfgs={"add_segmentation": True},
            rgb_overlay_path=None if overlay is None else str(overlay), **kwargs)

    def reset(self, episode: EpisodeSpec) -> Observation:
        ep = self.episodes[episode.init_state]
        self._build(ep)
        self.sticky.reset()
        r = ep["robot"]
        options = {"robot_init_options": {"init_xy": np.array([r["x"], r["y"]]),
                                          "init_rot_quat": robot_init_quat(r["rpy"], self.center)},
                   "obj_init_options": {k: np.asarray(v) if k == "init_xy" else v for k, v in ep["obj"].items()}}
        raw, _ = self.env.reset(options=options)
        return self._observation(raw, 0)

    def step(self, action: np.ndarray, step: int) -> tuple[Observation, bool]:
        a = to_google_robot(action, self.sticky, self.conv)
        raw, _r, done, _trunc, _info = self.env.step(a)
        return self._observation(raw, step), bool(done)

    def _observation(self, raw: dict[str, Any], step: int) -> Observation:
        images = {k: _image(raw["image"][cam]["rgb"]) for k, cam in self.cameras.items()}
        privileged = {"raw_obs": raw, "env": self.env} if PRIVILEGED_KEY in self.needs else None
        instruction = str(self.env.get_language_instruction())
        return Observation(instruction=instruction, step=step, images=images, proprio={},
                           privileged=privileged)

    def close(self) -> None:
        close_quietly(self.env)
        self.env = None


def sticky_gripper_of(cfg: Any, model_settings: Mapping[str, Any]) -> dict[str, Any]:
    """StickyGripper's arguments: the suite's `sticky_gripper`, keys replaced by the model's."""
    where = f"model.suite_settings.{cfg.get('name')}"
    unknown = sorted(set(model_settings) - set(MODEL_SETTINGS))
    if unknown:
        raise ConfigError(f"{where} sets {', '.join(unknown)}; valid: {', '.join(MODEL_SETTINGS)}")
    suite_node = _plain(cfg.get("sticky_gripper"))
    model_node = _plain(model_settings.get("sticky_gripper"))
    if not isinstance(suite_node, Mapping) or not isinstance(model_node or {}, Mapping):
        raise ConfigError(f"sticky_gripper ({where} or suite.sticky_gripper) must be a mapping; "
                          f"valid: {{repeat: N, prev_update: every_step|on_latch}}")
    node = {**suite_node, **(model_node or {})}
    extra = sorted(set(node) - {"repeat", "prev_update"})
    if extra:
        raise ConfigError(f"sticky_gripper keys {', '.join(extra)} ({where} or suite.sticky_gripper); "
                          f"valid: repeat, prev_update")
    try:
        StickyGripper(node.get("repeat"), node.get("prev_update"))
    except ValueError as e:
        raise ConfigError(f"{e} ({where} or suite.sticky_gripper)") from None
    return node


class SimplerGoogleSuite:
    """Google-robot SIMPLER suite (visual matching or variant aggregation, per the YAML)."""

    family = "simpler"
    success_mode = "final_step"

    def __init__(self, cfg: Any, **model_settings: Any):
        """`model_settings`: the model config's `suite_settings.<this suite>` (vlabench.run passes
        them): a model whose official SimplerEnv adapter differs replaces `sticky_gripper` keys."""
        self.cfg = cfg
        self.sticky_gripper = sticky_gripper_of(cfg, model_settings)
        self._specs = [dict(t) for t in _plain(cfg.task_list)]
        self._expanded: dict[int, list[dict[str, Any]]] = {}

    def expanded(self, task_id: int) -> list[dict[str, Any]]:
        if task_id not in self._expanded:
            self._expanded[task_id] = expand_task(self._specs[task_id])
        return self._expanded[task_id]

    def max_steps(self, task: TaskInfo) -> int:
        return int(self._specs[task.id]["max_steps"])

    def all_tasks(self) -> list[TaskInfo]:
        return [TaskInfo(i, str(s["name"]), str(s["instruction"])) for i, s in enumerate(self._specs)]

    def tasks(self) -> list[TaskInfo]:
        """The selected tasks (`suite.tasks`, default all)."""
        return select_tasks(self.all_tasks(), self.cfg)

    def episodes(self, task: TaskInfo, count: int | None, seed: int) -> list[EpisodeSpec]:
        n = len(self.expanded(task.id))
        count = n if count is None else int(count)
        if count > n:
            raise ConfigError(f"{count} episodes requested but task {task.id} of {self.cfg.name} has "
                              f"{n}; valid: run.episodes_per_task <= {n}")
        return [EpisodeSpec(task.id, i, i, seed) for i in range(count)]

    def make_env(self, task: TaskInfo, needs: Iterable[str]) -> SimplerGoogleEnv:
        return SimplerGoogleEnv(self, task, needs)
