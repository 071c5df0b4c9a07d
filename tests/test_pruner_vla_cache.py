"""VLA-Cache: static-patch detection, task-relevant exclusion, per-episode state."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baseline_views import info, view  # noqa: E402
from vlabench.pruners.base import BOS, TEXT, VISUAL, VisualTokens  # noqa: E402
from vlabench.pruners.vla_cache import VLACache, patch_cosine, static_patches  # noqa: E402


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
    assert torch.allclose(sim, torch.tensor([1.0, 2 ** -0.5, 1.0, 1.0]), atol=1e-5)
    assert static_patches(sim, 0.996, 150).tolist() == [0, 2, 3]
    assert static_patches(torch.tensor([1.0, .999, .997, .5]), 0.996, 2).tolist() == [0, 1]


def tokens(images: dict) -> VisualTokens:
    return VisualTokens(torch.zeros(8, 2), torch.zeros(8, 2), images, None, "task", 0)


def test_reuses_static_patches_except_the_most_text_attended_per_camera():
    p = VLACache({"attention_top_k": 1, "attention_layer": 15})
    p.bind(info(num_visual=8, num_layers=4, cameras=("agentview", "wrist"), grid=2))
    assert p.attention_layers == frozenset({2})                   # 15 of 32 -> 2 of 4
    assert p.reuse_kv(tokens({"agentview": frame(), "wrist": frame()})) is None   # first call
    kinds = [BOS] + [VISUAL] * 8 + [TEXT, TEXT]
    a = torch.zeros(2, 11, 11)
    a[:, 9, 1 + 3] = 1.0      # text -> agentview patch 3
    a[:, 10, 1 + 4 + 2] = 1.0  # text -> wrist patch 2
    a[:, 0, 1 + 0] = 5.0       # a non-text row: ignored
    assert p.after_layer(view(2, kinds, a)) is None
    out = p.reuse_kv(tokens({"agentview": frame((0, 1)), "wrist": frame()}))
    # agentview: static {0, 2, 3} minus relevant {3}; wrist: static {0..3} minus {2} (ids 4..7)
    assert out.tolist() == [0, 2, 4, 5, 7]
    p.reset()
    assert p.reuse_kv(tokens({"agentview": frame(), "wrist": frame()})) is None


def test_no_reuse_without_the_previous_calls_attention():
    p = VLACache({})
    p.bind(info(num_visual=8, num_layers=4, cameras=("agentview", "wrist"), grid=2))
    p.reuse_kv(tokens({"agentview": frame(), "wrist": frame()}))
    assert p.reuse_kv(tokens({"agentview": frame(), "wrist": frame()})) is None
