"""The runner on the real LIBERO simulator: records, success detection, crashes, resume."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, cli_env, run_cli, vlabench_cmd

from vlabench.core.schema import CALL_COLUMNS, EPISODE_COLUMNS
from vlabench.records.files import read_rows

pytestmark = pytest.mark.libero
TIMING_COLUMNS = ["wall_s", "sim_s", "policy_s"]


def records(run_dir):
    eps = pd.DataFrame(read_rows(run_dir / "episodes.csv", EPISODE_COLUMNS))
    calls = pd.DataFrame(read_rows(run_dir / "calls.csv", CALL_COLUMNS))
    return eps, calls


def test_real_episode_with_both_cameras_writes_consistent_records(tmp_path):
    res = run_cli("run", "model=test-zero-images", "suite=libero_spatial", "suite.tasks=[0,3]",
                  "run.episodes_per_task=1", "run.max_steps=12", f"run.output_dir={tmp_path}",
                  "run.quiet=true")
    assert res.returncode == 0, res.stderr[-2000:]
    run_dir = next(tmp_path.glob("test-zero-images-none-libero_spatial__*"))
    eps, calls = records(run_dir)
    assert list(eps["task_id"]) == ["0", "3"] and list(eps["episode"]) == ["0", "0"]
    assert list(eps["init_state"]) == ["0", "0"] and set(eps["seed"]) == {"7"}
    # no-op actions never solve a task: every episode runs to the capped limit
    assert list(eps["success"]) == ["0", "0"] and list(eps["steps"]) == ["12", "12"]
    assert list(eps["error_type"]) == ["", ""], eps["error"].tolist()
    # chunk of 8 executed open-loop: calls at steps 0 and 8
    assert list(eps["policy_calls"]) == ["2", "2"]
    assert list(calls["step"]) == ["0", "8", "0", "8"]
    assert eps["task_name"][0].startswith("pick_up_the_black_bowl_between_the_plate")
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["max_steps"] == {"0": 12, "3": 12}
    assert manifest["rendered_cameras"] == ["agentview", "wrist"]
    assert any("caps the protocol's 220" in d for d in manifest["deviations"])
    assert manifest["packages"]["mujoco"] == "3.3.7" and manifest["mujoco_gl"]
    summary = pd.read_csv(run_dir / "summary.csv")
    assert list(summary["level"]) == ["task", "task", "suite"]
    assert summary.iloc[2]["episodes"] == 2 and summary.iloc[2]["success_rate"] == 0.0


def test_images_are_256_square_and_flipped_on_both_axes():
    from omegaconf import OmegaConf

    from vlabench.suites.libero import LiberoSuite

    suite = LiberoSuite(OmegaConf.load(ROOT / "configs/suite/libero_spatial.yaml"))
    task = suite.tasks()[0]
    env = suite.make_env(task, {"agentview", "wrist", "privileged"})
    try:
        obs = env.reset(suite.episodes(task, 1, 7)[0])
        raw = obs.privileged["raw_obs"]
        assert obs.images["agentview"].shape == (256, 256, 3)
        assert obs.images["agentview"].dtype == np.uint8
        assert np.array_equal(obs.images["agentview"], raw["agentview_image"][::-1, ::-1])
        assert np.array_equal(obs.images["wrist"], raw["robot0_eye_in_hand_image"][::-1, ::-1])
        assert set(obs.proprio) == {"eef_pos", "eef_quat", "gripper_qpos"}
    finally:
        env.close()


def test_bowl_on_plate_is_recorded_as_success_with_the_step_count(tmp_path):
    res = run_cli("run", "model=test-place-bowl", "suite=libero_spatial", "suite.tasks=[0]",
                  "run.episodes_per_task=2", "run.max_steps=40", f"run.output_dir={tmp_path}",
                  "run.quiet=true")
    assert res.returncode == 0, res.stderr[-2000:]
    eps, _ = records(next(tmp_path.glob("test-place-bowl-none-libero_spatial__*")))
    # the bowl is moved before policy step 6; it lands and LIBERO reports done one step later
    assert list(eps["success"]) == ["1", "1"]
    assert list(eps["steps"]) == ["7", "7"]


def test_crash_inside_an_episode_is_recorded_and_the_run_goes_on(tmp_path):
    res = run_cli("run", "model=test-zero", "suite=libero_spatial", "suite.tasks=[0]",
                  "run.episodes_per_task=3", "run.max_steps=8", "model.crash_on=[[0,1]]",
                  f"run.output_dir={tmp_path}", "run.quiet=true")
    assert res.returncode == 0, res.stderr[-2000:]
    eps, calls = records(next(tmp_path.glob("test-zero-none-libero_spatial__*")))
    assert list(eps["episode"]) == ["0", "1", "2"]
    assert list(eps["error_type"]) == ["", "RuntimeError", ""]
    assert "scripted crash in task 0 episode 1" in eps["error"][1]
    assert list(eps["steps"]) == ["8", "4", "8"] and eps["success"][1] == "0"
    assert len(calls[calls["episode"] == "1"]) == 1  # the crashing call left no row


def test_rerun_with_a_different_config_is_refused(tmp_path):
    base = ["run", "model=test-zero", "suite=libero_spatial", "suite.tasks=[0]",
            "run.episodes_per_task=1", f"run.output_dir={tmp_path}", "run.name=r", "run.quiet=true"]
    assert run_cli(*base, "run.max_steps=2").returncode == 0
    res = run_cli(*base, "run.max_steps=3")
    assert res.returncode == 2
    assert "different config (run.max_steps)" in res.stderr and "run.overwrite=true" in res.stderr
    again = run_cli(*base, "run.max_steps=2")  # the same command resumes: nothing left to do
    assert again.returncode == 0 and "1/1 episodes already done" in again.stderr


def _wait_for_rows(path, n, proc, timeout=300):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if path.exists() and len(path.read_text().splitlines()) - 1 >= n:
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended before it could be killed: {proc.stderr.read()[-2000:]}")
        time.sleep(0.05)
    raise AssertionError("run did not progress")


def test_sigkill_then_rerun_equals_an_uninterrupted_run(tmp_path):
    args = ["model=test-zero", "suite=libero_spatial", "suite.tasks=[0,1]", "run.episodes_per_task=3",
            "run.max_steps=6", "run.name=resume", "run.quiet=true"]
    full = run_cli("run", *args, f"run.output_dir={tmp_path / 'full'}")
    assert full.returncode == 0, full.stderr[-2000:]

    out = tmp_path / "killed"
    proc = subprocess.Popen(vlabench_cmd("run", *args, f"run.output_dir={out}"), cwd=ROOT,
                            env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for_rows(out / "resume" / "episodes.csv", 2, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_eps, _ = records(out / "resume")
    assert 2 <= len(killed_eps) < 6
    assert json.loads((out / "resume" / "manifest.json").read_text())["status"] == "running"

    res = run_cli("run", *args, f"run.output_dir={out}")
    assert res.returncode == 0, res.stderr[-2000:]
    a_eps, a_calls = records(tmp_path / "full" / "resume")
    b_eps, b_calls = records(out / "resume")
    keys = list(zip(b_eps["task_id"], b_eps["episode"], strict=True))
    assert sorted(keys) == [(t, e) for t in "01" for e in "012"] and len(set(keys)) == 6
    pd.testing.assert_frame_equal(a_eps.drop(columns=TIMING_COLUMNS), b_eps.drop(columns=TIMING_COLUMNS))
    pd.testing.assert_frame_equal(a_calls, b_calls)  # incl. latencies drawn from the reseeded RNG
    assert (tmp_path / "full/resume/summary.csv").read_text() == (out / "resume/summary.csv").read_text()
