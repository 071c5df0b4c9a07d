"""The privileged-state oracle on the real LIBERO simulator (model=oracle)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from omegaconf import OmegaConf

from conftest import ROOT, run_cli
from vlabench.records import EPISODE_COLUMNS, read_rows

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


def test_unsupported_goal_is_recorded_as_an_error_naming_the_predicate(tmp_path):
    res = run_cli("run", "model=oracle", "suite=libero_goal", "suite.tasks=[7]",
                  "run.episodes_per_task=1", "run.max_steps=5", f"run.output_dir={tmp_path}",
                  "run.quiet=true")
    assert res.returncode == 0, res.stderr[-2000:]
    eps = episodes(tmp_path / "oracle-none-libero_goal")
    assert list(eps["error_type"]) == ["Unsupported"]
    assert "turnon" in eps["error"][0] and "no plan" in eps["error"][0]


@pytest.fixture(scope="module")
def crowded_scene():
    """libero_object task 1, init state 1: the cream cheese lies beside a taller can."""
    from vlabench.suites.libero import LiberoSuite

    suite = LiberoSuite(OmegaConf.load(ROOT / "configs/suite/libero_object.yaml"))
    task = suite.all_tasks()[1]
    env = suite.make_env(task, {"privileged", "proprio"})
    obs = env.reset(suite.episodes(task, 2, 7)[1])
    yield obs
    env.close()


def test_simulator_env_has_no_renderer_and_observations_no_images(crowded_scene):
    assert crowded_scene.images == {}
    raw = crowded_scene.privileged["raw_obs"]
    assert not any(k.endswith("_image") for k in raw)
    assert crowded_scene.privileged["env"].env.has_offscreen_renderer is False


def test_grasp_keeps_the_palm_clear_of_taller_neighbours(crowded_scene):
    from vlabench.models.oracle.planner import Hand, plan_grasp, scene_boxes, transfers

    cfg = OmegaConf.load(ROOT / "configs/model/oracle.yaml").control
    env = crowded_scene.privileged["env"].env
    hand = Hand.measure(env, crowded_scene.proprio["eef_pos"])
    assert 0.06 < hand.opening < 0.09  # Panda finger gap, measured from the simulator
    assert hand.palm_hi[1] - hand.palm_lo[1] > 2.5 * hand.opening  # palm much wider than the gap
    (t,) = transfers(env)
    boxes = scene_boxes(env)
    g = plan_grasp(env, t, hand, boxes, cfg)
    obj = boxes[t.obj]
    assert obj.bottom < g.point[2] + hand.fingers_lo[2] < obj.top  # fingertips reach down the sides
    palm_lo, palm_hi = g.point + hand.palm_lo, g.point + hand.palm_hi
    for name, b in boxes.items():
        if name != t.obj and b.overlaps_xy(palm_lo, palm_hi):
            assert b.top < palm_lo[2], f"palm lands on {name}"
    # the tall tomato-sauce can beside it forces the grasp off the object's centre
    assert np.linalg.norm(g.point[:2] - obj.centre[:2]) > 0.005
