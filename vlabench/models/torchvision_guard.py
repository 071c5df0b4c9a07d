"""Keeps a broken torchvision from breaking transformers (and so every model).

PyPI's torchvision wheels are built against PyPI's (CUDA) torch: beside the CPU torch build
their compiled operators are missing and `import torchvision` fails with "operator
torchvision::nms does not exist". robomimic (pulled in by the `libero` extra) installs it, and
transformers imports torchvision whenever it is installed. `install()` (run by
vlabench/models/__init__.py) hooks the first import of transformers: torchvision is tried once;
when it fails it is hidden (sys.modules["torchvision"] = None, which transformers' availability
check reads as "not installed") and one line on stderr says how to remove it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys
from typing import Any

_checked = False


def problem_line(error: BaseException) -> str:
    """The one line printed when torchvision is broken."""
    from importlib.metadata import PackageNotFoundError, version

    def ver(dist: str) -> str:
        try:
            return version(dist)
        except PackageNotFoundError:
            return "?"

    first = (str(error).strip().splitlines() or [type(error).__name__])[-1]
    return (f"vlabench: torchvision {ver('torchvision')} does not work with torch {ver('torch')} "
            f"({first}); running without it (vlabench needs none of it). Fix: "
            f"`pip uninstall -y torchvision`")


def check_torchvision() -> str | None:
    """Import torchvision once if installed; when that fails, hide it and return the problem line."""
    global _checked
    if _checked or "torchvision" in sys.modules:
        return None
    _checked = True
    try:
        if importlib.util.find_spec("torchvision") is None:
            return None
    except (ImportError, ValueError):
        return None
    try:
        import torchvision  # noqa: F401
    except Exception as e:   # RuntimeError: operator torchvision::nms does not exist
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        sys.modules["torchvision"] = None   # type: ignore[assignment]  # find_spec -> None
        return problem_line(e)
    return None


class _GuardedLoader(importlib.abc.Loader):
    """transformers' own loader, checking torchvision before transformers' code runs."""

    def __init__(self, loader: Any):
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        module.__loader__ = self.loader
        if module.__spec__ is not None:
            module.__spec__.loader = self.loader
        line = check_torchvision()
        if line:
            print(line, file=sys.stderr, flush=True)
        self.loader.exec_module(module)


class _TransformersFinder(importlib.abc.MetaPathFinder):
    """Finds transformers as the path finder does, with `_GuardedLoader` around its loader
    (a bare `find_spec` probe imports nothing)."""

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name != "transformers" or _checked:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return None
        spec.loader = _GuardedLoader(spec.loader)
        return spec


def install() -> None:
    """Hook the first import of transformers (no-op when it is imported already)."""
    if "transformers" in sys.modules or any(isinstance(f, _TransformersFinder) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, _TransformersFinder())
