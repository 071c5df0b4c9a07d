"""The pruning methods on pi0 (issue 13 item 2): every supported method runs a real LIBERO
episode on pi0-tiny, keep-all settings are the unpruned model bit for bit, and the pi0-specific
layouts hold: FastV scores with layer K-1 over one pool of 512 tokens, VLA-Pruner's action
scores come from the action expert's latter flow steps and latter layers, VLA-Cache and
SparseVLM read pi0's prompt rows. Expectations are computed here from recorded attention, not by
the pruners' own helpers."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vlabench.core.errors import ConfigError  # noqa: E402
from vlabench.models.pi0.build import build_pi0  # noqa: E402
from vlabench.models.pi0.policy import SUPPORTED_PRUNERS  # noqa: E402
from vlabench.models.synthetic import synthetic_episode  # noqa: E402
from vlabench.pruners.base import ACTION, BOS, PROPRIO, TEXT, VISUAL, ModelInfo, Pruner  # noqa: E402
from vlabench.pruners.divprune import DivPrune  # noqa: E402
from vlabench.pruners.fastv import FastV  # noqa: E402
from vlabench.pruners.random_drop import RandomDrop  # noqa: E402
from vlabench.pruners.sp_vla import SPVLA  # noqa: E402
from vlabench.pruners.sparsevlm import SparseVLM, rater_candidates  # noqa: E402
from vlabench.pruners.specprune import SpecPrune  # noqa: E402
from vlabench.pruners.vla_cache import VLACache  # noqa: E402
from vlabench.pruners.vla_pruner import VLAPruner, second_nearest_first  # noqa: E402

CFG = {"size": "tiny", "threads": 2, "warmup_calls": 0}
M = 512             # pi0's visual tokens: agentview + wrist, 256 each
L = 4               # pi0-tiny's prefix (and expert) layers
STEPS = 10          # flow-matching steps


def pi0(pruner: Pruner):
    policy = build_pi0(CFG, pruner=pruner, device="cpu")
    pruner.reset()
    policy.reset()
    return policy


def act_seeded(policy, obs, seed: int):
    torch.manual_seed(seed)                       # the flow's initial noise
    return policy.act(obs)


def pi0_info(layers: int = 18) -> ModelInfo:
    return ModelInfo(name="pi0", num_layers=layers, hidden_size=2048, num_heads=8,
                     cameras=("agentview", "wrist"), grid=16, num_visual=M, action_dim=7, chunk=5,
                     autoregressive=False, flow_steps=STEPS)


# ------------------------------------------------------------------ keep-all invariant
def keep_all(reading: str) -> list[Pruner]:
    r = {"reading": reading}
    return [FastV({"k": 2, "retention": 1.0, **r}),
            RandomDrop({"k": 2, "retention": 1.0, **r}),
            VLAPruner({"prune_layer": 2, "window": 2, "retention": 1.0, **r}),
            SparseVLM({"retention": 1.0, **r}),
            DivPrune({"retention": 1.0, **r}),
            VLACache({"static_top_k": 0, **r})]


@pytest.mark.slow
@pytest.mark.parametrize("reading", ["code", "paper"])
def test_keep_all_settings_give_the_unpruned_actions_bit_for_bit(reading):
    obs = synthetic_episode(4)
    base = pi0(Pruner())
    want = [act_seeded(base, o, 100 + i).actions for i, o in enumerate(obs)]
    assert not np.array_equal(want[0], want[1])        # the calls differ from one another
    for p in keep_all(reading):
        policy = pi0(p)
        for i, o in enumerate(obs):                    # VLA-Pruner selects from call 2 on
            out = act_seeded(policy, o, 100 + i)
            assert out.stats.tokens_by_layer == [M] * L, (p.name, i)
            assert np.array_equal(out.actions, want[i]), (p.name, reading, i)
    pruned = pi0(FastV({"k": 2, "retention": 0.5, "reading": reading}))
    assert not np.array_equal(act_seeded(pruned, obs[0], 100).actions, want[0])   # sensitive


# ------------------------------------------------------------------ FastV
class RecordingFastV(FastV):
    def after_layer(self, view):
        keep = super().after_layer(view)
        if keep is not None:
            self.seen = (view.layer, view.attn.clone(), view.key_visual_ids.clone(),
                         view.query_kinds.clone(), keep.clone())
        return keep


@pytest.mark.parametrize("reading", ["code", "paper"])
@pytest.mark.parametrize("retention,kept", [(0.5, 256), (0.3, 154), (0.125, 64)])
def test_fastv_on_pi0_prunes_after_layer_k_minus_1_from_one_pool(reading, retention, kept):
    p = RecordingFastV({"k": 2, "retention": retention, "reading": reading})
    out = act_seeded(pi0(p), synthetic_episode(1)[0], 0)
    assert out.stats.tokens_by_layer == [M] * 2 + [kept] * (L - 2)    # K = 2 full layers
    layer, attn, vids, kinds, keep = p.seen
    assert layer == 1                                                  # layer K-1 scored
    assert kinds[-1] == TEXT                   # the last prefix row: the prompt's last token
    cols = torch.nonzero(vids >= 0).flatten()
    score = attn[:, -1, :][:, cols].mean(0)                            # heads averaged
    order = sorted(range(cols.numel()), key=lambda j: (-float(score[j]), int(vids[cols[j]])))
    expected = sorted(int(vids[cols[j]]) for j in order[:kept])       # top-k over all 512
    assert keep.tolist() == expected


def test_fastv_keeps_the_oft_fork_layout_on_openvla_oft():
    info = ModelInfo(name="openvla-oft", num_layers=32, hidden_size=4096, num_heads=32,
                     cameras=("agentview", "wrist"), grid=16, num_visual=M, action_dim=7, chunk=8,
                     autoregressive=False)
    p, q = FastV({"k": 3}), FastV({"k": 3})
    p.bind(info)
    q.bind(pi0_info())
    assert (p.score_layer, p.pools, p.rows) == (3, 2, "prefill")
    assert (q.score_layer, q.pools, q.rows) == (2, 1, "last")


# ------------------------------------------------------------------ VLA-Pruner
class RecordingVLAPruner(VLAPruner):
    """Records every expert view it is handed and every one it scores."""

    def reset(self):
        super().reset()
        self.views, self.scored = [], []

    def after_layer(self, view):
        if view.phase == "flow":
            self.views.append((view.layer, view.flow_step, view.attn.clone(),
                               view.query_kinds.clone(), view.key_visual_ids.clone()))
        return super().after_layer(view)

    def _observe_action(self, view):
        self.scored.append((view.layer, view.flow_step))
        super()._observe_action(view)


def expected_s_act(views) -> torch.Tensor:
    """Mean over the (step >= 5, layer >= L/2) views of the head- and action-row-averaged
    attention to each alive visual key; zeros at ids not alive."""
    total, n = torch.zeros(M, dtype=torch.float64), 0
    for layer, step, attn, qk, kv in views:
        if step < STEPS // 2 or layer < L // 2:
            continue
        v = torch.zeros(M, dtype=torch.float64)
        for col in range(attn.shape[2]):
            if kv[col] >= 0:
                v[int(kv[col])] = attn[:, qk == ACTION, col].double().mean()
        total += v
        n += 1
    return total / n


@pytest.mark.parametrize("reading", ["code", "paper"])
def test_vla_pruner_scores_actions_from_the_experts_latter_steps_and_layers(reading):
    p = RecordingVLAPruner({"prune_layer": 3, "window": 3, "retention": 0.5, "reading": reading})
    policy = pi0(p)
    assert p.flow_attention_layers == frozenset({2, 3}) and p.attention_layers == frozenset({2})
    assert p.first is second_nearest_first and p.pools == 1      # the paper under both readings
    for i, o in enumerate(synthetic_episode(4)):
        p.views, p.scored = [], []
        out = act_seeded(policy, o, i)
        assert out.stats.tokens_by_layer == ([M] * L if i < 3 else [M] * 3 + [256])
        # the expert probes (and hands over) only the latter half of the steps (first_flow_step)
        assert p.first_flow_step == STEPS // 2
        assert {(v[0], v[1]) for v in p.views} == {(l, s) for l in (2, 3) for s in range(5, STEPS)}
        assert sorted(p.scored) == sorted((l, s) for l in (2, 3) for s in range(5, STEPS))
        assert all(v[3].tolist() == [PROPRIO] + [ACTION] * 50 for v in p.views)   # state, actions
        s_act = p._history[-1]
        want = expected_s_act(p.views)
        assert torch.allclose(s_act.double(), want, rtol=1e-5, atol=1e-9)
        # expert layer l reads prefix layer l's KV: layer 2 (= K-1) still has all 512 visual
        # keys, layer 3 only the 256 kept after K-1 on the pruned call
        alive = {v[0]: int((v[4] >= 0).sum()) for v in p.views}
        assert alive == ({2: M, 3: M} if i < 3 else {2: M, 3: 256})


# ------------------------------------------------------------------ VLA-Cache
def test_vla_cache_on_pi0_takes_oft_constants_scaled_layers_and_a_pi0_override():
    p = VLACache()
    p.bind(pi0_info())
    assert (p.static_top_k, p.attention_top_k) == (150, 100)
    assert p.layer == 8 and p.reuse_layers == [1, 3, 5, 6]
    q = VLACache({"static_top_k": {"openvla": 130, "openvla-oft": 150, "pi0": 90}})
    q.bind(pi0_info())
    assert q.static_top_k == 90


class RecordingVLACache(VLACache):
    def after_layer(self, view):
        if view.layer == self.layer:
            self.seen = (view.attn.clone(), view.query_kinds.clone(), view.key_visual_ids.clone())
        return super().after_layer(view)


@pytest.mark.parametrize("reading", ["code", "paper"])
def test_vla_cache_on_pi0_scores_by_every_prompt_row(reading):
    words = " ".join(f"word{i}" for i in range(44))      # 46 prompt tokens: past OFT's span of 34
    obs = synthetic_episode(3, instruction=f"pick up the bowl {words}")
    p = RecordingVLACache({"reading": reading})
    policy = pi0(p)
    computed = []
    for i, o in enumerate(obs):
        act_seeded(policy, o, i)
        attn, kinds, kv = p.seen
        assert int((kinds == TEXT).sum()) > 34
        vis = torch.nonzero(kv >= 0).flatten()
        want = torch.zeros(M)
        want[kv[vis]] = attn.mean(0)[kinds == TEXT][:, vis].mean(0)
        assert torch.allclose(p.prev_scores, want, rtol=1e-5, atol=1e-9)
        computed.append(min(t.n_q for t in policy.decoder.trace.prefill))
    n = M + policy.last_text_tokens
    assert computed[0] == n and min(computed[1:]) < n        # static patches reused from call 1


# ------------------------------------------------------------------ SparseVLM
def test_sparsevlm_rater_span_on_pi0_leaves_out_only_the_last_token():
    # pi0's prefix: 3 image rows, BOS, 4 prompt rows (the token after the image is BOS)
    kinds = torch.tensor([VISUAL] * 3 + [BOS] + [TEXT] * 4)
    pos = torch.arange(8)
    assert rater_candidates(kinds, pos, True, trim_first=False).tolist() == [False] * 4 + [True] * 3 + [False]
    assert rater_candidates(kinds, pos, True).tolist() == [False] * 5 + [True] * 2 + [False]
    p = SparseVLM({"retention": 0.5})
    policy = pi0(p)
    out = act_seeded(policy, synthetic_episode(1)[0], 0)
    assert out.stats.tokens_by_layer == [M] * 3 + [256]
    last = M + policy.last_text_tokens - 1
    assert p.raters.numel() > 0 and int(p.raters.min()) >= M + 1 and int(p.raters.max()) < last


# ------------------------------------------------------------------ refusals
@pytest.mark.parametrize("cls", [SpecPrune, SPVLA])
def test_an_unsupported_pruner_is_refused_in_one_line_naming_the_supported(cls):
    with pytest.raises(ConfigError) as e:
        build_pi0(CFG, pruner=cls(), device="cpu")
    msg = str(e.value)
    assert "\n" not in msg and all(n in msg for n in SUPPORTED_PRUNERS)


# ------------------------------------------------------------------ real LIBERO episodes
ACCEPT = ("none", "random", "fastv", "sparsevlm", "divprune", "vla-cache", "vla-pruner")
MAX_STEPS = 16      # execute 5: model calls at steps 0, 5, 10, 15
TOKENS = {"none": [M] * L, "random": [M] * 3 + [256], "fastv": [M] * 3 + [256],
          "sparsevlm": [M] * 3 + [256], "divprune": [256] * L}


@pytest.fixture(scope="module")
def episodes(tmp_path_factory):
    from cli_runs import run_all

    return run_all(tmp_path_factory.mktemp("pi0"), {p: [f"pruner={p}"] for p in ACCEPT},
                   ["model=pi0-tiny", "suite=libero_spatial", "suite.tasks=[0]",
                    "run.episodes_per_task=1", f"run.max_steps={MAX_STEPS}"])


def _layers(calls) -> list[list[int]]:
    return [[int(x) for x in str(v).split(";")] for v in calls["tokens_by_layer"]]


@pytest.mark.libero
@pytest.mark.slow
@pytest.mark.parametrize("name", ACCEPT)
def test_every_supported_pruner_runs_a_libero_episode_on_pi0(episodes, name):
    rc, eps, calls = episodes[name]
    assert rc in (0, None), f"pruner={name} exited {rc}"
    assert list(eps["error_type"]) == [""], eps["error"].tolist()
    assert list(eps["steps"]) == [str(MAX_STEPS)]
    model = calls[calls["source"] == "model"]
    assert len(model) == 4 and all(float(f) > 0 for f in model["flops"])
    layers = _layers(model)
    if name in TOKENS:
        assert layers == [TOKENS[name]] * 4
    if name == "vla-pruner":                     # warm-start: 3 unpruned calls, then pruned
        assert layers == [[M] * L] * 3 + [[M] * 3 + [256]]
    base = float(episodes["none"][2]["flops"].iloc[0])
    flops = [float(f) for f in model["flops"]]
    if name in TOKENS and name != "none":
        assert max(flops) < base
    if name == "vla-pruner":     # warm-up calls pay the probes; the pruned call saves
        assert flops[-1] < base < flops[0]


@pytest.mark.libero
@pytest.mark.slow
@pytest.mark.parametrize("name", ["specprune", "sp-vla"])
def test_an_unsupported_pruner_exits_2_with_one_line(cli, tmp_path, name):
    res = cli("run", "model=pi0-tiny", f"pruner={name}", "suite=libero_spatial", "suite.tasks=[0]",
              "run.episodes_per_task=1", f"run.max_steps={MAX_STEPS}", f"run.output_dir={tmp_path}")
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("vlabench: error:")]
    assert res.returncode == 2 and len(lines) == 1 and "Traceback" not in res.stderr
    assert f"pruner={name}" in lines[0] and all(n in lines[0] for n in SUPPORTED_PRUNERS)
