"""`vlabench fetch`: downloads exactly what a command's jobs lack into the Hugging Face cache
(HF_HOME / HF_HUB_CACHE), then the up-front check passes; refuses with one line offline. No
network: a stand-in for huggingface_hub.snapshot_download writes the cache entries, and the
offline cases use HF_HUB_OFFLINE and an endpoint nobody listens on."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from test_checkpoint_check import OFT, fake_snapshot

from vlabench.launch.sweep import jobs_for, split_request

pytest.importorskip("huggingface_hub")


def _cfgs(*args: str):
    req = split_request(list(args))
    return [j.cfg for j in jobs_for(req, req.experiment is not None)[0]]


def test_fetch_downloads_only_what_is_missing_then_the_runs_can_start(tmp_path, monkeypatch, capsys):
    import huggingface_hub

    from vlabench.commands.fetch import fetch
    from vlabench.models.checkpoint_check import check_checkpoints

    hub = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    fake_snapshot(hub, OFT[0])
    calls = []

    def download(repo, allow_patterns=None, cache_dir=None, **kw):
        calls.append((repo, allow_patterns, cache_dir))
        return str(fake_snapshot(hub, repo))

    monkeypatch.setattr(huggingface_hub, "snapshot_download", download)
    cfgs = _cfgs("+experiment=vla-pruner-table1", "model=openvla-oft")
    assert len(cfgs) == 56
    assert fetch(cfgs) == 0
    assert [c[0] for c in calls] == OFT[1:] and all(c[2] == str(hub) for c in calls)
    check_checkpoints(cfgs)   # complete now
    calls.clear()
    assert fetch(cfgs) == 0 and not calls
    assert "here already" in capsys.readouterr().err


def test_pi0_fetches_its_tokenizer_files_only(tmp_path, monkeypatch):
    from vlabench.commands.fetch import TOKENIZER_FILES, downloads

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    repos, local = downloads(_cfgs("model=pi0"))
    assert ("lerobot/pi0_libero", None) in repos and local == []
    assert ("google/paligemma-3b-pt-224", TOKENIZER_FILES) in repos
    fake_snapshot(tmp_path / "hub", "google/paligemma-3b-pt-224", ("tokenizer.model",))
    repos, _ = downloads(_cfgs("model=pi0"))
    assert repos == [("lerobot/pi0_libero", None)]


def test_a_missing_local_directory_is_named_not_downloaded(tmp_path):
    from vlabench.commands.fetch import downloads

    repos, local = downloads(_cfgs("model=openvla", f"model.checkpoint={tmp_path}/nowhere"))
    assert repos == [] and local and "nowhere" in local[0]


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_ENDPOINT": "http://127.0.0.1:9"}])
def test_offline_fetch_refuses_with_one_line(tmp_path, env):
    full = {**os.environ, "HF_HOME": str(tmp_path / "hf"), **env}
    full.pop("HF_HUB_CACHE", None)
    if "HF_ENDPOINT" in env:
        full.pop("HF_HUB_OFFLINE", None)
    res = subprocess.run([sys.executable, "-m", "vlabench", "fetch", "model=openvla-oft", "suite=libero_10"],
                         cwd=tmp_path, env=full, capture_output=True, text=True, timeout=600)
    assert res.returncode == 2, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("vlabench: error:")]
    assert len(errors) == 1 and OFT[3] in errors[0], res.stderr
    assert "HF_HUB_OFFLINE" in errors[0] or "cannot be reached" in errors[0]
    assert "Traceback" not in res.stderr
    assert not list((tmp_path / "hf").rglob("*.safetensors"))
