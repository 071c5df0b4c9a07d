"""`vlabench list`: what is missing to use each plugin here, sized to the terminal."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest
from conftest import cli_env
from rich.console import Console

from vlabench.commands import listing
from vlabench.core import registry
from vlabench.models import checkpoint_spec


@pytest.fixture
def empty_hf_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(checkpoint_spec, "hf_cache_dir", lambda: str(tmp_path / "hub"))
    return tmp_path / "hub"


def _cache(hub, repo_id):
    """A Hugging Face cache entry for `repo_id` holding config.json (the layout huggingface_hub reads)."""
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    (repo / "snapshots" / "abc").mkdir(parents=True)
    (repo / "snapshots" / "abc" / "config.json").write_text("{}")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("abc")


def _output(width: int) -> str:
    buf = io.StringIO()
    listing.print_list(console=Console(width=width, file=buf))
    return buf.getvalue()


@pytest.mark.parametrize("width", [80, 100, 160])
def test_no_line_exceeds_the_terminal_width_and_every_plugin_is_listed(width, empty_hf_cache):
    text = _output(width)
    assert max(len(line) for line in text.splitlines()) <= width
    flat = " ".join(text.split())
    for group in registry.GROUPS:
        for name in registry.entries(group):
            assert name in flat


def test_a_model_with_a_checkpoint_id_and_no_cache_says_what_is_missing(empty_hf_cache):
    r = listing.readiness(registry.entry("model", "openvla-oft"))
    assert r.status == "no"
    (need,) = r.missing
    assert need.startswith("weights for libero_spatial, libero_object, libero_goal, libero_10")
    assert "`hf download moojink/openvla-7b-oft-finetuned-libero-spatial`" in need
    assert "model=openvla-oft-tiny" in r.instead and "model.checkpoint=null" in r.instead
    assert "no: needs weights" in " ".join(_output(160).split())


def test_some_cached_checkpoints_make_a_model_partly_usable(empty_hf_cache):
    _cache(empty_hf_cache, "moojink/openvla-7b-oft-finetuned-libero-spatial")
    r = listing.readiness(registry.entry("model", "openvla-oft"))
    assert r.status == "partly" and "libero_spatial" not in r.missing[0]
    for suite in ("object", "goal", "10"):
        _cache(empty_hf_cache, f"moojink/openvla-7b-oft-finetuned-libero-{suite}")
    r = listing.readiness(registry.entry("model", "openvla-oft"))
    assert (r.status, r.missing, r.instead) == ("yes", [], None)


def test_a_local_checkpoint_directory_is_found_or_named(tmp_path):
    assert listing.weights_missing("openvla", str(tmp_path))[:2] == ("yes", None)
    status, what, instead = listing.weights_missing("openvla", str(tmp_path / "nowhere"))
    assert status == "no" and what == f"weights (directory not found: {tmp_path / 'nowhere'})"
    assert "model=openvla-tiny" in instead
    assert listing.weights_missing("openvla-tiny", None) == ("yes", None, None)


def test_simpler_bridge_without_assets_names_the_download_and_the_usable_tasks(tmp_path, monkeypatch):
    from vlabench.suites.simpler_assets import required_files

    monkeypatch.setenv("MS_ASSET_DIR", str(tmp_path))
    e = registry.entry("suite", "simpler_bridge")
    r = listing.readiness(e)
    assert r.status == "no" and "SIMPLER assets" in r.missing[-1]
    assert "mani_skill.utils.download_asset bridge_v2_real2sim" in r.missing[-1]
    t0 = listing._config(e)["task_list"][0]
    for f in required_files(str(t0["scene"]), str(t0["model_json"]), t0["objects"]):
        path = tmp_path / "data" / f.split("|")[0]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    r = listing.readiness(e)
    if not e.missing():
        assert r.status == "partly"
    assert "suite.tasks=[0] has every file" in r.missing[-1]


def test_tiny_models_and_pruners_are_usable_here():
    for group, name in (("model", "openvla-oft-tiny"), ("model", "openvla-tiny"), ("pruner", "fastv")):
        r = listing.readiness(registry.entry(group, name))
        assert (r.status, r.missing) == ("yes", []), (name, r)


def test_listing_imports_neither_torch_nor_a_simulator():
    code = ("import io, json, sys\nfrom rich.console import Console\nfrom vlabench.commands.listing import print_list\n"
            "print_list(console=Console(width=100, file=io.StringIO()))\n"
            "print(json.dumps([m for m in ('torch', 'mujoco', 'libero', 'mani_skill', 'robosuite', 'sapien') "
            "if m in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
