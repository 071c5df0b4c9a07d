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
