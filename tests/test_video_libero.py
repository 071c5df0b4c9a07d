"""run.video and sim.log on the real LIBERO simulator: the oracle needs no image, so agentview is
rendered for the video; a failed (step-capped) episode gets its video with steps + 1 frames;
LIBERO's "[info] using task orders" line lands in sim.log, not on the terminal."""

from __future__ import annotations

import cv2
import pytest
from conftest import run_cli

pytestmark = pytest.mark.libero


def test_a_capped_oracle_episode_gets_a_video_and_libero_chatter_stays_in_sim_log(tmp_path):
    res = run_cli("run", "model=oracle", "suite=libero_spatial", "suite.tasks=[0]",
                  "run.episodes_per_task=1", "run.max_steps=10", f"run.output_dir={tmp_path}",
                  "run.name=r", "run.quiet=true", "run.video=failures")
    assert res.returncode == 0, res.stderr
    d = tmp_path / "r"
    cap = cv2.VideoCapture(str(d / "videos" / "task0_ep0_failure.mp4"))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 10 + 1
    assert "using task orders" in (d / "sim.log").read_text()
    assert "using task orders" not in res.stdout + res.stderr
