"""Name -> plugin, read from the config tree and imported only when chosen.

Every file `configs/<group>/<name>.yaml` of the groups model, pruner and suite is a plugin
entry. Its keys `plugin` ("module:attr"), `description` and `requires` (importable modules)
describe it; the rest is the plugin's own configuration. Listing reads YAML only: nothing
heavy (torch, mujoco, libero, mani_skill) is imported until `build()` is called.

Extra config directories (out-of-tree plugins, test fixtures) come from the environment
variable VLABENCH_CONFIG_PATH (os.pathsep-separated); they are searched before the built-in tree.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from vlabench.core import yamlio
from vlabench.core.errors import ConfigError
from vlabench.core.resources import CONFIGS_DIR

GROUPS = ("model", "pruner", "suite")
BUILTIN_CONFIGS = CONFIGS_DIR   # inside the package when installed from a wheel (resources.py)


def config_dirs() -> list[Path]:
    """Config directories, highest priority first."""
    extra = [Path(p) for p in os.environ.get("VLABENCH_CONFIG_PATH", "").split(os.pathsep) if p]
    return [p.resolve() for p in extra] + [BUILTIN_CONFIGS]


@dataclass(frozen=True)
class Entry:
    group: str
    name: str
    plugin: str
    description: str
    requires: tuple[str, ...]
    path: Path
    hint: str = ""  # how to install what `requires` names (YAML key `install_hint`)

    def missing(self) -> list[str]:
        """Required modules that are not importable here (checked without importing them)."""
        out = []
        for mod in self.requires:
            try:
                found = importlib.util.find_spec(mod) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                out.append(mod)
        return out

    @classmethod
    def from_mapping(cls, group: str, name: str, data: Any, path: Path) -> Entry:
        """The entry a plugin config (a YAML mapping or a composed config node) describes."""
        return cls(group=group, name=name, plugin=str(data["plugin"]),
                   description=str(data.get("description") or "").strip(),
                   requires=tuple(data.get("requires") or ()), path=path,
                   hint=str(data.get("install_hint") or "").strip())

    def build(self, *args: Any, **kwargs: Any) -> Any:
        """Import the plugin and call it; a missing requirement is one line naming the install."""
        missing = self.missing()
        if missing:
            raise ConfigError(f"{self.group} {self.name!r} needs {', '.join(missing)}, which is not "
                              f"installed: run {install_hint(self)}")
        return self.load()(*args, **kwargs)

    def load(self) -> Any:
        module, _, attr = self.plugin.partition(":")
        if not attr:
            raise ConfigError(f"{self.path}: plugin must be 'module:attr', got {self.plugin!r}")
        return getattr(importlib.import_module(module), attr)


@lru_cache(maxsize=None)
def _entries(dirs: tuple[Path, ...]) -> dict[str, dict[str, Entry]]:
    table: dict[str, dict[str, Entry]] = {g: {} for g in GROUPS}
    for d in reversed(dirs):  # later (higher-priority) dirs override
        for group in GROUPS:
            for f in sorted((d / group).glob("*.yaml")):
                data = yamlio.safe_load(f.read_text()) or {}
                if "plugin" not in data:
                    continue
                table[group][f.stem] = Entry.from_mapping(group, f.stem, data, f)
    return table


def entries(group: str) -> dict[str, Entry]:
    if group not in GROUPS:
        raise ConfigError(f"unknown plugin group {group!r}; valid: {', '.join(GROUPS)}")
    return _entries(tuple(config_dirs()))[group]


def entry(group: str, name: str) -> Entry:
    table = entries(group)
    if name not in table:
        raise ConfigError(f"unknown {group} {name!r}; valid: {', '.join(sorted(table))}")
    return table[name]


def install_hint(e: Entry) -> str:
    """The plugin's own install instructions, else the front door's."""
    return e.hint or "`make install`"


def build(group: str, name: str, *args: Any, **kwargs: Any) -> Any:
    """Import the plugin `name` of `group` and call it with the given arguments."""
    return entry(group, name).build(*args, **kwargs)


def build_plugin(cfg: Any, group: str, **kwargs: Any) -> Any:
    """Instantiate the plugin that the composed config's `group` node names, called with that
    node (and `kwargs`)."""
    node = cfg[group]
    return Entry.from_mapping(group, str(node.get("name")), node, Path(".")).build(node, **kwargs)
