"""A CPU install must not pull CUDA torch: the `cpu` extra pins exactly what constraints-cpu.txt
pins (the versions the tests run on), and `vlabench list` run from an installed wheel gives pip
commands (with the CPU index) instead of `make install`."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines: list[str]) -> set[str]:
    return {ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip()}


def test_the_cpu_extra_pins_exactly_the_cpu_constraints():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    constraints = _pins((ROOT / "constraints-cpu.txt").read_text().splitlines())
    assert constraints and set(extras["cpu"]) == constraints
    assert any(p.startswith("torch==") for p in constraints)


def test_list_from_a_wheel_gives_pip_commands(monkeypatch):
    from vlabench.commands import listing
    from vlabench.core import registry

    entry = registry.entries("suite")["simpler_bridge"]
    assert listing.install_hint(entry, ["mani_skill"]) == "`make install`"   # from this checkout
    monkeypatch.setattr(listing, "from_source", lambda: False)
    assert listing.install_hint(entry, ["mani_skill", "sapien"]) == '`pip install "vlabench[simpler]"`'
    model = registry.entries("model")["openvla-oft-tiny"]
    hint = listing.install_hint(model, ["torch", "transformers"])
    assert hint.startswith('`pip install "vlabench[models]"`') and listing.CPU_INDEX in hint
    assert "make install" not in hint
