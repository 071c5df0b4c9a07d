"""Builds vlabench's wheel from a copy of the sources (the wheel tests share it)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PARTS = ("vlabench", "configs", "results/reference", "pyproject.toml", "setup.py", "README.md")


def build_wheel(tmp: Path) -> Path:
    """The wheel built in `tmp`/dist from a copy in `tmp`/src (setuptools writes build/ and
    egg-info next to the sources, never into the checkout)."""
    src = tmp / "src"
    for part in PARTS:
        (src / part).parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / part).is_dir():
            shutil.copytree(ROOT / part, src / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(ROOT / part, src / part)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                    "-w", str(tmp / "dist"), str(src)], check=True, capture_output=True)
    return next((tmp / "dist").glob("vlabench-*.whl"))
