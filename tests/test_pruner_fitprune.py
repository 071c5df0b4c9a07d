"""FitPrune: the recipe scaled to the model, the cross x self head-max score, the drop per layer."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from baseline_views import info, view  # noqa: E402

from vlabench.core.errors import ConfigError  # noqa: E402
from vlabench.pruners.base import BOS, TEXT, VISUAL  # noqa: E402
from vlabench.pruners.fitprune import FitPrune, fitprune_drop, scaled_scheme  # noqa: E402

KINDS = [BOS, VISUAL, VISUAL, VISUAL, TEXT, TEXT]


def attention() -> torch.Tensor:
    """(2 heads, 6, 6); only the visual columns 1..3 matter. Head 1 is half of head 0 except
    that the first text row attends 0.9 to token 2 (head 0: 0.1)."""
    h0 = torch.zeros(6, 6)
    h0[0, 1:4] = torch.tensor([0.0, 5.0, 0.0])     # BOS: not a text row (would save token 1)
    h0[1, 1:4] = torch.tensor([1.0, 0.0, 0.0])     # visual rows: self = column means
    h0[2, 1:4] = torch.tensor([0.5, 0.5, 0.0])
    h0[3, 1:4] = torch.tensor([0.2, 0.2, 0.6])
    h0[4, 1:4] = torch.tensor([0.1, 0.3, 0.1])     # text rows: cross = column sums
    h0[5, 1:4] = torch.tensor([0.2, 0.1, 0.1])
    h1 = h0 * 0.5
    h1[4, 3] = 0.9
    return torch.stack([h0, h1])


def test_lowest_cross_times_self_of_the_head_max_is_dropped():
    # head max: cross = (.3, .4, 1.0), self = (1.7, .7, .6) / 3 -> products .17, .093, .2
    a = attention()
    kinds = torch.tensor(KINDS)
    rows_text = (kinds != VISUAL) & (kinds != BOS)
    keep = fitprune_drop(a, rows_text, kinds == VISUAL, torch.tensor([1, 2, 3]), torch.arange(3), 1)
    assert keep.tolist() == [0, 2]
    # head 0 alone (no head max) would drop token 2 instead: cross 0.2 -> .04
    keep0 = fitprune_drop(a[:1], rows_text, kinds == VISUAL, torch.tensor([1, 2, 3]), torch.arange(3), 1)
    assert keep0.tolist() == [0, 1]


def test_after_layer_drops_the_recipe_count_at_its_layer_only():
    p = FitPrune({"scheme": [0, 1, 0, 0], "scheme_tokens": 3})
    p.bind(info(num_visual=3, num_layers=4))
    assert p.plan == {1: 1} and p.attention_layers == frozenset({1})
    assert p.after_layer(view(0, KINDS, attention())) is None
    assert p.after_layer(view(1, KINDS, attention())).tolist() == [0, 2]
    assert p.after_layer(view(1, KINDS, attention(), phase="decode")) is None


def test_recipe_scales_cumulatively_to_the_token_count_and_depth():
    # cumulative (2, 2, 3, 3) of 4 tokens -> of 8: (4, 4, 6, 6)
    assert scaled_scheme([2, 0, 1, 0], 4, 8, 4) == {0: 4, 2: 2}
    # a drop after the last layer is void
    assert scaled_scheme([0, 0, 0, 1], 4, 4, 4) == {}
    # 32 -> 4 layers: layer 12 sits at 1.5 -> 2 (round half up); 576 -> 256 tokens: 9 -> 4, 18 -> 8
    s = [0] * 32
    s[0], s[12] = 9, 9
    assert scaled_scheme(s, 576, 256, 4) == {0: 4, 2: 4}


def test_default_recipe_is_fitprunes_reduction_60_and_bad_recipes_are_refused():
    import yaml
    from conftest import ROOT
    cfg = yaml.safe_load((ROOT / "configs" / "pruner" / "fitprune.yaml").read_text())
    assert len(cfg["scheme"]) == 32 and sum(cfg["scheme"]) == 449
    p = FitPrune(cfg)
    p.bind(info(num_visual=256, num_layers=32))
    assert sum(p.plan.values()) == 200                 # round(449 * 256 / 576)
    with pytest.raises(ConfigError):
        FitPrune({})
    with pytest.raises(ConfigError):
        FitPrune({"scheme": [1, -1]})
    with pytest.raises(ConfigError):
        FitPrune({"scheme": [1, 2, 3]}).bind(info(num_layers=4))
