"""One Ctrl-C stops a real LIBERO run cleanly (issue 14 item 3): exit 130, the resume line last,
no traceback and no robosuite destructor noise, the manifest `interrupted`, and the same command
resumes. The signal lands at two moments: while a task's environment is being built (robosuite's
render context half made) and in the middle of an episode's steps."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT, cli_env, default_sigint, run_cli, vlabench_cmd

pytestmark = [pytest.mark.libero, pytest.mark.slow]
ARGS = ["model=openvla-oft-tiny", "suite=libero_spatial", "suite.tasks=[0]",
        "run.episodes_per_task=2", "run.max_steps=30", "run.name=r", "run.quiet=true"]
LAST = "vlabench: interrupted; finished episodes are saved, re-run the same command to resume"


def _start(out: Path) -> subprocess.Popen:
    env = {**cli_env(), "MUJOCO_GL": cli_env().get("MUJOCO_GL", "egl")}
    return subprocess.Popen(vlabench_cmd("run", *ARGS, f"run.output_dir={out}"), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=default_sigint)


def _wait(cond, timeout: float = 300.0) -> None:
    t0 = time.time()
    while not cond():
        assert time.time() - t0 < timeout, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize("moment", ["building the environment", "mid-episode"])
def test_one_ctrl_c_stops_a_libero_run_cleanly_and_it_resumes(tmp_path, moment):
    d = tmp_path / "r"
    p = _start(tmp_path)
    # the manifest appears once the policy is built, just before the environment is made
    _wait(lambda: (d / "manifest.json").exists())
    if moment == "mid-episode":
        _wait(lambda: (d / "episodes.csv").exists()
              and len((d / "episodes.csv").read_text().splitlines()) >= 2)
        time.sleep(2.0)
    else:
        time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == LAST
    assert "Traceback" not in err and "Exception ignored" not in err, err[-2000:]
    assert json.loads((d / "manifest.json").read_text())["status"] == "interrupted"
    res = run_cli("run", *ARGS, f"run.output_dir={tmp_path}")
    assert res.returncode == 0, res.stderr[-2000:]
    assert json.loads((d / "manifest.json").read_text())["status"] == "complete"
    assert len((d / "episodes.csv").read_text().splitlines()) == 3
