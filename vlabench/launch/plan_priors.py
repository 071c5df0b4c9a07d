"""`vlabench plan` without earlier runs: built-in priors (configs/plan_priors.yaml) for the time a
job takes, and what it needs besides time (weights to download, disk, GPU memory, whether its
checkpoints are here).

Priors by device class: `cpu` (measured on the development machine) or `gpu` (the papers'
published per-call latency of the unpruned model, cited in the YAML). The simulator runs on
the CPU either way. An estimate made from a prior is marked as one wherever it is shown.
"""

from __future__ import annotations

import shutil
from typing import Any

from vlabench.models.checkpoint_size import checkpoint_gb, model_prior, priors


def device_class(cfg: Any) -> str:
    """"gpu" when the run would use a GPU (run.device cuda*, or auto with an NVIDIA driver), else "cpu"."""
    dev = str(cfg.run.get("device", "auto"))
    if dev.startswith("cuda"):
        return "gpu"
    return "gpu" if dev == "auto" and shutil.which("nvidia-smi") else "cpu"


def sim_prior(cfg: Any) -> float | None:
    """Simulator seconds per step of the job's suite family (rendered or state-only), or None."""
    family = str(cfg.suite.get("family", ""))
    table = (priors().get("simulator") or {}).get(family) or {}
    kind = "state" if str(cfg.model.name) == "oracle" else "rendered"
    v = table.get(kind)
    return None if v is None else float(v)


def policy_prior(cfg: Any) -> float | None:
    """Policy seconds per step of the job's model on its device class (unpruned), or None."""
    p = (priors().get("policy") or {}).get(str(cfg.model.name)) or {}
    ms = p.get(f"{device_class(cfg)}_ms_per_call")
    if ms is None or p.get("calls_per_step") is None:
        return None
    return float(ms) / 1000.0 * float(p["calls_per_step"])


def cpu_only_lines(jobs: list[Any]) -> list[str]:
    """A note for full-size models planned on a CPU: their calls only run on a GPU."""
    names = sorted({str(j.cfg.model.name) for j in jobs if device_class(j.cfg) == "cpu"
                    and policy_prior(j.cfg) is None
                    and (priors().get("policy") or {}).get(str(j.cfg.model.name), {}).get("gpu_ms_per_call")})
    if not names:
        return []
    return [f"{', '.join(names)}: no CPU prior (full size runs episodes on a GPU only); "
            f"`vlabench plan ... run.device=cuda` gives the GPU priors"]


def needs_lines(jobs: list[Any]) -> list[str]:
    """Weights (download and disk), GPU memory and checkpoint presence of the jobs' models."""
    from vlabench.models.checkpoint_check import needed

    cfgs = [j.cfg for j in jobs]
    wanted = needed(cfgs)
    if not wanted:
        return ["weights: none to download (random weights or no model checkpoints)"]
    missing = [n for n in wanted if n.problem]
    sizes = [checkpoint_gb(n.model) for n in wanted]
    total = sum(s for s in sizes if s is not None)
    lacking = sum(s for n, s in zip(wanted, sizes) if n.problem and s is not None)
    lines = [f"weights: {len(wanted)} checkpoint(s), about {total:.1f} GB on disk (prior: parameters x "
             f"bytes per parameter of the published files); {len(wanted) - len(missing)} of "
             f"{len(wanted)} present here"
             + (f", {len(missing)} missing (about {lacking:.1f} GB): `vlabench fetch` with these arguments"
                if missing else "")]
    gpu = {str(c.model.name) for c in cfgs if c.model.get("checkpoint") is not None
           or c.model.get("size") == "full"}
    mem = {m: float(model_prior(m)["parameters"]) * 2 / 2**30 for m in sorted(gpu)
           if "parameters" in model_prior(m)}
    if mem:
        lines.append("GPU memory per run: the bfloat16 weights alone, "
                     + ", ".join(f"{m} {g:.1f} GiB" for m, g in mem.items())
                     + " (prior; activations come on top, one run per GPU)")
    return lines
