"""Counted FLOPs (FlopCounterMode) and analytic FLOPs agree; full size on the meta device."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from vlabench.models import flops as F  # noqa: E402
from vlabench.models.build import build_openvla, build_openvla_oft  # noqa: E402
from vlabench.models.decoder import DecoderTrace, LayerTrace  # noqa: E402
from vlabench.models.dims import FULL  # noqa: E402
from vlabench.models.synthetic import synthetic_observation  # noqa: E402
from vlabench.pruners.base import Pruner  # noqa: E402


class FastVLike(Pruner):
    """Keeps a quarter of the visual tokens after layer 2 (reads its attention)."""

    attention_layers = frozenset({2})

    def after_layer(self, view):
        if view.phase != "prefill":
            return None
        ids = view.visual_ids()
        if view.attn.device.type == "meta":   # shape-only build: a meta keep of the budget
            return torch.empty(ids.numel() // 4, dtype=torch.long, device="meta")
        score = view.visual_attention()[:, -1].mean(0)
        return ids[torch.topk(score, ids.numel() // 4).indices]


def _counted_and_analytic(builder, size, pruner=None):
    p = builder({"size": size, "count_flops": True, "warmup_calls": 0, "threads": 2},
                pruner=pruner or Pruner(), device="cpu")
    p.allow_shape_only_calls = True   # meta builds: FLOPs only (as `vlabench bench` does)
    out = p.act(synthetic_observation(0))
    return out.stats.flops, p.analytic_flops(), p


def test_cpu_sdpa_kernel_is_counted():
    F.register_cpu_sdpa_formula()
    q = torch.randn(1, 2, 8, 4)
    with F.counter() as fc:
        torch.nn.functional.scaled_dot_product_attention(q, q, q)
    assert fc.get_total_flops() == 2 * 2 * 2 * 8 * 8 * 4


@pytest.mark.parametrize("builder", [build_openvla_oft, build_openvla])
@pytest.mark.parametrize("pruned", [False, True])
def test_counted_flops_equal_analytic_on_tiny_models(builder, pruned):
    counted, analytic, _ = _counted_and_analytic(builder, "tiny", FastVLike() if pruned else None)
    assert counted == pytest.approx(analytic, rel=0.01)


@pytest.mark.parametrize("builder", [build_openvla_oft, build_openvla])
def test_counted_flops_equal_analytic_at_full_size_on_meta(builder):
    counted, analytic, p = _counted_and_analytic(builder, "full")
    assert p.device == "meta"
    assert counted == pytest.approx(analytic, rel=0.01)
    if builder is build_openvla_oft:   # ~600 tokens through Llama-2-7B plus two images
        assert 8.5e12 < counted < 9.1e12


def test_full_size_pruning_at_meta_reduces_flops_by_the_kept_count():
    full, _, _ = _counted_and_analytic(build_openvla_oft, "full")
    pruned, analytic, p = _counted_and_analytic(build_openvla_oft, "full", FastVLike())
    assert pruned == pytest.approx(analytic, rel=0.01)
    assert p.decoder.trace.prefill[3].visual == 128
    assert pruned < 0.6 * full


def test_meta_build_refuses_episode_calls_with_one_line():
    from vlabench.core.errors import ConfigError

    p = build_openvla({"size": "full"}, device="cpu")
    with pytest.raises(ConfigError, match="vlabench bench"):
        p.act(synthetic_observation(0))


def test_llama2_7b_at_600_tokens_is_7_96_tflop():
    # docs/protocols.md: Llama-2-7B at 600 tokens is 7.960 TFLOP (one last-token logit)
    trace = DecoderTrace(prefill=[LayerTrace(600, 600)] * 32, lm_head_rows=1)
    assert F.llm_flops(FULL, trace) == pytest.approx(7.960e12, rel=1e-3)


class VisionAttentionReader(Pruner):
    """Asks for SigLIP's feature-layer attention (as SP-VLA) and keeps half before the LLM."""

    vision_attention = True

    def before_llm(self, tokens):
        att = tokens.vision_attention["agentview"]
        assert att.shape == (2, 256, 256)
        return torch.arange(0, tokens.embeddings.shape[0], 2)


def test_vision_attention_probe_is_counted_in_flops():
    counted, analytic, p = _counted_and_analytic(build_openvla, "tiny", VisionAttentionReader())
    assert counted == pytest.approx(analytic, rel=0.01)
    assert p.decoder.trace.prefill[0].visual == 128


# ------------------------------------------------------------ the paper accounting (issue 21 item 5)
def _paper_layer(n, d, m):
    """C(n) as the authors' counter writes it (VLA-Pruner @ 3d156ee modeling_llama.py)."""
    return 4 * n * d ** 2 + 2 * n ** 2 * d + 3 * n * d * m


@pytest.mark.parametrize("builder", [build_openvla_oft, build_openvla])
def test_paper_accounting_equals_its_formula_on_full_size_meta_models(builder):
    _, _, p = _counted_and_analytic(builder, "full", FastVLike())
    d, tr = p.flops_dims, p.decoder.trace
    assert (d.llm_hidden, d.llm_mlp, d.llm_layers) == (4096, 11008, 32)
    n, kept = tr.prefill[0].n_q, tr.prefill[3].n_q
    m = 512 if builder is build_openvla_oft else 256
    assert [t.n_q for t in tr.prefill[:3]] == [n] * 3 and n - kept == m - m // 4
    expected = 3 * _paper_layer(n, 4096, 11008) + 29 * _paper_layer(kept, 4096, 11008)
    assert F.paper_macs(d, tr) == pytest.approx(expected, rel=1e-12)
    # LLM prefill only: the executed count adds decode steps (OpenVLA), the LM head and the probe
    assert F.paper_macs(d, tr) < F.llm_flops(d, tr) / 2
    if builder is build_openvla:
        assert tr.decode and tr.lm_head_rows > 0


def test_paper_accounting_is_the_formula_over_the_layers_that_ran():
    trace = DecoderTrace(prefill=[LayerTrace(600, 600)] * 3 + [None] * 4 + [LayerTrace(300, 300)] * 25,
                         decode=[[LayerTrace(1, 601)] * 32] * 6, lm_head_rows=7)
    want = 3 * _paper_layer(600, 4096, 11008) + 25 * _paper_layer(300, 4096, 11008)
    assert F.paper_macs(FULL, trace) == pytest.approx(want, rel=1e-12)
    assert F.llm_paper_macs(FULL.llm_hidden, FULL.llm_mlp, trace) == F.paper_macs(FULL, trace)


def test_pi0_paper_accounting_is_its_formula_over_the_prefix_on_the_full_size_meta_build():
    from vlabench.launch.compose import compose
    from vlabench.models.pi0 import flops as P
    from vlabench.models.pi0.build import build_pi0

    cfg = compose(["model=pi0", "model.checkpoint=null", "suite=libero_spatial"])
    p = build_pi0(cfg.model, None, cfg.suite, "cpu")
    p.allow_shape_only_calls = True
    p.act(synthetic_observation(0))
    d, tr = p.flops_dims, p.decoder.trace
    assert (d.llm_hidden, d.llm_mlp, d.llm_layers) == (2048, 16384, 18)
    n = tr.prefill[0].n_q
    assert n > 512 and all(t.n_q == n for t in tr.prefill)
    # the Gemma prefix only: the action expert's ten flow steps are outside the paper accounting
    assert P.paper_macs(d, tr) == pytest.approx(18 * _paper_layer(n, 2048, 16384), rel=1e-12)
