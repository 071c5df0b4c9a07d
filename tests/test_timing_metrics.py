"""Motion metrics of an end-effector trajectory (vlabench.metrics.motion) against analytic values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from vlabench.metrics.motion import jerk, motion_metrics, path_ratio, reversals

HZ = 20.0
DT = 1.0 / HZ


def times(n):
    return np.arange(n) * DT


def test_constant_velocity_has_zero_jerk_and_a_straight_path():
    t = times(40)
    p = np.stack([0.1 * t + 0.3, -0.05 * t, 0.02 * t + 1.0], axis=1)
    m = motion_metrics(p, HZ, deadband=0.001)
    assert m["jerk_mean"] == pytest.approx(0.0, abs=1e-6) and m["jerk_p95"] == pytest.approx(0.0, abs=1e-6)
    assert m["path_ratio"] == pytest.approx(1.0) and m["oscillation_hz"] == 0.0


def test_a_cubic_has_its_analytic_jerk():
    # p(t) = (2 t^3, -t^3 + t, 0.5 t^2): p''' = (12, -6, 0), |p'''| = sqrt(180) at every sample
    t = times(30)
    p = np.stack([2 * t ** 3, -t ** 3 + t, 0.5 * t ** 2], axis=1)
    j = jerk(p, DT)
    assert len(j) == 27 and np.allclose(j, math.sqrt(180.0), rtol=1e-6)
    m = motion_metrics(p, HZ, deadband=0.0)
    assert m["jerk_mean"] == pytest.approx(math.sqrt(180.0), rel=1e-6)
    assert m["jerk_p95"] == pytest.approx(math.sqrt(180.0), rel=1e-6)


def test_a_quartic_jerk_grows_linearly_as_its_analytic_third_derivative():
    # x(t) = t^4: x''' = 24 t; the third forward difference at sample k equals 24 (t_k + 1.5 dt)
    t = times(25)
    p = np.stack([t ** 4, 0 * t, 0 * t], axis=1)
    assert np.allclose(jerk(p, DT), 24 * (t[:-3] + 1.5 * DT), rtol=1e-6)


def test_oscillation_counts_direction_reversals_per_second():
    # x = 0.05 sin(2 pi f t), f = 1 Hz over 3 s: the velocity changes sign twice per period
    t = times(61)
    p = np.stack([0.05 * np.sin(2 * np.pi * t), 0 * t, 0 * t], axis=1)
    assert reversals(p, deadband=0.0, dt=DT) == 6
    assert motion_metrics(p, HZ, deadband=0.0)["oscillation_hz"] == pytest.approx(6 / 3.0)
    # a deadband above the peak speed (0.05 * 2 pi = 0.314 m/s) sees no direction at all
    assert reversals(p, deadband=0.4, dt=DT) == 0


def test_path_ratio_of_an_l_shape_and_of_a_robot_that_never_moved():
    assert path_ratio([[0, 0, 0], [1, 0, 0], [1, 1, 0]]) == pytest.approx(2 / math.sqrt(2))
    assert math.isnan(path_ratio([[0, 0, 0], [0, 0, 0]]))
    m = motion_metrics([[0, 0, 0], [0, 0, 0]], HZ, 0.01)
    assert math.isnan(m["jerk_mean"]) and m["oscillation_hz"] == 0.0
