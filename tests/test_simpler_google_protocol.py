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
    s = StickyGripper(3)
    got = [s(o, "open_fraction") for o in OPEN]
    np.testing.assert_allclose(got, SENT, atol=1e-12)


def test_binarising_first_would_change_the_trace():
    s = StickyGripper(3)
    binarised = [-np.sign(2 * o - 1) for o in OPEN]  # the LIBERO post-processing
    got = [s(g, "close_positive") for g in binarised]
    assert sum(abs(a - b) > 1e-9 for a, b in zip(got, SENT)) >= 10


def test_google_action_is_float64_with_the_sticky_relative_gripper():
    s = StickyGripper(15)
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
