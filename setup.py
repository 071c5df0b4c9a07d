"""Package discovery (the metadata is in pyproject.toml): every package under vlabench/, plus the
shipped configs and reference numbers, which the wheel carries as vlabench.configs.* and
vlabench.reference (mapped from configs/ and results/reference/ in pyproject.toml)."""

from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).resolve().parent
CONFIG_PACKAGES = ["vlabench.configs"] + sorted(
    f"vlabench.configs.{d.name}" for d in (ROOT / "configs").iterdir() if d.is_dir())

setup(packages=find_packages(include=["vlabench", "vlabench.*"]) + CONFIG_PACKAGES
      + ["vlabench.reference"])
