"""FastV and the random control: layer mapping, last-token scores, budgets, seeding."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from baseline_views import info, view  # noqa: E402
from vlabench.pruners.base import BOS, TEXT, VISUAL  # noqa: E402
from vlabench.pruners.fastv import FastV  # noqa: E402
from vlabench.pruners.random_drop import RandomDrop  # noqa: E402
from vlabench.registry import ConfigError  # noqa: E402

KINDS = [BOS, VISUAL, VISUAL, VISUAL, VISUAL, TEXT, TEXT]


def attn() -> torch.Tensor:
    a = torch.zeros(2, 7, 7)
    a[0, -1] = torch.tensor([.1, .3, .0, .2, .1, .1, .2])
    a[1, -1] = torch.tensor([.1, .1, .2, .4, .0, .1, .1])
    a[:, 5, 1] = 1.0                    # a non-last row favouring V0: must be ignored
    return a


def test_fastv_reads_layer_k_minus_1_and_keeps_the_last_tokens_favourites():
    p = FastV({"k": 3, "retention": 0.5})
    p.bind(info())
    assert p.attention_layers == frozenset({2})
    # head means of the last row over V0..V3: .2, .1, .3, .05 -> keep V2 and V0
    assert p.after_layer(view(2, KINDS, attn())).tolist() == [0, 2]
    assert p.after_layer(view(1, KINDS, attn())) is None
    assert p.after_layer(view(2, KINDS, attn(), phase="decode")) is None


def test_fastv_budget_is_exact_on_meta_tensors():
    p = FastV({"k": 3, "retention": 0.75})
    p.bind(info())
    out = p.after_layer(view(2, KINDS, torch.empty(2, 7, 7, device="meta")))
    assert out.device.type == "meta" and out.numel() == 3


def test_fastv_refuses_a_layer_the_model_lacks_and_a_bad_retention():
    with pytest.raises(ConfigError):
        FastV({"k": 4}).bind(info(num_layers=4))
    with pytest.raises(ConfigError):
        FastV({"retention": 0.0})


def test_random_drop_keeps_the_budget_and_follows_the_torch_seed():
    p = RandomDrop({"k": 3, "retention": 0.5})
    p.bind(info(num_visual=4))
    picks = []
    for seed in (7, 7, 8, 9, 10):
        torch.manual_seed(seed)
        out = p.after_layer(view(2, KINDS))
        assert out.numel() == 2 and set(out.tolist()) <= {0, 1, 2, 3}
        assert out.tolist() == sorted(out.tolist())
        picks.append(tuple(out.tolist()))
    assert picks[0] == picks[1] and len(set(picks)) > 1
    assert p.attention_layers == frozenset({2})
