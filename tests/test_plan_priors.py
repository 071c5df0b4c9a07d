"""`vlabench plan` with no earlier runs: the built-in priors (configs/plan_priors.yaml), marked
as such, by device class; the weights, disk and GPU memory a plan needs and whether its
checkpoints are here (a local fake Hugging Face cache)."""

from __future__ import annotations

import pytest
from test_checkpoint_check import OFT, fake_snapshot

from vlabench.launch import sweep
from vlabench.launch.plan import plan_text, step_limit, task_ids
from vlabench.models.checkpoint_size import checkpoint_gb, priors


def plan(*args):
    req = sweep.split_request(list(args))
    jobs = sweep.jobs_for(req, True)[0]
    return jobs, plan_text(jobs).splitlines()


def row(lines, name):
    return next(line.split() for line in lines if len(line.split()) > 1 and line.split()[1] == name)


def test_parameter_counts_of_the_priors_are_our_full_size_builds():
    torch = pytest.importorskip("torch")
    from vlabench.models.build import FULL
    from vlabench.models.cogact.dims import cogact_dims
    from vlabench.models.cogact.model import CogACTVLA
    from vlabench.models.pi0.dims import FULL as PI0_FULL
    from vlabench.models.pi0.model import Pi0Model
    from vlabench.models.prismatic import PrismaticVLA

    with torch.device("meta"):
        counts = {"openvla": PrismaticVLA(FULL, False), "openvla-oft": PrismaticVLA(FULL, True),
                  "pi0": Pi0Model(PI0_FULL), "cogact": CogACTVLA(cogact_dims("full", "DiT-B"))}
    for name, model in counts.items():
        assert priors()["models"][name]["parameters"] == sum(p.numel() for p in model.parameters()), name


def test_a_cpu_plan_without_runs_uses_the_measured_cpu_priors_hand_worked(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    jobs, lines = plan("model=openvla-oft-tiny", "suite=libero_spatial", "suite.tasks=[0]",
                       "run.episodes_per_task=2", "run.device=cpu", f"run.output_dir={tmp_path}")
    steps = 2 * step_limit(jobs[0].cfg)
    assert task_ids(jobs[0].cfg) == [0]
    sim_h = steps * priors()["simulator"]["libero"]["rendered"] / 3600
    pol = priors()["policy"]["openvla-oft-tiny"]
    pol_h = steps * pol["calls_per_step"] * pol["cpu_ms_per_call"] / 1000 / 3600
    assert row(lines, jobs[0].name)[-3:] == [f"{sim_h:.3g}p", f"{pol_h:.3g}p", f"{(sim_h + pol_h):.3g}"]
    assert any(line.startswith("p: a prior, not a measurement of yours") and "(cpu here)" in line
               for line in lines)
    assert "weights: none to download (random weights or no model checkpoints)" in lines


def test_a_gpu_plan_uses_the_papers_latency_and_counts_weights_and_presence(tmp_path, monkeypatch):
    hub = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    fake_snapshot(hub, OFT[0])
    args = ("model=openvla-oft", "suite=libero_spatial,libero_10", "run.device=cuda",
            "run.episodes_per_task=1", f"run.output_dir={tmp_path}")
    jobs, lines = plan(*args)
    cfg = jobs[0].cfg
    steps = len(task_ids(cfg)) * step_limit(cfg)
    pol = priors()["policy"]["openvla-oft"]
    assert row(lines, jobs[0].name)[-2] == f"{steps * pol['calls_per_step'] * pol['gpu_ms_per_call'] / 3.6e6:.3g}p"
    assert "(gpu here)" in lines[-1] or any("(gpu here)" in line for line in lines)
    weights = next(line for line in lines if line.startswith("weights:"))
    gb = checkpoint_gb("openvla-oft")
    assert f"2 checkpoint(s), about {2 * gb:.1f} GB" in weights
    assert "1 of 2 present here, 1 missing" in weights and "vlabench fetch" in weights
    gpu = next(line for line in lines if line.startswith("GPU memory per run"))
    assert f"openvla-oft {priors()['models']['openvla-oft']['parameters'] * 2 / 2**30:.1f} GiB" in gpu


def test_full_size_on_a_cpu_says_where_its_priors_are(tmp_path):
    _, lines = plan("model=openvla", "suite=libero_spatial", "run.device=cpu", f"run.output_dir={tmp_path}")
    assert any("no CPU prior" in line and "run.device=cuda" in line for line in lines)
