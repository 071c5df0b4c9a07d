"""The action conversion between the models' output and the SIMPLER WidowX controller."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vlabench.suites.simpler_actions import (
    ActionConvention,
    euler_xyz_to_axis_angle,
    to_widowx,
    widowx_gripper,
)


def rot_x(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a):
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def rodrigues(rotvec):
    angle = np.linalg.norm(rotvec)
    if angle < 1e-12:
        return np.eye(3)
    k = rotvec / angle
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx


@pytest.mark.parametrize("axis", range(3))
def test_single_axis_euler_is_that_axis_times_the_angle(axis):
    rpy = np.zeros(3)
    rpy[axis] = 0.3
    np.testing.assert_allclose(euler_xyz_to_axis_angle(rpy), rpy, atol=1e-12)


def test_euler_is_static_xyz_composition():
    """sxyz (transforms3d default, SimplerEnv's euler2axangle): R = Rz(yaw) Ry(pitch) Rx(roll)."""
    rng = np.random.default_rng(0)
    for rpy in rng.uniform(-1.2, 1.2, size=(50, 3)):
        v = euler_xyz_to_axis_angle(rpy)
        want = rot_z(rpy[2]) @ rot_y(rpy[1]) @ rot_x(rpy[0])
        np.testing.assert_allclose(rodrigues(v), want, atol=1e-10)
        assert np.linalg.norm(v) <= math.pi + 1e-12


def test_matches_transforms3d_euler2axangle_when_installed():
    euler = pytest.importorskip("transforms3d.euler")
    rng = np.random.default_rng(1)
    for rpy in rng.uniform(-0.5, 0.5, size=(50, 3)):
        ax, ang = euler.euler2axangle(*rpy)
        np.testing.assert_allclose(euler_xyz_to_axis_angle(rpy), np.asarray(ax) * ang, atol=1e-10)


def test_gripper_from_the_models_libero_convention_is_simpler_widowx_rule():
    """OpenVLA's raw `open` in [0, 1] -> the adapters' LIBERO post-processing -> this suite
    must equal SimplerEnv's widowx rule 2 * (open > 0.5) - 1, including open == 0.5."""
    torch = pytest.importorskip("torch")  # noqa: F841 (models.preprocess imports torch)
    from vlabench.models.preprocess import postprocess_gripper

    for p in [0.0, 0.1, 0.49, 0.5, 0.51, 0.9, 1.0]:
        libero = postprocess_gripper(np.array([[0, 0, 0, 0, 0, 0, p]]))[0, 6]
        assert widowx_gripper(libero) == 2.0 * (p > 0.5) - 1.0, p


def test_gripper_conventions():
    assert widowx_gripper(-1.0) == 1.0 and widowx_gripper(1.0) == -1.0   # LIBERO: -1 open
    assert widowx_gripper(0.0) == -1.0
    assert widowx_gripper(0.7, "open_positive") == 1.0
    assert widowx_gripper(-0.2, "open_positive") == -1.0
    with pytest.raises(ValueError):
        widowx_gripper(1.0, "sideways")


def test_to_widowx_full_action():
    a = np.array([0.01, -0.02, 0.03, 0.0, 0.0, 0.2, -1.0])
    out = to_widowx(a)
    assert out.dtype == np.float32 and out.shape == (7,)
    np.testing.assert_allclose(out, [0.01, -0.02, 0.03, 0.0, 0.0, 0.2, 1.0], atol=1e-7)
    conv = ActionConvention(rotation="axis_angle", gripper="open_positive", scale=2.0)
    out = to_widowx(np.array([0.01, 0, 0, 0.1, 0.2, 0.3, 0.8]), conv)
    np.testing.assert_allclose(out, [0.02, 0, 0, 0.2, 0.4, 0.6, 1.0], atol=1e-7)


def test_to_widowx_rejects_bad_actions():
    with pytest.raises(ValueError, match="7-d"):
        to_widowx(np.zeros(6))
    with pytest.raises(ValueError, match="non-finite"):
        to_widowx(np.array([np.nan, 0, 0, 0, 0, 0, 1]))
    with pytest.raises(ValueError, match="rotation"):
        ActionConvention(rotation="quaternion")


def test_convention_from_the_suite_yaml():
    from omegaconf import OmegaConf

    from conftest import ROOT

    cfg = OmegaConf.load(ROOT / "configs/suite/simpler_bridge.yaml")
    conv = ActionConvention.from_cfg(OmegaConf.to_container(cfg.action_convention))
    assert conv == ActionConvention("euler_xyz", "close_positive", 1.0)


def test_sticky_gripper_repeats_a_close_for_15_steps_then_releases():
    from vlabench.suites.simpler_actions import StickyGripper

    s = StickyGripper(15, "every_step")
    # LIBERO convention: -1 open, +1 close. Open, then close from step 2 on.
    seq = [-1.0, -1.0] + [1.0] * 20
    out = [s(g) for g in seq]
    assert out[:2] == [0.0, 0.0]                 # no change: no command
    assert out[2:17] == [1.0] * 15               # the close is held 15 steps
    assert out[17:] == [0.0] * 5                 # then released (no further change)
    s.reset()
    assert s(1.0) == 0.0 and s(-1.0) == -1.0     # first step has no previous: 0; then open = -1


def test_sticky_gripper_ignores_changes_while_sticky():
    from vlabench.suites.simpler_actions import StickyGripper

    s = StickyGripper(3, "every_step")
    out = [s(g) for g in [-1.0, 1.0, -1.0, 1.0, 1.0, 1.0]]
    assert out == [0.0, 1.0, 1.0, 1.0, 0.0, 0.0]
