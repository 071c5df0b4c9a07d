"""EfficientVLA: task-relevant + diverse selection, layer importance, calibration, skipping."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from baseline_views import info, view  # noqa: E402

from vlabench.core.errors import ConfigError  # noqa: E402
from vlabench.pruners.base import ACTION, BOS, STOP, TEXT, VISUAL, VisualTokens  # noqa: E402
from vlabench.pruners.efficientvla import (  # noqa: E402
    EfficientVLA,
    choose_skipped,
    layer_importance,
    task_relevant_diverse,
)


def test_key_then_relevant_then_most_dissimilar_tokens():
    score = torch.tensor([.9, .1, .8, .2, .3, .05])
    feats = torch.tensor([[1, 0], [0, 1], [1, .1], [1, .05], [.9, .1], [.7, .7]])
    # budget 4 = 1 key (id 0) + round(.5 * 3) = 2 by score (ids 2, 4) + 1 diverse: of ids
    # 3 (cos ~1 to id 0), 1 (orthogonal) and 5 (cos .71) the least similar is 1
    out = task_relevant_diverse(score, feats, torch.arange(6), 4, 1, 0.5)
    assert out.tolist() == [0, 1, 2, 4]


def test_layer_importance_is_one_minus_mean_cosine():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert layer_importance(x, 3 * x) == pytest.approx(0.0, abs=1e-6)
    assert layer_importance(x, x.flip(1)) == pytest.approx(1.0)


def test_layers_removed_scale_with_depth_and_are_validated():
    p = EfficientVLA({})
    p.bind(info(num_layers=32))
    assert p.n_skip == 4
    p.bind(info(num_layers=4))
    assert p.n_skip == 1                              # 4 * 4 / 32 = .5, rounded up
    with pytest.raises(ConfigError):
        EfficientVLA({"attention_layer": 3}).bind(info(num_layers=4))
    with pytest.raises(ConfigError):
        EfficientVLA({"skip_layers": [0]}).bind(info(num_layers=4))


def _tokens(device: str = "cpu", call: int = 0) -> VisualTokens:
    return VisualTokens(torch.zeros(4, 2, device=device), torch.zeros(4, 2), {}, None, "t", call)


def test_paper_reading_calibrates_on_the_first_call_then_skips_the_least_important_layer():
    p = EfficientVLA({"tokens_kept": 2, "attention_layer": 2, "reading": "paper"})
    p.bind(info(num_visual=4, num_layers=4))
    kinds = [BOS, VISUAL, VISUAL, VISUAL, VISUAL, TEXT]
    p.before_llm(_tokens())
    assert p.mode() == "calibrate" and p.attention_layers == frozenset(range(4))
    assert not any(p.skip_layer(i) for i in range(4))
    h0 = torch.randn(6, 2, generator=torch.Generator().manual_seed(0))
    outs = {0: h0, 1: h0 * 2, 2: h0.flip(1), 3: -h0.flip(1)}     # layer 1 changes nothing
    a = torch.full((2, 6, 6), 1 / 6)
    for layer in range(4):
        p.after_layer(view(layer, kinds, a, outs[layer].clone()))
    p.end_of_step(None, None)
    assert p.skip == frozenset({1}) and p.mode() is None
    assert [p.skip_layer(i) for i in range(4)] == [False, True, False, False]
    assert p.attention_layers == frozenset({2})
    p.reset()
    assert p.skip is None


@pytest.mark.parametrize("reading,kept", [("code", 112), ("paper", 56)])
def test_meta_builds_skip_the_deepest_layers_but_the_last_and_keep_the_budget(reading, kept):
    p = EfficientVLA({"reading": reading})
    p.bind(info(num_visual=512, num_layers=32))
    p.before_llm(_tokens("meta"))
    assert p.skip == frozenset({27, 28, 29, 30})
    kinds = [BOS] + [VISUAL] * 512 + [TEXT]
    out = p.after_layer(view(2, kinds, torch.empty(2, 514, 514, device="meta")))
    assert out.device.type == "meta" and out.numel() == kept


def test_skipped_layers_are_the_most_similar_above_the_threshold():
    sims = {1: 0.95, 3: 0.85, 5: 0.99}
    assert choose_skipped(sims, 2, 0.9) == frozenset({1, 5})
    assert choose_skipped(sims, 3, 0.9) == frozenset({1, 5})       # 3 is not above 0.9
    assert choose_skipped(sims, 3, None) == frozenset({1, 3, 5})
    assert choose_skipped({1: 0.5, 2: 0.5}, 1, None) == frozenset({1})   # tie: the lower layer


def _outputs():
    """Layer outputs of 9 rows (BOS, 4 visual, text, 2 action, stop): layer 1 keeps the action
    rows (cos 1) but turns every other row by 90 degrees (mean over all rows 2/9); layer 3
    turns only the action rows slightly (cos .9986) and keeps the rest (cos 1)."""
    o0 = torch.tensor([[1.0, 0.0]] * 9)
    o1 = torch.tensor([[0.0, 1.0]] * 9)
    o1[6:8] = torch.tensor([2.0, 0.0])
    o2 = torch.ones(9, 2)
    o3 = torch.ones(9, 2)
    o3[6:8] = torch.tensor([1.0, 0.9])
    return [o0, o1, o2, o3]


KINDS = [BOS, VISUAL, VISUAL, VISUAL, VISUAL, TEXT, ACTION, ACTION, STOP]


def _calibrate(p: EfficientVLA, call: int) -> None:
    p.before_llm(_tokens(call=call))
    a = torch.full((2, 9, 9), 1 / 9)
    for layer, h in enumerate(_outputs()):
        p.after_layer(view(layer, KINDS, a, h.clone()))
    p.end_of_step(None, None)


def test_code_reading_calibrates_on_the_second_call_over_the_action_rows():
    p = EfficientVLA({})                                 # code: 112 tokens, 1 of 4 layers skipped
    p.bind(info(num_visual=4, num_layers=4))
    assert p.tokens_kept == 112 and p.n_skip == 1
    _calibrate(p, call=0)                                # the first call neither probes nor skips
    assert p.skip is None and p.attention_layers == frozenset({2})
    p.before_llm(_tokens(call=1))
    assert p.mode() == "calibrate" and p.attention_layers == frozenset(range(4))
    p.reset()
    _calibrate(p, call=1)
    assert p.skip == frozenset({1})                      # action rows: layer 1 cos 1 > layer 3
    assert [p.skip_layer(i) for i in range(4)] == [False, True, False, False]
    q = EfficientVLA({"reading": "paper"})               # every row, first call: layer 3
    q.bind(info(num_visual=4, num_layers=4))
    _calibrate(q, call=0)
    assert q.skip == frozenset({3})


def test_code_calibration_rows_are_the_action_placeholders_or_openvlas_last_row():
    p = EfficientVLA({})
    p.bind(info(num_visual=4, num_layers=4))
    oft = view(0, KINDS, None, torch.zeros(9, 2))
    assert p._calibration_rows(oft).tolist() == [False] * 6 + [True, True, False]
    openvla = view(0, [BOS, VISUAL, VISUAL, VISUAL, VISUAL, TEXT, TEXT], None, torch.zeros(7, 2))
    assert p._calibration_rows(openvla).tolist() == [False] * 6 + [True]
    q = EfficientVLA({"reading": "paper"})
    assert q._calibration_rows(openvla).all()


def test_diversity_top_up_breaks_exact_ties_by_position():
    """Identical features: every candidate is equally (dis)similar, the lowest ids fill the budget."""
    from vlabench.pruners.efficientvla import task_relevant_diverse

    score = torch.tensor([5.0, 4.0, 1.0, 1.0, 1.0, 1.0])
    feats = torch.ones(6, 4)
    ids = torch.arange(10, 16)
    assert task_relevant_diverse(score, feats, ids, budget=4, key=1, alpha=0.0).tolist() == [10, 11, 12, 13]


def test_without_layer_skipping_only_prunes_tokens_and_never_calibrates():
    """VLA-Pruner Table 3's 'EfficientVLA (w/o layer)': 50% of M tokens, nothing skipped."""
    p = EfficientVLA({"retention": 0.5, "layers_kept": 32})
    p.bind(info(num_visual=8, num_layers=4))
    assert p.tokens_kept == 4 and p.n_skip == 0
    for call in (0, 1, 2):
        p.before_llm(_tokens(call=call))
        assert p.mode() is None and p.attention_layers == frozenset({2})
        assert not any(p.skip_layer(i) for i in range(4))


def test_retention_replaces_tokens_kept_and_is_validated():
    p = EfficientVLA({"retention": 0.25, "tokens_kept": 112})
    p.bind(info(num_visual=512, num_layers=32))
    assert p.tokens_kept == 128
    for bad in (0.0, 1.5):
        with pytest.raises(ConfigError):
            EfficientVLA({"retention": bad})


def test_vla_pruner_table3_configs():
    import yaml
    from conftest import ROOT
    d = ROOT / "configs" / "pruner"
    nolayer = EfficientVLA(yaml.safe_load((d / "efficientvla-nolayer.yaml").read_text()))
    nolayer.bind(info(num_visual=256, num_layers=32))
    assert (nolayer.tokens_kept, nolayer.n_skip, nolayer.skip) == (128, 0, frozenset())
    full = EfficientVLA(yaml.safe_load((d / "efficientvla-skip8.yaml").read_text()))
    full.bind(info(num_visual=256, num_layers=32))
    assert (full.tokens_kept, full.n_skip, full.skip) == (128, 8, None)   # calibrated per episode
