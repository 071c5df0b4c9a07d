"""VLA-Pruner against its paper (Sec. 4, App. A) on hand-worked inputs."""

from __future__ import annotations

import math

import pytest
import torch

from tests.paper_pruner_views import model_info, view
from vlabench.pruners.base import ACTION, GENERATED, STOP, TEXT, VisualTokens
from vlabench.pruners.vla_pruner import (VLAPruner, decaying_window, dual_level_select,
                                         redundancy_filter, second_nearest_first)
from vlabench.pruners.selection import cosine_distance_matrix
from vlabench.registry import ConfigError


def _unit(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


# Angles 0, 10, 20, 90, 180 degrees; cosine distance 1 - cos(angle between).
POINTS = torch.tensor([_unit(a) for a in (0, 10, 20, 90, 180)])


def test_decaying_window_weights_the_last_w_steps_by_gamma_powers():
    e = torch.eye(3)
    est = decaying_window([e[0], e[1], e[2]], gamma=0.8)          # oldest first
    assert est.tolist() == pytest.approx([0.8 ** 3, 0.8 ** 2, 0.8])
    assert decaying_window([e[1]], 0.8).tolist() == pytest.approx([0, 0.8, 0])


def test_algorithm1_starts_at_the_maximal_second_nearest_distance():
    # second-nearest angles: A 20, B 10, C 20, D 80, E 160 -> E (index 4) starts
    d = cosine_distance_matrix(POINTS)
    assert second_nearest_first(d) == 4
    # then greedy max-min: A (180 from E), D (90 from both), C (20 from A) before B (10)
    assert redundancy_filter(POINTS, 4).tolist() == [4, 0, 3, 2]
    assert redundancy_filter(POINTS, 9).tolist() == [0, 1, 2, 3, 4]     # |C_dual| <= budget


def test_dual_level_select_unions_both_top_k_then_filters_to_the_budget():
    ids = torch.tensor([10, 11, 12, 13, 14])
    s_vl = torch.tensor([0.9, 0.8, 0.0, 0.1, 0.0])      # top-2: 10, 11
    s_act = torch.tensor([0.0, 0.0, 0.1, 0.7, 0.9])     # top-2: 13, 14
    # candidates 10 (0 deg), 11 (10), 13 (90), 14 (180): second-nearest 90, 80, 90, 170 -> 14,
    # then 10 (180 away), giving the two most diverse
    assert dual_level_select(s_vl, s_act, ids, POINTS, 2).tolist() == [10, 14]
    assert dual_level_select(s_vl, s_act, ids, POINTS, 5).tolist() == ids.tolist()


def _tokens() -> VisualTokens:
    return VisualTokens(POINTS[[0, 1, 2, 3, 4, 0, 1, 2]] + 0.01 * torch.arange(8)[:, None],
                        torch.zeros(8, 4), {}, None, "task", 0)


def test_first_w_calls_run_unpruned_then_the_budget_is_kept():
    p = VLAPruner({"retention": 0.25, "prune_layer": 1, "window": 3})
    p.bind(model_info(num_layers=4))                   # M = 8, budget 2, action layers 2, 3
    assert p.attention_layers == {0, 2, 3} and p.budget == 2
    ids, tail = list(range(8)), [TEXT, ACTION, ACTION, STOP]
    for call in range(3):
        p.before_llm(_tokens())
        assert p.after_layer(view(0, ids, tail)) is None
        p.after_layer(view(2, ids, tail, {10: {5: 0.9}, 11: {5: 0.9}}))
        p.end_of_step(torch.zeros(8, 7).numpy(), None)
    assert p._history[-1].argmax() == 5                 # action attention recorded per call
    p.before_llm(_tokens())
    keep = p.after_layer(view(0, ids, tail))
    assert keep.numel() == 2 and 5 in keep.tolist()
    p.reset()
    p.before_llm(_tokens())
    assert p.after_layer(view(0, ids, tail)) is None     # a new episode warms up again


def test_openvla_action_scores_come_from_the_last_prompt_row_and_decode_steps():
    p = VLAPruner({"retention": 0.5, "prune_layer": 1})
    p.bind(model_info(num_layers=4, cameras=("agentview",), autoregressive=True))
    ids = [0, 1, 2, 3]
    p.before_llm(_tokens())
    p.after_layer(view(2, ids, [TEXT, TEXT], {6: {1: 0.9}}))             # last prompt row
    p.after_layer(view(3, ids, [TEXT, TEXT], {5: {3: 0.9}}))             # not an action row
    dec = view(2, ids, [TEXT, TEXT, GENERATED], {7: {2: 0.9}}, phase="decode")
    assert p.after_layer(dec) is None
    p.end_of_step(torch.zeros(1, 7).numpy(), None)
    s = p._history[-1]
    assert s[1] > s[0] and s[2] > s[0] and s[1] > s[3]


def test_refuses_a_model_without_layer_k():
    with pytest.raises(ConfigError):
        VLAPruner({"prune_layer": 4}).bind(model_info(num_layers=4))
