"""Where ManiSkill 3 finds the SIMPLER assets, and a file check that never prompts.

ManiSkill reads `MS_ASSET_DIR` once, when `mani_skill` is first imported, and looks for assets
under `$MS_ASSET_DIR/data` (default `~/.maniskill/data`). A SIMPLER task whose assets are missing
makes `gym.make` ask `(y|n)` on stdin (and, with `MS_SKIP_ASSET_DOWNLOAD_PROMPT=1`, try the network).
vlabench never lets it get there: `ensure_assets()` checks the files a task needs first and
raises one line with ManiSkill's own download command.

Resolution of the asset root (highest priority first):
1. the suite's `asset_dir` (a path; relative paths are taken from the repository root, so
   `suite.asset_dir=path/to/simpler_assets` means the same thing wherever the repo is cloned);
2. the environment variable `MS_ASSET_DIR`;
3. ManiSkill's default `~/.maniskill`.
Nothing here imports ManiSkill.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

from vlabench.core.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
BRIDGE = "tasks/bridge_v2_real2sim_dataset"
DOWNLOAD_IDS = ("bridge_v2_real2sim", "widowx250s")


def download_command(asset_root: Path) -> str:
    """ManiSkill's downloader, one asset id per call (its CLI takes a single uid)."""
    prefix = "" if asset_root == default_root() else f"MS_ASSET_DIR={asset_root} "
    return " && ".join(f"{prefix}python -m mani_skill.utils.download_asset {uid} -y"
                       for uid in DOWNLOAD_IDS)


def default_root() -> Path:
    return Path(os.path.expanduser("~")) / ".maniskill"


def resolve_asset_root(asset_dir: str | os.PathLike | None) -> Path:
    """The directory ManiSkill must use as MS_ASSET_DIR (see module docstring)."""
    if asset_dir not in (None, ""):
        p = Path(os.path.expanduser(str(asset_dir)))
        return (p if p.is_absolute() else REPO_ROOT / p).resolve()
    env = os.environ.get("MS_ASSET_DIR")
    if env:
        return Path(os.path.expanduser(env)).resolve()
    return default_root()


def export_asset_root(root: Path) -> None:
    """Point ManiSkill at `root` (before its first import) and disable its download prompt."""
    os.environ["MS_SKIP_ASSET_DOWNLOAD_PROMPT"] = "1"
    ms = sys.modules.get("mani_skill")
    if ms is not None:
        current = Path(ms.ASSET_DIR).parent.resolve()
        if current != root.resolve():
            raise ConfigError(
                f"ManiSkill was already imported with MS_ASSET_DIR={current}; cannot switch to {root} "
                f"in the same process (set MS_ASSET_DIR={root} before starting)")
        return
    os.environ["MS_ASSET_DIR"] = str(root)


def model_files(model_id: str) -> list[str]:
    """Files `_build_actor_helper` reads for an object model (visual: obj, dae or glb)."""
    base = f"{BRIDGE}/custom/models/{model_id}"
    return [f"{base}/collision.obj", f"{base}/textured.obj|{base}/textured.dae|{base}/textured.glb"]


def required_files(scene: str, model_json: str, objects: Iterable[str]) -> list[str]:
    """Asset files (relative to `<root>/data`) a Bridge task needs; `a|b` means either."""
    stage = "bridge_table_1_v1.glb" if scene == "flat_table" else "bridge_table_1_v2.glb"
    overlay = "bridge_real_eval_1.png" if scene == "flat_table" else "bridge_sink.png"
    files = ["robots/widowx/wx250s.urdf", f"{BRIDGE}/stages/{stage}",
             f"{BRIDGE}/real_inpainting/{overlay}", f"{BRIDGE}/custom/{model_json}"]
    objs = list(objects) + (["sink"] if scene == "sink" else [])
    for o in objs:
        files += model_files(o)
    return files


def missing_files(root: Path, files: Iterable[str]) -> list[str]:
    data = root / "data"
    return [f for f in files if not any((data / alt).is_file() for alt in f.split("|"))]


def ensure_assets(root: Path, task_name: str, files: Iterable[str]) -> None:
    """Raise a one-line ConfigError naming the first missing file and the download command."""
    missing = missing_files(root, files)
    if missing:
        first = missing[0].split("|")[0]
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise ConfigError(
            f"SIMPLER assets for {task_name} are missing under MS_ASSET_DIR={root}: data/{first}{more}; "
            f"download them with `{download_command(root)}` or set MS_ASSET_DIR / suite.asset_dir")
