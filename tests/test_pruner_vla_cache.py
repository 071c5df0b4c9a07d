"""VLA-Cache: static-patch detection, task-relevant exclusion, per-episode state."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baseline_views import info, view  # noqa: E402
from vlabench.pruners.base import ACTION, BOS, PROPRIO, STOP, TEXT, VISUAL, VisualTokens  # noqa: E402
from vlabench.pruners.selection import patch_cosine  # noqa: E402
from vlabench.pruners.vla_cache import (VLACache, layer_reuse_schedule,  # noqa: E402
                                         mean_token_entropy, static_patches)


def frame(changed: tuple[int, int] | None = None) -> np.ndarray:
    """28x28 (2x2 patches of 14) constant 100; the changed patch has columns alternating 0/200,
    whose pixel cosine with the constant patch is 1/sqrt(2)."""
    img = np.full((28, 28, 3), 100, dtype=np.uint8)
    if changed is not None:
        r, c = changed
        block = np.zeros((14, 14, 3), dtype=np.uint8)
        block[:, ::2] = 200
        img[r * 14:(r + 1) * 14, c * 14:(c + 1) * 14] = block
    return img


def test_patch_cosine_is_one_for_static_patches_and_hand_value_for_a_changed_one():
    sim = patch_cosine(frame(), frame((0, 1)), 14)
    assert sim.shape == (4,)
    assert sim.dtype == np.float32 and np.allclose(sim, [1.0, 2 ** -0.5, 1.0, 1.0], atol=1e-5)
    assert static_patches(sim, 0.996, 150).tolist() == [0, 2, 3]
    assert static_patches(torch.tensor([1.0, .999, .997, .5]), 0.996, 2).tolist() == [0, 1]


def tokens(images: dict) -> VisualTokens:
    return VisualTokens(torch.zeros(8, 2), torch.zeros(8, 2), images, None, "task", 0)


def test_reuses_static_patches_except_the_most_text_attended_per_camera():
    p = VLACache({"attention_top_k": 1, "attention_layer": 15})
    p.bind(info(num_visual=8, num_layers=4, cameras=("agentview", "wrist"), grid=2))
    assert p.layer == 2                                           # 15 of 32 -> 2 of 4
    assert p.attention_layers == frozenset(range(4))              # entropy of every layer
    assert p.reusable(tokens({"agentview": frame(), "wrist": frame()})) is None   # first call
    kinds = [BOS] + [VISUAL] * 8 + [TEXT, TEXT]
    a = torch.zeros(2, 11, 11)
    a[:, 9, 1 + 3] = 1.0      # text -> agentview patch 3
    a[:, 10, 1 + 4 + 2] = 1.0  # text -> wrist patch 2
    a[:, 0, 1 + 0] = 5.0       # a non-text row: ignored
    assert p.after_layer(view(2, kinds, a)) is None
    out = p.reusable(tokens({"agentview": frame((0, 1)), "wrist": frame()}))
    # agentview: static {0, 2, 3} minus relevant {3}; wrist: static {0..3} minus {2} (ids 4..7)
    assert out.tolist() == [0, 2, 4, 5, 7]
    p.reset()
    assert p.reusable(tokens({"agentview": frame(), "wrist": frame()})) is None


def test_layer_schedule_is_one_minus_normalised_entropy_with_damped_growth():
    # entropies [4, 2, 3, 1] -> normalised [1, 1/3, 2/3, 0] -> reuse [0, 2/3, 1/3, 1];
    # upward steps damped by 0.55: 0 + 0.55*2/3; 1/3 stays (a step down); 1/3 + 0.55*2/3
    got = layer_reuse_schedule(torch.tensor([4.0, 2.0, 3.0, 1.0]), 0.55)
    assert torch.allclose(got, torch.tensor([0.0, 0.55 * 2 / 3, 1 / 3, 1 / 3 + 0.55 * 2 / 3]), atol=1e-6)


def test_mean_token_entropy_of_uniform_rows_is_log_of_the_key_count():
    attn = torch.full((2, 3, 4), 0.25)
    assert float(mean_token_entropy(attn)) == pytest.approx(np.log(4), abs=1e-5)
    one_hot = torch.zeros(1, 2, 4)
    one_hot[0, :, 1] = 1.0
    assert float(mean_token_entropy(one_hot)) == pytest.approx(0.0, abs=1e-5)


def test_reuse_plan_switches_the_first_patches_by_position_at_the_schedule_layers():
    p = VLACache({"attention_top_k": 1, "reuse_layers": [2, 6, 9, 11]})
    p.bind(info(num_visual=8, num_layers=32, cameras=("agentview", "wrist"), grid=2))
    assert p.reuse_layers == [2, 6, 9, 11]
    p.reuse_kv(tokens({"agentview": frame(), "wrist": frame()}))
    kinds = [BOS] + [VISUAL] * 8 + [TEXT, TEXT]
    for layer in range(32):   # entropy falls with depth: reuse grows towards the last layers
        a = torch.zeros(2, 11, 11)
        width = 11 - layer // 3
        a[:, :, :width] = 1.0 / width
        a[:, 9, 1 + 3] += 1.0
        p.after_layer(view(layer, kinds, a))
    plan = p.reuse_kv(tokens({"agentview": frame(), "wrist": frame()}))
    reusable = [0, 1, 2, 5, 6, 7]    # all static minus the most text-attended patch per camera (3; 4)
    counts = {l: len(v) for l, v in plan.items()}
    for layer, ids in plan.items():
        assert ids.tolist() == reusable[:len(ids)]   # ascending position order, a prefix
    assert counts[2] <= counts[6] <= counts[9] <= counts[11] and counts[2] >= 1


def test_no_reuse_without_the_previous_calls_attention():
    p = VLACache({})
    p.bind(info(num_visual=8, num_layers=4, cameras=("agentview", "wrist"), grid=2))
    p.reuse_kv(tokens({"agentview": frame(), "wrist": frame()}))
    assert p.reuse_kv(tokens({"agentview": frame(), "wrist": frame()})) is None


def test_official_constants_depend_on_the_model_family():
    import dataclasses

    oft, ovla = VLACache({}), VLACache({})
    oft.bind(info(num_visual=8, cameras=("agentview", "wrist"), grid=2))
    ovla.bind(dataclasses.replace(info(num_visual=4, grid=2), autoregressive=True))
    assert (oft.static_top_k, oft.attention_top_k, oft.text_span) == (150, 100, 34)
    assert (ovla.static_top_k, ovla.attention_top_k, ovla.text_span) == (130, 120, 35)
    fixed = VLACache({"static_top_k": 7})
    fixed.bind(info())
    assert fixed.static_top_k == 7


def _scores(reading: str, kinds: list[int]) -> list[float]:
    """Text->vision scores (4 patches) when every row of `kinds` attends to one patch:
    row r (position r) attends to patch r % 4."""
    p = VLACache({"reading": reading, "text_span": 3, "attention_layer": 15})
    p.bind(info(num_visual=4, num_layers=4, grid=2))
    n = len(kinds)
    a = torch.zeros(2, n, n)
    for r in range(n):
        a[:, r, 1 + r % 4] = 1.0
    p.after_layer(view(p.layer, kinds, a))
    return p.prev_scores.tolist()


def test_code_text_rows_are_the_fixed_span_after_the_image_whatever_their_kind():
    # OFT-like layout: BOS, 4 patches (1-4), proprio (5), prompt (6, 7), action (8), stop (9).
    # Code: positions [5, 8) = proprio and both prompt tokens -> patches 1, 2, 3 get 1/3 each.
    # Paper: the prompt tokens 6, 7 -> patches 2, 3 get 1/2 each.
    kinds = [BOS, VISUAL, VISUAL, VISUAL, VISUAL, PROPRIO, TEXT, TEXT, ACTION, STOP]
    assert _scores("code", kinds) == pytest.approx([0, 1 / 3, 1 / 3, 1 / 3])
    assert _scores("paper", kinds) == pytest.approx([0, 0, 0.5, 0.5])
    # a long prompt: the code's span stops after 3 rows (positions 5-7), the paper reads all 5
    long = [BOS] + [VISUAL] * 4 + [TEXT] * 5
    assert _scores("code", long) == pytest.approx([0, 1 / 3, 1 / 3, 1 / 3])
    assert _scores("paper", long) == pytest.approx([0.2, 0.4, 0.2, 0.2])


def test_the_self_comparison_bug_is_a_paper_default_reading():
    point = {r.point: r for r in VLACache.readings}["previous frame on OpenVLA-OFT"]
    assert point.default == "paper" and "not reproduced" in point.code
