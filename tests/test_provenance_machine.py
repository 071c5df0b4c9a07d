"""The manifest's `machine`: GPU model, driver, CUDA and cuDNN for CUDA runs, CPU for all."""

from __future__ import annotations

import types

import pytest

from vlabench.records import machine as M


def test_cpu_run_names_the_cpu_and_no_gpu():
    m = M.machine("cpu")
    assert m["gpu"] is None and m["cpu"] and m["cpu_cores"] >= 1
    assert M.describe(m).startswith("CPU ") and f"x {m['cpu_cores']} cores" in M.describe(m)
    assert M.machine("meta")["gpu"] is None


def test_cuda_run_names_gpu_driver_cuda_and_cudnn(monkeypatch):
    torch = pytest.importorskip("torch")
    props = types.SimpleNamespace(total_memory=80 * 2**30, major=9, minor=0)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda i: props)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i: f"NVIDIA H100 80GB HBM3 #{i}")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.version, "cuda", "12.4")
    monkeypatch.setattr(torch.backends.cudnn, "is_available", lambda: True)
    monkeypatch.setattr(torch.backends.cudnn, "version", lambda: 90100)
    monkeypatch.setattr(M, "driver_version", lambda index=0: "550.54.15")
    m = M.machine("cuda:1")
    assert m["gpu"] == {"name": "NVIDIA H100 80GB HBM3 #1", "index": 1, "memory_gib": 80.0,
                        "capability": "9.0", "count": 2, "driver": "550.54.15", "cuda": "12.4",
                        "cudnn": "90100"}
    assert M.machine("cuda")["gpu"]["index"] == 0
    assert M.describe(m) == "NVIDIA H100 80GB HBM3 #1 (driver 550.54.15, CUDA 12.4, cuDNN 90100)"


def test_driver_from_nvidia_smi_else_none(monkeypatch, tmp_path):
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 535.104.05\n")
    smi.chmod(0o755)
    monkeypatch.setattr(M.shutil, "which", lambda name: str(smi))
    assert M.driver_version(0) == "535.104.05"
    monkeypatch.setattr(M.shutil, "which", lambda name: None)
    monkeypatch.setitem(__import__("sys").modules, "pynvml", None)   # not installed
    assert M.driver_version(0) is None


def test_machines_differ_on_gpu_model_or_its_software_not_when_unrecorded():
    a = {"cpu": "x", "cpu_cores": 8, "gpu": {"name": "NVIDIA A100-SXM4-80GB", "driver": "535", "cuda": "12.1",
                                             "cudnn": "8902"}}
    assert not M.differ(a, dict(a))
    assert M.differ(a, {**a, "gpu": {**a["gpu"], "name": "NVIDIA H100 80GB HBM3"}})
    assert M.differ(a, {**a, "gpu": {**a["gpu"], "driver": "550"}})
    assert M.differ(a, {"cpu": "x", "cpu_cores": 8, "gpu": None})
    assert not M.differ(a, None) and not M.differ(None, None)


def test_manifest_records_the_machine():
    from omegaconf import OmegaConf

    from vlabench.records.provenance import manifest

    cfg = OmegaConf.create({"suite": {"name": "libero_spatial", "family": "libero"},
                            "run": {"name": "r", "device": "cpu"}, "model": {"name": "m"},
                            "pruner": {"name": "none"}})
    info = manifest(cfg, types.SimpleNamespace(device="cpu"), [], "t0")
    assert info["device"] == "cpu" and info["machine"]["gpu"] is None and info["machine"]["cpu_cores"] >= 1
