"""Real SIMPLER Bridge episodes on ManiSkill 3 through `vlabench run` (CPU rendering works here).

Assets come from the test fixture named by VLABENCH_SIMPLER_ASSETS (its table is a flat stand-in
box, see README), passed as a relative `suite.asset_dir`, which is resolved from the repo root.
"""

from __future__ import annotations

import importlib.util
import json
import os

import numpy as np
import pandas as pd
import pytest
from conftest import NO_SIMPLER_ASSETS, ROOT, SIMPLER_ASSETS, run_cli

from vlabench.core.schema import CALL_COLUMNS, EPISODE_COLUMNS
from vlabench.records.files import read_rows

RELATIVE_ASSETS = os.path.relpath(SIMPLER_ASSETS, ROOT)   # resolved from the repository root
ASSETS = f"suite.asset_dir={RELATIVE_ASSETS}"

pytestmark = [
    pytest.mark.simpler,
    pytest.mark.skipif(importlib.util.find_spec("mani_skill") is None, reason="mani-skill not installed"),
    pytest.mark.skipif(not SIMPLER_ASSETS.is_dir(), reason=NO_SIMPLER_ASSETS),
]


def records(run_dir):
    return (pd.DataFrame(read_rows(run_dir / "episodes.csv", EPISODE_COLUMNS)),
            pd.DataFrame(read_rows(run_dir / "calls.csv", CALL_COLUMNS)))


def test_carrot_spoon_and_cube_run_full_episodes_end_to_end(tmp_path):
    """One full-length (60-step) episode of each task, rendering the 3rd-view image each step."""
    res = run_cli("run", "model=test-simpler-hold", "suite=simpler_bridge", "suite.tasks=[0,1,2]",
                  "run.episodes_per_task=1", ASSETS, f"run.output_dir={tmp_path}", "run.quiet=true")
    assert res.returncode == 0, res.stderr[-3000:]
    run_dir = tmp_path / "test-simpler-hold-none-simpler_bridge"
    eps, calls = records(run_dir)
    assert list(eps["error_type"]) == ["", "", ""], eps["error"].tolist()
    assert list(eps["task_name"]) == ["put_carrot_on_plate", "put_spoon_on_towel", "stack_green_on_yellow_cube"]
    assert list(eps["steps"]) == ["60", "60", "60"] and list(eps["success"]) == ["0", "0", "0"]
    assert list(eps["policy_calls"]) == ["15", "15", "15"]          # chunk 4, open-loop
    assert (eps["sim_s"].astype(float) > 0).all()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["suite_family"] == "simpler"
    assert manifest["max_steps"] == {"0": 60, "1": 60, "2": 60}
    assert manifest["rendered_cameras"] == ["agentview"]
    assert manifest["packages"]["mani-skill"] and manifest["packages"]["sapien"]
    assert len(calls) == 45


def test_carrot_on_plate_is_success_only_if_it_is_there_at_the_last_step(tmp_path):
    """Episode 0 puts the carrot on the plate at step 2 and leaves it: success. Episode 1 puts it
    there and takes it off again at step 6: an earlier step succeeded, the last did not."""
    res = run_cli("run", "model=test-simpler-place-carrot", "suite=simpler_bridge", "suite.tasks=[0]",
                  "run.episodes_per_task=2", "run.max_steps=10", ASSETS, f"run.output_dir={tmp_path}",
                  "run.quiet=true")
    assert res.returncode == 0, res.stderr[-3000:]
    eps, _ = records(next(tmp_path.glob("test-simpler-place-carrot-none-simpler_bridge__*")))
    assert list(eps["error_type"]) == ["", ""], eps["error"].tolist()
    assert list(eps["success"]) == ["1", "0"]
    assert list(eps["steps"]) == ["10", "10"]        # no early stop in SIMPLER
    assert list(eps["init_state"]) == ["0", "1"]


def test_episode_placements_follow_the_episode_id_and_images_are_real_background():
    from omegaconf import OmegaConf

    from vlabench.core.contracts import EpisodeSpec
    from vlabench.suites.simpler import SimplerBridgeSuite

    cfg = OmegaConf.load(ROOT / "configs/suite/simpler_bridge.yaml")
    cfg.tasks, cfg.asset_dir = [0], RELATIVE_ASSETS
    suite = SimplerBridgeSuite(cfg)
    task = suite.tasks()[0]
    env = suite.make_env(task, {"agentview", "privileged"})
    try:
        pos = {}
        for i in (0, 1, 2):
            obs = env.reset(EpisodeSpec(0, i, i, 7))
            img = obs.images["agentview"]
            assert img.shape == (480, 640, 3) and img.dtype == np.uint8 and obs.proprio == {}
            plate = obs.privileged["env"].objs["bridge_plate_objaverse_larger"]
            pos[i] = plate.pose.p[0].cpu().numpy()
        # episode_id -> (position pair id // 2, orientation id % 2): episodes 0 and 1 share the
        # plate position, episode 2 puts the plate on another corner of the 15 cm grid
        assert np.linalg.norm(pos[0][:2] - pos[1][:2]) < 0.01 and np.linalg.norm(pos[0][:2] - pos[2][:2]) > 0.1
        # the overlay: the top rows show the real photo (not the renderer's black/grey void)
        assert img[:40].std() > 5
    finally:
        env.close()
