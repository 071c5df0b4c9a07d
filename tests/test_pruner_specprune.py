"""SpecPrune-VLA against its public code (reading=code, alexwhz-sjtu/SpecPrune-VLA @ d3b06ed) and
its paper (reading=paper) on hand-worked inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tests.paper_pruner_views import model_info, view
from vlabench.core.errors import ConfigError
from vlabench.pruners.base import ACTION, PROPRIO, TEXT, VisualTokens
from vlabench.pruners.specprune import COARSE, FINE, SpecPrune, code_k, dynamic_ids, static_ids, text_rows
from vlabench.pruners.specprune_controller import (
    CodeController,
    code_frames_back,
    code_prev_t,
    controller_mode,
    frame_interval,
)
from vlabench.pruners.specprune_layers import (
    code_rank_weights,
    code_retain,
    ema,
    layer_confidence,
    rank_weights,
)

ALPHA = {"libero_10": 1.0, "libero_goal": 0.8, "libero_object": 0.6, "libero_spatial": 0.6}
CAMS = ("agentview", "wrist")


# ---------------------------------------------------------------- frame comparison
def _pair() -> tuple[np.ndarray, np.ndarray]:
    """28x28 images, 2x2 patches of 14 px; patch similarities 1.0, 0.9997, 0.9918, 0."""
    a = np.full((28, 28, 3), 200, np.uint8)
    b = a.copy()
    b[0:14, 14:28, 0] = 190        # patch 1: cos = 590 / (sqrt(3) sqrt(116100)) = 0.99971
    b[14:28, 0:14, 0] = 150        # patch 2: cos = 550 / (sqrt(3) sqrt(102500)) = 0.99177
    b[14:28, 14:28] = 0            # patch 3: black, cos = 0
    return a, b


def test_code_prunes_the_most_similar_patches_at_or_above_tau_and_keeps_the_rest():
    a, b = _pair()
    cur, ref = {"agentview": b, "wrist": a}, {"agentview": a, "wrist": a}
    # candidates (>= 0.986): agentview 0, 1, 2; wrist all four, identical: numpy 1.x's
    # argpartition(sim, -2)[-2:] (the code's) takes the last two of four equal values
    assert static_ids(cur, ref, CAMS, 2, 0.986, top=2).tolist() == [0, 1, 6, 7]
    assert static_ids(cur, ref, CAMS, 2, 0.986, top=9).tolist() == [0, 1, 2, 4, 5, 6, 7]
    assert static_ids(cur, ref, CAMS, 2, 0.9998, top=9).tolist() == [0, 4, 5, 6, 7]
    assert static_ids(cur, None, CAMS, 2, 0.986, top=2).numel() == 0     # no reference: none static


def test_256_minus_top_is_a_floor_of_kept_patches_not_a_cap():
    a = np.full((28, 28, 3), 200, np.uint8)
    same = {"agentview": a, "wrist": a}
    static = static_ids(same, same, CAMS, 2, 0.986, top=3)        # all four similar: prune 3
    assert static.tolist() == [1, 2, 3, 5, 6, 7]                   # 4 - 3 = 1 kept per camera (argpartition's)
    _, b = _pair()
    moved = {"agentview": b, "wrist": b}
    assert static_ids(moved, same, CAMS, 2, 0.986, top=3).tolist() == [0, 1, 2, 4, 5, 6]
    b2 = a.copy()
    b2[0:14, 14:28] = 0
    b2[14:28, :] = 0                                               # only patch 0 still similar
    few = {"agentview": b2, "wrist": b2}
    assert static_ids(few, same, CAMS, 2, 0.986, top=3).tolist() == [0, 4]   # 3 kept: above the floor
    # the paper's reading caps instead: at most K_D lowest-similarity patches below tau are kept
    cur = {"agentview": b, "wrist": a}
    assert dynamic_ids(cur, same, CAMS, 2, 0.986, k=1).tolist() == [3]
    assert dynamic_ids(cur, same, CAMS, 2, 0.995, k=5).tolist() == [2, 3]


# ---------------------------------------------------------------- frame interval
@pytest.mark.parametrize("v,prev_t", [(0.0, 6), (4.0, 6), (5.5, 5), (6.5, 4), (7.5, 3),
                                      (9.0, 3), (10.0, 2), (12.0, 2)])
def test_code_frame_interval_is_min_int_plus_3_and_6(v, prev_t):
    # x = -16/3 v/6 + 22/3: v=5.5 -> 2.44, 6.5 -> 1.56, 7.5 -> 0.67, 9 -> -0.67 (int truncates to 0,
    # floor would give -1), 10 -> -1.56 -> prev_T 2; 12 -> -3.33 -> prev_T 0: clamped to 2 (bug)
    assert code_prev_t(v) == prev_t
    assert code_frames_back(v) == prev_t - 1         # replay_images[-prev_T]: prev_T - 1 steps back


def test_paper_frame_interval_follows_the_velocity_formula():
    assert frame_interval(0.0) == 7 + 4           # floor(7.33)
    assert frame_interval(3.0) == 4 + 4           # floor(-2.67 + 7.33) = floor(4.67)
    assert frame_interval(12.0) == 1              # floor(-3.33) + 4 = 0, at least one frame


# ---------------------------------------------------------------- controllers
def _a(dx=0.0, dy=0.0, dz=0.0, ra=0.0, rb=0.0, rg=0.0):
    return np.array([dx, dy, dz, ra, rb, rg, -1.0])


def test_code_controller_enters_on_the_or_rule_and_replans_only_from_coarse_with_actions_left():
    c = CodeController()
    assert not c.step(_a(dx=0.5), False) and c.mode == COARSE      # v_t 0.5, v_xy 0.5: stays coarse
    assert c.step(_a(dx=0.3), False) and c.mode == FINE            # v_t < 0.4: enters, chunk not used up
    c = CodeController()
    assert not c.step(_a(dx=0.3), False) and c.mode == FINE        # first evaluation: cur_mode starts True
    c = CodeController()
    c.step(_a(dx=0.5), False)
    # v_t = 0.5025 >= 0.4 but v_xy 0.05 < 0.1, dz < 0.1, v_r 0.1 < 0.2: the OR clause enters
    assert c.step(_a(dx=0.05, dz=-0.5, ra=0.1), True) is False and c.mode == FINE   # last action: no replan
    assert controller_mode(_a(dx=0.05, dz=-0.5, ra=0.1), 0.4, 0.2) == COARSE      # the paper's AND rule


def test_code_controller_leaves_fine_mode_with_hysteresis():
    c = CodeController(fine=True, previous=True)
    assert not c.step(_a(dx=0.9, dz=0.15), False) and c.mode == FINE   # fast, dz 0.15 <= 0.2: stays
    assert not c.step(_a(ra=0.35), False) and c.mode == FINE           # v_r > 0.3, chunk not used up
    c.step(_a(ra=0.35), True)
    assert c.mode == COARSE                                             # ... and used up: leaves
    c = CodeController(fine=True, previous=True)
    c.step(_a(dz=0.25), False)
    assert c.mode == COARSE                                             # lifting: leaves at once


def test_paper_controller_switches_on_velocity_and_dz():
    th = dict(vt_th=0.4, vr_th=0.2)
    seq = [None, _a(dx=0.5), _a(0.1, 0.1, -0.1), _a(0.1, ra=0.1, rb=0.1), _a(0.1, dz=0.05), _a(0.1, dz=-0.1, ra=0.3)]
    assert [controller_mode(a, **th) for a in seq] == [COARSE, COARSE, FINE, FINE, COARSE, COARSE]


# ---------------------------------------------------------------- pruner: controller, frames, replan
def _tokens(call: int, img: np.ndarray, wrist: np.ndarray | None = None) -> VisualTokens:
    return VisualTokens(torch.zeros(8, 4), torch.zeros(8, 4),
                        {"agentview": img, "wrist": img if wrist is None else wrist}, None, "task", call)


def _obs(step: int):
    return type("Obs", (), {"step": step})()


def _call(p: SpecPrune, step: int, img: np.ndarray, call: int = 0, wrist: np.ndarray | None = None) -> None:
    p.skip_call(_obs(step))
    p.before_llm(_tokens(call, img, wrist))


def test_entering_fine_mode_mid_chunk_asks_for_a_replan_and_the_next_call_is_fine():
    p = SpecPrune({"static_top": {"coarse": 1, "fine": 2}})
    p.bind(model_info())
    img = np.full((28, 28, 3), 200, np.uint8)
    _call(p, 0, img)
    assert p.mode() == COARSE
    chunk = np.stack([_a(dx=0.5), _a(dx=0.1)] + [_a(dx=0.5)] * 6)
    p.end_of_step(chunk, None)
    p.observe_frame(1, {"agentview": img, "wrist": img})   # action 0 executed: fast, stays coarse
    assert not p.replan()
    p.observe_frame(2, {"agentview": img, "wrist": img})   # action 1: slow -> fine, 6 actions left
    assert p.replan() and not p.replan()                   # asked once
    _call(p, 2, img, call=1)
    assert p.mode() == FINE
    assert p._static.tolist() == [2, 3, 6, 7]              # fine mode: 2 of the 4 equally similar per camera


def test_the_reference_frame_is_prev_t_minus_one_steps_back_even_between_model_calls():
    p = SpecPrune({"tau": 0.9})
    p.bind(model_info())
    base = np.full((28, 28, 3), 200, np.uint8)
    _call(p, 0, base)
    # executed translations sum to 5.5 in x: prev_T = min(int(2.44) + 3, 6) = 5 -> 4 steps back
    p.end_of_step(np.stack([_a(dx=5.5 / 8)] * 8), None)
    for step in range(1, 8):           # open-loop steps: only frame 4 differs (patch 1 of agentview)
        img = base.copy()
        if step == 4:
            img[0:14, 14:28, 0] = 0
        p.observe_frame(step, {"agentview": img, "wrist": base})
    _call(p, 8, base, call=1)
    assert 1 not in p._static.tolist() and 0 in p._static.tolist()   # compared with frame 8 - 4 = 4


def test_the_first_call_has_no_reference_frame_and_prunes_nothing_by_similarity():
    p = SpecPrune({})
    p.bind(model_info())
    _call(p, 0, np.full((28, 28, 3), 200, np.uint8))
    assert p._static.numel() == 0      # the code compares the frame with itself (a bug; not reproduced)


def test_mode_follows_the_last_action_in_the_paper_reading_and_reset_forgets_the_episode():
    p = SpecPrune({"reading": "paper", "suite": "libero_goal", "alpha": ALPHA})
    p.bind(model_info())
    img = np.zeros((28, 28, 3), np.uint8)
    _call(p, 0, img)
    assert p.mode() == COARSE
    p.end_of_step(np.stack([_a(0.1, 0.0, -0.1)] * 8), None)
    _call(p, 8, img, call=1)
    assert p.mode() == FINE and p.k_per_camera() == (32, 32)      # int(0.8 * 40)
    p.reset()
    assert p._last_action is None and not p._frames and p._global is None
    _call(p, 0, img)
    assert p.mode() == COARSE


# ---------------------------------------------------------------- K
def test_code_k_per_camera_is_16_12_coarse_and_25_19_fine():
    assert code_k(0.8) == {COARSE: (16, 12), FINE: (25, 19)}
    assert code_k(1.2) == {COARSE: (24, 18), FINE: (48, 36)}     # r > 1: int(40 r), int(30 r)
    p = SpecPrune({})
    p.bind(model_info())
    assert p.k_per_camera() == (16, 12)


@pytest.mark.parametrize("suite,coarse,fine", [("libero_spatial", 14, 24), ("libero_goal", 19, 32),
                                                ("libero_10", 24, 40)])
def test_paper_k_base_is_alpha_times_24_or_40_per_suite(suite, coarse, fine):
    p = SpecPrune({"reading": "paper", "suite": suite, "alpha": ALPHA})
    p.bind(model_info())
    assert p.k_per_camera() == (coarse, coarse)
    p._mode = FINE
    assert p.k_per_camera() == (fine, fine)


# ---------------------------------------------------------------- Eq. 1 rows and the two-step static keep
TAIL = [PROPRIO] + [TEXT] * 12 + [ACTION] * 2


def test_eq1_text_rows_skip_the_template_layer_0_drops_the_last_prompt_token_layer_1_one_more_first():
    v = view(0, list(range(8)), TAIL)
    # sequence: BOS 0, visual 1-8, proprio 9, prompt tokens 0..11 at 10..21
    assert torch.nonzero(text_rows(v, 9, -1)).flatten().tolist() == [19, 20]
    assert torch.nonzero(text_rows(v, 10, None)).flatten().tolist() == [20, 21]
    assert torch.nonzero(text_rows(v, 9, None)).flatten().tolist() == [19, 20, 21]


def test_code_static_keep_after_layer_0_then_layer_1():
    # K = (1, 1) coarse (r = 0.07: int(1.4), int(1.05)); static_top 3: patches 0-2 are identical to
    # the reference, patch 3 a little less similar (0.99177 >= tau), so {0,1,2} and {4,5,6} are
    # static, 3 and 7 are not
    p = SpecPrune({"static_ratio": 0.07, "static_top": {"coarse": 3, "fine": 3}, "layer_prune": False})
    p.bind(model_info(num_layers=4))
    assert p.attention_layers == {0, 1}
    img = np.full((28, 28, 3), 200, np.uint8)
    _call(p, 0, img)
    p.end_of_step(np.stack([_a(dx=0.5)] * 8), None)
    cur = img.copy()
    cur[14:28, 14:28, 0] = 150
    _call(p, 8, cur, call=1)
    assert p._static.tolist() == [0, 1, 2, 4, 5, 6]
    rows0 = {19: {0: .5, 1: .4, 2: .3, 5: .5, 6: .4, 7: .3},   # prompt token 9
             18: {4: .9}}                                      # prompt token 8 (template): ignored
    keep0 = p.after_layer(view(0, list(range(8)), TAIL, rows0))
    assert keep0.tolist() == [0, 1, 2, 3, 5, 6, 7]             # non-static U top-3 per camera
    alive = keep0.tolist()
    # after layer 0: BOS 0, 7 visual at 1-7, proprio 8, prompt tokens at 9..20
    rows1 = {20: {2: .9, 6: .9},                               # prompt token 11 (last): counted now
             18: {1: .9}}                                      # prompt token 9: not at layer 1
    keep1 = p.after_layer(view(1, alive, TAIL, rows1))
    assert keep1.tolist() == [0, 2, 3, 5, 6, 7]                # non-static U top-1(l0) {0,5} U top-1(l1) {2,6}


# ---------------------------------------------------------------- layer level
def test_layer_level_pruning_is_off_under_the_code_as_released_and_on_under_the_paper():
    code, paper, on = SpecPrune({}), SpecPrune({"reading": "paper"}), SpecPrune({"layer_prune": True})
    for p in (code, paper, on):
        p.bind(model_info(num_layers=32))
    assert code.attention_layers == {0, 1}                       # dynamic_prune = False @ d3b06ed
    assert paper.attention_layers == {0, 1, 5, 10, 15, 20, 31}
    assert on.attention_layers == {0, 1, 5, 10, 12, 15, 20, 25}


def test_code_layer_level_rank_weights_and_retain_count():
    w = code_rank_weights(torch.tensor([0.1, 0.5, 0.3]), layer=0)   # ranks 2, 0, 1
    assert w.tolist() == pytest.approx([0.1, 10.0, 5.05])
    assert code_retain(300, 90) == (240, False)                      # int(0.8 * 300)
    assert code_retain(180, 90) == (150, True)                       # floor 60 + 90 reached: stop


def test_code_layer_prune_keeps_the_best_scored_visual_tokens_to_the_retain_count_then_stops():
    p = SpecPrune({"layer_prune": True, "code_min_retain": 0, "code_prune_layers": [2, 3]})
    p.bind(model_info(num_layers=5, grid=4, cameras=("agentview",)))
    p._scores = torch.arange(16, dtype=torch.float32)
    tail = [TEXT, ACTION]
    keep = p.after_layer(view(2, list(range(10)), tail))
    # L = 1 + 10 + 2 = 13 -> retain int(10.4) = 10 tokens = 2 tail + BOS + 7 visual
    assert keep.tolist() == [3, 4, 5, 6, 7, 8, 9]
    p2 = SpecPrune({"layer_prune": True, "code_min_retain": 8, "code_prune_layers": [2, 3]})
    p2.bind(model_info(num_layers=5, grid=4, cameras=("agentview",)))
    p2._scores = torch.arange(16, dtype=torch.float32)
    assert p2.after_layer(view(2, list(range(10)), tail)).numel() == 7   # floor 8 + 2 = 10 = retain
    assert p2.after_layer(view(3, list(range(7)), tail)) is None           # switched off


def test_paper_rank_weight_confidence_and_ema():
    w = rank_weights(torch.tensor([[0.1, 0.5, 0.3]]), k=1.0)   # ranks 2, 0, 1
    s = [1 / (1 + math.exp(2)), 0.5, 1 / (1 + math.exp(1))]
    assert w.tolist() == pytest.approx([x / sum(s) for x in s], rel=1e-5)
    assert layer_confidence(torch.tensor([0.1, 0.3]), eps=0.0) == pytest.approx(2.0)   # 0.2 / 0.1
    s2 = ema(torch.zeros(2), torch.tensor([1.0, 0.5]), 0.2)
    assert s2.tolist() == pytest.approx([0.2, 0.1])


def test_paper_static_pruning_keeps_global_union_dynamic_union_local_top_k():
    p = SpecPrune({"reading": "paper", "k_coarse": 1, "alpha_default": 1.0})
    p.bind(model_info(num_layers=4))
    assert p.attention_layers == {0, 1, 3}
    _call(p, 0, np.zeros((28, 28, 3), np.uint8))
    tail = [TEXT] * 11
    ids = list(range(8))
    # prompt token 9 is sequence index 9 + 9 = 18
    assert p.after_layer(view(0, ids, tail, {18: {1: 0.5, 6: 0.5}})) is None     # V(1) = {1, 6}
    p._global = torch.tensor([0, 0, 0, 0.9, 0.8, 0, 0, 0.1])                       # top-1 per camera: 3, 4
    keep = p.after_layer(view(1, ids, tail, {18: {2: 0.5, 6: 0.4}}))              # V(2) = {2, 6}
    assert sorted(keep.tolist()) == [1, 2, 3, 4, 6]


def test_paper_layer_level_pruning_drops_ten_percent_by_the_ema_score():
    p = SpecPrune({"reading": "paper", "k_coarse": 24})
    p.bind(model_info(num_layers=22, grid=4, cameras=("agentview",)))
    assert 5 in p.attention_layers and 20 in p.attention_layers
    p._scores = torch.zeros(16)
    alive = list(range(10))
    keep = p.after_layer(view(5, alive, [TEXT, ACTION], {11: {i: 0.01 * (i + 1) for i in alive},
                                                         12: {i: 0.01 * (i + 1) for i in alive}}))
    assert sorted(keep.tolist()) == list(range(1, 10))        # keep_count(10, 0.9) = 9
    assert p._scores[9] > p._scores[1] > 0 and p._scores[12] == 0


# ---------------------------------------------------------------- config, readings, runner
def test_refuses_a_model_without_layers_after_the_local_ones():
    with pytest.raises(ConfigError):
        SpecPrune({}).bind(model_info(num_layers=2))


def test_the_yaml_reads_code_and_alpha_comes_from_the_composed_suite_name():
    import yaml
    from omegaconf import OmegaConf

    from vlabench.core import registry

    node = yaml.safe_load(registry.entry("pruner", "specprune").path.read_text())
    assert node["reading"] == "code"
    root = OmegaConf.create({"suite": {"name": "libero_goal"}, "pruner": node})
    assert SpecPrune(root.pruner).alpha == 0.8
    assert SpecPrune(OmegaConf.create(node)).alpha == 1.0     # no suite: alpha_default


def test_every_reading_names_the_code_and_bugs_default_to_the_paper():
    rs = SpecPrune.readings
    assert len(rs) >= 10 and all("d3b06ed" in r.code for r in rs)
    assert all(r.default == "paper" for r in rs if "a bug; not reproduced" in r.code)


def test_the_runner_discards_the_rest_of_the_chunk_when_the_pruner_replans():
    from omegaconf import OmegaConf

    from tests.test_runner_unit import TASK, ChunkPolicy, CountingEnv, Suite
    from vlabench.core.contracts import EpisodeSpec
    from vlabench.run.loop import Runner

    class ReplanAt4:
        def reset(self):
            pass

        def replan(self):
            return bool(pol.observed) and pol.observed[-1] == 4

    cfg = OmegaConf.create({"run": {"max_steps": None, "name": "r"}, "model": {"name": "m"},
                            "pruner": {"name": "x"}, "suite": {"name": "s"}})
    pol, env = ChunkPolicy(3), CountingEnv(done_at=None)
    Runner(cfg, Suite(8), pol, ReplanAt4(), files=None).run_episode(env, TASK, EpisodeSpec(0, 0, 0, 7))
    assert pol.acted == [0, 3, 4, 7] and pol.observed == [1, 2, 4, 5, 6]
    assert [a[0] for a in env.actions] == [0, 1, 2, 300, 400, 401, 402, 700]


def test_under_specprunes_protocol_unexecuted_steps_are_ignored_and_the_first_executed_not_evaluated():
    p = SpecPrune({"unexecuted_first_steps": 9})
    p.bind(model_info())
    img = np.full((28, 28, 3), 200, np.uint8)
    _call(p, 0, img)
    p.end_of_step(np.stack([_a(dx=0.5)] + [_a(dx=0.1)] * 7), None)    # steps 0-7: not executed
    for s in range(1, 8):
        p.observe_frame(s, {"agentview": img, "wrist": img})
        assert not p.replan()
    assert not np.any(p._translation) and p.controller.previous is True   # nothing counted yet
    _call(p, 8, img, call=1)
    assert p.mode() == COARSE
    p.end_of_step(np.stack([_a(dx=0.5), _a(dx=0.7), _a(dx=0.1)] + [_a(dx=0.5)] * 5), None)
    p.observe_frame(9, {"agentview": img, "wrist": img})     # step 8: not executed
    p.observe_frame(10, {"agentview": img, "wrist": img})    # step 9: executed, not evaluated
    assert p.controller.previous is True and p._translation[0] == pytest.approx(0.7)
    p.observe_frame(11, {"agentview": img, "wrist": img})    # step 10: slow, first evaluation
    assert p.controller.fine and not p.replan()              # entered, but cur_mode starts True
