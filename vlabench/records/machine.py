"""The machine a run or benchmark ran on, for its manifest, and how two machines differ.

CPU: model name and logical cores (always: preprocessing and the simulator run there). GPU
(when the device is CUDA): the device name, memory, compute capability, the driver (from
`nvidia-smi`, else pynvml when installed) and the CUDA and cuDNN versions torch was built with.
torch is imported only for a CUDA device.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any


def cpu_model() -> str:
    """The CPU's marketing name (Linux /proc/cpuinfo), else platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def driver_version(index: int = 0) -> str | None:
    """The NVIDIA driver version: nvidia-smi, else pynvml; None when neither answers."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=driver_version", "--format=csv,noheader", "-i", str(index)],
                                 capture_output=True, text=True, timeout=10, check=True).stdout.strip()
            if out:
                return out.splitlines()[0].strip()
        except (OSError, subprocess.SubprocessError):
            pass
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            v = pynvml.nvmlSystemGetDriverVersion()
            return v.decode() if isinstance(v, bytes) else str(v)
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # not installed, no driver: the manifest says unknown
        return None


def gpu_info(device: str) -> dict[str, Any]:
    """Name, memory, capability, driver, CUDA and cuDNN versions of a CUDA `device`."""
    import torch

    index = torch.device(device).index
    index = torch.cuda.current_device() if index is None else index
    props = torch.cuda.get_device_properties(index)
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return {"name": torch.cuda.get_device_name(index), "index": index,
            "memory_gib": round(props.total_memory / 2**30, 1),
            "capability": f"{props.major}.{props.minor}", "count": torch.cuda.device_count(),
            "driver": driver_version(index), "cuda": torch.version.cuda,
            "cudnn": None if cudnn is None else str(cudnn)}


def machine(device: str | None) -> dict[str, Any]:
    """The manifest's `machine`: CPU always, `gpu` when `device` is CUDA (else null)."""
    dev = str(device or "cpu")
    return {"cpu": cpu_model(), "cpu_cores": os.cpu_count(), "system": platform.system(),
            "gpu": gpu_info(dev) if dev.startswith("cuda") else None}


def describe(m: dict[str, Any] | None) -> str:
    """A short phrase naming a machine, e.g. "NVIDIA H100 80GB HBM3 (driver 550.54, CUDA 12.4,
    cuDNN 90100)" or "CPU Intel Xeon ... x 8 cores"; "unknown machine" without a record."""
    if not m:
        return "unknown machine"
    g = m.get("gpu")
    if g:
        soft = ", ".join(f"{label} {g[k]}" for k, label in (("driver", "driver"), ("cuda", "CUDA"),
                                                             ("cudnn", "cuDNN")) if g.get(k))
        return f"{g.get('name')} ({soft})" if soft else str(g.get("name"))
    return f"CPU {m.get('cpu')} x {m.get('cpu_cores')} cores"


def differ(a: dict[str, Any] | None, b: dict[str, Any] | None) -> bool:
    """True when two recorded machines differ in hardware or GPU software (driver, CUDA, cuDNN);
    False when they match or either is unrecorded (nothing to tell)."""
    if not a or not b:
        return False
    return describe(a) != describe(b)
