"""The prunable decoder loop: masks, positions, KV cache, and the pruner hook points."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vlabench.core.contracts import TaskInfo  # noqa: E402
from vlabench.models.build import build_openvla, build_openvla_oft  # noqa: E402
from vlabench.models.decoder import PrunableDecoder, build_mask  # noqa: E402
from vlabench.models.synthetic import synthetic_observation  # noqa: E402
from vlabench.pruners.base import ACTION, BOS, PROPRIO, STOP, TEXT, VISUAL, Pruner  # noqa: E402

CFG = {"size": "tiny", "threads": 2, "warmup_calls": 0}
BUILDERS = {"openvla-oft": build_openvla_oft, "openvla": build_openvla}
TASK = TaskInfo(0, "t", "pick up the black bowl")


class KeepAll(Pruner):
    """Reads attention at layers 1 and 2 and keeps every token at every hook."""

    name = "keep-all"
    attention_layers = frozenset({1, 2})

    def __init__(self):
        super().__init__()
        self.events: list[str] = []

    def reset(self):
        self.events.append("reset")

    def before_llm(self, tokens):
        self.events.append("before_llm")
        return torch.arange(tokens.embeddings.shape[0])

    def skip_layer(self, layer):
        return False

    def after_layer(self, view):
        self.events.append(f"after_layer:{view.layer}:{view.phase}")
        return view.visual_ids() if view.phase == "prefill" else None

    def end_of_step(self, actions, stats):
        self.events.append(f"end_of_step:{actions.shape}")


class DropHalfAt(Pruner):
    def __init__(self, layer: int):
        super().__init__()
        self.layer = layer
        self.attention_layers = frozenset({layer})

    def after_layer(self, view):
        if view.phase != "prefill":
            return None
        ids = view.visual_ids()
        return ids[::2]


class SkipLayer(Pruner):
    def skip_layer(self, layer):
        return layer == 2


class ReuseAll(Pruner):
    reuses_kv = True

    def reuse_kv(self, tokens):
        return torch.arange(tokens.embeddings.shape[0])


class ReuseFromLayer2(Pruner):
    """Half the visual KV reused from layer 2 on, all of it from layer 3 on (a growing plan)."""
    reuses_kv = True

    def reuse_kv(self, tokens):
        ids = torch.arange(tokens.embeddings.shape[0])
        return {2: ids[: ids.numel() // 2], 3: ids}


@pytest.mark.parametrize("model", ["openvla-oft", "openvla"])
def test_keep_all_pruner_gives_bit_identical_actions(model):
    obs = [synthetic_observation(s) for s in (10, 11)]
    base = BUILDERS[model](CFG, pruner=Pruner(), device="cpu")
    keep = KeepAll()
    pruned = BUILDERS[model](CFG, pruner=keep, device="cpu")
    for o in obs:
        a, b = base.act(o), pruned.act(o)
        assert np.array_equal(a.actions, b.actions)
        assert a.stats.tokens_by_layer == b.stats.tokens_by_layer
    assert "after_layer:1:prefill" in keep.events and keep.events[-1].startswith("end_of_step")


def test_hooks_fire_in_call_order_and_observe_decode_attention():
    keep = KeepAll()
    p = build_openvla(CFG, pruner=keep, device="cpu")
    keep.reset()
    p.act(synthetic_observation(1))
    ev = keep.events
    assert ev[:4] == ["reset", "before_llm", "after_layer:1:prefill", "after_layer:2:prefill"]
    assert ev.count("after_layer:1:decode") == 6
    assert ev[-1] == "end_of_step:(1, 7)"


def _first_layer_view(build):
    seen = {}

    class Spy(Pruner):
        attention_layers = frozenset({0})

        def after_layer(self, view):
            if view.phase == "prefill":
                seen["view"] = view

    p = build(CFG, pruner=Spy(), device="cpu")
    p.act(synthetic_observation(2))
    return seen["view"]


def test_oft_attention_is_fully_bidirectional_rows_summing_to_one():
    """openvla-oft's transformers fork (bc339d9): no causal mask, every token sees every token."""
    v = _first_layer_view(build_openvla_oft)
    n = v.query_kinds.numel()
    assert v.attn.shape == (4, n, n)
    assert torch.allclose(v.attn.sum(-1), torch.ones(4, n), atol=1e-5)
    assert v.attn.min() > 0          # the BOS row attends to the stop token too


def test_openvla_attention_stays_causal():
    v = _first_layer_view(build_openvla)
    n = v.query_kinds.numel()
    upper = torch.triu(torch.ones(n, n, dtype=torch.bool), 1)
    assert v.attn[:, upper].abs().max() == 0
    assert v.attn[:, ~upper].min() > 0


def test_causal_mask_follows_original_positions():
    pos = torch.arange(4)
    m = build_mask(pos, pos, torch.float32)[0, 0] == 0
    assert torch.equal(m, torch.tril(torch.ones(4, 4, dtype=torch.bool)))
    # gapped positions (pruned tokens) stay causal by original position, not packed
    pos2 = torch.tensor([0, 5, 9])
    m2 = build_mask(pos2, pos2, torch.float32)[0, 0] == 0
    assert torch.equal(m2, torch.tril(torch.ones(3, 3, dtype=torch.bool)))
    # a query sees a key at a smaller original position even if it has a gap before it
    m3 = build_mask(torch.tensor([7]), torch.tensor([0, 6, 7, 8]), torch.float32)[0, 0] == 0
    assert m3.tolist() == [[True, True, True, False]]


def test_bidirectional_decoder_matches_transformers_llama_with_a_full_mask():
    """causal=False equals transformers' Llama given an all-visible 4-D mask (what the fork
    computes), also after pruning (original rotary positions kept)."""
    p = build_openvla_oft(CFG, device="cpu")
    lm = p.model.language_model
    torch.manual_seed(3)
    emb = torch.randn(1, 30, lm.config.hidden_size)
    kinds = torch.tensor([BOS] + [VISUAL] * 12 + [TEXT] * 8 + [ACTION] * 8 + [TEXT])
    vids = torch.tensor([-1] + list(range(12)) + [-1] * 17)
    dec = PrunableDecoder(lm, Pruner(), causal=False)
    full = torch.zeros(1, 1, 30, 30)
    with torch.inference_mode():
        ours, _ = dec.prefill(emb, kinds, vids)
        ref = lm.model(inputs_embeds=emb, attention_mask=full).last_hidden_state
        assert torch.allclose(ours, ref, atol=1e-5, rtol=1e-4)
        keep = torch.tensor([0, 3, 4, 11])
        ours_p, meta = dec.prefill(emb, kinds, vids, keep=keep)
        rows = meta.pos
        ref_p = lm.model(inputs_embeds=emb[:, rows], position_ids=rows[None],
                         attention_mask=torch.zeros(1, 1, len(rows), len(rows))).last_hidden_state
    assert torch.allclose(ours_p, ref_p, atol=1e-5, rtol=1e-4)
    # a causal decoder differs on the same input (the test can fail)
    with torch.inference_mode():
        causal, _ = PrunableDecoder(lm, Pruner()).prefill(emb, kinds, vids)
    assert not torch.allclose(causal[:, :-9], ours[:, :-9], atol=1e-3)


def test_oft_action_head_reads_the_row_before_each_placeholder():
    """modeling_prismatic.py L914-918: rows NUM_PATCHES+NUM_PROMPT_TOKENS .. +56, one before
    each placeholder (the last prompt token and the first 55 placeholders)."""
    from vlabench.models.openvla_oft import action_head_rows

    # BOS, 3 visual (one pruned: position 2), proprio, 2 text, 3 actions, stop
    pos = torch.tensor([0, 1, 3, 4, 5, 6, 7, 8, 9, 10])
    kind = torch.tensor([BOS, VISUAL, VISUAL, PROPRIO, TEXT, TEXT, ACTION, ACTION, ACTION, STOP])
    assert action_head_rows(pos, kind).tolist() == [5, 6, 7]
    with pytest.raises(RuntimeError):   # the row before the first action is gone
        action_head_rows(torch.tensor([0, 1, 7, 8, 9]), torch.tensor([BOS, TEXT, ACTION, ACTION, ACTION]))


def test_decoder_matches_transformers_llama_forward():
    p = build_openvla(CFG, device="cpu")
    lm = p.model.language_model
    torch.manual_seed(0)
    emb = torch.randn(1, 40, lm.config.hidden_size)
    kinds = torch.tensor([BOS] + [VISUAL] * 20 + [TEXT] * 19)
    vids = torch.tensor([-1] + list(range(20)) + [-1] * 19)
    dec = PrunableDecoder(lm, Pruner())
    with torch.inference_mode():
        ours, _ = dec.prefill(emb, kinds, vids)
        ref = lm.model(inputs_embeds=emb).last_hidden_state
    assert torch.allclose(ours, ref, atol=1e-5, rtol=1e-4)


def test_cached_greedy_decoding_matches_full_recompute():
    p = build_openvla(CFG, device="cpu")
    lm = p.model.language_model
    torch.manual_seed(1)
    emb = torch.randn(1, 30, lm.config.hidden_size)
    kinds = torch.tensor([BOS] + [VISUAL] * 10 + [TEXT] * 19)
    vids = torch.tensor([-1] + list(range(10)) + [-1] * 19)
    dec = PrunableDecoder(lm, Pruner())
    with torch.inference_mode():
        h, _ = dec.prefill(emb, kinds, vids)
        toks = [lm.lm_head(h[:, -1:]).argmax(-1)]
        for step in range(3):
            h = dec.decode(lm.model.embed_tokens(toks[-1]), 30 + step)
            toks.append(lm.lm_head(h).argmax(-1))
        seq = emb
        ref = []
        for step in range(4):
            logits = lm(inputs_embeds=seq).logits[:, -1:]
            ref.append(logits.argmax(-1))
            seq = torch.cat([seq, lm.model.embed_tokens(ref[-1])], 1)
    assert [int(t) for t in toks] == [int(t) for t in ref]


def test_pruned_tokens_keep_their_original_positions():
    p = build_openvla_oft(CFG, pruner=DropHalfAt(1), device="cpu")
    out = p.act(synthetic_observation(3))
    tr = p.decoder.trace.prefill
    assert [t.visual for t in tr] == [512, 512, 256, 256]
    assert out.stats.tokens_by_layer == [512, 512, 256, 256] and out.stats.tokens_kept == 256
    # layer 3's cache holds the kept visual tokens at their original positions (1 + even ids)
    c = p.decoder.caches[3]
    vis = c.vid >= 0
    assert torch.equal(c.pos[vis], 1 + c.vid[vis]) and torch.equal(c.vid[vis], torch.arange(0, 512, 2))
    assert c.pos.numel() == p.decoder.caches[0].pos.numel() - 256


def test_skipped_layer_costs_nothing_and_is_skipped_while_decoding():
    base = build_openvla(CFG, device="cpu")
    skip = build_openvla(CFG, pruner=SkipLayer(), device="cpu")
    obs = synthetic_observation(4)
    f0 = base.act(obs).stats.flops
    out = skip.act(obs)
    assert skip.decoder.trace.prefill[2] is None
    assert all(step[2] is None for step in skip.decoder.trace.decode)
    assert out.stats.tokens_by_layer[2] == 0
    assert out.stats.flops < f0


def test_reusing_kv_of_an_identical_frame_reproduces_actions_with_fewer_flops():
    base = build_openvla_oft(CFG, device="cpu")
    reuse = build_openvla_oft(CFG, pruner=ReuseAll(), device="cpu")
    obs = synthetic_observation(5)
    a0 = base.act(obs)
    first = reuse.act(obs)            # nothing cached yet: full compute
    second = reuse.act(obs)           # all visual KV reused
    assert first.stats.flops == pytest.approx(a0.stats.flops)
    assert second.stats.flops < 0.5 * first.stats.flops
    assert np.allclose(second.actions, a0.actions, atol=1e-4)
    reuse.reset(TASK)                 # episode start forgets the cache
    assert reuse.act(obs).stats.flops == pytest.approx(a0.stats.flops)


def test_eager_probe_mode_matches_sdpa_numerically():
    obs = synthetic_observation(6)
    a = build_openvla_oft(CFG, pruner=KeepAll(), device="cpu").act(obs).actions
    b = build_openvla_oft({**CFG, "probe_mode": "eager"}, pruner=KeepAll(), device="cpu").act(obs).actions
    assert np.allclose(a, b, atol=1e-4)


def test_skip_call_serves_a_chunk_without_running_the_model():
    class Extrapolate(Pruner):
        def skip_call(self, obs):
            return np.zeros((1, 7)) if obs.step > 0 else None

    p = build_openvla(CFG, pruner=Extrapolate(), device="cpu")
    assert p.act(synthetic_observation(7, step=0)).stats.source == "model"
    out = p.act(synthetic_observation(7, step=1))
    assert out.stats.source == "extrapolator" and out.actions.shape == (1, 7) and out.stats.flops is None


def test_a_layer_reuse_plan_recomputes_early_layers_and_reuses_later_ones():
    base = build_openvla_oft(CFG, device="cpu")
    full = build_openvla_oft(CFG, pruner=ReuseAll(), device="cpu")
    plan = build_openvla_oft(CFG, pruner=ReuseFromLayer2(), device="cpu")
    obs = synthetic_observation(5)
    a0 = base.act(obs)
    full.act(obs)
    plan.act(obs)
    f_full, f_plan = full.act(obs), plan.act(obs)
    assert f_full.stats.flops < f_plan.stats.flops < a0.stats.flops
    assert np.allclose(f_plan.actions, a0.actions, atol=1e-4)   # an identical frame's KV is the same
    n = [t.n_q for t in base.decoder.trace.prefill][0]
    assert [t.n_q for t in plan.decoder.trace.prefill] == [n, n, n - 256, n - 512]
    assert [t.n_k for t in plan.decoder.trace.prefill] == [n] * 4      # reused rows stay keys
