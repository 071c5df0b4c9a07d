"""DivPrune on a hand-worked point set (Algorithm 1 with the official first-token rule)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")

from vlabench.pruners.base import VisualTokens  # noqa: E402
from vlabench.pruners.divprune import DivPrune, divprune_select, first_by_second_nearest  # noqa: E402
from vlabench.pruners.selection import cosine_distance_matrix  # noqa: E402

DEG = [0, 20, 90, 100, 180, 185]


def points() -> torch.Tensor:
    return torch.tensor([[math.cos(math.radians(a)), math.sin(math.radians(a))] for a in DEG])


def tokens(emb: torch.Tensor) -> VisualTokens:
    return VisualTokens(emb, emb, {}, None, "task", 0)


def test_first_token_has_the_farthest_nearest_neighbour():
    # nearest-other distances: 0/20 deg -> 1-cos20 = .060 (largest; tie -> lowest index),
    # 90/100 -> .015, 180/185 -> .004
    assert first_by_second_nearest(cosine_distance_matrix(points())) == 0


def test_greedy_maxmin_picks_opposite_then_orthogonal():
    # from 0 deg: farthest is 180 deg (index 4); then min distances to {0, 180}:
    # 20 -> .06, 90 -> 1.0, 100 -> 1 - cos80 = .83, 185 -> .004  => 90 deg (index 2)
    assert divprune_select(points(), 3).tolist() == [0, 4, 2]


def test_plugin_keeps_the_budget_sorted_and_handles_meta():
    p = DivPrune({"retention": 0.5})
    assert p.before_llm(tokens(points())).tolist() == [0, 2, 4]
    out = p.before_llm(tokens(torch.empty(6, 2, device="meta")))
    assert out.device.type == "meta" and out.numel() == 3
    assert DivPrune({"retention": 1.0}).before_llm(tokens(points())) is None
