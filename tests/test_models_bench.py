"""`vlabench bench`: per-stage latency percentiles, FLOPs, tokens and speedup vs none."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")

from conftest import run_cli  # noqa: E402
from vlabench.models.bench import _speedup, measure  # noqa: E402
from vlabench.models.build import build_openvla_oft  # noqa: E402
from vlabench.models.synthetic import synthetic_episode  # noqa: E402
from vlabench.pruners.base import Pruner  # noqa: E402


def test_bench_cli_writes_latency_percentiles_and_flops(tmp_path):
    out = tmp_path / "b.json"
    res = run_cli("bench", "model=openvla-oft-tiny", "pruner=none", "bench.calls=3", f"bench.out={out}")
    assert res.returncode == 0, res.stderr[-2000:]
    r = json.loads(out.read_text())
    assert r["model"] == "openvla-oft-tiny" and r["device"] == "cpu" and r["model_calls"] == 3
    assert {"vision", "llm", "action_head", "pruner", "total"} <= set(r["latency_ms"])
    assert all(q["p95"] >= q["p50"] > 0 for k, q in r["latency_ms"].items() if k != "pruner")
    assert r["flops_per_call"] == pytest.approx(r["flops_counted_one_call"], rel=0.01)
    assert r["tokens_in"] == 512 and r["text_tokens"] > 0 and "baseline" not in r


class HalfBeforeLLM(Pruner):
    def before_llm(self, tokens):
        return torch.arange(0, tokens.embeddings.shape[0], 2)


def test_speedup_compares_a_pruner_with_none_on_the_same_weights():
    p = build_openvla_oft({"size": "tiny", "threads": 2}, pruner=HalfBeforeLLM(), device="cpu")
    base = type(p)(p.model, p.dims, Pruner(), p.tokenizer, p.norm_stats, p.device, p.dtype)
    obs = synthetic_episode(2)
    new, ref = measure(p, obs, warmup=1), measure(base, obs, warmup=1)
    assert new["tokens_kept_mean"] == 256 and ref["tokens_kept_mean"] == 512
    s = _speedup(ref, new)
    assert s["flops_ratio"] < 0.75 and s["latency_p50"] > 0


def test_the_twin_is_tiny_but_keeps_the_full_models_depth_and_layout():
    from vlabench.config import compose
    from vlabench.models.bench import twin_model_cfg
    from vlabench.models.dims import FULL

    cfg = compose(["model=openvla-oft", "model.checkpoint=null", "pruner=specprune"])
    node = twin_model_cfg(cfg, FULL)
    assert node.size == "tiny" and node.checkpoint is None and node.dtype == "float32"
    assert node.dims.llm_layers == 32 and node.dims.chunk == 8 and node.dims.image_size == 224


def test_twin_counts_are_the_pruners_own_code_path_priced_with_the_given_dims():
    # the twin of a tiny model is the same model (same seed): its counts must equal a direct run
    from vlabench.config import compose
    from vlabench.models.bench import twin_counts
    from vlabench.runner import build_plugin

    cfg = compose(["model=openvla-oft-tiny", "pruner=specprune", "bench.calls=3"])
    obs = synthetic_episode(3)
    pol = build_plugin(cfg, "model", pruner=build_plugin(cfg, "pruner"), suite_cfg=cfg.suite, device="cpu")
    direct = measure(pol, obs, warmup=0, count_once=False)
    twin = twin_counts(cfg, pol, obs)
    assert twin["tokens_by_layer_mean"] == direct["tokens_by_layer_mean"]
    assert twin["tokens_kept_mean"] == direct["tokens_kept_mean"] < 512      # pruned by its code path
    assert twin["flops_by_stage"]["llm"] == pytest.approx(direct["flops_by_stage"]["llm"], rel=1e-9)
