"""A torchvision whose compiled operators do not match torch (PyPI's wheel beside the CPU torch,
pulled in by robomimic) must not break the models: vlabench hides it from transformers and says
in one line how to remove it. The broken package is a stand-in raising the same RuntimeError."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BROKEN = 'raise RuntimeError("operator torchvision::nms does not exist")\n'
PROBE = ("import vlabench.models.prismatic, vlabench.models.decoder\n"
         "from transformers.utils import is_torchvision_available\n"
         "print('available', is_torchvision_available())\n")


def _run(tmp_path: Path, code: str, init: str = BROKEN) -> subprocess.CompletedProcess:
    pkg = tmp_path / "fake" / "torchvision"
    pkg.mkdir(parents=True, exist_ok=True)
    (pkg / "__init__.py").write_text(init)
    env = {**os.environ, "PYTHONPATH": f"{pkg.parent}{os.pathsep}{Path(__file__).resolve().parents[1]}"}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=300, stdin=subprocess.DEVNULL)


def test_a_broken_torchvision_is_hidden_from_transformers_with_one_line(tmp_path):
    res = _run(tmp_path, PROBE)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "available False" in res.stdout
    lines = [line for line in res.stderr.splitlines() if "torchvision" in line]
    assert len(lines) == 1 and "pip uninstall -y torchvision" in lines[0], res.stderr
    assert "operator torchvision::nms does not exist" in lines[0]


def test_without_the_guard_the_same_torchvision_breaks_the_model_imports(tmp_path):
    """The stand-in reproduces the failure (so the test above can fail)."""
    code = ("import sys; from vlabench.models import torchvision_guard as g\n"
            "sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, g._TransformersFinder)]\n"
            + PROBE)
    res = _run(tmp_path, code)
    assert res.returncode != 0 and "torchvision::nms" in res.stderr


def test_a_working_torchvision_is_left_alone(tmp_path):
    code = ("import sys; from vlabench.models.torchvision_guard import check_torchvision\n"
            "print('line', check_torchvision()); print('kept', sys.modules['torchvision'] is not None)\n")
    res = _run(tmp_path, code, init="__version__ = '0.0'\n")
    assert res.returncode == 0, res.stderr[-2000:]
    assert "line None" in res.stdout and "kept True" in res.stdout
