"""The package path a new user takes, end to end: the built wheel installed into a fresh virtual
environment with its real dependencies resolved from the package index, as README "As a
package" says for a machine without a GPU (`pip install "vlabench[models,libero,cpu]"` with
PyTorch's CPU index), then, from an empty directory: `vlabench list`, an oracle episode on
LIBERO and a tiny-model episode of each model family (OpenVLA-OFT, pi0).

Nothing is borrowed from the development environment (no .pth, no PYTHONPATH). The CPU torch
comes from wherever pip is configured to find it: PyTorch's CPU index on CI
(PIP_EXTRA_INDEX_URL), a local wheel directory (PIP_FIND_LINKS) elsewhere; pip's own cache
makes reruns faster (a cold install downloads about 1 GB). Catches what the borrowed-deps wheel
test cannot: a CUDA torch pulled in, a dependency that breaks an import (torchvision beside the
CPU torch), a module or data file missing from the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from wheel_build import build_wheel

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = "models,libero,cpu"    # README "As a package", without a GPU
pytestmark = [pytest.mark.slow, pytest.mark.libero]


def _clean_env(tmp: Path) -> dict[str, str]:
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "VLABENCH_CONFIG_PATH", "PYTHONHOME", "LIBERO_CONFIG_PATH")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.setdefault("MUJOCO_GL", "egl")
    env["LIBERO_CONFIG_PATH"] = str(tmp / "libero-config")   # not the developer's LIBERO config
    env["HF_HUB_OFFLINE"] = "1"
    return env


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fresh")
    wheel = build_wheel(tmp)
    venv = tmp / "venv"
    env = _clean_env(tmp)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, env=env)
    py = venv / "bin" / "python"
    res = subprocess.run([str(py), "-m", "pip", "install", "-q", f"{wheel}[{EXTRAS}]"],
                         capture_output=True, text=True, env=env, timeout=1800)
    assert res.returncode == 0, res.stderr[-3000:]
    cwd = tmp / "empty"
    cwd.mkdir()
    return py, venv / "bin" / "vlabench", cwd, env


def _run(fresh, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    _, exe, cwd, env = fresh
    return subprocess.run([str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_the_fresh_environment_has_the_cpu_torch_and_nothing_borrowed(fresh):
    py, _, cwd, env = fresh
    res = subprocess.run([str(py), "-c", "import sys, torch, vlabench; print(torch.__version__); "
                          "print(torch.__file__); print(vlabench.__file__); print(sys.path)"],
                         cwd=cwd, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    version, torch_file, pkg_file, path = res.stdout.splitlines()
    venv = str(py.parent.parent)
    assert torch_file.startswith(venv) and pkg_file.startswith(venv), res.stdout
    assert str(ROOT) not in path and "/.venv/" not in path, path
    freeze = subprocess.run([str(py), "-m", "pip", "freeze"], capture_output=True, text=True, env=env).stdout
    assert "nvidia-" not in freeze.lower(), "a CUDA build was pulled in: " + freeze
    assert version.startswith("2.13.0"), version


def test_list_from_an_empty_directory_gives_pip_commands(fresh):
    res = _run(fresh, "list")
    assert res.returncode == 0, res.stderr[-2000:]
    for name in ("openvla-oft-tiny", "pi0-tiny", "fastv", "libero_spatial", "oracle"):
        assert name in res.stdout
    assert "make install" not in res.stdout   # the wheel has no Makefile beside it
    assert 'pip install "vlabench[simpler]"' in " ".join(res.stdout.split())


@pytest.mark.parametrize("model", ["oracle", "openvla-oft-tiny", "pi0-tiny"])
def test_an_episode_of_each_model_family_runs_from_the_wheel(fresh, model):
    steps = "60" if model == "oracle" else "6"
    res = _run(fresh, "run", f"model={model}", "suite=libero_spatial", "suite.tasks=[0]",
               "run.episodes_per_task=1", f"run.max_steps={steps}", f"run.output_dir=out-{model}",
               "run.quiet=true")
    assert res.returncode == 0, res.stderr[-3000:]
    assert "libero_spatial: " in res.stdout and " 0 errors" in res.stdout, res.stdout
    runs = list((fresh[2] / f"out-{model}").glob("*/episodes.csv"))
    assert len(runs) == 1 and len(runs[0].read_text().splitlines()) == 2
