"""SIMPLER Google robot as SimplerEnv runs it (issue 11 item 7): the robot's initial orientation,
the sticky gripper on the model's continuous value, and a new environment per episode.

SimplerEnv cannot be installed here, so the pure pieces are pinned on hand-worked inputs and the
suite is driven with a fake `build_maniskill2_env`."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import ROOT
from omegaconf import OmegaConf

from vlabench.core.contracts import TaskInfo
from vlabench.suites import simpler_google
from vlabench.suites.simpler_actions import ActionConvention, StickyGripper, to_google_robot
from vlabench.suites.simpler_google import (
    SimplerGoogleSuite,
    euler2quat_sxyz,
    quat_mul,
    robot_init_quat,
)

TURN = [0, 0, 0, 1]  # the scripts' --robot-init-rot-quat-center 0 0 0 1 (w, x, y, z)


def rotate(q, v):
    """v rotated by the (w, x, y, z) quaternion q."""
    qv = quat_mul(quat_mul(q, [0.0, *v]), [q[0], -q[1], -q[2], -q[3]])
    return qv[1:]


def test_zero_rpy_is_the_180_degree_turn_about_z():
    assert robot_init_quat([0, 0, 0], TURN).tolist() == [0.0, 0.0, 0.0, 1.0]


def test_the_turned_robot_faces_the_objects_at_negative_x():
    # coke can: robot at x = 0.35, the object grid at x in [-0.35, -0.12]: forward must be -x
    np.testing.assert_allclose(rotate(robot_init_quat([0, 0, 0], TURN), [1, 0, 0]), [-1, 0, 0], atol=1e-12)
    np.testing.assert_allclose(rotate(euler2quat_sxyz(0, 0, 0), [1, 0, 0]), [1, 0, 0])  # the old, unturned pose


def test_move_near_yaw_composes_with_the_turn():
    # euler2quat(0, 0, -0.09) = (cos .045, 0, 0, -sin .045); times (0, 0, 0, 1):
    # w = -z1 = sin .045, z = w1 = cos .045, i.e. a yaw of pi - 0.09
    q = robot_init_quat([0, 0, -0.09], TURN)
    np.testing.assert_allclose(q, [math.sin(0.045), 0, 0, math.cos(0.045)], atol=1e-15)


def test_euler2quat_is_transforms3d_sxyz():
    euler = pytest.importorskip("transforms3d.euler")
    for rpy in np.random.default_rng(3).uniform(-1, 1, size=(20, 3)):
        np.testing.assert_allclose(euler2quat_sxyz(*rpy), euler.euler2quat(*rpy), atol=1e-12)


def test_composition_order_is_rpy_times_center():
    quaternions = pytest.importorskip("transforms3d.quaternions")
    rpy, center = [0.1, -0.2, 0.3], [0.5, 0.5, 0.5, 0.5]
    want = quaternions.qmult(euler2quat_sxyz(*rpy), center)  # sapien Pose(q=a) * Pose(q=b)
    np.testing.assert_allclose(robot_init_quat(rpy, center), want, atol=1e-12)


# DelinQu/SimplerEnv-OpenVLA@2905379 openvla_model.py L117-138, worked by hand with repeat 3 on a gradual
# close then open: rel = prev - open (0 on the first step); |rel| > 0.5 latches rel for 3 steps.
OPEN = [1.0, 0.9, 0.7, 0.4, 0.1, 0.0, 0.0, 0.3, 0.9, 1.0, 1.0, 0.2, 0.2, 0.9, 0.9]
SENT = [0.0, 0.1, 0.2, 0.3, 0.3, 0.1, 0.0, -0.3, -0.6, -0.6, -0.6, 0.8, 0.8, 0.8, 0.0]


def test_sticky_gripper_on_continuous_open_matches_the_hand_worked_trace():
    s = StickyGripper(3, "every_step")
    got = [s(o, "open_fraction") for o in OPEN]
    np.testing.assert_allclose(got, SENT, atol=1e-12)


def test_binarising_first_would_change_the_trace():
    s = StickyGripper(3, "every_step")
    binarised = [-np.sign(2 * o - 1) for o in OPEN]  # the LIBERO post-processing
    got = [s(g, "close_positive") for g in binarised]
    assert sum(abs(a - b) > 1e-9 for a, b in zip(got, SENT)) >= 10


def test_google_action_is_float64_with_the_sticky_relative_gripper():
    s = StickyGripper(15, "every_step")
    conv = ActionConvention("euler_xyz", "open_fraction", 1.0)
    out = [to_google_robot(np.array([0.01, 0, 0, 0, 0, 0.1, o]), s, conv) for o in (1.0, 0.8, 0.1)]
    assert all(a.dtype == np.float64 and a.shape == (7,) for a in out)
    np.testing.assert_allclose([a[6] for a in out], [0.0, 0.2, 0.7], atol=1e-12)
    np.testing.assert_allclose(out[0][:6], [0.01, 0, 0, 0, 0, 0.1], atol=1e-15)


@pytest.mark.parametrize("name", ["simpler_google_vm", "simpler_google_va"])
def test_google_suites_read_the_raw_gripper_and_turn_the_robot(name):
    from vlabench.models.suite_io import SuiteIO

    cfg = OmegaConf.load(ROOT / f"configs/suite/{name}.yaml")
    assert cfg.action_convention.gripper == "open_fraction"
    assert list(cfg.robot_init_rot_quat_center) == TURN
    assert SuiteIO.from_suite(cfg).raw_gripper
    assert not SuiteIO.from_suite(OmegaConf.load(ROOT / "configs/suite/simpler_bridge.yaml")).raw_gripper
    assert not SuiteIO.from_suite(OmegaConf.load(ROOT / "configs/suite/libero_spatial.yaml")).raw_gripper


def test_openvla_emits_its_unnormalised_gripper_for_the_google_robot():
    pytest.importorskip("torch")
    from vlabench.core import registry
    from vlabench.core.contracts import Observation
    from vlabench.models.preprocess import postprocess_gripper

    def act(suite: str) -> np.ndarray:
        cfg = OmegaConf.load(registry.entry("model", "openvla-tiny").path)
        model = registry.build("model", "openvla-tiny", cfg, pruner=registry.build("pruner", "none", None),
                               suite_cfg=OmegaConf.load(ROOT / f"configs/suite/{suite}.yaml"), device="cpu")
        model.reset(TaskInfo(0, "coke", "pick coke can"))
        img = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
        return model.act(Observation("pick coke can", 0, images={"agentview": img})).actions

    raw, post = act("simpler_google_vm"), act("simpler_bridge")
    assert raw[0, 6] not in (-1.0, 0.0, 1.0)
    np.testing.assert_array_equal(postprocess_gripper(raw), post)


class FakeEnv:
    def __init__(self, log: list, name: str, kwargs: dict):
        self.log, self.name, self.kwargs, self.closed = log, name, kwargs, False
        self.resets: list[dict] = []

    def reset(self, options=None):
        self.resets.append(options)
        return {"image": {"overhead_camera": {"rgb": np.zeros((4, 5, 3), np.uint8)}}}, {}

    def step(self, action):
        self.log.append(("step", self.name, action))
        return {"image": {"overhead_camera": {"rgb": np.zeros((4, 5, 3), np.uint8)}}}, 0.0, False, False, {}

    def get_language_instruction(self):
        return "pick coke can"

    def close(self):
        self.closed = True


def test_every_episode_gets_a_new_environment(monkeypatch, tmp_path):
    built: list[FakeEnv] = []
    log: list = []

    def fake_build(name, **kwargs):
        built.append(FakeEnv(log, name, kwargs))
        return built[-1]

    monkeypatch.setattr(simpler_google, "env_builder", lambda: fake_build)
    monkeypatch.setattr(simpler_google, "real2sim_data", lambda: tmp_path)
    suite = SimplerGoogleSuite(OmegaConf.load(ROOT / "configs/suite/simpler_google_va.yaml"))
    task = suite.tasks()[1]  # move near: same env id, scene and kwargs for consecutive episodes
    stages = tmp_path / "hab2_bench_assets" / "stages"
    stages.mkdir(parents=True)
    for ep in suite.expanded(task.id):
        (stages / f"{ep['scene']}.glb").touch()
    env = suite.make_env(task, {"agentview"})
    eps = suite.episodes(task, 3, 7)
    assert len({repr(suite.expanded(task.id)[e.init_state]["kwargs"]) for e in eps}) == 1
    for ep in eps:
        env.reset(ep)
        env.step(np.array([0, 0, 0, 0, 0, 0, 1.0]), 1)
    env.close()
    assert len(built) == 3 and all(e.closed for e in built)
    assert [len(e.resets) for e in built] == [1, 1, 1]
    assert [e.resets[0]["obj_init_options"] for e in built] == [{"episode_id": i} for i in range(3)]
    q = built[0].resets[0]["robot_init_options"]["init_rot_quat"]
    np.testing.assert_allclose(q, [math.sin(0.045), 0, 0, math.cos(0.045)], atol=1e-15)
    assert built[0].kwargs["robot"] == "google_robot_static" and built[0].kwargs["max_episode_steps"] == 80
    for stage in stages.iterdir():
        stage.unlink()
    with pytest.raises(FileNotFoundError, match="without its table"):
        env.reset(eps[0])
    assert len(built) == 3


def fake_google_env(monkeypatch, tmp_path, log: list) -> None:
    """The suite's simulator replaced by FakeEnv (scene files present), its requirements waived."""
    from vlabench.core import registry

    monkeypatch.setattr(registry.Entry, "missing", lambda self: [])
    monkeypatch.setattr(simpler_google, "env_builder", lambda: lambda name, **kw: FakeEnv(log, name, kw))
    monkeypatch.setattr(simpler_google, "real2sim_data", lambda: tmp_path)


MODEL_NAMES = sorted(p.stem for p in (ROOT / "configs/model").glob("*.yaml"))
# microsoft/CogACT@b174a1b sim_cogact/cogact_policy.py:58 and 166-191; DelinQu/SimplerEnv-OpenVLA@2905379
# simpler_env/policies/openvla/openvla_model.py L30 and L117-138
GRIPPERS = {"cogact": (10, "on_latch"), "cogact-tiny": (10, "on_latch")}
OPENVLA_GRIPPER = (15, "every_step")


@pytest.mark.parametrize("suite_name", ["simpler_google_vm", "simpler_google_va"])
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_the_run_builds_each_models_own_google_gripper(monkeypatch, tmp_path, model, suite_name):
    """What vlabench.run builds for `model=... suite=simpler_google_*`: the env's sticky gripper is
    CogACT's for the cogact configs, SimplerEnv-OpenVLA's for every other model."""
    from vlabench.launch.compose import compose
    from vlabench.run.suite_build import build_suite

    log: list = []
    fake_google_env(monkeypatch, tmp_path, log)
    suite = build_suite(compose([f"model={model}", f"suite={suite_name}"]))
    task = suite.tasks()[0]
    stages = tmp_path / "hab2_bench_assets" / "stages"
    stages.mkdir(parents=True)
    (stages / f"{suite.expanded(task.id)[0]['scene']}.glb").touch()
    env = suite.make_env(task, {"agentview"})
    want = GRIPPERS.get(model, OPENVLA_GRIPPER)
    assert (env.sticky.repeat, env.sticky.prev_update) == want
    env.reset(suite.episodes(task, 1, 0)[0])
    opens = [1.0, 0.7, 0.4, 0.1] + [0.1] * 12
    for i, o in enumerate(opens):
        env.step(np.array([0, 0, 0, 0, 0, 0, o]), i + 1)
    sent = [a[6] for kind, _name, a in log if kind == "step"]
    want_sent = ([0.0, 0.3, 0.6] + [0.6] * 9 + [0.3] * 4 if want == (10, "on_latch") else
                 [0.0, 0.3, 0.3, 0.3] + [0.0] * 12)
    np.testing.assert_allclose(sent, want_sent, atol=1e-12)
    env.close()


@pytest.mark.parametrize("override,match", [
    ("model.suite_settings.simpler_google_vm.sticky_gripper.prev_update=sometimes",
     "prev_update='sometimes'; valid: every_step, on_latch"),
    ("model.suite_settings.simpler_google_vm.sticky_gripper.repeat=0", "repeat=0; valid: an integer >= 1"),
    ("+model.suite_settings.simpler_google_vm.gripper=1", "sets gripper; valid: sticky_gripper"),
    ("+model.suite_settings.simpler_google_vm.sticky_gripper.hold=3", "keys hold.*valid: repeat, prev_update"),
    ("suite.sticky_gripper.prev_update=never", "prev_update='never'"),
])
def test_bad_gripper_settings_stop_the_run_in_one_line(monkeypatch, tmp_path, override, match):
    from vlabench.core.errors import ConfigError
    from vlabench.launch.compose import compose
    from vlabench.run.suite_build import build_suite

    fake_google_env(monkeypatch, tmp_path, [])
    model = "openvla-tiny" if override.startswith("suite.") else "cogact-tiny"
    with pytest.raises(ConfigError, match=match):
        build_suite(compose([f"model={model}", "suite=simpler_google_vm", override]))


def test_a_models_suite_settings_name_suites_that_take_them():
    """Every shipped model's `suite_settings` names an existing suite that accepts the keys."""
    from vlabench.core.registry import entry
    from vlabench.run.suite_build import model_suite_settings

    named = 0
    for path in sorted((ROOT / "configs/model").glob("*.yaml")):
        for suite_name in (OmegaConf.load(path).get("suite_settings") or {}):
            suite_cfg = OmegaConf.load(entry("suite", suite_name).path)
            cfg = OmegaConf.create({"model": OmegaConf.load(path), "suite": suite_cfg})
            entry("suite", suite_name).load()(suite_cfg, **model_suite_settings(cfg))
            named += 1
    assert named >= 4
