"""SparseVLM: budget schedule, text raters, DPC-kNN recycling, in-place merge."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from baseline_views import info, view  # noqa: E402
from vlabench.pruners.base import BOS, TEXT, VISUAL, Pruner  # noqa: E402
from vlabench.pruners.sparsevlm import (  # noqa: E402
    SparseVLM,
    density_peak_clusters,
    merge_clusters,
    rater_candidates,
    rater_mask,
    stage_counts,
)

SHAPE_192 = [300 / 576, 200 / 576, 110 / 576]


def test_stage_counts_make_the_mean_over_layers_the_budget():
    # 4 layers, pruning after 0, 1, 2: 512 + c1 + c2 + c3 = 4 * 256; shape scaled by
    # s = 512 / (512 * 1.059) -> 251.8, 167.9, 92.3
    assert stage_counts(512, 4, [0, 1, 2], SHAPE_192, 0.5) == [252, 168, 92]
    c = stage_counts(512, 32, [2, 6, 15], SHAPE_192, 0.5)
    assert c == sorted(c, reverse=True)
    assert abs((3 * 512 + 4 * c[0] + 9 * c[1] + 16 * c[2]) / 32 - 256) < 1


def test_bind_scales_the_official_layers_and_picks_the_nearest_official_shape():
    p = SparseVLM({"retention": 0.25, "reading": "paper"})
    p.bind(info(num_visual=512, num_layers=32))
    assert p.layers == [2, 6, 15] and p.attention_layers == frozenset({2, 6, 15})
    p4 = SparseVLM({"retention": 0.5, "reading": "paper"})
    p4.bind(info(num_visual=512, num_layers=4))
    assert p4.layers == [0, 1, 2] and p4.counts == [252, 168, 92]


def test_raters_are_text_tokens_above_mean_relevance():
    vis = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    text = torch.tensor([[5.0, 0.0], [0.0, 0.0], [-5.0, 0.0]])
    # softmax over text of (5, 0, -5) ~ (.993, .007, .00005); mean 1/3 -> only the first
    assert rater_mask(vis, text).tolist() == [True, False, False]
    assert rater_mask(vis, torch.zeros(2, 2)).tolist() == [True, True]


def test_density_peak_clustering_separates_two_blobs_and_merges_by_mean():
    x = torch.tensor([[0, 0], [.1, 0], [0, .1], [10, 10], [10.1, 10], [10, 10.1]])
    centres, assign = density_peak_clusters(x, 2)
    assert assign[:3].unique().numel() == 1 and assign[3:].unique().numel() == 1
    assert assign[0] != assign[3]
    merged = merge_clusters(x, assign, 2)
    assert torch.allclose(merged[assign[0]], torch.tensor([.1 / 3, .1 / 3]))
    assert torch.allclose(merged[assign[3]], torch.tensor([10 + .1 / 3, 10 + .1 / 3]))


def test_after_layer_keeps_top_rated_tokens_plus_one_recycled_merged_token():
    p = SparseVLM({"retention": 0.5, "reading": "paper"})
    p.bind(info(num_visual=8, num_layers=4))
    p.layers, p.counts, p.attention_layers = [0], [4], frozenset({0})
    kinds = [BOS] + [VISUAL] * 8 + [TEXT, TEXT]
    hidden = torch.zeros(11, 2)
    hidden[1:9] = torch.stack([torch.ones(8), torch.arange(8.0)], 1)
    hidden[9], hidden[10] = torch.tensor([5.0, 0.0]), torch.tensor([-5.0, 0.0])   # rater: row 9
    a = torch.zeros(2, 11, 11)
    a[:, 9, 1:9] = torch.tensor([.8, .1, .7, .2, .6, .3, .05, .02])
    a[:, 10, 8] = 1.0                                   # the non-rater favours V7: ignored
    assert p.after_layer(view(-1, kinds, None, hidden.clone())) is None    # the LLM input: raters
    v = view(0, kinds, a, hidden.clone())
    out = p.after_layer(v).tolist()
    # 8 -> 4: one cluster (int((int(4 * .3) + 1) / 10) + 1); top 3 by score V0, V2, V4; of the
    # 5 deleted the top int(5 * .3) + 1 = 2 (V5, V3) form the cluster, kept at its centre
    assert out[:3] == [0, 2, 4] and out[3] in (3, 5)
    assert torch.allclose(v.hidden[1 + out[3]], torch.tensor([1.0, 4.0]))   # mean of V3, V5
    assert p.after_layer(view(0, kinds, torch.empty(2, 11, 11, device="meta"))).numel() == 4


class _Write(Pruner):
    attention_layers = frozenset({0})

    def after_layer(self, view):
        view.hidden.add_(100.0)


def test_view_hidden_aliases_the_decoders_hidden_states():
    """The in-place merge relies on LayerView.hidden being a view of the decoder's state."""
    from vlabench.models.build import build_openvla

    pol = build_openvla({"size": "tiny", "threads": 2, "warmup_calls": 0}, Pruner(), device="cpu")
    n, d = 12, pol.dims.llm_hidden
    emb = torch.randn(1, n, d, generator=torch.Generator().manual_seed(0))
    kinds = torch.tensor([BOS] + [VISUAL] * 8 + [TEXT] * 3)
    vids = torch.tensor([-1] + list(range(8)) + [-1] * 3)
    with torch.inference_mode():
        base, _ = pol.decoder.prefill(emb, kinds, vids)
        pol.decoder.pruner = _Write()
        moved, _ = pol.decoder.prefill(emb, kinds, vids)
    assert not torch.allclose(base, moved)


def test_code_reading_is_one_step_at_layer_k_with_the_plain_budget():
    """VLA-Pruner's run: layer K-1 = 2 scores, round(M r) kept from layer 3 on, no stages."""
    p = SparseVLM({"retention": 0.25})
    p.bind(info(num_visual=512, num_layers=32))
    assert p.layers == [2] and p.counts == [128] and p.attention_layers == frozenset({2})
    assert [r.default for r in SparseVLM.readings] == ["code"] * 3


def test_inclusive_rater_threshold_keeps_tokens_at_the_mean():
    # relevance: visual 1 -> softmax (.5, .5, 0, 0), visual 2 -> (0, 0, 0, 1); mean over
    # visual (.25, .25, 0, .5) equals 1/4 = mean(r) exactly for the first two text tokens
    vis = torch.tensor([[0.0, 0.0, -1e4, -1e4], [-1e4, -1e4, -1e4, 0.0]])
    text = torch.eye(4)
    assert rater_mask(vis, text).tolist() == [False, False, False, True]
    assert rater_mask(vis, text, inclusive=True).tolist() == [True, True, False, True]


def test_code_rater_candidates_skip_the_first_prompt_token_and_the_last_token():
    kinds = torch.tensor([BOS, VISUAL, VISUAL, TEXT, TEXT, TEXT, TEXT])
    pos = torch.arange(7)
    assert rater_candidates(kinds, pos, trim=True).tolist() == [False] * 4 + [True, True, False]
    assert rater_candidates(kinds, pos, trim=False).tolist() == [False] * 3 + [True] * 4


def _rated_view():
    kinds = [BOS] + [VISUAL] * 8 + [TEXT] * 4          # text at positions 9..12
    hidden = torch.zeros(13, 2)
    hidden[1:9, 0] = 1.0
    hidden[9], hidden[10], hidden[11], hidden[12] = (torch.tensor([10.0, 0]), torch.tensor([5.0, 0]),
                                                     torch.tensor([-5.0, 0]), torch.tensor([10.0, 0]))
    a = torch.zeros(2, 13, 13)
    a[:, 10, 1:9] = torch.tensor([.8, .1, .7, .2, .6, .3, .05, .02])   # the code's only rater
    for row in (9, 11, 12):
        a[:, row, 8] = 1.0                                  # first / non-rater / last: favour V7
    return view(-1, kinds, None, hidden), view(2, kinds, a, torch.zeros(13, 2))


def _scored(p: SparseVLM) -> list[int]:
    """The decoder's order: the input view (raters), then layer 2 (scores)."""
    inp, layer2 = _rated_view()
    assert p.after_layer(inp) is None
    return p.after_layer(layer2).tolist()


def test_code_after_layer_keeps_the_top_tokens_of_the_trimmed_raters_without_merging():
    # candidates: positions 10, 11 (9 is the first prompt token, 12 the last token); relevance
    # softmax(5, -5) -> position 10 rates; its top 4 of 8 are V0, V2, V4, V5
    p = SparseVLM({"retention": 0.5})
    p.bind(info(num_visual=8, num_layers=4))
    assert _scored(p) == [0, 2, 4, 5]
    q = SparseVLM({"retention": 0.5, "reading": "paper"})   # all prompt tokens rate: V7 kept
    q.bind(info(num_visual=8, num_layers=4))
    q.layers, q.counts, q.attention_layers = [2], [4], frozenset({2})
    assert 7 in _scored(q)


def test_raters_come_from_the_llm_input_not_from_the_scoring_layer():
    """VLA-Pruner @ fa5bfed modeling_llama.py L1046-1056 (and SparseVLM's own code) rate with
    `inputs_embeds`. Input: visual (1, 0); text at 9..12 = (9, 0), (0, 3), (2, 0), (0, 0).
    Candidates 10, 11 (code span): v.t = (0, 2) -> softmax (.119, .881), mean .5 -> only 11
    rates. At layer 2 the hidden states say the opposite (10 rates): they must be ignored."""
    kinds = [BOS] + [VISUAL] * 8 + [TEXT] * 4
    x = torch.zeros(13, 2)
    x[1:9, 0] = 1.0
    x[9], x[10], x[11] = torch.tensor([9.0, 0]), torch.tensor([0, 3.0]), torch.tensor([2.0, 0])
    h2 = torch.zeros(13, 2)
    h2[1:9, 0], h2[10, 0], h2[11, 0] = 1.0, 5.0, -5.0
    a = torch.zeros(2, 13, 13)
    a[:, 10, 1:9] = torch.tensor([.8, .1, .7, .2, .6, .3, .05, .02])
    a[:, 11, 1:9] = torch.tensor([.02, .05, .3, .6, .2, .7, .1, .8])
    p = SparseVLM({"retention": 0.5})
    p.bind(info(num_visual=8, num_layers=4))
    assert p.after_layer(view(-1, kinds, None, x)) is None
    assert p.raters.tolist() == [11]
    assert p.after_layer(view(2, kinds, a, h2)).tolist() == [2, 3, 5, 7]   # row 11's top 4
    assert p.raters.tolist() == [11]                         # not recomputed from layer 2
    q = SparseVLM({"retention": 0.5})
    q.bind(info(num_visual=8, num_layers=4))
    with pytest.raises(RuntimeError, match="input_view"):    # no input view: refused, not guessed
        q.after_layer(view(2, kinds, a, h2))



@pytest.mark.parametrize("reading,inclusive", [("code", True), ("paper", False)])
def test_each_reading_uses_its_rater_threshold(monkeypatch, reading, inclusive):
    """`code` (VLA-Pruner L1055-1057) keeps relevance >= mean, `paper` (SparseVLM's code) > mean;
    rater_mask's two thresholds are pinned above, here which one each reading asks for (an
    exact float tie at the mean cannot be built from softmax outputs)."""
    import vlabench.pruners.sparsevlm as mod

    seen = []
    real = mod.rater_mask
    monkeypatch.setattr(mod, "rater_mask", lambda v, t, inclusive=False: seen.append(inclusive) or real(v, t, inclusive))
    x = torch.zeros(13, 2)
    x[1:9, 0], x[10], x[11] = 1.0, torch.tensor([2.0, 0]), torch.tensor([0, 1.0])
    p = SparseVLM({"retention": 0.5, "reading": reading})
    p.bind(info(num_visual=8, num_layers=4))
    p.after_layer(view(-1, [BOS] + [VISUAL] * 8 + [TEXT] * 4, None, x))
    assert seen == [inclusive]
