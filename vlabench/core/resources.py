"""Where vlabench's data files are: the shipped configs and the papers' published numbers.

An installed wheel carries them inside the package (`vlabench/configs`, `vlabench/reference`,
mapped from the source tree's `configs/` and `results/reference/` by pyproject.toml); a source
checkout (editable install, tests) reads the source tree directly.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]   # vlabench/
SOURCE_ROOT = PACKAGE_DIR.parent


def data_dir(packaged: str, in_source: str) -> Path:
    """The installed copy `vlabench/<packaged>` when present, else `<source root>/<in_source>`."""
    inside = PACKAGE_DIR / packaged
    return inside if inside.is_dir() else SOURCE_ROOT / in_source


CONFIGS_DIR = data_dir("configs", "configs")
REFERENCE_DIR = data_dir("reference", "results/reference")
