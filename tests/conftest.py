"""Shared fixtures: the test-only plugin configs and a helper to call the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TEST_CONFIGS = Path(__file__).resolve().parent / "configs"
TEST_PLUGINS = Path(__file__).resolve().parent / "plugins"

os.environ["VLABENCH_CONFIG_PATH"] = str(TEST_CONFIGS)
sys.path.insert(0, str(TEST_PLUGINS))
os.environ.setdefault("MUJOCO_GL", "egl")

# The SIMPLER Bridge asset fixture (ManiSkill's data/ folder with the carrot, spoon and cube
# assets; too large to ship) is found through VLABENCH_SIMPLER_ASSETS; `make test` points it at
# the CI's fixture checkout when there is one. Tests that need it skip with this reason otherwise.
SIMPLER_ASSETS_ENV = "VLABENCH_SIMPLER_ASSETS"
SIMPLER_ASSETS = Path(os.environ.get(SIMPLER_ASSETS_ENV) or "/nonexistent").resolve()
NO_SIMPLER_ASSETS = (f"no SIMPLER asset fixture: set {SIMPLER_ASSETS_ENV} to a folder holding "
                     f"ManiSkill's data/ for the Bridge tasks (README, SIMPLER assets)")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TEST_PLUGINS), env.get("PYTHONPATH", "")])
    return env


def vlabench_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "vlabench", *args]


def default_sigint() -> None:
    """`preexec_fn` for a child that must see Ctrl-C: a test runner started in the background by
    a shell ignores SIGINT, and its children inherit that (as a user's terminal never does)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(vlabench_cmd(*args), capture_output=True, text=True, env=cli_env(),
                          timeout=timeout, cwd=ROOT)


@pytest.fixture
def cli():
    return run_cli
