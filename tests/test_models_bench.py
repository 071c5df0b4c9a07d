"""`vlabench bench`: per-stage latency percentiles, FLOPs, tokens and speedup vs none."""

from __future__ import annotations

import json
import os

import pytest

torch = pytest.importorskip("torch")

from conftest import run_cli  # noqa: E402

from vlabench.commands.bench import _speedup, measure  # noqa: E402
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
    from vlabench.commands.bench import twin_model_cfg
    from vlabench.launch.compose import compose
    from vlabench.models.dims import FULL

    cfg = compose(["model=openvla-oft", "model.checkpoint=null", "pruner=specprune"])
    node = twin_model_cfg(cfg, FULL)
    assert node.size == "tiny" and node.checkpoint is None and node.dtype == "float32"
    assert node.dims.llm_layers == 32 and node.dims.chunk == 8 and node.dims.image_size == 224


def test_twin_counts_are_the_pruners_own_code_path_priced_with_the_given_dims():
    # the twin of a tiny model is the same model (same seed): its counts must equal a direct run
    from vlabench.commands.bench import twin_counts
    from vlabench.core.registry import build_plugin
    from vlabench.launch.compose import compose

    cfg = compose(["model=openvla-oft-tiny", "pruner=specprune", "bench.calls=3"])
    obs = synthetic_episode(3)
    pol = build_plugin(cfg, "model", pruner=build_plugin(cfg, "pruner"), suite_cfg=cfg.suite, device="cpu")
    direct = measure(pol, obs, warmup=0, count_once=False)
    twin = twin_counts(cfg, pol, obs)
    assert twin["tokens_by_layer_mean"] == direct["tokens_by_layer_mean"]
    assert twin["tokens_kept_mean"] == direct["tokens_kept_mean"] < 512      # pruned by its code path
    assert twin["flops_by_stage"]["llm"] == pytest.approx(direct["flops_by_stage"]["llm"], rel=1e-9)


# ------------------------------------------------------------------ interleaved timing (item 8)
def test_pairs_alternate_abba_and_skip_calls_served_without_the_model():
    from vlabench.commands.bench_pairs import interleave

    log = []

    def side(tag, served_at=()):
        def call(obs):
            log.append((tag, obs))
            return None if (tag, obs) in served_at else {"total": 1.0}
        return call

    pairs = interleave(side("A", served_at={("A", 2)}), side("B"), [0, 1, 2, 3])
    assert [t for t, _ in log] == list("ABBAABBA")
    assert [o for _, o in log] == [0, 0, 1, 1, 2, 2, 3, 3]            # both sides see each observation
    assert [p["order"] for p in pairs] == ["AB", "BA", "BA"]           # pair 2 (served) dropped


def test_ratio_summary_hand_worked():
    from vlabench.commands.bench_pairs import summarise_ratios

    s = summarise_ratios([1.0, 2.0, 3.0, 4.0, 5.0])
    assert s["median"] == 3.0 and s["iqr"] == [2.0, 4.0] and s["n_pairs"] == 5
    lo, hi = s["ci95"]
    assert 1.0 <= lo <= 3.0 <= hi <= 5.0
    assert summarise_ratios([1.0, 2.0, 3.0, 4.0, 5.0]) == s                # seeded: deterministic
    assert summarise_ratios([])["median"] is None


def test_pair_ratios_are_baseline_over_pruned_per_stage_without_the_pruner_stage():
    from vlabench.commands.bench_pairs import pair_ratios

    pairs = [{"order": "AB", "ours": {"llm": 2.0, "pruner": 1.0, "total": 4.0},
              "none": {"llm": 4.0, "pruner": 0.01, "total": 6.0}},
             {"order": "BA", "ours": {"llm": 1.0, "pruner": 1.0, "total": 2.0},
              "none": {"llm": 3.0, "pruner": 0.01, "total": 5.0}}]
    r = pair_ratios(pairs)
    assert set(r) == {"llm", "total"}
    assert r["llm"]["median"] == pytest.approx(2.5) and r["total"]["median"] == pytest.approx(2.0)


def test_interleaving_cancels_linear_machine_drift():
    # Two identical policies on a machine slowing down linearly with time: back to back, the
    # second looks 1.5x slower; per interleaved ABBA pair the ratio stays 1 within the drift of one call.
    from vlabench.commands.bench_pairs import interleave, pair_ratios

    clock = {"t": 0}

    def policy(obs):
        clock["t"] += 1
        return {"total": 100.0 * (1 + 0.01 * clock["t"])}

    pairs = interleave(policy, policy, list(range(50)))
    med = pair_ratios(pairs)["total"]["median"]
    assert med == pytest.approx(1.0, abs=0.011)
    clock["t"] = 0
    first = [policy(o)["total"] for o in range(50)]
    second = [policy(o)["total"] for o in range(50)]
    assert sum(second) / sum(first) > 1.3                              # what back to back reports


def test_bench_cli_interleaves_with_the_baseline_and_prints_tables_not_dicts(tmp_path):
    out = tmp_path / "b.json"
    res = run_cli("bench", "model=openvla-oft-tiny", "pruner=fastv", "bench.calls=2", f"bench.out={out}")
    assert res.returncode == 0, res.stderr[-2000:]
    r = json.loads(out.read_text())
    assert [p["order"] for p in r["pairs_ms"]] == ["AB", "BA"]
    tot = r["speedup"]["latency_per_pair"]["total"]
    assert tot["n_pairs"] == 2 and tot["ci95"][0] <= tot["median"] <= tot["ci95"][1]
    assert "pruner" not in r["speedup"]["latency_per_pair"]
    assert r["baseline"]["model_calls"] == r["model_calls"] == 2
    assert r["machine"]["cpu_cores"] >= 1 and r["machine"]["gpu"] is None
    assert "{'" not in res.stdout and "speedup" in res.stdout and "95% CI" in res.stdout
    width = int(os.environ.get("COLUMNS", 80))                               # piped: rich's default
    assert max(len(line) for line in res.stdout.splitlines()) <= width


# ------------------------------------------------------------------ FLOPs accountings (issue 21 item 5)
def test_bad_bench_flops_value_is_one_line_naming_the_valid_values():
    res = run_cli("bench", "model=openvla-oft-tiny", "pruner=none", "bench.calls=1", "bench.flops=papers")
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("vlabench: error:")]
    assert res.returncode == 2 and len(lines) == 1 and "Traceback" not in res.stderr
    assert "bench.flops" in lines[0] and "executed, paper, both" in lines[0] and "'papers'" in lines[0]


def test_bench_reports_both_accountings_with_the_published_value_beside_ours(tmp_path):
    out = tmp_path / "b.json"
    res = run_cli("bench", "model=openvla-oft-tiny", "pruner=fastv", "pruner.retention=0.5", "bench.calls=2",
                  "bench.flops=both", f"bench.out={out}")
    assert res.returncode == 0, res.stderr[-2000:]
    r = json.loads(out.read_text())
    assert r["flops_accounting"] == "both"
    sp = r["speedup"]
    assert 0 < sp["paper_llm_ratio"] < 1 and 0 < sp["llm_flops_ratio"] < 1 and 0 < sp["flops_ratio"] < 1
    assert r["paper_llm_tmacs_per_call"] < r["baseline"]["paper_llm_tmacs_per_call"]
    # the published figure comes from results/reference and sits beside ours, never as ours
    assert r["published_flops"] == [{"paper": "vla-pruner", "table": "1", "label": "FastV", "flops_pct": 56.85}]
    assert all(v != 0.5685 for v in sp.values() if isinstance(v, float))
    text = " ".join(res.stdout.split())
    assert "ours, paper accounting" in text and "ours, executed" in text and "56.85%" in text


def test_bench_flops_paper_shows_the_paper_accounting_alone():
    from vlabench.commands.bench_table import papers_table, summary_line

    r = {"pruner": "fastv", "flops_accounting": "paper", "published_flops": [],
         "speedup": {"flops_ratio": 0.66, "flops_ratio_last_call": 0.66, "llm_flops_ratio": 0.62,
                     "llm_flops_ratio_last_call": 0.62, "paper_llm_ratio": 0.61, "paper_llm_ratio_last_call": 0.6}}
    from rich.console import Console

    con = Console(width=120, record=True)
    con.print(papers_table(r))
    text = con.export_text()
    assert "ours, paper accounting: LLM prefill" in text and "61.00%" in text and "60.00%" in text
    assert "executed" not in text
    assert summary_line(r) == "vs none: paper-accounting LLM FLOPs fastv/none 0.610 (last call 0.600)"


def test_published_flops_match_the_method_model_family_and_retention():
    from vlabench.commands.bench import published_flops
    from vlabench.launch.compose import compose

    def pub(*o):
        return [(p["paper"], p["table"], p["flops_pct"]) for p in published_flops(compose(list(o)))]

    assert pub("model=openvla", "pruner=vla-pruner", "pruner.retention=0.25") == [
        ("vla-pruner", "1", 39.77), ("vla-pruner", "3", 39.8)]
    assert pub("model=pi0-tiny", "pruner=divprune", "pruner.retention=0.125") == [("vla-pruner", "4", 29.8)]
    assert pub("model=openvla-oft", "pruner=specprune") == [("specprune-vla", "1", 43.0)]
    assert pub("model=openvla-oft", "pruner=efficientvla") == [("specprune-vla", "1", 35.0)]
    assert pub("model=openvla", "pruner=efficientvla-nolayer") == [("vla-pruner", "3", 58.12)]
    assert pub("model=openvla-oft", "pruner=fastv", "pruner.retention=0.3") == []
    assert pub("model=openvla-oft", "pruner=none") == []
