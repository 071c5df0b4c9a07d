"""VTW: every visual token withdrawn from layer K on; K by depth; the KL rule that picks K."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from baseline_views import info, view  # noqa: E402

from vlabench.core.errors import ConfigError  # noqa: E402
from vlabench.pruners.base import BOS, TEXT, VISUAL  # noqa: E402
from vlabench.pruners.vtw import VTW, choose_withdrawal_layer  # noqa: E402

KINDS = [BOS, VISUAL, VISUAL, VISUAL, TEXT, TEXT]


def test_layer_k_minus_one_returns_no_visual_id_so_layer_k_runs_on_text_alone():
    p = VTW({"k": 16})
    p.bind(info(num_visual=3, num_layers=32))
    assert p.attention_layers == frozenset({15})
    assert p.after_layer(view(14, KINDS)) is None
    out = p.after_layer(view(15, KINDS))
    assert out is not None and out.numel() == 0
    assert p.after_layer(view(15, KINDS, phase="decode")) is None


def test_k_keeps_its_relative_depth_and_k_equal_depth_withdraws_nothing():
    p = VTW({"k": 16})
    p.bind(info(num_layers=4))
    assert p.k == 2 and p.attention_layers == frozenset({1})
    p = VTW({"k": 32})
    p.bind(info(num_layers=4))
    assert p.k == 4 and p.attention_layers == frozenset()
    for bad in (0, 33):
        with pytest.raises(ConfigError):
            VTW({"k": bad})


def test_meta_builds_get_an_empty_shape_only_keep():
    p = VTW({"k": 2, "ref_layers": 4})
    p.bind(info(num_layers=4))
    v = view(1, KINDS, hidden=torch.zeros(6, 2, device="meta"))
    out = p.after_layer(v)
    assert out.device.type == "meta" and out.numel() == 0


def test_withdrawal_layer_is_the_first_candidate_within_eta():
    kl = {5: 0.1, 6: 0.01, 7: 0.002, 8: 0.004, 9: 0.001}
    assert choose_withdrawal_layer(kl, 0.003) == 7      # 8 is above eta again: the first wins
    assert choose_withdrawal_layer(kl, 0.0005) == 9     # none within eta: the last candidate
    assert choose_withdrawal_layer({12: 0.0}, 0.003) == 12
