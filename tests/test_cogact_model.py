"""CogACT's pieces: the DDIM schedule, the adaptive ensemble, the cognition read-out, keep-all
pruners bit-identical to `none`, and analytic FLOPs equal to the counted ones per stage
(VLM; DiT x DDIM steps x guidance batch), tiny and full size on the meta device."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from omegaconf import OmegaConf  # noqa: E402

from vlabench.models import flops as F  # noqa: E402
from vlabench.models.cogact import flops as CF  # noqa: E402
from vlabench.models.cogact.build import build_cogact  # noqa: E402
from vlabench.models.cogact.ddim import DDIMSchedule, ddim_sample, ddim_timesteps  # noqa: E402
from vlabench.models.cogact.ensemble import AdaptiveEnsembler  # noqa: E402
from vlabench.models.synthetic import synthetic_observation  # noqa: E402
from vlabench.pruners.base import Pruner  # noqa: E402
from vlabench.pruners.divprune import DivPrune  # noqa: E402
from vlabench.pruners.fastv import FastV  # noqa: E402
from vlabench.pruners.sparsevlm import SparseVLM  # noqa: E402
from vlabench.pruners.vla_cache import VLACache  # noqa: E402
from vlabench.pruners.vla_pruner import VLAPruner  # noqa: E402

SUITE = OmegaConf.load("configs/suite/simpler_bridge.yaml")


def _cfg(name: str = "cogact-tiny", **over):
    cfg = OmegaConf.load(f"configs/model/{name}.yaml")
    cfg.warmup_calls = 0
    for k, v in over.items():
        OmegaConf.update(cfg, k, v)
    return cfg


def _build(pruner=None, **over):
    return build_cogact(_cfg(**over), pruner or Pruner(), SUITE, "cpu")


def test_ddim_schedule_is_the_references_respacing():
    assert ddim_timesteps(100, 10) == list(range(0, 100, 10))
    assert ddim_timesteps(100, 5) == list(range(0, 100, 20))
    s = DDIMSchedule(100, 10)
    bar = [math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2 for t in np.arange(101) / 100]
    base = np.cumprod([1 - min(1 - bar[i + 1] / bar[i], 0.999) for i in range(100)])
    assert np.allclose(s.alphas_cumprod, base[::10], rtol=1e-12)
    assert s.alphas_cumprod_prev[0] == 1.0


def test_ddim_with_a_perfect_noise_model_returns_x0():
    """eps_fn giving the true noise of x_t = sqrt(a) x0 + sqrt(1-a) n recovers x0 (eta 0)."""
    s = DDIMSchedule(100, 10)
    x0, n = torch.rand(1, 16, 7), torch.randn(1, 16, 7)
    a_T = float(s.alphas_cumprod[-1])
    x_T = math.sqrt(a_T) * x0 + math.sqrt(1 - a_T) * n
    out = ddim_sample(lambda x, t: n.expand_as(x), x_T, s)
    assert torch.allclose(out, x0, atol=1e-4)


def test_ensemble_weights_follow_cosine_similarity():
    e = AdaptiveEnsembler(horizon=3, alpha=0.1)
    c1 = np.arange(14, dtype=float).reshape(2, 7) + 1
    assert np.array_equal(e(np.stack([c1[0]] * 3)), c1[0])     # one prediction: itself
    c2 = -np.ones((3, 7))
    got = e(c2)
    preds = np.stack([c1[0], c2[0]])                            # older chunk's step 1 (row 0 of the 3 copies)
    cos = preds @ c2[0] / (np.linalg.norm(preds, axis=1) * np.linalg.norm(c2[0]) + 1e-7)
    w = np.exp(0.1 * cos) / np.exp(0.1 * cos).sum()
    assert np.allclose(got, w @ preds)
    e.reset()
    assert np.array_equal(e(c2), c2[0])


def test_tiny_cogact_acts_one_ensembled_action_from_the_cognition_row():
    p = _build()
    torch.manual_seed(0)
    out = p.act(synthetic_observation(0))
    assert out.actions.shape == (1, 7) and p.info().chunk == 1
    assert p.ensembler is not None and p.ensembler.horizon == 7
    assert p.last_normalized.shape == (16, 7)
    assert p.decoder.trace.prefill[0].n_q == 1 + 256 + p.last_text_tokens
    # the cognition feature is the final-norm hidden state of the last row (the EOS token)
    lm = p.model.language_model
    obs = synthetic_observation(0)
    vis, _ = p._vision(obs)
    ids = p.prompt(obs.instruction)
    assert ids[-2:] == [29871, 2]
    emb = torch.cat([lm.model.embed_tokens(torch.tensor([ids[:1]])), vis,
                     lm.model.embed_tokens(torch.tensor([ids[1:]]))], 1)
    with torch.no_grad():
        ref = lm.model(inputs_embeds=emb).last_hidden_state[0, -1]
    assert torch.allclose(p.last_cognition, ref, atol=1e-5)


def test_guidance_uses_the_learned_null_feature():
    """cfg_scale 1: the conditional forward alone; > 1: uncond + s (cond - uncond), the
    unconditional branch conditioned on z_embedder.uncondition."""
    p = _build()
    net = p.model.action_model.net
    cog = torch.randn(1, 1, p.dims.llm_hidden)
    x, t = torch.randn(2, 16, 7), torch.tensor([90, 90])
    z = torch.cat([cog, net.z_embedder.uncondition[None]], 0)
    with torch.no_grad():
        g = net.forward_with_cfg(x, t, z, 1.5)
        c, u = net(x[:1], t[:1], cog), net(x[:1], t[:1], net.z_embedder.uncondition[None])
    assert torch.allclose(g[0], (u + 1.5 * (c - u))[0], atol=1e-6)


KEEP_ALL = [lambda: FastV({"k": 2, "retention": 1.0}),
            lambda: VLAPruner({"prune_layer": 2, "window": 2, "retention": 1.0}),
            lambda: SparseVLM({"retention": 1.0}),
            lambda: DivPrune({"retention": 1.0}),
            lambda: VLACache({"static_top_k": 0})]


def _actions(policy, n=3):
    torch.manual_seed(123)
    policy.reset()
    policy.pruner.reset()
    return [policy.act(synthetic_observation(10 + i)).actions for i in range(n)]


@pytest.mark.slow
def test_keep_all_pruners_give_bit_identical_actions():
    want = _actions(_build())
    for make in KEEP_ALL:
        pruner = make()
        got = _actions(_build(pruner))
        assert all(np.array_equal(a, b) for a, b in zip(got, want)), type(pruner).__name__


def test_a_pruning_fastv_keeps_the_cognition_row_and_changes_tokens():
    p = _build(FastV({"k": 2, "retention": 0.25}))
    torch.manual_seed(0)
    out = p.act(synthetic_observation(0))
    assert out.stats.tokens_kept == 64 and np.isfinite(out.actions).all()


def _stage_counts(p):
    """Counted FLOPs of the whole call and of the DiT sampling alone."""
    torch.manual_seed(0)
    with F.counter() as fc:
        p.act(synthetic_observation(0))
    cog = torch.zeros(1, 1, p.dims.llm_hidden, device=p.device, dtype=p.dtype)
    with F.counter() as fd, torch.no_grad():
        p.sample(cog)
    return float(fc.get_total_flops()), float(fd.get_total_flops())


@pytest.mark.parametrize("name", ["cogact-tiny", "cogact"])
@pytest.mark.parametrize("scale", [1.5, 1.0])
def test_analytic_flops_equal_counted_per_stage(name, scale):
    p = build_cogact(_cfg(name, checkpoint=None, cfg_scale=scale), Pruner(), SUITE, "cpu")
    p.allow_shape_only_calls = True
    total, dit = _stage_counts(p)
    by = p.last_flops_by_stage
    assert dit == by["action_head"] == CF.dit_sampling_flops(p.dims, 10, 2 if scale > 1 else 1)
    assert total - dit == by["vision"] + by["llm"]
    if name == "cogact":
        assert p.device == "meta" and p.dims.dit_hidden == 768 and p.dims.dit_layers == 12


@pytest.mark.parametrize("dit", ["DiT-S", "DiT-B", "DiT-L"])
def test_action_model_has_the_official_parameter_names_and_sizes(dit):
    """The names of microsoft/CogACT@b174a1b action_model/models.py (timm Attention/Mlp without
    q/k norms), so the checkpoint's `action_model` loads as is; sizes of action_model.py:12-17."""
    from vlabench.models.cogact.dims import DIT_SIZES, cogact_dims
    from vlabench.models.cogact.dit import ActionModel

    depth, hidden, _heads = DIT_SIZES[dit]
    with torch.device("meta"):
        sd = ActionModel(cogact_dims("full", dit)).state_dict()
    lin = [f"{m}.{w}" for m in ("x_embedder.linear", "history_embedder.linear", "t_embedder.mlp.0",
                                "t_embedder.mlp.2", "z_embedder.linear", "final_layer.linear")
           for w in ("weight", "bias")]
    blocks = [f"blocks.{i}.{m}.{w}" for i in range(depth)
              for m in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2") for w in ("weight", "bias")]
    want = {"net." + k for k in lin + blocks + ["z_embedder.uncondition", "positional_embedding"]}
    assert set(sd) == want
    assert sd["net.blocks.0.attn.qkv.weight"].shape == (3 * hidden, hidden)
    assert sd["net.positional_embedding"].shape == (17, hidden)
    assert sd["net.z_embedder.uncondition"].shape == (1, 4096)
