"""Shared fixtures: the test-only plugin configs and a helper to call the CLI."""

from __future__ import annotations

import os
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
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TEST_PLUGINS), env.get("PYTHONPATH", "")])
    return env


def vlabench_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "vlabench.cli", *args]


def run_cli(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(vlabench_cmd(*args), capture_output=True, text=True, env=cli_env(),
                          timeout=timeout, cwd=ROOT)


@pytest.fixture
def cli():
    return run_cli
