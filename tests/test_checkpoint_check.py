"""Checkpoints are checked up front, for every job at once, before any simulator or model is
built: a missing one in a 56-job preset is one line with all names (a local fake Hugging Face
cache through HF_HOME; no network), an empty directory lists every file the layout needs, and
the tokenizer of an export whose config.json has `auto_map` loads without a prompt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OFT = [f"moojink/openvla-7b-oft-finetuned-{s}" for s in ("libero-spatial", "libero-object",
                                                          "libero-goal", "libero-10")]
OFT_FILES = ("config.json", "model.safetensors", "dataset_statistics.json", "tokenizer.model",
             "tokenizer_config.json", "action_head--150000_checkpoint.pt",
             "proprio_projector--150000_checkpoint.pt")


def fake_snapshot(hub: Path, repo: str, files: tuple[str, ...] = OFT_FILES) -> Path:
    """A Hugging Face cache entry for `repo` (refs/main -> a snapshot holding `files`)."""
    base = hub / f"models--{repo.replace('/', '--')}"
    sha = "0" * 40
    snap = base / "snapshots" / sha
    snap.mkdir(parents=True)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(sha)
    for f in files:
        (snap / f).write_text("{}")
    return snap


def vlabench(cwd: Path, hf_home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    return subprocess.run([sys.executable, "-m", "vlabench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_a_56_job_preset_names_every_missing_checkpoint_before_any_setup(tmp_path):
    hub = tmp_path / "hf" / "hub"
    for repo in OFT[:2]:
        fake_snapshot(hub, repo)
    fake_snapshot(hub, OFT[2], OFT_FILES[:-1])   # an incomplete download
    res = vlabench(tmp_path, tmp_path / "hf", "run", "+experiment=vla-pruner-table1", "model=openvla-oft")
    assert res.returncode == 2, res.stderr[-2000:]
    err = [line for line in res.stderr.splitlines() if line.startswith("vlabench: error:")]
    assert len(err) == 1, res.stderr
    line = err[0]
    assert "2 checkpoints missing or incomplete" in line
    assert OFT[3] in line and "libero_10: 14 runs" in line and "not in the Hugging Face cache" in line
    assert OFT[2] in line and "lacks one proprio_projector--<step>_checkpoint.pt" in line
    assert OFT[0] not in line and OFT[1] not in line
    assert f"hf download {OFT[3]}" in line and "GB each" in line
    assert not (tmp_path / "results").exists()   # nothing written, no simulator started
    assert "sim.log" not in res.stderr


def test_every_missing_checkpoint_is_named_and_complete_ones_pass(tmp_path):
    from omegaconf import OmegaConf

    from vlabench.core.errors import ConfigError
    from vlabench.models.checkpoint_check import check_checkpoints

    model = OmegaConf.load(ROOT / "configs" / "model" / "openvla-oft.yaml")
    cfgs = [OmegaConf.create({"model": model, "suite": {"name": s}})
            for s in ("libero_spatial", "libero_object", "libero_goal", "libero_10")]
    os.environ["HF_HUB_CACHE"] = str(tmp_path / "hub")
    try:
        with pytest.raises(ConfigError) as e:
            check_checkpoints(cfgs)
        assert "4 checkpoints missing" in str(e.value) and all(r in str(e.value) for r in OFT)
        for repo in OFT:
            fake_snapshot(tmp_path / "hub", repo)
        check_checkpoints(cfgs)   # complete: no error
    finally:
        del os.environ["HF_HUB_CACHE"]


def test_an_empty_checkpoint_directory_lists_every_file_the_layout_needs(tmp_path):
    empty = tmp_path / "ckpt"
    empty.mkdir()
    res = vlabench(tmp_path, tmp_path / "hf", "run", "model=openvla-oft", f"model.checkpoint={empty}",
                   "suite.tasks=[0]", "run.episodes_per_task=1")
    assert res.returncode == 2, res.stderr[-2000:]
    line = res.stderr.strip().splitlines()[-1]
    for part in ("config.json", "model.safetensors.index.json", "dataset_statistics.json",
                 "tokenizer.model or tokenizer.json", "action_head--<step>_checkpoint.pt",
                 "proprio_projector--<step>_checkpoint.pt"):
        assert part in line, (part, line)
    assert "holds none of the files" in line
    assert not (tmp_path / "results").exists()


def test_a_mistyped_checkpoint_path_is_named_up_front(tmp_path):
    res = vlabench(tmp_path, tmp_path / "hf", "run", "model=openvla", "model.checkpoint=./no/such/ckpt")
    assert res.returncode == 2
    assert "./no/such/ckpt" in res.stderr and "directory not found" in res.stderr


def test_the_tokenizer_of_an_export_with_auto_map_loads_without_a_prompt(tmp_path):
    """transformers asks "Do you wish to run the custom code? [y/N]" for such a directory when
    remote code is not refused; stdin here is an open pipe, as a terminal job's would be."""
    sys.path.insert(0, str(ROOT / "tests"))
    from published_checkpoint import write_tokenizer

    ck = tmp_path / "ck"
    ck.mkdir()
    write_tokenizer(ck)
    (ck / "config.json").write_text(json.dumps({"model_type": "openvla", "auto_map": {
        "AutoConfig": "configuration_prismatic.OpenVLAConfig",
        "AutoModelForVision2Seq": "modeling_prismatic.OpenVLAForActionPrediction"}}))
    code = ("from vlabench.models.tokenizer import HFTokenizer\n"
            f"print('ids', HFTokenizer({str(ck)!r}).encode('In : What action'))\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=ROOT)
    try:   # stdin stays open until it exits (transformers' own prompt gives up after 15 s)
        out = proc.stdout.read()
        proc.wait(timeout=60)
    finally:
        proc.kill()
        proc.stdin.close()
    assert "Do you wish to run the custom code" not in out, out
    assert "ids [1, 100, 101, 102, 103]" in out, out


def test_pi0_without_tokenizer_files_needs_its_tokenizer_repository_cached(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from vlabench.core.errors import ConfigError
    from vlabench.models.checkpoint_check import check_checkpoints

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    model = OmegaConf.load(ROOT / "configs" / "model" / "pi0.yaml")
    cfgs = [OmegaConf.create({"model": model, "suite": {"name": "libero_spatial"}})]
    fake_snapshot(tmp_path / "hub", str(model.checkpoint), ("config.json", "model.safetensors"))
    with pytest.raises(ConfigError) as e:
        check_checkpoints(cfgs)
    assert "1 checkpoint missing" in str(e.value) and str(model.tokenizer) in str(e.value)
    assert "tokenizer files not in the Hugging Face cache" in str(e.value)
    fake_snapshot(tmp_path / "hub", str(model.tokenizer), ("tokenizer.model",))
    check_checkpoints(cfgs)
