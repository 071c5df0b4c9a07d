"""The package layout is the architecture: layers import downward only, no module imports
itself back through others, `import vlabench` stays light, sources cite nothing outside the
repository, and the README's architecture section names exactly the packages in the tree."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "vlabench"
HEAVY = ("torch", "transformers", "hydra", "mujoco", "robosuite", "libero", "mani_skill",
         "sapien", "gymnasium", "pandas", "matplotlib", "ray", "submitit")


def _modules_loaded_by(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return {m.split(".")[0] for m in out.stdout.split()}


def test_import_layers_hold():
    """`lint-imports` checks the contracts in pyproject.toml (layers, a torch-free core)."""
    lint = Path(sys.executable).parent / "lint-imports"
    out = subprocess.run([str(lint), "--no-cache"], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def _cycles(graph) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.find_modules_directly_imported_by(w)))))
                    break
                if w in on_stack:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on_stack.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        found.append(sorted(comp))
    return found


def test_no_module_imports_itself_back():
    """No import cycle between vlabench modules, counting imports inside functions too."""
    grimp = pytest.importorskip("grimp")
    graph = grimp.build_graph("vlabench", exclude_type_checking_imports=True)
    assert _cycles(graph) == []


def test_the_cycle_finder_sees_a_cycle():
    class Graph:   # a -> b -> c -> a, d alone
        modules = {"a", "b", "c", "d"}
        edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

        def find_modules_directly_imported_by(self, m):
            return self.edges.get(m, set())

    assert _cycles(Graph()) == [["a", "b", "c"]]


def test_importing_vlabench_loads_nothing_heavy():
    loaded = _modules_loaded_by("import vlabench")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_the_core_imports_nothing_heavy():
    core = sorted(p.stem for p in (PACKAGE / "core").glob("*.py") if p.stem != "__init__")
    loaded = _modules_loaded_by("\n".join(f"import vlabench.core.{m}" for m in core))
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_every_plugin_path_in_configs_imports():
    """Every `plugin: module:attr` in configs/ names an importable attribute."""
    import importlib

    paths = set()
    for f in (ROOT / "configs").rglob("*.yaml"):
        data = yaml.safe_load(f.read_text()) or {}
        if isinstance(data, dict) and isinstance(data.get("plugin"), str):
            paths.add(data["plugin"])
    assert len(paths) > 20
    for p in sorted(paths):
        module, _, attr = p.partition(":")
        assert hasattr(importlib.import_module(module), attr), p


def test_sources_cite_nothing_outside_the_repository():
    hits = []
    for base in ("vlabench", "configs", "docs"):
        for f in (ROOT / base).rglob("*"):
            if f.is_file() and f.suffix in (".py", ".yaml", ".md") and "../shared" in f.read_text():
                hits.append(str(f.relative_to(ROOT)))
    if "../shared" in (ROOT / "README.md").read_text():
        hits.append("README.md")
    assert hits == []


def _readme_packages() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Architecture", 1)[1].split("\n## ", 1)[0]
    return sorted(set(re.findall(r"`vlabench/([a-z_]+)/`", section)))


def test_readme_architecture_names_every_package_in_the_tree():
    tree = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))
    assert _readme_packages() == tree


def test_no_module_sits_beside_the_packages():
    """The top level holds only the package marker, `python -m vlabench` and the packages."""
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py", "__main__.py"]


def test_every_pruner_has_its_method_page():
    """Each configured method links to docs/methods/<module>.md, and the index lists every page."""
    from vlabench.core import registry
    from vlabench.pruners.readings import method_doc

    pages = {method_doc(name) for name in registry.entries("pruner") if name != "none"
             and registry.entry("pruner", name).plugin.startswith("vlabench.")}
    missing = sorted(p for p in pages if not (ROOT / p).is_file())
    assert missing == []
    index = (ROOT / "docs" / "methods" / "README.md").read_text()
    assert all(f"]({Path(p).name})" in index for p in pages)
    assert len(pages) == len(list((ROOT / "docs" / "methods").glob("*.md"))) - 1


def test_module_docstrings_lead_with_a_short_paragraph():
    """Every module says what it does first, in at most 8 lines, and stays under 30 lines:
    long analyses and citations live in docs/ (docs/methods/ for the methods)."""
    import ast

    long = []
    for f in sorted(PACKAGE.rglob("*.py")):
        doc = ast.get_docstring(ast.parse(f.read_text()), clean=False) or ""
        first = doc.strip().split("\n\n")[0]
        if not doc.strip() and f.stat().st_size > 0 or len(first.splitlines()) > 8 or len(doc.splitlines()) > 30:
            long.append(str(f.relative_to(ROOT)))
    assert long == []
