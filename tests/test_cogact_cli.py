"""CogACT from the command line: tiny CogACT with a pruner completes real SIMPLER Bridge episodes,
and `vlabench bench` prices the full-size model per stage (VLM, DiT x DDIM steps x CFG)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import NO_SIMPLER_ASSETS, SIMPLER_ASSETS, run_cli

pytest.importorskip("torch")


@pytest.mark.simpler
@pytest.mark.parametrize("pruner", ["sp-vla", "fastv"])
def test_tiny_cogact_with_a_pruner_completes_a_simpler_episode(tmp_path, pruner):
    if not SIMPLER_ASSETS.is_dir():
        pytest.skip(NO_SIMPLER_ASSETS)
    res = run_cli("run", "model=cogact-tiny", f"pruner={pruner}", "suite=simpler_bridge", "suite.tasks=[0]",
                  "run.episodes_per_task=1", "run.max_steps=8", f"suite.asset_dir={SIMPLER_ASSETS}",
                  f"run.output_dir={tmp_path}", "run.quiet=true")
    assert res.returncode == 0, res.stderr[-2000:]
    run_dir = next(tmp_path.glob(f"cogact-tiny-{pruner}-simpler_bridge__*"))
    eps = pd.read_csv(run_dir / "episodes.csv", keep_default_na=False)
    assert eps["error_type"].tolist() == [""] and eps["steps"].tolist() == [8]
    calls = pd.read_csv(run_dir / "calls.csv")
    model = calls[calls["source"] == "model"]
    assert len(model) >= 1 and (model["tokens_in"] == 256).all()
    assert (model["tokens_kept"] < 256).any()          # the method pruned
    assert (model["lat_action_head_ms"] > 0).all()     # the DiT ran
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["model"] == "cogact-tiny"


def _bench(tmp_path, *args):
    out = tmp_path / "bench.json"
    res = run_cli("bench", "model=cogact", "model.checkpoint=null", "bench.calls=2", f"bench.out={out}",
                  *args, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    return res, json.loads(out.read_text())


def test_bench_full_size_prints_parameters_and_flops_per_stage(tmp_path):
    from vlabench.models.cogact.dims import cogact_dims
    from vlabench.models.cogact.flops import dit_sampling_flops

    res, r = _bench(tmp_path)
    assert "7.630B parameters" in res.stdout
    assert "action_head TFLOPs" in res.stdout and "llm TFLOPs" in res.stdout
    st = r["flops_by_stage"]
    assert st["action_head"] == dit_sampling_flops(cogact_dims("full", "DiT-B"), 10, 2)
    assert r["flops_counted_one_call"] == pytest.approx(sum(st.values()), rel=1e-9)


def test_bench_full_size_with_a_pruner_prices_the_twin_at_full_size(tmp_path):
    _, r = _bench(tmp_path, "pruner=fastv", "pruner.retention=0.25")
    assert r["tokens_kept_mean"] == 64.0
    assert r["flops_by_stage"]["llm"] < r["baseline"]["flops_by_stage"]["llm"]
    assert r["flops_by_stage"]["action_head"] == r["baseline"]["flops_by_stage"]["action_head"]
