"""SpecPrune-VLA against its paper (Sec. 4-6, App. 10) on hand-worked inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.paper_pruner_views import model_info, view
from vlabench.pruners.base import ACTION, TEXT, VisualTokens
from vlabench.pruners.specprune import (COARSE, FINE, SpecPrune, controller_mode, dynamic_ids,
                                        ema, frame_interval, layer_confidence, rank_weights)
from vlabench.registry import ConfigError

ALPHA = {"libero_10": 1.0, "libero_goal": 0.8, "libero_object": 0.6, "libero_spatial": 0.6}


def test_frame_interval_follows_the_velocity_formula():
    # T = floor(-16/3 * v/6 + 22/3) + 4
    assert frame_interval(0.0) == 7 + 4           # floor(7.33)
    assert frame_interval(3.0) == 4 + 4           # floor(-2.67 + 7.33) = floor(4.67)
    assert frame_interval(4.5) == 3 + 4           # floor(-4 + 7.33)
    assert frame_interval(12.0) == 1              # floor(-3.33) + 4 = 0, at least one frame


def test_controller_switches_on_velocity_and_dz():
    th = dict(vt_th=0.4, vr_th=0.2)
    seq = [None,                                   # no action yet: coarse
           [0.5, 0.0, 0.0, 0.0, 0.0, 0.0, -1],    # v_t = 0.5 >= 0.4
           [0.1, 0.1, -0.1, 0.0, 0.0, 0.0, -1],   # slow, descending: fine
           [0.1, 0.0, 0.0, 0.1, 0.1, 0.0, 1],     # dz = 0, v_r = 0.14: fine
           [0.1, 0.0, 0.05, 0.0, 0.0, 0.0, 1],    # lifting (dz > 0): coarse
           [0.1, 0.0, -0.1, 0.3, 0.0, 0.0, 1]]    # v_r = 0.3 >= 0.2: coarse
    assert [controller_mode(None if a is None else np.array(a), **th) for a in seq] == \
        [COARSE, COARSE, FINE, FINE, COARSE, COARSE]


@pytest.mark.parametrize("suite,coarse,fine", [("libero_spatial", 14, 24), ("libero_goal", 19, 32),
                                                ("libero_10", 24, 40)])
def test_k_base_is_alpha_times_24_or_40_per_suite(suite, coarse, fine):
    p = SpecPrune({"suite": suite, "alpha": ALPHA})
    assert p.k == coarse
    p._mode = FINE
    assert p.k == fine


def test_rank_weight_is_a_normalised_sigmoid_of_the_rank():
    w = rank_weights(torch.tensor([[0.1, 0.5, 0.3]]), k=1.0)   # ranks 2, 0, 1
    s = [1 / (1 + math.exp(2)), 0.5, 1 / (1 + math.exp(1))]
    assert w.tolist() == pytest.approx([x / sum(s) for x in s], rel=1e-5)
    # two heads disagreeing: the head-average of the per-head weights
    w2 = rank_weights(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), k=1.0)
    assert w2.tolist() == pytest.approx([0.5, 0.5])


def test_layer_confidence_and_ema():
    assert layer_confidence(torch.tensor([0.1, 0.3]), eps=0.0) == pytest.approx(2.0)   # 0.2 / 0.1
    s = ema(torch.zeros(2), torch.tensor([1.0, 0.5]), 0.2)
    assert s.tolist() == pytest.approx([0.2, 0.1])
    assert ema(s, torch.tensor([0.0, 1.0]), 0.2).tolist() == pytest.approx([0.16, 0.28])


def test_dynamic_tokens_are_the_lowest_similarity_patches_below_tau():
    a = np.full((28, 28, 3), 200, np.uint8)
    b = a.copy()
    b[0:14, 14:28, 0] = 0          # patch 1: cos = 2/sqrt(6) = 0.816
    b[14:28, 0:14] = 0             # patch 2: black, cos = 0
    b[14:28, 14:28, 0] = 190       # patch 3: nearly unchanged (cos > 0.99)
    imgs_a, imgs_b = {"agentview": a, "wrist": a}, {"agentview": b, "wrist": a}
    ids = dynamic_ids(imgs_b, imgs_a, ("agentview", "wrist"), grid=2, tau=0.9, k=5)
    assert ids.tolist() == [1, 2]
    assert dynamic_ids(imgs_b, imgs_a, ("agentview", "wrist"), 2, 0.9, k=1).tolist() == [2]
    assert dynamic_ids(imgs_b, None, ("agentview", "wrist"), 2, 0.9, k=1).numel() == 0


def _tokens(call: int, img: np.ndarray) -> VisualTokens:
    return VisualTokens(torch.zeros(8, 4), torch.zeros(8, 4), {"agentview": img, "wrist": img},
                        None, "task", call)


def test_static_pruning_keeps_global_union_dynamic_union_local_top_k():
    p = SpecPrune({"k_coarse": 1, "alpha_default": 1.0})
    p.bind(model_info(num_layers=4))
    assert p.attention_layers == {0, 1, 3}
    p.reset()
    p.before_llm(_tokens(0, np.zeros((28, 28, 3), np.uint8)))
    tail = [TEXT, TEXT]
    ids = list(range(8))
    assert p.after_layer(view(0, ids, tail, {9: {1: 0.5, 6: 0.5}})) is None     # V(1) = {1, 6}
    p._global = torch.tensor([0, 0, 0, 0.9, 0.8, 0, 0, 0.1])             # top-1 per camera: 3, 4
    keep = p.after_layer(view(1, ids, tail, {10: {2: 0.5, 6: 0.4}}))      # V(2) = {2, 6}
    assert sorted(keep.tolist()) == [1, 2, 3, 4, 6]


def test_layer_level_pruning_drops_ten_percent_by_the_ema_score():
    p = SpecPrune({"k_coarse": 24})
    p.bind(model_info(num_layers=22, grid=4, cameras=("agentview",)))
    assert 5 in p.attention_layers and 20 in p.attention_layers
    p.reset()
    p._scores = torch.zeros(16)
    alive = list(range(10))
    keep = p.after_layer(view(5, alive, [TEXT, ACTION], {11: {i: 0.01 * (i + 1) for i in alive},
                                                         12: {i: 0.01 * (i + 1) for i in alive}}))
    assert sorted(keep.tolist()) == list(range(1, 10))        # keep_count(10, 0.9) = 9
    assert p._scores[9] > p._scores[1] > 0 and p._scores[12] == 0


def test_mode_follows_the_last_action_and_reset_forgets_the_episode():
    p = SpecPrune({"suite": "libero_goal", "alpha": ALPHA})
    p.bind(model_info())
    img = np.zeros((28, 28, 3), np.uint8)
    p.before_llm(_tokens(0, img))
    assert p.mode() == COARSE
    p.end_of_step(np.array([[0.1, 0.0, -0.1, 0, 0, 0, -1]] * 8), None)
    p.before_llm(_tokens(1, img))
    assert p.mode() == FINE and p.k == 32
    p.reset()
    assert p._last_action is None and not p._frames and p._global is None
    p.before_llm(_tokens(0, img))
    assert p.mode() == COARSE


def test_refuses_a_model_without_layers_after_the_local_ones():
    with pytest.raises(ConfigError):
        SpecPrune({}).bind(model_info(num_layers=2))


def test_alpha_comes_from_the_composed_suite_name():
    import yaml
    from omegaconf import OmegaConf

    from vlabench import registry

    node = yaml.safe_load(registry.entry("pruner", "specprune").path.read_text())
    root = OmegaConf.create({"suite": {"name": "libero_goal"}, "pruner": node})
    assert SpecPrune(root.pruner).alpha == 0.8
    assert SpecPrune(OmegaConf.create(node)).alpha == 1.0     # no suite: alpha_default


def test_the_reference_frame_is_the_one_t_steps_back_even_between_model_calls():
    p = SpecPrune({"k_coarse": 24, "tau": 0.9})
    p.bind(model_info())
    p.reset()
    base = np.full((28, 28, 3), 200, np.uint8)
    p.skip_call(type("Obs", (), {"step": 0})())
    p.before_llm(_tokens(0, base))
    # a chunk of 8 summing to 6 in x: v = 6 -> T = floor(-16/3 + 22/3) + 4 = 6 (Sec. 4.2)
    p.end_of_step(np.array([[0.75, 0, 0, 0, 0, 0, -1]] * 8), None)
    assert frame_interval(p._translation) == 6
    for step in range(1, 8):           # open-loop steps: only frame 2 differs (patch 1)
        img = base.copy()
        if step == 2:
            img[0:14, 14:28, 0] = 0
        p.observe_frame(step, {"agentview": img, "wrist": base})
    p.skip_call(type("Obs", (), {"step": 8})())
    p.before_llm(_tokens(1, base))
    assert p._dynamic.tolist() == [1]   # compared with frame 8 - 6 = 2, not with the last call's
