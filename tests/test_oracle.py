"""The privileged-state oracle on the real LIBERO simulator (model=oracle)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, run_cli
from omegaconf import OmegaConf

from vlabench.core.schema import EPISODE_COLUMNS
from vlabench.records.files import read_rows

pytestmark = pytest.mark.libero


def episodes(run_dir) -> pd.DataFrame:
    return pd.DataFrame(read_rows(run_dir / "episodes.csv", EPISODE_COLUMNS))


def test_oracle_solves_object_tasks_physics_only(tmp_path):
    res = run_cli("run", "model=oracle", "suite=libero_object", "suite.tasks=[1,7]",
                  "run.episodes_per_task=1", f"run.output_dir={tmp_path}", "run.quiet=true")
    assert res.returncode == 0, res.stderr[-2000:]
    run_dir = tmp_path / "oracle-none-libero_object"
    eps = episodes(run_dir)
    assert list(eps["success"]) == ["1", "1"], eps[["error_type", "error", "steps"]]
    assert all(int(s) < 280 for s in eps["steps"])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["rendered_cameras"] == []  # the oracle needs no image: no renderer built


def test_oracle_pinches_a_bowl_rim_and_places_it_on_the_plate(tmp_path):
    res = run_cli("run", "model=oracle", "suite=libero_spatial", "suite.tasks=[0]",
                  "run.episodes_per_task=1", f"run.output_dir={tmp_path}", "run.quiet=true")
    assert res.returncode == 0, res.stderr[-2000:]
    assert list(episodes(tmp_path / "oracle-none-libero_spatial")["success"]) == ["1"]


def test_a_task_beyond_the_oracle_is_refused_up_front_naming_why(tmp_path):
    res = run_cli("run", "model=oracle", "suite=libero_goal", "suite.tasks=[2,7]",
                  "run.episodes_per_task=1", "run.max_steps=5", f"run.output_dir={tmp_path}",
                  "run.quiet=true")
    assert res.returncode == 2, res.stderr[-2000:]
    line = res.stderr.strip().splitlines()[-1]
    assert "cannot solve libero_goal task 7" in line and "turnon" in line
    assert "suite.tasks=[2]" in line and "task 2:" not in line
    assert not list(tmp_path.glob("oracle-*"))   # nothing written


def settled_scene(suite_name: str, task_id: int, init_state: int):
    """The privileged observation of a LIBERO episode after its wait steps, and its env."""
    from vlabench.suites.libero import LiberoSuite

    suite = LiberoSuite(OmegaConf.load(ROOT / f"configs/suite/{suite_name}.yaml"))
    task = suite.all_tasks()[task_id]
    env = suite.make_env(task, {"privileged", "proprio"})
    return env.reset(suite.episodes(task, init_state + 1, 7)[init_state]), env


@pytest.fixture(scope="module")
def crowded_scene():
    """libero_object task 1, init state 1: the cream cheese lies beside a taller can."""
    obs, env = settled_scene("libero_object", 1, 1)
    yield obs
    env.close()


def planner_inputs(obs):
    from vlabench.models.oracle.planner import Hand, scene_boxes, transfers

    env = obs.privileged["env"].env
    (t,) = transfers(env)
    return env, t, Hand.measure(env, obs.proprio["eef_pos"]), scene_boxes(env)


def assert_palm_clear(g, t, boxes) -> None:
    palm_lo, palm_hi = g.point + g.hand.palm_lo, g.point + g.hand.palm_hi
    for name, b in boxes.items():
        if name != t.obj and b.overlaps_xy(palm_lo, palm_hi):
            assert b.top < palm_lo[2], f"palm lands on {name}"


def test_simulator_env_has_no_renderer_and_observations_no_images(crowded_scene):
    assert crowded_scene.images == {}
    raw = crowded_scene.privileged["raw_obs"]
    assert not any(k.endswith("_image") for k in raw)
    assert crowded_scene.privileged["env"].env.has_offscreen_renderer is False


CONTROL = OmegaConf.load(ROOT / "configs/model/oracle.yaml").control


def test_grasp_keeps_the_palm_clear_of_taller_neighbours(crowded_scene):
    from vlabench.models.oracle.planner import plan_grasp

    env, t, hand, boxes = planner_inputs(crowded_scene)
    assert 0.06 < hand.opening < 0.09  # Panda finger gap, measured from the simulator
    assert hand.palm_hi[1] - hand.palm_lo[1] > 2.5 * hand.opening  # palm much wider than the gap
    g = plan_grasp(env, t, hand, boxes, CONTROL)
    obj = boxes[t.obj]
    assert not g.rim  # a flat box longer than the finger gap is grasped across, not pinched
    assert obj.bottom < g.point[2] + g.hand.fingers_lo[2] < obj.top  # fingertips reach down the sides
    assert_palm_clear(g, t, boxes)
    # the tall tomato-sauce can beside it forces the grasp off the object's centre
    assert np.linalg.norm(g.point[:2] - obj.centre[:2]) > 0.005


def test_hand_turned_a_quarter_swaps_its_outline_axes():
    from vlabench.models.oracle.planner import Hand

    h = Hand(np.array([-0.03, -0.10, 0.02]), np.array([0.04, 0.11, 0.13]),
             np.array([-0.01, -0.07, -0.01]), np.array([0.01, 0.07, 0.05]), 0.076)
    t = h.turned()
    np.testing.assert_allclose(t.palm_lo, [-0.11, -0.03, 0.02])
    np.testing.assert_allclose(t.palm_hi, [0.10, 0.04, 0.13])
    tt = t.turned()  # a half turn mirrors x and y
    np.testing.assert_allclose(tt.palm_lo, [-0.04, -0.11, 0.02])
    np.testing.assert_allclose(tt.palm_hi, [0.03, 0.10, 0.13])


def test_bowl_beside_the_cabinet_is_pinched_with_the_hand_turned():
    """libero_spatial task 6, init 30: the bowl touches the cabinet along y, so a pinch with the
    fingers along y puts the 0.2 m palm over the cabinet top; turned, the palm clears it."""
    from vlabench.models.oracle.planner import plan_grasp

    obs, handle = settled_scene("libero_spatial", 6, 30)
    try:
        env, t, hand, boxes = planner_inputs(obs)
        g = plan_grasp(env, t, hand, boxes, CONTROL)
        assert g.rim and g.yaw == pytest.approx(np.pi / 2)
        assert g.point[2] < boxes[t.obj].top - CONTROL.min_grip + 1e-9  # the fingers reach the rim
        assert_palm_clear(g, t, boxes)
    finally:
        handle.close()


def test_bowl_in_the_open_drawer_slides_out_from_under_the_cabinet_top():
    """libero_spatial task 4: the bowl in the drawer is ~5 cm under the cabinet's top plate."""
    from vlabench.models.oracle.planner import overhang_exit

    obs, handle = settled_scene("libero_spatial", 4, 0)
    try:
        env, t, _, boxes = planner_inputs(obs)
        shift = overhang_exit(env, t.obj, CONTROL)
        assert shift[0] == 0 and 0.04 < shift[1] < 0.08  # out towards the drawer's front
        frame = boxes["wooden_cabinet_1_base"]  # fixtures are split into bodies
        assert boxes[t.obj].lo[1] + shift[1] > frame.hi[1]
    finally:
        handle.close()
    obs, handle = settled_scene("libero_spatial", 0, 0)
    try:
        env, t, _, _ = planner_inputs(obs)
        assert not np.any(overhang_exit(env, t.obj, CONTROL))  # a bowl on the table: nothing over it
    finally:
        handle.close()
