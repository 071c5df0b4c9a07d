"""EfficientVLA: task-relevant + diverse selection, layer importance, calibration, skipping."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from baseline_views import info, view  # noqa: E402
from vlabench.pruners.base import BOS, TEXT, VISUAL, VisualTokens  # noqa: E402
from vlabench.pruners.efficientvla import (  # noqa: E402
    EfficientVLA,
    layer_importance,
    task_relevant_diverse,
)
from vlabench.registry import ConfigError  # noqa: E402


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


def _tokens(device: str = "cpu") -> VisualTokens:
    return VisualTokens(torch.zeros(4, 2, device=device), torch.zeros(4, 2), {}, None, "t", 0)


def test_first_call_calibrates_then_the_least_important_layer_is_skipped():
    p = EfficientVLA({"tokens_kept": 2, "attention_layer": 2})
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


def test_meta_builds_skip_the_deepest_layers_but_the_last_and_keep_the_budget():
    p = EfficientVLA({})
    p.bind(info(num_visual=512, num_layers=32))
    p.before_llm(_tokens("meta"))
    assert p.skip == frozenset({27, 28, 29, 30})
    kinds = [BOS] + [VISUAL] * 512 + [TEXT]
    out = p.after_layer(view(2, kinds, torch.empty(2, 514, 514, device="meta")))
    assert out.device.type == "meta" and out.numel() == 56
