"""VLA-Pruner against its paper (Sec. 4, App. A) on hand-worked inputs."""

from __future__ import annotations

import math

import pytest
import torch

from tests.paper_pruner_views import model_info, view
from vlabench.core.errors import ConfigError
from vlabench.pruners.base import ACTION, GENERATED, PROPRIO, STOP, TEXT, VisualTokens
from vlabench.pruners.selection import cosine_distance_matrix
from vlabench.pruners.selection import first_by_nearest_other as nearest_first
from vlabench.pruners.vla_pruner import (
    VLAPruner,
    decaying_window,
    dual_level_select,
    redundancy_filter,
    second_nearest_first,
)


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


# Angles 20, 160, 245, 260, 320 degrees: nearest-other angles 60, 85, 15, 15, 60 (B farthest);
# second-nearest angles 120, 100, 75, 60, 60 (A farthest).
RING = torch.tensor([_unit(a) for a in (20, 160, 245, 260, 320)])


def test_code_starts_at_the_maximal_nearest_other_distance_the_paper_at_the_second_nearest():
    d = cosine_distance_matrix(RING)
    assert nearest_first(d) == 1 and second_nearest_first(d) == 0
    # code: B (160), then E (160 degrees from B); paper: A (20), then B (140 from A, C only 135)
    assert redundancy_filter(RING, 2, nearest_first).tolist() == [1, 4]
    assert redundancy_filter(RING, 2, second_nearest_first).tolist() == [0, 1]
    assert VLAPruner().first is nearest_first
    assert VLAPruner({"reading": "paper"}).first is second_nearest_first


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
    p = VLAPruner({"retention": 0.25, "prune_layer": 1, "window": 3, "reading": "paper"})
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
    keep = p.after_layer(view(0, ids, tail, {9: {3: 0.9, 4: 0.8}}))
    # C_dual = {3, 4} U {5, 0} (S_act: 5, then the lowest of the tied rest); features at about
    # 90, 180, 0 and 0 degrees: the most diverse pair is 4 and one of 0 / 5
    assert keep.numel() == 2 and 4 in keep.tolist()
    p.reset()
    p.before_llm(_tokens())
    assert p.after_layer(view(0, ids, tail)) is None     # a new episode warms up again


@pytest.mark.parametrize("reading", ["code", "paper"])
def test_openvla_action_scores_come_from_the_last_prompt_row_and_decode_steps(reading):
    p = VLAPruner({"retention": 0.5, "prune_layer": 1, "reading": reading})
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
        VLAPruner({"prune_layer": 4, "reading": "paper"}).bind(model_info(num_layers=4))
    with pytest.raises(ConfigError):
        VLAPruner({"prune_layer": 5}).bind(model_info(num_layers=4))


def test_action_attention_is_layer_15_under_code_and_the_latter_half_under_paper():
    code, paper = VLAPruner({"prune_layer": 3}), VLAPruner({"prune_layer": 3, "reading": "paper"})
    code.bind(model_info(num_layers=32))
    paper.bind(model_info(num_layers=32))
    assert code.action_layers == {15} and paper.action_layers == set(range(16, 32))
    # OFT (not autoregressive): code scores with layer K = 3 (4 full layers), paper layer K-1
    assert code.attention_layers == {3, 15} and paper.attention_layers == {2} | set(range(16, 32))
    ar = VLAPruner({"prune_layer": 3})
    ar.bind(model_info(num_layers=32, cameras=("agentview",), autoregressive=True))
    assert ar.attention_layers == {2, 15}                  # OpenVLA's fork: layer K-1
    small = VLAPruner({"prune_layer": 1})
    small.bind(model_info(num_layers=4))                   # 15 of 32 -> layer 2 of 4
    assert small.action_layers == {2} and small.score_layer == 1


# OFT layout: BOS, 8 visual (2 cameras x 4), proprio, text, 2 action placeholders, stop.
OFT_TAIL = [PROPRIO, TEXT, ACTION, ACTION, STOP]
IDS8 = list(range(8))
# the text row ranks V0 > V1 > ... > V7; the action rows at the scoring layer prefer V6, V7
# (not semantic rows: ignored)
SEMANTIC = {10: {v: 0.9 - 0.1 * v for v in IDS8}, 11: {6: 5.0}, 12: {7: 5.0}}


def _warm(p: VLAPruner, action_layer: int, rows: dict) -> None:
    for _ in range(p.window):
        p.before_llm(_tokens())
        assert p.after_layer(view(p.score_layer, IDS8, OFT_TAIL, SEMANTIC)) is None
        p.after_layer(view(action_layer, IDS8, OFT_TAIL, rows))
        p.end_of_step(torch.zeros(8, 7).numpy(), None)
    p.before_llm(_tokens())


def test_oft_code_budgets_each_camera_and_scores_at_layer_k():
    p = VLAPruner({"retention": 0.5, "prune_layer": 3})
    p.bind(model_info(num_layers=32))
    assert p.pool_budget == 2 and p.budget == 4
    _warm(p, 15, {11: {0: 0.9}, 12: {1: 0.9}})
    assert p.after_layer(view(2, IDS8, OFT_TAIL, SEMANTIC)) is None      # K-1 no longer scores
    # camera 0: S_vl top-2 {0, 1} = S_act top-2; camera 1: S_vl top-2 {4, 5}, S_act all tied
    # (lowest ids 4, 5): each union holds the budget, no filter; one pool would keep 0..3
    assert p.after_layer(view(3, IDS8, OFT_TAIL, SEMANTIC)).tolist() == [0, 1, 4, 5]


def test_oft_paper_keeps_one_pool_of_round_m_r_at_layer_k_minus_1():
    p = VLAPruner({"retention": 0.5, "prune_layer": 3, "reading": "paper"})
    p.bind(model_info(num_layers=32))
    assert p.pools == 1 and p.budget == 4
    _warm(p, 16, {11: {0: 0.9}, 12: {1: 0.9}})
    # S_vl top-4 {0, 1, 2, 3}; S_act top-4 {0, 1} + ties 2, 3: union of 4, no filter
    assert p.after_layer(view(2, IDS8, OFT_TAIL, SEMANTIC)).tolist() == [0, 1, 2, 3]


@pytest.mark.parametrize("reading", ["code", "paper"])
def test_decaying_window_weights_the_newest_call_most_under_both_readings(reading):
    # OpenVLA, one camera of 4 tokens, budget 1. S_vl favours V3; the oldest call attended V0,
    # the newest V1. Eq. 7 ranks V1 first (0.8 x newest > 0.64 x oldest); the OpenVLA code's
    # reversed weights would rank V0. Union {1, 3} -> the filter's two candidates are equally
    # far apart, so both first-token rules start at the lower id: V1 (with the bug: V0).
    p = VLAPruner({"retention": 0.25, "prune_layer": 1, "window": 2, "reading": reading})
    p.bind(model_info(num_layers=4, cameras=("agentview",), autoregressive=True))
    ids, tail = [0, 1, 2, 3], [TEXT, TEXT]
    layer = min(p.action_layers)
    for attended in (0, 1):                               # oldest, newest
        p.before_llm(_tokens())
        p.after_layer(view(layer, ids, tail, {6: {attended: 0.9}}))
        p.end_of_step(torch.zeros(1, 7).numpy(), None)
    p.before_llm(_tokens())
    keep = p.after_layer(view(p.score_layer, ids, tail, {5: {3: 0.9}, 6: {3: 0.9}}))
    assert keep.tolist() == [1]


def test_readings_default_to_the_released_code_except_the_window_order_bug():
    assert [r.default for r in VLAPruner.readings] == ["code", "code", "paper", "code", "code"]
    assert "not reproduced" in VLAPruner.readings[2].code


def test_semantic_rows_last_scores_c_vl_by_the_last_row_only():
    # OpenVLA, 4 tokens, budget 1, window 1; the previous call's action attention went to V3.
    # Prefill rows favour V2 at the scoring layer, the last row (6) V3. prefill: C_dual = {2, 3},
    # two equally far candidates -> the lower id, V2; last: C_vl = C_act = {3} -> V3.
    picks = {}
    for semantic in ("prefill", "last"):
        p = VLAPruner({"retention": 0.25, "prune_layer": 1, "window": 1,
                       "semantic_rows": semantic})
        p.bind(model_info(num_layers=4, cameras=("agentview",), autoregressive=True))
        p.before_llm(_tokens())
        p.after_layer(view(min(p.action_layers), [0, 1, 2, 3], [TEXT, TEXT], {6: {3: 0.9}}))
        p.end_of_step(torch.zeros(1, 7).numpy(), None)
        p.before_llm(_tokens())
        rows = {0: {2: 0.9}, 4: {2: 0.9}, 5: {2: 0.9}, 6: {3: 0.9}}
        keep = p.after_layer(view(p.score_layer, [0, 1, 2, 3], [TEXT, TEXT], rows))
        picks[semantic] = keep.tolist()
    assert picks == {"prefill": [2], "last": [3]}
    with pytest.raises(ConfigError, match="semantic_rows"):
        VLAPruner({"semantic_rows": "first"})
